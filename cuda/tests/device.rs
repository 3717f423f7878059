//! On a machine without a CUDA driver, every entry point reports `DriverNotFound`; with
//! one, device 0 opens and describes itself. Set `FRESCO_EXPECT_GPU=1` to require a GPU.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fresco_cuda::{CudaError, Gpu};

#[test]
fn opens_a_device_or_reports_the_missing_driver() {
    let expect_gpu = std::env::var("FRESCO_EXPECT_GPU").is_ok_and(|v| v == "1");
    match Gpu::open(0) {
        Ok(gpu) => {
            assert!(fresco_cuda::driver_available());
            assert!(!gpu.name().is_empty());
            assert!(gpu.memory_bytes() > 0);
            let count = fresco_cuda::device_count().unwrap();
            assert!(matches!(Gpu::open(count), Err(CudaError::NoSuchDevice { .. })));
            println!("device 0: {} with {} MiB", gpu.name(), gpu.memory_bytes() >> 20);
        }
        Err(err) => {
            assert!(!expect_gpu, "FRESCO_EXPECT_GPU=1 but: {err}");
            assert!(matches!(err, CudaError::DriverNotFound { .. }), "{err}");
            assert!(!fresco_cuda::driver_available());
            assert!(matches!(fresco_cuda::device_count(), Err(CudaError::DriverNotFound { .. })));
            assert!(err.to_string().contains("libcuda"), "{err}");
        }
    }
}
