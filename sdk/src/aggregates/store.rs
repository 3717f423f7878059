//! The online side: events recorded as they arrive, aggregates read at request time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::definition::{Aggregation, Definitions, WindowedFeature};
use super::tile::{FullTile, RangeTile, Ring, SavedRing, SumTile, TileData, TileKind};
use super::{AggregateError, Recorded};
use crate::events::{Entry, Position};
use crate::features::{FeatureSpec, FeatureStore, FeatureValue, FeatureView, StoreError, Timestamp};
use crate::sync::lock;
use crate::value::{Value, ValueType};

/// Lock shards per stream: writers of different keys rarely wait for each other.
const SHARDS: usize = 64;
/// Every this many events a shard drops the keys whose windows have all expired.
const SWEEP_EVERY: u64 = 1 << 16;

/// A feature resolved against its stream.
#[derive(Debug)]
struct FeatureSlot {
    name: String,
    aggregation: Aggregation,
    /// Index of its window length in [`StreamState::tiles`].
    ring: usize,
}

/// A key's rings: one per distinct window length of the stream, held in the map's
/// entry for up to three lengths (one pointer less to follow per event).
#[derive(Debug, Clone)]
struct KeyState<T: TileData> {
    rings: SmallVec<[Ring<T>; 3]>,
}

/// An entity key as a shard's map holds it: up to 23 bytes in the map's entry itself
/// (most ids), longer ones on the heap. A lookup compares the bytes in the entry it has
/// already loaded instead of following a pointer to a `String`'s buffer: that second
/// cache miss was a sixth of an event's cost.
enum Key {
    Inline { len: u8, bytes: [u8; Key::INLINE] },
    Heap(Box<str>),
}

impl Key {
    const INLINE: usize = 23;

    fn new(key: &str) -> Self {
        let mut bytes = [0; Key::INLINE];
        match bytes.get_mut(..key.len()) {
            Some(head) => {
                head.copy_from_slice(key.as_bytes());
                Key::Inline { len: key.len() as u8, bytes }
            }
            None => Key::Heap(key.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(key) => key.as_bytes(),
        }
    }

    /// The key as text (it was made from a `&str`, so nothing is ever replaced).
    fn to_text(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }
}

impl std::borrow::Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

// Hash and equality are those of the bytes, as `Borrow<[u8]>` requires.
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.to_text(), f)
    }
}

#[derive(Debug)]
struct Shard<T: TileData> {
    /// foldhash rather than SipHash: the lookup is most of an event's cost, and its
    /// per-map random seed still keeps chosen keys from colliding on purpose.
    keys: HashMap<Key, KeyState<T>, foldhash::fast::RandomState>,
    since_sweep: u64,
    /// Events accepted into this shard (counted under its lock: a shared atomic
    /// counter was a locked instruction per event).
    accepted: u64,
}

impl<T: TileData> Default for Shard<T> {
    fn default() -> Self {
        Shard { keys: HashMap::default(), since_sweep: 0, accepted: 0 }
    }
}

/// A stream's shards, typed by the tiles its features need ([`TileKind`]).
#[derive(Debug)]
enum Shards {
    Sums(Box<[Mutex<Shard<SumTile>>]>),
    Ranges(Box<[Mutex<Shard<RangeTile>>]>),
    Full(Box<[Mutex<Shard<FullTile>>]>),
}

/// Runs `$body` with `$shards` bound to the shards of whichever tile kind `$s` holds.
macro_rules! with_shards {
    ($s:expr, $shards:ident => $body:expr) => {
        match &$s.shards {
            Shards::Sums($shards) => $body,
            Shards::Ranges($shards) => $body,
            Shards::Full($shards) => $body,
        }
    };
}

