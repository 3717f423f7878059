//! The prediction log: one record per scored row, exactly as scored.
//!
//! [`PredictionRecord`] is the row of DESIGN §6; it encodes to a compact, documented
//! binary form (postcard) for spools and queues, and builds for every target, the
//! browser included. A [`PredictionSink`] receives records from the
//! [`Client`](crate::Client) before `predict` returns; [`MemorySink`] keeps them in
//! memory.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

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
    /// Whether the entity may be treated on this score (not held out).
    pub treated: bool,
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
    ///     treated: true,
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
    /// Writing failed.
    #[error("prediction log I/O: {source}")]
    Io {
        /// The underlying error.
        #[from]
        source: std::io::Error,
    },
}

/// Where the client sends prediction records. Called before `predict` returns: an error
/// fails the prediction, so a returned prediction is a logged one.
pub trait PredictionSink: Send + Sync + 'static {
    /// Takes the records of one `predict` call.
    fn append(&self, records: Vec<PredictionRecord>) -> Result<(), LogError>;
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
/// #     treated: true, flag_variant: None, latency_us: 0 };
/// sink.append(vec![record("a"), record("b")])?;
/// assert!(sink.append(vec![record("c")]).is_err());
/// assert_eq!(sink.take().len(), 2);
/// # Ok::<(), fresco::LogError>(())
/// ```
#[derive(Debug)]
pub struct MemorySink {
    records: Mutex<Vec<PredictionRecord>>,
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
        MemorySink { records: Mutex::new(Vec::new()), capacity }
    }

    /// A copy of the records so far.
    pub fn records(&self) -> Vec<PredictionRecord> {
        self.lock().clone()
    }

    /// Takes the records so far, leaving the sink empty.
    pub fn take(&self) -> Vec<PredictionRecord> {
        std::mem::take(&mut *self.lock())
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
        // A panic elsewhere while appending cannot leave a half-written record: appends
        // are a single `extend`, so the data is usable even when poisoned.
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl PredictionSink for MemorySink {
    fn append(&self, records: Vec<PredictionRecord>) -> Result<(), LogError> {
        let mut held = self.lock();
        if held.len() + records.len() > self.capacity {
            return Err(LogError::Full { capacity: self.capacity });
        }
        held.extend(records);
        Ok(())
    }
}

impl<S: PredictionSink + ?Sized> PredictionSink for std::sync::Arc<S> {
    fn append(&self, records: Vec<PredictionRecord>) -> Result<(), LogError> {
        (**self).append(records)
    }
}
