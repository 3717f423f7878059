//! The embedded feature store: typed writes, latest event wins, time to live,
//! persistence, concurrent readers and writers, and Parquet loads that refuse bad files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
use fresco::{
    EmbeddedStore, FeatureStatus, FeatureStore, FeatureView, MaterializeOptions, StoreError, Timestamp, Value,
    ValueType,
};

#[allow(dead_code)]
mod common;
use common::write_parquet;

fn view() -> FeatureView {
    FeatureView::new("users", "user_id")
        .feature("age", ValueType::I64)
        .feature("score", ValueType::F64)
        .feature("tier", ValueType::Str)
        .ttl(Duration::from_secs(3600))
}

const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

#[test]
fn typed_writes_latest_event_wins_and_ttl() {
    let store = EmbeddedStore::in_memory().unwrap();
    store.define_view(view()).unwrap();
    store.define_view(view()).unwrap(); // identical: a no-op
    let err = store.define_view(FeatureView::new("users", "user_id")).unwrap_err();
    assert!(matches!(err, StoreError::InvalidView { .. }), "{err}");

    let row = |age: i64| vec![Value::I64(age), Value::F64(0.5), Value::from("gold")];
    assert!(store.write("users", "u1", T0, &row(30)).unwrap());
    assert!(!store.write("users", "u1", Timestamp::from_secs(1_699_000_000), &row(29)).unwrap(), "older event ignored");
    assert!(store.write("users", "u1", Timestamp::from_secs(1_700_000_100), &row(31)).unwrap());

    let now = Timestamp::from_secs(1_700_000_200);
    let got = store.get_features("users", &["u1", "nobody"], &["tier", "age"], now).unwrap();
    assert_eq!(got[0][0].value, Value::from("gold"));
    assert_eq!(got[0][1].value, Value::I64(31));
    assert_eq!(got[0][1].event_ts, Some(Timestamp::from_secs(1_700_000_100)));
    assert_eq!(got[1][0].status, FeatureStatus::Missing);

    let later = Timestamp::from_secs(1_700_000_100 + 3601);
    let got = store.get_features("users", &["u1"], &["age"], later).unwrap();
    assert_eq!(got[0][0].status, FeatureStatus::Expired);
    assert_eq!(got[0][0].value, Value::Null);

    let err = store.write("users", "u2", T0, &[Value::I64(1)]).unwrap_err();
    assert_eq!(err.to_string(), "feature view `users` has 3 features, but the row for `u2` has 1 values");
    let err = store.write("users", "u2", T0, &[Value::from("x"), Value::F64(1.0), Value::Null]).unwrap_err();
    assert_eq!(err.to_string(), "feature `users:age` is i64, but the row for `u2` has the string \"x\"");
    let err = store.get_features("users", &["u1"], &["nope"], now).unwrap_err();
    assert_eq!(err.to_string(), "feature view `users` has no feature `nope`");
    let err = store.get_features("nope", &["u1"], &["age"], now).unwrap_err();
    assert_eq!(err.to_string(), "feature view `nope` does not exist");
}

#[test]
fn survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.redb");
    {
        let store = EmbeddedStore::open(&path).unwrap();
        store.define_view(view()).unwrap();
        store.write("users", "u1", T0, &[Value::I64(5), Value::Null, Value::Null]).unwrap();
    }
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.views(), vec!["users"]);
    assert_eq!(*store.view("users").unwrap(), view());
    let got = store.get_features("users", &["u1"], &["age", "score"], T0).unwrap();
    assert_eq!(got[0][0].value, Value::I64(5));
    assert_eq!(got[0][1].status, FeatureStatus::Missing);

    std::fs::write(dir.path().join("garbage.redb"), b"this is not a database").unwrap();
    let err = EmbeddedStore::open(dir.path().join("garbage.redb")).unwrap_err();
    assert!(matches!(err, StoreError::Backend { operation: "open", .. }), "{err}");
}

