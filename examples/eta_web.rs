//! Serves the ETA page (`examples/eta-web`): the shipped model scored in the browser by
//! the web package (`web/`), with each restaurant's features from the snapshot the
//! `eta` example writes.
//!
//! `cargo run -p fresco-examples --example eta_web [-- ADDR [SNAPSHOT]]` (defaults
//! `127.0.0.1:8080` and `fresco-eta/features.json` in the system's temporary directory,
//! where `cargo run -p fresco-examples --example eta` leaves it), then open the printed
//! address.

use fresco_examples::serve::eta_site;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let addr = args.next().map_or_else(|| "127.0.0.1:8080".to_owned(), |a| a.to_string_lossy().into_owned());
    let snapshot = args.next().map_or_else(|| std::env::temp_dir().join("fresco-eta/features.json"), Into::into);
    let server = eta_site(&snapshot)?.start(&addr)?;
    println!("ETA page at http://{}/ (features from {}; Ctrl-C to stop)", server.addr(), snapshot.display());
    loop {
        std::thread::park();
    }
}
