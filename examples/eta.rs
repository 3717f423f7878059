//! Delivery-time ranges end to end: the main fresco example.
//!
//! `cargo run -p fresco-examples --example eta [-- OUT_DIR]`
//!
//! One simulated week of a food-delivery city ([`fresco_examples::eta`], seeded, from
//! Monday 2026-11-02): each restaurant's usual preparation time is in the embedded
//! feature store, every kitchen order is a windowed-aggregate event (the model reads
//! the count of the last 30 minutes), and each order is scored through the `Client`,
//! at its simulated time, by the shipped ETA model
//! (`wasm-models/eta/model/eta.wasm`: LightGBM q10 / q50 / q90 boosters with conformal
//! offsets, trained by `wasm-models/eta/train.py`), which turns into a calibrated 80 %
//! range such as "24–41 min". Customers in a 5 % holdout are scored and logged but shown
//! a generic range. When the order arrives its true delivery time is logged as the
//! outcome; at the end the logs are joined into a training set, and a short report
//! prints ranges for sample orders, the empirical coverage overall and per segment
//! (weather, traffic, hour of day, distance: the model calibrates its offsets per
//! segment), the latency of single predictions, and where everything was written.
//!
//! Everything lives under OUT_DIR (default: `fresco-eta` in the system's temporary
//! directory, emptied at the start).
//!
//! With `--feast URL` the preparation times come from a Feast feature server instead
//! of the embedded store; `--write-feast-repo DIR` writes the Feast repository that
//! serves them (the same values), to `feast apply`, `feast materialize` and
//! `feast serve` (`docs/feast.md`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fresco::abi::SegmentFeature;
use fresco::aggregates::{AggregateStore, Aggregation, Definitions, StreamSpec, WindowedFeature};
use fresco::dataset::{DatasetSpec, TreatmentPolicy, build_training_set};
use fresco::holdout::Holdout;
use fresco::interval::CoverageReport;
use fresco::{
    Client, EmbeddedStore, FeatureStore, FeatureView, InputSource, LogConfig, ModelConfig, ModelSource, Prediction,
    PredictionLog, Request, SpoolDurability, Timestamp, Value, ValueType,
};
use fresco_examples::eta::{Order, STORED_FEATURE, Tick, WINDOWED_FEATURE, World, WorldConfig, model_path};
use fresco_examples::snapshot::FeatureSnapshot;
use fresco_feast::{EntityKind, FeastStore, FeastView};

/// The demo world's seed (the model was trained on another world, seed 7).
const SEED: u64 = 2026;
/// Simulated days.
const DAYS: u64 = 7;
/// Single predictions timed for the latency report.
const LATENCY_CALLS: usize = 2_000;
const WEATHER: [&str; 3] = ["clear", "rain", "storm"];
const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// The command line: `[--feast URL] [--write-feast-repo DIR] [OUT_DIR]`.
#[derive(Default)]
struct Args {
    out: Option<PathBuf>,
    feast: Option<String>,
    write_feast_repo: Option<PathBuf>,
}

fn args() -> Result<Args, Box<dyn std::error::Error>> {
    let mut parsed = Args::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--feast" => parsed.feast = Some(value("--feast")?),
            "--write-feast-repo" => parsed.write_feast_repo = Some(value("--write-feast-repo")?.into()),
            _ if arg.starts_with('-') => return Err(format!("unknown option {arg}").into()),
            _ => parsed.out = Some(arg.into()),
        }
    }
    Ok(parsed)
}

fn out_dir(chosen: Option<PathBuf>) -> Result<PathBuf, Box<dyn std::error::Error>> {
    if let Some(dir) = chosen {
        if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
            return Err(format!("{} is not empty", dir.display()).into());
        }
        return Ok(dir);
    }
    let dir = std::env::temp_dir().join("fresco-eta");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(dir)
}

