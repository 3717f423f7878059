//! [`PredictionBatch`]: the rows of one `predict` call, column by column.
//!
//! The [`Client`](crate::Client) appends each scored row's values straight into a batch's
//! columns (no heap string per row), the spool writes the batch as one frame, and the
//! log's writer extends its Arrow columns from the batch's slices: a row's values are
//! copied, never rebuilt field by field on another thread.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{LogError, LogSchema, PredictionRecord};
use crate::Timestamp;

/// One row as it is appended to a [`PredictionBatch`]: borrowed, so nothing is
/// allocated for it.
///
/// `inputs` and `outputs` are in the schema's order; a row with fewer values than the
/// schema has columns has the rest missing (NaN), one with more is refused. Entity keys
/// are looked up by the schema's entity names; keys the schema does not name are not
/// logged.
#[derive(Debug, Clone, Copy)]
pub struct PredictionRow<'a> {
    /// The prediction's id (a UUIDv7 in its hyphenated text form).
    pub prediction_id: &'a str,
    /// When it was made.
    pub ts: Timestamp,
    /// Model version.
    pub model_version: &'a str,
    /// Entity keys of the request, by name.
    pub entities: &'a [(String, String)],
    /// Input values as scored (NaN: missing).
    pub inputs: &'a [f64],
    /// Outputs.
    pub outputs: &'a [f64],
    /// Name of the holdout applied, if any.
    pub holdout: Option<&'a str>,
    /// Whether the entity is in that holdout.
    pub in_holdout: bool,
    /// Whether the entity may be treated on this score.
    pub eligible: bool,
    /// The feature-flag variant that chose the model, if any.
    pub flag_variant: Option<&'a str>,
    /// Time from the request to the score, in microseconds.
    pub latency_us: u64,
}

/// Optional strings: one text, cut at `ends`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Texts {
    /// Where each value ends in `text`.
    ends: Vec<u32>,
    /// The values, back to back.
    text: String,
    /// Which values are missing; empty while none is.
    missing: Vec<bool>,
}

impl Texts {
    fn len(&self) -> usize {
        self.ends.len()
    }

    // Called by the log's batch pool only.
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    fn clear(&mut self) {
        self.ends.clear();
        self.text.clear();
        self.missing.clear();
    }

    fn reserve(&mut self, values: usize, bytes: usize) {
        self.ends.reserve_exact(values);
        self.text.reserve_exact(bytes);
    }

    /// Bytes of heap it holds.
    // Read by the log's batch pool only.
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    fn capacity_bytes(&self) -> usize {
        4 * self.ends.capacity() + self.text.capacity() + self.missing.capacity()
    }

    fn push(&mut self, value: Option<&str>) -> Result<(), LogError> {
        let value_or_empty = value.unwrap_or_default();
        let end = self
            .text
            .len()
            .checked_add(value_or_empty.len())
            .and_then(|end| u32::try_from(end).ok())
            .ok_or_else(|| LogError::Encoding { reason: "a batch exceeds 4 GiB of text".into() })?;
        match value {
            None => {
                // The first missing value: every earlier one was present.
                self.missing.resize(self.ends.len(), false);
                self.missing.push(true);
            }
            Some(_) if !self.missing.is_empty() => self.missing.push(false),
            Some(_) => {}
        }
        self.text.push_str(value_or_empty);
        self.ends.push(end);
        Ok(())
    }

    /// Cuts back to the first `values` values.
    fn truncate(&mut self, values: usize) {
        let end = values.checked_sub(1).and_then(|v| self.ends.get(v)).map_or(0, |&e| e as usize);
        self.ends.truncate(values);
        self.text.truncate(end);
        self.missing.truncate(values);
    }

    /// Value `i`, `None` if missing (or out of range).
    fn get(&self, i: usize) -> Option<&str> {
        if self.missing.get(i).copied().unwrap_or(false) {
            return None;
        }
        let start = match i.checked_sub(1) {
            Some(before) => *self.ends.get(before)? as usize,
            None => 0,
        };
        self.text.get(start..*self.ends.get(i)? as usize)
    }

