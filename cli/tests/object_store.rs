//! A fleet on a real S3-protocol server (moto, started by `.ci/run`; its address in
//! `FRESCO_S3_ENDPOINT`): prediction logs of 3 writer processes uploaded to one bucket,
//! an outage of the endpoint and a writer killed with SIGKILL (nothing acknowledged lost
//! or duplicated), training sets from the bucket, pyarrow and polars reading it, and a
//! registry in the bucket that 3 watching Clients follow. The outage is of the endpoint
//! (a relay in front of the server refuses connections for 10 s): moto keeps its objects
//! in memory, so its own process stays up.
//!
//! The writer and client processes are this same binary (`FRESCO_S3_ROLE`).
//! `FRESCO_S3_ENDPOINT=http://127.0.0.1:5000 cargo test -p fresco-cli --test object_store -- --ignored`

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is the test failing

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use fresco::abi::InputType;
use fresco::registry::{Registry, RegistryError};
use fresco::{
    Client, LogConfig, LogSchema, MemorySink, ModelConfig, OutcomeRecord, PredictionLog, PredictionRecord,
    PredictionSink, Request, SpoolDurability, Timestamp,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const WRITERS: usize = 3;

fn endpoint() -> String {
    std::env::var("FRESCO_S3_ENDPOINT").expect("FRESCO_S3_ENDPOINT: the S3-protocol server .ci/run starts")
}

/// The environment that points object_store (and the CLI) at `endpoint`.
fn s3_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

fn set_s3_env(endpoint: &str) {
    for (key, value) in s3_env(endpoint) {
        // SAFETY: set before this test starts any thread that reads the environment.
        unsafe { std::env::set_var(key, value) };
    }
}

/// Creates a bucket of a name no other test run uses (CreateBucket is a bare PUT).
fn new_bucket(endpoint: &str, name: &str) -> String {
    let bucket = format!("{name}-{}", uuid_hex());
    let host = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).unwrap();
    write!(stream, "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "CreateBucket: {answer}");
    bucket
}

fn uuid_hex() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{:x}{:x}", nanos, std::process::id())
}

fn schema() -> Arc<LogSchema> {
    Arc::new(LogSchema {
        model: "eta".into(),
        version: "1".into(),
        entities: vec!["restaurant_id".into()],
        inputs: vec![("distance_km".into(), InputType::F64)],
        outputs: vec!["eta_min".into()],
    })
}

fn record(id: &str, i: u64) -> PredictionRecord {
    PredictionRecord {
        prediction_id: id.into(),
        ts: Timestamp::from_micros(1_764_201_600_000_000 + i as i64 * 1_000),
        model: "eta".into(),
        model_version: "1".into(),
        entities: vec![("restaurant_id".into(), format!("r-{}", i % 50))],
        inputs: vec![i as f64 / 10.0],
        outputs: vec![10.0 + (i % 30) as f64],
        holdout: None,
        in_holdout: false,
        eligible: true,
        flag_variant: None,
        latency_us: 10,
    }
}

// ---------------------------------------------------------------------------------------
// The processes.

/// The child processes' entry point: this test, run with `FRESCO_S3_ROLE` set.
#[test]
#[ignore = "a child process of the object-store tests"]
fn child_role() {
    let var = |name: &str| std::env::var(name).unwrap();
    match std::env::var("FRESCO_S3_ROLE").as_deref() {
        Ok("writer") => writer(&var("S3_ROOT"), &var("S3_URL"), var("S3_WRITER").parse().unwrap()),
        Ok("streamer") => streamer(&var("S3_ROOT"), &var("S3_URL"), &var("S3_PREFIX"), Path::new(&var("S3_ACKS"))),
        Ok("client") => client(&var("S3_URL")),
        _ => {}
    }
}

