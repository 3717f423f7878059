//! fresco-drift against scipy, numpy and Evidently on the same data.
//!
//! The cases come from `drift/oracle/make_fixtures.py` (committed in
//! `tests/fixtures/oracle.json`; CI regenerates them with a fresh seed and points
//! `FRESCO_DRIFT_ORACLE` at the new file). Every number must agree to 1e-6, absolute or
//! relative.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fresco_abi::StatsKind;
use fresco_drift::{
    ColumnKind, DriftConfig, Method, Reference, chi_square, detect, jensen_shannon, ks_2samp, profile,
    wasserstein_weighted,
};
use serde_json::Value;

const TOLERANCE: f64 = 1e-6;

fn fixtures() -> Value {
    let path = std::env::var("FRESCO_DRIFT_ORACLE")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/oracle.json").to_owned());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("an array").iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().expect("a number")
}

fn close(what: &str, got: f64, want: f64) {
    let diff = (got - want).abs();
    assert!(
        diff <= TOLERANCE || diff <= TOLERANCE * want.abs() || (got.is_infinite() && got == want),
        "{what}: fresco {got:e}, reference {want:e} (difference {diff:e})"
    );
}

fn cases<'a>(doc: &'a Value, key: &str) -> &'a Vec<Value> {
    let list = doc[key].as_array().unwrap_or_else(|| panic!("no `{key}` cases"));
    assert!(!list.is_empty(), "no `{key}` cases");
    list
}

#[test]
fn kolmogorov_smirnov_equals_scipy() {
    let doc = fixtures();
    for (i, case) in cases(&doc, "ks").iter().enumerate() {
        let t = ks_2samp(&floats(&case["a"]), &floats(&case["b"])).unwrap();
        close(&format!("ks case {i} statistic"), t.statistic, num(&case["statistic"]));
        close(&format!("ks case {i} p-value"), t.p_value, num(&case["p_value"]));
    }
}

#[test]
fn wasserstein_equals_scipy() {
    let doc = fixtures();
    for (i, case) in cases(&doc, "wasserstein").iter().enumerate() {
        let (uw, vw) = (
            case["u_weights"].as_array().map(|_| floats(&case["u_weights"])),
            case["v_weights"].as_array().map(|_| floats(&case["v_weights"])),
        );
        let d = wasserstein_weighted(&floats(&case["u"]), uw.as_deref(), &floats(&case["v"]), vw.as_deref()).unwrap();
        close(&format!("wasserstein case {i}"), d, num(&case["distance"]));
    }
}

#[test]
fn chi_square_and_jensen_shannon_equal_scipy() {
    let doc = fixtures();
    for (i, case) in cases(&doc, "chisquare").iter().enumerate() {
        let (stat, p) = chi_square(&floats(&case["observed"]), &floats(&case["expected"])).unwrap();
        close(&format!("chisquare case {i} statistic"), stat, num(&case["statistic"]));
        close(&format!("chisquare case {i} p-value"), p, num(&case["p_value"]));
    }
    for (i, case) in cases(&doc, "jensenshannon").iter().enumerate() {
        let d = jensen_shannon(&floats(&case["p"]), &floats(&case["q"])).unwrap();
        close(&format!("jensenshannon case {i}"), d, num(&case["distance"]));
    }
}

fn kind(case: &Value) -> (ColumnKind, StatsKind) {
    match case["kind"].as_str() {
        Some("numeric") => (ColumnKind::Numeric, StatsKind::Numeric),
        _ => (ColumnKind::Categorical, StatsKind::Categorical),
    }
}

fn method(name: &str) -> Method {
    [Method::Ks, Method::ChiSquare, Method::ZTest, Method::Wasserstein, Method::JensenShannon, Method::Psi]
        .into_iter()
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("Evidently chose `{name}`, a test fresco-drift does not have"))
}

#[test]
fn drift_verdicts_equal_evidentlys() {
    let doc = fixtures();
    for (i, case) in cases(&doc, "evidently").iter().enumerate() {
        let (column, _) = kind(case);
        let (reference, current) = (floats(&case["reference"]), floats(&case["current"]));
        for key in ["default", "psi", "jensenshannon"] {
            let want = &case[key];
            let config = DriftConfig { method: (key != "default").then(|| method(key)), ..DriftConfig::default() };
            let got = detect(&reference, &current, column, &config).unwrap();
            let what = format!("evidently case {i} ({} {key})", case["kind"]);
            assert_eq!(got.method.name(), want["method"].as_str().unwrap(), "{what}: test chosen");
            close(&format!("{what} score"), got.score, num(&want["score"]));
            close(&format!("{what} threshold"), got.threshold, num(&want["threshold"]));
            assert_eq!(got.drifted, want["drifted"].as_bool().unwrap(), "{what}: verdict");
        }
    }
}

/// The same verdicts from the training statistics alone (what a model's artifact
/// carries): exact where the statistics keep every value or the counts per value,
/// within 2 % (or 0.01) where they keep order statistics.
#[test]
fn verdicts_from_training_statistics_equal_evidentlys() {
    let doc = fixtures();
    for (i, case) in cases(&doc, "evidently").iter().enumerate() {
        let (_, stats_kind) = kind(case);
        let stats = profile(&floats(&case["reference"]), stats_kind, 20);
        let want = &case["default"];
        let got = Reference::new(&stats).test(&floats(&case["current"]), &DriftConfig::default()).unwrap();
        let what = format!("evidently case {i} ({}) from statistics", case["kind"]);
        assert_eq!(got.method.name(), want["method"].as_str().unwrap(), "{what}: test chosen");
        assert_eq!(got.drifted, want["drifted"].as_bool().unwrap(), "{what}: verdict");
        let exact = stats.sample.len() as u64 == stats.present() || !stats.categories.is_empty();
        if exact {
            close(&format!("{what} score"), got.score, num(&want["score"]));
        } else {
            // Order statistics stand for the column: within 2 %, or 0.01 of a standard
            // deviation where the distance itself is small.
            let diff = (got.score - num(&want["score"])).abs();
            assert!(
                diff < 0.02 * num(&want["score"]).abs() || diff < 0.01,
                "{what}: {} vs {}",
                got.score,
                num(&want["score"])
            );
        }
    }
}

#[test]
fn training_statistics_equal_numpys() {
    let doc = fixtures();
    for (i, case) in cases(&doc, "profile").iter().enumerate() {
        let (_, stats_kind) = kind(case);
        let bins = case["bins"].as_u64().unwrap() as usize;
        let stats = profile(&floats(&case["values"]), stats_kind, bins);
        let what = format!("profile case {i}");
        close(&format!("{what} missing rate"), stats.missing_rate, num(&case["missing_rate"]));
        close(&format!("{what} min"), stats.min.unwrap(), num(&case["min"]));
        close(&format!("{what} max"), stats.max.unwrap(), num(&case["max"]));
        close(&format!("{what} mean"), stats.mean.unwrap(), num(&case["mean"]));
        close(&format!("{what} std"), stats.std.unwrap(), num(&case["std"]));
        if let Some(edges) = case.get("bin_edges") {
            let edges = floats(edges);
            assert_eq!(stats.bin_edges.len(), edges.len(), "{what}: edges");
            for (g, w) in stats.bin_edges.iter().zip(&edges) {
                close(&format!("{what} edge"), *g, *w);
            }
            let counts: Vec<u64> = case["counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect();
            assert_eq!(stats.counts, counts, "{what}: counts");
        }
    }
}