    /// Checks what a decoder cannot: `values` values, each cut on a character boundary.
    fn check(&self, values: usize) -> Result<(), String> {
        if self.ends.len() != values || !(self.missing.is_empty() || self.missing.len() == values) {
            return Err(format!("{} text values where {values} were expected", self.ends.len()));
        }
        let mut start = 0;
        for &end in &self.ends {
            let end = end as usize;
            if end < start || !self.text.is_char_boundary(end) {
                return Err(format!("a text value ends at byte {end}, not a value's end"));
            }
            start = end;
        }
        if start != self.text.len() {
            return Err(format!("{} bytes of text after the last value", self.text.len() - start));
        }
        Ok(())
    }
}

/// Which of a row's text cells is which: these four, then one per entity of the schema.
pub(crate) mod cell {
    pub(crate) const PREDICTION_ID: usize = 0;
    pub(crate) const MODEL_VERSION: usize = 1;
    pub(crate) const HOLDOUT: usize = 2;
    pub(crate) const FLAG_VARIANT: usize = 3;
    /// The first entity's.
    pub(crate) const ENTITIES: usize = 4;
}

/// Text cells a row of `schema` has.
fn text_cells(schema: &LogSchema) -> usize {
    cell::ENTITIES + schema.entities.len()
}

/// Bits of [`BatchColumns::flags`].
const IN_HOLDOUT: u8 = 1;
const ELIGIBLE: u8 = 2;

/// The rows of a batch, as the spool stores them (postcard). A handful of vectors
/// whatever the schema, so that a one-row batch costs a handful of allocations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct BatchColumns {
    /// Each row's text cells (see [`cell`]), row after row.
    texts: Texts,
    ts: Vec<i64>,
    /// Each row's inputs, then its outputs, row after row.
    values: Vec<f64>,
    /// Each row's `in_holdout` and `eligible` bits.
    flags: Vec<u8>,
    latency_us: Vec<u64>,
}

impl BatchColumns {
    /// Empties the columns, keeping their memory.
    // Called by the log's batch pool only.
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    fn clear(&mut self) {
        self.texts.clear();
        self.ts.clear();
        self.values.clear();
        self.flags.clear();
        self.latency_us.clear();
    }

    /// Bytes of heap the columns hold.
    // Read by the log's batch pool only.
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    fn capacity_bytes(&self) -> usize {
        self.texts.capacity_bytes()
            + 8 * (self.ts.capacity() + self.values.capacity() + self.latency_us.capacity())
            + self.flags.capacity()
    }

    /// Appends the columns' postcard encoding to `buf`: the very bytes their
    /// `Serialize` makes (so either reads what the other wrote), but the values are
    /// copied in one pass where serde would encode them one f64 at a time (5 % of a
    /// one-core log's time).
    pub(crate) fn encode_into(&self, buf: Vec<u8>) -> Result<Vec<u8>, postcard::Error> {
        // A sequence is its length (a varint, as a `usize` is), then its elements; an
        // f64 is its 8 little-endian bytes.
        let mut buf = postcard::to_extend(&(&self.texts, &self.ts, self.values.len()), buf)?;
        let start = buf.len();
        buf.resize(start.saturating_add(std::mem::size_of_val(self.values.as_slice())), 0);
        for (to, value) in buf[start..].chunks_exact_mut(8).zip(&self.values) {
            to.copy_from_slice(&value.to_le_bytes());
        }
        postcard::to_extend(&(&self.flags, &self.latency_us), buf)
    }

    /// Bytes its encoding takes at most, about (for the encoder's first allocation).
    pub(crate) fn encoded_len_hint(&self) -> usize {
        let rows = self.ts.len();
        self.texts.text.len()
            + 5 * self.texts.ends.len()
            + self.texts.missing.len()
            + 8 * self.values.len()
            + 21 * rows
            + 32
    }
}

