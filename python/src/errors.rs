//! The exceptions Python sees: one base class, one subclass per kind of failure.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(fresco, FrescoError, PyException, "Base class of every error fresco raises.");
create_exception!(fresco, ModelError, FrescoError, "A model could not be loaded or scored.");
create_exception!(
    fresco,
    InputError,
    FrescoError,
    "Input rows do not fit the model: wrong shape, a missing column, a non-numeric column, or a required input missing."
);
create_exception!(fresco, CompileError, FrescoError, "A LightGBM or XGBoost model could not be compiled.");
create_exception!(fresco, HoldoutError, FrescoError, "A holdout definition was refused.");
create_exception!(
    fresco,
    AggregateError,
    FrescoError,
    "Windowed-aggregate definitions, events or a backfill table were refused."
);
create_exception!(fresco, DatasetError, FrescoError, "A training set could not be built.");

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("FrescoError", py.get_type::<FrescoError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("CompileError", py.get_type::<CompileError>())?;
    m.add("HoldoutError", py.get_type::<HoldoutError>())?;
    m.add("AggregateError", py.get_type::<AggregateError>())?;
    m.add("DatasetError", py.get_type::<DatasetError>())?;
    Ok(())
}

/// `ModelError` from a runtime error.
pub fn model_error(e: fresco_runtime::Error) -> PyErr {
    ModelError::new_err(e.to_string())
}

/// `AggregateError` from the SDK's.
pub fn aggregate_error(e: fresco::aggregates::AggregateError) -> PyErr {
    AggregateError::new_err(e.to_string())
}
