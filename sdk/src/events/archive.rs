//! The stream's history in Parquet: what backfills read, and what a replica whose
//! position was trimmed from the stream replays.
//!
//! An archive is a directory with one folder per stream, `stream=NAME/`, holding files
//! `events-FROM_THROUGH.parquet` (the stream positions the archiving run covered,
//! zero-padded, so names sort in stream order). Each file is an event log as
//! [`backfill`](crate::aggregates::backfill) reads it: the stream's entity column,
//! `ts`, `value` and `arrival` (UTC microsecond timestamps and doubles), plus
//! `position_hi` and `position_lo`, rows in stream order. pandas, polars, DuckDB and
//! Spark read a stream's folder as one table.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::{Entry, Event, EventStream, Position, StreamError, read_through};
use crate::Timestamp;
use crate::aggregates::{Definitions, EventBatches};
use crate::features::materialize::{entity_keys, timestamps};
use crate::untrusted::{guarded, open_parquet};

/// Why archiving or reading an archive failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// A file or folder of the archive.
    #[error("{path}: {reason}")]
    File {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Another process is archiving into the same directory.
    #[error("{dir}: another process is archiving into this directory (it holds {dir}/.lock)")]
    Busy {
        /// The archive.
        dir: PathBuf,
    },
    /// The stream.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// A retention shorter than the windows need.
    #[error(
        "retention {retention:?} is shorter than the longest window plus the late tolerance ({needed:?}): \
         a restarted replica could not rebuild its windows from the stream"
    )]
    RetentionTooShort {
        /// Asked for.
        retention: Duration,
        /// The least that works.
        needed: Duration,
    },
}

/// An archive directory (see [the module](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    dir: PathBuf,
}

/// What [`archive_stream`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArchiveReport {
    /// Entries written.
    pub archived: u64,
    /// Entries that no reader can apply (unreadable, or a stream name that is not a
    /// safe folder name), skipped as every replica skips them.
    pub unusable: u64,
    /// The last position the archive now covers.
    pub through: Option<Position>,
    /// Where the stream was trimmed through, when it was.
    pub trimmed_through: Option<Position>,
}

const PREFIX: &str = "events-";
const SUFFIX: &str = ".parquet";

fn padded(p: Position) -> String {
    format!("{:020}-{:020}", p.hi(), p.lo())
}

/// `(from, through)` of an archive file's name.
fn file_range(name: &str) -> Option<(Position, Position)> {
    let middle = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (from, through) = middle.split_once('_')?;
    Some((from.parse().ok()?, through.parse().ok()?))
}

fn stream_folder(stream: &str) -> Option<String> {
    let safe = !stream.is_empty()
        && stream != "."
        && stream != ".."
        && !stream.contains(['/', '\\', '\0'])
        && !stream.starts_with('.');
    safe.then(|| format!("stream={stream}"))
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ArchiveError + '_ {
    move |e| ArchiveError::File { path: path.to_owned(), reason: e.to_string() }
}

fn schema(entity: &str) -> Arc<Schema> {
    let micros = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new(entity, DataType::Utf8, false),
        Field::new("ts", micros.clone(), false),
        Field::new("value", DataType::Float64, false),
        Field::new("arrival", micros, false),
        Field::new("position_hi", DataType::Int64, false),
        Field::new("position_lo", DataType::Int64, false),
    ]))
}