/// Prediction rows of one schema, column by column: what `predict` hands a
/// [`PredictionSink`](super::PredictionSink).
///
/// ```
/// use std::sync::Arc;
/// use fresco::{LogSchema, Timestamp};
/// use fresco::abi::InputType;
/// use fresco::log::{PredictionBatch, PredictionRow};
///
/// let schema = Arc::new(LogSchema {
///     model: "eta".into(),
///     version: "3".into(),
///     entities: vec!["restaurant_id".into()],
///     inputs: vec![("distance_km".into(), InputType::F64), ("orders_30m".into(), InputType::I64)],
///     outputs: vec!["q50".into()],
/// });
/// let mut batch = PredictionBatch::new(schema.clone());
/// batch.push(PredictionRow {
///     prediction_id: "0190b3c4-0000-7000-8000-000000000000",
///     ts: Timestamp::from_secs(1_700_000_000),
///     model_version: "3",
///     entities: &[("restaurant_id".into(), "r-17".into())],
///     inputs: &[3.2, f64::NAN],
///     outputs: &[12.5],
///     holdout: None,
///     in_holdout: false,
///     eligible: true,
///     flag_variant: Some("b"),
///     latency_us: 42,
/// })?;
/// assert_eq!(batch.len(), 1);
///
/// // The spool's form, and back.
/// let back = PredictionBatch::decode(schema, &batch.encode()?)?;
/// let record = &back.to_records()[0];
/// assert_eq!(record.entities, [("restaurant_id".to_string(), "r-17".to_string())]);
/// assert!(record.inputs[1].is_nan());
/// assert_eq!(record.flag_variant.as_deref(), Some("b"));
/// # Ok::<(), fresco::LogError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionBatch {
    schema: Arc<LogSchema>,
    columns: BatchColumns,
}

impl PredictionBatch {
    /// An empty batch of `schema`'s rows.
    pub fn new(schema: Arc<LogSchema>) -> Self {
        Self::with_capacity(schema, 0)
    }

    /// An empty batch with room for `rows` rows.
    pub fn with_capacity(schema: Arc<LogSchema>, rows: usize) -> Self {
        let mut batch = PredictionBatch { schema, columns: BatchColumns::default() };
        batch.reserve(rows);
        batch
    }

    /// Empties the batch, keeping its memory, for rows of `schema`, with room for
    /// `rows` of them.
    // Called by the log's batch pool only.
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    pub(crate) fn reset(&mut self, schema: Arc<LogSchema>, rows: usize) {
        self.columns.clear();
        self.schema = schema;
        self.reserve(rows);
    }

    fn reserve(&mut self, rows: usize) {
        let schema = &*self.schema;
        let cells = rows.saturating_mul(text_cells(schema));
        // A UUID in text is 36 bytes; entity keys and the rest, a guess.
        let bytes = rows.saturating_mul(36 + schema.version.len() + 16 * schema.entities.len());
        let width = schema.inputs.len() + schema.outputs.len();
        let c = &mut self.columns;
        c.texts.reserve(cells, bytes);
        c.ts.reserve_exact(rows);
        c.values.reserve_exact(rows.saturating_mul(width));
        c.flags.reserve_exact(rows);
        c.latency_us.reserve_exact(rows);
    }

