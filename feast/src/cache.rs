//! The optional read-through cache: full rows by view and entity key, for a time to live.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fresco::FeatureValue;

type Row = Arc<Vec<FeatureValue>>;

#[derive(Debug)]
pub(crate) struct Cache {
    ttl: Duration,
    capacity: usize,
    rows: Mutex<HashMap<(String, String), (Instant, Row)>>,
}

impl Cache {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        Cache { ttl, capacity, rows: Mutex::new(HashMap::new()) }
    }

    fn rows(&self) -> MutexGuard<'_, HashMap<(String, String), (Instant, Row)>> {
        // A panic elsewhere while holding the lock leaves a map that is still whole.
        self.rows.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(&self, view: &str, key: &str) -> Option<Row> {
        let rows = self.rows();
        let (at, row) = rows.get(&(view.to_owned(), key.to_owned()))?;
        (at.elapsed() < self.ttl).then(|| row.clone())
    }

    pub(crate) fn put(&self, view: &str, key: &str, row: Row) {
        if self.capacity == 0 {
            return;
        }
        let mut rows = self.rows();
        if rows.len() >= self.capacity {
            rows.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if rows.len() >= self.capacity {
                // Still full of live rows: start over rather than track recency per row.
                rows.clear();
            }
        }
        rows.insert((view.to_owned(), key.to_owned()), (Instant::now(), row));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rows_expire_and_capacity_holds() {
        let cache = Cache::new(Duration::from_millis(50), 2);
        let row = Arc::new(vec![FeatureValue::missing()]);
        cache.put("v", "a", row.clone());
        cache.put("v", "b", row.clone());
        assert!(cache.get("v", "a").is_some() && cache.get("w", "a").is_none());
        cache.put("v", "c", row.clone());
        assert!(cache.rows().len() <= 2);
        assert!(cache.get("v", "c").is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("v", "c").is_none());
    }
}
