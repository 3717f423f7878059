//! A seeded, synthetic food-delivery world for the ETA examples.
//!
//! Time advances in 30-minute ticks from a Monday at 00:00. Each tick has city-wide
//! weather (a Markov chain: clear, rain, storm) and a traffic level that follows the
//! weekday rush hours, and each restaurant a kitchen load: its orders in the last
//! 30 minutes, a Poisson draw around its popularity times the demand at that hour
//! (lunch and dinner peaks). Orders arrive at a rate that follows the same demand.
//!
//! An order's delivery time is kitchen time (the restaurant's usual preparation time,
//! slowed by its load) plus riding time (distance over a speed that drops with traffic
//! and bad weather) plus a few minutes for pickup and handover, times a right-skewed
//! log-normal noise whose spread grows with traffic, distance and bad weather, plus a
//! rare incident delay (a long tail). Traffic readings are missing for a few orders.
//!
//! The same seed gives the same world on every platform: randomness is SplitMix64 and
//! the arithmetic is plain IEEE-754 (`ln`, `exp`, `cos`, `sqrt` of the platform's libm,
//! which is deterministic on a given target).
//!
//! ```
//! use fresco_examples::eta::{INPUTS, World, WorldConfig};
//!
//! let mut world = World::new(WorldConfig { seed: 7, ..WorldConfig::default() });
//! let tick = world.next_tick();
//! for order in &tick.orders {
//!     assert_eq!(order.features().len(), INPUTS.len());
//!     assert!(order.minutes > 0.0);
//! }
//! ```

use fresco_test_models::synthetic::SplitMix64;

use crate::random::{normal, poisson};

/// The model's inputs, in order. `weather` is categorical (0 clear, 1 rain, 2 storm).
pub const INPUTS: [&str; 7] =
    ["distance_km", "hour", "day_of_week", "traffic", "weather", "prep_time_min", "orders_last_30min"];

/// The input stored per restaurant (a feature store, keyed by `restaurant_id`).
pub const STORED_FEATURE: &str = "prep_time_min";

/// The input kept as a windowed aggregate: a count of the restaurant's kitchen orders
/// over the last 30 minutes.
pub const WINDOWED_FEATURE: &str = "orders_last_30min";

/// The simulated world's first tick, Monday 2026-11-02 00:00 UTC, in seconds since
/// the Unix epoch.
pub const START_SECS: i64 = 1_793_577_600;

/// The window feature's tiles, in seconds: a read at `t` counts the events of the
/// tile holding `t` and of the 59 before it (`fresco::aggregates`).
const WINDOW_TILE_SECS: f64 = 30.0;

/// The shipped ETA model (`wasm-models/eta/model/eta.wasm`), trained on this world
/// by `wasm-models/eta/train.py`.
pub fn model_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wasm-models/eta/model/eta.wasm")
}

/// Minutes per tick.
pub const TICK_MINUTES: u32 = 30;

/// How big a world to simulate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorldConfig {
    /// Seed of everything.
    pub seed: u64,
    /// Restaurants in the city.
    pub restaurants: usize,
    /// Customers (orders draw their customer uniformly).
    pub customers: u32,
    /// Mean orders per tick at peak demand (demand 1.0).
    pub peak_orders_per_tick: f64,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig { seed: 1, restaurants: 300, customers: 50_000, peak_orders_per_tick: 400.0 }
    }
}

/// A restaurant: its id, usual preparation time and how popular it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Restaurant {
    /// `r-0000`, `r-0001`, …
    pub id: String,
    /// Usual preparation time in minutes, unloaded kitchen.
    pub prep_time_min: f64,
    /// Relative share of the city's orders.
    pub popularity: f64,
}

