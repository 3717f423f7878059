//! Windowed aggregates: online values equal offline (backfilled) values for the same
//! timestamps, both equal a brute-force reading of the rules, late and future events
//! are dropped and counted the same way, snapshots survive a restart, and a model reads
//! windowed features through the Client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef, Float64Array, StringArray, TimestampMicrosecondArray};
use fresco::aggregates::{
    AggregateError, AggregateStore, Aggregation, Definitions, EventLog, Recorded, StreamSpec, TILES_PER_WINDOW,
    WindowedFeature, backfill,
};
use fresco::{Client, EmbeddedStore, InputSource, MemorySink, ModelConfig, ModelSource, Request, Timestamp};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use proptest::prelude::*;

#[allow(dead_code)]
mod common;
use common::write_parquet;

const MINUTE: i64 = 60_000_000;
const T0: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
const TOLERANCE_MIN: i64 = 2;
const AGGREGATIONS: [Aggregation; 7] = [
    Aggregation::Count,
    Aggregation::Sum,
    Aggregation::Mean,
    Aggregation::Min,
    Aggregation::Max,
    Aggregation::Last,
    Aggregation::ApproxDistinct,
];

fn definitions() -> Definitions {
    definitions_of(&AGGREGATIONS)
}

/// Tiles keep only what their stream's aggregations read: these prefixes of
/// [`AGGREGATIONS`] give a stream each kind of tile (sums; and ranges; everything).
const TILE_KINDS: [usize; 3] = [3, 5, 7];

fn definitions_of(aggregations: &[Aggregation]) -> Definitions {
    let mut defs = Definitions::new().stream(
        StreamSpec::new("orders", "restaurant_id").late_tolerance(Duration::from_secs(TOLERANCE_MIN as u64 * 60)),
    );
    for (window, label) in [(5, "5m"), (30, "30m")] {
        for &agg in aggregations {
            defs = defs.feature(WindowedFeature::new(
                format!("{}_{label}", agg.name()),
                "orders",
                agg,
                Duration::from_secs(window * 60),
            ));
        }
    }
    defs
}

#[derive(Debug, Clone)]
struct Event {
    key: String,
    ts: i64,
    arrival: i64,
    value: f64,
}

#[derive(Debug, Clone)]
struct Read {
    key: Option<String>,
    t: i64,
}

/// Random streams: keys that appear and vanish, bursts at one instant, gaps of hours,
/// duplicates, arrivals delayed within and beyond the tolerance, a few dated after
/// their arrival; reads at random times, some for keys never seen.
fn scenario() -> impl Strategy<Value = (Vec<Event>, Vec<Read>)> {
    let step = prop_oneof![
        6 => 0i64..(MINUTE / 2),          // steady
        2 => Just(0i64),                  // burst: same instant
        1 => (60 * MINUTE)..(300 * MINUTE), // gap
    ];
    let delay = prop_oneof![
        8 => 0i64..(TOLERANCE_MIN * MINUTE),                      // within tolerance
        1 => (TOLERANCE_MIN * MINUTE)..(20 * MINUTE),             // late
        1 => (-MINUTE)..0i64,                                     // clock ahead: future
    ];
    let event =
        (step, delay, 0usize..6, prop_oneof![Just(1.0), -50.0f64..50.0, (0u8..4).prop_map(f64::from)], any::<bool>());
    // Reads: anywhere in the span, or just around where an event leaves a 5- or
    // 30-minute window (55 to 65 tiles after it), where off-by-one tiles would show.
    let read =
        (0usize..8, 0.0f64..1.2, any::<prop::sample::Index>(), prop_oneof![Just(0i64), Just(5), Just(30)], 55i64..66);
    (prop::collection::vec(event, 1..120), prop::collection::vec(read, 1..80)).prop_map(|(steps, reads)| {
        let mut ts = T0;
        let mut events: Vec<Event> = Vec::new();
        for (i, (step, delay, key, value, duplicate)) in steps.into_iter().enumerate() {
            ts += step;
            // Keys come and go: key k is active for a while, then replaced.
            let key = format!("r-{}", key + i / 40);
            let e = Event { key, ts, arrival: ts + delay, value };
            if duplicate && i % 7 == 0 {
                events.push(e.clone());
            }
            events.push(e);
        }
        let last = events.iter().map(|e| e.arrival.max(e.ts)).max().unwrap_or(T0);
        let reads = reads
            .into_iter()
            .map(|(k, f, event, window_min, tiles)| {
                let key = (k < 7).then(|| format!("r-{k}"));
                let t = if window_min == 0 {
                    T0 + ((last - T0) as f64 * f) as i64
                } else {
                    // `window_min` minutes is 60 tiles of window_min seconds.
                    let e = &events[event.index(events.len())];
                    let jitter = (f * 1_000_000.0) as i64;
                    e.ts + tiles * window_min * 1_000_000 + jitter - 500_000
                };
                Read { key, t }
            })
            .collect();
        (events, reads)
    })
}

