//! Log records as Arrow columns, and Parquet files published atomically.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use fresco_abi::InputType;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::{LogError, LogSchema, OutcomeRecord, PredictionRecord, TreatmentRecord};

/// Rows per Parquet row group (and per Arrow batch while writing).
const ROW_GROUP_ROWS: usize = 65_536;

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn input_type(ty: InputType) -> DataType {
    match ty {
        InputType::F64 | InputType::F32 => DataType::Float64,
        InputType::I64 | InputType::Categorical => DataType::Int64,
        InputType::Bool => DataType::Boolean,
    }
}

/// The Arrow schema of a prediction file of `schema` (docs/design.md §6, less the hive columns).
pub(crate) fn prediction_schema(schema: &LogSchema) -> SchemaRef {
    let mut fields = vec![
        Field::new("prediction_id", DataType::Utf8, false),
        Field::new("ts", ts_type(), false),
        Field::new("model_version", DataType::Utf8, false),
    ];
    fields.extend(schema.entities.iter().map(|e| Field::new(e, DataType::Utf8, true)));
    fields.extend(schema.inputs.iter().map(|(n, t)| Field::new(n, input_type(*t), true)));
    fields.extend(schema.outputs.iter().map(|o| Field::new(o, DataType::Float64, true)));
    fields.extend([
        Field::new("holdout", DataType::Utf8, true),
        Field::new("in_holdout", DataType::Boolean, false),
        Field::new("eligible", DataType::Boolean, false),
        Field::new("flag_variant", DataType::Utf8, true),
        Field::new("latency_us", DataType::Int64, false),
    ]);
    Arc::new(Schema::new(fields))
}

/// The Arrow schema of an outcome file.
pub(crate) fn outcome_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("prediction_id", DataType::Utf8, false),
        Field::new("ts", ts_type(), false),
        Field::new("label", DataType::Float64, true),
    ]))
}

/// The Arrow schema of a treatment file.
pub(crate) fn treatment_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("prediction_id", DataType::Utf8, false),
        Field::new("ts", ts_type(), false),
        Field::new("treatment", DataType::Utf8, false),
    ]))
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut b = StringBuilder::new();
    for v in values {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

fn timestamps(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(values).with_timezone("UTC"))
}

fn floats(values: impl Iterator<Item = f64>) -> ArrayRef {
    let mut b = Float64Builder::new();
    for v in values {
        b.append_option((!v.is_nan()).then_some(v));
    }
    Arc::new(b.finish())
}

