//! One window of time's counts, written by many threads at once.

use std::sync::atomic::{AtomicU64, Ordering};

use super::MonitoredColumn;

/// A window's counts for every column, and a uniform sample of its rows (Algorithm R,
/// lock-free: each cell is one word, and the row decision is taken once for all
/// columns).
pub(super) struct Window {
    rows: AtomicU64,
    pub(super) columns: Box<[ColumnCounts]>,
    /// `capacity` rows × the columns, row-major.
    sample: Box<[AtomicU64]>,
    capacity: u64,
}

/// One column's counts: a histogram over the training bins, the missing, out-of-range
/// and unseen-category values, and the type problems the host reported. Each touches
/// its own counter only when it happens; a present, in-range value costs one add.
pub(super) struct ColumnCounts {
    missing: AtomicU64,
    out_of_range: AtomicU64,
    unseen: AtomicU64,
    bins: Box<[AtomicU64]>,
    pub(super) float_for_integer: AtomicU64,
    pub(super) wrong_type: AtomicU64,
}

const NO_VALUE: u64 = u64::MAX;

/// Where a recorded row goes in the sample, if it is kept.
#[derive(Clone, Copy)]
pub(super) struct RowSlot(Option<usize>);

impl Window {
    /// A window over columns with these bin counts, sampling up to `capacity` rows.
    pub(super) fn new(bins: impl Iterator<Item = usize>, capacity: usize) -> Self {
        let columns: Box<[ColumnCounts]> = bins.map(ColumnCounts::new).collect();
        let cells = capacity.saturating_mul(columns.len());
        Window {
            rows: AtomicU64::new(0),
            sample: (0..cells).map(|_| AtomicU64::new(NO_VALUE)).collect(),
            capacity: capacity as u64,
            columns,
        }
    }

    /// Zeroes the counts; the caller holds the window.
    pub(super) fn clear(&self) {
        self.rows.store(0, Ordering::Relaxed);
        self.columns.iter().for_each(ColumnCounts::clear);
    }

    /// Counts a row and decides whether the sample keeps it (and where).
    pub(super) fn row(&self) -> RowSlot {
        let i = self.rows.fetch_add(1, Ordering::Relaxed);
        if i < self.capacity {
            return RowSlot(Some(i as usize));
        }
        // Keep the i-th row with probability capacity / (i + 1), in a random cell.
        let j = mix(i) % (i + 1);
        RowSlot((j < self.capacity).then_some(j as usize))
    }

    /// Records column `c`'s value of a row counted by [`Window::row`].
    pub(super) fn record(&self, slot: RowSlot, c: usize, value: f64, column: &MonitoredColumn) {
        self.columns[c].record(value, column);
        if let Some(j) = slot.0 {
            self.sample[j * self.columns.len() + c].store(value.to_bits(), Ordering::Relaxed);
        }
    }

    pub(super) fn snapshot(&self) -> Vec<WindowSnapshot> {
        let rows = self.rows.load(Ordering::Relaxed);
        let kept = rows.min(self.capacity) as usize;
        let n = self.columns.len();
        self.columns
            .iter()
            .enumerate()
            .map(|(c, counts)| {
                let sample = (0..kept)
                    .map(|j| f64::from_bits(self.sample[j * n + c].load(Ordering::Relaxed)))
                    .filter(|v| !v.is_nan())
                    .collect();
                counts.snapshot(rows, sample)
            })
            .collect()
    }
}

impl ColumnCounts {
    fn new(bins: usize) -> Self {
        ColumnCounts {
            missing: AtomicU64::new(0),
            out_of_range: AtomicU64::new(0),
            unseen: AtomicU64::new(0),
            bins: (0..bins).map(|_| AtomicU64::new(0)).collect(),
            float_for_integer: AtomicU64::new(0),
            wrong_type: AtomicU64::new(0),
        }
    }

    fn clear(&self) {
        let counters = [&self.missing, &self.out_of_range, &self.unseen, &self.float_for_integer, &self.wrong_type];
        for c in counters {
            c.store(0, Ordering::Relaxed);
        }
        self.bins.iter().for_each(|b| b.store(0, Ordering::Relaxed));
    }

    fn record(&self, value: f64, column: &MonitoredColumn) {
        if value.is_nan() {
            self.missing.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let placed = column.place(value);
        if let Some(b) = self.bins.get(placed.bin) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        if placed.outside {
            self.out_of_range.fetch_add(1, Ordering::Relaxed);
        }
        if placed.unseen {
            self.unseen.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn snapshot(&self, rows: u64, sample: Vec<f64>) -> WindowSnapshot {
        WindowSnapshot {
            rows,
            missing: self.missing.load(Ordering::Relaxed),
            out_of_range: self.out_of_range.load(Ordering::Relaxed),
            unseen: self.unseen.load(Ordering::Relaxed),
            float_for_integer: self.float_for_integer.load(Ordering::Relaxed),
            wrong_type: self.wrong_type.load(Ordering::Relaxed),
            bins: self.bins.iter().map(|b| b.load(Ordering::Relaxed)).collect(),
            constant: constant(&sample),
            sample,
        }
    }
}

/// Where a present value lands among a column's training statistics.
pub(super) struct Placement {
    /// Its training bin.
    pub(super) bin: usize,
    /// Below the training minimum or above its maximum.
    pub(super) outside: bool,
    /// A categorical column's value that was no training category.
    pub(super) unseen: bool,
}

/// The value, when every value of a (non-empty) sample is the same one.
pub(super) fn constant(sample: &[f64]) -> Option<f64> {
    let first = *sample.first()?;
    sample.iter().all(|v| v.to_bits() == first.to_bits()).then_some(first)
}

/// A window's counts for one column, read out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WindowSnapshot {
    /// Rows recorded.
    pub rows: u64,
    /// Rows with the value missing.
    pub missing: u64,
    /// Values below the training minimum or above its maximum.
    pub out_of_range: u64,
    /// Categorical columns: values that were no category of the training data.
    pub unseen: u64,
    /// Integer inputs that arrived as floats (reported by the host).
    pub float_for_integer: u64,
    /// Values of a type the input cannot take, refused (reported by the host).
    pub wrong_type: u64,
    /// Non-missing values per training bin.
    pub bins: Vec<u64>,
    /// The value, when every sampled non-missing value was the same one (the sample
    /// holds every row of a window up to its size, a uniform sample beyond).
    pub constant: Option<f64>,
    /// A uniform sample of the non-missing values.
    pub sample: Vec<f64>,
}

impl WindowSnapshot {
    /// Non-missing rows.
    pub fn present(&self) -> u64 {
        self.rows.saturating_sub(self.missing)
    }

    /// Missing rows as a share of rows (0 when there were none).
    pub fn missing_rate(&self) -> f64 {
        if self.rows == 0 { 0.0 } else { self.missing as f64 / self.rows as f64 }
    }

    /// Out-of-range values as a share of non-missing ones.
    pub fn out_of_range_rate(&self) -> f64 {
        let present = self.present();
        if present == 0 { 0.0 } else { self.out_of_range as f64 / present as f64 }
    }
}

/// SplitMix64's finalizer: a well-spread pseudo-random index from a counter, so that
/// the reservoir needs no per-thread generator.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
