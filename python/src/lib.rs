//! `fresco._native`: the extension module behind the `fresco` Python package.
//!
//! Arrow crosses the boundary through the Arrow C data interface (`arrow-pyarrow`), so
//! scoring, marking and backfilling run over whole batches with no per-row Python.
//! The Python layer (`python/fresco/__init__.py`) turns numpy arrays, tables and data
//! frames into batches and back.

use pyo3::prelude::*;

mod aggregates;
mod convert;
mod dataset;
mod errors;
mod holdout;
mod model;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<model::Model>()?;
    m.add_function(wrap_pyfunction!(model::compile, m)?)?;
    m.add_class::<holdout::Holdout>()?;
    m.add_function(wrap_pyfunction!(holdout::holdout_bucket, m)?)?;
    m.add_class::<aggregates::Definitions>()?;
    m.add_class::<aggregates::LateMarker>()?;
    m.add_function(wrap_pyfunction!(aggregates::backfill, m)?)?;
    m.add_function(wrap_pyfunction!(dataset::build_training_set, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
