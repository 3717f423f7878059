//! Training sets: logged predictions joined with their outcomes, holdout-aware.
//!
//! A treatment driven by a model's score (a discount for likely churners) changes the
//! outcomes of the treated. Training the next model on them teaches it the effect of
//! the treatment, not the behaviour. [`TreatmentPolicy`] chooses which rows a training
//! set keeps; holdout rows were scored but never treated, so their labels are clean.
//!
//! The join: for each prediction of the model with `from ≤ ts < to`, the outcomes with
//! the same `prediction_id` and `ts ≤ outcome ts ≤ ts + label window`; the latest of
//! them wins (ties: the larger label). Predictions without such an outcome are left out.
//! A row is `treated` when a treatment was logged for its prediction at or before its
//! outcome; `treatment` names the first such (ties: the smaller name). The same join in
//! DuckDB and Spark SQL is in `docs/training-sets.md`.
//!
//! Memory stays bounded: outcomes are held in memory up to
//! [`DatasetSpec::max_outcomes_in_memory`]; beyond that the join runs in several passes,
//! each over one hash partition of the outcomes, streaming the predictions batch by
//! batch every time.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::builder::{BooleanBuilder, Float64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray, new_null_array};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::Timestamp;
use crate::time;
use crate::untrusted::{guarded, open_parquet};

/// Which logged rows a training set keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TreatmentPolicy {
    /// Only entities in the holdout: scored, never treated, labels untouched by the model.
    HoldoutOnly,
    /// Every row with no treatment logged before its outcome (the holdout, and anyone
    /// else left alone).
    Untreated,
    /// Every row, with its `treated` and `treatment` columns, so a model can learn the
    /// treatment's effect (or a naive loop can ignore it).
    AllWithTreatment,
}

impl TreatmentPolicy {
    /// All policies, in the order reports list them.
    pub const ALL: [TreatmentPolicy; 3] =
        [TreatmentPolicy::HoldoutOnly, TreatmentPolicy::Untreated, TreatmentPolicy::AllWithTreatment];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            TreatmentPolicy::HoldoutOnly => "holdout-only",
            TreatmentPolicy::Untreated => "untreated",
            TreatmentPolicy::AllWithTreatment => "all-with-treatment",
        }
    }

    fn keeps(self, in_holdout: bool, treated: bool) -> bool {
        match self {
            TreatmentPolicy::HoldoutOnly => in_holdout,
            TreatmentPolicy::Untreated => !treated,
            TreatmentPolicy::AllWithTreatment => true,
        }
    }
}

impl std::str::FromStr for TreatmentPolicy {
    type Err = DatasetError;

    /// ```
    /// use fresco::dataset::TreatmentPolicy;
    /// assert_eq!("holdout-only".parse::<TreatmentPolicy>()?, TreatmentPolicy::HoldoutOnly);
    /// assert!("everything".parse::<TreatmentPolicy>().is_err());
    /// # Ok::<(), fresco::dataset::DatasetError>(())
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TreatmentPolicy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| DatasetError::Policy { given: s.to_owned() })
    }
}

impl std::fmt::Display for TreatmentPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// What to build.
///
/// ```
/// use std::time::Duration;
/// use fresco::Timestamp;
/// use fresco::dataset::{DatasetSpec, TreatmentPolicy};
///
/// let spec = DatasetSpec::new("logs", "churn", TreatmentPolicy::HoldoutOnly)
///     .from(Timestamp::from_secs(1_764_201_600))
///     .label_window(Duration::from_secs(14 * 86_400));
/// # let _ = spec;
/// ```
#[derive(Debug, Clone)]
pub struct DatasetSpec {
    roots: Vec<PathBuf>,
    model: String,
    policy: TreatmentPolicy,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    label_window: Duration,
    max_outcomes_in_memory: usize,
}

impl DatasetSpec {
    /// Predictions of `model` under `logs` (the prediction log's root), filtered by `policy`.
    pub fn new(logs: impl Into<PathBuf>, model: impl Into<String>, policy: TreatmentPolicy) -> Self {
        Self::over([logs], model, policy)
    }

