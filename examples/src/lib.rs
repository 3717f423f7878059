//! Runnable fresco programs; see the `[[example]]` entries in this crate's Cargo.toml.
//!
//! The library part holds what several examples (and their tests) share: the
//! synthetic delivery world behind the ETA examples, the churn feedback loop, and a
//! small static file server for the browser example.

pub mod churn;
pub mod eta;
pub mod random;
pub mod serve;
pub mod snapshot;
pub mod web_cases;
