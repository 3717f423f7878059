//! The JSON the service speaks: requests in, predictions out.

use std::collections::BTreeMap;

use fresco::{Prediction, Request, Timestamp, Value};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// One row to score: entity keys and request values, by name.
///
/// ```json
/// {"entities": {"restaurant_id": "r-17"}, "values": {"distance_km": 3.2, "weather": 1}}
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    /// Entity keys (feature-store lookups, holdouts, flags).
    #[serde(default)]
    pub entities: BTreeMap<String, String>,
    /// Request values: numbers, strings, booleans; `null` for missing.
    #[serde(default)]
    pub values: BTreeMap<String, serde_json::Value>,
    /// The request's time (RFC 3339 UTC, `YYYY-MM-DD` or epoch seconds), for windowed
    /// features read as of that time; default: now.
    #[serde(default)]
    pub at: Option<String>,
}

impl Row {
    /// The row as a [`Request`]; `index` names it in errors.
    pub fn to_request(&self, index: usize) -> Result<Request, ApiError> {
        let mut request = Request::new();
        for (name, key) in &self.entities {
            request = request.entity(name.clone(), key.clone());
        }
        for (name, value) in &self.values {
            let value = match value {
                serde_json::Value::Null => Value::Null,
                serde_json::Value::Bool(b) => Value::Bool(*b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => Value::I64(i),
                    None => Value::F64(n.as_f64().unwrap_or(f64::NAN)),
                },
                serde_json::Value::String(s) => Value::Str(s.clone()),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "row {index}: value `{name}` is {}; give a number, a string, a boolean or null",
                        kind_of(other)
                    )));
                }
            };
            request = request.value(name.clone(), value);
        }
        if let Some(at) = &self.at {
            let ts: Timestamp = at
                .parse()
                .map_err(|e| ApiError::bad_request(format!("row {index}: `at` is not a time ({at}): {e}")))?;
            request = request.at(ts);
        }
        Ok(request)
    }
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
        _ => "a scalar",
    }
}

/// The body of `POST /v1/models/{name}/predict`: one [`Row`], or `{"rows": [...]}`.
#[derive(Debug, Clone)]
pub enum PredictBody {
    /// One row: the answer is one [`PredictionOut`].
    One(Row),
    /// Several rows: the answer is [`Predictions`].
    Batch(Vec<Row>),
}

impl PredictBody {
    /// Reads a body, naming what is wrong with it.
    pub fn from_json(value: serde_json::Value) -> Result<Self, ApiError> {
        let is_batch = value.as_object().is_some_and(|o| o.contains_key("rows"));
        if is_batch {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Batch {
                rows: Vec<Row>,
            }
            let batch: Batch =
                serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
            Ok(PredictBody::Batch(batch.rows))
        } else {
            let row: Row = serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
            Ok(PredictBody::One(row))
        }
    }
}

/// An interval around a prediction.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IntervalOut {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// Nominal coverage.
    pub coverage: f64,
}

/// The holdout decision for the row's entity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HoldoutOut {
    /// The holdout.
    pub name: String,
    /// Whether the entity is held out (never treat it).
    pub in_holdout: bool,
}

/// One prediction, as answered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PredictionOut {
    /// Its id: the key of outcomes and treatments, and of its row in the log.
    pub prediction_id: String,
    /// The model.
    pub model: String,
    /// The version that scored it.
    pub model_version: String,
    /// Outputs by name.
    pub outputs: BTreeMap<String, f64>,
    /// The calibrated interval, for models that declare one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub interval: Option<IntervalOut>,
    /// Whether the app may act on this score for this entity.
    pub may_treat: bool,
    /// The holdout decision, for models with a holdout.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub holdout: Option<HoldoutOut>,
}

impl From<&Prediction> for PredictionOut {
    fn from(p: &Prediction) -> Self {
        PredictionOut {
            prediction_id: p.id().to_string(),
            model: p.model().to_owned(),
            model_version: p.model_version().to_owned(),
            outputs: p.outputs().map(|(name, value)| (name.to_owned(), value)).collect(),
            interval: p.interval().and_then(Result::ok).map(|i| IntervalOut {
                low: i.low,
                high: i.high,
                coverage: i.coverage,
            }),
            may_treat: p.may_treat(),
            holdout: p.holdout().map(|h| HoldoutOut { name: h.name.to_string(), in_holdout: h.in_holdout }),
        }
    }
}

/// The answer to a batch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Predictions {
    /// One per row, in order.
    pub predictions: Vec<PredictionOut>,
}

/// The body of `POST /v1/outcomes`: the label observed for a prediction.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeIn {
    /// The model.
    pub model: String,
    /// The prediction.
    pub prediction_id: String,
    /// The label.
    pub label: f64,
    /// When it was observed (default: now).
    #[serde(default)]
    pub ts: Option<String>,
}

/// The body of `POST /v1/treatments`: what the app did on a prediction's strength.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreatmentIn {
    /// The model.
    pub model: String,
    /// The prediction.
    pub prediction_id: String,
    /// The key of the model's holdout entity (a held-out entity is refused: 409).
    pub entity_key: String,
    /// What was done, e.g. `discount-10`.
    pub treatment: String,
    /// When (default: now).
    #[serde(default)]
    pub ts: Option<String>,
}

/// A time given in a body, or now.
pub(crate) fn time_or_now(ts: Option<&str>, field: &str) -> Result<Timestamp, ApiError> {
    match ts {
        None => Ok(Timestamp::now()),
        Some(text) => text.parse().map_err(|e| ApiError::bad_request(format!("`{field}` is not a time ({text}): {e}"))),
    }
}
