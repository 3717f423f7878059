//! The Unleash client specification (npm `@unleash/client-specification`), every
//! `tests` and `variantTests` case of every suite, through fresco's flag layer: each
//! suite's state loaded as a snapshot, each case evaluated by `UnleashFlags`.
//!
//! `.ci/run` fetches the suites and points `FRESCO_UNLEASH_SPEC` at their
//! `specifications/` directory; run with `--ignored`. Without it the test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use fresco_unleash::{Context, UnleashFlags};
use serde_json::Value;

fn spec_dir() -> std::path::PathBuf {
    match std::env::var_os("FRESCO_UNLEASH_SPEC") {
        Some(dir) => dir.into(),
        None => panic!("FRESCO_UNLEASH_SPEC is not set: point it at @unleash/client-specification's specifications/"),
    }
}

#[test]
#[ignore = "needs the client specification from npm (FRESCO_UNLEASH_SPEC); .ci/run provides it"]
fn every_case_of_every_client_specification_suite_passes() {
    let dir = spec_dir();
    let index: Vec<String> = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    assert!(index.len() >= 22, "the index lists {} suites", index.len());
    let (mut cases, mut failures) = (0, Vec::new());
    for suite_file in &index {
        let suite: Value = serde_json::from_slice(&std::fs::read(dir.join(suite_file)).unwrap()).unwrap();
        let name = suite["name"].as_str().unwrap_or(suite_file);
        let flags = UnleashFlags::from_snapshot(&serde_json::to_vec(&suite["state"]).unwrap())
            .unwrap_or_else(|e| panic!("{name}: state does not load: {e}"));
        for case in suite["tests"].as_array().into_iter().flatten() {
            cases += 1;
            let context: Context = serde_json::from_value(case["context"].clone()).unwrap();
            let flag = case["toggleName"].as_str().unwrap();
            let got = flags.is_enabled(flag, &context);
            if Some(got) != case["expectedResult"].as_bool() {
                failures.push(format!("{name}: {}: enabled = {got}", case["description"]));
            }
        }
        for case in suite["variantTests"].as_array().into_iter().flatten() {
            cases += 1;
            let context: Context = serde_json::from_value(case["context"].clone()).unwrap();
            let flag = case["toggleName"].as_str().unwrap();
            let expected = &case["expectedResult"];
            let variant = flags.variant(flag, &context);
            let payload: HashMap<String, String> = match expected.get("payload") {
                Some(p) => serde_json::from_value(p.clone()).unwrap(),
                None => HashMap::new(),
            };
            let ok = Some(variant.name.as_str()) == expected["name"].as_str()
                && Some(variant.enabled) == expected["enabled"].as_bool()
                && variant.payload == payload
                && expected
                    .get("feature_enabled")
                    .is_none_or(|e| e.as_bool() == Some(flags.is_enabled(flag, &context)));
            if !ok {
                failures.push(format!("{name}: {}: got {variant:?}, expected {expected}", case["description"]));
            }
        }
    }
    println!("{cases} cases in {} suites", index.len());
    assert!(cases >= 279, "only {cases} cases found (6.1.0 has 279)");
    assert!(failures.is_empty(), "{} of {cases} cases failed:\n{}", failures.len(), failures.join("\n"));
}
