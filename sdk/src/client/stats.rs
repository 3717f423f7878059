//! The counters a client keeps: `ClientStats`.

use std::sync::atomic::{AtomicU64, Ordering};

use super::metrics;

/// Counters a client keeps (exported as metrics by the monitoring layer).
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Rows scored and logged.
    pub predictions: AtomicU64,
    /// Feature-store lookups that failed and were replaced by missing values.
    pub degraded_fetches: AtomicU64,
    /// Treatments logged.
    pub treatments: AtomicU64,
    /// Treatments refused because the prediction's entity is held out.
    pub treatments_refused: AtomicU64,
    /// Serving-version changes (deploys and rollbacks).
    pub swaps: AtomicU64,
    /// Model versions refused (did not load, validate or score a smoke row).
    pub versions_refused: AtomicU64,
    /// Rows whose flag named a version that is not loaded (refused, or not yet
    /// loaded): the serving version answered them.
    pub flag_version_unavailable: AtomicU64,
}

impl ClientStats {
    /// Counts a refused version, here and as a metric.
    pub(crate) fn version_refused(&self, model: &str) {
        self.versions_refused.fetch_add(1, Ordering::Relaxed);
        metrics::count("fresco_versions_refused_total", model, 1);
    }

    /// Counts a change of serving version, here and as a metric.
    pub(crate) fn swapped(&self, model: &str) {
        self.swaps.fetch_add(1, Ordering::Relaxed);
        metrics::count("fresco_version_swaps_total", model, 1);
    }

    /// Counts a row whose flag named a version that is not loaded.
    pub(super) fn flag_version_missing(&self, model: &str) {
        self.flag_version_unavailable.fetch_add(1, Ordering::Relaxed);
        metrics::count("fresco_flag_version_unavailable_total", model, 1);
    }

    /// Counts `n` treatments logged.
    pub(super) fn treated(&self, model: &str, n: u64) {
        self.treatments.fetch_add(n, Ordering::Relaxed);
        metrics::count("fresco_treatments_total", model, n);
    }

    /// Counts `n` treatments refused because their entities are held out.
    pub(super) fn treatments_held_out(&self, model: &str, n: u64) {
        self.treatments_refused.fetch_add(n, Ordering::Relaxed);
        metrics::count("fresco_treatments_refused_total", model, n);
    }
}
