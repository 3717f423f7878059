//! `fresco backfill`: windowed features point-in-time for every row of a table.

use std::path::{Path, PathBuf};
use std::time::Instant;

use fresco::aggregates::{Definitions, EventLog, backfill};
use indicatif::{ProgressBar, ProgressStyle};

use crate::CliError;

/// Parses `STREAM=PATH`.
pub fn parse_event_log(text: &str) -> Result<EventLog, String> {
    let (stream, path) = text.split_once('=').ok_or_else(|| format!("`{text}` is not STREAM=PATH"))?;
    if stream.is_empty() || path.is_empty() {
        return Err(format!("`{text}` is not STREAM=PATH"));
    }
    Ok(EventLog::new(stream, PathBuf::from(path)))
}

pub fn run(definitions: &Path, events: &[EventLog], table: &Path, out: &Path) -> Result<(), CliError> {
    let started = Instant::now();
    let defs = Definitions::from_toml_file(definitions)?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} rows ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
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
