//! Rows per second of tree-ensemble scoring: the GPU ([`GpuForest`]) beside the native
//! CPU evaluator and fresco's WebAssembly on one core, for synthetic 500 × 63 and
//! 2000 × 255 ensembles at batch 10,000 and 1,000,000. Checks the GPU's scores equal
//! the native evaluator's on the first 10,000 rows first. `cuda/check.sh` runs it.
//!
//! ```sh
//! cargo run --release -p fresco-cuda --example gpu_bench
//! ```
//!
//! Without a GPU it prints the CPU columns and says why the GPU one is empty (and
//! fails if `FRESCO_EXPECT_GPU=1`).

use std::time::Instant;

use fresco_cuda::{Forest, Gpu, GpuForest};
use fresco_test_models::synthetic::{SplitMix64, gbdt};

const FEATURES: usize = 30;
/// The CPU contenders are timed on at most this many rows (rows/s does not depend on
/// the batch size past a few thousand rows on one core).
const CPU_ROWS: usize = 10_000;

fn rows(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    (0..n * FEATURES).map(|_| if rng.below(50) == 0 { f64::NAN } else { rng.next_f64() }).collect()
}

fn rate(rows: usize, seconds: f64) -> String {
    format!("{:.3e}", rows as f64 / seconds)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let expect_gpu = std::env::var("FRESCO_EXPECT_GPU").is_ok_and(|v| v == "1");
    let gpu = match Gpu::open(0) {
        Ok(gpu) => Some(gpu),
        Err(e) if expect_gpu => return Err(e.into()),
        Err(e) => {
            println!("GPU: unavailable ({e}); CPU columns only");
            None
        }
    };
    if let Some(gpu) = &gpu {
        println!("GPU: {} ({} MiB)", gpu.name(), gpu.memory_bytes() >> 20);
    }
    println!("| model | batch | native CPU rows/s | wasm 1 core rows/s | GPU rows/s | GPU / wasm |");
    println!("|---|---|---|---|---|---|");
    for (trees, leaves) in [(500, 63), (2000, 255)] {
        let ensemble = gbdt(trees, leaves, FEATURES, 42);
        let forest = Forest::new(&ensemble)?;
        let wasm = fresco_compiler::Compiler::new("bench", "1").add_ensemble(ensemble.clone())?.compile()?;
        let engine = fresco_runtime::Engine::new()?;
        let model = fresco_runtime::Model::from_bytes(&engine, wasm)?;
        let scorer = match &gpu {
            Some(gpu) => Some(GpuForest::new(gpu, forest.clone())?),
            None => None,
        };
        for batch in [10_000, 1_000_000] {
            let input = rows(batch, batch as u64);
            let cpu_rows = batch.min(CPU_ROWS);
            let cpu_input = &input[..cpu_rows * FEATURES];
            let t = Instant::now();
            let native = ensemble.predict(cpu_input);
            let native_rate = rate(cpu_rows, t.elapsed().as_secs_f64());
            let t = Instant::now();
            // In calls of 1,000 rows: each stays inside the runtime's per-call deadline.
            let mut scored = Vec::with_capacity(native.len());
            for chunk in cpu_input.chunks(1_000 * FEATURES) {
                scored.extend(model.predict(chunk)?);
            }
            let wasm_secs = t.elapsed().as_secs_f64();
            if scored.iter().zip(&native).any(|(a, b)| a.to_bits() != b.to_bits()) {
                return Err("WebAssembly scores differ from the native evaluator".into());
            }
            let (gpu_rate, ratio) = match &scorer {
                Some(scorer) => {
                    let check = &input[..batch.min(10_000) * FEATURES];
                    let got = scorer.predict(check)?;
                    if got.iter().zip(&ensemble.predict(check)).any(|(a, b)| a.to_bits() != b.to_bits()) {
                        return Err("GPU scores differ from the native evaluator".into());
                    }
                    // Best of three: transfers in and out included.
                    let secs = (0..3)
                        .map(|_| {
                            let t = Instant::now();
                            scorer.predict(&input).map(|_| t.elapsed().as_secs_f64())
                        })
                        .collect::<Result<Vec<_>, _>>()?
                        .into_iter()
                        .fold(f64::INFINITY, f64::min);
                    let wasm_rate = cpu_rows as f64 / wasm_secs;
                    (rate(batch, secs), format!("{:.1}×", batch as f64 / secs / wasm_rate))
                }
                None => ("-".into(), "-".into()),
            };
            println!(
                "| {trees} × {leaves} | {batch} | {native_rate} | {} | {gpu_rate} | {ratio} |",
                rate(cpu_rows, wasm_secs)
            );
        }
    }
    Ok(())
}
