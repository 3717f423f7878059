//! [`Model`]: a loaded, validated model, scored from any number of threads.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_queue::ArrayQueue;
use fresco_abi::ModelMetadata;
use ndarray::{Array2, ArrayView2};
use sha2::{Digest, Sha256};

use crate::engine::{Engine, EngineInner};
use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::validate;

/// A validated model, ready to score.
///
/// Cloning is cheap (an `Arc`). A `Model` is `Send + Sync`: each call borrows an
/// instance from a lock-free pool (creating one when all are busy), so concurrent
/// callers never wait on each other. A call that traps, runs past its deadline or
/// exhausts its memory discards its instance; the model keeps serving.
///
/// ```
/// use fresco_runtime::{Engine, Model};
///
/// # let wasm = fresco_test_models::linear(); // y = 2·a + 3·b + 1
/// let engine = Engine::new()?;
/// let model = Model::from_bytes(&engine, &wasm)?;
/// assert_eq!(model.metadata().outputs, ["y"]);
///
/// // Batch: rows are row-major, NaN means missing.
/// let y = model.predict(&[1.0, 1.0, 2.0, 0.0])?;
/// assert_eq!(y, [6.0, 5.0]);
///
/// // Batch of one without allocating.
/// let mut out = [0.0];
/// model.predict_row(&[0.5, 0.0], &mut out)?;
/// assert_eq!(out, [2.0]);
/// # Ok::<(), fresco_runtime::Error>(())
/// ```
#[derive(Clone)]
pub struct Model {
    inner: Arc<ModelInner>,
}

struct ModelInner {
    engine: Engine,
    module: wasmtime::Module,
    metadata: ModelMetadata,
    /// `name@version`, used in every error.
    label: String,
    sha256: [u8; 32],
    pool: ArrayQueue<Instance>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.inner.metadata.name)
            .field("version", &self.inner.metadata.version)
            .field("inputs", &self.n_inputs())
            .field("outputs", &self.n_outputs())
            .finish()
    }
}

impl Model {
    /// Loads and validates a model from its bytes.
    ///
    /// Checks, in order: the WebAssembly header, no imports, one `fresco.model` section
    /// within [`MAX_METADATA_BYTES`](fresco_abi::MAX_METADATA_BYTES) that parses and
    /// validates, compilation (or a compiled-code cache hit), the ABI exports and their
    /// signatures, and that `fresco_abi_version()` agrees with the metadata.
    pub fn from_bytes(engine: &Engine, bytes: impl AsRef<[u8]>) -> Result<Self> {
        Self::load(engine, bytes.as_ref(), "<bytes>")
    }

