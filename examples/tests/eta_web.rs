//! The ETA page (`examples/eta-web`) in a real browser: Debian's headless Chromium,
//! driven over the DevTools protocol.
//!
//! For orders of the delivery world it picks the restaurant, types the trip into the
//! page's fields and checks that the range shown equals the one the Rust host computes
//! from the same request values and the restaurant's features in the snapshot; that a
//! held-out customer sees the generic promise; and that a value the model's input type
//! refuses is reported, not scored. (Bitwise parity of the web package with the Rust
//! host on every model is `web_package.rs`.)
//!
//! Needs Chromium: `chromium` on PATH or `FRESCO_CHROMIUM=/path/to/chromium`. `.ci/run`
//! installs it and runs `cargo test -p fresco-examples --test eta_web -- --ignored`;
//! without a browser the test fails, it does not skip.

mod support;

use std::time::Duration;

use fresco::holdout::Holdout;
use fresco::interval::IntervalRule;
use fresco::runtime::{Engine, Model};
use fresco_examples::eta::{INPUTS, STORED_FEATURE, WINDOWED_FEATURE, World, WorldConfig, model_path};
use fresco_examples::serve::eta_site;
use fresco_examples::snapshot::FeatureSnapshot;
use serde_json::json;
use support::Browser;

/// The fields a person types: every input but the two the snapshot holds.
const TYPED: [&str; 5] = ["distance_km", "hour", "day_of_week", "traffic", "weather"];

#[test]
#[ignore = "needs headless Chromium; .ci/run installs it and runs this with --ignored"]
fn the_page_shows_the_range_the_rust_host_computes_from_the_snapshot() {
    let engine = Engine::new().unwrap();
    let model = Model::from_file(&engine, model_path()).unwrap();
    let rule = IntervalRule::for_model(model.metadata()).unwrap().expect("the ETA model declares an interval");
    assert_eq!(INPUTS[5..], [STORED_FEATURE, WINDOWED_FEATURE]);

    // A snapshot as the main job writes it: every restaurant's preparation time and a
    // kitchen load, one restaurant with no load reading.
    let mut world = World::new(WorldConfig { seed: 99, ..WorldConfig::default() });
    let tick = world.next_tick();
    let mut snapshot = FeatureSnapshot::new("restaurant_id", tick.start_secs(), &[STORED_FEATURE, WINDOWED_FEATURE]);
    for (k, (r, load)) in world.restaurants().iter().zip(&tick.loads).enumerate() {
        snapshot.push(&r.id, vec![Some(r.prep_time_min), (k != 3).then_some(f64::from(*load))]);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("features.json");
    snapshot.write(&path).unwrap();
    let site = eta_site(&path).unwrap().start("127.0.0.1:0").unwrap();

    let browser = Browser::launch();
    let mut tab = browser.open(&format!("http://{}/", site.addr()));
    tab.wait_for("document.body !== null && document.body.dataset.ready === 'true'", Duration::from_secs(60));
    let fields: Vec<String> =
        serde_json::from_value(tab.eval("Array.from(document.querySelectorAll('#inputs input[id^=in-]'), e => e.id)"))
            .unwrap();
    assert_eq!(fields, TYPED.map(|i| format!("in-{i}")), "the page asks for the request-time inputs only");

    let orders: Vec<_> = (0..40).flat_map(|_| world.next_tick().orders).step_by(97).take(12).collect();
    assert!(orders.len() >= 8);
    for (k, order) in orders.iter().enumerate() {
        // Orders of restaurant 3 (no load reading) are among them.
        let restaurant = if k % 5 == 0 { 3 } else { order.restaurant };
        let id = &world.restaurants()[restaurant].id;
        tab.eval(&format!(
            "(() => {{ const s = document.getElementById('restaurant'); s.value = {}; s.dispatchEvent(new Event('change')); }})()",
            json!(id)
        ));
        let features = order.features();
        let mut texts: Vec<String> = features[..TYPED.len()]
            .iter()
            .map(|x| if x.is_nan() { String::new() } else { format!("{x:.2}") })
            .collect();
        if k % 4 == 3 {
            texts[k % TYPED.len()] = String::new();
        }
        for (field, text) in fields.iter().zip(&texts) {
            tab.type_into(field, text);
        }
        let mut row: Vec<f64> =
            texts.iter().map(|t| if t.is_empty() { f64::NAN } else { t.parse().unwrap() }).collect();
        let load = if restaurant == 3 { f64::NAN } else { f64::from(tick.loads[restaurant]) };
        row.extend([world.restaurants()[restaurant].prep_time_min, load]);
        let outputs = model.predict(&row).unwrap();
        let expected = rule.apply(&row, &outputs).unwrap().display("min").to_string();
        let shown = tab.eval("document.getElementById('range').textContent");
        assert_eq!(shown, json!(expected), "restaurant {id}, typed {texts:?}");
    }

    // The holdout decided in the browser, by the hash of docs/design.md §5.
    let holdout = Holdout::new("eta-ranges", "eta-2026", 0.05).unwrap();
    let held = (0..).map(|i| format!("c-{i}")).find(|c| holdout.contains(c)).unwrap();
    let treated = (0..).map(|i| format!("c-{i}")).find(|c| !holdout.contains(c)).unwrap();
    tab.type_into("customer", &held);
    assert_eq!(tab.eval("document.getElementById('range').textContent"), json!("30–45 min"), "{held} is held out");
    tab.type_into("customer", &treated);
    assert_ne!(tab.eval("document.getElementById('range').textContent"), json!("30–45 min"), "{treated} is treated");

    // A weather code that is not a category is refused by the input's type, as in Rust.
    tab.type_into("in-weather", "1.5");
    assert_eq!(tab.eval("document.getElementById('range').textContent"), json!("–"));
    let detail = tab.eval("document.getElementById('detail').textContent");
    assert!(detail.as_str().unwrap().contains("weather"), "{detail}");
}
