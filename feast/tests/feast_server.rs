//! fresco against a real Feast feature server: a repository written here (Parquet
//! source, SQLite online store), `feast apply`, `feast materialize`, `feast serve` on
//! loopback. Needs the `feast` command (`pip install feast==0.67.0`; `.ci/run` installs
//! it and runs this with `--ignored`); set `FRESCO_FEAST` to its path if it is not on
//! PATH. Fails loudly when it is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use fresco::{
    Client, FeatureStatus, FeatureStore, FeatureValue, FeatureView, InputSource, MemorySink, ModelConfig, ModelSource,
    Request, StoreError, Timestamp, Value, ValueType,
};
use fresco_feast::{EntityKind, FeastError, FeastStore, FeastView};

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

fn feast_command() -> PathBuf {
    let path = std::env::var_os("FRESCO_FEAST").map(PathBuf::from).unwrap_or_else(|| "feast".into());
    match Command::new(&path).arg("version").output() {
        Ok(out) if out.status.success() => path,
        other => panic!(
            "the `feast` command is needed ({}: {other:?}); pip install feast==0.67.0, or set FRESCO_FEAST to its path",
            path.display()
        ),
    }
}

fn run(feast: &Path, repo: &Path, args: &[&str]) {
    let out = Command::new(feast).args(args).current_dir(repo).output().unwrap();
    assert!(
        out.status.success(),
        "feast {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn micros(values: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC"))
}

/// The source rows: (restaurant, prep time, rating, cuisine, open, event time).
type Row = (&'static str, Option<f64>, i64, &'static str, bool, i64);

fn restaurant_rows(now: i64) -> Vec<Row> {
    vec![
        ("r-1", Some(11.0), 3, "thai", false, now - 3 * HOUR), // superseded by the next row
        ("r-1", Some(12.5), 4, "thai", true, now - HOUR),
        ("r-2", Some(20.0), 5, "pizza", false, now - 2 * HOUR),
        ("r-3", Some(9.0), 3, "sushi", true, now - 30 * DAY), // older than the view's 7 days
        ("r-4", None, 2, "kebab", true, now - 4 * HOUR),      // a null feature
        ("r-5", Some(-3.25), 1, "", false, now - 5 * HOUR),
    ]
}

/// A feature server over a fresh repository; killed on drop.
struct Server {
    child: Child,
    url: String,
    _repo: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        // `feast serve` runs its workers as child processes: stop the whole group.
        let _ = Command::new("kill").args(["-s", "KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_server(now: i64) -> Server {
    let feast = feast_command();
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    std::fs::create_dir(dir.join("data")).unwrap();
    std::fs::write(
        dir.join("feature_store.yaml"),
        "project: fresco_test\nregistry: data/registry.db\nprovider: local\nonline_store:\n  type: sqlite\n  path: data/online.db\nentity_key_serialization_version: 3\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("repo.py"),
        r#"from datetime import timedelta
from feast import Entity, FeatureService, FeatureView, Field, FileSource
from feast.types import Bool, Float64, Int64, String
from feast.value_type import ValueType

restaurant = Entity(name="restaurant", join_keys=["restaurant_id"], value_type=ValueType.STRING)
driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
restaurants = FeatureView(
    name="restaurants", entities=[restaurant], ttl=timedelta(days=7), online=True,
    schema=[Field(name="prep_time_min", dtype=Float64), Field(name="rating", dtype=Int64),
            Field(name="cuisine", dtype=String), Field(name="open", dtype=Bool)],
    source=FileSource(path="data/restaurants.parquet", timestamp_field="event_timestamp"))
drivers = FeatureView(
    name="drivers", entities=[driver], ttl=timedelta(days=7), online=True,
    schema=[Field(name="conv_rate", dtype=Float64)],
    source=FileSource(path="data/drivers.parquet", timestamp_field="event_timestamp"))
kitchen = FeatureService(name="kitchen", features=[restaurants[["prep_time_min", "rating"]]])
"#,
    )
    .unwrap();
    let rows = restaurant_rows(now);
    write_parquet(
        &dir.join("data/restaurants.parquet"),
        vec![
            ("restaurant_id", Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef),
            ("prep_time_min", Arc::new(Float64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>()))),
            ("rating", Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2)))),
            ("cuisine", Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.3)))),
            ("open", Arc::new(BooleanArray::from(rows.iter().map(|r| r.4).collect::<Vec<_>>()))),
            ("event_timestamp", micros(rows.iter().map(|r| r.5).collect())),
        ],
    );
    write_parquet(
        &dir.join("data/drivers.parquet"),
        vec![
            ("driver_id", Arc::new(Int64Array::from(vec![1001, 1002])) as ArrayRef),
            ("conv_rate", Arc::new(Float64Array::from(vec![0.25, 0.5]))),
            ("event_timestamp", micros(vec![now - HOUR, now - HOUR])),
        ],
    );
    run(&feast, dir, &["apply"]);
    let day = |t: i64| Timestamp::from_micros(t).utc_date();
    run(&feast, dir, &["materialize", &day(now - 60 * DAY), &day(now + 2 * DAY)]);
    let port = free_port();
    let child = Command::new(&feast)
        .args(["serve", "-h", "127.0.0.1", "-p", &port.to_string()])
        .process_group(0)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = Server { child, url, _repo: repo };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.child.try_wait().unwrap() {
            let mut err = String::new();
            server.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("feast serve exited ({status}): {err}");
        }
        assert!(started.elapsed() < Duration::from_secs(120), "feast serve did not listen within 2 minutes");
        std::thread::sleep(Duration::from_millis(200));
    }
    server
}