    /// Loads and validates a model from a `.wasm` file. See [`Model::from_bytes`].
    ///
    /// ```no_run
    /// # use fresco_runtime::{Engine, Model};
    /// let engine = Engine::builder().code_cache("/var/cache/fresco").build()?;
    /// let model = Model::from_file(&engine, "models/eta.wasm")?;
    /// println!("{} v{}", model.name(), model.version());
    /// # Ok::<(), fresco_runtime::Error>(())
    /// ```
    pub fn from_file(engine: &Engine, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_owned(), source })?;
        Self::load(engine, &bytes, &path.display().to_string())
    }

    fn load(engine: &Engine, bytes: &[u8], origin: &str) -> Result<Self> {
        let span = tracing::info_span!("fresco.model.load", origin, model = tracing::field::Empty);
        let _enter = span.enter();
        let metadata = validate::read_metadata(bytes, origin)?;
        let label = format!("{}@{}", metadata.name, metadata.version);
        span.record("model", label.as_str());
        let sha256: [u8; 32] = Sha256::digest(bytes).into();
        let module = compile(&engine.inner, bytes, &sha256, &label)?;
        Self::ready(engine, module, metadata, label, sha256)
    }

    /// Loads a precompiled artifact made by [`Engine::precompile`]: no compilation at
    /// start-up. The artifact's target and engine compatibility key are checked first;
    /// one made for another target ([`Target`](crate::Target)) or by another engine
    /// build or configuration is refused with [`Error::Incompatible`], never run. Then
    /// the same checks as [`Model::from_bytes`] (metadata, exports, ABI version).
    ///
    /// # Safety
    ///
    /// An artifact is compiled code (machine code, or Pulley bytecode) that wasmtime
    /// trusts without verifying it: the bytes must come from [`Engine::precompile`]
    /// and from a source as trusted as the program's own binary (your build pipeline,
    /// a signed bundle), never from a user or an unauthenticated download.
    ///
    /// ```no_run
    /// # use fresco_runtime::{Engine, Model, Target};
    /// let engine = Engine::builder().target(Target::Pulley).build()?;
    /// let bytes = std::fs::read("eta.pulley64.cwasm").unwrap();
    /// // SAFETY: the artifact ships inside the app bundle, signed with it.
    /// let model = unsafe { Model::from_precompiled(&engine, &bytes)? };
    /// # Ok::<(), fresco_runtime::Error>(())
    /// ```
    pub unsafe fn from_precompiled(engine: &Engine, bytes: &[u8]) -> Result<Self> {
        let origin = "<precompiled>";
        let span = tracing::info_span!("fresco.model.load_precompiled", model = tracing::field::Empty);
        let _enter = span.enter();
        let artifact = crate::precompiled::parse(bytes, origin)?;
        let label = format!("{}@{}", artifact.metadata.name, artifact.metadata.version);
        span.record("model", label.as_str());
        crate::precompiled::check(engine, &artifact, origin)?;
        // SAFETY: the caller vouches for the artifact's origin (this function's
        // contract); its target and compatibility key match this engine.
        let module = unsafe { wasmtime::Module::deserialize(&engine.inner.wasmtime, artifact.code) }.map_err(|e| {
            Error::Incompatible {
                origin: origin.to_owned(),
                why: crate::Incompatibility::Refused { reason: format!("{e:#}") },
            }
        })?;
        Self::ready(engine, module, artifact.metadata, label, artifact.module_sha256)
    }

    /// Checks a compiled module's exports and ABI version and makes its first instance.
    fn ready(
        engine: &Engine,
        module: wasmtime::Module,
        metadata: ModelMetadata,
        label: String,
        sha256: [u8; 32],
    ) -> Result<Self> {
        let inner = &engine.inner;
        validate::check_exports(&module, &label)?;

        let mut first = Instance::new(inner, &module, &label)?;
        let exported = first.abi_version(inner, &label)?;
        if exported != metadata.abi {
            return Err(Error::AbiMismatch { model: label, declared: metadata.abi, exported });
        }
        let pool = ArrayQueue::new(inner.pool_size);
        let _ = pool.push(first);
        tracing::debug!(inputs = metadata.inputs.len(), outputs = metadata.outputs.len(), "model loaded");
        Ok(Model { inner: Arc::new(ModelInner { engine: engine.clone(), module, metadata, label, sha256, pool }) })
    }

    /// The model's metadata.
    pub fn metadata(&self) -> &ModelMetadata {
        &self.inner.metadata
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.inner.metadata.name
    }

    /// The model's version.
    pub fn version(&self) -> &str {
        &self.inner.metadata.version
    }

    /// Number of `f64` values per input row.
    pub fn n_inputs(&self) -> usize {
        self.inner.metadata.inputs.len()
    }

    /// Number of `f64` values per output row.
    pub fn n_outputs(&self) -> usize {
        self.inner.metadata.outputs.len()
    }

    /// SHA-256 of the module's bytes.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.inner.sha256
    }

    /// Scores rows (row-major, `n_inputs` values each) and returns `n_outputs` values per
    /// row, row-major.
    pub fn predict(&self, rows: &[f64]) -> Result<Vec<f64>> {
        let n_rows = self.rows_in(rows)?;
        let mut out = vec![0.0; n_rows * self.n_outputs()];
        self.score(rows, n_rows, &mut out)?;
        Ok(out)
    }

    /// Scores rows into a caller-provided buffer of `rows * n_outputs` values. Once the
    /// instance's buffers are large enough, this allocates nothing.
    pub fn predict_into(&self, rows: &[f64], out: &mut [f64]) -> Result<()> {
        let n_rows = self.rows_in(rows)?;
        if out.len() != n_rows * self.n_outputs() {
            return Err(self.shape_error("output", out.len(), self.n_outputs(), n_rows));
        }
        self.score(rows, n_rows, out)
    }

    /// Scores exactly one row: the batch-1 fast path, with no allocation.
    pub fn predict_row(&self, row: &[f64], out: &mut [f64]) -> Result<()> {
        if row.len() != self.n_inputs() {
            return Err(self.shape_error("input", row.len(), self.n_inputs(), 1));
        }
        if out.len() != self.n_outputs() {
            return Err(self.shape_error("output", out.len(), self.n_outputs(), 1));
        }
        self.score(row, 1, out)
    }

    /// Scores a 2-D array of shape `(rows, n_inputs)`, returning `(rows, n_outputs)`.
    ///
    /// ```
    /// # let wasm = fresco_test_models::linear();
    /// # let model = fresco_runtime::Model::from_bytes(&fresco_runtime::Engine::new()?, &wasm)?;
    /// let x = ndarray::array![[1.0, 1.0], [2.0, 0.0]];
    /// let y = model.predict_array(x.view())?;
    /// assert_eq!(y, ndarray::array![[6.0], [5.0]]);
    /// # Ok::<(), fresco_runtime::Error>(())
    /// ```
    pub fn predict_array(&self, rows: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        let (n_rows, width) = rows.dim();
        if width != self.n_inputs() {
            return Err(self.shape_error("input", n_rows * width, self.n_inputs(), n_rows));
        }
        let mut out = Array2::zeros((n_rows, self.n_outputs()));
        let out_slice = out.as_slice_mut().unwrap_or_default();
        match rows.as_slice() {
            Some(contiguous) => self.score(contiguous, n_rows, out_slice)?,
            None => {
                let owned: Vec<f64> = rows.iter().copied().collect();
                self.score(&owned, n_rows, out_slice)?;
            }
        }
        Ok(out)
    }

    fn rows_in(&self, rows: &[f64]) -> Result<usize> {
        let width = self.n_inputs();
        if width == 0 {
            return Err(self.shape_error("input", rows.len(), width, 0));
        }
        if !rows.len().is_multiple_of(width) {
            return Err(self.shape_error("input", rows.len(), width, rows.len() / width));
        }
        Ok(rows.len() / width)
    }

    fn shape_error(&self, what: &'static str, len: usize, width: usize, rows: usize) -> Error {
        Error::Shape { model: self.inner.label.clone(), what, len, width, rows }
    }

    fn score(&self, rows: &[f64], n_rows: usize, out: &mut [f64]) -> Result<()> {
        if n_rows == 0 {
            return Ok(());
        }
        let inner = &*self.inner;
        let engine: &EngineInner = &inner.engine.inner;
        let mut instance = match inner.pool.pop() {
            Some(instance) => instance,
            None => Instance::new(engine, &inner.module, &inner.label)?,
        };
        let result = instance.score(engine, &inner.label, rows, n_rows, out);
        // An instance that trapped may hold inconsistent state: only clean returns (and
        // clean non-zero statuses) go back into the pool.
        if matches!(result, Ok(()) | Err(Error::ModelStatus { .. })) {
            let _ = inner.pool.push(instance);
        }
        result
    }
}

fn compile(engine: &EngineInner, bytes: &[u8], sha256: &[u8; 32], label: &str) -> Result<wasmtime::Module> {
    if let Some(cache) = &engine.cache
        && let Some(module) = cache.load(&engine.wasmtime, sha256)
    {
        tracing::debug!("compiled code loaded from cache");
        engine.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
        return Ok(module);
    }
    let module = wasmtime::Module::new(&engine.wasmtime, bytes)
        .map_err(|e| Error::Compile { model: label.to_owned(), reason: format!("{e:#}") })?;
    engine.counters.compilations.fetch_add(1, Ordering::Relaxed);
    if let Some(cache) = &engine.cache {
        cache.store(&module, sha256);
    }
    Ok(module)
}
