//! Log records as Arrow columns, and Parquet files published atomically.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, NullBufferBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{ArrowPrimitiveType, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{ArrayRef, PrimitiveArray, RecordBatch, TimestampMicrosecondArray};
use arrow_buffer::ScalarBuffer;
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use fresco_abi::InputType;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowColumnWriter, compute_leaves};
use parquet::basic::{Compression, Encoding};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

use super::batch::cell;
use super::spool::io;
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

/// A column of Arrow primitives kept in a plain vector, so that the vector can be taken
/// back from the array once the array is published ([`SpareColumns`]); an Arrow
/// builder's buffers cannot be.
struct Primitive<T: ArrowPrimitiveType> {
    values: Vec<T::Native>,
    /// Allocated at the first null only.
    nulls: NullBufferBuilder,
}

impl<T: ArrowPrimitiveType> Primitive<T> {
    fn new(values: Vec<T::Native>) -> Self {
        let nulls = NullBufferBuilder::new(values.capacity());
        Primitive { values, nulls }
    }

    fn extend_from_slice(&mut self, values: &[T::Native]) {
        self.values.extend_from_slice(values);
        self.nulls.append_n_non_nulls(values.len());
    }

    fn push(&mut self, value: Option<T::Native>) {
        self.values.push(value.unwrap_or_default());
        self.nulls.append(value.is_some());
    }

    /// The array; the column starts over empty (its vector goes with the array).
    fn finish(&mut self) -> PrimitiveArray<T> {
        PrimitiveArray::new(ScalarBuffer::from(std::mem::take(&mut self.values)), self.nulls.finish())
    }
}

impl Primitive<Float64Type> {
    /// Appends value `j` of each row of `width` values in `block`, NaN (missing) as null.
    fn extend_nullable(&mut self, block: &[f64], (j, width): (usize, usize)) {
        let start = self.values.len();
        self.values.extend(block.chunks_exact(width).filter_map(|row| row.get(j).copied()));
        let added = self.values.get_mut(start..).unwrap_or_default();
        // A null check per value only where there is a null (rarely).
        if added.iter().any(|v| v.is_nan()) {
            for v in added {
                self.nulls.append(!v.is_nan());
                if v.is_nan() {
                    *v = 0.0;
                }
            }
        } else {
            self.nulls.append_n_non_nulls(added.len());
        }
    }
}

/// One input or output column being built, typed as the schema declares it (outputs
/// are f64).
enum ValueColumn {
    F64(Primitive<Float64Type>),
    I64(Primitive<Int64Type>),
    Bool(BooleanBuilder),
}

impl ValueColumn {
    fn new(ty: InputType, rows: usize, spare: &mut SpareColumns) -> Self {
        match input_type(ty) {
            DataType::Int64 => ValueColumn::I64(Primitive::new(spare.i64s(rows))),
            DataType::Boolean => ValueColumn::Bool(BooleanBuilder::with_capacity(rows)),
            _ => ValueColumn::F64(Primitive::new(spare.f64s(rows))),
        }
    }

    /// Appends value `j` of each row of `width` values in `block`, as scored (NaN is
    /// missing: a null).
    fn extend(&mut self, block: &[f64], (j, width): (usize, usize)) {
        let column = block.chunks_exact(width).filter_map(|row| row.get(j).copied());
        match self {
            ValueColumn::F64(c) => c.extend_nullable(block, (j, width)),
            ValueColumn::I64(c) => column.for_each(|v| c.push((!v.is_nan()).then_some(v as i64))),
            ValueColumn::Bool(b) => column.for_each(|v| b.append_option((!v.is_nan()).then_some(v != 0.0))),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ValueColumn::F64(c) => Arc::new(c.finish()),
            ValueColumn::I64(c) => Arc::new(c.finish()),
            ValueColumn::Bool(b) => Arc::new(b.finish()),
        }
    }
}

/// The primitive column buffers of published row groups, kept for the row groups that
/// follow. A row group of 30 features is about 20 MB of columns; freed, blocks that
/// large go back to the kernel, which zeroes every page again when the next row group
/// touches it (the writer's page faults over 2,000,000 rows: 156,000 before these were
/// kept, 27,000 after).
#[derive(Default)]
pub(crate) struct SpareColumns {
    f64s: Vec<Vec<f64>>,
    i64s: Vec<Vec<i64>>,
}

impl SpareColumns {
    /// At most this many bytes are kept: the row groups of one 64 MB spool segment of a
    /// 30-feature model.
    const MAX_BYTES: usize = 64 << 20;

