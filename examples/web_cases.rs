//! Writes the web package's parity cases: `cargo run -p fresco-examples --example
//! web_cases -- DIR` (see `fresco_examples::web_cases`). `npm test` in `web/` runs it
//! when `FRESCO_WEB_CASES` names no directory of cases.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(dir) = std::env::args_os().nth(1) else {
        return Err("usage: web_cases DIR".into());
    };
    let written = fresco_examples::web_cases::write(std::path::Path::new(&dir))?;
    println!(
        "{} models, {} rows answered by the Rust host, in {}",
        written.models,
        written.rows,
        dir.to_string_lossy()
    );
    Ok(())
}