    /// Predictions of `model` under each of `roots`: the logs of a fleet, one root per
    /// writer, or one directory holding many writers' files (a mirror of a bucket,
    /// [`bucket::local_roots`](crate::bucket::local_roots) with feature `object-store`).
    /// Every writer names its files apart, so the roots' files are simply all read, and
    /// an outcome logged by one replica joins the prediction made on another.
    ///
    /// ```
    /// use fresco::dataset::{DatasetSpec, TreatmentPolicy};
    ///
    /// let spec = DatasetSpec::over(["logs/replica-a", "logs/replica-b"], "churn", TreatmentPolicy::Untreated);
    /// # let _ = spec;
    /// ```
    pub fn over(
        roots: impl IntoIterator<Item = impl Into<PathBuf>>,
        model: impl Into<String>,
        policy: TreatmentPolicy,
    ) -> Self {
        DatasetSpec {
            roots: roots.into_iter().map(Into::into).collect(),
            model: model.into(),
            policy,
            from: None,
            to: None,
            label_window: Duration::from_secs(30 * 86_400),
            max_outcomes_in_memory: 5_000_000,
        }
    }

    /// Keeps predictions made at or after `ts`.
    pub fn from(mut self, ts: Timestamp) -> Self {
        self.from = Some(ts);
        self
    }

    /// Keeps predictions made before `ts`.
    pub fn to(mut self, ts: Timestamp) -> Self {
        self.to = Some(ts);
        self
    }

    /// How long after a prediction an outcome still counts (default 30 days).
    pub fn label_window(mut self, window: Duration) -> Self {
        self.label_window = window;
        self
    }

    /// Outcomes held in memory per pass (default 5,000,000): the memory bound.
    pub fn max_outcomes_in_memory(mut self, outcomes: usize) -> Self {
        self.max_outcomes_in_memory = outcomes.max(1);
        self
    }
}

/// Progress of a build, reported after each file read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetProgress {
    /// Files read so far (across passes).
    pub files_done: u64,
    /// Files to read in all.
    pub files_total: u64,
}

/// What a build found and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetReport {
    /// Predictions in the time range.
    pub predictions: u64,
    /// Of those, predictions with an outcome in the label window.
    pub labeled: u64,
    /// Labeled rows each policy keeps.
    pub per_policy: Vec<(TreatmentPolicy, u64)>,
    /// Rows written (those of the chosen policy).
    pub rows_written: u64,
    /// Passes over the predictions (1 unless outcomes exceeded the memory bound).
    pub passes: usize,
}

/// Why a training set could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// No prediction files for the model.
    #[error("no prediction files for model `{model}` under {dir}")]
    NoPredictions {
        /// The model.
        model: String,
        /// Where they were looked for.
        dir: String,
    },
    /// Unknown policy name.
    #[error("unknown policy `{given}`: expected holdout-only, untreated or all-with-treatment")]
    Policy {
        /// What was given.
        given: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Files of different model versions disagree on a column's type.
    #[error("column `{column}` is {first} in some prediction files and {second} in {path}")]
    Schema {
        /// The column.
        column: String,
        /// Its type in earlier files.
        first: String,
        /// Its type in this file.
        second: String,
        /// The file.
        path: String,
    },
}

fn file_err(path: &Path) -> impl FnOnce(String) -> DatasetError + '_ {
    move |reason| DatasetError::File { path: path.display().to_string(), reason }
}

