//! Stored features from a [Feast](https://feast.dev) feature server, behind fresco's
//! [`FeatureStore`] trait.
//!
//! Teams that already run Feast keep their feature definitions and online store; a
//! [`FeastStore`] reads them through the feature server's `POST /get-online-features`
//! with the same statuses and semantics as the embedded store: present, missing (no row
//! or a null value), expired (older than the view's time to live, as of the request's
//! time) and unavailable (the server failed or missed its deadline, which the `Client`
//! turns into the model's declared defaults, counted).
//!
//! Each call has a deadline; transport failures and 502 / 503 / 504 answers are retried
//! with backoff inside it, never past it. Feast's own exceptions (an unknown feature
//! view, say) come back as [`FeastError::Server`] with the exception's class. Connections are pooled. An optional read-through
//! cache answers repeated keys for a time to live.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use fresco::{FeatureStore, FeatureView, Timestamp, ValueType};
//! use fresco_feast::{EntityKind, FeastStore, FeastView};
//!
//! // The Feast feature view `restaurants`, keyed by the join key `restaurant_id`.
//! let restaurants = FeatureView::new("restaurants", "restaurant_id")
//!     .feature("prep_time_min", ValueType::F64)
//!     .ttl(Duration::from_secs(7 * 86_400));
//! let store = FeastStore::builder("http://127.0.0.1:6566")
//!     .view(FeastView::new(restaurants, EntityKind::String))
//!     .deadline(Duration::from_millis(50))
//!     .build()?;
//! let rows = store.get_features("restaurants", &["r-0001"], &["prep_time_min"], Timestamp::now())?;
//! println!("{:?}", rows[0][0]);
//! // A Client reads it like any store: ClientBuilder::store(Arc::new(store)).
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cache;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fresco::{FeatureStore, FeatureValue, FeatureView, StoreError, Timestamp, ValueType};

use cache::Cache;

/// The largest answer read from the feature server (64 MiB): a misbehaving server or
/// proxy cannot make a replica hold an unbounded body in memory. A batch of 10,000 rows
/// of 20 features is about 2 MiB.
pub const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// Why a call to the feature server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeastError {
    /// The server answered with an error (Feast's exception class, when it named one).
    #[error("feature server answered {status}{}: {message}", class.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Server {
        /// HTTP status.
        status: u16,
        /// The Python exception class, e.g. `FeatureViewNotFoundException`.
        class: Option<String>,
        /// Its message.
        message: String,
    },
    /// The server could not be reached or the connection broke.
    #[error("feature server unreachable: {reason}")]
    Transport {
        /// What the HTTP client said.
        reason: String,
    },
    /// The deadline passed before an answer came.
    #[error("no answer from the feature server within {deadline:?} ({attempts} attempts)")]
    Deadline {
        /// The call's deadline.
        deadline: Duration,
        /// Requests sent.
        attempts: u32,
    },
    /// The answer is not what the feature server's protocol says.
    #[error("unexpected answer from the feature server: {reason}")]
    Decode {
        /// What did not fit.
        reason: String,
    },
    /// An answer larger than [`MAX_RESPONSE_BYTES`], refused before it is held whole.
    #[error("the feature server's answer exceeds {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// An entity key is not of the entity's type.
    #[error("feature view `{view}`: entity key `{key}` is not an int64")]
    EntityKey {
        /// The view.
        view: String,
        /// The key.
        key: String,
    },
    /// The configuration is unusable.
    #[error("feast store: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
}

impl From<FeastError> for StoreError {
    fn from(err: FeastError) -> Self {
        match err {
            FeastError::Transport { .. } | FeastError::Deadline { .. } => {
                StoreError::Unavailable { reason: err.to_string() }
            }
            other => StoreError::Backend { operation: "feast get-online-features", source: Box::new(other) },
        }
    }
}

/// The type of a Feast entity's join key: the wire carries int64 keys as JSON numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityKind {
    /// `ValueType.STRING`.
    String,
    /// `ValueType.INT64`: fresco's entity key strings are parsed as integers.
    Int64,
}

/// A Feast feature view as fresco sees it: the view's name, its join key (as the
/// [`FeatureView`]'s entity), its features with their types and its time to live.
#[derive(Debug, Clone)]
pub struct FeastView {
    view: Arc<FeatureView>,
    entity: EntityKind,
    feature_service: Option<String>,
}

impl FeastView {
    /// The view `view.name` of the Feast project, keyed by `view.entity` of type `entity`.
    pub fn new(view: FeatureView, entity: EntityKind) -> Self {
        FeastView { view: Arc::new(view), entity, feature_service: None }
    }

