use std::sync::Arc;

/// Where one model input comes from.
///
/// ```
/// use fresco::InputSource;
///
/// let prep = InputSource::stored("restaurant_stats", "avg_prep_min");
/// let distance = InputSource::request("distance_km");
/// assert_eq!(prep.to_string(), "restaurant_stats:avg_prep_min");
/// assert_eq!(distance.to_string(), "request:distance_km");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InputSource {
    /// A feature of a stored feature view, looked up by the view's entity key.
    Stored {
        /// The feature view.
        view: Arc<str>,
        /// The feature within the view.
        feature: Arc<str>,
    },
    /// A windowed aggregate of an event stream ([`crate::aggregates`]), read at request
    /// time by the stream's entity key.
    Windowed {
        /// The windowed feature's name.
        feature: Arc<str>,
    },
    /// A value the request carries under this name.
    Request {
        /// The request value's name.
        name: Arc<str>,
    },
}

impl InputSource {
    /// A stored feature.
    pub fn stored(view: impl AsRef<str>, feature: impl AsRef<str>) -> Self {
        InputSource::Stored { view: view.as_ref().into(), feature: feature.as_ref().into() }
    }

    /// A windowed aggregate, e.g. `InputSource::windowed("orders_30m")`; the client
    /// needs an [`AggregateStore`](crate::aggregates::AggregateStore)
    /// (`ClientBuilder::aggregates`).
    pub fn windowed(feature: impl AsRef<str>) -> Self {
        InputSource::Windowed { feature: feature.as_ref().into() }
    }

    /// A request-time value.
    pub fn request(name: impl AsRef<str>) -> Self {
        InputSource::Request { name: name.as_ref().into() }
    }
}

impl std::fmt::Display for InputSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputSource::Stored { view, feature } => write!(f, "{view}:{feature}"),
            InputSource::Request { name } => write!(f, "request:{name}"),
            InputSource::Windowed { feature } => write!(f, "windowed:{feature}"),
        }
    }
}
