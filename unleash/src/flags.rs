//! [`UnleashFlags`]: flag state from a server or a snapshot, evaluated by the SDK.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use fresco::rollout::{FlagDecision, FlagSource};
use serde_json::Value;
use unleash_api_client::client::{FeatureKey, Variant};
use unleash_api_client::http::TransportRef;
use unleash_api_client::{Client, ClientBuilder, Context};
use unleash_types::client_features::ClientFeatures;
use unleash_yggdrasil::{EngineState, UpdateMessage};

#[cfg(feature = "server")]
use crate::poll::Poller;

/// Why flags could not be set up or a snapshot read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlagError {
    /// A snapshot that is not the JSON of `GET /api/client/features` (or a delta).
    #[error("not an Unleash flag snapshot: {reason}")]
    Snapshot {
        /// What was wrong.
        reason: String,
    },
    /// A snapshot file that could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A flag the evaluation engine cannot evaluate as given (variants whose weights
    /// add up to 0 or are negative, a rollout that is not a percentage): the whole state
    /// is refused and the last good one keeps serving.
    #[error("flag `{flag}` cannot be evaluated: {reason}")]
    InvalidFlag {
        /// The flag.
        flag: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The SDK client, HTTP client or polling thread could not be made.
    #[error("unleash client: {reason}")]
    Client {
        /// Why.
        reason: String,
    },
}

/// Counters of the flag state's freshness.
#[derive(Debug, Default)]
pub struct FlagStats {
    /// Polls answered and applied.
    pub fetches: AtomicU64,
    /// Polls that failed (server down, timeout, bad body): the last state kept serving.
    pub failures: AtomicU64,
    /// Snapshots loaded.
    pub snapshots: AtomicU64,
    /// States refused because a flag could not be evaluated ([`FlagError::InvalidFlag`];
    /// a refused poll also counts in `failures`).
    pub refused: AtomicU64,
}

/// The SDK is generic over a typed flag enum; fresco looks flags up by name only.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ByName {}

impl FeatureKey for ByName {
    fn name(self) -> &'static str {
        match self {}
    }
}

/// What the poller and the request path share.
pub(crate) struct Shared {
    pub(crate) client: Client<ByName>,
    pub(crate) api_url: String,
    #[cfg(feature = "server")]
    pub(crate) refresh: Duration,
    app_name: String,
    environment: String,
    /// The state as last applied, for listing the versions a flag names (the SDK keeps
    /// its compiled state private).
    mirror: Mutex<ClientFeatures>,
    last_update: Mutex<Option<Instant>>,
    pub(crate) stats: FlagStats,
}

impl Shared {
    /// Applies a state (full, or a delta) to the SDK and to the mirror.
    pub(crate) fn apply(&self, body: &Value) -> Result<Option<unleash_api_client::api::Metrics>, FlagError> {
        // Parsed twice, for the mirror and for the SDK: the message type is not `Clone`.
        let parse = || parse_update(body);
        let mut mirror = self.mirror.lock().unwrap_or_else(PoisonError::into_inner);
        let engine = EngineState::default();
        engine.take_state(UpdateMessage::FullResponse(mirror.clone()));
        if let Some(warnings) = engine.take_state(parse()?) {
            for w in warnings {
                tracing::warn!(flag = %w.toggle_name, message = %w.message, "flag does not compile");
            }
        }
        let state = engine.get_state();
        if let Err(refusal) = crate::validate::check_state(&state) {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%refusal, "flag state refused; the last good state keeps serving");
            return Err(refusal);
        }
        let metrics =
            self.client.memoize_update_message(parse()?).map_err(|e| FlagError::Snapshot { reason: e.to_string() })?;
        *mirror = state;
        *self.last_update.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        Ok(metrics)
    }

    fn context(&self, key: &str) -> Context {
        Context {
            user_id: Some(key.to_owned()),
            app_name: self.app_name.clone(),
            environment: self.environment.clone(),
            ..Context::default()
        }
    }
}

