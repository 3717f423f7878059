//! End to end through the Client: features materialized from Parquet into the embedded
//! store, scored by a compiled tree model, compared with scoring the same vectors
//! directly through the runtime.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use fresco::holdout::Holdout;
use fresco::runtime::{Engine, Model};
use fresco::{
    Client, EmbeddedStore, FeatureStatus, FeatureView, InputSource, MaterializeOptions, MemorySink, ModelConfig,
    ModelSource, Request, ValueType,
};
use fresco_compiler::Compiler;
use fresco_test_models::synthetic::{SplitMix64, gbdt};
use parquet::arrow::ArrowWriter;

const ENTITIES: usize = 100_000;
const SCORED: usize = 10_000;
const FEATURES: usize = 20;
/// f0..f17 are stored; f18 and f19 come with the request.
const STORED: usize = 18;

struct Data {
    /// Row-major stored features per entity, NaN where the Parquet value is null.
    stored: Vec<f64>,
}

fn write_parquet(path: &std::path::Path) -> Data {
    let mut rng = SplitMix64::new(11);
    let mut stored = vec![0.0; ENTITIES * STORED];
    for x in stored.iter_mut() {
        *x = if rng.below(50) == 0 { f64::NAN } else { rng.next_f64() };
    }
    let ids: StringArray = (0..ENTITIES).map(|i| Some(format!("e{i}"))).collect();
    let ts = TimestampMicrosecondArray::from_iter_values((0..ENTITIES).map(|i| 1_700_000_000_000_000 + i as i64))
        .with_timezone("UTC");
    let mut columns: Vec<(String, ArrayRef)> =
        vec![("entity_id".into(), Arc::new(ids)), ("event_timestamp".into(), Arc::new(ts))];
    for f in 0..STORED {
        let col: Float64Array = (0..ENTITIES).map(|e| Some(stored[e * STORED + f]).filter(|x| !x.is_nan())).collect();
        columns.push((format!("f{f}"), Arc::new(col)));
    }
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    // Several row groups and read batches.
    for start in (0..ENTITIES).step_by(30_000) {
        writer.write(&batch.slice(start, 30_000.min(ENTITIES - start))).unwrap();
    }
    writer.close().unwrap();
    Data { stored }
}

