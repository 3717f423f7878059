//! Parity cases for the web package (`web/`): what the Rust host answers for every
//! oracle fixture and for the shipped ETA model, written as files the package's tests
//! read (`web/test/parity.js`), in Node and in Chromium alike.
//!
//! Each fixture is compiled three times: as trained (every input passes NaN), with a
//! default for every other input, and with the input most often missing declared
//! required (`error`). Every row is answered two ways, as the Rust host answers them:
//! - `raw`: the row as f64 (NaN is missing), the missing policy applied, then
//!   `Model::predict` (what the Python package and `fresco score` do);
//! - `typed`: each value first converted by [`fresco::Value::to_model_input`] (what
//!   the `Client` does with a request), so a value the input's type refuses is an error
//!   naming the input.
//!
//! Values travel as the hex of their f64 bits, so NaN, -0.0 and subnormals survive JSON
//! and a comparison is bit for bit. `cargo run -p fresco-examples --example web_cases --
//! DIR` writes them; `examples/tests/web_package.rs` writes them and runs the package's
//! tests in Node and in headless Chromium.

use std::path::Path;

use fresco::Value;
use fresco::abi::{MissingPolicy, ModelMetadata};
use fresco::interval::IntervalRule;
use fresco::runtime::{Engine, Model};
use fresco_compiler::{Compiler, Format};
use fresco_test_models::oracle;
use fresco_test_models::synthetic::SplitMix64;
use serde_json::{Value as Json, json};

type BoxError = Box<dyn std::error::Error>;

/// What one run wrote: the number of models and of rows answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Model files (fixtures × policy variants, the ETA model, modules that break the ABI).
    pub models: usize,
    /// Rows with an expected answer, over all models.
    pub rows: usize,
}

/// The hex of `x`'s bits, as the package's tests compare them.
pub fn hex(x: f64) -> String {
    format!("{:016x}", x.to_bits())
}

/// Writes `cases.json` and one `.wasm` per model into `dir` (created if absent).
pub fn write(dir: &Path) -> Result<Written, BoxError> {
    std::fs::create_dir_all(dir)?;
    let engine = Engine::new()?;
    let mut cases = Vec::new();
    let mut written = Written { models: 0, rows: 0 };
    for case in oracle::cases() {
        if case.expect_error.is_some() {
            continue;
        }
        let format = if case.library == "lightgbm" { Format::LightGbm } else { Format::XgBoost };
        let compiler = Compiler::new(&case.name, "1").add_source(&case.model_text(), format)?;
        let rows: Vec<Vec<f64>> =
            case.inputs.iter().map(|r| r.iter().map(|v| v.unwrap_or(f64::NAN)).collect()).collect();
        let names: Vec<String> = compiler.metadata()?.inputs.iter().map(|i| i.name.clone()).collect();
        for (variant, compiler) in policy_variants(compiler, &names, &rows) {
            let wasm = compiler.compile()?;
            let file = format!("{}.{variant}.wasm", case.name);
            std::fs::write(dir.join(&file), &wasm)?;
            let model = Model::from_bytes(&engine, &wasm)?;
            cases.push(answer(&model, &file, &rows)?);
            written.models += 1;
            written.rows += rows.len();
        }
    }
    let eta = crate::eta::model_path();
    std::fs::copy(&eta, dir.join("eta.wasm"))?;
    let model = Model::from_file(&engine, &eta)?;
    let rows = eta_rows(1_000);
    cases.push(answer(&model, "eta.wasm", &rows)?);
    written.models += 1;
    written.rows += rows.len();
    let hostile = write_hostile(dir, &engine)?;
    written.models += hostile.len();
    let document = json!({
        "written_by": "cargo run -p fresco-examples --example web_cases",
        "cases": cases,
        "hostile": hostile,
    });
    std::fs::write(dir.join("cases.json"), serde_json::to_vec(&document)?)?;
    Ok(written)
}

/// Modules that each break one rule of the ABI, and what the Rust host made of them:
/// refused at load (`load`: the error), or loaded and then refused when scoring one row
/// (`score`: the error), or scored (`outputs`). Left out: those whose refusal is a
/// sandbox limit of the Rust host (deadline, memory cap), which a browser does not set.
fn write_hostile(dir: &Path, engine: &Engine) -> Result<Vec<Json>, BoxError> {
    use fresco_test_models::hostile;
    let modules: [(&str, Vec<u8>); 16] = [
        ("trap", hostile::trap()),
        ("stack_overflow", hostile::stack_overflow()),
        ("deep_recursion", hostile::deep_recursion()),
        ("nonzero_status", hostile::nonzero_status()),
        ("bad_alloc", hostile::bad_alloc()),
        ("missing_export", hostile::missing_export()),
        ("mistyped_export", hostile::mistyped_export()),
        ("wrong_abi_version", hostile::wrong_abi_version()),
        ("metadata_abi_2", hostile::metadata_abi_2()),
        ("metadata_missing", hostile::metadata_missing()),
        ("metadata_malformed", hostile::metadata_malformed()),
        ("metadata_without_outputs", hostile::metadata_without_outputs()),
        ("metadata_twice", hostile::metadata_twice()),
        ("with_import", hostile::with_import()),
        ("not_wasm", hostile::not_wasm()),
        ("truncated", hostile::truncated()),
    ];
    let mut answers = Vec::with_capacity(modules.len());
    for (name, bytes) in modules {
        let file = format!("hostile.{name}.wasm");
        std::fs::write(dir.join(&file), &bytes)?;
        let answer = match Model::from_bytes(engine, &bytes) {
            Err(e) => json!({ "load": e.to_string() }),
            Ok(model) => match model.predict(&[1.0, 2.0]) {
                Err(e) => json!({ "score": e.to_string() }),
                Ok(outputs) => json!({ "outputs": outputs.iter().map(|x| hex(*x)).collect::<Vec<_>>() }),
            },
        };
        answers.push(json!({ "model": file, "rust": answer }));
    }
    Ok(answers)
}

