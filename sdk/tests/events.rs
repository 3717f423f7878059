//! The shared event stream on the in-process `MemoryStream`: followers agree with each
//! other and with the backfill, apply each entry once, warm-start from snapshots, and
//! refuse reads (then recover from the archive) when the stream was trimmed past them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is the test failing

use std::sync::Arc;
use std::time::Duration;

use fresco::Timestamp;
use fresco::aggregates::{AggregateError, Aggregation, Definitions, StreamSpec, WindowedFeature, backfill_batches};
use fresco::events::archive::{Archive, ArchiveError, archive_stream, entry_batches};
use fresco::events::{
    Batch, Entry, Event, EventStream, Follower, FollowerConfig, MemoryStream, Position, PublishPolicy, Publisher,
    StreamError,
};

const MINUTE: i64 = 60_000_000;
const WAIT: Duration = Duration::from_secs(10);

fn definitions() -> Definitions {
    let mut defs = Definitions::new()
        .stream(StreamSpec::new("orders", "restaurant_id").late_tolerance(Duration::from_secs(120)))
        .stream(StreamSpec::new("ratings", "restaurant_id"));
    for (aggregation, window) in [
        (Aggregation::Count, 300),
        (Aggregation::Sum, 1800),
        (Aggregation::Mean, 1800),
        (Aggregation::Max, 300),
        (Aggregation::Last, 1800),
        (Aggregation::ApproxDistinct, 1800),
    ] {
        let name = format!("orders_{}_{window}", aggregation.name());
        defs = defs.feature(WindowedFeature::new(name, "orders", aggregation, Duration::from_secs(window)));
    }
    defs.feature(WindowedFeature::new("ratings_30m", "ratings", Aggregation::Mean, Duration::from_secs(1800)))
}

/// A deterministic stream of events around `now`: out of order, some late, some dated
/// after their arrival, one of an undeclared stream, one not finite.
fn events(now: Timestamp, n: u64, seed: u64) -> Vec<Event> {
    let mut x = seed;
    let mut next = move || {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z ^ (z >> 27)
    };
    (0..n)
        .map(|i| {
            let r = next();
            let offset = match r % 100 {
                0..=4 => -20 * MINUTE,                     // late
                5..=7 => 10 * MINUTE,                      // after its arrival
                _ => -(((r >> 8) % MINUTE as u64) as i64), // out of order, within a minute
            };
            let stream = if r % 13 == 0 { "ratings" } else { "orders" };
            Event::new(
                stream,
                format!("r-{}", (r >> 20) % 50),
                Timestamp::from_micros(now.as_micros() + offset),
                (i % 17) as f64 + 0.25,
            )
        })
        .collect()
}

fn publish_all(stream: &dyn EventStream, events: Vec<Event>, producer: &str, from_sequence: u64) {
    for (n, chunk) in events.chunks(97).enumerate() {
        let batch = Batch { producer: producer.into(), sequence: from_sequence + n as u64, events: chunk.to_vec() };
        stream.publish(&batch).unwrap();
    }
}

/// Every feature for `keys` at `t`, as bits (`None`: missing).
fn read_all(store: &fresco::aggregates::AggregateStore, keys: &[String], t: Timestamp) -> Vec<Option<u64>> {
    let defs = definitions();
    let mut out = Vec::new();
    for key in keys {
        for f in defs.features() {
            out.push(store.read(&f.name, key, t).unwrap().map(f64::to_bits));
        }
    }
    out
}

/// The backfill of `entries` at `t` for `keys`, in the order of `read_all`.
fn backfill_at(entries: &[Entry], keys: &[String], t: Timestamp) -> Vec<Option<u64>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;
    use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
    let defs = definitions();
    let table = RecordBatch::try_from_iter([
        ("restaurant_id", Arc::new(StringArray::from_iter_values(keys)) as ArrayRef),
        ("ts", Arc::new(Int64Array::from(vec![t.as_micros(); keys.len()])) as ArrayRef),
    ])
    .unwrap();
    let (out, _) = backfill_batches(&defs, &entry_batches(&defs, entries).unwrap(), &[table]).unwrap();
    let mut values = Vec::new();
    for row in 0..keys.len() {
        for f in defs.features() {
            let column = out[0].column_by_name(&f.name).unwrap().as_primitive::<Float64Type>();
            values.push(column.is_valid(row).then(|| column.value(row).to_bits()));
        }
    }
    values
}

