//! The Pulley interpreter and precompiled artifacts: the same bits as native code, and
//! a typed refusal of an artifact made for another target or engine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fresco_runtime::{Engine, Error, Incompatibility, Model, Target};
use fresco_test_models::hostile;
use fresco_test_models::synthetic::SplitMix64;

/// A tree ensemble compiled to a module (100 trees of 31 leaves over 30 features).
fn trees() -> Vec<u8> {
    let ensemble = fresco_test_models::synthetic::gbdt(100, 31, 30, 7);
    fresco_compiler::Compiler::new("trees", "1").add_ensemble(ensemble).unwrap().compile().unwrap()
}

fn rows(n: usize) -> Vec<f64> {
    let mut rng = SplitMix64::new(11);
    (0..n * 30).map(|i| if i % 37 == 0 { f64::NAN } else { rng.next_f64() }).collect()
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn pulley_scores_the_same_bits_as_native_code() {
    let wasm = trees();
    let x = rows(500);
    let native = Model::from_bytes(&Engine::new().unwrap(), &wasm).unwrap().predict(&x).unwrap();
    let engine = Engine::builder().target(Target::Pulley).build().unwrap();
    assert_eq!(engine.target(), &Target::Pulley);
    let pulley = Model::from_bytes(&engine, &wasm).unwrap().predict(&x).unwrap();
    assert_eq!(bits(&pulley), bits(&native));
}

#[test]
fn the_sandbox_holds_on_pulley() {
    let engine = Engine::builder()
        .target(Target::Pulley)
        .limits(fresco_runtime::Limits::default().with_deadline(std::time::Duration::from_millis(50)))
        .build()
        .unwrap();
    let looping = Model::from_bytes(&engine, hostile::infinite_loop()).unwrap();
    assert!(matches!(looping.predict(&[1.0, 2.0]), Err(Error::DeadlineExceeded { .. })));
    let trapping = Model::from_bytes(&engine, hostile::trap()).unwrap();
    assert!(matches!(trapping.predict(&[1.0, 2.0]), Err(Error::Trap { .. })));
    let bomb = Model::from_bytes(&engine, hostile::memory_bomb()).unwrap();
    assert!(matches!(bomb.predict(&[1.0, 2.0]), Err(Error::MemoryLimit { .. })), "{:?}", bomb.predict(&[1.0, 2.0]));
}

#[test]
fn a_precompiled_artifact_scores_as_its_module() {
    let wasm = trees();
    let x = rows(300);
    for target in [Target::Native, Target::Pulley] {
        let engine = Engine::builder().target(target.clone()).build().unwrap();
        let expected = Model::from_bytes(&engine, &wasm).unwrap().predict(&x).unwrap();
        let artifact = engine.precompile(&wasm).unwrap();
        assert!(fresco_runtime::is_precompiled(&artifact));
        let compilations = engine.stats().compilations;
        // SAFETY: made just above by this engine.
        let model = unsafe { Model::from_precompiled(&engine, &artifact) }.unwrap();
        assert_eq!(engine.stats().compilations, compilations, "{target}: loading compiled nothing");
        assert_eq!(bits(&model.predict(&x).unwrap()), bits(&expected), "{target}");
        assert_eq!(model.name(), "trees");
        assert_eq!(model.sha256(), Model::from_bytes(&engine, &wasm).unwrap().sha256(), "the module's identity");
    }
}

#[test]
fn an_artifact_for_another_target_or_engine_is_refused_never_run() {
    let wasm = trees();
    let pulley = Engine::builder().target(Target::Pulley).build().unwrap();
    let native = Engine::new().unwrap();
    let for_pulley = pulley.precompile(&wasm).unwrap();
    let for_native = native.precompile(&wasm).unwrap();

    // SAFETY (all calls below): the artifacts were made by this test's engines; each
    // load must be refused before wasmtime looks at the code.
    let err = unsafe { Model::from_precompiled(&native, &for_pulley) }.unwrap_err();
    assert!(
        matches!(&err, Error::Incompatible { why: Incompatibility::Target { artifact, .. }, .. } if artifact == "pulley64"),
        "{err}"
    );
    let err = unsafe { Model::from_precompiled(&pulley, &for_native) }.unwrap_err();
    assert!(matches!(&err, Error::Incompatible { why: Incompatibility::Target { .. }, .. }), "{err}");

    // Another engine configuration (as another wasmtime build would be): the keys differ.
    let other = Engine::builder().nan_canonicalization(true).build().unwrap();
    let err = unsafe { Model::from_precompiled(&other, &for_native) }.unwrap_err();
    assert!(matches!(&err, Error::Incompatible { why: Incompatibility::Engine { .. }, .. }), "{err}");
    assert!(err.to_string().contains("compile it again"), "{err}");

    // Not an artifact at all, or a damaged one.
    for bytes in [wasm.clone(), for_native[..10].to_vec(), for_native[..40].to_vec()] {
        let err = unsafe { Model::from_precompiled(&native, &bytes) }.unwrap_err();
        assert!(matches!(err, Error::NotPrecompiled { .. }), "{err}");
    }
    // A header claiming this engine over code made for another: wasmtime's own check
    // refuses it.
    let mut claimed = header(&for_pulley);
    claimed["target"] = header(&for_native)["target"].clone();
    claimed["compatibility"] = header(&for_native)["compatibility"].clone();
    let err = unsafe { Model::from_precompiled(&native, &with_header(&for_pulley, &claimed)) }.unwrap_err();
    assert!(matches!(&err, Error::Incompatible { why: Incompatibility::Refused { .. }, .. }), "{err}");
}

/// An artifact's header: `FRESCOPC`, format, length, then the JSON.
fn header(artifact: &[u8]) -> serde_json::Value {
    let len = u32::from_le_bytes(artifact[12..16].try_into().unwrap()) as usize;
    serde_json::from_slice(&artifact[16..16 + len]).unwrap()
}

/// `artifact` with its header replaced by `header`.
fn with_header(artifact: &[u8], header: &serde_json::Value) -> Vec<u8> {
    let len = u32::from_le_bytes(artifact[12..16].try_into().unwrap()) as usize;
    let json = serde_json::to_vec(header).unwrap();
    let mut out = artifact[..12].to_vec();
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&artifact[16 + len..]);
    out
}