impl Shards {
    fn new(kind: TileKind) -> Self {
        fn make<T: TileData>() -> Box<[Mutex<Shard<T>>]> {
            (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect()
        }
        match kind {
            TileKind::Sums => Shards::Sums(make()),
            TileKind::Ranges => Shards::Ranges(make()),
            TileKind::Full => Shards::Full(make()),
        }
    }
}

#[derive(Debug)]
struct StreamState {
    name: String,
    view: Arc<FeatureView>,
    tolerance: i64,
    /// Tile length (µs) of each distinct window length.
    tiles: Vec<i64>,
    /// Whether a ring keeps distinct-count registers.
    distinct: Vec<bool>,
    features: Vec<FeatureSlot>,
    /// Latest accepted event time: the late-event rule's reference.
    latest: AtomicI64,
    shards: Shards,
    late: AtomicU64,
    future: AtomicU64,
}

/// Counters of a stream's events, for monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamStats {
    /// Events that count.
    pub accepted: u64,
    /// Events dropped for arriving beyond the late tolerance.
    pub late: u64,
    /// Events dropped for being dated after their arrival.
    pub future: u64,
    /// Keys currently holding state.
    pub keys: usize,
}

/// Windowed aggregates kept in memory: `record_event` as events arrive, read them as
/// features (it is a [`FeatureStore`], one view per stream).
///
/// A window of length `W` is 60 tiles of `W / 60`: a read at time `t` covers the tile
/// holding `t` and the 59 before it, so between `59/60 · W` and `W` of history, always
/// the same tiles for the same `t`, online and offline. Memory per key and window is at
/// most 60 tiles (a few KiB), and keys whose windows have emptied are dropped.
///
/// Reads see the events recorded before them. An event dated after its arrival
/// (a clock ahead of this one) is dropped and counted, so a read at `t` never sees an
/// event later than `t`.
///
/// ```
/// use std::time::Duration;
/// use fresco::Timestamp;
/// use fresco::aggregates::{AggregateStore, Aggregation, Definitions, StreamSpec, WindowedFeature};
///
/// let defs = Definitions::new()
///     .stream(StreamSpec::new("orders", "restaurant_id"))
///     .feature(WindowedFeature::new("orders_30m", "orders", Aggregation::Count, Duration::from_secs(1800)))
///     .feature(WindowedFeature::new("basket_max_30m", "orders", Aggregation::Max, Duration::from_secs(1800)));
/// let store = AggregateStore::new(defs)?;
///
/// let t0 = Timestamp::from_micros(1_700_000_000_000_000);
/// let minutes = |m: i64| Timestamp::from_micros(t0.as_micros() + m * 60_000_000);
/// store.record_event_at(minutes(0), "orders", "r-17", minutes(0), 23.5)?;
/// store.record_event_at(minutes(5), "orders", "r-17", minutes(5), 41.0)?;
/// assert_eq!(store.read("orders_30m", "r-17", minutes(10))?, Some(2.0));
/// assert_eq!(store.read("basket_max_30m", "r-17", minutes(10))?, Some(41.0));
/// assert_eq!(store.read("orders_30m", "r-17", minutes(60))?, Some(0.0));
/// # Ok::<(), fresco::aggregates::AggregateError>(())
/// ```
#[derive(Debug)]
pub struct AggregateStore {
    definitions: Definitions,
    streams: Vec<StreamState>,
    /// Feature name → (stream, feature slot).
    features: HashMap<String, (usize, usize)>,
    /// The last event-stream entry applied ([`apply`](Self::apply)).
    position: Mutex<Option<Position>>,
    /// Why reads are refused (a follower that fell behind a trimmed stream), if they
    /// are: one atomic load on the read path.
    unavailable: arc_swap::ArcSwapOption<String>,
}

/// What [`AggregateStore::apply`] did with a run of stream entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// Entries that counted.
    pub accepted: u64,
    /// Dropped as late.
    pub late: u64,
    /// Dropped as dated after their arrival.
    pub future: u64,
    /// At or before the store's position: applied before, skipped.
    pub duplicate: u64,
    /// Skipped because no reader can apply them (unreadable, an undeclared stream, a
    /// value that is not finite).
    pub unusable: u64,
}

impl Applied {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: Applied) {
        self.accepted += other.accepted;
        self.late += other.late;
        self.future += other.future;
        self.duplicate += other.duplicate;
        self.unusable += other.unusable;
    }
}

