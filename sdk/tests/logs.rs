//! The durable prediction log: Parquet files per docs/design.md §6, published atomically.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_schema::{DataType, TimeUnit};
use fresco::abi::{InputSpec, InputType, ModelKind, ModelMetadata};
use fresco::holdout::Holdout;
use fresco::{
    Client, EmbeddedStore, FeatureView, InputSource, LogConfig, LogSchema, ModelConfig, ModelSource, OverflowPolicy,
    PredictionLog, PredictionSink, Request, SpoolDurability, Timestamp, Value, ValueType,
};

#[allow(dead_code)]
mod common;
use common::logs::{parquet_files, published_ids, read, strings, wait_until};

fn model(version: &str, with_b: bool) -> Vec<u8> {
    let mut b = InputSpec::f64("b");
    b.ty = InputType::I64;
    let inputs = if with_b { vec![InputSpec::f64("a"), b] } else { vec![InputSpec::f64("a"), InputSpec::f64("c")] };
    let meta =
        ModelMetadata::new("churn", version, ModelKind::Custom).with_inputs(inputs).with_outputs(vec!["y".into()]);
    fresco_test_models::linear_with_metadata(&meta.to_json())
}

#[test]
fn client_predictions_and_outcomes_land_in_hive_partitioned_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("logs");
    let log = Arc::new(PredictionLog::open(LogConfig::new(&root)).unwrap());
    let store = EmbeddedStore::in_memory().unwrap();
    store.define_view(FeatureView::new("users", "user_id").feature("b", ValueType::I64)).unwrap();
    store.write("users", "u1", Timestamp::now(), &[Value::I64(4)]).unwrap();
    let client = Client::builder()
        .feature_store(store)
        .holdout(Holdout::new("h", "s", 0.5).unwrap(), "user_id")
        .model(
            ModelConfig::new(ModelSource::wasm_bytes(model("1", true)))
                .input("b", InputSource::stored("users", "b"))
                .holdout("h"),
        )
        .shared_log(log.clone())
        .build()
        .unwrap();
    let requests: Vec<Request> = (0..100)
        .map(|i| Request::new().entity("user_id", if i % 2 == 0 { "u1" } else { "u2" }).value("a", i as f64))
        .collect();
    let predictions = client.predict_batch("churn", &requests).unwrap();
    for p in &predictions[..10] {
        client.log_outcome("churn", p.id(), 1.0, Timestamp::now()).unwrap();
    }
    let held_out = predictions.iter().filter(|p| !p.may_treat()).count();
    assert!(held_out > 0 && held_out < predictions.len(), "both sides of the holdout are exercised");
    for p in &predictions {
        match client.log_treatment(p, "discount-10", Timestamp::now()) {
            Ok(()) => assert!(p.may_treat()),
            Err(fresco::Error::HeldOutTreatment { holdout, prediction_id, .. }) => {
                assert!(!p.may_treat());
                assert_eq!((holdout.as_str(), prediction_id), ("h", p.id().to_string()));
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    // A batch holding one held-out prediction is refused whole.
    let err = client.log_treatments(&predictions[..4], "discount-20", Timestamp::now()).unwrap_err();
    assert!(err.to_string().contains("held-out entities are never treated"), "{err}");
    // By id, with the entity key: the holdout is recomputed.
    let held = predictions.iter().zip(&requests).find(|(p, _)| !p.may_treat()).unwrap();
    let user = held.1.entity_key("user_id").unwrap();
    assert!(client.log_treatment_by_id("churn", held.0.id(), user, "call", Timestamp::now()).is_err());
    let stats = client.stats();
    let refused = stats.treatments_refused;
    let held_in_batch = predictions[..4].iter().filter(|p| !p.may_treat()).count();
    assert_eq!(refused as usize, held_out + held_in_batch + 1);
    assert_eq!(stats.treatments as usize, predictions.len() - held_out);
    log.flush().unwrap();
    assert_eq!(log.stats().treatments as usize, predictions.len() - held_out);
    assert_eq!(log.stats().predictions, 100);

    let files = parquet_files(&root.join("predictions"));
    assert_eq!(files.len(), 1);
    let date = Timestamp::now().utc_date();
    let dir_name = files[0].parent().unwrap();
    assert!(dir_name.ends_with(format!("model=churn/date={date}")), "{}", dir_name.display());
    let batches = read(&files[0]);
    let schema = batches[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "prediction_id",
            "ts",
            "model_version",
            "user_id",
            "a",
            "b",
            "y",
            "holdout",
            "in_holdout",
            "eligible",
            "flag_variant",
            "latency_us"
        ]
    );
    assert_eq!(
        schema.field_with_name("ts").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(schema.field_with_name("b").unwrap().data_type(), &DataType::Int64);
    let ids = strings(&batches, "prediction_id");
    assert_eq!(ids.len(), 100);
    let b = batches[0].column_by_name("b").unwrap().as_primitive::<Int64Type>();
    assert_eq!(b.value(0), 4);
    assert!(b.is_null(1), "u2 has no stored row: the missing value is a null");
    let y = batches[0].column_by_name("y").unwrap().as_primitive::<Float64Type>();
    assert_eq!(y.value(0), predictions[0].output("y").unwrap());
    let in_holdout = batches[0].column_by_name("in_holdout").unwrap().as_boolean();
    let eligible = batches[0].column_by_name("eligible").unwrap().as_boolean();
    for (i, p) in predictions.iter().enumerate() {
        assert_eq!(ids[i].as_deref(), Some(p.id().to_string().as_str()));
        assert_eq!(in_holdout.value(i), !p.may_treat());
        assert_eq!(eligible.value(i), p.may_treat());
    }

    // Treatments: under their own hive partitions; a held-out prediction's is refused.
    let treatments = parquet_files(&root.join("treatments"));
    assert_eq!(treatments.len(), 1);
    assert!(treatments[0].parent().unwrap().ends_with(format!("model=churn/date={date}")));
    let batches = read(&treatments[0]);
    let treated_ids = strings(&batches, "prediction_id");
    let eligible_ids: Vec<Option<String>> =
        predictions.iter().filter(|p| p.may_treat()).map(|p| Some(p.id().to_string())).collect();
    assert_eq!(treated_ids, eligible_ids, "exactly the eligible predictions' treatments, in order");
    assert!(strings(&batches, "treatment").iter().all(|t| t.as_deref() == Some("discount-10")));
    assert_eq!(
        batches[0].schema().field_with_name("ts").unwrap().data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );

    let outcomes = parquet_files(&root.join("outcomes"));
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].parent().unwrap().ends_with(format!("model=churn/date={date}")));
    assert_eq!(strings(&read(&outcomes[0]), "prediction_id").len(), 10);
    // The spool holds nothing once everything is published.
    assert_eq!(std::fs::read_dir(root.join("_spool")).unwrap().count(), 1, "only the open, empty segment");
}

