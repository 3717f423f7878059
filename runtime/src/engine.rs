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
    pub(crate) target: Target,
    /// Held for its `Drop`, which stops the clock thread.
    _ticker: Ticker,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("limits", &self.inner.limits)
            .field("cache", &self.inner.cache.as_ref().map(CodeCache::dir))
            .field("pool_size", &self.inner.pool_size)
            .field("target", &self.inner.target)
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

    /// Where this engine's models run: native code or the Pulley interpreter.
    pub fn target(&self) -> &Target {
        &self.inner.target
    }

    /// Compiles a model ahead of time for this engine's target, into an artifact that
    /// [`Model::from_precompiled`](crate::Model::from_precompiled) loads without
    /// compiling, on an engine of the same build, settings and target. For a phone
    /// that may not JIT, precompile with a [`Target::Pulley`] engine.
    ///
    /// ```
    /// use fresco_runtime::{Engine, Model, Target};
    ///
    /// let wasm = fresco_test_models::linear();
    /// let engine = Engine::builder().target(Target::Pulley).build()?;
    /// let artifact = engine.precompile(&wasm)?;
    /// // SAFETY: the artifact was made just above by this very engine.
    /// let model = unsafe { Model::from_precompiled(&engine, &artifact)? };
    /// assert_eq!(model.predict(&[1.0, 1.0])?, [6.0]);
    ///
    /// // A native engine refuses it, naming both targets.
    /// let native = Engine::new()?;
    /// let err = unsafe { Model::from_precompiled(&native, &artifact) }.unwrap_err();
    /// assert!(err.to_string().contains("compiled for pulley64"), "{err}");
    /// # Ok::<(), fresco_runtime::Error>(())
    /// ```
    pub fn precompile(&self, wasm: &[u8]) -> Result<Vec<u8>> {
        crate::precompiled::precompile(self, wasm)
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

/// Where an engine's models run.
///
/// ```
/// use fresco_runtime::Target;
///
/// assert_eq!("native".parse::<Target>()?, Target::Native);
/// assert_eq!("pulley".parse::<Target>()?, Target::Pulley);
/// assert_eq!(Target::Pulley.triple(), "pulley64");
/// assert_eq!("aarch64-apple-ios".parse::<Target>()?, Target::Triple("aarch64-apple-ios".into()));
/// # Ok::<(), fresco_runtime::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Target {
    /// Machine code for this CPU, compiled by Cranelift: the default and the fastest.
    #[default]
    Native,
    /// Wasmtime's Pulley interpreter: models are compiled to portable bytecode and
    /// interpreted, so no executable memory is ever made, for hosts that forbid JIT
    /// (iOS, some consoles and locked-down servers). Needs the `pulley` feature.
    Pulley,
    /// Machine code for another target triple, only to [precompile](crate::Engine::precompile)
    /// artifacts for it (an engine for a foreign CPU cannot run models here). Needs a
    /// wasmtime built with that Cranelift backend (its `all-arch` feature for any).
    Triple(String),
}

impl Target {
    /// The target triple code is made for: this host's for [`Target::Native`]
    /// (`x86_64-unknown-linux-gnu`), `pulley64` / `pulley32` (by pointer width) for
    /// [`Target::Pulley`].
    pub fn triple(&self) -> String {
        match self {
            Target::Native => host_triple(),
            Target::Pulley if cfg!(target_pointer_width = "32") => "pulley32".to_owned(),
            Target::Pulley => "pulley64".to_owned(),
            Target::Triple(triple) => triple.clone(),
        }
    }
}

/// This host's target triple, as Rust names it (`x86_64-unknown-linux-gnu`).
fn host_triple() -> String {
    let (arch, os) = (std::env::consts::ARCH, std::env::consts::OS);
    match os {
        "linux" if cfg!(target_env = "musl") => format!("{arch}-unknown-linux-musl"),
        "linux" => format!("{arch}-unknown-linux-gnu"),
        "macos" => format!("{arch}-apple-darwin"),
        "ios" => format!("{arch}-apple-ios"),
        "windows" => format!("{arch}-pc-windows-msvc"),
        "android" => format!("{arch}-linux-android"),
        other => format!("{arch}-unknown-{other}"),
    }
}

impl std::str::FromStr for Target {
    type Err = Error;

    /// `native`, `pulley` (also `pulley64`, `pulley32`), or a target triple.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "native" => Ok(Target::Native),
            "pulley" | "pulley64" | "pulley32" => Ok(Target::Pulley),
            "" => Err(Error::Engine { reason: "an empty target; expected native, pulley or a target triple".into() }),
            triple if triple == host_triple() => Ok(Target::Native),
            triple => Ok(Target::Triple(triple.to_owned())),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Native => write!(f, "native ({})", host_triple()),
            Target::Pulley => write!(f, "pulley ({})", self.triple()),
            Target::Triple(triple) => f.write_str(triple),
        }
    }
}

/// Builder for [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    limits: Limits,
    cache_dir: Option<PathBuf>,
    nan_canonicalization: bool,
    pool_size: Option<usize>,
    target: Target,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        EngineBuilder {
            limits: Limits::default(),
            cache_dir: None,
            nan_canonicalization: false,
            pool_size: None,
            target: Target::Native,
        }
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

    /// Canonicalise the NaN result of every float operation inside models (off by
    /// default).
    ///
    /// Which NaN an operation returns differs between CPUs (and between JavaScript
    /// engines), so a model's outputs are kept the same bits everywhere at the boundary
    /// instead: every host turns any NaN it reads out of a model into the one canonical
    /// NaN, and fresco's compiler never emits code whose result depends on which NaN a
    /// computation made. That keeps the per-operation check out of the tree walk (it
    /// cost the small benchmark model a third of its speed). Turn this on for a guest
    /// module of your own that reads the bits of computed floats and must give the same
    /// non-NaN answers on every CPU.
    ///
    /// ```
    /// use fresco_runtime::{Engine, Model};
    ///
    /// let engine = Engine::builder().nan_canonicalization(true).build()?;
    /// let model = Model::from_bytes(&engine, fresco_test_models::linear())?;
    /// assert_eq!(model.predict(&[1.0, 1.0])?, [6.0]);
    /// # Ok::<(), fresco_runtime::Error>(())
    /// ```
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

    /// Where models run (default [`Target::Native`]). [`Target::Pulley`] interprets
    /// them, for hosts that may not JIT; it needs the `pulley` feature, and
    /// [`build`](Self::build) says so when it is off.
    ///
    /// ```
    /// use fresco_runtime::{Engine, Model, Target};
    ///
    /// let engine = Engine::builder().target(Target::Pulley).build()?;
    /// let model = Model::from_bytes(&engine, fresco_test_models::linear())?;
    /// assert_eq!(model.predict(&[1.0, 1.0])?, [6.0]);
    /// # Ok::<(), fresco_runtime::Error>(())
    /// ```
    pub fn target(mut self, target: Target) -> Self {
        self.target = target;
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
        match &self.target {
            Target::Native => {}
            Target::Pulley if !cfg!(feature = "pulley") => {
                return Err(Error::Engine {
                    reason: "the Pulley interpreter is not built in: enable fresco-runtime's `pulley` feature".into(),
                });
            }
            other => {
                config
                    .target(&other.triple())
                    .map_err(|e| Error::Engine { reason: format!("cannot make code for target {other}: {e:#}") })?;
            }
        }
        let wasmtime = wasmtime::Engine::new(&config)
            .map_err(|e| Error::Engine { reason: format!("target {}: {e:#}", self.target) })?;
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
                target: self.target,
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
