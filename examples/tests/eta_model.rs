//! The shipped ETA model: it loads, declares its 80 % interval with offsets per
//! segment, and covers about 80 % of deliveries, overall and within each segment, in a
//! world it was not trained on (another seed of the generator).

use fresco::abi::SegmentFeature;
use fresco::interval::{CoverageReport, IntervalRule};
use fresco::runtime::{Engine, Model};
use fresco_examples::eta::{INPUTS, World, WorldConfig, model_path};

/// Coverage of the shipped model's intervals on a simulated week of world `seed`,
/// overall and per segment (the calibrated ones, and distance).
fn coverage_on_week(seed: u64) -> CoverageReport {
    let model = Model::from_file(&Engine::new().unwrap(), model_path()).unwrap();
    let meta = model.metadata();
    assert_eq!(meta.inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), INPUTS);
    assert_eq!(meta.outputs, ["q10", "q50", "q90"]);
    let spec = meta.interval.clone().expect("an interval");
    assert_eq!(spec.coverage, 0.8);
    assert!(spec.segments.is_some(), "offsets per segment");
    let rule = IntervalRule::for_model(meta).unwrap().expect("an interval");

    let mut world = World::new(WorldConfig { seed, ..WorldConfig::default() });
    let orders: Vec<_> = (0..48 * 7).flat_map(|_| world.next_tick().orders).collect();
    let rows: Vec<f64> = orders.iter().flat_map(|o| o.features()).collect();
    let outputs = model.predict(&rows).unwrap();
    let by_distance = SegmentFeature { input: "distance_km".into(), edges: vec![2.0, 4.0, 6.0] };
    let mut report = CoverageReport::for_model(meta, &[by_distance]).unwrap();
    for (order, (row, out)) in orders.iter().zip(rows.chunks_exact(INPUTS.len()).zip(outputs.chunks_exact(3))) {
        report.add(row, &rule.apply(row, out).unwrap(), order.minutes).unwrap();
    }
    println!("world {seed}:\n{report}");
    report
}

/// The bar the model was trained to (wasm-models/eta/train.py), on its unseen week:
/// the main job's world. Overall within 1 point of 80 %, each segment of 500 rows or
/// more within 3.
#[test]
fn shipped_model_meets_its_bar_on_the_main_jobs_week() {
    let report = coverage_on_week(2026);
    let coverage = report.overall().coverage();
    assert!((0.79..=0.81).contains(&coverage), "coverage {coverage}\n{report}");
    for s in report.segments().filter(|s| s.tally.rows >= 500) {
        let c = s.tally.coverage();
        assert!((0.77..=0.83).contains(&c), "{} {}: coverage {c}\n{report}", s.input, s.range);
    }
}

/// A world it has never seen: overall within 1.5 points; each segment within three
/// standard errors of a binomial 80 % over its rows (766 rows: ±4.3 points).
#[test]
fn shipped_model_is_calibrated_on_a_fresh_world() {
    let report = coverage_on_week(4242);
    let coverage = report.overall().coverage();
    assert!((0.785..=0.815).contains(&coverage), "coverage {coverage}\n{report}");
    for s in report.segments().filter(|s| s.tally.rows >= 500) {
        let (c, n) = (s.tally.coverage(), s.tally.rows as f64);
        let band = 3.0 * (0.8 * 0.2 / n).sqrt();
        assert!((c - 0.8).abs() <= band, "{} {}: coverage {c} over {n} rows\n{report}", s.input, s.range);
    }
}
