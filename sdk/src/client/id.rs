//! [`PredictionId`]: the one name of a prediction, from `predict` to its outcome.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// A prediction's id: a UUIDv7, so ids sort by the time they were made. It is what
/// [`Prediction::id`](crate::Prediction::id) returns, what
/// [`Client::log_outcome`](crate::Client::log_outcome) and the treatment calls take, and
/// (as its hyphenated text) the `prediction_id` column of every table of the log.
///
/// ```
/// use fresco::PredictionId;
///
/// let id: PredictionId = "0190b3c4-0000-7000-8000-000000000000".parse()?;
/// assert_eq!(id.to_string(), "0190b3c4-0000-7000-8000-000000000000");
/// let err = "order-17".parse::<PredictionId>().unwrap_err();
/// assert!(err.to_string().contains("`order-17` is not a prediction id"));
/// # Ok::<(), fresco::InvalidPredictionId>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PredictionId(Uuid);

impl PredictionId {
    /// A new id (UUIDv7: now, then random bits).
    pub(crate) fn new() -> Self {
        PredictionId(Uuid::now_v7())
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for PredictionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl From<Uuid> for PredictionId {
    fn from(uuid: Uuid) -> Self {
        PredictionId(uuid)
    }
}

/// Text that is not a [`PredictionId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a prediction id (a UUID such as 0190b3c4-0000-7000-8000-000000000000): {reason}")]
pub struct InvalidPredictionId {
    /// The text given.
    pub text: String,
    /// What the UUID parser said.
    pub reason: String,
}

impl FromStr for PredictionId {
    type Err = InvalidPredictionId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(text)
            .map(PredictionId)
            .map_err(|e| InvalidPredictionId { text: text.to_owned(), reason: e.to_string() })
    }
}
