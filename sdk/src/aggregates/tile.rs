//! Tiles: the summary of one key's events in one time slice, and the sliding window
//! as a short run of tiles.
//!
//! A tile keeps only what its stream's aggregations read ([`TileKind`]): counts, sums
//! and means need 24 bytes a tile, minima and maxima 40, the latest value and distinct
//! counts a whole cache line. Most events touch a key's newest tiles and, when a tile
//! fills, one slot of its ring: the smaller the tile, the fewer cache lines an event
//! misses on.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::definition::{Aggregation, TILES_PER_WINDOW};

/// HyperLogLog registers per tile (precision 8).
const HLL_REGISTERS: usize = 256;

/// What a stream's tiles keep, from the aggregations of its features: the first kind
/// that serves them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TileKind {
    /// Count and sum: `count`, `sum`, `mean`.
    Sums,
    /// And the smallest and largest value: `min`, `max`.
    Ranges,
    /// And the latest value and distinct-count registers: `last`, `approx_distinct`.
    Full,
}

impl TileKind {
    /// The least a tile must keep for `aggregation`.
    pub(crate) fn serving(aggregation: Aggregation) -> TileKind {
        match aggregation {
            Aggregation::Count | Aggregation::Sum | Aggregation::Mean => TileKind::Sums,
            Aggregation::Min | Aggregation::Max => TileKind::Ranges,
            Aggregation::Last | Aggregation::ApproxDistinct => TileKind::Full,
        }
    }
}

/// One kind of tile. Accessors of what a kind does not keep answer NaN (or no
/// registers): a store never reads them, since it picks the kind from its features.
pub(crate) trait TileData: Clone + std::fmt::Debug + Send + 'static {
    /// What this tile keeps.
    const KIND: TileKind;
    /// What a ring of these tiles caches between reads: nothing, or the merged
    /// distinct-count registers ([`MergedRegisters`]).
    type Merged: Clone + std::fmt::Debug + Default + Send + 'static;
    /// The newest tile of a ring that has none yet (no events: `count` 0).
    const VACANT: Self;
    /// An empty tile for slice `index`, with registers when the ring counts distinct values.
    fn empty(index: i64, distinct: bool) -> Self;
    /// `event_ts.div_euclid(tile length)`.
    fn index(&self) -> i64;
    fn count(&self) -> u64;
    fn sum(&self) -> f64;
    fn min(&self) -> f64 {
        f64::NAN
    }
    fn max(&self) -> f64 {
        f64::NAN
    }
    fn last(&self) -> f64 {
        f64::NAN
    }
    fn registers(&self) -> Option<&[u8; HLL_REGISTERS]> {
        None
    }
    /// Counts an event at `ts` (µs) with `value`.
    fn add(&mut self, ts: i64, value: f64);
    /// Whether a tile read from a snapshot is one that [`add`](Self::add) could have built.
    fn is_well_formed(&self, distinct: bool) -> bool;
    /// From a snapshot's tile (fields this kind does not keep are dropped).
    fn from_saved(saved: SavedTile) -> Self;
    /// As a snapshot stores it (fields this kind does not keep are empty).
    fn to_saved(&self) -> SavedTile;
    /// Keeps a ring's cache current after an event with `value` landed in tile `index`
    /// of a ring whose newest tile is now `newest`.
    fn note(_merged: &mut Self::Merged, _newest: i64, _index: i64, _value: f64) {}
    /// An approximate distinct count read through the ring's cache.
    fn read_distinct(ring: &mut Ring<Self>, tile: i64, now: i64) -> f64 {
        ring.read(tile, now, Aggregation::ApproxDistinct).unwrap_or(0.0)
    }
}

/// A tile of a stream whose features are counts, sums and means.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SumTile {
    index: i64,
    count: u64,
    sum: f64,
}

impl TileData for SumTile {
    const KIND: TileKind = TileKind::Sums;
    type Merged = ();
    const VACANT: Self = SumTile { index: i64::MIN, count: 0, sum: 0.0 };

