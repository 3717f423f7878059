//! `fresco serve`'s configuration: a TOML file, with environment overrides.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//!
//! [log]
//! root = "target/fresco-serve/log"        # the prediction log (spool and Parquet)
//! # upload_to = "s3://ml-logs/eta"        # object storage for the fleet
//!
//! # [registry]                            # models that follow a registry's manifest
//! # location = "s3://ml-models/registry"
//! # watch_secs = 10
//!
//! # [store]
//! # embedded = "features.redb"            # the embedded feature store, or Feast:
//! # [store.feast]
//! # url = "http://127.0.0.1:6566"
//! # deadline_ms = 100
//! # [[store.feast.view]]
//! # name = "restaurants"
//! # entity = "restaurant_id"              # entity_kind = "string" (default) or "int64"
//! # features = { prep_time_min = "f64", rating = "i64" }
//! # ttl_secs = 604800
//!
//! # [flags]                               # rollout flags: a live Unleash server or a snapshot
//! # unleash = "http://127.0.0.1:4242/api"
//! # token = "default:development.unleash-insecure-api-token"
//! # snapshot = "flags.json"
//!
//! # [aggregates]                          # windowed features from the fleet's event stream
//! # definitions = "examples/aggregates/orders.toml"
//! # redis = "redis://127.0.0.1:6379"
//! # stream_key = "fresco:events"
//! # snapshots = "target/fresco-serve/snapshots"
//!
//! [[model]]
//! file = "wasm-models/eta/model/eta.wasm" # or `name = "eta"` from the registry
//! # inputs = { prep_time_min = "restaurants.prep_time_min" }   # input = "view.feature", or
//! # inputs = { orders_last_30min = { windowed = "orders_30m" } } # a feature of [aggregates]
//! # holdout = { name = "eta-2026", salt = "eta-2026", fraction = 0.05, entity = "customer_id" }
//! # rollout = { flag = "eta-model", entity = "customer_id", fallback = "3" }
//! ```
//!
//! Paths are relative to the working directory. The environment overrides the file:
//! `FRESCO_LISTEN`, `FRESCO_LOG_ROOT`, `FRESCO_LOG_UPLOAD_TO`, `FRESCO_REGISTRY`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fresco::holdout::Holdout;
use fresco::registry::Registry;
use fresco::{Client, EmbeddedStore, InputSource, LogConfig, ModelConfig, ModelSource, PredictionLog, Watcher};
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// The address to listen on (default `127.0.0.1:8080`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Request bodies larger than this are refused with 413 (default 2 MiB).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Where WebAssembly models run: `native` (the default, machine code) or `pulley`
    /// (wasmtime's interpreter, for hosts that may not make executable memory).
    #[serde(default)]
    pub engine: Option<String>,
    /// The prediction log.
    pub log: LogSection,
    /// The registry models follow, if any.
    #[serde(default)]
    pub registry: Option<RegistrySection>,
    /// The feature store, if any.
    #[serde(default)]
    pub store: Option<StoreSection>,
    /// Rollout flags, if any.
    #[serde(default)]
    pub flags: Option<FlagsSection>,
    /// Windowed aggregates from the shared event stream, if any.
    #[serde(default)]
    pub aggregates: Option<AggregatesSection>,
    /// The models served.
    #[serde(rename = "model", default)]
    pub models: Vec<ModelSection>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn default_max_body() -> usize {
    crate::Service::DEFAULT_MAX_BODY_BYTES
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// The log's root directory (one per process).
    pub root: PathBuf,
    /// An object-store prefix every published file is uploaded to.
    #[serde(default)]
    pub upload_to: Option<String>,
    /// Seconds after which an open spool segment is published (default 60).
    #[serde(default)]
    pub max_file_age_secs: Option<u64>,
}

/// `[registry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    /// A directory or an object-store prefix.
    pub location: String,
    /// How often the manifests are read (default 10 s).
    #[serde(default = "default_watch")]
    pub watch_secs: u64,
}

fn default_watch() -> u64 {
    10
}

