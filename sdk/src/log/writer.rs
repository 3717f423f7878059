//! [`PredictionLog`]: the durable prediction and outcome log.
//!
//! `append` writes the records to the spool (durable when it returns), then hands them
//! over a bounded queue to a background writer. The writer collects each spool segment's
//! records per partition and, once the segment is sealed (by size or age) and all its
//! records have arrived, publishes one Parquet file per partition and schema, then
//! deletes the segment. File names are derived from the writer's run (a UUIDv7 drawn when
//! the log opens), the segment number and the schema: no other writer and no later run
//! can produce them, and a restart that replays a segment finds the files it already
//! published under the same names (and checks they hold the same rows): every
//! acknowledged record ends up in exactly one file. With an upload destination
//! ([`LogConfig::upload_to`]), a segment leaves the spool only once each of its files is
//! confirmed in the object store.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};

use super::recycle::BatchPool;
pub use super::spool::SpoolDurability;
use super::spool::{self, Frame, Spool, io};
use super::{
    LogError, LogSchema, OutcomeRecord, PredictionBatch, PredictionRecord, PredictionSink, TreatmentRecord,
    check_model_name, table,
};
use crate::sync::lock;
use crate::time;

/// What `append` does when the queue to the background writer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Wait for room (the records are already in the spool either way).
    #[default]
    Block,
    /// Drop the records from the Parquet output and count them in
    /// [`LogStats::dropped`]. (A record dropped this way may still be recovered from the
    /// spool if the process crashes before the segment is published.)
    Drop,
}

/// How a [`PredictionLog`] writes.
///
/// ```
/// use std::time::Duration;
/// use fresco::{LogConfig, OverflowPolicy, SpoolDurability};
///
/// let config = LogConfig::new("logs")
///     .max_file_bytes(16 << 20)
///     .max_file_age(Duration::from_secs(30))
///     .durability(SpoolDurability::Fsync)
///     .overflow(OverflowPolicy::Block);
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct LogConfig {
    root: PathBuf,
    queue_batches: usize,
    overflow: OverflowPolicy,
    max_file_bytes: u64,
    max_file_age: Duration,
    durability: SpoolDurability,
    publish_threads: usize,
    floats: table::FloatEncoding,
    #[cfg_attr(not(feature = "object-store"), allow(dead_code))]
    upload: Option<String>,
}

impl LogConfig {
    /// Logs under `root` (`predictions/`, `outcomes/`, and the spool in `_spool/`,
    /// which Parquet readers skip).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LogConfig {
            root: root.into(),
            queue_batches: 4096,
            overflow: OverflowPolicy::Block,
            max_file_bytes: 64 << 20,
            max_file_age: Duration::from_secs(60),
            durability: SpoolDurability::Fsync,
            publish_threads: std::thread::available_parallelism().map_or(1, |n| n.get()).min(4),
            floats: table::FloatEncoding::Plain,
            upload: None,
        }
    }

    /// Uploads every published file to an object store (`s3://bucket/prefix`,
    /// `gs://...`, `az://...`, `file:///dir`), under the same relative path as in the
    /// root, so the destination is one hive-partitioned dataset for the whole fleet. A
    /// spool segment is deleted only once its files are confirmed there; while the store
    /// is unreachable, segments wait in the spool and uploads are retried (backoff with
    /// jitter, up to 30 s apart). Credentials come from the environment
    /// ([`Bucket::open`](crate::bucket::Bucket::open)).
    #[cfg(feature = "object-store")]
    pub fn upload_to(mut self, url: impl Into<String>) -> Self {
        self.upload = Some(url.into());
        self
    }

    /// Batches (one per `predict` call) the queue to the writer holds (default 4096).
    pub fn queue_batches(mut self, batches: usize) -> Self {
        self.queue_batches = batches.max(1);
        self
    }

    /// What to do when the queue is full (default: block).
    pub fn overflow(mut self, policy: OverflowPolicy) -> Self {
        self.overflow = policy;
        self
    }

    /// Spool bytes after which a segment is sealed and its files published (default 64 MiB).
    pub fn max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = bytes.max(1);
        self
    }

    /// Age after which a non-empty segment is sealed and published (default 60 s).
    pub fn max_file_age(mut self, age: Duration) -> Self {
        self.max_file_age = age;
        self
    }

    /// When an append counts as durable (default: fsync, group-committed).
    pub fn durability(mut self, durability: SpoolDurability) -> Self {
        self.durability = durability;
        self
    }

    /// Threads that encode the columns of a Parquet file being published (default: the
    /// cores this process may run on, at most 4). Files are the same whatever the count;
    /// 1 keeps publishing on the log's one background thread.
    pub fn publish_threads(mut self, threads: usize) -> Self {
        self.publish_threads = threads.max(1);
        self
    }

    /// How the files store f64 columns (default: [`FloatEncoding::Plain`], which every
    /// Parquet reader reads).
    ///
    /// [`FloatEncoding::Plain`]: crate::FloatEncoding::Plain
    pub fn float_encoding(mut self, encoding: table::FloatEncoding) -> Self {
        self.floats = encoding;
        self
    }

    fn file_options(&self) -> table::FileOptions {
        table::FileOptions { threads: self.publish_threads, floats: self.floats }
    }
}

/// What a [`PredictionLog`] has counted so far: a plain snapshot ([`PredictionLog::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogStats {
    /// Prediction records appended.
    pub predictions: u64,
    /// Outcome records appended.
    pub outcomes: u64,
    /// Treatment records appended.
    pub treatments: u64,
    /// Records dropped because the queue was full ([`OverflowPolicy::Drop`]).
    pub dropped: u64,
    /// Parquet files published.
    pub files_published: u64,
    /// Records replayed from the spool at start-up.
    pub replayed: u64,
    /// Failed attempts to publish (retried; see [`PredictionLog::flush`]).
    pub publish_errors: u64,
    /// Files confirmed in the upload destination.
    pub files_uploaded: u64,
    /// Failed upload attempts (retried).
    pub upload_errors: u64,
}

