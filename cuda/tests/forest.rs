//! The device layout, its CPU reference walk, the generated kernel (compiled as C by
//! the system compiler) and the batcher, against the native evaluator on every oracle
//! fixture. None of these need a GPU; `gpu_parity` (ignored, run by `cuda/check.sh` on a
//! GPU machine) runs the same comparison on the device.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use fresco_cuda::{BY_TREE_KERNEL_NAME, Batcher, Forest, Gpu, GpuForest, KERNEL_NAME, kernel_source};
use fresco_test_models::oracle;
use fresco_trees::Ensemble;

/// Every oracle model fresco accepts, with rows: the fixture's, then each feature set
/// to the values where comparisons go wrong.
fn cases() -> Vec<(String, Ensemble, Vec<f64>)> {
    let edges = [f64::NAN, -0.0, 0.0, 1e-36, -1e-36, f64::INFINITY, f64::NEG_INFINITY, -1.0, 0.5, 3.0, 1e300];
    oracle::cases()
        .into_iter()
        .filter(|c| c.expect_error.is_none())
        .map(|case| {
            let text = case.model_text();
            let ensemble = if case.library == "lightgbm" {
                fresco_trees::lightgbm::parse(&text)
            } else {
                fresco_trees::xgboost::parse(&text)
            }
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let mut rows = case.input_rows();
            let n = ensemble.n_features();
            let base: Vec<f64> = rows[..n].to_vec();
            for f in 0..n {
                for &e in &edges {
                    let mut row = base.clone();
                    row[f] = e;
                    rows.extend(row);
                }
            }
            (case.name, ensemble, rows)
        })
        .collect()
}

fn assert_bitwise(name: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{name}: lengths");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{name}: value {i}: {a} vs native {b}");
    }
}

#[test]
fn the_reference_walk_equals_the_native_evaluator_bit_for_bit() {
    let cases = cases();
    assert!(cases.len() >= 20, "{} oracle cases", cases.len());
    for (name, ensemble, rows) in &cases {
        let forest = Forest::new(ensemble).unwrap();
        assert_bitwise(name, &forest.predict(rows), &ensemble.predict(rows));
    }
}

type ScoreFn = unsafe extern "C" fn(
    *const fresco_cuda::DeviceNode,
    *const u32,
    *const u32,
    *const u32,
    *const f64,
    *const f64,
    u64,
    *mut f64,
);