fn restaurants_view() -> FeatureView {
    FeatureView::new("restaurants", "restaurant_id")
        .feature("prep_time_min", ValueType::F64)
        .feature("rating", ValueType::I64)
        .feature("cuisine", ValueType::Str)
        .feature("open", ValueType::Bool)
        .ttl(Duration::from_secs(7 * 86_400))
}

fn feast_store(url: &str, deadline: Duration) -> FeastStore {
    FeastStore::builder(url)
        .view(FeastView::new(restaurants_view(), EntityKind::String))
        .view(FeastView::new(
            FeatureView::new("drivers", "driver_id").feature("conv_rate", ValueType::F64),
            EntityKind::Int64,
        ))
        .deadline(deadline)
        .build()
        .unwrap()
}

/// What the embedded store would answer for `key` as of `now`, from the source rows.
fn expected(now: i64, key: &str) -> Vec<FeatureValue> {
    let latest = restaurant_rows(now).into_iter().filter(|r| r.0 == key).max_by_key(|r| r.5);
    let Some((_, prep, rating, cuisine, open, ts)) = latest else {
        return vec![FeatureValue::missing(); 4];
    };
    let ts_t = Timestamp::from_micros(ts);
    if ts < now - 7 * DAY {
        return vec![FeatureValue::expired(ts_t); 4];
    }
    let prep = match prep {
        Some(p) => FeatureValue::present(Value::F64(p), ts_t),
        None => FeatureValue::missing(),
    };
    vec![
        prep,
        FeatureValue::present(Value::I64(rating), ts_t),
        FeatureValue::present(Value::Str(cuisine.into()), ts_t),
        FeatureValue::present(Value::Bool(open), ts_t),
    ]
}