/// The counters a [`PredictionLog`] updates.
#[derive(Debug, Default)]
struct Counters {
    /// Prediction records appended.
    predictions: AtomicU64,
    /// Outcome records appended.
    outcomes: AtomicU64,
    /// Treatment records appended.
    treatments: AtomicU64,
    /// Records dropped because the queue was full ([`OverflowPolicy::Drop`]).
    dropped: AtomicU64,
    /// Parquet files published.
    files_published: AtomicU64,
    /// Records replayed from the spool at start-up.
    replayed: AtomicU64,
    /// Failed attempts to publish (retried; see [`PredictionLog::flush`]).
    publish_errors: AtomicU64,
    /// Files confirmed in the upload destination.
    files_uploaded: AtomicU64,
    /// Failed upload attempts (retried).
    upload_errors: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> LogStats {
        LogStats {
            predictions: self.predictions.load(Ordering::Relaxed),
            outcomes: self.outcomes.load(Ordering::Relaxed),
            treatments: self.treatments.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            files_published: self.files_published.load(Ordering::Relaxed),
            replayed: self.replayed.load(Ordering::Relaxed),
            publish_errors: self.publish_errors.load(Ordering::Relaxed),
            files_uploaded: self.files_uploaded.load(Ordering::Relaxed),
            upload_errors: self.upload_errors.load(Ordering::Relaxed),
        }
    }
}

enum Item {
    Predictions {
        segment: u64,
        fingerprint: u64,
        batch: Box<PredictionBatch>,
    },
    Outcomes {
        segment: u64,
        model: String,
        records: Vec<OutcomeRecord>,
    },
    Treatments {
        segment: u64,
        model: String,
        records: Vec<TreatmentRecord>,
    },
    /// Answer once every segment before `through` is published.
    Flush {
        through: u64,
        reply: Sender<Result<(), String>>,
    },
}

/// The durable, Parquet-publishing prediction and outcome log (docs/design.md §6).
///
/// ```
/// use std::sync::Arc;
/// use fresco::{LogConfig, LogSchema, PredictionLog, PredictionRecord, PredictionSink, Timestamp};
/// use fresco::abi::InputType;
///
/// let dir = tempfile::tempdir()?;
/// let log = PredictionLog::open(LogConfig::new(dir.path()))?;
/// let schema = Arc::new(LogSchema {
///     model: "eta".into(), version: "1".into(), entities: vec![],
///     inputs: vec![("distance_km".into(), InputType::F64)], outputs: vec!["eta_min".into()],
/// });
/// let record = PredictionRecord {
///     prediction_id: "p-1".into(), ts: Timestamp::from_secs(1_764_201_600),
///     model: "eta".into(), model_version: "1".into(), entities: vec![],
///     inputs: vec![3.2], outputs: vec![14.5], holdout: None, in_holdout: false,
///     eligible: true, flag_variant: None, latency_us: 20,
/// };
/// log.append(&schema, vec![record])?;
/// log.flush()?; // seal and publish now
/// assert!(dir.path().join("predictions/model=eta/date=2025-11-27").is_dir());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PredictionLog {
    spool: Arc<Spool>,
    fingerprints: Fingerprints,
    /// Batches the writer is done with, for the next calls to fill.
    batches: Arc<BatchPool>,
    tx: Option<Sender<Item>>,
    overflow: OverflowPolicy,
    stats: Arc<Counters>,
    dropped: Arc<Mutex<HashMap<u64, u64>>>,
    worker: Option<JoinHandle<()>>,
    root: PathBuf,
    run: String,
    /// The writer's last publishing or upload error, until a publish succeeds.
    failing: Arc<Mutex<Option<String>>>,
    /// Held while the log is open: one writer process per root.
    _lock: std::fs::File,
}

impl std::fmt::Debug for PredictionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PredictionLog").field("root", &self.root).field("run", &self.run).finish_non_exhaustive()
    }
}

/// A segment whose files are published under the root and wait for the upload.
#[cfg_attr(not(feature = "object-store"), allow(dead_code))]
struct Pending {
    /// The spool segment to delete once every file is uploaded.
    segment: Spooled,
    /// Its files, relative to the root.
    files: Vec<PathBuf>,
    /// Files uploaded so far (a prefix of `files`).
    uploaded: usize,
    /// When it was published locally (for the upload lag).
    since: Instant,
}

/// Where a pending segment is in the spool.
#[cfg_attr(not(feature = "object-store"), allow(dead_code))]
enum Spooled {
    /// A segment of this run (the spool keeps its path and its sealed count).
    Live(u64),
    /// The file of a segment replayed from an earlier run.
    Replayed(PathBuf),
}

/// Takes the root's lock file, or says who holds it.
fn lock_root(root: &Path) -> Result<std::fs::File, LogError> {
    let path = root.join(".writer.lock");
    let file = std::fs::File::create(&path).map_err(io(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LogError::Locked { root: root.display().to_string() }),
        Err(std::fs::TryLockError::Error(e)) => Err(io(&path)(e)),
    }
}

/// A writer run's name: a UUIDv7 in hex, which sorts by start time.
fn new_run() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

