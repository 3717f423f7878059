//! A fleet on a real `redis-server`: 3 replica processes follow one stream that 2
//! producer processes append 200,000 events to (2,000 keys; late, future and
//! out-of-order times). At 5 checkpoints, 1,000 random (key, time) reads are
//! bit-identical on the three replicas and equal to the backfill of the same stream.
//! Along the way one replica is killed with SIGKILL and restarted from its snapshot, and
//! Redis is stopped for 5 s while the producers go on (their buffers fill, then refuse).
//!
//! The test runs this same binary as the replica and producer processes
//! (`FRESCO_FLEET_ROLE`). `cargo test -p fresco-redis --test fleet -- --ignored`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is the test failing

mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fresco::Timestamp;
use fresco::aggregates::{Aggregation, Definitions, StreamSpec, WindowedFeature, backfill_batches};
use fresco::events::archive::entry_batches;
use fresco::events::{Event, EventStream, Follower, FollowerConfig, Position, PublishPolicy, Publisher, StreamError};
use fresco_redis::RedisStream;
use support::RedisServer;

const KEY: &str = "{fleet}:events";
const KEYS: u64 = 2_000;
const PRODUCERS: usize = 2;
const REPLICAS: usize = 3;
const PHASES: usize = 5;
const EVENTS_PER_PHASE: u64 = 20_000; // per producer: 2 × 5 × 20,000 = 200,000
const PAIRS: usize = 1_000;
const MINUTE: i64 = 60_000_000;