/// A flag state body: full (`features`) or a delta (`events`). A body with neither
/// would deserialize as an empty delta, so it is refused by name.
fn parse_update(body: &Value) -> Result<UpdateMessage, FlagError> {
    if body.get("features").is_none() && body.get("events").is_none() {
        return Err(FlagError::Snapshot {
            reason: "expected a `features` (full state) or `events` (delta) field".into(),
        });
    }
    serde::Deserialize::deserialize(body).map_err(|e: serde_json::Error| FlagError::Snapshot { reason: e.to_string() })
}

/// How to reach an Unleash server (see [`UnleashFlags::connect`]).
///
/// ```no_run
/// use std::time::Duration;
/// use fresco_unleash::{UnleashConfig, UnleashFlags};
///
/// let flags = UnleashFlags::connect(
///     UnleashConfig::new("http://127.0.0.1:4242/api", "default:development.secret")
///         .app_name("eta-service")
///         .refresh(Duration::from_secs(5))
///         .snapshot("flags.json"),
/// )?;
/// # Ok::<(), fresco_unleash::FlagError>(())
/// ```
#[derive(Debug, Clone)]
pub struct UnleashConfig {
    api_url: String,
    token: String,
    app_name: String,
    instance_id: String,
    environment: String,
    refresh: Duration,
    request_timeout: Duration,
    first_fetch: Duration,
    snapshot: Option<PathBuf>,
}

impl UnleashConfig {
    /// The server's API root (`http://host:4242/api`) and a backend token, sent as is
    /// in the `Authorization` header.
    pub fn new(api_url: impl Into<String>, token: impl Into<String>) -> Self {
        UnleashConfig {
            api_url: api_url.into(),
            token: token.into(),
            app_name: "fresco".into(),
            instance_id: format!("fresco-{}", std::process::id()),
            environment: String::new(),
            refresh: Duration::from_secs(15),
            request_timeout: Duration::from_secs(5),
            first_fetch: Duration::from_secs(5),
            snapshot: None,
        }
    }

    /// The application name the server sees and constraints on `appName` test.
    pub fn app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = name.into();
        self
    }

    /// The instance id the server sees.
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = id.into();
        self
    }

    /// The context's `environment` (for constraints on it; the token picks the
    /// server-side environment).
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = environment.into();
        self
    }

    /// How often to poll (15 s by default).
    pub fn refresh(mut self, every: Duration) -> Self {
        self.refresh = every;
        self
    }

    /// How long one poll may take before it counts as failed (5 s by default).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long [`UnleashFlags::connect`] waits for the first poll when no snapshot is
    /// given (5 s by default); past it, flags read as off until the server answers.
    pub fn first_fetch(mut self, wait: Duration) -> Self {
        self.first_fetch = wait;
        self
    }

    /// A snapshot file to serve from until the server first answers.
    pub fn snapshot(mut self, path: impl Into<PathBuf>) -> Self {
        self.snapshot = Some(path.into());
        self
    }
}

/// Unleash flag state, evaluated by the official SDK. Implements
/// [`FlagSource`](fresco::rollout::FlagSource) for [`fresco::ClientBuilder::flags`].
pub struct UnleashFlags {
    shared: Arc<Shared>,
    #[cfg(feature = "server")]
    poller: Option<Poller>,
}

impl std::fmt::Debug for UnleashFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("UnleashFlags");
        f.field("api_url", &self.shared.api_url);
        #[cfg(feature = "server")]
        f.field("polling", &self.poller.is_some());
        f.finish_non_exhaustive()
    }
}

