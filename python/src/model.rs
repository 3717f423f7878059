//! `Model` (a compiled `.wasm` model scored in wasmtime) and `compile`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, make_array};
use arrow_pyarrow::PyArrowType;
use arrow_schema::{DataType, Field, Schema};
use fresco_abi::ModelMetadata;
use fresco_runtime::Engine;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert::rows_of;
use crate::errors::{CompileError, InputError, ModelError, model_error};

/// Lower and upper bounds, one Float64 array each.
type Bounds = (PyArrowType<arrow_data::ArrayData>, PyArrowType<arrow_data::ArrayData>);

/// One engine per process: it owns the compiled-code settings every model shares.
fn engine() -> PyResult<&'static Engine> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new().map_err(|e| e.to_string())).as_ref().map_err(|e| ModelError::new_err(e.clone()))
}

/// A compiled fresco model (`.wasm`, ABI v1), scored in-process.
#[pyclass(frozen, module = "fresco._native")]
pub struct Model {
    inner: fresco_runtime::Model,
}

impl Model {
    fn label(&self) -> String {
        format!("{}@{}", self.inner.name(), self.inner.version())
    }

    /// Applies the model's missing-value policy to every row, naming the row that fails.
    fn apply_missing(&self, rows: &mut [f64]) -> PyResult<()> {
        let meta = self.inner.metadata();
        let width = meta.inputs.len().max(1);
        for (r, row) in rows.chunks_mut(width).enumerate() {
            meta.apply_missing_policy(row).map_err(|e| InputError::new_err(format!("row {r}: {e}")))?;
        }
        Ok(())
    }

    /// `n_rows` rows given row-major as one Float64 array (nulls are NaN: missing).
    fn flat_rows(&self, values: PyArrowType<arrow_data::ArrayData>, n_rows: usize) -> PyResult<Vec<f64>> {
        let array = make_array(values.0);
        if array.data_type() != &DataType::Float64 {
            return Err(InputError::new_err(format!("rows must be float64, not {}", array.data_type())));
        }
        let width = self.inner.n_inputs();
        if n_rows.checked_mul(width) != Some(array.len()) {
            return Err(InputError::new_err(format!(
                "model `{}` takes {width} inputs per row: {} values are not {n_rows} rows",
                self.label(),
                array.len()
            )));
        }
        Ok(array.as_primitive::<Float64Type>().iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    }

    /// Each row's `(lower, upper)` by the model's interval rule, from the rows after the
    /// missing-value policy.
    fn interval(&self, py: Python<'_>, mut rows: Vec<f64>) -> PyResult<Bounds> {
        let meta = self.inner.metadata();
        let rule = fresco::interval::IntervalRule::for_model(meta)
            .map_err(|e| ModelError::new_err(format!("model `{}`: {e}", self.label())))?
            .ok_or_else(|| ModelError::new_err(format!("model `{}` declares no interval", self.label())))?;
        self.apply_missing(&mut rows)?;
        let model = self.inner.clone();
        let scored = rows.clone();
        let out = py.detach(move || model.predict(&scored)).map_err(model_error)?;
        let (width, k) = (self.inner.n_inputs().max(1), meta.outputs.len().max(1));
        let (mut lower, mut upper) = (Vec::with_capacity(out.len() / k), Vec::with_capacity(out.len() / k));
        for (r, (row, outputs)) in rows.chunks(width).zip(out.chunks(k)).enumerate() {
            let interval = rule.apply(row, outputs).map_err(|e| ModelError::new_err(format!("row {r}: {e}")))?;
            lower.push(interval.low);
            upper.push(interval.high);
        }
        Ok((PyArrowType(Float64Array::from(lower).into_data()), PyArrowType(Float64Array::from(upper).into_data())))
    }

    fn score(&self, py: Python<'_>, mut rows: Vec<f64>) -> PyResult<Vec<f64>> {
        self.apply_missing(&mut rows)?;
        let model = self.inner.clone();
        py.detach(move || model.predict(&rows)).map_err(model_error)
    }
}

#[pymethods]
impl Model {
    /// Loads and validates a model file.
    #[new]
    fn new(path: PathBuf) -> PyResult<Self> {
        Ok(Model { inner: fresco_runtime::Model::from_file(engine()?, &path).map_err(model_error)? })
    }

    /// Loads a model from its bytes.
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Self> {
        Ok(Model { inner: fresco_runtime::Model::from_bytes(engine()?, data).map_err(model_error)? })
    }

    /// The model's name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The model's version.
    #[getter]
    fn version(&self) -> &str {
        self.inner.version()
    }

