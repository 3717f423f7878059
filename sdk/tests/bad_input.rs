//! Bad input gets a typed error (or a documented status), never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use fresco::abi::{InputSpec, InputType, MissingPolicy, ModelKind, ModelMetadata};
use fresco::{
    Client, EmbeddedStore, Error, FeatureStatus, FeatureStore, FeatureValue, FeatureView, InputSource, MemorySink,
    ModelConfig, ModelSource, Request, StoreError, Timestamp, Value, ValueType,
};
use proptest::prelude::*;

#[allow(dead_code)]
mod common;
use common::arb_value;

/// `y = 2·a + 3·b + 1` where `a` is a required f64 and `b` an i64 defaulting to 5.
fn strict_model() -> Vec<u8> {
    let mut a = InputSpec::f64("a");
    a.missing = MissingPolicy::Error;
    let mut b = InputSpec::f64("b");
    b.ty = InputType::I64;
    b.missing = MissingPolicy::Default(5.0);
    let meta =
        ModelMetadata::new("strict", "1", ModelKind::Custom).with_inputs(vec![a, b]).with_outputs(vec!["y".into()]);
    fresco_test_models::linear_with_metadata(&meta.to_json())
}

fn store() -> EmbeddedStore {
    let store = EmbeddedStore::in_memory().unwrap();
    store.define_view(FeatureView::new("users", "user_id").feature("b", ValueType::I64)).unwrap();
    store.write("users", "u1", Timestamp::now(), &[Value::I64(2)]).unwrap();
    store.write("users", "u-null", Timestamp::now(), &[Value::Null]).unwrap();
    store
}

fn client_with(store: impl FeatureStore, log: Arc<MemorySink>) -> Client {
    Client::builder()
        .feature_store(store)
        .model(ModelConfig::new(ModelSource::wasm_bytes(strict_model())).input("b", InputSource::stored("users", "b")))
        .shared_log(log)
        .max_batch_rows(1000)
        .build()
        .unwrap()
}

fn client() -> (Client, Arc<MemorySink>) {
    let log = Arc::new(MemorySink::new());
    (client_with(store(), log.clone()), log)
}

#[test]
fn a_good_request_scores() {
    let (client, log) = client();
    let p = client.predict("strict", &Request::new().entity("user_id", "u1").value("a", 1.0)).unwrap();
    assert_eq!(p.output("y"), Some(2.0 + 6.0 + 1.0));
    assert_eq!(p.feature_status("b"), Some(FeatureStatus::Present));
    assert_eq!(log.len(), 1);
}

#[test]
fn unknown_model() {
    let (client, log) = client();
    let err = client.predict("nope", &Request::new()).unwrap_err();
    assert!(matches!(err, Error::UnknownModel { ref model } if model == "nope"), "{err}");
    assert!(log.is_empty());
}

#[test]
fn unknown_entity_reads_as_missing_and_takes_the_default() {
    let (client, _) = client();
    for user in ["u-unknown", "u-null"] {
        let p = client.predict("strict", &Request::new().entity("user_id", user).value("a", 1.0)).unwrap();
        assert_eq!(p.feature_status("b"), Some(FeatureStatus::Missing), "{user}");
        assert_eq!(p.output("y"), Some(2.0 + 15.0 + 1.0), "{user}: b defaults to 5");
    }
}

#[test]
fn missing_entity_key() {
    let (client, _) = client();
    let err = client.predict("strict", &Request::new().value("a", 1.0)).unwrap_err();
    assert_eq!(err.to_string(), "model `strict`: the request (row 0) has no entity key `user_id`");
}

#[test]
fn wrong_types_name_model_feature_and_value() {
    let (client, log) = client();
    let err = client.predict("strict", &Request::new().entity("user_id", "u1").value("a", "fast")).unwrap_err();
    assert_eq!(err.to_string(), "model `strict`, feature `a` (row 0): expected f64, got the string \"fast\"");
    let err = client.predict("strict", &Request::new().entity("user_id", "u1").value("a", 1i64 << 60)).unwrap_err();
    assert!(matches!(err, Error::InvalidValue { ref feature, .. } if feature == "a"), "{err}");
    assert!(log.is_empty(), "nothing is logged for a refused request");
}

