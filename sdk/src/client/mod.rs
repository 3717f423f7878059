//! The [`Client`]: one call from a request to a logged, holdout-aware prediction.

mod events;
mod metrics;
mod plan;
mod request;
mod versions;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use uuid::Uuid;

pub use request::{HoldoutDecision, Prediction, Request};

use crate::aggregates::AggregateStore;
use crate::error::{ConfigError, Error, Refusal};
use crate::features::{FeatureStore, InputSource, Timestamp};
use crate::holdout::Holdout;
use crate::log::{OutcomeRecord, PredictionRecord, PredictionSink, TreatmentRecord};
use crate::model::ModelSource;
use crate::registry::Registry;
use crate::rollout::FlagSource;
use plan::ModelPlan;
pub(crate) use versions::check_artifact;
use versions::{Loader, Rollout, Slot, Versions};
pub use watch::Watcher;

/// The version that answers a request, and the flag variant that chose it.
type Route<'v> = (&'v Arc<ModelPlan>, Option<Arc<str>>);

/// Rows scored per call into a model: keeps each call well inside the runtime's
/// per-call deadline whatever the batch size.
const SCORE_CHUNK_ROWS: usize = 4096;

/// How one model is registered: where it comes from, where each input comes from, and
/// which holdout and flag apply.
///
/// Inputs not mapped explicitly come from the request, under the input's own name.
///
/// ```
/// use fresco::{InputSource, ModelConfig, ModelSource};
///
/// let config = ModelConfig::new(ModelSource::wasm_file("eta.wasm"))
///     .input("prep_min", InputSource::stored("restaurants", "prep_min"))
///     .holdout("eta-2026q4");
/// # let _ = config;
/// ```
#[derive(Debug)]
pub struct ModelConfig {
    origin: Origin,
    inputs: HashMap<String, InputSource>,
    holdout: Option<String>,
    rollout: Option<(String, String)>,
    fallback: Option<String>,
}

#[derive(Debug)]
enum Origin {
    Source(ModelSource),
    Registry(Registry, String),
}

impl ModelConfig {
    /// A model from `source`, every input taken from the request.
    pub fn new(source: ModelSource) -> Self {
        Self::with_origin(Origin::Source(source))
    }

    /// The model `model` of a [`Registry`]: its serving version (from the manifest),
    /// with the previous one loaded for rollback. [`Client::deploy`] and
    /// [`Client::watch`] load further versions from the registry.
    ///
    /// ```
    /// use fresco::{Client, MemorySink, ModelConfig, registry::Registry};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// registry.publish_wasm("linear", "1", &fresco_test_models::linear())?;
    /// registry.deploy("linear", "1")?;
    ///
    /// let client = Client::builder()
    ///     .model(ModelConfig::from_registry(&registry, "linear"))
    ///     .log_to(MemorySink::new())
    ///     .build()?;
    /// assert_eq!(client.serving_version("linear")?, "1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_registry(registry: &Registry, model: impl Into<String>) -> Self {
        Self::with_origin(Origin::Registry(registry.clone(), model.into()))
    }

    fn with_origin(origin: Origin) -> Self {
        ModelConfig { origin, inputs: HashMap::new(), holdout: None, rollout: None, fallback: None }
    }

    /// Feeds model input `input` from `source`.
    pub fn input(mut self, input: impl Into<String>, source: InputSource) -> Self {
        self.inputs.insert(input.into(), source);
        self
    }

    /// Applies the named holdout (configured with [`ClientBuilder::holdout`]).
    pub fn holdout(mut self, name: impl Into<String>) -> Self {
        self.holdout = Some(name.into());
        self
    }

    /// Lets `flag` choose the version per request (the [`FlagSource`] configured with
    /// [`ClientBuilder::flags`]), sticky on the request's entity key named `entity`:
    /// a variant whose payload names a version routes the request there; the flag
    /// off routes it to the [`fallback_version`](Self::fallback_version), or to the
    /// serving version when none is declared. See [`rollout`](crate::rollout).
    pub fn rollout(mut self, flag: impl Into<String>, entity: impl Into<String>) -> Self {
        self.rollout = Some((flag.into(), entity.into()));
        self
    }

    /// The version that answers while the model's flag is off (loaded at build, from
    /// the registry).
    pub fn fallback_version(mut self, version: impl Into<String>) -> Self {
        self.fallback = Some(version.into());
        self
    }
}

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
    fn flag_version_missing(&self, model: &str) {
        self.flag_version_unavailable.fetch_add(1, Ordering::Relaxed);
        metrics::count("fresco_flag_version_unavailable_total", model, 1);
    }

    /// Counts `n` treatments logged.
    fn treated(&self, model: &str, n: u64) {
        self.treatments.fetch_add(n, Ordering::Relaxed);
        metrics::count("fresco_treatments_total", model, n);
    }

    /// Counts `n` treatments refused because their entities are held out.
    fn treatments_held_out(&self, model: &str, n: u64) {
        self.treatments_refused.fetch_add(n, Ordering::Relaxed);
        metrics::count("fresco_treatments_refused_total", model, n);
    }
}

