//! The service over real HTTP/1.1 on loopback: predictions, feedback, metrics, probes,
//! and every kind of bad request answered with a 4xx that names what was wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};

use fresco::holdout::Holdout;
use fresco::{Client, MemorySink, ModelConfig, ModelSource};
use fresco_http::{PredictionOut, Predictions, Service};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| fresco_http::install_metrics().unwrap()).clone()
}

/// A service on a free port: the linear test model with a holdout keyed by `user_id`
/// (half of the users held out).
async fn start() -> (String, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::new());
    let client = Client::builder()
        .holdout(Holdout::new("h", "salt", 0.5).unwrap(), "user_id")
        .model(ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear())).holdout("h"))
        .shared_log(sink.clone())
        .build()
        .unwrap();
    let app = Service::new(client).metrics(metrics()).router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address, sink)
}

/// One HTTP/1.1 exchange: the status and the body.
async fn call(address: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // A server may answer (413) and close before taking a whole large body.
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn message(body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    json["error"]["message"].as_str().unwrap_or_else(|| panic!("no error message: {body}")).to_owned()
}

const ROW: &str = r#"{"entities": {"user_id": "u-1"}, "values": {"a": 1.5, "b": 2}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predictions_and_feedback_round_trip() {
    let (address, sink) = start().await;
    let (status, body) = call(&address, "POST", "/v1/models/linear/predict", ROW.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    let one: PredictionOut = serde_json::from_str(&body).unwrap();
    assert_eq!(one.model, "linear");
    assert!(one.holdout.is_some());
    let id: fresco::PredictionId = one.prediction_id.parse().unwrap();

    let rows: Vec<String> = (0..20)
        .map(|i| format!(r#"{{"entities": {{"user_id": "u-{i}"}}, "values": {{"a": {i}, "b": 1.0}}}}"#))
        .collect();
    let batch = format!(r#"{{"rows": [{}]}}"#, rows.join(","));
    let (status, body) = call(&address, "POST", "/v1/models/linear/predict", batch.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    let many: Predictions = serde_json::from_str(&body).unwrap();
    assert_eq!(many.predictions.len(), 20);
    assert_eq!(sink.len(), 21, "every answered prediction is logged");

    let outcome = format!(r#"{{"model": "linear", "prediction_id": "{id}", "label": 3.0}}"#);
    let (status, body) = call(&address, "POST", "/v1/outcomes", outcome.as_bytes()).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(sink.outcomes()[0].1.prediction_id, id.to_string());

    // A treatment of a held-out entity is a conflict; of another, logged.
    let held = many.predictions.iter().zip(0..).find(|(p, _)| !p.may_treat).unwrap();
    let free = many.predictions.iter().zip(0..).find(|(p, _)| p.may_treat).unwrap();
    for ((p, i), want) in [(held, 409), (free, 204)] {
        let treatment = format!(
            r#"{{"model": "linear", "prediction_id": "{}", "entity_key": "u-{i}", "treatment": "call"}}"#,
            p.prediction_id
        );
        let (status, body) = call(&address, "POST", "/v1/treatments", treatment.as_bytes()).await;
        assert_eq!(status, want, "{body}");
        if want == 409 {
            assert!(message(&body).contains("held-out entities are never treated"), "{body}");
        }
    }
    assert_eq!(sink.treatments().len(), 1);

    let (status, body) = call(&address, "GET", "/metrics", b"").await;
    assert_eq!(status, 200);
    for series in ["fresco_predict_seconds_bucket{", "fresco_http_request_seconds_bucket{", "fresco_predictions_total{"]
    {
        assert!(body.contains(series), "{series} missing from /metrics");
    }
    assert!(!body.contains("quantile=\""), "latencies are histograms, not summaries");
    let (status, body) = call(&address, "GET", "/healthz", b"").await;
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, body) = call(&address, "GET", "/readyz", b"").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""ready":true"#), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_4xx_naming_what_was_wrong() {
    let (address, sink) = start().await;
    let predict = "/v1/models/linear/predict";
    let huge = format!(r#"{{"values": {{"a": 1, "pad": "{}"}}}}"#, "x".repeat(10 << 20));
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("broken JSON", predict, b"{\"values\": ".to_vec(), 400, "body"),
        ("unknown model", "/v1/models/nope/predict", ROW.as_bytes().to_vec(), 404, "nope"),
        (
            "a string for a number",
            predict,
            br#"{"entities": {"user_id": "u"}, "values": {"a": "one", "b": 1}}"#.to_vec(),
            400,
            "feature `a`",
        ),
        ("10 MB body", predict, huge.into_bytes(), 413, "length limit"),
        ("missing entity", predict, br#"{"values": {"a": 1, "b": 1}}"#.to_vec(), 400, "user_id"),
        ("unknown field", predict, br#"{"valuez": {"a": 1}}"#.to_vec(), 400, "valuez"),
        (
            "an array value",
            predict,
            br#"{"entities": {"user_id": "u"}, "values": {"a": [1], "b": 1}}"#.to_vec(),
            400,
            "value `a` is an array",
        ),
        ("a bad time", predict, br#"{"entities": {"user_id": "u"}, "at": "noon"}"#.to_vec(), 400, "`at`"),
        (
            "a bad prediction id",
            "/v1/outcomes",
            br#"{"model": "linear", "prediction_id": "order-1", "label": 1}"#.to_vec(),
            400,
            "order-1",
        ),
        (
            "an outcome without its label",
            "/v1/outcomes",
            br#"{"model": "linear", "prediction_id": "x"}"#.to_vec(),
            422,
            "label",
        ),
    ];
    for (what, path, body, want, naming) in cases {
        let (status, answer) = call(&address, "POST", path, &body).await;
        assert_eq!(status, want, "{what}: {answer}");
        assert!(message(&answer).contains(naming), "{what}: `{naming}` not in {answer}");
    }
    assert!(sink.is_empty(), "no bad request was logged as a prediction");
    // The service still answers.
    let (status, _) = call(&address, "POST", predict, ROW.as_bytes()).await;
    assert_eq!(status, 200);
}
