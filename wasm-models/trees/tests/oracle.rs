//! The native evaluator against LightGBM's and XGBoost's own predictions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fresco_test_models::oracle;
use fresco_trees::{ParseError, lightgbm, xgboost};

#[test]
fn native_evaluator_reproduces_the_libraries() {
    let mut failures = Vec::new();
    let cases = oracle::cases();
    for case in &cases {
        let text = case.model_text();
        let parsed = match case.library.as_str() {
            "lightgbm" => lightgbm::parse(&text),
            "xgboost" => xgboost::parse(&text),
            other => panic!("{}: unknown library {other}", case.name),
        };
        if let Some(kind) = &case.expect_error {
            assert_eq!(kind, "unsupported");
            assert!(matches!(parsed, Err(ParseError::Unsupported { .. })), "{}: {parsed:?}", case.name);
            continue;
        }
        let ensemble = parsed.unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let got = ensemble.predict(&case.input_rows());
        let err = oracle::max_relative_error(&got, &case.expected_rows());
        println!("{:<28} rows {:>4}  max rel err {err:e}", case.name, case.inputs.len());
        if err > 1e-9 {
            failures.push(format!("{}: max relative error {err:e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
