//! Bulk loading of feature rows from Apache Parquet into the embedded store.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::ProjectionMask;
use redb::Durability;

use super::{EmbeddedStore, StoreError, Timestamp};
use crate::untrusted::{guarded, open_parquet};
use crate::{Value, ValueType};

/// Column names for [`EmbeddedStore::materialize_parquet`].
///
/// ```
/// let options = fresco::MaterializeOptions::default().timestamp_column("ts");
/// assert_eq!(options.timestamp_column, "ts");
/// assert_eq!(options.entity_column, None); // the view's entity name
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterializeOptions {
    /// The entity key column; the view's entity name when `None`.
    pub entity_column: Option<String>,
    /// The event-time column (a Parquet timestamp of any unit, or int64 microseconds).
    pub timestamp_column: String,
    /// Rows per read batch and per write transaction.
    pub batch_rows: usize,
}

impl Default for MaterializeOptions {
    fn default() -> Self {
        MaterializeOptions { entity_column: None, timestamp_column: "event_timestamp".into(), batch_rows: 65_536 }
    }
}

impl MaterializeOptions {
    /// Sets the entity key column.
    pub fn entity_column(mut self, name: impl Into<String>) -> Self {
        self.entity_column = Some(name.into());
        self
    }

    /// Sets the event-time column.
    pub fn timestamp_column(mut self, name: impl Into<String>) -> Self {
        self.timestamp_column = name.into();
        self
    }
}

/// Progress of a bulk load, reported after each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaterializeProgress {
    /// Rows read so far.
    pub rows_done: u64,
    /// Rows in the file.
    pub rows_total: u64,
}

/// What a bulk load did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaterializeReport {
    /// Rows read from the file.
    pub rows_read: u64,
    /// Rows stored (the others were older than the stored row for the same entity).
    pub rows_stored: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl EmbeddedStore {
    /// Loads the rows of a Parquet file into `view`: one row per entity and event time,
    /// with a column per feature of the view (by name; extra columns are ignored). The
    /// latest event per entity wins. Durable when it returns.
    ///
    /// `progress` is called after every batch (drive a progress bar with it).
    ///
    /// ```no_run
    /// use fresco::{EmbeddedStore, MaterializeOptions};
    ///
    /// let store = EmbeddedStore::open("features.redb")?;
    /// let report = store.materialize_parquet(
    ///     "restaurants",
    ///     "restaurants.parquet",
    ///     &MaterializeOptions::default(),
    ///     |p| eprintln!("{} / {} rows", p.rows_done, p.rows_total),
    /// )?;
    /// println!("stored {} rows", report.rows_stored);
    /// # Ok::<(), fresco::StoreError>(())
    /// ```
    pub fn materialize_parquet(
        &self,
        view: &str,
        path: impl AsRef<Path>,
        options: &MaterializeOptions,
        mut progress: impl FnMut(MaterializeProgress),
    ) -> Result<MaterializeReport, StoreError> {
        let started = Instant::now();
        let path = path.as_ref();
        let source = |reason: String| StoreError::Source { path: path.display().to_string(), reason };
        let def = super::FeatureStore::view(self, view)?;
        let entity_column = options.entity_column.clone().unwrap_or_else(|| def.entity.clone());

        let file = File::open(path).map_err(|e| source(e.to_string()))?;
        let builder = open_parquet(file).map_err(source)?;
        let rows_total = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        let schema = builder.parquet_schema();
        let mut wanted: Vec<&str> = vec![entity_column.as_str(), options.timestamp_column.as_str()];
        wanted.extend(def.features.iter().map(|f| f.name.as_str()));
        let mut leaves = Vec::with_capacity(wanted.len());
        for name in &wanted {
            let leaf = (0..schema.num_columns())
                .find(|&i| schema.column(i).path().parts() == [name.to_string()])
                .ok_or_else(|| source(format!("no column `{name}` (needed by feature view `{view}`)")))?;
            leaves.push(leaf);
        }
        let mask = ProjectionMask::leaves(schema, leaves);
        let batch_rows = options.batch_rows.max(1);
        let mut reader =
            guarded(|| builder.with_projection(mask).with_batch_size(batch_rows).build()).map_err(source)?;

        let mut report = MaterializeReport { rows_read: 0, rows_stored: 0, elapsed: Duration::ZERO };
        while let Some(batch) = guarded(|| reader.next().transpose()).map_err(source)? {
            let column =
                |name: &str| batch.column_by_name(name).cloned().ok_or_else(|| source(format!("no column `{name}`")));
            let keys = entity_keys(&column(&entity_column)?, &entity_column).map_err(source)?;
            let times = timestamps(&column(&options.timestamp_column)?, &options.timestamp_column).map_err(source)?;
            let mut columns = Vec::with_capacity(def.features.len());
            for spec in &def.features {
                columns.push(feature_values(&column(&spec.name)?, &spec.name, spec.ty).map_err(source)?);
            }
            let n = batch.num_rows();
            let rows = (0..n).filter_map(|i| {
                let key = keys[i].as_deref()?;
                let values = columns.iter_mut().map(|c| std::mem::take(&mut c[i])).collect();
                Some((key, times[i], values))
            });
            report.rows_stored += self.write_rows(view, rows, Durability::None)? as u64;
            report.rows_read += n as u64;
            progress(MaterializeProgress { rows_done: report.rows_read, rows_total });
        }
        self.sync()?;
        report.elapsed = started.elapsed();
        Ok(report)
    }
}

