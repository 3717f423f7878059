//! Properties every input must keep: bounds, symmetry, identities, and statistics a
//! model's metadata accepts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fresco_abi::{InputSpec, InputType, ModelKind, ModelMetadata, StatsKind, TrainingStats};
use fresco_drift::{ColumnKind, DriftConfig, detect, jensen_shannon, ks_2samp, profile, wasserstein_distance};
use proptest::prelude::*;

fn sample() -> impl Strategy<Value = Vec<f64>> {
    // Rounded values, so that ties are common.
    prop::collection::vec((-1000i32..1000).prop_map(|v| f64::from(v) / 8.0), 1..300)
}

proptest! {
    #[test]
    fn ks_is_bounded_and_symmetric(a in sample(), b in sample()) {
        let ab = ks_2samp(&a, &b).unwrap();
        let ba = ks_2samp(&b, &a).unwrap();
        prop_assert!((0.0..=1.0).contains(&ab.statistic));
        prop_assert!((0.0..=1.0).contains(&ab.p_value));
        prop_assert_eq!(ab.statistic, ba.statistic);
        prop_assert!((ab.p_value - ba.p_value).abs() < 1e-12);
        let same = ks_2samp(&a, &a).unwrap();
        prop_assert_eq!((same.statistic, same.p_value), (0.0, 1.0));
    }

    #[test]
    fn wasserstein_is_a_distance_that_measures_shifts(a in sample(), b in sample(), shift in -50.0f64..50.0) {
        let d = wasserstein_distance(&a, &b).unwrap();
        prop_assert!(d >= 0.0);
        prop_assert!((d - wasserstein_distance(&b, &a).unwrap()).abs() <= 1e-9 * d.max(1.0));
        prop_assert_eq!(wasserstein_distance(&a, &a).unwrap(), 0.0);
        let moved: Vec<f64> = a.iter().map(|x| x + shift).collect();
        let w = wasserstein_distance(&a, &moved).unwrap();
        prop_assert!((w - shift.abs()).abs() <= 1e-9 * shift.abs().max(1.0), "{} vs {}", w, shift);
    }

    #[test]
    fn jensen_shannon_is_bounded(p in prop::collection::vec(0.0f64..10.0, 1..40), q in prop::collection::vec(0.0f64..10.0, 1..40)) {
        let n = p.len().min(q.len());
        let (p, q) = (&p[..n], &q[..n]);
        if p.iter().sum::<f64>() > 0.0 && q.iter().sum::<f64>() > 0.0 {
            let d = jensen_shannon(p, q).unwrap();
            prop_assert!((0.0..=std::f64::consts::LN_2.sqrt() + 1e-12).contains(&d), "{}", d);
        }
    }

    #[test]
    fn profiles_are_consistent_and_valid_metadata(
        values in prop::collection::vec(prop_oneof![9 => (-500i32..500).prop_map(|v| f64::from(v) / 4.0), 1 => Just(f64::NAN)], 0..2500),
        bins in 1usize..40,
        categorical in any::<bool>(),
    ) {
        let kind = if categorical { StatsKind::Categorical } else { StatsKind::Numeric };
        let values: Vec<f64> = if categorical { values.iter().map(|v| if v.is_nan() { *v } else { v.abs().floor() }).collect() } else { values };
        let stats = profile(&values, kind, bins);
        let present = values.iter().filter(|v| !v.is_nan()).count() as u64;
        prop_assert_eq!(stats.count, values.len() as u64);
        prop_assert_eq!(stats.present(), present);
        prop_assert_eq!(stats.counts.len(), stats.bin_edges.len() + 1);
        prop_assert_eq!(stats.sample.len() as u64, present.min(1_000));
        for v in values.iter().filter(|v| !v.is_nan()) {
            let b = stats.bin_of(*v);
            prop_assert!(stats.counts[b] > 0);
        }
        let mut training = TrainingStats::default();
        training.inputs.insert("x".into(), stats.clone());
        let mut meta = ModelMetadata::new("m", "1", ModelKind::Custom)
            .with_inputs(vec![InputSpec::f64("x")])
            .with_outputs(vec!["y".into()]);
        meta.training_stats = Some(training);
        prop_assert!(meta.validate().is_ok(), "{:?}", meta.validate());
        prop_assert_eq!(ModelMetadata::from_json(meta.to_json().as_bytes()).unwrap(), meta);
        // A sample tested against itself never drifts.
        if present > 0 {
            let kind = if categorical { ColumnKind::Categorical } else { ColumnKind::Numeric };
            let score = detect(&values, &values, kind, &DriftConfig::default()).unwrap();
            prop_assert!(!score.drifted, "{:?}", score);
        }
    }
}

