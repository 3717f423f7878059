//! Model backends: where a prediction is scored.
//!
//! Every backend takes rows of `f64` in the model's declared input order and writes
//! `f64` outputs, so the [`Client`](crate::Client) treats them alike:
//!
//! - WebAssembly modules (ABI v1) run in wasmtime through [`fresco_runtime`];
//! - LightGBM / XGBoost files are compiled to WebAssembly when registered
//!   (feature `trees`), then run like any module;
//! - ONNX models run in tract (feature `onnx`): [`OnnxModel`].

#[cfg(feature = "cuda")]
mod gpu;
#[cfg(feature = "onnx")]
mod onnx;

use std::path::PathBuf;

use fresco_abi::ModelMetadata;

#[cfg(feature = "cuda")]
pub use gpu::{GpuFallback, GpuTrees};
#[cfg(feature = "onnx")]
pub use onnx::{OnnxError, OnnxModel};

/// Where a model comes from, for [`ModelConfig`](crate::ModelConfig).
///
/// ```
/// use fresco::ModelSource;
///
/// let wasm = ModelSource::wasm_file("models/eta.wasm");
/// let bytes = ModelSource::wasm_bytes(fresco_test_models::linear());
/// # let _ = (wasm, bytes);
/// ```
#[non_exhaustive]
pub enum ModelSource {
    /// A `.wasm` module on disk.
    WasmFile(PathBuf),
    /// A `.wasm` module in memory.
    WasmBytes(Vec<u8>),
    /// A module already loaded by the runtime (sharing its engine).
    Loaded(fresco_runtime::Model),
    /// LightGBM / XGBoost models, compiled to WebAssembly at registration (boxed: a
    /// configured compiler is large).
    #[cfg(feature = "trees")]
    Trees(Box<fresco_compiler::Compiler>),
    /// An ONNX model.
    #[cfg(feature = "onnx")]
    Onnx(OnnxModel),
    /// Tree models scored on an NVIDIA GPU ([`GpuTrees`]), feature `cuda`.
    #[cfg(feature = "cuda")]
    Gpu(GpuTrees),
}

impl std::fmt::Debug for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelSource::WasmFile(p) => f.debug_tuple("WasmFile").field(p).finish(),
            ModelSource::WasmBytes(b) => write!(f, "WasmBytes({} bytes)", b.len()),
            ModelSource::Loaded(m) => f.debug_tuple("Loaded").field(&m.name()).finish(),
            #[cfg(feature = "trees")]
            ModelSource::Trees(_) => f.write_str("Trees(..)"),
            #[cfg(feature = "onnx")]
            ModelSource::Onnx(m) => f.debug_tuple("Onnx").field(m).finish(),
            #[cfg(feature = "cuda")]
            ModelSource::Gpu(m) => f.debug_tuple("Gpu").field(m).finish(),
        }
    }
}

impl ModelSource {
    /// A `.wasm` file.
    pub fn wasm_file(path: impl Into<PathBuf>) -> Self {
        ModelSource::WasmFile(path.into())
    }

    /// A `.wasm` module in memory.
    pub fn wasm_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        ModelSource::WasmBytes(bytes.into())
    }

    /// A LightGBM text or XGBoost JSON file (format detected), compiled at registration
    /// into a model called `name`, version `version`.
    ///
    /// For packing several boosters into one module, pass a configured
    /// [`fresco_compiler::Compiler`] as [`ModelSource::Trees`] instead.
    ///
    /// ```
    /// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../wasm-models/oracle/fixtures/lgb_regression.model.txt");
    /// let source = fresco::ModelSource::trees_file(path, "reg", "1")?;
    /// let client = fresco::Client::builder()
    ///     .model(fresco::ModelConfig::new(source))
    ///     .log_to(fresco::MemorySink::new())
    ///     .build()?;
    /// assert_eq!(client.models(), vec!["reg"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "trees")]
    pub fn trees_file(
        path: impl AsRef<std::path::Path>,
        name: impl Into<String>,
        version: impl Into<String>,
    ) -> Result<Self, fresco_compiler::CompileError> {
        Ok(ModelSource::Trees(Box::new(fresco_compiler::Compiler::new(name, version).add_file(path, None)?)))
    }
}

/// Why a model could not be loaded or scored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The WebAssembly runtime refused or failed.
    #[error(transparent)]
    Runtime(#[from] fresco_runtime::Error),
    /// Compiling a tree model failed.
    #[cfg(feature = "trees")]
    #[error(transparent)]
    Compile(#[from] fresco_compiler::CompileError),
    /// The ONNX backend refused or failed.
    #[cfg(feature = "onnx")]
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    /// The GPU refused or failed.
    #[cfg(feature = "cuda")]
    #[error(transparent)]
    Gpu(#[from] fresco_cuda::CudaError),
}

/// A loaded model, whatever its backend.
#[derive(Clone)]
pub(crate) enum Backend {
    Wasm(fresco_runtime::Model),
    #[cfg(feature = "onnx")]
    Onnx(OnnxModel),
    #[cfg(feature = "cuda")]
    Gpu(std::sync::Arc<gpu::GpuModel>),
}

impl Backend {
    pub(crate) fn load(engine: &fresco_runtime::Engine, source: ModelSource) -> Result<Self, ModelError> {
        Ok(match source {
            ModelSource::WasmFile(path) => Backend::Wasm(fresco_runtime::Model::from_file(engine, path)?),
            ModelSource::WasmBytes(bytes) => Backend::Wasm(fresco_runtime::Model::from_bytes(engine, bytes)?),
            ModelSource::Loaded(model) => Backend::Wasm(model),
            #[cfg(feature = "trees")]
            ModelSource::Trees(compiler) => {
                let wasm = compiler.compile()?;
                Backend::Wasm(fresco_runtime::Model::from_bytes(engine, wasm)?)
            }
            #[cfg(feature = "onnx")]
            ModelSource::Onnx(model) => Backend::Onnx(model.with_default_limits(engine.limits())),
            #[cfg(feature = "cuda")]
            ModelSource::Gpu(trees) => match trees.load()? {
                gpu::Loaded::Gpu(model) => Backend::Gpu(std::sync::Arc::from(model)),
                gpu::Loaded::Cpu(compiler) => {
                    Backend::Wasm(fresco_runtime::Model::from_bytes(engine, compiler.compile()?)?)
                }
            },
        })
    }

    pub(crate) fn metadata(&self) -> &ModelMetadata {
        match self {
            Backend::Wasm(m) => m.metadata(),
            #[cfg(feature = "onnx")]
            Backend::Onnx(m) => m.metadata(),
            #[cfg(feature = "cuda")]
            Backend::Gpu(m) => m.metadata(),
        }
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Backend::Wasm(_) => "wasm",
            #[cfg(feature = "onnx")]
            Backend::Onnx(_) => "onnx",
            #[cfg(feature = "cuda")]
            Backend::Gpu(_) => "cuda",
        }
    }

    /// Scores whole rows; `out` holds `n_rows * n_outputs` values.
    pub(crate) fn predict_into(&self, rows: &[f64], out: &mut [f64]) -> Result<(), ModelError> {
        match self {
            Backend::Wasm(m) => m.predict_into(rows, out)?,
            #[cfg(feature = "onnx")]
            Backend::Onnx(m) => m.predict_into(rows, out)?,
            #[cfg(feature = "cuda")]
            Backend::Gpu(m) => m.predict_into(rows, out)?,
        }
        Ok(())
    }
}
