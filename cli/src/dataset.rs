//! `fresco dataset`: build a training set from the prediction and outcome logs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fresco::Timestamp;
use fresco::dataset::{DatasetSpec, TreatmentPolicy, build_training_set};

use crate::{CliError, progress_bar};

/// Where a command reads a fleet's logs from: log roots and object-store prefixes.
#[derive(Debug, clap::Args)]
pub struct LogSources {
    /// A prediction log's root directory, or an object-store prefix the logs are
    /// uploaded to (`s3://bucket/logs`, `gs://...`, `az://...`, `file:///dir`; credentials
    /// and endpoint from the environment, e.g. AWS_ENDPOINT_URL). Repeatable: one per
    /// replica, or one prefix for the whole fleet.
    #[arg(long = "logs", required = true, value_name = "ROOT|URL")]
    sources: Vec<String>,
    /// Keep the local copy of object-store logs here (refreshed, not fetched again:
    /// published files never change). Default: a temporary directory.
    #[arg(long, value_name = "DIR")]
    mirror: Option<PathBuf>,
}

/// Log roots on this machine, object-store prefixes mirrored first; the temporary
/// directory of mirrors, if any, lives as long as the roots are read.
pub struct Roots {
    pub roots: Vec<PathBuf>,
    /// The sources as given (URLs, not their mirrors), for messages.
    pub sources: Vec<String>,
    _mirror: Option<tempfile::TempDir>,
}

impl std::ops::Deref for Roots {
    type Target = [PathBuf];
    fn deref(&self) -> &[PathBuf] {
        &self.roots
    }
}

impl LogSources {
    pub fn roots(&self) -> Result<Roots, CliError> {
        if !self.sources.iter().any(|s| fresco::bucket::is_url(s)) {
            let roots = self.sources.iter().map(PathBuf::from).collect();
            return Ok(Roots { roots, sources: self.sources.clone(), _mirror: None });
        }
        let (dir, temporary) = match &self.mirror {
            Some(dir) => (dir.clone(), None),
            None => {
                let temporary =
                    tempfile::tempdir().map_err(|e| CliError::Io { path: "temporary mirror".into(), source: e })?;
                (temporary.path().to_path_buf(), Some(temporary))
            }
        };
        let bar = progress_bar(0, "{spinner} fetching logs from object storage");
        let roots = fresco::bucket::local_roots(&self.sources, &dir)?;
        bar.finish_and_clear();
        Ok(Roots { roots, sources: self.sources.clone(), _mirror: temporary })
    }
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    logs: &[PathBuf],
    model: &str,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    label_window_days: u64,
    policy: TreatmentPolicy,
    max_outcomes_in_memory: usize,
    out: &Path,
) -> Result<(), CliError> {
    let mut spec = DatasetSpec::over(logs, model, policy)
        .label_window(Duration::from_secs(label_window_days.saturating_mul(86_400)))
        .max_outcomes_in_memory(max_outcomes_in_memory);
    if let Some(from) = from {
        spec = spec.from(from);
    }
    if let Some(to) = to {
        spec = spec.to(to);
    }
    let bar = progress_bar(0, "{spinner} {bar:40} {pos}/{len} files ({eta})");
    let report = build_training_set(&spec, out, |p| {
        bar.set_length(p.files_total);
        bar.set_position(p.files_done);
    })?;
    bar.finish_and_clear();
    println!(
        "model {model}: {} predictions in range, {} with an outcome in the label window",
        report.predictions, report.labeled
    );
    for (p, rows) in &report.per_policy {
        let mark = if *p == policy { "  <- written" } else { "" };
        println!("  {:<20} {rows:>10} rows{mark}", p.name());
    }
    println!(
        "wrote {} rows to {} ({} pass{})",
        report.rows_written,
        out.display(),
        report.passes,
        if report.passes == 1 { "" } else { "es" }
    );
    Ok(())
}