#[test]
fn materialized_features_score_like_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("entities.parquet");
    let data = write_parquet(&parquet);

    let store = EmbeddedStore::open(dir.path().join("features.redb")).unwrap();
    let mut view = FeatureView::new("entities", "entity_id");
    for f in 0..STORED {
        view = view.feature(format!("f{f}"), ValueType::F64);
    }
    store.define_view(view).unwrap();
    let mut calls = 0;
    let report = store
        .materialize_parquet("entities", &parquet, &MaterializeOptions::default(), |p| {
            calls += 1;
            assert_eq!(p.rows_total, ENTITIES as u64);
        })
        .unwrap();
    assert_eq!(report.rows_read, ENTITIES as u64);
    assert_eq!(report.rows_stored, ENTITIES as u64);
    assert!(calls >= 2, "progress reported once per batch");

    let wasm = Compiler::new("synthetic", "7").add_ensemble(gbdt(100, 31, FEATURES, 5)).unwrap().compile().unwrap();
    let direct = Model::from_bytes(&Engine::new().unwrap(), &wasm).unwrap();
    let mut config = ModelConfig::new(ModelSource::wasm_bytes(wasm)).holdout("h");
    for f in 0..STORED {
        config = config.input(format!("f{f}"), InputSource::stored("entities", format!("f{f}")));
    }
    let log = Arc::new(MemorySink::new());
    let client = Client::builder()
        .feature_store(store)
        .holdout(Holdout::new("h", "salt", 0.1).unwrap(), "user_id")
        .model(config)
        .shared_log(log.clone())
        .build()
        .unwrap();

    let mut rng = SplitMix64::new(3);
    let mut requests = Vec::with_capacity(SCORED);
    let mut vectors = Vec::with_capacity(SCORED * FEATURES);
    for i in 0..SCORED {
        let e = rng.below(ENTITIES);
        let (a, b) = (rng.next_f64(), rng.next_f64());
        requests.push(
            Request::new()
                .entity("entity_id", format!("e{e}"))
                .entity("user_id", format!("u{i}"))
                .value("f18", a)
                .value("f19", b),
        );
        vectors.extend_from_slice(&data.stored[e * STORED..(e + 1) * STORED]);
        vectors.extend([a, b]);
    }
    let expected = direct.predict(&vectors).unwrap();

    let mut predictions = Vec::new();
    for chunk in requests[..SCORED - 100].chunks(1000) {
        predictions.extend(client.predict_batch("synthetic", chunk).unwrap());
    }
    for request in &requests[SCORED - 100..] {
        predictions.push(client.predict("synthetic", request).unwrap());
    }
    assert_eq!(predictions.len(), SCORED);
    let mut held_out = 0;
    for (i, p) in predictions.iter().enumerate() {
        assert_eq!(p.output("score").unwrap().to_bits(), expected[i].to_bits(), "row {i}");
        let stored_nan = vectors[i * FEATURES..i * FEATURES + STORED].iter().filter(|x| x.is_nan()).count();
        let missing = p.feature_statuses().filter(|(_, s)| *s == FeatureStatus::Missing).count();
        assert_eq!(missing, stored_nan, "row {i}: a null stored value reads as missing");
        let decision = p.holdout().unwrap();
        assert_eq!(decision.in_holdout, Holdout::new("h", "salt", 0.1).unwrap().contains(&format!("u{i}")));
        held_out += usize::from(!p.may_treat());
        assert_eq!(p.model_version(), "7");
    }
    // 10 % ± a wide margin.
    assert!((700..1300).contains(&held_out), "{held_out} held out");

    let records = log.take();
    assert_eq!(records.len(), SCORED);
    let mut ids: Vec<&str> = records.iter().map(|r| r.prediction_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), SCORED, "prediction ids are unique");
    assert_eq!(records[0].inputs.len(), FEATURES);
    assert_eq!(records[0].outputs, vec![predictions[0].output("score").unwrap()]);
    assert_eq!(client.stats().predictions, SCORED as u64);
}

/// `Request::at` makes a request at a given time: a stored feature's time to live is
/// judged as of it, a batch mixing times reads each row as of its own, and the
/// prediction (and its log record) carry that time.
#[test]
fn requests_made_at_a_given_time_read_features_as_of_it() {
    use fresco::{Timestamp, Value};

    let written = Timestamp::from_secs(1_793_577_600); // 2026-11-02T00:00:00Z
    let store = EmbeddedStore::in_memory().unwrap();
    store
        .define_view(
            FeatureView::new("users", "user_id").feature("b", ValueType::F64).ttl(std::time::Duration::from_secs(3600)),
        )
        .unwrap();
    store.write("users", "u1", written, &[Value::F64(4.0)]).unwrap();
    let log = Arc::new(MemorySink::new());
    let client = Client::builder()
        .feature_store(store)
        .model(
            ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear()))
                .input("b", InputSource::stored("users", "b")),
        )
        .shared_log(log.clone())
        .build()
        .unwrap();
    let at = |secs: i64| Timestamp::from_secs(written.as_micros() / 1_000_000 + secs);
    let request = |secs: i64| Request::new().entity("user_id", "u1").value("a", 1.0).at(at(secs));
    // Half an hour after the write, two hours after it, and half an hour again: two
    // lookups (one per distinct time), each row answered as of its own time.
    let predictions = client.predict_batch("linear", &[request(1800), request(7200), request(1800)]).unwrap();
    let statuses: Vec<_> = predictions.iter().map(|p| p.feature_status("b").unwrap()).collect();
    assert_eq!(statuses, [FeatureStatus::Present, FeatureStatus::Expired, FeatureStatus::Present]);
    assert_eq!(predictions[0].output("y"), Some(2.0 + 3.0 * 4.0 + 1.0));
    let times: Vec<Timestamp> = predictions.iter().map(|p| p.timestamp()).collect();
    assert_eq!(times, [at(1800), at(7200), at(1800)]);
    let logged: Vec<Timestamp> = log.records().iter().map(|r| r.ts).collect();
    assert_eq!(logged, times, "the log records the request time");
}
