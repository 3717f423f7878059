//! The shared event stream: one ordered log of events that every replica of a service
//! applies, so windowed aggregates agree across a fleet.
//!
//! An [`AggregateStore`](crate::aggregates::AggregateStore) fed only by its own process
//! counts only that process's events: behind a load balancer with N replicas, each one
//! sees about 1/N of the truth. Here producers append events to one [`EventStream`]
//! (a [`Publisher`], or [`Client::record_event`](crate::Client::record_event)), and every
//! replica runs a [`Follower`] that tails the whole stream off the request path and
//! applies it, in stream order, to its own in-process store. Reads stay in-process.
//!
//! The rules that make every replica, and every backfill, compute the same numbers:
//! - an event's **arrival** is the time the stream stamped on it when it was appended
//!   ([`Entry::arrival`], non-decreasing in stream order), never a replica's clock: an
//!   event dated after its arrival is `future`, one more than the late tolerance behind
//!   the latest accepted event time *in stream order* is `late`;
//! - entries are applied in [`Position`] order, each exactly once: a store remembers
//!   the position it reflects, and an entry at or before it is a duplicate (a re-read
//!   after a reconnect, a replay after a crash) and changes nothing;
//! - an entry that cannot be applied (unreadable fields, an undeclared stream, a value
//!   that is not finite) is skipped *and counted* by every replica alike.
//!
//! [`MemoryStream`] is the in-process implementation (one process, tests); the
//! `fresco-redis` crate provides Redis Streams.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use fresco::Timestamp;
//! use fresco::aggregates::{Aggregation, Definitions, StreamSpec, WindowedFeature};
//! use fresco::events::{Event, EventStream, Follower, FollowerConfig, MemoryStream, PublishPolicy, Publisher};
//!
//! let defs = Definitions::new()
//!     .stream(StreamSpec::new("orders", "restaurant_id"))
//!     .feature(WindowedFeature::new("orders_30m", "orders", Aggregation::Count, Duration::from_secs(1800)));
//! let stream: Arc<dyn EventStream> = Arc::new(MemoryStream::new());
//!
//! // A replica follows the stream...
//! let follower = Follower::start(defs, stream.clone(), FollowerConfig::default())?;
//! // ...while a producer (any process) appends to it.
//! let publisher = Publisher::new(stream.clone(), PublishPolicy::default());
//! let now = Timestamp::now();
//! publisher.publish(Event::new("orders", "r-17", now, 1.0))?;
//! publisher.flush(Duration::from_secs(5))?;
//!
//! let end = stream.end()?.expect("one event");
//! follower.wait_for(end, Duration::from_secs(5))?;
//! assert_eq!(follower.store().read("orders_30m", "r-17", Timestamp::now())?, Some(1.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "parquet")]
pub mod archive;
mod follower;
mod memory;
mod publisher;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use follower::{Follower, FollowerConfig, FollowerStatus};
pub use memory::MemoryStream;
pub use publisher::{PublishPolicy, Publisher, PublisherStats};

use crate::Timestamp;

/// A place in an event stream: totally ordered, and durable (the same entry has the
/// same position for every reader, forever).
///
/// Two numbers, compared as a pair: a Redis Streams id `ms-seq` is `(ms, seq)`; a Kafka
/// partition's offset would be `(0, offset)`. Written and parsed as `hi-lo`.
///
/// ```
/// use fresco::events::Position;
/// let p: Position = "1764806400000-3".parse()?;
/// assert_eq!((p.hi(), p.lo()), (1_764_806_400_000, 3));
/// assert!(p < Position::new(1_764_806_400_001, 0));
/// assert_eq!(p.to_string(), "1764806400000-3");
/// # Ok::<(), fresco::events::PositionError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    hi: u64,
    lo: u64,
}

impl Position {
    /// The position `hi-lo`.
    pub const fn new(hi: u64, lo: u64) -> Self {
        Position { hi, lo }
    }

    /// The major part (a Redis id's milliseconds).
    pub const fn hi(self) -> u64 {
        self.hi
    }

    /// The minor part (a Redis id's sequence number).
    pub const fn lo(self) -> u64 {
        self.lo
    }

    /// The smallest position after this one, `None` at the very end.
    pub fn successor(self) -> Option<Position> {
        match self.lo.checked_add(1) {
            Some(lo) => Some(Position { hi: self.hi, lo }),
            None => self.hi.checked_add(1).map(|hi| Position { hi, lo: 0 }),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.hi, self.lo)
    }
}

/// Text that is not a [`Position`] (`hi-lo`, two unsigned 64-bit numbers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a stream position (expected HI-LO, two unsigned integers)")]
pub struct PositionError {
    /// The text.
    pub text: String,
}

impl FromStr for Position {
    type Err = PositionError;

    fn from_str(text: &str) -> Result<Self, PositionError> {
        let err = || PositionError { text: text.to_owned() };
        let (hi, lo) = text.split_once('-').ok_or_else(err)?;
        Ok(Position { hi: hi.parse().map_err(|_| err())?, lo: lo.parse().map_err(|_| err())? })
    }
}

/// One event, as a producer appends it: in `stream` (a declared
/// [`StreamSpec`](crate::aggregates::StreamSpec)), for entity `key`, dated `ts`, with
/// `value` (what sums, means, minima and maxima are taken of; 1.0 for counted streams).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The stream's name.
    pub stream: String,
    /// The entity key.
    pub key: String,
    /// When it happened.
    pub ts: Timestamp,
    /// Its value.
    pub value: f64,
}

