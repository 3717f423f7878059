//! `predict` in process, on one thread, on the model, row and log of a `fresco serve`
//! configuration: the baseline the HTTP load test is reported beside.
//!
//! `cargo run -p fresco-http --example in_process -- examples/serve/fresco.toml examples/serve/predict.json 100000`

use std::time::Instant;

use fresco_http::{PredictBody, ServeConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, config, body, calls] = args.as_slice() else {
        return Err("usage: in_process CONFIG BODY.json CALLS".into());
    };
    let calls: usize = calls.parse()?;
    let config = ServeConfig::from_file(config.as_ref())?;
    let serving = config.start()?;
    let body: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(body)?)?;
    let PredictBody::One(row) = PredictBody::from_json(body).map_err(|e| e.message)? else {
        return Err("the body is a batch; give one row".into());
    };
    let request = row.to_request(0).map_err(|e| e.message)?;
    let model = serving.client.models().first().map(|m| (*m).to_owned()).ok_or("no model")?;
    for _ in 0..1_000 {
        serving.client.predict(&model, &request)?;
    }
    let mut micros = Vec::with_capacity(calls);
    let started = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        serving.client.predict(&model, &request)?;
        micros.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let seconds = started.elapsed().as_secs_f64();
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() as f64 * q) as usize).min(micros.len() - 1)];
    println!(
        "in-process predict: {calls} calls on one thread, {:.0}/s, p50 {:.1} µs, p99 {:.1} µs",
        calls as f64 / seconds,
        at(0.50),
        at(0.99)
    );
    serving.shutdown(std::time::Duration::from_secs(5))?;
    Ok(())
}