    /// Bytes of heap the batch holds.
    // Read by the log's batch pool only.
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.columns.capacity_bytes()
    }

    /// The schema of every row.
    pub fn schema(&self) -> &Arc<LogSchema> {
        &self.schema
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.columns.ts.len()
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a row. A row with more inputs or outputs than the schema has columns is
    /// refused ([`LogError::Schema`]), and the batch is left as it was.
    pub fn push(&mut self, row: PredictionRow<'_>) -> Result<(), LogError> {
        let schema = &*self.schema;
        let (n_in, n_out) = (schema.inputs.len(), schema.outputs.len());
        if row.inputs.len() > n_in || row.outputs.len() > n_out {
            return Err(LogError::Schema {
                model: schema.model.clone(),
                reason: format!(
                    "a row of {} inputs and {} outputs, but the log's schema has {n_in} and {n_out}",
                    row.inputs.len(),
                    row.outputs.len()
                ),
            });
        }
        // Only the texts can fail (past 4 GiB): push them first, then undo on error.
        let c = &mut self.columns;
        let before = c.texts.len();
        let pushed = (|| {
            c.texts.push(Some(row.prediction_id))?;
            c.texts.push(Some(row.model_version))?;
            c.texts.push(row.holdout)?;
            c.texts.push(row.flag_variant)?;
            for name in &schema.entities {
                c.texts.push(row.entities.iter().find(|(n, _)| n == name).map(|(_, k)| k.as_str()))?;
            }
            Ok(())
        })();
        if let Err(e) = pushed {
            c.texts.truncate(before);
            return Err(e);
        }
        c.ts.push(row.ts.as_micros());
        c.values.extend_from_slice(row.inputs);
        c.values.resize(c.values.len() + (n_in - row.inputs.len()), f64::NAN);
        c.values.extend_from_slice(row.outputs);
        c.values.resize(c.values.len() + (n_out - row.outputs.len()), f64::NAN);
        c.flags.push(if row.in_holdout { IN_HOLDOUT } else { 0 } | if row.eligible { ELIGIBLE } else { 0 });
        c.latency_us.push(row.latency_us);
        Ok(())
    }

    /// Text cell `cell` (see [`cell`]) of row `row`; `None` if missing.
    pub(crate) fn text(&self, row: usize, cell: usize) -> Option<&str> {
        self.columns.texts.get(row.checked_mul(text_cells(&self.schema))?.checked_add(cell)?)
    }

    /// The rows' times, in microseconds.
    // Read by the Parquet writer and the spool only.
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    pub(crate) fn ts(&self) -> &[i64] {
        &self.columns.ts
    }

    /// Each row's inputs then outputs, row after row.
    // Read by the Parquet writer and the spool only.
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    pub(crate) fn values(&self) -> &[f64] {
        &self.columns.values
    }

    /// Whether row `row`'s entity is in the holdout, and whether it may be treated.
    pub(crate) fn holdout_flags(&self, row: usize) -> (bool, bool) {
        let flags = self.columns.flags.get(row).copied().unwrap_or(0);
        (flags & IN_HOLDOUT != 0, flags & ELIGIBLE != 0)
    }

    /// The rows' latencies, in microseconds.
    // Read by the Parquet writer and the spool only.
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    pub(crate) fn latencies(&self) -> &[u64] {
        &self.columns.latency_us
    }

    /// A batch of `records`, all of `schema` (their `model` is the schema's).
    pub fn from_records(schema: Arc<LogSchema>, records: &[PredictionRecord]) -> Result<Self, LogError> {
        let mut batch = Self::with_capacity(schema, records.len());
        for r in records {
            batch.push(PredictionRow {
                prediction_id: &r.prediction_id,
                ts: r.ts,
                model_version: &r.model_version,
                entities: &r.entities,
                inputs: &r.inputs,
                outputs: &r.outputs,
                holdout: r.holdout.as_deref(),
                in_holdout: r.in_holdout,
                eligible: r.eligible,
                flag_variant: r.flag_variant.as_deref(),
                latency_us: r.latency_us,
            })?;
        }
        Ok(batch)
    }

    /// The rows as records (entity keys in the schema's order, missing ones left out).
    pub fn to_records(&self) -> Vec<PredictionRecord> {
        let n_in = self.schema.inputs.len();
        let width = n_in + self.schema.outputs.len();
        let owned = |row, cell| self.text(row, cell).map(str::to_owned);
        (0..self.len())
            .map(|r| {
                let values = self.columns.values.get(r * width..(r + 1) * width).unwrap_or_default();
                let (in_holdout, eligible) = self.holdout_flags(r);
                PredictionRecord {
                    prediction_id: owned(r, cell::PREDICTION_ID).unwrap_or_default(),
                    ts: Timestamp::from_micros(self.columns.ts[r]),
                    model: self.schema.model.clone(),
                    model_version: owned(r, cell::MODEL_VERSION).unwrap_or_default(),
                    entities: (self.schema.entities.iter().enumerate())
                        .filter_map(|(e, name)| Some((name.clone(), owned(r, cell::ENTITIES + e)?)))
                        .collect(),
                    inputs: values.get(..n_in).unwrap_or_default().to_vec(),
                    outputs: values.get(n_in..).unwrap_or_default().to_vec(),
                    holdout: owned(r, cell::HOLDOUT),
                    in_holdout,
                    eligible,
                    flag_variant: owned(r, cell::FLAG_VARIANT),
                    latency_us: self.columns.latency_us[r],
                }
            })
            .collect()
    }

    /// Encodes the rows (postcard; the schema is not included).
    pub fn encode(&self) -> Result<Vec<u8>, LogError> {
        let buffer = Vec::with_capacity(self.columns.encoded_len_hint());
        self.columns.encode_into(buffer).map_err(|e| LogError::Encoding { reason: e.to_string() })
    }

    /// Decodes rows written by [`encode`](Self::encode) for `schema`, checking that
    /// every column has a value per row.
    pub fn decode(schema: Arc<LogSchema>, bytes: &[u8]) -> Result<Self, LogError> {
        let columns = postcard::from_bytes(bytes).map_err(|e| LogError::Encoding { reason: e.to_string() })?;
        Self::from_columns(schema, columns)
    }

    /// A batch of decoded columns, once they are checked against `schema`.
    pub(crate) fn from_columns(schema: Arc<LogSchema>, columns: BatchColumns) -> Result<Self, LogError> {
        let c = &columns;
        let rows = c.ts.len();
        let cells = text_cells(&schema);
        let width = schema.inputs.len() + schema.outputs.len();
        let checked = (|| {
            c.texts.check(rows.checked_mul(cells).ok_or("too many rows")?)?;
            let required = [cell::PREDICTION_ID, cell::MODEL_VERSION];
            if c.texts.missing.iter().enumerate().any(|(i, &missing)| missing && required.contains(&(i % cells))) {
                return Err("a prediction id or model version is missing".into());
            }
            if rows.checked_mul(width) != Some(c.values.len()) {
                return Err(format!(
                    "{} values for {rows} rows of {} inputs and {} outputs",
                    c.values.len(),
                    schema.inputs.len(),
                    schema.outputs.len()
                ));
            }
            if [c.flags.len(), c.latency_us.len()] != [rows; 2]
                || c.flags.iter().any(|f| f & !(IN_HOLDOUT | ELIGIBLE) != 0)
            {
                return Err(format!("the flags or latencies are not {rows} valid values"));
            }
            Ok::<_, String>(())
        })();
        match checked {
            Ok(()) => Ok(PredictionBatch { schema, columns }),
            Err(reason) => Err(LogError::Encoding { reason: format!("a batch of model `{}`: {reason}", schema.model) }),
        }
    }

    /// The columns, for the spool.
    // Read by the Parquet writer and the spool only.
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    pub(crate) fn columns(&self) -> &BatchColumns {
        &self.columns
    }
}

