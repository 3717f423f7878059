//! Training-time statistics of one column: what [`crate::Reference`] compares live
//! traffic with, stored in a model's metadata.

use std::collections::BTreeMap;

use fresco_abi::{DistributionStats, StatsKind};

use crate::detect::{BIN_BY_VALUE_MAX_DISTINCT, counts_in_sorted, distinct, population_std};

/// Quantile bins per numeric column (fewer where values tie).
pub const DEFAULT_BINS: usize = 20;

/// The most quantile bins a profile takes: each is a stored edge and a count in the
/// model's metadata, and a drift test's histogram; more than this resolves nothing a
/// 1,000-value reference sample could tell apart. [`profile`] uses at most this many.
pub const MAX_BINS: usize = 1_000;

/// Reference values kept per column. A column with at most this many non-missing
/// values keeps them all, so the small-sample tests (KS, chi-square, Z) against it are
/// exactly Evidently's; a larger one keeps this many evenly spaced order statistics.
pub const SAMPLE_SIZE: usize = 1_000;

/// Describes one column of training data.
///
/// NaN is missing. Numeric columns get quantile bin edges (`numpy.quantile`, linear
/// interpolation, at `k / bins`; tied edges merged); categorical ones get one bin per
/// category code, the edges half-way between codes. Columns with at most
/// [`BIN_BY_VALUE_MAX_DISTINCT`] distinct values also record each value's count.
///
/// ```
/// use fresco_abi::StatsKind;
/// use fresco_drift::profile;
///
/// let stats = profile(&[1.0, 2.0, 3.0, 4.0, f64::NAN], StatsKind::Numeric, 2);
/// assert_eq!(stats.count, 5);
/// assert_eq!(stats.missing_rate, 0.2);
/// assert_eq!(stats.bin_edges, [2.5]);
/// assert_eq!(stats.counts, [2, 2]);
/// assert_eq!((stats.min, stats.max), (Some(1.0), Some(4.0)));
/// ```
pub fn profile(values: &[f64], kind: StatsKind, bins: usize) -> DistributionStats {
    let mut present: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    present.sort_by(f64::total_cmp);
    let count = values.len() as u64;
    let missing = values.len() - present.len();
    let mut stats = DistributionStats {
        kind,
        count,
        missing_rate: if values.is_empty() { 0.0 } else { missing as f64 / values.len() as f64 },
        ..DistributionStats::default()
    };
    if present.is_empty() {
        stats.counts = vec![0];
        return stats;
    }
    let n = present.len() as f64;
    let mean = present.iter().sum::<f64>() / n;
    stats.min = present.first().copied();
    stats.max = present.last().copied();
    stats.mean = Some(mean);
    stats.std = Some(population_std(&present));
    let values_seen = distinct(&present);
    stats.distinct = values_seen.len() as u64;
    stats.bin_edges = match kind {
        StatsKind::Numeric => quantile_edges(&present, bins.clamp(1, MAX_BINS)),
        StatsKind::Categorical => values_seen.windows(2).map(|w| w[0] + (w[1] - w[0]) / 2.0).collect(),
    };
    let mut counts = vec![0u64; stats.bin_edges.len() + 1];
    for v in &present {
        counts[stats.bin_of(*v)] += 1;
    }
    stats.counts = counts;
    if kind == StatsKind::Categorical || values_seen.len() <= BIN_BY_VALUE_MAX_DISTINCT {
        stats.categories = value_counts(&present, &values_seen);
    }
    stats.sample = if present.len() <= SAMPLE_SIZE {
        present
    } else {
        (0..SAMPLE_SIZE).map(|i| present[(2 * i + 1) * present.len() / (2 * SAMPLE_SIZE)]).collect()
    };
    stats
}

/// The key a value is stored under in [`DistributionStats::categories`]: Rust's
/// shortest round-trip form (`3`, `0.5`).
pub fn category_key(value: f64) -> String {
    format!("{value}")
}

fn value_counts(sorted: &[f64], keys: &[f64]) -> BTreeMap<String, u64> {
    keys.iter().map(|k| category_key(*k)).zip(counts_in_sorted(sorted, keys)).collect()
}

/// `numpy.quantile(sorted, [1/bins, ..., (bins-1)/bins])`, ties merged.
fn quantile_edges(sorted: &[f64], bins: usize) -> Vec<f64> {
    let mut edges: Vec<f64> = (1..bins).map(|k| quantile(sorted, k as f64 / bins as f64)).collect();
    edges.dedup();
    edges
}

/// numpy's default ("linear") quantile of a sorted, non-empty sample.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor();
    let i = below as usize;
    let fraction = position - below;
    match sorted.get(i + 1) {
        Some(&next) if fraction > 0.0 => {
            let lo = sorted[i];
            // numpy's `_lerp`: exact at both ends.
            let diff = next - lo;
            if fraction >= 0.5 { next - diff * (1.0 - fraction) } else { lo + diff * fraction }
        }
        _ => sorted[i],
    }
}
