//! The [`Engine`]: compiler configuration, deadline clock and compiled-code cache.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use crate::cache::CodeCache;
use crate::error::{Error, Result};
use crate::limits::Limits;

/// Shared configuration for loading and running models. Create one per process and
/// clone it freely (it is an `Arc` inside).
///
/// The engine owns a background thread that advances wasmtime's epoch counter every
/// [`Limits::tick`]; that is what stops a model running past its deadline. The thread
/// ends when the last clone of the engine is dropped.
///
/// ```
/// use fresco_runtime::{Engine, Limits};
///
/// let engine = Engine::builder()
///     .limits(Limits::default().with_max_memory_bytes(128 << 20))
///     .build()?;
/// assert_eq!(engine.limits().max_memory_bytes, 128 << 20);
/// # Ok::<(), fresco_runtime::Error>(())
/// ```
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub(crate) wasmtime: wasmtime::Engine,
    pub(crate) limits: Limits,
    pub(crate) cache: Option<CodeCache>,
    pub(crate) pool_size: usize,
    pub(crate) counters: Counters,
    /// Held for its `Drop`, which stops the clock thread.
    _ticker: Ticker,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("limits", &self.inner.limits)
            .field("cache", &self.inner.cache.as_ref().map(CodeCache::dir))
            .field("pool_size", &self.inner.pool_size)
            .finish()
    }
}

impl Engine {
    /// An engine with default limits and no compiled-code cache.
    pub fn new() -> Result<Self> {
        Self::builder().build()
    }

    /// Starts configuring an engine.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// The sandbox limits every instance runs under.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The compiled-code cache directory, if one is configured.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.inner.cache.as_ref().map(CodeCache::dir)
    }

    /// What the engine has done so far: compilations, cache hits, instances created.
    ///
    /// ```
    /// use fresco_runtime::{Engine, Model};
    ///
    /// let engine = Engine::new()?;
    /// let model = Model::from_bytes(&engine, fresco_test_models::linear())?;
    /// model.predict(&[1.0, 2.0])?;
    /// model.predict(&[3.0, 4.0])?; // the pooled instance is used again
    /// let stats = engine.stats();
    /// assert_eq!((stats.compilations, stats.instances_created), (1, 1));
    /// # Ok::<(), fresco_runtime::Error>(())
    /// ```
    pub fn stats(&self) -> EngineStats {
        let c = &self.inner.counters;
        EngineStats {
            compilations: c.compilations.load(Ordering::Relaxed),
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
            instances_created: c.instances_created.load(Ordering::Relaxed),
        }
    }
}

/// A snapshot of an [`Engine`]'s counters ([`Engine::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EngineStats {
    /// Modules compiled to machine code (cache misses included).
    pub compilations: u64,
    /// Modules loaded from the compiled-code cache instead of compiled.
    pub cache_hits: u64,
    /// Sandboxed instances created (each scoring call borrows one from a model's pool).
    pub instances_created: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) compilations: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) instances_created: AtomicU64,
}

/// Builder for [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    limits: Limits,
    cache_dir: Option<PathBuf>,
    nan_canonicalization: bool,
    pool_size: Option<usize>,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        EngineBuilder { limits: Limits::default(), cache_dir: None, nan_canonicalization: true, pool_size: None }
    }
}

impl EngineBuilder {
    /// Sandbox limits (memory, deadline, stack).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Keep compiled machine code in `dir`, so the next load of the same module skips
    /// compilation. Entries are keyed by the module's SHA-256 and by the engine's
    /// compatibility hash (wasmtime version, compiler settings, host CPU features), so a
    /// changed module, engine or CPU never loads stale code.
    ///
    /// Cache entries are native code: the directory must be writable only by trusted users.
    pub fn code_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Canonicalize NaN results of float arithmetic (on by default), so that a model's
    /// outputs are bitwise identical across CPUs and in browsers.
    pub fn nan_canonicalization(mut self, on: bool) -> Self {
        self.nan_canonicalization = on;
        self
    }

    /// How many idle instances each model keeps for reuse (default: twice the number of
    /// CPUs, at least 4). More concurrent callers than this still work: extra instances
    /// are created on demand and dropped afterwards.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = Some(size.max(1));
        self
    }

    /// Creates the engine and starts its deadline clock.
    pub fn build(self) -> Result<Engine> {
        let mut config = wasmtime::Config::new();
        config
            .epoch_interruption(true)
            .max_wasm_stack(self.limits.max_stack_bytes)
            .cranelift_nan_canonicalization(self.nan_canonicalization)
            .cranelift_opt_level(wasmtime::OptLevel::Speed);
        let wasmtime = wasmtime::Engine::new(&config).map_err(|e| Error::Engine { reason: format!("{e:#}") })?;
        let cache = self.cache_dir.map(|dir| CodeCache::new(dir, &wasmtime));
        let pool_size =
            self.pool_size.unwrap_or_else(|| std::thread::available_parallelism().map_or(4, |n| n.get() * 2).max(4));
        let ticker = Ticker::start(wasmtime.clone(), self.limits.tick)?;
        Ok(Engine {
            inner: Arc::new(EngineInner {
                wasmtime,
                limits: self.limits,
                cache,
                pool_size,
                counters: Counters::default(),
                _ticker: ticker,
            }),
        })
    }
}

/// Background thread advancing the epoch counter.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: wasmtime::Engine, tick: std::time::Duration) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("fresco-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| Error::Engine { reason: format!("cannot start the deadline clock thread: {e}") })?;
        Ok(Ticker { stop, thread: Some(thread) })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
