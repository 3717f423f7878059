//! fresco's WebAssembly model runtime.
//!
//! Loads fresco model modules (ABI v1, see [`fresco_abi`]), validates them, and scores
//! rows of `f64` features inside a wasmtime sandbox with a memory cap, a per-call
//! deadline and a stack limit. Three nouns:
//!
//! - [`Engine`]: compiler settings, [`Limits`], the deadline clock and an optional
//!   compiled-code cache. One per process.
//! - [`Model`]: a loaded, validated module with a pool of instances; `Send + Sync`.
//! - [`Error`]: what went wrong, naming the model and the cause.
//!
//! ```
//! use fresco_runtime::{Engine, Limits, Model};
//! use std::time::Duration;
//!
//! # let wasm = fresco_test_models::linear();
//! let engine = Engine::builder()
//!     .limits(Limits::default().with_deadline(Duration::from_millis(100)))
//!     .build()?;
//! let model = Model::from_bytes(&engine, &wasm)?;
//! let scores = model.predict(&[1.0, 2.0])?;
//! assert_eq!(scores, [9.0]);
//! # Ok::<(), fresco_runtime::Error>(())
//! ```
//!
//! A model that misbehaves is stopped and reported, and the process carries on:
//!
//! ```
//! # use fresco_runtime::{Engine, Error, Model};
//! # let engine = Engine::new()?;
//! let looping = Model::from_bytes(&engine, fresco_test_models::hostile::infinite_loop())?;
//! assert!(matches!(looping.predict(&[1.0, 2.0]), Err(Error::DeadlineExceeded { .. })));
//! # Ok::<(), fresco_runtime::Error>(())
//! ```

mod cache;
mod engine;
mod error;
mod instance;
mod limits;
mod model;
mod precompiled;
mod validate;

pub use engine::{Engine, EngineBuilder, EngineStats, Target};
pub use error::{Error, Result};
pub use fresco_abi as abi;
pub use limits::Limits;
pub use model::Model;
pub use precompiled::{Incompatibility, MAGIC as PRECOMPILED_MAGIC, PrecompiledInfo, is_precompiled};
