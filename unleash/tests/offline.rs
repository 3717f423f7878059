//! Flags with no server: snapshots (the edge), bad snapshots, a server that is not
//! there, and a Client routed by a snapshot.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fresco::registry::Registry;
use fresco::rollout::FlagSource;
use fresco::{Client, MemorySink, ModelConfig, Request};
use fresco_unleash::{FlagError, UnleashConfig, UnleashFlags};

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/flags_snapshot.json");

#[test]
fn bad_snapshots_are_refused_and_change_nothing() {
    for bad in [&b"not json"[..], b"[]", br#"{"toggles": []}"#, br#"{"version": 2, "features": 3}"#] {
        let err = UnleashFlags::from_snapshot(bad).unwrap_err();
        assert!(matches!(err, FlagError::Snapshot { .. }), "{err}");
    }
    let flags = UnleashFlags::from_snapshot_file(SNAPSHOT).unwrap();
    assert!(flags.load_snapshot(b"{").is_err());
    assert_eq!(flags.decide("eta-model", "rider-1").payload.as_deref(), Some("5"));
    let missing = UnleashFlags::from_snapshot_file("/nonexistent/flags.json").unwrap_err();
    assert!(matches!(missing, FlagError::Io { .. }) && missing.to_string().contains("/nonexistent/flags.json"));
}

/// A state the engine cannot evaluate (variants weighing 0 in all, which the engine
/// divides by) is refused with the flag named, and the last good state serves on.
#[test]
fn a_flag_the_engine_cannot_evaluate_is_refused_and_the_last_state_serves() {
    let zero_weights = br#"{"version": 2, "features": [{"name": "eta-model", "enabled": true,
        "strategies": [{"name": "default", "parameters": {}}],
        "variants": [{"name": "v4", "weight": 0, "payload": {"type": "string", "value": "4"}},
                     {"name": "v5", "weight": 0, "payload": {"type": "string", "value": "5"}}]}]}"#;
    let err = UnleashFlags::from_snapshot(zero_weights).unwrap_err();
    assert!(matches!(&err, FlagError::InvalidFlag { flag, .. } if flag == "eta-model"), "{err}");

    let flags = UnleashFlags::from_snapshot_file(SNAPSHOT).unwrap();
    let before: Vec<_> = ["rider-1", "rider-2", "rider-3"].map(|id| flags.decide("eta-model", id)).into();
    assert!(matches!(flags.load_snapshot(zero_weights), Err(FlagError::InvalidFlag { .. })));
    let after: Vec<_> = ["rider-1", "rider-2", "rider-3"].map(|id| flags.decide("eta-model", id)).into();
    assert_eq!(before, after);
    assert_eq!(flags.stats().refused.load(Ordering::Relaxed), 1);
}

/// A flag name the state does not hold reads as off for everyone; `knows` tells the
/// client (which says so in its log) and `flag_names` the `fresco flags` command.
#[test]
fn a_flag_missing_from_the_state_is_known_to_be_missing() {
    let flags = UnleashFlags::from_snapshot_file(SNAPSHOT).unwrap();
    assert_eq!(flags.flag_names(), ["eta-model", "killed"]);
    assert!(flags.knows("eta-model") && flags.knows("killed"));
    assert!(!flags.knows("eta-modle"));
    assert!(!flags.decide("eta-modle", "rider-1").enabled);
}

/// Found by the `flag_snapshot` fuzz target: a constraint operator the SDK does not
/// know was accepted but saved in a form that did not read back.
#[test]
fn a_state_with_an_unknown_operator_saves_and_reads_back() {
    let state = br#"{"version": 2, "features": [{"name": "eta-model", "enabled": true,
        "strategies": [{"name": "flexibleRollout", "parameters": {"rollout": "100"},
            "constraints": [{"contextName": "userId", "operator": "STR_SOUNDS_LIKE", "values": ["x"]}]}]}]}"#;
    let flags = UnleashFlags::from_snapshot(state).unwrap();
    let saved = flags.snapshot().unwrap();
    assert!(String::from_utf8_lossy(&saved).contains(r#""operator": "STR_SOUNDS_LIKE""#));
    let again = UnleashFlags::from_snapshot(&saved).unwrap();
    assert_eq!(again.snapshot().unwrap(), saved);
}

#[test]
fn a_snapshot_saved_from_the_state_reads_back_the_same() {
    let flags = UnleashFlags::from_snapshot_file(SNAPSHOT).unwrap();
    let again = UnleashFlags::from_snapshot(&flags.snapshot().unwrap()).unwrap();
    for id in ["rider-1", "rider-2", "rider-3", "rider-4"] {
        assert_eq!(flags.decide("eta-model", id), again.decide("eta-model", id));
    }
    assert_eq!(again.versions("eta-model"), ["4", "5"]);
    assert!(again.versions("no-such-flag").is_empty());
    // An unknown flag is off.
    assert!(!again.decide("no-such-flag", "rider-1").enabled);
}

#[test]
fn with_no_server_the_snapshot_serves_and_failures_are_counted() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = UnleashConfig::new(format!("http://127.0.0.1:{port}/api"), "token")
        .refresh(Duration::from_millis(50))
        .snapshot(SNAPSHOT);
    let flags = UnleashFlags::connect(config).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(flags.stats().failures.load(Ordering::Relaxed) >= 2);
    assert_eq!(flags.stats().fetches.load(Ordering::Relaxed), 0);
    assert_eq!(flags.decide("eta-model", "rider-3").payload.as_deref(), Some("4"));

    // Without a snapshot, connect gives up waiting and every flag reads as off.
    let config =
        UnleashConfig::new(format!("http://127.0.0.1:{port}/api"), "token").first_fetch(Duration::from_millis(100));
    let flags = UnleashFlags::connect(config).unwrap();
    assert!(flags.last_update().is_none());
    assert!(!flags.decide("eta-model", "rider-3").enabled);
}

#[test]
fn a_client_routes_by_the_snapshot_and_logs_variant_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    for v in ["3", "4", "5"] {
        registry.publish_wasm("linear", v, &fresco_test_models::linear_version(v)).unwrap();
    }
    registry.deploy("linear", "3").unwrap();
    let log = Arc::new(MemorySink::new());
    let client = Client::builder()
        .model(ModelConfig::from_registry(&registry, "linear").rollout("eta-model", "rider_id").fallback_version("3"))
        .flags(UnleashFlags::from_snapshot_file(SNAPSHOT).unwrap())
        .shared_log(log.clone())
        .build()
        .unwrap();
    let batch: Vec<Request> = (1..=4)
        .map(|i| Request::new().entity("rider_id", format!("rider-{i}")).value("a", 1.0).value("b", 1.0))
        .collect();
    let got: Vec<(String, Option<String>)> = client
        .predict_batch("linear", &batch)
        .unwrap()
        .iter()
        .map(|p| (p.model_version().to_owned(), p.flag_variant().map(str::to_owned)))
        .collect();
    let s = |v: &str, f: &str| (v.to_owned(), Some(f.to_owned()));
    assert_eq!(got, [s("5", "pinned"), s("3", "disabled"), s("4", "v4"), s("4", "v4")]);
    let mut logged: Vec<(String, Option<String>)> =
        log.records().into_iter().map(|r| (r.model_version, r.flag_variant)).collect();
    logged.sort();
    assert_eq!(logged, [s("3", "disabled"), s("4", "v4"), s("4", "v4"), s("5", "pinned")]);
}
