//! Tiles: the summary of one key's events in one time slice, and the sliding window
//! as a short run of tiles.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::definition::{Aggregation, TILES_PER_WINDOW};

/// HyperLogLog registers per tile (precision 8).
const HLL_REGISTERS: usize = 256;

/// Everything the aggregations need about the events of one tile: one cache line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[repr(align(64))]
pub(crate) struct Tile {
    /// `event_ts.div_euclid(tile length)`.
    index: i64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    last_ts: i64,
    last: f64,
    /// Registers for approximate distinct counts, when a feature asks for them (boxed:
    /// a tile stays one cache line).
    #[serde(with = "registers")]
    hll: Option<Box<[u8; HLL_REGISTERS]>>,
}

impl Tile {
    /// The newest tile of a ring that has none yet (no events: `count` 0).
    const VACANT: Tile = Tile {
        index: i64::MIN,
        count: 0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        last_ts: i64::MIN,
        last: f64::NAN,
        hll: None,
    };

    fn empty(index: i64, distinct: bool) -> Self {
        Tile { index, hll: distinct.then(|| Box::new([0; HLL_REGISTERS])), ..Tile::VACANT }
    }

    fn add(&mut self, ts: i64, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
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
/// newest are kept. Snapshots hold them as one run, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "RingTiles", into = "RingTiles")]
pub(crate) struct Ring {
    /// The newest tile ([`Tile::VACANT`] in an empty ring), held in the ring itself and
    /// on a cache line of its own: most events land in it, and a key's rings sit side by
    /// side, so an event touches no other memory.
    newest: Tile,
    /// The tiles before it, oldest first.
    older: VecDeque<Tile>,
    /// The distinct-count registers merged over the window that ends at tile `.0`:
    /// a cache, so that repeated reads of a key do not merge 60 sketches each time.
    /// Events landing in that window update it; anything else that could change the
    /// merge (the window moving past it) drops it. Not part of snapshots.
    merged: Option<(i64, Box<[u8; HLL_REGISTERS]>)>,
}

/// A ring as snapshots store it: its tiles in one run, oldest first.
#[derive(Serialize, Deserialize)]
struct RingTiles {
    tiles: VecDeque<Tile>,
}

impl From<RingTiles> for Ring {
    fn from(RingTiles { mut tiles }: RingTiles) -> Self {
        let newest = tiles.pop_back().unwrap_or(Tile::VACANT);
        Ring { newest, older: tiles, merged: None }
    }
}

impl From<Ring> for RingTiles {
    fn from(ring: Ring) -> Self {
        let has_newest = ring.newest().is_some();
        let floor = ring.newest.index.saturating_sub(TILES_PER_WINDOW);
        let mut tiles = ring.older;
        tiles.retain(|t| t.index > floor);
        if has_newest {
            tiles.push_back(ring.newest);
        }
        RingTiles { tiles }
    }
}

impl Default for Ring {
    fn default() -> Self {
        Ring { newest: Tile::VACANT, older: VecDeque::new(), merged: None }
    }
}

impl Ring {
    /// The newest tile, if the ring has any.
    fn newest(&self) -> Option<&Tile> {
        (self.newest.count > 0 || !self.older.is_empty()).then_some(&self.newest)
    }

    /// Every tile, oldest first.
    fn tiles(&self) -> impl DoubleEndedIterator<Item = &Tile> + Clone {
        self.older.iter().chain(self.newest())
    }

    /// Whether a ring read from a snapshot is one that [`add`](Self::add) could have
    /// built: tiles in strictly increasing order within one window's span, each with
    /// registers exactly when the ring keeps distinct counts, and no NaN in its sums.
    pub(crate) fn is_well_formed(&self, distinct: bool) -> bool {
        let ordered = self.tiles().zip(self.tiles().skip(1)).all(|(a, b)| a.index < b.index);
        let span = match (self.tiles().next(), self.newest()) {
            (Some(first), Some(last)) => last.index.checked_sub(first.index).is_some_and(|d| d < TILES_PER_WINDOW),
            _ => true,
        };
        let tiles_fit = self.tiles().all(|t| {
            t.hll.is_some() == distinct
                && !t.sum.is_nan()
                && (t.count == 0 || (t.min <= t.max && !t.last.is_nan()))
                && t.hll.as_ref().is_none_or(|r| r.iter().all(|&rank| rank <= 57))
        });
        ordered && span && tiles_fit
    }

    /// Adds an event at `ts` (µs) to the tile of length `tile` it falls in.
    pub(crate) fn add(&mut self, tile: i64, ts: i64, value: f64, distinct: bool) {
        let vacant = self.newest().is_none();
        // Most events fall in the newest tile: tell so with a multiply, not a division.
        let in_newest = !vacant
            && self
                .newest
                .index
                .checked_mul(tile)
                .and_then(|start| ts.checked_sub(start))
                .is_some_and(|d| (0..tile).contains(&d));
        let index = if in_newest { self.newest.index } else { ts.div_euclid(tile) };
        let newest = match &mut self.newest {
            t if !vacant && t.index == index => {
                t.add(ts, value);
                index
            }
            t if !vacant && index < t.index => {
                let newest = t.index;
                if index <= newest.saturating_sub(TILES_PER_WINDOW) {
                    // Older than any window a later read can cover (reads come after
                    // the events they see, so never before the newest one).
                    return;
                }
                let at = match self.older.iter().rposition(|t| t.index <= index) {
                    Some(i) if self.older[i].index == index => i,
                    Some(i) => {
                        self.older.insert(i + 1, Tile::empty(index, distinct));
                        i + 1
                    }
                    None => {
                        self.older.push_front(Tile::empty(index, distinct));
                        0
                    }
                };
                self.older[at].add(ts, value);
                newest
            }
            _ => {
                let mut fresh = Tile::empty(index, distinct);
                fresh.add(ts, value);
                let previous = std::mem::replace(&mut self.newest, fresh);
                if !vacant {
                    // Tiles out of every window are dropped only when the deque is full,
                    // before it would grow: reading the oldest tile on every new one cost
                    // a cache miss per event. Reads stop at the window's start, so the
                    // stale tiles are never seen, and at most 64 tiles are kept.
                    if self.older.len() == self.older.capacity() {
                        let floor = index.saturating_sub(TILES_PER_WINDOW);
                        while self.older.front().is_some_and(|t| t.index <= floor) {
                            self.older.pop_front();
                        }
                    }
                    self.older.push_back(previous);
                }
                index
            }
        };
        // Only rings that keep registers ever cache a merge; the others skip a load.
        if distinct && let Some((last, registers)) = &mut self.merged {
            // Evicted tiles are older than any window ending at or after the newest tile,
            // so only the window moving past the cached one makes it stale.
            if newest > *last {
                self.merged = None;
            } else if index > last.saturating_sub(TILES_PER_WINDOW) {
                let (register, rank) = hll_slot(value);
                registers[register] = registers[register].max(rank);
            }
        }
    }

    /// Whether nothing newer than tile `index` is kept (the key can be forgotten).
    pub(crate) fn expired(&self, tile: i64, now: i64) -> bool {
        self.newest().is_none_or(|t| t.index <= now.div_euclid(tile).saturating_sub(TILES_PER_WINDOW))
    }

    /// The tiles of the window ending with tile `last`, newest first, in one pass:
    /// tiles after `last` (a read older than the newest event) are skipped, and the
    /// walk stops at the window's start.
    fn window(&self, last: i64) -> impl Iterator<Item = &Tile> + Clone {
        // Saturating: tile indices of the clock's first microseconds sit near i64::MIN.
        let first = last.saturating_sub(TILES_PER_WINDOW - 1);
        self.tiles().rev().skip_while(move |t| t.index > last).take_while(move |t| t.index >= first)
    }

    /// The aggregation over the window that ends at `now` (µs): the tiles from
    /// `tile(now) − 59` to `tile(now)`. `None` when the window is empty and the
    /// aggregation has no value for an empty window.
    pub(crate) fn read(&self, tile: i64, now: i64, aggregation: Aggregation) -> Option<f64> {
        let window = self.window(now.div_euclid(tile));
        match aggregation {
            Aggregation::Count => Some(window.fold(0u64, |n, t| n.saturating_add(t.count)) as f64),
            Aggregation::Sum => Some(window.fold(0.0, |acc, t| acc + t.sum)),
            Aggregation::Mean => {
                let (count, sum) = window.fold((0u64, 0.0), |(n, s), t| (n.saturating_add(t.count), s + t.sum));
                (count > 0).then(|| sum / count as f64)
            }
            Aggregation::Min => window.filter(|t| t.count > 0).map(|t| t.min).reduce(f64::min),
            Aggregation::Max => window.filter(|t| t.count > 0).map(|t| t.max).reduce(f64::max),
            Aggregation::Last => window.clone().find(|t| t.count > 0).map(|t| t.last),
            Aggregation::ApproxDistinct => {
                let mut registers = [0u8; HLL_REGISTERS];
                merge(&mut registers, window);
                Some(hll_estimate(&registers))
            }
        }
    }
}

impl Ring {
    /// [`read`](Self::read) of an approximate distinct count, through the cache of
    /// merged registers.
    pub(crate) fn read_distinct(&mut self, tile: i64, now: i64) -> f64 {
        let last = now.div_euclid(tile);
        if let Some((cached, registers)) = &self.merged
            && *cached == last
        {
            // Debug builds (the tests) check the cache against a fresh merge.
            debug_assert_eq!(Some(hll_estimate(registers)), self.read(tile, now, Aggregation::ApproxDistinct));
            return hll_estimate(registers);
        }
        let mut registers = Box::new([0u8; HLL_REGISTERS]);
        merge(&mut registers, self.window(last));
        let estimate = hll_estimate(&registers);
        self.merged = Some((last, registers));
        estimate
    }
}

/// Register-wise maximum of the tiles' sketches into `registers`.
fn merge<'a>(registers: &mut [u8; HLL_REGISTERS], tiles: impl Iterator<Item = &'a Tile>) {
    for hll in tiles.filter_map(|t| t.hll.as_deref()) {
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
        let mut ring = Ring::default();
        for t in 0..200 {
            ring.add(10, t * 10, 1.0, false);
        }
        assert!(ring.tiles().count() <= 65, "at most 64 older tiles and the newest");
        let restored: Ring = RingTiles::from(ring.clone()).into();
        assert!(restored.tiles().count() <= TILES_PER_WINDOW as usize, "snapshots keep the window's tiles");
        assert_eq!(ring.read(10, 1995, Aggregation::Count), Some(60.0));
        assert_eq!(ring.read(10, 2500, Aggregation::Count), Some(9.0));
        assert_eq!(ring.read(10, 5000, Aggregation::Count), Some(0.0));
        assert_eq!(ring.read(10, 5000, Aggregation::Max), None);
    }

    #[test]
    fn events_on_tile_boundaries_land_in_the_tile_they_start() {
        let mut ring = Ring::default();
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
        let mut ring = Ring::default();
        for ts in [-11, -10, -1] {
            ring.add(10, ts, 1.0, false);
        }
        assert_eq!(ring.read(10, 580, Aggregation::Count), Some(2.0));
        assert_eq!(ring.read(10, 590, Aggregation::Count), Some(0.0));
    }

    #[test]
    fn approx_distinct_is_within_its_error_bound() {
        for n in [1u64, 10, 100, 1_000, 20_000] {
            let mut ring = Ring::default();
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
}
