//! Sandbox limits applied to every model instance.

use std::time::Duration;

/// Resource limits for model instances.
///
/// Defaults are safe for untrusted models: 256 MiB of linear memory, 1 s per
/// `fresco_predict` call, 512 KiB of WebAssembly stack.
///
/// ```
/// use std::time::Duration;
/// use fresco_runtime::Limits;
///
/// let limits = Limits::default()
///     .with_max_memory_bytes(64 << 20)
///     .with_deadline(Duration::from_millis(50));
/// assert_eq!(limits.max_memory_bytes, 64 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory an instance may have, in bytes. Growing past it stops the
    /// call with [`Error::MemoryLimit`](crate::Error::MemoryLimit).
    pub max_memory_bytes: usize,
    /// Longest a single call into the model may run. Enforced by epoch interruption, so
    /// the actual stop happens within one [`Limits::tick`] after the deadline.
    pub deadline: Duration,
    /// Maximum WebAssembly stack, in bytes; deeper recursion stops the call with
    /// [`Error::StackOverflow`](crate::Error::StackOverflow).
    pub max_stack_bytes: usize,
    /// Granularity of the deadline clock.
    pub tick: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_memory_bytes: 256 << 20,
            deadline: Duration::from_secs(1),
            max_stack_bytes: 512 << 10,
            tick: Duration::from_millis(1),
        }
    }
}

impl Limits {
    /// Sets [`Limits::max_memory_bytes`].
    pub fn with_max_memory_bytes(mut self, bytes: usize) -> Self {
        self.max_memory_bytes = bytes;
        self
    }

    /// Sets [`Limits::deadline`].
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets [`Limits::max_stack_bytes`].
    pub fn with_max_stack_bytes(mut self, bytes: usize) -> Self {
        self.max_stack_bytes = bytes;
        self
    }

    /// Deadline expressed in clock ticks, rounded up, at least one.
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let tick = self.tick.as_nanos().max(1);
        let ticks = self.deadline.as_nanos().div_ceil(tick);
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
    }
}
