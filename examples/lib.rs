//! Runnable fresco programs; see the `[[example]]` entries in this crate's Cargo.toml.
