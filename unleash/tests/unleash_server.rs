//! Against a real Unleash server (`unleash-server` from npm on PostgreSQL, started by
//! `.ci/run` through `.ci/unleash.sh`): flags made through the admin API route a
//! Client's requests to model versions from a registry; the Client follows a change of
//! shares and the kill switch within one refresh interval; the server is then killed
//! and nothing fails.
//!
//! Reads FRESCO_UNLEASH_URL, FRESCO_UNLEASH_ADMIN_TOKEN, FRESCO_UNLEASH_CLIENT_TOKEN and
//! FRESCO_UNLEASH_PID (the server's process group, killed at the end). Run with
//! `--ignored`; without them the test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fresco::registry::Registry;
use fresco::rollout::FlagSource;
use fresco::{Client, MemorySink, ModelConfig, Request};
use fresco_unleash::{UnleashConfig, UnleashFlags};
use serde_json::{Value, json};

const REFRESH: Duration = Duration::from_millis(500);
/// A poll's own time on this machine, on top of the refresh interval.
const SLACK: Duration = Duration::from_millis(400);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: start a server with .ci/unleash.sh"))
}

struct Admin {
    url: String,
    token: String,
    http: reqwest::blocking::Client,
}

impl Admin {
    fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request =
            self.http.request(method, format!("{}/admin/{path}", self.url)).header("Authorization", &self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().unwrap();
        let status = response.status();
        let text = response.text().unwrap();
        assert!(status.is_success(), "{path}: {status}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

fn strategy(flag: &str, v2_share: u32) -> Value {
    let variant = |name: &str, weight: u32, fix: bool, version: &str| {
        json!({"name": name, "weight": weight, "weightType": if fix { "fix" } else { "variable" },
               "stickiness": "userId", "payload": {"type": "string", "value": version}})
    };
    json!({"name": "flexibleRollout",
           "parameters": {"rollout": "100", "stickiness": "userId", "groupId": flag},
           "variants": [variant("v2", v2_share, true, "2"), variant("v3", 1000 - v2_share, false, "3")]})
}

fn requests() -> Vec<Request> {
    (0..2_000).map(|i| Request::new().entity("user_id", format!("rider-{i}")).value("a", 1.0).value("b", 1.0)).collect()
}

/// Waits until the server itself serves the flag in the state `check` accepts (it
/// publishes changes to clients on its own revision tick, about a second here), and
/// returns that moment: the Client's delay is measured from it.
fn served(client_token: &str, flag: &str, check: impl Fn(&Value) -> bool) -> Instant {
    let http = reqwest::blocking::Client::new();
    let url = format!("{}/client/features", env("FRESCO_UNLEASH_URL"));
    let started = Instant::now();
    loop {
        let body: Value = http.get(&url).header("Authorization", client_token).send().unwrap().json().unwrap();
        let feature = body["features"].as_array().unwrap().iter().find(|f| f["name"] == flag).cloned();
        if feature.as_ref().is_some_and(&check) {
            return Instant::now();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the server never served the change");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `done` holds, returning how long it took from `since`.
fn wait_until(since: Instant, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    while !done() {
        assert!(since.elapsed() < Duration::from_secs(10), "{what}: not within 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    since.elapsed()
}

#[test]
#[ignore = "needs a running Unleash server (.ci/unleash.sh); .ci/run starts one"]
fn a_real_server_rolls_versions_out_ramps_them_and_kills_them() {
    let admin =
        Admin { url: env("FRESCO_UNLEASH_URL"), token: env("FRESCO_UNLEASH_ADMIN_TOKEN"), http: Default::default() };
    let flag = format!("eta-model-{}", std::process::id());
    let env_path = format!("projects/default/features/{flag}/environments/development");
    admin.send(reqwest::Method::POST, "projects/default/features", Some(json!({"name": flag, "type": "release"})));
    let created = admin.send(reqwest::Method::POST, &format!("{env_path}/strategies"), Some(strategy(&flag, 200)));
    let strategy_id = created["id"].as_str().unwrap().to_owned();
    admin.send(reqwest::Method::POST, &format!("{env_path}/on"), None);

    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    for v in ["1", "2", "3"] {
        registry.publish_wasm("linear", v, &fresco_test_models::linear_version(v)).unwrap();
    }
    registry.deploy("linear", "1").unwrap();

    let flags = Arc::new(
        UnleashFlags::connect(
            UnleashConfig::new(env("FRESCO_UNLEASH_URL"), env("FRESCO_UNLEASH_CLIENT_TOKEN")).refresh(REFRESH),
        )
        .unwrap(),
    );
    assert!(flags.last_update().is_some(), "the first poll answered");
    let log = Arc::new(MemorySink::new());
    let client = Client::builder()
        .model(ModelConfig::from_registry(&registry, "linear").rollout(&flag, "user_id").fallback_version("1"))
        .shared_flags(flags.clone())
        .shared_log(log.clone())
        .build()
        .unwrap();
    let _watcher = client.watch(Duration::from_millis(50));
    // The server publishes a new flag to clients on its next revision.
    wait_until(Instant::now(), "versions 2 and 3 loaded", || client.loaded_versions("linear").unwrap().len() == 3);

    let batch = requests();
    let share_of = |version: &str| -> f64 {
        let got = client.predict_batch("linear", &batch).unwrap();
        for (p, r) in got.iter().zip(&batch) {
            let decision = flags.decide(&flag, r.entity_key("user_id").unwrap());
            let expected = if decision.enabled { decision.payload.clone().unwrap() } else { "1".into() };
            assert_eq!(p.model_version(), expected);
            assert_eq!(p.flag_variant(), decision.variant.as_deref());
        }
        got.iter().filter(|p| p.model_version() == version).count() as f64 / got.len() as f64
    };
    let v2 = share_of("2");
    assert!((0.17..=0.23).contains(&v2), "v2 share {v2}");
    let logged = log.records();
    assert!(logged.iter().all(|r| r.flag_variant.as_deref() == Some(if r.model_version == "2" { "v2" } else { "v3" })));

    // Ramp v2 to 50 %: the Client follows within one refresh interval.
    let token = env("FRESCO_UNLEASH_CLIENT_TOKEN");
    admin.send(reqwest::Method::PUT, &format!("{env_path}/strategies/{strategy_id}"), Some(strategy(&flag, 500)));
    let changed = served(&token, &flag, |f| f["strategies"][0]["variants"].to_string().contains("500"));
    let probe = |id: &str| flags.decide(&flag, id).payload;
    let moved: Vec<String> =
        (0..2_000).map(|i| format!("rider-{i}")).filter(|id| probe(id).as_deref() == Some("3")).collect();
    let ramp = wait_until(changed, "ramp to 50 %", || moved.iter().any(|id| probe(id).as_deref() == Some("2")));
    let v2 = share_of("2");
    assert!((0.46..=0.54).contains(&v2), "v2 share after the ramp {v2}");

    // Kill switch: the fallback answers everyone.
    admin.send(reqwest::Method::POST, &format!("{env_path}/off"), None);
    let killed = served(&token, &flag, |f| f["enabled"] == false);
    let kill = wait_until(killed, "kill switch", || {
        let p = client.predict("linear", &batch[0]).unwrap();
        p.model_version() == "1"
    });
    assert_eq!(share_of("1"), 1.0);
    println!(
        "after the server served each change, the Client followed a ramp in {ramp:?} and the kill switch in {kill:?} (refresh interval {REFRESH:?})"
    );
    assert!(ramp <= REFRESH + SLACK, "ramp followed after {ramp:?}");
    assert!(kill <= REFRESH + SLACK, "kill switch followed after {kill:?}");

    // Back on, then the server goes away: the last state keeps serving, nothing fails.
    admin.send(reqwest::Method::POST, &format!("{env_path}/on"), None);
    wait_until(Instant::now(), "flag back on", || client.predict("linear", &batch[0]).unwrap().model_version() != "1");
    let pid = env("FRESCO_UNLEASH_PID");
    let killed = std::process::Command::new("kill").args(["-s", "KILL", "--", &format!("-{pid}")]).status().unwrap();
    assert!(killed.success(), "could not kill the server group {pid}");
    let failures = flags.stats().failures.load(Ordering::Relaxed);
    let outage = Instant::now();
    let mut calls = 0;
    while outage.elapsed() < REFRESH * 4 {
        let v2 = share_of("2");
        assert!((0.46..=0.54).contains(&v2), "v2 share with the server down {v2}");
        calls += batch.len();
    }
    assert!(flags.stats().failures.load(Ordering::Relaxed) > failures, "polls failed while the server was down");
    println!("{calls} predictions with the server down, none failed");
}