/// Builds a [`Client`].
///
/// ```
/// use fresco::{Client, MemorySink, ModelConfig, ModelSource};
///
/// let client = Client::builder()
///     .model(ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear())))
///     .log_to(MemorySink::new())
///     .build()?;
/// assert_eq!(client.models(), vec!["linear"]);
/// # Ok::<(), fresco::Error>(())
/// ```
#[derive(Default)]
pub struct ClientBuilder {
    engine: Option<fresco_runtime::Engine>,
    store: Option<Arc<dyn FeatureStore>>,
    aggregates: Option<Arc<AggregateStore>>,
    holdouts: HashMap<String, (Arc<Holdout>, Arc<str>)>,
    models: Vec<ModelConfig>,
    sink: Option<Arc<dyn PredictionSink>>,
    max_batch_rows: Option<usize>,
    flags: Option<Arc<dyn FlagSource>>,
    monitoring: Option<fresco_drift::MonitorConfig>,
    publisher: Option<Arc<crate::events::Publisher>>,
}

impl ClientBuilder {
    /// Default limit on rows per `predict_batch` call.
    pub const DEFAULT_MAX_BATCH_ROWS: usize = 100_000;

    /// Uses this WebAssembly engine (limits, code cache); a default one otherwise.
    pub fn engine(mut self, engine: fresco_runtime::Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Reads stored features from `store`.
    pub fn feature_store(self, store: impl FeatureStore) -> Self {
        self.shared_feature_store(Arc::new(store))
    }

    /// Reads windowed features ([`InputSource::windowed`]) from `aggregates`, which the
    /// application keeps feeding with [`AggregateStore::record_event`].
    pub fn aggregates(mut self, aggregates: Arc<AggregateStore>) -> Self {
        self.aggregates = Some(aggregates);
        self
    }

    /// Reads stored features from a store shared with other code.
    pub fn shared_feature_store(mut self, store: Arc<dyn FeatureStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Adds a holdout, assigned by the request's entity key named `entity`.
    pub fn holdout(mut self, holdout: Holdout, entity: impl AsRef<str>) -> Self {
        self.holdouts.insert(holdout.name().to_owned(), (Arc::new(holdout), entity.as_ref().into()));
        self
    }

    /// Registers a model.
    pub fn model(mut self, config: ModelConfig) -> Self {
        self.models.push(config);
        self
    }

    /// Sends prediction records to `sink`.
    pub fn log_to(self, sink: impl PredictionSink) -> Self {
        self.shared_log(Arc::new(sink))
    }

    /// Sends prediction records to a sink shared with other code.
    pub fn shared_log(mut self, sink: Arc<dyn PredictionSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Asks `flags` which version of a model with a [`ModelConfig::rollout`] answers.
    pub fn flags(self, flags: impl FlagSource) -> Self {
        self.shared_flags(Arc::new(flags))
    }

    /// [`flags`](Self::flags), shared with other code.
    pub fn shared_flags(mut self, flags: Arc<dyn FlagSource>) -> Self {
        self.flags = Some(flags);
        self
    }

    /// Watches every model version whose metadata carries training statistics
    /// (`fresco compile --train-data`): inputs and outputs per window, tested against
    /// training and against the previous window, type contracts checked as requests
    /// arrive; alerts go to `config.on_alert`, `tracing` and the `metrics` facade (see
    /// `fresco_drift::Monitor`). [`Client::monitor`] reads a version's monitor.
    ///
    /// ```
    /// # use fresco::{Client, MemorySink, ModelConfig, ModelSource};
    /// let client = Client::builder()
    ///     .model(ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear())))
    ///     .log_to(MemorySink::new())
    ///     .monitor(fresco::drift::MonitorConfig::default())
    ///     .build()?;
    /// // This model was compiled without training statistics: nothing to watch.
    /// assert!(client.monitor("linear")?.is_none());
    /// # Ok::<(), fresco::Error>(())
    /// ```
    pub fn monitor(mut self, config: fresco_drift::MonitorConfig) -> Self {
        self.monitoring = Some(config);
        self
    }

    /// Refuses batches larger than this ([`DEFAULT_MAX_BATCH_ROWS`](Self::DEFAULT_MAX_BATCH_ROWS)).
    pub fn max_batch_rows(mut self, rows: usize) -> Self {
        self.max_batch_rows = Some(rows);
        self
    }

    /// Loads the models and checks every mapping against the models' metadata, the
    /// feature store's views and the holdouts.
    pub fn build(self) -> Result<Client, Error> {
        let _span = tracing::info_span!("fresco.client.build", models = self.models.len()).entered();
        let sink = self.sink.ok_or(ConfigError::NoPredictionLog)?;
        if let Some(config) = &self.monitoring {
            config.check().map_err(ConfigError::Monitor)?;
        }
        let engine = match self.engine {
            Some(engine) => engine,
            None => fresco_runtime::Engine::new()
                .map_err(|e| ConfigError::Load { source: Box::new(crate::model::ModelError::Runtime(e)) })?,
        };
        let loader = Loader {
            engine,
            store: self.store,
            aggregates: self.aggregates,
            holdouts: self.holdouts,
            monitoring: self.monitoring,
        };
        let stats = ClientStats::default();
        let mut models = HashMap::new();
        for config in self.models {
            let slot = Self::slot(&loader, config, self.flags.as_ref(), &stats)?;
            let serving = slot.current().serving.clone();
            tracing::info!(model = %slot.name, version = %serving.version, backend = serving.backend.kind(), "model registered");
            let name = slot.name.clone();
            if models.insert(name.clone(), slot).is_some() {
                return Err(ConfigError::DuplicateModel { model: name }.into());
            }
        }
        Ok(Client {
            inner: Arc::new(Inner {
                models,
                loader,
                flags: self.flags,
                sink,
                max_batch_rows: self.max_batch_rows.unwrap_or(Self::DEFAULT_MAX_BATCH_ROWS),
                stats,
                publisher: self.publisher,
            }),
        })
    }

    /// Loads a model's serving version, and from its registry the previous version,
    /// the fallback and the versions its flag names.
    fn slot(
        loader: &Loader,
        config: ModelConfig,
        flags: Option<&Arc<dyn FlagSource>>,
        stats: &ClientStats,
    ) -> Result<Slot, Error> {
        let ModelConfig { origin, inputs, holdout, rollout, fallback } = config;
        let (source, registry, manifest) = match origin {
            Origin::Source(source) => (source, None, None),
            Origin::Registry(registry, model) => {
                let registry_err = |e| ConfigError::Registry { model: model.clone(), source: Box::new(e) };
                let manifest = registry.manifest(&model).map_err(registry_err)?;
                let source = registry.source(&model, &manifest.serving).map_err(registry_err)?;
                (source, Some(registry), Some((model, manifest)))
            }
        };
        let rollout = match rollout {
            Some((flag, entity)) if flags.is_some() => Some(Rollout { flag, entity: entity.into(), fallback }),
            Some((flag, _)) => return Err(ConfigError::NoFlagSource { flag }.into()),
            None if fallback.is_some() => return Err(ConfigError::FallbackWithoutFlag.into()),
            None => None,
        };
        let registered = registry.zip(manifest.as_ref()).map(|(r, (model, m))| (r, model.as_str(), m.serving.as_str()));
        let slot = Slot::new(loader, source, inputs, holdout, registered, rollout)?;
        if let Some(previous) = manifest.and_then(|(_, m)| m.previous) {
            // The previous version is a convenience (instant rollback): one that no longer
            // loads is refused and logged, and the client serves without it.
            let deployed = slot.deploy(loader, &previous, None).and_then(|_| slot.rollback());
            if let Err(error) = deployed {
                stats.version_refused(&slot.name);
                tracing::warn!(model = %slot.name, %error, "previous version not loaded");
            }
        }
        if let (Some(rollout), Some(flags)) = (&slot.rollout, flags) {
            let versions = flags.versions(&rollout.flag);
            for error in slot.preload(loader, versions) {
                // The fallback must load: it is what answers when the flag is off.
                if let Error::VersionRefused { version, .. } = &error
                    && rollout.fallback.as_deref() == Some(version.as_str())
                {
                    return Err(error);
                }
                stats.version_refused(&slot.name);
                tracing::warn!(model = %slot.name, %error, "flagged version not loaded");
            }
        }
        Ok(slot)
    }
}

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
    stats: ClientStats,
    publisher: Option<Arc<crate::events::Publisher>>,
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

    /// Serves `version` of `model`: loaded from the model's registry (unless already
    /// loaded) off the request path, validated (it loads, fits the feature mapping,
    /// keeps the serving version's outputs, needs no input callers do not send, and
    /// scores a smoke row), then swapped in atomically. Calls in flight finish on the
    /// version they started with; none fails. The version serving until now stays
    /// loaded, for [`rollback`](Self::rollback).
    ///
    /// A refused version ([`Error::VersionRefused`]) changes nothing: it is counted
    /// ([`ClientStats::versions_refused`]) and logged, and the serving version serves on.
    ///
    /// ```
    /// use fresco::{Client, MemorySink, ModelConfig, Request, registry::Registry};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// registry.publish_wasm("linear", "1", &fresco_test_models::linear())?;
    /// registry.publish_wasm("linear", "2", &fresco_test_models::linear_version("2"))?;
    /// registry.deploy("linear", "1")?;
    /// let client = Client::builder()
    ///     .model(ModelConfig::from_registry(&registry, "linear"))
    ///     .log_to(MemorySink::new())
    ///     .build()?;
    ///
    /// client.deploy("linear", "2")?;
    /// let p = client.predict("linear", &Request::new().value("a", 1.0).value("b", 1.0))?;
    /// assert_eq!(p.model_version(), "2");
    /// assert_eq!(client.rollback("linear")?, "1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deploy(&self, model: &str, version: &str) -> Result<(), Error> {
        self.change(model, |slot| slot.deploy(&self.inner.loader, version, None).map(drop))
    }

    /// Serves a version of `model` from `source` (not from a registry), validated as
    /// [`deploy`](Self::deploy) does; its version is the one its metadata declares.
    ///
    /// ```
    /// use fresco::{Client, Error, MemorySink, ModelConfig, ModelSource, Request};
    ///
    /// let client = Client::builder()
    ///     .model(ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear())))
    ///     .log_to(MemorySink::new())
    ///     .build()?;
    /// client.deploy_source("linear", ModelSource::wasm_bytes(fresco_test_models::linear_version("2")))?;
    /// let request = Request::new().value("a", 1.0).value("b", 1.0);
    /// assert_eq!(client.predict("linear", &request)?.model_version(), "2");
    ///
    /// // A source that does not load is refused, and version 2 serves on.
    /// let err = client.deploy_source("linear", ModelSource::wasm_bytes(b"not wasm".to_vec())).unwrap_err();
    /// assert!(matches!(err, Error::VersionRefused { .. }), "{err}");
    /// assert_eq!(client.predict("linear", &request)?.model_version(), "2");
    /// assert_eq!(client.rollback("linear")?, "1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deploy_source(&self, model: &str, source: ModelSource) -> Result<(), Error> {
        let backend = crate::model::Backend::load(&self.inner.loader.engine, source).map_err(|e| {
            self.inner.stats.version_refused(model);
            Error::VersionRefused {
                model: model.into(),
                version: "?".into(),
                reason: Box::new(Refusal::Load(Box::new(e))),
            }
        })?;
        let version = backend.metadata().version.clone();
        self.change(model, |slot| slot.deploy(&self.inner.loader, &version, Some(backend)).map(drop))
    }

