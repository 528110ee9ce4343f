//! The object-store shaped [`Backend`] trait and [`LocalDirBackend`], its
//! implementation on a local directory.
//!
//! The trait is deliberately minimal (put/get/has/delete/list on whole
//! objects): a storage-backend wasm plugin implements the same five calls
//! over S3, WebDAV, … No rename, append or locking: the store never needs
//! them (objects are immutable and content-addressed, or replaced whole).

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Why a backend call failed. Not-found is not an error (`get` returns
/// `Ok(None)`, `delete` of a missing key succeeds).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct BackendError {
    pub kind: BackendErrorKind,
    /// Human-readable detail (no secrets: keys are chunk ids and names).
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendErrorKind {
    /// Permission denied (fix the permissions or the credentials).
    Denied,
    /// The backend cannot be reached right now (retry later).
    Unavailable,
    /// The key is not valid for this backend (a bug in the caller).
    InvalidKey,
    Other,
}

impl std::fmt::Display for BackendErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendErrorKind::Denied => "permission denied",
            BackendErrorKind::Unavailable => "backend unavailable",
            BackendErrorKind::InvalidKey => "invalid key",
            BackendErrorKind::Other => "backend error",
        })
    }
}

impl BackendError {
    pub fn new(kind: BackendErrorKind, detail: impl Into<String>) -> Self {
        BackendError {
            kind,
            detail: detail.into(),
        }
    }

    fn from_io(e: &io::Error) -> Self {
        let kind = match e.kind() {
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                BackendErrorKind::Denied
            }
            io::ErrorKind::TimedOut | io::ErrorKind::Interrupted => BackendErrorKind::Unavailable,
            _ => BackendErrorKind::Other,
        };
        BackendError::new(kind, e.to_string())
    }
}

/// A flat object store. Keys are `/`-separated ASCII paths whose segments
/// use `[A-Za-z0-9._-]`, never start with `.`, and are never empty, e.g.
/// `chunks/ab/<64 hex>`, `snapshots/<name>/<seq>`, `sessions/<name>`.
///
/// `put` replaces an object whole and atomically (a reader sees the old or
/// the new bytes, never a mix). Implementations must be usable from several
/// threads.
pub trait Backend: Send + Sync {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BackendError>;
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError>;
    fn has(&self, key: &str) -> Result<bool, BackendError>;
    /// Deleting a missing key succeeds.
    fn delete(&self, key: &str) -> Result<(), BackendError>;
    /// Every key that starts with `prefix` (string prefix), in any order.
    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError>;
}

/// Checks a key against the rules in [`Backend`].
pub fn validate_key(key: &str) -> Result<(), BackendError> {
    let ok = !key.is_empty()
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(BackendError::new(
            BackendErrorKind::InvalidKey,
            format!("{key:?} is not a valid object key"),
        ))
    }
}

/// Objects as files under a directory (key `a/b/c` = file `DIR/a/b/c`).
///
/// Writes go to a dot-named temporary file in the same directory, are
/// fsynced, renamed over the target, and the directory is fsynced: a crash
/// leaves the old object or the new one. Cost: two fsyncs per `put`
/// (a few ms on most disks), paid once per new chunk and per snapshot.
#[derive(Debug, Clone)]
pub struct LocalDirBackend {
    root: PathBuf,
}

