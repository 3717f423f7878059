//! `fresco backfill`: windowed features point-in-time for every row of a table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use fresco::aggregates::{BackfillReport, Definitions, EventLog, backfill, backfill_events};
use fresco::events::archive::{Archive, entry_batches};
use fresco::events::{EventStream, Position, read_through};

use crate::events::StreamArgs;
use crate::{CliError, ROWS_BAR, progress_bar};

/// Parses `STREAM=PATH`.
pub(crate) fn parse_event_log(text: &str) -> Result<EventLog, String> {
    let (stream, path) = text.split_once('=').ok_or_else(|| format!("`{text}` is not STREAM=PATH"))?;
    if stream.is_empty() || path.is_empty() {
        return Err(format!("`{text}` is not STREAM=PATH"));
    }
    Ok(EventLog::new(stream, PathBuf::from(path)))
}

/// Where the events come from: per-stream Parquet logs, or the shared event stream
/// (its archive, then the stream itself from where the archive ends).
pub struct Source<'a> {
    pub logs: &'a [EventLog],
    pub archive: Option<&'a Path>,
    pub stream: Option<&'a StreamArgs>,
    pub until: Option<Position>,
}

pub fn run(definitions: &Path, source: Source<'_>, table: &Path, out: &Path) -> Result<(), CliError> {
    let started = Instant::now();
    let defs = Definitions::from_toml_file(definitions)?;
    let bar = progress_bar(0, ROWS_BAR);
    let progress = |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let report: BackfillReport = if source.logs.is_empty() {
        let mut entries = BTreeMap::new();
        if let Some(dir) = source.archive {
            for entry in Archive::open(dir).entries_after(None)? {
                entries.insert(entry.position, entry);
            }
        }
        if let Some(args) = source.stream {
            let stream = args.open()?;
            let until = match source.until {
                Some(until) => Some(until),
                None => stream.end()?,
            };
            if let Some(until) = until {
                let after = entries.keys().next_back().copied();
                let read = read_through(&stream, after, until, usize::MAX)?;
                entries.extend(read.into_iter().map(|e| (e.position, e)));
            }
        }
        let entries: Vec<_> = entries.into_values().collect();
        backfill_events(&defs, &entry_batches(&defs, &entries)?, table, out, progress)?
    } else {
        backfill(&defs, source.logs, table, out, progress)?
    };
    bar.finish_and_clear();
    println!(
        "{}: {} rows × {} features ({}) from {} events ({} late, {} dated after arrival, dropped) in {:.2?}",
        out.display(),
        report.rows,
        defs.features().len(),
        defs.features().iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", "),
        report.events,
        report.late,
        report.future,
        started.elapsed()
    );
    Ok(())
}