impl UnleashFlags {
    fn new(config: &UnleashConfig) -> Result<Self, FlagError> {
        let client_err = |e: &dyn std::fmt::Display| FlagError::Client { reason: e.to_string() };
        #[cfg(feature = "server")]
        let http: TransportRef = Arc::new(unleash_api_client::http::reqwest::ReqwestTransport::new(
            reqwest::Client::builder().timeout(config.request_timeout).build().map_err(|e| client_err(&e))?,
        ));
        #[cfg(not(feature = "server"))]
        let http: TransportRef = Arc::new(NoServer);
        let refresh_ms = u64::try_from(config.refresh.as_millis()).unwrap_or(u64::MAX);
        let client = ClientBuilder::default()
            .enable_string_features()
            .interval(refresh_ms)
            .into_client_with_transport::<ByName>(
                &config.api_url,
                &config.app_name,
                &config.instance_id,
                Some(config.token.clone()),
                http,
            )
            .map_err(|e| client_err(&e))?;
        Ok(UnleashFlags {
            shared: Arc::new(Shared {
                client,
                api_url: config.api_url.clone(),
                #[cfg(feature = "server")]
                refresh: config.refresh,
                app_name: config.app_name.clone(),
                environment: config.environment.clone(),
                mirror: Mutex::new(ClientFeatures::default()),
                last_update: Mutex::new(None),
                stats: FlagStats::default(),
            }),
            #[cfg(feature = "server")]
            poller: None,
        })
    }

