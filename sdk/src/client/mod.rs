//! The [`Client`]: one call from a request to a logged, holdout-aware prediction.

#[cfg(feature = "tokio")]
mod asynchronous;
mod builder;
mod config;
mod deploy;
mod events;
mod feedback;
mod id;
mod metrics;
pub use metrics::describe_metrics;
mod plan;
mod predict;
mod request;
mod stats;
mod versions;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;

pub use builder::ClientBuilder;
pub use config::ModelConfig;
pub use id::{InvalidPredictionId, PredictionId};
pub use request::{HoldoutDecision, Prediction, Request};
pub use stats::ClientStats;
use stats::Counters;

use crate::error::Error;
use crate::log::PredictionSink;
use crate::rollout::FlagSource;
use plan::ModelPlan;
pub(crate) use versions::check_artifact;
use versions::{Loader, Slot};
pub use watch::Watcher;

/// The version that answers a request, and the flag variant that chose it.
type Route<'v> = (&'v Arc<ModelPlan>, Option<Arc<str>>);

/// Rows scored per call into a model: keeps each call well inside the runtime's
/// per-call deadline whatever the batch size.
const SCORE_CHUNK_ROWS: usize = 4096;

/// The SDK's entry point: fetches features, scores, applies holdouts, logs.
///
/// Built once with [`Client::builder`]; cheap to clone (an `Arc`), `Send + Sync`, meant
/// to be shared by every request handler.
///
/// ```
/// use fresco::{Client, MemorySink, ModelConfig, ModelSource, Request};
/// use fresco::holdout::Holdout;
///
/// let log = std::sync::Arc::new(MemorySink::new());
/// let client = Client::builder()
///     .model(ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear())).holdout("eta-hold"))
///     .holdout(Holdout::new("eta-hold", "eta-2026", 0.1)?, "user_id")
///     .shared_log(log.clone())
///     .build()?;
///
/// let request = Request::new()
///     .entity("user_id", "u-1")
///     .value("a", 3.0)
///     .value("b", 8.0);
/// let p = client.predict("linear", &request)?; // y = 2·a + 3·b + 1
/// assert_eq!(p.output("y"), Some(31.0));
/// assert_eq!(p.holdout().map(|h| h.name.as_ref()), Some("eta-hold"));
/// assert_eq!(log.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    models: HashMap<String, Slot>,
    loader: Loader,
    flags: Option<Arc<dyn FlagSource>>,
    sink: Arc<dyn PredictionSink>,
    max_batch_rows: usize,
    stats: Counters,
    publisher: Option<Arc<crate::events::Publisher>>,
    /// Watchers running: while one runs, models from a registry follow its manifest.
    watchers: std::sync::atomic::AtomicUsize,
}

impl Inner {
    /// Runs a change of `slot`'s serving version (a call, or the watcher), counting it
    /// or its refusal.
    fn change(&self, slot: &Slot, change: impl FnOnce(&Slot) -> Result<(), Error>) -> Result<(), Error> {
        let model = slot.name.as_str();
        match change(slot) {
            Ok(()) => {
                self.stats.swapped(model);
                Ok(())
            }
            Err(error) => {
                if matches!(error, Error::VersionRefused { .. }) {
                    self.stats.version_refused(model);
                }
                tracing::warn!(model, %error, "version change refused; the serving version serves on");
                Err(error)
            }
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("models", &self.models()).finish_non_exhaustive()
    }
}

impl Client {
    /// Starts building a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Names of the registered models, sorted.
    pub fn models(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.inner.models.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The metadata of a registered model's serving version.
    pub fn metadata(&self, model: &str) -> Result<Arc<fresco_abi::ModelMetadata>, Error> {
        Ok(self.slot(model)?.current().serving.meta.clone())
    }

    /// The version of `model` that serves now.
    pub fn serving_version(&self, model: &str) -> Result<String, Error> {
        Ok(self.slot(model)?.current().serving.version.to_string())
    }

    /// The drift monitor of the version of `model` that serves by default, when the
    /// client monitors ([`ClientBuilder::monitor`]) and that version has training
    /// statistics.
    pub fn monitor(&self, model: &str) -> Result<Option<Arc<fresco_drift::Monitor>>, Error> {
        Ok(self.slot(model)?.current().serving.monitor.clone())
    }

    /// The loaded versions of `model` (serving, previous, fallback, flagged), sorted.
    pub fn loaded_versions(&self, model: &str) -> Result<Vec<String>, Error> {
        let mut versions: Vec<String> = self.slot(model)?.current().loaded.keys().cloned().collect();
        versions.sort();
        Ok(versions)
    }

    /// What the client has counted so far (a snapshot).
    ///
    /// ```
    /// # let client = fresco::Client::builder()
    /// #     .model(fresco::ModelConfig::new(fresco::ModelSource::wasm_bytes(fresco_test_models::linear())))
    /// #     .log_to(fresco::MemorySink::new()).build()?;
    /// client.predict("linear", &fresco::Request::new().value("a", 1.0).value("b", 1.0))?;
    /// assert_eq!(client.stats().predictions, 1);
    /// # Ok::<(), fresco::Error>(())
    /// ```
    pub fn stats(&self) -> ClientStats {
        self.inner.stats.snapshot()
    }

    /// The library half of a graceful stop, once no call is in flight: publishes every
    /// record logged so far ([`PredictionSink::flush`]: a [`PredictionLog`](crate::PredictionLog)
    /// publishes and uploads), and delivers the events buffered by the event publisher
    /// (waiting at most `timeout` for the stream). Stopping watchers and followers is
    /// dropping them.
    ///
    /// ```
    /// # let client = fresco::Client::builder()
    /// #     .model(fresco::ModelConfig::new(fresco::ModelSource::wasm_bytes(fresco_test_models::linear())))
    /// #     .log_to(fresco::MemorySink::new()).build()?;
    /// client.shutdown(std::time::Duration::from_secs(5))?;
    /// # Ok::<(), fresco::Error>(())
    /// ```
    pub fn shutdown(&self, timeout: std::time::Duration) -> Result<(), Error> {
        let logged = self.inner.sink.flush().map_err(|source| Error::Log { model: "*".into(), source });
        let published = match &self.inner.publisher {
            Some(publisher) => publisher.flush(timeout).map_err(Error::from),
            None => Ok(()),
        };
        logged.and(published)
    }

    fn slot(&self, model: &str) -> Result<&Slot, Error> {
        self.inner.models.get(model).ok_or_else(|| Error::UnknownModel { model: model.into() })
    }

    /// The serving plan of `model`.
    fn plan(&self, model: &str) -> Result<Arc<ModelPlan>, Error> {
        Ok(self.slot(model)?.current().serving.clone())
    }
}
