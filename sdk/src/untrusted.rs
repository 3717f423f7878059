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
//! - No allocation the file's own numbers ask for beyond what it holds: the Parquet
//!   reader sizes a dictionary by the count its page header declares, so a file of a
//!   kilobyte could make it fill 15 GB. [`open_parquet`] checks every dictionary page
//!   against its bytes before any is decoded.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, Float64Array};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::basic::Type as PhysicalType;
use parquet::column::page::{Page, PageReader};
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::ChunkReader;
use parquet::file::serialized_reader::SerializedPageReader;

/// Opens a user's Parquet file for reading in record batches, inside [`guarded`]: the
/// footer is read, and every dictionary page is checked to hold the values its header
/// declares (each value takes at least its physical width: 4 bytes for INT32, a
/// length prefix for BYTE_ARRAY, ...), so decoding allocates no more than the file
/// holds. A page that declares more is an error naming the column.
///
/// ```
/// use fresco::untrusted::open_parquet;
///
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("x.parquet"), b"PAR1, then not a Parquet file")?;
/// let err = open_parquet(std::fs::File::open(dir.path().join("x.parquet"))?).unwrap_err();
/// assert!(err.contains("Corrupt footer"), "{err}");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn open_parquet<R: ChunkReader + 'static>(reader: R) -> Result<ParquetRecordBatchReaderBuilder<R>, String> {
    guarded(|| {
        let metadata = ArrowReaderMetadata::load(&reader, ArrowReaderOptions::default())?;
        let reader = Arc::new(reader);
        check_dictionary_pages(&reader, metadata.metadata())?;
        let reader = Arc::try_unwrap(reader)
            .map_err(|_| ParquetError::General("the file is still held by a page reader".into()))?;
        Ok::<_, ParquetError>(ParquetRecordBatchReaderBuilder::new_with_metadata(reader, metadata))
    })
}

/// Reads every page header (skipping data pages without decompressing them) and
/// refuses a dictionary page whose declared value count its bytes cannot hold.
fn check_dictionary_pages<R: ChunkReader + 'static>(
    reader: &Arc<R>,
    metadata: &ParquetMetaData,
) -> Result<(), ParquetError> {
    for row_group in metadata.row_groups() {
        let rows = usize::try_from(row_group.num_rows()).unwrap_or(0);
        for column in row_group.columns() {
            let mut pages = SerializedPageReader::new(reader.clone(), column, rows, None)?;
            while let Some(page) = pages.peek_next_page()? {
                if !page.is_dict {
                    pages.skip_next_page()?;
                    continue;
                }
                let Some(Page::DictionaryPage { buf, num_values, .. }) = pages.get_next_page()? else {
                    return Err(ParquetError::General("a dictionary page header without its page".into()));
                };
                // Bits per value at least: booleans are bit-packed.
                let bits_per_value: u64 = match column.column_type() {
                    PhysicalType::BOOLEAN => 1,
                    PhysicalType::INT32 | PhysicalType::FLOAT | PhysicalType::BYTE_ARRAY => 32,
                    PhysicalType::INT64 | PhysicalType::DOUBLE => 64,
                    PhysicalType::INT96 => 96,
                    PhysicalType::FIXED_LEN_BYTE_ARRAY => {
                        8 * u64::try_from(column.column_descr().type_length()).unwrap_or(0).max(1)
                    }
                };
                let needed = u64::from(num_values).saturating_mul(bits_per_value);
                let held = u64::try_from(buf.len()).unwrap_or(u64::MAX).saturating_mul(8);
                if needed > held {
                    return Err(ParquetError::General(format!(
                        "column `{}`: a dictionary page declares {num_values} values in {} bytes",
                        column.column_path().string(),
                        buf.len()
                    )));
                }
            }
        }
    }
    Ok(())
}

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

    /// A 942-byte file the `parquet_columns` fuzz target found: its dictionary page
    /// declares 1.9 billion doubles, which the reader allocated (15.4 GB) before
    /// noticing the page held a few bytes.
    #[test]
    fn a_dictionary_page_that_declares_more_values_than_it_holds_is_refused() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/hostile/dictionary_bomb.parquet");
        let err = open_parquet(std::fs::File::open(path).unwrap()).unwrap_err();
        assert!(err.contains("column `distance_km`: a dictionary page declares"), "{err}");
        // A sound file with dictionary pages opens and reads.
        let file = tempfile::tempfile().unwrap();
        let values: ArrayRef = Arc::new(Float64Array::from(vec![1.5, 1.5, 2.0, 1.5]));
        let batch = arrow_array::RecordBatch::try_from_iter([("x", values)]).unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(file.try_clone().unwrap(), batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let mut reader = open_parquet(file).unwrap().build().unwrap();
        assert_eq!(reader.next().unwrap().unwrap().num_rows(), 4);
    }

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