    /// Serves the previous version of `model` again (it stayed loaded: nothing is
    /// read or compiled); returns the version now serving.
    pub fn rollback(&self, model: &str) -> Result<String, Error> {
        let mut version = String::new();
        self.change(model, |slot| {
            version = slot.rollback()?;
            Ok(())
        })?;
        Ok(version)
    }

    fn change(&self, model: &str, change: impl FnOnce(&Slot) -> Result<(), Error>) -> Result<(), Error> {
        self.inner.change(self.slot(model)?, change)
    }

    /// Follows the registry manifests and the flags in the background: every
    /// `interval`, a model registered [`from_registry`](ModelConfig::from_registry)
    /// whose manifest names another serving version is deployed to it (a refused
    /// version is not retried until the manifest changes again), and the versions a
    /// model's flag names are loaded. Stops when the returned [`Watcher`] is dropped.
    pub fn watch(&self, interval: std::time::Duration) -> Watcher {
        Watcher::start(Arc::downgrade(&self.inner), interval)
    }

    /// Counters.
    pub fn stats(&self) -> &ClientStats {
        &self.inner.stats
    }

    /// Scores one request with `model`: fetches its stored features, applies the
    /// holdout, logs the prediction, and returns it.
    pub fn predict(&self, model: &str, request: &Request) -> Result<Prediction, Error> {
        let mut predictions = self.predict_batch(model, std::slice::from_ref(request))?;
        predictions.pop().ok_or_else(|| Error::UnknownModel { model: model.into() })
    }

