//! Choosing and running a drift test per column, by the rules of Evidently's data drift
//! preset: the same test, the same binning and the same verdict.
//!
//! | reference rows (non-missing) | column | distinct values (both samples) | test | drift when |
//! |---|---|---|---|---|
//! | ≤ 1,000 | numeric | > 5 | Kolmogorov–Smirnov | p ≤ 0.05 |
//! | ≤ 1,000 | numeric or categorical | 3–5 (numeric), > 2 | chi-square | p < 0.05 |
//! | ≤ 1,000 | numeric or categorical | ≤ 2 | two-proportion Z | p < 0.05 |
//! | > 1,000 | numeric | > 5 | Wasserstein ÷ reference std | ≥ 0.1 |
//! | > 1,000 | numeric (≤ 5 values) or categorical | | Jensen–Shannon | ≥ 0.1 |
//!
//! PSI (≥ 0.1) can be asked for by name. Missing values (NaN, and infinities) are
//! dropped first.

use core::fmt;

use crate::DriftError;
use crate::categorical::{chi_square, z_test};
use crate::distance::{jensen_shannon, psi, wasserstein_distance};
use crate::ks::ks_2samp;

/// Reference rows up to which the tests are the small-sample ones.
pub const SMALL_REFERENCE_ROWS: usize = 1_000;

/// Numeric columns with more reference values than this are binned on a shared
/// histogram (Sturges' rule) for PSI and Jensen–Shannon; others by value.
pub const BIN_BY_VALUE_MAX_DISTINCT: usize = 20;

/// Whether a column's values are ordered quantities or category labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Ordered values.
    Numeric,
    /// Labels (codes, booleans).
    Categorical,
}

/// A drift test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// Two-sample Kolmogorov–Smirnov; the score is the p-value.
    Ks,
    /// Pearson's chi-square on category counts; the score is the p-value.
    ChiSquare,
    /// Two-proportion Z test; the score is the p-value.
    ZTest,
    /// Wasserstein-1 distance divided by the reference standard deviation (at least 0.001).
    Wasserstein,
    /// Jensen–Shannon distance between binned shares.
    JensenShannon,
    /// Population stability index between binned shares.
    Psi,
}

impl Method {
    /// The name Evidently gives the test: `ks`, `chisquare`, `z`, `wasserstein`,
    /// `jensenshannon`, `psi`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Ks => "ks",
            Method::ChiSquare => "chisquare",
            Method::ZTest => "z",
            Method::Wasserstein => "wasserstein",
            Method::JensenShannon => "jensenshannon",
            Method::Psi => "psi",
        }
    }

    /// Whether the score is a p-value (drift when small) rather than a distance
    /// (drift when large).
    pub fn is_p_value(self) -> bool {
        matches!(self, Method::Ks | Method::ChiSquare | Method::ZTest)
    }

    pub(crate) fn drifted(self, score: f64, threshold: f64) -> bool {
        match self {
            Method::Ks => score <= threshold,
            Method::ChiSquare | Method::ZTest => score < threshold,
            Method::Wasserstein | Method::JensenShannon | Method::Psi => score >= threshold,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Thresholds per test, and optionally one test for every column.
///
/// ```
/// use fresco_drift::{DriftConfig, Method};
///
/// let strict = DriftConfig { p_value: 0.01, ..DriftConfig::default() };
/// assert_eq!(strict.threshold(Method::Ks), 0.01);
/// assert_eq!(strict.threshold(Method::Psi), 0.1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftConfig {
    /// Significance level of the p-value tests (KS, chi-square, Z).
    pub p_value: f64,
    /// Normed Wasserstein distance at or above which a column has drifted.
    pub wasserstein: f64,
    /// Jensen–Shannon distance at or above which a column has drifted.
    pub jensen_shannon: f64,
    /// PSI at or above which a column has drifted.
    pub psi: f64,
    /// Use this test for every column instead of choosing one.
    pub method: Option<Method>,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig { p_value: 0.05, wasserstein: 0.1, jensen_shannon: 0.1, psi: 0.1, method: None }
    }
}

impl DriftConfig {
    /// The threshold that applies to `method`.
    pub fn threshold(&self, method: Method) -> f64 {
        match method {
            Method::Ks | Method::ChiSquare | Method::ZTest => self.p_value,
            Method::Wasserstein => self.wasserstein,
            Method::JensenShannon => self.jensen_shannon,
            Method::Psi => self.psi,
        }
    }
}