#[test]
fn a_request_value_the_model_does_not_take() {
    let (client, _) = client();
    let err =
        client.predict("strict", &Request::new().entity("user_id", "u1").value("a", 1.0).value("b", 3)).unwrap_err();
    assert!(matches!(err, Error::UnknownRequestValue { ref name, .. } if name == "b"), "{err}");
    let err =
        client.predict("strict", &Request::new().entity("user_id", "u1").value("a", 1.0).value("typo", 3)).unwrap_err();
    assert!(matches!(err, Error::UnknownRequestValue { ref name, .. } if name == "typo"), "{err}");
}

#[test]
fn missing_required_feature_and_nan_where_not_allowed() {
    let (client, _) = client();
    for request in [Request::new().entity("user_id", "u1"), Request::new().entity("user_id", "u1").value("a", f64::NAN)]
    {
        let err = client.predict("strict", &request).unwrap_err();
        assert_eq!(err.to_string(), "model `strict`, feature `a` (row 0): missing, and the model requires it");
    }
}

#[test]
fn the_error_names_the_bad_row_of_a_batch() {
    let (client, log) = client();
    let mut batch: Vec<Request> =
        (0..10).map(|i| Request::new().entity("user_id", "u1").value("a", i as f64)).collect();
    batch[7] = Request::new().entity("user_id", "u1").value("a", true).value("a", "x");
    let err = client.predict_batch("strict", &batch).unwrap_err();
    assert!(matches!(err, Error::InvalidValue { row: 7, .. }), "{err}");
    assert!(log.is_empty());
}

#[test]
fn empty_and_oversized_batches() {
    let (client, _) = client();
    assert!(client.predict_batch("strict", &[]).unwrap().is_empty());
    let huge = vec![Request::new().entity("user_id", "u1").value("a", 1.0); 1_000_000];
    let err = client.predict_batch("strict", &huge).unwrap_err();
    assert_eq!(err.to_string(), "model `strict`: a batch of 1000000 rows is larger than the limit of 1000; split it");
}

#[test]
fn a_full_log_fails_the_prediction() {
    let log = Arc::new(MemorySink::with_capacity(1));
    let client = client_with(store(), log.clone());
    let request = Request::new().entity("user_id", "u1").value("a", 1.0);
    client.predict("strict", &request).unwrap();
    let err = client.predict("strict", &request).unwrap_err();
    assert!(matches!(err, Error::Log { .. }), "{err}");
}

/// A store that is down: the prediction degrades to the model's defaults, counted.
struct DownStore(FeatureView);

impl FeatureStore for DownStore {
    fn view(&self, _: &str) -> Result<Arc<FeatureView>, StoreError> {
        Ok(Arc::new(self.0.clone()))
    }

    fn get_features(
        &self,
        _: &str,
        _: &[&str],
        _: &[&str],
        _: Timestamp,
    ) -> Result<Vec<Vec<FeatureValue>>, StoreError> {
        Err(StoreError::Unavailable { reason: "connection refused".into() })
    }
}

#[test]
fn a_store_that_is_down_degrades_to_defaults() {
    let store = DownStore(FeatureView::new("users", "user_id").feature("b", ValueType::I64));
    let client = client_with(store, Arc::new(MemorySink::new()));
    let p = client.predict("strict", &Request::new().entity("user_id", "u1").value("a", 1.0)).unwrap();
    assert_eq!(p.feature_status("b"), Some(FeatureStatus::Unavailable));
    assert_eq!(p.output("y"), Some(2.0 + 15.0 + 1.0));
    assert_eq!(client.stats().degraded_fetches, 1);
}

