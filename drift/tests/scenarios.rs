//! The monitor on traffic over time: a unit change, a type change, a new category, a
//! constant input, and a long run of stable traffic that must stay silent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fresco_abi::{InputSpec, InputType, ModelKind, ModelMetadata, StatsKind, TrainingStats};
use fresco_drift::{Alert, AlertKind, Baseline, Monitor, MonitorConfig, TypeViolation, profile};
use fresco_test_models::synthetic::SplitMix64;

const SECOND: i64 = 1_000_000;
const WINDOW: Duration = Duration::from_secs(300);
const WINDOW_US: i64 = 300 * SECOND;

/// Seeded traffic, replayed exactly.
struct Rng(SplitMix64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(SplitMix64::new(seed))
    }
    fn next(&mut self) -> f64 {
        self.0.next_f64()
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-300), self.next());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
    /// A row as training saw it: a wait in seconds, a category code in 0..4, a small
    /// integer count, and the model's output.
    fn row(&mut self) -> [f64; 4] {
        let wait_s = (120.0 + 40.0 * self.normal()).max(1.0);
        let u = self.next();
        let category = if u < 0.4 {
            0.0
        } else if u < 0.7 {
            1.0
        } else if u < 0.9 {
            2.0
        } else {
            3.0
        };
        let items = (self.next() * 8.0).floor();
        [wait_s, category, items, wait_s / 60.0 + items]
    }
}

/// A model over `wait_s` (numeric, 20,000 training rows), `zone` (categorical) and
/// `items` (an integer, 800 training rows: the small-sample tests), with statistics.
fn model() -> ModelMetadata {
    let mut rng = Rng::new(7);
    let rows: Vec<[f64; 4]> = (0..20_000).map(|_| rng.row()).collect();
    let column = |i: usize, n: usize| rows.iter().take(n).map(|r| r[i]).collect::<Vec<f64>>();
    let mut stats = TrainingStats::default();
    stats.inputs.insert("wait_s".into(), profile(&column(0, 20_000), StatsKind::Numeric, 20));
    stats.inputs.insert("zone".into(), profile(&column(1, 20_000), StatsKind::Categorical, 0));
    stats.inputs.insert("items".into(), profile(&column(2, 800), StatsKind::Numeric, 20));
    stats.outputs.insert("minutes".into(), profile(&column(3, 20_000), StatsKind::Numeric, 20));
    let mut meta = ModelMetadata::new("eta", "1", ModelKind::Gbdt)
        .with_inputs(vec![
            InputSpec::f64("wait_s"),
            InputSpec { ty: InputType::Categorical, ..InputSpec::f64("zone") },
            InputSpec { ty: InputType::I64, ..InputSpec::f64("items") },
        ])
        .with_outputs(vec!["minutes".into()]);
    meta.training_stats = Some(stats);
    meta
}

fn monitor() -> (Monitor, Arc<Mutex<Vec<Alert>>>) {
    let alerts = Arc::new(Mutex::new(Vec::new()));
    let sink = alerts.clone();
    let config = MonitorConfig {
        windows: vec![WINDOW, Duration::from_secs(3600)],
        on_alert: Some(Arc::new(move |a: &Alert| sink.lock().unwrap().push(a.clone()))),
        ..MonitorConfig::default()
    };
    (Monitor::new(&model(), config).unwrap(), alerts)
}

/// Feeds `n` rows, 10 per second from `start`, through `change` first.
fn feed(monitor: &Monitor, rng: &mut Rng, start: i64, n: i64, change: impl Fn(i64, &mut [f64; 4])) -> i64 {
    for i in 0..n {
        let t = start + i * SECOND / 10;
        let mut row = rng.row();
        change(t, &mut row);
        monitor.observe(t, &row[..3], &row[3..]);
    }
    start + n * SECOND / 10
}

