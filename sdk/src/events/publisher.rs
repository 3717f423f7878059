//! Producers: events into a bounded buffer, a thread that appends them in batches.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Batch, Event, EventStream, StreamError, check_event};
use crate::sync::{jitter, lock};

/// What a [`Publisher`] does while the stream is unreachable.
///
/// Events wait in a local buffer of `buffer` events and are appended, in order, once
/// the stream answers again (retries back off from 50 ms to `max_backoff`, with
/// jitter). When the buffer is full, [`Publisher::publish`] refuses the event with
/// [`StreamError::BufferFull`]: nothing is dropped silently, and the refusals are
/// counted (`fresco_events_refused_total`). Events still buffered when the process
/// dies are lost; [`Publisher::flush`] waits until none are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishPolicy {
    /// Events held while the stream is slow or down (default 65,536).
    pub buffer: usize,
    /// Most events per append (default 1,024).
    pub batch: usize,
    /// The longest wait between retries (default 2 s).
    pub max_backoff: Duration,
}

impl Default for PublishPolicy {
    fn default() -> Self {
        PublishPolicy { buffer: 65_536, batch: 1_024, max_backoff: Duration::from_secs(2) }
    }
}

/// Counters of a [`Publisher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublisherStats {
    /// Events appended to the stream.
    pub published: u64,
    /// Events refused because the buffer was full.
    pub refused: u64,
    /// Events waiting in the buffer (including a batch being appended).
    pub buffered: usize,
    /// Appends that failed and were retried.
    pub failed_appends: u64,
}

#[derive(Debug)]
struct Shared {
    stream: Arc<dyn EventStream>,
    policy: PublishPolicy,
    producer: String,
    queue: Mutex<Queue>,
    /// Signalled when events are queued or the publisher stops.
    work: Condvar,
    /// Signalled when a batch has been appended.
    done: Condvar,
    stopping: AtomicBool,
    published: AtomicU64,
    refused: AtomicU64,
    failed_appends: AtomicU64,
}

#[derive(Debug, Default)]
struct Queue {
    waiting: VecDeque<Event>,
    /// Events taken by the thread and not yet appended.
    in_flight: usize,
}

/// Appends events to an [`EventStream`] from a thread of its own, so that a request
/// never waits for the stream; see [`PublishPolicy`] for what happens while it is down.
///
/// Each publisher is one producer with an id of its own (a UUIDv7) and numbered
/// batches, so a batch retried after an unanswered append is appended once.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use fresco::Timestamp;
/// use fresco::events::{Event, EventStream, MemoryStream, PublishPolicy, Publisher};
///
/// let stream = Arc::new(MemoryStream::new());
/// let publisher = Publisher::new(stream.clone(), PublishPolicy { buffer: 1_000, ..PublishPolicy::default() });
/// for n in 0..10 {
///     publisher.publish(Event::new("orders", format!("r-{n}"), Timestamp::now(), 1.0))?;
/// }
/// publisher.flush(Duration::from_secs(5))?;
/// assert_eq!(publisher.stats().published, 10);
/// assert_eq!(stream.read(None, 100, Duration::ZERO)?.len(), 10);
/// # Ok::<(), fresco::events::StreamError>(())
/// ```
#[derive(Debug)]
pub struct Publisher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Publisher {
    /// A publisher to `stream`, its thread started.
    pub fn new(stream: Arc<dyn EventStream>, policy: PublishPolicy) -> Self {
        let policy = PublishPolicy { buffer: policy.buffer.max(1), batch: policy.batch.max(1), ..policy };
        let shared = Arc::new(Shared {
            stream,
            policy,
            producer: uuid::Uuid::now_v7().to_string(),
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            stopping: AtomicBool::new(false),
            published: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            failed_appends: AtomicU64::new(0),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new().name("fresco-events-publisher".into()).spawn(move || run(&shared))
        };
        match thread {
            Ok(thread) => Publisher { shared, thread: Some(thread) },
            Err(e) => {
                // Without a thread nothing is ever appended: refuse every event, loudly.
                tracing::error!(error = %e, "could not start the event publisher thread");
                shared.stopping.store(true, Ordering::Release);
                Publisher { shared, thread: None }
            }
        }
    }

    /// This publisher's producer id.
    pub fn producer(&self) -> &str {
        &self.shared.producer
    }

    /// Takes `event` for appending, or refuses it: [`StreamError::BufferFull`] while
    /// the buffer is full, [`StreamError::InvalidEvent`] for an event no reader could
    /// apply (a value that is not finite), [`StreamError::Stopped`] after a stop.
    pub fn publish(&self, event: Event) -> Result<(), StreamError> {
        check_event(&event)?;
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err(StreamError::Stopped("publisher"));
        }
        let mut queue = lock(&self.shared.queue);
        if queue.waiting.len().saturating_add(queue.in_flight) >= self.shared.policy.buffer {
            drop(queue);
            self.shared.refused.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("fresco_events_refused_total").increment(1);
            return Err(StreamError::BufferFull { capacity: self.shared.policy.buffer });
        }
        queue.waiting.push_back(event);
        let depth = queue.waiting.len().saturating_add(queue.in_flight);
        drop(queue);
        metrics::gauge!("fresco_events_buffered").set(depth as f64);
        self.shared.work.notify_one();
        Ok(())
    }

