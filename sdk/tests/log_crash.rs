//! Crash safety of the prediction log: a child process logs predictions through the
//! Client and is killed with SIGKILL at random moments, 50 times, half of them with an
//! fsynced spool and half with a buffered one. Every prediction whose `predict`
//! returned (the child prints its id only then) must end up in the Parquet files
//! exactly once, and every published file must read cleanly. The same holds for the
//! treatments the child logs (it prints `t <id>` once `log_treatment` returned).
//!
//! The run's seed is printed, and `FRESCO_CRASH_SEED=N` replays one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fresco::{Client, LogConfig, ModelConfig, ModelSource, PredictionLog, Request, SpoolDurability};
use fresco_test_models::synthetic::SplitMix64;

#[allow(dead_code)]
mod common;
use common::logs::{parquet_files, read, strings};

const CHILD_ENV: &str = "FRESCO_CRASH_TEST_CHILD_DIR";
const CHILD_SEED_ENV: &str = "FRESCO_CRASH_TEST_CHILD_SEED";
const CHILD_FSYNC_ENV: &str = "FRESCO_CRASH_TEST_CHILD_FSYNC";
const ROUNDS: usize = 50;

/// The run's seed: `FRESCO_CRASH_SEED`, or the clock.
fn seed() -> u64 {
    match std::env::var("FRESCO_CRASH_SEED") {
        Ok(seed) => seed.parse().expect("FRESCO_CRASH_SEED is a number"),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    }
}

/// The child: logs predictions until killed, printing each id once `predict` returned.
fn child(dir: &Path) -> ! {
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let mut rng = SplitMix64::new(env(CHILD_SEED_ENV).parse().unwrap());
    let durability = if env(CHILD_FSYNC_ENV) == "1" { SpoolDurability::Fsync } else { SpoolDurability::Buffered };
    let config = LogConfig::new(dir)
        .max_file_bytes(1024 + rng.below(32 * 1024) as u64)
        .max_file_age(Duration::from_millis(5 + rng.below(40) as u64))
        .durability(durability);
    let log = Arc::new(PredictionLog::open(config).unwrap());
    let client = Client::builder()
        .model(ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear())))
        .shared_log(log)
        .build()
        .unwrap();
    let started = Instant::now();
    let stdout = std::io::stdout();
    while started.elapsed() < Duration::from_secs(20) {
        let n = 1 + rng.below(16);
        let batch: Vec<Request> =
            (0..n).map(|i| Request::new().value("a", i as f64).value("b", rng.next_f64())).collect();
        let predictions = client.predict_batch("linear", &batch).unwrap();
        let mut out = stdout.lock();
        for p in &predictions {
            use std::io::Write;
            writeln!(out, "{}", p.id()).unwrap();
        }
        // Every third prediction is treated, each with a call of its own.
        for p in predictions.iter().step_by(3) {
            use std::io::Write;
            client.log_treatment(p, "discount-10", fresco::Timestamp::now()).unwrap();
            writeln!(out, "t {}", p.id()).unwrap();
        }
        use std::io::Write;
        out.flush().unwrap();
    }
    std::process::exit(0)
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("logs");
    let seed = seed();
    eprintln!("crash test seed {seed} (replay with FRESCO_CRASH_SEED={seed})");
    let mut rng = SplitMix64::new(seed);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let acknowledged_treatments = Arc::new(Mutex::new(Vec::<String>::new()));
    for round in 0..ROUNDS {
        // Both spool durabilities every run, alternating.
        let fsync = round % 2 == 0;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sigkill_at_random_moments_loses_and_duplicates_nothing",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &root)
            .env(CHILD_SEED_ENV, rng.next_u64().to_string())
            .env(CHILD_FSYNC_ENV, if fsync { "1" } else { "0" })
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let sink = acknowledged.clone();
        let treatment_sink = acknowledged_treatments.clone();
        let reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                // Only whole lines: an id cut off by the kill was never acknowledged.
                if line.ends_with(b"\n") {
                    let id = String::from_utf8_lossy(&line[..line.len() - 1]).to_string();
                    if id.len() == 36 {
                        sink.lock().unwrap().push(id);
                    } else if let Some(id) = id.strip_prefix("t ").filter(|id| id.len() == 36) {
                        treatment_sink.lock().unwrap().push(id.to_owned());
                    }
                }
                line.clear();
            }
        });
        std::thread::sleep(Duration::from_millis(40 + rng.below(260) as u64));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
    }

    // A last, clean run recovers whatever the final kill left in the spool.
    let log = PredictionLog::open(LogConfig::new(&root)).unwrap();
    log.close().unwrap();

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 1000, "seed {seed}: the children logged only {} predictions", acknowledged.len());
    let published = published_exactly_once(&root, "predictions", &acknowledged, seed);
    let acknowledged_treatments = acknowledged_treatments.lock().unwrap().clone();
    assert!(acknowledged_treatments.len() > 300, "seed {seed}: only {} treatments", acknowledged_treatments.len());
    let treated = published_exactly_once(&root, "treatments", &acknowledged_treatments, seed);
    assert!(treated.is_subset(&published), "seed {seed}: a treatment of an unpublished prediction");
    eprintln!(
        "{ROUNDS} kills: {} predictions and {} treatments acknowledged, {} and {} published (the rest were \
         logged but not yet acknowledged when killed)",
        acknowledged.len(),
        acknowledged_treatments.len(),
        published.len(),
        treated.len()
    );
}

/// The prediction ids of `table` under `root`, checking that none is there twice and
/// that every acknowledged one is.
fn published_exactly_once(root: &Path, table: &str, acknowledged: &[String], seed: u64) -> HashSet<String> {
    let mut published = Vec::new();
    for file in parquet_files(&root.join(table)) {
        published.extend(strings(&read(&file), "prediction_id").into_iter().map(Option::unwrap));
    }
    let unique: HashSet<String> = published.iter().cloned().collect();
    assert_eq!(unique.len(), published.len(), "seed {seed}: a record of {table} was published twice");
    let missing: Vec<&String> = acknowledged.iter().filter(|id| !unique.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "seed {seed}: {} of {} acknowledged {table} are missing, e.g. {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(3)]
    );
    unique
}
