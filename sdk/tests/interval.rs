//! Calibrated intervals through the Client: quantile boosters packed with conformal
//! offsets give `Prediction::interval`, equal to applying the offsets by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fresco::abi::{IntervalSpec, SegmentCell, SegmentFeature, SegmentOffsets};
use fresco::{Client, MemorySink, ModelConfig, ModelSource, Request};

/// The q10, q50 and q90 LightGBM boosters of the oracle fixtures, packed.
fn quantile_compiler() -> fresco_compiler::Compiler {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm-models/oracle/fixtures");
    let mut compiler = fresco_compiler::Compiler::new("quantiles", "1");
    for q in [10, 50, 90] {
        compiler = compiler.add_file(fixtures.join(format!("lgb_quantile_{q}.model.txt")), None).unwrap();
    }
    compiler
}

fn quantile_module(interval: Option<IntervalSpec>) -> Vec<u8> {
    match interval {
        Some(interval) => quantile_compiler().interval(interval).compile().unwrap(),
        None => quantile_compiler().compile().unwrap(),
    }
}

fn spec(offset: f64) -> IntervalSpec {
    IntervalSpec {
        coverage: 0.8,
        lower: "q10".into(),
        mid: Some("q50".into()),
        upper: "q90".into(),
        lower_offset: offset,
        upper_offset: 2.0 * offset,
        segments: None,
    }
}

/// `spec(offset)` with offsets per segment of input `by`: bins below -1, -1 to 1, from
/// 1 and missing; the middle bin has no cell, so it keeps the spec's offsets.
fn segmented(offset: f64, by: &str) -> IntervalSpec {
    let cell =
        |bin: u32, lower: f64| SegmentCell { bins: vec![bin], count: 50, lower_offset: lower, upper_offset: 3.0 };
    IntervalSpec {
        segments: Some(SegmentOffsets {
            features: vec![SegmentFeature { input: by.into(), edges: vec![-1.0, 1.0] }],
            min_count: 50,
            cells: vec![cell(0, 1.0), cell(2, 2.0), cell(3, 4.0)],
        }),
        ..spec(offset)
    }
}

fn client(wasm: Vec<u8>) -> Client {
    Client::builder().model(ModelConfig::new(ModelSource::wasm_bytes(wasm))).log_to(MemorySink::new()).build().unwrap()
}

fn requests(client: &Client) -> Vec<Request> {
    let inputs: Vec<String> = client.metadata("quantiles").unwrap().inputs.iter().map(|i| i.name.clone()).collect();
    (0..200)
        .map(|r| {
            inputs.iter().enumerate().fold(Request::new(), |req, (i, name)| {
                req.value(name.as_str(), ((r * 7 + i * 13) % 31) as f64 / 7.0 - 2.0)
            })
        })
        .collect()
}

#[test]
fn predictions_carry_the_calibrated_interval() {
    let client = client(quantile_module(Some(spec(0.25))));
    for p in client.predict_batch("quantiles", &requests(&client)).unwrap() {
        let i = p.interval().expect("the model declares an interval").unwrap();
        let (q10, q50, q90) = (p.output("q10").unwrap(), p.output("q50").unwrap(), p.output("q90").unwrap());
        let (a, b) = (q10 - 0.25, q90 + 0.5);
        assert_eq!((i.low, i.high), (a.min(b), a.max(b)));
        assert_eq!(i.mid, q50.clamp(i.low, i.high));
        assert_eq!(i.coverage, 0.8);
        assert!(i.low <= i.mid && i.mid <= i.high);
    }
}

#[test]
fn a_model_without_an_interval_has_none() {
    let client = client(quantile_module(None));
    let p = client.predict("quantiles", &requests(&client)[0]).unwrap();
    assert!(p.interval().is_none());
}

#[test]
fn an_interval_naming_a_missing_output_is_refused_at_compile_time() {
    let mut bad = spec(0.1);
    bad.upper = "q95".into();
    let err = quantile_compiler().interval(bad).compile().unwrap_err();
    assert!(err.to_string().contains("`q95`"), "{err}");
}

#[test]
fn segmented_offsets_follow_each_rows_segment_through_the_client() {
    let by = client(quantile_module(None)).metadata("quantiles").unwrap().inputs[1].name.clone();
    let client = client(quantile_module(Some(segmented(0.25, &by))));
    let mut requests = requests(&client);
    // A missing value has a segment of its own.
    requests[3] = requests[3].clone().value(by.as_str(), f64::NAN);
    let mut seen = [0usize; 4];
    for p in client.predict_batch("quantiles", &requests).unwrap() {
        let i = p.interval().expect("the model declares an interval").unwrap();
        let value = p.inputs().find(|(name, _)| *name == by).map(|(_, v)| v).unwrap();
        let (bin, lower, upper) = match value {
            v if v.is_nan() => (3, 4.0, 3.0),
            v if v < -1.0 => (0, 1.0, 3.0),
            v if v < 1.0 => (1, 0.25, 0.5),
            _ => (2, 2.0, 3.0),
        };
        seen[bin] += 1;
        let (a, b) = (p.output("q10").unwrap() - lower, p.output("q90").unwrap() + upper);
        assert_eq!((i.low, i.high), (a.min(b), a.max(b)), "{by} = {value}");
    }
    assert!(seen.iter().all(|&n| n > 0), "every segment is exercised: {seen:?}");
}

#[test]
fn segments_by_an_unknown_input_are_refused_at_compile_time() {
    let err = quantile_compiler().interval(segmented(0.1, "no_such_input")).compile().unwrap_err();
    assert!(err.to_string().contains("`no_such_input`"), "{err}");
}
