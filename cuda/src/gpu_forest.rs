//! [`GpuForest`]: a tree ensemble scored on the GPU: a thread per row for large
//! batches, a block per row (its trees walked side by side) for small ones.

use std::sync::{Arc, Mutex, PoisonError};

use cudarc::driver::{CudaFunction, CudaSlice, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};

use crate::kernel::{
    BLOCK_THREADS, BY_TREE_KERNEL_NAME, BY_TREE_MAX_TREES, KERNEL_NAME, by_row_threads, kernel_source,
};
use crate::layout::{DeviceNode, Forest};
use crate::{CudaError, Gpu, driver_err};

/// Rows per launch: bounds the device memory one call takes (rows and scores).
const LAUNCH_ROWS: usize = 1 << 22;

/// Batches of fewer rows than this walk each row's trees side by side by default
/// ([`GpuForest::by_tree_below`]). Measured on an H200 (`cuda/examples/gpu_bench.rs`):
/// a row's trees side by side were 2.2× faster at 16,384 rows and 0.7–0.8× at 65,536.
pub const BY_TREE_BELOW: usize = 32_768;

/// The layout's arrays on the device.
struct DeviceForest {
    nodes: CudaSlice<DeviceNode>,
    cat_words: CudaSlice<u32>,
    tree_root: CudaSlice<u32>,
    tree_group: CudaSlice<u32>,
    base_score: CudaSlice<f64>,
}

/// Device buffers kept from one call to the next, so that a call does not allocate,
/// zero and free its rows' and scores' buffers (driver calls that a small batch's
/// launch would otherwise wait behind). They grow to the largest launch seen (at most
/// [`LAUNCH_ROWS`] rows) and are freed with the forest.
#[derive(Default)]
struct Scratch {
    rows: Option<CudaSlice<f64>>,
    scores: Option<CudaSlice<f64>>,
}

/// `slot`'s buffer if it holds `len` values, else a new one in its place (the old one is
/// freed first, so growing never needs both on the device).
fn room<'a>(
    stream: &Arc<CudaStream>,
    slot: &'a mut Option<CudaSlice<f64>>,
    len: usize,
) -> Result<&'a mut CudaSlice<f64>, CudaError> {
    let len = len.max(1);
    let buffer = match slot.take() {
        Some(buffer) if buffer.len() >= len => buffer,
        old => {
            drop(old);
            stream.alloc_zeros::<f64>(len).map_err(driver_err("alloc"))?
        }
    };
    Ok(slot.insert(buffer))
}

/// Whether NVRTC (the run-time CUDA compiler) can be loaded. Probed before any NVRTC
/// call, because cudarc panics when the library is missing.
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to open the shared library by its known names.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// A tree ensemble on one GPU: its layout uploaded once and its kernel compiled for it.
/// It keeps the device buffers of its largest batch so far for the next call; calls on
/// one `GpuForest` run one after another.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let text = std::fs::read_to_string("model.txt")?;
/// let forest = fresco_cuda::Forest::new(&fresco_trees::lightgbm::parse(&text)?)?;
/// let gpu = fresco_cuda::Gpu::open(0)?;
/// let scorer = fresco_cuda::GpuForest::new(&gpu, forest)?;
/// let rows = vec![0.0; 1_000_000 * scorer.forest().n_features()];
/// let scores = scorer.predict(&rows)?;
/// # Ok(()) }
/// ```
pub struct GpuForest {
    forest: Forest,
    stream: Arc<CudaStream>,
    function: CudaFunction,
    /// The block-per-row kernel, where the model has few enough trees for it.
    by_tree: Option<CudaFunction>,
    by_tree_below: usize,
    device: DeviceForest,
    /// Held for a whole call: calls on one forest run one after another on its stream.
    scratch: Mutex<Scratch>,
}

impl std::fmt::Debug for GpuForest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuForest").field("trees", &self.forest.n_trees()).finish_non_exhaustive()
    }
}

/// Uploads `data`; an empty array becomes one zero (the driver refuses empty buffers).
fn upload<T: DeviceRepr + Copy + Default>(stream: &Arc<CudaStream>, data: &[T]) -> Result<CudaSlice<T>, CudaError> {
    let padded;
    let data = if data.is_empty() {
        padded = [T::default()];
        &padded[..]
    } else {
        data
    };
    stream.clone_htod(data).map_err(driver_err("upload"))
}

