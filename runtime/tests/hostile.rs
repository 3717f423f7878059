//! Every hostile module gets its typed error, without a panic, and the same process then
//! scores a good model correctly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use fresco_abi::MetadataError;
use fresco_runtime::{Engine, Error, Limits, Model};
use fresco_test_models::{hostile, linear};

fn engine() -> Engine {
    Engine::builder()
        .limits(Limits::default().with_deadline(Duration::from_millis(200)).with_max_memory_bytes(64 << 20))
        .build()
        .unwrap()
}

/// After each failure, a good model must still score correctly.
fn assert_good_model_still_works(engine: &Engine) {
    let model = Model::from_bytes(engine, linear()).unwrap();
    assert_eq!(model.predict(&[1.0, 2.0, -1.0, 0.5]).unwrap(), [9.0, 0.5]);
}

fn load_err(bytes: Vec<u8>) -> Error {
    let engine = engine();
    let err = Model::from_bytes(&engine, bytes).unwrap_err();
    assert_good_model_still_works(&engine);
    err
}

/// Loads, scores once expecting an error, then checks the same model serves again
/// (with a fresh instance) and that a good model is unaffected.
fn call_err(bytes: Vec<u8>) -> Error {
    let engine = engine();
    let model = Model::from_bytes(&engine, bytes).unwrap();
    let err = model.predict(&[1.0, 2.0]).unwrap_err();
    let again = model.predict(&[1.0, 2.0]).unwrap_err();
    assert_eq!(std::mem::discriminant(&err), std::mem::discriminant(&again));
    assert_good_model_still_works(&engine);
    err
}

