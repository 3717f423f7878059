//! Replicas: one thread per process tails the stream into an in-process store.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Entry, EventStream, Position, StreamError};
use crate::Timestamp;
use crate::aggregates::{AggregateError, AggregateStore, Applied, Definitions};
use crate::sync::{jitter, lock};

/// How a [`Follower`] reads, snapshots and recovers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerConfig {
    /// A directory for snapshots (`aggregates-HI-LO.snap`, named by the position they
    /// reflect). At start the newest one that restores is used and the stream replayed
    /// from its position. Replicas may share the directory: two snapshots at one
    /// position hold the same state. `None`: every start replays the stream.
    pub snapshots: Option<PathBuf>,
    /// How often a snapshot is written (default 60 s).
    pub snapshot_every: Duration,
    /// Snapshots kept in the directory (default 3; older ones are removed).
    pub keep_snapshots: usize,
    /// An archive of the stream ([`archive`](super::archive)): where a follower whose
    /// position was trimmed from the stream reads the missing entries.
    pub archive: Option<PathBuf>,
    /// Most entries per read (default 4,096).
    pub read_batch: usize,
    /// How long one read waits for new entries (default 500 ms; also how soon a stop
    /// is noticed).
    pub wait: Duration,
}

impl Default for FollowerConfig {
    fn default() -> Self {
        FollowerConfig {
            snapshots: None,
            snapshot_every: Duration::from_secs(60),
            keep_snapshots: 3,
            archive: None,
            read_batch: 4_096,
            wait: Duration::from_millis(500),
        }
    }
}

impl FollowerConfig {
    /// Snapshots in `dir`.
    pub fn snapshots(mut self, dir: impl Into<PathBuf>) -> Self {
        self.snapshots = Some(dir.into());
        self
    }

    /// A snapshot every `every`.
    pub fn snapshot_every(mut self, every: Duration) -> Self {
        self.snapshot_every = every;
        self
    }

    /// The stream's archive, for entries trimmed from the stream.
    pub fn archive(mut self, dir: impl Into<PathBuf>) -> Self {
        self.archive = Some(dir.into());
        self
    }
}

/// Where a [`Follower`] stands.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FollowerStatus {
    /// The last entry applied.
    pub position: Option<Position>,
    /// What it did with the entries read since it started.
    pub applied: Applied,
    /// Reads that failed (and were retried).
    pub read_failures: u64,
    /// Snapshots written.
    pub snapshots: u64,
    /// Set while it cannot go on: the entries after its position were trimmed and no
    /// archive holds them. The store refuses reads meanwhile.
    pub behind: Option<StreamError>,
    /// When the last entry applied arrived in the stream.
    pub last_arrival: Option<Timestamp>,
}

#[derive(Debug)]
struct Shared {
    store: Arc<AggregateStore>,
    stream: Arc<dyn EventStream>,
    config: FollowerConfig,
    status: Mutex<FollowerStatus>,
    progressed: Condvar,
    /// Held while entries are applied or a snapshot is taken: a snapshot reflects
    /// exactly the position it is named after.
    applying: Mutex<()>,
    stopping: AtomicBool,
}

/// Tails an [`EventStream`] into an [`AggregateStore`] from a thread of its own: the
/// replica side of a fleet (see [the module](super)). Reads of
/// [`store`](Self::store) never wait for the stream.
///
/// At start it restores the newest snapshot in [`FollowerConfig::snapshots`] and goes
/// on from the position that snapshot reflects. While the stream is unreachable it
/// retries (backing off up to 2 s) and the store keeps serving what it has. When the
/// entries after its position have been trimmed it reads them from the archive; when
/// no archive holds them the store refuses reads with
/// [`AggregateError::Unavailable`] (never counts that silently miss events) until one
/// does.
#[derive(Debug)]
pub struct Follower {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Follower {
    /// Restores the newest usable snapshot (or starts empty) and starts following.
    pub fn start(
        definitions: Definitions,
        stream: Arc<dyn EventStream>,
        config: FollowerConfig,
    ) -> Result<Follower, AggregateError> {
        let store = match &config.snapshots {
            Some(dir) => restore_newest(&definitions, dir)?,
            None => None,
        };
        let store = match store {
            Some(store) => store,
            None => AggregateStore::new(definitions)?,
        };
        let position = store.position();
        let shared = Arc::new(Shared {
            store: Arc::new(store),
            stream,
            config,
            status: Mutex::new(FollowerStatus { position, ..FollowerStatus::default() }),
            progressed: Condvar::new(),
            applying: Mutex::new(()),
            stopping: AtomicBool::new(false),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("fresco-events-follower".into())
                .spawn(move || run(&shared))
                .map_err(|e| AggregateError::Snapshot { reason: format!("could not start the follower thread: {e}") })?
        };
        tracing::info!(stream = %shared.stream.name(), position = ?position, "following the event stream");
        Ok(Follower { shared, thread: Some(thread) })
    }

    /// The store it keeps up to date (give it to
    /// [`ClientBuilder::aggregates`](crate::ClientBuilder::aggregates)).
    pub fn store(&self) -> Arc<AggregateStore> {
        self.shared.store.clone()
    }

    /// Where it stands.
    pub fn status(&self) -> FollowerStatus {
        lock(&self.shared.status).clone()
    }

    /// Waits until it has applied `position` (or later), up to `timeout`.
    pub fn wait_for(&self, position: Position, timeout: Duration) -> Result<(), StreamError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut status = lock(&self.shared.status);
        while status.position.is_none_or(|p| p < position) {
            let left = deadline.map_or(Duration::ZERO, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Err(StreamError::Timeout {
                    what: format!("following the stream to {position}"),
                    waited: timeout,
                });
            }
            status =
                self.shared.progressed.wait_timeout(status, left).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        }
        Ok(())
    }