/// The rule every event meets, online and in a marking pass: dated after its arrival is
/// `Future`; more than `tolerance` behind the latest accepted event time is `Late`.
pub(super) fn classify(ts: i64, arrival: i64, latest: i64, tolerance: i64) -> Recorded {
    if ts > arrival {
        Recorded::Future
    } else if ts < latest.saturating_sub(tolerance) {
        Recorded::Late
    } else {
        Recorded::Accepted
    }
}

impl StreamState {
    /// Events accepted, all shards together.
    fn accepted(&self) -> u64 {
        with_shards!(self, shards => shards.iter().fold(0u64, |n, m| n.saturating_add(lock(m).accepted)))
    }

    /// Keys holding state, all shards together.
    fn keys(&self) -> usize {
        with_shards!(self, shards => shards.iter().map(|m| lock(m).keys.len()).sum())
    }

    /// Adds an accepted event at `ts` (µs) to `key`'s rings.
    fn add<T: TileData>(&self, shards: &[Mutex<Shard<T>>], key: &str, ts: i64, value: f64) {
        let mut shard = lock(&shards[shard_of(key)]);
        let state = match shard.keys.get_mut(key.as_bytes()) {
            Some(state) => state,
            None => shard
                .keys
                .entry(Key::new(key))
                .or_insert_with(|| KeyState { rings: smallvec::smallvec![Ring::default(); self.tiles.len()] }),
        };
        for ((ring, &tile), &distinct) in state.rings.iter_mut().zip(&self.tiles).zip(&self.distinct) {
            ring.add(tile, ts, value, distinct);
        }
        shard.accepted = shard.accepted.saturating_add(1);
        shard.since_sweep += 1;
        if shard.since_sweep >= SWEEP_EVERY {
            shard.since_sweep = 0;
            let now = self.latest.load(Ordering::Relaxed);
            shard.keys.retain(|_, k| !k.rings.iter().zip(&self.tiles).all(|(r, &tile)| r.expired(tile, now)));
        }
    }

    /// `f` of `key` at `now` (µs).
    fn read<T: TileData>(&self, shards: &[Mutex<Shard<T>>], f: &FeatureSlot, key: &str, now: i64) -> Option<f64> {
        let mut shard = lock(&shards[shard_of(key)]);
        let tile = self.tiles[f.ring];
        match shard.keys.get_mut(key.as_bytes()) {
            Some(state) if f.aggregation == Aggregation::ApproxDistinct => {
                Some(state.rings[f.ring].read_distinct(tile, now))
            }
            Some(state) => state.rings[f.ring].read(tile, now, f.aggregation),
            None => Ring::<T>::default().read(tile, now, f.aggregation),
        }
    }

    /// Every key's rings as a snapshot stores them (each shard consistent).
    fn saved_keys(&self) -> Vec<(String, Vec<SavedRing>)> {
        with_shards!(self, shards => shards
            .iter()
            .flat_map(|m| {
                let shard = lock(m);
                shard
                    .keys
                    .iter()
                    .map(|(k, v)| (k.to_text(), v.rings.iter().map(Ring::to_saved).collect()))
                    .collect::<Vec<_>>()
            })
            .collect())
    }

    /// Restores a snapshot's counters and keys into this (empty) stream.
    fn restore(&self, saved: SnapshotStream) -> Result<(), AggregateError> {
        self.latest.store(saved.latest, Ordering::Relaxed);
        self.late.store(saved.counters[1], Ordering::Relaxed);
        self.future.store(saved.counters[2], Ordering::Relaxed);
        with_shards!(self, shards => {
            lock(&shards[0]).accepted = saved.counters[0];
            for (key, rings) in saved.keys {
                let rings: SmallVec<[Ring<_>; 3]> = rings.into_iter().map(Ring::from).collect();
                let rings_fit = rings.len() == self.tiles.len()
                    && rings.iter().zip(&self.distinct).all(|(ring, &distinct)| ring.is_well_formed(distinct));
                if !rings_fit {
                    return Err(AggregateError::Snapshot { reason: format!("key `{key}` has the wrong rings") });
                }
                lock(&shards[shard_of(&key)]).keys.insert(Key::new(&key), KeyState { rings });
            }
        });
        Ok(())
    }
}

fn shard_of(key: &str) -> usize {
    (crate::log::fnv1a(key.as_bytes()) % SHARDS as u64) as usize
}