    fn empty(index: i64, _distinct: bool) -> Self {
        SumTile { index, ..Self::VACANT }
    }
    fn index(&self) -> i64 {
        self.index
    }
    fn count(&self) -> u64 {
        self.count
    }
    fn sum(&self) -> f64 {
        self.sum
    }
    fn add(&mut self, _ts: i64, value: f64) {
        self.count += 1;
        self.sum += value;
    }
    fn is_well_formed(&self, distinct: bool) -> bool {
        !distinct && !self.sum.is_nan()
    }
    fn from_saved(saved: SavedTile) -> Self {
        SumTile { index: saved.index, count: saved.count, sum: saved.sum }
    }
    fn to_saved(&self) -> SavedTile {
        SavedTile { index: self.index, count: self.count, sum: self.sum, ..SavedTile::EMPTY }
    }
}

/// A tile of a stream that also has minima or maxima.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RangeTile {
    sums: SumTile,
    min: f64,
    max: f64,
}

impl TileData for RangeTile {
    const KIND: TileKind = TileKind::Ranges;
    type Merged = ();
    const VACANT: Self = RangeTile { sums: SumTile::VACANT, min: f64::INFINITY, max: f64::NEG_INFINITY };

    fn empty(index: i64, distinct: bool) -> Self {
        RangeTile { sums: SumTile::empty(index, distinct), ..Self::VACANT }
    }
    fn index(&self) -> i64 {
        self.sums.index
    }
    fn count(&self) -> u64 {
        self.sums.count
    }
    fn sum(&self) -> f64 {
        self.sums.sum
    }
    fn min(&self) -> f64 {
        self.min
    }
    fn max(&self) -> f64 {
        self.max
    }
    fn add(&mut self, ts: i64, value: f64) {
        self.sums.add(ts, value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }
    fn is_well_formed(&self, distinct: bool) -> bool {
        self.sums.is_well_formed(distinct) && (self.sums.count == 0 || self.min <= self.max)
    }
    fn from_saved(saved: SavedTile) -> Self {
        RangeTile { min: saved.min, max: saved.max, sums: SumTile::from_saved(saved) }
    }
    fn to_saved(&self) -> SavedTile {
        SavedTile { min: self.min, max: self.max, ..self.sums.to_saved() }
    }
}

/// A tile that keeps everything: one cache line.
#[derive(Debug, Clone, PartialEq)]
#[repr(align(64))]
pub(crate) struct FullTile {
    range: RangeTile,
    last_ts: i64,
    last: f64,
    /// Registers for approximate distinct counts, when a feature asks for them (boxed:
    /// a tile stays one cache line).
    hll: Option<Box<[u8; HLL_REGISTERS]>>,
}

impl TileData for FullTile {
    const KIND: TileKind = TileKind::Full;
    type Merged = MergedRegisters;
    const VACANT: Self = FullTile { range: RangeTile::VACANT, last_ts: i64::MIN, last: f64::NAN, hll: None };