    /// Waits until it has applied what the stream holds now.
    pub fn catch_up(&self, timeout: Duration) -> Result<(), StreamError> {
        match self.shared.stream.end()? {
            Some(end) => self.wait_for(end, timeout),
            None => Ok(()),
        }
    }

    /// Writes a snapshot now (into [`FollowerConfig::snapshots`]); its path, or `None`
    /// when there is no directory or nothing applied yet.
    pub fn snapshot(&self) -> Result<Option<PathBuf>, AggregateError> {
        write_snapshot(&self.shared)
    }

    /// Stops following and writes a last snapshot.
    pub fn stop(mut self) -> Result<Option<PathBuf>, AggregateError> {
        self.halt();
        write_snapshot(&self.shared)
    }

    fn halt(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.halt();
    }
}

fn run(shared: &Shared) {
    let mut backoff = Duration::from_millis(50);
    let mut last_snapshot = Instant::now();
    let name = shared.stream.name();
    while !shared.stopping.load(Ordering::Acquire) {
        let position = shared.store.position();
        let read = shared.stream.read(position, shared.config.read_batch.max(1), shared.config.wait);
        let entries = match read {
            Ok(entries) => Ok(entries),
            Err(trimmed @ StreamError::Trimmed { .. }) => from_archive(shared, position, trimmed),
            Err(e) => Err(e),
        };
        match entries {
            Ok(entries) => {
                backoff = Duration::from_millis(50);
                apply(shared, &entries);
            }
            Err(e) => {
                let mut status = lock(&shared.status);
                status.read_failures += 1;
                if matches!(e, StreamError::Trimmed { .. }) {
                    if status.behind.is_none() {
                        tracing::error!(stream = %name, error = %e, "follower cannot go on; reads refused");
                    }
                    shared.store.set_unavailable(Some(e.to_string()));
                    status.behind = Some(e);
                    metrics::gauge!("fresco_events_behind").set(1.0);
                } else {
                    tracing::warn!(stream = %name, error = %e, retry_in = ?backoff, "event stream read failed");
                }
                drop(status);
                metrics::counter!("fresco_events_read_failures_total").increment(1);
                std::thread::sleep(jitter(backoff));
                backoff = backoff.saturating_mul(2).min(Duration::from_secs(2));
            }
        }
        if shared.config.snapshots.is_some() && last_snapshot.elapsed() >= shared.config.snapshot_every {
            last_snapshot = Instant::now();
            if let Err(e) = write_snapshot(shared) {
                tracing::warn!(error = %e, "aggregate snapshot failed");
            }
        }
    }
}

fn apply(shared: &Shared, entries: &[Entry]) {
    let guard = lock(&shared.applying);
    let done = shared.store.apply(entries);
    drop(guard);
    for (outcome, n) in [
        ("accepted", done.accepted),
        ("late", done.late),
        ("future", done.future),
        ("duplicate", done.duplicate),
        ("unusable", done.unusable),
    ] {
        if n > 0 {
            metrics::counter!("fresco_events_applied_total", "outcome" => outcome).increment(n);
        }
    }
    let mut status = lock(&shared.status);
    if status.behind.take().is_some() {
        shared.store.set_unavailable(None);
        metrics::gauge!("fresco_events_behind").set(0.0);
        tracing::info!("follower caught up with the stream again; reads served");
    }
    status.applied.add(done);
    status.position = shared.store.position();
    if let Some(last) = entries.last() {
        status.last_arrival = Some(last.arrival);
        let lag = Timestamp::now().as_micros().saturating_sub(last.arrival.as_micros()).max(0);
        metrics::gauge!("fresco_events_lag_seconds").set(lag as f64 / 1e6);
    }
    drop(status);
    shared.progressed.notify_all();
}

/// The entries after `position` from the archive, when it holds them all up to where
/// the stream was trimmed; `trimmed` again otherwise.
fn from_archive(shared: &Shared, position: Option<Position>, trimmed: StreamError) -> Result<Vec<Entry>, StreamError> {
    #[cfg(feature = "parquet")]
    if let (Some(dir), StreamError::Trimmed { trimmed_through, .. }) = (&shared.config.archive, &trimmed) {
        let archive = super::archive::Archive::open(dir);
        match archive.entries_after(position) {
            Ok(entries) if entries.last().is_some_and(|e| e.position >= *trimmed_through) => {
                tracing::info!(entries = entries.len(), from = ?position, "replaying the archive");
                return Ok(entries);
            }
            Ok(_) => tracing::warn!(archive = %dir.display(), "the archive does not reach the trimmed entries yet"),
            Err(e) => tracing::warn!(archive = %dir.display(), error = %e, "the archive could not be read"),
        }
    }
    let _ = (shared, position);
    Err(trimmed)
}

const SNAPSHOT_PREFIX: &str = "aggregates-";
const SNAPSHOT_SUFFIX: &str = ".snap";

fn snapshot_name(position: Position) -> String {
    format!("{SNAPSHOT_PREFIX}{:020}-{:020}{SNAPSHOT_SUFFIX}", position.hi(), position.lo())
}

fn snapshot_position(name: &str) -> Option<Position> {
    let middle = name.strip_prefix(SNAPSHOT_PREFIX)?.strip_suffix(SNAPSHOT_SUFFIX)?;
    middle.parse().ok()
}

/// The snapshots in `dir`, newest first.
fn snapshots_in(dir: &Path) -> Result<Vec<(Position, PathBuf)>, AggregateError> {
    let err = |e: std::io::Error| AggregateError::File { path: dir.display().to_string(), reason: e.to_string() };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(err)?;
        if let Some(position) = entry.file_name().to_str().and_then(snapshot_position) {
            found.push((position, entry.path()));
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    Ok(found)
}

fn restore_newest(definitions: &Definitions, dir: &Path) -> Result<Option<AggregateStore>, AggregateError> {
    for (position, path) in snapshots_in(dir)? {
        let restored = std::fs::read(&path)
            .map_err(|e| AggregateError::Snapshot { reason: e.to_string() })
            .and_then(|bytes| AggregateStore::restore(definitions.clone(), &bytes));
        match restored {
            Ok(store) if store.position() == Some(position) => {
                tracing::info!(snapshot = %path.display(), %position, "restored aggregates");
                return Ok(Some(store));
            }
            Ok(_) => tracing::warn!(snapshot = %path.display(), "snapshot skipped: its name and content disagree"),
            Err(e) => tracing::warn!(snapshot = %path.display(), error = %e, "snapshot skipped"),
        }
    }
    Ok(None)
}

fn write_snapshot(shared: &Shared) -> Result<Option<PathBuf>, AggregateError> {
    let Some(dir) = &shared.config.snapshots else { return Ok(None) };
    let (bytes, position) = {
        let _guard = lock(&shared.applying);
        (shared.store.snapshot()?, shared.store.position())
    };
    let Some(position) = position else { return Ok(None) };
    std::fs::create_dir_all(dir)
        .map_err(|e| AggregateError::File { path: dir.display().to_string(), reason: e.to_string() })?;
    // Replicas may share the directory: each writes through a hidden file of its own.
    let path = dir.join(snapshot_name(position));
    crate::atomic_file::write_whole(&path, &bytes)
        .map_err(|e| AggregateError::File { path: path.display().to_string(), reason: e.to_string() })?;
    lock(&shared.status).snapshots += 1;
    for (_, old) in snapshots_in(dir)?.into_iter().skip(shared.config.keep_snapshots.max(1)) {
        // Another replica sharing the directory may have removed it already.
        let _ = std::fs::remove_file(old);
    }
    tracing::debug!(snapshot = %path.display(), "aggregate snapshot written");
    Ok(Some(path))
}
