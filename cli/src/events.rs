//! `fresco events`: the shared event stream of windowed aggregates.

use std::path::PathBuf;
use std::time::Instant;

use clap::Subcommand;
use fresco::aggregates::{Definitions, parse_duration};
use fresco::events::EventStream;
use fresco::events::archive::{Archive, archive_stream, minimum_retention};
use fresco_redis::RedisStream;

use crate::CliError;

/// Where the stream is: `--redis URL --stream-key KEY`.
#[derive(Debug, clap::Args)]
pub struct StreamArgs {
    /// The Redis server (`redis://host:port`).
    #[arg(long)]
    pub redis: String,
    /// The stream's key.
    #[arg(long, default_value = "fresco:events")]
    pub stream_key: String,
}

impl StreamArgs {
    pub fn open(&self) -> Result<RedisStream, CliError> {
        Ok(RedisStream::open(&self.redis, &self.stream_key)?)
    }
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Copy what the stream holds past the archive's end into the archive (Parquet, one
    /// folder per stream, the event-log format `fresco backfill` reads); with --trim,
    /// then remove from the stream the archived entries older than the retention.
    /// One archiver per directory at a time.
    Archive {
        #[command(flatten)]
        stream: StreamArgs,
        /// The stream and feature definitions (TOML).
        #[arg(long)]
        definitions: PathBuf,
        /// The archive directory.
        #[arg(long)]
        to: PathBuf,
        /// Trim the stream after archiving.
        #[arg(long)]
        trim: bool,
        /// What the stream keeps when trimmed (e.g. `2h`); at least, and by default, the
        /// longest window plus the largest late tolerance.
        #[arg(long, value_parser = parse_duration)]
        retention: Option<std::time::Duration>,
    },
    /// The stream's length and last position.
    Status {
        #[command(flatten)]
        stream: StreamArgs,
    },
}

pub fn run(action: Action) -> Result<(), CliError> {
    match action {
        Action::Archive { stream, definitions, to, trim, retention } => {
            let started = Instant::now();
            let defs = Definitions::from_toml_file(&definitions)?;
            let stream = stream.open()?;
            let retention = trim.then(|| retention.unwrap_or_else(|| minimum_retention(&defs)));
            let report = archive_stream(&stream, &Archive::open(&to), &defs, retention)?;
            let show = |p: Option<fresco::events::Position>| p.map_or_else(|| "nothing".to_owned(), |p| p.to_string());
            println!(
                "{}: {} entries archived ({} unusable, left out), archive through {}; stream trimmed through {} in {:.2?}",
                to.display(),
                report.archived,
                report.unusable,
                show(report.through),
                show(report.trimmed_through),
                started.elapsed()
            );
            Ok(())
        }
        Action::Status { stream } => {
            let stream = stream.open()?;
            let end = stream.end()?.map_or_else(|| "empty".to_owned(), |p| p.to_string());
            println!("{}: {} entries, last {end}", stream.name(), stream.len()?);
            Ok(())
        }
    }
}
