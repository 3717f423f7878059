//! Tree models registered for the GPU (feature `cuda`): on a machine without one they
//! fall back to the CPU when told to, and fail with the GPU's typed error otherwise; on a
//! GPU machine they score there, equal to the native evaluator.

#![cfg(feature = "cuda")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fresco::model::{GpuFallback, GpuTrees};
use fresco::{Client, Error, MemorySink, ModelConfig, ModelSource, Request};

const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../wasm-models/oracle/fixtures/lgb_regression.model.txt");

fn build(fallback: GpuFallback) -> Result<Client, Error> {
    let compiler = fresco_compiler::Compiler::new("reg", "1").add_file(MODEL, None).unwrap();
    Client::builder()
        .model(ModelConfig::new(ModelSource::Gpu(GpuTrees::new(compiler, 0, fallback))))
        .log_to(MemorySink::new())
        .build()
}

#[test]
fn gpu_trees_score_like_the_native_evaluator_or_fall_back_as_configured() {
    let client = build(GpuFallback::Cpu).unwrap();
    let ensemble = fresco_trees::lightgbm::parse(&std::fs::read_to_string(MODEL).unwrap()).unwrap();
    let names: Vec<String> = client.metadata("reg").unwrap().inputs.iter().map(|i| i.name.clone()).collect();
    for k in 0..20 {
        let row: Vec<f64> = (0..names.len()).map(|i| ((k * 7 + i * 3) % 11) as f64 / 4.0 - 1.0).collect();
        let request = names.iter().zip(&row).fold(Request::new(), |r, (n, &v)| r.value(n.as_str(), v));
        let p = client.predict("reg", &request).unwrap();
        let (_, score) = p.outputs().next().unwrap();
        assert_eq!(score.to_bits(), ensemble.predict(&row)[0].to_bits());
    }
    if fresco_cuda::driver_available() {
        assert!(build(GpuFallback::Fail).is_ok());
    } else {
        let err = build(GpuFallback::Fail).unwrap_err();
        assert!(err.to_string().contains("no CUDA driver found"), "{err}");
    }
}
