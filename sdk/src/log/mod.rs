//! The prediction log: one record per scored row, exactly as scored.
//!
//! [`PredictionRecord`] is the row of docs/design.md §6 and [`LogSchema`] its columns; both
//! encode to a compact, documented binary form (postcard) for spools and queues, and
//! build for every target, the browser included. A [`PredictionSink`] receives a call's
//! rows from the [`Client`](crate::Client) before `predict` returns, as a
//! [`PredictionBatch`] of columns: [`MemorySink`] keeps them in memory as records,
//! [`PredictionLog`] (feature `parquet`) makes them durable in a spool and publishes them
//! as Parquet.

mod batch;
#[cfg(feature = "parquet")]
mod recycle;
#[cfg(feature = "parquet")]
mod spool;
#[cfg(feature = "parquet")]
mod table;
#[cfg(feature = "parquet")]
mod writer;

use std::sync::{Arc, Mutex};

use fresco_abi::InputType;
use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::sync::lock;

pub use batch::{PredictionBatch, PredictionRow};
#[cfg(feature = "parquet")]
pub use table::FloatEncoding;
#[cfg(feature = "parquet")]
pub use writer::{LogConfig, LogStats, OverflowPolicy, PredictionLog, SpoolDurability};

/// Columns every prediction file has, besides entities, inputs and outputs. (`model`
/// and `date` come from the hive path, `model=<name>/date=<YYYY-MM-DD>`.)
pub const PREDICTION_COLUMNS: [&str; 8] =
    ["prediction_id", "ts", "model_version", "holdout", "in_holdout", "eligible", "flag_variant", "latency_us"];

/// The columns of one model version's prediction rows: entity keys, typed inputs,
/// outputs. One schema per file.
///
/// ```
/// use fresco::LogSchema;
/// use fresco::abi::InputType;
///
/// let schema = LogSchema {
///     model: "eta".into(),
///     version: "3".into(),
///     entities: vec!["restaurant_id".into()],
///     inputs: vec![("distance_km".into(), InputType::F64), ("orders_30m".into(), InputType::I64)],
///     outputs: vec!["q10".into(), "q50".into(), "q90".into()],
/// };
/// schema.validate()?;
/// assert_ne!(schema.fingerprint(), 0);
/// # Ok::<(), fresco::LogError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSchema {
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
    /// Entity key columns (strings).
    pub entities: Vec<String>,
    /// Input columns, typed as the model declares them.
    pub inputs: Vec<(String, InputType)>,
    /// Output columns (f64).
    pub outputs: Vec<String>,
}

impl LogSchema {
    /// A stable 64-bit fingerprint (FNV-1a over the encoded schema): equal schemas, equal
    /// fingerprints, on every platform and run.
    pub fn fingerprint(&self) -> u64 {
        fnv1a(&postcard::to_allocvec(self).unwrap_or_default())
    }

    /// Checks that every column name is non-empty and unique across the fixed columns,
    /// entities, inputs and outputs.
    pub fn validate(&self) -> Result<(), LogError> {
        check_model_name(&self.model)?;
        let mut seen: std::collections::HashSet<&str> = PREDICTION_COLUMNS.iter().copied().collect();
        seen.insert("model");
        seen.insert("date");
        let names = self
            .entities
            .iter()
            .map(String::as_str)
            .chain(self.inputs.iter().map(|(n, _)| n.as_str()))
            .chain(self.outputs.iter().map(String::as_str));
        for name in names {
            if name.is_empty() || !seen.insert(name) {
                return Err(LogError::Schema {
                    model: self.model.clone(),
                    reason: format!("column `{name}` is empty or clashes with another column of the log"),
                });
            }
        }
        Ok(())
    }
}

/// 64-bit FNV-1a: stable across platforms and runs (file names, hash partitions).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// Model names become directory names (`model=<name>`): keep them path-safe.
pub(crate) fn check_model_name(model: &str) -> Result<(), LogError> {
    let ok = !model.is_empty()
        && model != "."
        && model != ".."
        && model.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(LogError::Schema {
            model: model.into(),
            reason: "model names in the log are limited to ASCII letters, digits, `-`, `_` and `.`".into(),
        })
    }
}