#[test]
fn each_schema_gets_its_own_files_and_rotation_by_size_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let log = PredictionLog::open(
        LogConfig::new(&root)
            .max_file_bytes(4096)
            .max_file_age(Duration::from_millis(50))
            .durability(SpoolDurability::Buffered),
    )
    .unwrap();
    let v1 = Arc::new(LogSchema {
        model: "churn".into(),
        version: "1".into(),
        entities: vec![],
        inputs: vec![("a".into(), InputType::F64), ("b".into(), InputType::I64)],
        outputs: vec!["y".into()],
    });
    let mut v2 = (*v1).clone();
    v2.version = "2".into();
    v2.inputs = vec![("a".into(), InputType::F64), ("c".into(), InputType::F64)];
    let v2 = Arc::new(v2);
    let record = |i: usize, version: &str| fresco::PredictionRecord {
        prediction_id: format!("{version}-{i}"),
        ts: Timestamp::from_secs(1_764_201_600 + (i as i64 % 3) * 86_400),
        model: "churn".into(),
        model_version: version.into(),
        entities: vec![],
        inputs: vec![i as f64, 1.0],
        outputs: vec![0.5],
        holdout: None,
        in_holdout: false,
        eligible: true,
        flag_variant: None,
        latency_us: 1,
    };
    for i in 0..300 {
        log.append(&v1, vec![record(i, "1")]).unwrap();
        log.append(&v2, vec![record(i, "2")]).unwrap();
    }
    // Age-based sealing publishes without an explicit flush.
    assert!(
        wait_until(Duration::from_secs(20), || published_ids(&root).len() >= 600),
        "only {} of 600 records were published without a flush",
        published_ids(&root).len()
    );
    let files = parquet_files(&root.join("predictions"));
    assert!(files.len() > 6, "size rotation made several files per date and schema: {}", files.len());
    let mut ids = Vec::new();
    for f in &files {
        let batches = read(f);
        let versions = strings(&batches, "model_version");
        assert!(versions.windows(2).all(|w| w[0] == w[1]), "one schema per file");
        let has_b = batches[0].schema().field_with_name("b").is_ok();
        assert_eq!(has_b, versions[0].as_deref() == Some("1"));
        ids.extend(strings(&batches, "prediction_id").into_iter().flatten());
    }
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!((n, ids.len()), (600, 600), "every record exactly once");
    let dates: std::collections::BTreeSet<_> =
        files.iter().map(|f| f.parent().unwrap().file_name().unwrap().to_string_lossy().to_string()).collect();
    assert_eq!(dates.into_iter().collect::<Vec<_>>(), ["date=2025-11-27", "date=2025-11-28", "date=2025-11-29"]);
    log.close().unwrap();
}

