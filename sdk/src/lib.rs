//! fresco: embeddable machine-learning serving for Rust services, edge devices and
//! browsers.
//!
//! This crate is what applications link. Today it provides:
//!
//! - [`holdout`]: deterministic holdout assignment, identical in Rust, in WebAssembly and
//!   in Python (`mmh3`), so that entities held out from treatment stay held out
//!   everywhere.
//! - [`runtime`] (feature `runtime`, on by default): in-process scoring of fresco model
//!   modules with wasmtime.
//!
//! With default features off the crate has no native dependencies and builds for
//! `wasm32-unknown-unknown`.
//!
//! ```
//! use fresco::holdout::Holdout;
//!
//! let holdout = Holdout::new("churn-2026q4", "churn-2026q4", 0.05)?;
//! let assignment = holdout.assign("user-1");
//! assert_eq!(assignment.bucket, fresco::holdout::bucket("churn-2026q4", "user-1"));
//! if !assignment.in_holdout {
//!     // free to treat this user
//! }
//! # Ok::<(), fresco::holdout::HoldoutError>(())
//! ```

pub mod holdout;

#[cfg(feature = "runtime")]
pub use fresco_runtime as runtime;

pub use fresco_abi as abi;
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
