//! Watching a model's live inputs and outputs against its training statistics and
//! against the recent past.
//!
//! [`Monitor::observe`] is the hot path: per column and per window length it bumps a
//! few atomic counters (a histogram over the training bins, missing and out-of-range
//! rows, unseen categories) and offers the value to a lock-free reservoir sample. No
//! lock is taken. The first row of a new window claims the slot that held the oldest
//! one, copies out the windows that are complete, resets the slot and only then, with
//! the slot released, tests them: against the training statistics
//! ([`Reference::test`]) and against the window before ([`detect`]). Findings go to the
//! alert callback, a `tracing` warning and the `metrics` facade.
//!
//! A row that races with the reset of its slot can be counted in the new window; at
//! one row per window boundary that is noise, not drift.

mod window;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fresco_abi::{DistributionStats, InputType, ModelMetadata, StatsKind};

use crate::{ColumnKind, DriftConfig, DriftScore, Reference, detect, psi};
use window::WindowCounts;
pub use window::WindowSnapshot;

/// What receives alerts.
pub type AlertCallback = Arc<dyn Fn(&Alert) + Send + Sync>;

/// What to watch and when to speak.
///
/// ```
/// use std::time::Duration;
/// use fresco_drift::MonitorConfig;
///
/// let config = MonitorConfig { windows: vec![Duration::from_secs(60)], ..MonitorConfig::default() };
/// assert_eq!(config.min_rows, 100);
/// ```
#[derive(Clone)]
pub struct MonitorConfig {
    /// Window lengths, each watched on its own (default: 5 minutes and 1 hour).
    pub windows: Vec<Duration>,
    /// Tests and thresholds.
    pub drift: DriftConfig,
    /// Values sampled per column and window for the tests (default 1,000).
    pub sample_size: usize,
    /// Windows with fewer rows than this are not judged (default 100).
    pub min_rows: u64,
    /// A drift verdict alerts only when the PSI over the training bins is at least this
    /// as well (default 0.1): on large windows the tests find differences too small to
    /// matter.
    pub min_psi: f64,
    /// Share of values outside the training range that alerts (default 0.05).
    pub max_out_of_range_rate: f64,
    /// Change of the missing rate from training, in absolute terms, that alerts
    /// (default 0.1).
    pub max_missing_rate_change: f64,
    /// Called for every alert, on the thread that closed the window.
    pub on_alert: Option<AlertCallback>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            windows: vec![Duration::from_secs(5 * 60), Duration::from_secs(60 * 60)],
            drift: DriftConfig::default(),
            sample_size: 1_000,
            min_rows: 100,
            min_psi: 0.1,
            max_out_of_range_rate: 0.05,
            max_missing_rate_change: 0.1,
            on_alert: None,
        }
    }
}

impl std::fmt::Debug for MonitorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorConfig")
            .field("windows", &self.windows)
            .field("drift", &self.drift)
            .field("sample_size", &self.sample_size)
            .field("min_rows", &self.min_rows)
            .field("min_psi", &self.min_psi)
            .field("max_out_of_range_rate", &self.max_out_of_range_rate)
            .field("max_missing_rate_change", &self.max_missing_rate_change)
            .field("on_alert", &self.on_alert.as_ref().map(|_| "callback"))
            .finish()
    }
}

/// What a window is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// The model's training statistics.
    Training,
    /// The window just before.
    PreviousWindow,
}

/// What an alert is about.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertKind {
    /// The column's distribution moved.
    Drift {
        /// Compared with what.
        baseline: Baseline,
        /// The test's verdict.
        score: DriftScore,
        /// PSI over the training bins against the baseline.
        psi: f64,
    },
    /// Values outside the training range.
    OutOfRange {
        /// Their share of non-missing values.
        rate: f64,
    },
    /// The missing rate moved away from training's.
    MissingRate {
        /// In the window.
        live: f64,
        /// On the training data.
        training: f64,
    },
    /// A categorical input took values that were no category of the training data.
    NewCategory {
        /// Rows with such values.
        rows: u64,
    },
    /// Every value in the window was the same, where training had several.
    Constant {
        /// The value.
        value: f64,
    },
    /// An integer input arrived as floats: the upstream type changed.
    FloatForInteger {
        /// Rows.
        rows: u64,
    },
    /// Values of a type the input cannot take were refused.
    WrongType {
        /// Rows.
        rows: u64,
    },
}