/// The view the model reads `prep_time_min` from, in either store.
fn restaurants_view() -> FeatureView {
    FeatureView::new("restaurants", "restaurant_id").feature(STORED_FEATURE, ValueType::F64)
}

/// A Feast repository serving the restaurants' preparation times as of the start of
/// the week: the same values `publish_prep_times` writes to the embedded store.
fn write_feast_repo(dir: &std::path::Path, world: &World) -> Result<(), Box<dyn std::error::Error>> {
    use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
    std::fs::create_dir_all(dir.join("data"))?;
    std::fs::write(
        dir.join("feature_store.yaml"),
        "project: fresco_eta\nregistry: data/registry.db\nprovider: local\n\
         online_store:\n  type: sqlite\n  path: data/online.db\nentity_key_serialization_version: 3\n",
    )?;
    std::fs::write(
        dir.join("repo.py"),
        "from datetime import timedelta\n\
         from feast import Entity, FeatureView, Field, FileSource\n\
         from feast.types import Float64\n\
         from feast.value_type import ValueType\n\n\
         restaurant = Entity(name=\"restaurant\", join_keys=[\"restaurant_id\"], value_type=ValueType.STRING)\n\
         restaurants = FeatureView(name=\"restaurants\", entities=[restaurant], ttl=timedelta(0), online=True,\n\
         \x20   schema=[Field(name=\"prep_time_min\", dtype=Float64)],\n\
         \x20   source=FileSource(path=\"data/restaurants.parquet\", timestamp_field=\"event_timestamp\"))\n",
    )?;
    let restaurants = world.restaurants();
    let start = fresco_examples::eta::START_SECS * 1_000_000;
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("restaurant_id", Arc::new(StringArray::from_iter_values(restaurants.iter().map(|r| r.id.as_str())))),
        (STORED_FEATURE, Arc::new(Float64Array::from_iter_values(restaurants.iter().map(|r| r.prep_time_min)))),
        (
            "event_timestamp",
            Arc::new(TimestampMicrosecondArray::from(vec![start; restaurants.len()]).with_timezone("UTC")),
        ),
    ];
    let batch = RecordBatch::try_from_iter(columns)?;
    let file = std::fs::File::create(dir.join("data/restaurants.parquet"))?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)?;
    writer.write(&batch)?;
    writer.close()?;
    println!(
        "wrote a Feast repository for {} restaurants to {}; then, in it:\n  feast apply && feast materialize 2026-11-01 2026-11-03 && feast serve -h 127.0.0.1 -p 6566",
        restaurants.len(),
        dir.display()
    );
    Ok(())
}

fn request(world: &World, tick: &Tick, order: &Order) -> Request {
    Request::new()
        .at(Timestamp::from_secs(tick.start_secs()))
        .entity("restaurant_id", &world.restaurants()[order.restaurant].id)
        .entity("customer_id", &order.customer_id)
        .value("distance_km", order.distance_km)
        .value("hour", order.hour)
        .value("day_of_week", order.day_of_week)
        .value("traffic", order.traffic)
        .value("weather", order.weather as i64)
}

/// Writes the restaurants' usual preparation times to the store, as of `at`.
fn publish_prep_times(store: &EmbeddedStore, world: &World, at: Timestamp) -> Result<(), fresco::StoreError> {
    let rows = world.restaurants().iter().map(|r| (r.id.as_str(), at, vec![Value::F64(r.prep_time_min)]));
    store.write_batch("restaurants", rows)?;
    Ok(())
}

