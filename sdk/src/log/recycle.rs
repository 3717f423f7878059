//! Batches passed back from the log's writer thread to the threads that fill them.
//!
//! A [`PredictionBatch`] is allocated by the thread that calls `predict` and consumed by
//! the writer thread. Freed there, its vectors went back to the calling thread's
//! allocator arena from another thread: glibc's `malloc` queues such chunks unsorted,
//! and the next allocation on the calling thread that its per-thread cache cannot serve
//! sorted the whole queue first. On the client benchmark that made about 6 % of durable
//! `predict` calls spend 15 µs or more in the store read's first large allocation (p99
//! 45–57 µs, against 16–18 µs with the record only encoded). Kept here instead, a
//! batch's memory is allocated once and filled again, and no call frees it.

use std::sync::{Arc, Mutex};

use super::LogSchema;
use super::batch::PredictionBatch;
use crate::sync::lock;

/// Batches the writer is done with, handed out again by [`take`](Self::take).
///
/// They are kept in the boxes the log's queue carries them in: `take` moves a batch out
/// of its box and frees the box on the calling thread, and the append boxes it again
/// there, so every allocation and every free of a batch stays on the calling thread.
#[derive(Default)]
pub(crate) struct BatchPool {
    #[expect(clippy::vec_box, reason = "the boxes are the queue's, kept so that no other thread frees them")]
    kept: Mutex<Vec<Box<PredictionBatch>>>,
}

impl BatchPool {
    /// Batches kept at most: about what a busy writer takes in one turn (it looks every
    /// millisecond), so that the callers find one in the pool.
    const KEPT: usize = 1024;
    /// A batch that holds more heap than this (a large `predict_batch`) is freed rather
    /// than kept: the pool is for the many small batches of single predictions.
    const MAX_BATCH_BYTES: usize = 64 << 10;

    /// An empty batch of `schema` with room for `rows` rows, in a kept batch's memory
    /// when there is one.
    pub(crate) fn take(&self, schema: Arc<LogSchema>, rows: usize) -> PredictionBatch {
        let kept = lock(&self.kept).pop();
        match kept {
            Some(mut batch) => {
                batch.reset(schema, rows);
                *batch
            }
            None => PredictionBatch::with_capacity(schema, rows),
        }
    }

    /// Keeps `batches` for later [`take`](Self::take)s, up to [`Self::KEPT`] batches;
    /// `batches` is left empty.
    #[expect(clippy::vec_box, reason = "the boxes are the queue's, kept so that no other thread frees them")]
    pub(crate) fn give_back(&self, batches: &mut Vec<Box<PredictionBatch>>) {
        let mut kept = lock(&self.kept);
        let room = Self::KEPT.saturating_sub(kept.len());
        let mut given = batches.drain(..);
        kept.extend(given.by_ref().filter(|b| b.capacity_bytes() <= Self::MAX_BATCH_BYTES).take(room));
        drop(kept);
        // Those past the pool's room are freed here, unlocked.
        drop(given);
    }

    /// Batches kept now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.kept).len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Timestamp;
    use crate::log::PredictionRow;

    fn schema() -> Arc<LogSchema> {
        Arc::new(LogSchema {
            model: "m".into(),
            version: "1".into(),
            entities: vec!["user_id".into()],
            inputs: vec![("x".into(), fresco_abi::InputType::F64)],
            outputs: vec!["y".into()],
        })
    }

    fn row(id: &str) -> PredictionRow<'_> {
        PredictionRow {
            prediction_id: id,
            ts: Timestamp::from_secs(1),
            model_version: "1",
            entities: &[],
            inputs: &[1.0],
            outputs: &[2.0],
            holdout: None,
            in_holdout: false,
            eligible: true,
            flag_variant: None,
            latency_us: 3,
        }
    }

    #[test]
    fn a_kept_batch_comes_back_empty_and_holds_only_its_new_rows() {
        let pool = BatchPool::default();
        let mut first = pool.take(schema(), 1);
        first.push(row("a")).unwrap();
        first.push(row("b")).unwrap();
        pool.give_back(&mut vec![Box::new(first)]);
        assert_eq!(pool.len(), 1);

        let mut again = pool.take(schema(), 1);
        assert_eq!(pool.len(), 0);
        assert!(again.is_empty());
        again.push(row("c")).unwrap();
        let records = again.to_records();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].prediction_id, "c");
        assert_eq!(records[0].entities, []);
    }

    #[test]
    fn the_pool_keeps_at_most_its_share() {
        let pool = BatchPool::default();
        let mut many: Vec<Box<PredictionBatch>> =
            (0..BatchPool::KEPT + 5).map(|_| Box::new(pool.take(schema(), 1))).collect();
        pool.give_back(&mut many);
        assert!(many.is_empty());
        assert_eq!(pool.len(), BatchPool::KEPT);

        let mut large = vec![Box::new(PredictionBatch::with_capacity(schema(), 10_000))];
        let pool_of_one = BatchPool::default();
        pool_of_one.give_back(&mut large);
        assert_eq!(pool_of_one.len(), 0, "a large batch is freed, not kept");
    }
}
