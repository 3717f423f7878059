//! fresco: embeddable machine-learning serving for Rust services, edge devices and
//! browsers.
//!
//! One [`Client`] call takes an entity and request-time values, fetches the stored
//! features, scores the model in-process, applies the holdout, logs the prediction
//! exactly as scored, and returns the outputs with a prediction id:
//!
//! ```
//! use fresco::{Client, EmbeddedStore, FeatureView, InputSource, MemorySink, ModelConfig,
//!              ModelSource, Request, Timestamp, Value, ValueType};
//!
//! // Stored features, in the embedded store (a file, or memory).
//! let store = EmbeddedStore::in_memory()?;
//! store.define_view(FeatureView::new("restaurants", "restaurant_id").feature("prep_min", ValueType::F64))?;
//! store.write("restaurants", "r-17", Timestamp::now(), &[Value::F64(9.0)])?;
//!
//! let client = Client::builder()
//!     .feature_store(store)
//!     .model(
//!         ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear()))
//!             // The test model computes y = 2·a + 3·b + 1; `b` is a stored feature.
//!             .input("b", InputSource::stored("restaurants", "prep_min")),
//!     )
//!     .log_to(MemorySink::new())
//!     .build()?;
//!
//! let request = Request::new()
//!     .entity("restaurant_id", "r-17")
//!     .value("a", 2.0);
//! let prediction = client.predict("linear", &request)?;
//! assert_eq!(prediction.output("y"), Some(2.0 * 2.0 + 3.0 * 9.0 + 1.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Modules, one idea each:
//!
//! - [`client`]: the `Client`, its builder, requests and predictions;
//! - [`features`]: feature sources, the [`FeatureStore`] trait and the embedded store;
//! - [`aggregates`]: windowed features ("orders in the last 30 minutes"), online and
//!   replayed offline;
//! - [`time`]: timestamps and UTC calendar dates (strictly parsed);
//! - [`value`]: typed values and their lossless conversion to model inputs;
//! - [`model`]: model backends (WebAssembly, compiled trees, ONNX);
//! - [`registry`]: versioned models on disk, deployed and rolled back by manifest;
//! - [`rollout`]: flags that choose a model version per request;
//! - [`holdout`]: deterministic holdout assignment, identical in Rust, in WebAssembly
//!   and in Python (`mmh3`);
//! - [`interval`]: calibrated ranges from quantile outputs, per segment, and coverage
//!   reports;
//! - [`log`]: prediction records and sinks; the durable Parquet log;
//! - [`dataset`]: training sets from the logs, holdout-aware;
//! - [`untrusted`]: the rules for reading files a user hands over (no panic from a
//!   malformed file, no allocation it asks for beyond its size, no lossy conversion).
//!
//! # Cargo features
//!
//! - `client` (default): the [`Client`], on wasmtime ([`runtime`]).
//! - `embedded-store` (default): [`EmbeddedStore`], on redb.
//! - `parquet` (default): bulk loads from Parquet.
//! - `parquet-read`: only [`untrusted`] (what `parquet` reads user files with), with no
//!   runtime or store; `std`: with default features off, the registry [`Manifest`](registry::Manifest).
//! - `onnx` (default): [`OnnxModel`], on tract.
//! - `trees` (default): LightGBM / XGBoost files compiled when registered.
//! - `tokio` (default): `predict_async`, off the async workers.
//! - `cuda`: tree models scored on an NVIDIA GPU ([`model::GpuTrees`]), falling back
//!   to the CPU where configured.
//!
//! With default features off the crate (holdouts, values, feature definitions, record
//! encoding) has no native dependencies and builds for `wasm32-unknown-unknown`.

#[cfg(feature = "client")]
pub mod aggregates;
#[cfg(feature = "std")]
mod atomic_file;
#[cfg(feature = "object-store")]
pub mod bucket;
#[cfg(feature = "client")]
pub mod events;
pub mod features;
pub mod holdout;
pub mod interval;
pub mod log;
mod sync;
pub mod time;
pub mod value;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "parquet")]
pub mod dataset;
#[cfg(feature = "client")]
mod error;
#[cfg(feature = "client")]
pub mod model;
#[cfg(feature = "std")]
pub mod registry;
pub mod rollout;
#[cfg(feature = "parquet-read")]
pub mod untrusted;

#[cfg(feature = "runtime")]
pub use fresco_runtime as runtime;

pub use fresco_abi as abi;
/// Training statistics, drift tests and the window monitor ([`ClientBuilder::monitor`]).
#[cfg(feature = "client")]
pub use fresco_drift as drift;

pub use features::{FeatureSpec, FeatureStatus, FeatureStore, FeatureValue, FeatureView, InputSource, StoreError};
pub use interval::Interval;
#[cfg(feature = "parquet")]
pub use log::{FloatEncoding, LogConfig, LogStats, OverflowPolicy, PredictionLog, SpoolDurability};
pub use log::{
    LogError, LogSchema, MemorySink, OutcomeRecord, PredictionBatch, PredictionRecord, PredictionRow, PredictionSink,
    TreatmentRecord,
};
pub use time::Timestamp;
pub use value::{Value, ValueType};

#[cfg(feature = "client")]
pub use client::{
    Client, ClientBuilder, ClientStats, HoldoutDecision, InvalidPredictionId, ModelConfig, Prediction, PredictionId,
    Request, Watcher, describe_metrics,
};
#[cfg(feature = "client")]
pub use error::{ConfigError, Error, Refusal};
#[cfg(feature = "embedded-store")]
pub use features::EmbeddedStore;
#[cfg(feature = "parquet")]
pub use features::{MaterializeOptions, MaterializeProgress, MaterializeReport};
#[cfg(feature = "client")]
pub use model::{ModelError, ModelSource};
#[cfg(feature = "onnx")]
pub use model::{OnnxError, OnnxModel};

/// The Rust examples of the README and of the guides under `docs/` compile and run as
/// doc tests.
#[cfg(doctest)]
mod guides {
    #[doc = include_str!("../../README.md")]
    struct Readme;
    #[doc = include_str!("../../docs/client.md")]
    struct Client;
    #[doc = include_str!("../../docs/logging.md")]
    struct Logging;
    #[doc = include_str!("../../docs/aggregates.md")]
    struct Aggregates;
}