    /// Asks for the features through a feature service instead of feature references
    /// (the service must serve every feature of the view that fresco reads).
    pub fn feature_service(mut self, name: impl Into<String>) -> Self {
        self.feature_service = Some(name.into());
        self
    }
}

/// Counters of a [`FeastStore`].
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    cache_hits: AtomicU64,
    /// The last lookup's failure, until one succeeds.
    last_failure: std::sync::Mutex<Option<String>>,
}

/// What a [`FeastStore`] has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeastStats {
    /// HTTP requests sent (retries included).
    pub requests: u64,
    /// Of those, retries after a failure.
    pub retries: u64,
    /// Lookups that failed (the `Client` degrades them to defaults).
    pub failures: u64,
    /// Entity rows answered from the cache.
    pub cache_hits: u64,
}

/// Configures a [`FeastStore`]; from [`FeastStore::builder`].
#[derive(Debug)]
pub struct FeastStoreBuilder {
    url: String,
    views: Vec<FeastView>,
    deadline: Duration,
    first_backoff: Duration,
    cache: Option<(Duration, usize)>,
}

impl FeastStoreBuilder {
    /// Serves this view.
    pub fn view(mut self, view: FeastView) -> Self {
        self.views.push(view);
        self
    }

    /// The most one `get_features` call may take, retries included (default 100 ms).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The wait before the first retry; each further one doubles it (default 5 ms).
    pub fn first_backoff(mut self, backoff: Duration) -> Self {
        self.first_backoff = backoff;
        self
    }

    /// Keeps answers for `ttl`, at most `capacity` entity rows (read-through cache).
    pub fn cache(mut self, ttl: Duration, capacity: usize) -> Self {
        self.cache = Some((ttl, capacity));
        self
    }

    /// Builds the store (no request is sent yet).
    pub fn build(self) -> Result<FeastStore, FeastError> {
        let config = |reason: String| FeastError::Config { reason };
        let base = self.url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(config(format!("`{}` is not an http:// or https:// URL", self.url)));
        }
        if self.deadline.is_zero() {
            return Err(config("the deadline must be above zero".into()));
        }
        let mut views = HashMap::new();
        for v in self.views {
            if v.view.features.is_empty() {
                return Err(config(format!("view `{}` declares no features", v.view.name)));
            }
            let name = v.view.name.clone();
            if views.insert(name.clone(), v).is_some() {
                return Err(config(format!("view `{name}` is declared twice")));
            }
        }
        let build = || reqwest::blocking::Client::builder().pool_max_idle_per_host(32).tcp_nodelay(true).build();
        let http = off_runtime(build).map_err(|e| config(format!("HTTP client: {e}")))?;
        Ok(FeastStore {
            endpoint: format!("{base}/get-online-features"),
            http: Http(Some(http)),
            views,
            deadline: self.deadline,
            first_backoff: self.first_backoff,
            cache: self.cache.map(|(ttl, capacity)| Cache::new(ttl, capacity)),
            counters: Counters::default(),
        })
    }
}

/// Runs `work` on this thread, or, when this thread is inside a tokio runtime, on a
/// scoped thread of its own: reqwest's blocking client starts, waits on and stops a
/// runtime of its own, which tokio forbids (it panics) on a thread that drives one. So
/// `predict` may be called from an async handler without bringing the process down
/// (`predict_async` stays the way that keeps the workers free).
fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|scope| match scope.spawn(work).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// The blocking HTTP client, dropped off any tokio runtime (dropping it joins its
/// runtime's thread, which tokio forbids on a runtime thread).
#[derive(Debug)]
struct Http(Option<reqwest::blocking::Client>);

impl Drop for Http {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            off_runtime(move || drop(client));
        }
    }
}

/// A [`FeatureStore`] over a Feast feature server.
#[derive(Debug)]
pub struct FeastStore {
    endpoint: String,
    http: Http,
    views: HashMap<String, FeastView>,
    deadline: Duration,
    first_backoff: Duration,
    cache: Option<Cache>,
    counters: Counters,
}

impl FeastStore {
    /// A store for the feature server at `url` (e.g. `http://127.0.0.1:6566`).
    pub fn builder(url: impl Into<String>) -> FeastStoreBuilder {
        FeastStoreBuilder {
            url: url.into(),
            views: Vec::new(),
            deadline: Duration::from_millis(100),
            first_backoff: Duration::from_millis(5),
            cache: None,
        }
    }

