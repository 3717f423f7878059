//! Log records as Arrow columns, and Parquet files published atomically.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use fresco_abi::InputType;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowColumnWriter, compute_leaves};
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

use super::batch::cell;
use super::{LogError, LogSchema, OutcomeRecord, PredictionBatch, TreatmentRecord};

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

/// One input or output column being built, typed as the schema declares it (outputs
/// are f64).
enum ValueColumn {
    F64(Float64Builder),
    I64(Int64Builder),
    Bool(BooleanBuilder),
}

impl ValueColumn {
    fn new(ty: InputType, rows: usize) -> Self {
        match input_type(ty) {
            DataType::Int64 => ValueColumn::I64(Int64Builder::with_capacity(rows)),
            DataType::Boolean => ValueColumn::Bool(BooleanBuilder::with_capacity(rows)),
            _ => ValueColumn::F64(Float64Builder::with_capacity(rows)),
        }
    }

    /// Appends value `j` of each row of `width` values in `block`, as scored (NaN is
    /// missing: a null). `scratch` is room for gathering an f64 column.
    fn extend(&mut self, block: &[f64], (j, width): (usize, usize), scratch: &mut Vec<f64>) {
        let column = block.chunks_exact(width).filter_map(|row| row.get(j).copied());
        match self {
            ValueColumn::F64(b) => {
                // Gathered first, then copied in one go when nothing is missing (the usual
                // case): a null check per value only where there is a null.
                scratch.clear();
                scratch.extend(column);
                if scratch.iter().any(|v| v.is_nan()) {
                    scratch.iter().for_each(|&v| b.append_option((!v.is_nan()).then_some(v)));
                } else {
                    b.append_slice(scratch);
                }
            }
            ValueColumn::I64(b) => column.for_each(|v| b.append_option((!v.is_nan()).then_some(v as i64))),
            ValueColumn::Bool(b) => column.for_each(|v| b.append_option((!v.is_nan()).then_some(v != 0.0))),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ValueColumn::F64(b) => Arc::new(b.finish()),
            ValueColumn::I64(b) => Arc::new(b.finish()),
            ValueColumn::Bool(b) => Arc::new(b.finish()),
        }
    }
}

/// The columns of up to one row group of prediction records, being appended to.
struct OpenColumns {
    rows: usize,
    prediction_id: StringBuilder,
    ts: TimestampMicrosecondBuilder,
    model_version: StringBuilder,
    entities: Vec<StringBuilder>,
    inputs: Vec<ValueColumn>,
    outputs: Vec<ValueColumn>,
    holdout: StringBuilder,
    in_holdout: BooleanBuilder,
    eligible: BooleanBuilder,
    flag_variant: StringBuilder,
    latency_us: Int64Builder,
}

impl OpenColumns {
    fn new(schema: &LogSchema, rows: usize) -> Self {
        OpenColumns {
            rows: 0,
            prediction_id: StringBuilder::with_capacity(rows, rows * 36),
            ts: TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            model_version: StringBuilder::new(),
            entities: schema.entities.iter().map(|_| StringBuilder::new()).collect(),
            inputs: schema.inputs.iter().map(|(_, ty)| ValueColumn::new(*ty, rows)).collect(),
            outputs: schema.outputs.iter().map(|_| ValueColumn::new(InputType::F64, rows)).collect(),
            holdout: StringBuilder::new(),
            in_holdout: BooleanBuilder::with_capacity(rows),
            eligible: BooleanBuilder::with_capacity(rows),
            flag_variant: StringBuilder::new(),
            latency_us: Int64Builder::with_capacity(rows),
        }
    }

