//! Rows per second of tree-ensemble scoring: the GPU ([`GpuForest`]) beside the native
//! CPU evaluator and fresco's WebAssembly on one core, for synthetic 500 × 63 and
//! 2000 × 255 ensembles at batch 10,000 and 1,000,000. Checks the GPU's scores equal
//! the native evaluator's on the first 10,000 rows first. Then single-row calls, as a
//! service makes them: 64 threads through a [`Batcher`] on the GPU beside one thread per
//! CPU calling the WebAssembly model, calls/s and latency percentiles for each.
//! Before that, one call's time at batches of 1 to 16,384 rows with each walk (a row's
//! trees side by side, a thread per row), which is where [`fresco_cuda::BY_TREE_BELOW`]
//! comes from. `cuda/check.sh` runs it.
//!
//! ```sh
//! cargo run --release -p fresco-cuda --example gpu_bench
//! ```
//!
//! Without a GPU it prints the CPU columns and says why the GPU one is empty (and
//! fails if `FRESCO_EXPECT_GPU=1`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use fresco_cuda::{Batcher, Forest, Gpu, GpuForest};
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
    if let Some(gpu) = &gpu {
        small_batches(gpu)?;
        single_rows(gpu)?;
    }
    Ok(())
}

/// One call's time at small batches, a row's trees side by side against a thread per
/// row (the median of 21 calls, of 7 from 65,536 rows; transfers included).
fn small_batches(gpu: &Gpu) -> Result<(), Box<dyn std::error::Error>> {
    println!();
    println!("Each walk by batch size, median call time:");
    println!("| model | batch | by tree | by row | by row / by tree |");
    println!("|---|---|---|---|---|");
    for (trees, leaves) in [(500, 63), (2000, 255)] {
        let forest = Forest::new(&gbdt(trees, leaves, FEATURES, 42))?;
        let by_tree = GpuForest::new(gpu, forest.clone())?.by_tree_below(usize::MAX);
        let by_row = GpuForest::new(gpu, forest)?.by_tree_below(0);
        for batch in [1, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576] {
            let input = rows(batch, 7);
            let median = |scorer: &GpuForest| -> Result<Duration, fresco_cuda::CudaError> {
                let mut times = (0..if batch < 65536 { 21 } else { 7 })
                    .map(|_| {
                        let t = Instant::now();
                        scorer.raw_scores(&input).map(|_| t.elapsed())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                times.sort_unstable();
                Ok(times[times.len() / 2])
            };
            let (tree_time, row_time) = (median(&by_tree)?, median(&by_row)?);
            if by_tree.raw_scores(&input)? != by_row.raw_scores(&input)? {
                return Err("the two walks disagree".into());
            }
            let ratio = row_time.as_secs_f64() / tree_time.as_secs_f64();
            println!("| {trees} × {leaves} | {batch} | {tree_time:?} | {row_time:?} | {ratio:.1}× |");
        }
    }
    Ok(())
}

/// How long each single-row contender runs.
const SINGLE_ROW_SECONDS: f64 = 2.0;

/// Calls per second and latency percentiles of `threads` threads each calling `call`
/// with one row of its own until [`SINGLE_ROW_SECONDS`] have passed.
fn single_row_calls<F>(threads: usize, call: F) -> Result<(f64, Duration, Duration), String>
where
    F: Fn(Vec<f64>) -> Result<Vec<f64>, String> + Send + Sync + 'static,
{
    let call = Arc::new(call);
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let call = call.clone();
            std::thread::spawn(move || -> Result<Vec<Duration>, String> {
                let input = rows(1_000, t as u64 + 1);
                let mut latencies = Vec::new();
                let mut i = 0;
                while started.elapsed().as_secs_f64() < SINGLE_ROW_SECONDS {
                    let row = input[(i % 1_000) * FEATURES..][..FEATURES].to_vec();
                    let t = Instant::now();
                    call(row)?;
                    latencies.push(t.elapsed());
                    i += 1;
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.join().map_err(|_| "a caller thread panicked".to_string())??);
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let at = |q: f64| all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1))).copied();
    match (at(0.5), at(0.99)) {
        (Some(p50), Some(p99)) => Ok((all.len() as f64 / seconds, p50, p99)),
        _ => Err("no call finished".into()),
    }
}

/// Single-row calls on the 500 × 63 model: GPU through a batcher, WebAssembly on every core.
fn single_rows(gpu: &Gpu) -> Result<(), Box<dyn std::error::Error>> {
    let ensemble = gbdt(500, 63, FEATURES, 42);
    let scorer = GpuForest::new(gpu, Forest::new(&ensemble)?)?;
    let wasm = fresco_compiler::Compiler::new("bench", "1").add_ensemble(ensemble)?.compile()?;
    let model = Arc::new(fresco_runtime::Model::from_bytes(&fresco_runtime::Engine::new()?, wasm)?);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!();
    println!("Single-row calls, 500 × 63, {SINGLE_ROW_SECONDS} s each:");
    println!("| contender | callers | calls/s | p50 | p99 | rows per launch |");
    println!("|---|---|---|---|---|---|");
    let scorer = Arc::new(scorer);
    let by_row = Arc::new(GpuForest::new(gpu, scorer.forest().clone())?.by_tree_below(0));
    for (walk, scorer) in [("by tree", scorer), ("by row", by_row)] {
        for max_wait in [Duration::from_micros(100), Duration::from_micros(500)] {
            let gpu_scorer = scorer.clone();
            let batcher =
                Arc::new(Batcher::new(FEATURES, 1, 65_536, max_wait, move |rows: &[f64]| gpu_scorer.predict(rows)));
            let caller = batcher.clone();
            let (rate, p50, p99) = single_row_calls(64, move |row| caller.predict(row).map_err(|e| e.to_string()))?;
            let stats = batcher.stats();
            let launches = stats.batches.load(std::sync::atomic::Ordering::Relaxed).max(1);
            let per_launch = stats.rows.load(std::sync::atomic::Ordering::Relaxed) as f64 / launches as f64;
            println!(
                "| GPU {walk}, batcher max wait {max_wait:?} | 64 | {rate:.3e} | {p50:?} | {p99:?} | {per_launch:.1} |"
            );
        }
    }
    let caller = model.clone();
    let (rate, p50, p99) = single_row_calls(cores, move |row| caller.predict(&row).map_err(|e| e.to_string()))?;
    println!("| WebAssembly, a thread per CPU | {cores} | {rate:.3e} | {p50:?} | {p99:?} | 1 |");
    Ok(())
}
