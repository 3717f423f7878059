//! Serves the ETA page (`examples/eta-web`): the shipped model scored in the browser.
//!
//! `cargo run -p fresco-examples --example eta_web [-- ADDR]` (default
//! `127.0.0.1:8080`), then open the printed address. The page fetches `eta.wasm`, the
//! very file the `eta` example scores with wasmtime, and computes the range locally.

use fresco_examples::serve::eta_site;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let server = eta_site()?.start(&addr)?;
    println!("ETA page at http://{}/ (Ctrl-C to stop)", server.addr());
    loop {
        std::thread::park();
    }
}
