//! What to aggregate: event streams and the windowed features over them, declared in
//! Rust or in TOML.

use std::time::Duration;

use serde::Deserialize;

use super::AggregateError;

/// Tiles per window: a window of length `W` is kept as 60 tiles of `W / 60`.
pub const TILES_PER_WINDOW: i64 = 60;

/// How the events of a window are summarized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Aggregation {
    /// Number of events.
    Count,
    /// Sum of the values.
    Sum,
    /// Mean of the values (missing when the window is empty).
    Mean,
    /// Smallest value (missing when empty).
    Min,
    /// Largest value (missing when empty).
    Max,
    /// The value of the latest event by event time (ties: the one recorded last).
    Last,
    /// Approximate number of distinct values: HyperLogLog with 256 registers, standard
    /// error 1.04 / √256 ≈ 6.5 % (exact-ish below ~100 thanks to linear counting).
    ApproxDistinct,
}

impl Aggregation {
    /// The name used in TOML and in messages (`count`, `approx_distinct`, …).
    pub fn name(self) -> &'static str {
        match self {
            Aggregation::Count => "count",
            Aggregation::Sum => "sum",
            Aggregation::Mean => "mean",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Last => "last",
            Aggregation::ApproxDistinct => "approx_distinct",
        }
    }
}

/// A stream of events keyed by an entity (e.g. `orders` keyed by `restaurant_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// Stream name, unique.
    pub name: String,
    /// The entity key the events are keyed by; a request carries it under this name,
    /// and in an event log or a table it is the column of this name.
    pub entity: String,
    /// How far behind the latest event time an event may be and still count. An event
    /// older than `latest − tolerance` (latest of the whole stream, in arrival order)
    /// is dropped and counted as late, online and offline alike.
    pub late_tolerance: Duration,
}

impl StreamSpec {
    /// A stream with no tolerance for late events.
    pub fn new(name: impl Into<String>, entity: impl Into<String>) -> Self {
        StreamSpec { name: name.into(), entity: entity.into(), late_tolerance: Duration::ZERO }
    }

    /// Accepts events up to `tolerance` behind the latest event time.
    pub fn late_tolerance(mut self, tolerance: Duration) -> Self {
        self.late_tolerance = tolerance;
        self
    }

    /// The tolerance in µs, as the late rule compares it (saturated, never wrapped).
    pub(crate) fn tolerance_micros(&self) -> i64 {
        i64::try_from(self.late_tolerance.as_micros()).unwrap_or(i64::MAX)
    }
}

/// A feature: one aggregation of one stream over a sliding window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowedFeature {
    /// Feature name, unique across streams (a model input maps to it by this name).
    pub name: String,
    /// The stream it reads.
    pub stream: String,
    /// The summary.
    pub aggregation: Aggregation,
    /// The window length; a multiple of 60 µs (it is kept as 60 tiles).
    pub window: Duration,
}

impl WindowedFeature {
    /// `aggregation` of `stream` over the last `window`.
    pub fn new(name: impl Into<String>, stream: impl Into<String>, aggregation: Aggregation, window: Duration) -> Self {
        WindowedFeature { name: name.into(), stream: stream.into(), aggregation, window }
    }

    /// Tile length in microseconds.
    pub(crate) fn tile_micros(&self) -> i64 {
        i64::try_from(self.window.as_micros()).unwrap_or(i64::MAX) / TILES_PER_WINDOW
    }
}