/// One logged outcome: the label observed for a prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeRecord {
    /// The prediction it belongs to.
    pub prediction_id: String,
    /// When the outcome was observed.
    pub ts: Timestamp,
    /// The label.
    pub label: f64,
}

/// One treatment the app applied on the strength of a prediction (a discount sent, a
/// message shown): what lets a training set tell treated rows from untreated ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreatmentRecord {
    /// The prediction that drove it.
    pub prediction_id: String,
    /// When it was applied.
    pub ts: Timestamp,
    /// What was done, e.g. `discount-10`.
    pub treatment: String,
}

/// One logged prediction (one row of a batch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionRecord {
    /// The prediction's id (a UUIDv7, in its hyphenated text form).
    pub prediction_id: String,
    /// When it was made.
    pub ts: Timestamp,
    /// Model name.
    pub model: String,
    /// Model version.
    pub model_version: String,
    /// Entity keys of the request, by name.
    pub entities: Vec<(String, String)>,
    /// Input values as scored, in the model's input order (after missing-value policy).
    pub inputs: Vec<f64>,
    /// Outputs, in the model's output order.
    pub outputs: Vec<f64>,
    /// Name of the holdout applied, if any.
    pub holdout: Option<String>,
    /// Whether the entity is in that holdout.
    pub in_holdout: bool,
    /// Whether the entity may be treated on this score (it is not held out). Whether it
    /// was treated is another record: [`TreatmentRecord`].
    pub eligible: bool,
    /// The feature-flag variant that chose the model, if any.
    pub flag_variant: Option<String>,
    /// Time from the request to the score, in microseconds.
    pub latency_us: u64,
}

impl PredictionRecord {
    /// Encodes the record (postcard).
    ///
    /// ```
    /// use fresco::{PredictionRecord, Timestamp};
    ///
    /// let record = PredictionRecord {
    ///     prediction_id: "0190b3c4-0000-7000-8000-000000000000".into(),
    ///     ts: Timestamp::from_secs(1_700_000_000),
    ///     model: "eta".into(),
    ///     model_version: "3".into(),
    ///     entities: vec![("restaurant_id".into(), "r-17".into())],
    ///     inputs: vec![3.2, f64::NAN],
    ///     outputs: vec![12.5],
    ///     holdout: None,
    ///     in_holdout: false,
    ///     eligible: true,
    ///     flag_variant: None,
    ///     latency_us: 42,
    /// };
    /// let bytes = record.encode()?;
    /// let back = PredictionRecord::decode(&bytes)?;
    /// assert_eq!(back.outputs, record.outputs);
    /// assert!(back.inputs[1].is_nan());
    /// # Ok::<(), fresco::LogError>(())
    /// ```
    pub fn encode(&self) -> Result<Vec<u8>, LogError> {
        postcard::to_allocvec(self).map_err(|e| LogError::Encoding { reason: e.to_string() })
    }

    /// Decodes a record written by [`encode`](Self::encode).
    pub fn decode(bytes: &[u8]) -> Result<Self, LogError> {
        postcard::from_bytes(bytes).map_err(|e| LogError::Encoding { reason: e.to_string() })
    }
}

