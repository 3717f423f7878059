//! Events for windowed aggregates, through the client.

use std::sync::Arc;

use super::{Client, ClientBuilder};
use crate::error::Error;
use crate::events::{Event, Publisher};

impl ClientBuilder {
    /// Sends [`Client::record_event`] to a shared event stream through `publisher`
    /// (a fleet: every replica's [`Follower`](crate::events::Follower) applies it),
    /// instead of into this process's aggregate store.
    pub fn events(mut self, publisher: Arc<Publisher>) -> Self {
        self.publisher = Some(publisher);
        self
    }
}

impl Client {
    /// Records an event for windowed aggregates: appended to the shared event stream
    /// when the client has a publisher ([`ClientBuilder::events`]; it then counts on
    /// every replica once their followers apply it), else recorded straight into the
    /// client's aggregate store (one process).
    ///
    /// A full publisher buffer (the stream down for a while) is
    /// [`StreamError::BufferFull`](crate::events::StreamError::BufferFull): the event
    /// was not taken.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use fresco::aggregates::{AggregateStore, Aggregation, Definitions, StreamSpec, WindowedFeature};
    /// use fresco::events::Event;
    /// use fresco::{Client, MemorySink, Timestamp};
    ///
    /// let defs = Definitions::new()
    ///     .stream(StreamSpec::new("orders", "restaurant_id"))
    ///     .feature(WindowedFeature::new("orders_30m", "orders", Aggregation::Count, Duration::from_secs(1800)));
    /// let aggregates = Arc::new(AggregateStore::new(defs)?);
    /// let client = Client::builder().aggregates(aggregates.clone()).log_to(MemorySink::new()).build()?;
    /// client.record_event(Event::new("orders", "r-17", Timestamp::now(), 1.0))?;
    /// assert_eq!(aggregates.read("orders_30m", "r-17", Timestamp::now())?, Some(1.0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn record_event(&self, event: Event) -> Result<(), Error> {
        if let Some(publisher) = &self.inner.publisher {
            return Ok(publisher.publish(event)?);
        }
        let aggregates = self.inner.loader.aggregates.as_ref().ok_or(Error::NoEventSink)?;
        aggregates.record_event(&event.stream, &event.key, event.ts, event.value)?;
        Ok(())
    }
}
