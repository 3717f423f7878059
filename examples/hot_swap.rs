//! Hot swap under load: 4 threads predict batch-1 without pause with the ETA median
//! booster (LightGBM, compiled on load from a registry), first steadily, then while its
//! versions are deployed and rolled back 100 times. Prints the latency percentiles of
//! both phases, their ratio, and the failed calls (there must be none). Every call is
//! logged to the Parquet prediction log.
//!
//! ```sh
//! cargo run -p fresco-examples --example hot_swap
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fresco::registry::{ArtifactKind, Registry};
use fresco::{Client, LogConfig, ModelConfig, PredictionLog, Request, SpoolDurability};

const THREADS: usize = 4;
const SWAPS: usize = 100;

/// Latencies of every call made while `busy` runs, over all threads, sorted (µs).
fn measure(client: &Client, inputs: &[String], busy: impl FnOnce()) -> Result<(Vec<f64>, usize), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (client, stop, inputs) = (client.clone(), stop.clone(), inputs.to_vec());
            std::thread::spawn(move || {
                let (mut micros, mut failed) = (Vec::new(), 0usize);
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    // Varied rows; `weather` is categorical (codes 0, 1, 2).
                    let request = inputs.iter().enumerate().fold(Request::new(), |r, (k, name)| {
                        let x = if name == "weather" { (i % 3) as f64 } else { ((i * 7 + k * 13) % 97) as f64 / 10.0 };
                        r.value(name.as_str(), x)
                    });
                    let started = Instant::now();
                    match client.predict("eta_q50", &request) {
                        Ok(p) => {
                            std::hint::black_box(p);
                        }
                        Err(_) => failed += 1,
                    }
                    micros.push(started.elapsed().as_secs_f64() * 1e6);
                    i += THREADS;
                }
                (micros, failed)
            })
        })
        .collect();
    busy();
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut failed = 0;
    for w in workers {
        let (micros, f) = w.join().map_err(|_| "a worker panicked".to_owned())?;
        all.extend(micros);
        failed += f;
    }
    all.sort_by(f64::total_cmp);
    Ok((all, failed))
}

fn at(sorted: &[f64], q: f64) -> f64 {
    sorted.get(((sorted.len().saturating_sub(1)) as f64 * q).round() as usize).copied().unwrap_or(f64::NAN)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // What an application does to export the SDK's metrics (here rendered, not served).
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let prometheus = recorder.handle();
    metrics::set_global_recorder(recorder)?;
    let booster = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../wasm-models/eta/model/eta_q50.txt"))?;
    let dir = std::env::temp_dir().join(format!("fresco-hot-swap-{}", std::process::id()));
    let registry = Registry::open(&dir)?;
    for v in ["1", "2", "3"] {
        registry.publish("eta_q50", v, ArtifactKind::LightGbm, &booster, None)?;
    }
    registry.deploy("eta_q50", "1")?;
    let client = Client::builder()
        .model(ModelConfig::from_registry(&registry, "eta_q50"))
        // The durable Parquet log, as in production (spooled, not fsynced per call).
        .log_to(PredictionLog::open(LogConfig::new(dir.join("logs")).durability(SpoolDurability::Buffered))?)
        .build()?;
    // Compile every version once, so the swaps below measure swapping, not compiling.
    for v in ["2", "3", "1"] {
        client.deploy("eta_q50", v)?;
    }
    let inputs: Vec<String> = client.metadata("eta_q50")?.inputs.iter().map(|i| i.name.clone()).collect();

    let (steady, steady_failed) = measure(&client, &inputs, || std::thread::sleep(Duration::from_secs(2)))?;
    let swap_client = client.clone();
    let mut swap_errors = 0;
    let (swapping, swap_failed) = measure(&client, &inputs, || {
        for k in 0..SWAPS {
            let done = if k % 4 == 3 {
                swap_client.rollback("eta_q50").map(drop)
            } else {
                swap_client.deploy("eta_q50", ["1", "2", "3"][k % 3])
            };
            swap_errors += usize::from(done.is_err());
            std::thread::sleep(Duration::from_millis(20));
        }
    })?;

    for (phase, l, failed) in [("steady", &steady, steady_failed), ("swapping", &swapping, swap_failed)] {
        println!(
            "{phase:9} calls {:>8}  p50 {:>7.1} µs  p99 {:>7.1} µs  max {:>8.1} µs  failed {failed}",
            l.len(),
            at(l, 0.5),
            at(l, 0.99),
            at(l, 1.0)
        );
    }
    println!(
        "swaps {} (refused {}), p99 during swaps / steady: {:.2}x",
        client.stats().swaps,
        swap_errors,
        at(&swapping, 0.99) / at(&steady, 0.99)
    );
    for line in prometheus.render().lines().filter(|l| l.starts_with("fresco_") && !l.contains("quantile=")) {
        println!("{line}");
    }
    drop((client, swap_client));
    let _ = std::fs::remove_dir_all(&dir);
    if steady_failed + swap_failed + swap_errors > 0 {
        return Err("calls or swaps failed".into());
    }
    Ok(())
}
