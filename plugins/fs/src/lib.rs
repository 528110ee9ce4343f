//! `fs`: the reference storage backend on a directory the operator granted.
//!
//! Config: `root` = the directory as the plugin sees it (default `/data`,
//! the guest path the host maps the first granted directory to). A key
//! `a/b/c` is the file `ROOT/a/b/c`. Writes go to `ROOT/.tmp/`, are synced
//! and renamed into place by `finish`, so a reader never sees a partial
//! blob; an abandoned upload leaves only a file in `.tmp/`.
//!
//! Contract `sesshost:plugin/storage@0.2.0`. ETag = lowercase hex BLAKE3
//! of the bytes (as the host's `LocalDirBackend`). Conditional writes:
//! - create-only: the finished temp file is `link`ed to the key's name
//!   (WASI `link-at`; an existing name fails: precondition-failed);
//! - if-match: WASI p2 has no `flock`, so the lock is a file created
//!   create-new (`O_EXCL`) in `.tmp/` (`KEY.lock`, `/` as `%`), held while
//!   the current bytes are hashed and compared and the temp file renamed
//!   into place, then removed. Limits: it excludes only other writers using
//!   this plugin (not the host's `LocalDirBackend`, which uses `flock`
//!   beside the object); a writer that dies holding it leaves the file, and
//!   later if-match writes on that key fail after 10 s naming it (remove
//!   it once no writer runs).

wit_bindgen::generate!({ world: "storage-backend", path: "../../wit/storage-0.2" });

use std::cell::RefCell;
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use exports::sesshost::plugin::storage::{
    Capability, Guest, GuestReader, GuestWriter, ListEntry, ObjectInfo, Page, Precondition, Reader,
    StorageError, Writer,
};

thread_local! {
    static ROOT: RefCell<PathBuf> = RefCell::new(PathBuf::from("/data"));
}

fn root() -> PathBuf {
    ROOT.with(|r| r.borrow().clone())
}

fn io(what: &str, e: std::io::Error) -> StorageError {
    let msg = format!("{what}: {e}");
    match e.kind() {
        ErrorKind::NotFound => StorageError::NotFound(msg),
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => StorageError::Denied(msg),
        _ => StorageError::Other(msg),
    }
}

fn path_of(key: &str) -> Result<PathBuf, StorageError> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.contains('\\')
        || key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == ".." || s == ".tmp");
    if bad {
        return Err(StorageError::Invalid(format!("invalid key `{key}`")));
    }
    Ok(root().join(key))
}

struct Upload {
    tmp: PathBuf,
    dest: PathBuf,
    key: String,
    pre: Precondition,
    file: RefCell<Option<File>>,
    hash: RefCell<blake3::Hasher>,
}

fn etag_of_file(p: &Path) -> Result<Option<(u64, String)>, StorageError> {
    let mut f = match File::open(p) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("open", e)),
    };
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| io("read", e))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok(Some((size, h.finalize().to_hex().to_string())))
}

/// The create-new lock file of `key` (see the crate docs), removed on drop.
struct KeyLock(PathBuf);

