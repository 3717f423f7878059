//! What the client records through the `metrics` facade, read back with
//! metrics-util's debugging recorder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fresco::registry::Registry;
use fresco::{Client, MemorySink, ModelConfig, Request};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};

fn find<'a>(
    snapshot: &'a [(CompositeKey, Option<metrics::Unit>, Option<metrics::SharedString>, DebugValue)],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a DebugValue> {
    snapshot.iter().find_map(|(key, _, _, value)| {
        let key_labels: Vec<(&str, &str)> = key.key().labels().map(|l| (l.key(), l.value())).collect();
        (key.key().name() == name && labels.iter().all(|l| key_labels.contains(l))).then_some(value)
    })
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
    let counter = |name: &str, labels: &[(&str, &str)]| match find(&snapshot, name, labels) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name} {labels:?}: {other:?}"),
    };
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