fn keys() -> Vec<String> {
    (0..52).map(|k| format!("r-{k}")).collect()
}

#[test]
fn followers_agree_with_each_other_and_with_the_backfill() {
    let stream: Arc<dyn EventStream> = Arc::new(MemoryStream::new());
    let a = Follower::start(definitions(), stream.clone(), FollowerConfig::default()).unwrap();
    let now = Timestamp::now();
    publish_all(stream.as_ref(), events(now, 3_000, 1), "p1", 0);
    // A follower that starts late replays the stream from its start.
    let b = Follower::start(definitions(), stream.clone(), FollowerConfig::default()).unwrap();
    publish_all(stream.as_ref(), events(now, 2_000, 2), "p2", 0);
    let end = stream.end().unwrap().unwrap();
    a.wait_for(end, WAIT).unwrap();
    b.wait_for(end, WAIT).unwrap();

    let entries = stream.read(None, usize::MAX, Duration::ZERO).unwrap();
    let t = Timestamp::from_micros(entries.last().unwrap().arrival.as_micros() + MINUTE);
    let expected = backfill_at(&entries, &keys(), t);
    assert_eq!(read_all(&a.store(), &keys(), t), expected);
    assert_eq!(read_all(&b.store(), &keys(), t), expected);
    let status = a.status();
    assert!(status.applied.late > 0 && status.applied.future > 0, "{status:?}");
    assert_eq!(status.applied.accepted + status.applied.late + status.applied.future, 5_000);
}

#[test]
fn an_entry_read_twice_is_applied_once() {
    let stream = MemoryStream::new();
    let now = Timestamp::now();
    publish_all(&stream, events(now, 500, 3), "p", 0);
    // The same batches again (a producer retrying): nothing appended.
    publish_all(&stream, events(now, 500, 3), "p", 0);
    assert_eq!(stream.read(None, usize::MAX, Duration::ZERO).unwrap().len(), 500);

    let entries = stream.read(None, usize::MAX, Duration::ZERO).unwrap();
    let once = fresco::aggregates::AggregateStore::new(definitions()).unwrap();
    let first = once.apply(&entries);
    // A reconnect that reads an overlapping range, and a whole replay.
    let again = once.apply(&entries[200..]);
    let replay = once.apply(&entries);
    assert_eq!(again.duplicate, 300);
    assert_eq!(replay.duplicate, 500);
    assert_eq!(first.accepted + first.late + first.future + first.unusable, 500);
    let t = Timestamp::from_micros(now.as_micros() + MINUTE);
    assert_eq!(read_all(&once, &keys(), t), backfill_at(&entries, &keys(), t));
}

#[test]
fn unusable_entries_are_skipped_and_counted_alike() {
    let stream = MemoryStream::new();
    let now = Timestamp::now();
    let batch = Batch {
        producer: "p".into(),
        sequence: 0,
        events: vec![
            Event::new("orders", "r-1", now, 1.0),
            Event::new("refunds", "r-1", now, 1.0), // not declared
            Event::new("orders", "r-1", now, 2.0),
        ],
    };
    stream.publish(&batch).unwrap();
    let store = fresco::aggregates::AggregateStore::new(definitions()).unwrap();
    let applied = store.apply(&stream.read(None, 10, Duration::ZERO).unwrap());
    assert_eq!((applied.accepted, applied.unusable), (2, 1));
    assert_eq!(store.position(), Some(Position::new(0, 3)));
    // A publisher refuses what no reader could apply.
    let publisher = Publisher::new(Arc::new(MemoryStream::new()), PublishPolicy::default());
    let refused = publisher.publish(Event::new("orders", "r-1", now, f64::NAN)).unwrap_err();
    assert!(matches!(refused, StreamError::InvalidEvent { .. }), "{refused}");
}