    /// Flags from a snapshot (the JSON body of `GET /api/client/features`), with no
    /// server: for edge devices, tests and the `fresco flags` command.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Self, FlagError> {
        let flags = Self::new(&UnleashConfig::new("http://offline.invalid/api", ""))?;
        flags.load_snapshot(bytes)?;
        Ok(flags)
    }

    /// [`from_snapshot`](Self::from_snapshot), from a file.
    pub fn from_snapshot_file(path: impl AsRef<Path>) -> Result<Self, FlagError> {
        Self::from_snapshot(&read(path.as_ref())?)
    }

    /// Replaces the flag state with a snapshot (a delta is applied on top). A snapshot
    /// that does not parse changes nothing.
    pub fn load_snapshot(&self, bytes: &[u8]) -> Result<(), FlagError> {
        let body: Value = serde_json::from_slice(bytes).map_err(|e| FlagError::Snapshot { reason: e.to_string() })?;
        self.shared.apply(&body)?;
        self.shared.stats.snapshots.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Polls the server in the background (registering first, and posting the SDK's
    /// usage metrics). Serves the snapshot, if the config names one, until the first
    /// poll answers; otherwise waits up to [`UnleashConfig::first_fetch`] for it.
    #[cfg(feature = "server")]
    pub fn connect(config: UnleashConfig) -> Result<Self, FlagError> {
        let mut flags = Self::new(&config)?;
        if let Some(path) = &config.snapshot {
            flags.load_snapshot(&read(path)?)?;
        }
        flags.poller = Some(Poller::start(flags.shared.clone())?);
        if config.snapshot.is_none() && !flags.wait_for_state(config.first_fetch) {
            tracing::warn!(url = %config.api_url, "no flag state from the server yet; flags read as off");
        }
        Ok(flags)
    }

    /// Waits until some flag state is loaded (from a snapshot or a poll); false if
    /// `timeout` passed first.
    pub fn wait_for_state(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.last_update().is_some() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// When the state last changed hands (a poll answered, a snapshot loaded).
    pub fn last_update(&self) -> Option<Instant> {
        *self.shared.last_update.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counters.
    pub fn stats(&self) -> &FlagStats {
        &self.shared.stats
    }

    /// Whether `flag` is on for `context` (false for a flag not in the state).
    pub fn is_enabled(&self, flag: &str, context: &Context) -> bool {
        self.shared.client.is_enabled_str(flag, Some(context), false)
    }

    /// The variant of `flag` for `context` (named "disabled" when none applies).
    pub fn variant(&self, flag: &str, context: &Context) -> Variant {
        self.shared.client.get_variant_str(flag, context)
    }

    /// The names of the flags in the state, sorted.
    ///
    /// ```
    /// let snapshot = br#"{"version": 2, "features": [
    ///     {"name": "eta-rollout", "enabled": true, "strategies": [{"name": "default"}]}
    /// ]}"#;
    /// let flags = fresco_unleash::UnleashFlags::from_snapshot(snapshot)?;
    /// assert_eq!(flags.flag_names(), ["eta-rollout"]);
    /// # Ok::<(), fresco_unleash::FlagError>(())
    /// ```
    pub fn flag_names(&self) -> Vec<String> {
        let mirror = self.shared.mirror.lock().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<String> = mirror.features.iter().map(|f| f.name.clone()).collect();
        names.sort();
        names
    }

    /// The flag state as last applied: the JSON that
    /// [`from_snapshot`](Self::from_snapshot) reads back, to save for the edge.
    pub fn snapshot(&self) -> Result<Vec<u8>, FlagError> {
        let mirror = self.shared.mirror.lock().unwrap_or_else(PoisonError::into_inner);
        let mut state = serde_json::to_value(&*mirror).map_err(|e| FlagError::Snapshot { reason: e.to_string() })?;
        restore_unknown_operators(&mut state);
        serde_json::to_vec_pretty(&state).map_err(|e| FlagError::Snapshot { reason: e.to_string() })
    }
}

/// The transport of a build without the `server` feature: flag state comes from
/// snapshots, so nothing is ever sent.
#[cfg(not(feature = "server"))]
struct NoServer;

#[cfg(not(feature = "server"))]
#[async_trait::async_trait]
impl unleash_api_client::http::Transport for NoServer {
    async fn execute(
        &self,
        request: unleash_api_client::http::Request,
    ) -> Result<unleash_api_client::http::Response, anyhow::Error> {
        Err(anyhow::anyhow!("{}: fresco-unleash was built without its `server` feature", request.url))
    }
}

/// A constraint operator this SDK does not know (a newer server's) is kept by the wire
/// types as `Unknown("OP")` but written back as `{"UNKNOWN": "OP"}`, which no parser
/// reads: write it as the server sent it, so a saved state reads back. (The engine
/// does not compile such a strategy; `apply` warns about it.)
fn restore_unknown_operators(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(operator) = map.get_mut("operator")
                && let Some(Value::String(name)) = operator.as_object().and_then(|o| o.get("UNKNOWN"))
            {
                *operator = Value::String(name.clone());
            }
            map.values_mut().for_each(restore_unknown_operators);
        }
        Value::Array(items) => items.iter_mut().for_each(restore_unknown_operators),
        _ => {}
    }
}

fn read(path: &Path) -> Result<Vec<u8>, FlagError> {
    std::fs::read(path).map_err(|source| FlagError::Io { path: path.to_owned(), source })
}

impl FlagSource for UnleashFlags {
    fn decide(&self, flag: &str, key: &str) -> FlagDecision {
        let context = self.shared.context(key);
        if !self.is_enabled(flag, &context) {
            return FlagDecision { enabled: false, variant: Some("disabled".into()), payload: None };
        }
        let variant = self.variant(flag, &context);
        let payload = if variant.enabled { variant.payload.get("value").map(String::as_str) } else { None };
        FlagDecision::variant(variant.name.clone(), payload)
    }

    fn knows(&self, flag: &str) -> bool {
        let mirror = self.shared.mirror.lock().unwrap_or_else(PoisonError::into_inner);
        mirror.features.iter().any(|f| f.name == flag)
    }

    fn versions(&self, flag: &str) -> Vec<String> {
        let mirror = self.shared.mirror.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(feature) = mirror.features.iter().find(|f| f.name == flag) else {
            return Vec::new();
        };
        let strategy_payloads = feature.strategies.iter().flatten().flat_map(|s| s.variants.iter().flatten());
        let mut versions: Vec<String> = strategy_payloads
            .filter_map(|v| v.payload.as_ref())
            .chain(feature.variants.iter().flatten().filter_map(|v| v.payload.as_ref()))
            .map(|p| p.value.clone())
            .collect();
        versions.sort();
        versions.dedup();
        versions
    }
}