/// Online: events and reads in time order (events arriving at `t` before reads at `t`).
fn online(defs: &Definitions, events: &[Event], reads: &[Read]) -> (Vec<Vec<Option<f64>>>, AggregateStore) {
    let store = AggregateStore::new(defs.clone()).unwrap();
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| (events[i].arrival, i));
    let mut read_order: Vec<usize> = (0..reads.len()).collect();
    read_order.sort_by_key(|&r| reads[r].t);
    let mut values = vec![Vec::new(); reads.len()];
    let mut next = 0;
    for r in read_order {
        let t = reads[r].t;
        while next < order.len() && events[order[next]].arrival <= t {
            let e = &events[order[next]];
            store
                .record_event_at(
                    Timestamp::from_micros(e.arrival),
                    "orders",
                    &e.key,
                    Timestamp::from_micros(e.ts),
                    e.value,
                )
                .unwrap();
            next += 1;
        }
        values[r] = defs
            .features()
            .iter()
            .map(|f| reads[r].key.as_ref().and_then(|k| store.read(&f.name, k, Timestamp::from_micros(t)).unwrap()))
            .collect();
    }
    for &i in &order[next..] {
        let e = &events[i];
        store
            .record_event_at(Timestamp::from_micros(e.arrival), "orders", &e.key, Timestamp::from_micros(e.ts), e.value)
            .unwrap();
    }
    (values, store)
}

fn micros(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values.collect::<Vec<_>>()).with_timezone("UTC"))
}

/// Offline: the events as a Parquet log, the reads as a Parquet table, `backfill`.
fn offline(
    defs: &Definitions,
    events: &[Event],
    reads: &[Read],
) -> (Vec<Vec<Option<f64>>>, fresco::aggregates::BackfillReport) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("orders.parquet");
    write_parquet(
        &log,
        vec![
            (
                "restaurant_id",
                Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.key.as_str()))) as ArrayRef,
            ),
            ("ts", micros(events.iter().map(|e| e.ts))),
            ("value", Arc::new(Float64Array::from_iter_values(events.iter().map(|e| e.value)))),
            ("arrival", micros(events.iter().map(|e| e.arrival))),
        ],
    );
    let table = dir.path().join("rows.parquet");
    write_parquet(
        &table,
        vec![
            ("restaurant_id", Arc::new(StringArray::from_iter(reads.iter().map(|r| r.key.as_deref()))) as ArrayRef),
            ("ts", micros(reads.iter().map(|r| r.t))),
        ],
    );
    let out = dir.path().join("out.parquet");
    let report = backfill(defs, &[EventLog::new("orders", &log)], &table, &out, |_, _| {}).unwrap();
    let batches: Vec<_> = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&out).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut values = vec![Vec::new(); reads.len()];
    let mut row = 0;
    for batch in &batches {
        for r in 0..batch.num_rows() {
            values[row] = defs
                .features()
                .iter()
                .map(|f| {
                    let column = batch.column_by_name(&f.name).unwrap().as_primitive::<Float64Type>();
                    column.is_valid(r).then(|| column.value(r))
                })
                .collect();
            row += 1;
        }
    }
    (values, report)
}

