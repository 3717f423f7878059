//! Model versions from a registry: hot swaps under load, refused versions, the manifest
//! watcher, and routing by flag (a scripted flag source; the Unleash one is tested in
//! `fresco-unleash` against a real server).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fresco::registry::{ArtifactKind, Registry, RegistryError};
use fresco::rollout::{FlagDecision, FlagSource};
use fresco::{Client, Error, MemorySink, ModelConfig, Refusal, Request};
use fresco_test_models::{assemble, linear_with_metadata, metadata_json, with_metadata};

use fresco_test_models::linear_version as linear_v;

fn registry_with(versions: &[&str]) -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    for v in versions {
        registry.publish_wasm("linear", v, &linear_v(v)).unwrap();
    }
    registry.deploy("linear", versions[0]).unwrap();
    (dir, registry)
}

/// Stores `bytes` as a version of `model` without the checks of `Registry::publish`: a
/// file copied into the registry by hand, or by a tool that does not check.
fn plant(registry: &Registry, model: &str, version: &str, bytes: &[u8]) {
    let dir = std::path::PathBuf::from(registry.location()).join(model).join(version);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.wasm"), bytes).unwrap();
}

fn client(registry: &Registry, log: &Arc<MemorySink>) -> Client {
    Client::builder().model(ModelConfig::from_registry(registry, "linear")).shared_log(log.clone()).build().unwrap()
}

fn request(i: usize) -> Request {
    Request::new().entity("user_id", format!("u-{i}")).value("a", i as f64).value("b", 1.0)
}

#[test]
fn four_threads_predict_through_100_deploys_and_rollbacks_without_a_failure() {
    let (_dir, registry) = registry_with(&["1", "2", "3"]);
    let log = Arc::new(MemorySink::new());
    let client = client(&registry, &log);

    // history[k] is the k-th serving version; `announced` is raised before a swap and
    // `done` after it, so a call that saw done = d before and announced = a after was
    // served by one of history[d..=a].
    let history = Arc::new(Mutex::new(vec!["1".to_owned()]));
    let announced = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let windows: Arc<Mutex<HashMap<String, (usize, usize)>>> = Arc::default();

    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (client, stop, announced, done, windows) =
                (client.clone(), stop.clone(), announced.clone(), done.clone(), windows.clone());
            std::thread::spawn(move || {
                let mut calls = 0usize;
                while !stop.load(Ordering::Acquire) {
                    let before = done.load(Ordering::Acquire);
                    let p = client.predict("linear", &request(t * 1_000_000 + calls)).expect("no call fails");
                    let after = announced.load(Ordering::Acquire);
                    assert_eq!(p.output("y"), Some(2.0 * (t * 1_000_000 + calls) as f64 + 4.0));
                    windows.lock().unwrap().insert(p.id().to_string(), (before, after));
                    calls += 1;
                }
                calls
            })
        })
        .collect();

    let mut swaps = 0;
    for k in 0..100 {
        // Alternate: deploy the next version, then every third step roll back.
        let serving = client.serving_version("linear").unwrap();
        let next = if k % 3 == 2 {
            client.loaded_versions("linear").unwrap();
            None
        } else {
            Some(["1", "2", "3"][(k + 1) % 3])
        };
        announced.fetch_add(1, Ordering::AcqRel);
        let now = match next {
            Some(v) if v != serving => {
                client.deploy("linear", v).unwrap();
                v.to_owned()
            }
            _ => client.rollback("linear").unwrap(),
        };
        history.lock().unwrap().push(now);
        done.fetch_add(1, Ordering::AcqRel);
        swaps += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Release);
    let calls: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();

    let history = history.lock().unwrap();
    let windows = windows.lock().unwrap();
    let records = log.records();
    assert_eq!(records.len(), calls);
    assert!(calls > 400, "the workers kept predicting ({calls} calls)");
    let mut seen = std::collections::BTreeSet::new();
    for record in &records {
        let (before, after) = windows[&record.prediction_id];
        let serving = &history[before..=after.min(history.len() - 1)];
        assert!(
            serving.contains(&record.model_version),
            "{} logged version {} while {serving:?} served",
            record.prediction_id,
            record.model_version
        );
        seen.insert(record.model_version.clone());
    }
    assert_eq!(seen.len(), 3, "every version served some calls: {seen:?}");
    assert_eq!(client.stats().swaps, swaps);
    assert_eq!(client.stats().versions_refused, 0);
}