/// Where a model input comes from, besides the request.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum InputRef {
    /// `"view.feature"`: a feature of the store.
    Stored(String),
    /// `{ windowed = "feature" }`: a windowed feature of `[aggregates]`.
    Windowed {
        /// The windowed feature's name.
        windowed: String,
    },
}

/// `[store]`: the embedded store, or a Feast feature server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// The embedded store's file (redb), with its views defined.
    #[serde(default)]
    pub embedded: Option<PathBuf>,
    /// A Feast feature server.
    #[serde(default)]
    pub feast: Option<FeastSection>,
}

/// `[store.feast]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeastSection {
    /// The feature server (`http://host:6566`).
    pub url: String,
    /// The deadline of one lookup, retries included (default 100 ms).
    #[serde(default = "default_deadline")]
    pub deadline_ms: u64,
    /// The views fresco reads.
    #[serde(rename = "view")]
    pub views: Vec<FeastViewSection>,
}

fn default_deadline() -> u64 {
    100
}

/// One `[[store.feast.view]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeastViewSection {
    /// The feature view.
    pub name: String,
    /// Its entity key's name.
    pub entity: String,
    /// `string` (default) or `int64`.
    #[serde(default)]
    pub entity_kind: Option<String>,
    /// Feature → type (`f64`, `i64`, `bool`, `str`).
    pub features: std::collections::BTreeMap<String, String>,
    /// The view's time to live.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// `[flags]`: an Unleash server (`unleash`, `token`) or a snapshot file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagsSection {
    /// The Unleash API (`http://host:4242/api`).
    #[serde(default)]
    pub unleash: Option<String>,
    /// Its client token.
    #[serde(default)]
    pub token: Option<String>,
    /// A flag-state snapshot: served alone, or kept by the live client for its start.
    #[serde(default)]
    pub snapshot: Option<PathBuf>,
}

/// `[aggregates]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregatesSection {
    /// The stream and feature definitions (TOML).
    pub definitions: PathBuf,
    /// The Redis server of the shared stream.
    pub redis: String,
    /// The stream's key.
    pub stream_key: String,
    /// Where snapshots go (and the newest is restored from at start).
    #[serde(default)]
    pub snapshots: Option<PathBuf>,
}

/// A model's rollout flag.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutSection {
    /// The flag.
    pub flag: String,
    /// The request entity it is sticky on.
    pub entity: String,
    /// The version while the flag is off.
    #[serde(default)]
    pub fallback: Option<String>,
}

/// A holdout of a model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldoutSection {
    /// Its name (logged in `holdout`).
    pub name: String,
    /// Its salt (docs/design.md §5).
    pub salt: String,
    /// The fraction held out.
    pub fraction: f64,
    /// The request entity it is keyed by.
    pub entity: String,
}

/// One `[[model]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// A model file (`.wasm`, LightGBM `.txt`, XGBoost `.json`); without it the model
    /// `name` comes from `[registry]`.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The model's name (from a file: default the file's declared name).
    #[serde(default)]
    pub name: Option<String>,
    /// Inputs not taken from the request: input name → `"view.feature"` (the store) or
    /// `{ windowed = "feature" }` (`[aggregates]`).
    #[serde(default)]
    pub inputs: std::collections::BTreeMap<String, InputRef>,
    /// A holdout.
    #[serde(default)]
    pub holdout: Option<HoldoutSection>,
    /// A rollout flag.
    #[serde(default)]
    pub rollout: Option<RolloutSection>,
}

/// Why a configuration could not be read or used. Each names the key or file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not valid TOML of this form.
    #[error("{path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said (with the line).
        reason: String,
    },
    /// A value that cannot be used.
    #[error("{key}: {reason}")]
    Invalid {
        /// The key, e.g. `model[0].inputs.prep_time_min`.
        key: String,
        /// Why.
        reason: String,
    },
    /// Building the client, the log, the store or the registry failed.
    #[error("{what}: {source}")]
    Build {
        /// What was being built.
        what: String,
        /// The error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn build_err(what: impl Into<String>) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> ConfigError {
    let what = what.into();
    move |source| ConfigError::Build { what, source }
}