impl PredictionLog {
    /// Opens the log under the config's root: replays whatever the spool holds from an
    /// earlier run (publishing it, skipping files already published), then starts the
    /// background writer.
    pub fn open(config: LogConfig) -> Result<Self, LogError> {
        let _span = tracing::info_span!("fresco.log.open", root = %config.root.display()).entered();
        let spool_dir = config.root.join("_spool");
        std::fs::create_dir_all(&spool_dir).map_err(io(&spool_dir))?;
        let lock = lock_root(&config.root)?;
        remove_temporary_files(&config.root)?;
        #[cfg(feature = "object-store")]
        let bucket = config.upload.as_deref().map(crate::bucket::Bucket::open).transpose()?;
        #[cfg(not(feature = "object-store"))]
        let bucket: Option<Uploader> = None;
        let stats = Arc::new(Counters::default());
        let mut pending = VecDeque::new();
        for found in spool::segments(&spool_dir)? {
            let (run, path) = match found.run {
                Some(run) => (run, found.path),
                None => {
                    // A spool from before runs were named: give it a run of its own first,
                    // so that a crash during this replay replays it under the same names.
                    let run = new_run();
                    let named = spool::segment_path(&spool_dir, &run, found.id);
                    std::fs::rename(&found.path, &named).map_err(io(&named))?;
                    (run, named)
                }
            };
            let mut buffers = replay_segment(&path, &stats)?;
            let files = buffers.publish(&config.root, &run, found.id, config.file_options())?;
            stats.files_published.fetch_add(files.len() as u64, Ordering::Relaxed);
            if bucket.is_some() {
                let segment = Spooled::Replayed(path);
                pending.push_back(Pending { segment, files, uploaded: 0, since: Instant::now() });
            } else {
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
            tracing::info!(run, segment = found.id, "spool segment replayed");
        }
        let run = new_run();
        let spool = Arc::new(Spool::create(&spool_dir, &run, 0, config.durability, config.max_file_bytes)?);
        let (tx, rx) = crossbeam_channel::bounded(config.queue_batches);
        let dropped = Arc::new(Mutex::new(HashMap::new()));
        let failing = Arc::new(Mutex::new(None));
        let batches = Arc::new(BatchPool::default());
        let worker = {
            let writer = Writer {
                batches: batches.clone(),
                consumed: Vec::new(),
                root: config.root.clone(),
                run: run.clone(),
                bucket,
                pending,
                failing: failing.clone(),
                spool: spool.clone(),
                stats: stats.clone(),
                dropped: dropped.clone(),
                max_age: config.max_file_age,
                files: config.file_options(),
                segments: BTreeMap::new(),
                spare: table::SpareColumns::default(),
                waiting: Vec::new(),
                finishing: None,
                unread: BTreeSet::new(),
            };
            std::thread::Builder::new()
                .name("fresco-log-writer".into())
                .spawn(move || writer.run(rx))
                .map_err(io(&config.root))?
        };
        Ok(PredictionLog {
            spool,
            fingerprints: Fingerprints::default(),
            batches,
            tx: Some(tx),
            overflow: config.overflow,
            stats,
            dropped,
            worker: Some(worker),
            root: config.root,
            run,
            failing,
            _lock: lock,
        })
    }

    /// Whether the log works: its writer runs and its last attempt to publish (and
    /// upload) succeeded. What a readiness probe asks.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let log = fresco::PredictionLog::open(fresco::LogConfig::new(dir.path()))?;
    /// assert!(log.health().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn health(&self) -> Result<(), LogError> {
        if self.worker.as_ref().is_none_or(JoinHandle::is_finished) {
            return Err(closed("the writer stopped"));
        }
        match lock(&self.failing).clone() {
            Some(reason) => Err(LogError::Failing { reason }),
            None => Ok(()),
        }
    }

    /// This writer's run: the UUIDv7 in the name of every file it publishes.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// What the log has counted so far (a snapshot).
    pub fn stats(&self) -> LogStats {
        self.stats.snapshot()
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Seals the current spool segment and waits until every record appended so far is
    /// published as Parquet.
    pub fn flush(&self) -> Result<(), LogError> {
        self.spool.rotate()?;
        // Everything before the now-current segment must be published.
        let through = self.spool.current();
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.send(Item::Flush { through, reply })?;
        answer.recv().map_err(|_| closed("the writer stopped"))?.map_err(|reason| LogError::Closed { reason })
    }

    /// Flushes, then stops the background writer.
    pub fn close(mut self) -> Result<(), LogError> {
        let result = self.flush();
        self.shutdown();
        result
    }

    fn shutdown(&mut self) {
        self.tx.take();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }

    fn send(&self, item: Item) -> Result<(), LogError> {
        let tx = self.tx.as_ref().ok_or_else(|| closed("the log was closed"))?;
        tx.send(item).map_err(|_| closed("the writer stopped"))
    }

    fn enqueue(&self, segment: u64, n: u64, item: Item) -> Result<(), LogError> {
        match self.overflow {
            OverflowPolicy::Block => self.send(item),
            OverflowPolicy::Drop => {
                let tx = self.tx.as_ref().ok_or_else(|| closed("the log was closed"))?;
                match tx.try_send(item) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Full(_)) => {
                        *lock(&self.dropped).entry(segment).or_default() += n;
                        self.stats.dropped.fetch_add(n, Ordering::Relaxed);
                        metrics::counter!("fresco_log_dropped_total").increment(n);
                        Ok(())
                    }
                    Err(TrySendError::Disconnected(_)) => Err(closed("the writer stopped")),
                }
            }
        }
    }
}

impl Drop for PredictionLog {
    fn drop(&mut self) {
        if self.tx.is_some() {
            if let Err(e) = self.flush() {
                tracing::error!(error = %e, "prediction log: final flush failed; records stay in the spool");
            }
            self.shutdown();
        }
    }
}

/// The fingerprints of the schemas appended lately, by `Arc` identity: a fingerprint
/// encodes the whole schema, too much to redo on every one-row append. Holding the `Arc`
/// keeps its address from being reused by another schema while it is kept.
#[derive(Default)]
struct Fingerprints(Mutex<Vec<(Arc<LogSchema>, u64)>>);

