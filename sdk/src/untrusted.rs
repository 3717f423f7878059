//! Reading files that a user hands over (Parquet logs, training data, feature tables):
//! one place for the two rules every reader follows.
//!
//! - A malformed file is an error, never a panic: the Parquet reader asserts on some
//!   malformed metadata (a column chunk at a negative offset, for one) instead of
//!   returning an error, so every call into it goes through [`guarded`].
//! - No lossy conversion: a column read as numbers holds numbers. Arrow's default cast
//!   turns a string that is not a number into a null, which downstream reads as a
//!   missing value: a string column would silently become 100 % missing.
//!   [`f64_column`] refuses it and names the column, the row and the value.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, Float64Array};
use arrow_schema::DataType;

/// Runs a reader call, turning its errors and its panics into a message.
///
/// ```
/// use fresco::untrusted::guarded;
///
/// assert_eq!(guarded(|| Ok::<_, String>(7)), Ok(7));
/// assert_eq!(guarded(|| Err::<u8, _>("bad footer")), Err("bad footer".to_owned()));
/// let panicked = guarded(|| -> Result<u8, String> { panic!("column start should not be negative") });
/// assert_eq!(panicked, Err("malformed file: column start should not be negative".to_owned()));
/// ```
pub fn guarded<T, E: std::fmt::Display>(f: impl FnOnce() -> Result<T, E>) -> Result<T, String> {
    let outer = GUARDING.replace(true);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDING.set(outer);
    match caught {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown failure".into());
            Err(format!("malformed file: {what}"))
        }
    }
}

thread_local! {
    static GUARDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is inside [`guarded`]: a panic hook can stay quiet about a
/// panic that `guarded` turns into an error (the `fresco` command's hook does).
///
/// ```
/// let default = std::panic::take_hook();
/// std::panic::set_hook(Box::new(move |info| {
///     if !fresco::untrusted::inside_guard() {
///         default(info)
///     }
/// }));
/// ```
pub fn inside_guard() -> bool {
    GUARDING.get()
}

/// A column that cannot be read as numbers without losing values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ColumnError {
    /// A text column holding a value that is not a number.
    #[error("column `{column}` holds text, and row {row} is {value:?}, not a number")]
    NotANumber {
        /// The column.
        column: String,
        /// The row in the file (0-based).
        row: u64,
        /// The value.
        value: String,
    },
    /// A column of a type that has no numeric reading (dates, binary, lists, ...).
    #[error("column `{column}` is {data_type}; expected numbers")]
    NotNumeric {
        /// The column.
        column: String,
        /// Its Arrow type.
        data_type: String,
    },
}

/// The column as f64, nulls kept as nulls: integers, floats, decimals and booleans
/// (1 / 0) are converted; a text column only when every value is a number written as
/// text. `first_row` is the batch's first row in the file, for the error.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Array, ArrayRef, Int32Array, StringArray};
/// use fresco::untrusted::{ColumnError, f64_column};
///
/// let ints: ArrayRef = Arc::new(Int32Array::from(vec![Some(3), None]));
/// let floats = f64_column(&ints, "orders", 0)?;
/// assert_eq!((floats.value(0), floats.is_null(1)), (3.0, true));
///
/// let text: ArrayRef = Arc::new(StringArray::from(vec!["2.5", "fast"]));
/// let err = f64_column(&text, "speed", 100).unwrap_err();
/// assert_eq!(err, ColumnError::NotANumber { column: "speed".into(), row: 101, value: "fast".into() });
/// # Ok::<(), ColumnError>(())
/// ```
pub fn f64_column(array: &ArrayRef, column: &str, first_row: u64) -> Result<Float64Array, ColumnError> {
    let found = array.data_type();
    let numeric = found.is_numeric() || matches!(found, DataType::Boolean | DataType::Null);
    let text = matches!(found, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    if !numeric && !text {
        return Err(ColumnError::NotNumeric { column: column.into(), data_type: found.to_string() });
    }
    if text {
        let strings = arrow_cast::cast(array, &DataType::Utf8).map_err(|_| not_numeric(column, found))?;
        let bad = strings.as_string::<i32>().iter().enumerate().find_map(|(r, v)| {
            let v = v?;
            v.trim().parse::<f64>().is_err().then(|| (r, v.to_owned()))
        });
        if let Some((r, value)) = bad {
            let row = first_row.saturating_add(u64::try_from(r).unwrap_or(u64::MAX));
            return Err(ColumnError::NotANumber { column: column.into(), row, value });
        }
    }
    let cast = arrow_cast::cast(array, &DataType::Float64).map_err(|_| not_numeric(column, found))?;
    cast.as_primitive_opt::<arrow_array::types::Float64Type>().cloned().ok_or_else(|| not_numeric(column, found))
}

fn not_numeric(column: &str, found: &DataType) -> ColumnError {
    ColumnError::NotNumeric { column: column.into(), data_type: found.to_string() }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use arrow_array::{BooleanArray, Date32Array, StringArray};

    use super::*;

    #[test]
    fn text_of_numbers_reads_and_other_text_is_named() {
        let numbers: ArrayRef = Arc::new(StringArray::from(vec![Some(" 1.5"), None, Some("-2")]));
        let got = f64_column(&numbers, "x", 0).unwrap();
        assert_eq!((got.value(0), got.is_null(1), got.value(2)), (1.5, true, -2.0));
        let words: ArrayRef = Arc::new(StringArray::from(vec![None, Some("3"), Some("n/a")]));
        assert!(matches!(f64_column(&words, "x", 10), Err(ColumnError::NotANumber { row: 12, .. })));
    }

    #[test]
    fn booleans_read_as_one_and_zero_and_dates_are_refused() {
        let flags: ArrayRef = Arc::new(BooleanArray::from(vec![true, false]));
        assert_eq!(f64_column(&flags, "b", 0).unwrap().values().to_vec(), [1.0, 0.0]);
        let dates: ArrayRef = Arc::new(Date32Array::from(vec![1]));
        let err = f64_column(&dates, "d", 0).unwrap_err();
        assert_eq!(err.to_string(), "column `d` is Date32; expected numbers");
    }
}
