//! What the client records through the `metrics` facade. The SDK only records: an
//! application that wants the numbers installs a recorder (e.g.
//! `metrics-exporter-prometheus`); without one each call is a no-op.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `fresco_predictions_total` | counter (rows) | `model`, `version` |
//! | `fresco_predict_seconds` | histogram (per call) | `model`, `version` |
//! | `fresco_store_degradations_total` | counter | `model`, `view` |
//! | `fresco_version_swaps_total` | counter | `model` |
//! | `fresco_versions_refused_total` | counter | `model` |
//! | `fresco_flag_version_unavailable_total` | counter (rows) | `model` |
//! | `fresco_treatments_total` | counter | `model` |
//! | `fresco_treatments_refused_total` | counter | `model` |
//! | `fresco_log_queue_depth` | gauge (batches waiting for the log writer) | |
//! | `fresco_events_published_total` | counter (events appended by publishers) | |
//! | `fresco_events_refused_total` | counter (events refused: publisher buffer full) | |
//! | `fresco_events_append_failures_total` | counter (appends retried) | |
//! | `fresco_events_buffered` | gauge (events waiting in a publisher) | |
//! | `fresco_events_applied_total` | counter (stream entries read by followers) | `outcome`: accepted, late, future, duplicate, unusable |
//! | `fresco_events_read_failures_total` | counter (follower reads retried) | |
//! | `fresco_events_lag_seconds` | gauge (now − arrival of the last entry applied) | |
//! | `fresco_events_behind` | gauge (1 while a follower's entries were trimmed and no archive has them) | |
//!
//! Drift monitoring (`fresco_drift::Monitor`) adds `fresco_drift_score`,
//! `fresco_drift_psi`, `fresco_drift_alerts_total` and `fresco_contract_violations_total`.

use std::sync::Arc;
use std::time::Duration;

use metrics::{Key, Label, Level, Metadata, SharedString};

/// What each metric fresco records is, for exporters that print it (Prometheus'
/// `# HELP` lines, which `promtool check metrics` asks for).
const DESCRIBED: [(&str, &str, &str); 29] = [
    ("counter", "fresco_predictions_total", "Rows scored and logged."),
    ("histogram", "fresco_predict_seconds", "Time of one predict call, fetch to log."),
    ("counter", "fresco_store_degradations_total", "Feature-store reads that failed and were replaced by defaults."),
    ("counter", "fresco_version_swaps_total", "Serving-version changes (deploys and rollbacks)."),
    ("counter", "fresco_versions_refused_total", "Model versions refused (did not load, validate or score)."),
    ("counter", "fresco_flag_version_unavailable_total", "Rows whose flag named a version not loaded."),
    ("counter", "fresco_treatments_total", "Treatments logged."),
    ("counter", "fresco_treatments_refused_total", "Treatments refused: the entity is held out."),
    ("gauge", "fresco_log_queue_depth", "Batches waiting for the prediction log's writer."),
    (
        "counter",
        "fresco_log_publish_failures_total",
        "Attempts to publish the log's Parquet files that failed (retried).",
    ),
    (
        "counter",
        "fresco_log_dropped_total",
        "Log records dropped from the Parquet output: the queue was full (policy Drop).",
    ),
    (
        "counter",
        "fresco_aggregate_events_dropped_total",
        "Events recorded directly that windowed aggregates dropped, by reason (late, future).",
    ),
    ("counter", "fresco_feast_requests_total", "Requests sent to the Feast feature server (retries included)."),
    ("counter", "fresco_feast_retries_total", "Requests to the Feast feature server that were retries."),
    ("counter", "fresco_feast_failures_total", "Feast lookups that failed after their retries, by view."),
    ("histogram", "fresco_log_upload_seconds", "Upload of one published log file to object storage."),
    ("counter", "fresco_log_uploaded_files_total", "Log files confirmed in object storage."),
    ("counter", "fresco_log_upload_failures_total", "Log file uploads that failed (retried)."),
    ("gauge", "fresco_log_upload_lag_seconds", "How long the oldest published log file has waited for its upload."),
    ("counter", "fresco_events_published_total", "Events appended to the shared stream by publishers."),
    ("counter", "fresco_events_refused_total", "Events refused: the publisher's buffer was full."),
    ("counter", "fresco_events_append_failures_total", "Appends to the shared stream that failed (retried)."),
    ("gauge", "fresco_events_buffered", "Events waiting in a publisher."),
    ("counter", "fresco_events_applied_total", "Stream entries read by followers, by outcome."),
    ("counter", "fresco_events_read_failures_total", "Reads of the shared stream that failed (retried)."),
    ("gauge", "fresco_events_lag_seconds", "Now minus the arrival of the last stream entry applied."),
    ("gauge", "fresco_events_behind", "1 while a follower's entries were trimmed and no archive has them."),
    ("counter", "fresco_drift_alerts_total", "Drift and out-of-range alerts raised by the monitor."),
    ("counter", "fresco_contract_violations_total", "Data-contract violations seen by the monitor."),
];

/// Describes every metric fresco records to the installed recorder (help text, for
/// exporters that print it). Call once after installing a recorder.
///
/// ```
/// fresco::describe_metrics(); // a no-op without a recorder
/// ```
pub fn describe_metrics() {
    for (kind, name, help) in DESCRIBED {
        match kind {
            "counter" => metrics::describe_counter!(name, help),
            "gauge" => metrics::describe_gauge!(name, help),
            _ => metrics::describe_histogram!(name, metrics::Unit::Seconds, help),
        }
    }
    metrics::describe_gauge!("fresco_drift_score", "The drift test's statistic per monitored column.");
    metrics::describe_gauge!("fresco_drift_psi", "Population stability index per monitored column.");
}

fn label(value: &Arc<str>) -> SharedString {
    SharedString::from(value.clone())
}

/// The per-call metrics of one model version, their keys built once: a call then
/// neither allocates its labels nor hashes them (a [`Key`] carries its hash). The
/// recorder is still looked up on every call, so one installed after the Client was
/// built gets the calls from then on.
pub(crate) struct PredictionMetrics {
    predictions: Key,
    seconds: Key,
}

impl PredictionMetrics {
    pub(crate) fn new(model: &Arc<str>, version: &Arc<str>) -> Self {
        let labels = || vec![Label::new("model", label(model)), Label::new("version", label(version))];
        PredictionMetrics {
            predictions: Key::from_parts("fresco_predictions_total", labels()),
            seconds: Key::from_parts("fresco_predict_seconds", labels()),
        }
    }

    /// One call that scored `rows` rows in `took`.
    pub(crate) fn record(&self, rows: usize, took: Duration) {
        // What `counter!` and `histogram!` would pass from this module.
        static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));
        metrics::with_recorder(|recorder| {
            recorder.register_counter(&self.predictions, &METADATA).increment(rows as u64);
            recorder.register_histogram(&self.seconds, &METADATA).record(took.as_secs_f64());
        });
    }
}

pub(crate) fn degraded(model: &Arc<str>, view: &Arc<str>) {
    metrics::counter!("fresco_store_degradations_total", "model" => label(model), "view" => label(view)).increment(1);
}

/// A per-model counter: `name` with a `model` label.
pub(crate) fn count(name: &'static str, model: &str, n: u64) {
    metrics::counter!(name, "model" => model.to_owned()).increment(n);
}