impl Archive {
    /// The archive in `dir` (created when first written).
    pub fn open(dir: impl Into<PathBuf>) -> Self {
        Archive { dir: dir.into() }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every archive file: (stream, from, through, path), in stream order per stream.
    fn files(&self) -> Result<Vec<(String, Position, Position, PathBuf)>, ArchiveError> {
        let mut found = Vec::new();
        let folders = match std::fs::read_dir(&self.dir) {
            Ok(folders) => folders,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        for folder in folders {
            let folder = folder.map_err(io_err(&self.dir))?;
            let name = folder.file_name();
            let Some(stream) = name.to_str().and_then(|n| n.strip_prefix("stream=")) else { continue };
            let path = folder.path();
            for file in std::fs::read_dir(&path).map_err(io_err(&path))? {
                let file = file.map_err(io_err(&path))?;
                if let Some((from, through)) = file.file_name().to_str().and_then(file_range) {
                    found.push((stream.to_owned(), from, through, file.path()));
                }
            }
        }
        found.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        Ok(found)
    }

    /// The last stream position the archive covers.
    pub fn through(&self) -> Result<Option<Position>, ArchiveError> {
        Ok(self.files()?.into_iter().map(|f| f.2).max())
    }

    /// Each stream's folder, as event logs for [`backfill`](crate::aggregates::backfill).
    pub fn event_batches(&self, definitions: &Definitions) -> Result<Vec<EventBatches>, ArchiveError> {
        entry_batches(definitions, &self.entries_after(None)?)
    }

    /// The archived entries after `after` (all of them for `None`), in stream order,
    /// each once (archive runs that overlapped are merged).
    pub fn entries_after(&self, after: Option<Position>) -> Result<Vec<Entry>, ArchiveError> {
        let mut entries = BTreeMap::new();
        for (stream, _, through, path) in self.files()? {
            if after.is_some_and(|a| through <= a) {
                continue;
            }
            for entry in read_file(&stream, &path)? {
                if after.is_none_or(|a| entry.position > a) {
                    entries.insert(entry.position, entry);
                }
            }
        }
        Ok(entries.into_values().collect())
    }

    /// Writes `entries` (positions after [`through`](Self::through), in order) as one
    /// file per stream named by the range `from..=through`. Entries that cannot be
    /// archived are counted, not written.
    fn append(&self, definitions: &Definitions, entries: &[Entry]) -> Result<ArchiveReport, ArchiveError> {
        let mut report = ArchiveReport::default();
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else { return Ok(report) };
        let name = format!("{PREFIX}{}_{}{SUFFIX}", padded(first.position), padded(last.position));
        let mut by_stream: BTreeMap<&str, Vec<(&Entry, &Event)>> = BTreeMap::new();
        for entry in entries {
            match &entry.event {
                Ok(event) if stream_folder(&event.stream).is_some() => {
                    by_stream.entry(event.stream.as_str()).or_default().push((entry, event));
                }
                _ => report.unusable += 1,
            }
        }
        for (stream, rows) in by_stream {
            let entity = definitions.streams().iter().find(|s| s.name == stream).map_or("key", |s| s.entity.as_str());
            let folder = self.dir.join(stream_folder(stream).unwrap_or_default());
            std::fs::create_dir_all(&folder).map_err(io_err(&folder))?;
            let path = folder.join(&name);
            let batch = to_batch(entity, &rows).map_err(|reason| ArchiveError::File { path: path.clone(), reason })?;
            write_file(&path, &batch)?;
            report.archived += rows.len() as u64;
        }
        report.through = Some(last.position);
        Ok(report)
    }

    /// The last archived position that arrived before `cutoff`.
    fn last_before(&self, cutoff: Timestamp) -> Result<Option<Position>, ArchiveError> {
        let mut files = self.files()?;
        files.sort_by_key(|f| std::cmp::Reverse(f.2));
        let mut best: Option<Position> = None;
        for (stream, from, _, path) in files {
            if best.is_some_and(|b| b >= from) {
                continue;
            }
            for entry in read_file(&stream, &path)? {
                if entry.arrival < cutoff {
                    best = best.max(Some(entry.position));
                }
            }
        }
        Ok(best)
    }
}

fn to_batch(entity: &str, rows: &[(&Entry, &Event)]) -> Result<RecordBatch, String> {
    let position = |p: u64| i64::try_from(p).map_err(|_| format!("position part {p} is beyond the archive's int64"));
    let his = rows.iter().map(|(e, _)| position(e.position.hi())).collect::<Result<Vec<_>, _>>()?;
    let los = rows.iter().map(|(e, _)| position(e.position.lo())).collect::<Result<Vec<_>, _>>()?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, ev)| ev.key.as_str()))),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(rows.iter().map(|(_, ev)| ev.ts.as_micros()))
                .with_timezone("UTC"),
        ),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|(_, ev)| ev.value))),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(rows.iter().map(|(e, _)| e.arrival.as_micros()))
                .with_timezone("UTC"),
        ),
        Arc::new(Int64Array::from(his)),
        Arc::new(Int64Array::from(los)),
    ];
    RecordBatch::try_new(schema(entity), columns).map_err(|e| e.to_string())
}

fn write_file(path: &Path, batch: &RecordBatch) -> Result<(), ArchiveError> {
    let err = |e: &dyn std::fmt::Display| ArchiveError::File { path: path.to_owned(), reason: e.to_string() };
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(props)).map_err(|e| err(&e))?;
    writer.write(batch).map_err(|e| err(&e))?;
    writer.close().map_err(|e| err(&e))?;
    crate::atomic_file::write_whole(path, &bytes).map_err(|e| err(&e))
}

/// An archive file's rows as entries of `stream`.
fn read_file(stream: &str, path: &Path) -> Result<Vec<Entry>, ArchiveError> {
    let err = |reason: String| ArchiveError::File { path: path.to_owned(), reason };
    let file = File::open(path).map_err(io_err(path))?;
    let builder = open_parquet(file).map_err(err)?;
    let mut reader = guarded(|| builder.build()).map_err(err)?;
    let mut entries = Vec::new();
    while let Some(batch) = guarded(|| reader.next().transpose()).map_err(err)? {
        entries.extend(batch_entries(stream, &batch).map_err(err)?);
    }
    Ok(entries)
}