/// The rules read literally, one event at a time.
fn brute_force(defs: &Definitions, events: &[Event], read: &Read) -> Vec<Option<f64>> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by_key(|&i| (events[i].arrival, i));
    let mut latest = i64::MIN;
    let mut visible = Vec::new(); // accepted events that arrived by the read, in arrival order
    for i in order {
        let e = &events[i];
        if e.ts > e.arrival || e.ts < latest.saturating_sub(TOLERANCE_MIN * MINUTE) {
            continue;
        }
        latest = latest.max(e.ts);
        if e.arrival <= read.t && Some(&e.key) == read.key.as_ref() {
            visible.push(e);
        }
    }
    defs.features()
        .iter()
        .map(|f| {
            read.key.as_ref()?;
            let tile = f.window.as_micros() as i64 / TILES_PER_WINDOW;
            let last_tile = read.t.div_euclid(tile);
            let inside: Vec<&&Event> = visible
                .iter()
                .filter(|e| e.ts.div_euclid(tile) > last_tile - TILES_PER_WINDOW && e.ts.div_euclid(tile) <= last_tile)
                .collect();
            let n = inside.len() as f64;
            let sum: f64 = inside.iter().map(|e| e.value).sum();
            match f.aggregation {
                Aggregation::Count => Some(n),
                Aggregation::Sum => Some(sum),
                _ if inside.is_empty() => None,
                Aggregation::Mean => Some(sum / n),
                Aggregation::Min => inside.iter().map(|e| e.value).reduce(f64::min),
                Aggregation::Max => inside.iter().map(|e| e.value).reduce(f64::max),
                // Latest event time; ties: the one that arrived last.
                Aggregation::Last => inside.iter().max_by_key(|e| e.ts).map(|e| e.value),
                Aggregation::ApproxDistinct => {
                    let mut distinct: Vec<u64> = inside.iter().map(|e| (e.value + 0.0).to_bits()).collect();
                    distinct.sort_unstable();
                    distinct.dedup();
                    Some(distinct.len() as f64)
                }
                _ => unreachable!(),
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn online_equals_offline_equals_the_rules((events, reads) in scenario()) {
        for n in TILE_KINDS {
            let defs = definitions_of(&AGGREGATIONS[..n]);
            let (on, store) = online(&defs, &events, &reads);
            let (off, report) = offline(&defs, &events, &reads);
            for (r, read) in reads.iter().enumerate() {
                let expected = brute_force(&defs, &events, read);
                for (f, feature) in defs.features().iter().enumerate() {
                    // Online and offline: the same code in the same order, so the same bits.
                    prop_assert_eq!(on[r][f].map(f64::to_bits), off[r][f].map(f64::to_bits), "{} at read {:?}", feature.name, read);
                    let (got, want) = (on[r][f], expected[f]);
                    match feature.aggregation {
                        Aggregation::Sum | Aggregation::Mean => {
                            let close = match (got, want) {
                                (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                                (a, b) => a == b,
                            };
                            prop_assert!(close, "{} at {:?}: {:?} vs {:?}", feature.name, read, got, want);
                        }
                        Aggregation::ApproxDistinct => {
                            let (a, b) = (got.unwrap_or(0.0), want.unwrap_or(0.0));
                            // Linear counting over 256 registers undercounts by the values
                            // that share a register: about Poisson with mean b(b-1)/512 (two
                            // collisions among 8 values happen in ~0.5 % of windows). Allow
                            // 10 % plus 6 standard deviations of that.
                            let collisions = b * (b - 1.0).max(0.0) / 512.0;
                            let allowed = 0.1 * b + 1.0 + collisions + 6.0 * collisions.sqrt();
                            prop_assert!((a - b).abs() <= allowed, "{} at {:?}: {} vs {}", feature.name, read, a, b);
                        }
                        _ => prop_assert_eq!(got, want, "{} at {:?}", feature.name, read),
                    }
                }
            }
            let stats = store.stats("orders").unwrap();
            prop_assert_eq!((stats.accepted, stats.late, stats.future), (report.accepted, report.late, report.future));
            prop_assert_eq!(report.events, events.len() as u64);
            // A restart from a snapshot reads the same at and after the last event.
            let restored = AggregateStore::restore(defs.clone(), &store.snapshot().unwrap()).unwrap();
            let end = Timestamp::from_micros(events.iter().map(|e| e.arrival.max(e.ts)).max().unwrap_or(T0));
            for key in (0..8).map(|k| format!("r-{k}")) {
                for f in defs.features() {
                    let (a, b) = (store.read(&f.name, &key, end).unwrap(), restored.read(&f.name, &key, end).unwrap());
                    prop_assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits), "{} of {} after a restore", f.name, key);
                }
            }
        }
    }
}

#[test]
fn late_and_future_events_are_counted_and_dropped() {
    let defs = definitions();
    let store = AggregateStore::new(defs).unwrap();
    let at = |m: i64| Timestamp::from_micros(T0 + m * MINUTE);
    assert_eq!(store.record_event_at(at(10), "orders", "r-1", at(10), 1.0).unwrap(), Recorded::Accepted);
    // One minute behind the latest: within the two-minute tolerance.
    assert_eq!(store.record_event_at(at(11), "orders", "r-1", at(9), 1.0).unwrap(), Recorded::Accepted);
    // Three minutes behind: late.
    assert_eq!(store.record_event_at(at(11), "orders", "r-2", at(7), 1.0).unwrap(), Recorded::Late);
    // Dated after it arrived.
    assert_eq!(store.record_event_at(at(11), "orders", "r-1", at(12), 1.0).unwrap(), Recorded::Future);
    assert_eq!(store.read("count_5m", "r-1", at(12)).unwrap(), Some(2.0));
    assert_eq!(store.read("count_5m", "r-2", at(12)).unwrap(), Some(0.0));
    let stats = store.stats("orders").unwrap();
    assert_eq!((stats.accepted, stats.late, stats.future, stats.keys), (2, 1, 1, 1));
    assert!(matches!(
        store.record_event_at(at(12), "orders", "r-1", at(12), f64::NAN),
        Err(AggregateError::InvalidValue { .. })
    ));
    assert!(matches!(store.read("nope", "r-1", at(12)), Err(AggregateError::UnknownFeature { .. })));
    assert!(matches!(store.record_event("refunds", "r-1", at(12), 1.0), Err(AggregateError::UnknownStream { .. })));
}

#[test]
fn snapshots_restore_full_windows_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("features.redb");
    let at = |m: i64| Timestamp::from_micros(T0 + m * MINUTE);
    let before: Vec<Option<f64>>;
    {
        let store = AggregateStore::new(definitions()).unwrap();
        for i in 0..500 {
            let m = i / 20;
            store.record_event_at(at(m), "orders", &format!("r-{}", i % 13), at(m), (i % 17) as f64).unwrap();
        }
        before = store.definitions().features().iter().map(|f| store.read(&f.name, "r-3", at(26)).unwrap()).collect();
        EmbeddedStore::open(&path).unwrap().put_blob("aggregates", &store.snapshot().unwrap()).unwrap();
    }
    let bytes = EmbeddedStore::open(&path).unwrap().get_blob("aggregates").unwrap().unwrap();
    let restored = AggregateStore::restore(definitions(), &bytes).unwrap();
    let after: Vec<Option<f64>> =
        restored.definitions().features().iter().map(|f| restored.read(&f.name, "r-3", at(26)).unwrap()).collect();
    assert_eq!(before, after);
    assert_eq!(restored.stats("orders").unwrap().accepted, 500);

    // Other definitions, or damaged bytes: a typed error, never a panic.
    let other = Definitions::new().stream(StreamSpec::new("orders", "restaurant_id"));
    assert!(matches!(AggregateStore::restore(other, &bytes), Err(AggregateError::Snapshot { .. })));
    for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
        assert!(AggregateStore::restore(definitions(), &bytes[..cut]).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn damaged_snapshots_are_refused(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let store = AggregateStore::new(definitions()).unwrap();
        for i in 0..40 {
            let t = Timestamp::from_micros(T0 + i * MINUTE / 3);
            store.record_event_at(t, "orders", &format!("r-{}", i % 3), t, i as f64).unwrap();
        }
        let original = store.snapshot().unwrap();
        let mut bytes = original.clone();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= byte;
        }
        let restored = AggregateStore::restore(definitions(), &bytes);
        if bytes == original {
            // The flips cancelled out: the store comes back and reads as before.
            let restored = restored.unwrap();
            let now = Timestamp::from_micros(T0 + 14 * MINUTE);
            for f in store.definitions().features() {
                for key in ["r-0", "r-1", "r-2"] {
                    prop_assert_eq!(restored.read(&f.name, key, now).unwrap(), store.read(&f.name, key, now).unwrap());
                }
            }
        } else {
            prop_assert!(matches!(restored, Err(AggregateError::Snapshot { .. })), "a damaged snapshot was restored");
        }
    }
}