    /// Waits until every event taken so far is appended, up to `timeout`
    /// ([`StreamError::Timeout`] names how many are still waiting).
    pub fn flush(&self, timeout: Duration) -> Result<(), StreamError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut queue = lock(&self.shared.queue);
        while !queue.waiting.is_empty() || queue.in_flight > 0 {
            if self.thread.is_none() {
                return Err(StreamError::Stopped("publisher"));
            }
            let left = deadline.map_or(Duration::ZERO, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                let pending = queue.waiting.len().saturating_add(queue.in_flight);
                return Err(StreamError::Timeout {
                    what: format!("appending {pending} buffered events"),
                    waited: timeout,
                });
            }
            queue = self.shared.done.wait_timeout(queue, left).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        }
        Ok(())
    }

    /// Its counters.
    pub fn stats(&self) -> PublisherStats {
        let queue = lock(&self.shared.queue);
        PublisherStats {
            published: self.shared.published.load(Ordering::Relaxed),
            refused: self.shared.refused.load(Ordering::Relaxed),
            buffered: queue.waiting.len().saturating_add(queue.in_flight),
            failed_appends: self.shared.failed_appends.load(Ordering::Relaxed),
        }
    }

    /// Appends what is buffered (waiting up to `timeout`), then stops the thread. The
    /// error says how many events were left when the time ran out.
    pub fn close(mut self, timeout: Duration) -> Result<(), StreamError> {
        let flushed = self.flush(timeout);
        self.stop();
        flushed
    }

    fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.work.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Publisher {
    /// Stops the thread; events still buffered are reported, not silently dropped.
    fn drop(&mut self) {
        self.stop();
        let left = lock(&self.shared.queue).waiting.len();
        if left > 0 {
            tracing::warn!(events = left, "event publisher dropped with events not appended; call close() to flush");
        }
    }
}

fn run(shared: &Shared) {
    let mut sequence = 0u64;
    let mut backoff = Duration::from_millis(50);
    loop {
        let events: Vec<Event> = {
            let mut queue = lock(&shared.queue);
            while queue.waiting.is_empty() && !shared.stopping.load(Ordering::Acquire) {
                queue = shared.work.wait(queue).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if queue.waiting.is_empty() {
                return;
            }
            let n = queue.waiting.len().min(shared.policy.batch);
            queue.in_flight = n;
            queue.waiting.drain(..n).collect()
        };
        let batch = Batch { producer: shared.producer.clone(), sequence, events };
        // The same batch (same number) until it is appended: a lost answer does not
        // append it twice.
        loop {
            match shared.stream.publish(&batch) {
                Ok(_) => break,
                Err(e) => {
                    shared.failed_appends.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("fresco_events_append_failures_total").increment(1);
                    tracing::warn!(error = %e, events = batch.events.len(), retry_in = ?backoff, "event append failed");
                    if shared.stopping.load(Ordering::Acquire) && backoff >= shared.policy.max_backoff {
                        // Stopping and the stream still down: give up, and say so.
                        tracing::error!(
                            events = batch.events.len(),
                            "event publisher stopped with events not appended"
                        );
                        return;
                    }
                    std::thread::sleep(jitter(backoff));
                    backoff = backoff.saturating_mul(2).min(shared.policy.max_backoff);
                }
            }
        }
        backoff = Duration::from_millis(50);
        sequence = sequence.saturating_add(1);
        let n = batch.events.len() as u64;
        shared.published.fetch_add(n, Ordering::Relaxed);
        metrics::counter!("fresco_events_published_total").increment(n);
        let mut queue = lock(&shared.queue);
        queue.in_flight = 0;
        metrics::gauge!("fresco_events_buffered").set(queue.waiting.len() as f64);
        drop(queue);
        shared.done.notify_all();
    }
}