/// What a configuration starts: the client, its log and its watcher. [`shutdown`](Self::shutdown)
/// is the library half of a graceful stop.
pub struct Serving {
    /// The client.
    pub client: Client,
    /// The prediction log.
    pub log: Arc<PredictionLog>,
    watcher: Option<Watcher>,
    follower: Option<Arc<fresco::events::Follower>>,
    feast: Option<Arc<fresco_feast::FeastStore>>,
}

impl std::fmt::Debug for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serving").field("log", &self.log).finish_non_exhaustive()
    }
}

impl Serving {
    /// What `/readyz` should check besides the models: the log publishing, the Feast
    /// server answering (its last lookup succeeded), and the aggregates following their
    /// stream (not stuck behind a trim).
    pub fn readiness_checks(&self) -> Vec<(String, crate::ReadinessCheck)> {
        let log = self.log.clone();
        let mut checks: Vec<(String, crate::ReadinessCheck)> =
            vec![("log".into(), Arc::new(move || log.health().map_err(|e| e.to_string())))];
        if let Some(feast) = &self.feast {
            let feast = feast.clone();
            checks.push(("store".into(), Arc::new(move || feast.health())));
        }
        if let Some(follower) = &self.follower {
            let follower = follower.clone();
            checks.push((
                "aggregates".into(),
                Arc::new(move || follower.status().behind.map_or(Ok(()), |e| Err(e.to_string()))),
            ));
        }
        checks
    }

    /// Stops following the registry, then publishes (and uploads) everything logged
    /// ([`Client::shutdown`], then the log's close): call once no request is in flight.
    pub fn shutdown(mut self, timeout: Duration) -> Result<(), fresco::Error> {
        drop(self.watcher.take());
        self.client.shutdown(timeout)?;
        drop(self.client);
        if let Some(follower) = self.follower.take() {
            // Its last snapshot: a restart resumes from here instead of replaying.
            match Arc::try_unwrap(follower) {
                Ok(follower) => drop(follower.stop()?),
                Err(shared) => drop(shared.snapshot()?),
            }
        }
        let closed = match Arc::try_unwrap(self.log) {
            Ok(log) => log.close(),
            Err(log) => log.flush(),
        };
        closed.map_err(|source| fresco::Error::Log { model: "*".into(), source })
    }
}