impl AggregateStore {
    /// An empty store for `definitions` (validated).
    pub fn new(definitions: Definitions) -> Result<Self, AggregateError> {
        definitions.validate()?;
        let mut streams = Vec::new();
        let mut features = HashMap::new();
        for spec in &definitions.streams {
            let mine: Vec<&WindowedFeature> = definitions.features.iter().filter(|f| f.stream == spec.name).collect();
            let mut tiles: Vec<i64> = Vec::new();
            let mut distinct: Vec<bool> = Vec::new();
            let mut slots = Vec::new();
            for f in &mine {
                let tile = f.tile_micros();
                let ring = tiles.iter().position(|&t| t == tile).unwrap_or_else(|| {
                    tiles.push(tile);
                    distinct.push(false);
                    tiles.len() - 1
                });
                distinct[ring] |= f.aggregation == Aggregation::ApproxDistinct;
                features.insert(f.name.clone(), (streams.len(), slots.len()));
                slots.push(FeatureSlot { name: f.name.clone(), aggregation: f.aggregation, ring });
            }
            let kind = mine.iter().map(|f| TileKind::serving(f.aggregation)).max().unwrap_or(TileKind::Sums);
            let mut view = FeatureView::new(&spec.name, &spec.entity);
            view.features = mine.iter().map(|f| FeatureSpec { name: f.name.clone(), ty: ValueType::F64 }).collect();
            streams.push(StreamState {
                name: spec.name.clone(),
                view: Arc::new(view),
                tolerance: spec.tolerance_micros(),
                tiles,
                distinct,
                features: slots,
                latest: AtomicI64::new(i64::MIN),
                shards: Shards::new(kind),
                late: AtomicU64::new(0),
                future: AtomicU64::new(0),
            });
        }
        Ok(AggregateStore {
            definitions,
            streams,
            features,
            position: Mutex::new(None),
            unavailable: arc_swap::ArcSwapOption::empty(),
        })
    }

    /// The definitions it was built from.
    pub fn definitions(&self) -> &Definitions {
        &self.definitions
    }

