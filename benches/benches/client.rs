//! End-to-end Client benchmarks at batch 1: an embedded-store hit, a 500-tree GBDT in
//! WebAssembly, the holdout, and the log enqueue (encoding the record); then the same
//! with drift monitoring on (the model compiled with training statistics, 30 inputs
//! and 2 outputs watched over 5-minute and 1-hour windows), for the overhead ratio.
//!
//! Before the criterion groups, prints p50 / p99 / p99.9 of single predictions measured
//! one by one (criterion reports means and medians, not tails), and beside the durable
//! path's the host's own: calls of fixed arithmetic with the same median.
//!
//! The Client's own overhead is `client/predict_e2e_batch1` less its two parts measured
//! in the same run: `store/read_one_entity_25_features` and
//! `model/score_gbdt500_batch1` (the same compiled model, called directly).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use criterion::Criterion;
use fresco::holdout::Holdout;
use fresco::{
    Client, EmbeddedStore, FeatureStore, FeatureView, InputSource, LogConfig, LogError, LogSchema, ModelConfig,
    ModelSource, PredictionBatch, PredictionLog, PredictionRecord, PredictionSink, Request, SpoolDurability, Timestamp,
    Value, ValueType,
};
use fresco_compiler::Compiler;
use fresco_test_models::synthetic::{SplitMix64, gbdt};

const FEATURES: usize = 30;
const STORED: usize = 25;
const ENTITIES: usize = 10_000;

/// Encodes each call's rows into a buffer, as a spool append would, and recycles the
/// buffer.
struct EncodingSink(Mutex<Vec<u8>>);

impl PredictionSink for EncodingSink {
    fn append_batch(&self, batch: PredictionBatch) -> Result<(), LogError> {
        let mut buf = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buf.len() > 64 << 20 {
            buf.clear();
        }
        let bytes = batch.encode()?;
        buf.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        buf.extend_from_slice(&bytes);
        Ok(())
    }

    fn append(&self, _schema: &Arc<LogSchema>, records: Vec<PredictionRecord>) -> Result<(), LogError> {
        let mut buf = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buf.len() > 64 << 20 {
            buf.clear();
        }
        for record in &records {
            let bytes = record.encode()?;
            buf.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            buf.extend_from_slice(&bytes);
        }
        Ok(())
    }
}

/// A Client over a store of `ENTITIES` entities, its requests, and the store itself
/// (shared with the Client) for timing its reads alone.
fn setup(
    dir: &std::path::Path,
    sink: impl PredictionSink,
    monitored: bool,
) -> (Client, Vec<Request>, Arc<EmbeddedStore>) {
    let mut rng = SplitMix64::new(1);
    let store = Arc::new(EmbeddedStore::open(dir.join("bench.redb")).unwrap());
    let mut view = FeatureView::new("entities", "entity_id");
    for f in 0..STORED {
        view = view.feature(format!("f{f}"), ValueType::F64);
    }
    store.define_view(view).unwrap();
    let keys: Vec<String> = (0..ENTITIES).map(|e| format!("e{e}")).collect();
    store
        .write_batch(
            "entities",
            keys.iter()
                .map(|k| (k.as_str(), Timestamp::now(), (0..STORED).map(|_| Value::F64(rng.next_f64())).collect())),
        )
        .unwrap();
    let mut compiler = Compiler::new("gbdt500", "1").add_ensemble(gbdt(500, 63, FEATURES, 2)).unwrap();
    if monitored {
        // Training statistics over rows like the requests' (uniform in [0, 1)).
        let rows: Vec<f64> = (0..20_000 * FEATURES).map(|_| rng.next_f64()).collect();
        compiler = compiler.training_data(&rows, 20).unwrap();
    }
    let wasm = compiler.compile().unwrap();
    let mut config = ModelConfig::new(ModelSource::wasm_bytes(wasm)).holdout("h");
    for f in 0..STORED {
        config = config.input(format!("f{f}"), InputSource::stored("entities", format!("f{f}")));
    }
    let mut builder = Client::builder()
        .shared_feature_store(store.clone())
        .holdout(Holdout::new("h", "bench", 0.05).unwrap(), "user_id")
        .model(config)
        .log_to(sink);
    if monitored {
        builder = builder.monitor(fresco::drift::MonitorConfig::default());
    }
    let client = builder.build().unwrap();
    let requests = (0..ENTITIES)
        .map(|i| {
            (STORED..FEATURES).fold(
                Request::new()
                    .entity("entity_id", format!("e{}", rng.below(ENTITIES)))
                    .entity("user_id", format!("u{i}")),
                |r, f| r.value(format!("f{f}"), rng.next_f64()),
            )
        })
        .collect();
    (client, requests, store)
}

