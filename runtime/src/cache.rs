//! On-disk cache of compiled machine code.
//!
//! Compiling a large tree ensemble takes seconds; loading its compiled form takes a
//! millisecond. An entry's file name is `<sha256(module)>-<sha256(engine compatibility)>.cwasm`:
//! the first half changes with any byte of the module, the second with the wasmtime
//! version, compiler flags or host CPU features. Entries are written to a temporary file
//! and renamed into place, so a reader never sees half an entry.

use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A directory of compiled modules.
#[derive(Debug, Clone)]
pub(crate) struct CodeCache {
    dir: PathBuf,
    engine_key: String,
}

impl CodeCache {
    pub(crate) fn new(dir: PathBuf, engine: &wasmtime::Engine) -> Self {
        CodeCache { dir, engine_key: compatibility_key(engine) }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the entry for a module with this SHA-256.
    pub(crate) fn entry(&self, module_sha256: &[u8]) -> PathBuf {
        self.dir.join(format!("{}-{}.cwasm", hex::encode(module_sha256), self.engine_key))
    }

    /// Loads a cached compilation, or `None` when absent or unusable (then the caller
    /// compiles and [`store`](Self::store)s again).
    pub(crate) fn load(&self, engine: &wasmtime::Engine, module_sha256: &[u8]) -> Option<wasmtime::Module> {
        let path = self.entry(module_sha256);
        // Read into memory rather than mapping the file: a mapped entry that another
        // process truncates would crash this one with SIGBUS.
        let bytes = std::fs::read(&path).ok()?;
        // SAFETY: entries are only ever created by `store` below from modules wasmtime
        // compiled, and are published by rename, never modified in place. The cache
        // directory is documented as trusted. wasmtime still checks the header's engine
        // compatibility and refuses a mismatched entry.
        match unsafe { wasmtime::Module::deserialize(engine, &bytes) } {
            Ok(module) => Some(module),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "ignoring unusable cache entry");
                None
            }
        }
    }

    /// Writes a compiled module. Failures are logged and otherwise ignored: the cache
    /// is an optimisation, never a reason to fail a load.
    pub(crate) fn store(&self, module: &wasmtime::Module, module_sha256: &[u8]) {
        if let Err(err) = self.try_store(module, module_sha256) {
            tracing::warn!(dir = %self.dir.display(), error = %err, "could not write compiled-code cache entry");
        }
    }

    fn try_store(&self, module: &wasmtime::Module, module_sha256: &[u8]) -> std::io::Result<()> {
        let bytes = module.serialize().map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        std::fs::create_dir_all(&self.dir)?;
        let path = self.entry(module_sha256);
        let mut tmp = tempfile_in(&self.dir)?;
        tmp.1.write_all(&bytes)?;
        tmp.1.sync_all()?;
        std::fs::rename(&tmp.0, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp.0);
        })
    }
}

/// A stable key of everything that decides whether compiled code fits `engine`:
/// wasmtime's version, compiler settings and target, and the CPU features it uses.
pub(crate) fn compatibility_key(engine: &wasmtime::Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    let digest = hasher.0.finalize();
    hex::encode(&digest[..16])
}

fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!(".tmp-{}-{n}", std::process::id()));
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
    Ok((path, file))
}

/// Feeds `Hash` output into SHA-256, giving a hash that is stable across processes
/// (unlike `DefaultHasher`, whose algorithm may change between Rust releases).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