    /// Scores a batch with `model`: one feature-store lookup per view, one scoring pass.
    ///
    /// An empty batch returns an empty vector; a batch over
    /// [`ClientBuilder::max_batch_rows`] is refused with [`Error::BatchTooLarge`]. A bad
    /// row fails the whole batch, and the error names the row.
    pub fn predict_batch(&self, model: &str, requests: &[Request]) -> Result<Vec<Prediction>, Error> {
        let started = Instant::now();
        let slot = self.slot(model)?;
        let _span = tracing::debug_span!("fresco.predict", model, rows = requests.len()).entered();
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        if requests.len() > self.inner.max_batch_rows {
            return Err(Error::BatchTooLarge {
                model: model.into(),
                rows: requests.len(),
                max: self.inner.max_batch_rows,
            });
        }
        // One read of the versions for the whole call: a swap meanwhile does not change it.
        let versions = slot.current();
        let (Some(rollout), Some(flags)) = (&slot.rollout, &self.inner.flags) else {
            return self.score(&versions.serving, requests, None, started);
        };
        let routes = self.route(slot, rollout, &**flags, &versions, requests)?;
        let first = routes[0].0;
        let variants: Vec<Option<Arc<str>>> = routes.iter().map(|(_, v)| v.clone()).collect();
        if routes.iter().all(|(plan, _)| Arc::ptr_eq(plan, first)) {
            return self.score(first, requests, Some(&variants), started);
        }
        // Rows routed to several versions: score each version's rows together, then
        // answer in the order asked.
        let mut predictions: Vec<Option<Prediction>> = (0..requests.len()).map(|_| None).collect();
        for r in 0..requests.len() {
            if predictions[r].is_some() {
                continue;
            }
            let plan = routes[r].0;
            let rows: Vec<usize> = (r..requests.len()).filter(|&i| Arc::ptr_eq(routes[i].0, plan)).collect();
            let group: Vec<Request> = rows.iter().map(|&i| requests[i].clone()).collect();
            let group_variants: Vec<Option<Arc<str>>> = rows.iter().map(|&i| variants[i].clone()).collect();
            for (i, p) in rows.iter().zip(self.score(plan, &group, Some(&group_variants), started)?) {
                predictions[*i] = Some(p);
            }
        }
        Ok(predictions.into_iter().flatten().collect())
    }