impl AlertKind {
    /// A short name, the `kind` label of the alert metric: `drift`, `out_of_range`,
    /// `missing_rate`, `new_category`, `constant`, `float_for_integer`, `wrong_type`.
    pub fn name(&self) -> &'static str {
        match self {
            AlertKind::Drift { .. } => "drift",
            AlertKind::OutOfRange { .. } => "out_of_range",
            AlertKind::MissingRate { .. } => "missing_rate",
            AlertKind::NewCategory { .. } => "new_category",
            AlertKind::Constant { .. } => "constant",
            AlertKind::FloatForInteger { .. } => "float_for_integer",
            AlertKind::WrongType { .. } => "wrong_type",
        }
    }

    /// Whether this is a data-contract violation rather than a change of distribution.
    pub fn is_contract(&self) -> bool {
        !matches!(self, AlertKind::Drift { .. } | AlertKind::OutOfRange { .. } | AlertKind::MissingRate { .. })
    }
}

/// One finding about one column in one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
    /// Input or output name.
    pub column: String,
    /// Window length.
    pub window: Duration,
    /// Start of the window, µs since the Unix epoch.
    pub window_start_micros: i64,
    /// Rows in the window.
    pub rows: u64,
    /// The finding.
    pub kind: AlertKind,
}

/// A type problem the host saw before scoring, for [`Monitor::type_violation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeViolation {
    /// An integer (or boolean or categorical) input arrived as a float.
    FloatForInteger,
    /// A value of a type the input cannot take (a string for a number, ...).
    WrongType,
}

struct Column {
    name: String,
    stats: DistributionStats,
    kind: ColumnKind,
    /// Categorical columns: training category values, ascending.
    categories: Option<Vec<f64>>,
}

struct Slot {
    /// Window index + 1; 0 before first use; [`CLAIMED`] while being reset.
    epoch: AtomicU64,
    columns: Box<[WindowCounts]>,
}

const CLAIMED: u64 = u64::MAX;

/// Slots per window length: the window being written, the one before (the baseline
/// of the next verdict) and one being recycled.
const SLOTS: usize = 3;

struct Ring {
    length_micros: i64,
    length: Duration,
    slots: [Slot; SLOTS],
    /// The last window judged, + 1.
    judged: AtomicU64,
    /// The last judged window's counts: the next one's baseline.
    previous: Mutex<Option<(u64, Vec<WindowSnapshot>)>>,
}

/// The drift monitor of one model version.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use fresco_abi::{InputSpec, ModelKind, ModelMetadata, StatsKind, TrainingStats};
/// use fresco_drift::{Monitor, MonitorConfig, profile};
///
/// let training: Vec<f64> = (0..2_000).map(|i| f64::from(i % 300)).collect();
/// let mut stats = TrainingStats::default();
/// stats.inputs.insert("wait_s".into(), profile(&training, StatsKind::Numeric, 20));
/// let mut meta = ModelMetadata::new("eta", "1", ModelKind::Gbdt)
///     .with_inputs(vec![InputSpec::f64("wait_s")])
///     .with_outputs(vec!["minutes".into()]);
/// meta.training_stats = Some(stats);
///
/// let alerts = Arc::new(Mutex::new(Vec::new()));
/// let sink = alerts.clone();
/// let config = MonitorConfig {
///     windows: vec![Duration::from_secs(60)],
///     on_alert: Some(Arc::new(move |a| sink.lock().unwrap().push(a.clone()))),
///     ..MonitorConfig::default()
/// };
/// let monitor = Monitor::new(&meta, config).expect("the model has training statistics");
/// let minute = 60_000_000;
/// for i in 0..1_000 {
///     // Minute 0 as in training; minute 1 in milliseconds.
///     let t = if i < 500 { i * 100_000 } else { minute + (i - 500) * 100_000 };
///     let wait = f64::from((i % 300) as i32) * if i < 500 { 1.0 } else { 1000.0 };
///     monitor.observe(t, &[wait], &[]);
/// }
/// monitor.flush(2 * minute); // close minute 1
/// let alerts = alerts.lock().unwrap();
/// assert!(alerts.iter().any(|a| a.column == "wait_s" && a.kind.name() == "drift"));
/// ```
pub struct Monitor {
    model: String,
    version: String,
    /// Inputs (in the model's order), then outputs.
    columns: Vec<Column>,
    n_inputs: usize,
    config: MonitorConfig,
    rings: Vec<Ring>,
    late_rows: AtomicU64,
    latest: Mutex<Vec<WindowReport>>,
}

