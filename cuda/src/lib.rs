//! fresco's NVIDIA GPU backend: tree ensembles scored in-process on the GPU.
//!
//! - [`Forest`]: an ensemble from `fresco-trees` in a flat device layout, with a CPU
//!   reference of the kernel's walk ([`Forest::predict`], equal to the native
//!   evaluator bit for bit);
//! - [`kernel_source`]: the CUDA kernel for one model, compiled at run time by NVRTC
//!   (the same text compiles as C, which is how it is tested without a GPU);
//! - [`GpuForest`]: the layout uploaded once, many rows per launch;
//! - [`Batcher`]: concurrent calls coalesced into one launch.
//!
//! The CUDA driver (`libcuda`) is loaded dynamically, so this crate builds and its tests
//! run on machines without a GPU or CUDA toolkit; opening a device there returns
//! [`CudaError::DriverNotFound`] instead of failing to link or panicking.
//!
//! ```
//! match fresco_cuda::Gpu::open(0) {
//!     Ok(gpu) => println!("scoring on {} ({} MiB)", gpu.name(), gpu.memory_bytes() >> 20),
//!     Err(fresco_cuda::CudaError::DriverNotFound { .. }) => println!("no GPU here: CPU backends only"),
//!     Err(other) => println!("GPU present but unusable: {other}"),
//! }
//! ```

mod batcher;
mod gpu_forest;
mod kernel;
mod layout;

use std::sync::Arc;

use cudarc::driver::CudaContext;

pub use batcher::{Batcher, BatcherStats};
pub use gpu_forest::{BY_TREE_BELOW, GpuForest, nvrtc_available};
pub use kernel::{BLOCK_THREADS, BY_TREE_KERNEL_NAME, BY_TREE_MAX_TREES, KERNEL_NAME, by_row_threads, kernel_source};
pub use layout::{Arrays, DeviceNode, Forest, LayoutError};

/// What can go wrong reaching the GPU.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CudaError {
    /// No CUDA driver library could be loaded.
    #[error("no CUDA driver found (tried {tried}); GPU scoring is unavailable on this machine")]
    DriverNotFound {
        /// The library names tried.
        tried: String,
    },
    /// The driver reported an error.
    #[error("CUDA {operation} failed: {reason}")]
    Driver {
        /// What was being done.
        operation: &'static str,
        /// The driver's message.
        reason: String,
    },
    /// The requested device does not exist.
    #[error("no CUDA device {ordinal}: this machine has {count}")]
    NoSuchDevice {
        /// Requested ordinal.
        ordinal: usize,
        /// Devices present.
        count: usize,
    },
    /// No NVRTC library (the run-time compiler the kernels need) could be loaded.
    #[error(
        "no NVRTC library found (tried libnvrtc.so, libnvrtc.so.12 and older names); kernels cannot be compiled \
         on this machine. CUDA 13 runtime packages ship only libnvrtc.so.13: a link to it named libnvrtc.so \
         on LD_LIBRARY_PATH makes it found"
    )]
    NvrtcNotFound,
    /// NVRTC refused the kernel.
    #[error("compiling the kernel failed: {reason}")]
    Compile {
        /// NVRTC's log.
        reason: String,
    },
    /// The ensemble does not fit the device layout.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// Rows that are not a whole number of rows.
    #[error("{values} values are not whole rows of {features} features")]
    Shape {
        /// Values given.
        values: usize,
        /// Features per row.
        features: usize,
    },
    /// A batch failed (the scorer's error, given to every caller in the batch).
    #[error("batched scoring failed: {reason}")]
    Batch {
        /// Why.
        reason: String,
    },
}

/// Whether a CUDA driver library can be loaded on this machine.
///
/// Probed with the platform loader before any cudarc call, because cudarc panics when
/// its lazily loaded library is missing.
pub fn driver_available() -> bool {
    find_driver().is_ok()
}

fn find_driver() -> Result<(), CudaError> {
    let candidates = cudarc::get_lib_name_candidates("cuda");
    for name in &candidates {
        // SAFETY: loading the system's CUDA driver runs its initialisers, which is what
        // every CUDA program does; the handle is dropped straight away.
        if unsafe { libloading::Library::new(name) }.is_ok() {
            return Ok(());
        }
    }
    Err(CudaError::DriverNotFound { tried: candidates.join(", ") })
}

pub(crate) fn driver_err(operation: &'static str) -> impl Fn(cudarc::driver::DriverError) -> CudaError {
    move |e| CudaError::Driver { operation, reason: e.to_string() }
}

/// Number of CUDA devices, or an error when there is no driver.
pub fn device_count() -> Result<usize, CudaError> {
    find_driver()?;
    let count = CudaContext::device_count().map_err(driver_err("device count"))?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// An opened GPU: a CUDA context on one device.
#[derive(Debug, Clone)]
pub struct Gpu {
    context: Arc<CudaContext>,
    ordinal: usize,
    name: String,
    memory_bytes: usize,
}

impl Gpu {
    /// Opens device `ordinal` (0 is the first GPU).
    pub fn open(ordinal: usize) -> Result<Self, CudaError> {
        let count = device_count()?;
        if ordinal >= count {
            return Err(CudaError::NoSuchDevice { ordinal, count });
        }
        let context = CudaContext::new(ordinal).map_err(driver_err("context creation"))?;
        let name = context.name().map_err(driver_err("device name query"))?;
        let memory_bytes = context.total_mem().map_err(driver_err("memory query"))?;
        tracing::info!(ordinal, name = %name, memory_bytes, "opened CUDA device");
        Ok(Gpu { context, ordinal, name, memory_bytes })
    }

    /// The device's name, e.g. `NVIDIA H100 80GB HBM3`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device ordinal.
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// Total device memory in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    /// The underlying cudarc context, for kernels launched by other fresco crates.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.context
    }
}