#[test]
fn concurrent_writers_and_readers_lose_nothing() {
    let store = Arc::new(AggregateStore::new(definitions()).unwrap());
    let now = Timestamp::from_micros(T0);
    std::thread::scope(|s| {
        for w in 0..4 {
            let store = store.clone();
            s.spawn(move || {
                for i in 0..5_000 {
                    store.record_event_at(now, "orders", &format!("r-{}", (i * 4 + w) % 97), now, 1.0).unwrap();
                }
            });
        }
        let store = store.clone();
        s.spawn(move || {
            for i in 0..5_000 {
                let n = store.read("count_5m", &format!("r-{}", i % 97), now).unwrap().unwrap();
                assert!((0.0..=20_000.0).contains(&n));
            }
        });
    });
    let total: f64 = (0..97).map(|k| store.read("count_30m", &format!("r-{k}"), now).unwrap().unwrap()).sum();
    assert_eq!(total, 20_000.0);
}

#[test]
fn a_model_reads_windowed_features_through_the_client() {
    let store = Arc::new(AggregateStore::new(definitions()).unwrap());
    let now = Timestamp::now();
    // Oldest first: each within the late tolerance of the one before.
    for i in (0..7).rev() {
        store.record_event("orders", "r-17", Timestamp::from_micros(now.as_micros() - i * MINUTE), 1.0).unwrap();
    }
    // y = 2·a + 3·b + 1, with `a` the restaurant's orders in the last 30 minutes.
    let client = Client::builder()
        .aggregates(store.clone())
        .model(
            ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear()))
                .input("a", InputSource::windowed("count_30m")),
        )
        .log_to(MemorySink::new())
        .build()
        .unwrap();
    let p = client.predict("linear", &Request::new().entity("restaurant_id", "r-17").value("b", 1.0)).unwrap();
    assert_eq!(p.output("y"), Some(2.0 * 7.0 + 3.0 + 1.0));
    // A restaurant with no orders: a count of zero, not a missing value.
    let p = client.predict("linear", &Request::new().entity("restaurant_id", "r-99").value("b", 1.0)).unwrap();
    assert_eq!(p.output("y"), Some(4.0));

    let err = Client::builder()
        .model(
            ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear()))
                .input("a", InputSource::windowed("count_30m")),
        )
        .log_to(MemorySink::new())
        .build()
        .err()
        .unwrap();
    assert!(err.to_string().contains("count_30m"), "{err}");
}

