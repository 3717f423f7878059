//! Real-time windowed aggregates ("orders at this restaurant in the last 30 minutes"),
//! computed the same way online and offline.
//!
//! Declare streams and features once ([`Definitions`], in Rust or TOML). Online, an
//! [`AggregateStore`] takes events as they arrive ([`AggregateStore::record_event`])
//! and answers reads at request time; it is a [`FeatureStore`](crate::FeatureStore),
//! so a model input maps to a windowed feature with
//! [`InputSource::windowed`](crate::InputSource::windowed). Offline,
//! [`backfill`] computes the same features point-in-time for every row of a Parquet
//! table from a Parquet event log, by replaying the log through the very same code in
//! arrival order: the two paths agree exactly, sums and means included.
//!
//! The rules both paths share:
//! - a window of length `W` is the 60 tiles of `W / 60` ending with the tile that
//!   holds the read time `t`;
//! - a read at `t` sees the events that arrived at or before `t` (offline: the event
//!   log's `arrival` column, or the event time when it has none); an event dated after
//!   its arrival is dropped (counted as `future`), so no read sees an event later than
//!   itself;
//! - an event more than the stream's late tolerance behind the latest event time seen
//!   so far (in arrival order) is dropped and counted as `late`.
//!
//! Snapshots ([`AggregateStore::snapshot`], stored with
//! [`EmbeddedStore::put_blob`](crate::EmbeddedStore::put_blob)) let a restart resume
//! with full windows.

mod definition;
#[cfg(feature = "parquet")]
mod offline;
mod store;
mod tile;

pub use definition::{
    Aggregation, Definitions, DurationError, StreamSpec, TILES_PER_WINDOW, WindowedFeature, parse_duration,
};
#[cfg(feature = "parquet")]
pub use offline::{BackfillReport, EventBatches, EventLog, LateMarker, backfill, backfill_batches, backfill_events};
pub use store::{AggregateStore, Applied, StreamStats};

/// What happened to a recorded event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// It counts.
    Accepted,
    /// Dropped: older than the stream's late tolerance allows.
    Late,
    /// Dropped: dated after its arrival.
    Future,
}

impl Recorded {
    /// `accepted`, `late` or `future`: the name in a marked event log's `recorded` column.
    pub fn name(self) -> &'static str {
        match self {
            Recorded::Accepted => "accepted",
            Recorded::Late => "late",
            Recorded::Future => "future",
        }
    }
}

impl std::str::FromStr for Recorded {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "accepted" => Ok(Recorded::Accepted),
            "late" => Ok(Recorded::Late),
            "future" => Ok(Recorded::Future),
            other => Err(format!("`{other}` is not accepted, late or future")),
        }
    }
}

/// Why an aggregate call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AggregateError {
    /// The definitions are invalid.
    #[error("invalid aggregate definitions: {reason}")]
    Definition {
        /// What is wrong.
        reason: String,
    },
    /// No stream of that name.
    #[error("no stream `{stream}`")]
    UnknownStream {
        /// The name asked for.
        stream: String,
    },
    /// No feature of that name.
    #[error("no windowed feature `{feature}`")]
    UnknownFeature {
        /// The name asked for.
        feature: String,
    },
    /// An event value that cannot be aggregated.
    #[error("stream `{stream}`, key `{key}`: value {value} is not finite")]
    InvalidValue {
        /// The stream.
        stream: String,
        /// The key.
        key: String,
        /// The value.
        value: f64,
    },
    /// A snapshot could not be taken or restored.
    #[error("aggregate snapshot: {reason}")]
    Snapshot {
        /// What went wrong.
        reason: String,
    },
    /// The store refuses reads: it cannot vouch for its windows (see
    /// [`AggregateStore::set_unavailable`]).
    #[error("windowed aggregates unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
    /// Reading the event log or the table, or writing the output, failed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}