impl GpuForest {
    /// Compiles the kernel for `forest` (NVRTC) and uploads its layout to `gpu`.
    pub fn new(gpu: &Gpu, forest: Forest) -> Result<Self, CudaError> {
        if !nvrtc_available() {
            return Err(CudaError::NvrtcNotFound);
        }
        let options = CompileOptions {
            // Exact IEEE arithmetic: the scores must equal the CPU's bit for bit.
            fmad: Some(false),
            ftz: Some(false),
            prec_div: Some(true),
            prec_sqrt: Some(true),
            use_fast_math: Some(false),
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(kernel_source(&forest), options)
            .map_err(|e| CudaError::Compile { reason: e.to_string() })?;
        let context = gpu.context();
        let module = context.load_module(ptx).map_err(driver_err("module load"))?;
        let function = module.load_function(KERNEL_NAME).map_err(driver_err("kernel lookup"))?;
        let by_tree = if (1..=BY_TREE_MAX_TREES).contains(&forest.n_trees()) {
            Some(module.load_function(BY_TREE_KERNEL_NAME).map_err(driver_err("kernel lookup"))?)
        } else {
            None
        };
        let stream = context.default_stream();
        let device = DeviceForest {
            nodes: upload(&stream, &forest.nodes)?,
            cat_words: upload(&stream, &forest.cat_words)?,
            tree_root: upload(&stream, &forest.tree_root)?,
            tree_group: upload(&stream, &forest.tree_group)?,
            base_score: upload(&stream, &forest.base_score)?,
        };
        tracing::info!(
            trees = forest.n_trees(),
            nodes = forest.n_nodes(),
            bytes = forest.device_bytes(),
            "forest on the GPU"
        );
        Ok(GpuForest {
            forest,
            stream,
            function,
            by_tree,
            by_tree_below: BY_TREE_BELOW,
            device,
            scratch: Mutex::new(Scratch::default()),
        })
    }

    /// Batches of fewer than `rows` rows are scored a block per row, the row's trees
    /// walked side by side and their leaves added in tree order (the same sums, bit for
    /// bit); larger ones a thread per row. A thread per row needs tens of thousands of
    /// rows to fill a GPU, and a small batch waits for one thread to walk every tree in
    /// turn. `0` always scores a thread per row; the default is [`BY_TREE_BELOW`].
    /// Models of more than [`BY_TREE_MAX_TREES`](crate::BY_TREE_MAX_TREES) trees always score a thread per row.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let forest: fresco_cuda::Forest = unimplemented!();
    /// let gpu = fresco_cuda::Gpu::open(0)?;
    /// let scorer = fresco_cuda::GpuForest::new(&gpu, forest)?.by_tree_below(4096);
    /// # Ok(()) }
    /// ```
    pub fn by_tree_below(mut self, rows: usize) -> Self {
        self.by_tree_below = rows;
        self
    }

    /// The layout scored.
    pub fn forest(&self) -> &Forest {
        &self.forest
    }

    /// Raw scores (base score plus leaves) of `rows`, computed on the GPU.
    pub fn raw_scores(&self, rows: &[f64]) -> Result<Vec<f64>, CudaError> {
        let n_in = self.forest.n_features().max(1);
        if !rows.len().is_multiple_of(n_in) {
            return Err(CudaError::Shape { values: rows.len(), features: n_in });
        }
        let groups = self.forest.n_groups();
        let mut scores = vec![0.0; rows.len() / n_in * groups];
        let mut scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
        let Scratch { rows: rows_slot, scores: scores_slot } = &mut *scratch;
        for (chunk, out) in rows.chunks(LAUNCH_ROWS * n_in).zip(scores.chunks_mut((LAUNCH_ROWS * groups).max(1))) {
            let n_rows = chunk.len() / n_in;
            let d_rows = room(&self.stream, rows_slot, chunk.len())?;
            if !chunk.is_empty() {
                self.stream.memcpy_htod(chunk, &mut d_rows.slice_mut(..chunk.len())).map_err(driver_err("upload"))?;
            }
            let d_out = room(&self.stream, scores_slot, out.len())?;
            let (function, threads, rows_per_block) = match (&self.by_tree, by_row_threads(self.forest.n_features())) {
                (Some(by_tree), _) if n_rows < self.by_tree_below => (by_tree, BLOCK_THREADS, 1),
                // The kernel stages `staged` rows a block (kernel.rs, STAGED_ROWS).
                (_, staged) if staged > 0 => (&self.function, staged, staged as usize),
                _ => (&self.function, BLOCK_THREADS, BLOCK_THREADS as usize),
            };
            let blocks = u32::try_from(n_rows.div_ceil(rows_per_block))
                .map_err(|_| CudaError::Shape { values: rows.len(), features: n_in })?;
            let config =
                LaunchConfig { grid_dim: (blocks.max(1), 1, 1), block_dim: (threads, 1, 1), shared_mem_bytes: 0 };
            let n = n_rows as u64;
            let d = &self.device;
            let mut launch = self.stream.launch_builder(function);
            launch
                .arg(&d.nodes)
                .arg(&d.cat_words)
                .arg(&d.tree_root)
                .arg(&d.tree_group)
                .arg(&d.base_score)
                .arg(&*d_rows)
                .arg(&n)
                .arg(&mut *d_out);
            // SAFETY: the arguments match both kernels' signature in order and type
            // (kernel.rs), the rows' buffer holds `n` rows and the scores' `n` rows of
            // groups (both may be longer: the kernel reads and writes only `n` rows),
            // and the grid covers `n` rows at the kernel's rows per block.
            unsafe { launch.launch(config) }.map_err(driver_err("kernel launch"))?;
            if !out.is_empty() {
                self.stream.memcpy_dtoh(&d_out.slice(..out.len()), out).map_err(driver_err("download"))?;
            }
        }
        Ok(scores)
    }

    /// Scores `rows` on the GPU: `n_outputs` values per row, equal to the native
    /// evaluator's (the transform runs on the host, with the native code).
    pub fn predict(&self, rows: &[f64]) -> Result<Vec<f64>, CudaError> {
        let mut raw = self.raw_scores(rows)?;
        Ok(self.forest.finish(&mut raw))
    }
}
