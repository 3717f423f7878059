//! The offline side: windowed features point-in-time for every row of a table, from
//! an event log in Parquet.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;

use super::store::{AggregateStore, classify};
use super::{AggregateError, Definitions, Recorded, StreamSpec};
use crate::features::Timestamp;
use crate::features::materialize::{cast, entity_keys, timestamps};
use crate::untrusted::{guarded, open_parquet};

/// One stream's event log: a Parquet file with the stream's entity column, `ts` (event
/// time), optionally `value` (float or integer; 1.0 for every event when absent) and
/// optionally `arrival` (when the event reached the serving process; the event time
/// when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLog {
    /// The stream.
    pub stream: String,
    /// The Parquet file.
    pub path: PathBuf,
}

impl EventLog {
    /// The log of `stream` at `path`.
    pub fn new(stream: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        EventLog { stream: stream.into(), path: path.into() }
    }
}

/// What a [`backfill`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackfillReport {
    /// Table rows written, each with every feature.
    pub rows: u64,
    /// Events read from the logs.
    pub events: u64,
    /// Of those, events that counted.
    pub accepted: u64,
    /// Dropped as late.
    pub late: u64,
    /// Dropped as dated after their arrival.
    pub future: u64,
}

impl BackfillReport {
    fn count(&mut self, outcome: Recorded) {
        match outcome {
            Recorded::Accepted => self.accepted += 1,
            Recorded::Late => self.late += 1,
            Recorded::Future => self.future += 1,
        }
    }
}

struct Event {
    arrival: i64,
    stream: usize,
    key: String,
    ts: Timestamp,
    value: f64,
    /// What an earlier pass over the whole stream decided (the `recorded` column).
    marked: Option<Recorded>,
}

/// One stream's events as Arrow batches: the columns of an [`EventLog`] file, plus
/// optionally `recorded` (Utf8: `accepted`, `late` or `future`) when a [`LateMarker`]
/// pass over the whole stream has already applied the late rule.
///
/// A marked log is what lets the replay run per entity key on many machines: the late
/// rule looks at the latest event time over *all* keys, which one key's slice of the log
/// cannot see. Events marked `late` or `future` are counted and skipped; the rest are
/// replayed (an event accepted over the whole stream is accepted within any slice of it).
#[derive(Debug, Clone)]
pub struct EventBatches {
    /// The stream.
    pub stream: String,
    /// Its events, in arrival order where arrivals tie.
    pub batches: Vec<RecordBatch>,
}

impl EventBatches {
    /// The events of `stream`.
    pub fn new(stream: impl Into<String>, batches: Vec<RecordBatch>) -> Self {
        EventBatches { stream: stream.into(), batches }
    }
}

/// The late rule over a stream's log, slice by slice in arrival order: the same rule an
/// [`AggregateStore`] applies as events arrive, for a first pass that marks every event
/// before a replay split by entity key (see [`EventBatches`]).
///
/// ```
/// use std::time::Duration;
/// use fresco::Timestamp;
/// use fresco::aggregates::{LateMarker, Recorded, StreamSpec};
///
/// let spec = StreamSpec::new("orders", "restaurant_id").late_tolerance(Duration::from_secs(60));
/// let s = |secs: i64| Timestamp::from_micros(secs * 1_000_000);
/// let mut marker = LateMarker::new(&spec);
/// assert_eq!(marker.mark(s(1000), s(1000)), Recorded::Accepted);
/// assert_eq!(marker.mark(s(900), s(1001)), Recorded::Late); // 100 s behind, 60 s allowed
/// assert_eq!(marker.mark(s(2000), s(1002)), Recorded::Future); // dated after its arrival
/// // The next slice of the log goes on from the latest accepted event time.
/// let mut next = LateMarker::new(&spec).resume_after(marker.latest());
/// assert_eq!(next.mark(s(950), s(1003)), Recorded::Accepted);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LateMarker {
    tolerance: i64,
    latest: i64,
}