    fn f64s(&mut self, rows: usize) -> Vec<f64> {
        Self::take(&mut self.f64s, rows)
    }

    fn i64s(&mut self, rows: usize) -> Vec<i64> {
        Self::take(&mut self.i64s, rows)
    }

    fn take<T>(kept: &mut Vec<Vec<T>>, rows: usize) -> Vec<T> {
        match kept.last() {
            Some(last) if last.capacity() >= rows => kept.pop().unwrap_or_default(),
            _ => Vec::with_capacity(rows),
        }
    }

    /// Keeps `column`'s vector if nothing else holds it and it has room for a row group.
    fn put<T: ArrowPrimitiveType>(kept: &mut Vec<Vec<T::Native>>, column: PrimitiveArray<T>) {
        if let Ok(mut values) = column.into_parts().1.into_inner().into_vec::<T::Native>()
            && values.capacity() >= ROW_GROUP_ROWS
        {
            values.clear();
            kept.push(values);
        }
    }

    /// Bytes of capacity kept.
    fn bytes(&self) -> usize {
        let f64s: usize = self.f64s.iter().map(|v| v.capacity() * 8).sum();
        f64s + self.i64s.iter().map(|v| v.capacity() * 8).sum::<usize>()
    }

    /// Keeps the vector under `array` if it is a primitive column with room for a row
    /// group that nothing else holds; anything else is dropped.
    fn keep(&mut self, array: ArrayRef) {
        if self.bytes() >= Self::MAX_BYTES {
            return;
        }
        // A clone shares the buffer; once `array` is dropped the clone is its only owner.
        let f64s = array.as_primitive_opt::<Float64Type>().cloned();
        let i64s = array.as_primitive_opt::<Int64Type>().cloned().or_else(|| {
            array.as_primitive_opt::<TimestampMicrosecondType>().map(PrimitiveArray::reinterpret_cast::<Int64Type>)
        });
        drop(array);
        if let Some(column) = f64s {
            Self::put(&mut self.f64s, column);
        }
        if let Some(column) = i64s {
            Self::put(&mut self.i64s, column);
        }
    }
}

/// The columns of up to one row group of prediction records, being appended to.
struct OpenColumns {
    rows: usize,
    prediction_id: StringBuilder,
    ts: Primitive<TimestampMicrosecondType>,
    model_version: StringBuilder,
    entities: Vec<StringBuilder>,
    inputs: Vec<ValueColumn>,
    outputs: Vec<ValueColumn>,
    holdout: StringBuilder,
    in_holdout: BooleanBuilder,
    eligible: BooleanBuilder,
    flag_variant: StringBuilder,
    latency_us: Primitive<Int64Type>,
}

impl OpenColumns {
    fn new(schema: &LogSchema, rows: usize, spare: &mut SpareColumns) -> Self {
        OpenColumns {
            rows: 0,
            prediction_id: StringBuilder::with_capacity(rows, rows * 36),
            ts: Primitive::new(spare.i64s(rows)),
            model_version: StringBuilder::new(),
            entities: schema.entities.iter().map(|_| StringBuilder::new()).collect(),
            inputs: schema.inputs.iter().map(|(_, ty)| ValueColumn::new(*ty, rows, spare)).collect(),
            outputs: schema.outputs.iter().map(|_| ValueColumn::new(InputType::F64, rows, spare)).collect(),
            holdout: StringBuilder::new(),
            in_holdout: BooleanBuilder::with_capacity(rows),
            eligible: BooleanBuilder::with_capacity(rows),
            flag_variant: StringBuilder::new(),
            latency_us: Primitive::new(spare.i64s(rows)),
        }
    }

    /// Appends `rows` of `batch`, column by column.
    fn extend(&mut self, batch: &PredictionBatch, rows: Range<usize>) {
        self.rows += rows.len();
        let texts = |builder: &mut StringBuilder, cell: usize| {
            rows.clone().for_each(|r| builder.append_option(batch.text(r, cell)));
        };
        texts(&mut self.prediction_id, cell::PREDICTION_ID);
        self.ts.extend_from_slice(batch.ts().get(rows.clone()).unwrap_or_default());
        texts(&mut self.model_version, cell::MODEL_VERSION);
        for (e, builder) in self.entities.iter_mut().enumerate() {
            texts(builder, cell::ENTITIES + e);
        }
        // Values are stored row after row, inputs then outputs: each column takes every
        // `width`-th from its place in the row.
        let width = self.inputs.len() + self.outputs.len();
        let block = batch.values().get(rows.start * width..rows.end * width).unwrap_or_default();
        for (j, column) in self.inputs.iter_mut().chain(&mut self.outputs).enumerate() {
            column.extend(block, (j, width));
        }
        texts(&mut self.holdout, cell::HOLDOUT);
        for r in rows.clone() {
            let (in_holdout, eligible) = batch.holdout_flags(r);
            self.in_holdout.append_value(in_holdout);
            self.eligible.append_value(eligible);
        }
        texts(&mut self.flag_variant, cell::FLAG_VARIANT);
        for &latency in batch.latencies().get(rows).unwrap_or_default() {
            self.latency_us.push(Some(i64::try_from(latency).unwrap_or(i64::MAX)));
        }
    }