#[test]
fn backfill_refuses_bad_inputs_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let defs = definitions();
    let table = dir.path().join("rows.parquet");
    write_parquet(
        &table,
        vec![("restaurant_id", Arc::new(StringArray::from(vec!["r-1"])) as ArrayRef), ("ts", micros([T0].into_iter()))],
    );
    let log = dir.path().join("orders.parquet");
    write_parquet(&log, vec![("ts", micros([T0].into_iter()))]);
    let out = dir.path().join("out.parquet");
    let err = backfill(&defs, &[EventLog::new("orders", &log)], &table, &out, |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("orders.parquet") && err.to_string().contains("restaurant_id"), "{err}");
    std::fs::write(&log, b"not parquet").unwrap();
    let err = backfill(&defs, &[EventLog::new("orders", &log)], &table, &out, |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("orders.parquet"), "{err}");
    let err = backfill(&defs, &[EventLog::new("refunds", &log)], &table, &out, |_, _| {}).unwrap_err();
    assert!(matches!(err, AggregateError::UnknownStream { .. }), "{err}");
    assert!(!out.exists());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Definitions files and durations from anywhere: an answer, never a panic.
    #[test]
    fn definition_parsing_never_panics(text in "\\PC{0,200}", toml_like in "(\\[\\[(stream|feature)\\]\\]\n|[a-z_]{1,12} = (\"[0-9a-z ]{0,8}\"|[0-9]{1,25})\n){0,12}") {
        let _ = Definitions::from_toml(&text);
        let _ = Definitions::from_toml(&toml_like);
        let _ = fresco::aggregates::parse_duration(&text);
    }
}

