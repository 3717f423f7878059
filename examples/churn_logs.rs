//! Churn scoring with a holdout, logged to Parquet, turned into training sets.
//!
//! `cargo run -p fresco-examples --example churn_logs -- OUT_DIR [--split-floats]`
//!
//! Two versions of a churn model (the second swaps a feature: the logs evolve) score
//! 3,000 users through the Client; 10 % are held out. Half of everyone else gets a
//! retention offer (logged as a treatment), which lowers their churn: exactly the
//! feedback that corrupts labels. The outcomes are logged, then training sets are built
//! under each policy. Writes
//! `OUT_DIR/logs/`, `OUT_DIR/train-<policy>.parquet` and `OUT_DIR/manifest.json` (what
//! was written, for the reader checks in `sdk/tests/logs/check_readers.py`).
//! `--split-floats` writes the f64 columns as `BYTE_STREAM_SPLIT`
//! ([`FloatEncoding::ByteStreamSplit`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use fresco::abi::{InputSpec, InputType, ModelKind, ModelMetadata};
use fresco::dataset::{DatasetSpec, TreatmentPolicy, build_training_set};
use fresco::holdout::Holdout;
use fresco::{Client, FloatEncoding, LogConfig, ModelConfig, ModelSource, PredictionLog, Request, Timestamp};
use fresco_test_models::synthetic::SplitMix64;

const USERS: usize = 3000;

fn churn_model(version: &str, second_input: (&str, InputType)) -> Vec<u8> {
    let mut second = InputSpec::f64(second_input.0);
    second.ty = second_input.1;
    let meta = ModelMetadata::new("churn", version, ModelKind::Custom)
        .with_inputs(vec![InputSpec::f64("tenure_years"), second])
        .with_outputs(vec!["score".into()]);
    // The demo module computes score = 2·a + 3·b + 1.
    fresco_test_models::linear_with_metadata(&meta.to_json())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: churn_logs OUT_DIR [--split-floats]";
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or(usage)?);
    let floats = match args.next().as_deref() {
        None => FloatEncoding::Plain,
        Some("--split-floats") => FloatEncoding::ByteStreamSplit,
        Some(other) => return Err(format!("unknown argument {other:?}; {usage}").into()),
    };
    std::fs::create_dir_all(&out)?;
    let root = out.join("logs");
    let log = Arc::new(PredictionLog::open(LogConfig::new(&root).float_encoding(floats))?);
    let holdout = Holdout::new("churn-holdout", "churn-2026q4", 0.1)?;
    let client = |version: &str, second: (&str, InputType)| {
        Client::builder()
            .model(ModelConfig::new(ModelSource::wasm_bytes(churn_model(version, second))).holdout("churn-holdout"))
            .holdout(holdout.clone(), "user_id")
            .shared_log(log.clone())
            .build()
    };
    let v1 = client("1", ("orders_30d", InputType::I64))?;
    let v2 = client("2", ("support_tickets", InputType::F64))?;

    let mut rng = SplitMix64::new(2026);
    let mut manifest_rows: BTreeMap<String, u64> = BTreeMap::new();
    let mut outcomes = 0u64;
    let mut treatments = 0u64;
    for u in 0..USERS {
        let user = format!("user-{u}");
        let tenure = rng.next_f64() * 5.0;
        let (client, request) = if u % 2 == 0 {
            (
                &v1,
                Request::new()
                    .entity("user_id", &user)
                    .value("tenure_years", tenure)
                    .value("orders_30d", rng.below(12) as i64),
            )
        } else {
            (
                &v2,
                Request::new()
                    .entity("user_id", &user)
                    .value("tenure_years", tenure)
                    .value("support_tickets", rng.below(4) as f64),
            )
        };
        let p = client.predict("churn", &request)?;
        *manifest_rows.entry(format!("churn|{}", p.model_version())).or_default() += 1;
        // Churn is likelier for short tenure; the retention offer halves it.
        let mut churn_probability = 0.6 - tenure * 0.1;
        if p.may_treat() && rng.below(2) == 0 {
            let offered = Timestamp::from_micros(p.timestamp().as_micros() + 60_000_000);
            client.log_treatment(&p, "retention-offer", offered)?;
            treatments += 1;
            churn_probability *= 0.5;
        }
        if rng.below(10) < 8 {
            let label = f64::from(u8::from(rng.next_f64() < churn_probability));
            let observed =
                Timestamp::from_micros(p.timestamp().as_micros() + 3_600_000_000 * (1 + rng.below(48) as i64));
            client.log_outcome("churn", p.id(), label, observed)?;
            outcomes += 1;
        }
    }
    drop((v1, v2));
    Arc::try_unwrap(log).map_err(|_| "the log is still shared")?.close()?;

    let mut training = BTreeMap::new();
    for policy in TreatmentPolicy::ALL {
        let path = out.join(format!("train-{policy}.parquet"));
        let report = build_training_set(&DatasetSpec::new(&root, "churn", policy), &path, |_| {})?;
        println!("{policy:<20} {:>5} rows (of {} labeled predictions)", report.rows_written, report.labeled);
        training.insert(policy.name().to_owned(), report.rows_written);
    }
    let manifest = serde_json::json!({
        "model": "churn",
        "predictions": USERS,
        "predictions_by_version": manifest_rows,
        "outcomes": outcomes,
        "treatments": treatments,
        "date": Timestamp::now().utc_date(),
        "training_rows": training,
        "label_window_days": 30,
        "float_encoding": match floats {
            FloatEncoding::Plain => "PLAIN",
            FloatEncoding::ByteStreamSplit => "BYTE_STREAM_SPLIT",
        },
    });
    std::fs::write(out.join("manifest.json"), serde_json::to_string_pretty(&manifest)?)?;
    println!("logs in {}", root.display());
    Ok(())
}
