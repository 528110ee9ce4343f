//! [`LocalDirBackend`]: objects as files under a directory, with
//! conditional writes that hold across processes sharing the directory.
//!
//! - plain `put`: temp file, fsync, rename over the target, fsync the
//!   directory (a reader sees the old bytes or the new ones);
//! - `put_if(IfAbsent)`: temp file, fsync, `link(2)` to the target (the
//!   kernel refuses an existing name: EEXIST = precondition failed), fsync
//!   the directory;
//! - `put_if(IfMatch)`: an exclusive `flock` on the key's lock file
//!   (`DIR/.NAME.lock`, beside the object), compare the BLAKE3 of the
//!   current bytes with the ETag, temp file, fsync, rename, fsync the
//!   directory, unlock. Unconditional `put` and `delete` do not take the
//!   lock: they are not fenced, exactly as on S3.
//!
//! ETag = lowercase hex BLAKE3 of the bytes ([`Etag::of_bytes`]), computed
//! by reading the file (`head` reads the whole object).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{
    Backend, BackendError, BackendErrorKind, Capability, Etag, ListEntry, ListPage, Precondition,
    page_of, validate_key,
};

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

    /// Creates the directory of `path` (and makes the new entries durable).
    fn ensure_dir(&self, path: &Path) -> Result<(), BackendError> {
        let Some(dir) = path.parent() else {
            return Ok(());
        };
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
        Ok(())
    }

    /// A new, fsynced temporary file holding `bytes` beside `path`
    /// (dot-named, so listings skip it). Retries when a concurrent delete
    /// removed the emptied directory in between.
    fn temp_with(&self, path: &Path, bytes: &[u8]) -> Result<PathBuf, BackendError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut last = None;
        for _ in 0..5 {
            self.ensure_dir(path)?;
            let mut r = [0u8; 8];
            getrandom::fill(&mut r).map_err(|e| {
                BackendError::new(BackendErrorKind::Other, format!("no OS randomness: {e}"))
            })?;
            let tmp = path.with_file_name(format!(".{name}.tmp-{}", sessbundle::keys::hex(&r)));
            let opened = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp);
            match opened {
                Ok(mut f) => {
                    let written = f.write_all(bytes).and_then(|()| f.sync_all());
                    if let Err(e) = written {
                        let _ = fs::remove_file(&tmp);
                        return Err(BackendError::from_io(&e));
                    }
                    return Ok(tmp);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => last = Some(e),
                Err(e) => return Err(BackendError::from_io(&e)),
            }
        }
        Err(BackendError::from_io(&last.unwrap_or_else(|| {
            io::Error::other("the directory kept disappearing")
        })))
    }

    /// Create-only: link the temp file to the target name.
    fn create_only(&self, path: &Path, bytes: &[u8]) -> Result<(), BackendError> {
        let tmp = self.temp_with(path, bytes)?;
        let linked = fs::hard_link(&tmp, path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(BackendError::new(
                    BackendErrorKind::PreconditionFailed,
                    format!("{} already exists", path.display()),
                ));
            }
            Err(e) => return Err(BackendError::from_io(&e)),
        }
        let dir = path.parent().unwrap_or(&self.root);
        sync_dir(dir).map_err(|e| BackendError::from_io(&e))
    }

    /// Compare-and-swap under the key's lock file.
    fn replace_if_match(&self, path: &Path, bytes: &[u8], want: &Etag) -> Result<(), BackendError> {
        self.ensure_dir(path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lock_path = path.with_file_name(format!(".{name}.lock"));
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| BackendError::from_io(&e))?;
        lock.lock().map_err(|e| BackendError::from_io(&e))?;
        let current = read_file(path)?;
        let result = match current {
            None => Err(BackendError::new(
                BackendErrorKind::PreconditionFailed,
                format!("{} does not exist (if-match {want})", path.display()),
            )),
            Some(b) if Etag::of_bytes(&b) != *want => Err(BackendError::new(
                BackendErrorKind::PreconditionFailed,
                format!("{} changed (its ETag is not {want})", path.display()),
            )),
            Some(_) => self.temp_with(path, bytes).and_then(|tmp| {
                let renamed = fs::rename(&tmp, path);
                if renamed.is_err() {
                    let _ = fs::remove_file(&tmp);
                }
                renamed
                    .and_then(|()| sync_dir(path.parent().unwrap_or(&self.root)))
                    .map_err(|e| BackendError::from_io(&e))
            }),
        };
        let _ = lock.unlock();
        result
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

fn read_file(path: &Path) -> Result<Option<Vec<u8>>, BackendError> {
    match File::open(path) {
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
        self.ensure_dir(&path)?;
        atomic_write(&path, bytes, 0o600).map_err(|e| BackendError::from_io(&e))
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        read_file(&self.path(key)?)
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

    fn put_if(&self, key: &str, bytes: &[u8], pre: Precondition) -> Result<Etag, BackendError> {
        let path = self.path(key)?;
        match &pre {
            Precondition::None => self.put(key, bytes)?,
            Precondition::IfAbsent => self.create_only(&path, bytes)?,
            Precondition::IfMatch(want) => self.replace_if_match(&path, bytes, want)?,
        }
        Ok(Etag::of_bytes(bytes))
    }

    // `head` and `get_with_etag`: the trait's (read the file, BLAKE3 of
    // its bytes), which is what this backend's ETags are.

    fn list_info(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: u32,
    ) -> Result<ListPage, BackendError> {
        let mut keys = self.list(prefix)?;
        keys.retain(|k| start_after.is_none_or(|s| k.as_str() > s));
        keys.sort();
        // Hash only the keys of this page (plus one, to know more follow).
        keys.truncate(max.max(1) as usize + 1);
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            // A key deleted since the listing is left out.
            if let Some(info) = self.head(&key)? {
                entries.push(ListEntry {
                    key,
                    size: info.size,
                    etag: Some(info.etag),
                });
            }
        }
        Ok(page_of(entries, None, max))
    }

    fn capabilities(&self) -> Vec<Capability> {
        vec![Capability::AtomicConditionalWrites, Capability::ListEtags]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ObjectInfo;

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

    #[test]
    fn conditional_writes_create_only_and_compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalDirBackend::new(dir.path().join("store"));
        let e1 = b
            .put_if("leases/s", b"one", Precondition::IfAbsent)
            .unwrap();
        assert_eq!(e1, Etag::of_bytes(b"one"));
        let e = b
            .put_if("leases/s", b"two", Precondition::IfAbsent)
            .unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::PreconditionFailed, "{e}");
        assert_eq!(b.get("leases/s").unwrap().unwrap(), b"one");
        let wrong = Etag::of_bytes(b"other");
        let e = b
            .put_if("leases/s", b"two", Precondition::IfMatch(wrong))
            .unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::PreconditionFailed, "{e}");
        let e2 = b
            .put_if("leases/s", b"two", Precondition::IfMatch(e1.clone()))
            .unwrap();
        assert_eq!(
            b.head("leases/s").unwrap().unwrap(),
            ObjectInfo {
                size: 3,
                etag: e2.clone()
            }
        );
        assert_eq!(b.get_with_etag("leases/s").unwrap().unwrap().1, e2);
        let e = b
            .put_if("leases/s", b"three", Precondition::IfMatch(e1.clone()))
            .unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::PreconditionFailed, "{e}");
        let e = b
            .put_if("leases/missing", b"x", Precondition::IfMatch(e1))
            .unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::PreconditionFailed, "{e}");
        assert_eq!(b.head("leases/missing").unwrap(), None);
        // Lock and temp files never show in listings.
        assert_eq!(b.list("leases/").unwrap(), vec!["leases/s"]);
        for i in 0..5 {
            b.put_if(&format!("p/{i}"), b"x", Precondition::None)
                .unwrap();
        }
        let page = b.list_info("p/", None, 3).unwrap();
        let keys: Vec<_> = page.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["p/0", "p/1", "p/2"]);
        assert_eq!(page.entries[0].etag, Some(Etag::of_bytes(b"x")));
        assert_eq!(page.next_start_after.as_deref(), Some("p/2"));
        let page = b.list_info("p/", Some("p/2"), 3).unwrap();
        assert_eq!(page.entries.len(), 2);
        assert_eq!(page.next_start_after, None);
        assert!(
            b.capabilities()
                .contains(&Capability::AtomicConditionalWrites)
        );
    }

    /// Two backends on one directory (as two processes would have), eight
    /// threads racing: create-only has exactly one winner per key, and a
    /// compare-and-swap counter loses no increment.
    #[test]
    fn conditional_writes_hold_between_racing_writers() {
        let dir = tempfile::tempdir().unwrap();
        let a = LocalDirBackend::new(dir.path());
        let b = LocalDirBackend::new(dir.path());
        let barrier = std::sync::Barrier::new(8);
        let wins = std::sync::atomic::AtomicUsize::new(0);
        let incs = std::sync::atomic::AtomicUsize::new(0);
        a.put("c/counter", b"0").unwrap();
        std::thread::scope(|s| {
            for t in 0..8 {
                let be = if t % 2 == 0 { &a } else { &b };
                let (barrier, wins, incs) = (&barrier, &wins, &incs);
                s.spawn(move || {
                    for round in 0..20 {
                        barrier.wait();
                        let key = format!("r/{round}");
                        match be.put_if(&key, format!("{t}").as_bytes(), Precondition::IfAbsent) {
                            Ok(_) => {
                                wins.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                            Err(e) => assert_eq!(e.kind, BackendErrorKind::PreconditionFailed),
                        }
                        // CAS increments until one succeeds.
                        loop {
                            let (bytes, etag) = be.get_with_etag("c/counter").unwrap().unwrap();
                            let n: u64 = std::str::from_utf8(&bytes).unwrap().parse().unwrap();
                            let next = (n + 1).to_string();
                            match be.put_if(
                                "c/counter",
                                next.as_bytes(),
                                Precondition::IfMatch(etag),
                            ) {
                                Ok(_) => {
                                    incs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                    break;
                                }
                                Err(e) => {
                                    assert_eq!(e.kind, BackendErrorKind::PreconditionFailed)
                                }
                            }
                        }
                    }
                });
            }
        });
        assert_eq!(wins.into_inner(), 20, "one create-only winner per key");
        let n = a.get("c/counter").unwrap().unwrap();
        assert_eq!(n, b"160", "no lost compare-and-swap update");
        assert_eq!(incs.into_inner(), 160);
    }
}
