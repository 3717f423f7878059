//! The shipped ETA model: it loads, declares its 80 % interval, and covers about 80 %
//! of deliveries in a world it was not trained on (another seed of the generator).

use fresco::interval::IntervalRule;
use fresco::runtime::{Engine, Model};
use fresco_examples::eta::{INPUTS, World, WorldConfig, model_path};

#[test]
fn shipped_model_is_calibrated_on_a_fresh_world() {
    let model = Model::from_file(&Engine::new().unwrap(), model_path()).unwrap();
    let meta = model.metadata();
    assert_eq!(meta.inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), INPUTS);
    assert_eq!(meta.outputs, ["q10", "q50", "q90"]);
    let spec = meta.interval.clone().expect("an interval");
    assert_eq!(spec.coverage, 0.8);
    let rule = IntervalRule::new(&spec, &meta.outputs).unwrap();

    let mut world = World::new(WorldConfig { seed: 4242, ..WorldConfig::default() });
    let orders: Vec<_> = (0..48 * 7).flat_map(|_| world.next_tick().orders).collect();
    let rows: Vec<f64> = orders.iter().flat_map(|o| o.features()).collect();
    let outputs = model.predict(&rows).unwrap();
    let covered = orders
        .iter()
        .zip(outputs.chunks_exact(3))
        .filter(|(order, out)| rule.apply(out).unwrap().contains(order.minutes))
        .count();
    let coverage = covered as f64 / orders.len() as f64;
    // ~30,000 orders: the sampling error of the coverage is ~0.25 points.
    assert!((0.785..=0.815).contains(&coverage), "coverage {coverage} over {} orders", orders.len());
}