    /// Appends `rows` of `batch`, column by column.
    fn extend(&mut self, batch: &PredictionBatch, rows: Range<usize>) {
        self.rows += rows.len();
        let texts = |builder: &mut StringBuilder, cell: usize| {
            rows.clone().for_each(|r| builder.append_option(batch.text(r, cell)));
        };
        texts(&mut self.prediction_id, cell::PREDICTION_ID);
        self.ts.append_slice(batch.ts().get(rows.clone()).unwrap_or_default());
        texts(&mut self.model_version, cell::MODEL_VERSION);
        for (e, builder) in self.entities.iter_mut().enumerate() {
            texts(builder, cell::ENTITIES + e);
        }
        // Values are stored row after row, inputs then outputs: each column takes every
        // `width`-th from its place in the row.
        let width = self.inputs.len() + self.outputs.len();
        let block = batch.values().get(rows.start * width..rows.end * width).unwrap_or_default();
        let mut scratch = Vec::with_capacity(rows.len());
        for (j, column) in self.inputs.iter_mut().chain(&mut self.outputs).enumerate() {
            column.extend(block, (j, width), &mut scratch);
        }
        texts(&mut self.holdout, cell::HOLDOUT);
        for r in rows.clone() {
            let (in_holdout, eligible) = batch.holdout_flags(r);
            self.in_holdout.append_value(in_holdout);
            self.eligible.append_value(eligible);
        }
        texts(&mut self.flag_variant, cell::FLAG_VARIANT);
        for &latency in batch.latencies().get(rows).unwrap_or_default() {
            self.latency_us.append_value(i64::try_from(latency).unwrap_or(i64::MAX));
        }
    }

    /// The columns in [`prediction_schema`] order; the builders start over empty.
    fn finish(&mut self) -> Vec<ArrayRef> {
        self.rows = 0;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.prediction_id.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.model_version.finish()),
        ];
        columns.extend(self.entities.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.extend(self.inputs.iter_mut().chain(&mut self.outputs).map(ValueColumn::finish));
        columns.push(Arc::new(self.holdout.finish()));
        columns.push(Arc::new(self.in_holdout.finish()));
        columns.push(Arc::new(self.eligible.finish()));
        columns.push(Arc::new(self.flag_variant.finish()));
        columns.push(Arc::new(self.latency_us.finish()));
        columns
    }
}

/// Prediction records of one schema, turned into Arrow columns as they arrive: a
/// partition waiting for its segment to seal holds its rows once, as columns, and each
/// record is read once, front to back, instead of once per column at publish time.
///
/// Records are cut into row groups of [`ROW_GROUP_ROWS`]. NaN (missing) inputs and
/// outputs are nulls.
pub(crate) struct PredictionColumns {
    schema: Arc<LogSchema>,
    arrow: SchemaRef,
    open: OpenColumns,
    /// Full row groups, in order.
    sealed: Vec<Vec<ArrayRef>>,
}

impl PredictionColumns {
    pub(crate) fn new(schema: Arc<LogSchema>) -> Self {
        let arrow = prediction_schema(&schema);
        // Most partitions are small (a segment seals by size or age): grow as needed.
        let open = OpenColumns::new(&schema, 1024);
        PredictionColumns { schema, arrow, open, sealed: Vec::new() }
    }

    pub(crate) fn schema(&self) -> &Arc<LogSchema> {
        &self.schema
    }

    /// Appends `rows` of `batch` (a batch of this schema).
    pub(crate) fn extend(&mut self, batch: &PredictionBatch, rows: Range<usize>) {
        let mut start = rows.start;
        while start < rows.end {
            let end = rows.end.min(start + (ROW_GROUP_ROWS - self.open.rows));
            self.open.extend(batch, start..end);
            if self.open.rows >= ROW_GROUP_ROWS {
                // A partition that filled a row group likely fills the next: start its
                // builders at that size instead of growing them from empty.
                let full = std::mem::replace(&mut self.open, OpenColumns::new(&self.schema, ROW_GROUP_ROWS)).finish();
                self.sealed.push(full);
            }
            start = end;
        }
    }

    /// The Arrow schema of the file.
    pub(crate) fn arrow_schema(&self) -> SchemaRef {
        self.arrow.clone()
    }

    /// Every row so far as batches of at most [`ROW_GROUP_ROWS`] rows (the open row
    /// group is sealed first, so a retry after a failed publish writes the same batches).
    pub(crate) fn batches(&mut self) -> impl Iterator<Item = Result<RecordBatch, LogError>> + '_ {
        if self.open.rows > 0 {
            self.sealed.push(self.open.finish());
        }
        self.sealed.iter().map(|columns| {
            RecordBatch::try_new(self.arrow.clone(), columns.clone())
                .map_err(|e| LogError::Schema { model: self.schema.model.clone(), reason: e.to_string() })
        })
    }
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

