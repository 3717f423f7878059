//! Windowed aggregates: definitions, the late-marking pass, and backfill over batches.

use std::collections::HashMap;

use arrow_array::{RecordBatch, StringArray};
use arrow_pyarrow::PyArrowType;
use fresco::Timestamp;
use fresco::aggregates::{self, EventBatches};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{AggregateError, aggregate_error};

/// What a pickled [`Definitions`] holds: its TOML text and the streams it was
/// restricted to.
type Pickled = (String, Option<Vec<String>>);

/// Streams and windowed features, as `fresco backfill --definitions` reads them (TOML).
/// Pickles as its TOML text (and the streams it was restricted to).
#[pyclass(frozen, module = "fresco._native")]
pub struct Definitions {
    inner: aggregates::Definitions,
    text: String,
    only: Option<Vec<String>>,
}

#[pymethods]
impl Definitions {
    /// Parses and validates definitions from TOML text.
    #[staticmethod]
    fn from_toml(text: &str) -> PyResult<Self> {
        let inner = aggregates::Definitions::from_toml(text).map_err(aggregate_error)?;
        Ok(Definitions { inner, text: text.to_owned(), only: None })
    }

    /// Reads definitions from a TOML file.
    #[staticmethod]
    fn from_file(path: std::path::PathBuf) -> PyResult<Self> {
        let text =
            std::fs::read_to_string(&path).map_err(|e| AggregateError::new_err(format!("{}: {e}", path.display())))?;
        Definitions::from_toml(&text)
    }

    /// Only the named streams and the features that read them.
    fn restricted_to(&self, streams: Vec<String>) -> PyResult<Self> {
        let names: Vec<&str> = streams.iter().map(String::as_str).collect();
        let inner = self.inner.restricted_to(&names).map_err(aggregate_error)?;
        Ok(Definitions { inner, text: self.text.clone(), only: Some(streams) })
    }

    /// Rebuilds pickled definitions.
    #[staticmethod]
    fn _restore(text: &str, only: Option<Vec<String>>) -> PyResult<Self> {
        let all = Definitions::from_toml(text)?;
        match only {
            Some(streams) => all.restricted_to(streams),
            None => Ok(all),
        }
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, Pickled)> {
        let this = slf.get();
        Ok((slf.get_type().getattr("_restore")?, (this.text.clone(), this.only.clone())))
    }

    /// `(name, entity column, late tolerance in µs)` per stream.
    #[getter]
    fn streams(&self) -> Vec<(String, String, u128)> {
        self.inner.streams().iter().map(|s| (s.name.clone(), s.entity.clone(), s.late_tolerance.as_micros())).collect()
    }

    /// Feature names, in declaration order (the order of the backfilled columns).
    #[getter]
    fn features(&self) -> Vec<String> {
        self.inner.features().iter().map(|f| f.name.clone()).collect()
    }
}

/// The late rule over one stream's log in arrival order, batch after batch: marks each
/// event `accepted`, `late` or `future` for a replay split by entity key.
#[pyclass(module = "fresco._native")]
pub struct LateMarker {
    inner: aggregates::LateMarker,
}

#[pymethods]
impl LateMarker {
    /// A marker for `stream`, going on after events whose latest accepted time was
    /// `latest_micros` (None: the start of the log).
    #[new]
    #[pyo3(signature = (definitions, stream, latest_micros = None))]
    fn new(definitions: &Definitions, stream: &str, latest_micros: Option<i64>) -> PyResult<Self> {
        let spec = definitions
            .inner
            .streams()
            .iter()
            .find(|s| s.name == stream)
            .ok_or_else(|| AggregateError::new_err(format!("no stream `{stream}` in the definitions")))?;
        let inner = aggregates::LateMarker::new(spec).resume_after(latest_micros.map(Timestamp::from_micros));
        Ok(LateMarker { inner })
    }

    /// Marks the next events (columns `ts`, optional `arrival`), in order.
    fn mark(&mut self, batch: PyArrowType<RecordBatch>) -> PyResult<PyArrowType<arrow_data::ArrayData>> {
        let marks = self.inner.mark_batch(&batch.0).map_err(AggregateError::new_err)?;
        let names: StringArray = marks.iter().map(|m| Some(m.name())).collect();
        Ok(PyArrowType(arrow_array::Array::into_data(names)))
    }

    /// The latest accepted event time so far, in µs since the epoch.
    #[getter]
    fn latest_micros(&self) -> Option<i64> {
        self.inner.latest().map(|t| t.as_micros())
    }
}

/// Windowed features point-in-time for every row of `table` (batches), from each
/// stream's events (`{stream: [batches]}`). Returns the table's batches with one Float64
/// column per feature, and the report as a dict.
#[pyfunction]
pub fn backfill<'py>(
    py: Python<'py>,
    definitions: &Definitions,
    events: HashMap<String, Vec<PyArrowType<RecordBatch>>>,
    table: Vec<PyArrowType<RecordBatch>>,
) -> PyResult<(Vec<PyArrowType<RecordBatch>>, Bound<'py, PyDict>)> {
    // Declaration order, so that ties in arrival keep a stable order across streams.
    let mut events = events;
    let logs: Vec<EventBatches> = definitions
        .inner
        .streams()
        .iter()
        .filter_map(|s| {
            events.remove(&s.name).map(|b| EventBatches::new(&s.name, b.into_iter().map(|b| b.0).collect()))
        })
        .collect();
    if let Some(unknown) = events.keys().next() {
        return Err(AggregateError::new_err(format!("events given for stream `{unknown}`, which is not declared")));
    }
    let table: Vec<RecordBatch> = table.into_iter().map(|b| b.0).collect();
    let defs = definitions.inner.clone();
    let (out, report) =
        py.detach(move || aggregates::backfill_batches(&defs, &logs, &table)).map_err(aggregate_error)?;
    let dict = PyDict::new(py);
    dict.set_item("rows", report.rows)?;
    dict.set_item("events", report.events)?;
    dict.set_item("accepted", report.accepted)?;
    dict.set_item("late", report.late)?;
    dict.set_item("future", report.future)?;
    Ok((out.into_iter().map(PyArrowType).collect(), dict))
}