pub(crate) fn cast(array: &ArrayRef, to: &DataType, name: &str) -> Result<ArrayRef, String> {
    arrow_cast::cast(array, to)
        .map_err(|e| format!("column `{name}` ({}) cannot be read as {to}: {e}", array.data_type()))
}

pub(crate) fn entity_keys(array: &ArrayRef, name: &str) -> Result<Vec<Option<String>>, String> {
    match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {}
        t if t.is_integer() => {}
        t => {
            return Err(format!("entity column `{name}` is {t}; expected a string or integer column"));
        }
    }
    let strings = cast(array, &DataType::Utf8, name)?;
    Ok(strings.as_string::<i32>().iter().map(|s| s.map(str::to_owned)).collect())
}

pub(crate) fn timestamps(array: &ArrayRef, name: &str) -> Result<Vec<Timestamp>, String> {
    let micros = match array.data_type() {
        DataType::Timestamp(..) | DataType::Int64 => {
            cast(array, &DataType::Timestamp(TimeUnit::Microsecond, None), name)?
        }
        t => {
            return Err(format!("event-time column `{name}` is {t}; expected a timestamp or int64 microseconds"));
        }
    };
    let micros = micros.as_primitive::<TimestampMicrosecondType>();
    if micros.null_count() > 0 {
        return Err(format!("event-time column `{name}` has null values"));
    }
    Ok(micros.values().iter().map(|&t| Timestamp::from_micros(t)).collect())
}

fn feature_values(array: &ArrayRef, name: &str, ty: ValueType) -> Result<Vec<Value>, String> {
    let found = array.data_type();
    let fits = match ty {
        ValueType::F64 => found.is_floating() || found.is_integer() || *found == DataType::Null,
        ValueType::I64 => found.is_integer() || *found == DataType::Null,
        ValueType::Bool => matches!(found, DataType::Boolean | DataType::Null),
        ValueType::Str => {
            matches!(
                found,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) | DataType::Null
            )
        }
    };
    if !fits {
        return Err(format!("column `{name}` is {found}, which does not fit feature type {ty}"));
    }
    Ok(match ty {
        ValueType::F64 => {
            let a = cast(array, &DataType::Float64, name)?;
            a.as_primitive::<Float64Type>().iter().map(|v| v.map_or(Value::Null, Value::F64)).collect()
        }
        ValueType::I64 => {
            let a = cast(array, &DataType::Int64, name)?;
            a.as_primitive::<Int64Type>().iter().map(|v| v.map_or(Value::Null, Value::I64)).collect()
        }
        ValueType::Bool => {
            let a = cast(array, &DataType::Boolean, name)?;
            a.as_boolean().iter().map(|v| v.map_or(Value::Null, Value::Bool)).collect()
        }
        ValueType::Str => {
            let a = cast(array, &DataType::Utf8, name)?;
            a.as_string::<i32>().iter().map(|v| v.map_or(Value::Null, |s| Value::Str(s.to_owned()))).collect()
        }
    })
}

impl EmbeddedStore {
    /// A view definition read off a Parquet file's schema: every column but the entity
    /// and event-time columns is a feature (floats → f64, integers → i64, booleans,
    /// strings). No time to live.
    ///
    /// ```no_run
    /// let view = fresco::EmbeddedStore::infer_view("users.parquet", "users", "user_id", "event_timestamp")?;
    /// println!("{} features", view.features.len());
    /// # Ok::<(), fresco::StoreError>(())
    /// ```
    pub fn infer_view(
        path: impl AsRef<Path>,
        view: &str,
        entity_column: &str,
        timestamp_column: &str,
    ) -> Result<super::FeatureView, StoreError> {
        let path = path.as_ref();
        let source = |reason: String| StoreError::Source { path: path.display().to_string(), reason };
        let file = File::open(path).map_err(|e| source(e.to_string()))?;
        let builder = open_parquet(file).map_err(source)?;
        let schema = builder.schema();
        for needed in [entity_column, timestamp_column] {
            if schema.field_with_name(needed).is_err() {
                return Err(source(format!("no column `{needed}`")));
            }
        }
        let mut def = super::FeatureView::new(view, entity_column);
        for field in schema.fields() {
            let name = field.name();
            if name == entity_column || name == timestamp_column {
                continue;
            }
            let t = field.data_type();
            let ty = if t.is_floating() {
                ValueType::F64
            } else if t.is_integer() {
                ValueType::I64
            } else if *t == DataType::Boolean {
                ValueType::Bool
            } else if matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
                ValueType::Str
            } else {
                return Err(source(format!("column `{name}` is {t}, which no feature type holds")));
            };
            def = def.feature(name.clone(), ty);
        }
        Ok(def)
    }
}
