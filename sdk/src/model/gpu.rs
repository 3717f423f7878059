//! Tree models on an NVIDIA GPU (feature `cuda`), with an optional fall back to the
//! compiled WebAssembly backend where no GPU is usable.

use fresco_abi::ModelMetadata;
use fresco_compiler::Compiler;
use fresco_cuda::{CudaError, Forest, Gpu, GpuForest};

/// What to do when the GPU (driver, NVRTC or device) is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuFallback {
    /// Score on the CPU (the compiled WebAssembly backend), with a warning.
    Cpu,
    /// Fail the model's registration with the GPU's error.
    Fail,
}

/// Tree models to score on a GPU: [`ModelSource::Gpu`](super::ModelSource::Gpu).
///
/// ```
/// use fresco::model::{GpuFallback, GpuTrees};
///
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../wasm-models/oracle/fixtures/lgb_regression.model.txt");
/// let compiler = fresco_compiler::Compiler::new("reg", "1").add_file(path, None)?;
/// // On a machine without a GPU this scores on the CPU instead.
/// let client = fresco::Client::builder()
///     .model(fresco::ModelConfig::new(fresco::ModelSource::Gpu(GpuTrees::new(compiler, 0, GpuFallback::Cpu))))
///     .log_to(fresco::MemorySink::new())
///     .build()?;
/// assert_eq!(client.models(), vec!["reg"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct GpuTrees {
    /// Boxed: a configured compiler is large, and `ModelSource` holds this inline.
    compiler: Box<Compiler>,
    ordinal: usize,
    fallback: GpuFallback,
}

impl std::fmt::Debug for GpuTrees {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuTrees")
            .field("ordinal", &self.ordinal)
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

impl GpuTrees {
    /// The boosters of `compiler`, on GPU `ordinal`.
    pub fn new(compiler: Compiler, ordinal: usize, fallback: GpuFallback) -> Self {
        GpuTrees { compiler: Box::new(compiler), ordinal, fallback }
    }

    pub(crate) fn load(self) -> Result<Loaded, super::ModelError> {
        match GpuModel::new(&self.compiler, self.ordinal) {
            Ok(model) => Ok(Loaded::Gpu(Box::new(model))),
            Err(super::ModelError::Gpu(error)) if self.fallback == GpuFallback::Cpu => {
                tracing::warn!(%error, "GPU unusable; scoring the trees on the CPU");
                Ok(Loaded::Cpu(self.compiler))
            }
            Err(error) => Err(error),
        }
    }
}

pub(crate) enum Loaded {
    Gpu(Box<GpuModel>),
    Cpu(Box<Compiler>),
}

/// The loaded model: one GPU forest per packed booster, outputs in the packed order.
pub(crate) struct GpuModel {
    metadata: ModelMetadata,
    forests: Vec<GpuForest>,
}

impl GpuModel {
    fn new(compiler: &Compiler, ordinal: usize) -> Result<Self, super::ModelError> {
        let metadata = compiler.metadata()?;
        let gpu = Gpu::open(ordinal)?;
        let forests = compiler
            .ensembles()
            .map(|e| Forest::new(e).map_err(CudaError::from).and_then(|f| GpuForest::new(&gpu, f)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GpuModel { metadata, forests })
    }

    pub(crate) fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }

    pub(crate) fn predict_into(&self, rows: &[f64], out: &mut [f64]) -> Result<(), CudaError> {
        let n_out = self.metadata.outputs.len().max(1);
        let mut offset = 0;
        for forest in &self.forests {
            let k = forest.forest().n_outputs();
            let scores = forest.predict(rows)?;
            for (o, s) in out.chunks_exact_mut(n_out).zip(scores.chunks_exact(k.max(1))) {
                o[offset..offset + k].copy_from_slice(s);
            }
            offset += k;
        }
        Ok(())
    }
}