impl Fingerprints {
    /// Schemas kept (models times versions logging at once, in most services).
    const KEPT: usize = 16;

    fn of(&self, schema: &Arc<LogSchema>) -> u64 {
        let mut kept = lock(&self.0);
        if let Some((_, fingerprint)) = kept.iter().find(|(s, _)| Arc::ptr_eq(s, schema)) {
            return *fingerprint;
        }
        let fingerprint = schema.fingerprint();
        if kept.len() >= Self::KEPT {
            kept.remove(0);
        }
        kept.push((schema.clone(), fingerprint));
        fingerprint
    }
}

fn closed(reason: &str) -> LogError {
    LogError::Closed { reason: reason.into() }
}

impl PredictionSink for PredictionLog {
    fn append(&self, schema: &Arc<LogSchema>, records: Vec<PredictionRecord>) -> Result<(), LogError> {
        self.append_batch(PredictionBatch::from_records(schema.clone(), &records)?)
    }

    fn empty_batch(&self, schema: Arc<LogSchema>, rows: usize) -> PredictionBatch {
        self.batches.take(schema, rows)
    }

    fn append_batch(&self, batch: PredictionBatch) -> Result<(), LogError> {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len() as u64;
        let fingerprint = self.fingerprints.of(batch.schema());
        let segment = self.spool.append_batch(&batch, fingerprint)?;
        self.stats.predictions.fetch_add(n, Ordering::Relaxed);
        self.enqueue(segment, n, Item::Predictions { segment, fingerprint, batch: Box::new(batch) })
    }

    fn append_outcomes(&self, model: &str, records: Vec<OutcomeRecord>) -> Result<(), LogError> {
        if records.is_empty() {
            return Ok(());
        }
        check_model_name(model)?;
        let n = records.len() as u64;
        let segment = self.spool.append_outcomes(model, &records)?;
        self.stats.outcomes.fetch_add(n, Ordering::Relaxed);
        self.enqueue(segment, n, Item::Outcomes { segment, model: model.to_owned(), records })
    }

    fn append_treatments(&self, model: &str, records: Vec<TreatmentRecord>) -> Result<(), LogError> {
        if records.is_empty() {
            return Ok(());
        }
        check_model_name(model)?;
        let n = records.len() as u64;
        let segment = self.spool.append_treatments(model, &records)?;
        self.stats.treatments.fetch_add(n, Ordering::Relaxed);
        self.enqueue(segment, n, Item::Treatments { segment, model: model.to_owned(), records })
    }

    fn flush(&self) -> Result<(), LogError> {
        PredictionLog::flush(self)
    }
}

/// The records of a spool segment left by an earlier run, by partition.
fn replay_segment(path: &Path, stats: &Counters) -> Result<SegmentBuffers, LogError> {
    let mut buffers = SegmentBuffers::default();
    let mut spare = table::SpareColumns::default();
    let mut schemas = HashMap::new();
    for frame in spool::read_segment(path)? {
        let declared = |fingerprint: u64| {
            schemas.get(&fingerprint).cloned().ok_or_else(|| LogError::Encoding {
                reason: format!("{}: records of an undeclared schema", path.display()),
            })
        };
        match frame {
            Frame::Schema(schema) => {
                schemas.insert(schema.fingerprint(), Arc::new(schema));
            }
            Frame::Predictions { schema: fingerprint, records } => {
                let batch = PredictionBatch::from_records(declared(fingerprint)?, &records)?;
                stats.replayed.fetch_add(batch.len() as u64, Ordering::Relaxed);
                buffers.add_predictions(fingerprint, &batch, &mut spare);
            }
            Frame::Batch { schema: fingerprint, columns } => {
                let batch = PredictionBatch::from_columns(declared(fingerprint)?, *columns)
                    .map_err(|e| LogError::Encoding { reason: format!("{}: {e}", path.display()) })?;
                stats.replayed.fetch_add(batch.len() as u64, Ordering::Relaxed);
                buffers.add_predictions(fingerprint, &batch, &mut spare);
            }
            Frame::Outcomes { model, records } => {
                stats.replayed.fetch_add(records.len() as u64, Ordering::Relaxed);
                buffers.add_outcomes(model, records);
            }
            Frame::Treatments { model, records } => {
                stats.replayed.fetch_add(records.len() as u64, Ordering::Relaxed);
                buffers.add_treatments(model, records);
            }
        }
    }
    Ok(buffers)
}

fn remove_temporary_files(root: &Path) -> Result<(), LogError> {
    for table in ["predictions", "outcomes", "treatments"] {
        let mut stack = vec![root.join(table)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries {
                let path = entry.map_err(io(&dir))?.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"))
                {
                    std::fs::remove_file(&path).map_err(io(&path))?;
                }
            }
        }
    }
    Ok(())
}

/// When the writer retries publishing after a failure, and when it says so: the delay
/// doubles from 200 ms to 30 s while failures last (each wait drawn from its upper
/// half), and an error event goes out for the first failure and then at most once a
/// minute, with the count since the last one.
struct Retry {
    next_at: Instant,
    delay: Duration,
    failures: u64,
    unreported: u64,
    reported_at: Option<Instant>,
}

impl Retry {
    const FIRST: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(30);
    const REPORT_EVERY: Duration = Duration::from_secs(60);

    fn new() -> Self {
        Retry { next_at: Instant::now(), delay: Self::FIRST, failures: 0, unreported: 0, reported_at: None }
    }

    fn due(&self, now: Instant) -> bool {
        now >= self.next_at
    }