/// Times `call` 50,000 times one by one (after 2,000 untimed calls) and returns the
/// p50, p99 and p99.9 in microseconds.
fn tail(mut call: impl FnMut(usize)) -> [f64; 3] {
    for i in 0..2000 {
        call(i);
    }
    let mut samples: Vec<u64> = Vec::with_capacity(50_000);
    for i in 0..50_000 {
        let t = Instant::now();
        call(i);
        samples.push(t.elapsed().as_nanos() as u64);
    }
    samples.sort_unstable();
    let q = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)] as f64 / 1000.0;
    [q(0.5), q(0.99), q(0.999)]
}

fn percentiles(client: &Client, requests: &[Request], log: &str) -> f64 {
    let [p50, p99, p999] = tail(|i| {
        black_box(client.predict("gbdt500", black_box(&requests[i % requests.len()])).unwrap());
    });
    println!(
        "client/predict_e2e_batch1 (store hit + 500x63 GBDT + holdout + {log}), 50000 calls: p50 {p50:.1} us, p99 {p99:.1} us, p99.9 {p999:.1} us"
    );
    p50
}

/// The Client's own overhead with its parts timed in turn, so that a change in the
/// host's speed between criterion's groups does not enter the subtraction: runs of
/// `predict`, of the store read and of the model call it makes (on the same
/// distribution of rows and keys), alternating. Medians of 50,000 calls each.
fn overhead(client: &Client, requests: &[Request], store: &EmbeddedStore, model: &fresco_runtime::Model) {
    // Each request's assembled inputs, as `predict` scores them.
    let rows: Vec<Vec<f64>> =
        requests.iter().map(|r| client.predict("gbdt500", r).unwrap().input_values().to_vec()).collect();
    let names: Vec<String> = (0..STORED).map(|f| format!("f{f}")).collect();
    let features: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut out = vec![0.0; model.n_outputs()];
    let n = requests.len();
    let (mut e2e, mut read, mut score) =
        (Vec::with_capacity(50_000), Vec::with_capacity(50_000), Vec::with_capacity(50_000));
    // Runs of 500 calls of each part: long enough for each to find its own code and
    // data in cache as it would in a run of its own, short enough (a few ms) for the
    // host to stay the same across the three.
    for run in 0..104 {
        let calls = run * 500..(run + 1) * 500;
        let keep = run >= 4;
        let time = |samples: &mut Vec<u64>, call: &mut dyn FnMut(usize)| {
            for i in calls.clone() {
                let t = Instant::now();
                call(i);
                if keep {
                    samples.push(t.elapsed().as_nanos() as u64);
                }
            }
        };
        time(&mut e2e, &mut |i| {
            black_box(client.predict("gbdt500", black_box(&requests[i % n])).unwrap());
        });
        let now = Timestamp::now();
        time(&mut read, &mut |i| {
            let key = requests[(i + n / 2) % n].entity_key("entity_id").unwrap();
            black_box(store.get_features("entities", &[key], black_box(&features), now).unwrap());
        });
        time(&mut score, &mut |i| {
            model.predict_row(black_box(&rows[(i + n / 2) % n]), &mut out).unwrap();
            black_box(out[0]);
        });
    }
    let median = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v[v.len() / 2] as f64 / 1000.0
    };
    let (e2e, read, score) = (median(&mut e2e), median(&mut read), median(&mut score));
    println!(
        "client overhead, parts timed in turn, 50000 calls each: predict p50 {e2e:.2} us - store read {read:.2} us - model {score:.2} us = {:.2} us",
        e2e - read - score
    );
}

