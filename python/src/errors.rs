//! The exceptions Python sees. They are defined in Python (`fresco/_errors.py`), where a
//! class can also subclass the built-in exception users catch (`ValueError`,
//! `FileNotFoundError`); this module raises those very classes.

use pyo3::prelude::*;
use pyo3::types::PyType;

/// A `name` exception from `fresco._errors` carrying `message` (or the import's own
/// error, should the package be broken).
fn raise(name: &str, message: String) -> PyErr {
    Python::attach(|py| {
        let class = py
            .import("fresco._errors")
            .and_then(|m| m.getattr(name))
            .and_then(|c| c.cast_into::<PyType>().map_err(PyErr::from));
        match class {
            Ok(class) => PyErr::from_type(class, message),
            Err(e) => e,
        }
    })
}

macro_rules! exceptions {
    ($($name:ident),* $(,)?) => {$(
        #[doc = concat!("`fresco.", stringify!($name), "`.")]
        pub struct $name;

        impl $name {
            #[doc = concat!("A `", stringify!($name), "` with `message`.")]
            pub fn new_err(message: impl Into<String>) -> PyErr {
                raise(stringify!($name), message.into())
            }
        }
    )*};
}

exceptions!(ModelError, InputError, CompileError, HoldoutError, AggregateError, DatasetError);

/// `ModelError` from a runtime error.
pub fn model_error(e: fresco_runtime::Error) -> PyErr {
    ModelError::new_err(e.to_string())
}

/// `AggregateError` from the SDK's.
pub fn aggregate_error(e: fresco::aggregates::AggregateError) -> PyErr {
    AggregateError::new_err(e.to_string())
}
