//! Object storage: where a fleet's prediction logs and its model registry live.
//!
//! A [`Bucket`] is a location in an object store named by a URL: `s3://bucket/prefix`,
//! `gs://bucket/prefix`, `az://container/prefix`, or `file:///dir` (a local directory
//! through the same interface, for tests and single machines). Credentials and endpoints
//! come from the environment, as each cloud's own tools read them (`AWS_ACCESS_KEY_ID`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_*`).
//!
//! Its methods block (they run on a small runtime of the module's own), so the log's
//! writer thread, the registry watcher and the command line use it as they use files;
//! called from inside a tokio runtime, a call moves to a thread of its own rather than
//! panicking. What many processes may do at once is settled by the store itself:
//! [`put_new`](Bucket::put_new) creates an object only if its name is free
//! (`If-None-Match: *`), [`put_if`](Bucket::put_if) replaces one only if it is
//! unchanged since it was read (`If-Match`), so two writers never silently overwrite
//! each other.
//!
//! ```
//! use fresco::bucket::{Bucket, Created};
//!
//! let dir = tempfile::tempdir()?;
//! let bucket = Bucket::open(&format!("file://{}", dir.path().display()))?;
//! assert_eq!(bucket.put_new("a/b.txt", b"hello".to_vec())?, Created::New);
//! // The same bytes again: already there, fine (a retried upload).
//! assert_eq!(bucket.put_new("a/b.txt", b"hello".to_vec())?, Created::AlreadyThere);
//! // Other bytes under the same name: refused, never overwritten.
//! assert!(bucket.put_new("a/b.txt", b"other".to_vec()).is_err());
//! assert_eq!(bucket.get("a/b.txt")?.map(|o| o.bytes), Some(b"hello".to_vec()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{
    ClientConfigKey, ObjectStore, PutMode, PutOptions, PutPayload, RetryConfig, UpdateVersion, local::LocalFileSystem,
};

/// What went wrong with a bucket. Each names the object's URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BucketError {
    /// Not a URL this build can open.
    #[error("`{url}` is not an object-store location (s3://, gs://, az://, file://): {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// Why.
        reason: String,
    },
    /// No object of that name.
    #[error("{url}: no such object")]
    NotFound {
        /// The object.
        url: String,
    },
    /// The store answered with an error, or could not be reached (after its retries).
    #[error("{url}: {source}")]
    Store {
        /// The object or prefix.
        url: String,
        /// What the store said.
        #[source]
        source: object_store::Error,
    },
    /// An object of this name exists with other content: names are written once.
    #[error("{url} already exists with other content; objects of this name are written once")]
    Conflict {
        /// The object.
        url: String,
    },
    /// The object changed (or appeared) since it was read: another writer got there first.
    #[error("{url} was changed by another writer since it was read")]
    Changed {
        /// The object.
        url: String,
    },
    /// A local file of a mirror could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// What [`Bucket::put_new`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The object was created.
    New,
    /// An object of that name already held exactly these bytes (a retried upload).
    AlreadyThere,
}

/// An object's bytes and the tag that [`Bucket::put_if`] checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Its content.
    pub bytes: Vec<u8>,
    /// Its entity tag (the store's version of it), when the store has one.
    pub e_tag: Option<String>,
}

/// One object under a prefix ([`Bucket::list`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its key, relative to the bucket's prefix, with `/` separators.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A location in an object store. Cheap to clone.
#[derive(Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    url: String,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("url", &self.url).finish_non_exhaustive()
    }
}

/// Whether `location` names an object store (`scheme://...`) rather than a local path.
///
/// ```
/// assert!(fresco::bucket::is_url("s3://logs/fleet"));
/// assert!(!fresco::bucket::is_url("/var/lib/fresco/logs"));
/// ```
pub fn is_url(location: &str) -> bool {
    location.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// The runtime that drives every bucket's requests; one per process, started on first use.
fn runtime() -> Result<&'static tokio::runtime::Runtime, std::io::Error> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fresco-object-store")
        .enable_all()
        .build()?;
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// Runs `future` to completion from blocking code: on this thread, or, inside a tokio
/// runtime (where blocking on another runtime panics), on a scoped thread of its own.
fn block_on<F: Future + Send>(future: F) -> Result<F::Output, std::io::Error>
where
    F::Output: Send,
{
    let runtime = runtime()?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(runtime.block_on(future));
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| runtime.block_on(future))
            .join()
            .map_err(|_| std::io::Error::other("an object-store request panicked"))
    })
}

impl Bucket {
    /// How long one request may take before it counts as failed (then retried).
    const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
    const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

