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
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::store::AggregateStore;
use super::{AggregateError, Definitions, Recorded};
use crate::features::Timestamp;
use crate::features::materialize::{cast, entity_keys, guarded, timestamps};

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
}

fn file_err(path: &Path) -> impl Fn(String) -> AggregateError + '_ {
    move |reason| AggregateError::File { path: path.display().to_string(), reason }
}

fn read_batches(path: &Path) -> Result<Vec<RecordBatch>, AggregateError> {
    let file = File::open(path).map_err(|e| file_err(path)(e.to_string()))?;
    let mut reader = guarded(|| ParquetRecordBatchReaderBuilder::try_new(file)?.build()).map_err(file_err(path))?;
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

fn read_events(defs: &Definitions, log: &EventLog, events: &mut Vec<Event>) -> Result<(), AggregateError> {
    let stream = defs
        .streams
        .iter()
        .position(|s| s.name == log.stream)
        .ok_or_else(|| AggregateError::UnknownStream { stream: log.stream.clone() })?;
    let entity = &defs.streams[stream].entity;
    let err = file_err(&log.path);
    for batch in read_batches(&log.path)? {
        let keys = entity_keys(column(&batch, entity).map_err(&err)?, entity).map_err(&err)?;
        let ts = timestamps(column(&batch, "ts").map_err(&err)?, "ts").map_err(&err)?;
        let values = match batch.column_by_name("value") {
            Some(v) => floats(v, "value").map_err(&err)?,
            None => vec![1.0; batch.num_rows()],
        };
        let arrivals = match batch.column_by_name("arrival") {
            Some(a) => timestamps(a, "arrival").map_err(&err)?,
            None => ts.clone(),
        };
        for (((key, ts), value), arrival) in keys.into_iter().zip(ts).zip(values).zip(arrivals) {
            let key = key.ok_or_else(|| err(format!("entity column `{entity}` has null values")))?;
            if !value.is_finite() {
                return Err(err(format!("column `value` holds {value}, which cannot be aggregated")));
            }
            events.push(Event { arrival: arrival.as_micros(), stream, key, ts, value });
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
pub fn backfill(
    defs: &Definitions,
    logs: &[EventLog],
    table: &Path,
    out: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<BackfillReport, AggregateError> {
    let store = AggregateStore::new(defs.clone())?;
    let mut events = Vec::new();
    for log in logs {
        read_events(defs, log, &mut events)?;
    }
    // Stable: events arriving together keep their log order.
    events.sort_by_key(|e| e.arrival);

    let batches = read_batches(table)?;
    let err = file_err(table);
    // Every row's time and its key for each stream.
    let mut times = Vec::new();
    let mut keys: Vec<Vec<Option<String>>> = vec![Vec::new(); defs.streams.len()];
    for batch in &batches {
        times.extend(timestamps(column(batch, "ts").map_err(&err)?, "ts").map_err(&err)?);
        for (s, spec) in defs.streams.iter().enumerate() {
            if defs.features.iter().any(|f| f.stream == spec.name) {
                keys[s].extend(entity_keys(column(batch, &spec.entity).map_err(&err)?, &spec.entity).map_err(&err)?);
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
            report.count(replay(&store, defs, &events[next])?);
            next += 1;
        }
        for (f, feature) in defs.features.iter().enumerate() {
            if let Some(key) = &keys[stream_of[f]][r] {
                values[f][r] = store.read(&feature.name, key, t)?;
            }
        }
        if done % 65_536 == 0 {
            progress(done as u64, total);
        }
    }
    // The rest of the log (arriving after the last row) is counted too.
    for e in &events[next..] {
        report.count(replay(&store, defs, e)?);
    }
    write_table(&batches, defs, &values, out)?;
    report.rows = total;
    progress(total, total);
    Ok(report)
}

/// Records one event of the log, as it arrived.
fn replay(store: &AggregateStore, defs: &Definitions, e: &Event) -> Result<Recorded, AggregateError> {
    store.record_event_at(Timestamp::from_micros(e.arrival), &defs.streams[e.stream].name, &e.key, e.ts, e.value)
}

fn write_table(
    batches: &[RecordBatch],
    defs: &Definitions,
    values: &[Vec<Option<f64>>],
    out: &Path,
) -> Result<(), AggregateError> {
    let err = file_err(out);
    let Some(first) = batches.first() else {
        return Err(err("the table has no rows".into()));
    };
    let mut fields: Vec<Field> = first.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    for f in &defs.features {
        if fields.iter().any(|x| x.name() == &f.name) {
            return Err(err(format!("the table already has a column `{}`", f.name)));
        }
        fields.push(Field::new(&f.name, DataType::Float64, true));
    }
    let schema = Arc::new(Schema::new(fields));
    let tmp = out.with_extension("parquet.partial");
    let file = File::create(&tmp).map_err(|e| err(e.to_string()))?;
    let mut writer = ArrowWriter::try_new(file, schema.clone(), None).map_err(|e| err(e.to_string()))?;
    let mut offset = 0;
    for batch in batches {
        let n = batch.num_rows();
        let mut columns = batch.columns().to_vec();
        for feature in values {
            columns.push(Arc::new(Float64Array::from(feature[offset..offset + n].to_vec())) as ArrayRef);
        }
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| err(e.to_string()))?;
        writer.write(&batch).map_err(|e| err(e.to_string()))?;
        offset += n;
    }
    writer.close().map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, out).map_err(|e| err(e.to_string()))
}
