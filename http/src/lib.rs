//! fresco as an HTTP service: a [`Service`] turns a [`fresco::Client`] into an
//! [`axum::Router`], and [`ServeConfig`] is what `fresco serve --config fresco.toml`
//! builds one from.
//!
//! | route | does |
//! |---|---|
//! | `POST /v1/models/{name}/predict` | one row (`{"entities": {...}, "values": {...}}`) or `{"rows": [...]}` |
//! | `POST /v1/outcomes` | `{"model", "prediction_id", "label", "ts"?}` |
//! | `POST /v1/treatments` | `{"model", "prediction_id", "entity_key", "treatment", "ts"?}` |
//! | `GET /metrics` | Prometheus text, latencies as histograms |
//! | `GET /healthz` | alive |
//! | `GET /readyz` | models loaded, the log publishing, each check added; 503 if not |
//!
//! Errors are `{"error": {"kind": ..., "message": ...}}` with a status that says whose
//! fault it is ([`ApiError::from_client`]). Scoring runs on tokio's blocking pool
//! (`Client::predict_async`), so the async workers never wait on a store or a model.
//!
//! ```
//! use fresco::{Client, MemorySink, ModelConfig, ModelSource};
//! use fresco_http::Service;
//!
//! let client = Client::builder()
//!     .model(ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear())))
//!     .log_to(MemorySink::new())
//!     .build()?;
//! let app: axum::Router = Service::new(client).router();
//! // axum::serve(tokio::net::TcpListener::bind("127.0.0.1:8080").await?, app).await?;
//! # let _ = app;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod api;
mod config;
mod error;

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fresco::Client;
use metrics_exporter_prometheus::PrometheusHandle;

pub use api::{HoldoutOut, IntervalOut, OutcomeIn, PredictBody, PredictionOut, Predictions, Row, TreatmentIn};
pub use config::{
    AggregatesSection, ConfigError, FeastSection, FeastViewSection, FlagsSection, HoldoutSection, InputRef, LogSection,
    ModelSection, RegistrySection, RolloutSection, ServeConfig, Serving, StoreSection,
};
pub use error::ApiError;

/// A readiness check: `Ok` when the dependency it watches is usable, else why not.
pub type ReadinessCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// A [`Client`] as an HTTP service. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    client: Client,
    metrics: Option<PrometheusHandle>,
    checks: Vec<(String, ReadinessCheck)>,
    max_body_bytes: usize,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("models", &self.client.models()).finish_non_exhaustive()
    }
}

impl Service {
    /// Bodies larger than this are refused with 413 (default 2 MiB).
    pub const DEFAULT_MAX_BODY_BYTES: usize = 2 << 20;

    /// A service over `client`, without `/metrics` (see [`metrics`](Self::metrics)).
    pub fn new(client: Client) -> Self {
        Service { client, metrics: None, checks: Vec::new(), max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES }
    }

    /// Serves `/metrics` from this Prometheus recorder's handle (the recorder that
    /// [`install_metrics`] installs renders latencies as histograms).
    pub fn metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// Adds a check to `/readyz`.
    ///
    /// ```
    /// # let client = fresco::Client::builder()
    /// #     .model(fresco::ModelConfig::new(fresco::ModelSource::wasm_bytes(fresco_test_models::linear())))
    /// #     .log_to(fresco::MemorySink::new()).build()?;
    /// let service = fresco_http::Service::new(client).readiness_check("cache", || Ok(()));
    /// # let _ = service;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn readiness_check(
        mut self,
        name: impl Into<String>,
        check: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.checks.push((name.into(), Arc::new(check)));
        self
    }

    /// Adds several checks to `/readyz` (e.g. [`Serving::readiness_checks`]).
    pub fn readiness_checks(mut self, checks: impl IntoIterator<Item = (String, ReadinessCheck)>) -> Self {
        self.checks.extend(checks);
        self
    }

    /// Refuses bodies larger than `bytes` with 413.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// The client it serves.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The routes, ready for `axum::serve` or to be nested in a larger app.
    pub fn router(self) -> axum::Router {
        let limit = self.max_body_bytes;
        axum::Router::new()
            .route("/v1/models/{name}/predict", post(predict))
            .route("/v1/outcomes", post(outcome))
            .route("/v1/treatments", post(treatment))
            .route("/metrics", get(metrics))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(ready))
            .layer(middleware::from_fn(observe))
            .layer(DefaultBodyLimit::max(limit))
            .with_state(Arc::new(self))
    }
}