/// Streams and the features over them.
///
/// ```
/// use std::time::Duration;
/// use fresco::aggregates::{Aggregation, Definitions, StreamSpec, WindowedFeature};
///
/// let in_rust = Definitions::new()
///     .stream(StreamSpec::new("orders", "restaurant_id").late_tolerance(Duration::from_secs(120)))
///     .feature(WindowedFeature::new("orders_30m", "orders", Aggregation::Count, Duration::from_secs(1800)));
///
/// let in_toml = Definitions::from_toml(r#"
///     [[stream]]
///     name = "orders"
///     entity = "restaurant_id"
///     late_tolerance = "2m"
///
///     [[feature]]
///     name = "orders_30m"
///     stream = "orders"
///     aggregation = "count"
///     window = "30m"
/// "#)?;
/// assert_eq!(in_rust, in_toml);
/// # Ok::<(), fresco::aggregates::AggregateError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Definitions {
    pub(crate) streams: Vec<StreamSpec>,
    pub(crate) features: Vec<WindowedFeature>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    stream: Vec<TomlStream>,
    #[serde(default)]
    feature: Vec<TomlFeature>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlStream {
    name: String,
    entity: String,
    #[serde(default)]
    late_tolerance: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFeature {
    name: String,
    stream: String,
    aggregation: Aggregation,
    window: String,
}

impl Definitions {
    /// No streams, no features.
    pub fn new() -> Self {
        Definitions::default()
    }

    /// Adds a stream.
    pub fn stream(mut self, stream: StreamSpec) -> Self {
        self.streams.push(stream);
        self
    }

    /// Adds a feature.
    pub fn feature(mut self, feature: WindowedFeature) -> Self {
        self.features.push(feature);
        self
    }

    /// The streams, in declaration order.
    pub fn streams(&self) -> &[StreamSpec] {
        &self.streams
    }

    /// The features, in declaration order.
    pub fn features(&self) -> &[WindowedFeature] {
        &self.features
    }

    /// Only the named streams and the features reading them: what a backfill of one
    /// stream's slice computes.
    ///
    /// ```
    /// # let defs = fresco::aggregates::Definitions::from_toml(r#"
    /// # [[stream]]
    /// # name = "orders"
    /// # entity = "restaurant_id"
    /// # [[stream]]
    /// # name = "trips"
    /// # entity = "courier_id"
    /// # [[feature]]
    /// # name = "orders_30m"
    /// # stream = "orders"
    /// # aggregation = "count"
    /// # window = "30m"
    /// # [[feature]]
    /// # name = "trips_1h"
    /// # stream = "trips"
    /// # aggregation = "count"
    /// # window = "1h"
    /// # "#)?;
    /// let orders = defs.restricted_to(&["orders"])?;
    /// assert_eq!(orders.features().len(), 1);
    /// assert!(defs.restricted_to(&["flights"]).is_err());
    /// # Ok::<(), fresco::aggregates::AggregateError>(())
    /// ```
    pub fn restricted_to(&self, streams: &[&str]) -> Result<Definitions, AggregateError> {
        if let Some(missing) = streams.iter().find(|name| !self.streams.iter().any(|s| &s.name == *name)) {
            return Err(AggregateError::UnknownStream { stream: (*missing).to_owned() });
        }
        let keep = |stream: &str| streams.contains(&stream);
        Ok(Definitions {
            streams: self.streams.iter().filter(|s| keep(&s.name)).cloned().collect(),
            features: self.features.iter().filter(|f| keep(&f.stream)).cloned().collect(),
        })
    }

    /// Parses definitions from TOML (`[[stream]]` and `[[feature]]` tables; durations
    /// such as `"90s"`, `"5m"`, `"1h"`, `"1d"`) and validates them.
    pub fn from_toml(text: &str) -> Result<Self, AggregateError> {
        let file: TomlFile =
            toml::from_str(text).map_err(|e| AggregateError::Definition { reason: e.message().to_owned() })?;
        let mut defs = Definitions::new();
        for s in file.stream {
            let tolerance = match &s.late_tolerance {
                Some(text) => parse_duration(text).map_err(|reason| AggregateError::Definition {
                    reason: format!("stream `{}`: late_tolerance: {reason}", s.name),
                })?,
                None => Duration::ZERO,
            };
            defs = defs.stream(StreamSpec::new(s.name, s.entity).late_tolerance(tolerance));
        }
        for f in file.feature {
            let window = parse_duration(&f.window).map_err(|reason| AggregateError::Definition {
                reason: format!("feature `{}`: window: {reason}", f.name),
            })?;
            defs = defs.feature(WindowedFeature::new(f.name, f.stream, f.aggregation, window));
        }
        defs.validate()?;
        Ok(defs)
    }

    /// Reads [`from_toml`](Self::from_toml) from a file.
    pub fn from_toml_file(path: impl AsRef<std::path::Path>) -> Result<Self, AggregateError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| AggregateError::Definition { reason: format!("{}: {e}", path.display()) })?;
        Self::from_toml(&text).map_err(|e| match e {
            AggregateError::Definition { reason } => {
                AggregateError::Definition { reason: format!("{}: {reason}", path.display()) }
            }
            other => other,
        })
    }

    /// Checks names are unique, every feature's stream exists, and windows divide into
    /// whole tiles.
    pub fn validate(&self) -> Result<(), AggregateError> {
        let bad = |reason: String| Err(AggregateError::Definition { reason });
        for (i, s) in self.streams.iter().enumerate() {
            if s.name.is_empty() || s.entity.is_empty() {
                return bad(format!("stream #{i}: empty name or entity"));
            }
            if self.streams[..i].iter().any(|o| o.name == s.name) {
                return bad(format!("two streams are named `{}`", s.name));
            }
        }
        for (i, f) in self.features.iter().enumerate() {
            if f.name.is_empty() {
                return bad(format!("feature #{i}: empty name"));
            }
            if self.features[..i].iter().any(|o| o.name == f.name) {
                return bad(format!("two features are named `{}`", f.name));
            }
            if !self.streams.iter().any(|s| s.name == f.stream) {
                return bad(format!("feature `{}` reads stream `{}`, which is not declared", f.name, f.stream));
            }
            let micros = f.window.as_micros();
            if micros == 0 || micros % TILES_PER_WINDOW as u128 != 0 || micros > i64::MAX as u128 / 4 {
                return bad(format!(
                    "feature `{}`: window {:?} must be positive and a multiple of {TILES_PER_WINDOW} µs",
                    f.name, f.window
                ));
            }
        }
        Ok(())
    }
}