    fn empty(index: i64, distinct: bool) -> Self {
        FullTile {
            range: RangeTile::empty(index, false),
            hll: distinct.then(|| Box::new([0; HLL_REGISTERS])),
            ..Self::VACANT
        }
    }
    fn index(&self) -> i64 {
        self.range.index()
    }
    fn count(&self) -> u64 {
        self.range.count()
    }
    fn sum(&self) -> f64 {
        self.range.sum()
    }
    fn min(&self) -> f64 {
        self.range.min
    }
    fn max(&self) -> f64 {
        self.range.max
    }
    fn last(&self) -> f64 {
        self.last
    }
    fn registers(&self) -> Option<&[u8; HLL_REGISTERS]> {
        self.hll.as_deref()
    }
    fn add(&mut self, ts: i64, value: f64) {
        self.range.add(ts, value);
        // Ties go to the event recorded last.
        if ts >= self.last_ts {
            self.last_ts = ts;
            self.last = value;
        }
        if let Some(registers) = &mut self.hll {
            let (register, rank) = hll_slot(value);
            registers[register] = registers[register].max(rank);
        }
    }
    fn is_well_formed(&self, distinct: bool) -> bool {
        self.range.is_well_formed(false)
            && self.hll.is_some() == distinct
            && (self.count() == 0 || !self.last.is_nan())
            && self.hll.as_ref().is_none_or(|r| r.iter().all(|&rank| rank <= 57))
    }
    fn from_saved(mut saved: SavedTile) -> Self {
        FullTile {
            last_ts: saved.last_ts,
            last: saved.last,
            hll: saved.hll.take(),
            range: RangeTile::from_saved(saved),
        }
    }
    fn to_saved(&self) -> SavedTile {
        SavedTile { last_ts: self.last_ts, last: self.last, hll: self.hll.clone(), ..self.range.to_saved() }
    }
    fn note(merged: &mut MergedRegisters, newest: i64, index: i64, value: f64) {
        let Some(cached) = &mut merged.0 else { return };
        let (last, registers) = &mut **cached;
        // Evicted tiles are older than any window ending at or after the newest tile,
        // so only the window moving past the cached one makes it stale.
        if newest > *last {
            merged.0 = None;
        } else if index > last.saturating_sub(TILES_PER_WINDOW) {
            let (register, rank) = hll_slot(value);
            registers[register] = registers[register].max(rank);
        }
    }
    fn read_distinct(ring: &mut Ring<Self>, tile: i64, now: i64) -> f64 {
        let last = now.div_euclid(tile);
        if let Some(cached) = &ring.merged.0
            && cached.0 == last
        {
            // Debug builds (the tests) check the cache against a fresh merge.
            debug_assert_eq!(Some(hll_estimate(&cached.1)), ring.read(tile, now, Aggregation::ApproxDistinct));
            return hll_estimate(&cached.1);
        }
        let mut cached = Box::new((last, [0u8; HLL_REGISTERS]));
        merge(&mut cached.1, ring.window(last));
        let estimate = hll_estimate(&cached.1);
        ring.merged.0 = Some(cached);
        estimate
    }
}

/// The distinct-count registers merged over the window that ends at tile `.0`: a
/// cache, so that repeated reads of a key do not merge 60 sketches each time. Events
/// landing in that window update it; anything else that could change the merge (the
/// window moving past it) drops it. Not part of snapshots.
#[derive(Debug, Clone, Default)]
pub(crate) struct MergedRegisters(Option<Box<(i64, [u8; HLL_REGISTERS])>>);

/// A tile as snapshots store it, whatever its kind: every field, those a kind does not
/// keep at their empty values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SavedTile {
    index: i64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    last_ts: i64,
    last: f64,
    #[serde(with = "registers")]
    hll: Option<Box<[u8; HLL_REGISTERS]>>,
}

impl SavedTile {
    const EMPTY: SavedTile = SavedTile {
        index: i64::MIN,
        count: 0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        last_ts: i64::MIN,
        last: f64::NAN,
        hll: None,
    };
}

/// Serde for the boxed register array (serde has no impl for arrays this long).
mod registers {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::HLL_REGISTERS;

    pub(super) fn serialize<S: Serializer>(hll: &Option<Box<[u8; HLL_REGISTERS]>>, s: S) -> Result<S::Ok, S::Error> {
        hll.as_deref().map(|r| &r[..]).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<[u8; HLL_REGISTERS]>>, D::Error> {
        let Some(bytes) = Option::<Vec<u8>>::deserialize(d)? else { return Ok(None) };
        let registers: [u8; HLL_REGISTERS] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| serde::de::Error::invalid_length(b.len(), &"256 HyperLogLog registers"))?;
        Ok(Some(Box::new(registers)))
    }
}

/// The HyperLogLog register a value lands in, and its rank there.
fn hll_slot(value: f64) -> (usize, u8) {
    // -0.0 and 0.0 are one value.
    let h = mix64((value + 0.0).to_bits());
    ((h >> 56) as usize, ((h << 8) | 0x80).leading_zeros() as u8 + 1)
}

/// SplitMix64's finalizer: a fast, well-mixed 64-bit hash of the value's bits.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One key's tiles for one window length: at most [`TILES_PER_WINDOW`] tiles behind the
/// newest are kept. Snapshots hold them as one run, oldest first ([`SavedRing`]).
#[derive(Debug, Clone)]
pub(crate) struct Ring<T: TileData> {
    /// The newest tile ([`TileData::VACANT`] in an empty ring), held in the ring
    /// itself: most events land in it, and a key's rings sit side by side in its map
    /// entry, so an event touches no other memory.
    newest: T,
    /// The tiles before it, oldest first.
    older: VecDeque<T>,
    /// What the tile kind caches between reads (nothing for most: no bytes in the ring).
    merged: T::Merged,
}

/// A ring as snapshots store it: its tiles in one run, oldest first.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SavedRing {
    tiles: VecDeque<SavedTile>,
}

