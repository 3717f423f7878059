#![no_main]
//! Fuzzes model metadata as a module's custom section carries it: anything that parses
//! must give an interval rule that applies to a row, and training statistics that the
//! drift rules can judge live values against, without panicking.

use fresco::interval::IntervalRule;
use fresco_abi::ModelMetadata;
use fresco_drift::{MonitorConfig, MonitoredColumn};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(meta) = ModelMetadata::from_json(data) else { return };
    // A row of the training statistics' own values, so bins and categories are hit.
    let probe: Vec<f64> = meta
        .training_stats
        .iter()
        .flat_map(|s| s.inputs.values().chain(s.outputs.values()))
        .flat_map(|s| s.bin_edges.iter().chain(&s.sample).copied())
        .chain([0.0, -1.0, f64::NAN, f64::INFINITY, 1e300])
        .take(64)
        .collect();
    if let Ok(Some(rule)) = IntervalRule::for_model(&meta) {
        let inputs: Vec<f64> = (0..meta.inputs.len()).map(|i| probe[i % probe.len()]).collect();
        let outputs: Vec<f64> = (0..meta.outputs.len()).map(|i| probe[(i + 1) % probe.len()]).collect();
        let _ = rule.apply(&inputs, &outputs);
    }
    let Some(stats) = &meta.training_stats else { return };
    let config = MonitorConfig { min_rows: 1, ..MonitorConfig::default() };
    for input in &meta.inputs {
        if let Some(s) = stats.inputs.get(&input.name) {
            let column = MonitoredColumn::input(input, s.clone());
            let _ = column.judge(&column.count(&probe, 1_000), &config);
        }
    }
    for output in &meta.outputs {
        if let Some(s) = stats.outputs.get(output) {
            let column = MonitoredColumn::output(output, s.clone());
            let _ = column.judge(&column.count(&probe, 1_000), &config);
        }
    }
});
