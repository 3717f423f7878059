//! A tiny static file server for the browser example (`examples/eta-web`).
//!
//! It serves a fixed list of files (nothing else: no directory listing, no path
//! traversal), answers `GET` and `HEAD` only, and runs one thread per connection. It
//! is for trying the page locally and for the headless-browser test, not for
//! production.
//!
//! ```no_run
//! use fresco_examples::serve::StaticSite;
//!
//! let site = StaticSite::new().file("/index.html", "examples/eta-web/index.html");
//! let server = site.start("127.0.0.1:0")?;
//! println!("open http://{}/index.html", server.addr());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The files a [`StaticSite`] serves, by URL path.
#[derive(Debug, Clone, Default)]
pub struct StaticSite {
    files: HashMap<String, PathBuf>,
}

/// A running server; it serves until the process exits.
#[derive(Debug)]
pub struct RunningSite {
    addr: SocketAddr,
}

impl RunningSite {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl StaticSite {
    /// A site with no files.
    pub fn new() -> Self {
        StaticSite::default()
    }

    /// Serves `path` at `url` (which starts with `/`). `/` is an alias of `/index.html`.
    pub fn file(mut self, url: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        self.files.insert(url.into(), path.into());
        self
    }

    /// Serves every regular file of `dir` at `/<file name>`.
    pub fn dir(self, dir: impl AsRef<Path>) -> std::io::Result<Self> {
        self.dir_at("", dir)
    }

    /// Serves every regular file of `dir` at `<prefix>/<file name>` (`prefix` empty or
    /// starting with `/`).
    pub fn dir_at(mut self, prefix: &str, dir: impl AsRef<Path>) -> std::io::Result<Self> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                self.files.insert(format!("{prefix}/{}", entry.file_name().to_string_lossy()), entry.path());
            }
        }
        Ok(self)
    }

    /// Binds `addr` (port 0 picks a free one) and serves in a background thread.
    pub fn start(self, addr: &str) -> std::io::Result<RunningSite> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let site = Arc::new(self);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let site = site.clone();
                std::thread::spawn(move || {
                    // A client that hangs up mid-request is not an error worth reporting.
                    let _ = site.answer(stream);
                });
            }
        });
        Ok(RunningSite { addr })
    }

    fn answer(&self, stream: TcpStream) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut out = stream;
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line)? == 0 {
                return Ok(());
            }
            // Skip the headers; requests have no bodies (GET and HEAD only).
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
                    break;
                }
            }
            let mut parts = request_line.split_whitespace();
            let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let path = target.split('?').next().unwrap_or("");
            let path = if path == "/" { "/index.html" } else { path };
            let (status, body, kind) = match (method, self.files.get(path)) {
                ("GET" | "HEAD", Some(file)) => match std::fs::read(file) {
                    Ok(bytes) => ("200 OK", bytes, content_type(file)),
                    Err(e) => ("500 Internal Server Error", e.to_string().into_bytes(), "text/plain"),
                },
                ("GET" | "HEAD", None) => ("404 Not Found", b"not found".to_vec(), "text/plain"),
                _ => ("405 Method Not Allowed", b"GET or HEAD only".to_vec(), "text/plain"),
            };
            write!(
                out,
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\r\n",
                body.len()
            )?;
            if method != "HEAD" {
                out.write_all(&body)?;
            }
            out.flush()?;
        }
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        Some("css") => "text/css",
        _ => "application/octet-stream",
    }
}

/// The web package's modules (`web/src`), served at `/fresco-web/`.
pub fn web_package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/src")
}

/// The ETA page (`examples/eta-web`) with the shipped model at `/eta.wasm`, the web
/// package at `/fresco-web/` and the feature snapshot `snapshot` (written by the `eta`
/// example) at `/features.json`.
pub fn eta_site(snapshot: &Path) -> std::io::Result<StaticSite> {
    if !snapshot.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "no feature snapshot at {}: run `cargo run -p fresco-examples --example eta` first, which writes it",
                snapshot.display()
            ),
        ));
    }
    Ok(StaticSite::new()
        .dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("eta-web"))?
        .dir_at("/fresco-web", web_package_dir())?
        .file("/eta.wasm", crate::eta::model_path())
        .file("/features.json", snapshot))
}