#[test]
#[ignore = "needs the feast command; .ci/run installs it and runs this with --ignored"]
fn a_real_feature_server_through_fresco() {
    // Whole seconds: Feast keeps event times to the second.
    let now = Timestamp::now().as_micros() / 1_000_000 * 1_000_000;
    let server = start_server(now);
    let store = feast_store(&server.url, Duration::from_secs(10));
    let features = ["prep_time_min", "rating", "cuisine", "open"];

    // Every entity and feature equals the source, statuses included: latest row wins,
    // a row past the time to live is expired, a null is missing, an unknown key too.
    let keys = ["r-1", "r-2", "r-3", "r-4", "r-5", "r-9"];
    let got = store.get_features("restaurants", &keys, &features, Timestamp::from_micros(now)).unwrap();
    for (key, row) in keys.iter().zip(&got) {
        let mut want = expected(now, key);
        // Missing values carry no event time in fresco's answer.
        for (g, w) in row.iter().zip(&mut want) {
            if w.status == FeatureStatus::Missing {
                assert_eq!(g.status, FeatureStatus::Missing, "{key}");
                assert_eq!(g.value, Value::Null, "{key}");
                *w = g.clone();
            }
        }
        assert_eq!(row, &want, "{key}");
    }
    // Asked in another order, a subset: answered in the order asked.
    let got = store
        .get_features("restaurants", &["r-2", "r-1"], &["open", "prep_time_min"], Timestamp::from_micros(now))
        .unwrap();
    assert_eq!(got[0][0].value, Value::Bool(false));
    assert_eq!(got[1][1].value, Value::F64(12.5));
    // As of a time far later, everything is past its time to live.
    let later = Timestamp::from_micros(now + 30 * DAY);
    let got = store.get_features("restaurants", &["r-2"], &["rating"], later).unwrap();
    assert_eq!(got[0][0].status, FeatureStatus::Expired);
    assert_eq!(store.health(), Ok(()), "the server answers");

    // An int64 join key, and a feature service.
    let got = store.get_features("drivers", &["1002", "7"], &["conv_rate"], Timestamp::from_micros(now)).unwrap();
    assert_eq!((got[0][0].value.clone(), got[1][0].status), (Value::F64(0.5), FeatureStatus::Missing));
    assert!(matches!(
        store.get_features("drivers", &["abc"], &["conv_rate"], Timestamp::from_micros(now)),
        Err(StoreError::Backend { .. })
    ));
    let by_service = FeastStore::builder(&server.url)
        .view(
            FeastView::new(
                FeatureView::new("restaurants", "restaurant_id")
                    .feature("prep_time_min", ValueType::F64)
                    .feature("rating", ValueType::I64),
                EntityKind::String,
            )
            .feature_service("kitchen"),
        )
        .build()
        .unwrap();
    let got = by_service.get_features("restaurants", &["r-2"], &["rating"], Timestamp::from_micros(now)).unwrap();
    assert_eq!(got[0][0].value, Value::I64(5));

    // Feast's own errors arrive typed: a feature the server's view does not have.
    let wrong = FeastStore::builder(&server.url)
        .view(FeastView::new(
            FeatureView::new("restaurants", "restaurant_id").feature("nope", ValueType::F64),
            EntityKind::String,
        ))
        .build()
        .unwrap();
    match wrong.get_features("restaurants", &["r-1"], &["nope"], Timestamp::from_micros(now)) {
        Err(StoreError::Backend { source, .. }) => {
            let err = source.downcast_ref::<FeastError>().expect("a FeastError");
            assert!(matches!(err, FeastError::Server { .. }), "{err:?}");
            assert!(err.to_string().contains("nope"), "{err}");
        }
        other => panic!("{other:?}"),
    }

    // A model scores them through the Client: y = 2·prep + 3·rating + 1; a missing
    // input takes the model's declared default (0 for prep, 1 for rating).
    let metadata = r#"{"name":"kitchen","version":"1","abi":1,"kind":"custom","inputs":[{"name":"a","type":"f64","missing":{"default":0.0}},{"name":"b","type":"f64","missing":{"default":1.0}}],"outputs":["y"],"source":{"format":"wat","sha256":null}}"#;
    let shared = Arc::new(feast_store(&server.url, Duration::from_millis(200)));
    let client = Client::builder()
        .shared_feature_store(shared.clone())
        .model(
            ModelConfig::new(ModelSource::wasm_bytes(fresco_test_models::linear_with_metadata(metadata)))
                .input("a", InputSource::stored("restaurants", "prep_time_min"))
                .input("b", InputSource::stored("restaurants", "rating")),
        )
        .log_to(MemorySink::new())
        .build()
        .unwrap();
    let request = |key: &str| Request::new().entity("restaurant_id", key).at(Timestamp::from_micros(now));
    let predictions = client.predict_batch("kitchen", &keys.map(request)).unwrap();
    let ys: Vec<f64> = predictions.iter().map(|p| p.output("y").unwrap()).collect();
    // r-1: 2·12.5 + 3·4 + 1; r-2: 2·20 + 3·5 + 1; r-3 expired: defaults; r-4: prep missing;
    // r-5: 2·(-3.25) + 3·1 + 1; r-9 unknown: defaults.
    assert_eq!(ys, [38.0, 56.0, 4.0, 7.0, -2.5, 4.0]);
    assert_eq!(client.stats().degraded_fetches, 0);

    // A read-through cache: a repeated key is answered without a request, and keeps
    // being answered (within its time to live) when the server is gone.
    let cached = FeastStore::builder(&server.url)
        .view(FeastView::new(restaurants_view(), EntityKind::String))
        .cache(Duration::from_secs(60), 1_000)
        .deadline(Duration::from_millis(200))
        .build()
        .unwrap();
    let first = cached.get_features("restaurants", &["r-2", "r-9"], &features, Timestamp::from_micros(now)).unwrap();
    let again = cached.get_features("restaurants", &["r-9", "r-2"], &["rating"], Timestamp::from_micros(now)).unwrap();
    assert_eq!((again[0][0].status, &again[1][0]), (FeatureStatus::Missing, &first[0][1]));
    assert_eq!((cached.stats().requests, cached.stats().cache_hits), (1, 2));

    // The server stops mid-run: predictions go on with the defaults, each degradation
    // counted, no call past its deadline.
    drop(server);
    let still = cached.get_features("restaurants", &["r-2"], &["rating"], Timestamp::from_micros(now)).unwrap();
    assert_eq!(still[0][0].value, Value::I64(5));
    assert!(cached.get_features("restaurants", &["r-1"], &["rating"], Timestamp::from_micros(now)).is_err());
    let deadline = Duration::from_millis(200);
    let mut slowest = Duration::ZERO;
    for key in keys.iter().cycle().take(20) {
        let t = Instant::now();
        let p = client.predict("kitchen", &request(key)).unwrap();
        slowest = slowest.max(t.elapsed());
        assert_eq!(p.output("y"), Some(4.0), "{key}");
        assert!(p.feature_statuses().all(|(_, s)| s == FeatureStatus::Unavailable));
    }
    assert_eq!(client.stats().degraded_fetches, 20);
    assert!(shared.stats().failures >= 20, "{:?}", shared.stats());
    // The deadline bounds the store; the rest of a predict is microseconds.
    assert!(slowest < deadline + Duration::from_millis(400), "slowest call {slowest:?}");
}