/// One test's verdict on one column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftScore {
    /// The test run.
    pub method: Method,
    /// Its score: a p-value or a distance (see [`Method::is_p_value`]).
    pub score: f64,
    /// The threshold it was judged by.
    pub threshold: f64,
    /// Whether the column drifted.
    pub drifted: bool,
}

/// The test Evidently chooses for a column with `reference_rows` non-missing
/// reference values and `distinct` distinct values over both samples.
///
/// ```
/// use fresco_drift::{ColumnKind, Method, default_method};
///
/// assert_eq!(default_method(ColumnKind::Numeric, 800, 300), Method::Ks);
/// assert_eq!(default_method(ColumnKind::Numeric, 50_000, 300), Method::Wasserstein);
/// assert_eq!(default_method(ColumnKind::Categorical, 800, 2), Method::ZTest);
/// ```
pub fn default_method(kind: ColumnKind, reference_rows: usize, distinct: usize) -> Method {
    let small = reference_rows <= SMALL_REFERENCE_ROWS;
    match (kind, small) {
        (ColumnKind::Numeric, true) if distinct > 5 => Method::Ks,
        (_, true) if distinct > 2 => Method::ChiSquare,
        (_, true) => Method::ZTest,
        (ColumnKind::Numeric, false) if distinct > 5 => Method::Wasserstein,
        (_, false) => Method::JensenShannon,
    }
}

/// Tests `current` against `reference` with the test [`default_method`] picks (or
/// `config.method`).
///
/// ```
/// use fresco_drift::{ColumnKind, DriftConfig, Method, detect};
///
/// let reference: Vec<f64> = (0..500).map(|i| f64::from(i) / 500.0).collect();
/// let shifted: Vec<f64> = reference.iter().map(|x| x + 0.3).collect();
/// let score = detect(&reference, &shifted, ColumnKind::Numeric, &DriftConfig::default())?;
/// assert_eq!(score.method, Method::Ks);
/// assert!(score.drifted);
/// # Ok::<(), fresco_drift::DriftError>(())
/// ```
pub fn detect(
    reference: &[f64],
    current: &[f64],
    kind: ColumnKind,
    config: &DriftConfig,
) -> Result<DriftScore, DriftError> {
    let reference = present(reference, "reference")?;
    let current = present(current, "current")?;
    let method = config.method.unwrap_or_else(|| {
        let both: Vec<f64> = reference.iter().chain(&current).copied().collect();
        default_method(kind, reference.len(), distinct(&both).len())
    });
    let score = score(method, &reference, &current, kind)?;
    let threshold = config.threshold(method);
    Ok(DriftScore { method, score, threshold, drifted: method.drifted(score, threshold) })
}

/// The score of one test, NaN already dropped.
pub(crate) fn score(method: Method, reference: &[f64], current: &[f64], kind: ColumnKind) -> Result<f64, DriftError> {
    Ok(match method {
        Method::Ks => ks_2samp(reference, current)?.p_value,
        Method::Wasserstein => {
            let norm = population_std(reference).max(0.001);
            wasserstein_distance(reference, current)? / norm
        }
        Method::ChiSquare => {
            let (r, c) = value_counts(reference, current);
            let k = current.len() as f64 / reference.len() as f64;
            let expected: Vec<f64> = r.iter().map(|x| x * k).collect();
            chi_square(&c, &expected)?.1
        }
        Method::ZTest => {
            let keys = distinct(&[reference, current].concat());
            if keys.len() <= 1 {
                1.0
            } else {
                // The share of values other than the smallest one.
                let ones = |s: &[f64]| s.iter().filter(|x| **x != keys[0]).count() as u64;
                z_test(ones(reference), reference.len() as u64, ones(current), current.len() as u64)?
            }
        }
        Method::JensenShannon => {
            let (r, c) = binned_shares(reference, current, kind, false)?;
            jensen_shannon(&r, &c)?
        }
        Method::Psi => {
            let (r, c) = binned_shares(reference, current, kind, true)?;
            psi(&r, &c)?
        }
    })
}