impl<T: TileData> From<SavedRing> for Ring<T> {
    fn from(SavedRing { tiles }: SavedRing) -> Self {
        let mut older: VecDeque<T> = tiles.into_iter().map(T::from_saved).collect();
        let newest = older.pop_back().unwrap_or(T::VACANT);
        Ring { newest, older, merged: T::Merged::default() }
    }
}

impl<T: TileData> Default for Ring<T> {
    fn default() -> Self {
        Ring { newest: T::VACANT, older: VecDeque::new(), merged: T::Merged::default() }
    }
}

impl<T: TileData> Ring<T> {
    /// The newest tile, if the ring has any.
    fn newest(&self) -> Option<&T> {
        (self.newest.count() > 0 || !self.older.is_empty()).then_some(&self.newest)
    }

    /// Every tile, oldest first.
    fn tiles(&self) -> impl DoubleEndedIterator<Item = &T> + Clone {
        self.older.iter().chain(self.newest())
    }

    /// The ring as a snapshot stores it: the tiles a window can still cover.
    pub(crate) fn to_saved(&self) -> SavedRing {
        let floor = self.newest.index().saturating_sub(TILES_PER_WINDOW);
        SavedRing { tiles: self.tiles().filter(|t| t.index() > floor).map(T::to_saved).collect() }
    }

    /// Whether a ring read from a snapshot is one that [`add`](Self::add) could have
    /// built: tiles in strictly increasing order within one window's span, each one
    /// well formed for its kind.
    pub(crate) fn is_well_formed(&self, distinct: bool) -> bool {
        let ordered = self.tiles().zip(self.tiles().skip(1)).all(|(a, b)| a.index() < b.index());
        let span = match (self.tiles().next(), self.newest()) {
            (Some(first), Some(last)) => last.index().checked_sub(first.index()).is_some_and(|d| d < TILES_PER_WINDOW),
            _ => true,
        };
        ordered && span && self.tiles().all(|t| t.is_well_formed(distinct))
    }

    /// Adds an event at `ts` (µs) to the tile of length `tile` it falls in.
    pub(crate) fn add(&mut self, tile: i64, ts: i64, value: f64, distinct: bool) {
        let vacant = self.newest().is_none();
        let newest = self.newest.index();
        // Most events fall in the newest tile: tell so with a multiply, not a division.
        let in_newest = !vacant
            && newest.checked_mul(tile).and_then(|start| ts.checked_sub(start)).is_some_and(|d| (0..tile).contains(&d));
        let index = if in_newest { newest } else { ts.div_euclid(tile) };
        let newest = if !vacant && index == newest {
            self.newest.add(ts, value);
            index
        } else if !vacant && index < newest {
            if index <= newest.saturating_sub(TILES_PER_WINDOW) {
                // Older than any window a later read can cover (reads come after the
                // events they see, so never before the newest one).
                return;
            }
            let at = match self.older.iter().rposition(|t| t.index() <= index) {
                Some(i) if self.older[i].index() == index => i,
                Some(i) => {
                    self.older.insert(i + 1, T::empty(index, distinct));
                    i + 1
                }
                None => {
                    self.older.push_front(T::empty(index, distinct));
                    0
                }
            };
            self.older[at].add(ts, value);
            newest
        } else {
            let mut fresh = T::empty(index, distinct);
            fresh.add(ts, value);
            let previous = std::mem::replace(&mut self.newest, fresh);
            if !vacant {
                // Tiles out of every window are dropped only when the deque is full,
                // before it would grow: reading the oldest tile on every new one cost a
                // cache miss per event. Reads stop at the window's start, so the stale
                // tiles are never seen, and at most 64 tiles are kept.
                if self.older.len() == self.older.capacity() {
                    let floor = index.saturating_sub(TILES_PER_WINDOW);
                    while self.older.front().is_some_and(|t| t.index() <= floor) {
                        self.older.pop_front();
                    }
                }
                self.older.push_back(previous);
            }
            index
        };
        // Only rings that keep registers ever cache a merge; the others skip a load.
        if distinct {
            T::note(&mut self.merged, newest, index, value);
        }
    }

    /// Whether nothing newer than tile `index` is kept (the key can be forgotten).
    pub(crate) fn expired(&self, tile: i64, now: i64) -> bool {
        self.newest().is_none_or(|t| t.index() <= now.div_euclid(tile).saturating_sub(TILES_PER_WINDOW))
    }