#[test]
fn a_unit_change_alerts_within_one_window() {
    let (monitor, alerts) = monitor();
    let mut rng = Rng::new(11);
    // 25 minutes of traffic; at minute 12.5 `wait_s` arrives in milliseconds.
    let change_at = 750 * SECOND;
    let end = feed(&monitor, &mut rng, 0, 15_000, |t, row| {
        if t >= change_at {
            row[0] *= 1000.0;
        }
    });
    monitor.flush(end + WINDOW_US);
    let alerts = alerts.lock().unwrap();
    let first = alerts
        .iter()
        .filter(|a| a.column == "wait_s" && a.window == WINDOW)
        .find(|a| matches!(a.kind, AlertKind::Drift { baseline: Baseline::Training, .. }))
        .expect("a drift alert on wait_s");
    // The window holding the change (10–15 min) already alerts.
    assert_eq!(first.window_start_micros, 600 * SECOND, "{first:?}");
    assert!(alerts.iter().any(|a| a.column == "wait_s" && matches!(a.kind, AlertKind::OutOfRange { .. })));
    // Nothing alerted before the change, and nothing about the columns that did not change.
    assert!(alerts.iter().all(|a| a.window_start_micros + a.window.as_micros() as i64 > change_at), "{alerts:#?}");
    assert!(alerts.iter().all(|a| a.column == "wait_s" || a.column == "minutes"), "{alerts:#?}");
}

#[test]
fn an_integer_input_arriving_as_float_is_a_contract_violation() {
    let (monitor, alerts) = monitor();
    let mut rng = Rng::new(12);
    let end = feed(&monitor, &mut rng, 0, 6_000, |_, _| {});
    // The host saw `items` arrive as floats for 20 rows of the second window.
    for i in 0..20 {
        monitor.type_violation(WINDOW_US + i * SECOND, 2, TypeViolation::FloatForInteger);
    }
    monitor.flush(end + WINDOW_US);
    let alerts = alerts.lock().unwrap();
    let contract: Vec<&Alert> = alerts.iter().filter(|a| a.kind.is_contract()).collect();
    assert!(!contract.is_empty(), "no contract violation: {alerts:#?}");
    assert!(contract.iter().all(|a| a.column == "items" && a.kind == AlertKind::FloatForInteger { rows: 20 }));
}

#[test]
fn a_new_category_and_a_constant_input_are_contract_violations() {
    let (monitor, alerts) = monitor();
    let mut rng = Rng::new(13);
    let end = feed(&monitor, &mut rng, 0, 6_000, |t, row| {
        if t >= WINDOW_US {
            row[2] = 4.0; // `items` stuck at one value
            if t % (10 * SECOND) == 0 {
                row[1] = 7.0; // a zone the model never saw
            }
        }
    });
    monitor.flush(end + WINDOW_US);
    let alerts = alerts.lock().unwrap();
    let of = |column: &str, kind: &str| alerts.iter().any(|a| a.column == column && a.kind.name() == kind);
    assert!(of("zone", "new_category"), "{alerts:#?}");
    assert!(of("items", "constant"), "{alerts:#?}");
    assert!(alerts.iter().all(|a| a.window_start_micros >= WINDOW_US), "{alerts:#?}");
}

#[test]
fn stable_traffic_raises_no_alert_over_a_million_predictions() {
    let (monitor, alerts) = monitor();
    let mut rng = Rng::new(14);
    let end = feed(&monitor, &mut rng, 0, 1_000_000, |_, _| {});
    monitor.flush(end + 3600 * SECOND);
    let alerts = alerts.lock().unwrap();
    assert!(alerts.is_empty(), "{} alerts, the first: {:#?}", alerts.len(), alerts.first());
    // It did judge: every window of every column.
    let latest = monitor.latest();
    assert_eq!(latest.len(), 2 * 4, "{latest:#?}");
    assert!(latest.iter().all(|r| r.against_training.is_some() && r.against_previous.is_some()));
}

#[test]
fn concurrent_writers_lose_no_count() {
    let (monitor, alerts) = monitor();
    let monitor = Arc::new(monitor);
    // 4 threads, 50,000 rows each, all inside the first 5-minute window.
    let threads: Vec<_> = (0..4)
        .map(|k| {
            let monitor = monitor.clone();
            std::thread::spawn(move || {
                let mut rng = Rng::new(100 + k);
                for i in 0..50_000 {
                    let row = rng.row();
                    monitor.observe(i * 5_000 + k as i64, &row[..3], &row[3..]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    monitor.flush(2 * WINDOW_US);
    let latest = monitor.latest();
    let five_minutes: Vec<_> = latest.iter().filter(|r| r.window == WINDOW).collect();
    assert_eq!(five_minutes.len(), 4);
    for report in five_minutes {
        assert_eq!(report.counts.rows, 200_000, "{}", report.column);
        assert_eq!(report.counts.bins.iter().sum::<u64>(), report.counts.present(), "{}", report.column);
        assert_eq!(report.counts.sample.len(), 1_000, "{}", report.column);
    }
    assert!(alerts.lock().unwrap().is_empty());
}