    /// Records a failure; returns the delay before the next try, and the failure count
    /// to report now, if an event is due.
    fn failed(&mut self, now: Instant) -> (Duration, Option<u64>) {
        // Jittered, so that writers that lost one store together retry apart.
        let delay = crate::sync::jitter(self.delay);
        self.next_at = now + delay;
        self.delay = (self.delay * 2).min(Self::MAX);
        self.failures += 1;
        self.unreported += 1;
        let due = self.reported_at.is_none_or(|at| now.duration_since(at) >= Self::REPORT_EVERY);
        if !due {
            return (delay, None);
        }
        self.reported_at = Some(now);
        (delay, Some(std::mem::take(&mut self.unreported)))
    }

    /// Records a success; returns how many failures came before it.
    fn succeeded(&mut self) -> u64 {
        let failures = self.failures;
        *self = Retry { next_at: self.next_at, ..Retry::new() };
        failures
    }
}

#[cfg(test)]
mod retry_tests {
    use super::*;

    #[test]
    fn backs_off_and_reports_once_a_minute() {
        let mut retry = Retry::new();
        let start = Instant::now();
        assert!(retry.due(start));
        let mut delays = Vec::new();
        let mut reports = Vec::new();
        let mut now = start;
        for _ in 0..12 {
            let base = retry.delay;
            let (delay, report) = retry.failed(now);
            assert!(!retry.due(now) && retry.due(now + delay));
            assert!(delay >= base / 2 && delay <= base, "{delay:?} is not in the upper half of {base:?}");
            delays.push(base.as_millis());
            reports.push(report);
            // Wait the longest a jitter allows, so the report schedule below is fixed.
            now += base;
        }
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000, 30000]);
        // The first failure at once; the next once a minute has passed (the 10th
        // failure, at 81 s, counting the nine since), then every other 30 s failure.
        assert_eq!(reports, [Some(1), None, None, None, None, None, None, None, None, Some(9), None, Some(2)]);
        assert_eq!(retry.succeeded(), 12);
        assert!(retry.failed(now).0 <= Retry::FIRST, "a success resets the delay");
    }
}

#[cfg(test)]
mod backlog_tests {
    use super::*;
    use crate::log::spool::tests::{record, schema};

    /// A writer of run `r` under `dir`, not started.
    fn writer(dir: &Path) -> Writer {
        let spool = Spool::create(&dir.join("spool"), "r", 0, SpoolDurability::Buffered, 1 << 20).unwrap();
        Writer {
            batches: Arc::default(),
            consumed: Vec::new(),
            root: dir.to_owned(),
            run: "r".into(),
            failing: Arc::default(),
            bucket: None,
            pending: VecDeque::new(),
            spool: Arc::new(spool),
            stats: Arc::default(),
            dropped: Arc::default(),
            max_age: Duration::from_secs(3600),
            files: table::FileOptions { threads: 1, floats: table::FloatEncoding::Plain },
            segments: BTreeMap::new(),
            spare: table::SpareColumns::default(),
            waiting: Vec::new(),
            finishing: None,
            unread: BTreeSet::new(),
        }
    }

    #[test]
    fn a_complete_segment_is_published_before_the_rest_of_a_backlog_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = writer(dir.path());
        let schema = schema();
        let fingerprint = schema.fingerprint();
        // A backlog: one record in segment 0, then two in segment 1, all queued.
        let (tx, rx) = crossbeam_channel::unbounded();
        for (id, seal_after) in [("a", true), ("b", false), ("c", false)] {
            let batch = PredictionBatch::from_records(schema.clone(), &[record(id)]).unwrap();
            let segment = writer.spool.append_batch(&batch, fingerprint).unwrap();
            tx.send(Item::Predictions { segment, fingerprint, batch: Box::new(batch) }).unwrap();
            if seal_after {
                writer.spool.rotate().unwrap();
            }
        }
        let first = writer.take(rx.recv().unwrap());
        writer.take_queued(&rx, first);
        assert_eq!(rx.len(), 1, "taking stops at the first record of segment 1");
        writer.publish_ready().unwrap();
        writer.finished().unwrap();
        assert_eq!(writer.stats.files_published.load(Ordering::Relaxed), 1, "segment 0 is published");
        assert!(writer.spool.sealed().is_empty(), "and leaves the spool");
    }

    #[test]
    fn rows_whose_file_fails_to_finish_are_read_back_from_the_spool_and_published_later() {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

        let dir = tempfile::tempdir().unwrap();
        let mut writer = writer(dir.path());
        let schema = schema();
        let fingerprint = schema.fingerprint();
        let batch = PredictionBatch::from_records(schema.clone(), &[record("a"), record("b")]).unwrap();
        let segment = writer.spool.append_batch(&batch, fingerprint).unwrap();
        writer.spool.rotate().unwrap();
        writer.take(Item::Predictions { segment, fingerprint, batch: Box::new(batch) });
        // Something else holds the file's name: naming it fails.
        let name =
            dir.path().join(format!("predictions/model=m/date=1970-01-01/r-{segment:016}-{fingerprint:016x}.parquet"));
        std::fs::create_dir_all(name.parent().unwrap()).unwrap();
        std::fs::write(&name, b"not a log file").unwrap();

        writer.publish_ready().unwrap();
        assert!(writer.segments.is_empty(), "the rows are in a written file, their columns reused");
        assert!(writer.finished().is_err());
        assert_eq!(writer.segments.get(&segment).map(|s| s.received), Some(2), "the rows are read back");
        assert_eq!(writer.spool.sealed().len(), 1, "and the segment stays in the spool");

        std::fs::remove_file(&name).unwrap();
        writer.publish_ready().unwrap();
        writer.finished().unwrap();
        assert!(writer.spool.sealed().is_empty());
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&name).unwrap()).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 2);
    }
}