    /// Input names, in the order of a row.
    #[getter]
    fn inputs(&self) -> Vec<String> {
        self.inner.metadata().inputs.iter().map(|i| i.name.clone()).collect()
    }

    /// Output names, in the order of an output row.
    #[getter]
    fn outputs(&self) -> Vec<String> {
        self.inner.metadata().outputs.clone()
    }

    /// The metadata document (JSON).
    #[getter]
    fn metadata_json(&self) -> String {
        self.inner.metadata().to_json()
    }

    /// SHA-256 of the module's bytes, hex.
    #[getter]
    fn sha256(&self) -> String {
        self.inner.sha256().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Scores `n_rows` rows given row-major as one Float64 array; returns the outputs
    /// row-major as one Float64 array. Nulls and NaN are missing values.
    fn predict_flat(
        &self,
        py: Python<'_>,
        values: PyArrowType<arrow_data::ArrayData>,
        n_rows: usize,
    ) -> PyResult<PyArrowType<arrow_data::ArrayData>> {
        let rows = self.flat_rows(values, n_rows)?;
        let out = self.score(py, rows)?;
        Ok(PyArrowType(Float64Array::from(out).into_data()))
    }

    /// The calibrated interval of `n_rows` rows given row-major (as `predict_flat`):
    /// `(lower, upper)`, by the artifact's rule (segments included), exactly as a Rust
    /// `Prediction::interval` computes it from the same row.
    fn predict_interval_flat(
        &self,
        py: Python<'_>,
        values: PyArrowType<arrow_data::ArrayData>,
        n_rows: usize,
    ) -> PyResult<Bounds> {
        let rows = self.flat_rows(values, n_rows)?;
        self.interval(py, rows)
    }

    /// [`predict_interval_flat`](Self::predict_interval_flat) of a record batch, its
    /// columns read as [`predict_batch`](Self::predict_batch) reads them.
    fn predict_interval_batch(&self, py: Python<'_>, batch: PyArrowType<RecordBatch>) -> PyResult<Bounds> {
        let names: Vec<&str> = self.inner.metadata().inputs.iter().map(|i| i.name.as_str()).collect();
        let rows = rows_of(&batch.0, &names, &self.label())?;
        self.interval(py, rows)
    }

    /// Scores a record batch: the columns named after the inputs (any numeric type;
    /// others ignored). Returns a batch with one Float64 column per output.
    fn predict_batch(&self, py: Python<'_>, batch: PyArrowType<RecordBatch>) -> PyResult<PyArrowType<RecordBatch>> {
        let meta: &ModelMetadata = self.inner.metadata();
        let names: Vec<&str> = meta.inputs.iter().map(|i| i.name.as_str()).collect();
        let rows = rows_of(&batch.0, &names, &self.label())?;
        let n_rows = batch.0.num_rows();
        let out = self.score(py, rows)?;
        let k = meta.outputs.len();
        let columns: Vec<ArrayRef> = (0..k)
            .map(|j| Arc::new(Float64Array::from_iter_values((0..n_rows).map(|r| out[r * k + j]))) as ArrayRef)
            .collect();
        let schema =
            Schema::new(meta.outputs.iter().map(|o| Field::new(o, DataType::Float64, false)).collect::<Vec<_>>());
        let batch = RecordBatch::try_new(Arc::new(schema), columns).map_err(|e| ModelError::new_err(e.to_string()))?;
        Ok(PyArrowType(batch))
    }

    fn __repr__(&self) -> String {
        format!(
            "Model({}, inputs={}, outputs={:?})",
            self.label(),
            self.inner.n_inputs(),
            self.inner.metadata().outputs
        )
    }
}

/// Compiles LightGBM text / XGBoost JSON model files into one `.wasm` model (bytes).
#[pyfunction]
#[pyo3(signature = (models, name, version = "1", interval_json = None))]
pub fn compile<'py>(
    py: Python<'py>,
    models: Vec<PathBuf>,
    name: &str,
    version: &str,
    interval_json: Option<&str>,
) -> PyResult<Bound<'py, PyBytes>> {
    let err = |e: fresco_compiler::CompileError| CompileError::new_err(e.to_string());
    if models.is_empty() {
        return Err(CompileError::new_err("no model files given"));
    }
    let mut compiler = fresco_compiler::Compiler::new(name, version);
    for model in &models {
        compiler = compiler.add_file(model, None).map_err(err)?;
    }
    if let Some(text) = interval_json {
        let interval = serde_json::from_str(text)
            .map_err(|e| CompileError::new_err(format!("the interval is not valid JSON of an interval: {e}")))?;
        compiler = compiler.interval(interval);
    }
    let wasm = py.detach(|| compiler.compile()).map_err(err)?;
    Ok(PyBytes::new(py, &wasm))
}