/// Compiles the kernel source for `forest` as C into a shared library.
fn compile_as_c(dir: &Path, name: &str, forest: &Forest) -> libloading::Library {
    let source = dir.join(format!("{name}.c"));
    std::fs::write(&source, kernel_source(forest)).unwrap();
    let lib = dir.join(format!("lib{name}.so"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-std=c99", "-O1", "-ffp-contract=off", "-fno-fast-math", "-Wall", "-Werror", "-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("the C compiler `{cc}` does not run: {e}"));
    assert!(
        out.status.success(),
        "{name}: the kernel does not compile as C:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SAFETY: a library this test just built from the kernel source; no initialisers.
    unsafe { libloading::Library::new(&lib) }.unwrap()
}

#[test]
fn the_generated_kernel_compiled_as_c_equals_the_native_evaluator() {
    let dir = tempfile::tempdir().unwrap();
    for (name, ensemble, rows) in cases() {
        let forest = Forest::new(&ensemble).unwrap();
        let lib = compile_as_c(dir.path(), &name, &forest);
        let arrays = forest.arrays();
        let n_rows = rows.len() / forest.n_features();
        // Both entry points: a thread per row, and a row's trees walked in any order
        // (the C form walks them backwards) with the leaves added in tree order.
        assert!(forest.n_trees() <= fresco_cuda::BY_TREE_MAX_TREES, "{name}: {} trees", forest.n_trees());
        for entry in [KERNEL_NAME, BY_TREE_KERNEL_NAME] {
            let name = format!("{name} ({entry})");
            let mut raw = vec![0.0; n_rows * forest.n_groups()];
            // SAFETY: the symbol is one of the kernel's entry points, both with this
            // signature (kernel.rs).
            unsafe {
                let score: libloading::Symbol<ScoreFn> = lib.get(entry.as_bytes()).unwrap();
                score(
                    arrays.nodes.as_ptr(),
                    arrays.cat_words.as_ptr(),
                    arrays.tree_root.as_ptr(),
                    arrays.tree_group.as_ptr(),
                    arrays.base_score.as_ptr(),
                    rows.as_ptr(),
                    n_rows as u64,
                    raw.as_mut_ptr(),
                );
            }
            assert_bitwise(&name, &raw, &forest.raw_scores(&rows));
            assert_bitwise(&name, &forest.finish(&mut raw), &ensemble.predict(&rows));
        }
    }
}

fn sum_forest() -> Forest {
    let (_, ensemble, _) = cases().into_iter().find(|(n, _, _)| n == "lgb_regression").unwrap();
    Forest::new(&ensemble).unwrap()
}

#[test]
fn the_batcher_coalesces_concurrent_calls_and_answers_each_its_own_rows() {
    let forest = Arc::new(sum_forest());
    let n_in = forest.n_features();
    let scorer = forest.clone();
    let batcher =
        Arc::new(Batcher::new(n_in, forest.n_outputs(), 4096, Duration::from_millis(5), move |rows: &[f64]| {
            Ok(scorer.predict(rows))
        }));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (batcher, forest) = (batcher.clone(), forest.clone());
            std::thread::spawn(move || {
                for call in 0..40 {
                    let n_rows = 1 + (t + call) % 5;
                    let rows: Vec<f64> =
                        (0..n_rows * n_in).map(|i| ((t * 131 + call * 17 + i) % 23) as f64 / 3.0).collect();
                    assert_eq!(batcher.predict(rows.clone()).unwrap(), forest.predict(&rows));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = batcher.stats();
    let (batches, calls) = (
        stats.batches.load(std::sync::atomic::Ordering::Relaxed),
        stats.calls.load(std::sync::atomic::Ordering::Relaxed),
    );
    assert_eq!(calls, 320);
    assert!(batches < calls / 2, "{batches} launches for {calls} calls: not coalesced");

    // Rows that are not whole rows are refused before they reach the queue.
    assert!(matches!(batcher.predict(vec![1.0; n_in + 1]), Err(fresco_cuda::CudaError::Shape { .. })));
}

#[tokio::test]
async fn the_batcher_answers_async_callers_and_reports_scorer_errors() {
    let batcher = Batcher::new(1, 1, 100, Duration::from_millis(1), |rows: &[f64]| {
        if rows.contains(&-1.0) {
            Err(fresco_cuda::CudaError::Compile { reason: "refused".into() })
        } else {
            Ok(rows.iter().map(|x| x * 2.0).collect())
        }
    });
    assert_eq!(batcher.predict_async(vec![1.0, 2.0]).await.unwrap(), vec![2.0, 4.0]);
    let err = batcher.predict_async(vec![-1.0]).await.unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
}

/// On a GPU machine (`cuda/check.sh`): the device equals the native evaluator.
#[test]
#[ignore = "needs an NVIDIA GPU with the CUDA driver and NVRTC; cuda/check.sh runs it"]
fn gpu_parity() {
    let gpu = Gpu::open(0).unwrap();
    for (name, ensemble, rows) in cases() {
        let scorer = GpuForest::new(&gpu, Forest::new(&ensemble).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let n_rows = rows.len() / ensemble.n_features();
        // Every row a block (its trees side by side), then every row a thread.
        let scorer = scorer.by_tree_below(n_rows + 1);
        assert_bitwise(&format!("{name}, by tree"), &scorer.predict(&rows).unwrap(), &ensemble.predict(&rows));
        let scorer = scorer.by_tree_below(0);
        assert_bitwise(&format!("{name}, by row"), &scorer.predict(&rows).unwrap(), &ensemble.predict(&rows));
        // Fewer rows, in another order, into the buffers the last call left longer and
        // full: only this call's rows may be read and returned. (The fixtures repeat
        // their rows, so a tail of them could equal the head the buffers still hold.)
        let n_in = ensemble.n_features();
        let reversed: Vec<f64> = rows.chunks(n_in).rev().skip(1).flatten().copied().collect();
        let want = ensemble.predict(&reversed);
        assert_bitwise(&format!("{name}, reversed"), &scorer.predict(&reversed).unwrap(), &want);
        // One row scoring differently from the row the buffers start with.
        let first = ensemble.predict(&reversed[..n_in]);
        if let Some(row) = reversed.chunks(n_in).find(|row| ensemble.predict(row) != first) {
            assert_bitwise(&format!("{name}, one row"), &scorer.predict(row).unwrap(), &ensemble.predict(row));
        }
        println!("{name}: {n_rows} rows bit-equal on {}, by tree and by row", gpu.name());
    }
}
