//! Scoring results, concurrency and the compiled-code cache.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use fresco_runtime::{Engine, Model, Target};
use fresco_test_models::linear;

fn reference(rows: &[f64]) -> Vec<f64> {
    rows.chunks(2).map(|r| 2.0 * r[0] + 3.0 * r[1] + 1.0).collect()
}

fn rows(n: usize, seed: u64) -> Vec<f64> {
    // A small LCG: deterministic, varied, includes negatives and NaN.
    let mut state = seed;
    (0..2 * n)
        .map(|i| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            if i % 97 == 0 { f64::NAN } else { (state >> 11) as f64 / (1u64 << 53) as f64 * 200.0 - 100.0 }
        })
        .collect()
}

fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

#[test]
fn batch_sizes_agree_with_reference() {
    let engine = Engine::new().unwrap();
    let model = Model::from_bytes(&engine, linear()).unwrap();
    for n in [1, 2, 15, 16, 17, 64, 1000, 10_000] {
        let x = rows(n, n as u64);
        assert!(same_bits(&model.predict(&x).unwrap(), &reference(&x)), "batch {n}");
    }
    let x = rows(100, 1);
    let array = ndarray::Array2::from_shape_vec((100, 2), x.clone()).unwrap();
    let y = model.predict_array(array.view()).unwrap();
    assert!(same_bits(y.as_slice().unwrap(), &reference(&x)));
    // A non-contiguous view (every other row) is copied, not misread.
    let strided = array.slice(ndarray::s![..;2, ..]);
    let y = model.predict_array(strided).unwrap();
    let expected: Vec<f64> = reference(&x).into_iter().step_by(2).collect();
    assert!(same_bits(y.as_slice().unwrap(), &expected));
}

#[test]
fn eight_threads_match_sequential_scoring() {
    let engine = Engine::builder().pool_size(2).build().unwrap();
    let model = Model::from_bytes(&engine, linear()).unwrap();
    let inputs: Vec<Vec<f64>> = (0..8).map(|t| rows(500, 100 + t)).collect();
    let sequential: Vec<Vec<f64>> = inputs
        .iter()
        .map(|x| {
            x.chunks(2)
                .flat_map(|row| {
                    let mut out = [0.0];
                    model.predict_row(row, &mut out).unwrap();
                    out
                })
                .collect()
        })
        .collect();
    let inputs = Arc::new(inputs);
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let model = model.clone();
            let inputs = Arc::clone(&inputs);
            std::thread::spawn(move || {
                let mut results = Vec::new();
                for _ in 0..20 {
                    let x = &inputs[t];
                    let mut one_by_one = Vec::with_capacity(x.len() / 2);
                    let mut out = [0.0];
                    for row in x.chunks(2) {
                        model.predict_row(row, &mut out).unwrap();
                        one_by_one.push(out[0]);
                    }
                    results.push(one_by_one);
                    results.push(model.predict(x).unwrap());
                }
                results
            })
        })
        .collect();
    for (t, handle) in handles.into_iter().enumerate() {
        for result in handle.join().unwrap() {
            assert!(same_bits(&result, &sequential[t]), "thread {t}");
        }
    }
}

#[test]
fn compiled_code_cache_is_used_and_keyed_by_module() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::builder().code_cache(dir.path()).build().unwrap();
    let first = Model::from_bytes(&engine, linear()).unwrap();
    let entries = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".cwasm"))
            .count()
    };
    assert_eq!(entries(), 1);
    assert_eq!((engine.stats().compilations, engine.stats().cache_hits), (1, 0));

    let again = Model::from_bytes(&engine, linear()).unwrap();
    assert_eq!(again.predict(&[1.0, 1.0]).unwrap(), first.predict(&[1.0, 1.0]).unwrap());
    assert_eq!(entries(), 1, "same module, same entry");
    assert_eq!((engine.stats().compilations, engine.stats().cache_hits), (1, 1), "loaded from the cache");

    // Another engine with the same cache directory (a restarted process) hits it too.
    let restarted = Engine::builder().code_cache(dir.path()).build().unwrap();
    let reloaded = Model::from_bytes(&restarted, linear()).unwrap();
    assert_eq!(reloaded.predict(&[1.0, 1.0]).unwrap(), first.predict(&[1.0, 1.0]).unwrap());
    assert_eq!((restarted.stats().compilations, restarted.stats().cache_hits), (0, 1));

    // A different module (other metadata) gets its own entry.
    let other = fresco_test_models::with_metadata(
        fresco_test_models::assemble(1, "(i32.const 0)", ""),
        &fresco_test_models::metadata_json("other"),
    );
    Model::from_bytes(&engine, other).unwrap();
    assert_eq!(entries(), 2);

    // A corrupt entry is ignored and replaced, never loaded.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let before = engine.stats();
    let model = Model::from_bytes(&engine, linear()).unwrap();
    assert_eq!(model.predict(&[1.0, 1.0]).unwrap(), [6.0]);
    assert_eq!(engine.stats().compilations, before.compilations + 1, "a corrupt entry is compiled again");
    assert_eq!(engine.stats().cache_hits, before.cache_hits);
    Model::from_bytes(&engine, linear()).unwrap();
    assert_eq!(engine.stats().cache_hits, before.cache_hits + 1, "and the replaced entry is used");
}

/// Which NaN an operation returns differs between CPUs: every host hands out the one
/// canonical NaN, whether or not the engine canonicalises each operation.
#[test]
fn a_nan_output_is_the_canonical_nan_on_every_engine() {
    let engines = [
        Engine::new().unwrap(),
        Engine::builder().nan_canonicalization(true).build().unwrap(),
        Engine::builder().target(Target::Pulley).build().unwrap(),
    ];
    // Both signs, quiet and signalling, with payloads: `2·a + 3·b + 1` carries them
    // through unless something canonicalises.
    let nans = [0xfff8_dead_beef_0001_u64, 0x7ff4_0000_0000_0001, 0x7ff8_0000_0000_00ff, 0xfff0_0000_0000_0001];
    for engine in &engines {
        let model = Model::from_bytes(engine, linear()).unwrap();
        for bits in nans {
            let got = model.predict(&[f64::from_bits(bits), 1.0]).unwrap();
            assert_eq!(
                got[0].to_bits(),
                f64::NAN.to_bits(),
                "input {bits:#018x} on {}: output {:#018x}",
                engine.target(),
                got[0].to_bits()
            );
        }
    }
}