impl ServeConfig {
    /// Reads `path`, then applies the environment's overrides.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let mut config = Self::from_toml(&text).map_err(|reason| ConfigError::Parse { path: path.into(), reason })?;
        config.apply_env(|name| std::env::var(name).ok());
        Ok(config)
    }

    /// Parses a configuration (no overrides).
    ///
    /// ```
    /// let config = fresco_http::ServeConfig::from_toml(r#"
    ///     [log]
    ///     root = "logs"
    ///     [[model]]
    ///     file = "eta.wasm"
    /// "#)?;
    /// assert_eq!(config.listen, "127.0.0.1:8080");
    /// assert!(fresco_http::ServeConfig::from_toml("[log]\nroot = 'x'\nlisten = 3").is_err());
    /// # Ok::<(), String>(())
    /// ```
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Applies `FRESCO_LISTEN`, `FRESCO_LOG_ROOT`, `FRESCO_LOG_UPLOAD_TO` and
    /// `FRESCO_REGISTRY` as `var` reads them.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        if let Some(listen) = var("FRESCO_LISTEN") {
            self.listen = listen;
        }
        if let Some(root) = var("FRESCO_LOG_ROOT") {
            self.log.root = root.into();
        }
        if let Some(url) = var("FRESCO_LOG_UPLOAD_TO") {
            self.log.upload_to = Some(url);
        }
        if let Some(location) = var("FRESCO_REGISTRY") {
            match &mut self.registry {
                Some(registry) => registry.location = location,
                None => self.registry = Some(RegistrySection { location, watch_secs: default_watch() }),
            }
        }
    }

    /// Opens the log, the store and the registry, loads the models and builds the client.
    pub fn start(&self) -> Result<Serving, ConfigError> {
        let mut log_config = LogConfig::new(&self.log.root);
        if let Some(url) = &self.log.upload_to {
            log_config = log_config.upload_to(url);
        }
        if let Some(secs) = self.log.max_file_age_secs {
            log_config = log_config.max_file_age(Duration::from_secs(secs));
        }
        let log = Arc::new(PredictionLog::open(log_config).map_err(|e| build_err("log")(Box::new(e)))?);
        let registry = match &self.registry {
            Some(section) => Some(Registry::at(&section.location).map_err(|e| build_err("registry")(Box::new(e)))?),
            None => None,
        };
        let mut builder = Client::builder().shared_log(log.clone());
        if let Some(target) = &self.engine {
            let invalid =
                |e: fresco::runtime::Error| ConfigError::Invalid { key: "engine".into(), reason: e.to_string() };
            let target: fresco::runtime::Target = target.parse().map_err(invalid)?;
            builder = builder.engine(fresco::runtime::Engine::builder().target(target).build().map_err(invalid)?);
        }
        let mut feast = None;
        if let Some(store) = &self.store {
            builder = match (&store.embedded, &store.feast) {
                (Some(path), None) => builder.feature_store(
                    EmbeddedStore::open(path)
                        .map_err(|e| build_err(format!("store {}", path.display()))(Box::new(e)))?,
                ),
                (None, Some(section)) => {
                    let store = Arc::new(feast_store(section)?);
                    feast = Some(store.clone());
                    builder.feature_store(store)
                }
                _ => {
                    return Err(ConfigError::Invalid {
                        key: "store".into(),
                        reason: "give `embedded` or `[store.feast]`, one of them".into(),
                    });
                }
            };
        }
        if let Some(flags) = &self.flags {
            builder = builder.flags(flag_source(flags)?);
        }
        let follower = match &self.aggregates {
            Some(section) => {
                let follower = follower(section)?;
                builder = builder.aggregates(follower.store());
                Some(Arc::new(follower))
            }
            None => None,
        };
        if self.models.is_empty() {
            return Err(ConfigError::Invalid { key: "model".into(), reason: "no [[model]] to serve".into() });
        }
        for (i, section) in self.models.iter().enumerate() {
            let mut config = match (&section.file, &section.name, &registry) {
                (Some(file), _, _) => ModelConfig::new(model_source(file, section.name.as_deref(), i)?),
                (None, Some(name), Some(registry)) => ModelConfig::from_registry(registry, name.clone()),
                (None, _, _) => {
                    return Err(ConfigError::Invalid {
                        key: format!("model[{i}]"),
                        reason: "give `file`, or `name` with a [registry] section".into(),
                    });
                }
            };
            for (input, source) in &section.inputs {
                let source = match source {
                    InputRef::Stored(source) => {
                        let (view, feature) = source.split_once('.').ok_or_else(|| ConfigError::Invalid {
                            key: format!("model[{i}].inputs.{input}"),
                            reason: format!("`{source}` is not `view.feature`"),
                        })?;
                        InputSource::stored(view, feature)
                    }
                    InputRef::Windowed { windowed } => InputSource::windowed(windowed),
                };
                config = config.input(input.clone(), source);
            }
            if let Some(r) = &section.rollout {
                config = config.rollout(r.flag.clone(), r.entity.clone());
                if let Some(fallback) = &r.fallback {
                    config = config.fallback_version(fallback.clone());
                }
            }
            if let Some(h) = &section.holdout {
                let holdout = Holdout::new(&h.name, &h.salt, h.fraction)
                    .map_err(|e| ConfigError::Invalid { key: format!("model[{i}].holdout"), reason: e.to_string() })?;
                builder = builder.holdout(holdout, &h.entity);
                config = config.holdout(h.name.clone());
            }
            builder = builder.model(config);
        }
        let client = builder.build().map_err(|e| build_err("client")(Box::new(e)))?;
        let watcher = self.registry.as_ref().map(|r| client.watch(Duration::from_secs(r.watch_secs.max(1))));
        Ok(Serving { client, log, watcher, follower, feast })
    }
}

