//! `fs01`: a test plugin, the `fs` storage backend exactly as it was on
//! storage contract 0.1.0 (sesshost:plugin@0.1.0, before conditional
//! writes), so the host's tests keep checking that 0.1.0 storage plugins
//! load and work. Not shipped.
//!
//! The original docs:
//! `fs`: the reference storage backend on a directory the operator granted.
//!
//! Config: `root` = the directory as the plugin sees it (default `/data`,
//! the guest path the host maps the first granted directory to). A key
//! `a/b/c` is the file `ROOT/a/b/c`. Writes go to `ROOT/.tmp/`, are synced
//! and renamed into place by `finish`, so a reader never sees a partial
//! blob; an abandoned upload leaves only a file in `.tmp/`.

wit_bindgen::generate!({ world: "storage-backend", path: "../../../wit" });

use std::cell::RefCell;
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use exports::sesshost::plugin::storage::{
    Guest, GuestReader, GuestWriter, Reader, StorageError, Writer,
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
    file: RefCell<Option<File>>,
}

impl GuestWriter for Upload {
    fn write(&self, chunk: Vec<u8>) -> Result<(), StorageError> {
        let mut f = self.file.borrow_mut();
        let f = f
            .as_mut()
            .ok_or_else(|| StorageError::Invalid("upload already finished".into()))?;
        f.write_all(&chunk).map_err(|e| io("write", e))
    }

    fn finish(&self) -> Result<(), StorageError> {
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
        fs::rename(&self.tmp, &self.dest).map_err(|e| io("rename into place", e))
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
        if rel.is_empty() && name == ".tmp" {
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

    fn put(key: String, _size: u64) -> Result<Writer, StorageError> {
        let dest = path_of(&key)?;
        let tmpdir = root().join(".tmp");
        fs::create_dir_all(&tmpdir).map_err(|e| io("create .tmp", e))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let tmp = tmpdir.join(format!("{}.{nanos}.part", key.replace('/', "%")));
        let file = File::create(&tmp).map_err(|e| io("create", e))?;
        Ok(Writer::new(Upload {
            tmp,
            dest,
            file: RefCell::new(Some(file)),
        }))
    }

    fn get(key: String) -> Result<(Reader, u64), StorageError> {
        let p = path_of(&key)?;
        let f = File::open(&p).map_err(|e| io(&format!("open {key}"), e))?;
        let size = f.metadata().map_err(|e| io("stat", e))?.len();
        Ok((Reader::new(Download(RefCell::new(f))), size))
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

export!(Fs);
