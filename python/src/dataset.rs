//! The training-set builder: logged predictions joined with their outcomes.

use std::path::PathBuf;
use std::time::Duration;

use fresco::Timestamp;
use fresco::dataset::{DatasetSpec, TreatmentPolicy};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::DatasetError;

fn timestamp(text: Option<&str>, what: &str) -> PyResult<Option<Timestamp>> {
    text.map(|t| t.parse::<Timestamp>().map_err(|e| DatasetError::new_err(format!("{what} `{t}`: {e}")))).transpose()
}

/// Builds a training set as `fresco dataset` does and writes it to `out` (Parquet).
/// `logs`: log roots and object-store prefixes (mirrored into `mirror`, or a temporary
/// directory). `start` / `end`: YYYY-MM-DD, RFC 3339 UTC or epoch seconds. Returns the
/// report.
#[pyfunction]
#[pyo3(signature = (logs, model, policy, out, start = None, end = None, label_window_days = 30, max_outcomes_in_memory = 5_000_000, mirror = None))]
#[allow(clippy::too_many_arguments)] // Mirrors the command line's options.
pub fn build_training_set<'py>(
    py: Python<'py>,
    logs: Vec<String>,
    model: &str,
    policy: &str,
    out: PathBuf,
    start: Option<&str>,
    end: Option<&str>,
    label_window_days: u64,
    max_outcomes_in_memory: usize,
    mirror: Option<PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let policy: TreatmentPolicy =
        policy.parse().map_err(|e: fresco::dataset::DatasetError| DatasetError::new_err(e.to_string()))?;
    let window = label_window_days
        .checked_mul(86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| DatasetError::new_err(format!("a label window of {label_window_days} days is too long")))?;
    let temporary = match (&mirror, logs.iter().any(|l| fresco::bucket::is_url(l))) {
        (None, true) => {
            Some(tempfile::tempdir().map_err(|e| DatasetError::new_err(format!("a temporary mirror: {e}")))?)
        }
        _ => None,
    };
    let mirror_dir = mirror.or_else(|| temporary.as_ref().map(|t| t.path().to_path_buf())).unwrap_or_default();
    let roots = py
        .detach(|| fresco::bucket::local_roots(&logs, &mirror_dir))
        .map_err(|e| DatasetError::new_err(e.to_string()))?;
    let mut spec =
        DatasetSpec::over(roots, model, policy).label_window(window).max_outcomes_in_memory(max_outcomes_in_memory);
    if let Some(t) = timestamp(start, "start")? {
        spec = spec.from(t);
    }
    if let Some(t) = timestamp(end, "end")? {
        spec = spec.to(t);
    }
    let report = py
        .detach(|| fresco::dataset::build_training_set(&spec, &out, |_| {}))
        .map_err(|e| DatasetError::new_err(e.to_string()))?;
    let dict = PyDict::new(py);
    dict.set_item("predictions", report.predictions)?;
    dict.set_item("labeled", report.labeled)?;
    dict.set_item("rows_written", report.rows_written)?;
    dict.set_item("passes", report.passes)?;
    let per_policy = PyDict::new(py);
    for (policy, rows) in &report.per_policy {
        per_policy.set_item(policy.name(), rows)?;
    }
    dict.set_item("per_policy", per_policy)?;
    Ok(dict)
}