/// A prediction partition within a segment: schema fingerprint (which fixes the model)
/// and UTC day number.
type PartitionKey = (u64, i64);

/// One segment's records, by partition.
#[derive(Default)]
struct SegmentBuffers {
    received: u64,
    predictions: HashMap<PartitionKey, table::PredictionColumns>,
    outcomes: HashMap<(String, i64), Vec<OutcomeRecord>>,
    treatments: HashMap<(String, i64), Vec<TreatmentRecord>>,
}

impl SegmentBuffers {
    fn add_predictions(&mut self, fingerprint: u64, batch: &PredictionBatch, spare: &mut table::SpareColumns) {
        self.received += batch.len() as u64;
        // A batch is almost always one day: look its partition up once per run of a day.
        let ts = batch.ts();
        let mut start = 0;
        while let Some(&first) = ts.get(start) {
            let day = time::utc_day(crate::Timestamp::from_micros(first));
            let end = ts[start..]
                .iter()
                .position(|&t| time::utc_day(crate::Timestamp::from_micros(t)) != day)
                .map_or(ts.len(), |n| start + n);
            let columns = self
                .predictions
                .entry((fingerprint, day))
                .or_insert_with(|| table::PredictionColumns::new(batch.schema().clone(), spare));
            columns.extend(batch, start..end, spare);
            start = end;
        }
    }

    fn add_outcomes(&mut self, model: String, records: Vec<OutcomeRecord>) {
        self.received += records.len() as u64;
        for record in records {
            self.outcomes.entry((model.clone(), time::utc_day(record.ts))).or_default().push(record);
        }
    }

    fn add_treatments(&mut self, model: String, records: Vec<TreatmentRecord>) {
        self.received += records.len() as u64;
        for record in records {
            self.treatments.entry((model.clone(), time::utc_day(record.ts))).or_default().push(record);
        }
    }

    /// Hands the column buffers of the published partitions to `spare`.
    fn recycle(self, spare: &mut table::SpareColumns) {
        self.predictions.into_values().for_each(|columns| columns.recycle(spare));
    }

    /// Publishes one file per partition, named after `run` and `segment`; returns the
    /// files (relative to `root`), those found already published by a replay included.
    fn publish(
        &mut self,
        root: &Path,
        run: &str,
        segment: u64,
        options: table::FileOptions,
    ) -> Result<Vec<PathBuf>, LogError> {
        finish(self.write(root, run, segment, options)?)
    }

    /// Writes one file per partition, named after `run` and `segment`, for [`finish`]:
    /// each with its name relative to `root`.
    fn write(
        &mut self,
        root: &Path,
        run: &str,
        segment: u64,
        options: table::FileOptions,
    ) -> Result<Vec<(PathBuf, table::Written)>, LogError> {
        let mut files = Vec::new();
        for ((fingerprint, day), columns) in &mut self.predictions {
            let relative = partition_dir("predictions", &columns.schema().model, *day)
                .join(format!("{run}-{segment:016}-{fingerprint:016x}.parquet"));
            let written = table::write(&root.join(&relative), columns.arrow_schema(), columns.batches(), options)?;
            files.push((relative, written));
        }
        for ((model, day), records) in &self.outcomes {
            let relative = partition_dir("outcomes", model, *day).join(format!("{run}-{segment:016}.parquet"));
            let batches = table::chunks(records).map(table::outcome_batch);
            files.push((
                relative.clone(),
                table::write(&root.join(&relative), table::outcome_schema(), batches, options)?,
            ));
        }
        for ((model, day), records) in &self.treatments {
            let relative = partition_dir("treatments", model, *day).join(format!("{run}-{segment:016}.parquet"));
            let batches = table::chunks(records).map(table::treatment_batch);
            files.push((
                relative.clone(),
                table::write(&root.join(&relative), table::treatment_schema(), batches, options)?,
            ));
        }
        Ok(files)
    }
}

/// Syncs and names files [`SegmentBuffers::write`] wrote, in order; returns their names
/// relative to the root, those found already published by a replay included.
fn finish(files: Vec<(PathBuf, table::Written)>) -> Result<Vec<PathBuf>, LogError> {
    files
        .into_iter()
        .map(|(relative, written)| {
            if written.finish()? == table::Published::AlreadyThere {
                tracing::info!(file = %relative.display(), "already published (a replayed segment)");
            }
            Ok(relative)
        })
        .collect()
}

/// `<table>/model=<model>/date=<day>`: a hive partition of one of the log's tables.
fn partition_dir(table: &str, model: &str, day: i64) -> PathBuf {
    PathBuf::from(table).join(format!("model={model}")).join(format!("date={}", time::day_to_date(day)))
}

/// Where published files go besides the root.
#[cfg(feature = "object-store")]
type Uploader = crate::bucket::Bucket;
/// Without object storage there is nowhere to upload to.
#[cfg(not(feature = "object-store"))]
enum Uploader {}

struct Writer {
    /// Where the batches taken go once their rows are in the columns.
    batches: Arc<BatchPool>,
    /// Batches taken, given back to `batches` a few at a time (one lock for them all)
    /// while their memory is still in cache.
    #[expect(clippy::vec_box, reason = "the boxes are the queue's, given back to the pool as they are")]
    consumed: Vec<Box<PredictionBatch>>,
    root: PathBuf,
    run: String,
    failing: Arc<Mutex<Option<String>>>,
    bucket: Option<Uploader>,
    /// Published segments waiting for their upload, oldest first.
    pending: VecDeque<Pending>,
    spool: Arc<Spool>,
    stats: Arc<Counters>,
    dropped: Arc<Mutex<HashMap<u64, u64>>>,
    max_age: Duration,
    files: table::FileOptions,
    segments: BTreeMap<u64, SegmentBuffers>,
    /// Column buffers of published row groups, for the next ones while rows keep coming.
    spare: table::SpareColumns,
    waiting: Vec<(u64, Sender<Result<(), String>>)>,
    /// The segment whose files are being synced and named on another thread.
    finishing: Option<Finishing>,
    /// Sealed segments whose rows are neither here nor published: read back from the
    /// spool before the next publish.
    unread: BTreeSet<u64>,
}

