//! Watching a model's live inputs and outputs against its training statistics and
//! against the recent past.
//!
//! [`Monitor::observe`] is the hot path: per window length it counts the row and
//! decides once whether the window's lock-free reservoir sample keeps it, then per
//! column bumps a few atomic counters (a histogram over the training bins, missing and
//! out-of-range values, unseen categories). No lock is taken. The first row of a new window claims the slot that held the oldest
//! one, copies out the windows that are complete, resets the slot and only then, with
//! the slot released, tests them: against the training statistics
//! ([`Reference::test`]) and against the window before ([`detect`]). Findings go to the
//! alert callback, a `tracing` warning and the `metrics` facade.
//!
//! A row that races with the reset of its slot can be counted in the new window; at
//! one row per window boundary that is noise, not drift.

mod column;
mod window;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fresco_abi::ModelMetadata;

use crate::{DriftConfig, DriftScore, detect, psi};
pub use column::{MonitoredColumn, Verdict};
use window::Window;
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
    /// Window lengths, each judged on its own (default: 5 minutes and 1 hour). Rows
    /// are counted into windows of the shortest length; a longer one is a run of them,
    /// rounded up to a whole number (at most 1,440). The monitor holds longest ÷
    /// shortest + 2 such windows, each with `sample_size` rows of every column: about
    /// (14 × 1,000 × 8 bytes) = 112 KB per column for the defaults.
    pub windows: Vec<Duration>,
    /// Tests and thresholds.
    pub drift: DriftConfig,
    /// Values sampled per column and window for the tests (default 1,000), from 1 to
    /// [`MAX_SAMPLE_SIZE`]: [`MonitorConfig::check`] refuses others, and
    /// [`Monitor::new`] keeps to that range.
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

/// The largest [`MonitorConfig::sample_size`]: the monitor holds that many values per
/// column for each of its windows (100,000 × 14 windows × 8 bytes = 11 MB per column).
pub const MAX_SAMPLE_SIZE: usize = 100_000;

/// A [`MonitorConfig`] the monitor cannot run with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorConfigError {
    /// A sample size of 0 (nothing would be tested) or past [`MAX_SAMPLE_SIZE`].
    #[error("monitor sample_size {0} is outside 1..={MAX_SAMPLE_SIZE}")]
    SampleSize(usize),
}