/// The fixture as trained, with defaults for every other input, and with the input
/// most often missing in `rows` required.
fn policy_variants(compiler: Compiler, names: &[String], rows: &[Vec<f64>]) -> Vec<(&'static str, Compiler)> {
    let mut with_defaults = compiler.clone();
    for (k, name) in names.iter().enumerate().step_by(2) {
        // Defaults that are not round numbers, so a wrong input or a dropped default shows.
        with_defaults = with_defaults.missing(name, MissingPolicy::Default(k as f64 * 0.75 - 2.0 + 1.0 / 3.0));
    }
    let mut variants = vec![("nan", compiler.clone()), ("default", with_defaults)];
    let missing_count = |i: usize| rows.iter().filter(|r| r.get(i).is_some_and(|x| x.is_nan())).count();
    if let Some(most) = (0..names.len()).max_by_key(|&i| missing_count(i)).filter(|&i| missing_count(i) > 0) {
        variants.push(("error", compiler.missing(&names[most], MissingPolicy::Error)));
    }
    variants
}

/// The Rust host's answers for every row of `rows`, both ways, and the interval of
/// each row when the model declares one.
fn answer(model: &Model, file: &str, rows: &[Vec<f64>]) -> Result<Json, BoxError> {
    let meta = model.metadata();
    let rule = IntervalRule::for_model(meta)?;
    let mut raw = Vec::with_capacity(rows.len());
    let mut typed = Vec::with_capacity(rows.len());
    for row in rows {
        raw.push(score(model, meta, rule.as_ref(), row.clone())?);
        let converted: Result<Vec<f64>, String> = meta
            .inputs
            .iter()
            .zip(row)
            .map(|(spec, &x)| Value::F64(x).to_model_input(spec.ty).map_err(|_| spec.name.clone()))
            .collect();
        typed.push(match converted {
            Ok(values) => score(model, meta, rule.as_ref(), values)?,
            Err(input) => json!({ "invalid": input }),
        });
    }
    Ok(json!({
        "model": file,
        "rows": rows.iter().map(|r| r.iter().map(|x| hex(*x)).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "raw": raw,
        "typed": typed,
    }))
}

/// One row through the missing policy and the model (and the interval rule).
fn score(
    model: &Model,
    meta: &ModelMetadata,
    rule: Option<&IntervalRule>,
    mut row: Vec<f64>,
) -> Result<Json, BoxError> {
    if let Err(missing) = meta.apply_missing_policy(&mut row) {
        return Ok(json!({ "missing": missing.input }));
    }
    let outputs = model.predict(&row)?;
    let mut answer = json!({ "outputs": outputs.iter().map(|x| hex(*x)).collect::<Vec<_>>() });
    if let Some(rule) = rule {
        answer["interval"] = match rule.apply(&row, &outputs) {
            Ok(i) => json!({
                "bounds": [hex(i.low), hex(i.mid), hex(i.high)],
                "range": i.display("min").to_string(),
            }),
            Err(e) => json!({ "error": e.to_string() }),
        };
    }
    Ok(answer)
}

/// Random rows for the ETA model over and beyond its inputs' ranges: missing values,
/// negative distances, unseen and invalid weather categories.
pub fn eta_rows(n: usize) -> Vec<Vec<f64>> {
    let mut rng = SplitMix64::new(0xE7A);
    let mut value = |input: usize| -> f64 {
        if rng.below(10) == 0 {
            return f64::NAN;
        }
        let u = rng.next_f64();
        match input {
            0 => 25.0 * u - 1.0,                                     // distance, some negative
            1 => 26.0 * u - 1.0,                                     // hour
            2 => (rng.below(9) as f64) - 1.0,                        // day of week, some out of range
            3 => 1.4 * u - 0.2,                                      // traffic
            4 => [0.0, 1.0, 2.0, 3.0, 7.0, -1.0, 1.5][rng.below(7)], // weather: unseen and invalid categories
            5 => 40.0 * u,                                           // prep time
            _ => (rng.below(60)) as f64,                             // orders in the last 30 min
        }
    };
    (0..n).map(|_| (0..crate::eta::INPUTS.len()).map(&mut value).collect()).collect()
}