#[test]
fn a_restarted_follower_resumes_from_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let stream: Arc<dyn EventStream> = Arc::new(MemoryStream::new());
    let now = Timestamp::now();
    publish_all(stream.as_ref(), events(now, 2_000, 4), "p", 0);
    let config = FollowerConfig::default().snapshots(dir.path());
    let first = Follower::start(definitions(), stream.clone(), config.clone()).unwrap();
    first.catch_up(WAIT).unwrap();
    let snapshot = first.stop().unwrap().expect("a snapshot");
    assert!(snapshot.file_name().unwrap().to_str().unwrap().starts_with("aggregates-"));

    publish_all(stream.as_ref(), events(now, 1_000, 5), "p", 1_000);
    let second = Follower::start(definitions(), stream.clone(), config).unwrap();
    // Restored at the snapshot's position: only the newer entries are read.
    second.catch_up(WAIT).unwrap();
    assert_eq!(second.status().applied.accepted + second.status().applied.late + second.status().applied.future, 1_000);

    let entries = stream.read(None, usize::MAX, Duration::ZERO).unwrap();
    let t = Timestamp::from_micros(entries.last().unwrap().arrival.as_micros());
    assert_eq!(read_all(&second.store(), &keys(), t), backfill_at(&entries, &keys(), t));
}

#[test]
fn a_follower_behind_a_trimmed_stream_refuses_reads_until_the_archive_has_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let archive_dir = dir.path().join("archive");
    let stream: Arc<dyn EventStream> = Arc::new(MemoryStream::new());
    let now = Timestamp::now();
    publish_all(stream.as_ref(), events(now, 1_000, 6), "p", 0);
    let all = stream.read(None, usize::MAX, Duration::ZERO).unwrap();
    // Trimmed before anything archived it (not what `archive_stream` does).
    stream.trim(all[599].position).unwrap();

    let config = FollowerConfig { wait: Duration::from_millis(20), ..FollowerConfig::default().archive(&archive_dir) };
    let follower = Follower::start(definitions(), stream.clone(), config).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while follower.status().behind.is_none() {
        assert!(std::time::Instant::now() < deadline, "never noticed the trim");
        std::thread::sleep(Duration::from_millis(10));
    }
    let refused = follower.store().read("orders_count_300", "r-1", now).unwrap_err();
    assert!(matches!(refused, AggregateError::Unavailable { .. }), "{refused}");
    assert!(refused.to_string().contains("trimmed"), "{refused}");

    // The archive gets the trimmed entries (written here from the full history, as an
    // archiver that ran before the trim would have): the follower recovers.
    let archived = archive_stream(&Recorded(all.clone()), &Archive::open(&archive_dir), &definitions(), None).unwrap();
    assert_eq!(archived.through, Some(all[999].position));
    follower.wait_for(all[999].position, WAIT).unwrap();
    assert!(follower.status().behind.is_none());
    // The archive holds the very entries the stream had (positions and arrivals), so
    // whichever copy the follower applied of each, it must equal the backfill.
    let archived_entries = Archive::open(&archive_dir).entries_after(None).unwrap();
    assert_eq!(archived_entries.len(), all.len());
    let t = all[999].arrival;
    assert_eq!(read_all(&follower.store(), &keys(), t), backfill_at(&all, &keys(), t));
}

/// A stream's recorded history, read back as a stream (for the archiver that ran
/// before the trim).
#[derive(Debug)]
struct Recorded(Vec<Entry>);

impl EventStream for Recorded {
    fn publish(&self, _: &Batch) -> Result<Option<Position>, StreamError> {
        Err(StreamError::Protocol { stream: self.name(), reason: "a recorded history takes no appends".into() })
    }

    fn read(&self, after: Option<Position>, max: usize, _: Duration) -> Result<Vec<Entry>, StreamError> {
        let start = after.map_or(0, |p| self.0.partition_point(|e| e.position <= p));
        Ok(self.0[start..].iter().take(max).cloned().collect())
    }