#[test]
fn schemas_that_clash_or_unsafe_model_names_are_refused() {
    let clash = LogSchema {
        model: "m".into(),
        version: "1".into(),
        entities: vec!["ts".into()],
        inputs: vec![],
        outputs: vec!["y".into()],
    };
    assert!(clash.validate().unwrap_err().to_string().contains("column `ts`"));
    let unsafe_name = LogSchema { model: "../etc".into(), entities: vec![], ..clash };
    assert!(unsafe_name.validate().is_err());
}

#[test]
fn drop_policy_counts_what_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    // A one-batch queue and small segments: while the writer publishes a sealed
    // segment, appends find the queue full and drop.
    let log = PredictionLog::open(
        LogConfig::new(dir.path())
            .queue_batches(1)
            .max_file_bytes(2048)
            .overflow(OverflowPolicy::Drop)
            .durability(SpoolDurability::Buffered),
    )
    .unwrap();
    let schema = Arc::new(LogSchema {
        model: "m".into(),
        version: "1".into(),
        entities: vec![],
        inputs: vec![],
        outputs: vec![],
    });
    let record = |i: u64| fresco::PredictionRecord {
        prediction_id: i.to_string(),
        ts: Timestamp::from_secs(1_764_201_600),
        model: "m".into(),
        model_version: "1".into(),
        entities: vec![],
        inputs: vec![],
        outputs: vec![],
        holdout: None,
        in_holdout: false,
        eligible: true,
        flag_variant: None,
        latency_us: 0,
    };
    let dropped = || log.stats().dropped;
    // Rounds until something was dropped (the first round nearly always suffices).
    let mut appended = 0;
    for _ in 0..50 {
        for _ in 0..5000 {
            log.append(&schema, vec![record(appended)]).unwrap();
            appended += 1;
        }
        log.flush().unwrap();
        if dropped() > 0 {
            break;
        }
    }
    let written = published_ids(dir.path());
    assert!(dropped() > 0, "a full queue never dropped anything in {appended} appends");
    assert!(!written.is_empty(), "nothing was written");
    assert_eq!(written.len() as u64 + dropped(), appended, "every record is either written or counted as dropped");
    // What was written is what was appended, once each.
    let unique: std::collections::HashSet<&String> = written.iter().collect();
    assert_eq!(unique.len(), written.len());
    assert!(written.iter().all(|id| id.parse::<u64>().is_ok_and(|i| i < appended)));
}
