//! Windowed aggregates: events ingested per second on one thread, and the latency of
//! one aggregate read. Run it pinned to one core:
//!
//! ```sh
//! taskset -c 0 cargo bench -p fresco-benches --bench aggregates
//! ```
//!
//! Each figure is the best of three runs. The peer in the same run is the floor of any
//! keyed ingestion: a `HashMap<String, u64>` counter bumped per event (same keys, same
//! order).
//!
//! "Tailing" is what a replica's follower does with the shared event stream: the same
//! events, published in batches of 1,000 to a recorded (in-memory) stream, read back
//! 4,096 entries at a time (the follower's default) and applied in order. Arguments
//! pick configurations by a word of their label (`-- distinct`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use fresco::Timestamp;
use fresco::aggregates::{AggregateStore, Aggregation, Definitions, StreamSpec, WindowedFeature};
use fresco::events::{Batch, Event, EventStream, MemoryStream};
use fresco_test_models::synthetic::SplitMix64;

const EVENTS: usize = 2_000_000;
const KEYS: usize = 10_000;
const READS: usize = 1_000_000;
/// Entries per read when tailing: `FollowerConfig::default().read_batch`.
const READ_BATCH: usize = 4_096;
const T0: i64 = 1_767_225_600_000_000;

/// A feature: name, aggregation, window in minutes.
type Feature = (&'static str, Aggregation, u64);

fn definitions(features: &[Feature]) -> Definitions {
    let mut defs =
        Definitions::new().stream(StreamSpec::new("orders", "restaurant_id").late_tolerance(Duration::from_secs(120)));
    for (name, agg, minutes) in features {
        defs = defs.feature(WindowedFeature::new(*name, "orders", *agg, Duration::from_secs(minutes * 60)));
    }
    defs
}

fn main() {
    let keys: Vec<String> = (0..KEYS).map(|k| format!("r-{k:05}")).collect();
    let mut rng = SplitMix64::new(7);
    // 2,000 events per second of event time, slightly out of order (within 1 s).
    let events: Vec<(usize, i64, f64)> = (0..EVENTS)
        .map(|i| {
            let jitter = rng.below(1_000_000) as i64;
            (rng.below(KEYS), T0 + i as i64 * 500 + jitter, (rng.below(100) as f64) * 0.5)
        })
        .collect();
    let end = Timestamp::from_micros(T0 + EVENTS as i64 * 500 + 1_000_000);

    let peer = (0..3)
        .map(|_| {
            let started = Instant::now();
            let mut counts: HashMap<String, u64> = HashMap::new();
            for (k, _, _) in &events {
                match counts.get_mut(keys[*k].as_str()) {
                    Some(c) => *c += 1,
                    None => {
                        counts.insert(keys[*k].clone(), 1);
                    }
                }
            }
            black_box(&counts);
            EVENTS as f64 / started.elapsed().as_secs_f64()
        })
        .fold(0.0f64, f64::max);
    println!("{EVENTS} events over {KEYS} keys, one thread");
    println!("  peer: HashMap<String, u64> counter      {:>12.0} events/s", peer);

    let configs: [(&str, Vec<Feature>); 3] = [
        ("count over 30 min", vec![("orders_30m", Aggregation::Count, 30)]),
        (
            "count, sum, mean, max over 5 min, 30 min, 1 h",
            vec![
                ("orders_5m", Aggregation::Count, 5),
                ("orders_30m", Aggregation::Count, 30),
                ("orders_1h", Aggregation::Count, 60),
                ("sum_30m", Aggregation::Sum, 30),
                ("mean_1h", Aggregation::Mean, 60),
                ("max_1h", Aggregation::Max, 60),
            ],
        ),
        ("approx distinct over 1 h", vec![("distinct_1h", Aggregation::ApproxDistinct, 60)]),
    ];
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let recorded = MemoryStream::new();
    for (sequence, chunk) in events.chunks(1_000).enumerate() {
        let events = chunk
            .iter()
            .map(|(k, ts, v)| Event::new("orders", keys[*k].as_str(), Timestamp::from_micros(*ts), *v))
            .collect();
        recorded.publish(&Batch { producer: "bench".into(), sequence: sequence as u64, events }).unwrap();
    }
    for (label, features) in configs {
        if !only.is_empty() && !only.iter().any(|word| label.contains(word.as_str())) {
            continue;
        }
        // Best of three runs: this machine is shared, and the slow runs measure the
        // neighbours.
        let mut rate = 0.0f64;
        let mut store = AggregateStore::new(definitions(&features)).unwrap();
        for _ in 0..3 {
            store = AggregateStore::new(definitions(&features)).unwrap();
            let started = Instant::now();
            for (k, ts, v) in &events {
                let ts = Timestamp::from_micros(*ts);
                black_box(store.record_event_at(end, "orders", &keys[*k], ts, *v).unwrap());
            }
            rate = rate.max(EVENTS as f64 / started.elapsed().as_secs_f64());
        }
        println!("  fresco: {label:<45} {rate:>12.0} events/s ({:.2}× the peer)", rate / peer);
        let tailed = (0..3)
            .map(|_| {
                let follower = AggregateStore::new(definitions(&features)).unwrap();
                let started = Instant::now();
                let mut at = None;
                loop {
                    let entries = recorded.read(at, READ_BATCH, Duration::ZERO).unwrap();
                    let Some(last) = entries.last() else { break };
                    at = Some(last.position);
                    black_box(follower.apply(&entries));
                }
                EVENTS as f64 / started.elapsed().as_secs_f64()
            })
            .fold(0.0f64, f64::max);
        println!("      tailing a recorded stream                    {tailed:>12.0} events/s");

        for (name, agg, _) in &features {
            let probe: Vec<usize> = (0..READS).map(|_| rng.below(KEYS)).collect();
            let ns = (0..3)
                .map(|_| {
                    let started = Instant::now();
                    for k in &probe {
                        black_box(store.read(name, &keys[*k], end).unwrap());
                    }
                    started.elapsed().as_nanos() as f64 / READS as f64
                })
                .fold(f64::INFINITY, f64::min);
            println!("      read {name:<12} ({:<15}) {ns:>8.0} ns", agg.name());
        }
    }
}