#[test]
fn readers_and_a_writer_run_concurrently() {
    let store = Arc::new(EmbeddedStore::in_memory().unwrap());
    store.define_view(FeatureView::new("c", "k").feature("v", ValueType::I64).feature("w", ValueType::I64)).unwrap();
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    store.write_batch("c", keys.iter().map(|k| (k.as_str(), T0, vec![Value::I64(0), Value::I64(0)]))).unwrap();
    std::thread::scope(|s| {
        let writer = store.clone();
        let keys_w = keys.clone();
        s.spawn(move || {
            for round in 1..=200i64 {
                let ts = Timestamp::from_micros(T0.as_micros() + round);
                writer
                    .write_batch(
                        "c",
                        keys_w.iter().map(|k| (k.as_str(), ts, vec![Value::I64(round), Value::I64(-round)])),
                    )
                    .unwrap();
            }
        });
        for _ in 0..3 {
            let reader = store.clone();
            let keys = &keys;
            s.spawn(move || {
                let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
                let mut last = 0;
                for _ in 0..300 {
                    let rows = reader.get_features("c", &refs, &["v", "w"], T0).unwrap();
                    // One snapshot: every row of a read is from the same write batch, and
                    // the values of a row were written together.
                    let Value::I64(v0) = rows[0][0].value else { panic!() };
                    assert!(v0 >= last, "a later read never sees an older snapshot");
                    last = v0;
                    for row in &rows {
                        assert_eq!(row[0].value, Value::I64(v0));
                        assert_eq!(row[1].value, Value::I64(-v0));
                    }
                }
            });
        }
    });
}

#[test]
fn parquet_loads_refuse_bad_files_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::in_memory().unwrap();
    store.define_view(view()).unwrap();
    let ids: ArrayRef = Arc::new(StringArray::from(vec!["u1", "u2"]));
    let ts: ArrayRef = Arc::new(Int64Array::from(vec![T0.as_micros(), T0.as_micros()]));
    let ages: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None]));
    let scores: ArrayRef = Arc::new(Float64Array::from(vec![0.5, 1.5]));
    let tiers: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None]));
    let opts = MaterializeOptions::default();

    let good = dir.path().join("good.parquet");
    write_parquet(
        &good,
        vec![
            ("user_id", ids.clone()),
            ("event_timestamp", ts.clone()),
            ("age", ages.clone()),
            ("score", scores.clone()),
            ("tier", tiers.clone()),
        ],
    );
    let report = store.materialize_parquet("users", &good, &opts, |_| {}).unwrap();
    assert_eq!((report.rows_read, report.rows_stored), (2, 2));
    let inferred = EmbeddedStore::infer_view(&good, "users", "user_id", "event_timestamp").unwrap();
    assert_eq!(inferred.features, view().features);

    let missing = dir.path().join("missing.parquet");
    write_parquet(&missing, vec![("user_id", ids.clone()), ("event_timestamp", ts.clone()), ("age", ages.clone())]);
    let err = store.materialize_parquet("users", &missing, &opts, |_| {}).unwrap_err();
    assert!(err.to_string().ends_with("no column `score` (needed by feature view `users`)"), "{err}");

    let mistyped = dir.path().join("mistyped.parquet");
    write_parquet(
        &mistyped,
        vec![
            ("user_id", ids.clone()),
            ("event_timestamp", ts.clone()),
            ("age", scores.clone()),
            ("score", scores.clone()),
            ("tier", tiers.clone()),
        ],
    );
    let err = store.materialize_parquet("users", &mistyped, &opts, |_| {}).unwrap_err();
    assert!(err.to_string().ends_with("column `age` is Float64, which does not fit feature type i64"), "{err}");

    let truncated = dir.path().join("truncated.parquet");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = store.materialize_parquet("users", &truncated, &opts, |_| {}).unwrap_err();
    assert!(matches!(err, StoreError::Source { .. }), "{err}");
    let err = store.materialize_parquet("users", dir.path().join("absent.parquet"), &opts, |_| {}).unwrap_err();
    assert!(matches!(err, StoreError::Source { .. }), "{err}");
}

mod corrupted_parquet {
    use super::*;
    use proptest::prelude::*;

    fn good_file() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("good.parquet");
        let n = 50;
        write_parquet(
            &path,
            vec![
                ("user_id", Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("u{i}")))) as ArrayRef),
                ("event_timestamp", Arc::new(Int64Array::from_iter_values((0..n).map(|i| T0.as_micros() + i)))),
                ("age", Arc::new(Int64Array::from_iter_values(0..n))),
                ("score", Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64 / 3.0)))),
                ("tier", Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("t{}", i % 3))))),
            ],
        );
        std::fs::read(path).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Flipped bytes and truncation anywhere in a file: a typed error or a load,
        /// never a panic.
        #[test]
        fn no_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
            let mut bytes = good_file();
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            if cut % 3 == 0 {
                bytes.truncate(cut % bytes.len());
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("bad.parquet");
            std::fs::write(&path, &bytes).unwrap();
            let store = EmbeddedStore::in_memory().unwrap();
            store.define_view(view()).unwrap();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                store.materialize_parquet("users", &path, &MaterializeOptions::default(), |_| {})
            }));
            prop_assert!(result.is_ok(), "the loader panicked");
        }
    }
}