    /// Whether the feature server answers: `Err` with the last lookup's failure until a
    /// lookup succeeds again (a readiness probe's question; no request is sent here).
    pub fn health(&self) -> Result<(), String> {
        match self.counters.last_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone() {
            Some(failure) => Err(format!("the last lookup failed: {failure}")),
            None => Ok(()),
        }
    }

    /// Requests, retries, failures and cache hits so far.
    pub fn stats(&self) -> FeastStats {
        let c = &self.counters;
        FeastStats {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
        }
    }

    fn view_of(&self, view: &str) -> Result<&FeastView, StoreError> {
        self.views.get(view).ok_or_else(|| StoreError::UnknownView { view: view.to_owned() })
    }

    /// Every feature of `view` for `keys`, from the server, in the view's order.
    fn fetch(&self, view: &FeastView, keys: &[&str]) -> Result<Vec<Vec<FeatureValue>>, FeastError> {
        let spec = &view.view;
        let ids = keys
            .iter()
            .map(|key| match view.entity {
                EntityKind::String => Ok(serde_json::Value::String((*key).to_owned())),
                EntityKind::Int64 => key
                    .parse::<i64>()
                    .map(serde_json::Value::from)
                    .map_err(|_| FeastError::EntityKey { view: spec.name.clone(), key: (*key).to_owned() }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let body = wire::Request {
            entities: BTreeMap::from([(spec.entity.as_str(), ids)]),
            features: match view.feature_service {
                Some(_) => None,
                None => Some(spec.features.iter().map(|f| format!("{}:{}", spec.name, f.name)).collect()),
            },
            feature_service: view.feature_service.as_deref(),
            full_feature_names: true,
        };
        let response = self.post(&body)?;
        let columns: Vec<(&wire::Column, ValueType, &str)> = spec
            .features
            .iter()
            .map(|f| {
                let wanted = format!("{}__{}", spec.name, f.name);
                let at = response.metadata.feature_names.iter().position(|n| *n == wanted).ok_or_else(|| {
                    FeastError::Decode {
                        reason: format!(
                            "no `{wanted}` among {:?}: does the server's view or service serve it?",
                            response.metadata.feature_names
                        ),
                    }
                })?;
                let column = response.results.get(at).ok_or_else(|| FeastError::Decode {
                    reason: format!(
                        "{} names but {} results",
                        response.metadata.feature_names.len(),
                        response.results.len()
                    ),
                })?;
                Ok((column, f.ty, f.name.as_str()))
            })
            .collect::<Result<_, FeastError>>()?;
        (0..keys.len())
            .map(|row| columns.iter().map(|(column, ty, name)| wire::cell(column, row, *ty, name)).collect())
            .collect()
    }

    /// Sends the request, retrying transport failures and gateway errors with backoff,
    /// all within the deadline.
    fn post(&self, body: &wire::Request<'_>) -> Result<wire::Response, FeastError> {
        let start = Instant::now();
        let mut backoff = self.first_backoff;
        let mut attempts = 0u32;
        loop {
            let Some(left) = self.deadline.checked_sub(start.elapsed()).filter(|d| !d.is_zero()) else {
                return Err(FeastError::Deadline { deadline: self.deadline, attempts });
            };
            attempts = attempts.saturating_add(1);
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("fresco_feast_requests_total").increment(1);
            if attempts > 1 {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("fresco_feast_retries_total").increment(1);
            }
            let Some(http) = &self.http.0 else {
                return Err(FeastError::Transport { reason: "the HTTP client is gone".into() });
            };
            // The request and the reading of its body, both blocking.
            let exchange = || {
                let response = http.post(&self.endpoint).json(body).timeout(left).send()?;
                let status = response.status().as_u16();
                Ok::<_, reqwest::Error>(read_bounded(response, MAX_RESPONSE_BYTES).map(|text| (status, text)))
            };
            let failure = match off_runtime(exchange) {
                Ok(read) => {
                    let (status, text) = read?;
                    if (200..300).contains(&status) {
                        return serde_json::from_str(&text).map_err(|e| FeastError::Decode { reason: e.to_string() });
                    }
                    let err = wire::server_error(status, &text);
                    // The feature server answers 500 for its own exceptions (an unknown
                    // feature, say), which a retry would only repeat; a proxy's 502, 503
                    // or 504 is worth another try.
                    if !matches!(status, 502..=504) {
                        return Err(err);
                    }
                    err
                }
                Err(e) if e.is_timeout() => return Err(FeastError::Deadline { deadline: self.deadline, attempts }),
                Err(e) => transport(&e),
            };
            tracing::debug!(attempts, error = %failure, "feature server call failed; retrying within the deadline");
            // Retry only if the wait leaves time for another try.
            if start.elapsed().saturating_add(backoff) >= self.deadline {
                return Err(failure);
            }
            std::thread::sleep(backoff);
            backoff = backoff.saturating_mul(2);
        }
    }
}

/// The body as text, at most `limit` bytes of it.
fn read_bounded(response: impl std::io::Read, limit: u64) -> Result<String, FeastError> {
    use std::io::Read;
    let mut body = Vec::new();
    response
        .take(limit.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| FeastError::Transport { reason: e.to_string() })?;
    if body.len() as u64 > limit {
        return Err(FeastError::TooLarge { limit });
    }
    String::from_utf8(body).map_err(|e| FeastError::Decode { reason: format!("not UTF-8 text: {e}") })
}

/// `value` as of `now`: the feature server does not apply a view's time to live when it
/// reads (the embedded store does, as of the request's time), so it is applied here,
/// the same way, on fresh and cached rows alike.
fn as_of(value: FeatureValue, ttl_micros: Option<i64>, now: Timestamp) -> FeatureValue {
    match (value.status, value.event_ts, ttl_micros) {
        (fresco::FeatureStatus::Present, Some(event), Some(ttl))
            if event.as_micros().saturating_add(ttl) < now.as_micros() =>
        {
            FeatureValue::expired(event)
        }
        _ => value,
    }
}

fn transport(e: &reqwest::Error) -> FeastError {
    use std::error::Error as _;
    let mut reason = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    FeastError::Transport { reason }
}

impl FeatureStore for FeastStore {
    fn view(&self, view: &str) -> Result<Arc<FeatureView>, StoreError> {
        Ok(self.view_of(view)?.view.clone())
    }

    fn get_features(
        &self,
        view: &str,
        entity_keys: &[&str],
        features: &[&str],
        now: Timestamp,
    ) -> Result<Vec<Vec<FeatureValue>>, StoreError> {
        let config = self.view_of(view)?;
        let positions = config.view.positions(features)?;
        let _span = tracing::debug_span!("fresco.feast.fetch", view, rows = entity_keys.len()).entered();
        // Full rows for every key: cached ones, then one request for the rest.
        let mut rows: Vec<Option<Arc<Vec<FeatureValue>>>> =
            entity_keys.iter().map(|k| self.cache.as_ref().and_then(|c| c.get(view, k))).collect();
        let hits = rows.iter().filter(|r| r.is_some()).count();
        self.counters.cache_hits.fetch_add(hits as u64, Ordering::Relaxed);
        let missing: Vec<&str> = entity_keys.iter().zip(&rows).filter(|(_, r)| r.is_none()).map(|(k, _)| *k).collect();
        if !missing.is_empty() {
            let fetched = self.fetch(config, &missing).inspect_err(|e| {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("fresco_feast_failures_total", "view" => view.to_owned()).increment(1);
                tracing::warn!(view, error = %e, "feast lookup failed");
                *self.counters.last_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some(format!("view `{view}`: {e}"));
            })?;
            self.counters.last_failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            let mut fetched = missing.iter().zip(fetched);
            for (key, slot) in entity_keys.iter().zip(&mut rows) {
                if slot.is_none()
                    && let Some((_, row)) = fetched.next()
                {
                    let row = Arc::new(row);
                    if let Some(cache) = &self.cache {
                        cache.put(view, key, row.clone());
                    }
                    *slot = Some(row);
                }
            }
        }
        let ttl_micros = config.view.ttl.map(|ttl| i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX));
        rows.into_iter()
            .map(|row| {
                let row = row.ok_or_else(|| StoreError::Unavailable { reason: "a row went missing".into() })?;
                Ok(positions
                    .iter()
                    .map(|&p| as_of(row.get(p).cloned().unwrap_or_else(FeatureValue::missing), ttl_micros, now))
                    .collect())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_answer_past_the_limit_is_refused_and_one_at_it_is_read() {
        let body = vec![b'x'; 1_001];
        assert!(matches!(read_bounded(&body[..], 1_000), Err(FeastError::TooLarge { limit: 1_000 })));
        assert_eq!(read_bounded(&body[..1_000], 1_000).unwrap().len(), 1_000);
        assert!(matches!(read_bounded(&[0xff, 0xfe][..], 1_000), Err(FeastError::Decode { .. })));
    }
}