/// Writer `w`: 2,000 predictions `w<w>-<k>`, then outcomes for the even predictions of
/// the next writer (`w<w+1>-<k>`): an outcome logged on another replica than its
/// prediction. Closes the log (flush and upload) before it exits.
fn writer(root: &str, url: &str, w: usize) {
    let log = PredictionLog::open(LogConfig::new(root).upload_to(url).max_file_bytes(64 << 10)).unwrap();
    let schema = schema();
    for chunk in 0..20u64 {
        let records = (0..100).map(|k| chunk * 100 + k).map(|k| record(&format!("w{w}-{k}"), k)).collect();
        log.append(&schema, records).unwrap();
    }
    let next = (w + 1) % WRITERS;
    let outcomes = (0..2_000u64)
        .step_by(2)
        .map(|k| OutcomeRecord {
            prediction_id: format!("w{next}-{k}"),
            ts: Timestamp::from_micros(1_764_201_600_000_000 + k as i64 * 1_000 + 600_000_000),
            label: (k % 40) as f64,
        })
        .collect();
    log.append_outcomes("eta", outcomes).unwrap();
    log.close().unwrap();
    println!("done");
}

/// Appends batches of 64 predictions as fast as it can until stdin closes, writing each
/// batch's ids to `acks` once `append` has returned (acknowledged), then closes the log.
fn streamer(root: &str, url: &str, prefix: &str, acks: &Path) {
    let log = PredictionLog::open(
        LogConfig::new(root)
            .upload_to(url)
            .max_file_age(Duration::from_millis(300))
            .durability(SpoolDurability::Buffered),
    )
    .unwrap();
    let mut acked = std::fs::OpenOptions::new().create(true).append(true).open(acks).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            stop.store(true, Ordering::Relaxed);
        });
    }
    println!("ready {} replayed {}", log.run(), log.stats().replayed);
    let schema = schema();
    let mut k = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let ids: Vec<String> = (0..64).map(|j| format!("{prefix}-{}", k + j)).collect();
        let records = ids.iter().enumerate().map(|(j, id)| record(id, k + j as u64)).collect();
        log.append(&schema, records).unwrap();
        acked.write_all((ids.join("\n") + "\n").as_bytes()).unwrap();
        k += 64;
        // Full speed, but leave the uploads a share of a 2-core machine.
        std::thread::sleep(Duration::from_millis(2));
    }
    log.close().unwrap();
    println!("closed");
}