    /// The columns in [`prediction_schema`] order; the columns start over empty.
    fn finish(&mut self) -> Vec<ArrayRef> {
        self.rows = 0;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.prediction_id.finish()),
            Arc::new(self.ts.finish().with_timezone("UTC")),
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
    /// Columns for rows of `schema`; the first row group's come from `spare` where it has
    /// them.
    pub(crate) fn new(schema: Arc<LogSchema>, spare: &mut SpareColumns) -> Self {
        let arrow = prediction_schema(&schema);
        // Most partitions are small (a segment seals by size or age): grow as needed,
        // unless buffers of published row groups are at hand (a busy log).
        let open = OpenColumns::new(&schema, 1024, spare);
        PredictionColumns { schema, arrow, open, sealed: Vec::new() }
    }

    pub(crate) fn schema(&self) -> &Arc<LogSchema> {
        &self.schema
    }

    /// Appends `rows` of `batch` (a batch of this schema); the columns of a new row group
    /// come from `spare` where it has them.
    pub(crate) fn extend(&mut self, batch: &PredictionBatch, rows: Range<usize>, spare: &mut SpareColumns) {
        let mut start = rows.start;
        while start < rows.end {
            let end = rows.end.min(start + (ROW_GROUP_ROWS - self.open.rows));
            self.open.extend(batch, start..end);
            if self.open.rows >= ROW_GROUP_ROWS {
                // A partition that filled a row group likely fills the next: start its
                // builders at that size instead of growing them from empty.
                let next = OpenColumns::new(&self.schema, ROW_GROUP_ROWS, spare);
                let full = std::mem::replace(&mut self.open, next).finish();
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

    /// Hands the columns of every row group to `spare` (once they are published).
    pub(crate) fn recycle(self, spare: &mut SpareColumns) {
        self.sealed.into_iter().flatten().for_each(|column| spare.keep(column));
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
/// (the bytes are the same whatever the count). The log's writer does the two halves,
/// [`write`] and [`Written::finish`], on two threads.
#[cfg(test)]
pub(crate) fn publish(
    path: &Path,
    schema: SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch, LogError>>,
    threads: usize,
) -> Result<Published, LogError> {
    write(path, schema, batches, FileOptions { threads, floats: FloatEncoding::Plain })?.finish()
}

/// A file [`write`] wrote under its temporary name, not yet synced nor named: the part of
/// [`publish`] that waits on the disk, for another thread. Dropped unfinished, the
/// temporary file is removed.
pub(crate) struct Written {
    tmp: PathBuf,
    path: PathBuf,
    file: File,
}

impl Written {
    /// Syncs the file, gives it its name if no file has it, and syncs the directory
    /// (see [`publish`]).
    pub(crate) fn finish(self) -> Result<Published, LogError> {
        let (tmp, path) = (&self.tmp, &self.path);
        self.file.sync_all().map_err(io(tmp))?;
        if crate::atomic_file::link_new(tmp, path).map_err(io(path))? {
            return Ok(Published::New);
        }
        let (mut ours, mut theirs) = (prediction_ids(tmp)?, prediction_ids(path)?);
        ours.sort_unstable();
        theirs.sort_unstable();
        if ours != theirs {
            return Err(LogError::Conflict { path: path.display().to_string() });
        }
        Ok(Published::AlreadyThere)
    }
}

impl Drop for Written {
    fn drop(&mut self) {
        // Published or not, the temporary name goes: a published file has its own.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// The first part of [`publish`]: the file, written and flushed under its temporary
/// name (its row groups but the last already synced).
pub(crate) fn write(
    path: &Path,
    schema: SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch, LogError>>,
    options: FileOptions,
) -> Result<Written, LogError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("part.parquet");
    let tmp: PathBuf = dir.join(format!(".{name}.tmp"));
    let file = File::create(&tmp).map_err(io(&tmp))?;
    // From here on the temporary file is removed on any error, when this is dropped.
    let written = Written { tmp, path: path.to_path_buf(), file };
    let tmp = &written.tmp;
    let props = writer_properties(&schema, options.floats);
    let parquet_err = |e: parquet::errors::ParquetError| match e {
        // Keep I/O failures (a full disk) typed as I/O.
        parquet::errors::ParquetError::External(inner) => match inner.downcast::<std::io::Error>() {
            Ok(source) => LogError::Io { path: tmp.display().to_string(), source: *source },
            Err(other) => LogError::Parquet { path: tmp.display().to_string(), reason: other.to_string() },
        },
        other => LogError::Parquet { path: tmp.display().to_string(), reason: other.to_string() },
    };
    let syncer = written.file.try_clone().map_err(io(tmp))?;
    // The ArrowWriter sets up the file (its Arrow schema in the footer); row groups
    // are then written column by column, so that columns can be encoded apart.
    let writer = ArrowWriter::try_new(&written.file, schema.clone(), Some(props)).map_err(parquet_err)?;
    let (mut file_writer, row_groups) = writer.into_serialized_writer().map_err(parquet_err)?;
    std::thread::scope(|scope| {
        // What the row groups so far put in the page cache goes to disk on another
        // thread while the next one is encoded, so that the sync at the end waits for
        // the last row group only (a sync is mostly waiting on the disk: it overlaps
        // even on one core). Its error is the file's: Linux may report a failed
        // write-back to one sync only.
        let mut syncing: Option<std::thread::ScopedJoinHandle<'_, std::io::Result<()>>> = None;
        let synced = |handle: std::thread::ScopedJoinHandle<'_, std::io::Result<()>>| {
            handle.join().unwrap_or_else(|_| Err(std::io::Error::other("the sync thread panicked"))).map_err(io(tmp))
        };
        for (index, batch) in batches.enumerate() {
            let batch = batch?;
            if index > 0 {
                if let Some(handle) = syncing.take() {
                    synced(handle)?;
                }
                syncing = Some(scope.spawn(|| syncer.sync_data()));
            }
            let writers = row_groups.create_column_writers(index).map_err(parquet_err)?;
            let chunks = encode_columns(&schema, &batch, writers, options.threads).map_err(parquet_err)?;
            let mut row_group = file_writer.next_row_group().map_err(parquet_err)?;
            for chunk in chunks {
                chunk.append_to_row_group(&mut row_group).map_err(parquet_err)?;
            }
            row_group.close().map_err(parquet_err)?;
        }
        if let Some(handle) = syncing.take() {
            synced(handle)?;
        }
        Ok::<_, LogError>(())
    })?;
    // Flushed into the file; what is left to do waits on the disk.
    file_writer.into_inner().map_err(parquet_err)?;
    Ok(written)
}

/// How the log's files are written, beyond their rows: the [`LogConfig`](super::LogConfig)'s choices.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileOptions {
    /// Threads that encode a row group's columns (the bytes are the same whatever the count).
    pub(crate) threads: usize,
    pub(crate) floats: FloatEncoding,
}

/// How the log's files store f64 columns (inputs and outputs), before Snappy.
///
/// ```
/// use fresco::{FloatEncoding, LogConfig};
///
/// // Smaller files and, on values with few significant bits, faster publishing; for
/// // readers that know the encoding: pyarrow, polars and DuckDB do, Spark only with
/// // `spark.sql.parquet.enableVectorizedReader=false`.
/// let config = LogConfig::new("/var/lib/app/log").float_encoding(FloatEncoding::ByteStreamSplit);
/// # let _ = config;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FloatEncoding {
    /// Each value's 8 bytes in turn (`PLAIN`): every Parquet reader reads it.
    #[default]
    Plain,
    /// The values' first bytes, then their second bytes, and so on (Parquet's
    /// `BYTE_STREAM_SPLIT`): the sign and exponent bytes of similar values repeat, which
    /// Snappy then finds. docs/benchmarks.md has sizes and speeds of both. Spark's
    /// vectorized reader (4.0) refuses it; its row reader reads it.
    ByteStreamSplit,
}

/// How a log file is written: Snappy, row groups of [`ROW_GROUP_ROWS`], dictionaries
/// for the repetitive string columns only (on unique ids and on floats they cost time
/// and then fall back to plain encoding anyway), f64 columns as `floats` says.
fn writer_properties(schema: &Schema, floats: FloatEncoding) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_dictionary_enabled(false);
    for field in schema.fields() {
        if field.data_type() == &DataType::Utf8 && field.name() != "prediction_id" {
            props = props.set_column_dictionary_enabled(field.name().as_str().into(), true);
        }
        if field.data_type() == &DataType::Float64 && floats == FloatEncoding::ByteStreamSplit {
            props = props.set_column_encoding(field.name().as_str().into(), Encoding::BYTE_STREAM_SPLIT);
        }
    }
    props.build()
}

/// The `prediction_id` column of a log file (every table of the log has one).
fn prediction_ids(path: &Path) -> Result<Vec<String>, LogError> {
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
        columns_of(0..rows, &mut SpareColumns::default())
    }

    /// Columns of rows numbered `rows`, the first row group's buffers from `spare`.
    fn columns_of(rows: Range<usize>, spare: &mut SpareColumns) -> PredictionColumns {
        let schema = Arc::new(LogSchema {
            model: "eta".into(),
            version: "3".into(),
            entities: vec!["restaurant_id".into()],
            inputs: vec![("distance_km".into(), InputType::F64), ("orders".into(), InputType::I64)],
            outputs: vec!["q50".into()],
        });
        let records: Vec<_> = rows
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
        let mut columns = PredictionColumns::new(schema.clone(), spare);
        // In uneven batches, so that row groups are cut inside one.
        for chunk in records.chunks(999) {
            let batch = PredictionBatch::from_records(schema.clone(), chunk).unwrap();
            columns.extend(&batch, 0..batch.len(), spare);
        }
        columns
    }

    #[test]
    fn columns_built_in_recycled_buffers_are_those_built_in_new_ones() {
        let rows = ROW_GROUP_ROWS + 1_000;
        let mut published = columns(rows);
        assert_eq!(published.batches().count(), 2);
        let mut spare = SpareColumns::default();
        published.recycle(&mut spare);
        // Two row groups of two f64 columns (distance, q50) and three i64 (ts, orders,
        // latency), each with room for a row group.
        assert_eq!((spare.f64s.len(), spare.i64s.len()), (4, 6));
        let mut recycled = columns_of(rows..2 * rows, &mut spare);
        assert_eq!((spare.f64s.len(), spare.i64s.len()), (0, 0), "both row groups took their buffers back");
        let mut new = columns_of(rows..2 * rows, &mut SpareColumns::default());
        let recycled: Vec<RecordBatch> = recycled.batches().collect::<Result<_, _>>().unwrap();
        let new: Vec<RecordBatch> = new.batches().collect::<Result<_, _>>().unwrap();
        assert_eq!(recycled, new);
    }

    #[test]
    fn byte_stream_split_f64_columns_read_back_as_the_plain_ones() {
        let dir = tempfile::tempdir().unwrap();
        let read = |floats: FloatEncoding| {
            let mut columns = columns(1_000);
            let path = dir.path().join(format!("{floats:?}.parquet"));
            let options = FileOptions { threads: 1, floats };
            write(&path, columns.arrow_schema(), columns.batches(), options).unwrap().finish().unwrap();
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
            let chunk = reader.metadata().row_group(0).columns().iter().find(|c| c.column_path().string() == "q50");
            let encodings: Vec<Encoding> = chunk.unwrap().encodings().collect();
            let batches: Vec<RecordBatch> = reader.build().unwrap().collect::<Result<_, _>>().unwrap();
            (encodings, batches)
        };
        let (plain_encodings, plain) = read(FloatEncoding::Plain);
        let (split_encodings, split) = read(FloatEncoding::ByteStreamSplit);
        assert!(!plain_encodings.contains(&Encoding::BYTE_STREAM_SPLIT), "{plain_encodings:?}");
        assert!(split_encodings.contains(&Encoding::BYTE_STREAM_SPLIT), "{split_encodings:?}");
        // Nulls (every fifth distance) and values alike.
        assert_eq!(split, plain);
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

        // And they are the bytes Arrow's own writer makes of the batches in one go.
        let mut columns = columns(rows);
        let schema = columns.arrow_schema();
        let mut writer =
            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(writer_properties(&schema, FloatEncoding::Plain)))
                .unwrap();
        for batch in columns.batches() {
            writer.write(&batch.unwrap()).unwrap();
        }
        assert!(writer.into_inner().unwrap() == files[0], "the file differs from the Arrow writer's");

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