    fn stream(&self, name: &str) -> Result<&StreamState, AggregateError> {
        self.streams
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| AggregateError::UnknownStream { stream: name.to_owned() })
    }

    /// Records an event arriving now (the wall clock): `value` is what sums, means,
    /// minima and maxima are taken of (use 1.0 for a stream that is only counted).
    pub fn record_event(&self, stream: &str, key: &str, ts: Timestamp, value: f64) -> Result<Recorded, AggregateError> {
        self.record_event_at(Timestamp::now(), stream, key, ts, value)
    }

    /// Records an event that arrived at `arrival` (for replays and tests; the offline
    /// path replays an event log through this).
    pub fn record_event_at(
        &self,
        arrival: Timestamp,
        stream: &str,
        key: &str,
        ts: Timestamp,
        value: f64,
    ) -> Result<Recorded, AggregateError> {
        let s = self.stream(stream)?;
        if !value.is_finite() {
            return Err(AggregateError::InvalidValue { stream: stream.to_owned(), key: key.to_owned(), value });
        }
        let ts = ts.as_micros();
        match classify(ts, arrival.as_micros(), s.latest.load(Ordering::Relaxed), s.tolerance) {
            Recorded::Accepted => {}
            Recorded::Future => {
                s.future.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("fresco_aggregate_events_dropped_total", "stream" => stream.to_owned(), "reason" => "future")
                    .increment(1);
                return Ok(Recorded::Future);
            }
            Recorded::Late => {
                s.late.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("fresco_aggregate_events_dropped_total", "stream" => stream.to_owned(), "reason" => "late")
                    .increment(1);
                return Ok(Recorded::Late);
            }
        }
        if ts > s.latest.load(Ordering::Relaxed) {
            s.latest.fetch_max(ts, Ordering::Relaxed);
        }
        with_shards!(s, shards => s.add(shards, key, ts, value));
        Ok(Recorded::Accepted)
    }

    /// Applies event-stream entries in order, each once: an entry at or before the
    /// store's [`position`](Self::position) is a duplicate and changes nothing; the
    /// others are recorded as arriving at their [`Entry::arrival`] (never this
    /// process's clock), so every store that applies the same stream holds the same
    /// state. One writer at a time ([`Follower`](crate::events::Follower) is the one).
    ///
    /// An entry no store can apply (see [`Applied::unusable`]) is skipped, counted and
    /// logged; it still moves the position.
    pub fn apply(&self, entries: &[Entry]) -> Applied {
        let mut done = Applied::default();
        let mut position = lock(&self.position);
        for entry in entries {
            if position.is_some_and(|p| entry.position <= p) {
                done.duplicate += 1;
                continue;
            }
            *position = Some(entry.position);
            let outcome = match &entry.event {
                Ok(e) => {
                    self.record_event_at(entry.arrival, &e.stream, &e.key, e.ts, e.value).map_err(|e| e.to_string())
                }
                Err(reason) => Err(reason.clone()),
            };
            match outcome {
                Ok(Recorded::Accepted) => done.accepted += 1,
                Ok(Recorded::Late) => done.late += 1,
                Ok(Recorded::Future) => done.future += 1,
                Err(reason) => {
                    done.unusable += 1;
                    tracing::warn!(position = %entry.position, %reason, "event-stream entry skipped");
                }
            }
        }
        done
    }

    /// The last event-stream entry this store reflects (`None`: none applied).
    pub fn position(&self) -> Option<Position> {
        *lock(&self.position)
    }

    /// Refuses reads with `reason` (`Some`), or serves them again (`None`): a follower
    /// that cannot go on from the stream says so rather than serve counts that miss
    /// events.
    pub fn set_unavailable(&self, reason: Option<String>) {
        self.unavailable.store(reason.map(Arc::new));
    }

    fn check_available(&self) -> Result<(), String> {
        match self.unavailable.load().as_deref() {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    /// The value of `feature` for `key` at time `now`; `None` where the aggregation has
    /// no value for an empty window (mean, min, max, last).
    pub fn read(&self, feature: &str, key: &str, now: Timestamp) -> Result<Option<f64>, AggregateError> {
        let &(stream, slot) =
            self.features.get(feature).ok_or_else(|| AggregateError::UnknownFeature { feature: feature.to_owned() })?;
        self.check_available().map_err(|reason| AggregateError::Unavailable { reason })?;
        let s = &self.streams[stream];
        let f = &s.features[slot];
        Ok(read_slot(s, f, key, now))
    }

    /// Counters of a stream.
    pub fn stats(&self, stream: &str) -> Result<StreamStats, AggregateError> {
        let s = self.stream(stream)?;
        Ok(StreamStats {
            accepted: s.accepted(),
            late: s.late.load(Ordering::Relaxed),
            future: s.future.load(Ordering::Relaxed),
            keys: s.keys(),
        })
    }

    /// The whole state as bytes (each shard consistent; writers wait one shard at a
    /// time). See [`restore`](Self::restore).
    pub fn snapshot(&self) -> Result<Vec<u8>, AggregateError> {
        let streams = self
            .streams
            .iter()
            .map(|s| SnapshotStream {
                name: s.name.clone(),
                latest: s.latest.load(Ordering::Relaxed),
                counters: [s.accepted(), s.late.load(Ordering::Relaxed), s.future.load(Ordering::Relaxed)],
                keys: s.saved_keys(),
            })
            .collect();
        let snapshot =
            Snapshot { version: SNAPSHOT_VERSION, fingerprint: self.fingerprint(), position: self.position(), streams };
        let mut bytes =
            postcard::to_allocvec(&snapshot).map_err(|e| AggregateError::Snapshot { reason: e.to_string() })?;
        // A checksum trailer: a damaged snapshot is refused rather than restored into
        // windows that silently count the wrong thing.
        let checksum = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        Ok(bytes)
    }

    /// A store for `definitions` holding the state of a [`snapshot`](Self::snapshot).
    /// The definitions must be the ones the snapshot was taken with.
    pub fn restore(definitions: Definitions, bytes: &[u8]) -> Result<Self, AggregateError> {
        let store = AggregateStore::new(definitions)?;
        let damaged = |reason: String| AggregateError::Snapshot { reason };
        let split = bytes.len().checked_sub(4).ok_or_else(|| damaged(format!("{} bytes: too short", bytes.len())))?;
        let (payload, trailer) = bytes.split_at(split);
        let mut checksum = [0; 4];
        checksum.copy_from_slice(trailer);
        if crc32fast::hash(payload) != u32::from_le_bytes(checksum) {
            return Err(damaged("damaged: the checksum does not match".into()));
        }
        // The version first: another version's fields need not decode as this one's.
        let (version, _) =
            postcard::take_from_bytes::<u32>(payload).map_err(|e| damaged(format!("unreadable: {e}")))?;
        if !(OLDEST_SNAPSHOT_VERSION..=SNAPSHOT_VERSION).contains(&version) {
            return Err(AggregateError::Snapshot {
                reason: format!(
                    "format version {version}; this build reads versions {OLDEST_SNAPSHOT_VERSION} to {SNAPSHOT_VERSION}"
                ),
            });
        }
        let snapshot: Snapshot = postcard::from_bytes(payload).map_err(|e| damaged(format!("unreadable: {e}")))?;
        if snapshot.fingerprint != store.fingerprint() {
            return Err(AggregateError::Snapshot { reason: "taken with other stream or feature definitions".into() });
        }
        *lock(&store.position) = snapshot.position;
        for saved in snapshot.streams {
            store.stream(&saved.name)?.restore(saved)?;
        }
        Ok(store)
    }

    /// A stream, as a feature view.
    fn stream_view(&self, view: &str) -> Result<&StreamState, StoreError> {
        self.streams.iter().find(|s| s.name == view).ok_or_else(|| StoreError::UnknownView { view: view.to_owned() })
    }

    /// What a snapshot depends on: every stream and feature, written out field by
    /// field (not through `Debug`, whose format may change between versions).
    fn fingerprint(&self) -> u64 {
        let mut text = String::new();
        for s in &self.definitions.streams {
            text += &format!("stream {} {} {}\n", s.name, s.entity, s.late_tolerance.as_micros());
        }
        for f in &self.definitions.features {
            text += &format!("feature {} {} {} {}\n", f.name, f.stream, f.aggregation.name(), f.window.as_micros());
        }
        crate::log::fnv1a(text.as_bytes())
    }
}

fn read_slot(s: &StreamState, f: &FeatureSlot, key: &str, now: Timestamp) -> Option<f64> {
    with_shards!(s, shards => s.read(shards, f, key, now.as_micros()))
}

/// 2: a CRC-32 trailer. 3: the event-stream position. 4: tiles keep only what their
/// stream's aggregations read; the fields they do not keep are saved empty (a version 3
/// snapshot, every field kept, still restores).
const SNAPSHOT_VERSION: u32 = 4;
/// The oldest version this build restores.
const OLDEST_SNAPSHOT_VERSION: u32 = 3;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    fingerprint: u64,
    position: Option<Position>,
    streams: Vec<SnapshotStream>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotStream {
    name: String,
    latest: i64,
    counters: [u64; 3],
    keys: Vec<(String, Vec<SavedRing>)>,
}

impl FeatureStore for AggregateStore {
    fn view(&self, view: &str) -> Result<Arc<FeatureView>, StoreError> {
        Ok(self.stream_view(view)?.view.clone())
    }

    fn get_features(
        &self,
        view: &str,
        entity_keys: &[&str],
        features: &[&str],
        now: Timestamp,
    ) -> Result<Vec<Vec<FeatureValue>>, StoreError> {
        let s = self.stream_view(view)?;
        self.check_available().map_err(|reason| StoreError::Unavailable { reason })?;
        let slots = features
            .iter()
            .map(|name| {
                s.features
                    .iter()
                    .find(|f| f.name == *name)
                    .ok_or_else(|| StoreError::UnknownFeature { view: view.to_owned(), feature: (*name).to_owned() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(entity_keys
            .iter()
            .map(|key| {
                slots
                    .iter()
                    .map(|f| match read_slot(s, f, key, now) {
                        Some(x) => FeatureValue::present(Value::F64(x), now),
                        None => FeatureValue::missing(),
                    })
                    .collect()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::aggregates::StreamSpec;

    #[test]
    fn keys_short_and_long_are_told_apart_and_survive_a_snapshot() {
        let defs = || {
            Definitions::new().stream(StreamSpec::new("orders", "restaurant_id")).feature(WindowedFeature::new(
                "orders_30m",
                "orders",
                Aggregation::Count,
                Duration::from_secs(1800),
            ))
        };
        let store = AggregateStore::new(defs()).unwrap();
        let inline = "k".repeat(Key::INLINE);
        // Keys around the inline limit, one a prefix of another, and multi-byte text.
        let keys = ["", "a", "ab", inline.as_str(), &format!("{inline}k"), &"é".repeat(40)].map(str::to_owned);
        let t = Timestamp::from_micros(1_764_201_600_000_000);
        for (n, key) in keys.iter().enumerate() {
            for _ in 0..=n {
                store.record_event_at(t, "orders", key, t, 1.0).unwrap();
            }
        }
        let restored = AggregateStore::restore(defs(), &store.snapshot().unwrap()).unwrap();
        for s in [&store, &restored] {
            for (n, key) in keys.iter().enumerate() {
                assert_eq!(s.read("orders_30m", key, t).unwrap(), Some((n + 1) as f64), "key {key:?}");
            }
            assert_eq!(s.read("orders_30m", "abc", t).unwrap(), Some(0.0));
            assert_eq!(s.stats("orders").unwrap().keys, keys.len());
        }
    }

    /// Version 3 snapshots kept every field of every tile, as version 4 does for a
    /// stream with `last` or distinct counts: they restore; a newer version is refused.
    #[test]
    fn version_3_snapshots_restore_and_newer_ones_are_refused() {
        let defs = || {
            Definitions::new().stream(StreamSpec::new("orders", "restaurant_id")).feature(WindowedFeature::new(
                "last_30m",
                "orders",
                Aggregation::Last,
                Duration::from_secs(1800),
            ))
        };
        let store = AggregateStore::new(defs()).unwrap();
        let t = Timestamp::from_micros(1_764_201_600_000_000);
        store.record_event_at(t, "orders", "r-1", t, 4.5).unwrap();
        let with_version = |version: u8| {
            let mut bytes = store.snapshot().unwrap();
            assert_eq!(bytes[0], SNAPSHOT_VERSION as u8, "the version leads, one byte");
            bytes[0] = version;
            let end = bytes.len() - 4;
            let checksum = crc32fast::hash(&bytes[..end]);
            bytes[end..].copy_from_slice(&checksum.to_le_bytes());
            AggregateStore::restore(defs(), &bytes)
        };
        assert_eq!(with_version(3).unwrap().read("last_30m", "r-1", t).unwrap(), Some(4.5));
        let refused = with_version(5).unwrap_err().to_string();
        assert!(refused.contains("format version 5"), "{refused}");
    }

    /// Each stream's tiles are of the least kind that serves its features.
    #[test]
    fn a_stream_keeps_the_tiles_its_features_need() {
        let defs = Definitions::new()
            .stream(StreamSpec::new("orders", "restaurant_id"))
            .stream(StreamSpec::new("baskets", "restaurant_id"))
            .stream(StreamSpec::new("visits", "restaurant_id"))
            .feature(WindowedFeature::new("orders", "orders", Aggregation::Mean, Duration::from_secs(60)))
            .feature(WindowedFeature::new("basket_max", "baskets", Aggregation::Max, Duration::from_secs(60)))
            .feature(WindowedFeature::new("basket_sum", "baskets", Aggregation::Sum, Duration::from_secs(600)))
            .feature(WindowedFeature::new("visitors", "visits", Aggregation::ApproxDistinct, Duration::from_secs(60)));
        let store = AggregateStore::new(defs).unwrap();
        let kinds: Vec<&str> = store
            .streams
            .iter()
            .map(|s| match s.shards {
                Shards::Sums(_) => "sums",
                Shards::Ranges(_) => "ranges",
                Shards::Full(_) => "full",
            })
            .collect();
        assert_eq!(kinds, ["sums", "ranges", "full"]);
    }
}