impl LocalDirBackend {
    /// Uses `root` (created on first write if missing).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalDirBackend { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, BackendError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    fn walk(&self, dir: &Path, rel: &str, prefix: &str, out: &mut Vec<String>) -> io::Result<()> {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in rd {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') {
                continue; // temporary files of an interrupted put
            }
            let key = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let ft = entry.file_type()?;
            if ft.is_dir() {
                let as_dir = format!("{key}/");
                if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                    self.walk(&entry.path(), &key, prefix, out)?;
                }
            } else if ft.is_file() && key.starts_with(prefix) {
                out.push(key);
            }
        }
        Ok(())
    }
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` atomically (temp file in the same directory,
/// fsync, rename, fsync the directory). `mode` applies to the new file.
/// The workspace's one atomic write (`sessbundle::atomic::write_atomic`:
/// temp file, fsync, rename, fsync the directory; the temp file removed on
/// failure), as an `io::Result` for the backend's error mapping.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    sessbundle::atomic::write_atomic(path, bytes, mode).map_err(|e| match e {
        sessbundle::Error::Io { source, .. } => source,
        e => io::Error::other(e.to_string()),
    })
}

impl Backend for LocalDirBackend {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BackendError> {
        let path = self.path(key)?;
        let dir = path.parent().expect("a key path has a parent");
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(|e| BackendError::from_io(&e))?;
            // Make the new directory entries durable too.
            let mut d = dir;
            while let Some(parent) = d.parent() {
                sync_dir(parent).map_err(|e| BackendError::from_io(&e))?;
                if parent == self.root || !parent.starts_with(&self.root) {
                    break;
                }
                d = parent;
            }
        }
        atomic_write(&path, bytes, 0o600).map_err(|e| BackendError::from_io(&e))
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let path = self.path(key)?;
        match File::open(&path) {
            Ok(mut f) => {
                let mut buf = Vec::new();
                f.read_to_end(&mut buf)
                    .map_err(|e| BackendError::from_io(&e))?;
                Ok(Some(buf))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BackendError::from_io(&e)),
        }
    }

    fn has(&self, key: &str) -> Result<bool, BackendError> {
        let path = self.path(key)?;
        match fs::metadata(&path) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(BackendError::from_io(&e)),
        }
    }

    fn delete(&self, key: &str) -> Result<(), BackendError> {
        let path = self.path(key)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(BackendError::from_io(&e)),
        }
        let dir = path.parent().expect("a key path has a parent");
        sync_dir(dir).map_err(|e| BackendError::from_io(&e))?;
        // Tidy an emptied directory; failure (not empty, raced) is harmless.
        if dir != self.root && fs::remove_dir(dir).is_ok() {
            let _ = dir.parent().map(sync_dir);
        }
        Ok(())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        // Start the walk at the deepest directory the prefix names.
        let (dir_rel, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        if !dir_rel.is_empty() {
            validate_key(dir_rel)?;
        }
        let mut out = Vec::new();
        self.walk(&self.root.join(dir_rel), dir_rel, prefix, &mut out)
            .map_err(|e| BackendError::from_io(&e))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalDirBackend::new(dir.path().join("store"));
        assert_eq!(b.get("chunks/ab/x").unwrap(), None);
        assert!(!b.has("chunks/ab/x").unwrap());
        b.put("chunks/ab/x", b"1").unwrap();
        b.put("chunks/cd/y", b"2").unwrap();
        b.put("sessions/s", b"3").unwrap();
        b.put("chunks/ab/x", b"4").unwrap();
        assert_eq!(b.get("chunks/ab/x").unwrap().unwrap(), b"4");
        let mut l = b.list("chunks/").unwrap();
        l.sort();
        assert_eq!(l, vec!["chunks/ab/x", "chunks/cd/y"]);
        assert_eq!(b.list("chunks/a").unwrap(), vec!["chunks/ab/x"]);
        assert_eq!(b.list("nothing/").unwrap(), Vec::<String>::new());
        b.delete("chunks/ab/x").unwrap();
        b.delete("chunks/ab/x").unwrap();
        assert!(!dir.path().join("store/chunks/ab").exists());
        assert_eq!(b.list("").unwrap().len(), 2);
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("store/sessions"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["s"]);
    }

    #[test]
    fn bad_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalDirBackend::new(dir.path());
        for k in ["", "../x", "a//b", "a/.hidden", "/abs", "a/b c", "a/../b"] {
            let e = b.put(k, b"x").unwrap_err();
            assert_eq!(e.kind, BackendErrorKind::InvalidKey, "{k}");
        }
    }
}
