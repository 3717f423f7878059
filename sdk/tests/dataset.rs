//! Training sets from the logs: the join, the policies, schema evolution, and the
//! same answer when memory forces several passes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use fresco::abi::InputType;
use fresco::dataset::{DatasetSpec, TreatmentPolicy, build_training_set};
use fresco::{
    LogConfig, LogSchema, OutcomeRecord, PredictionLog, PredictionRecord, PredictionSink, Timestamp, TreatmentRecord,
};
use fresco_test_models::synthetic::SplitMix64;

#[allow(dead_code)]
mod common;
use common::logs::{read, strings};

const DAY: i64 = 86_400_000_000;
const T0: i64 = 1_764_201_600_000_000; // 2025-11-27T00:00:00Z

struct Logged {
    /// id → (ts, in_holdout, version)
    predictions: BTreeMap<String, (i64, bool, u8)>,
    outcomes: Vec<(String, i64, f64)>,
    treatments: Vec<(String, i64, String)>,
}

fn write_logs(root: &std::path::Path) -> Logged {
    let log = PredictionLog::open(LogConfig::new(root)).unwrap();
    let v1 = Arc::new(LogSchema {
        model: "churn".into(),
        version: "1".into(),
        entities: vec!["user_id".into()],
        inputs: vec![("a".into(), InputType::F64), ("b".into(), InputType::I64)],
        outputs: vec!["p".into()],
    });
    let v2 = Arc::new(LogSchema {
        version: "2".into(),
        inputs: vec![("a".into(), InputType::F64), ("c".into(), InputType::F64)],
        ..(*v1).clone()
    });
    let mut rng = SplitMix64::new(17);
    let mut logged = Logged { predictions: BTreeMap::new(), outcomes: Vec::new(), treatments: Vec::new() };
    for i in 0..2000 {
        let version = if i < 1000 { 1 } else { 2 };
        let ts = T0 + (i as i64) * (DAY / 200); // ten days
        let in_holdout = rng.below(10) == 0;
        let id = format!("p{i:05}");
        let record = PredictionRecord {
            prediction_id: id.clone(),
            ts: Timestamp::from_micros(ts),
            model: "churn".into(),
            model_version: version.to_string(),
            entities: vec![("user_id".into(), format!("u{}", i % 300))],
            inputs: vec![i as f64, (i % 7) as f64],
            outputs: vec![rng.next_f64()],
            holdout: Some("h".into()),
            in_holdout,
            eligible: !in_holdout,
            flag_variant: None,
            latency_us: 5,
        };
        log.append(if version == 1 { &v1 } else { &v2 }, vec![record]).unwrap();
        logged.predictions.insert(id.clone(), (ts, in_holdout, version));
        // Eligible predictions get 0 to 2 treatments, some after the outcome (which then
        // does not count them), named so that ties on time sort by name.
        if !in_holdout {
            for _ in 0..rng.below(3) {
                let at = ts + (rng.next_f64() * 9.0 * DAY as f64) as i64;
                let name = ["discount-10", "discount-20", "call"][rng.below(3)].to_string();
                let t = TreatmentRecord {
                    prediction_id: id.clone(),
                    ts: Timestamp::from_micros(at),
                    treatment: name.clone(),
                };
                log.append_treatments("churn", vec![t]).unwrap();
                logged.treatments.push((id.clone(), at, name));
            }
        }
        // 0 to 3 outcomes: before the prediction (never counts), inside the window,
        // and past it.
        for _ in 0..rng.below(4) {
            let offset = match rng.below(4) {
                0 => -DAY / 10,
                1 | 2 => (rng.next_f64() * 7.0 * DAY as f64) as i64,
                _ => 8 * DAY,
            };
            let label = (rng.below(2)) as f64;
            let o = OutcomeRecord { prediction_id: id.clone(), ts: Timestamp::from_micros(ts + offset), label };
            log.append_outcomes("churn", vec![o]).unwrap();
            logged.outcomes.push((id.clone(), ts + offset, label));
        }
    }
    log.close().unwrap();
    logged
}

