//! Runtime benchmarks: host→WASM call overhead, rows/s by batch size, and load time from
//! the compiled-code cache.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fresco_runtime::{Engine, Model, Target};
use fresco_test_models::{assemble, linear, metadata_json, with_metadata};

/// A model whose `fresco_predict` returns at once: what remains is pure call overhead.
fn noop_model() -> Vec<u8> {
    with_metadata(assemble(1, "(i32.const 0)", ""), &metadata_json("noop"))
}

fn call_overhead(c: &mut Criterion) {
    let engine = Engine::new().unwrap();
    let model = Model::from_bytes(&engine, noop_model()).unwrap();
    let row = [1.0, 2.0];
    let mut out = [0.0];
    c.bench_function("call_overhead/batch1_noop", |b| b.iter(|| model.predict_row(black_box(&row), &mut out).unwrap()));
}

fn rows_per_second(c: &mut Criterion) {
    let engine = Engine::new().unwrap();
    let model = Model::from_bytes(&engine, linear()).unwrap();
    let mut group = c.benchmark_group("linear_rows");
    for batch in [1usize, 64, 10_000] {
        let rows: Vec<f64> = (0..batch * 2).map(|i| i as f64 * 0.5).collect();
        let mut out = vec![0.0; batch];
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &rows, |b, rows| {
            b.iter(|| model.predict_into(black_box(rows), &mut out).unwrap())
        });
    }
    group.finish();
}

fn load_from_cache(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::builder().code_cache(dir.path()).build().unwrap();
    let bytes = linear();
    Model::from_bytes(&engine, &bytes).unwrap(); // fills the cache
    c.bench_function("load/from_cache", |b| b.iter(|| Model::from_bytes(&engine, black_box(&bytes)).unwrap()));
    let cold = Engine::new().unwrap();
    c.bench_function("load/compile", |b| b.iter(|| Model::from_bytes(&cold, black_box(&bytes)).unwrap()));

    // What a device that ships precompiled artifacts saves at start-up: a 500-tree model
    // compiled, or loaded from an artifact made ahead of time (native and Pulley).
    let ensemble = fresco_test_models::synthetic::gbdt(500, 63, 30, 3);
    let trees = fresco_compiler::Compiler::new("trees", "1").add_ensemble(ensemble).unwrap().compile().unwrap();
    for target in [Target::Native, Target::Pulley] {
        let engine = Engine::builder().target(target.clone()).build().unwrap();
        let name = if target == Target::Native { "native" } else { "pulley" };
        let artifact = engine.precompile(&trees).unwrap();
        let mut group = c.benchmark_group(format!("load_500_trees/{name}"));
        group.sample_size(10);
        group.bench_function("compile", |b| b.iter(|| Model::from_bytes(&engine, black_box(&trees)).unwrap()));
        // SAFETY: the artifact was made just above by this engine.
        group.bench_function("precompiled", |b| {
            b.iter(|| unsafe { Model::from_precompiled(&engine, black_box(&artifact)) }.unwrap())
        });
        group.finish();
    }
}

/// Tree models of the three benchmark sizes (trees × leaves over 30 features, as in
/// `benches/peers`), scored by native code and by the Pulley interpreter in one run:
/// the ratio of the two is what a host that may not JIT gives up.
fn pulley_vs_cranelift(c: &mut Criterion) {
    const BATCH: usize = 1_000;
    let mut rng = fresco_test_models::synthetic::SplitMix64::new(5);
    let rows: Vec<f64> = (0..BATCH * 30).map(|_| rng.next_f64()).collect();
    let mut out = vec![0.0; BATCH];
    let mut group = c.benchmark_group("trees_by_target");
    group.throughput(Throughput::Elements(BATCH as u64)).sample_size(10);
    for (trees, leaves) in [(100, 31), (500, 63), (2000, 255)] {
        let ensemble = fresco_test_models::synthetic::gbdt(trees, leaves, 30, 3);
        let wasm = fresco_compiler::Compiler::new("trees", "1").add_ensemble(ensemble).unwrap().compile().unwrap();
        for target in [Target::Native, Target::Pulley] {
            // A 1,000-row call of the largest model interpreted takes seconds: past the 1 s default.
            let limits = fresco_runtime::Limits::default().with_deadline(std::time::Duration::from_secs(120));
            let engine = Engine::builder().target(target.clone()).limits(limits).build().unwrap();
            let model = Model::from_bytes(&engine, &wasm).unwrap();
            let name = if target == Target::Native { "cranelift" } else { "pulley" };
            group.bench_function(BenchmarkId::new(name, format!("{trees}x{leaves}")), |b| {
                b.iter(|| model.predict_into(black_box(&rows), &mut out).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, call_overhead, rows_per_second, load_from_cache, pulley_vs_cranelift);
criterion_main!(benches);