fn bools(values: impl Iterator<Item = Option<bool>>) -> ArrayRef {
    let mut b = BooleanBuilder::new();
    for v in values {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

/// Prediction records as one Arrow batch. NaN (missing) inputs and outputs are nulls.
pub(crate) fn prediction_batch(schema: &LogSchema, records: &[PredictionRecord]) -> Result<RecordBatch, LogError> {
    let mut columns: Vec<ArrayRef> = vec![
        strings(records.iter().map(|r| Some(r.prediction_id.as_str()))),
        timestamps(records.iter().map(|r| r.ts.as_micros())),
        strings(records.iter().map(|r| Some(r.model_version.as_str()))),
    ];
    for entity in &schema.entities {
        columns.push(strings(
            records.iter().map(|r| r.entities.iter().find(|(n, _)| n == entity).map(|(_, k)| k.as_str())),
        ));
    }
    for (i, (_, ty)) in schema.inputs.iter().enumerate() {
        let values = records.iter().map(move |r| r.inputs.get(i).copied().unwrap_or(f64::NAN));
        columns.push(match input_type(*ty) {
            DataType::Int64 => {
                let mut b = Int64Builder::new();
                for v in values {
                    b.append_option((!v.is_nan()).then_some(v as i64));
                }
                Arc::new(b.finish())
            }
            DataType::Boolean => bools(values.map(|v| (!v.is_nan()).then_some(v != 0.0))),
            _ => floats(values),
        });
    }
    for i in 0..schema.outputs.len() {
        columns.push(floats(records.iter().map(|r| r.outputs.get(i).copied().unwrap_or(f64::NAN))));
    }
    columns.push(strings(records.iter().map(|r| r.holdout.as_deref())));
    columns.push(bools(records.iter().map(|r| Some(r.in_holdout))));
    columns.push(bools(records.iter().map(|r| Some(r.eligible))));
    columns.push(strings(records.iter().map(|r| r.flag_variant.as_deref())));
    columns.push(Arc::new(arrow_array::Int64Array::from_iter_values(
        records.iter().map(|r| i64::try_from(r.latency_us).unwrap_or(i64::MAX)),
    )));
    RecordBatch::try_new(prediction_schema(schema), columns)
        .map_err(|e| LogError::Schema { model: schema.model.clone(), reason: e.to_string() })
}

/// Outcome records as one Arrow batch.
pub(crate) fn outcome_batch(records: &[OutcomeRecord]) -> Result<RecordBatch, LogError> {
    let columns: Vec<ArrayRef> = vec![
        strings(records.iter().map(|r| Some(r.prediction_id.as_str()))),
        timestamps(records.iter().map(|r| r.ts.as_micros())),
        floats(records.iter().map(|r| r.label)),
    ];
    RecordBatch::try_new(outcome_schema(), columns)
        .map_err(|e| LogError::Schema { model: String::new(), reason: e.to_string() })
}

/// Treatment records as one Arrow batch.
pub(crate) fn treatment_batch(records: &[TreatmentRecord]) -> Result<RecordBatch, LogError> {
    let columns: Vec<ArrayRef> = vec![
        strings(records.iter().map(|r| Some(r.prediction_id.as_str()))),
        timestamps(records.iter().map(|r| r.ts.as_micros())),
        strings(records.iter().map(|r| Some(r.treatment.as_str()))),
    ];
    RecordBatch::try_new(treatment_schema(), columns)
        .map_err(|e| LogError::Schema { model: String::new(), reason: e.to_string() })
}

/// Writes `batches` to `path` atomically: a hidden temporary file in the same
/// directory, fsync, rename, fsync of the directory. Readers never see a partial file;
/// on error the temporary file is removed and nothing is published.
pub(crate) fn publish(
    path: &Path,
    schema: SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch, LogError>>,
) -> Result<(), LogError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| LogError::Io { path: p, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("part.parquet");
    let tmp: PathBuf = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let file = File::create(&tmp).map_err(io(&tmp))?;
        // Dictionaries pay off only for the repetitive string columns; on unique ids and
        // on floats they cost time and then fall back to plain encoding anyway.
        let mut props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_dictionary_enabled(false);
        for field in schema.fields() {
            if field.data_type() == &DataType::Utf8 && field.name() != "prediction_id" {
                props = props.set_column_dictionary_enabled(field.name().as_str().into(), true);
            }
        }
        let props = props.build();
        let parquet_err = |e: parquet::errors::ParquetError| match e {
            // Keep I/O failures (a full disk) typed as I/O.
            parquet::errors::ParquetError::External(inner) => match inner.downcast::<std::io::Error>() {
                Ok(source) => LogError::Io { path: tmp.display().to_string(), source: *source },
                Err(other) => LogError::Parquet { path: tmp.display().to_string(), reason: other.to_string() },
            },
            other => LogError::Parquet { path: tmp.display().to_string(), reason: other.to_string() },
        };
        let mut writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(parquet_err)?;
        for batch in batches {
            writer.write(&batch?).map_err(parquet_err)?;
        }
        let file = writer.into_inner().map_err(parquet_err)?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(io(path))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Splits `records` into batches of at most [`ROW_GROUP_ROWS`].
pub(crate) fn chunks<T>(records: &[T]) -> impl Iterator<Item = &[T]> {
    records.chunks(ROW_GROUP_ROWS)
}
