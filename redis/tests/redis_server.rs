//! `RedisStream` against a real `redis-server` (each test starts its own; `.ci/run`
//! installs Debian's package). `cargo test -p fresco-redis -- --ignored`.

mod support;

use std::time::{Duration, Instant};

use fresco::Timestamp;
use fresco::events::{Batch, Event, EventStream, Position, StreamError};
use fresco_redis::RedisStream;
use support::RedisServer;

fn batch(producer: &str, sequence: u64, values: &[f64]) -> Batch {
    let now = Timestamp::now();
    Batch {
        producer: producer.into(),
        sequence,
        events: values.iter().map(|&v| Event::new("orders", "r-1", now, v)).collect(),
    }
}

#[test]
#[ignore = "needs redis-server"]
fn appends_once_per_batch_and_reads_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path());
    let stream = RedisStream::open(&server.url(), "{fresco:events}").unwrap();
    assert_eq!(stream.end().unwrap(), None);
    assert!(stream.read(None, 10, Duration::ZERO).unwrap().is_empty());

    let first = stream.publish(&batch("a", 0, &[1.0, 2.5, 1e300])).unwrap().unwrap();
    // A retry of the same batch, and an older one: nothing appended.
    assert_eq!(stream.publish(&batch("a", 0, &[1.0, 2.5, 1e300])).unwrap(), None);
    // Another producer's batch 0 is its own.
    let second = stream.publish(&batch("b", 0, &[-0.125])).unwrap().unwrap();
    assert!(second > first);
    assert_eq!(stream.len().unwrap(), 4);
    assert_eq!(stream.end().unwrap(), Some(second));

    let entries = stream.read(None, 10, Duration::ZERO).unwrap();
    let values: Vec<f64> = entries.iter().map(|e| e.event.as_ref().unwrap().value).collect();
    assert_eq!(values, [1.0, 2.5, 1e300, -0.125]);
    assert!(entries.windows(2).all(|w| w[0].position < w[1].position && w[0].arrival <= w[1].arrival));
    // The arrival is the end of the id's millisecond, on the server's clock.
    assert_eq!(entries[0].arrival.as_micros(), entries[0].position.hi() as i64 * 1000 + 999);
    assert_eq!(stream.read(Some(entries[1].position), 1, Duration::ZERO).unwrap()[0], entries[2]);
}

#[test]
#[ignore = "needs redis-server"]
fn a_reader_waits_for_the_next_entry() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path());
    let stream = std::sync::Arc::new(RedisStream::open(&server.url(), "events").unwrap());
    let last = stream.publish(&batch("a", 0, &[1.0])).unwrap();
    let writer = {
        let stream = stream.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            stream.publish(&batch("a", 1, &[2.0])).unwrap()
        })
    };
    let started = Instant::now();
    let read = stream.read(last, 10, Duration::from_secs(10)).unwrap();
    assert_eq!(read.len(), 1, "{read:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(Some(read[0].position), writer.join().unwrap());
    // Nothing new: an empty read after the wait.
    assert!(stream.read(Some(read[0].position), 10, Duration::from_millis(100)).unwrap().is_empty());
}

#[test]
#[ignore = "needs redis-server"]
fn a_reader_behind_a_trim_is_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path());
    let stream = RedisStream::open(&server.url(), "events").unwrap();
    for n in 0..5 {
        stream.publish(&batch("a", n, &[n as f64])).unwrap();
    }
    let entries = stream.read(None, 10, Duration::ZERO).unwrap();
    stream.trim(entries[1].position).unwrap();
    assert_eq!(stream.len().unwrap(), 3);
    for behind in [None, Some(entries[0].position)] {
        match stream.read(behind, 10, Duration::ZERO) {
            Err(StreamError::Trimmed { trimmed_through, .. }) => assert_eq!(trimmed_through, entries[1].position),
            other => panic!("{other:?}"),
        }
    }
    // At the trim point or later nothing is missing.
    assert_eq!(stream.read(Some(entries[1].position), 10, Duration::ZERO).unwrap(), entries[2..]);
    // An entry deleted by another client (XDEL) is a gap too.
    let mut con = redis::Client::open(server.url()).unwrap().get_connection().unwrap();
    let _: u64 = redis::cmd("XDEL").arg("events").arg(entries[3].position.to_string()).query(&mut con).unwrap();
    match stream.read(Some(entries[2].position), 10, Duration::ZERO) {
        Err(StreamError::Trimmed { trimmed_through, .. }) => assert_eq!(trimmed_through, entries[3].position),
        other => panic!("{other:?}"),
    }
}

#[test]
#[ignore = "needs redis-server"]
fn entries_written_by_other_clients_are_read_or_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start(dir.path());
    let stream = RedisStream::open(&server.url(), "events").unwrap();
    let mut con = redis::Client::open(server.url()).unwrap().get_connection().unwrap();
    let add = |con: &mut redis::Connection, fields: &[(&str, &str)]| -> String {
        let mut cmd = redis::cmd("XADD");
        cmd.arg("events").arg("*");
        for (k, v) in fields {
            cmd.arg(*k).arg(*v);
        }
        cmd.query(con).unwrap()
    };
    add(&mut con, &[("stream", "orders"), ("key", "r-1"), ("ts", "1764806400000000"), ("value", "3"), ("extra", "x")]);
    add(&mut con, &[("stream", "orders"), ("key", "r-1"), ("ts", "yesterday"), ("value", "3")]);
    add(&mut con, &[("stream", "orders"), ("ts", "1")]);
    let entries = stream.read(None, 10, Duration::ZERO).unwrap();
    assert_eq!(entries[0].event.as_ref().unwrap().ts, Timestamp::from_micros(1_764_806_400_000_000));
    assert!(entries[1].event.as_ref().unwrap_err().contains("`ts`"), "{:?}", entries[1].event);
    assert!(entries[2].event.as_ref().unwrap_err().contains("no field `key`"), "{:?}", entries[2].event);
}

#[test]
#[ignore = "needs redis-server"]
fn an_unreachable_server_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = RedisServer::start(dir.path());
    let stream = RedisStream::open(&server.url(), "events").unwrap();
    stream.publish(&batch("a", 0, &[1.0])).unwrap();
    server.stop();
    assert!(matches!(stream.publish(&batch("a", 1, &[2.0])), Err(StreamError::Unreachable { .. })));
    assert!(matches!(stream.read(None, 1, Duration::ZERO), Err(StreamError::Unreachable { .. })));
    server.restart();
    // The pool's dead connections are dropped; the data survived (append-only file).
    let mut answer = stream.publish(&batch("a", 1, &[2.0]));
    for _ in 0..3 {
        if answer.is_ok() {
            break;
        }
        answer = stream.publish(&batch("a", 1, &[2.0]));
    }
    assert!(answer.unwrap().is_some());
    assert_eq!(stream.len().unwrap(), 2);
    assert!(Position::new(0, 0) < stream.end().unwrap().unwrap());
}
