//! What the client records through the `metrics` facade, read back with
//! metrics-util's debugging recorder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fresco::registry::Registry;
use fresco::{Client, MemorySink, ModelConfig, Request};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};

/// A debugging recorder's snapshot.
type Snapshot = [(CompositeKey, Option<metrics::Unit>, Option<metrics::SharedString>, DebugValue)];

fn find<'a>(snapshot: &'a Snapshot, name: &str, labels: &[(&str, &str)]) -> Option<&'a DebugValue> {
    snapshot.iter().find_map(|(key, _, _, value)| {
        let key_labels: Vec<(&str, &str)> = key.key().labels().map(|l| (l.key(), l.value())).collect();
        (key.key().name() == name && labels.iter().all(|l| key_labels.contains(l))).then_some(value)
    })
}

/// The value of a counter, which must be there.
fn counter(snapshot: &Snapshot, name: &str, labels: &[(&str, &str)]) -> u64 {
    match find(snapshot, name, labels) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name} {labels:?}: {other:?}"),
    }
}

#[test]
fn predictions_latency_swaps_and_refusals_are_recorded_per_model_and_version() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path()).unwrap();
        registry.publish_wasm("linear", "1", &fresco_test_models::linear_version("1")).unwrap();
        registry.publish_wasm("linear", "2", &fresco_test_models::linear_version("2")).unwrap();
        // A broken version copied in by hand (`publish` would refuse it).
        std::fs::create_dir_all(dir.path().join("linear/3")).unwrap();
        std::fs::write(dir.path().join("linear/3/model.wasm"), b"not a module").unwrap();
        registry.deploy("linear", "1").unwrap();
        let client = Client::builder()
            .model(ModelConfig::from_registry(&registry, "linear"))
            .log_to(MemorySink::new())
            .build()
            .unwrap();
        let batch: Vec<Request> = (0..3).map(|i| Request::new().value("a", f64::from(i)).value("b", 1.0)).collect();
        client.predict_batch("linear", &batch).unwrap();
        client.deploy("linear", "2").unwrap();
        client.predict("linear", &batch[0]).unwrap();
        assert!(client.deploy("linear", "3").is_err());
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let counter = |name: &str, labels: &[(&str, &str)]| counter(&snapshot, name, labels);
    assert_eq!(counter("fresco_predictions_total", &[("model", "linear"), ("version", "1")]), 3);
    assert_eq!(counter("fresco_predictions_total", &[("model", "linear"), ("version", "2")]), 1);
    assert_eq!(counter("fresco_version_swaps_total", &[("model", "linear")]), 1);
    assert_eq!(counter("fresco_versions_refused_total", &[("model", "linear")]), 1);
    match find(&snapshot, "fresco_predict_seconds", &[("model", "linear"), ("version", "1")]) {
        Some(DebugValue::Histogram(values)) => assert_eq!(values.len(), 1, "one call, one latency"),
        other => panic!("latency histogram: {other:?}"),
    }
    assert!(snapshot.iter().all(|(k, ..)| k.kind() != MetricKind::Gauge));
}

/// The Client builds each version's metric keys once; the recorder is still looked up
/// per call, so one installed after the Client was built counts the calls from then on.
#[test]
fn a_recorder_installed_after_the_client_is_built_gets_its_calls() {
    let client = Client::builder()
        .model(ModelConfig::new(fresco::ModelSource::wasm_bytes(fresco_test_models::linear_version("7"))))
        .log_to(MemorySink::new())
        .build()
        .unwrap();
    let request = Request::new().value("a", 1.0).value("b", 2.0);
    client.predict("linear", &request).unwrap();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        for _ in 0..2 {
            client.predict("linear", &request).unwrap();
        }
    });
    let snapshot = snapshotter.snapshot().into_vec();
    assert_eq!(counter(&snapshot, "fresco_predictions_total", &[("model", "linear"), ("version", "7")]), 2);
    match find(&snapshot, "fresco_predict_seconds", &[("model", "linear"), ("version", "7")]) {
        Some(DebugValue::Histogram(values)) => assert_eq!(values.len(), 2, "two calls, two latencies"),
        other => panic!("latency histogram: {other:?}"),
    }
}

#[test]
fn dropped_events_and_dropped_log_records_are_exported() {
    use std::time::Duration;

    use fresco::aggregates::{AggregateStore, Aggregation, Definitions, StreamSpec, WindowedFeature};
    use fresco::{LogConfig, OverflowPolicy, PredictionLog, PredictionSink, Timestamp};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let defs = Definitions::new()
            .stream(StreamSpec::new("orders", "restaurant_id").late_tolerance(Duration::from_secs(60)))
            .feature(WindowedFeature::new("n", "orders", Aggregation::Count, Duration::from_secs(600)));
        let store = AggregateStore::new(defs).unwrap();
        let now = Timestamp::from_secs(1_764_201_600);
        store.record_event_at(now, "orders", "r-1", now, 1.0).unwrap();
        // 10 minutes behind the latest event, past the 1-minute tolerance: late.
        store.record_event_at(now, "orders", "r-1", Timestamp::from_secs(1_764_201_000), 1.0).unwrap();
        // Ahead of its arrival: future.
        store.record_event_at(now, "orders", "r-1", Timestamp::from_secs(1_764_202_600), 1.0).unwrap();

        // A log whose queue holds one batch, with the Drop policy: a burst drops some.
        let dir = tempfile::tempdir().unwrap();
        let log =
            PredictionLog::open(LogConfig::new(dir.path()).queue_batches(1).overflow(OverflowPolicy::Drop)).unwrap();
        let schema = std::sync::Arc::new(fresco::LogSchema {
            model: "m".into(),
            version: "1".into(),
            entities: vec![],
            inputs: vec![],
            outputs: vec!["y".into()],
        });
        for i in 0..2_000 {
            let record = fresco::PredictionRecord {
                prediction_id: format!("p-{i}"),
                ts: now,
                model: "m".into(),
                model_version: "1".into(),
                entities: vec![],
                inputs: vec![],
                outputs: vec![1.0],
                holdout: None,
                in_holdout: false,
                eligible: true,
                flag_variant: None,
                latency_us: 1,
            };
            log.append(&schema, vec![record]).unwrap();
        }
        let dropped = log.stats().dropped;
        log.close().unwrap();
        assert!(dropped > 0, "the burst overflowed the one-batch queue");
        let snapshot = snapshotter.snapshot().into_vec();
        let counter = |name: &str, labels: &[(&str, &str)]| counter(&snapshot, name, labels);
        assert_eq!(counter("fresco_aggregate_events_dropped_total", &[("stream", "orders"), ("reason", "late")]), 1);
        assert_eq!(counter("fresco_aggregate_events_dropped_total", &[("stream", "orders"), ("reason", "future")]), 1);
        assert_eq!(counter("fresco_log_dropped_total", &[]), dropped);
    });
}
