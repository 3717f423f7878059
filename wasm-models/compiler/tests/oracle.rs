//! Compiled modules against LightGBM's and XGBoost's own predictions, and bit for bit
//! against the native evaluator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fresco_compiler::{CompileError, Compiler, Format, Layout};
use fresco_runtime::{Engine, Model};
use fresco_test_models::oracle;

#[test]
fn compiled_modules_reproduce_the_libraries() {
    let engine = Engine::new().unwrap();
    let cases = oracle::cases();
    let mut failures = Vec::new();
    for case in &cases {
        let format = if case.library == "lightgbm" {
            Format::LightGbm
        } else {
            Format::XgBoost
        };
        let compiled = Compiler::new(&case.name, "1").add_source(&case.model_text(), format);
        if case.expect_error.is_some() {
            assert!(
                matches!(
                    compiled,
                    Err(CompileError::Parse {
                        source: fresco_trees::ParseError::Unsupported { .. },
                        ..
                    })
                ),
                "{}: expected an unsupported-feature error",
                case.name
            );
            continue;
        }
        let compiler = compiled.unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let inputs = case.input_rows();
        let native = compiler.ensembles().next().unwrap().predict(&inputs);
        for layout in [Layout::Branches, Layout::Tables] {
            let wasm = compiler
                .clone()
                .layout(layout)
                .compile()
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let model =
                Model::from_bytes(&engine, &wasm).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let got = model
                .predict(&inputs)
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let err = oracle::max_relative_error(&got, &case.expected_rows());
            let bitwise = got
                .iter()
                .zip(&native)
                .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
            println!(
                "{:<28} {layout:?} {:>7} bytes  max rel err {err:.1e}  native bitwise {bitwise}",
                case.name,
                wasm.len()
            );
            if err > 1e-9 || !bitwise {
                failures.push(format!("{} ({layout:?}): max relative error {err:e}, bitwise equal to native: {bitwise}", case.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