/// What [`publish`] found at the file's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Published {
    /// The file was written.
    New,
    /// A file of that name already held the same rows (a replayed segment).
    AlreadyThere,
}

/// Writes `batches` to `path` atomically: a hidden temporary file in the same
/// directory, fsync, then a hard link to the final name (which, unlike a rename, never
/// replaces a file), fsync of the directory. Readers never see a partial file; on error
/// the temporary file is removed and nothing is published.
///
/// A file already at `path` is kept if it holds the same prediction ids (a segment
/// replayed after a crash between publishing and deleting it from the spool; its rows
/// may come in another order), and is [`LogError::Conflict`] otherwise.
///
/// Each batch is one row group; its columns are encoded on up to `threads` threads
/// (the bytes are the same whatever the count).
pub(crate) fn publish(
    path: &Path,
    schema: SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch, LogError>>,
    threads: usize,
) -> Result<Published, LogError> {
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
        // The ArrowWriter sets up the file (its Arrow schema in the footer); row groups
        // are then written column by column, so that columns can be encoded apart.
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(parquet_err)?;
        let (mut file_writer, row_groups) = writer.into_serialized_writer().map_err(parquet_err)?;
        for (index, batch) in batches.enumerate() {
            let batch = batch?;
            let writers = row_groups.create_column_writers(index).map_err(parquet_err)?;
            let chunks = encode_columns(&schema, &batch, writers, threads).map_err(parquet_err)?;
            let mut row_group = file_writer.next_row_group().map_err(parquet_err)?;
            for chunk in chunks {
                chunk.append_to_row_group(&mut row_group).map_err(parquet_err)?;
            }
            row_group.close().map_err(parquet_err)?;
        }
        let file = file_writer.into_inner().map_err(parquet_err)?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        if crate::atomic_file::link_new(&tmp, path).map_err(io(path))? {
            return Ok(Published::New);
        }
        let (mut ours, mut theirs) = (prediction_ids(&tmp)?, prediction_ids(path)?);
        ours.sort_unstable();
        theirs.sort_unstable();
        if ours != theirs {
            return Err(LogError::Conflict { path: path.display().to_string() });
        }
        Ok(Published::AlreadyThere)
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// The `prediction_id` column of a log file (every table of the log has one).
fn prediction_ids(path: &Path) -> Result<Vec<String>, LogError> {
    use arrow_array::cast::AsArray;
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let failed = |reason: String| LogError::Parquet { path: path.display().to_string(), reason };
    let file = File::open(path).map_err(|source| LogError::Io { path: path.display().to_string(), source })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| failed(e.to_string()))?;
    let column = builder
        .parquet_schema()
        .columns()
        .iter()
        .position(|c| c.name() == "prediction_id")
        .ok_or_else(|| failed("no prediction_id column".into()))?;
    let mask = ProjectionMask::leaves(builder.parquet_schema(), [column]);
    let mut ids = Vec::new();
    for batch in builder.with_projection(mask).build().map_err(|e| failed(e.to_string()))? {
        let batch = batch.map_err(|e| failed(e.to_string()))?;
        let array =
            batch.column(0).as_string_opt::<i32>().ok_or_else(|| failed("prediction_id is not a string".into()))?;
        ids.extend(array.iter().map(|id| id.unwrap_or_default().to_owned()));
    }
    Ok(ids)
}