/// Why [`parse_duration`] refused a text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// The text does not start with a whole number.
    #[error("`{text}` does not start with a whole number")]
    NotANumber {
        /// The text given.
        text: String,
    },
    /// The duration does not fit in a `Duration` of seconds.
    #[error("`{text}` is too long")]
    TooLong {
        /// The text given.
        text: String,
    },
    /// The unit is none of `ms`, `s`, `m`, `h`, `d`.
    #[error("unknown unit `{unit}` in `{text}` (use ms, s, m, h or d)")]
    UnknownUnit {
        /// The unit found.
        unit: String,
        /// The text given.
        text: String,
    },
}

/// Parses `"250ms"`, `"90s"`, `"5m"`, `"1h"`, `"1d"` (one number and one unit).
///
/// ```
/// use std::time::Duration;
/// use fresco::aggregates::{DurationError, parse_duration};
///
/// assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
/// assert!(matches!(parse_duration("30 weeks"), Err(DurationError::UnknownUnit { .. })));
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| DurationError::NotANumber { text: text.into() })?;
    let seconds = |factor: u64| {
        n.checked_mul(factor).map(Duration::from_secs).ok_or_else(|| DurationError::TooLong { text: text.into() })
    };
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => seconds(1),
        "m" | "min" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86_400),
        other => Err(DurationError::UnknownUnit { unit: other.into(), text: text.into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("m5").is_err());
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn bad_definitions_are_named() {
        let err = |text: &str| Definitions::from_toml(text).unwrap_err().to_string();
        assert!(err("[[feature]]\nname='x'\nstream='s'\naggregation='count'\nwindow='5m'").contains("stream `s`"));
        assert!(
            err(
                "[[stream]]\nname='s'\nentity='k'\n[[feature]]\nname='x'\nstream='s'\naggregation='median'\nwindow='5m'"
            )
            .contains("median")
        );
        assert!(err("[[stream]]\nname='s'\nentity='k'\nlate_tolerance='soon'").contains("late_tolerance"));
        assert!(err("[[stream]]\nname='s'\nentity='k'\n[[stream]]\nname='s'\nentity='j'").contains("two streams"));
        assert!(err("[[stream]]\nname='s'\nentity='k'\ncolour='red'").contains("colour"));
    }
}
