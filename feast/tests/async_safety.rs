//! Every public `Client` method, called from inside a multi-thread and a current-thread
//! tokio runtime, with a Feast store and a durable log: nothing panics. (reqwest's
//! blocking client panics when used on a thread that drives a runtime; the store keeps
//! its blocking work off such threads.) The feature server here is a port nothing
//! listens on: every fetch fails fast and degrades to defaults, through the same client
//! code as a live server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use fresco::events::Event;
use fresco::holdout::Holdout;
use fresco::{
    Client, FeatureView, InputSource, LogConfig, ModelConfig, ModelSource, PredictionLog, Request, Timestamp, ValueType,
};
use fresco_feast::{EntityKind, FeastStore, FeastView};

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Builds, uses and drops a client with a Feast store, all on the runtime's thread.
async fn every_method(dir: &std::path::Path) {
    let store = FeastStore::builder(format!("http://127.0.0.1:{}", closed_port()))
        .view(FeastView::new(
            FeatureView::new("restaurants", "restaurant_id").feature("rating", ValueType::F64),
            EntityKind::String,
        ))
        .deadline(Duration::from_millis(30))
        .build()
        .unwrap();
    let log = PredictionLog::open(LogConfig::new(dir)).unwrap();
    let client = Client::builder()
        .feature_store(store)
        .holdout(Holdout::new("h", "s", 0.5).unwrap(), "user_id")
        .model(
            ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear()))
                .input("b", InputSource::stored("restaurants", "rating"))
                .holdout("h"),
        )
        .log_to(log)
        .build()
        .unwrap();
    let request =
        |i: u32| Request::new().entity("user_id", format!("u-{i}")).entity("restaurant_id", "r-1").value("a", 1.0);

    assert_eq!(client.models(), ["linear"]);
    client.metadata("linear").unwrap();
    client.monitor("linear").unwrap();
    assert_eq!(client.serving_version("linear").unwrap(), "1");
    client.loaded_versions("linear").unwrap();
    let p = client.predict("linear", &request(1)).unwrap();
    let batch = client.predict_batch("linear", &(0..8).map(request).collect::<Vec<_>>()).unwrap();
    let q = client.predict_async("linear", request(2)).await.unwrap();
    client.predict_batch_async("linear", (0..8).map(request).collect()).await.unwrap();
    assert!(client.stats().degraded_fetches > 0);
    client.log_outcome("linear", p.id(), 1.0, Timestamp::now()).unwrap();
    client.log_outcome_async("linear", q.id(), 2.0, Timestamp::now()).await.unwrap();
    let free: Vec<_> = batch.iter().filter(|p| p.may_treat()).collect();
    client.log_treatment(free[0], "call", Timestamp::now()).unwrap();
    client.log_treatments(free.iter().copied(), "mail", Timestamp::now()).unwrap();
    let _ = client.log_treatment_by_id("linear", p.id(), "u-1", "call", Timestamp::now());
    let _ = client.log_treatment_by_id_async("linear", q.id(), "u-2", "call", Timestamp::now()).await;
    client.deploy_source("linear", ModelSource::wasm_bytes(fresco_test_models::linear_version("2"))).unwrap();
    client.deploy("linear", "2").unwrap();
    assert_eq!(client.rollback("linear").unwrap(), "1");
    let watcher = client.watch(Duration::from_millis(5));
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(watcher);
    assert!(client.record_event(Event::new("orders", "r-1", Timestamp::now(), 1.0)).is_err(), "no event sink");
    client.shutdown(Duration::from_secs(1)).unwrap();
    drop(client); // the store's HTTP client and the log's writer stop here, on the runtime
}

#[test]
fn on_a_multi_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(every_method(dir.path()));
}

#[test]
fn on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(every_method(dir.path()));
}