/// Installs a process-wide Prometheus recorder whose `*_seconds` metrics are histograms
/// (buckets from 10 µs to 10 s), so that replicas' latencies aggregate, and returns the
/// handle `/metrics` renders. Call once, before the first metric is recorded.
pub fn install_metrics() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    const BUCKETS: [f64; 19] = [
        0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets_for_metric(metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()), &BUCKETS)?
        .install_recorder()?;
    fresco::describe_metrics();
    metrics::describe_counter!("fresco_http_requests_total", "HTTP requests answered, by route and status.");
    metrics::describe_histogram!(
        "fresco_http_request_seconds",
        metrics::Unit::Seconds,
        "Time to answer one HTTP request, by route."
    );
    Ok(handle)
}

/// Counts and times every request by route and status.
async fn observe(matched: Option<MatchedPath>, request: axum::extract::Request, next: Next) -> Response {
    let route = matched.map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("fresco_http_request_seconds", "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("fresco_http_requests_total", "route" => route, "status" => status).increment(1);
    response
}

/// A JSON body, or a 4xx naming what is wrong with it (413 past the size limit).
fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(value)| value).map_err(|rejection| {
        let status = rejection.status();
        let kind = if status == StatusCode::PAYLOAD_TOO_LARGE { "body_too_large" } else { "bad_request" };
        ApiError { status, kind, message: format!("body: {}", rejection.body_text()) }
    })
}

async fn predict(
    State(service): State<Arc<Service>>,
    Path(model): Path<String>,
    json: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    match PredictBody::from_json(body(json)?)? {
        PredictBody::One(row) => {
            let prediction = service.client.predict_async(&model, row.to_request(0)?).await?;
            Ok(Json(PredictionOut::from(&prediction)).into_response())
        }
        PredictBody::Batch(rows) => {
            let requests = rows.iter().enumerate().map(|(i, row)| row.to_request(i)).collect::<Result<_, _>>()?;
            let predictions = service.client.predict_batch_async(&model, requests).await?;
            let predictions = predictions.iter().map(PredictionOut::from).collect();
            Ok(Json(Predictions { predictions }).into_response())
        }
    }
}

async fn outcome(
    State(service): State<Arc<Service>>,
    json: Result<Json<OutcomeIn>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let outcome = body(json)?;
    let ts = api::time_or_now(outcome.ts.as_deref(), "ts")?;
    let id = parse_id(&outcome.prediction_id)?;
    service.client.log_outcome_async(&outcome.model, id, outcome.label, ts).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn treatment(
    State(service): State<Arc<Service>>,
    json: Result<Json<TreatmentIn>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let t = body(json)?;
    let ts = api::time_or_now(t.ts.as_deref(), "ts")?;
    let id = parse_id(&t.prediction_id)?;
    service.client.log_treatment_by_id_async(&t.model, id, &t.entity_key, &t.treatment, ts).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn parse_id(text: &str) -> Result<fresco::PredictionId, ApiError> {
    text.parse().map_err(|e| ApiError::bad_request(format!("`prediction_id`: {e}")))
}

async fn metrics(State(service): State<Arc<Service>>) -> Response {
    match &service.metrics {
        Some(handle) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
        }
        None => ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "no_metrics",
            message: "this service has no metrics recorder (Service::metrics)".into(),
        }
        .into_response(),
    }
}

async fn ready(State(service): State<Arc<Service>>) -> Response {
    let mut checks = serde_json::Map::new();
    let mut ready = true;
    let client = &service.client;
    let models: Vec<String> = client.models().iter().map(|m| (*m).to_owned()).collect();
    for model in &models {
        let state = match client.serving_version(model) {
            Ok(version) => format!("ok: serving {version}"),
            Err(e) => {
                ready = false;
                e.to_string()
            }
        };
        checks.insert(format!("model {model}"), state.into());
    }
    if models.is_empty() {
        ready = false;
        checks.insert("models".into(), "no model is loaded".into());
    }
    for (name, check) in &service.checks {
        let state = match check() {
            Ok(()) => "ok".to_owned(),
            Err(reason) => {
                ready = false;
                reason
            }
        };
        checks.insert(name.clone(), state.into());
    }
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(serde_json::json!({ "ready": ready, "checks": checks }))).into_response()
}