/// The host's own tail, for reading the percentiles above: calls that do a fixed amount
/// of arithmetic (touching only the stack: no allocation, no system call), sized so
/// that their median is `p50_us`. Whatever their p99 is above their p50 is the host
/// (preemption, interrupts, a neighbour on the core), which every call above pays too.
fn constant_work(p50_us: f64) {
    let steps = |n: u64| {
        let mut rng = SplitMix64::new(n);
        for _ in 0..n {
            black_box(rng.next_u64());
        }
    };
    // Calibrate: double the step count until a call takes at least `p50_us`.
    let mut n = 64u64;
    loop {
        let t = Instant::now();
        for _ in 0..100 {
            steps(black_box(n));
        }
        if t.elapsed().as_secs_f64() * 1e6 / 100.0 >= p50_us || n > 1 << 30 {
            break;
        }
        n *= 2;
    }
    let per = {
        let t = Instant::now();
        for _ in 0..100 {
            steps(black_box(n));
        }
        t.elapsed().as_secs_f64() * 1e6 / 100.0 / n as f64
    };
    let n = ((p50_us / per) as u64).max(1);
    let [p50, p99, p999] = tail(|_| steps(black_box(n)));
    println!(
        "host: constant work ({n} SplitMix64 steps a call), 50000 calls: p50 {p50:.1} us, p99 {p99:.1} us, p99.9 {p999:.1} us"
    );
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let (client, requests, store) = setup(dir.path(), EncodingSink(Mutex::new(Vec::new())), false);
    percentiles(&client, &requests, "record encoded into a buffer");
    // The benchmark's model, called directly (here and in `model/score_gbdt500_batch1`).
    let engine = fresco_runtime::Engine::new().unwrap();
    let wasm = Compiler::new("gbdt500", "1").add_ensemble(gbdt(500, 63, FEATURES, 2)).unwrap().compile().unwrap();
    let model = fresco_runtime::Model::from_bytes(&engine, wasm).unwrap();
    overhead(&client, &requests, &store, &model);
    std::fs::create_dir_all(dir.path().join("monitored")).unwrap();
    let (monitored, monitored_requests, _) =
        setup(&dir.path().join("monitored"), EncodingSink(Mutex::new(Vec::new())), true);
    percentiles(&monitored, &monitored_requests, "record encoded into a buffer, drift monitoring on");
    let durable_p50 = {
        // The production sink: spool append (write(2), no fsync per call) and queue.
        let logs = dir.path().join("logs");
        let log = PredictionLog::open(LogConfig::new(&logs).durability(SpoolDurability::Buffered)).unwrap();
        std::fs::create_dir_all(dir.path().join("second")).unwrap();
        let (client, requests, _) = setup(&dir.path().join("second"), log, false);
        percentiles(&client, &requests, "PredictionLog, buffered spool")
    };
    // After the client and its log's writer are gone: nothing of fresco's runs beside it.
    constant_work(durable_p50);

    let mut c = Criterion::default().configure_from_args();
    let mut i = 0;
    c.bench_function("client/predict_e2e_batch1", |b| {
        b.iter(|| {
            i = (i + 1) % requests.len();
            client.predict("gbdt500", black_box(&requests[i])).unwrap()
        })
    });
    let mut k = 0;
    c.bench_function("client/predict_e2e_batch1_monitored", |b| {
        b.iter(|| {
            k = (k + 1) % monitored_requests.len();
            monitored.predict("gbdt500", black_box(&monitored_requests[k])).unwrap()
        })
    });

    let mut rng = SplitMix64::new(3);
    let rows: Vec<f64> = (0..ENTITIES * FEATURES).map(|_| rng.next_f64()).collect();
    let mut out = vec![0.0; model.n_outputs()];
    let mut m = 0;
    c.bench_function("model/score_gbdt500_batch1", |b| {
        b.iter(|| {
            m = (m + 1) % ENTITIES;
            model.predict_row(black_box(&rows[m * FEATURES..(m + 1) * FEATURES]), &mut out).unwrap();
            out[0]
        })
    });

    let store = EmbeddedStore::open(dir.path().join("read.redb")).unwrap();
    let mut view = FeatureView::new("entities", "entity_id");
    let names: Vec<String> = (0..STORED).map(|f| format!("f{f}")).collect();
    for n in &names {
        view = view.feature(n.clone(), ValueType::F64);
    }
    store.define_view(view).unwrap();
    let keys: Vec<String> = (0..ENTITIES).map(|e| format!("e{e}")).collect();
    store
        .write_batch("entities", keys.iter().map(|k| (k.as_str(), Timestamp::now(), vec![Value::F64(1.5); STORED])))
        .unwrap();
    let features: Vec<&str> = names.iter().map(String::as_str).collect();
    let now = Timestamp::now();
    let mut j = 0;
    c.bench_function("store/read_one_entity_25_features", |b| {
        b.iter(|| {
            j = (j + 7919) % keys.len();
            store.get_features("entities", &[keys[j].as_str()], black_box(&features), now).unwrap()
        })
    });
    c.final_summary();
}