/// One order and its true delivery time.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// Unique, increasing: `o-0000000`, …
    pub id: String,
    /// Who ordered: `c-00000`, …
    pub customer_id: String,
    /// Index into [`World::restaurants`].
    pub restaurant: usize,
    /// Riding distance.
    pub distance_km: f64,
    /// Time of day in hours, `[0, 24)`.
    pub hour: f64,
    /// 0 = Monday … 6 = Sunday.
    pub day_of_week: f64,
    /// Congestion in `[0, 1]`; NaN when the reading is missing.
    pub traffic: f64,
    /// 0 clear, 1 rain, 2 storm.
    pub weather: f64,
    /// The restaurant's usual preparation time.
    pub prep_time_min: f64,
    /// The restaurant's orders in the last 30 minutes.
    pub orders_last_30min: f64,
    /// The true delivery time in minutes (the outcome).
    pub minutes: f64,
}

impl Order {
    /// The model inputs in the order of [`INPUTS`].
    pub fn features(&self) -> [f64; 7] {
        [
            self.distance_km,
            self.hour,
            self.day_of_week,
            self.traffic,
            self.weather,
            self.prep_time_min,
            self.orders_last_30min,
        ]
    }
}

/// One 30-minute tick: conditions, restaurant loads and the orders placed.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Ticks since Monday 00:00 of the first week.
    pub index: u64,
    /// 0 = Monday … 6 = Sunday.
    pub day_of_week: u32,
    /// Hour at the start of the tick (a multiple of 0.5).
    pub hour: f64,
    /// City-wide weather: 0 clear, 1 rain, 2 storm.
    pub weather: u8,
    /// City-wide traffic level in `[0, 1]`.
    pub traffic: f64,
    /// Each restaurant's orders in the last 30 minutes, by restaurant index.
    pub loads: Vec<u32>,
    /// Orders placed during the tick.
    pub orders: Vec<Order>,
}

impl Tick {
    /// When the tick starts, in seconds since the Unix epoch.
    pub fn start_secs(&self) -> i64 {
        START_SECS + i64::try_from(self.index).unwrap_or(i64::MAX / 2) * i64::from(TICK_MINUTES) * 60
    }

    /// The kitchen orders behind the tick's loads, as `(seconds since the epoch,
    /// restaurant index)` in time order: restaurant `r` gets `loads[r]` orders spread
    /// evenly over the window that a 30-minute windowed count read at the tick's start
    /// covers, so that the count read then is exactly `loads[r]` (the value the model
    /// was trained on).
    pub fn kitchen_orders(&self) -> Vec<(f64, usize)> {
        let start = self.start_secs() as f64;
        let span = f64::from(TICK_MINUTES) * 60.0 - WINDOW_TILE_SECS;
        let mut events = Vec::with_capacity(self.loads.iter().map(|&n| n as usize).sum());
        for (r, &n) in self.loads.iter().enumerate() {
            for j in 0..n {
                events.push((start - span + (f64::from(j) + 0.5) * span / f64::from(n), r));
            }
        }
        events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        events
    }
}

/// The simulated city.
#[derive(Debug, Clone)]
pub struct World {
    config: WorldConfig,
    rng: SplitMix64,
    restaurants: Vec<Restaurant>,
    popularity_total: f64,
    tick: u64,
    weather: u8,
    next_order: u64,
}

impl World {
    /// A world at tick 0 (Monday 00:00).
    pub fn new(config: WorldConfig) -> Self {
        let mut rng = SplitMix64::new(config.seed);
        let restaurants: Vec<Restaurant> = (0..config.restaurants.max(1))
            .map(|i| Restaurant {
                id: format!("r-{i:04}"),
                prep_time_min: 6.0 + 14.0 * rng.next_f64() + 6.0 * rng.next_f64() * rng.next_f64(),
                popularity: (0.9 * normal(&mut rng)).exp(),
            })
            .collect();
        let popularity_total = restaurants.iter().map(|r| r.popularity).sum();
        World { config, rng, restaurants, popularity_total, tick: 0, weather: 0, next_order: 0 }
    }

    /// The restaurants, by index.
    pub fn restaurants(&self) -> &[Restaurant] {
        &self.restaurants
    }