/// A segment whose files are written and are being synced and named on a thread of its
/// own, while the writer goes on with the next segment: a sync waits on the disk some
/// milliseconds a file, time the writer's core would otherwise idle through.
struct Finishing {
    segment: u64,
    done: std::thread::JoinHandle<Result<Vec<PathBuf>, LogError>>,
}

impl Writer {
    /// While records keep coming the writer polls the queue every [`Self::POLL`] rather
    /// than blocking on it: a send to a blocked receiver wakes it, a system call in
    /// every `append` (and so in every `predict`). It blocks again once the queue has
    /// stayed empty for [`Self::LINGER`].
    const POLL: Duration = Duration::from_millis(1);
    const LINGER: Duration = Duration::from_millis(100);
    /// Batches taken before they are given back to the pool: all of a turn's at once
    /// would be freed cold (a few percent of one-row appends' throughput).
    const GIVE_BACK_EVERY: usize = 64;

    fn run(mut self, rx: Receiver<Item>) {
        let tick = (self.max_age / 4).clamp(Duration::from_millis(5), Duration::from_millis(250));
        let mut last_error: Option<String> = None;
        let mut retry = Retry::new();
        let mut last_item: Option<Instant> = None;
        loop {
            let received = match last_item {
                Some(at) if at.elapsed() < Self::LINGER => {
                    std::thread::sleep(Self::POLL);
                    rx.try_recv().map_err(|e| match e {
                        TryRecvError::Empty => RecvTimeoutError::Timeout,
                        TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                    })
                }
                _ => {
                    let received = rx.recv_timeout(tick);
                    if received.is_err() {
                        // Idle: the memory kept for the next row groups goes back.
                        self.spare = table::SpareColumns::default();
                    }
                    received
                }
            };
            let disconnected = match received {
                Ok(item) => {
                    let first = self.take(item);
                    self.take_queued(&rx, first);
                    self.batches.give_back(&mut self.consumed);
                    last_item = Some(Instant::now());
                    false
                }
                Err(RecvTimeoutError::Timeout) => false,
                Err(RecvTimeoutError::Disconnected) => true,
            };
            // Batches waiting for this thread: the backlog an alert on the log watches.
            metrics::gauge!("fresco_log_queue_depth").set(rx.len() as f64);
            if let Err(e) = self.spool.rotate_if_older(self.max_age) {
                last_error = Some(e.to_string());
            }
            // A waiting flush retries at once: its caller wants an answer now.
            if retry.due(Instant::now()) || !self.waiting.is_empty() {
                match self.publish_ready() {
                    Ok(()) => {
                        if retry.succeeded() > 0 {
                            tracing::info!("prediction log: publishing works again");
                        }
                        last_error = None;
                    }
                    Err(e) => {
                        self.stats.publish_errors.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("fresco_log_publish_failures_total").increment(1);
                        let (delay, report) = retry.failed(Instant::now());
                        if let Some(failures) = report {
                            tracing::error!(error = %e, failures, retry_in = ?delay, "prediction log: publishing failed; will retry");
                        }
                        last_error = Some(e.to_string());
                    }
                }
            }
            lock(&self.failing).clone_from(&last_error);
            self.answer_flushes(last_error.as_deref());
            if disconnected {
                // A segment being finished leaves the spool once its files are named.
                if let Err(e) = self.finished() {
                    tracing::error!(error = %e, "prediction log: publishing failed at close; the spool keeps the rows");
                }
                return;
            }
        }
    }

    /// Takes what is already queued before file work is done, up to the first records of
    /// a segment later than `first`'s: the earlier segment may then be complete, and it is
    /// published before the rest of a backlog is taken. A log whose callers outpace its
    /// writer thus publishes as it goes and holds about a segment of rows, not its whole
    /// queue's, and the next segment reuses the published one's column buffers.
    fn take_queued(&mut self, rx: &Receiver<Item>, first: Option<u64>) {
        while let Ok(item) = rx.try_recv() {
            if self.take(item) > first {
                return;
            }
        }
    }

    /// Takes one item; returns the spool segment of its records (none for a flush).
    fn take(&mut self, item: Item) -> Option<u64> {
        match item {
            Item::Predictions { segment, fingerprint, batch } => {
                self.segments.entry(segment).or_default().add_predictions(fingerprint, &batch, &mut self.spare);
                self.consumed.push(batch);
                if self.consumed.len() >= Self::GIVE_BACK_EVERY {
                    self.batches.give_back(&mut self.consumed);
                }
                Some(segment)
            }
            Item::Outcomes { segment, model, records } => {
                self.segments.entry(segment).or_default().add_outcomes(model, records);
                Some(segment)
            }
            Item::Treatments { segment, model, records } => {
                self.segments.entry(segment).or_default().add_treatments(model, records);
                Some(segment)
            }
            Item::Flush { through, reply } => {
                self.waiting.push((through, reply));
                None
            }
        }
    }

