//! Arrow columns to model rows.

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use pyo3::PyErr;

use crate::errors::InputError;

/// The batch's columns named `names`, as row-major `f64` (nulls as NaN, the missing
/// value the models' policies act on).
pub fn rows_of(batch: &RecordBatch, names: &[&str], model: &str) -> Result<Vec<f64>, PyErr> {
    let n_rows = batch.num_rows();
    let width = names.len();
    let cells = n_rows
        .checked_mul(width)
        .ok_or_else(|| InputError::new_err(format!("{n_rows} rows × {width} inputs do not fit in memory")))?;
    let mut rows = vec![f64::NAN; cells];
    for (c, name) in names.iter().enumerate() {
        let column = batch.column_by_name(name).ok_or_else(|| {
            let have: Vec<String> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
            InputError::new_err(format!(
                "model `{model}` reads input `{name}`, which the batch lacks (its columns: {})",
                have.join(", ")
            ))
        })?;
        let numeric =
            column.data_type().is_numeric() || matches!(column.data_type(), DataType::Boolean | DataType::Null);
        if !numeric {
            return Err(InputError::new_err(format!(
                "input `{name}` of model `{model}` is {}; expected numbers",
                column.data_type()
            )));
        }
        let values = arrow_cast::cast(column, &DataType::Float64)
            .map_err(|e| InputError::new_err(format!("input `{name}` cannot be read as Float64: {e}")))?;
        let values = values.as_primitive::<Float64Type>();
        for (r, value) in values.iter().enumerate() {
            if let Some(v) = value {
                rows[r * width + c] = v;
            }
        }
    }
    Ok(rows)
}