    /// Simulates the next tick.
    pub fn next_tick(&mut self) -> Tick {
        let index = self.tick;
        self.tick += 1;
        let ticks_per_day = u64::from(24 * 60 / TICK_MINUTES);
        let day_of_week = ((index / ticks_per_day) % 7) as u32;
        let hour = (index % ticks_per_day) as f64 * f64::from(TICK_MINUTES) / 60.0;
        self.weather = next_weather(&mut self.rng, self.weather);
        let traffic = (rush(hour, day_of_week) + 0.08 * normal(&mut self.rng)).clamp(0.0, 1.0);
        let demand = demand(hour, day_of_week);
        let mean_share = self.popularity_total / self.restaurants.len() as f64;
        let loads: Vec<u32> = (0..self.restaurants.len())
            .map(|r| poisson(&mut self.rng, 14.0 * demand * self.restaurants[r].popularity / mean_share))
            .collect();

        let n_orders = poisson(&mut self.rng, self.config.peak_orders_per_tick * demand);
        let mut orders = Vec::with_capacity(n_orders as usize);
        for _ in 0..n_orders {
            let restaurant = self.pick_restaurant();
            let order = self.order(restaurant, hour, day_of_week, traffic, loads[restaurant]);
            orders.push(order);
        }
        Tick { index, day_of_week, hour, weather: self.weather, traffic, loads, orders }
    }

    fn pick_restaurant(&mut self) -> usize {
        let mut target = self.rng.next_f64() * self.popularity_total;
        for (i, r) in self.restaurants.iter().enumerate() {
            target -= r.popularity;
            if target < 0.0 {
                return i;
            }
        }
        self.restaurants.len() - 1
    }

    fn order(&mut self, restaurant: usize, hour: f64, day_of_week: u32, traffic: f64, load: u32) -> Order {
        let rng = &mut self.rng;
        let id = format!("o-{:07}", self.next_order);
        self.next_order += 1;
        let customer_id = format!("c-{:05}", rng.below(self.config.customers.max(1) as usize));
        let hour = hour + rng.next_f64() * f64::from(TICK_MINUTES) / 60.0;
        let distance_km = (3.0 * (0.6 * normal(rng)).exp()).clamp(0.2, 20.0);
        let traffic = (traffic + 0.05 * normal(rng)).clamp(0.0, 1.0);
        let weather = self.weather;
        let prep = self.restaurants[restaurant].prep_time_min;

        let kitchen = prep * (1.0 + 0.025 * f64::from(load));
        let speed_kmh = 26.0 * (1.0 - 0.55 * traffic) * [1.0, 0.85, 0.65][usize::from(weather)];
        let riding = distance_km / speed_kmh * 60.0;
        let sigma = 0.08 + 0.22 * traffic + 0.012 * distance_km + [0.0, 0.04, 0.10][usize::from(weather)];
        let noise = (sigma * normal(rng) - sigma * sigma / 2.0).exp();
        let incident = if rng.next_f64() < 0.04 { -8.0 * (1.0 - rng.next_f64()).ln() } else { 0.0 };
        let minutes = (kitchen + riding + 3.0) * noise + incident;
        let traffic_reading = if rng.next_f64() < 0.03 { f64::NAN } else { traffic };
        Order {
            id,
            customer_id,
            restaurant,
            distance_km,
            hour,
            day_of_week: f64::from(day_of_week),
            traffic: traffic_reading,
            weather: f64::from(weather),
            prep_time_min: prep,
            orders_last_30min: f64::from(load),
            minutes,
        }
    }
}

/// A bump of height 1 at `center`.
fn bump(hour: f64, center: f64, width: f64) -> f64 {
    (-((hour - center) / width).powi(2)).exp()
}

/// Order demand in `[0.05, 1]`: lunch and dinner peaks, busier weekend evenings.
fn demand(hour: f64, day_of_week: u32) -> f64 {
    let dinner = if day_of_week >= 5 { 1.0 } else { 0.85 };
    (0.05 + 0.6 * bump(hour, 12.5, 1.3) + dinner * bump(hour, 19.5, 1.8)).min(1.0)
}

