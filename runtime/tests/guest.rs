//! Builds the example guest model (written in Rust with `fresco-guest`) for
//! `wasm32-unknown-unknown` and scores it through the runtime.
//!
//! Needs the target: `rustup target add wasm32-unknown-unknown` (`.ci/run` installs it).
//! Without it this test fails with cargo's message rather than skipping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use fresco_runtime::{Engine, Model};

fn build_guest() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("guest");
    let output = Command::new(env!("CARGO"))
        .current_dir(&workspace)
        .args(["build", "--release", "--target", "wasm32-unknown-unknown", "-p", "fresco-example-linear-guest"])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building the guest for wasm32-unknown-unknown failed (is the target installed? \
         `rustup target add wasm32-unknown-unknown`):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    target_dir.join("wasm32-unknown-unknown/release/fresco_example_linear_guest.wasm")
}

#[test]
fn rust_guest_model_scores_like_its_source() {
    let path = build_guest();
    let engine = Engine::new().unwrap();
    let model = Model::from_file(&engine, &path).unwrap();
    assert_eq!(model.name(), "eta-linear");
    assert_eq!(model.metadata().outputs, ["eta_min"]);

    let rows = [4.0, f64::NAN, 0.5, 1.0, 8.0, 0.0, 0.0, 0.0, 1.0];
    let scored = model.predict(&rows).unwrap();
    let expected: Vec<f64> = rows
        .chunks(3)
        .map(|row| {
            let mut out = [0.0];
            fresco_example_linear_guest::predict(row, &mut out);
            out[0]
        })
        .collect();
    assert_eq!(scored, expected);
    assert_eq!(scored, [27.0, 10.5, 0.0]);
}
