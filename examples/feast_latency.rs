//! Latency of single-entity fetches through a [`FeastStore`] from a running feature
//! server; `feast/bench/compare.py` runs it beside Feast's own Python SDK. (It lives
//! here, beside the main job, so it shares the main job's build.)
//!
//! ```sh
//! cargo run -p fresco-examples --example feast_latency -- http://127.0.0.1:6566 2000 r-0 r-1 r-2
//! ```
//!
//! Prints one JSON line: calls, p50 and p99 in microseconds.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use fresco::{FeatureStore, FeatureView, Timestamp, ValueType};
use fresco_feast::{EntityKind, FeastStore, FeastView};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("feast_latency: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: feast_latency URL CALLS KEY...";
    let url = args.next().ok_or(usage)?;
    let calls: usize = args.next().ok_or(usage)?.parse().map_err(|e| format!("CALLS: {e}"))?;
    let keys: Vec<String> = args.collect();
    if keys.is_empty() || calls == 0 {
        return Err(usage.into());
    }
    let view = FeatureView::new("restaurants", "restaurant_id")
        .feature("prep_time_min", ValueType::F64)
        .feature("rating", ValueType::I64);
    let store = FeastStore::builder(url)
        .view(FeastView::new(view, EntityKind::String))
        .deadline(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let features = ["prep_time_min", "rating"];
    // Warm the connection pool, as the Python side warms its session.
    for key in keys.iter().take(20) {
        store.get_features("restaurants", &[key], &features, Timestamp::now()).map_err(|e| e.to_string())?;
    }
    let mut micros = Vec::with_capacity(calls);
    for key in keys.iter().cycle().take(calls) {
        let t = Instant::now();
        let rows = store.get_features("restaurants", &[key], &features, Timestamp::now()).map_err(|e| e.to_string())?;
        micros.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(rows);
    }
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];
    println!(r#"{{"calls": {calls}, "p50_us": {:.1}, "p99_us": {:.1}}}"#, at(0.5), at(0.99));
    Ok(())
}
