//! Assembling a client: `ClientBuilder`.

use std::collections::HashMap;
use std::sync::Arc;

use super::config::Origin;
use super::versions::{Loader, Rollout, Slot};
use super::{Client, Counters, Inner, ModelConfig};
use crate::aggregates::AggregateStore;
use crate::error::{ConfigError, Error};
use crate::features::FeatureStore;
use crate::holdout::Holdout;
use crate::log::PredictionSink;
use crate::rollout::FlagSource;

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
    pub(super) publisher: Option<Arc<crate::events::Publisher>>,
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

    /// Reads windowed features ([`InputSource::windowed`](crate::InputSource::windowed)) from `aggregates`, which the
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
        let stats = Counters::default();
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
                watchers: std::sync::atomic::AtomicUsize::new(0),
            }),
        })
    }

    /// Loads a model's serving version, and from its registry the previous version,
    /// the fallback and the versions its flag names.
    fn slot(
        loader: &Loader,
        config: ModelConfig,
        flags: Option<&Arc<dyn FlagSource>>,
        stats: &Counters,
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
