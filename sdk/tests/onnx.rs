//! ONNX models through tract reproduce onnxruntime's outputs (fixtures made by
//! `tests/onnx/make_fixtures.py` with scikit-learn, skl2onnx and onnxruntime).
//!
//! `FRESCO_ONNX_DIR` points the test at freshly generated fixtures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use fresco::abi::{InputSpec, ModelKind, ModelMetadata};
use fresco::{Client, MemorySink, ModelConfig, ModelSource, OnnxModel, Request};
use serde_json::Value as Json;

const MAX_RELATIVE_ERROR: f64 = 1e-5;

fn fixtures() -> PathBuf {
    std::env::var_os("FRESCO_ONNX_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/onnx/fixtures"))
}

struct Case {
    name: String,
    model: OnnxModel,
    inputs: Vec<String>,
    rows: Vec<Vec<f64>>,
    expected: Vec<Vec<f64>>,
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

fn matrix(v: &Json) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()).collect()
}

fn cases() -> Vec<Case> {
    let dir = fixtures();
    let mut cases = Vec::new();
    for name in ["mlp_regressor", "mlp_classifier"] {
        let text = std::fs::read_to_string(dir.join(format!("{name}.case.json"))).unwrap();
        let case: Json = serde_json::from_str(&text).unwrap();
        let inputs = strings(&case["inputs"]);
        let meta = ModelMetadata::new(name, "1", ModelKind::Other("onnx".into()))
            .with_inputs(inputs.iter().map(InputSpec::f64).collect())
            .with_outputs(strings(&case["outputs"]));
        let model = OnnxModel::from_file(dir.join(format!("{name}.onnx")), meta)
            .unwrap()
            .output(case["output_tensor"].as_str().unwrap())
            .unwrap();
        cases.push(Case {
            name: name.into(),
            model,
            inputs,
            rows: matrix(&case["rows"]),
            expected: matrix(&case["expected"]),
        });
    }
    cases
}

fn assert_close(case: &str, row: usize, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{case} row {row}");
    for (g, w) in got.iter().zip(want) {
        // Relative above 0.01, absolute (1e-7) below: the models compute in f32, and a
        // rounding difference in a logit moves a small softmax probability by the same
        // relative amount as a large one (a 0.0044 probability was 1.03e-5 apart).
        let err = (g - w).abs() / w.abs().max(1e-2);
        assert!(err <= MAX_RELATIVE_ERROR, "{case} row {row}: tract {g} vs onnxruntime {w} (relative error {err:e})");
    }
}

#[test]
fn tract_matches_onnxruntime() {
    for case in cases() {
        let flat: Vec<f64> = case.rows.concat();
        let got = case.model.predict(&flat).unwrap();
        let n_out = case.expected[0].len();
        for (r, want) in case.expected.iter().enumerate() {
            assert_close(&case.name, r, &got[r * n_out..(r + 1) * n_out], want);
        }
        // Batch of one, as a service calls it.
        assert_close(&case.name, 0, &case.model.predict(&case.rows[0]).unwrap(), &case.expected[0]);
    }
}

#[test]
fn onnx_models_score_through_the_client() {
    for case in cases() {
        let output_names = case.model.metadata().outputs.clone();
        let client = Client::builder()
            .model(ModelConfig::new(ModelSource::Onnx(case.model.clone())))
            .log_to(MemorySink::new())
            .build()
            .unwrap();
        let requests: Vec<Request> = case
            .rows
            .iter()
            .map(|row| case.inputs.iter().zip(row).fold(Request::new(), |r, (name, x)| r.value(name, *x)))
            .collect();
        let predictions = client.predict_batch(&case.name, &requests).unwrap();
        for (r, (p, want)) in predictions.iter().zip(&case.expected).enumerate() {
            let got: Vec<f64> = output_names.iter().map(|o| p.output(o).unwrap()).collect();
            assert_close(&case.name, r, &got, want);
        }
    }
}

#[test]
fn metadata_that_does_not_fit_the_graph_is_refused() {
    let path = fixtures().join("mlp_regressor.onnx");
    let meta = ModelMetadata::new("short", "1", ModelKind::Custom)
        .with_inputs(vec![InputSpec::f64("only_one")])
        .with_outputs(vec!["y".into()]);
    let err = OnnxModel::from_file(&path, meta).unwrap_err();
    assert!(err.to_string().starts_with("ONNX model `short`: the graph does not take [batch, 1] inputs"), "{err}");

    let meta = ModelMetadata::new("m", "1", ModelKind::Custom)
        .with_inputs((0..12).map(|i| InputSpec::f64(format!("f{i}"))).collect())
        .with_outputs(vec!["y".into()]);
    let err = OnnxModel::from_file(&path, meta.clone()).unwrap().output("nope").unwrap_err();
    assert_eq!(err.to_string(), "ONNX model `m`: the graph has no output `nope`");
    let err = OnnxModel::from_bytes(b"definitely not protobuf", meta).unwrap_err();
    assert!(matches!(err, fresco::OnnxError::Load { .. }), "{err}");
}

/// The same sandbox limits as WebAssembly models: a call past its deadline or over its
/// memory cap stops with a typed error, and the model serves the next call.
#[test]
fn deadline_and_memory_cap_stop_a_call() {
    use fresco::OnnxError;
    use fresco::runtime::{Engine, Limits};
    use std::time::Duration;

    let case = cases().into_iter().find(|c| c.name == "mlp_regressor").unwrap();
    let rows: Vec<f64> = case.rows.iter().cycle().take(2000).flatten().copied().collect();
    let expected = case.model.predict(&rows).unwrap();

    let no_time = case.model.clone().limits(Limits::default().with_deadline(Duration::ZERO));
    assert!(matches!(no_time.predict(&rows), Err(OnnxError::DeadlineExceeded { .. })));

    // 2,000 rows of 12 f32 inputs are 96,000 bytes before the first layer runs.
    let small = case.model.clone().limits(Limits::default().with_max_memory_bytes(64 << 10));
    match small.predict(&rows) {
        Err(OnnxError::MemoryLimit { bytes, limit, .. }) => assert!(bytes > limit && limit == 64 << 10),
        other => panic!("expected a memory-limit error, got {other:?}"),
    }
    // Small batches still fit, and the model still answers correctly.
    assert_eq!(small.predict(&rows[..12 * 10]).unwrap(), expected[..10]);

    // In a Client the engine's limits apply to ONNX models too.
    let client = Client::builder()
        .engine(Engine::builder().limits(Limits::default().with_deadline(Duration::ZERO)).build().unwrap())
        .model(ModelConfig::new(ModelSource::Onnx(case.model.clone())))
        .log_to(MemorySink::new())
        .build()
        .unwrap();
    let request = case.inputs.iter().zip(&case.rows[0]).fold(Request::new(), |r, (name, x)| r.value(name, *x));
    let err = client.predict("mlp_regressor", &request).unwrap_err();
    assert!(err.to_string().contains("past its deadline"), "{err}");
}