/// Plants `bytes` as version `version` and checks the client refuses it, counts it,
/// and keeps serving version 1.
fn assert_refused(registry: &Registry, client: &Client, version: &str, bytes: &[u8], why: fn(&Refusal) -> bool) {
    plant(registry, "linear", version, bytes);
    let refused_before = client.stats().versions_refused;
    match client.deploy("linear", version) {
        Err(Error::VersionRefused { version: v, reason, .. }) => {
            assert_eq!(v, version);
            assert!(why(&reason), "version {version}: unexpected reason {reason}");
        }
        other => panic!("version {version} was not refused: {other:?}"),
    }
    assert_eq!(client.stats().versions_refused, refused_before + 1);
    assert_eq!(client.serving_version("linear").unwrap(), "1");
    let p = client.predict("linear", &request(2)).unwrap();
    assert_eq!((p.model_version(), p.output("y")), ("1", Some(8.0)));
}

#[test]
fn broken_versions_are_refused_and_the_serving_version_serves_on() {
    let (_dir, registry) = registry_with(&["1"]);
    let log = Arc::new(MemorySink::new());
    let client = client(&registry, &log);
    let meta = |v: &str| metadata_json("linear").replace(r#""version":"1""#, &format!(r#""version":"{v}""#));

    // A corrupt file: the first half of a module.
    let wasm = linear_v("2");
    assert_refused(&registry, &client, "2", &wasm[..wasm.len() / 2], |r| matches!(r, Refusal::Load(_)));
    // A module that traps when it scores.
    assert_refused(&registry, &client, "3", &with_metadata(assemble(1, "(unreachable)", ""), &meta("3")), |r| {
        matches!(r, Refusal::Smoke(_))
    });
    // A new request input that callers of version 1 do not send.
    let three_inputs = meta("4").replace(r#"],"outputs""#, r#",{"name":"c","type":"f64","missing":"nan"}],"outputs""#);
    assert_refused(
        &registry,
        &client,
        "4",
        &linear_with_metadata(&three_inputs),
        |r| matches!(r, Refusal::UnsentInput { input } if input == "c"),
    );
    // Output `y` renamed: callers read `y`.
    assert_refused(
        &registry,
        &client,
        "5",
        &linear_with_metadata(&meta("5").replace(r#"["y"]"#, r#"["eta"]"#)),
        |r| matches!(r, Refusal::MissingOutput { output } if output == "y"),
    );
    // A module whose metadata declares another version than its directory.
    assert_refused(
        &registry,
        &client,
        "6",
        &linear_v("7"),
        |r| matches!(r, Refusal::Version { declared } if declared == "7"),
    );
    // Another model's module.
    assert_refused(&registry, &client, "8", &fresco_test_models::hostile::trap(), |r| {
        matches!(r, Refusal::Name { .. })
    });
    // A version the registry does not have.
    assert!(matches!(
        client.deploy("linear", "99"),
        Err(Error::VersionRefused { reason, .. }) if matches!(*reason, Refusal::Registry(_))
    ));
    // Rollback with nothing before.
    assert!(matches!(client.rollback("linear"), Err(Error::NoPreviousVersion { .. })));
}

#[test]
fn the_watcher_follows_the_manifest_and_retries_refused_versions_with_backoff() {
    let (_dir, registry) = registry_with(&["1", "2"]);
    let log = Arc::new(MemorySink::new());
    let client = client(&registry, &log);
    let watcher = client.watch(Duration::from_millis(20));
    let wait_for = |version: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while client.serving_version("linear").unwrap() != version {
            assert!(Instant::now() < deadline, "still serving {}", client.serving_version("linear").unwrap());
            std::thread::sleep(Duration::from_millis(5));
        }
    };

    registry.deploy("linear", "2").unwrap();
    wait_for("2");
    assert_eq!(client.loaded_versions("linear").unwrap(), ["1", "2"]);
    registry.rollback("linear").unwrap();
    wait_for("1");

    // While the watcher runs, this process alone may not move off the manifest.
    let err = client.deploy("linear", "2").unwrap_err();
    assert!(matches!(err, fresco::Error::FollowsRegistry { .. }), "{err}");
    assert!(matches!(client.rollback("linear").unwrap_err(), fresco::Error::FollowsRegistry { .. }));

    // A broken version deployed in the manifest: refused, and retried with backoff
    // (every 20 ms without it: some 30 tries in 600 ms; with it, at most 6).
    plant(&registry, "linear", "3", b"not a module");
    registry.deploy("linear", "3").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while client.stats().versions_refused == 0 {
        assert!(Instant::now() < deadline, "the broken version was never tried");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(600));
    let tries = client.stats().versions_refused;
    assert!((2..=6).contains(&tries), "{tries} tries of the refused version in 600 ms");
    assert_eq!(client.serving_version("linear").unwrap(), "1");
    // Fixed in place (an artifact synced after its manifest): the next retry loads it.
    std::fs::write(std::path::PathBuf::from(registry.location()).join("linear/3/model.wasm"), linear_v("3")).unwrap();
    wait_for("3");
    registry.deploy("linear", "2").unwrap();
    wait_for("2");
    drop(watcher);
}

#[test]
fn a_client_starts_with_the_manifest_version_and_the_previous_one_loaded() {
    let (_dir, registry) = registry_with(&["1", "2"]);
    registry.deploy("linear", "2").unwrap();
    let client = client(&registry, &Arc::new(MemorySink::new()));
    assert_eq!(client.serving_version("linear").unwrap(), "2");
    assert_eq!(client.loaded_versions("linear").unwrap(), ["1", "2"]);
    assert_eq!(client.rollback("linear").unwrap(), "1");

    // A serving module that declares another version than its directory is refused.
    plant(&registry, "linear", "5", &linear_v("7"));
    registry.deploy("linear", "5").unwrap();
    let err =
        Client::builder().model(ModelConfig::from_registry(&registry, "linear")).log_to(MemorySink::new()).build();
    assert!(matches!(err, Err(Error::VersionRefused { reason, .. }) if matches!(*reason, Refusal::Version { .. })));

    // A model with no manifest yet, or an unknown one, is a build error naming it.
    plant(&registry, "other", "1", &linear_v("1"));
    let err = Client::builder().model(ModelConfig::from_registry(&registry, "other")).log_to(MemorySink::new()).build();
    assert!(err.unwrap_err().to_string().contains("no manifest"));
}

#[test]
fn the_registry_refuses_bad_names_ambiguous_versions_and_overwrites() {
    let (dir, registry) = registry_with(&["1"]);
    assert!(matches!(registry.deploy("linear", "../1"), Err(RegistryError::InvalidName { .. })));
    assert!(matches!(registry.deploy("../linear", "1"), Err(RegistryError::InvalidName { .. })));
    assert!(matches!(registry.publish_wasm("linear", "1", &linear_v("1")), Err(RegistryError::Artifact { .. })));
    std::fs::write(dir.path().join("linear/1/model.txt"), "tree").unwrap();
    let err = registry.version("linear", "1").unwrap_err();
    assert!(err.to_string().contains("2 artifacts"), "{err}");
    std::fs::write(dir.path().join("linear/manifest.json"), "{\"serving\": 3}").unwrap();
    assert!(matches!(registry.manifest("linear"), Err(RegistryError::Manifest { .. })));
    assert_eq!(ArtifactKind::LightGbm.file_name(), "model.txt");
    // Numeric versions sort as numbers.
    for v in ["10", "9"] {
        registry.publish_wasm("linear", v, &linear_v(v)).unwrap();
    }
    std::fs::remove_file(dir.path().join("linear/1/model.txt")).unwrap();
    let versions: Vec<String> = registry.versions("linear").unwrap().into_iter().map(|v| v.version).collect();
    assert_eq!(versions, ["1", "9", "10"]);
}

#[test]
fn publish_refuses_an_artifact_before_it_takes_a_version() {
    let (dir, registry) = registry_with(&["1"]);
    let wasm = linear_v("2");
    let lightgbm =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../wasm-models/oracle/fixtures/lgb_regression.model.txt"))
            .unwrap();
    let refusals: [(&str, ArtifactKind, &[u8], &str); 7] = [
        ("empty", ArtifactKind::Wasm, b"", "does not load"),
        ("half a module", ArtifactKind::Wasm, &wasm[..wasm.len() / 2], "does not load"),
        ("another version", ArtifactKind::Wasm, &linear_v("7"), "declares version `7`"),
        ("another model", ArtifactKind::Wasm, &fresco_test_models::hostile::trap(), "names model"),
        ("text as LightGBM", ArtifactKind::LightGbm, b"hello, world\n", "does not load"),
        ("binary as XGBoost", ArtifactKind::XgBoost, &[0xff, 0xfe, 0], "byte 0 is not UTF-8"),
        (
            "a trap",
            ArtifactKind::Wasm,
            &with_metadata(
                assemble(1, "(unreachable)", ""),
                &metadata_json("linear").replace(r#""version":"1""#, r#""version":"2""#),
            ),
            "smoke row",
        ),
    ];
    for (what, kind, bytes, reason) in refusals {
        let err = registry.publish("linear", "2", kind, bytes, None).unwrap_err();
        assert!(matches!(err, RegistryError::Refused { .. }), "{what}: {err}");
        assert!(err.to_string().contains(reason), "{what}: {err}");
    }
    // ONNX metadata goes with ONNX models only.
    let meta: fresco::abi::ModelMetadata = serde_json::from_str(&metadata_json("linear")).unwrap();
    let err = registry.publish("linear", "2", ArtifactKind::Wasm, &wasm, Some(&meta)).unwrap_err();
    assert!(matches!(err, RegistryError::Metadata { .. }), "{err}");
    // Nothing was stored, not even a hidden staging directory; version 2 is still free.
    let names: Vec<String> = std::fs::read_dir(dir.path().join("linear"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != ".manifest.lock")
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    registry.publish_wasm("linear", "2", &wasm).unwrap();
    // A tree model is published under the registry's name and version.
    registry.publish("trees", "1", ArtifactKind::LightGbm, &lightgbm, None).unwrap();
    assert_eq!(registry.versions("trees").unwrap()[0].kind, ArtifactKind::LightGbm);
}

/// Eight publishers of one version at the same moment (as from eight processes of a
/// deploy pipeline): one stores it, the others are told it exists, and no half-written
/// hidden directory stays behind.
#[test]
fn concurrent_publishers_of_one_version_store_it_once() {
    let (dir, registry) = registry_with(&["1"]);
    let wasm = linear_v("2");
    let barrier = std::sync::Barrier::new(8);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    registry.publish_wasm("linear", "2", &wasm)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(err.to_string().contains("already exists"), "{err}");
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("linear"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != ".manifest.lock")
        .collect();
    names.sort();
    assert_eq!(names, ["1", "2", "manifest.json"]);
    assert_eq!(std::fs::read(dir.path().join("linear/2/model.wasm")).unwrap(), wasm);
}

/// A flag source whose answers the test scripts: version by key parity, or off.
struct Scripted {
    on: AtomicBool,
    versions: Mutex<Vec<String>>,
}

impl FlagSource for Scripted {
    fn decide(&self, flag: &str, key: &str) -> FlagDecision {
        assert_eq!(flag, "linear-rollout");
        if !self.on.load(Ordering::Relaxed) {
            return FlagDecision { enabled: false, variant: Some("disabled".into()), payload: None };
        }
        let odd = key.bytes().last().is_some_and(|b| b % 2 == 1);
        if odd { FlagDecision::variant("v3", Some("3")) } else { FlagDecision::variant("v2", Some("2")) }
    }

    fn versions(&self, _flag: &str) -> Vec<String> {
        self.versions.lock().unwrap().clone()
    }
}

#[test]
fn a_flag_routes_each_request_and_the_kill_switch_falls_back() {
    let (_dir, registry) = registry_with(&["1", "2", "3"]);
    let flags = Arc::new(Scripted { on: AtomicBool::new(true), versions: Mutex::new(vec!["2".into()]) });
    let log = Arc::new(MemorySink::new());
    let client = Client::builder()
        .model(
            ModelConfig::from_registry(&registry, "linear").rollout("linear-rollout", "user_id").fallback_version("1"),
        )
        .shared_flags(flags.clone())
        .shared_log(log.clone())
        .build()
        .unwrap();
    assert_eq!(client.loaded_versions("linear").unwrap(), ["1", "2"]);

    // Version 3 is not loaded yet: its rows go to the serving version, counted.
    let batch: Vec<Request> = (0..6).map(request).collect();
    let got = client.predict_batch("linear", &batch).unwrap();
    let versions: Vec<&str> = got.iter().map(|p| p.model_version()).collect();
    assert_eq!(versions, ["2", "1", "2", "1", "2", "1"]);
    assert_eq!(client.stats().flag_version_unavailable, 3);

    // The watcher loads what the flag names.
    flags.versions.lock().unwrap().push("3".into());
    let watcher = client.watch(Duration::from_millis(10));
    let deadline = Instant::now() + Duration::from_secs(5);
    while client.loaded_versions("linear").unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "version 3 never loaded");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(watcher);
    let got = client.predict_batch("linear", &batch).unwrap();
    for (i, p) in got.iter().enumerate() {
        // The answers come back in the order asked, each from its version.
        assert_eq!(p.output("y"), Some(2.0 * i as f64 + 4.0));
        assert_eq!(
            (p.model_version(), p.flag_variant()),
            if i % 2 == 1 { ("3", Some("v3")) } else { ("2", Some("v2")) }
        );
    }

    // A flagged version that does not load is refused once, not at every look.
    plant(&registry, "linear", "9", b"not a module");
    flags.versions.lock().unwrap().push("9".into());
    let refused_before = client.stats().versions_refused;
    let watcher = client.watch(Duration::from_millis(10));
    std::thread::sleep(Duration::from_millis(200));
    drop(watcher);
    assert_eq!(client.stats().versions_refused, refused_before + 1);
    assert_eq!(client.loaded_versions("linear").unwrap(), ["1", "2", "3"]);

    // Kill switch: the fallback answers everyone.
    flags.on.store(false, Ordering::Relaxed);
    let got = client.predict_batch("linear", &batch).unwrap();
    assert!(got.iter().all(|p| p.model_version() == "1" && p.flag_variant() == Some("disabled")));

    let records = log.records();
    assert_eq!(records.len(), 18);
    // A mixed batch is logged per version; each record names its variant and version.
    let mut by_version: Vec<(&str, Option<&str>)> =
        records[6..12].iter().map(|r| (r.model_version.as_str(), r.flag_variant.as_deref())).collect();
    by_version.sort();
    assert_eq!(by_version, [("2", Some("v2")); 3].into_iter().chain([("3", Some("v3")); 3]).collect::<Vec<_>>());
    assert!(records[12..].iter().all(|r| r.flag_variant.as_deref() == Some("disabled") && r.model_version == "1"));

    // A request without the flag's entity key is refused, naming it.
    let err = client.predict("linear", &Request::new().value("a", 1.0).value("b", 1.0)).unwrap_err();
    assert!(matches!(err, Error::MissingEntity { entity, .. } if entity == "user_id"));
}

#[test]
fn a_rollout_needs_a_flag_source_and_a_loadable_fallback() {
    let (_dir, registry) = registry_with(&["1"]);
    let err = Client::builder()
        .model(ModelConfig::from_registry(&registry, "linear").rollout("f", "user_id"))
        .log_to(MemorySink::new())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no flag source"), "{err}");
    let flags = Scripted { on: AtomicBool::new(true), versions: Mutex::new(vec![]) };
    let err = Client::builder()
        .model(ModelConfig::from_registry(&registry, "linear").rollout("f", "user_id").fallback_version("0"))
        .flags(flags)
        .log_to(MemorySink::new())
        .build()
        .unwrap_err();
    assert!(matches!(&err, Error::VersionRefused { version, .. } if version == "0"), "{err}");
}