/// The reference's and the current sample's shares per bin, as Evidently bins them for
/// PSI and Jensen–Shannon: numeric columns with more than
/// [`BIN_BY_VALUE_MAX_DISTINCT`] reference values on a histogram of both samples
/// (Sturges' rule, as `numpy.histogram_bin_edges(..., bins="sturges")`), others by
/// value. With `floor_zeros`, empty bins get a small share (0.0001, or a millionth of
/// the smallest share when that is smaller) so that PSI stays finite.
pub fn binned_shares(
    reference: &[f64],
    current: &[f64],
    kind: ColumnKind,
    floor_zeros: bool,
) -> Result<(Vec<f64>, Vec<f64>), DriftError> {
    let reference = present(reference, "reference")?;
    let current = present(current, "current")?;
    let (r, c) = if kind == ColumnKind::Numeric && distinct(&reference).len() > BIN_BY_VALUE_MAX_DISTINCT {
        let edges = sturges_edges(&[reference.as_slice(), current.as_slice()].concat());
        (histogram(&reference, &edges), histogram(&current, &edges))
    } else {
        value_counts(&reference, &current)
    };
    // Counts over all values dropped none, so the totals are the sample sizes.
    Ok(binned_shares_of_counts(&r, &c, floor_zeros))
}

/// Shares from counts per bin (each side divided by its total), floored as in
/// [`binned_shares`].
pub(crate) fn binned_shares_of_counts(reference: &[f64], current: &[f64], floor_zeros: bool) -> (Vec<f64>, Vec<f64>) {
    let share = |v: &[f64]| {
        let total: f64 = v.iter().sum();
        let mut s: Vec<f64> = v.iter().map(|x| if total > 0.0 { x / total } else { 0.0 }).collect();
        if floor_zeros {
            floor(&mut s);
        }
        s
    };
    (share(reference), share(current))
}

fn floor(shares: &mut [f64]) {
    let smallest = shares.iter().copied().filter(|x| *x != 0.0).fold(f64::INFINITY, f64::min);
    let fill = if smallest <= 0.0001 { smallest / 1e6 } else { 0.0001 };
    shares.iter_mut().filter(|x| **x == 0.0).for_each(|x| *x = fill);
}

/// Equal-width edges over the sample's range, the count of bins by Sturges' rule,
/// computed as numpy does (the width first, then the count from it).
pub(crate) fn sturges_edges(values: &[f64]) -> Vec<f64> {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (first, last) = if lo == hi { (lo - 0.5, hi + 0.5) } else { (lo, hi) };
    let width = (hi - lo) / ((values.len() as f64).log2() + 1.0);
    let bins = if width > 0.0 { ((last - first) / width).ceil().max(1.0) as usize } else { 1 };
    let step = (last - first) / bins as f64;
    let mut edges: Vec<f64> = (0..=bins).map(|i| first + i as f64 * step).collect();
    if let Some(end) = edges.last_mut() {
        *end = last;
    }
    edges
}

/// Counts per bin of `numpy.histogram(values, edges)`: half-open bins, the last one
/// closed; values outside the edges are not counted.
fn histogram(values: &[f64], edges: &[f64]) -> Vec<f64> {
    let bins = edges.len().saturating_sub(1);
    let mut counts = vec![0.0; bins];
    let (Some(&first), Some(&last)) = (edges.first(), edges.last()) else { return counts };
    for &x in values {
        if x < first || x > last || bins == 0 {
            continue;
        }
        let i = edges.partition_point(|e| *e <= x).saturating_sub(1).min(bins - 1);
        counts[i] += 1.0;
    }
    counts
}

/// Counts of each distinct value of either sample, in one order for both.
fn value_counts(reference: &[f64], current: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let keys = distinct(&[reference, current].concat());
    (counts_of(reference, &keys), counts_of(current, &keys))
}

/// How many values of `sample` equal each of `keys`.
pub(crate) fn counts_of(sample: &[f64], keys: &[f64]) -> Vec<f64> {
    let mut sorted = sample.to_vec();
    sorted.sort_by(f64::total_cmp);
    counts_in_sorted(&sorted, keys).map(|n| n as f64).collect()
}

/// How many values of the ascending `sorted` equal each of `keys`.
pub(crate) fn counts_in_sorted<'a>(sorted: &'a [f64], keys: &'a [f64]) -> impl Iterator<Item = u64> + 'a {
    keys.iter().map(|k| (sorted.partition_point(|x| x <= k) - sorted.partition_point(|x| x < k)) as u64)
}

/// The distinct values, ascending (`0.0` and `-0.0` are one value).
pub(crate) fn distinct(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.dedup_by(|a, b| a == b);
    v
}

/// `numpy.std`: the population standard deviation.
pub(crate) fn population_std(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt()
}

fn present(values: &[f64], which: &str) -> Result<Vec<f64>, DriftError> {
    // Evidently treats infinities as missing too.
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return Err(DriftError::EmptySample { which: which.to_owned() });
    }
    Ok(v)
}