/// A Client following `linear` in the registry at `url`: prints the serving version
/// whenever it changes, and what a deploy of its own gets.
fn client(url: &str) {
    let registry = Registry::open_url(url).unwrap();
    let client = Client::builder()
        .model(ModelConfig::from_registry(&registry, "linear"))
        .log_to(MemorySink::new())
        .build()
        .unwrap();
    let _watcher = client.watch(Duration::from_millis(500));
    let refused = client.deploy("linear", "1").unwrap_err();
    println!("own deploy: {refused}");
    let request = Request::new().value("a", 1.0).value("b", 1.0);
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let version = client.predict("linear", &request).unwrap().model_version().to_owned();
        if version != last {
            println!("serving {version}");
            last = version;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Proc {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Proc {
    fn spawn(role: &str, envs: &[(&str, String)]) -> Proc {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_role", "--ignored", "--nocapture", "--test-threads=1"])
            .env("FRESCO_S3_ROLE", role)
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Proc { child, stdout }
    }

    /// The next line starting with `prefix` (the harness prints lines of its own).
    fn expect(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "the child ended before `{prefix}`");
            if let Some(at) = line.find(prefix) {
                return line[at..].trim_end().to_owned();
            }
        }
    }
}

fn fresco(envs: &[(&'static str, String)], args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_fresco")).envs(envs.iter().cloned()).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "fresco {args:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// Every `(prediction_id, label)` of a training set, sorted.
fn training_rows(path: &Path) -> Vec<(String, Option<u64>)> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap().build().unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let ids = batch.column_by_name("prediction_id").unwrap().as_string::<i32>().clone();
        let labels = batch.column_by_name("label").unwrap().as_primitive::<Float64Type>().clone();
        for i in 0..batch.num_rows() {
            let label = (!arrow_array::Array::is_null(&labels, i)).then(|| labels.value(i).to_bits());
            rows.push((ids.value(i).to_owned(), label));
        }
    }
    rows.sort();
    rows
}

/// The prediction ids in every prediction file under `dir`, with how often each occurs.
fn id_counts(dir: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
                    .unwrap()
                    .build()
                    .unwrap();
                for batch in reader {
                    let batch = batch.unwrap();
                    for id in batch.column_by_name("prediction_id").unwrap().as_string::<i32>().iter() {
                        *counts.entry(id.unwrap().to_owned()).or_default() += 1;
                    }
                }
            }
        }
    }
    counts
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
#[ignore = "needs FRESCO_S3_ENDPOINT, the S3-protocol server .ci/run starts"]
fn three_writers_one_bucket_make_the_training_set_of_their_roots() {
    let endpoint = endpoint();
    let bucket = new_bucket(&endpoint, "writers");
    let url = format!("s3://{bucket}/logs");
    let dir = tempfile::tempdir().unwrap();
    let roots: Vec<PathBuf> = (0..WRITERS).map(|w| dir.path().join(format!("replica-{w}"))).collect();
    let mut envs = s3_env(&endpoint);
    envs.push(("S3_URL", url.clone()));
    let mut procs: Vec<Proc> = roots
        .iter()
        .enumerate()
        .map(|(w, root)| {
            let mut envs = envs.clone();
            envs.push(("S3_ROOT", root.display().to_string()));
            envs.push(("S3_WRITER", w.to_string()));
            Proc::spawn("writer", &envs)
        })
        .collect();
    for proc in &mut procs {
        proc.expect("done");
        assert!(proc.child.wait().unwrap().success());
    }

    let env = s3_env(&endpoint);
    let from_bucket = dir.path().join("from-bucket.parquet");
    let from_roots = dir.path().join("from-roots.parquet");
    let common = ["dataset", "--model", "eta", "--policy", "all-with-treatment"];
    let printed = fresco(&env, &[&common[..], &["--logs", &url, "--out", from_bucket.to_str().unwrap()]].concat());
    println!("{printed}");
    let mut args: Vec<&str> = common.to_vec();
    let root_args: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    for root in &root_args {
        args.extend(["--logs", root.as_str()]);
    }
    args.extend(["--out", from_roots.to_str().unwrap()]);
    fresco(&env, &args);

    let (bucket_rows, root_rows) = (training_rows(&from_bucket), training_rows(&from_roots));
    assert_eq!(bucket_rows, root_rows, "the bucket's training set is the three roots' merged");
    // Each even prediction joined the outcome another writer logged (a training set
    // keeps labeled predictions only).
    assert_eq!(bucket_rows.len(), WRITERS * 1_000);
    assert!(
        bucket_rows
            .iter()
            .all(|(id, label)| label.is_some() && id.rsplit('-').next().unwrap().parse::<u64>().unwrap() % 2 == 0)
    );
    assert!(printed.contains("6000 predictions in range, 3000 with an outcome"), "{printed}");

    // pyarrow and polars read the bucket as a hive-partitioned dataset.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/read_bucket.py");
    let out = Command::new("python3").arg(script).arg(&endpoint).arg(&bucket).arg("logs").output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{printed}{}", String::from_utf8_lossy(&out.stderr));
    println!("{printed}");
    assert!(printed.contains(&format!("pyarrow predictions {}", WRITERS * 2_000)), "{printed}");
    assert!(printed.contains(&format!("polars predictions {}", WRITERS * 2_000)), "{printed}");
    assert!(printed.contains(&format!("pyarrow outcomes {}", WRITERS * 1_000)), "{printed}");
}

/// A TCP relay from a port of its own to `target`, which the test can take down (its
/// port then refuses connections) and bring back, as a stopped and restarted server.
struct Relay {
    port: u16,
    target: String,
    up: Arc<AtomicBool>,
    listener: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(target: &str) -> Relay {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut relay = Relay { port, target: target.to_owned(), up: Arc::new(AtomicBool::new(false)), listener: None };
        relay.up();
        relay
    }