/// The join, written out plainly: id → (label, first treatment before the outcome).
fn expected(logged: &Logged, policy: TreatmentPolicy, from: i64, to: i64) -> BTreeMap<String, (f64, Option<String>)> {
    let window = 7 * DAY;
    let mut out = BTreeMap::new();
    for (id, &(ts, in_holdout, _)) in &logged.predictions {
        if ts < from || ts >= to {
            continue;
        }
        let best = logged
            .outcomes
            .iter()
            .filter(|(o, t, _)| o == id && *t >= ts && *t <= ts + window)
            .max_by(|a, b| a.1.cmp(&b.1).then(a.2.total_cmp(&b.2)));
        let Some(&(_, label_ts, label)) = best else { continue };
        let treatment = logged
            .treatments
            .iter()
            .filter(|(t, at, _)| t == id && *at <= label_ts)
            .min_by(|a, b| a.1.cmp(&b.1).then(a.2.cmp(&b.2)))
            .map(|(_, _, name)| name.clone());
        let keep = match policy {
            TreatmentPolicy::HoldoutOnly => in_holdout,
            TreatmentPolicy::Untreated => treatment.is_none(),
            TreatmentPolicy::AllWithTreatment => true,
        };
        if keep {
            out.insert(id.clone(), (label, treatment));
        }
    }
    out
}

#[test]
fn training_sets_match_the_plain_join_for_every_policy() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("logs");
    let logged = write_logs(&root);
    let (from, to) = (T0 + DAY, T0 + 8 * DAY);
    for policy in TreatmentPolicy::ALL {
        for max_outcomes in [usize::MAX, 97] {
            let out = dir.path().join(format!("{policy}-{max_outcomes}.parquet"));
            let spec = DatasetSpec::new(&root, "churn", policy)
                .from(Timestamp::from_micros(from))
                .to(Timestamp::from_micros(to))
                .label_window(Duration::from_secs(7 * 86_400))
                .max_outcomes_in_memory(max_outcomes);
            let mut calls = 0;
            let report = build_training_set(&spec, &out, |_| calls += 1).unwrap();
            assert!(calls > 0);
            let want = expected(&logged, policy, from, to);
            let batches = read(&out);
            let ids = strings(&batches, "prediction_id");
            let labels: Vec<f64> = batches
                .iter()
                .flat_map(|b| b.column_by_name("label").unwrap().as_primitive::<Float64Type>().values().to_vec())
                .collect();
            let treated: Vec<bool> = batches
                .iter()
                .flat_map(|b| {
                    b.column_by_name("treated").unwrap().as_boolean().iter().map(Option::unwrap).collect::<Vec<_>>()
                })
                .collect();
            let treatments = strings(&batches, "treatment");
            assert!(treated.iter().zip(&treatments).all(|(t, name)| *t == name.is_some()));
            let got: BTreeMap<String, (f64, Option<String>)> =
                ids.into_iter().map(Option::unwrap).zip(labels.into_iter().zip(treatments)).collect();
            assert_eq!(got, want, "{policy}, {max_outcomes} outcomes in memory");
            if policy == TreatmentPolicy::AllWithTreatment {
                // Both kinds of rows are there, so the comparison means something.
                assert!(treated.iter().any(|t| *t) && treated.iter().any(|t| !*t));
            }
            assert_eq!(report.rows_written, want.len() as u64);
            let counted = report.per_policy.iter().find(|(p, _)| *p == policy).unwrap().1;
            assert_eq!(counted, want.len() as u64);
            if max_outcomes == 97 {
                assert!(report.passes > 1);
            }

            // Schema evolution: v1 rows have `b` and a null `c`, v2 rows the reverse.
            for batch in &batches {
                let versions = batch.column_by_name("model_version").unwrap().as_string::<i32>();
                let b = batch.column_by_name("b").unwrap().as_primitive::<Int64Type>();
                let c = batch.column_by_name("c").unwrap().as_primitive::<Float64Type>();
                for i in 0..batch.num_rows() {
                    let v1 = versions.value(i) == "1";
                    assert_eq!(b.is_null(i), !v1);
                    assert_eq!(c.is_null(i), v1);
                }
                assert_eq!(batch.column_by_name("model").unwrap().as_string::<i32>().value(0), "churn");
            }
        }
    }
}

#[test]
fn missing_logs_and_bad_policies_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let spec = DatasetSpec::new(dir.path(), "nope", TreatmentPolicy::Untreated);
    let err = build_training_set(&spec, &dir.path().join("t.parquet"), |_| {}).unwrap_err();
    assert!(err.to_string().starts_with("no prediction files for model `nope`"), "{err}");
    assert!(!dir.path().join("t.parquet").exists());
    assert!("all".parse::<TreatmentPolicy>().is_err());
}