    /// Opens the location `url`, reading credentials and endpoints from the environment.
    ///
    /// Requests are retried by the store client (3 times, backoff with jitter from
    /// 100 ms, at most 10 s in all), so that a caller with retries of its own, such as
    /// the log's writer, learns of an outage in seconds and keeps its own pace.
    pub fn open(url: &str) -> Result<Self, BucketError> {
        let bad = |reason: String| BucketError::Url { url: url.to_owned(), reason };
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let retry = RetryConfig { max_retries: 3, retry_timeout: Duration::from_secs(10), ..RetryConfig::default() };
        // Set as configuration keys, not as fresh `ClientOptions`, which would drop what
        // `from_env` read (AWS_ALLOW_HTTP, proxies).
        let timeouts = [
            (ClientConfigKey::Timeout, format!("{}s", Self::REQUEST_TIMEOUT.as_secs())),
            (ClientConfigKey::ConnectTimeout, format!("{}s", Self::CONNECT_TIMEOUT.as_secs())),
        ];
        let store_err = |e: object_store::Error| bad(e.to_string());
        // Each cloud's builder is a type of its own, with a key type of its own.
        macro_rules! cloud {
            ($builder:ty, $key:path) => {{
                let builder = <$builder>::from_env().with_url(url).with_retry(retry.clone());
                let store = timeouts
                    .iter()
                    .fold(builder, |b, (key, value)| b.with_config($key(*key), value.as_str()))
                    .build()
                    .map_err(store_err)?;
                (Arc::new(store) as Arc<dyn ObjectStore>, parsed.path().to_owned())
            }};
        }
        let (store, prefix): (Arc<dyn ObjectStore>, String) = match parsed.scheme() {
            "s3" | "s3a" => cloud!(object_store::aws::AmazonS3Builder, object_store::aws::AmazonS3ConfigKey::Client),
            "gs" => cloud!(object_store::gcp::GoogleCloudStorageBuilder, object_store::gcp::GoogleConfigKey::Client),
            "az" | "abfs" | "abfss" => {
                cloud!(object_store::azure::MicrosoftAzureBuilder, object_store::azure::AzureConfigKey::Client)
            }
            "file" => {
                let dir = parsed.to_file_path().map_err(|()| bad("not an absolute local path".into()))?;
                std::fs::create_dir_all(&dir).map_err(|source| BucketError::Io { path: dir.clone(), source })?;
                let store = LocalFileSystem::new_with_prefix(&dir).map_err(store_err)?;
                (Arc::new(store), String::new())
            }
            other => return Err(bad(format!("unknown scheme `{other}`"))),
        };
        let prefix = ObjectPath::parse(prefix.trim_matches('/')).map_err(|e| bad(e.to_string()))?;
        Ok(Bucket { store, prefix, url: url.trim_end_matches('/').to_owned() })
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A bucket at `sub` below this one.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let root = fresco::bucket::Bucket::open(&format!("file://{}", dir.path().display()))?;
    /// assert!(root.join("registry").url().ends_with("/registry"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&self, sub: &str) -> Bucket {
        let mut prefix = self.prefix.clone();
        for part in sub.split('/').filter(|p| !p.is_empty()) {
            prefix = prefix.child(part);
        }
        Bucket { store: self.store.clone(), prefix, url: format!("{}/{}", self.url, sub.trim_matches('/')) }
    }

    fn path(&self, key: &str) -> ObjectPath {
        let mut path = self.prefix.clone();
        for part in key.split('/').filter(|p| !p.is_empty()) {
            path = path.child(part);
        }
        path
    }

    /// The URL of `key` (for messages).
    pub fn url_of(&self, key: &str) -> String {
        format!("{}/{key}", self.url)
    }