    /// The tiles of the window ending with tile `last`, newest first, in one pass:
    /// tiles after `last` (a read older than the newest event) are skipped, and the
    /// walk stops at the window's start.
    fn window(&self, last: i64) -> impl Iterator<Item = &T> + Clone {
        // Saturating: tile indices of the clock's first microseconds sit near i64::MIN.
        let first = last.saturating_sub(TILES_PER_WINDOW - 1);
        self.tiles().rev().skip_while(move |t| t.index() > last).take_while(move |t| t.index() >= first)
    }

    /// The aggregation over the window that ends at `now` (µs): the tiles from
    /// `tile(now) − 59` to `tile(now)`. `None` when the window is empty and the
    /// aggregation has no value for an empty window.
    pub(crate) fn read(&self, tile: i64, now: i64, aggregation: Aggregation) -> Option<f64> {
        debug_assert!(TileKind::serving(aggregation) <= T::KIND, "{aggregation:?} read from {:?} tiles", T::KIND);
        let window = self.window(now.div_euclid(tile));
        match aggregation {
            Aggregation::Count => Some(window.fold(0u64, |n, t| n.saturating_add(t.count())) as f64),
            Aggregation::Sum => Some(window.fold(0.0, |acc, t| acc + t.sum())),
            Aggregation::Mean => {
                let (count, sum) = window.fold((0u64, 0.0), |(n, s), t| (n.saturating_add(t.count()), s + t.sum()));
                (count > 0).then(|| sum / count as f64)
            }
            Aggregation::Min => window.filter(|t| t.count() > 0).map(|t| t.min()).reduce(f64::min),
            Aggregation::Max => window.filter(|t| t.count() > 0).map(|t| t.max()).reduce(f64::max),
            Aggregation::Last => window.clone().find(|t| t.count() > 0).map(|t| t.last()),
            Aggregation::ApproxDistinct => {
                let mut registers = [0u8; HLL_REGISTERS];
                merge(&mut registers, window);
                Some(hll_estimate(&registers))
            }
        }
    }

    /// [`read`](Self::read) of an approximate distinct count, through the cache of
    /// merged registers where the tile kind keeps one.
    pub(crate) fn read_distinct(&mut self, tile: i64, now: i64) -> f64 {
        T::read_distinct(self, tile, now)
    }
}

/// Register-wise maximum of the tiles' sketches into `registers`.
fn merge<'a, T: TileData>(registers: &mut [u8; HLL_REGISTERS], tiles: impl Iterator<Item = &'a T>) {
    for hll in tiles.filter_map(|t| t.registers()) {
        for (r, h) in registers.iter_mut().zip(hll) {
            *r = (*r).max(*h);
        }
    }
}