/// One judged window of one column, as [`Monitor::latest`] returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowReport {
    /// Input or output name.
    pub column: String,
    /// Window length.
    pub window: Duration,
    /// Start of the window, µs since the Unix epoch.
    pub window_start_micros: i64,
    /// The window's counts.
    pub counts: WindowSnapshot,
    /// Against training: the verdict and the PSI over the training bins.
    pub against_training: Option<(DriftScore, f64)>,
    /// Against the previous window.
    pub against_previous: Option<(DriftScore, f64)>,
}

impl Monitor {
    /// A monitor for the inputs and outputs of `meta` that have training statistics;
    /// `None` when none has.
    pub fn new(meta: &ModelMetadata, config: MonitorConfig) -> Option<Monitor> {
        let stats = meta.training_stats.as_ref()?;
        let mut columns = Vec::new();
        let column = |name: &str, s: &DistributionStats, declared: Option<InputType>| {
            let kind = match (s.kind, declared) {
                (StatsKind::Categorical, _) | (_, Some(InputType::Categorical | InputType::Bool)) => {
                    ColumnKind::Categorical
                }
                _ => ColumnKind::Numeric,
            };
            let categories = (kind == ColumnKind::Categorical).then(|| {
                let mut v: Vec<f64> = s.categories.keys().filter_map(|k| k.parse().ok()).collect();
                v.sort_by(f64::total_cmp);
                v
            });
            Column { name: name.to_owned(), stats: s.clone(), kind, categories }
        };
        // Every input has a column (one without statistics is never judged), so that a
        // row's values line up with the columns.
        for input in &meta.inputs {
            let s = stats.inputs.get(&input.name).cloned().unwrap_or_default();
            columns.push(column(&input.name, &s, Some(input.ty)));
        }
        let n_inputs = columns.len();
        for output in &meta.outputs {
            let s = stats.outputs.get(output).cloned().unwrap_or_default();
            columns.push(column(output, &s, None));
        }
        if columns.iter().all(|c| c.stats.counts.is_empty()) {
            return None;
        }
        let rings = config
            .windows
            .iter()
            .filter(|w| w.as_micros() > 0)
            .map(|&length| Ring {
                length_micros: i64::try_from(length.as_micros()).unwrap_or(i64::MAX),
                length,
                slots: std::array::from_fn(|_| Slot {
                    epoch: AtomicU64::new(0),
                    columns: columns
                        .iter()
                        .map(|c| WindowCounts::new(c.stats.counts.len(), config.sample_size))
                        .collect(),
                }),
                judged: AtomicU64::new(0),
                previous: Mutex::new(None),
            })
            .collect();
        Some(Monitor {
            model: meta.name.clone(),
            version: meta.version.clone(),
            columns,
            n_inputs,
            config,
            rings,
            late_rows: AtomicU64::new(0),
            latest: Mutex::new(Vec::new()),
        })
    }

    /// Records one prediction at `ts_micros` (µs since the Unix epoch): its inputs in
    /// the model's order (NaN for missing) and its outputs. Extra values are ignored.
    pub fn observe(&self, ts_micros: i64, inputs: &[f64], outputs: &[f64]) {
        let n_outputs = self.columns.len() - self.n_inputs;
        let values = inputs
            .iter()
            .take(self.n_inputs)
            .enumerate()
            .chain(outputs.iter().take(n_outputs).enumerate().map(|(j, v)| (self.n_inputs + j, v)));
        for ring in &self.rings {
            let Some(slot) = self.enter(ring, ts_micros) else { continue };
            for (c, value) in values.clone() {
                let column = &self.columns[c];
                if !column.stats.counts.is_empty() {
                    slot.columns[c].record(*value, &column.stats, column.categories.as_deref());
                }
            }
        }
    }

