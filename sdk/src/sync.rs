//! Locking that survives a panic elsewhere, and the jitter of retries.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, ignoring poisoning.
///
/// Every mutex in this crate guards state that a panicking holder cannot leave half
/// updated in a way that matters (a single `extend` or `insert`, a counter, a tile
/// that is rewritten whole), so a panic in one caller must not take the lock, and with
/// it the prediction log or the aggregate store, away from every other caller.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `d` scaled by a factor in [0.5, 1.0): processes that lost a server together (a
/// stream, an object store) do not all come back at the same instant.
#[cfg(feature = "client")]
pub(crate) fn jitter(d: std::time::Duration) -> std::time::Duration {
    let nanos = u64::from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos(),
    );
    let factor = 0.5 + (crate::log::fnv1a(&nanos.to_le_bytes()) % 1000) as f64 / 2000.0;
    d.mul_f64(factor)
}
