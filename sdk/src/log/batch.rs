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

/// A column of optional strings: one text, cut at `ends`.
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
    fn with_capacity(rows: usize, bytes: usize) -> Self {
        Texts { ends: Vec::with_capacity(rows), text: String::with_capacity(bytes), missing: Vec::new() }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn push(&mut self, value: Option<&str>, column: &str) -> Result<(), LogError> {
        let value_or_empty = value.unwrap_or_default();
        let end =
            self.text.len().checked_add(value_or_empty.len()).and_then(|end| u32::try_from(end).ok()).ok_or_else(
                || LogError::Encoding { reason: format!("column `{column}` of a batch exceeds 4 GiB of text") },
            )?;
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

    /// Value `row`, `None` if missing (or out of range).
    pub(crate) fn get(&self, row: usize) -> Option<&str> {
        if self.missing.get(row).copied().unwrap_or(false) {
            return None;
        }
        let start = match row.checked_sub(1) {
            Some(before) => *self.ends.get(before)? as usize,
            None => 0,
        };
        self.text.get(start..*self.ends.get(row)? as usize)
    }

    /// Checks what a decoder cannot: `rows` values, each cut on a character boundary.
    fn check(&self, rows: usize, column: &str) -> Result<(), String> {
        if self.ends.len() != rows || !(self.missing.is_empty() || self.missing.len() == rows) {
            return Err(format!("column `{column}` has {} values for {rows} rows", self.ends.len()));
        }
        let mut start = 0;
        for &end in &self.ends {
            let end = end as usize;
            if end < start || !self.text.is_char_boundary(end) {
                return Err(format!("column `{column}` has a value that ends at byte {end}, not a value's end"));
            }
            start = end;
        }
        if start != self.text.len() {
            return Err(format!("column `{column}` has {} bytes after its last value", self.text.len() - start));
        }
        Ok(())
    }
}

/// The columns of a batch, as the spool stores them (postcard).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct BatchColumns {
    pub(crate) prediction_id: Texts,
    pub(crate) ts: Vec<i64>,
    pub(crate) model_version: Texts,
    /// One column per entity of the schema.
    pub(crate) entities: Vec<Texts>,
    /// Row after row, as many a row as the schema has inputs.
    pub(crate) inputs: Vec<f64>,
    /// Row after row, as many a row as the schema has outputs.
    pub(crate) outputs: Vec<f64>,
    pub(crate) holdout: Texts,
    pub(crate) in_holdout: Vec<bool>,
    pub(crate) eligible: Vec<bool>,
    pub(crate) flag_variant: Texts,
    pub(crate) latency_us: Vec<u64>,
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
        let columns = BatchColumns {
            // UUIDs in text are 36 bytes.
            prediction_id: Texts::with_capacity(rows, rows.saturating_mul(36)),
            ts: Vec::with_capacity(rows),
            model_version: Texts::with_capacity(rows, rows.saturating_mul(schema.version.len())),
            entities: schema.entities.iter().map(|_| Texts::with_capacity(rows, 0)).collect(),
            inputs: Vec::with_capacity(rows.saturating_mul(schema.inputs.len())),
            outputs: Vec::with_capacity(rows.saturating_mul(schema.outputs.len())),
            holdout: Texts::with_capacity(rows, 0),
            in_holdout: Vec::with_capacity(rows),
            eligible: Vec::with_capacity(rows),
            flag_variant: Texts::with_capacity(rows, 0),
            latency_us: Vec::with_capacity(rows),
        };
        PredictionBatch { schema, columns }
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
        // Only the text columns can fail (past 4 GiB): push them first, then undo on error.
        let c = &mut self.columns;
        let rows = c.ts.len();
        let pushed = (|| {
            c.prediction_id.push(Some(row.prediction_id), "prediction_id")?;
            c.model_version.push(Some(row.model_version), "model_version")?;
            for (column, name) in c.entities.iter_mut().zip(&schema.entities) {
                let key = row.entities.iter().find(|(n, _)| n == name).map(|(_, k)| k.as_str());
                column.push(key, name)?;
            }
            c.holdout.push(row.holdout, "holdout")?;
            c.flag_variant.push(row.flag_variant, "flag_variant")
        })();
        if let Err(e) = pushed {
            self.truncate_texts(rows);
            return Err(e);
        }
        c.ts.push(row.ts.as_micros());
        c.inputs.extend_from_slice(row.inputs);
        c.inputs.resize(c.inputs.len() + (n_in - row.inputs.len()), f64::NAN);
        c.outputs.extend_from_slice(row.outputs);
        c.outputs.resize(c.outputs.len() + (n_out - row.outputs.len()), f64::NAN);
        c.in_holdout.push(row.in_holdout);
        c.eligible.push(row.eligible);
        c.latency_us.push(row.latency_us);
        Ok(())
    }

    /// Cuts every text column back to `rows` values (a failed push).
    fn truncate_texts(&mut self, rows: usize) {
        let c = &mut self.columns;
        for texts in [&mut c.prediction_id, &mut c.model_version, &mut c.holdout, &mut c.flag_variant]
            .into_iter()
            .chain(c.entities.iter_mut())
        {
            if texts.len() > rows {
                let end = rows.checked_sub(1).and_then(|r| texts.ends.get(r)).map_or(0, |&e| e as usize);
                texts.ends.truncate(rows);
                texts.text.truncate(end);
                texts.missing.truncate(rows);
            }
        }
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
        let c = &self.columns;
        let (n_in, n_out) = (self.schema.inputs.len(), self.schema.outputs.len());
        (0..self.len())
            .map(|r| PredictionRecord {
                prediction_id: c.prediction_id.get(r).unwrap_or_default().to_owned(),
                ts: Timestamp::from_micros(c.ts[r]),
                model: self.schema.model.clone(),
                model_version: c.model_version.get(r).unwrap_or_default().to_owned(),
                entities: self
                    .schema
                    .entities
                    .iter()
                    .zip(&c.entities)
                    .filter_map(|(name, keys)| Some((name.clone(), keys.get(r)?.to_owned())))
                    .collect(),
                inputs: c.inputs[r * n_in..(r + 1) * n_in].to_vec(),
                outputs: c.outputs[r * n_out..(r + 1) * n_out].to_vec(),
                holdout: c.holdout.get(r).map(str::to_owned),
                in_holdout: c.in_holdout[r],
                eligible: c.eligible[r],
                flag_variant: c.flag_variant.get(r).map(str::to_owned),
                latency_us: c.latency_us[r],
            })
            .collect()
    }

    /// Encodes the rows (postcard; the schema is not included).
    pub fn encode(&self) -> Result<Vec<u8>, LogError> {
        postcard::to_allocvec(&self.columns).map_err(|e| LogError::Encoding { reason: e.to_string() })
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
        let checked = (|| {
            for (texts, name) in [
                (&c.prediction_id, "prediction_id"),
                (&c.model_version, "model_version"),
                (&c.holdout, "holdout"),
                (&c.flag_variant, "flag_variant"),
            ] {
                texts.check(rows, name)?;
            }
            if c.prediction_id.missing.contains(&true) || c.model_version.missing.contains(&true) {
                return Err("a prediction id or model version is missing".into());
            }
            if c.entities.len() != schema.entities.len() {
                return Err(format!("{} entity columns, the schema has {}", c.entities.len(), schema.entities.len()));
            }
            for (texts, name) in c.entities.iter().zip(&schema.entities) {
                texts.check(rows, name)?;
            }
            let width = |values: &[f64], n: usize| rows.checked_mul(n) == Some(values.len());
            if !width(&c.inputs, schema.inputs.len()) || !width(&c.outputs, schema.outputs.len()) {
                return Err(format!(
                    "{} input and {} output values for {rows} rows of {} inputs and {} outputs",
                    c.inputs.len(),
                    c.outputs.len(),
                    schema.inputs.len(),
                    schema.outputs.len()
                ));
            }
            if [c.in_holdout.len(), c.eligible.len(), c.latency_us.len()] != [rows; 3] {
                return Err(format!("a flag or latency column does not have {rows} values"));
            }
            Ok(())
        })();
        match checked {
            Ok(()) => Ok(PredictionBatch { schema, columns }),
            Err(reason) => Err(LogError::Encoding { reason: format!("a batch of model `{}`: {reason}", schema.model) }),
        }
    }

    /// The columns, for the spool and the writer.
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
        assert!(err.to_string().contains("2 input and 1 output values for 1 rows of 1 inputs and 1 outputs"), "{err}");
    }
}