    /// Publishes every sealed segment whose records have all arrived, oldest first, then
    /// uploads what waits for it.
    ///
    /// A segment's files are synced and named on another thread ([`Finishing`]) while the
    /// next one is written; the segment leaves the spool once that is done. A flush
    /// waiting, or an idle writer, waits for it.
    fn publish_ready(&mut self) -> Result<(), LogError> {
        self.read_back()?;
        if self.finishing.as_ref().is_some_and(|f| f.done.is_finished()) {
            self.finished()?;
        }
        for (id, appended) in self.spool.sealed() {
            if self.pending.iter().any(|p| matches!(p.segment, Spooled::Live(live) if live == id))
                || self.finishing.as_ref().is_some_and(|f| f.segment == id)
            {
                continue;
            }
            let dropped = lock(&self.dropped).get(&id).copied().unwrap_or(0);
            let received = self.segments.get(&id).map_or(0, |s| s.received);
            if received + dropped < appended {
                // Still in the queue; segments are published in order.
                break;
            }
            let _span = tracing::debug_span!("fresco.log.publish", segment = id, records = received).entered();
            let files = match self.segments.get_mut(&id) {
                Some(buffers) => buffers.write(&self.root, &self.run, id, self.files)?,
                None => Vec::new(),
            };
            // Its rows are in the files now; should finishing them fail, they are read
            // back from the spool.
            if let Some(buffers) = self.segments.remove(&id) {
                buffers.recycle(&mut self.spare);
            }
            // One segment finishes at a time, in order.
            self.finished()?;
            let done = std::thread::Builder::new()
                .name("fresco-log-sync".into())
                .spawn(move || finish(files))
                .map_err(|source| LogError::Io { path: "a thread to sync the log's files".into(), source })?;
            self.finishing = Some(Finishing { segment: id, done });
        }
        if !self.waiting.is_empty() {
            self.finished()?;
        }
        self.upload_pending()
    }

    /// Waits for the segment being finished, if any, then hands it to the upload or
    /// deletes it from the spool. If finishing failed, its rows are read back from the
    /// spool for the next try.
    fn finished(&mut self) -> Result<(), LogError> {
        let Some(Finishing { segment: id, done }) = self.finishing.take() else { return Ok(()) };
        let panicked = || LogError::Io {
            path: format!("the files of spool segment {id}"),
            source: std::io::Error::other("the thread syncing them panicked"),
        };
        let files = match done.join().unwrap_or_else(|_| Err(panicked())) {
            Ok(files) => files,
            Err(e) => {
                self.unread.insert(id);
                if let Err(unread) = self.read_back() {
                    tracing::error!(error = %unread, segment = id, "prediction log: cannot read a segment back from the spool; will retry");
                }
                return Err(e);
            }
        };
        self.stats.files_published.fetch_add(files.len() as u64, Ordering::Relaxed);
        lock(&self.dropped).remove(&id);
        if self.bucket.is_some() {
            let segment = Spooled::Live(id);
            self.pending.push_back(Pending { segment, files, uploaded: 0, since: Instant::now() });
            Ok(())
        } else {
            // Should the spool keep it, it is read back and published again (its files
            // are then found already there) rather than left behind.
            self.spool.remove(id).inspect_err(|_| {
                self.unread.insert(id);
            })
        }
    }

    /// Reads the rows of the segments in [`Self::unread`] back from the spool.
    fn read_back(&mut self) -> Result<(), LogError> {
        while let Some(&id) = self.unread.first() {
            let path = spool::segment_path(self.spool.dir(), self.spool.run(), id);
            self.segments.insert(id, replay_segment(&path, &Counters::default())?);
            self.unread.remove(&id);
        }
        Ok(())
    }

    /// Uploads the files of the pending segments, oldest first; deletes each segment
    /// from the spool once all of its files are confirmed.
    #[cfg(feature = "object-store")]
    fn upload_pending(&mut self) -> Result<(), LogError> {
        let Some(bucket) = &self.bucket else { return Ok(()) };
        let result = (|| {
            while let Some(pending) = self.pending.front_mut() {
                while let Some(relative) = pending.files.get(pending.uploaded) {
                    let path = self.root.join(relative);
                    let bytes = std::fs::read(&path).map_err(io(&path))?;
                    let key: Vec<_> = relative.iter().map(|part| part.to_string_lossy()).collect();
                    let started = Instant::now();
                    if let Err(e) = bucket.put_new(&key.join("/"), bytes) {
                        self.stats.upload_errors.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("fresco_log_upload_failures_total").increment(1);
                        return Err(LogError::from(e));
                    }
                    metrics::histogram!("fresco_log_upload_seconds").record(started.elapsed().as_secs_f64());
                    metrics::counter!("fresco_log_uploaded_files_total").increment(1);
                    self.stats.files_uploaded.fetch_add(1, Ordering::Relaxed);
                    pending.uploaded += 1;
                }
                match &pending.segment {
                    Spooled::Live(id) => self.spool.remove(*id)?,
                    Spooled::Replayed(path) => std::fs::remove_file(path).map_err(io(path))?,
                }
                self.pending.pop_front();
            }
            Ok(())
        })();
        // How long the oldest published file has waited for the store: the alert's series.
        let lag = self.pending.front().map_or(0.0, |p| p.since.elapsed().as_secs_f64());
        metrics::gauge!("fresco_log_upload_lag_seconds").set(lag);
        result
    }

    #[cfg(not(feature = "object-store"))]
    fn upload_pending(&mut self) -> Result<(), LogError> {
        Ok(())
    }

    fn answer_flushes(&mut self, error: Option<&str>) {
        let oldest_unpublished = self.spool.sealed().first().map_or(self.spool.current(), |(id, _)| *id);
        // Segments replayed from an earlier run come before any of this run's.
        let replays_pending = self.pending.iter().any(|p| matches!(p.segment, Spooled::Replayed(_)));
        self.waiting.retain(|(through, reply)| {
            if let Some(e) = error {
                let _ = reply.send(Err(e.to_owned()));
                false
            } else if !replays_pending && *through <= oldest_unpublished {
                let _ = reply.send(Ok(()));
                false
            } else {
                true
            }
        });
    }
}