impl MonitorConfig {
    /// Checks the sizes the monitor allocates by.
    ///
    /// ```
    /// use fresco_drift::{MonitorConfig, MonitorConfigError};
    ///
    /// assert!(MonitorConfig::default().check().is_ok());
    /// let huge = MonitorConfig { sample_size: 1 << 30, ..MonitorConfig::default() };
    /// assert_eq!(huge.check(), Err(MonitorConfigError::SampleSize(1 << 30)));
    /// ```
    pub fn check(&self) -> Result<(), MonitorConfigError> {
        if !(1..=MAX_SAMPLE_SIZE).contains(&self.sample_size) {
            return Err(MonitorConfigError::SampleSize(self.sample_size));
        }
        Ok(())
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

struct Slot {
    /// Base window index + 1; 0 before first use; [`CLAIMED`] while being reset.
    epoch: AtomicU64,
    window: Window,
}

const CLAIMED: u64 = u64::MAX;

/// A window length watched, a whole number of base windows long.
struct View {
    length: Duration,
    /// Base windows per window of this view.
    multiple: u64,
}

/// The base windows (the shortest length asked for), in a ring of slots long enough
/// to hold the longest view and the window being written: every view is a run of
/// consecutive base windows, so each row is counted once whatever the views.
struct Ring {
    base_micros: i64,
    slots: Box<[Slot]>,
    views: Vec<View>,
    state: Mutex<RingState>,
}

struct RingState {
    /// Base windows before this one have been judged (or were never written).
    judged: u64,
    /// Per view: the last window judged (its last base window) and its counts, the
    /// next one's baseline.
    previous: Vec<Option<(u64, Vec<WindowSnapshot>)>>,
}

/// A window that ended, its counts copied out, to be judged.
struct Closed {
    view: usize,
    /// Its first base window.
    first: u64,
    /// Its last base window.
    last: u64,
    snapshots: Vec<WindowSnapshot>,
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
    columns: Vec<MonitoredColumn>,
    n_inputs: usize,
    config: MonitorConfig,
    ring: Option<Ring>,
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
        // Every input has a column (one without statistics is never judged), so that a
        // row's values line up with the columns.
        let mut columns: Vec<MonitoredColumn> = meta
            .inputs
            .iter()
            .map(|input| MonitoredColumn::input(input, stats.inputs.get(&input.name).cloned().unwrap_or_default()))
            .collect();
        let n_inputs = columns.len();
        columns.extend(
            meta.outputs
                .iter()
                .map(|output| MonitoredColumn::output(output, stats.outputs.get(output).cloned().unwrap_or_default())),
        );
        if columns.iter().all(|c| c.stats.counts.is_empty()) {
            return None;
        }
        let lengths: Vec<Duration> = config.windows.iter().copied().filter(|w| w.as_micros() > 0).collect();
        let ring = lengths.iter().min().map(|&base| {
            let base_micros = i64::try_from(base.as_micros()).unwrap_or(i64::MAX);
            let mut views: Vec<View> = lengths
                .iter()
                .map(|&length| {
                    let multiple = length.as_micros().div_ceil(base.as_micros()).max(1);
                    let multiple = u64::try_from(multiple).unwrap_or(u64::MAX).min(MAX_BASE_WINDOWS);
                    View { length: base.saturating_mul(u32::try_from(multiple).unwrap_or(u32::MAX)), multiple }
                })
                .collect();
            views.sort_by_key(|v| v.multiple);
            views.dedup_by_key(|v| v.multiple);
            let longest = views.last().map_or(1, |v| v.multiple);
            let slots = (0..longest + 2)
                .map(|_| Slot {
                    epoch: AtomicU64::new(0),
                    window: Window::new(
                        columns.iter().map(|c| c.stats.counts.len()),
                        config.sample_size.clamp(1, MAX_SAMPLE_SIZE),
                    ),
                })
                .collect();
            Ring {
                base_micros,
                slots,
                state: Mutex::new(RingState { judged: 0, previous: vec![None; views.len()] }),
                views,
            }
        });
        Some(Monitor {
            model: meta.name.clone(),
            version: meta.version.clone(),
            columns,
            n_inputs,
            config,
            ring,
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
        let Some(slot) = self.ring.as_ref().and_then(|ring| self.enter(ring, ts_micros)) else { return };
        let row = slot.window.row();
        for (c, value) in values {
            let column = &self.columns[c];
            if !column.stats.counts.is_empty() {
                slot.window.record(row, c, *value, column);
            }
        }
    }

    /// Records a type problem with input `input` (its index in the model's inputs).
    pub fn type_violation(&self, ts_micros: i64, input: usize, violation: TypeViolation) {
        if input >= self.n_inputs {
            return;
        }
        if let Some(slot) = self.ring.as_ref().and_then(|ring| self.enter(ring, ts_micros)) {
            let counts = &slot.window.columns[input];
            let counter = match violation {
                TypeViolation::FloatForInteger => &counts.float_for_integer,
                TypeViolation::WrongType => &counts.wrong_type,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Judges every window that ended at or before `now_micros` and has not been
    /// judged (windows are otherwise judged when the next one's first row arrives).
    pub fn flush(&self, now_micros: i64) {
        let Some(ring) = &self.ring else { return };
        let Some(index) = window_index(now_micros, ring.base_micros) else { return };
        let closed = self.close(ring, index, None);
        self.judge(ring, closed);
    }

    /// Rows that arrived for a window already recycled.
    pub fn late_rows(&self) -> u64 {
        self.late_rows.load(Ordering::Relaxed)
    }

    /// The most recently judged window of each column and window length.
    pub fn latest(&self) -> Vec<WindowReport> {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The slot for the base window of `ts`, claimed and reset first when it still
    /// holds an older window (the windows that end then are copied out first, and
    /// judged once the slot is released); `None` for a row older than the slot's window.
    fn enter<'r>(&self, ring: &'r Ring, ts: i64) -> Option<&'r Slot> {
        let index = window_index(ts, ring.base_micros)?;
        let want = index + 1;
        let slot = &ring.slots[(index % ring.slots.len() as u64) as usize];
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
            let closed = self.close(ring, index, Some((slot, epoch)));
            slot.window.clear();
            slot.epoch.store(want, Ordering::Release);
            self.judge(ring, closed);
            return Some(slot);
        }
    }

    /// The base windows before `index` not judged yet, and for each the views that end
    /// with it, their counts copied out (a view's base windows merged). `claimed` is
    /// the slot being recycled and the window it held.
    fn close(&self, ring: &Ring, index: u64, claimed: Option<(&Slot, u64)>) -> Vec<Closed> {
        let n = ring.slots.len() as u64;
        let held = |w: u64| -> Option<&Slot> {
            let slot = &ring.slots[(w % n) as usize];
            let epoch = match claimed {
                Some((c, epoch)) if std::ptr::eq(c, slot) => epoch,
                _ => slot.epoch.load(Ordering::Acquire),
            };
            (epoch == w + 1).then_some(slot)
        };
        let mut state = ring.state.lock().unwrap_or_else(PoisonError::into_inner);
        let from = state.judged.max(index.saturating_sub(n));
        state.judged = state.judged.max(index);
        drop(state);
        let mut closed = Vec::new();
        for last in from..index {
            for (v, view) in ring.views.iter().enumerate() {
                if (last + 1) % view.multiple != 0 {
                    continue;
                }
                let first = (last + 1).saturating_sub(view.multiple);
                let parts: Vec<Vec<WindowSnapshot>> =
                    (first..=last).filter_map(|w| held(w).map(|s| s.window.snapshot())).collect();
                if let Some(snapshots) = merge(parts, self.config.sample_size.clamp(1, MAX_SAMPLE_SIZE)) {
                    closed.push(Closed { view: v, first, last, snapshots });
                }
            }
        }
        closed
    }

    /// Tests the windows that closed, each against training and its view's previous
    /// window.
    fn judge(&self, ring: &Ring, closed: Vec<Closed>) {
        if closed.is_empty() {
            return;
        }
        let mut state = ring.state.lock().unwrap_or_else(PoisonError::into_inner);
        for Closed { view, first, last, snapshots } in closed {
            let length = ring.views[view].length;
            let start = i64::try_from(first).unwrap_or(i64::MAX).saturating_mul(ring.base_micros);
            let multiple = ring.views[view].multiple;
            let baseline = state.previous[view]
                .as_ref()
                .filter(|(pl, _)| pl.saturating_add(multiple) == last)
                .map(|(_, s)| s.as_slice());
            let reports: Vec<WindowReport> = self
                .columns
                .iter()
                .zip(&snapshots)
                .enumerate()
                .filter(|(_, (c, s))| !c.stats.counts.is_empty() && s.rows >= self.config.min_rows)
                .map(|(i, (column, counts))| {
                    self.judge_column(length, start, column, counts, baseline.and_then(|b| b.get(i)))
                })
                .collect();
            let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
            latest.retain(|r| r.window != length || !reports.iter().any(|n| n.column == r.column));
            latest.extend(reports);
            state.previous[view] = Some((last, snapshots));
        }
    }

    fn judge_column(
        &self,
        length: Duration,
        start: i64,
        column: &MonitoredColumn,
        counts: &WindowSnapshot,
        previous: Option<&WindowSnapshot>,
    ) -> WindowReport {
        let config = &self.config;
        let alert = |kind: AlertKind| self.alert(length, start, column, counts.rows, kind);
        let verdict = column.judge(counts, config);
        let against_training = verdict.score;
        let against_previous = previous.filter(|p| p.rows >= config.min_rows && !p.sample.is_empty()).and_then(|p| {
            let score = detect(&p.sample, &counts.sample, column.kind, &config.drift).ok()?;
            Some((score, bins_psi(&p.bins, &counts.bins)?))
        });
        for (baseline, found) in [(Baseline::Training, against_training), (Baseline::PreviousWindow, against_previous)]
        {
            if let Some((score, psi)) = found {
                record_score(&self.model, &self.version, &column.name, length, baseline, score.score, psi);
            }
        }
        verdict.findings.into_iter().for_each(alert);
        if let Some((score, psi)) = against_previous
            && score.drifted
            && psi >= config.min_psi
        {
            alert(AlertKind::Drift { baseline: Baseline::PreviousWindow, score, psi });
        }
        WindowReport {
            column: column.name.clone(),
            window: length,
            window_start_micros: start,
            counts: counts.clone(),
            against_training,
            against_previous,
        }
    }

    fn alert(&self, length: Duration, start: i64, column: &MonitoredColumn, rows: u64, kind: AlertKind) {
        let alert = Alert {
            model: self.model.clone(),
            version: self.version.clone(),
            column: column.name.clone(),
            window: length,
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
            window_s = length.as_secs(), window_start_us = start, rows, detail = ?alert.kind, "fresco monitoring alert");
        if let Some(callback) = &self.config.on_alert {
            callback(&alert);
        }
    }
}

/// The longest view, in base windows (a day of minutes).
const MAX_BASE_WINDOWS: u64 = 1440;

/// One window's counts from its consecutive base windows' (each column's list in
/// order): counts added, and a sample drawn from each base window's in proportion to
/// its rows. `None` when no base window was written.
fn merge(mut parts: Vec<Vec<WindowSnapshot>>, capacity: usize) -> Option<Vec<WindowSnapshot>> {
    if parts.len() <= 1 {
        return parts.pop();
    }
    let columns = parts.first().map_or(0, Vec::len);
    let rows: u64 = parts.iter().filter_map(|p| p.first()).map(|s| s.rows).sum();
    let merged = (0..columns)
        .map(|c| {
            let mut out = WindowSnapshot::default();
            for part in &parts {
                let s = &part[c];
                out.rows += s.rows;
                out.missing += s.missing;
                out.out_of_range += s.out_of_range;
                out.unseen += s.unseen;
                out.float_for_integer += s.float_for_integer;
                out.wrong_type += s.wrong_type;
                if out.bins.len() < s.bins.len() {
                    out.bins.resize(s.bins.len(), 0);
                }
                out.bins.iter_mut().zip(&s.bins).for_each(|(a, b)| *a += b);
                // Every `step`-th value of this part's sample: its share of the rows.
                let share =
                    if rows == 0 { 0 } else { (capacity as u128 * u128::from(s.rows) / u128::from(rows)) as usize };
                let step = s.sample.len().div_ceil(share.max(1)).max(1);
                out.sample.extend(s.sample.iter().step_by(step).take(share));
            }
            out.constant = window::constant(&out.sample);
            out
        })
        .collect();
    Some(merged)
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