    fn store_err(&self, key: &str) -> impl FnOnce(object_store::Error) -> BucketError + '_ {
        let url = self.url_of(key);
        move |source| BucketError::Store { url, source }
    }

    fn run<T: Send>(
        &self,
        key: &str,
        future: impl Future<Output = Result<T, BucketError>> + Send,
    ) -> Result<T, BucketError> {
        block_on(future).map_err(|e| BucketError::Io { path: PathBuf::from(self.url_of(key)), source: e })?
    }

    /// Creates `key` with `bytes` if no object has that name. An object that already
    /// holds exactly these bytes counts as created (a retry after a lost answer); one
    /// with other bytes is [`BucketError::Conflict`], and is left as it was.
    pub fn put_new(&self, key: &str, bytes: Vec<u8>) -> Result<Created, BucketError> {
        let path = self.path(key);
        // A payload is shared, not copied: the same bytes go out and are compared.
        let payload = PutPayload::from(bytes);
        self.run(key, async {
            let options = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
            match self.store.put_opts(&path, payload.clone(), options).await {
                Ok(_) => Ok(Created::New),
                Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                    let there = self.store.get(&path).await.map_err(self.store_err(key))?;
                    let there = there.bytes().await.map_err(self.store_err(key))?;
                    let ours = payload.iter().flat_map(|chunk| chunk.iter());
                    if there.len() == payload.content_length() && there.iter().eq(ours) {
                        Ok(Created::AlreadyThere)
                    } else {
                        Err(BucketError::Conflict { url: self.url_of(key) })
                    }
                }
                Err(e) => Err(self.store_err(key)(e)),
            }
        })
    }

    /// Writes `key` only if it is as it was read: `expected` is the tag of the object
    /// read ([`Object::e_tag`]), or `None` for "there is no such object yet". Another
    /// writer's change in between is [`BucketError::Changed`].
    ///
    /// A store without conditional writes for replacement (a `file://` bucket) takes
    /// `None` only; a local registry serialises its writers with a file lock instead.
    pub fn put_if(&self, key: &str, bytes: Vec<u8>, expected: Option<&str>) -> Result<(), BucketError> {
        let path = self.path(key);
        let mode = match expected {
            None => PutMode::Create,
            Some(tag) => PutMode::Update(UpdateVersion { e_tag: Some(tag.to_owned()), version: None }),
        };
        self.run(key, async {
            match self
                .store
                .put_opts(&path, PutPayload::from(bytes), PutOptions { mode, ..PutOptions::default() })
                .await
            {
                Ok(_) => Ok(()),
                Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                    Err(BucketError::Changed { url: self.url_of(key) })
                }
                Err(e) => Err(self.store_err(key)(e)),
            }
        })
    }

    /// The object `key`, or `None` if there is none.
    pub fn get(&self, key: &str) -> Result<Option<Object>, BucketError> {
        let path = self.path(key);
        self.run(key, async {
            match self.store.get(&path).await {
                Ok(result) => {
                    let e_tag = result.meta.e_tag.clone();
                    let bytes = result.bytes().await.map_err(self.store_err(key))?;
                    Ok(Some(Object { bytes: bytes.to_vec(), e_tag }))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.store_err(key)(e)),
            }
        })
    }

    /// Every object under `sub` (all of the bucket for `""`), keys relative to the
    /// bucket, sorted.
    pub fn list(&self, sub: &str) -> Result<Vec<Listed>, BucketError> {
        use futures_util::TryStreamExt;
        let path = self.path(sub);
        let base = self.prefix.clone();
        self.run(sub, async {
            let metas: Vec<_> = self.store.list(Some(&path)).try_collect().await.map_err(self.store_err(sub))?;
            let mut listed: Vec<Listed> = metas
                .into_iter()
                .filter_map(|meta| {
                    let key: Vec<_> = meta.location.prefix_match(&base)?.map(|p| p.as_ref().to_owned()).collect();
                    Some(Listed { key: key.join("/"), size: meta.size })
                })
                .collect();
            listed.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(listed)
        })
    }

    /// Copies every object under `sub` into `dir` (same relative paths), skipping
    /// files already there with the same size: objects written once never change, so a
    /// mirror refreshed later fetches only what is new. Hidden names (`.x`, `_x`) are
    /// left out, as Parquet readers leave them out. Returns the files fetched.
    pub fn mirror(&self, sub: &str, dir: &Path) -> Result<u64, BucketError> {
        let mut fetched = 0;
        for object in self.list(sub)? {
            let hidden = object.key.split('/').any(|part| part.starts_with('.') || part.starts_with('_'));
            if hidden {
                continue;
            }
            let local = object.key.split('/').fold(dir.to_path_buf(), |p, part| p.join(part));
            if std::fs::metadata(&local).is_ok_and(|m| m.len() == object.size) {
                continue;
            }
            let Some(found) = self.get(&object.key)? else { continue };
            let io = |path: &Path| {
                let path = path.to_path_buf();
                move |source| BucketError::Io { path, source }
            };
            if let Some(parent) = local.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            crate::atomic_file::write_whole(&local, &found.bytes).map_err(io(&local))?;
            fetched += 1;
        }
        Ok(fetched)
    }
}

/// Copies the object at `url` (`s3://bucket/data/train.parquet`) into `dir`, under its
/// own file name, and returns the local file.
pub fn fetch(url: &str, dir: &Path) -> Result<PathBuf, BucketError> {
    let (parent, name) = url
        .rsplit_once('/')
        .filter(|(parent, name)| !name.is_empty() && is_url(parent) && !parent.ends_with(':') && !parent.ends_with('/'))
        .ok_or_else(|| BucketError::Url { url: url.to_owned(), reason: "expected the URL of one object".into() })?;
    let bucket = Bucket::open(parent)?;
    let object = bucket.get(name)?.ok_or_else(|| BucketError::NotFound { url: url.to_owned() })?;
    let local = dir.join(name);
    std::fs::write(&local, &object.bytes).map_err(|source| BucketError::Io { path: local.clone(), source })?;
    Ok(local)
}

/// Local directories for `sources`: each local path as it is, each object-store URL
/// mirrored ([`Bucket::mirror`]) into its own directory under `cache`. What the
/// readers of a fleet's logs (`fresco dataset`, `drift`, `intervals`) read.
pub fn local_roots(sources: &[String], cache: &Path) -> Result<Vec<PathBuf>, BucketError> {
    sources
        .iter()
        .map(|source| {
            if !is_url(source) {
                return Ok(PathBuf::from(source));
            }
            let bucket = Bucket::open(source)?;
            let dir = cache.join(format!("{:016x}", crate::log::fnv1a(bucket.url().as_bytes())));
            let fetched = bucket.mirror("", &dir)?;
            tracing::info!(url = bucket.url(), files = fetched, dir = %dir.display(), "mirrored");
            Ok(dir)
        })
        .collect()
}
