//! Where a registry keeps its files: a local directory or an object-store prefix, behind
//! the four operations the registry needs. Both give the same guarantees to many
//! processes at once: an artifact name is written once ([`Storage::create`]), and the
//! manifest is replaced only if it is as it was read ([`Storage::replace`]).

use std::fs;
use std::path::{Path, PathBuf};

use super::store::RegistryError;

/// A registry's storage.
#[derive(Debug, Clone)]
pub(crate) enum Storage {
    /// Files under a directory.
    Local(PathBuf),
    /// Objects under a prefix.
    #[cfg(feature = "object-store")]
    Bucket(crate::bucket::Bucket),
}

/// A file read, with the tag that [`Storage::replace`] checks.
pub(crate) struct Read {
    pub(crate) bytes: Vec<u8>,
    pub(crate) tag: Option<String>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io { path: path.to_owned(), source }
}

#[cfg(feature = "object-store")]
fn store_err(e: crate::bucket::BucketError) -> RegistryError {
    RegistryError::Store(Box::new(e))
}

/// A local file's tag: its content's hash, which changes when it is replaced.
fn content_tag(bytes: &[u8]) -> String {
    format!("{:016x}", crate::log::fnv1a(bytes))
}

impl Storage {
    /// Where `key` lives, for messages and [`VersionEntry::path`](super::VersionEntry::path).
    pub(crate) fn location(&self, key: &str) -> PathBuf {
        match self {
            Storage::Local(root) => key.split('/').fold(root.clone(), |p, part| p.join(part)),
            #[cfg(feature = "object-store")]
            Storage::Bucket(bucket) => PathBuf::from(bucket.url_of(key)),
        }
    }

    /// The keys under `prefix` (`model/` or `model/version/`; `""` for all), relative to
    /// the registry, sorted. Hidden names (publishes in progress) are left out.
    pub(crate) fn list(&self, prefix: &str) -> Result<Vec<String>, RegistryError> {
        let mut keys = match self {
            Storage::Local(root) => {
                let mut keys = Vec::new();
                let start = self.location(prefix.trim_end_matches('/'));
                let mut stack = vec![start];
                while let Some(dir) = stack.pop() {
                    let entries = match fs::read_dir(&dir) {
                        Ok(entries) => entries,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(io_err(&dir)(e)),
                    };
                    for entry in entries {
                        let path = entry.map_err(io_err(&dir))?.path();
                        if path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.')) {
                            continue;
                        }
                        if path.is_dir() {
                            stack.push(path);
                        } else if let Ok(relative) = path.strip_prefix(root) {
                            let parts: Vec<_> = relative.iter().map(|p| p.to_string_lossy()).collect();
                            keys.push(parts.join("/"));
                        }
                    }
                }
                keys
            }
            #[cfg(feature = "object-store")]
            Storage::Bucket(bucket) => bucket
                .list(prefix)
                .map_err(store_err)?
                .into_iter()
                .map(|listed| listed.key)
                .filter(|key| !key.split('/').any(|part| part.starts_with('.')))
                .collect(),
        };
        keys.sort();
        Ok(keys)
    }

    /// The file `key`, or `None`.
    pub(crate) fn read(&self, key: &str) -> Result<Option<Read>, RegistryError> {
        match self {
            Storage::Local(_) => {
                let path = self.location(key);
                match fs::read(&path) {
                    Ok(bytes) => Ok(Some(Read { tag: Some(content_tag(&bytes)), bytes })),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io_err(&path)(e)),
                }
            }
            #[cfg(feature = "object-store")]
            Storage::Bucket(bucket) => {
                Ok(bucket.get(key).map_err(store_err)?.map(|object| Read { bytes: object.bytes, tag: object.e_tag }))
            }
        }
    }

    /// Writes `key` if no file has that name; `Ok(false)` if one has (whatever its
    /// content: a version is immutable).
    pub(crate) fn create(&self, key: &str, bytes: &[u8]) -> Result<bool, RegistryError> {
        match self {
            Storage::Local(_) => {
                let path = self.location(key);
                let dir = path.parent().unwrap_or(Path::new("."));
                fs::create_dir_all(dir).map_err(io_err(dir))?;
                crate::atomic_file::write_new(&path, bytes).map_err(io_err(&path))
            }
            #[cfg(feature = "object-store")]
            Storage::Bucket(bucket) => match bucket.put_new(key, bytes.to_vec()) {
                Ok(crate::bucket::Created::New) => Ok(true),
                Ok(crate::bucket::Created::AlreadyThere) | Err(crate::bucket::BucketError::Conflict { .. }) => {
                    Ok(false)
                }
                Err(e) => Err(store_err(e)),
            },
        }
    }

    /// Replaces `key` with `bytes` only if it still has the tag `expected` it was read
    /// with (`None`: only if there is no such file). `Ok(false)`: another writer changed
    /// it in between, and nothing was written.
    pub(crate) fn replace(&self, key: &str, bytes: &[u8], expected: Option<&str>) -> Result<bool, RegistryError> {
        match self {
            Storage::Local(_) => {
                let path = self.location(key);
                let dir = path.parent().unwrap_or(Path::new("."));
                fs::create_dir_all(dir).map_err(io_err(dir))?;
                // Writers of this file take turns: compare and write under the lock.
                let lock_path = dir.join(".manifest.lock");
                let lock = fs::File::create(&lock_path).map_err(io_err(&lock_path))?;
                lock.lock().map_err(io_err(&lock_path))?;
                let current = self.read(key)?.and_then(|read| read.tag);
                if current.as_deref() != expected {
                    return Ok(false);
                }
                crate::atomic_file::write_whole(&path, bytes).map_err(io_err(&path))?;
                Ok(true)
            }
            #[cfg(feature = "object-store")]
            Storage::Bucket(bucket) => match bucket.put_if(key, bytes.to_vec(), expected) {
                Ok(()) => Ok(true),
                Err(crate::bucket::BucketError::Changed { .. }) => Ok(false),
                Err(e) => Err(store_err(e)),
            },
        }
    }
}
