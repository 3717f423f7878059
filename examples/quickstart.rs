//! Quickstart: load a model, score a batch and a single row, watch the sandbox stop a
//! runaway model, reload from the compiled-code cache, and compile three LightGBM
//! quantile models into one module.
//!
//! Run: `cargo run -p fresco-examples --example quickstart [MODEL.wasm]`
//! Without an argument it uses a small built-in demo model (`y = 2·a + 3·b + 1`).

use std::time::{Duration, Instant};

use fresco::holdout::Holdout;
use fresco::runtime::{Engine, Error, Limits, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cache = tempfile::tempdir()?;
    let engine = Engine::builder()
        .limits(Limits::default().with_deadline(Duration::from_millis(100)))
        .code_cache(cache.path())
        .build()?;

    let bytes = match std::env::args().nth(1) {
        Some(path) => std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?,
        None => fresco_test_models::linear(),
    };
    let started = Instant::now();
    let model = Model::from_bytes(&engine, &bytes)?;
    let compile = started.elapsed();
    let inputs: Vec<&str> = model.metadata().inputs.iter().map(|i| i.name.as_str()).collect();
    println!(
        "model {} v{}: inputs [{}] → outputs [{}]",
        model.name(),
        model.version(),
        inputs.join(", "),
        model.metadata().outputs.join(", ")
    );

    // A batch of three rows; NaN marks a missing value.
    let width = model.n_inputs();
    let rows: Vec<f64> = (0..3 * width).map(|i| if i == 1 { f64::NAN } else { i as f64 }).collect();
    let scores = model.predict(&rows)?;
    for (row, out) in rows.chunks(width).zip(scores.chunks(model.n_outputs())) {
        println!("  {row:?} → {out:?}");
    }

    // The batch-1 path allocates nothing; time it.
    let mut out = vec![0.0; model.n_outputs()];
    let mut row = vec![0.0; width];
    let n = 200_000u32;
    let started = Instant::now();
    for i in 0..n {
        row.fill(f64::from(i % 100));
        model.predict_row(&row, &mut out)?;
    }
    println!("batch-1 latency: {:.2} µs per call (mean of {n})", started.elapsed().as_secs_f64() * 1e6 / f64::from(n));

    // Holdouts: who may be treated.
    let holdout = Holdout::new("promo-holdout", "promo-2026", 0.1)?;
    for user in ["user-1", "user-2", "user-3"] {
        let a = holdout.assign(user);
        println!(
            "  {user}: bucket {:>4}, {}",
            a.bucket,
            if a.in_holdout { "held out (never treated)" } else { "may be treated" }
        );
    }

    // The sandbox stops a runaway model; the process carries on.
    let runaway = Model::from_bytes(&engine, fresco_test_models::hostile::infinite_loop())?;
    let started = Instant::now();
    match runaway.predict(&[1.0, 2.0]) {
        Err(err @ Error::DeadlineExceeded { .. }) => println!("sandbox: {err} (after {:?})", started.elapsed()),
        other => return Err(format!("expected the runaway model to be stopped, got {other:?}").into()),
    }

    let started = Instant::now();
    let reloaded = Model::from_bytes(&engine, &bytes)?;
    println!(
        "load: {:.1} ms compiling, {:.2} ms from the code cache; still scores {:?}",
        compile.as_secs_f64() * 1e3,
        started.elapsed().as_secs_f64() * 1e3,
        reloaded.predict(&rows[..width])?
    );

    // Three LightGBM quantile boosters (q10, q50, q90) packed into one module.
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm-models/oracle/fixtures");
    let mut compiler = fresco_compiler::Compiler::new("quantiles", "1");
    for q in ["10", "50", "90"] {
        compiler = compiler.add_file(fixtures.join(format!("lgb_quantile_{q}.model.txt")), None)?;
    }
    let started = Instant::now();
    let wasm = compiler.compile()?;
    let quantiles = Model::from_bytes(&engine, &wasm)?;
    let row: Vec<f64> = (0..quantiles.n_inputs()).map(|i| i as f64 * 0.5).collect();
    let mut out = vec![0.0; quantiles.n_outputs()];
    quantiles.predict_row(&row, &mut out)?;
    let named: Vec<String> =
        quantiles.metadata().outputs.iter().zip(&out).map(|(name, v)| format!("{name} = {v:.3}")).collect();
    println!(
        "compiled 3 LightGBM quantile models into one {} KiB module in {:.1} ms: {}",
        wasm.len() / 1024,
        started.elapsed().as_secs_f64() * 1e3,
        named.join(", ")
    );
    Ok(())
}