/// The events and reads as Arrow batches: the log (with a `recorded` column when
/// `marks` is given) and the table.
fn as_batches(
    events: &[&Event],
    marks: Option<&[fresco::aggregates::Recorded]>,
    reads: &[&Read],
) -> (arrow_array::RecordBatch, arrow_array::RecordBatch) {
    let mut log = vec![
        ("restaurant_id", Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.key.as_str()))) as ArrayRef),
        ("ts", micros(events.iter().map(|e| e.ts))),
        ("value", Arc::new(Float64Array::from_iter_values(events.iter().map(|e| e.value)))),
        ("arrival", micros(events.iter().map(|e| e.arrival))),
    ];
    if let Some(marks) = marks {
        log.push(("recorded", Arc::new(StringArray::from_iter_values(marks.iter().map(|m| m.name())))));
    }
    let table = vec![
        ("restaurant_id", Arc::new(StringArray::from_iter(reads.iter().map(|r| r.key.as_deref()))) as ArrayRef),
        ("ts", micros(reads.iter().map(|r| r.t))),
    ];
    (arrow_array::RecordBatch::try_from_iter(log).unwrap(), arrow_array::RecordBatch::try_from_iter(table).unwrap())
}

/// Every feature of every row, as bits (`None` for null).
fn feature_bits(defs: &Definitions, batches: &[arrow_array::RecordBatch]) -> Vec<Vec<Option<u64>>> {
    let mut rows = Vec::new();
    for batch in batches {
        for r in 0..batch.num_rows() {
            rows.push(
                defs.features()
                    .iter()
                    .map(|f| {
                        let c = batch.column_by_name(&f.name).unwrap().as_primitive::<Float64Type>();
                        c.is_valid(r).then(|| c.value(r).to_bits())
                    })
                    .collect(),
            );
        }
    }
    rows
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// What a distributed backfill does: the late rule marked over the whole log in
    /// arrival order (in slices, each resuming from the one before), then one replay per
    /// entity key. It gives the single replay's features, bit for bit.
    #[test]
    fn marked_per_key_replays_equal_one_replay((events, reads) in scenario(), slices in 1usize..5) {
        use fresco::aggregates::{backfill_batches, EventBatches, LateMarker};

        let defs = definitions();
        let all_events: Vec<&Event> = events.iter().collect();
        let all_reads: Vec<&Read> = reads.iter().collect();
        let (log, table) = as_batches(&all_events, None, &all_reads);
        let (whole, report) = backfill_batches(&defs, &[EventBatches::new("orders", vec![log])], &[table]).unwrap();

        // Arrival order (stable), marked slice by slice.
        let mut by_arrival = all_events.clone();
        by_arrival.sort_by_key(|e| e.arrival);
        let spec = &defs.streams()[0];
        let mut latest = None;
        let mut marks = Vec::new();
        for slice in by_arrival.chunks(by_arrival.len().div_ceil(slices)) {
            let mut marker = LateMarker::new(spec).resume_after(latest);
            marks.extend(slice.iter().map(|e| marker.mark(Timestamp::from_micros(e.ts), Timestamp::from_micros(e.arrival))));
            latest = marker.latest();
        }
        prop_assert_eq!(marks.iter().filter(|m| **m == fresco::aggregates::Recorded::Late).count() as u64, report.late);

        let mut keys: Vec<Option<&str>> = reads.iter().map(|r| r.key.as_deref()).collect();
        keys.sort();
        keys.dedup();
        let mut per_key = vec![None; reads.len()];
        for key in keys {
            let (ev, mk): (Vec<&Event>, Vec<_>) =
                by_arrival.iter().zip(&marks).filter(|(e, _)| Some(e.key.as_str()) == key).map(|(e, m)| (*e, *m)).unzip();
            let rows: Vec<usize> = (0..reads.len()).filter(|&r| reads[r].key.as_deref() == key).collect();
            let mine: Vec<&Read> = rows.iter().map(|&r| &reads[r]).collect();
            let (log, table) = as_batches(&ev, Some(&mk), &mine);
            let (out, _) = backfill_batches(&defs, &[EventBatches::new("orders", vec![log])], &[table]).unwrap();
            for (value, &r) in feature_bits(&defs, &out).into_iter().zip(&rows) {
                per_key[r] = Some(value);
            }
        }
        let per_key: Vec<Vec<Option<u64>>> = per_key.into_iter().map(Option::unwrap).collect();
        prop_assert_eq!(per_key, feature_bits(&defs, &whole));
    }
}