#[cfg(test)]
mod tests {
    use fresco_abi::InputType;
    use proptest::prelude::*;

    use super::*;

    fn schema() -> Arc<LogSchema> {
        Arc::new(LogSchema {
            model: "eta".into(),
            version: "3".into(),
            entities: vec!["restaurant_id".into(), "customer_id".into()],
            inputs: vec![("a".into(), InputType::F64), ("b".into(), InputType::I64)],
            outputs: vec!["q50".into()],
        })
    }

    prop_compose! {
        fn record()(
            id in "[a-z0-9-]{0,40}",
            ts in any::<i64>(),
            version in "\\PC{0,3}",
            restaurant in proptest::option::of("\\PC{0,8}"),
            customer in proptest::option::of("\\PC{0,8}"),
            inputs in proptest::collection::vec(any::<f64>(), 0..=2),
            outputs in proptest::collection::vec(any::<f64>(), 0..=1),
            holdout in proptest::option::of("\\PC{0,5}"),
            in_holdout in any::<bool>(),
            eligible in any::<bool>(),
            flag_variant in proptest::option::of("\\PC{0,5}"),
            latency_us in any::<u64>(),
        ) -> PredictionRecord {
            let entities = [("customer_id", customer), ("restaurant_id", restaurant)]
                .into_iter()
                .filter_map(|(n, k)| Some((n.to_string(), k?)))
                .collect();
            PredictionRecord {
                prediction_id: id, ts: Timestamp::from_micros(ts), model: "eta".into(), model_version: version,
                entities, inputs, outputs, holdout, in_holdout, eligible, flag_variant, latency_us,
            }
        }
    }

