//! A headless Chromium driven over the DevTools protocol, for the browser tests.
//!
//! Needs Chromium: `chromium` on PATH or `FRESCO_CHROMIUM=/path/to/chromium`; without
//! one the tests fail, they do not skip.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket, stream::MaybeTlsStream};

/// A headless browser, killed on drop.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    ws_url: String,
}

impl Browser {
    pub fn launch() -> Browser {
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
    pub fn open(&self, url: &str) -> Tab {
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
pub struct Tab {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Tab {
    pub fn connect(url: &str) -> Tab {
        let (socket, _) = tungstenite::connect(url).unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        Tab { socket, next_id: 0 }
    }

    pub fn call(&mut self, method: &str, params: Value) -> Value {
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
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true }));
        assert!(result.get("exceptionDetails").is_none(), "`{expression}` threw: {}", result["exceptionDetails"]);
        result["result"]["value"].clone()
    }

    pub fn wait_for(&mut self, expression: &str, timeout: Duration) {
        let started = Instant::now();
        while self.eval(expression) != json!(true) {
            assert!(started.elapsed() < timeout, "timed out waiting for `{expression}`");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `text` into a field the way a person does: focus, select what is there,
    /// type over it (or delete it).
    #[allow(dead_code)] // used by the page test, not by the package test
    pub fn type_into(&mut self, field: &str, text: &str) {
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