fn definitions() -> Definitions {
    let mut defs =
        Definitions::new().stream(StreamSpec::new("orders", "restaurant_id").late_tolerance(Duration::from_secs(120)));
    for (aggregation, window) in [
        (Aggregation::Count, 300),
        (Aggregation::Count, 1800),
        (Aggregation::Sum, 1800),
        (Aggregation::Mean, 7200),
        (Aggregation::Min, 300),
        (Aggregation::Max, 1800),
        (Aggregation::Last, 1800),
        (Aggregation::ApproxDistinct, 1800),
    ] {
        let name = format!("orders_{}_{window}", aggregation.name());
        defs = defs.feature(WindowedFeature::new(name, "orders", aggregation, Duration::from_secs(window)));
    }
    defs
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[test]
#[ignore = "needs redis-server; starts processes"]
fn three_replicas_two_producers_agree() {
    match std::env::var("FRESCO_FLEET_ROLE").as_deref() {
        Ok("replica") => return replica(),
        Ok("producer") => return producer(),
        _ => {}
    }
    let dir = tempfile::tempdir().unwrap();
    let mut server = RedisServer::start(&dir.path().join("redis").tap_create());
    let url = server.url();
    let stream = RedisStream::open(&url, KEY).unwrap();

    let mut replicas: Vec<Proc> =
        (0..REPLICAS).map(|r| Proc::replica(&url, &dir.path().join(format!("replica-{r}")))).collect();
    let mut producers: Vec<Proc> = (0..PRODUCERS).map(|p| Proc::producer(&url, p, dir.path())).collect();
    let mut rng = Rng(0x5EED);
    let mut refused = 0u64;

    for phase in 1..=PHASES {
        for p in &mut producers {
            p.send(&format!("phase {EVENTS_PER_PHASE}"));
        }
        if phase == 2 {
            // A replica dies mid-run without a chance to clean up (it comes back below).
            std::thread::sleep(Duration::from_millis(700));
            replicas[1].kill();
        }
        if phase == 4 {
            // Redis goes away for 5 s while the producers keep producing.
            std::thread::sleep(Duration::from_millis(300));
            server.stop();
            std::thread::sleep(Duration::from_secs(5));
            server.restart();
        }
        for p in &mut producers {
            let done = p.expect("done");
            let fields: Vec<u64> = done.split_whitespace().skip(1).map(|n| n.parse().unwrap()).collect();
            refused += fields[1];
        }
        if phase == 2 {
            // Back seconds later: it restores its last snapshot and replays what it
            // missed, long after those entries arrived.
            let restarted = Proc::replica(&url, &dir.path().join("replica-1"));
            let restored = restarted.ready_line.clone();
            assert!(!restored.ends_with("none"), "the restarted replica found no snapshot: {restored}");
            eprintln!("replica 1 killed and restarted: {restored}");
            replicas[1] = restarted;
        }
        let end = stream.end().unwrap().unwrap();
        for r in &mut replicas {
            r.send(&format!("wait {end}"));
            r.expect("reached");
        }
        check_agreement(&stream, &mut replicas, end, &mut rng, dir.path(), phase);
    }

    // Nothing lost, nothing twice: the stream holds exactly the events the producers
    // took, each once, and every replica applied each entry once.
    let mut taken = HashSet::new();
    for p in &mut producers {
        p.send("quit");
        let file = p.expect("taken");
        for line in std::fs::read_to_string(file.split_whitespace().nth(1).unwrap()).unwrap().lines() {
            assert!(taken.insert(line.parse::<u64>().unwrap()), "a value taken twice");
        }
    }
    let entries = stream.read(None, usize::MAX, Duration::ZERO).unwrap();
    let streamed: Vec<u64> = entries.iter().map(|e| e.event.as_ref().unwrap().value as u64).collect();
    assert_eq!(streamed.len(), taken.len(), "stream entries vs events the producers took");
    assert_eq!(streamed.iter().copied().collect::<HashSet<_>>(), taken);
    assert_eq!(taken.len() as u64 + refused, PRODUCERS as u64 * PHASES as u64 * EVENTS_PER_PHASE);
    assert!(refused > 0, "the 5 s outage should have filled the producers' buffers");
    for r in &mut replicas {
        r.send("stats");
        let stats = r.expect("stats");
        let n: Vec<u64> = stats.split_whitespace().skip(1).map(|n| n.parse().unwrap()).collect();
        let (accepted, late, future) = (n[0], n[1], n[2]);
        assert_eq!(accepted + late + future, entries.len() as u64, "replica applied each entry once: {stats}");
        assert!(late > 1_000 && future > 1_000, "{stats}");
        r.send("quit");
    }
    eprintln!("fleet: {} events streamed, {refused} refused during the outage", entries.len());
}

/// 1,000 random (key, time) reads on every replica, bit for bit, and the backfill of
/// the stream through `end` at the same rows.
fn check_agreement(
    stream: &RedisStream,
    replicas: &mut [Proc],
    end: Position,
    rng: &mut Rng,
    dir: &Path,
    phase: usize,
) {
    let entries: Vec<_> =
        stream.read(None, usize::MAX, Duration::ZERO).unwrap().into_iter().filter(|e| e.position <= end).collect();
    let last_arrival = entries.last().unwrap().arrival.as_micros();
    let pairs: Vec<(String, i64)> = (0..PAIRS)
        .map(|_| (format!("r-{}", rng.next() % (KEYS + 10)), last_arrival + (rng.next() % (20 * MINUTE as u64)) as i64))
        .collect();
    let pairs_file = dir.join(format!("pairs-{phase}.txt"));
    std::fs::write(&pairs_file, pairs.iter().map(|(k, t)| format!("{k} {t}\n")).collect::<String>()).unwrap();

    let mut answers = Vec::new();
    for (r, replica) in replicas.iter_mut().enumerate() {
        let out = dir.join(format!("reads-{phase}-{r}.txt"));
        replica.send(&format!("read {} {}", pairs_file.display(), out.display()));
        replica.expect("read");
        answers.push(std::fs::read_to_string(out).unwrap());
    }
    for (r, answer) in answers.iter().enumerate().skip(1) {
        assert!(answer == &answers[0], "checkpoint {phase}: replica {r} disagrees with replica 0");
    }

    use arrow_array::cast::AsArray;
    use arrow_array::types::Float64Type;
    use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
    let defs = definitions();
    let table = RecordBatch::try_from_iter([
        ("restaurant_id", Arc::new(StringArray::from_iter_values(pairs.iter().map(|p| p.0.as_str()))) as ArrayRef),
        ("ts", Arc::new(Int64Array::from_iter_values(pairs.iter().map(|p| p.1))) as ArrayRef),
    ])
    .unwrap();
    let (out, report) = backfill_batches(&defs, &entry_batches(&defs, &entries).unwrap(), &[table]).unwrap();
    let mut expected = String::new();
    for row in 0..PAIRS {
        let values: Vec<String> = defs
            .features()
            .iter()
            .map(|f| {
                let column = out[0].column_by_name(&f.name).unwrap().as_primitive::<Float64Type>();
                bits(column.is_valid(row).then(|| column.value(row)))
            })
            .collect();
        expected += &values.join(" ");
        expected.push('\n');
    }
    assert!(answers[0] == expected, "checkpoint {phase}: the replicas disagree with the backfill of the stream");
    eprintln!(
        "checkpoint {phase}: {} entries through {end} ({} accepted, {} late, {} future); {PAIRS} reads agree on {REPLICAS} replicas and the backfill",
        entries.len(),
        report.accepted,
        report.late,
        report.future
    );
}

fn bits(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{:016x}", v.to_bits()))
}

/// A child process of this binary, spoken to in lines (`@@ ...` back).
struct Proc {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    ready_line: String,
}

impl Proc {
    fn spawn(role: &str, envs: &[(&str, String)]) -> Proc {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "three_replicas_two_producers_agree", "--ignored", "--nocapture", "--test-threads=1"])
            .env("FRESCO_FLEET_ROLE", role)
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut proc = Proc { child, stdin, stdout, ready_line: String::new() };
        proc.ready_line = proc.expect("ready");
        proc
    }

    fn replica(url: &str, dir: &Path) -> Proc {
        Proc::spawn("replica", &[("FLEET_URL", url.to_owned()), ("FLEET_DIR", dir.display().to_string())])
    }

    fn producer(url: &str, index: usize, dir: &Path) -> Proc {
        Proc::spawn(
            "producer",
            &[
                ("FLEET_URL", url.to_owned()),
                ("FLEET_PRODUCER", index.to_string()),
                ("FLEET_DIR", dir.display().to_string()),
            ],
        )
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next `@@ WORD ...` line, which must start with `word`.
    fn expect(&mut self, word: &str) -> String {
        loop {
            let mut line = String::new();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "the child exited while {word} was expected");
            // The harness prints `test NAME ... ` before the test runs, without a newline.
            if let Some(reply) = line.trim_end().split_once("@@ ").map(|(_, reply)| reply) {
                assert!(reply.starts_with(word), "expected `{word}`, got `{reply}`");
                return reply.to_owned();
            }
        }
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

trait TapCreate {
    fn tap_create(self) -> Self;
}

impl TapCreate for PathBuf {
    fn tap_create(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

/// A line to the test process. Written to stdout directly: the test harness captures
/// what `println!` prints.
fn reply(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "@@ {line}").and_then(|()| out.flush()).unwrap();
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// A replica: follows the stream, snapshots every 200 ms, answers reads.
fn replica() {
    let stream = Arc::new(RedisStream::open(&env("FLEET_URL"), KEY).unwrap());
    let config = FollowerConfig::default().snapshots(env("FLEET_DIR")).snapshot_every(Duration::from_millis(200));
    let follower = Follower::start(definitions(), stream, config).unwrap();
    reply(&format!(
        "ready restored {}",
        follower.status().position.map_or_else(|| "none".to_owned(), |p| p.to_string())
    ));
    let defs = definitions();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["wait", position] => {
                follower.wait_for(position.parse().unwrap(), Duration::from_secs(120)).unwrap();
                reply("reached");
            }
            ["read", pairs, out] => {
                let store = follower.store();
                let mut text = String::new();
                for pair in std::fs::read_to_string(pairs).unwrap().lines() {
                    let (key, t) = pair.split_once(' ').unwrap();
                    let t = Timestamp::from_micros(t.parse().unwrap());
                    let values: Vec<String> =
                        defs.features().iter().map(|f| bits(store.read(&f.name, key, t).unwrap())).collect();
                    text += &values.join(" ");
                    text.push('\n');
                }
                std::fs::write(out, text).unwrap();
                reply("read");
            }
            ["stats"] => {
                let s = follower.store().stats("orders").unwrap();
                reply(&format!("stats {} {} {} {}", s.accepted, s.late, s.future, follower.status().read_failures));
            }
            ["quit"] => break,
            other => panic!("unknown command {other:?}"),
        }
    }
    follower.stop().unwrap();
}

/// A producer: on `phase N`, records N events at about 5,000 a second through a
/// publisher with an 8,192-event buffer; the values it got taken go to a file.
fn producer() {
    let index: u64 = env("FLEET_PRODUCER").parse().unwrap();
    let stream = Arc::new(RedisStream::open(&env("FLEET_URL"), KEY).unwrap());
    let policy = PublishPolicy { buffer: 8_192, batch: 512, max_backoff: Duration::from_millis(500) };
    let publisher = Publisher::new(stream, policy);
    let mut rng = Rng(index.wrapping_mul(0x1234_5678_9ABC_DEF1));
    let mut taken: Vec<u64> = Vec::new();
    let mut serial = index * 1_000_000_000;
    reply("ready");
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["phase", n] => {
                let n: u64 = n.parse().unwrap();
                let started = Instant::now();
                let mut refused = 0u64;
                for i in 0..n {
                    // About 5,000 a second.
                    let due = started + Duration::from_micros(i * 200);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let r = rng.next();
                    let now = Timestamp::now().as_micros();
                    let ts = match r % 100 {
                        // Beyond the 2 min tolerance.
                        0..=4 => now - 10 * MINUTE - (r >> 8) as i64 % (10 * MINUTE),
                        // Dated after its arrival: a clock a minute ahead, or a few
                        // seconds (after its arrival, yet before a replica that replays
                        // it later reads its own clock).
                        5..=7 => now + MINUTE + (r >> 8) as i64 % MINUTE,
                        8..=9 => now + (r >> 8) as i64 % 5_000_000,
                        // Out of order.
                        _ => now - (r >> 8) as i64 % (3 * MINUTE),
                    };
                    serial += 1;
                    let event = Event::new(
                        "orders",
                        format!("r-{}", (r >> 32) % KEYS),
                        Timestamp::from_micros(ts),
                        serial as f64,
                    );
                    match publisher.publish(event) {
                        Ok(()) => taken.push(serial),
                        Err(StreamError::BufferFull { .. }) => refused += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                publisher.flush(Duration::from_secs(120)).unwrap();
                reply(&format!("done {} {refused}", n - refused));
            }
            ["quit"] => {
                let file = PathBuf::from(env("FLEET_DIR")).join(format!("taken-{index}.txt"));
                std::fs::write(&file, taken.iter().map(|v| format!("{v}\n")).collect::<String>()).unwrap();
                reply(&format!("taken {}", file.display()));
                break;
            }
            other => panic!("unknown command {other:?}"),
        }
    }
}