/// Why a record could not be logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The sink is full and its policy is to refuse.
    #[error("the prediction log is full ({capacity} records)")]
    Full {
        /// Its capacity.
        capacity: usize,
    },
    /// A record could not be encoded or decoded.
    #[error("prediction record encoding: {reason}")]
    Encoding {
        /// What the encoder said.
        reason: String,
    },
    /// Writing failed (a full disk, a read-only directory, ...).
    #[error("prediction log: {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A schema's columns clash.
    #[error("prediction log schema of model `{model}`: {reason}")]
    Schema {
        /// The model.
        model: String,
        /// What clashes.
        reason: String,
    },
    /// Building or reading a Parquet file failed.
    #[error("prediction log: {path}: {reason}")]
    Parquet {
        /// The file.
        path: String,
        /// What the Parquet library said.
        reason: String,
    },
    /// The log's writer has stopped (after an earlier error, or the log was closed).
    #[error("the prediction log is closed: {reason}")]
    Closed {
        /// Why.
        reason: String,
    },
    /// Publishing (or uploading) is failing and being retried; the records wait in the
    /// spool.
    #[error("prediction log: publishing is failing (retried): {reason}")]
    Failing {
        /// The last error.
        reason: String,
    },
    /// A file of the log's name already exists with other rows: file names are written
    /// once, by one writer.
    #[error("prediction log: {path} already exists with other rows; each file name is written once")]
    Conflict {
        /// The file.
        path: String,
    },
    /// Another process writes under this root (it holds the root's lock file).
    #[error(
        "prediction log: another process is writing under {root} (it holds {root}/.writer.lock); give each process a root of its own"
    )]
    Locked {
        /// The root.
        root: String,
    },
    /// Uploading a published file to object storage failed (retried).
    #[cfg(feature = "object-store")]
    #[error("prediction log upload: {0}")]
    Upload(#[from] crate::bucket::BucketError),
    /// The sink does not keep this kind of record.
    #[error("this sink does not log {records}")]
    Unsupported {
        /// `outcomes` or `treatments`.
        records: &'static str,
    },
}

/// Where the client sends prediction records. Called before `predict` returns: an error
/// fails the prediction, so a returned prediction is a logged one.
pub trait PredictionSink: Send + Sync + 'static {
    /// Takes records, all of one schema: what [`append_batch`](Self::append_batch)
    /// hands over unless a sink takes batches itself.
    fn append(&self, schema: &Arc<LogSchema>, records: Vec<PredictionRecord>) -> Result<(), LogError>;

    /// Takes the rows of one `predict` call as columns: what the [`Client`](crate::Client)
    /// calls. The default turns them into records for [`append`](Self::append); a sink
    /// that stores columns ([`PredictionLog`]) takes them as they are.
    fn append_batch(&self, batch: PredictionBatch) -> Result<(), LogError> {
        self.append(batch.schema(), batch.to_records())
    }

    /// An empty batch of `schema`'s rows with room for `rows`, for the
    /// [`Client`](crate::Client) to fill and pass to [`append_batch`](Self::append_batch).
    /// The default allocates one. A sink that hands batches to another thread
    /// ([`PredictionLog`]) returns the ones that thread is done with: a batch allocated
    /// by the calling thread and freed by another on every call makes glibc's allocator
    /// slow the caller's later allocations (docs/benchmarks.md).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use fresco::{LogSchema, MemorySink, PredictionSink};
    ///
    /// let schema = Arc::new(LogSchema { model: "m".into(), version: "1".into(),
    ///     entities: vec![], inputs: vec![], outputs: vec!["y".into()] });
    /// let batch = MemorySink::new().empty_batch(schema, 1);
    /// assert!(batch.is_empty());
    /// ```
    fn empty_batch(&self, schema: Arc<LogSchema>, rows: usize) -> PredictionBatch {
        PredictionBatch::with_capacity(schema, rows)
    }

    /// Takes outcomes of `model`'s predictions.
    fn append_outcomes(&self, model: &str, records: Vec<OutcomeRecord>) -> Result<(), LogError> {
        let _ = (model, records);
        Err(LogError::Unsupported { records: "outcomes" })
    }

    /// Takes treatments applied on `model`'s predictions.
    fn append_treatments(&self, model: &str, records: Vec<TreatmentRecord>) -> Result<(), LogError> {
        let _ = (model, records);
        Err(LogError::Unsupported { records: "treatments" })
    }

    /// Makes everything appended so far durable where the sink keeps it for readers (a
    /// [`PredictionLog`]: published as Parquet, and uploaded). Sinks that hold records
    /// where they are read (memory) have nothing to do.
    fn flush(&self) -> Result<(), LogError> {
        Ok(())
    }
}

