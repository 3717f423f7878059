//! A model registry on disk: versioned artifacts and a manifest naming the serving
//! version, so a model can be deployed and rolled back without a redeploy of the app.
//!
//! Layout (docs/design.md §8):
//!
//! ```text
//! <root>/<model>/manifest.json        {"serving": "4", "previous": "3"}
//! <root>/<model>/<version>/model.wasm  or model.onnx + metadata.json,
//!                                      or model.txt (LightGBM), model.json (XGBoost)
//! ```
//!
//! One artifact per version directory. [`Registry::publish`] loads an artifact as a
//! Client would before it takes a version number (it loads, scores a plain row, and a
//! `.wasm` declares the model name and version it is published as); a Client checks it
//! again when it loads it, so a file copied into the wrong place by hand is refused
//! instead of served under the wrong name. Tree files are compiled when loaded. The
//! manifest is replaced atomically (written beside, then renamed), so a reader never
//! sees half of it. With only the `std` feature, this module holds the [`Manifest`]
//! and its parser.
//!
//! ```
//! # #[cfg(feature = "client")] {
//! use fresco::registry::Registry;
//!
//! let root = tempfile::tempdir()?;
//! let registry = Registry::open(root.path())?;
//! registry.publish_wasm("linear", "1", &fresco_test_models::linear())?;
//! registry.deploy("linear", "1")?;
//! assert_eq!(registry.manifest("linear")?.serving, "1");
//! assert_eq!(registry.versions("linear")?[0].version, "1");
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod manifest;
#[cfg(feature = "client")]
mod storage;
#[cfg(feature = "client")]
mod store;

pub use manifest::{InvalidName, MANIFEST, Manifest, ManifestError};
#[cfg(feature = "client")]
pub use store::{ArtifactKind, Registry, RegistryError, VersionEntry};