/// A training column: numbers (a few distinct values, or many), or categories.
fn training_column() -> impl Strategy<Value = (Vec<f64>, StatsKind)> {
    prop_oneof![
        (prop::collection::vec((-50i32..50).prop_map(|v| f64::from(v) / 4.0), 1..400), Just(StatsKind::Numeric)),
        (prop::collection::vec((0i32..6).prop_map(f64::from), 1..400), Just(StatsKind::Categorical)),
        // One value only: a constant training column, or a single category.
        ((-5i32..5, 1usize..200).prop_map(|(v, n)| vec![f64::from(v); n]), Just(StatsKind::Numeric)),
        ((0i32..3, 1usize..200).prop_map(|(v, n)| vec![f64::from(v); n]), Just(StatsKind::Categorical)),
    ]
}

/// Live values built to be degenerate: all missing, one value, one row, or ordinary.
fn live_column() -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        (0usize..400).prop_map(|n| vec![f64::NAN; n]),
        ((-60i32..60), 0usize..400).prop_map(|(v, n)| vec![f64::from(v) / 4.0; n]),
        (-60i32..60).prop_map(|v| vec![f64::from(v) / 4.0]),
        prop::collection::vec(prop_oneof![Just(f64::NAN), (-60i32..60).prop_map(|v| f64::from(v) / 4.0)], 0..400),
    ]
}

proptest! {
    /// The rules give a verdict on any column, degenerate ones included, and the
    /// verdict follows the documented rules (docs/design.md §10).
    #[test]
    fn degenerate_columns_get_the_rules_verdict(
        (training, kind) in training_column(),
        live in live_column(),
        integral in any::<bool>(),
    ) {
        let config = fresco_drift::MonitorConfig::default();
        let stats = profile(&training, kind, 10);
        let spec = InputSpec { ty: if integral { InputType::I64 } else { InputType::F64 }, ..InputSpec::f64("x") };
        let column = fresco_drift::MonitoredColumn::input(&spec, stats.clone());
        let counts = column.count(&live, 1_000);
        prop_assert_eq!(counts.rows, live.len() as u64);
        prop_assert_eq!(counts.missing, live.iter().filter(|v| v.is_nan()).count() as u64);
        prop_assert_eq!(counts.bins.iter().sum::<u64>(), counts.present());
        let verdict = column.judge(&counts, &config);
        if counts.rows < config.min_rows {
            prop_assert!(!verdict.judged && !verdict.drifted());
            return Ok(());
        }
        prop_assert!(verdict.judged);
        if let Some((score, psi)) = verdict.score {
            prop_assert!(score.score.is_finite() && psi.is_finite() && psi >= 0.0, "{:?} {}", score, psi);
        }
        let names: Vec<&str> = verdict.findings.iter().map(|f| f.name()).collect();
        let missing_moved = (counts.missing_rate() - stats.missing_rate).abs() > config.max_missing_rate_change;
        prop_assert_eq!(names.contains(&"missing_rate"), missing_moved);
        // No values: no test, and "drifted" only through the missing rate.
        if counts.present() == 0 {
            prop_assert!(verdict.score.is_none());
            prop_assert_eq!(verdict.drifted(), missing_moved);
        }
        // One live value where training had several is a finding; where training had
        // one (a constant, a single category) it is not.
        let live_constant = counts.present() > 0 && counts.constant.is_some();
        prop_assert_eq!(names.contains(&"constant"), live_constant && stats.distinct > 1);
        let fractions = live.iter().any(|v| v.is_finite() && v.fract() != 0.0);
        prop_assert_eq!(names.contains(&"float_for_integer"), integral && fractions);
    }
}
