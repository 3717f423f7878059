//! `fresco dataset`: build a training set from the prediction and outcome logs.

use std::path::Path;
use std::time::Duration;

use fresco::Timestamp;
use fresco::dataset::{DatasetSpec, TreatmentPolicy, build_training_set};

use crate::{CliError, progress_bar};

#[allow(clippy::too_many_arguments)]
pub fn run(
    logs: &Path,
    model: &str,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    label_window_days: u64,
    policy: TreatmentPolicy,
    max_outcomes_in_memory: usize,
    out: &Path,
) -> Result<(), CliError> {
    let mut spec = DatasetSpec::new(logs, model, policy)
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
