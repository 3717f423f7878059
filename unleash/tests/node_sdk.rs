//! Variant assignment for 10,000 entity ids equals the official Node SDK's (npm
//! `unleash-client`), on the same flag snapshot: a 40 % gradual rollout whose variants
//! name model versions (a fixed 5 % share and two variable ones), behind a strategy
//! that pins listed ids to another version.
//!
//! `.ci/run` installs the Node SDK and sets `FRESCO_UNLEASH_NODE_MODULES` to the
//! `node_modules` that holds it; run with `--ignored`. Without it the test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;

use fresco::rollout::FlagSource;
use fresco_unleash::UnleashFlags;
use serde_json::{Value, json};

fn snapshot() -> Value {
    let variant = |name: &str, weight: u32, fix: bool, version: &str| {
        json!({"name": name, "weight": weight, "weightType": if fix { "fix" } else { "variable" },
               "stickiness": "userId", "payload": {"type": "string", "value": version}})
    };
    json!({"version": 2, "features": [{
        "name": "eta-model", "type": "release", "enabled": true, "project": "default",
        "strategies": [
            {"name": "flexibleRollout",
             "constraints": [{"contextName": "userId", "operator": "IN", "values": ["rider-7", "rider-4242"]}],
             "parameters": {"rollout": "100", "stickiness": "userId", "groupId": "eta-model"},
             "variants": [variant("pinned", 1000, false, "5")]},
            {"name": "flexibleRollout",
             "parameters": {"rollout": "40", "stickiness": "userId", "groupId": "eta-model"},
             "variants": [variant("v4", 50, true, "4"), variant("v3", 475, false, "3"), variant("v2", 475, false, "2")]}
        ],
        "variants": []
    }]})
}

#[test]
#[ignore = "needs Node.js and npm's unleash-client (FRESCO_UNLEASH_NODE_MODULES); .ci/run provides them"]
fn ten_thousand_ids_get_the_node_sdks_variants() {
    let node_modules = std::env::var("FRESCO_UNLEASH_NODE_MODULES")
        .unwrap_or_else(|_| panic!("FRESCO_UNLEASH_NODE_MODULES is not set: the node_modules holding unleash-client"));
    let dir = tempfile::tempdir().unwrap();
    let snapshot_path = dir.path().join("flags.json");
    std::fs::write(&snapshot_path, serde_json::to_vec(&snapshot()).unwrap()).unwrap();
    let ids: Vec<String> = (0..10_000).map(|i| format!("rider-{i}")).collect();
    let ids_path = dir.path().join("ids.txt");
    std::fs::write(&ids_path, ids.join("\n")).unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node/assign.js");
    let output = Command::new("node")
        .arg(script)
        .arg(&snapshot_path)
        .arg("eta-model")
        .arg(&ids_path)
        .env("NODE_PATH", &node_modules)
        .output()
        .expect("node runs");
    assert!(output.status.success(), "node failed: {}", String::from_utf8_lossy(&output.stderr));
    let node: Vec<Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(node.len(), ids.len());

    let flags = UnleashFlags::from_snapshot_file(&snapshot_path).unwrap();
    let mut shares: BTreeMap<String, usize> = BTreeMap::new();
    let mut mismatches = Vec::new();
    for (id, theirs) in ids.iter().zip(&node) {
        assert_eq!(theirs["id"], id.as_str());
        let ours = flags.decide("eta-model", id);
        let variant = ours.variant.clone().unwrap_or_default();
        let same = Some(ours.enabled) == theirs["enabled"].as_bool()
            && Some(variant.as_str()) == theirs["variant"].as_str()
            && ours.payload.as_deref() == theirs["payload"].as_str();
        if !same {
            mismatches.push(format!("{id}: fresco {ours:?}, node {theirs}"));
        }
        *shares.entry(variant).or_default() += 1;
    }
    println!("variant shares over {} ids: {shares:?}", ids.len());
    assert!(
        mismatches.is_empty(),
        "{} of {} ids differ:\n{}",
        mismatches.len(),
        ids.len(),
        mismatches[..mismatches.len().min(20)].join("\n")
    );
    // The split is the one configured: 40 % in the rollout, 5 % of those on v4.
    let rolled_out = ids.len() - shares.get("disabled").copied().unwrap_or(0);
    assert!((3_800..=4_200).contains(&rolled_out), "{rolled_out} ids rolled out");
    assert!((120..=300).contains(&shares["v4"]), "{} ids on v4", shares["v4"]);
    assert_eq!(shares["pinned"], 2);
}