/// A sink that keeps records in memory, up to a capacity (then it refuses).
///
/// ```
/// use fresco::{MemorySink, PredictionSink};
///
/// let sink = MemorySink::with_capacity(2);
/// assert!(sink.is_empty());
/// # let record = |id: &str| fresco::PredictionRecord { prediction_id: id.into(),
/// #     ts: fresco::Timestamp::from_secs(0), model: "m".into(), model_version: "1".into(),
/// #     entities: vec![], inputs: vec![], outputs: vec![], holdout: None, in_holdout: false,
/// #     eligible: true, flag_variant: None, latency_us: 0 };
/// # let schema = std::sync::Arc::new(fresco::LogSchema { model: "m".into(), version: "1".into(),
/// #     entities: vec![], inputs: vec![], outputs: vec![] });
/// sink.append(&schema, vec![record("a"), record("b")])?;
/// assert!(sink.append(&schema, vec![record("c")]).is_err());
/// assert_eq!(sink.take().len(), 2);
/// # Ok::<(), fresco::LogError>(())
/// ```
#[derive(Debug)]
pub struct MemorySink {
    records: Mutex<Vec<PredictionRecord>>,
    outcomes: Mutex<Vec<(String, OutcomeRecord)>>,
    treatments: Mutex<Vec<(String, TreatmentRecord)>>,
    capacity: usize,
}

impl Default for MemorySink {
    fn default() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }
}

impl MemorySink {
    /// Default capacity: one million records.
    pub const DEFAULT_CAPACITY: usize = 1_000_000;

    /// A sink holding at most [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) records.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sink holding at most `capacity` records.
    pub fn with_capacity(capacity: usize) -> Self {
        MemorySink {
            records: Mutex::new(Vec::new()),
            outcomes: Mutex::new(Vec::new()),
            treatments: Mutex::new(Vec::new()),
            capacity,
        }
    }

    /// A copy of the records so far.
    pub fn records(&self) -> Vec<PredictionRecord> {
        self.lock().clone()
    }

    /// Takes the records so far, leaving the sink empty.
    pub fn take(&self) -> Vec<PredictionRecord> {
        std::mem::take(&mut *self.lock())
    }

    /// Outcomes so far, with their model.
    pub fn outcomes(&self) -> Vec<(String, OutcomeRecord)> {
        lock(&self.outcomes).clone()
    }

    /// Treatments so far, with their model.
    pub fn treatments(&self) -> Vec<(String, TreatmentRecord)> {
        lock(&self.treatments).clone()
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PredictionRecord>> {
        lock(&self.records)
    }
}

impl PredictionSink for MemorySink {
    fn append(&self, _schema: &Arc<LogSchema>, records: Vec<PredictionRecord>) -> Result<(), LogError> {
        push_within(&self.records, self.capacity, records)
    }

    fn append_outcomes(&self, model: &str, records: Vec<OutcomeRecord>) -> Result<(), LogError> {
        push_within(&self.outcomes, self.capacity, records.into_iter().map(|r| (model.to_owned(), r)).collect())
    }

    fn append_treatments(&self, model: &str, records: Vec<TreatmentRecord>) -> Result<(), LogError> {
        push_within(&self.treatments, self.capacity, records.into_iter().map(|r| (model.to_owned(), r)).collect())
    }
}

/// Appends all of `items` to `held`, or none if that would exceed `capacity`.
fn push_within<T>(held: &Mutex<Vec<T>>, capacity: usize, items: Vec<T>) -> Result<(), LogError> {
    let mut held = lock(held);
    if held.len().saturating_add(items.len()) > capacity {
        return Err(LogError::Full { capacity });
    }
    held.extend(items);
    Ok(())
}

impl<S: PredictionSink + ?Sized> PredictionSink for Arc<S> {
    fn append(&self, schema: &Arc<LogSchema>, records: Vec<PredictionRecord>) -> Result<(), LogError> {
        (**self).append(schema, records)
    }

    fn append_batch(&self, batch: PredictionBatch) -> Result<(), LogError> {
        (**self).append_batch(batch)
    }

    fn empty_batch(&self, schema: Arc<LogSchema>, rows: usize) -> PredictionBatch {
        (**self).empty_batch(schema, rows)
    }

    fn append_outcomes(&self, model: &str, records: Vec<OutcomeRecord>) -> Result<(), LogError> {
        (**self).append_outcomes(model, records)
    }

    fn append_treatments(&self, model: &str, records: Vec<TreatmentRecord>) -> Result<(), LogError> {
        (**self).append_treatments(model, records)
    }

    fn flush(&self) -> Result<(), LogError> {
        (**self).flush()
    }
}