fn batch_entries(stream: &str, batch: &RecordBatch) -> Result<Vec<Entry>, String> {
    const KNOWN: [&str; 5] = ["ts", "value", "arrival", "position_hi", "position_lo"];
    let schema = batch.schema();
    let mut others = schema.fields().iter().map(|f| f.name().as_str()).filter(|n| !KNOWN.contains(n));
    let (Some(entity), None) = (others.next(), others.next()) else {
        return Err("expected one entity column beside ts, value, arrival, position_hi and position_lo".into());
    };
    let column = |name: &str| batch.column_by_name(name).ok_or_else(|| format!("no column `{name}`"));
    let keys = entity_keys(column(entity)?, entity)?;
    let ts = timestamps(column("ts")?, "ts")?;
    let arrival = timestamps(column("arrival")?, "arrival")?;
    let ints = |name: &str| -> Result<Vec<u64>, String> {
        let array =
            column(name)?.as_primitive_opt::<Int64Type>().ok_or_else(|| format!("column `{name}` is not int64"))?;
        array
            .iter()
            .map(|v| {
                v.and_then(|v| u64::try_from(v).ok())
                    .ok_or_else(|| format!("column `{name}` has a null or negative value"))
            })
            .collect()
    };
    let (his, los) = (ints("position_hi")?, ints("position_lo")?);
    let values =
        column("value")?.as_primitive_opt::<Float64Type>().ok_or_else(|| "column `value` is not float64".to_owned())?;
    let mut entries = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let key = keys[row].clone().ok_or_else(|| format!("entity column `{entity}` has null values"))?;
        let value = values.is_valid(row).then(|| values.value(row)).ok_or("column `value` has null values")?;
        entries.push(Entry {
            position: Position::new(his[row], los[row]),
            arrival: arrival[row],
            event: Ok(Event { stream: stream.to_owned(), key, ts: ts[row], value }),
        });
    }
    Ok(entries)
}

/// Entries as one event log per declared stream, for
/// [`backfill_batches`](crate::aggregates::backfill_batches): the backfill of exactly
/// what a follower applied. Entries of other streams, or unreadable ones, are left out
/// (a follower skips them too).
pub fn entry_batches(definitions: &Definitions, entries: &[Entry]) -> Result<Vec<EventBatches>, ArchiveError> {
    let mut out = Vec::new();
    for spec in definitions.streams() {
        let rows: Vec<(&Entry, &Event)> = entries
            .iter()
            .filter_map(|e| e.event.as_ref().ok().filter(|ev| ev.stream == spec.name).map(|ev| (e, ev)))
            .collect();
        let batch = to_batch(&spec.entity, &rows)
            .map_err(|reason| ArchiveError::File { path: PathBuf::from(format!("stream `{}`", spec.name)), reason })?;
        out.push(EventBatches::new(&spec.name, vec![batch]));
    }
    Ok(out)
}

/// The shortest retention that keeps every window rebuildable from the stream: the
/// longest window plus the largest late tolerance.
pub fn minimum_retention(definitions: &Definitions) -> Duration {
    let window = definitions.features().iter().map(|f| f.window).max().unwrap_or_default();
    let tolerance = definitions.streams().iter().map(|s| s.late_tolerance).max().unwrap_or_default();
    window.saturating_add(tolerance)
}

/// Copies what `stream` holds after the archive's end into the archive (one file per
/// stream per run); then, with `retention`, trims from the stream the archived entries
/// that arrived longer than `retention` ago. Only archived entries are ever trimmed,
/// and one process at a time archives into a directory ([`ArchiveError::Busy`]).
pub fn archive_stream(
    stream: &dyn EventStream,
    archive: &Archive,
    definitions: &Definitions,
    retention: Option<Duration>,
) -> Result<ArchiveReport, ArchiveError> {
    if let Some(retention) = retention {
        let needed = minimum_retention(definitions);
        if retention < needed {
            return Err(ArchiveError::RetentionTooShort { retention, needed });
        }
    }
    std::fs::create_dir_all(&archive.dir).map_err(io_err(&archive.dir))?;
    let lock_path = archive.dir.join(".lock");
    let lock = File::create(&lock_path).map_err(io_err(&lock_path))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(ArchiveError::Busy { dir: archive.dir.clone() }),
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
    }
    let start = archive.through()?;
    let Some(end) = stream.end()? else { return Ok(ArchiveReport { through: start, ..ArchiveReport::default() }) };
    let mut report = ArchiveReport { through: start, ..ArchiveReport::default() };
    let mut after = start;
    loop {
        // Up to a million entries per file.
        let chunk = read_through(stream, after, end, 1 << 20)?;
        let Some(last) = chunk.last().map(|e| e.position) else { break };
        after = Some(last);
        let done = archive.append(definitions, &chunk)?;
        report.archived += done.archived;
        report.unusable += done.unusable;
        report.through = done.through;
    }
    if let (Some(retention), Some(through)) = (retention, report.through) {
        let cutoff =
            Timestamp::now().as_micros().saturating_sub(i64::try_from(retention.as_micros()).unwrap_or(i64::MAX));
        if let Some(trim) = archive.last_before(Timestamp::from_micros(cutoff))?.map(|p| p.min(through)) {
            stream.trim(trim)?;
            report.trimmed_through = Some(trim);
        }
    }
    drop(lock);
    Ok(report)
}
