//! `fresco serve`'s configuration: every section builds what it names, and a bad value
//! is an error naming its key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fresco::Request;
use fresco::registry::Registry;
use fresco_http::{ConfigError, ServeConfig};

fn flags_snapshot() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/flags_snapshot.json").to_owned()
}

#[test]
fn a_registry_model_with_a_rollout_flag_a_holdout_and_an_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path().join("registry")).unwrap();
    for version in ["1", "4", "5"] {
        registry.publish_wasm("linear", version, &fresco_test_models::linear_version(version)).unwrap();
    }
    registry.deploy("linear", "1").unwrap();
    fresco::EmbeddedStore::open(dir.path().join("features.redb")).unwrap();
    let text = format!(
        r#"
        listen = "127.0.0.1:0"
        [log]
        root = "{root}/log"
        [registry]
        location = "{root}/registry"
        watch_secs = 1
        [store]
        embedded = "{root}/features.redb"
        [flags]
        snapshot = "{flags}"
        [[model]]
        name = "linear"
        rollout = {{ flag = "eta-model", entity = "user_id" }}
        holdout = {{ name = "h", salt = "s", fraction = 0.1, entity = "user_id" }}
        "#,
        root = dir.path().display(),
        flags = flags_snapshot()
    );
    let serving = ServeConfig::from_toml(&text).unwrap().start().unwrap();
    let version = |user: &str| {
        let request = Request::new().entity("user_id", user).value("a", 1.0).value("b", 1.0);
        serving.client.predict("linear", &request).unwrap().model_version().to_owned()
    };
    // The flag pins rider-1 to version 5 and riders 3 and 4 to version 4; the others
    // get the manifest's version.
    assert_eq!(version("rider-1"), "5");
    assert_eq!(version("rider-3"), "4");
    assert_eq!(version("rider-2"), "1");
    // The watcher runs: this process alone may not move off the manifest.
    assert!(matches!(serving.client.deploy("linear", "4"), Err(fresco::Error::FollowsRegistry { .. })));
    serving.shutdown(std::time::Duration::from_secs(5)).unwrap();
    assert!(dir.path().join("log/predictions/model=linear").is_dir(), "the log was published at shutdown");
}

#[test]
fn the_environment_overrides_the_file() {
    let mut config = ServeConfig::from_toml("[log]\nroot = \"a\"\n[[model]]\nfile = \"m.wasm\"").unwrap();
    let env =
        [("FRESCO_LISTEN", "0.0.0.0:9000"), ("FRESCO_LOG_ROOT", "/var/log/fresco"), ("FRESCO_REGISTRY", "s3://m/r")];
    config.apply_env(|name| env.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()));
    assert_eq!(config.listen, "0.0.0.0:9000");
    assert_eq!(config.log.root, std::path::PathBuf::from("/var/log/fresco"));
    assert_eq!(config.registry.unwrap().location, "s3://m/r");
}

#[test]
fn bad_values_are_errors_naming_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display();
    let cases = [
        (format!("[log]\nroot = \"{root}/a\"\n"), "model"),
        (format!("[log]\nroot = \"{root}/b\"\n[[model]]\nname = \"eta\""), "model[0]"),
        (format!("[log]\nroot = \"{root}/c\"\n[[model]]\nfile = \"eta.onnx\""), "model[0].file"),
        (
            format!(
                "[log]\nroot = \"{root}/d\"\n[store.feast]\nurl = \"http://127.0.0.1:1\"\n[[store.feast.view]]\nname = \"v\"\nentity = \"e\"\nfeatures = {{ x = \"float\" }}\n[[model]]\nfile = \"m.wasm\""
            ),
            "store.feast.view[0].features.x",
        ),
        (
            format!(
                "[log]\nroot = \"{root}/e\"\n[flags]\nunleash = \"http://127.0.0.1:1/api\"\n[[model]]\nfile = \"m.wasm\""
            ),
            "flags.token",
        ),
        (
            format!(
                "[log]\nroot = \"{root}/f\"\n[[model]]\nfile = \"{}/../wasm-models/eta/model/eta.wasm\"\ninputs = {{ prep_time_min = \"prep\" }}",
                env!("CARGO_MANIFEST_DIR")
            ),
            "model[0].inputs.prep_time_min",
        ),
        (
            format!("engine = \"risc-v-of-the-future\"\n[log]\nroot = \"{root}/g\"\n[[model]]\nfile = \"m.wasm\""),
            "engine",
        ),
    ];
    for (text, key) in cases {
        let err = ServeConfig::from_toml(&text).unwrap().start().unwrap_err();
        assert!(matches!(&err, ConfigError::Invalid { key: k, .. } if k == key), "{key}: {err}");
    }
    // Unknown keys are refused when the file is read, with the line.
    let err = ServeConfig::from_toml("[log]\nroot = \"x\"\nrot = 1\n[[model]]\nfile = \"m.wasm\"").unwrap_err();
    assert!(err.contains("rot") && err.contains("line 3"), "{err}");
}

#[test]
fn models_run_on_the_pulley_interpreter_when_the_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let eta = format!("{}/../wasm-models/eta/model/eta.wasm", env!("CARGO_MANIFEST_DIR"));
    let text =
        format!("engine = \"pulley\"\n[log]\nroot = \"{}/log\"\n[[model]]\nfile = \"{eta}\"", dir.path().display());
    let serving = ServeConfig::from_toml(&text).unwrap().start().unwrap();
    let request = fresco::Request::new().value("distance_km", 2.4).value("weather", 1i64);
    let pulley = serving.client.predict("eta", &request).unwrap();
    let engine = fresco::runtime::Engine::new().unwrap();
    let model = fresco::runtime::Model::from_file(&engine, &eta).unwrap();
    let mut row = vec![f64::NAN; model.n_inputs()];
    row[0] = 2.4;
    row[4] = 1.0;
    let native = model.predict(&row).unwrap();
    assert_eq!(
        pulley.output_values().iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        native.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
}