impl Event {
    /// An event.
    pub fn new(stream: impl Into<String>, key: impl Into<String>, ts: Timestamp, value: f64) -> Self {
        Event { stream: stream.into(), key: key.into(), ts, value }
    }
}

/// An event as a reader gets it back: where it is in the stream and when it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its position.
    pub position: Position,
    /// When the stream appended it (for Redis, the end of the millisecond in its id):
    /// the time the late and future rules use.
    pub arrival: Timestamp,
    /// The event, or why the entry could not be read as one (it is then skipped and
    /// counted by every reader alike).
    pub event: Result<Event, String>,
}

/// A producer's batch: appended once, in order, whatever retries it takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Who publishes it (unique per publishing process, e.g. a UUIDv7).
    pub producer: String,
    /// Its number among the producer's batches, from 0 up, one after another: a stream
    /// appends a batch only if its number is above the last one it appended for the
    /// producer, so a retry of a publish whose answer was lost appends nothing.
    pub sequence: u64,
    /// The events.
    pub events: Vec<Event>,
}

/// Why a stream operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The stream's server did not answer.
    #[error("event stream `{stream}` unreachable: {reason}")]
    Unreachable {
        /// The stream (its name or address).
        stream: String,
        /// What the connection said.
        reason: String,
    },
    /// The entries right after `after` have been trimmed away: a reader there cannot
    /// go on from the stream without missing events (rebuild from an archive).
    #[error(
        "event stream `{stream}`: the entries after {} up to {trimmed_through} were trimmed; \
         this reader cannot go on without missing events (replay an archive that reaches {trimmed_through})",
        after.map_or_else(|| "the start".to_owned(), |p| p.to_string())
    )]
    Trimmed {
        /// The stream.
        stream: String,
        /// The reader's position (`None`: it has read nothing yet).
        after: Option<Position>,
        /// The last position trimmed away.
        trimmed_through: Position,
    },
    /// The server answered something this client does not understand.
    #[error("event stream `{stream}`: unexpected reply: {reason}")]
    Protocol {
        /// The stream.
        stream: String,
        /// What was unexpected.
        reason: String,
    },
    /// A publisher's buffer is full (the stream has been unreachable for a while): the
    /// event was *not* taken; the caller decides what to do with it.
    #[error("event publisher buffer full ({capacity} events waiting for the stream); the event was not taken")]
    BufferFull {
        /// The buffer's capacity.
        capacity: usize,
    },
    /// An event that no reader could apply.
    #[error("event in stream `{stream}` for key `{key}`: {reason}")]
    InvalidEvent {
        /// The event's stream.
        stream: String,
        /// Its key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Waiting (for a flush, or for a follower to reach a position) timed out.
    #[error("{what} not done after {waited:?}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        waited: Duration,
    },
    /// The publisher or follower has been stopped.
    #[error("the event {0} has been stopped")]
    Stopped(&'static str),
}

/// An ordered, shared, durable log of events.
///
/// Implementations: [`MemoryStream`] (in process), `fresco_redis::RedisStream` (Redis
/// Streams). One stream is one total order; docs/design.md §11 says what changes with a
/// partitioned log (Kafka).
pub trait EventStream: Send + Sync + fmt::Debug {
    /// Appends `batch.events` in order, atomically, unless the stream has already
    /// appended a batch of `batch.producer` numbered `batch.sequence` or higher (then
    /// nothing: `Ok(None)`). Returns the position of the last event appended.
    fn publish(&self, batch: &Batch) -> Result<Option<Position>, StreamError>;

    /// Up to `max` entries after `after` (`None`: from the first entry retained), in
    /// position order; when there are none yet, waits up to `wait` for some. Fails
    /// with [`StreamError::Trimmed`] when entries after `after` have been trimmed.
    fn read(&self, after: Option<Position>, max: usize, wait: Duration) -> Result<Vec<Entry>, StreamError>;

    /// The position of the last entry (`None`: the stream is empty).
    fn end(&self) -> Result<Option<Position>, StreamError>;

    /// Removes every entry at or before `through` (retention: the archive holds them).
    fn trim(&self, through: Position) -> Result<(), StreamError>;

    /// A name for messages and metrics (the stream's key or address).
    fn name(&self) -> String;
}

/// The entries after `after` up to and including `through`, in order, at most `max`
/// of them (read in batches; nothing waits for new entries). What both an archiver and
/// a backfill of "the stream through this position" read.
pub fn read_through(
    stream: &dyn EventStream,
    mut after: Option<Position>,
    through: Position,
    max: usize,
) -> Result<Vec<Entry>, StreamError> {
    let mut entries = Vec::new();
    while entries.len() < max && after.is_none_or(|a| a < through) {
        let read = stream.read(after, (max - entries.len()).min(65_536), Duration::ZERO)?;
        let Some(last) = read.last().map(|e| e.position) else { break };
        entries.extend(read.into_iter().take_while(|e| e.position <= through));
        after = Some(last);
    }
    Ok(entries)
}

/// Checks an event before it is published: what no reader could apply is refused at
/// the source, where the caller can still do something about it.
pub(crate) fn check_event(event: &Event) -> Result<(), StreamError> {
    let invalid = |reason: &str| StreamError::InvalidEvent {
        stream: event.stream.clone(),
        key: event.key.clone(),
        reason: reason.to_owned(),
    };
    if event.stream.is_empty() {
        return Err(invalid("the stream name is empty"));
    }
    if !event.value.is_finite() {
        return Err(invalid(&format!("value {} is not finite", event.value)));
    }
    Ok(())
}