/// Encodes the columns of one row group, spread over up to `threads` scoped threads in
/// contiguous runs; the chunks come back in column order. Every column of the log is
/// flat, so each field is one leaf and one writer.
fn encode_columns(
    schema: &Schema,
    batch: &RecordBatch,
    writers: Vec<ArrowColumnWriter>,
    threads: usize,
) -> Result<Vec<ArrowColumnChunk>, ParquetError> {
    fn encode<'a>(
        jobs: impl Iterator<Item = (ArrowColumnWriter, (&'a FieldRef, &'a ArrayRef))>,
    ) -> Result<Vec<ArrowColumnChunk>, ParquetError> {
        jobs.map(|(mut writer, (field, column))| {
            for leaf in compute_leaves(field, column)? {
                writer.write(&leaf)?;
            }
            writer.close()
        })
        .collect()
    }
    if writers.len() != schema.fields().len() {
        return Err(ParquetError::General(format!(
            "{} column writers for {} columns",
            writers.len(),
            schema.fields().len()
        )));
    }
    let jobs = writers.into_iter().zip(schema.fields().iter().zip(batch.columns()));
    let threads = threads.clamp(1, schema.fields().len().max(1));
    if threads == 1 {
        return encode(jobs);
    }
    let per_thread = schema.fields().len().div_ceil(threads);
    let mut runs: Vec<Vec<_>> = Vec::with_capacity(threads);
    for job in jobs {
        match runs.last_mut() {
            Some(run) if run.len() < per_thread => run.push(job),
            _ => runs.push(vec![job]),
        }
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = runs.into_iter().map(|run| scope.spawn(move || encode(run.into_iter()))).collect();
        let mut chunks = Vec::with_capacity(schema.fields().len());
        for handle in handles {
            let run = handle.join().map_err(|_| ParquetError::General("a column encoder panicked".into()))??;
            chunks.extend(run);
        }
        Ok(chunks)
    })
}

/// Splits `records` into batches of at most [`ROW_GROUP_ROWS`].
pub(crate) fn chunks<T>(records: &[T]) -> impl Iterator<Item = &[T]> {
    records.chunks(ROW_GROUP_ROWS)
}

#[cfg(test)]
mod tests {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;
    use crate::{PredictionRecord, Timestamp};

    fn columns(rows: usize) -> PredictionColumns {
        let schema = Arc::new(LogSchema {
            model: "eta".into(),
            version: "3".into(),
            entities: vec!["restaurant_id".into()],
            inputs: vec![("distance_km".into(), InputType::F64), ("orders".into(), InputType::I64)],
            outputs: vec!["q50".into()],
        });
        let records: Vec<_> = (0..rows)
            .map(|i| PredictionRecord {
                prediction_id: format!("p-{i}"),
                ts: Timestamp::from_micros(1_764_201_600_000_000 + i as i64),
                model: "eta".into(),
                model_version: "3".into(),
                entities: vec![("restaurant_id".into(), format!("r-{}", i % 7))],
                // Every fifth distance is missing; the record is one input short.
                inputs: if i % 5 == 0 { vec![f64::NAN] } else { vec![i as f64 * 0.5, 3.0] },
                outputs: vec![i as f64],
                holdout: None,
                in_holdout: false,
                eligible: true,
                flag_variant: (i % 2 == 0).then(|| "b".into()),
                latency_us: 20,
            })
            .collect();
        let mut columns = PredictionColumns::new(schema.clone());
        // In uneven batches, so that row groups are cut inside one.
        for chunk in records.chunks(999) {
            let batch = PredictionBatch::from_records(schema.clone(), chunk).unwrap();
            columns.extend(&batch, 0..batch.len());
        }
        columns
    }

    #[test]
    fn columns_encoded_on_several_threads_make_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let rows = ROW_GROUP_ROWS + 1_000;
        let mut files = Vec::new();
        for threads in [1, 3, 64] {
            let mut columns = columns(rows);
            let path = dir.path().join(format!("t{threads}.parquet"));
            publish(&path, columns.arrow_schema(), columns.batches(), threads).unwrap();
            files.push(std::fs::read(&path).unwrap());
        }
        assert!(files.iter().all(|f| f == &files[0]), "the bytes do not depend on the thread count");

        let file = File::open(dir.path().join("t3.parquet")).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        assert_eq!(reader.metadata().num_row_groups(), 2);
        assert_eq!(
            reader.metadata().row_group(0).num_rows(),
            ROW_GROUP_ROWS as i64,
            "a batch is cut at the row group's end"
        );
        let batches: Vec<RecordBatch> =
            reader.with_batch_size(ROW_GROUP_ROWS).build().unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), rows);
        let first = &batches[0];
        let distance = first.column_by_name("distance_km").unwrap();
        let orders = first.column_by_name("orders").unwrap();
        let missing = first.num_rows().div_ceil(5);
        assert_eq!((distance.null_count(), orders.null_count()), (missing, missing));
        let q50 = first.column_by_name("q50").unwrap().as_any().downcast_ref::<arrow_array::Float64Array>().unwrap();
        assert_eq!(q50.value(1234), 1234.0);
    }
}