/// A Feast store from `[store.feast]`.
fn feast_store(section: &FeastSection) -> Result<fresco_feast::FeastStore, ConfigError> {
    let mut builder =
        fresco_feast::FeastStore::builder(&section.url).deadline(Duration::from_millis(section.deadline_ms));
    for (i, v) in section.views.iter().enumerate() {
        let key = |field: &str| format!("store.feast.view[{i}].{field}");
        let kind = match v.entity_kind.as_deref() {
            None | Some("string") => fresco_feast::EntityKind::String,
            Some("int64") => fresco_feast::EntityKind::Int64,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    key: key("entity_kind"),
                    reason: format!("`{other}`: expected `string` or `int64`"),
                });
            }
        };
        let mut view = fresco::FeatureView::new(&v.name, &v.entity);
        for (feature, ty) in &v.features {
            let ty = match ty.as_str() {
                "f64" => fresco::ValueType::F64,
                "i64" => fresco::ValueType::I64,
                "bool" => fresco::ValueType::Bool,
                "str" => fresco::ValueType::Str,
                other => {
                    return Err(ConfigError::Invalid {
                        key: key(&format!("features.{feature}")),
                        reason: format!("`{other}`: expected f64, i64, bool or str"),
                    });
                }
            };
            view = view.feature(feature, ty);
        }
        if let Some(ttl) = v.ttl_secs {
            view = view.ttl(Duration::from_secs(ttl));
        }
        builder = builder.view(fresco_feast::FeastView::new(view, kind));
    }
    builder.build().map_err(|e| build_err("store.feast")(Box::new(e)))
}

/// The flag source of `[flags]`.
fn flag_source(section: &FlagsSection) -> Result<fresco_unleash::UnleashFlags, ConfigError> {
    let flags = match (&section.unleash, &section.snapshot) {
        (Some(url), snapshot) => {
            let token = section.token.clone().ok_or_else(|| ConfigError::Invalid {
                key: "flags.token".into(),
                reason: "an Unleash server needs its client token".into(),
            })?;
            let mut config = fresco_unleash::UnleashConfig::new(url, token).app_name("fresco-serve");
            if let Some(path) = snapshot {
                config = config.snapshot(path);
            }
            fresco_unleash::UnleashFlags::connect(config)
        }
        (None, Some(path)) => fresco_unleash::UnleashFlags::from_snapshot_file(path),
        (None, None) => {
            return Err(ConfigError::Invalid { key: "flags".into(), reason: "give `unleash` or `snapshot`".into() });
        }
    };
    flags.map_err(|e| build_err("flags")(Box::new(e)))
}

/// The follower of `[aggregates]`: the shared stream on Redis, into this replica's store.
fn follower(section: &AggregatesSection) -> Result<fresco::events::Follower, ConfigError> {
    let definitions = fresco::aggregates::Definitions::from_toml_file(&section.definitions)
        .map_err(|e| build_err(format!("aggregates.definitions {}", section.definitions.display()))(Box::new(e)))?;
    let stream = fresco_redis::RedisStream::open(&section.redis, &section.stream_key)
        .map_err(|e| build_err("aggregates.redis")(Box::new(e)))?;
    let mut config = fresco::events::FollowerConfig::default();
    if let Some(dir) = &section.snapshots {
        config = config.snapshots(dir);
    }
    fresco::events::Follower::start(definitions, Arc::new(stream), config)
        .map_err(|e| build_err("aggregates")(Box::new(e)))
}

/// A model file as a source: a `.wasm` as it is, tree files compiled.
fn model_source(file: &Path, name: Option<&str>, index: usize) -> Result<ModelSource, ConfigError> {
    let what = format!("model[{index}] {}", file.display());
    match file.extension().and_then(|e| e.to_str()) {
        Some("wasm") => {
            let bytes = std::fs::read(file).map_err(|source| ConfigError::Read { path: file.into(), source })?;
            Ok(ModelSource::wasm_bytes(bytes))
        }
        Some("txt" | "json") => {
            let name = name.map_or_else(
                || file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
                str::to_owned,
            );
            ModelSource::trees_file(file, name, "1").map_err(|e| build_err(what)(Box::new(e)))
        }
        _ => Err(ConfigError::Invalid {
            key: format!("model[{index}].file"),
            reason: format!("{}: expected a .wasm, a LightGBM .txt or an XGBoost .json", file.display()),
        }),
    }
}