impl KeyLock {
    fn take(key: &str) -> Result<KeyLock, StorageError> {
        let p = root()
            .join(".tmp")
            .join(format!("{}.lock", key.replace('/', "%")));
        let start = std::time::Instant::now();
        loop {
            match fs::OpenOptions::new().write(true).create_new(true).open(&p) {
                Ok(_) => return Ok(KeyLock(p)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    if start.elapsed() > std::time::Duration::from_secs(10) {
                        return Err(StorageError::Unavailable(format!(
                            "{key}: the lock file .tmp/{} has been held for 10 s; if no writer is running, a crashed one left it: remove it",
                            p.file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_default()
                        )));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err(e) => return Err(io("create lock file", e)),
            }
        }
    }
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

impl GuestWriter for Upload {
    fn write(&self, chunk: Vec<u8>) -> Result<(), StorageError> {
        let mut f = self.file.borrow_mut();
        let f = f
            .as_mut()
            .ok_or_else(|| StorageError::Invalid("upload already finished".into()))?;
        self.hash.borrow_mut().update(&chunk);
        f.write_all(&chunk).map_err(|e| io("write", e))
    }

    fn finish(&self) -> Result<String, StorageError> {
        let f = self
            .file
            .borrow_mut()
            .take()
            .ok_or_else(|| StorageError::Invalid("upload already finished".into()))?;
        f.sync_all().map_err(|e| io("sync", e))?;
        drop(f);
        if let Some(parent) = self.dest.parent() {
            fs::create_dir_all(parent).map_err(|e| io("create directory", e))?;
        }
        let etag = self.hash.borrow().finalize().to_hex().to_string();
        let res = match &self.pre {
            Precondition::None => {
                fs::rename(&self.tmp, &self.dest).map_err(|e| io("rename into place", e))
            }
            Precondition::IfAbsent => match fs::hard_link(&self.tmp, &self.dest) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(
                    StorageError::PreconditionFailed(format!("{} already exists", self.key)),
                ),
                Err(e) => Err(io("link into place", e)),
            },
            Precondition::IfMatch(want) => {
                let _lock = KeyLock::take(&self.key)?;
                match etag_of_file(&self.dest)? {
                    None => Err(StorageError::PreconditionFailed(format!(
                        "{} does not exist",
                        self.key
                    ))),
                    Some((_, cur)) if cur != *want => Err(StorageError::PreconditionFailed(
                        format!("{} changed (its ETag is not {want})", self.key),
                    )),
                    Some(_) => {
                        fs::rename(&self.tmp, &self.dest).map_err(|e| io("rename into place", e))
                    }
                }
            }
        };
        let _ = fs::remove_file(&self.tmp);
        res.map(|()| etag)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.file.borrow().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

struct Download(RefCell<File>);

impl GuestReader for Download {
    fn read(&self, max: u32) -> Result<Vec<u8>, StorageError> {
        let mut buf = vec![0; max as usize];
        let n = self
            .0
            .borrow_mut()
            .read(&mut buf)
            .map_err(|e| io("read", e))?;
        buf.truncate(n);
        Ok(buf)
    }
}

fn walk(dir: &Path, prefix: &str, rel: &str, out: &mut Vec<String>) -> Result<(), StorageError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("list", e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io("list", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // `.tmp/`, and the dot-named temp and lock files of the host's
        // LocalDirBackend sharing the directory.
        if name.starts_with('.') {
            continue;
        }
        let key = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        // Only descend where the prefix can still match.
        if !(key.starts_with(prefix) || prefix.starts_with(&key)) {
            continue;
        }
        if entry.file_type().map_err(|e| io("list", e))?.is_dir() {
            walk(&entry.path(), prefix, &key, out)?;
        } else if key.starts_with(prefix) {
            out.push(key);
        }
    }
    Ok(())
}

struct Fs;

impl Guest for Fs {
    type Writer = Upload;
    type Reader = Download;

    fn configure(config: Vec<(String, String)>) -> Result<(), StorageError> {
        for (k, v) in config {
            if k == "root" {
                ROOT.with(|r| *r.borrow_mut() = PathBuf::from(v));
            }
        }
        let r = root();
        match fs::metadata(&r) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(StorageError::Invalid(format!(
                "{} is not a directory",
                r.display()
            ))),
            Err(e) => Err(StorageError::Denied(format!(
                "cannot open {}: {e}; grant a directory to the plugin (mapped to {})",
                r.display(),
                r.display()
            ))),
        }
    }

    fn capabilities() -> Vec<Capability> {
        vec![Capability::AtomicConditionalWrites, Capability::ListEtags]
    }

    fn put_if(key: String, _size: u64, pre: Precondition) -> Result<Writer, StorageError> {
        let dest = path_of(&key)?;
        let tmpdir = root().join(".tmp");
        fs::create_dir_all(&tmpdir).map_err(|e| io("create .tmp", e))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut rnd = [0u8; 8];
        for (i, b) in rnd.iter_mut().enumerate() {
            *b = (wasi_random() >> (i * 8)) as u8;
        }
        let tmp = tmpdir.join(format!(
            "{}.{nanos}.{}.part",
            key.replace('/', "%"),
            u64::from_le_bytes(rnd)
        ));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io("create", e))?;
        Ok(Writer::new(Upload {
            tmp,
            dest,
            key,
            pre,
            file: RefCell::new(Some(file)),
            hash: RefCell::new(blake3::Hasher::new()),
        }))
    }

    fn get(key: String) -> Result<(Reader, ObjectInfo), StorageError> {
        let p = path_of(&key)?;
        let mut f = File::open(&p).map_err(|e| io(&format!("open {key}"), e))?;
        // Hash the open file (a rename over the key later does not change
        // what this reader reads), then read it from the start.
        let mut h = blake3::Hasher::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(|e| io("read", e))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            h.update(&buf[..n]);
        }
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(0))
            .map_err(|e| io("seek", e))?;
        let etag = h.finalize().to_hex().to_string();
        Ok((
            Reader::new(Download(RefCell::new(f))),
            ObjectInfo { size, etag },
        ))
    }

    fn head(key: String) -> Result<Option<ObjectInfo>, StorageError> {
        let p = path_of(&key)?;
        Ok(etag_of_file(&p)?.map(|(size, etag)| ObjectInfo { size, etag }))
    }

    fn list_info(
        prefix: String,
        start_after: Option<String>,
        max: u32,
    ) -> Result<Page, StorageError> {
        let mut keys = Vec::new();
        walk(&root(), &prefix, "", &mut keys)?;
        keys.retain(|k| start_after.as_ref().is_none_or(|s| k > s));
        keys.sort();
        let max = max.max(1) as usize;
        let more = keys.len() > max;
        keys.truncate(max);
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some((size, etag)) = etag_of_file(&root().join(&key))? {
                entries.push(ListEntry {
                    key,
                    size,
                    etag: Some(etag),
                });
            }
        }
        let next_start_after = if more {
            entries.last().map(|e| e.key.clone())
        } else {
            None
        };
        Ok(Page {
            entries,
            next_start_after,
        })
    }

    fn has(key: String) -> Result<bool, StorageError> {
        let p = path_of(&key)?;
        match fs::metadata(&p) {
            Ok(m) => Ok(m.is_file()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io("stat", e)),
        }
    }

    fn delete(key: String) -> Result<(), StorageError> {
        let p = path_of(&key)?;
        match fs::remove_file(&p) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(io("delete", e)),
            _ => Ok(()),
        }
    }

    fn list(prefix: String) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        walk(&root(), &prefix, "", &mut out)?;
        out.sort();
        Ok(out)
    }
}

/// 64 random bits from WASI (`wasi:random/random`, always granted).
fn wasi_random() -> u64 {
    // std's HashMap seed comes from wasi:random; a fresh RandomState per
    // call gives fresh bits without a dependency.
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish()
}

export!(Fs);
