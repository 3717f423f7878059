//! Prediction-log throughput: rows logged per second, 30 features, spool on, until the
//! last row is published as Parquet (`flush`). Rows arrive as the `Client` hands them
//! over: one [`PredictionBatch`] per append, built before the clock starts. Run it
//! pinned to one core to measure what one core sustains:
//!
//! ```sh
//! taskset -c 0 cargo bench -p fresco-benches --bench log
//! ```
//!
//! Arguments pick configurations, for profiling one: `buffered`, `fsync`, and rows per
//! append (`-- buffered 1024`). `FRESCO_LOG_ROWS` sets the rows logged (400,000 by
//! default, about two spool segments; more measures a log that has been busy a while).
//! The inputs are multiples of 0.25 (few significant bits, as counts and rounded values
//! have) unless `FRESCO_LOG_VALUES=random` (uniform in [0, 100): every mantissa bit
//! random, which Snappy cannot shrink); `FRESCO_LOG_FLOATS=split` writes f64 columns as
//! `BYTE_STREAM_SPLIT` ([`FloatEncoding`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use fresco::abi::InputType;
use fresco::{
    FloatEncoding, LogConfig, LogSchema, PredictionBatch, PredictionLog, PredictionRecord, PredictionSink,
    SpoolDurability, Timestamp,
};
use fresco_test_models::synthetic::SplitMix64;

const DEFAULT_ROWS: usize = 400_000;
const FEATURES: usize = 30;

/// Input `f` of row `i`: a multiple of 0.25, or with `random` uniform in [0, 100)
/// (SplitMix64 of the pair).
fn input(i: usize, f: usize, random: bool) -> f64 {
    if !random {
        return (i * 31 + f) as f64 * 0.25;
    }
    SplitMix64::new((i * 31 + f) as u64).next_f64() * 100.0
}

fn record(i: usize, random: bool) -> PredictionRecord {
    PredictionRecord {
        prediction_id: format!("0193a5c2-{:04x}-7000-8000-{:012x}", i % 65536, i),
        ts: Timestamp::from_micros(1_764_201_600_000_000 + i as i64),
        model: "eta".into(),
        model_version: "3".into(),
        entities: vec![("restaurant_id".into(), format!("r-{}", i % 5000))],
        inputs: (0..FEATURES).map(|f| input(i, f, random)).collect(),
        outputs: vec![4.0, 6.0, 8.0],
        holdout: Some("eta-holdout".into()),
        in_holdout: i.is_multiple_of(20),
        eligible: !i.is_multiple_of(20),
        flag_variant: None,
        latency_us: 21,
    }
}

fn main() {
    let schema = Arc::new(LogSchema {
        model: "eta".into(),
        version: "3".into(),
        entities: vec!["restaurant_id".into()],
        inputs: (0..FEATURES).map(|f| (format!("f{f}"), InputType::F64)).collect(),
        outputs: vec!["q10".into(), "q50".into(), "q90".into()],
    });
    let rows: usize = std::env::var("FRESCO_LOG_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_ROWS);
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let picked = |words: &[String]| args.iter().all(|a| words.iter().any(|w| w.eq_ignore_ascii_case(a)));
    let random = std::env::var("FRESCO_LOG_VALUES").is_ok_and(|v| v == "random");
    let floats = match std::env::var("FRESCO_LOG_FLOATS").as_deref() {
        Ok("split") => FloatEncoding::ByteStreamSplit,
        _ => FloatEncoding::Plain,
    };
    let values = if random { "random" } else { "multiples of 0.25" };
    println!(
        "prediction log, {rows} rows of {FEATURES} features ({values}, {floats:?}), spool on, append through publish:"
    );
    for durability in [SpoolDurability::Fsync, SpoolDurability::Buffered] {
        for batch in [1usize, 64, 1024] {
            if batch == 1 && durability == SpoolDurability::Fsync {
                // One fsync per row from one thread measures the disk, not fresco.
                continue;
            }
            if !picked(&[format!("{durability:?}"), batch.to_string()]) {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let log =
                PredictionLog::open(LogConfig::new(dir.path()).durability(durability).float_encoding(floats)).unwrap();
            let batches: Vec<PredictionBatch> = (0..rows)
                .collect::<Vec<_>>()
                .chunks(batch)
                .map(|c| {
                    let records: Vec<PredictionRecord> = c.iter().map(|&i| record(i, random)).collect();
                    PredictionBatch::from_records(schema.clone(), &records).unwrap()
                })
                .collect();
            let started = Instant::now();
            for b in batches {
                log.append_batch(b).unwrap();
            }
            let appended = started.elapsed();
            log.flush().unwrap();
            let total = started.elapsed();
            let bytes: u64 = walk(dir.path()).iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).sum();
            println!(
                "  {durability:?}, {batch:>4} rows per append: {:>9.0} rows/s appended, {:>9.0} rows/s published ({:.1} MB of Parquet)",
                rows as f64 / appended.as_secs_f64(),
                rows as f64 / total.as_secs_f64(),
                bytes as f64 / 1e6
            );
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|e| e == "parquet") {
            out.push(p);
        }
    }
    out
}
