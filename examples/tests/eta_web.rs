//! The ETA page (`examples/eta-web`) in a real browser: Debian's headless Chromium,
//! driven over the DevTools protocol.
//!
//! It types inputs into the page and checks the range it shows equals the range the
//! Rust host computes (wasmtime + `fresco::interval`), and that the browser's
//! WebAssembly engine and wasmtime give bitwise-identical outputs, and the same range,
//! on 1,000 random rows (missing values, unseen categories and out-of-range numbers
//! included).
//!
//! Needs Chromium: `chromium` on PATH or `FRESCO_CHROMIUM=/path/to/chromium`. `.ci/run`
//! installs it and runs `cargo test -p fresco-examples --test eta_web -- --ignored`;
//! without a browser the test fails, it does not skip.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fresco::interval::IntervalRule;
use fresco::runtime::{Engine, Model};
use fresco_examples::eta::{INPUTS, World, WorldConfig, model_path};
use fresco_examples::serve::eta_site;
use fresco_test_models::synthetic::SplitMix64;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket, stream::MaybeTlsStream};

const RANDOM_ROWS: usize = 1_000;

/// A headless browser, killed on drop.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws_url: String,
}

impl Browser {
    fn launch() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let binary = fresco_test_models::chromium();
        let mut child = Command::new(&binary)
            .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        // Chromium prints its DevTools endpoint on stderr.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let ws_url = rx.recv_timeout(Duration::from_secs(60)).expect("Chromium did not print its DevTools endpoint");
        Browser { child, _profile: profile, ws_url }
    }

    /// Opens `url` in a new tab and connects to it.
    fn open(&self, url: &str) -> Tab {
        let mut browser = Tab::connect(&self.ws_url);
        let target = browser.call("Target.createTarget", json!({ "url": url }));
        let id = target["targetId"].as_str().expect("a target id");
        let host = self.ws_url.trim_start_matches("ws://").split('/').next().unwrap().to_owned();
        Tab::connect(&format!("ws://{host}/devtools/page/{id}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One DevTools connection.
struct Tab {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Tab {
    fn connect(url: &str) -> Tab {
        let (socket, _) = tungstenite::connect(url).unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        Tab { socket, next_id: 0 }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket.send(Message::text(request)).unwrap();
        loop {
            let message = self.socket.read().unwrap();
            let Message::Text(text) = message else { continue };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {}", reply["error"]);
                return reply["result"].clone();
            }
        }
    }

    /// Evaluates a JavaScript expression and returns its value.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true }));
        assert!(result.get("exceptionDetails").is_none(), "`{expression}` threw: {}", result["exceptionDetails"]);
        result["result"]["value"].clone()
    }

    fn wait_for(&mut self, expression: &str, timeout: Duration) {
        let started = Instant::now();
        while self.eval(expression) != json!(true) {
            assert!(started.elapsed() < timeout, "timed out waiting for `{expression}`");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `text` into a field the way a person does: focus, select what is there,
    /// type over it (or delete it).
    fn type_into(&mut self, field: &str, text: &str) {
        self.eval(&format!("(() => {{ const e = document.getElementById('{field}'); e.focus(); e.select(); }})()"));
        if text.is_empty() {
            for kind in ["keyDown", "keyUp"] {
                self.call(
                    "Input.dispatchKeyEvent",
                    json!({ "type": kind, "key": "Backspace", "code": "Backspace", "windowsVirtualKeyCode": 8 }),
                );
            }
        } else {
            self.call("Input.insertText", json!({ "text": text }));
        }
    }
}

/// What the Rust host shows for one row.
fn rust_range(model: &Model, rule: &IntervalRule, row: &[f64]) -> String {
    let outputs = model.predict(row).unwrap();
    rule.apply(row, &outputs).unwrap().display("min").to_string()
}

fn hex(x: f64) -> String {
    format!("{:016x}", x.to_bits())
}

/// Random rows over and beyond the model's input ranges.
fn random_rows(n: usize) -> Vec<Vec<f64>> {
    let mut rng = SplitMix64::new(0xE7A);
    let mut value = |input: usize| -> f64 {
        if rng.below(10) == 0 {
            return f64::NAN;
        }
        let u = rng.next_f64();
        match input {
            0 => 25.0 * u - 1.0,                                     // distance, some negative
            1 => 26.0 * u - 1.0,                                     // hour
            2 => (rng.below(9) as f64) - 1.0,                        // day of week, some out of range
            3 => 1.4 * u - 0.2,                                      // traffic
            4 => [0.0, 1.0, 2.0, 3.0, 7.0, -1.0, 1.5][rng.below(7)], // weather: unseen and invalid categories
            5 => 40.0 * u,                                           // prep time
            _ => (rng.below(60)) as f64,                             // orders in the last 30 min
        }
    };
    (0..n).map(|_| (0..INPUTS.len()).map(&mut value).collect()).collect()
}

#[test]
#[ignore = "needs headless Chromium; .ci/run installs it and runs this with --ignored"]
fn the_browser_shows_the_range_the_rust_host_computes() {
    let engine = Engine::new().unwrap();
    let model = Model::from_file(&engine, model_path()).unwrap();
    let rule = IntervalRule::for_model(model.metadata()).unwrap().expect("the ETA model declares an interval");
    // The shipped model calibrates per segment, so the browser must find the same
    // segment as Rust for every row (missing and out-of-range values included).
    assert!(rule.is_segmented(), "the ETA model's interval has no segments");

    let site = eta_site().unwrap().start("127.0.0.1:0").unwrap();
    let browser = Browser::launch();
    let mut tab = browser.open(&format!("http://{}/", site.addr()));
    tab.wait_for("document.body !== null && document.body.dataset.ready === 'true'", Duration::from_secs(60));
    let fields: Vec<String> =
        serde_json::from_value(tab.eval("Array.from(document.querySelectorAll('#inputs input'), e => e.id)")).unwrap();
    assert_eq!(fields, INPUTS.map(|i| format!("in-{i}")), "the page's fields follow the model's inputs");

    // Typed inputs: orders from the delivery world, as a person would type them, and a
    // few with a field left empty (a missing value).
    let mut world = World::new(WorldConfig { seed: 99, ..WorldConfig::default() });
    let orders: Vec<_> = (0..40).flat_map(|_| world.next_tick().orders).step_by(97).take(12).collect();
    assert!(orders.len() >= 8);
    for (k, order) in orders.iter().enumerate() {
        let mut texts: Vec<String> =
            order.features().iter().map(|x| if x.is_nan() { String::new() } else { format!("{x:.2}") }).collect();
        if k % 4 == 3 {
            texts[k % INPUTS.len()] = String::new();
        }
        for (field, text) in fields.iter().zip(&texts) {
            tab.type_into(field, text);
        }
        let typed: Vec<f64> = texts.iter().map(|t| if t.is_empty() { f64::NAN } else { t.parse().unwrap() }).collect();
        let expected = rust_range(&model, &rule, &typed);
        let shown = tab.eval("document.getElementById('range').textContent");
        assert_eq!(shown, json!(expected), "typed {texts:?}");
    }

    // Bitwise determinism on random rows, and the same range for each.
    let rows = random_rows(RANDOM_ROWS);
    let bits: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|x| hex(*x)).collect()).collect();
    let browser_out: Vec<String> =
        serde_json::from_value(tab.eval(&format!("window.frescoEta.scoreBits({})", json!(bits)))).unwrap();
    let flat: Vec<f64> = rows.concat();
    let wasmtime_out: Vec<String> = model.predict(&flat).unwrap().iter().map(|x| hex(*x)).collect();
    assert_eq!(browser_out.len(), wasmtime_out.len());
    let differing = browser_out.iter().zip(&wasmtime_out).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 0, "{differing} of {} outputs differ between Chromium and wasmtime", wasmtime_out.len());
    let browser_ranges: Vec<String> =
        serde_json::from_value(tab.eval(&format!("{}.map(r => window.frescoEta.rangeOf(r))", json!(bits)))).unwrap();
    for (row, shown) in rows.iter().zip(&browser_ranges) {
        assert_eq!(shown, &rust_range(&model, &rule, row), "row {row:?}");
    }
    // The bounds themselves, bit for bit: the browser finds each row's segment and
    // applies its offsets exactly as Rust does.
    let browser_bounds: Vec<Vec<String>> =
        serde_json::from_value(tab.eval(&format!("{}.map(r => window.frescoEta.intervalBits(r))", json!(bits))))
            .unwrap();
    for ((row, out), shown) in rows.iter().zip(wasmtime_out.chunks(3)).zip(&browser_bounds) {
        let outputs: Vec<f64> = out.iter().map(|h| f64::from_bits(u64::from_str_radix(h, 16).unwrap())).collect();
        let i = rule.apply(row, &outputs).unwrap();
        assert_eq!(shown, &[hex(i.low), hex(i.mid), hex(i.high)], "row {row:?}");
    }
}