/// Records the kitchen orders behind the tick's loads, each arriving when it is placed.
fn record_kitchen_orders(
    aggregates: &AggregateStore,
    world: &World,
    tick: &Tick,
) -> Result<(), Box<dyn std::error::Error>> {
    for (secs, r) in tick.kitchen_orders() {
        let ts = Timestamp::from_micros((secs * 1e6) as i64);
        aggregates.record_event_at(ts, "kitchen_orders", &world.restaurants()[r].id, ts, 1.0)?;
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn describe(world: &World, order: &Order, p: &Prediction, range: &str) -> String {
    let hour = order.hour;
    let traffic = if order.traffic.is_nan() { "  n/a".to_owned() } else { format!("{:5.2}", order.traffic) };
    format!(
        "  {}  {}  {:4.1} km  {} {:02}:{:02}  traffic {traffic}  {:<5}  →  {:<10} actual {:5.1} min{}",
        order.id,
        world.restaurants()[order.restaurant].id,
        order.distance_km,
        DAY_NAMES[order.day_of_week as usize],
        hour as u32,
        ((hour.fract()) * 60.0) as u32,
        WEATHER[order.weather as usize],
        range,
        order.minutes,
        if p.may_treat() { "" } else { "  (holdout)" },
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    if let Some(dir) = &args.write_feast_repo {
        return write_feast_repo(dir, &World::new(WorldConfig { seed: SEED, ..WorldConfig::default() }));
    }
    let out = out_dir(args.out)?;
    std::fs::create_dir_all(&out)?;
    let logs = out.join("logs");

    let embedded = Arc::new(EmbeddedStore::open(out.join("features.redb"))?);
    embedded.define_view(restaurants_view())?;
    let store: Arc<dyn FeatureStore> = match &args.feast {
        Some(url) => {
            println!("features from the Feast feature server at {url}");
            Arc::new(
                FeastStore::builder(url.as_str())
                    .view(FeastView::new(restaurants_view(), EntityKind::String))
                    .deadline(Duration::from_secs(1))
                    .build()?,
            )
        }
        None => embedded.clone(),
    };
    let aggregates = Arc::new(AggregateStore::new(
        Definitions::new().stream(StreamSpec::new("kitchen_orders", "restaurant_id")).feature(WindowedFeature::new(
            WINDOWED_FEATURE,
            "kitchen_orders",
            Aggregation::Count,
            Duration::from_secs(30 * 60),
        )),
    )?);

    // Buffered: each record is written to the spool file before `predict` returns (it
    // survives a crash of this process) without waiting for the disk; `Fsync` also
    // survives a power cut, at the cost of a disk flush per call.
    let log = Arc::new(PredictionLog::open(LogConfig::new(&logs).durability(SpoolDurability::Buffered))?);
    let model = ModelConfig::new(ModelSource::wasm_file(model_path()))
        .holdout("eta-ranges")
        .input(STORED_FEATURE, InputSource::stored("restaurants", STORED_FEATURE))
        .input(WINDOWED_FEATURE, InputSource::windowed(WINDOWED_FEATURE));
    let client = Client::builder()
        .shared_feature_store(store.clone())
        .aggregates(aggregates.clone())
        .model(model)
        .holdout(Holdout::new("eta-ranges", "eta-2026", 0.05)?, "customer_id")
        .shared_log(log.clone())
        .build()?;
    let meta = client.metadata("eta")?;
    println!(
        "model {} v{}: inputs [{}] → [{}]",
        meta.name,
        meta.version,
        meta.inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(", "),
        meta.outputs.join(", ")
    );

    // Coverage per segment: those the model calibrates on, and distance.
    let by_distance = SegmentFeature { input: "distance_km".into(), edges: vec![2.0, 4.0, 6.0] };
    let mut coverage = CoverageReport::for_model(&meta, &[by_distance])?;
    let mut world = World::new(WorldConfig { seed: SEED, ..WorldConfig::default() });
    let (mut scored, mut held_out) = (0usize, 0usize);
    let mut samples = Vec::new();
    publish_prep_times(&embedded, &world, Timestamp::from_secs(fresco_examples::eta::START_SECS))?;
    let started = Instant::now();
    for _ in 0..DAYS * 48 {
        let tick = world.next_tick();
        record_kitchen_orders(&aggregates, &world, &tick)?;
        let requests: Vec<Request> = tick.orders.iter().map(|o| request(&world, &tick, o)).collect();
        for (order, p) in tick.orders.iter().zip(client.predict_batch("eta", &requests)?) {
            let Some(interval) = p.interval().transpose()? else {
                return Err("the ETA model declares no interval".into());
            };
            scored += 1;
            coverage.add(p.input_values(), &interval, order.minutes)?;
            held_out += usize::from(!p.may_treat());
            // Held-out customers see the generic promise, not the model's range.
            let shown = if p.may_treat() { interval.display("min").to_string() } else { "30–45 min".to_owned() };
            if tick.index == 39 && samples.len() < 6 {
                samples.push(describe(&world, order, &p, &shown));
            }
            // The order arrives: its true delivery time is the outcome.
            let arrived = Timestamp::from_micros(p.timestamp().as_micros() + (order.minutes * 60e6) as i64);
            client.log_outcome("eta", p.id(), order.minutes, arrived)?;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "scored {scored} orders from {} restaurants over {DAYS} simulated days in {:.2?} ({held_out} in the 5 % holdout)",
        world.restaurants().len(),
        elapsed
    );
    println!("sample ranges (Mon 19:30):");
    for line in &samples {
        println!("{line}");
    }
    let overall = coverage.overall();
    println!(
        "coverage: {:.1} % of deliveries inside their 80 % range (mean width {:.1} min); by segment:",
        100.0 * overall.coverage(),
        overall.mean_width()
    );
    print!("{coverage}");

    // Latency of one call: store read, scoring, holdout and the durable log.
    let tick = world.next_tick();
    record_kitchen_orders(&aggregates, &world, &tick)?;
    let mut micros = Vec::with_capacity(LATENCY_CALLS);
    for order in tick.orders.iter().cycle().take(LATENCY_CALLS) {
        let request = request(&world, &tick, order);
        let t = Instant::now();
        let p = client.predict("eta", &request)?;
        micros.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(p);
    }
    micros.sort_by(f64::total_cmp);
    println!(
        "latency of one predict (store + window + model + holdout + log): p50 {:.1} µs, p99 {:.1} µs over {LATENCY_CALLS} calls",
        percentile(&micros, 0.5),
        percentile(&micros, 0.99)
    );

    // What a backend would send the ETA page (`eta_web`): every restaurant's stored and
    // windowed features at the last tick, so the browser scores the model itself.
    let ids: Vec<&str> = world.restaurants().iter().map(|r| r.id.as_str()).collect();
    let mut snapshot = FeatureSnapshot::new("restaurant_id", tick.start_secs(), &[STORED_FEATURE, WINDOWED_FEATURE]);
    snapshot
        .read(&ids, &[(&*store, "restaurants", STORED_FEATURE), (&*aggregates, "kitchen_orders", WINDOWED_FEATURE)])?;
    let snapshot_path = out.join("features.json");
    snapshot.write(&snapshot_path)?;

    if args.feast.is_some() {
        let degraded = client.stats().degraded_fetches;
        println!("feature fetches degraded to defaults (Feast unavailable or late): {degraded}");
    }
    drop(client);
    Arc::try_unwrap(log).map_err(|_| "the log is still shared")?.close()?;
    let train = out.join("train.parquet");
    // Showing a range does not change how long a delivery takes, so every labeled
    // prediction is a valid training row.
    let report =
        build_training_set(&DatasetSpec::new(&logs, "eta", TreatmentPolicy::AllWithTreatment), &train, |_| {})?;
    println!("prediction and outcome logs (Parquet): {}", logs.display());
    println!(
        "training set: {} ({} rows; the {LATENCY_CALLS} timed predictions have no outcome)",
        train.display(),
        report.rows_written,
    );
    println!(
        "feature snapshot for the ETA page: {} ({} restaurants; `cargo run -p fresco-examples --example eta_web` serves it)",
        snapshot_path.display(),
        snapshot.len()
    );
    Ok(())
}