/// Traffic level by time of day: weekday rush hours, a calmer weekend.
fn rush(hour: f64, day_of_week: u32) -> f64 {
    if day_of_week >= 5 {
        0.15 + 0.3 * bump(hour, 14.0, 4.0)
    } else {
        0.15 + 0.6 * bump(hour, 8.5, 1.2) + 0.65 * bump(hour, 17.8, 1.6) + 0.15 * bump(hour, 13.0, 2.0)
    }
}

/// Weather as a Markov chain over ticks: spells of rain and the odd storm.
fn next_weather(rng: &mut SplitMix64, now: u8) -> u8 {
    let u = rng.next_f64();
    match now {
        0 if u < 0.03 => 1,
        0 if u < 0.035 => 2,
        1 if u < 0.12 => 0,
        1 if u < 0.15 => 2,
        2 if u < 0.25 => 1,
        w => w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_world() {
        let mut a = World::new(WorldConfig { seed: 3, ..WorldConfig::default() });
        let mut b = World::new(WorldConfig { seed: 3, ..WorldConfig::default() });
        for _ in 0..60 {
            let (ta, tb) = (a.next_tick(), b.next_tick());
            assert_eq!(ta.orders.len(), tb.orders.len());
            for (x, y) in ta.orders.iter().zip(&tb.orders) {
                assert_eq!(x.minutes.to_bits(), y.minutes.to_bits());
                assert_eq!(x.id, y.id);
            }
        }
    }

    /// The main job reads `orders_last_30min` as a windowed count at each tick's start;
    /// it must be exactly the load the model was trained on, tick after tick.
    #[test]
    fn windowed_counts_at_tick_starts_equal_the_loads() {
        use fresco::aggregates::{AggregateStore, Aggregation, Definitions, StreamSpec, WindowedFeature};
        use fresco::{FeatureStore, Timestamp, Value};

        let defs = Definitions::new().stream(StreamSpec::new("kitchen", "restaurant_id")).feature(
            WindowedFeature::new(WINDOWED_FEATURE, "kitchen", Aggregation::Count, std::time::Duration::from_secs(1800)),
        );
        let store = AggregateStore::new(defs).unwrap();
        let mut world = World::new(WorldConfig { seed: 5, restaurants: 40, ..WorldConfig::default() });
        let keys: Vec<String> = world.restaurants().iter().map(|r| r.id.clone()).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        for _ in 0..100 {
            let tick = world.next_tick();
            for (secs, r) in tick.kitchen_orders() {
                let ts = Timestamp::from_micros((secs * 1e6) as i64);
                let recorded = store.record_event_at(ts, "kitchen", keys[r], ts, 1.0).unwrap();
                assert_eq!(recorded, fresco::aggregates::Recorded::Accepted);
            }
            let now = Timestamp::from_secs(tick.start_secs());
            let read = store.get_features("kitchen", &keys, &[WINDOWED_FEATURE], now).unwrap();
            for (r, row) in read.iter().enumerate() {
                assert_eq!(row[0].value, Value::F64(f64::from(tick.loads[r])), "tick {} restaurant {r}", tick.index);
            }
        }
    }

    #[test]
    fn orders_are_plausible_and_right_skewed() {
        let mut world = World::new(WorldConfig::default());
        let minutes: Vec<f64> = (0..48 * 7).flat_map(|_| world.next_tick().orders).map(|o| o.minutes).collect();
        assert!(minutes.len() > 10_000, "{} orders in a week", minutes.len());
        assert!(minutes.iter().all(|m| m.is_finite() && *m > 3.0 && *m < 300.0));
        let mean = minutes.iter().sum::<f64>() / minutes.len() as f64;
        let mut sorted = minutes.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        assert!(mean > median, "mean {mean} median {median}: not right-skewed");
        assert!((15.0..60.0).contains(&median), "median {median}");
    }
}