/// Builds the training set described by `spec` into the Parquet file `out` (written to
/// a temporary name, then renamed). Columns: `model`, the union of the prediction
/// columns across the model's versions (null where a version lacks one), `label`,
/// `label_ts`, `treated` (bool) and `treatment` (the first treatment's name, or null).
pub fn build_training_set(
    spec: &DatasetSpec,
    out: &Path,
    mut progress: impl FnMut(DatasetProgress),
) -> Result<DatasetReport, DatasetError> {
    let _span = tracing::info_span!("fresco.dataset", model = %spec.model, policy = %spec.policy).entered();
    let from_day = spec.from.map(time::utc_day);
    let to_day = spec.to.map(time::utc_day);
    let prediction_files = table_files(&spec.roots, "predictions", &spec.model, |day| {
        from_day.is_none_or(|f| day >= f) && to_day.is_none_or(|t| day <= t)
    })?;
    if prediction_files.is_empty() {
        let dirs: Vec<_> = spec.roots.iter().map(|r| r.join("predictions").display().to_string()).collect();
        return Err(DatasetError::NoPredictions { model: spec.model.clone(), dir: dirs.join(", ") });
    }
    let window_days = i64::try_from(spec.label_window.as_secs() / 86_400).unwrap_or(i64::MAX) + 1;
    let labeled_days =
        |day: i64| from_day.is_none_or(|f| day >= f) && to_day.is_none_or(|t| day <= t.saturating_add(window_days));
    let outcome_files = table_files(&spec.roots, "outcomes", &spec.model, labeled_days)?;
    let treatment_files = table_files(&spec.roots, "treatments", &spec.model, labeled_days)?;

    let union = union_schema(&prediction_files)?;
    let mut out_fields = vec![Field::new("model", DataType::Utf8, false)];
    out_fields.extend(
        union
            .fields()
            .iter()
            // Logs written before treatments were logged carry a `treated` column that
            // meant "not held out": the derived column replaces it.
            .filter(|f| !DERIVED_COLUMNS.contains(&f.name().as_str()))
            .map(|f| f.as_ref().clone().with_nullable(true)),
    );
    out_fields.push(Field::new("label", DataType::Float64, true));
    out_fields.push(Field::new("label_ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true));
    out_fields.push(Field::new("treated", DataType::Boolean, false));
    out_fields.push(Field::new("treatment", DataType::Utf8, true));
    let out_schema: SchemaRef = Arc::new(Schema::new(out_fields));

    let outcome_rows: u64 = outcome_files.iter().map(|f| row_count(f)).sum::<Result<u64, _>>()?;
    let passes =
        usize::try_from(outcome_rows.div_ceil(spec.max_outcomes_in_memory as u64)).unwrap_or(usize::MAX).max(1);
    let files_total = (passes * (prediction_files.len() + outcome_files.len() + treatment_files.len())) as u64;
    let mut files_done = 0;

    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = out.file_name().and_then(|n| n.to_str()).unwrap_or("train.parquet");
    let tmp = dir.join(format!(".{name}.tmp"));
    let writer_file = File::create(&tmp).map_err(|e| file_err(&tmp)(e.to_string()))?;
    let mut writer =
        ArrowWriter::try_new(writer_file, out_schema.clone(), None).map_err(|e| file_err(&tmp)(e.to_string()))?;

    let mut report = DatasetReport {
        predictions: 0,
        labeled: 0,
        per_policy: TreatmentPolicy::ALL.iter().map(|p| (*p, 0)).collect(),
        rows_written: 0,
        passes,
    };
    let result = (|| {
        for pass in 0..passes {
            let mut done = |_: &Path| {
                files_done += 1;
                progress(DatasetProgress { files_done, files_total });
            };
            let outcomes = load_by_prediction(&outcome_files, pass, passes, &mut done, "label", |c| {
                c.as_primitive_opt::<Float64Type>().map(|a| a.iter().collect())
            })?;
            let treatments = load_by_prediction(&treatment_files, pass, passes, &mut done, "treatment", |c| {
                c.as_string_opt::<i32>().map(|a| a.iter().map(|v| v.map(str::to_owned)).collect())
            })?;
            let logged = Logged { outcomes: &outcomes, treatments: &treatments };
            for file in &prediction_files {
                join_file(spec, file, pass, passes, logged, &out_schema, &mut writer, &mut report)?;
                files_done += 1;
                progress(DatasetProgress { files_done, files_total });
            }
        }
        let file = writer.into_inner().map_err(|e| file_err(&tmp)(e.to_string()))?;
        file.sync_all().map_err(|e| file_err(&tmp)(e.to_string()))?;
        std::fs::rename(&tmp, out).map_err(|e| file_err(out)(e.to_string()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| report)
}

/// The prediction log files of `model` under each of the log roots `roots`, every date,
/// sorted (none when the model has logged nothing).
pub fn prediction_files(roots: &[PathBuf], model: &str) -> Result<Vec<PathBuf>, DatasetError> {
    table_files(roots, "predictions", model, |_| true)
}

/// The files of one table of the log (`predictions`, `outcomes`, `treatments`) of
/// `model` under each root, whose date passes `keep`.
fn table_files(
    roots: &[PathBuf],
    table: &str,
    model: &str,
    keep: impl Fn(i64) -> bool,
) -> Result<Vec<PathBuf>, DatasetError> {
    let mut files = Vec::new();
    for root in roots {
        files.extend(partition_files(&root.join(table).join(format!("model={model}")), &keep)?);
    }
    Ok(files)
}

/// `*.parquet` files under `dir/date=*/` whose date passes `keep`, sorted.
fn partition_files(dir: &Path, keep: impl Fn(i64) -> bool) -> Result<Vec<PathBuf>, DatasetError> {
    let mut files = Vec::new();
    let Ok(dates) = std::fs::read_dir(dir) else { return Ok(files) };
    for entry in dates {
        let path = entry.map_err(|e| file_err(dir)(e.to_string()))?.path();
        let day =
            path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("date=")).and_then(time::date_to_day);
        if !day.is_some_and(&keep) {
            continue;
        }
        for file in std::fs::read_dir(&path).map_err(|e| file_err(&path)(e.to_string()))? {
            let file = file.map_err(|e| file_err(&path)(e.to_string()))?.path();
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".parquet") && !name.starts_with('.') {
                files.push(file);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, DatasetError> {
    let file = File::open(path).map_err(|e| file_err(path)(e.to_string()))?;
    open_parquet(file).map_err(file_err(path))
}

fn row_count(path: &Path) -> Result<u64, DatasetError> {
    Ok(u64::try_from(open(path)?.metadata().file_metadata().num_rows()).unwrap_or(0))
}

fn batches(path: &Path) -> Result<impl Iterator<Item = Result<RecordBatch, DatasetError>> + '_, DatasetError> {
    let mut reader =
        guarded(|| open(path)?.build().map_err(|e| file_err(path)(e.to_string()))).map_err(file_err(path))?;
    Ok(std::iter::from_fn(move || guarded(|| reader.next().transpose()).map_err(file_err(path)).transpose()))
}

/// Every column of every file, in first-seen order; a column must keep its type.
fn union_schema(files: &[PathBuf]) -> Result<Schema, DatasetError> {
    let mut fields: Vec<Field> = Vec::new();
    for path in files {
        let schema = open(path)?.schema().clone();
        for field in schema.fields() {
            match fields.iter().find(|f| f.name() == field.name()) {
                Some(seen) if seen.data_type() != field.data_type() => {
                    return Err(DatasetError::Schema {
                        column: field.name().clone(),
                        first: seen.data_type().to_string(),
                        second: field.data_type().to_string(),
                        path: path.display().to_string(),
                    });
                }
                Some(_) => {}
                None => fields.push(field.as_ref().clone()),
            }
        }
    }
    Ok(Schema::new(fields))
}

fn bucket(id: &str, passes: usize) -> usize {
    (crate::log::fnv1a(id.as_bytes()) % passes as u64) as usize
}

/// Records of one log table by prediction id: `(ts, value)` pairs.
type ByPrediction<T> = HashMap<String, Vec<(i64, T)>>;

/// Columns of the output that the join derives; prediction files' columns of these names
/// (from logs of an older layout) are left out.
const DERIVED_COLUMNS: [&str; 2] = ["treated", "treatment"];

/// The outcome and treatment records of the current pass.
#[derive(Clone, Copy)]
struct Logged<'a> {
    outcomes: &'a ByPrediction<f64>,
    treatments: &'a ByPrediction<String>,
}

/// Loads the `(ts, column)` values of the outcome or treatment `files` whose prediction
/// id falls in hash partition `pass` of `passes`; `read` turns the column into values
/// (`None`: the column has another type). Rows with a null id or value are skipped.
fn load_by_prediction<T>(
    files: &[PathBuf],
    pass: usize,
    passes: usize,
    done: &mut dyn FnMut(&Path),
    column: &str,
    read: impl Fn(&ArrayRef) -> Option<Vec<Option<T>>>,
) -> Result<ByPrediction<T>, DatasetError> {
    let mut loaded: ByPrediction<T> = HashMap::new();
    for path in files {
        for batch in batches(path)? {
            let batch = batch?;
            let need = |name: &str| {
                batch.column_by_name(name).cloned().ok_or_else(|| file_err(path)(format!("no column `{name}`")))
            };
            let (ids, ts, values) = (need("prediction_id")?, need("ts")?, need(column)?);
            let (Some(ids), Some(ts), Some(values)) =
                (ids.as_string_opt::<i32>(), ts.as_primitive_opt::<TimestampMicrosecondType>(), read(&values))
            else {
                return Err(file_err(path)(format!("not a log file of (prediction_id, ts, {column})")));
            };
            for (i, value) in values.into_iter().enumerate() {
                let Some(value) = value.filter(|_| !ids.is_null(i)) else { continue };
                let id = ids.value(i);
                if bucket(id, passes) == pass {
                    loaded.entry(id.to_owned()).or_default().push((ts.value(i), value));
                }
            }
        }
        done(path);
    }
    Ok(loaded)
}

/// The first treatment logged at or before `outcome_ts` (ties: the smaller name).
fn treatment_for(candidates: &[(i64, String)], outcome_ts: i64) -> Option<&str> {
    candidates
        .iter()
        .filter(|(t, _)| *t <= outcome_ts)
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)))
        .map(|(_, name)| name.as_str())
}

/// The winning outcome for a prediction made at `ts`.
fn label_for(candidates: &[(i64, f64)], ts: i64, window_micros: i64) -> Option<(i64, f64)> {
    candidates
        .iter()
        .filter(|(t, _)| *t >= ts && *t <= ts.saturating_add(window_micros))
        .copied()
        .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
}

#[allow(clippy::too_many_arguments)]
fn join_file(
    spec: &DatasetSpec,
    path: &Path,
    pass: usize,
    passes: usize,
    logged: Logged<'_>,
    out_schema: &SchemaRef,
    writer: &mut ArrowWriter<File>,
    report: &mut DatasetReport,
) -> Result<(), DatasetError> {
    let window = i64::try_from(spec.label_window.as_micros()).unwrap_or(i64::MAX);
    let from = spec.from.map_or(i64::MIN, Timestamp::as_micros);
    let to = spec.to.map_or(i64::MAX, Timestamp::as_micros);
    for batch in batches(path)? {
        let batch = batch?;
        let need = |name: &str| {
            batch.column_by_name(name).cloned().ok_or_else(|| file_err(path)(format!("no column `{name}`")))
        };
        let (ids, ts, in_holdout) = (need("prediction_id")?, need("ts")?, need("in_holdout")?);
        let (Some(ids), Some(ts), Some(in_holdout)) = (
            ids.as_string_opt::<i32>(),
            ts.as_primitive_opt::<TimestampMicrosecondType>(),
            in_holdout.as_boolean_opt(),
        ) else {
            return Err(file_err(path)("not a prediction file".into()));
        };
        let n = batch.num_rows();
        let mut keep = Vec::with_capacity(n);
        let mut labels = Float64Builder::with_capacity(n);
        let mut label_ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut treated_column = BooleanBuilder::with_capacity(n);
        let mut treatment_column = StringBuilder::new();
        for i in 0..n {
            let id = ids.value(i);
            let t = ts.value(i);
            if t < from || t >= to || bucket(id, passes) != pass {
                keep.push(false);
                continue;
            }
            report.predictions += 1;
            let Some((lt, label)) = logged.outcomes.get(id).and_then(|c| label_for(c, t, window)) else {
                keep.push(false);
                continue;
            };
            report.labeled += 1;
            let treatment = logged.treatments.get(id).and_then(|c| treatment_for(c, lt));
            let (h, tr) = (in_holdout.value(i), treatment.is_some());
            for (policy, count) in &mut report.per_policy {
                *count += u64::from(policy.keeps(h, tr));
            }
            let kept = spec.policy.keeps(h, tr);
            keep.push(kept);
            if kept {
                labels.append_value(label);
                label_ts.append_value(lt);
                treated_column.append_value(tr);
                treatment_column.append_option(treatment);
            }
        }
        let mask = BooleanArray::from(keep);
        let rows = mask.true_count();
        if rows == 0 {
            continue;
        }
        let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from(vec![spec.model.as_str(); rows]))];
        // The prediction columns: between `model` and the four derived ones at the end.
        for field in out_schema.fields().iter().skip(1).take(out_schema.fields().len().saturating_sub(5)) {
            let column = match batch.column_by_name(field.name()) {
                Some(c) => arrow_select::filter::filter(c, &mask).map_err(|e| file_err(path)(e.to_string()))?,
                None => new_null_array(field.data_type(), rows),
            };
            columns.push(column);
        }
        columns.push(Arc::new(labels.finish()));
        columns.push(Arc::new(label_ts.finish()));
        columns.push(Arc::new(treated_column.finish()));
        columns.push(Arc::new(treatment_column.finish()));
        let out = RecordBatch::try_new(out_schema.clone(), columns).map_err(|e| file_err(path)(e.to_string()))?;
        writer.write(&out).map_err(|e| file_err(path)(e.to_string()))?;
        report.rows_written += rows as u64;
    }
    Ok(())
}
