//! `fresco serve`'s `[aggregates]`: a replica follows the shared event stream on a real
//! `redis-server` (started here), serves a windowed input from it, and writes its last
//! snapshot when it shuts down.
//! `cargo test -p fresco-http --test serve_aggregates -- --ignored` (needs redis-server).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../redis/tests/support/mod.rs"]
#[allow(dead_code)] // stop and restart serve fresco-redis's outage tests
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fresco::events::{Event, PublishPolicy, Publisher};
use fresco::{Request, Timestamp};
use fresco_http::ServeConfig;

#[test]
#[ignore = "needs redis-server (.ci/run installs it)"]
fn a_windowed_input_from_the_shared_stream_and_a_snapshot_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let redis = support::RedisServer::start(dir.path());
    let model = dir.path().join("linear.wasm");
    std::fs::write(&model, fresco_test_models::linear()).unwrap();
    let text = format!(
        r#"
        [log]
        root = "{root}/log"
        [aggregates]
        definitions = "{defs}"
        redis = "{redis}"
        stream_key = "serve:events"
        snapshots = "{root}/snapshots"
        [[model]]
        file = "{model}"
        inputs = {{ b = {{ windowed = "orders_30m" }} }}
        "#,
        root = dir.path().display(),
        defs = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/aggregates/orders.toml"),
        redis = redis.url(),
        model = model.display(),
    );
    let serving = ServeConfig::from_toml(&text).unwrap().start().unwrap();

    let stream = Arc::new(fresco_redis::RedisStream::open(&redis.url(), "serve:events").unwrap());
    let publisher = Publisher::new(stream, PublishPolicy::default());
    for _ in 0..5 {
        publisher.publish(Event::new("orders", "r-1", Timestamp::now(), 1.0)).unwrap();
    }
    publisher.flush(Duration::from_secs(5)).unwrap();

    let request = Request::new().entity("restaurant_id", "r-1").value("a", 1.0);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let p = serving.client.predict("linear", &request).unwrap();
        let b = p.inputs().find(|(name, _)| *name == "b").map(|(_, v)| v);
        if b == Some(5.0) {
            break;
        }
        assert!(Instant::now() < deadline, "the follower never applied the 5 orders (b = {b:?})");
        std::thread::sleep(Duration::from_millis(20));
    }
    let checks = serving.readiness_checks();
    assert_eq!(checks.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), ["log", "aggregates"]);
    assert!(checks.iter().all(|(_, check)| check().is_ok()));
    serving.shutdown(Duration::from_secs(5)).unwrap();
    let snapshots: Vec<_> = std::fs::read_dir(dir.path().join("snapshots")).unwrap().collect();
    assert!(!snapshots.is_empty(), "shutdown wrote the replica's snapshot");
}
