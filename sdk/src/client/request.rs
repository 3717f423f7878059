//! What goes into a prediction, and what comes out.

use std::sync::Arc;

use super::PredictionId;
use crate::interval::{Interval, IntervalError, IntervalRule};
use crate::{FeatureStatus, Timestamp, Value};

/// One row to score: entity keys (for stored features and holdouts) and request-time
/// values, by name.
///
/// ```
/// use fresco::Request;
///
/// let request = Request::new()
///     .entity("restaurant_id", "r-17")
///     .entity("user_id", "u-4411")
///     .value("distance_km", 3.2)
///     .value("is_raining", true);
/// assert_eq!(request.entity_key("user_id"), Some("u-4411"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub(crate) entities: Vec<(String, String)>,
    pub(crate) values: Vec<(String, Value)>,
    pub(crate) at: Option<Timestamp>,
}

impl Request {
    /// An empty request.
    pub fn new() -> Self {
        Request::default()
    }

    /// Adds an entity key (replacing one of the same name).
    pub fn entity(mut self, name: impl Into<String>, key: impl Into<String>) -> Self {
        upsert(&mut self.entities, name.into(), key.into());
        self
    }

    /// Adds a request-time value (replacing one of the same name).
    pub fn value(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        upsert(&mut self.values, name.into(), value.into());
        self
    }

    /// Sets the time the request is made, for simulations, replays and backtests:
    /// stored features are read as of it (their time to live), windowed aggregates
    /// cover the window ending at it, and the prediction is logged at it. Without it
    /// the request is made at the wall-clock time of the `predict` call.
    ///
    /// ```
    /// use fresco::{Request, Timestamp};
    ///
    /// let monday_noon: Timestamp = "2026-11-02T12:00:00Z".parse()?;
    /// let request = Request::new().entity("restaurant_id", "r-17").at(monday_noon);
    /// assert_eq!(request.time(), Some(monday_noon));
    /// # Ok::<(), fresco::time::TimestampError>(())
    /// ```
    pub fn at(mut self, ts: Timestamp) -> Self {
        self.at = Some(ts);
        self
    }

    /// The time set with [`at`](Request::at), if any.
    pub fn time(&self) -> Option<Timestamp> {
        self.at
    }

    /// The entity key of that name.
    pub fn entity_key(&self, name: &str) -> Option<&str> {
        self.entities.iter().find(|(n, _)| n == name).map(|(_, k)| k.as_str())
    }

    /// The request value of that name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

fn upsert<T>(pairs: &mut Vec<(String, T)>, name: String, value: T) {
    match pairs.iter_mut().find(|(n, _)| *n == name) {
        Some(slot) => slot.1 = value,
        None => pairs.push((name, value)),
    }
}

/// The holdout side of a prediction: whether the entity may be treated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldoutDecision {
    /// The holdout's name.
    pub name: Arc<str>,
    /// The entity's bucket in `0..10000`.
    pub bucket: u32,
    /// Whether the entity is held out (scored and logged, never treated).
    pub in_holdout: bool,
}

/// One scored row.
///
/// ```
/// # fn demo(p: fresco::Prediction) {
/// let q50 = p.output("q50");
/// if p.may_treat() {
///     // e.g. send the discount
/// }
/// println!("{} {} v{}", p.id(), p.model(), p.model_version());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Prediction {
    pub(crate) id: PredictionId,
    pub(crate) ts: Timestamp,
    pub(crate) model: Arc<str>,
    pub(crate) version: Arc<str>,
    pub(crate) input_names: Arc<[String]>,
    pub(crate) output_names: Arc<[String]>,
    pub(crate) inputs: Vec<f64>,
    pub(crate) statuses: Vec<FeatureStatus>,
    pub(crate) outputs: Vec<f64>,
    pub(crate) holdout: Option<HoldoutDecision>,
    pub(crate) interval: Option<Arc<IntervalRule>>,
    pub(crate) flag_variant: Option<Arc<str>>,
}

impl Prediction {
    /// The variant of the model's rollout flag that chose the version, if the model has
    /// a flag (logged as `flag_variant`).
    pub fn flag_variant(&self) -> Option<&str> {
        self.flag_variant.as_deref()
    }

    /// The prediction id (UUIDv7: sortable by creation time), as logged.
    pub fn id(&self) -> PredictionId {
        self.id
    }

    /// When it was made.
    pub fn timestamp(&self) -> Timestamp {
        self.ts
    }

    /// Model name.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Model version.
    pub fn model_version(&self) -> &str {
        &self.version
    }

    /// The output of that name.
    pub fn output(&self, name: &str) -> Option<f64> {
        self.output_names.iter().position(|n| n == name).map(|i| self.outputs[i])
    }

    /// The calibrated interval, for a model whose metadata declares one (quantile
    /// models packed with conformal offsets); `None` otherwise.
    ///
    /// An error means the outputs do not form an interval (a bound is NaN or infinite).
    ///
    /// ```
    /// # fn demo(p: fresco::Prediction) -> Result<(), fresco::interval::IntervalError> {
    /// if let Some(eta) = p.interval().transpose()? {
    ///     println!("arrives in {}", eta.display("min")); // "arrives in 4–8 min"
    /// }
    /// # Ok(()) }
    /// ```
    pub fn interval(&self) -> Option<Result<Interval, IntervalError>> {
        self.interval.as_ref().map(|rule| rule.apply(&self.inputs, &self.outputs))
    }

    /// All outputs, by name, in the model's order.
    pub fn outputs(&self) -> impl Iterator<Item = (&str, f64)> {
        self.output_names.iter().map(String::as_str).zip(self.outputs.iter().copied())
    }

    /// Output values in the model's order.
    pub fn output_values(&self) -> &[f64] {
        &self.outputs
    }

    /// The input values as scored (after the missing-value policy), in the model's order.
    pub fn inputs(&self) -> impl Iterator<Item = (&str, f64)> {
        self.input_names.iter().map(String::as_str).zip(self.inputs.iter().copied())
    }

    /// Input values as scored, in the model's order.
    pub fn input_values(&self) -> &[f64] {
        &self.inputs
    }

    /// How each input was obtained, in the model's order.
    pub fn feature_statuses(&self) -> impl Iterator<Item = (&str, FeatureStatus)> {
        self.input_names.iter().map(String::as_str).zip(self.statuses.iter().copied())
    }

    /// How the named input was obtained.
    pub fn feature_status(&self, input: &str) -> Option<FeatureStatus> {
        self.input_names.iter().position(|n| n == input).map(|i| self.statuses[i])
    }

    /// The holdout decision, when the model has a holdout.
    pub fn holdout(&self) -> Option<&HoldoutDecision> {
        self.holdout.as_ref()
    }

    /// Whether the caller may act on this score for this entity (false in a holdout).
    pub fn may_treat(&self) -> bool {
        self.holdout.as_ref().is_none_or(|h| !h.in_holdout)
    }
}
