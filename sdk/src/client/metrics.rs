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

use metrics::SharedString;

fn label(value: &Arc<str>) -> SharedString {
    SharedString::from(value.clone())
}

pub(crate) fn predictions(model: &Arc<str>, version: &Arc<str>, rows: usize, took: Duration) {
    let labels = [("model", label(model)), ("version", label(version))];
    metrics::counter!("fresco_predictions_total", &labels).increment(rows as u64);
    metrics::histogram!("fresco_predict_seconds", &labels).record(took.as_secs_f64());
}

pub(crate) fn degraded(model: &Arc<str>, view: &Arc<str>) {
    metrics::counter!("fresco_store_degradations_total", "model" => label(model), "view" => label(view)).increment(1);
}

/// A per-model counter: `name` with a `model` label.
pub(crate) fn count(name: &'static str, model: &str, n: u64) {
    metrics::counter!(name, "model" => model.to_owned()).increment(n);
}
