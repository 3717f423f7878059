//! ONNX models through tract reproduce onnxruntime's outputs (fixtures made by
//! `tests/onnx/make_fixtures.py` with scikit-learn, skl2onnx and onnxruntime).
//!
//! Both engines compute in f32 and choose kernels by CPU (summation order, FMA,
//! vectorised `tanh` and `exp`), so neither is an exact oracle for the other and a
//! fixed tolerance tuned on one CPU fails on another. Instead each case carries the
//! network's layers (the f32 weights the graph holds): the test evaluates them in f64,
//! bounds by how much *any* f32 evaluation may differ from that value
//! ([`rounding_bound`]), and requires tract's and onnxruntime's outputs both within
//! the bound. The bound is a few 1e-5 of an output at most, while a wrong activation
//! or a wrong weight moves outputs by 1e-2 and more
//! (`a_wrong_activation_is_outside_the_bound`).
//!
//! `FRESCO_ONNX_DIR` points the test at freshly generated fixtures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use fresco::abi::{InputSpec, ModelKind, ModelMetadata};
use fresco::{Client, MemorySink, ModelConfig, ModelSource, OnnxModel, Request};
use serde_json::Value as Json;

fn fixtures() -> PathBuf {
    std::env::var_os("FRESCO_ONNX_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/onnx/fixtures"))
}

struct Layer {
    /// `weights[i][j]`: input `i` to unit `j`, as f32 values.
    weights: Vec<Vec<f64>>,
    bias: Vec<f64>,
    activation: String,
}

struct Case {
    name: String,
    model: OnnxModel,
    inputs: Vec<String>,
    rows: Vec<Vec<f64>>,
    /// onnxruntime's outputs.
    expected: Vec<Vec<f64>>,
    layers: Vec<Layer>,
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

fn vector(v: &Json) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn matrix(v: &Json) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(vector).collect()
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
        let layers = case["layers"]
            .as_array()
            .expect("the case records the network's layers (make_fixtures.py)")
            .iter()
            .map(|l| Layer {
                weights: matrix(&l["weights"]),
                bias: vector(&l["bias"]),
                activation: l["activation"].as_str().unwrap().to_owned(),
            })
            .collect();
        cases.push(Case {
            name: name.into(),
            model,
            inputs,
            rows: matrix(&case["rows"]),
            expected: matrix(&case["expected"]),
            layers,
        });
    }
    cases
}

/// Unit roundoff of f32 (round to nearest): 2^-24.
const U: f64 = f32::EPSILON as f64 / 2.0;

/// Error budget for one evaluation of `tanh`, `exp` or the logistic function by an f32
/// kernel, absolute for `tanh` and the logistic (|y| ≤ 1) and relative for `exp`.
/// tract and onnxruntime use vectorised polynomial or rational approximations accurate
/// to a few ulps (2^-21 is 4 ulps of 0.5); 2^-18 leaves 8× that.
const FUNCTION_ERROR: f64 = 1.0 / (1u64 << 18) as f64;

/// Higham's γ_n = n·u / (1 − n·u): |fl(Σ xᵢ) − Σ xᵢ| ≤ γ_{n−1} Σ |xᵢ| for any order of
/// summation, with or without fused multiply-adds (a dot product of n terms: γ_n).
fn gamma(n: usize) -> f64 {
    let nu = n as f64 * U;
    nu / (1.0 - nu)
}

