//! The fresco model ABI, version 1.
//!
//! A fresco model is one core WebAssembly module with **no imports**, so that the same
//! file runs in wasmtime, in a browser and in any other engine. This crate holds the
//! names, numbers and metadata types that the host ([`fresco-runtime`]), the compiler
//! and guest models written in Rust ([`fresco-guest`]) agree on. It is `no_std` (with
//! `alloc`) so that a guest can use it too.
//!
//! # Exports
//!
//! | export | signature | meaning |
//! |---|---|---|
//! | [`exports::MEMORY`] | memory | the module's linear memory |
//! | [`exports::ABI_VERSION`] | `() -> i32` | returns [`ABI_VERSION`] |
//! | [`exports::ALLOC`] | `(bytes: i32) -> i32` | offset where the host may write `bytes` bytes |
//! | [`exports::PREDICT`] | `(in_ptr: i32, n_rows: i32, out_ptr: i32) -> i32` | scores `n_rows` rows, returns a [`status`] code |
//!
//! Rows are `n_inputs` little-endian `f64` values each, row-major, with NaN meaning
//! "missing". Outputs are `n_rows * n_outputs` `f64` values, row-major.
//!
//! # Metadata
//!
//! A custom section named [`METADATA_SECTION`] holds UTF-8 JSON that deserializes into
//! [`ModelMetadata`]:
//!
//! ```
//! use fresco_abi::{ModelMetadata, ModelKind};
//!
//! let json = br#"{
//!     "name": "eta", "version": "3", "abi": 1, "kind": "gbdt",
//!     "inputs": [{"name": "distance_km", "type": "f64", "missing": "nan"}],
//!     "outputs": ["q10", "q50", "q90"],
//!     "source": {"format": "lightgbm", "sha256": null}
//! }"#;
//! let meta = ModelMetadata::from_json(json)?;
//! assert_eq!(meta.kind, ModelKind::Gbdt);
//! assert_eq!(meta.outputs.len(), 3);
//! # Ok::<(), fresco_abi::MetadataError>(())
//! ```
//!
//! [`fresco-runtime`]: https://docs.rs/fresco-runtime
//! [`fresco-guest`]: https://docs.rs/fresco-guest
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod metadata;

pub use metadata::{
    DistributionStats, InputSpec, InputType, IntervalSpec, MAX_SEGMENT_CELLS, MAX_SEGMENT_FEATURES, MetadataError,
    MissingInput, MissingPolicy, ModelKind, ModelMetadata, SegmentCell, SegmentFeature, SegmentOffsets, SourceInfo,
    StatsKind, TrainingStats,
};

/// The ABI version this crate describes; `fresco_abi_version()` must return it.
pub const ABI_VERSION: i32 = 1;

/// Name of the custom section that holds the model's JSON metadata.
pub const METADATA_SECTION: &str = "fresco.model";

/// The largest metadata section a host accepts: 16 MiB.
///
/// Training statistics can be sizeable (bin edges for hundreds of features), but a
/// section beyond this is treated as hostile rather than parsed.
pub const MAX_METADATA_BYTES: usize = 16 * 1024 * 1024;

/// Names of the functions and memory a model module exports.
pub mod exports {
    /// The module's linear memory.
    pub const MEMORY: &str = "memory";
    /// `fresco_abi_version() -> i32`.
    pub const ABI_VERSION: &str = "fresco_abi_version";
    /// `fresco_alloc(bytes: i32) -> i32`.
    pub const ALLOC: &str = "fresco_alloc";
    /// `fresco_predict(in_ptr: i32, n_rows: i32, out_ptr: i32) -> i32`.
    pub const PREDICT: &str = "fresco_predict";
}

/// Status codes returned by `fresco_predict`.
///
/// Zero is success. The codes below are reserved by the ABI; a model may return any
/// other non-zero value for errors of its own, which the host reports verbatim.
pub mod status {
    /// Success.
    pub const OK: i32 = 0;
    /// `n_rows` was negative or the buffers did not fit in memory.
    pub const INVALID_ARGUMENT: i32 = 1;
    /// An input value the model cannot score (e.g. NaN where the model forbids it).
    pub const INVALID_INPUT: i32 = 2;
    /// The model failed for a reason of its own.
    pub const INTERNAL: i32 = 3;

    /// A short description of a reserved status code, or `None` for a model-defined one.
    ///
    /// ```
    /// assert_eq!(fresco_abi::status::describe(1), Some("invalid argument"));
    /// assert_eq!(fresco_abi::status::describe(77), None);
    /// ```
    pub fn describe(code: i32) -> Option<&'static str> {
        match code {
            OK => Some("ok"),
            INVALID_ARGUMENT => Some("invalid argument"),
            INVALID_INPUT => Some("invalid input value"),
            INTERNAL => Some("internal model error"),
            _ => None,
        }
    }
}
