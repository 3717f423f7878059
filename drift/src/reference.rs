//! Testing live values against the statistics a model was trained on.

use fresco_abi::{DistributionStats, StatsKind};

use crate::DriftError;
use crate::categorical::{chi_square, z_test};
use crate::detect::{
    ColumnKind, DriftConfig, DriftScore, Method, binned_shares_of_counts, counts_of, default_method, distinct, score,
};
use crate::distance::{jensen_shannon, psi, wasserstein_distance};
use crate::profile::category_key;

/// A column's training statistics, ready to test live samples against.
///
/// Where the training data had at most [`SAMPLE_SIZE`](crate::SAMPLE_SIZE) non-missing
/// values, the statistics hold them all and every test is exactly [`detect`](crate::detect)
/// on the training column. Above that, the category counts are exact too (chi-square,
/// Z, Jensen–Shannon, PSI by value), while Wasserstein and the histogram tests run on the
/// stored order statistics, an approximation within about one part in
/// `SAMPLE_SIZE` of the column's range.
///
/// ```
/// use fresco_abi::StatsKind;
/// use fresco_drift::{DriftConfig, Method, Reference, profile};
///
/// let training: Vec<f64> = (0..5_000).map(|i| f64::from(i % 100)).collect();
/// let stats = profile(&training, StatsKind::Numeric, 10);
/// let reference = Reference::new(&stats);
/// let live: Vec<f64> = (0..500).map(|i| f64::from(i % 100) * 1000.0).collect(); // a unit change
/// let score = reference.test(&live, &DriftConfig::default())?;
/// assert_eq!(score.method, Method::Wasserstein);
/// assert!(score.drifted);
/// # Ok::<(), fresco_drift::DriftError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Reference<'a> {
    stats: &'a DistributionStats,
}

impl<'a> Reference<'a> {
    /// Wraps a column's statistics.
    pub fn new(stats: &'a DistributionStats) -> Self {
        Reference { stats }
    }

    fn kind(&self) -> ColumnKind {
        match self.stats.kind {
            StatsKind::Numeric => ColumnKind::Numeric,
            StatsKind::Categorical => ColumnKind::Categorical,
        }
    }

    fn complete(&self) -> bool {
        self.stats.present() as usize == self.stats.sample.len()
    }

    /// Tests a live sample (NaN dropped) with the test Evidently would choose, or
    /// `config.method`.
    pub fn test(&self, current: &[f64], config: &DriftConfig) -> Result<DriftScore, DriftError> {
        let current: Vec<f64> = current.iter().copied().filter(|x| x.is_finite()).collect();
        if current.is_empty() {
            return Err(DriftError::EmptySample { which: "current".into() });
        }
        if self.stats.sample.is_empty() {
            return Err(DriftError::EmptySample { which: "reference".into() });
        }
        let method = config.method.unwrap_or_else(|| {
            let reference_rows = self.stats.present() as usize;
            default_method(self.kind(), reference_rows, self.distinct_with(&current))
        });
        let value = if self.complete() {
            score(method, &self.stats.sample, &current, self.kind())?
        } else {
            self.score_large(method, &current)?
        };
        let threshold = config.threshold(method);
        Ok(DriftScore { method, score: value, threshold, drifted: method.drifted(value, threshold) })
    }

    /// Distinct values over the training column and `current`; a count above the
    /// categories kept stands for "many".
    fn distinct_with(&self, current: &[f64]) -> usize {
        if self.stats.categories.is_empty() {
            return (self.stats.distinct as usize).max(distinct(current).len());
        }
        let mut keys = self.category_values();
        keys.extend(current);
        distinct(&keys).len()
    }

    fn category_values(&self) -> Vec<f64> {
        self.stats.categories.keys().filter_map(|k| k.parse::<f64>().ok()).collect()
    }

    /// Reference counts per value of `keys`, from the exact category counts.
    fn counts_by_value(&self, keys: &[f64]) -> Vec<f64> {
        keys.iter().map(|k| self.stats.categories.get(&category_key(*k)).copied().unwrap_or(0) as f64).collect()
    }

    fn score_large(&self, method: Method, current: &[f64]) -> Result<f64, DriftError> {
        let by_value = !self.stats.categories.is_empty();
        let reference_rows = self.stats.present() as f64;
        match method {
            Method::Wasserstein => {
                let norm = self.stats.std.unwrap_or(0.0).max(0.001);
                Ok(wasserstein_distance(&self.stats.sample, current)? / norm)
            }
            Method::ChiSquare | Method::ZTest | Method::JensenShannon | Method::Psi if by_value => {
                let mut keys = self.category_values();
                keys.extend(current);
                let keys = distinct(&keys);
                let reference = self.counts_by_value(&keys);
                let live = counts_of(current, &keys);
                match method {
                    Method::ChiSquare => {
                        let k = current.len() as f64 / reference_rows;
                        let expected: Vec<f64> = reference.iter().map(|x| x * k).collect();
                        Ok(chi_square(&live, &expected)?.1)
                    }
                    Method::ZTest if keys.len() <= 1 => Ok(1.0),
                    Method::ZTest => {
                        let ones_ref = reference_rows - reference.first().copied().unwrap_or(0.0);
                        let ones_cur = current.len() as f64 - live.first().copied().unwrap_or(0.0);
                        z_test(ones_ref as u64, reference_rows as u64, ones_cur as u64, current.len() as u64)
                    }
                    _ => {
                        let (r, c) = binned_shares_of_counts(&reference, &live, method == Method::Psi);
                        if method == Method::Psi { psi(&r, &c) } else { jensen_shannon(&r, &c) }
                    }
                }
            }
            _ => score(method, &self.stats.sample, current, self.kind()),
        }
    }

    /// PSI between the training histogram and live counts over the same bins
    /// (`counts`, one per training bin), empty bins floored as for
    /// [`binned_shares`](crate::binned_shares).
    pub fn psi_over_bins(&self, live_counts: &[u64]) -> Result<f64, DriftError> {
        let reference: Vec<f64> = self.stats.counts.iter().map(|c| *c as f64).collect();
        let live: Vec<f64> = live_counts.iter().map(|c| *c as f64).collect();
        if reference.len() != live.len() {
            return Err(DriftError::BinMismatch { reference: reference.len(), current: live.len() });
        }
        let (r, c) = binned_shares_of_counts(&reference, &live, true);
        psi(&r, &c)
    }
}
