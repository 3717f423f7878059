//! `fresco backfill`: windowed features point-in-time for every row of a table.

use std::path::{Path, PathBuf};
use std::time::Instant;

use fresco::aggregates::{Definitions, EventLog, backfill};

use crate::{CliError, ROWS_BAR, progress_bar};

/// Parses `STREAM=PATH`.
pub(crate) fn parse_event_log(text: &str) -> Result<EventLog, String> {
    let (stream, path) = text.split_once('=').ok_or_else(|| format!("`{text}` is not STREAM=PATH"))?;
    if stream.is_empty() || path.is_empty() {
        return Err(format!("`{text}` is not STREAM=PATH"));
    }
    Ok(EventLog::new(stream, PathBuf::from(path)))
}

pub fn run(definitions: &Path, events: &[EventLog], table: &Path, out: &Path) -> Result<(), CliError> {
    let started = Instant::now();
    let defs = Definitions::from_toml_file(definitions)?;
    let bar = progress_bar(0, ROWS_BAR);
    let report = backfill(&defs, events, table, out, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
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