/// The network evaluated in f64 on the row rounded to f32 (as both engines take it),
/// and per output a bound on |any f32 evaluation − that value|.
///
/// A running first-order error analysis, layer by layer, with `e` the bound carried on
/// each activation: a unit `z = Σ aᵢ wᵢ + b` computed in f32 from inputs known within
/// `eᵢ` is within `Σ |wᵢ| eᵢ + γ_{n+1} (Σ (|aᵢ| + eᵢ) |wᵢ| + |b|)`; `relu` and `tanh`
/// are 1-Lipschitz and the logistic ¼-Lipschitz (plus [`FUNCTION_ERROR`] for the
/// approximated functions); softmax moves `log pᵢ` by at most `dᵢ = eᵢ + Σ pⱼ eⱼ`, so
/// `pᵢ` by `pᵢ (exp(dᵢ) − 1)`, plus the rounding of its exps, sum and division; the
/// result is rounded to f32 once more. f64's own rounding is 2^-29 of f32's, left out.
fn rounding_bound(layers: &[Layer], row: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut a: Vec<f64> = row.iter().map(|&x| f64::from(x as f32)).collect();
    let mut e = vec![0.0; a.len()];
    for layer in layers {
        let n = a.len();
        let units = layer.bias.len();
        let mut z = Vec::with_capacity(units);
        let mut ez = Vec::with_capacity(units);
        for j in 0..units {
            let (mut sum, mut magnitude, mut carried) = (layer.bias[j], layer.bias[j].abs(), 0.0);
            for i in 0..n {
                let w = layer.weights[i][j];
                sum += a[i] * w;
                magnitude += (a[i].abs() + e[i]) * w.abs();
                carried += e[i] * w.abs();
            }
            z.push(sum);
            ez.push(carried + gamma(n + 1) * magnitude);
        }
        (a, e) = match layer.activation.as_str() {
            "identity" => (z, ez),
            "relu" => (z.iter().map(|v| v.max(0.0)).collect(), ez),
            "tanh" => (z.iter().map(|v| v.tanh()).collect(), ez.iter().map(|d| d + FUNCTION_ERROR).collect()),
            "logistic" => (
                z.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect(),
                ez.iter().map(|d| d / 4.0 + FUNCTION_ERROR).collect(),
            ),
            "softmax" => {
                let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let exps: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
                let total: f64 = exps.iter().sum();
                let p: Vec<f64> = exps.iter().map(|x| x / total).collect();
                // The subtraction of the maximum is one more rounding of each logit.
                let ez: Vec<f64> = ez.iter().zip(&z).map(|(d, v)| d + U * (v - max).abs()).collect();
                let mean: f64 = p.iter().zip(&ez).map(|(pj, d)| pj * d).sum();
                let e = p
                    .iter()
                    .zip(&ez)
                    .map(|(pi, d)| pi * ((d + mean).exp_m1() + FUNCTION_ERROR + gamma(units + 1)))
                    .collect();
                (p, e)
            }
            other => panic!("activation `{other}` has no error rule here"),
        };
    }
    let e = e.iter().zip(&a).map(|(d, v)| d + U * v.abs()).collect();
    (a, e)
}

/// The largest |output − exact| / bound over the first `outputs.len()` rows of a case:
/// at most 1 passes.
fn worst_ratio(case: &Case, layers: &[Layer], outputs: &[Vec<f64>], engine: &str) -> (f64, String) {
    let mut worst = (0.0, String::new());
    for (r, (row, got)) in case.rows.iter().zip(outputs).enumerate() {
        let (exact, bound) = rounding_bound(layers, row);
        assert_eq!(got.len(), exact.len(), "{} row {r}: {engine} output count", case.name);
        for (k, ((g, x), b)) in got.iter().zip(&exact).zip(&bound).enumerate() {
            let ratio = (g - x).abs() / b;
            // A NaN output counts as the worst.
            if ratio.is_nan() || ratio > worst.0 {
                worst = (ratio, format!("{} row {r} output {k}: {engine} {g} vs exact {x}, bound {b:e}", case.name));
            }
        }
    }
    worst
}

/// An engine's outputs within the f32 bound of the exact value, on every row and output.
fn assert_within_bound(case: &Case, engine: &str, outputs: &[Vec<f64>]) {
    let (ratio, at) = worst_ratio(case, &case.layers, outputs, engine);
    assert!(ratio <= 1.0, "{at}: {ratio:.2}× the f32 rounding bound");
    eprintln!("{}: {engine} at most {ratio:.3}× the f32 rounding bound", case.name);
}

fn rows_of(flat: &[f64], width: usize) -> Vec<Vec<f64>> {
    flat.chunks(width).map(<[f64]>::to_vec).collect()
}

#[test]
fn tract_matches_onnxruntime() {
    for case in cases() {
        let flat: Vec<f64> = case.rows.concat();
        let width = case.expected[0].len();
        assert_within_bound(&case, "onnxruntime", &case.expected);
        assert_within_bound(&case, "tract", &rows_of(&case.model.predict(&flat).unwrap(), width));
        // Batch of one, as a service calls it (other kernels may run on one row).
        assert_within_bound(&case, "tract, one row", &[case.model.predict(&case.rows[0]).unwrap()]);
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
        let got: Vec<Vec<f64>> =
            predictions.iter().map(|p| output_names.iter().map(|o| p.output(o).unwrap()).collect()).collect();
        assert_within_bound(&case, "tract through the Client", &got);
    }
}

/// The bound is tight enough to catch real mistakes: with the hidden layers'
/// activation swapped (tanh ↔ relu, as a converter bug would), onnxruntime's own
/// outputs fall far outside it.
#[test]
fn a_wrong_activation_is_outside_the_bound() {
    for case in cases() {
        let swapped: Vec<Layer> = case
            .layers
            .iter()
            .enumerate()
            .map(|(k, l)| Layer {
                weights: l.weights.clone(),
                bias: l.bias.clone(),
                activation: match l.activation.as_str() {
                    "tanh" if k + 1 < case.layers.len() => "relu".into(),
                    "relu" if k + 1 < case.layers.len() => "tanh".into(),
                    other => other.into(),
                },
            })
            .collect();
        let (ratio, at) = worst_ratio(&case, &swapped, &case.expected, "onnxruntime");
        assert!(ratio > 100.0, "{at}: only {ratio:.2}× the bound with a wrong activation");
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
