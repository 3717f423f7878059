//! One column's counts over one window of time, written by many threads at once.

use std::sync::atomic::{AtomicU64, Ordering};

use fresco_abi::DistributionStats;

/// Counts of one column over one window: a histogram over the training bins, the
/// missing, out-of-range and unseen-category rows, whether every value was the same,
/// and a uniform sample of the values (Algorithm R, lock-free: each slot is one word).
pub(super) struct WindowCounts {
    pub(super) rows: AtomicU64,
    pub(super) missing: AtomicU64,
    pub(super) out_of_range: AtomicU64,
    pub(super) unseen: AtomicU64,
    pub(super) bins: Box<[AtomicU64]>,
    /// Values of another type than the input's declared one, reported by the host.
    pub(super) float_for_integer: AtomicU64,
    pub(super) wrong_type: AtomicU64,
    /// The first value's bits, and whether another value was seen since.
    first: AtomicU64,
    varied: AtomicU64,
    sample: Box<[AtomicU64]>,
    seen: AtomicU64,
}

const NO_VALUE: u64 = u64::MAX;

impl WindowCounts {
    pub(super) fn new(bins: usize, sample: usize) -> Self {
        WindowCounts {
            rows: AtomicU64::new(0),
            missing: AtomicU64::new(0),
            out_of_range: AtomicU64::new(0),
            unseen: AtomicU64::new(0),
            bins: (0..bins).map(|_| AtomicU64::new(0)).collect(),
            float_for_integer: AtomicU64::new(0),
            wrong_type: AtomicU64::new(0),
            first: AtomicU64::new(NO_VALUE),
            varied: AtomicU64::new(0),
            sample: (0..sample).map(|_| AtomicU64::new(0)).collect(),
            seen: AtomicU64::new(0),
        }
    }

    /// Zeroes the counts; the caller holds the slot.
    pub(super) fn clear(&self) {
        let counters =
            [&self.rows, &self.missing, &self.out_of_range, &self.unseen, &self.float_for_integer, &self.wrong_type];
        for c in counters.into_iter().chain([&self.varied, &self.seen]) {
            c.store(0, Ordering::Relaxed);
        }
        self.first.store(NO_VALUE, Ordering::Relaxed);
        self.bins.iter().for_each(|b| b.store(0, Ordering::Relaxed));
    }

    /// Records one value; `categories` are the training data's category values,
    /// ascending, for categorical columns.
    pub(super) fn record(&self, value: f64, stats: &DistributionStats, categories: Option<&[f64]>) {
        self.rows.fetch_add(1, Ordering::Relaxed);
        if value.is_nan() {
            self.missing.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let bin = stats.bin_of(value);
        if let Some(b) = self.bins.get(bin) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        let outside = stats.min.is_some_and(|m| value < m) || stats.max.is_some_and(|m| value > m);
        if outside {
            self.out_of_range.fetch_add(1, Ordering::Relaxed);
        }
        if categories.is_some_and(|known| known.binary_search_by(|k| k.total_cmp(&value)).is_err()) {
            self.unseen.fetch_add(1, Ordering::Relaxed);
        }
        let bits = value.to_bits();
        match self.first.compare_exchange(NO_VALUE, bits, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => {}
            Err(first) if first != bits && self.varied.load(Ordering::Relaxed) == 0 => {
                self.varied.store(1, Ordering::Relaxed);
            }
            Err(_) => {}
        }
        let i = self.seen.fetch_add(1, Ordering::Relaxed);
        let capacity = self.sample.len() as u64;
        if i < capacity {
            self.sample[i as usize].store(bits, Ordering::Relaxed);
        } else if capacity > 0 {
            // Keep the i-th value with probability capacity / (i + 1).
            let j = mix(i) % (i + 1);
            if j < capacity {
                self.sample[j as usize].store(bits, Ordering::Relaxed);
            }
        }
    }

    pub(super) fn snapshot(&self) -> WindowSnapshot {
        let seen = self.seen.load(Ordering::Relaxed);
        let kept = seen.min(self.sample.len() as u64) as usize;
        let first = self.first.load(Ordering::Relaxed);
        WindowSnapshot {
            rows: self.rows.load(Ordering::Relaxed),
            missing: self.missing.load(Ordering::Relaxed),
            out_of_range: self.out_of_range.load(Ordering::Relaxed),
            unseen: self.unseen.load(Ordering::Relaxed),
            float_for_integer: self.float_for_integer.load(Ordering::Relaxed),
            wrong_type: self.wrong_type.load(Ordering::Relaxed),
            bins: self.bins.iter().map(|b| b.load(Ordering::Relaxed)).collect(),
            constant: (seen > 0 && self.varied.load(Ordering::Relaxed) == 0).then(|| f64::from_bits(first)),
            sample: self.sample[..kept].iter().map(|v| f64::from_bits(v.load(Ordering::Relaxed))).collect(),
        }
    }
}

/// A window's counts, read out.
#[derive(Debug, Clone, PartialEq)]
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
    /// The value, when every non-missing value was the same one.
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