    fn end(&self) -> Result<Option<Position>, StreamError> {
        Ok(self.0.last().map(|e| e.position))
    }

    fn trim(&self, _: Position) -> Result<(), StreamError> {
        Ok(())
    }

    fn name(&self) -> String {
        "recorded".into()
    }
}

#[test]
fn archiving_keeps_every_entry_and_trims_only_what_it_archived() {
    let dir = tempfile::tempdir().unwrap();
    let stream = MemoryStream::new();
    let now = Timestamp::now();
    publish_all(&stream, events(now, 1_500, 7), "p", 0);
    let archive = Archive::open(dir.path());
    let first = archive_stream(&stream, &archive, &definitions(), None).unwrap();
    assert_eq!(first.archived, 1_500);
    publish_all(&stream, events(now, 500, 8), "p", 100);
    let second = archive_stream(&stream, &archive, &definitions(), None).unwrap();
    assert_eq!(second.archived, 500);

    let archived = archive.entries_after(None).unwrap();
    let streamed = stream.read(None, usize::MAX, Duration::ZERO).unwrap();
    assert_eq!(archived, streamed);

    // A retention shorter than the windows is refused; one that keeps them trims
    // nothing that arrived within it (everything here arrived just now).
    let short = archive_stream(&stream, &archive, &definitions(), Some(Duration::from_secs(60))).unwrap_err();
    assert!(matches!(short, ArchiveError::RetentionTooShort { .. }), "{short}");
    let kept = archive_stream(&stream, &archive, &definitions(), Some(Duration::from_secs(3_600))).unwrap();
    assert_eq!(kept.trimmed_through, None);
    // pyarrow-style reading: each stream's folder is one event log.
    assert!(dir.path().join("stream=orders").is_dir() && dir.path().join("stream=ratings").is_dir());
}

#[test]
fn the_publisher_refuses_when_its_buffer_is_full_and_delivers_the_rest_in_order() {
    /// A stream that is down until told otherwise.
    #[derive(Debug, Default)]
    struct Flaky {
        up: std::sync::atomic::AtomicBool,
        inner: MemoryStream,
    }
    impl EventStream for Flaky {
        fn publish(&self, batch: &Batch) -> Result<Option<Position>, StreamError> {
            if !self.up.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(StreamError::Unreachable { stream: "flaky".into(), reason: "down".into() });
            }
            self.inner.publish(batch)
        }
        fn read(&self, after: Option<Position>, max: usize, wait: Duration) -> Result<Vec<Entry>, StreamError> {
            self.inner.read(after, max, wait)
        }
        fn end(&self) -> Result<Option<Position>, StreamError> {
            self.inner.end()
        }
        fn trim(&self, through: Position) -> Result<(), StreamError> {
            self.inner.trim(through)
        }
        fn name(&self) -> String {
            "flaky".into()
        }
    }
    let stream = Arc::new(Flaky::default());
    let policy = PublishPolicy { buffer: 100, batch: 10, max_backoff: Duration::from_millis(20) };
    let publisher = Publisher::new(stream.clone(), policy);
    let now = Timestamp::now();
    let mut taken = Vec::new();
    let mut refused = 0;
    for i in 0..150 {
        match publisher.publish(Event::new("orders", "r-1", now, f64::from(i))) {
            Ok(()) => taken.push(f64::from(i)),
            Err(StreamError::BufferFull { capacity: 100 }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((taken.len(), refused), (100, 50));
    assert!(matches!(publisher.flush(Duration::from_millis(100)), Err(StreamError::Timeout { .. })));
    stream.up.store(true, std::sync::atomic::Ordering::SeqCst);
    publisher.flush(WAIT).unwrap();
    let stats = publisher.stats();
    assert_eq!((stats.published, stats.refused, stats.buffered), (100, 50, 0));
    assert!(stats.failed_appends > 0);
    let values: Vec<f64> =
        stream.read(None, usize::MAX, Duration::ZERO).unwrap().into_iter().map(|e| e.event.unwrap().value).collect();
    assert_eq!(values, taken);
}
