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
pub(crate) use materialize::guarded;
#[cfg(feature = "parquet")]
pub use materialize::{MaterializeOptions, MaterializeProgress, MaterializeReport};

use serde::{Deserialize, Serialize};

use crate::Value;

/// A point in time: microseconds since the Unix epoch, UTC (the log schema's unit).
///
/// ```
/// use fresco::Timestamp;
///
/// let t = Timestamp::from_micros(1_700_000_000_000_000);
/// assert_eq!(t.as_micros(), 1_700_000_000_000_000);
/// assert!(Timestamp::now() > t);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From microseconds since the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// From whole seconds since the Unix epoch (saturating).
    pub const fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000))
    }

    /// Microseconds since the Unix epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// The current wall-clock time (`SystemTime::now`); the epoch itself on a platform
    /// without a clock, such as `wasm32-unknown-unknown` outside a browser.
    pub fn now() -> Self {
        #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
        {
            Timestamp(0)
        }
        #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
        {
            let since =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
            Timestamp(i64::try_from(since).unwrap_or(i64::MAX))
        }
    }

    /// The UTC calendar date, `YYYY-MM-DD` (the log's `date=` partition).
    ///
    /// ```
    /// assert_eq!(fresco::Timestamp::from_secs(1_764_201_600).utc_date(), "2025-11-27");
    /// ```
    pub fn utc_date(self) -> String {
        crate::log::date::day_to_date(crate::log::date::utc_day(self))
    }

    /// `self - earlier`, in microseconds (saturating).
    pub const fn micros_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl std::str::FromStr for Timestamp {
    type Err = String;

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS[.ffffff][Z]` (UTC), or whole seconds
    /// since the epoch.
    ///
    /// ```
    /// use fresco::Timestamp;
    ///
    /// assert_eq!("2025-11-27".parse::<Timestamp>()?, Timestamp::from_secs(1_764_201_600));
    /// assert_eq!("2025-11-27T00:00:01Z".parse::<Timestamp>()?, Timestamp::from_secs(1_764_201_601));
    /// assert_eq!("1764201600".parse::<Timestamp>()?, Timestamp::from_secs(1_764_201_600));
    /// assert!("yesterday".parse::<Timestamp>().is_err());
    /// # Ok::<(), String>(())
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a date (YYYY-MM-DD), a UTC time (YYYY-MM-DDTHH:MM:SSZ) or epoch seconds");
        if let Ok(secs) = s.parse::<i64>() {
            return Ok(Timestamp::from_secs(secs));
        }
        let (date, time) = s.split_once('T').unwrap_or((s, "00:00:00"));
        let day = crate::log::date::date_to_day(date).ok_or_else(bad)?;
        let time = time.strip_suffix('Z').unwrap_or(time);
        let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
        let mut parts = hms.split(':').map(|p| p.parse::<i64>().ok());
        let (Some(Some(h)), Some(Some(m)), Some(Some(sec)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if h > 23 || m > 59 || sec > 60 || fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let micros = format!("{fraction:0<6}").parse::<i64>().map_err(|_| bad())?;
        Ok(Timestamp::from_micros(((day * 86_400 + h * 3600 + m * 60 + sec) * 1_000_000) + micros))
    }
}

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
