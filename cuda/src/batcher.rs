//! [`Batcher`]: concurrent `predict` calls coalesced into one launch.
//!
//! A GPU launch costs tens of microseconds whatever its size, so small concurrent
//! requests are worth gathering: the first waiting call opens a batch, calls arriving
//! within `max_wait` (or until `max_rows`) join it, one scoring pass runs, and each
//! caller gets exactly its own rows back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::CudaError;

/// Scores rows (`n_features` values each) into `n_outputs` values each.
pub type Scorer = dyn Fn(&[f64]) -> Result<Vec<f64>, CudaError> + Send + Sync;

struct Job {
    rows: Vec<f64>,
    reply: oneshot::Sender<Result<Vec<f64>, CudaError>>,
}

/// Counters of a batcher.
#[derive(Debug, Default)]
pub struct BatcherStats {
    /// Scoring passes (launches).
    pub batches: AtomicU64,
    /// Calls served.
    pub calls: AtomicU64,
    /// Rows scored.
    pub rows: AtomicU64,
}

/// Coalesces concurrent calls into batches for one scorer (a [`GpuForest`](crate::GpuForest),
/// or any `Fn(&[f64]) -> Result<Vec<f64>, CudaError>`).
///
/// ```
/// use std::time::Duration;
/// use fresco_cuda::Batcher;
///
/// // A scorer that sums each row of two features.
/// let batcher = Batcher::new(2, 1, 10_000, Duration::from_millis(1), |rows: &[f64]| {
///     Ok(rows.chunks(2).map(|r| r[0] + r[1]).collect())
/// });
/// assert_eq!(batcher.predict(vec![1.0, 2.0, 3.0, 4.0])?, vec![3.0, 7.0]);
/// # Ok::<(), fresco_cuda::CudaError>(())
/// ```
pub struct Batcher {
    jobs: Mutex<Option<Sender<Job>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    n_features: usize,
    stats: Arc<BatcherStats>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").field("n_features", &self.n_features).finish_non_exhaustive()
    }
}

impl Batcher {
    /// A batcher of rows of `n_features` into `n_outputs` each, launching when
    /// `max_rows` rows wait or `max_wait` has passed since the first of them.
    pub fn new(
        n_features: usize,
        n_outputs: usize,
        max_rows: usize,
        max_wait: Duration,
        scorer: impl Fn(&[f64]) -> Result<Vec<f64>, CudaError> + Send + Sync + 'static,
    ) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let stats = Arc::new(BatcherStats::default());
        let worker_stats = stats.clone();
        let scorer: Arc<Scorer> = Arc::new(scorer);
        let shape = (n_features.max(1), n_outputs);
        let worker = std::thread::Builder::new()
            .name("fresco-gpu-batcher".into())
            .spawn(move || run(&queue, &*scorer, shape, max_rows.max(1), max_wait, &worker_stats))
            .map_err(|e| tracing::error!(%e, "could not start the GPU batcher thread"))
            .ok();
        Batcher { jobs: Mutex::new(Some(jobs)), worker: Mutex::new(worker), n_features, stats }
    }

    /// Counters.
    pub fn stats(&self) -> &BatcherStats {
        &self.stats
    }

    fn submit(&self, rows: Vec<f64>) -> Result<oneshot::Receiver<Result<Vec<f64>, CudaError>>, CudaError> {
        if !rows.len().is_multiple_of(self.n_features.max(1)) {
            return Err(CudaError::Shape { values: rows.len(), features: self.n_features });
        }
        let (reply, answer) = oneshot::channel();
        let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let sent = jobs.as_ref().map(|j| j.send(Job { rows, reply }));
        match sent {
            Some(Ok(())) => Ok(answer),
            _ => Err(CudaError::Batch { reason: "the batcher has stopped".into() }),
        }
    }

    /// Scores `rows`, in a batch with whatever else arrives meanwhile; blocks until done.
    pub fn predict(&self, rows: Vec<f64>) -> Result<Vec<f64>, CudaError> {
        self.submit(rows)?
            .blocking_recv()
            .map_err(|_| CudaError::Batch { reason: "the batcher stopped before answering".into() })?
    }

    /// [`predict`](Self::predict) without blocking the caller's thread: await the answer.
    pub async fn predict_async(&self, rows: Vec<f64>) -> Result<Vec<f64>, CudaError> {
        self.submit(rows)?
            .await
            .map_err(|_| CudaError::Batch { reason: "the batcher stopped before answering".into() })?
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        // Closing the queue ends the worker once it has answered what it holds.
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(worker) = self.worker.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = worker.join();
        }
    }
}

fn run(
    queue: &Receiver<Job>,
    scorer: &Scorer,
    (n_in, n_out): (usize, usize),
    max_rows: usize,
    max_wait: Duration,
    stats: &BatcherStats,
) {
    while let Ok(first) = queue.recv() {
        let opened = Instant::now();
        let mut batch = vec![first];
        let mut rows = batch[0].rows.len() / n_in;
        while rows < max_rows {
            let left = max_wait.saturating_sub(opened.elapsed());
            match queue.recv_timeout(left) {
                Ok(job) => {
                    rows += job.rows.len() / n_in;
                    batch.push(job);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        let input: Vec<f64> = batch.iter().flat_map(|j| j.rows.iter().copied()).collect();
        let scored = scorer(&input);
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.calls.fetch_add(batch.len() as u64, Ordering::Relaxed);
        stats.rows.fetch_add(rows as u64, Ordering::Relaxed);
        match scored {
            Ok(out) if out.len() == rows * n_out => {
                let mut at = 0;
                for job in batch {
                    let n = job.rows.len() / n_in * n_out;
                    let _ = job.reply.send(Ok(out[at..at + n].to_vec()));
                    at += n;
                }
            }
            Ok(out) => {
                let reason = format!("the scorer returned {} values for {rows} rows of {n_out} outputs", out.len());
                for job in batch {
                    let _ = job.reply.send(Err(CudaError::Batch { reason: reason.clone() }));
                }
            }
            Err(error) => {
                let reason = error.to_string();
                for job in batch {
                    let _ = job.reply.send(Err(CudaError::Batch { reason: reason.clone() }));
                }
            }
        }
    }
}