#[test]
fn configuration_mistakes_are_refused_at_build() {
    let build = |config: ModelConfig| {
        Client::builder()
            .feature_store(store())
            .model(config)
            .log_to(MemorySink::new())
            .build()
            .unwrap_err()
            .to_string()
    };
    let source = || ModelSource::wasm_bytes(strict_model());
    assert_eq!(
        build(ModelConfig::new(source()).input("z", InputSource::request("z"))),
        "model `strict` has no input `z`"
    );
    assert_eq!(
        build(ModelConfig::new(source()).input("b", InputSource::stored("nope", "b"))),
        "model `strict`, input `b`: feature view `nope` does not exist"
    );
    assert_eq!(
        build(ModelConfig::new(source()).input("b", InputSource::stored("users", "nope"))),
        "model `strict`, input `b`: feature view `users` has no feature `nope`"
    );
    assert_eq!(
        build(ModelConfig::new(source()).holdout("h")),
        "model `strict` uses holdout `h`, which is not configured"
    );
    let err = Client::builder().model(ModelConfig::new(source())).build().unwrap_err();
    assert_eq!(err.to_string(), "no prediction log configured: call ClientBuilder::log_to");
    let err = Client::builder()
        .model(ModelConfig::new(ModelSource::wasm_bytes(b"not wasm".to_vec())))
        .log_to(MemorySink::new())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("not a WebAssembly module"), "{err}");
    // A monitor that would hold a billion values per column and window.
    let huge = fresco::drift::MonitorConfig { sample_size: 1 << 30, ..Default::default() };
    let err = Client::builder().model(ModelConfig::new(source())).log_to(MemorySink::new()).monitor(huge).build();
    assert_eq!(err.unwrap_err().to_string(), "monitor sample_size 1073741824 is outside 1..=100000");
}

#[test]
fn async_prediction_runs_off_the_workers_and_fails_cleanly_outside_a_runtime() {
    let (client, _) = client();
    let request = Request::new().entity("user_id", "u1").value("a", 1.0);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let y = runtime.block_on(async {
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let client = client.clone();
                let request = request.clone();
                tokio::spawn(async move { client.predict_async("strict", request).await })
            })
            .collect();
        let mut ys = Vec::new();
        for task in tasks {
            ys.push(task.await.unwrap().unwrap().output("y").unwrap());
        }
        ys
    });
    assert!(y.iter().all(|&y| y == 9.0));
    let outside = futures_lite_block_on(client.predict_async("strict", request));
    assert!(matches!(outside, Err(Error::Async { .. })), "{outside:?}");
}

/// Polls a future to completion on this thread, with no tokio runtime around.
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Every accepted conversion to a model input is exact: converting back gives the
    /// same value.
    #[test]
    fn accepted_conversions_are_lossless(v in arb_value(), ty in prop_oneof![
        Just(InputType::F64), Just(InputType::F32), Just(InputType::I64), Just(InputType::Bool), Just(InputType::Categorical),
    ]) {
        if let Ok(x) = v.to_model_input(ty) {
            match &v {
                Value::Null => prop_assert!(x.is_nan()),
                Value::F64(f) if f.is_nan() => prop_assert!(x.is_nan()),
                Value::F64(f) => prop_assert_eq!(x, *f),
                Value::I64(i) => prop_assert_eq!(x as i64, *i),
                Value::Bool(b) => prop_assert_eq!(x, if *b { 1.0 } else { 0.0 }),
                Value::Str(_) => prop_assert!(false, "a string converted"),
            }
        }
    }

    /// Arbitrary requests: any entity keys, any names, any values. Never a panic; a
    /// success always has a finite or NaN-free output count and one log record per row.
    #[test]
    fn arbitrary_requests_never_panic(
        rows in proptest::collection::vec(
            (proptest::option::of("\\PC{0,6}"), proptest::collection::vec(("[ab]|\\PC{0,3}", arb_value()), 0..4)),
            0..6,
        )
    ) {
        let (client, log) = client();
        let requests: Vec<Request> = rows
            .into_iter()
            .map(|(user, values)| {
                let mut r = Request::new();
                if let Some(user) = user { r = r.entity("user_id", user); }
                for (name, value) in values { r = r.value(name, value); }
                r
            })
            .collect();
        match client.predict_batch("strict", &requests) {
            Ok(predictions) => {
                prop_assert_eq!(predictions.len(), requests.len());
                prop_assert_eq!(log.len(), requests.len());
            }
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                prop_assert!(log.is_empty());
            }
        }
    }
}
