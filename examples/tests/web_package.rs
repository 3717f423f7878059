//! The web package (`web/`) against the Rust host, bit for bit, in Node and in headless
//! Chromium: the cases of `fresco_examples::web_cases` (every oracle fixture under each
//! missing policy, and the ETA model's segmented intervals) are written once, then
//! `npm test` runs the package's tests under Node and a page runs the same parity
//! check in the browser, and the holdout reference vectors.
//!
//! Needs `node` (≥ 18) and Chromium (`chromium` on PATH or `FRESCO_CHROMIUM`); `.ci/run`
//! runs it with `--ignored`. Without them it fails, it does not skip.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fresco_examples::serve::{StaticSite, web_package_dir};
use fresco_examples::web_cases;
use serde_json::Value;
use support::Browser;

#[test]
#[ignore = "needs node and headless Chromium; .ci/run runs this with --ignored"]
fn the_web_package_scores_every_model_as_the_rust_host_in_node_and_chromium() {
    let cases = tempfile::tempdir().unwrap();
    let written = web_cases::write(cases.path()).unwrap();
    assert!(written.models >= 100 && written.rows >= 10_000, "{written:?}");

    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    let status = Command::new("npm")
        .arg("test")
        .current_dir(&web)
        .env("FRESCO_WEB_CASES", cases.path())
        .status()
        .expect("running `npm test` (is Node installed?)");
    assert!(status.success(), "npm test in web/ failed: {status}");

    let site = StaticSite::new()
        .dir_at("/src", web_package_dir())
        .unwrap()
        .dir_at("/test", web.join("test"))
        .unwrap()
        .dir_at("/cases", cases.path())
        .unwrap()
        .file(
            "/testdata/holdout_vectors.json",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/holdout_vectors.json"),
        )
        .start("127.0.0.1:0")
        .unwrap();
    let browser = Browser::launch();
    let mut tab = browser.open(&format!("http://{}/test/page.html", site.addr()));
    tab.wait_for("window.frescoParity !== undefined", Duration::from_secs(300));
    let result: Value = tab.eval("window.frescoParity");
    assert_eq!(result["failures"], serde_json::json!([]), "Chromium differs from the Rust host");
    assert_eq!(result["models"], written.models, "{result}");
    assert_eq!(result["rows"], written.rows, "{result}");
    tab.wait_for("window.frescoHoldout !== undefined", Duration::from_secs(60));
    let holdout: Value = tab.eval("window.frescoHoldout");
    assert_eq!(holdout["failures"], serde_json::json!([]), "Chromium's holdout differs from the reference vectors");
    assert!(holdout["cases"].as_u64().unwrap() >= 500, "{holdout}");
    println!(
        "Chromium: {} models, {} rows equal to the Rust host; {} holdout vectors match",
        written.models, written.rows, holdout["cases"]
    );
}
