//! Files that appear whole or not at all, written by any number of processes at once.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A suffix no other writer uses at the same moment (process id and a counter), so
/// that two writers, in one process or in two, never write the same hidden file.
pub(crate) fn unique_suffix() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!("{}.{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// Writes `bytes` to `path` through a hidden file of its own beside it, synced, then
/// renamed over `path`: a reader sees the old file or the new one, never a part. On
/// failure the hidden file is removed.
pub(crate) fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = hidden_beside(path);
    let write = || -> std::io::Result<()> {
        write_synced(&tmp, bytes)?;
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Writes `bytes` to `path` only if no file has that name, through a hidden file of its
/// own ([`link_new`]). `Ok(false)`: the name was taken, and nothing was written.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    let tmp = hidden_beside(path);
    let result = write_synced(&tmp, bytes).and_then(|()| link_new(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Gives the finished file `tmp` the name `path` too, only if no file has it: a hard
/// link, unlike a rename, never replaces one. The directory is synced, so the name
/// survives a power loss. `Ok(false)`: the name was taken. `tmp` keeps its own name
/// (the caller may still read it); the caller removes it.
pub(crate) fn link_new(tmp: &Path, path: &Path) -> std::io::Result<bool> {
    match std::fs::hard_link(tmp, path) {
        Ok(()) => {
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            std::fs::File::open(dir).and_then(|d| d.sync_all())?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// `.<name>.<unique>.tmp` beside `path`: hidden from readers (they skip dot files).
fn hidden_beside(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", unique_suffix()))
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
