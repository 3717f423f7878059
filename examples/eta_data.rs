//! Writes orders from the synthetic delivery world ([`fresco_examples::eta`]) as CSV,
//! the training data of the ETA model (`wasm-models/eta/train.py` runs this).
//!
//! ```sh
//! cargo run -p fresco-examples --example eta_data -- --seed 7 --days 28 orders.csv
//! ```
//!
//! Columns: `order_id`, `customer_id`, `restaurant_id`, `tick`, the model inputs
//! (`fresco_examples::eta::INPUTS`; an empty `traffic` cell is a missing reading) and
//! `minutes`, the true delivery time. Floats are written in their shortest exact form,
//! so a reader gets the very same f64 values.

use std::io::Write;
use std::process::ExitCode;

use fresco_examples::eta::{INPUTS, World, WorldConfig};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("eta_data: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut config = WorldConfig::default();
    let mut days: u64 = 28;
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--seed" => config.seed = value("--seed")?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--days" => days = value("--days")?.parse().map_err(|e| format!("--days: {e}"))?,
            _ if arg.starts_with('-') => return Err(format!("unknown option {arg}")),
            _ => out = Some(arg),
        }
    }
    let out = out.ok_or("usage: eta_data [--seed N] [--days N] OUT.csv")?;
    let file = std::fs::File::create(&out).map_err(|e| format!("{out}: {e}"))?;
    let mut w = std::io::BufWriter::new(file);
    let io = |e: std::io::Error| format!("{out}: {e}");
    writeln!(w, "order_id,customer_id,restaurant_id,tick,{},minutes", INPUTS.join(",")).map_err(io)?;
    let mut world = World::new(config);
    let mut rows = 0u64;
    for _ in 0..days * 48 {
        let tick = world.next_tick();
        for order in &tick.orders {
            let restaurant = &world.restaurants()[order.restaurant].id;
            write!(w, "{},{},{restaurant},{}", order.id, order.customer_id, tick.index).map_err(io)?;
            for x in order.features() {
                if x.is_nan() { write!(w, ",") } else { write!(w, ",{x:?}") }.map_err(io)?;
            }
            writeln!(w, ",{:?}", order.minutes).map_err(io)?;
            rows += 1;
        }
    }
    w.flush().map_err(io)?;
    eprintln!("wrote {rows} orders over {days} days (seed {}) to {out}", config.seed);
    Ok(())
}