impl LateMarker {
    /// A marker at the start of `stream`'s log.
    pub fn new(stream: &StreamSpec) -> Self {
        LateMarker { tolerance: stream.tolerance_micros(), latest: i64::MIN }
    }

    /// Goes on after events whose latest accepted time was `latest` (`None`: no event
    /// accepted yet). Resuming after several slices takes the largest of theirs.
    pub fn resume_after(mut self, latest: Option<Timestamp>) -> Self {
        if let Some(t) = latest {
            self.latest = self.latest.max(t.as_micros());
        }
        self
    }

    /// Applies the rule to the next event and remembers it.
    pub fn mark(&mut self, ts: Timestamp, arrival: Timestamp) -> Recorded {
        let outcome = classify(ts.as_micros(), arrival.as_micros(), self.latest, self.tolerance);
        if outcome == Recorded::Accepted {
            self.latest = self.latest.max(ts.as_micros());
        }
        outcome
    }

    /// The latest accepted event time so far.
    pub fn latest(&self) -> Option<Timestamp> {
        (self.latest != i64::MIN).then(|| Timestamp::from_micros(self.latest))
    }

    /// Marks the events of `batches` (columns `ts`, optional `arrival`) in order.
    pub fn mark_batch(&mut self, batch: &RecordBatch) -> Result<Vec<Recorded>, String> {
        let (ts, arrivals) = event_times(batch)?;
        Ok(ts.into_iter().zip(arrivals).map(|(ts, arrival)| self.mark(ts, arrival)).collect())
    }
}

fn file_err(path: &Path) -> impl Fn(String) -> AggregateError + '_ {
    move |reason| AggregateError::File { path: path.display().to_string(), reason }
}