    fn up(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        self.up.store(true, Ordering::SeqCst);
        let (up, target) = (self.up.clone(), self.target.clone());
        self.listener = Some(std::thread::spawn(move || {
            while up.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(&target) else { continue };
                        let up = up.clone();
                        for (mut from, mut to) in
                            [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                        {
                            let up = up.clone();
                            std::thread::spawn(move || {
                                from.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                                let mut buf = [0u8; 65536];
                                loop {
                                    match from.read(&mut buf) {
                                        Ok(0) => break,
                                        Ok(n) => {
                                            if to.write_all(&buf[..n]).is_err() {
                                                break;
                                            }
                                        }
                                        Err(e)
                                            if e.kind() == std::io::ErrorKind::WouldBlock
                                                || e.kind() == std::io::ErrorKind::TimedOut =>
                                        {
                                            if !up.load(Ordering::SeqCst) {
                                                break;
                                            }
                                        }
                                        Err(_) => break,
                                    }
                                }
                                let _ = to.shutdown(std::net::Shutdown::Both);
                            });
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }));
    }

    /// Closes the port and every open connection.
    fn down(&mut self) {
        self.up.store(false, Ordering::SeqCst);
        if let Some(listener) = self.listener.take() {
            listener.join().unwrap();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "needs FRESCO_S3_ENDPOINT, the S3-protocol server .ci/run starts"]
fn an_outage_and_a_killed_writer_lose_and_duplicate_nothing() {
    let endpoint = endpoint();
    let bucket = new_bucket(&endpoint, "outage");
    let url = format!("s3://{bucket}/logs");
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start(endpoint.trim_start_matches("http://"));
    let relayed = format!("http://127.0.0.1:{}", relay.port);
    // `run` tells a restarted writer's ids from those of its first run.
    let envs_for = |w: usize, run: usize| {
        let mut envs = s3_env(&relayed);
        envs.push(("S3_URL", url.clone()));
        envs.push(("S3_ROOT", dir.path().join(format!("replica-{w}")).display().to_string()));
        envs.push(("S3_PREFIX", format!("w{w}r{run}")));
        envs.push(("S3_ACKS", dir.path().join(format!("acks-{w}")).display().to_string()));
        envs
    };
    let mut procs: Vec<Proc> = (0..WRITERS).map(|w| Proc::spawn("streamer", &envs_for(w, 0))).collect();
    for proc in &mut procs {
        proc.expect("ready");
    }
    std::thread::sleep(Duration::from_secs(3));
    relay.down();
    println!("endpoint down for 10 s");
    // Writer 1 is killed while its uploads are failing and retried (its sealed segments
    // wait in the spool), then restarted on its root: a new run, which replays the
    // killed run's spool under that run's names and uploads it once the store is back.
    std::thread::sleep(Duration::from_secs(5));
    procs[1].child.kill().unwrap();
    procs[1].child.wait().unwrap();
    println!("writer 1 killed");
    procs[1] = Proc::spawn("streamer", &envs_for(1, 1));
    let ready = procs[1].expect("ready");
    println!("writer 1 restarted: {ready}");
    let replayed: u64 = ready.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(replayed > 0, "the killed writer left nothing to replay");
    std::thread::sleep(Duration::from_secs(5));
    relay.up();
    println!("endpoint up");
    std::thread::sleep(Duration::from_secs(4));
    for proc in &mut procs {
        drop(proc.child.stdin.take());
        proc.expect("closed");
        assert!(proc.child.wait().unwrap().success());
    }

    // Every acknowledged id is in the bucket exactly once; nothing is there twice.
    let mirror = dir.path().join("mirror");
    set_s3_env(&endpoint);
    fresco::bucket::Bucket::open(&url).unwrap().mirror("", &mirror).unwrap();
    let counts = id_counts(&mirror);
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "duplicated: {twice:?}");
    let mut acked = 0;
    for w in 0..WRITERS {
        let text = std::fs::read_to_string(dir.path().join(format!("acks-{w}"))).unwrap();
        // A killed writer may leave half a line: only whole lines were acknowledged.
        let whole = text.rsplit_once('\n').map_or("", |(whole, _)| whole);
        for id in whole.lines() {
            assert_eq!(counts.get(id), Some(&1), "acknowledged id {id} is not in the bucket once");
            acked += 1;
        }
    }
    println!("{acked} acknowledged predictions, {} in the bucket, none twice", counts.len());
    assert!(acked > 10_000, "the writers logged at full speed ({acked})");
}

#[test]
#[ignore = "needs FRESCO_S3_ENDPOINT, the S3-protocol server .ci/run starts"]
fn a_rollback_in_the_bucket_reaches_three_watching_clients() {
    let endpoint = endpoint();
    let bucket = new_bucket(&endpoint, "registry");
    let url = format!("s3://{bucket}/registry");
    set_s3_env(&endpoint);
    let registry = Registry::open_url(&url).unwrap();
    for version in ["1", "2", "3", "4"] {
        registry.publish_wasm("linear", version, &fresco_test_models::linear_version(version)).unwrap();
    }
    registry.deploy("linear", "1").unwrap();
    registry.deploy("linear", "2").unwrap();

    let mut envs = s3_env(&endpoint);
    envs.push(("S3_URL", url.clone()));
    let mut clients: Vec<Proc> = (0..3).map(|_| Proc::spawn("client", &envs)).collect();
    for client in &mut clients {
        let refused = client.expect("own deploy:");
        assert!(refused.contains("follows its registry's manifest"), "{refused}");
        assert_eq!(client.expect("serving"), "serving 2");
    }
    let started = Instant::now();
    let printed = fresco(&s3_env(&endpoint), &["registry", "--root", &url, "rollback", "linear"]);
    let written = started.elapsed();
    println!("{printed}");
    for client in &mut clients {
        assert_eq!(client.expect("serving"), "serving 1");
    }
    let all = started.elapsed();
    println!("rollback written in {written:?}; all three clients serve version 1 {all:?} after the command started");
    assert!(all < written + Duration::from_millis(500) * 2 + Duration::from_secs(1), "{all:?}");
    for client in &mut clients {
        client.child.kill().unwrap();
        client.child.wait().unwrap();
    }

    // Two deploys at the same moment, 20 times: the manifest always names one of the
    // two, a deploy that lost the race says so and wrote nothing, and no deploy that
    // reported success was overwritten unseen.
    let mut conflicts = 0;
    for _ in 0..20 {
        let start = Arc::new(Barrier::new(2));
        let results: Vec<(String, Result<_, RegistryError>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = ["3", "4"]
                .into_iter()
                .map(|version| {
                    let (registry, start) = (registry.clone(), start.clone());
                    scope.spawn(move || {
                        start.wait();
                        (version.to_owned(), registry.deploy("linear", version))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let manifest = registry.manifest("linear").unwrap();
        let won: Vec<&String> = results.iter().filter(|(_, r)| r.is_ok()).map(|(v, _)| v).collect();
        for (version, result) in &results {
            if let Err(e) = result {
                assert!(matches!(e, RegistryError::ManifestChanged { .. }), "{e}");
                assert!(e.to_string().contains("nothing was written"), "{e}");
                conflicts += 1;
                assert_ne!(&manifest.serving, version);
            }
        }
        match won.as_slice() {
            [one] => assert_eq!(&&manifest.serving, one),
            // Both succeeded one after the other: the later one's previous is the other.
            [_, _] => assert!(manifest.previous.is_some_and(|p| p == "3" || p == "4")),
            none => panic!("no deploy succeeded: {none:?} {results:?}"),
        }
    }
    println!("20 rounds of two concurrent deploys: {conflicts} refused with ManifestChanged");
    assert!(conflicts > 0, "the race was never lost: the test did not race");
}
