//! Files that appear whole or not at all, written by any number of processes at once.

use std::io::Write;
use std::path::Path;

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
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", unique_suffix()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
