//! `fresco compile`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fresco_abi::IntervalSpec;
use fresco_compiler::{Compiler, Format};
use fresco_runtime::{Engine, Target};
use indicatif::ProgressBar;

use crate::{CliError, progress_bar, read_file};

/// Models with fewer trees compile too fast for a progress bar to help.
const PROGRESS_MIN_TREES: usize = 500;

/// What goes into the metadata besides the trees.
pub struct Extras<'a> {
    /// A calibrated interval (JSON).
    pub interval: Option<&'a Path>,
    /// Training data to profile (Parquet).
    pub train_data: Option<&'a Path>,
    /// Quantile bins per numeric column.
    pub bins: usize,
    /// Also precompile for this target (`native`, `pulley` or a triple).
    pub precompile: Option<&'a str>,
}

pub fn run(
    models: &[PathBuf],
    output: &Path,
    name: Option<String>,
    version: &str,
    format: Option<Format>,
    extras: Extras<'_>,
) -> Result<(), CliError> {
    let started = Instant::now();
    let name = name.unwrap_or_else(|| {
        models[0].file_stem().map_or_else(|| "model".to_owned(), |s| s.to_string_lossy().into_owned())
    });
    let mut compiler = Compiler::new(name, version);
    for model in models {
        compiler = compiler.add_file(model, format)?;
    }
    if let Some(path) = extras.interval {
        compiler = compiler.interval(read_interval(path)?);
    }
    if let Some(path) = extras.train_data {
        let rows = read_training_rows(&compiler.metadata()?, path)?;
        let n_rows = rows.len() / compiler.metadata()?.inputs.len().max(1);
        compiler = compiler.training_data(&rows, extras.bins)?;
        eprintln!("profiled {n_rows} training rows of {}", path.display());
    }
    let trees: usize = compiler.ensembles().map(|e| e.trees.len()).sum();
    let bar = if trees >= PROGRESS_MIN_TREES {
        let bar = progress_bar(trees as u64, "{spinner} laying out trees {bar:40} {pos}/{len} ({elapsed})");
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    } else {
        ProgressBar::hidden()
    };
    let wasm = compiler.compile_with_progress(|p| {
        if p.trees_done % 64 == 0 || p.trees_done == p.trees_total {
            bar.set_position(p.trees_done as u64);
        }
    })?;
    bar.finish_and_clear();
    write_atomically(output, &wasm)?;
    let meta = compiler.metadata()?;
    let nodes: usize = compiler.ensembles().map(|e| e.n_nodes()).sum();
    eprintln!(
        "compiled {} ({} trees, {nodes} nodes, {} inputs → {}) into {} ({} bytes) in {:.2?}",
        meta.name,
        trees,
        meta.inputs.len(),
        meta.outputs.join(", "),
        output.display(),
        wasm.len(),
        started.elapsed()
    );
    if let Some(target) = extras.precompile {
        let started = Instant::now();
        let target: Target = target.parse()?;
        let engine = Engine::builder().target(target.clone()).build()?;
        let artifact = engine.precompile(&wasm)?;
        let path = output.with_extension(format!("{}.cwasm", target.triple()));
        write_atomically(&path, &artifact)?;
        eprintln!(
            "precompiled for {target} into {} ({} bytes) in {:.2?}",
            path.display(),
            artifact.len(),
            started.elapsed()
        );
    }
    Ok(())
}

/// The model's inputs from a Parquet file, row-major, nulls as NaN.
fn read_training_rows(meta: &fresco_abi::ModelMetadata, path: &Path) -> Result<Vec<f64>, CliError> {
    let columns: Vec<&str> = meta.inputs.iter().map(|i| i.name.as_str()).collect();
    let mut rows = Vec::new();
    crate::intervals::for_each_batch(path, &meta.name, &columns, |arrays, _| {
        let n = arrays.first().map_or(0, |a| a.len());
        rows.reserve(n.saturating_mul(arrays.len()));
        for r in 0..n {
            rows.extend(arrays.iter().map(|a| crate::intervals::value(a, r)));
        }
        Ok(())
    })?;
    if rows.is_empty() {
        return Err(CliError::NoRows { path: path.display().to_string() });
    }
    Ok(rows)
}

fn read_interval(path: &Path) -> Result<IntervalSpec, CliError> {
    let text = read_file(path)?;
    serde_json::from_slice(&text).map_err(|source| CliError::Json { path: path.display().to_string(), source })
}

/// Writes to a temporary file beside `path`, then renames it into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let io = |source| CliError::Io { path: path.display().to_string(), source };
    let tmp = path.with_extension("wasm.partial");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
