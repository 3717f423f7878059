//! One input or output and the rules it is judged by: the same for a window of live
//! traffic in the [`Monitor`](super::Monitor) and for a log read back offline
//! (`fresco drift`), so that both say "drifted" about the same data.

use fresco_abi::{DistributionStats, InputSpec, InputType, StatsKind};

use super::window::{Placement, constant};
use super::{AlertKind, MonitorConfig, WindowSnapshot};
use crate::{ColumnKind, DriftScore, Reference};

/// An input or output as it is judged: its training statistics, whether it holds
/// numbers or categories, and whether it takes whole numbers.
///
/// ```
/// use fresco_abi::{InputSpec, StatsKind};
/// use fresco_drift::{MonitorConfig, MonitoredColumn, profile};
///
/// let training: Vec<f64> = (0..1_000).map(|i| f64::from(i % 50)).collect();
/// let column = MonitoredColumn::input(&InputSpec::f64("wait_s"), profile(&training, StatsKind::Numeric, 10));
/// // Live traffic where the input went missing.
/// let counts = column.count(&[f64::NAN; 500], 1_000);
/// let verdict = column.judge(&counts, &MonitorConfig::default());
/// assert_eq!(verdict.findings.iter().map(|f| f.name()).collect::<Vec<_>>(), ["missing_rate"]);
/// ```
#[derive(Debug, Clone)]
pub struct MonitoredColumn {
    pub(super) name: String,
    pub(super) stats: DistributionStats,
    pub(super) kind: ColumnKind,
    /// Categorical columns: training category values, ascending.
    pub(super) categories: Option<Vec<f64>>,
    /// Inputs declared integer, categorical or boolean.
    integral: bool,
}

/// What the rules found about one column's live values against training.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Whether there were enough rows to judge ([`MonitorConfig::min_rows`]); when not,
    /// nothing below is filled in.
    pub judged: bool,
    /// The drift test against the training data and the PSI over its bins (absent when
    /// no value was present).
    pub score: Option<(DriftScore, f64)>,
    /// Every rule that fired, in this order: drift, out of range, missing rate, new
    /// category, constant, float for integer, wrong type.
    pub findings: Vec<AlertKind>,
}

impl Verdict {
    /// Whether any rule fired.
    pub fn drifted(&self) -> bool {
        !self.findings.is_empty()
    }
}

impl MonitoredColumn {
    /// An input of the model, typed as declared.
    pub fn input(spec: &InputSpec, stats: DistributionStats) -> Self {
        Self::new(&spec.name, stats, Some(spec.ty))
    }

    /// An output of the model (always a number).
    pub fn output(name: &str, stats: DistributionStats) -> Self {
        Self::new(name, stats, None)
    }

    pub(super) fn new(name: &str, stats: DistributionStats, declared: Option<InputType>) -> Self {
        let kind = match (stats.kind, declared) {
            (StatsKind::Categorical, _) | (_, Some(InputType::Categorical | InputType::Bool)) => {
                ColumnKind::Categorical
            }
            _ => ColumnKind::Numeric,
        };
        let categories = (kind == ColumnKind::Categorical).then(|| {
            let mut v: Vec<f64> = stats.categories.keys().filter_map(|k| k.parse().ok()).collect();
            v.sort_by(f64::total_cmp);
            v
        });
        let integral = matches!(declared, Some(InputType::I64 | InputType::Categorical | InputType::Bool));
        MonitoredColumn { name: name.to_owned(), stats, kind, categories, integral }
    }

    /// The column's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its training statistics.
    pub fn stats(&self) -> &DistributionStats {
        &self.stats
    }

    /// Where a present value lands: its training bin, whether it is outside the
    /// training range, whether it is no training category.
    pub(super) fn place(&self, value: f64) -> Placement {
        Placement {
            bin: self.stats.bin_of(value),
            outside: self.stats.outside_range(value),
            unseen: self
                .categories
                .as_deref()
                .is_some_and(|known| known.binary_search_by(|k| k.total_cmp(&value)).is_err()),
        }
    }

    /// Counts values read back from a log (NaN is missing) as a window would hold them.
    /// An integral input holding a fraction counts as a float for an integer (the log
    /// keeps the value, not the type it arrived as). The sample is every k-th present
    /// value, at most `sample_size` of them.
    pub fn count(&self, values: &[f64], sample_size: usize) -> WindowSnapshot {
        let mut counts =
            WindowSnapshot { rows: values.len() as u64, bins: vec![0; self.stats.counts.len()], ..Default::default() };
        let mut present = Vec::with_capacity(values.len());
        for &v in values {
            if v.is_nan() {
                counts.missing += 1;
                continue;
            }
            let placed = self.place(v);
            if let Some(bin) = counts.bins.get_mut(placed.bin) {
                *bin += 1;
            }
            counts.out_of_range += u64::from(placed.outside);
            counts.unseen += u64::from(placed.unseen);
            counts.float_for_integer += u64::from(self.integral && v.is_finite() && v.fract() != 0.0);
            present.push(v);
        }
        let step = present.len().div_ceil(sample_size.max(1)).max(1);
        counts.sample = present.iter().step_by(step).copied().collect();
        counts.constant = constant(&counts.sample);
        counts
    }

    /// Judges `counts` against the training data, by the rules the monitor alerts on
    /// (docs/design.md §10).
    pub fn judge(&self, counts: &WindowSnapshot, config: &MonitorConfig) -> Verdict {
        if counts.rows < config.min_rows || self.stats.counts.is_empty() {
            return Verdict { judged: false, score: None, findings: Vec::new() };
        }
        let reference = Reference::new(&self.stats);
        let score = reference.test(&counts.sample, &config.drift).ok().zip(reference.psi_over_bins(&counts.bins).ok());
        let mut findings = Vec::new();
        if let Some((score, psi)) = score
            && score.drifted
            && psi >= config.min_psi
        {
            findings.push(AlertKind::Drift { baseline: super::Baseline::Training, score, psi });
        }
        let rate = counts.out_of_range_rate();
        if self.kind == ColumnKind::Numeric && rate > config.max_out_of_range_rate {
            findings.push(AlertKind::OutOfRange { rate });
        }
        let (live, training) = (counts.missing_rate(), self.stats.missing_rate);
        if (live - training).abs() > config.max_missing_rate_change {
            findings.push(AlertKind::MissingRate { live, training });
        }
        if counts.unseen > 0 {
            findings.push(AlertKind::NewCategory { rows: counts.unseen });
        }
        if let Some(value) = counts.constant
            && self.stats.distinct > 1
        {
            findings.push(AlertKind::Constant { value });
        }
        if counts.float_for_integer > 0 {
            findings.push(AlertKind::FloatForInteger { rows: counts.float_for_integer });
        }
        if counts.wrong_type > 0 {
            findings.push(AlertKind::WrongType { rows: counts.wrong_type });
        }
        Verdict { judged: true, score, findings }
    }
}
