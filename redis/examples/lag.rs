//! Publish → visible on every replica: the lag of the shared event stream, measured.
//!
//! Three followers (replicas, in this process) tail one Redis stream while a publisher
//! appends events at a fixed rate; the lag of an event is the time from `publish` to
//! the moment all three followers have applied it (their positions are sampled every
//! 100 µs). Prints p50 / p99 per rate.
//!
//! `cargo run -p fresco-redis --example lag -- redis://127.0.0.1:6379 [SECONDS] [RATE...]`
//! (defaults: 5 s at 20,000 and 100,000 events/s). Uses the keys `fresco:lag:*`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring program: failures end it

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fresco::Timestamp;
use fresco::aggregates::{Aggregation, Definitions, StreamSpec, WindowedFeature};
use fresco::events::{Event, EventStream, Follower, FollowerConfig, Position, PublishPolicy, Publisher};
use fresco_redis::RedisStream;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args.first().cloned().unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let seconds: u64 = args.get(1).map_or(5, |s| s.parse().unwrap());
    let rates: Vec<u64> =
        if args.len() > 2 { args[2..].iter().map(|r| r.parse().unwrap()).collect() } else { vec![20_000, 100_000] };
    for rate in rates {
        measure(&url, seconds, rate);
    }
}

fn definitions() -> Definitions {
    Definitions::new()
        .stream(StreamSpec::new("orders", "restaurant_id").late_tolerance(Duration::from_secs(120)))
        .feature(WindowedFeature::new("orders_5m", "orders", Aggregation::Count, Duration::from_secs(300)))
        .feature(WindowedFeature::new("orders_30m", "orders", Aggregation::Count, Duration::from_secs(1800)))
        .feature(WindowedFeature::new("basket_mean_1h", "orders", Aggregation::Mean, Duration::from_secs(3600)))
}

fn measure(url: &str, seconds: u64, rate: u64) {
    let key = format!("fresco:lag:{}", uuid_like());
    let stream = Arc::new(RedisStream::open(url, &key).unwrap());
    let followers: Vec<Follower> =
        (0..3).map(|_| Follower::start(definitions(), stream.clone(), FollowerConfig::default()).unwrap()).collect();
    let followers = Arc::new(followers);

    // Samples of the position all followers have reached.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (followers, done) = (followers.clone(), done.clone());
        std::thread::spawn(move || {
            let mut samples: Vec<(Instant, Position)> = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let reached = followers.iter().map(|f| f.status().position).min().flatten();
                if let Some(p) = reached
                    && samples.last().is_none_or(|s| s.1 < p)
                {
                    samples.push((Instant::now(), p));
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            samples
        })
    };

    // A buffer for the whole run: the lag includes any time an event waits in it.
    let policy = PublishPolicy { buffer: 1 << 24, ..PublishPolicy::default() };
    let publisher = Publisher::new(stream.clone(), policy);
    let total = rate * seconds;
    let mut sent = Vec::with_capacity(total as usize);
    let started = Instant::now();
    for i in 0..total {
        let due = started + Duration::from_nanos(i * 1_000_000_000 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        sent.push(Instant::now());
        publisher.publish(Event::new("orders", format!("r-{}", i % 2_000), Timestamp::now(), i as f64)).unwrap();
    }
    let achieved = total as f64 / started.elapsed().as_secs_f64();
    publisher.flush(Duration::from_secs(60)).unwrap();
    let end = stream.end().unwrap().unwrap();
    for f in followers.iter() {
        f.wait_for(end, Duration::from_secs(60)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(5));
    done.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();

    let entries = stream.read(None, usize::MAX, Duration::ZERO).unwrap();
    let mut lags: Vec<Duration> = entries
        .iter()
        .map(|e| {
            let i = e.event.as_ref().unwrap().value as usize;
            let seen = samples[samples.partition_point(|s| s.1 < e.position)].0;
            seen.saturating_duration_since(sent[i])
        })
        .collect();
    lags.sort();
    let at = |q: f64| lags[((lags.len() - 1) as f64 * q) as usize];
    println!(
        "{rate:>7} events/s asked, {achieved:>9.0} sent: {} events, publish → applied on 3 followers p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        lags.len(),
        at(0.5),
        at(0.99),
        lags.last().unwrap()
    );
    let _: u64 = redis::cmd("DEL")
        .arg(&key)
        .arg(format!("{key}:producers"))
        .query(&mut redis::Client::open(url).unwrap().get_connection().unwrap())
        .unwrap();
}

fn uuid_like() -> String {
    format!("{}-{}", std::process::id(), Timestamp::now().as_micros())
}