fn read_batches(path: &Path) -> Result<Vec<RecordBatch>, AggregateError> {
    let file = File::open(path).map_err(|e| file_err(path)(e.to_string()))?;
    let builder = open_parquet(file).map_err(file_err(path))?;
    let mut reader = guarded(|| builder.build()).map_err(file_err(path))?;
    let mut batches = Vec::new();
    while let Some(batch) = guarded(|| reader.next().transpose()).map_err(file_err(path))? {
        batches.push(batch);
    }
    Ok(batches)
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, String> {
    batch.column_by_name(name).ok_or_else(|| format!("no column `{name}`"))
}

fn floats(array: &ArrayRef, name: &str) -> Result<Vec<f64>, String> {
    if !(array.data_type().is_floating() || array.data_type().is_integer()) {
        return Err(format!("column `{name}` is {}; expected numbers", array.data_type()));
    }
    let values = cast(array, &DataType::Float64, name)?;
    let values = values.as_primitive::<Float64Type>();
    if values.null_count() > 0 {
        return Err(format!("column `{name}` has null values"));
    }
    Ok(values.values().to_vec())
}

/// Each event's time (`ts`) and arrival (`arrival`, else its time).
fn event_times(batch: &RecordBatch) -> Result<(Vec<Timestamp>, Vec<Timestamp>), String> {
    let ts = timestamps(column(batch, "ts")?, "ts")?;
    let arrivals = match batch.column_by_name("arrival") {
        Some(a) => timestamps(a, "arrival")?,
        None => ts.clone(),
    };
    Ok((ts, arrivals))
}

fn marks(batch: &RecordBatch) -> Result<Option<Vec<Recorded>>, String> {
    let Some(array) = batch.column_by_name("recorded") else {
        return Ok(None);
    };
    let text = cast(array, &DataType::Utf8, "recorded")?;
    text.as_string::<i32>()
        .iter()
        .map(|m| match m {
            Some(m) => m.parse::<Recorded>(),
            None => Err("column `recorded` has null values".to_owned()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn read_events(defs: &Definitions, log: &EventBatches, events: &mut Vec<Event>) -> Result<(), String> {
    // Checked by `check_streams` before any log is read.
    let stream = defs.streams.iter().position(|s| s.name == log.stream).unwrap_or(0);
    let entity = &defs.streams[stream].entity;
    for batch in &log.batches {
        let keys = entity_keys(column(batch, entity)?, entity)?;
        let (ts, arrivals) = event_times(batch)?;
        let values = match batch.column_by_name("value") {
            Some(v) => floats(v, "value")?,
            None => vec![1.0; batch.num_rows()],
        };
        let mut marked = marks(batch)?.map(Vec::into_iter);
        for (((key, ts), value), arrival) in keys.into_iter().zip(ts).zip(values).zip(arrivals) {
            let key = key.ok_or_else(|| format!("entity column `{entity}` has null values"))?;
            if !value.is_finite() {
                return Err(format!("column `value` holds {value}, which cannot be aggregated"));
            }
            let marked = marked.as_mut().and_then(Iterator::next);
            events.push(Event { arrival: arrival.as_micros(), stream, key, ts, value, marked });
        }
    }
    Ok(())
}

/// Computes every feature of `defs` point-in-time for each row of the Parquet table
/// `table` and writes the table with one more `Float64` column per feature to `out`.
///
/// The table needs a `ts` column (the time each row's features are wanted, e.g. a
/// prediction log's `ts`) and, for each stream, its entity column. A row at `t` sees
/// exactly what an [`AggregateStore`] read at `t` would have seen: the logs are
/// replayed through one in arrival order (ties: file order), and the rows are read in
/// time order between the events, events arriving at `t` first. A null entity key
/// gives missing features; an empty window gives 0 for counts and sums and null for
/// the rest.
///
/// The events are held in memory (about 60 bytes plus the key per event); the table's
/// rows are processed in its own batches. `progress` gets (rows done, rows in all).
/// [`backfill_batches`] does the same on Arrow batches in memory.
pub fn backfill(
    defs: &Definitions,
    logs: &[EventLog],
    table: &Path,
    out: &Path,
    progress: impl FnMut(u64, u64),
) -> Result<BackfillReport, AggregateError> {
    check_streams(defs, logs.iter().map(|l| l.stream.as_str()))?;
    let mut events = Vec::with_capacity(logs.len());
    for log in logs {
        events.push(EventBatches::new(&log.stream, read_batches(&log.path)?));
    }
    backfill_table(defs, &events, table, out, progress, |i| logs[i].path.display().to_string())
}

/// [`backfill`] from event logs already in memory (e.g. the entries of a shared event
/// stream, [`entry_batches`](crate::events::archive::entry_batches)), the table read
/// from and written to Parquet files.
pub fn backfill_events(
    defs: &Definitions,
    events: &[EventBatches],
    table: &Path,
    out: &Path,
    progress: impl FnMut(u64, u64),
) -> Result<BackfillReport, AggregateError> {
    backfill_table(defs, events, table, out, progress, |i| format!("events of stream `{}`", events[i].stream))
}

fn backfill_table(
    defs: &Definitions,
    events: &[EventBatches],
    table: &Path,
    out: &Path,
    progress: impl FnMut(u64, u64),
    source: impl Fn(usize) -> String,
) -> Result<BackfillReport, AggregateError> {
    let batches = read_batches(table)?;
    let (columns, report) = feature_columns(defs, events, &batches, progress).map_err(|e| match e {
        Failure::Events(i, reason) => AggregateError::File { path: source(i), reason },
        Failure::Table(reason) => file_err(table)(reason),
        Failure::Store(e) => e,
    })?;
    let schema = output_schema(&batches, defs).map_err(file_err(out))?;
    write_table(&batches, &schema, &columns, out)?;
    Ok(report)
}

/// [`backfill`] on batches in memory: returns `table` with one more `Float64` column per
/// feature, batch for batch, and the report. With marked events ([`EventBatches`]) it
/// can run on one entity key's slice of the logs and table at a time.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
/// use fresco::aggregates::{backfill_batches, Aggregation, Definitions, EventBatches, StreamSpec, WindowedFeature};
///
/// let defs = Definitions::new()
///     .stream(StreamSpec::new("orders", "restaurant_id"))
///     .feature(WindowedFeature::new("orders_30m", "orders", Aggregation::Count, Duration::from_secs(1800)));
/// let minute = 60_000_000i64;
/// let events = RecordBatch::try_from_iter([
///     ("restaurant_id", Arc::new(StringArray::from(vec!["r1", "r1", "r2"])) as ArrayRef),
///     ("ts", Arc::new(Int64Array::from(vec![0, minute, 2 * minute])) as ArrayRef),
/// ])?;
/// let table = RecordBatch::try_from_iter([
///     ("restaurant_id", Arc::new(StringArray::from(vec!["r1", "r2"])) as ArrayRef),
///     ("ts", Arc::new(Int64Array::from(vec![5 * minute, 5 * minute])) as ArrayRef),
/// ])?;
/// let (out, report) = backfill_batches(&defs, &[EventBatches::new("orders", vec![events])], &[table])?;
/// let counts = out[0].column_by_name("orders_30m").unwrap();
/// assert_eq!(counts.as_ref(), &Float64Array::from(vec![2.0, 1.0]) as &dyn arrow_array::Array);
/// assert_eq!(report.accepted, 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn backfill_batches(
    defs: &Definitions,
    events: &[EventBatches],
    table: &[RecordBatch],
) -> Result<(Vec<RecordBatch>, BackfillReport), AggregateError> {
    let batch_err = |what: String, reason: String| AggregateError::File { path: what, reason };
    let (columns, report) = feature_columns(defs, events, table, |_, _| {}).map_err(|e| match e {
        Failure::Events(i, reason) => batch_err(format!("events of stream `{}`", events[i].stream), reason),
        Failure::Table(reason) => batch_err("the table".into(), reason),
        Failure::Store(e) => e,
    })?;
    let schema = output_schema(table, defs).map_err(|reason| batch_err("the table".into(), reason))?;
    let out = with_features(table, &schema, &columns).map_err(|reason| batch_err("the output".into(), reason))?;
    Ok((out, report))
}

/// Where a backfill failed, before it is named after a file or a batch.
enum Failure {
    /// The `usize`-th event log.
    Events(usize, String),
    Table(String),
    Store(AggregateError),
}

/// Per feature, its value for every row of the table.
type FeatureColumns = Vec<Vec<Option<f64>>>;

/// Every log names a declared stream.
fn check_streams<'a>(defs: &Definitions, mut streams: impl Iterator<Item = &'a str>) -> Result<(), AggregateError> {
    match streams.find(|name| !defs.streams.iter().any(|s| s.name == *name)) {
        Some(stream) => Err(AggregateError::UnknownStream { stream: stream.to_owned() }),
        None => Ok(()),
    }
}

/// Every feature's value for every row of `batches`, in row order.
fn feature_columns(
    defs: &Definitions,
    logs: &[EventBatches],
    batches: &[RecordBatch],
    mut progress: impl FnMut(u64, u64),
) -> Result<(FeatureColumns, BackfillReport), Failure> {
    let store = AggregateStore::new(defs.clone()).map_err(Failure::Store)?;
    check_streams(defs, logs.iter().map(|l| l.stream.as_str())).map_err(Failure::Store)?;
    let mut events = Vec::new();
    for (i, log) in logs.iter().enumerate() {
        read_events(defs, log, &mut events).map_err(|reason| Failure::Events(i, reason))?;
    }
    // Stable: events arriving together keep their log order.
    events.sort_by_key(|e| e.arrival);

    // Every row's time and its key for each stream.
    let mut times = Vec::new();
    let mut keys: Vec<Vec<Option<String>>> = vec![Vec::new(); defs.streams.len()];
    for batch in batches {
        let err = Failure::Table;
        times.extend(timestamps(column(batch, "ts").map_err(err)?, "ts").map_err(err)?);
        for (s, spec) in defs.streams.iter().enumerate() {
            if defs.features.iter().any(|f| f.stream == spec.name) {
                keys[s].extend(entity_keys(column(batch, &spec.entity).map_err(err)?, &spec.entity).map_err(err)?);
            }
        }
    }
    let total = times.len() as u64;
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by_key(|&r| (times[r], r));

    let stream_of: Vec<usize> =
        defs.features.iter().map(|f| defs.streams.iter().position(|s| s.name == f.stream).unwrap_or(0)).collect();
    let mut values: Vec<Vec<Option<f64>>> = vec![vec![None; times.len()]; defs.features.len()];
    let mut report = BackfillReport { events: events.len() as u64, ..BackfillReport::default() };
    let mut next = 0;
    for (done, &r) in order.iter().enumerate() {
        let t = times[r];
        while next < events.len() && events[next].arrival <= t.as_micros() {
            report.count(replay(&store, defs, &events[next]).map_err(Failure::Store)?);
            next += 1;
        }
        for (f, feature) in defs.features.iter().enumerate() {
            if let Some(key) = &keys[stream_of[f]][r] {
                values[f][r] = store.read(&feature.name, key, t).map_err(Failure::Store)?;
            }
        }
        if done % 65_536 == 0 {
            progress(done as u64, total);
        }
    }
    // The rest of the log (arriving after the last row) is counted too.
    for e in &events[next..] {
        report.count(replay(&store, defs, e).map_err(Failure::Store)?);
    }
    report.rows = total;
    progress(total, total);
    Ok((values, report))
}

/// Records one event of the log, as it arrived; a marked-dropped one only counts.
fn replay(store: &AggregateStore, defs: &Definitions, e: &Event) -> Result<Recorded, AggregateError> {
    match e.marked {
        Some(outcome @ (Recorded::Late | Recorded::Future)) => Ok(outcome),
        _ => store.record_event_at(
            Timestamp::from_micros(e.arrival),
            &defs.streams[e.stream].name,
            &e.key,
            e.ts,
            e.value,
        ),
    }
}

/// The table's schema with a nullable `Float64` column per feature.
fn output_schema(batches: &[RecordBatch], defs: &Definitions) -> Result<Arc<Schema>, String> {
    let Some(first) = batches.first() else {
        return Err("the table has no rows".into());
    };
    let mut fields: Vec<Field> = first.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    for f in &defs.features {
        if fields.iter().any(|x| x.name() == &f.name) {
            return Err(format!("the table already has a column `{}`", f.name));
        }
        fields.push(Field::new(&f.name, DataType::Float64, true));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// The table's batches with the feature columns appended.
fn with_features(
    batches: &[RecordBatch],
    schema: &Arc<Schema>,
    values: &[Vec<Option<f64>>],
) -> Result<Vec<RecordBatch>, String> {
    let mut offset = 0;
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        let n = batch.num_rows();
        let mut columns = batch.columns().to_vec();
        for feature in values {
            columns.push(Arc::new(Float64Array::from(feature[offset..offset + n].to_vec())) as ArrayRef);
        }
        out.push(RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())?);
        offset += n;
    }
    Ok(out)
}

fn write_table(
    batches: &[RecordBatch],
    schema: &Arc<Schema>,
    values: &[Vec<Option<f64>>],
    out: &Path,
) -> Result<(), AggregateError> {
    let err = file_err(out);
    let tmp = out.with_extension("parquet.partial");
    let file = File::create(&tmp).map_err(|e| err(e.to_string()))?;
    let mut writer = ArrowWriter::try_new(file, schema.clone(), None).map_err(|e| err(e.to_string()))?;
    for batch in with_features(batches, schema, values).map_err(&err)? {
        writer.write(&batch).map_err(|e| err(e.to_string()))?;
    }
    writer.close().map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, out).map_err(|e| err(e.to_string()))
}