/// The HyperLogLog estimate with linear counting for small cardinalities (Flajolet et
/// al. 2007; the small-range correction of the original paper).
fn hll_estimate(registers: &[u8; HLL_REGISTERS]) -> f64 {
    let m = HLL_REGISTERS as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    // 2^-r, built from its exponent bits (r ≤ 57, so it is a normal number).
    let sum: f64 = registers.iter().map(|&r| f64::from_bits((1023 - u64::from(r)) << 52)).sum();
    let raw = alpha * m * m / sum;
    let zeros = registers.iter().filter(|&&r| r == 0).count();
    if raw <= 2.5 * m && zeros > 0 { (m * (m / zeros as f64).ln()).round() } else { raw.round() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_covers_sixty_tiles_and_evicts_older_ones() {
        let mut ring = Ring::<SumTile>::default();
        for t in 0..200 {
            ring.add(10, t * 10, 1.0, false);
        }
        assert!(ring.tiles().count() <= 65, "at most 64 older tiles and the newest");
        let restored: Ring<SumTile> = ring.to_saved().into();
        assert!(restored.tiles().count() <= TILES_PER_WINDOW as usize, "snapshots keep the window's tiles");
        assert_eq!(ring.read(10, 1995, Aggregation::Count), Some(60.0));
        assert_eq!(ring.read(10, 2500, Aggregation::Count), Some(9.0));
        assert_eq!(ring.read(10, 5000, Aggregation::Count), Some(0.0));
        assert_eq!(ring.read(10, 5000, Aggregation::Mean), None);
    }

    #[test]
    fn events_on_tile_boundaries_land_in_the_tile_they_start() {
        let mut ring = Ring::<SumTile>::default();
        ring.add(10, 0, 1.0, false);
        ring.add(10, 9, 1.0, false);
        ring.add(10, 10, 1.0, false);
        ring.add(10, 19, 1.0, false);
        ring.add(10, 20, 1.0, false);
        // Windows ending at tiles 60, 61 and 62 start at tiles 1, 2 and 3.
        assert_eq!(ring.read(10, 599, Aggregation::Count), Some(5.0));
        assert_eq!(ring.read(10, 600, Aggregation::Count), Some(3.0));
        assert_eq!(ring.read(10, 610, Aggregation::Count), Some(1.0));
        assert_eq!(ring.read(10, 620, Aggregation::Count), Some(0.0));
        // Before zero, tiles round down: -1 is in tile -1, -10 too, -11 in tile -2.
        let mut ring = Ring::<SumTile>::default();
        for ts in [-11, -10, -1] {
            ring.add(10, ts, 1.0, false);
        }
        assert_eq!(ring.read(10, 580, Aggregation::Count), Some(2.0));
        assert_eq!(ring.read(10, 590, Aggregation::Count), Some(0.0));
    }

    #[test]
    fn approx_distinct_is_within_its_error_bound() {
        for n in [1u64, 10, 100, 1_000, 20_000] {
            let mut ring = Ring::<FullTile>::default();
            for i in 0..n * 3 {
                ring.add(1_000, (i % 50) as i64, (i % n) as f64, true);
            }
            let estimate = ring.read(1_000, 0, Aggregation::ApproxDistinct).unwrap();
            assert_eq!(ring.read_distinct(1_000, 0), estimate);
            ring.add(1_000, 10, -1.0, true);
            let fresh = ring.clone().read(1_000, 0, Aggregation::ApproxDistinct).unwrap();
            assert_eq!(ring.read_distinct(1_000, 0), fresh, "the cache follows new events");
            let error = (estimate - n as f64).abs() / n as f64;
            assert!(error < 0.2, "n = {n}: estimate {estimate}");
        }
    }

    /// The point of the kinds: a stream of counts and sums keeps 24 bytes a tile, one
    /// with minima and maxima 40, and only `last` or distinct counts pay a cache line.
    #[test]
    fn a_tile_keeps_only_what_its_kind_serves() {
        assert_eq!(std::mem::size_of::<SumTile>(), 24);
        assert_eq!(std::mem::size_of::<RangeTile>(), 40);
        assert_eq!(std::mem::size_of::<FullTile>(), 64);
        assert_eq!(std::mem::size_of::<Ring<RangeTile>>(), 72, "no cache for rings without distinct counts");
        let kinds = [
            (Aggregation::Count, TileKind::Sums),
            (Aggregation::Sum, TileKind::Sums),
            (Aggregation::Mean, TileKind::Sums),
            (Aggregation::Min, TileKind::Ranges),
            (Aggregation::Max, TileKind::Ranges),
            (Aggregation::Last, TileKind::Full),
            (Aggregation::ApproxDistinct, TileKind::Full),
        ];
        for (aggregation, kind) in kinds {
            assert_eq!(TileKind::serving(aggregation), kind, "{aggregation:?}");
        }
    }

    /// Every kind saves and restores to the same reads, and drops only what it does not
    /// keep.
    #[test]
    fn every_kind_round_trips_through_a_snapshot() {
        fn check<T: TileData>(aggregations: &[Aggregation], distinct: bool) {
            let mut ring = Ring::<T>::default();
            for i in 0..500i64 {
                ring.add(10, (i * 7) % 700 + i, (i % 13) as f64 - 4.0, distinct);
            }
            let restored: Ring<T> = ring.to_saved().into();
            assert!(restored.is_well_formed(distinct), "{:?}", T::KIND);
            for &aggregation in aggregations {
                for now in [600, 1_000, 1_200, 1_300] {
                    assert_eq!(ring.read(10, now, aggregation), restored.read(10, now, aggregation), "{aggregation:?}");
                }
            }
        }
        use Aggregation::*;
        check::<SumTile>(&[Count, Sum, Mean], false);
        check::<RangeTile>(&[Count, Sum, Mean, Min, Max], false);
        check::<FullTile>(&[Count, Sum, Mean, Min, Max, Last, ApproxDistinct], true);
    }
}
