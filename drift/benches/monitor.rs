//! The monitor's cost per prediction: one row of 30 inputs and 2 outputs recorded into
//! a 5-minute and a 1-hour window (what `Client::predict` adds when monitoring is on).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use fresco_abi::{InputSpec, ModelKind, ModelMetadata, StatsKind, TrainingStats};
use fresco_drift::{Monitor, MonitorConfig, profile};
use fresco_test_models::synthetic::SplitMix64;

const INPUTS: usize = 30;

fn main() {
    let mut rng = SplitMix64::new(5);
    let mut stats = TrainingStats::default();
    let mut inputs = Vec::new();
    for i in 0..INPUTS {
        let column: Vec<f64> = (0..20_000).map(|_| rng.next_f64()).collect();
        stats.inputs.insert(format!("f{i}"), profile(&column, StatsKind::Numeric, 20));
        inputs.push(InputSpec::f64(format!("f{i}")));
    }
    for o in ["p", "q"] {
        let column: Vec<f64> = (0..20_000).map(|_| rng.next_f64()).collect();
        stats.outputs.insert(o.into(), profile(&column, StatsKind::Numeric, 20));
    }
    let mut meta =
        ModelMetadata::new("m", "1", ModelKind::Gbdt).with_inputs(inputs).with_outputs(vec!["p".into(), "q".into()]);
    meta.training_stats = Some(stats);
    let rows: Vec<f64> = (0..4096 * INPUTS).map(|_| rng.next_f64()).collect();
    let outputs: Vec<f64> = (0..4096 * 2).map(|_| rng.next_f64()).collect();

    let mut c = Criterion::default().configure_from_args();
    for (name, windows) in [
        ("monitor/observe_30_inputs_2_windows", vec![Duration::from_secs(300), Duration::from_secs(3600)]),
        ("monitor/observe_30_inputs_1_window", vec![Duration::from_secs(300)]),
    ] {
        let monitor = Monitor::new(&meta, MonitorConfig { windows, ..MonitorConfig::default() }).unwrap();
        let (mut i, mut t) = (0usize, 0i64);
        c.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % 4096;
                // 100 rows a second: windows close (and are judged) as in production.
                t += 10_000;
                monitor.observe(
                    t,
                    black_box(&rows[i * INPUTS..(i + 1) * INPUTS]),
                    black_box(&outputs[i * 2..i * 2 + 2]),
                );
            })
        });
    }
    c.final_summary();
}
