//! [`PredictionId`]: the one name of a prediction, from `predict` to its outcome.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// A prediction's id: a UUIDv7, so ids sort by the time they were made. It is what
/// [`Prediction::id`](crate::Prediction::id) returns, what
/// [`Client::log_outcome`](crate::Client::log_outcome) and the treatment calls take, and
/// (as its hyphenated text) the `prediction_id` column of every table of the log.
///
/// ```
/// use fresco::PredictionId;
///
/// let id: PredictionId = "0190b3c4-0000-7000-8000-000000000000".parse()?;
/// assert_eq!(id.to_string(), "0190b3c4-0000-7000-8000-000000000000");
/// let err = "order-17".parse::<PredictionId>().unwrap_err();
/// assert!(err.to_string().contains("`order-17` is not a prediction id"));
/// # Ok::<(), fresco::InvalidPredictionId>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PredictionId(Uuid);

impl PredictionId {
    /// A new id (UUIDv7: the Unix time in milliseconds, then 74 random bits).
    pub(crate) fn new() -> Self {
        let mut random = [0u8; 10];
        if entropy::fill(&mut random).is_err() {
            // The OS refused randomness (never seen on a supported host): uuid's own
            // generator asks it again and says why if it fails too.
            return PredictionId(Uuid::now_v7());
        }
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        PredictionId(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for PredictionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl From<Uuid> for PredictionId {
    fn from(uuid: Uuid) -> Self {
        PredictionId(uuid)
    }
}

/// Random bytes for ids, drawn from the OS a block at a time. `Uuid::now_v7` asks the
/// OS once or twice per id (a `getrandom` system call that makes a ChaCha state in the
/// kernel): that was the largest cost of a `predict` after the feature-store read.
/// One call per [`BLOCK`](entropy::BLOCK) bytes serves 25 ids.
///
/// A block is per thread. A child process made by `fork` starts with a copy of its
/// parent's unused bytes, and parent and child would then draw the same ids in the
/// same millisecond: a `pthread_atfork` handler counts forks, and a thread whose block
/// was drawn before the latest fork throws it away.
pub(crate) mod entropy {
    use std::cell::RefCell;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Bytes drawn per system call.
    pub(crate) const BLOCK: usize = 256;

    /// Forks of this process so far (as counted in the children).
    static FORKS: AtomicU64 = AtomicU64::new(0);

    struct Block {
        bytes: [u8; BLOCK],
        /// Bytes already handed out.
        used: usize,
        /// [`FORKS`] when the block was drawn.
        forks: u64,
    }

    thread_local! {
        static BLOCK_OF_THREAD: RefCell<Block> = const { RefCell::new(Block { bytes: [0; BLOCK], used: BLOCK, forks: 0 }) };
    }

    /// Fills `out` with random bytes, never the same bytes twice in any process.
    pub(crate) fn fill(out: &mut [u8]) -> Result<(), getrandom::Error> {
        count_forks();
        if out.len() > BLOCK {
            return getrandom::fill(out);
        }
        BLOCK_OF_THREAD.with(|block| {
            let mut block = block.borrow_mut();
            let forks = FORKS.load(Ordering::Acquire);
            if block.forks != forks || block.used + out.len() > BLOCK {
                getrandom::fill(&mut block.bytes)?;
                block.used = 0;
                block.forks = forks;
            }
            let start = block.used;
            out.copy_from_slice(&block.bytes[start..start + out.len()]);
            // Handed-out bytes are wiped: a later copy of this memory shows none of them.
            block.bytes[start..start + out.len()].fill(0);
            block.used += out.len();
            Ok(())
        })
    }

    #[cfg(unix)]
    fn count_forks() {
        static REGISTERED: std::sync::Once = std::sync::Once::new();
        unsafe extern "C" {
            fn pthread_atfork(
                prepare: Option<extern "C" fn()>,
                parent: Option<extern "C" fn()>,
                child: Option<extern "C" fn()>,
            ) -> std::ffi::c_int;
        }
        // Runs in the child, right after fork: an atomic add is async-signal-safe.
        extern "C" fn forked() {
            FORKS.fetch_add(1, Ordering::AcqRel);
        }
        REGISTERED.call_once(|| {
            // SAFETY: `pthread_atfork` (POSIX, in the C library std links) only records
            // the handler; `forked` touches nothing but an atomic.
            let status = unsafe { pthread_atfork(None, None, Some(forked)) };
            if status != 0 {
                tracing::warn!(status, "pthread_atfork refused: ids drawn after a fork may repeat the parent's");
            }
        });
    }

    #[cfg(not(unix))]
    fn count_forks() {}
}

/// Text that is not a [`PredictionId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a prediction id (a UUID such as 0190b3c4-0000-7000-8000-000000000000): {reason}")]
pub struct InvalidPredictionId {
    /// The text given.
    pub text: String,
    /// What the UUID parser said.
    pub reason: String,
}

impl FromStr for PredictionId {
    type Err = InvalidPredictionId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(text)
            .map(PredictionId)
            .map_err(|e| InvalidPredictionId { text: text.to_owned(), reason: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_from_many_threads_are_distinct_version_7_and_dated_now() {
        let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let threads: Vec<_> = (0..8)
            .map(|_| std::thread::spawn(|| (0..20_000).map(|_| PredictionId::new()).collect::<Vec<_>>()))
            .collect();
        let ids: Vec<PredictionId> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "an id repeated");
        for id in &ids {
            let uuid = id.as_uuid();
            assert_eq!(uuid.get_version_num(), 7);
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
            let (secs, nanos) = uuid.get_timestamp().unwrap().to_unix();
            let millis = secs * 1000 + u64::from(nanos) / 1_000_000;
            assert!((before..=after).contains(&millis), "{millis} outside {before}..={after}");
        }
    }

    /// A child made by `fork` draws other bytes than its parent, though it starts with a
    /// copy of the parent's partly used block.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_forked_child_draws_other_bytes_than_its_parent() {
        unsafe extern "C" {
            fn fork() -> i32;
            fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
            fn _exit(status: i32) -> !;
        }
        let draw = || {
            (0..100)
                .map(|_| {
                    let mut bytes = [0u8; 10];
                    entropy::fill(&mut bytes).unwrap();
                    bytes
                })
                .collect::<Vec<_>>()
        };
        let dir = tempfile::tempdir().unwrap();
        let child_file = dir.path().join("child");
        // A block drawn before the fork, most of it unused.
        entropy::fill(&mut [0u8; 10]).unwrap();
        // SAFETY: the child only draws bytes, writes a file (glibc's malloc is usable
        // after fork) and leaves with `_exit`, running no destructors or test harness.
        let pid = unsafe { fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let bytes: Vec<u8> = draw().concat();
            let code = if std::fs::write(&child_file, bytes).is_ok() { 0 } else { 1 };
            // SAFETY: ends the child at once.
            unsafe { _exit(code) }
        }
        let parent = draw();
        let mut status = 0;
        // SAFETY: waits for the child made above.
        assert_eq!(unsafe { waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(status, 0, "the child failed");
        let child = std::fs::read(&child_file).unwrap();
        let child: HashSet<&[u8]> = child.chunks(10).collect();
        assert_eq!(child.len(), 100);
        let shared = parent.iter().filter(|b| child.contains(&b[..])).count();
        assert_eq!(shared, 0, "{shared} of 100 draws equal in parent and child");
    }
}
