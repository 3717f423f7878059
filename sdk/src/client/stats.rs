//! The counters a client keeps, and [`ClientStats`], a snapshot of them.

use std::sync::atomic::{AtomicU64, Ordering};

use super::metrics;

/// The counters a client updates (each also recorded as a metric).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Rows scored and logged.
    pub(crate) predictions: AtomicU64,
    /// Feature-store lookups that failed and were replaced by missing values.
    pub(crate) degraded_fetches: AtomicU64,
    /// Treatments logged.
    pub(crate) treatments: AtomicU64,
    /// Treatments refused because the prediction's entity is held out.
    pub(crate) treatments_refused: AtomicU64,
    /// Serving-version changes (deploys and rollbacks).
    pub(crate) swaps: AtomicU64,
    /// Model versions refused (did not load, validate or score a smoke row).
    pub(crate) versions_refused: AtomicU64,
    /// Rows whose flag named a version that is not loaded (refused, or not yet
    /// loaded): the serving version answered them.
    pub(crate) flag_version_unavailable: AtomicU64,
}

impl Counters {
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

/// What a client has counted so far: a plain snapshot ([`Client::stats`](crate::Client::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Rows scored and logged.
    pub predictions: u64,
    /// Feature-store lookups that failed and were replaced by missing values.
    pub degraded_fetches: u64,
    /// Treatments logged.
    pub treatments: u64,
    /// Treatments refused because the prediction's entity is held out.
    pub treatments_refused: u64,
    /// Serving-version changes (deploys and rollbacks).
    pub swaps: u64,
    /// Model versions refused (did not load, validate or score a smoke row).
    pub versions_refused: u64,
    /// Rows whose flag named a version that is not loaded (refused, or not yet
    /// loaded): the serving version answered them.
    pub flag_version_unavailable: u64,
}

impl Counters {
    /// The counts now.
    pub(crate) fn snapshot(&self) -> ClientStats {
        ClientStats {
            predictions: self.predictions.load(Ordering::Relaxed),
            degraded_fetches: self.degraded_fetches.load(Ordering::Relaxed),
            treatments: self.treatments.load(Ordering::Relaxed),
            treatments_refused: self.treatments_refused.load(Ordering::Relaxed),
            swaps: self.swaps.load(Ordering::Relaxed),
            versions_refused: self.versions_refused.load(Ordering::Relaxed),
            flag_version_unavailable: self.flag_version_unavailable.load(Ordering::Relaxed),
        }
    }
}
