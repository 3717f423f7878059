//! An event stream in this process's memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{Batch, Entry, EventStream, Position, StreamError};
use crate::Timestamp;
use crate::sync::lock;

/// An [`EventStream`] held in memory: for one process (a publisher and followers in
/// the same service) and for tests. Positions are `0-1`, `0-2`, …; arrivals are this
/// process's clock, never going backwards.
///
/// ```
/// use std::time::Duration;
/// use fresco::Timestamp;
/// use fresco::events::{Batch, Event, EventStream, MemoryStream, Position};
///
/// let stream = MemoryStream::new();
/// let batch = Batch { producer: "p".into(), sequence: 0, events: vec![Event::new("orders", "r-1", Timestamp::now(), 1.0)] };
/// assert_eq!(stream.publish(&batch)?, Some(Position::new(0, 1)));
/// assert_eq!(stream.publish(&batch)?, None); // a retry appends nothing
/// assert_eq!(stream.read(None, 10, Duration::ZERO)?.len(), 1);
/// # Ok::<(), fresco::events::StreamError>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryStream {
    state: Mutex<State>,
    appended: Condvar,
}

#[derive(Debug, Default)]
struct State {
    entries: VecDeque<Entry>,
    /// Entries appended so far (the last position's `lo`).
    count: u64,
    last_arrival: i64,
    /// The last position trimmed away.
    trimmed_through: Option<Position>,
    /// Each producer's last appended batch.
    producers: HashMap<String, u64>,
}

impl MemoryStream {
    /// An empty stream.
    pub fn new() -> Self {
        MemoryStream::default()
    }
}

impl EventStream for MemoryStream {
    fn publish(&self, batch: &Batch) -> Result<Option<Position>, StreamError> {
        let mut state = lock(&self.state);
        if state.producers.get(&batch.producer).is_some_and(|&last| batch.sequence <= last) {
            return Ok(None);
        }
        state.producers.insert(batch.producer.clone(), batch.sequence);
        let arrival = Timestamp::now().as_micros().max(state.last_arrival);
        state.last_arrival = arrival;
        let mut last = None;
        for event in &batch.events {
            state.count = state.count.saturating_add(1);
            let position = Position::new(0, state.count);
            state.entries.push_back(Entry {
                position,
                arrival: Timestamp::from_micros(arrival),
                event: Ok(event.clone()),
            });
            last = Some(position);
        }
        drop(state);
        self.appended.notify_all();
        Ok(last)
    }

    fn read(&self, after: Option<Position>, max: usize, wait: Duration) -> Result<Vec<Entry>, StreamError> {
        let deadline = Instant::now().checked_add(wait);
        let mut state = lock(&self.state);
        loop {
            if let Some(trimmed) = state.trimmed_through
                && after.is_none_or(|a| a < trimmed)
            {
                return Err(StreamError::Trimmed { stream: self.name(), after, trimmed_through: trimmed });
            }
            let start = state.entries.partition_point(|e| after.is_some_and(|a| e.position <= a));
            if start < state.entries.len() {
                return Ok(state.entries.iter().skip(start).take(max).cloned().collect());
            }
            let left = deadline.map_or(Duration::ZERO, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Ok(Vec::new());
            }
            state = self.appended.wait_timeout(state, left).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        }
    }

    fn end(&self) -> Result<Option<Position>, StreamError> {
        let state = lock(&self.state);
        Ok((state.count > 0).then(|| Position::new(0, state.count)))
    }

    fn trim(&self, through: Position) -> Result<(), StreamError> {
        let mut state = lock(&self.state);
        let mut last = None;
        while state.entries.front().is_some_and(|e| e.position <= through) {
            last = state.entries.pop_front().map(|e| e.position);
        }
        if last.is_some() {
            state.trimmed_through = last.max(state.trimmed_through);
        }
        Ok(())
    }

    fn name(&self) -> String {
        "memory".to_owned()
    }
}
