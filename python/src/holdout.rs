//! Holdouts: the shared hash contract (murmur3 of `salt:id`, mod 10000).

use arrow_array::cast::AsArray;
use arrow_array::{Array, BooleanArray, make_array};
use arrow_pyarrow::PyArrowType;
use arrow_schema::DataType;
use pyo3::prelude::*;

use crate::errors::{HoldoutError, InputError};

/// A holdout: the entities whose bucket is below round(fraction × 10000).
#[pyclass(frozen, subclass, module = "fresco._native")]
pub struct Holdout {
    inner: fresco::holdout::Holdout,
}

#[pymethods]
impl Holdout {
    #[new]
    fn new(name: &str, salt: &str, fraction: f64) -> PyResult<Self> {
        let inner =
            fresco::holdout::Holdout::new(name, salt, fraction).map_err(|e| HoldoutError::new_err(e.to_string()))?;
        Ok(Holdout { inner })
    }

    /// Pickles as its definition (name, salt, fraction), under its own class.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> (Bound<'py, pyo3::types::PyType>, (String, String, f64)) {
        let h = &slf.get().inner;
        (slf.get_type(), (h.name().to_owned(), h.salt().to_owned(), h.fraction()))
    }

    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    #[getter]
    fn salt(&self) -> &str {
        self.inner.salt()
    }

    #[getter]
    fn fraction(&self) -> f64 {
        self.inner.fraction()
    }

    /// Buckets below this are held out.
    #[getter]
    fn threshold(&self) -> u32 {
        self.inner.threshold()
    }

    /// The entity's bucket in [0, 10000).
    fn bucket(&self, id: &str) -> u32 {
        self.inner.assign(id).bucket
    }

    /// Whether the entity is held out.
    fn contains(&self, id: &str) -> bool {
        self.inner.contains(id)
    }

    /// Whether each id of a string array is held out (nulls stay null).
    fn contains_array(&self, ids: PyArrowType<arrow_data::ArrayData>) -> PyResult<PyArrowType<arrow_data::ArrayData>> {
        let ids = make_array(ids.0);
        let ids = arrow_cast::cast(&ids, &DataType::Utf8).map_err(|e| {
            InputError::new_err(format!("ids of type {} cannot be read as strings: {e}", ids.data_type()))
        })?;
        let out: BooleanArray = ids.as_string::<i32>().iter().map(|id| id.map(|id| self.inner.contains(id))).collect();
        Ok(PyArrowType(out.into_data()))
    }

    fn __repr__(&self) -> String {
        format!("Holdout({:?}, salt={:?}, fraction={})", self.inner.name(), self.inner.salt(), self.inner.fraction())
    }
}

/// The bucket of `id` under `salt`: murmur3_x86_32(`salt:id`, seed 0) mod 10000.
#[pyfunction]
pub fn holdout_bucket(salt: &str, id: &str) -> u32 {
    fresco::holdout::bucket(salt, id)
}
