//! Drift monitoring through the `Client`: a model compiled with training statistics,
//! scored at simulated times; a unit change and an integer sent as a float must alert.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fresco::abi::{InputSpec, InputType, ModelKind, ModelMetadata, StatsKind, TrainingStats};
use fresco::drift::{Alert, AlertKind, MonitorConfig, profile};
use fresco::{Client, MemorySink, ModelConfig, ModelSource, Request, Timestamp, Value};

const MINUTE: i64 = 60_000_000;

/// `y = 2·a + 3·b + 1` over `a` (seconds, f64) and `b` (an integer count), with the
/// statistics of 5,000 training rows.
fn model() -> Vec<u8> {
    let rows: Vec<(f64, f64)> = (0..5_000).map(|i| (30.0 + f64::from(i % 97), f64::from(i % 9))).collect();
    let a: Vec<f64> = rows.iter().map(|r| r.0).collect();
    let b: Vec<f64> = rows.iter().map(|r| r.1).collect();
    let y: Vec<f64> = rows.iter().map(|r| 2.0 * r.0 + 3.0 * r.1 + 1.0).collect();
    let mut stats = TrainingStats::default();
    stats.inputs.insert("a".into(), profile(&a, StatsKind::Numeric, 20));
    stats.inputs.insert("b".into(), profile(&b, StatsKind::Numeric, 20));
    stats.outputs.insert("y".into(), profile(&y, StatsKind::Numeric, 20));
    let mut meta = ModelMetadata::new("waits", "1", ModelKind::Custom)
        .with_inputs(vec![InputSpec::f64("a"), InputSpec { ty: InputType::I64, ..InputSpec::f64("b") }])
        .with_outputs(vec!["y".into()]);
    meta.training_stats = Some(stats);
    fresco_test_models::linear_with_metadata(&meta.to_json())
}

fn client() -> (Client, Arc<Mutex<Vec<Alert>>>) {
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let sink = alerts.clone();
    let config = MonitorConfig {
        windows: vec![Duration::from_secs(60)],
        on_alert: Some(Arc::new(move |a: &Alert| sink.lock().unwrap().push(a.clone()))),
        ..MonitorConfig::default()
    };
    let client = Client::builder()
        .model(ModelConfig::new(ModelSource::wasm_bytes(model())))
        .log_to(MemorySink::new())
        .monitor(config)
        .build()
        .unwrap();
    (client, alerts)
}

/// 400 requests a minute for `minutes` minutes, `a` and `b` made by `values`.
fn traffic(client: &Client, minutes: i64, values: impl Fn(i64, i64) -> (f64, Value)) {
    for m in 0..minutes {
        for i in 0..400 {
            let (a, b) = values(m, i);
            let request =
                Request::new().value("a", a).value("b", b).at(Timestamp::from_micros(m * MINUTE + i * 150_000));
            client.predict("waits", &request).unwrap();
        }
    }
}

#[test]
fn a_unit_change_alerts_in_the_window_it_happens() {
    let (client, alerts) = client();
    // From minute 3 on, `a` arrives in milliseconds.
    traffic(&client, 5, |m, i| {
        let seconds = 30.0 + (i % 97) as f64;
        (if m >= 3 { seconds * 1000.0 } else { seconds }, Value::I64(i % 9))
    });
    let monitor = client.monitor("waits").unwrap().expect("the model has training statistics");
    monitor.flush(6 * MINUTE);
    let alerts = alerts.lock().unwrap();
    let drift: Vec<&Alert> = alerts.iter().filter(|a| a.column == "a" && a.kind.name() == "drift").collect();
    assert_eq!(drift.first().map(|a| a.window_start_micros), Some(3 * MINUTE), "{alerts:#?}");
    assert!(alerts.iter().all(|a| a.window_start_micros >= 3 * MINUTE), "{alerts:#?}");
    // The output moved with it; `b` did not.
    assert!(alerts.iter().any(|a| a.column == "y"));
    assert!(alerts.iter().all(|a| a.column != "b"), "{alerts:#?}");
}

#[test]
fn an_integer_sent_as_a_float_is_a_contract_violation() {
    let (client, alerts) = client();
    // Minute 2: a caller starts sending `b` as a float; the values are still whole.
    traffic(&client, 3, |m, i| {
        let b = if m == 2 { Value::F64((i % 9) as f64) } else { Value::I64(i % 9) };
        (30.0 + (i % 97) as f64, b)
    });
    // A string is refused, and counted too.
    let refused = Request::new().value("a", 31.0).value("b", "3").at(Timestamp::from_micros(2 * MINUTE + 1));
    assert!(client.predict("waits", &refused).is_err());
    client.monitor("waits").unwrap().unwrap().flush(4 * MINUTE);
    let alerts = alerts.lock().unwrap();
    let contract: Vec<&AlertKind> = alerts.iter().filter(|a| a.kind.is_contract()).map(|a| &a.kind).collect();
    assert_eq!(contract, [&AlertKind::FloatForInteger { rows: 400 }, &AlertKind::WrongType { rows: 1 }], "{alerts:#?}");
    assert!(alerts.iter().all(|a| a.column == "b" && a.window_start_micros == 2 * MINUTE), "{alerts:#?}");
}