    /// Which loaded version answers each request, and the flag variant that chose it.
    fn route<'v>(
        &self,
        slot: &Slot,
        rollout: &Rollout,
        flags: &dyn FlagSource,
        versions: &'v Versions,
        requests: &[Request],
    ) -> Result<Vec<Route<'v>>, Error> {
        let mut routes = Vec::with_capacity(requests.len());
        for (row, request) in requests.iter().enumerate() {
            let key = request.entity_key(&rollout.entity).ok_or_else(|| Error::MissingEntity {
                model: slot.name.clone(),
                entity: rollout.entity.to_string(),
                row,
            })?;
            let decision = flags.decide(&rollout.flag, key);
            let wanted = if decision.enabled { decision.payload.as_deref() } else { rollout.fallback.as_deref() };
            let plan = match wanted.map(|v| versions.loaded.get(v)) {
                Some(Some(plan)) => plan,
                Some(None) => {
                    self.inner.stats.flag_version_missing(&slot.name);
                    &versions.serving
                }
                None => &versions.serving,
            };
            routes.push((plan, decision.variant.map(Arc::from)));
        }
        Ok(routes)
    }

    /// Scores `requests` with one version, logs them, and returns the predictions.
    fn score(
        &self,
        plan: &ModelPlan,
        requests: &[Request],
        variants: Option<&[Option<Arc<str>>]>,
        started: Instant,
    ) -> Result<Vec<Prediction>, Error> {
        let model = &*plan.name;
        let holdouts = self.assign_holdouts(plan, requests)?;
        let now = Timestamp::now();
        let times: Vec<Timestamp> = requests.iter().map(|r| r.at.unwrap_or(now)).collect();
        let assembled = plan.assemble(requests, &times, &self.inner.stats)?;

        let (n_in, n_out) = (plan.n_inputs(), plan.n_outputs());
        let mut outputs = vec![0.0; requests.len() * n_out];
        {
            let _span = tracing::debug_span!("fresco.score", backend = plan.backend.kind()).entered();
            for (rows, out) in
                assembled.rows.chunks(SCORE_CHUNK_ROWS * n_in).zip(outputs.chunks_mut(SCORE_CHUNK_ROWS * n_out))
            {
                plan.backend
                    .predict_into(rows, out)
                    .map_err(|e| Error::Model { model: model.into(), source: Box::new(e) })?;
            }
        }
        if let Some(monitor) = &plan.monitor {
            for (r, at) in times.iter().enumerate() {
                monitor.observe(
                    at.as_micros(),
                    &assembled.rows[r * n_in..(r + 1) * n_in],
                    &outputs[r * n_out..(r + 1) * n_out],
                );
            }
        }
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);

        let mut predictions = Vec::with_capacity(requests.len());
        let mut records = Vec::with_capacity(requests.len());
        let mut statuses = assembled.statuses.chunks_exact(n_in);
        for (r, request) in requests.iter().enumerate() {
            let holdout = holdouts.as_ref().map(|h| h[r].clone());
            let ts = times[r];
            let prediction = Prediction {
                id: Uuid::now_v7(),
                ts,
                model: plan.name.clone(),
                version: plan.version.clone(),
                input_names: plan.input_names.clone(),
                output_names: plan.output_names.clone(),
                inputs: assembled.rows[r * n_in..(r + 1) * n_in].to_vec(),
                statuses: statuses.next().map(<[_]>::to_vec).unwrap_or_default(),
                outputs: outputs[r * n_out..(r + 1) * n_out].to_vec(),
                holdout,
                interval: plan.interval.clone(),
                flag_variant: variants.and_then(|v| v[r].clone()),
            };
            records.push(PredictionRecord {
                prediction_id: prediction.id.hyphenated().to_string(),
                ts,
                model: plan.name.to_string(),
                model_version: plan.version.to_string(),
                entities: request.entities.clone(),
                inputs: prediction.inputs.clone(),
                outputs: prediction.outputs.clone(),
                holdout: prediction.holdout.as_ref().map(|h| h.name.to_string()),
                in_holdout: prediction.holdout.as_ref().is_some_and(|h| h.in_holdout),
                eligible: prediction.may_treat(),
                flag_variant: prediction.flag_variant.as_deref().map(str::to_owned),
                latency_us,
            });
            predictions.push(prediction);
        }
        {
            let _span = tracing::debug_span!("fresco.log", records = records.len()).entered();
            self.inner
                .sink
                .append(&plan.log_schema, records)
                .map_err(|source| Error::Log { model: model.into(), source })?;
        }
        self.inner.stats.predictions.fetch_add(predictions.len() as u64, Ordering::Relaxed);
        metrics::predictions(&plan.name, &plan.version, predictions.len(), started.elapsed());
        Ok(predictions)
    }

    /// Logs the outcome (label) observed for a prediction of `model`, for training sets
    /// that join predictions with outcomes. Outcomes are partitioned by model, like
    /// predictions, hence the model name.
    ///
    /// ```
    /// # use fresco::{Client, MemorySink, ModelConfig, ModelSource, Request, Timestamp};
    /// # let log = std::sync::Arc::new(MemorySink::new());
    /// # let client = Client::builder()
    /// #     .model(ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear())))
    /// #     .shared_log(log.clone()).build()?;
    /// let p = client.predict("linear", &Request::new().value("a", 1.0).value("b", 1.0))?;
    /// // ... later, when the truth is known:
    /// client.log_outcome("linear", &p.id().to_string(), 1.0, Timestamp::now())?;
    /// assert_eq!(log.outcomes().len(), 1);
    /// # Ok::<(), fresco::Error>(())
    /// ```
    pub fn log_outcome(&self, model: &str, prediction_id: &str, label: f64, ts: Timestamp) -> Result<(), Error> {
        self.plan(model)?;
        let record = OutcomeRecord { prediction_id: prediction_id.to_owned(), ts, label };
        self.inner
            .sink
            .append_outcomes(model, vec![record])
            .map_err(|source| Error::Log { model: model.into(), source })
    }

    /// Logs a treatment the app applied because of `prediction` (the discount sent, the
    /// message shown), at `ts`. Training sets use it to tell treated rows from the rest
    /// ([`dataset`](crate::dataset)). A prediction whose entity is held out is never
    /// treated: the call is refused with [`Error::HeldOutTreatment`], nothing is logged,
    /// and [`ClientStats::treatments_refused`] counts it.
    ///
    /// ```
    /// # use fresco::{Client, MemorySink, ModelConfig, ModelSource, Request, Timestamp};
    /// # use fresco::holdout::Holdout;
    /// # let log = std::sync::Arc::new(MemorySink::new());
    /// let client = Client::builder()
    ///     .model(ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear())).holdout("promo"))
    ///     .holdout(Holdout::new("promo", "promo-2026", 0.5)?, "user_id")
    ///     .shared_log(log.clone())
    ///     .build()?;
    /// for user in ["u-1", "u-2", "u-3", "u-4"] {
    ///     let p = client.predict("linear", &Request::new().entity("user_id", user).value("a", 1.0).value("b", 1.0))?;
    ///     let logged = client.log_treatment(&p, "discount-10", Timestamp::now());
    ///     assert_eq!(logged.is_ok(), p.may_treat());
    /// }
    /// let stats = client.stats();
    /// assert_eq!(log.treatments().len() as u64, stats.treatments.load(std::sync::atomic::Ordering::Relaxed));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn log_treatment(&self, prediction: &Prediction, treatment: &str, ts: Timestamp) -> Result<(), Error> {
        self.log_treatments(std::iter::once(prediction), treatment, ts)
    }

    /// Logs the same treatment for several predictions (of one model or several), in
    /// one append per model. If any of them is held out, none is logged.
    pub fn log_treatments<'a>(
        &self,
        predictions: impl IntoIterator<Item = &'a Prediction>,
        treatment: &str,
        ts: Timestamp,
    ) -> Result<(), Error> {
        let mut by_model: Vec<(&str, Vec<TreatmentRecord>)> = Vec::new();
        let mut refused = None;
        let mut n_refused = 0u64;
        for p in predictions {
            self.plan(p.model())?;
            if treatment.is_empty() {
                return Err(Error::EmptyTreatment { model: p.model().into() });
            }
            if let Some(h) = p.holdout.as_ref().filter(|h| h.in_holdout) {
                n_refused += 1;
                refused.get_or_insert_with(|| Error::HeldOutTreatment {
                    model: p.model().into(),
                    prediction_id: p.id().to_string(),
                    holdout: h.name.to_string(),
                    treatment: treatment.to_owned(),
                });
                continue;
            }
            let record = TreatmentRecord { prediction_id: p.id().to_string(), ts, treatment: treatment.to_owned() };
            match by_model.iter_mut().find(|(m, _)| *m == p.model()) {
                Some((_, records)) => records.push(record),
                None => by_model.push((p.model(), vec![record])),
            }
        }
        if let Some(error) = refused {
            if let Error::HeldOutTreatment { model, .. } = &error {
                self.inner.stats.treatments_held_out(model, n_refused);
            }
            tracing::warn!(refused = n_refused, %error, "treatment of held-out predictions refused");
            return Err(error);
        }
        for (model, records) in by_model {
            self.append_treatments(model, records)?;
        }
        Ok(())
    }

    fn append_treatments(&self, model: &str, records: Vec<TreatmentRecord>) -> Result<(), Error> {
        let n = records.len() as u64;
        self.inner
            .sink
            .append_treatments(model, records)
            .map_err(|source| Error::Log { model: model.into(), source })?;
        self.inner.stats.treated(model, n);
        Ok(())
    }

    /// Logs a treatment for a prediction known only by its id, as a campaign job that
    /// reads the prediction log has it: `entity_key` is the key of the model's holdout
    /// entity, from which the holdout decision is recomputed (it is deterministic), and
    /// a held-out entity is refused as in [`log_treatment`](Self::log_treatment).
    pub fn log_treatment_by_id(
        &self,
        model: &str,
        prediction_id: &str,
        entity_key: &str,
        treatment: &str,
        ts: Timestamp,
    ) -> Result<(), Error> {
        let plan = self.plan(model)?;
        if treatment.is_empty() {
            return Err(Error::EmptyTreatment { model: model.into() });
        }
        if let Some((holdout, _)) = &plan.holdout
            && holdout.contains(entity_key)
        {
            self.inner.stats.treatments_held_out(model, 1);
            return Err(Error::HeldOutTreatment {
                model: model.into(),
                prediction_id: prediction_id.into(),
                holdout: holdout.name().into(),
                treatment: treatment.into(),
            });
        }
        let record = TreatmentRecord { prediction_id: prediction_id.to_owned(), ts, treatment: treatment.to_owned() };
        self.append_treatments(model, vec![record])
    }

    /// [`predict`](Self::predict) on tokio's blocking pool, so the async workers never
    /// wait on a store or a model. Fails with [`Error::Async`] outside a tokio runtime.
    #[cfg(feature = "tokio")]
    pub async fn predict_async(&self, model: &str, request: Request) -> Result<Prediction, Error> {
        let client = self.clone();
        let model = model.to_owned();
        Self::spawn_blocking(move || client.predict(&model, &request)).await
    }

    /// [`predict_batch`](Self::predict_batch) on tokio's blocking pool.
    #[cfg(feature = "tokio")]
    pub async fn predict_batch_async(&self, model: &str, requests: Vec<Request>) -> Result<Vec<Prediction>, Error> {
        let client = self.clone();
        let model = model.to_owned();
        Self::spawn_blocking(move || client.predict_batch(&model, &requests)).await
    }

    #[cfg(feature = "tokio")]
    async fn spawn_blocking<T: Send + 'static>(
        work: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| Error::Async { reason: format!("not inside a tokio runtime: {e}") })?;
        handle
            .spawn_blocking(work)
            .await
            .map_err(|e| Error::Async { reason: format!("the prediction task failed: {e}") })?
    }

    fn slot(&self, model: &str) -> Result<&Slot, Error> {
        self.inner.models.get(model).ok_or_else(|| Error::UnknownModel { model: model.into() })
    }

    /// The serving plan of `model`.
    fn plan(&self, model: &str) -> Result<Arc<ModelPlan>, Error> {
        Ok(self.slot(model)?.current().serving.clone())
    }

    fn assign_holdouts(&self, plan: &ModelPlan, requests: &[Request]) -> Result<Option<Vec<HoldoutDecision>>, Error> {
        let Some((holdout, entity)) = &plan.holdout else {
            return Ok(None);
        };
        let name: Arc<str> = holdout.name().into();
        requests
            .iter()
            .enumerate()
            .map(|(row, request)| {
                let id = request.entity_key(entity).ok_or_else(|| Error::MissingEntity {
                    model: plan.name.to_string(),
                    entity: entity.to_string(),
                    row,
                })?;
                let a = holdout.assign(id);
                Ok(HoldoutDecision { name: name.clone(), bucket: a.bucket, in_holdout: a.in_holdout })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}