    /// Records a type problem with input `input` (its index in the model's inputs).
    pub fn type_violation(&self, ts_micros: i64, input: usize, violation: TypeViolation) {
        if input >= self.n_inputs {
            return;
        }
        for ring in &self.rings {
            if let Some(slot) = self.enter(ring, ts_micros) {
                let counts = &slot.columns[input];
                let counter = match violation {
                    TypeViolation::FloatForInteger => &counts.float_for_integer,
                    TypeViolation::WrongType => &counts.wrong_type,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Judges every window that ended at or before `now_micros` and has not been
    /// judged (windows are otherwise judged when the next one's first row arrives).
    pub fn flush(&self, now_micros: i64) {
        for ring in &self.rings {
            let Some(current) = window_index(now_micros, ring.length_micros) else { continue };
            let done: Vec<(u64, Vec<WindowSnapshot>)> = (current.saturating_sub(SLOTS as u64)..current)
                .filter_map(|w| self.snapshot_of(ring, w).map(|s| (w, s)))
                .collect();
            self.judge(ring, done);
        }
    }

    /// Rows that arrived for a window already recycled (older than the last three).
    pub fn late_rows(&self) -> u64 {
        self.late_rows.load(Ordering::Relaxed)
    }

    /// The most recently judged window of each column and window length.
    pub fn latest(&self) -> Vec<WindowReport> {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The slot for the window of `ts`, claimed and reset first when it still holds an
    /// older window (whose complete neighbours are then judged); `None` for a row
    /// older than the slot's window.
    fn enter<'r>(&self, ring: &'r Ring, ts: i64) -> Option<&'r Slot> {
        let index = window_index(ts, ring.length_micros)?;
        let want = index + 1;
        let slot = &ring.slots[(index % SLOTS as u64) as usize];
        loop {
            let epoch = slot.epoch.load(Ordering::Acquire);
            if epoch == want {
                return Some(slot);
            }
            if epoch == CLAIMED {
                std::hint::spin_loop();
                continue;
            }
            if epoch > want {
                self.late_rows.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            if slot.epoch.compare_exchange(epoch, CLAIMED, Ordering::AcqRel, Ordering::Acquire).is_err() {
                continue;
            }
            // Copy out what completes with this window's start (including the window
            // this slot held), then recycle the slot and let the writers in.
            let done: Vec<(u64, Vec<WindowSnapshot>)> = (index.saturating_sub(SLOTS as u64)..index)
                .filter_map(|w| {
                    let s = &ring.slots[(w % SLOTS as u64) as usize];
                    let held = if std::ptr::eq(s, slot) { epoch } else { s.epoch.load(Ordering::Acquire) };
                    (held == w + 1).then(|| (w, s.columns.iter().map(WindowCounts::snapshot).collect()))
                })
                .collect();
            slot.columns.iter().for_each(WindowCounts::clear);
            slot.epoch.store(want, Ordering::Release);
            self.judge(ring, done);
            return Some(slot);
        }
    }

    fn snapshot_of(&self, ring: &Ring, w: u64) -> Option<Vec<WindowSnapshot>> {
        let slot = &ring.slots[(w % SLOTS as u64) as usize];
        (slot.epoch.load(Ordering::Acquire) == w + 1).then(|| slot.columns.iter().map(WindowCounts::snapshot).collect())
    }

    /// Tests the windows in `done` (ascending), each once.
    fn judge(&self, ring: &Ring, done: Vec<(u64, Vec<WindowSnapshot>)>) {
        let mut previous = ring.previous.lock().unwrap_or_else(PoisonError::into_inner);
        for (w, snapshots) in done {
            // `judged` only grows, and only under `previous`: each window once.
            if w < ring.judged.load(Ordering::Acquire) {
                continue;
            }
            ring.judged.store(w + 1, Ordering::Release);
            let start = i64::try_from(w).unwrap_or(i64::MAX).saturating_mul(ring.length_micros);
            let baseline = previous.as_ref().filter(|(pw, _)| pw + 1 == w).map(|(_, s)| s.as_slice());
            let reports: Vec<WindowReport> = self
                .columns
                .iter()
                .zip(&snapshots)
                .enumerate()
                .filter(|(_, (c, s))| !c.stats.counts.is_empty() && s.rows >= self.config.min_rows)
                .map(|(i, (column, counts))| {
                    self.judge_column(ring, start, column, counts, baseline.and_then(|b| b.get(i)))
                })
                .collect();
            let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
            latest.retain(|r| r.window != ring.length || !reports.iter().any(|n| n.column == r.column));
            latest.extend(reports);
            *previous = Some((w, snapshots));
        }
    }

    fn judge_column(
        &self,
        ring: &Ring,
        start: i64,
        column: &Column,
        counts: &WindowSnapshot,
        previous: Option<&WindowSnapshot>,
    ) -> WindowReport {
        let config = &self.config;
        let alert = |kind: AlertKind| self.alert(ring, start, column, counts.rows, kind);
        let reference = Reference::new(&column.stats);
        let against_training =
            reference.test(&counts.sample, &config.drift).ok().zip(reference.psi_over_bins(&counts.bins).ok());
        let against_previous = previous.filter(|p| p.rows >= config.min_rows && !p.sample.is_empty()).and_then(|p| {
            let score = detect(&p.sample, &counts.sample, column.kind, &config.drift).ok()?;
            Some((score, bins_psi(&p.bins, &counts.bins)?))
        });
        for (baseline, found) in [(Baseline::Training, against_training), (Baseline::PreviousWindow, against_previous)]
        {
            if let Some((score, psi)) = found {
                record_score(&self.model, &self.version, &column.name, ring.length, baseline, score.score, psi);
                if score.drifted && psi >= config.min_psi {
                    alert(AlertKind::Drift { baseline, score, psi });
                }
            }
        }
        let rate = counts.out_of_range_rate();
        if column.kind == ColumnKind::Numeric && rate > config.max_out_of_range_rate {
            alert(AlertKind::OutOfRange { rate });
        }
        let (live, training) = (counts.missing_rate(), column.stats.missing_rate);
        if (live - training).abs() > config.max_missing_rate_change {
            alert(AlertKind::MissingRate { live, training });
        }
        if counts.unseen > 0 {
            alert(AlertKind::NewCategory { rows: counts.unseen });
        }
        if let Some(value) = counts.constant
            && column.stats.distinct > 1
        {
            alert(AlertKind::Constant { value });
        }
        if counts.float_for_integer > 0 {
            alert(AlertKind::FloatForInteger { rows: counts.float_for_integer });
        }
        if counts.wrong_type > 0 {
            alert(AlertKind::WrongType { rows: counts.wrong_type });
        }
        WindowReport {
            column: column.name.clone(),
            window: ring.length,
            window_start_micros: start,
            counts: counts.clone(),
            against_training,
            against_previous,
        }
    }

    fn alert(&self, ring: &Ring, start: i64, column: &Column, rows: u64, kind: AlertKind) {
        let alert = Alert {
            model: self.model.clone(),
            version: self.version.clone(),
            column: column.name.clone(),
            window: ring.length,
            window_start_micros: start,
            rows,
            kind,
        };
        let name = alert.kind.name();
        let metric =
            if alert.kind.is_contract() { "fresco_contract_violations_total" } else { "fresco_drift_alerts_total" };
        metrics::counter!(metric, "model" => alert.model.clone(), "version" => alert.version.clone(),
            "column" => alert.column.clone(), "kind" => name)
        .increment(1);
        tracing::warn!(model = %alert.model, version = %alert.version, column = %alert.column, kind = name,
            window_s = ring.length.as_secs(), window_start_us = start, rows, detail = ?alert.kind, "fresco monitoring alert");
        if let Some(callback) = &self.config.on_alert {
            callback(&alert);
        }
    }
}

fn window_index(ts: i64, length: i64) -> Option<u64> {
    u64::try_from(ts.div_euclid(length)).ok().filter(|i| *i < CLAIMED - 1)
}

/// PSI between two windows' histograms over the training bins.
fn bins_psi(reference: &[u64], current: &[u64]) -> Option<f64> {
    let r: Vec<f64> = reference.iter().map(|c| *c as f64).collect();
    let c: Vec<f64> = current.iter().map(|c| *c as f64).collect();
    let (r, c) = crate::detect::binned_shares_of_counts(&r, &c, true);
    psi(&r, &c).ok()
}

fn record_score(model: &str, version: &str, column: &str, window: Duration, baseline: Baseline, score: f64, psi: f64) {
    let baseline = match baseline {
        Baseline::Training => "training",
        Baseline::PreviousWindow => "previous_window",
    };
    let labels = [
        ("model", model.to_owned()),
        ("version", version.to_owned()),
        ("column", column.to_owned()),
        ("window", format!("{}s", window.as_secs())),
        ("baseline", baseline.to_owned()),
    ];
    metrics::gauge!("fresco_drift_score", &labels).set(score);
    metrics::gauge!("fresco_drift_psi", &labels).set(psi);
}
