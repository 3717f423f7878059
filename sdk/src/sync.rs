//! Locking that survives a panic elsewhere.

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