#[test]
fn infinite_loop_is_stopped_within_the_deadline() {
    let started = Instant::now();
    let err = call_err(hostile::infinite_loop());
    assert!(matches!(err, Error::DeadlineExceeded { ref model, .. } if model == "infinite-loop@1"), "{err}");
    // Two calls at 200 ms each, plus loading: well under two seconds.
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[test]
fn memory_bomb_hits_the_cap() {
    let err = call_err(hostile::memory_bomb());
    assert!(
        matches!(err, Error::MemoryLimit { limit, requested, .. } if limit == 64 << 20 && requested > limit),
        "{err}"
    );
}

#[test]
fn huge_initial_memory_is_refused_at_load() {
    let err = load_err(hostile::huge_initial_memory());
    assert!(matches!(err, Error::MemoryLimit { .. }), "{err}");
}

#[test]
fn trap_is_reported() {
    let err = call_err(hostile::trap());
    assert!(matches!(err, Error::Trap { ref trap, .. } if trap.contains("unreachable")), "{err}");
}

#[test]
fn stack_overflow_is_reported() {
    let err = call_err(hostile::stack_overflow());
    assert!(matches!(err, Error::StackOverflow { .. }), "{err}");
}

/// The stack limit is the engine's: a call 2,000 frames deep succeeds under the default
/// limit and stops with a typed error under a 16 KiB one.
#[test]
fn the_stack_limit_is_configurable() {
    let roomy = engine();
    let model = Model::from_bytes(&roomy, hostile::deep_recursion()).unwrap();
    assert!(model.predict(&[1.0, 2.0]).is_ok());

    let tight = Engine::builder().limits(Limits::default().with_max_stack_bytes(16 << 10)).build().unwrap();
    let model = Model::from_bytes(&tight, hostile::deep_recursion()).unwrap();
    let err = model.predict(&[1.0, 2.0]).unwrap_err();
    assert!(matches!(err, Error::StackOverflow { .. }), "{err}");
    assert_good_model_still_works(&tight);
}

#[test]
fn nonzero_status_is_reported_and_instance_reused() {
    let err = call_err(hostile::nonzero_status());
    assert!(matches!(err, Error::ModelStatus { code: 7, meaning: "model-defined", .. }), "{err}");
    assert_eq!(err.to_string(), "model `nonzero-status@1`: fresco_predict returned status 7 (model-defined)");

    // A clean non-zero status leaves the instance consistent: it goes back to the pool
    // and serves the next call.
    let engine = engine();
    let model = Model::from_bytes(&engine, hostile::nonzero_status()).unwrap();
    for _ in 0..3 {
        assert!(matches!(model.predict(&[1.0, 2.0]), Err(Error::ModelStatus { code: 7, .. })));
    }
    assert_eq!(engine.stats().instances_created, 1, "the same instance served all three calls");
}

#[test]
fn trapped_instances_are_discarded_not_reused() {
    let engine = engine();
    let model = Model::from_bytes(&engine, hostile::trap()).unwrap();
    for _ in 0..3 {
        assert!(matches!(model.predict(&[1.0, 2.0]), Err(Error::Trap { .. })));
    }
    assert_eq!(engine.stats().instances_created, 3, "each call after a trap gets a fresh instance");
}

#[test]
fn bad_allocation_is_reported() {
    let err = call_err(hostile::bad_alloc());
    assert!(matches!(err, Error::BadAllocation { offset: -16, .. }), "{err}");
}

#[test]
fn missing_export() {
    let err = load_err(hostile::missing_export());
    assert!(matches!(err, Error::MissingExport { export: "fresco_predict", .. }), "{err}");
}

#[test]
fn mistyped_export() {
    let err = load_err(hostile::mistyped_export());
    match err {
        Error::ExportType { export, found, .. } => {
            assert_eq!(export, "fresco_predict");
            assert_eq!(found, "func (f64, i32, i32) -> (i32)");
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn abi_version_disagreeing_with_metadata() {
    let err = load_err(hostile::wrong_abi_version());
    assert!(matches!(err, Error::AbiMismatch { declared: 1, exported: 2, .. }), "{err}");
}

#[test]
fn unsupported_abi_in_metadata() {
    let err = load_err(hostile::metadata_abi_2());
    assert!(matches!(err, Error::Metadata { source: MetadataError::UnsupportedAbi { declared: 2 }, .. }), "{err}");
}

#[test]
fn missing_metadata() {
    assert!(matches!(load_err(hostile::metadata_missing()), Error::MissingMetadata { .. }));
}

#[test]
fn malformed_metadata() {
    let err = load_err(hostile::metadata_malformed());
    assert!(matches!(err, Error::Metadata { source: MetadataError::Malformed { .. }, .. }), "{err}");
}

#[test]
fn oversized_metadata() {
    let err = load_err(hostile::metadata_oversized());
    assert!(matches!(err, Error::Metadata { source: MetadataError::TooLarge { .. }, .. }), "{err}");
}

#[test]
fn metadata_without_outputs() {
    let err = load_err(hostile::metadata_without_outputs());
    assert!(matches!(err, Error::Metadata { source: MetadataError::Invalid { field: "outputs", .. }, .. }));
}

#[test]
fn duplicate_metadata() {
    assert!(matches!(load_err(hostile::metadata_twice()), Error::DuplicateMetadata { count: 2, .. }));
}

#[test]
fn imports_are_refused() {
    let err = load_err(hostile::with_import());
    assert!(matches!(err, Error::HasImports { ref module, ref name, .. } if module == "env" && name == "now"));
}

#[test]
fn bytes_that_are_not_wasm() {
    assert!(matches!(load_err(hostile::not_wasm()), Error::NotWasm { .. }));
    assert!(matches!(load_err(Vec::new()), Error::NotWasm { .. }));
}

#[test]
fn truncated_module() {
    assert!(matches!(load_err(hostile::truncated()), Error::InvalidWasm { .. }));
}

#[test]
fn file_errors_name_the_path() {
    let err = Model::from_file(&engine(), "/definitely/not/here.wasm").unwrap_err();
    assert!(err.to_string().starts_with("/definitely/not/here.wasm: "), "{err}");
}

#[test]
fn shape_errors() {
    let engine = engine();
    let model = Model::from_bytes(&engine, linear()).unwrap();
    let err = model.predict(&[1.0, 2.0, 3.0]).unwrap_err();
    assert_eq!(err.to_string(), "model `linear@1`: input has 3 values, expected a multiple of 2 (1 rows × 2)");
    assert!(matches!(model.predict_row(&[1.0], &mut [0.0]), Err(Error::Shape { what: "input", .. })));
    assert!(matches!(model.predict_row(&[1.0, 2.0], &mut []), Err(Error::Shape { what: "output", .. })));
    assert_eq!(model.predict(&[]).unwrap(), Vec::<f64>::new());
}

#[test]
fn batch_over_the_memory_cap_is_refused() {
    let engine = engine();
    let model = Model::from_bytes(&engine, linear()).unwrap();
    let rows = vec![0.0; 2 * 3_000_000]; // 3M rows × 24 bytes > 64 MiB
    assert!(matches!(model.predict(&rows), Err(Error::BatchTooLarge { rows: 3_000_000, .. })));
    assert_good_model_still_works(&engine);
}