    /// What a record looks like after a batch: the schema's entity order, values padded
    /// with NaN, compared by bits.
    fn normalized(mut r: PredictionRecord, schema: &LogSchema) -> (PredictionRecord, Vec<u64>) {
        r.entities.sort_by_key(|(n, _)| schema.entities.iter().position(|e| e == n));
        r.inputs.resize(schema.inputs.len(), f64::NAN);
        r.outputs.resize(schema.outputs.len(), f64::NAN);
        let bits = r.inputs.iter().chain(&r.outputs).map(|v| v.to_bits()).collect();
        (PredictionRecord { inputs: vec![], outputs: vec![], ..r }, bits)
    }

    proptest! {
        #[test]
        fn records_survive_a_batch_and_its_encoding(records in proptest::collection::vec(record(), 0..20)) {
            let schema = schema();
            let batch = PredictionBatch::from_records(schema.clone(), &records).unwrap();
            prop_assert_eq!(batch.len(), records.len());
            let back = PredictionBatch::decode(schema.clone(), &batch.encode().unwrap()).unwrap();
            let expected: Vec<_> = records.into_iter().map(|r| normalized(r, &schema)).collect();
            let got: Vec<_> = back.to_records().into_iter().map(|r| normalized(r, &schema)).collect();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn the_one_pass_encoding_is_the_derived_one(records in proptest::collection::vec(record(), 0..20)) {
            // Segments written before `encode_into` are read by the derived decoder, and
            // so are those written since: the bytes must not differ.
            let batch = PredictionBatch::from_records(schema(), &records).unwrap();
            prop_assert_eq!(batch.encode().unwrap(), postcard::to_allocvec(batch.columns()).unwrap());
        }

        #[test]
        fn any_bytes_decode_to_a_checked_batch_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(batch) = PredictionBatch::decode(schema(), &bytes) {
                // Whatever decodes can be read back in full.
                prop_assert_eq!(batch.to_records().len(), batch.len());
            }
        }

        #[test]
        fn a_corrupted_encoding_is_refused_or_still_consistent(
            records in proptest::collection::vec(record(), 1..5),
            at in any::<prop::sample::Index>(),
            flip in 1u8..,
        ) {
            let schema = schema();
            let mut bytes = PredictionBatch::from_records(schema.clone(), &records).unwrap().encode().unwrap();
            let i = at.index(bytes.len());
            bytes[i] ^= flip;
            if let Ok(batch) = PredictionBatch::decode(schema, &bytes) {
                prop_assert_eq!(batch.to_records().len(), batch.len());
            }
        }
    }

    /// A row of `inputs` and one output, nothing else set.
    fn row(inputs: &[f64]) -> PredictionRow<'_> {
        PredictionRow {
            prediction_id: "p",
            ts: Timestamp::from_secs(1),
            model_version: "3",
            entities: &[],
            inputs,
            outputs: &[1.0],
            holdout: None,
            in_holdout: false,
            eligible: true,
            flag_variant: None,
            latency_us: 1,
        }
    }

    #[test]
    fn a_row_wider_than_the_schema_is_refused_and_leaves_the_batch_as_it_was() {
        let mut batch = PredictionBatch::new(schema());
        batch.push(row(&[1.0])).unwrap();
        let err = batch.push(row(&[1.0, 2.0, 3.0])).unwrap_err();
        assert!(err.to_string().contains("a row of 3 inputs and 1 outputs, but the log's schema has 2 and 1"), "{err}");
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.to_records()[0].inputs.len(), 2);
    }

    #[test]
    fn a_batch_whose_columns_disagree_with_the_schema_is_refused() {
        let mut batch = PredictionBatch::new(schema());
        batch.push(row(&[1.0, 2.0])).unwrap();
        let narrower = Arc::new(LogSchema { inputs: vec![("a".into(), InputType::F64)], ..(*schema()).clone() });
        let err = PredictionBatch::decode(narrower, &batch.encode().unwrap()).unwrap_err();
        assert!(err.to_string().contains("3 values for 1 rows of 1 inputs and 1 outputs"), "{err}");
    }
}
