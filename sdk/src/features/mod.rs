//! Features: where a model's inputs come from.
//!
//! A model input is fed from one [`InputSource`]: a stored feature (a feature view and
//! a feature name, looked up by the view's entity key), or a value the request carries.
//! Stored features live in a [`FeatureStore`]; the default one, [`EmbeddedStore`]
//! (feature `embedded-store`), is a persistent file inside the process, so no server is
//! needed.
//!
//! Lookups answer with a [`FeatureValue`]: the value, a [`FeatureStatus`] in the manner
//! of Feast's (present, missing, outside its max age, store unavailable) and the event
//! time it was observed at.

mod source;
mod store;
mod view;

#[cfg(feature = "embedded-store")]
mod embedded;
#[cfg(feature = "parquet")]
pub(crate) mod materialize;

pub use source::InputSource;
pub use store::{FeatureStore, StoreError};
pub use view::{FeatureSpec, FeatureView};

#[cfg(feature = "embedded-store")]
pub use embedded::EmbeddedStore;
#[cfg(feature = "parquet")]
pub use materialize::{MaterializeOptions, MaterializeProgress, MaterializeReport};

use serde::{Deserialize, Serialize};

use crate::Value;
pub use crate::time::Timestamp;

/// How a feature lookup went, after Feast's field statuses.
///
/// Anything but [`Present`](FeatureStatus::Present) reaches the model as a missing value,
/// which the model's declared policy turns into NaN, a default, or an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureStatus {
    /// A value was found (it may still be a stored null; see [`FeatureValue::value`]).
    Present,
    /// No row for this entity, or the feature is null.
    Missing,
    /// A row exists but is older than the view's time to live.
    Expired,
    /// The store failed or missed its deadline; the value is treated as missing.
    Unavailable,
}

impl FeatureStatus {
    /// Lower-case name, as written to logs.
    pub fn name(self) -> &'static str {
        match self {
            FeatureStatus::Present => "present",
            FeatureStatus::Missing => "missing",
            FeatureStatus::Expired => "expired",
            FeatureStatus::Unavailable => "unavailable",
        }
    }
}

/// One looked-up feature value.
///
/// ```
/// use fresco::{FeatureStatus, FeatureValue, Timestamp, Value};
///
/// let v = FeatureValue::present(Value::F64(4.5), Timestamp::from_secs(1_700_000_000));
/// assert_eq!(v.status, FeatureStatus::Present);
/// assert_eq!(FeatureValue::missing().value, Value::Null);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureValue {
    /// The value; [`Value::Null`] unless the status is `Present`.
    pub value: Value,
    /// How the lookup went.
    pub status: FeatureStatus,
    /// When the value was observed (the row's event time), if there was a row.
    pub event_ts: Option<Timestamp>,
}

impl FeatureValue {
    /// A value found in the store.
    pub fn present(value: Value, event_ts: Timestamp) -> Self {
        let status = if value.is_missing() { FeatureStatus::Missing } else { FeatureStatus::Present };
        FeatureValue { value, status, event_ts: Some(event_ts) }
    }

    /// No row, or a null feature.
    pub fn missing() -> Self {
        FeatureValue { value: Value::Null, status: FeatureStatus::Missing, event_ts: None }
    }

    /// A row older than the view's time to live.
    pub fn expired(event_ts: Timestamp) -> Self {
        FeatureValue { value: Value::Null, status: FeatureStatus::Expired, event_ts: Some(event_ts) }
    }

    /// The store could not answer.
    pub fn unavailable() -> Self {
        FeatureValue { value: Value::Null, status: FeatureStatus::Unavailable, event_ts: None }
    }
}