/// A server that accepts connections and never answers: every call ends at its
/// deadline, as unavailable, retries and all.
#[test]
fn a_server_that_never_answers_costs_one_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().take(8) {
            held.push(conn);
        }
        std::thread::sleep(Duration::from_secs(3));
    });
    let deadline = Duration::from_millis(150);
    let store = feast_store(&url, deadline);
    for _ in 0..3 {
        let t = Instant::now();
        let err = store.get_features("restaurants", &["r-1"], &["rating"], Timestamp::now()).unwrap_err();
        let took = t.elapsed();
        assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
        assert!(
            took >= deadline - Duration::from_millis(5) && took < deadline + Duration::from_millis(400),
            "{took:?}"
        );
    }
    // Nothing listens at all: refused at once, retried with backoff inside the deadline.
    let closed = feast_store(&format!("http://127.0.0.1:{}", free_port()), deadline);
    let t = Instant::now();
    assert!(matches!(
        closed.get_features("restaurants", &["r-1"], &["rating"], Timestamp::now()),
        Err(StoreError::Unavailable { .. })
    ));
    assert!(t.elapsed() < deadline + Duration::from_millis(400));
    assert!(closed.stats().retries >= 2, "{:?}", closed.stats());
    let unready = closed.health().unwrap_err();
    assert!(unready.contains("the last lookup failed: view `restaurants`"), "{unready}");
    drop(hold);
}
