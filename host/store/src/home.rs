//! The local home directory (`$SESSHOST_HOME`): the host key, the store and
//! the per-session open locks.
//!
//! ```text
//! HOME/host.key            the 32-byte store key, hex, mode 0600
//! HOME/store/              LocalDirBackend objects (chunks/, snapshots/, sessions/)
//! HOME/store-locks/        the store's own locks (see lock.rs): per session, store, gc
//! HOME/locks/<name>.lock   held (flock) by the process that has the session open
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::backend::LocalDirBackend;
use crate::backend::local::sync_dir;
use crate::crypto::RepoKey;
use crate::error::{Result, StoreError};
use crate::names::validate_name;
use crate::store::Store;
use sessbundle::keys::{hex, unhex};

const KEY_PREFIX: &str = "sesshost-host-key-v1 ";

/// A home directory. Cheap to construct; nothing is created until used.
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
}

impl Home {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Home { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn host_key_path(&self) -> PathBuf {
        self.dir.join("host.key")
    }

    pub fn store_dir(&self) -> PathBuf {
        self.dir.join("store")
    }

    pub fn locks_dir(&self) -> PathBuf {
        self.dir.join("locks")
    }

    /// The store's own locks (saves, loads, GC), apart from the open locks.
    pub fn store_locks_dir(&self) -> PathBuf {
        self.dir.join("store-locks")
    }

    fn ensure_dir(&self) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        if !self.dir.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .map_err(|e| StoreError::io("cannot create the home directory", &self.dir, e))?;
        }
        Ok(())
    }

    /// The host key, generated on first use.
    ///
    /// Creation is atomic and race-free: the key is written to a temporary
    /// file (0600, fsynced) that is then hard-linked to `host.key`, which
    /// fails if the name exists (create-new semantics). A process that
    /// loses the race reads the winner's key, so two concurrent first uses
    /// agree on one key, and nobody ever reads a half-written key file.
    pub fn host_key(&self) -> Result<RepoKey> {
        let path = self.host_key_path();
        match read_key(&path) {
            Ok(k) => return Ok(k),
            Err(KeyRead::Missing) => {}
            Err(KeyRead::Bad(e)) => return Err(e),
        }
        self.ensure_dir()?;
        let key = RepoKey::generate()?;
        let text = format!("{KEY_PREFIX}{}\n", hex(key.as_bytes()));
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd)
            .map_err(|e| StoreError::State(format!("no OS randomness: {e}")))?;
        let tmp = self.dir.join(format!(
            ".host.key.tmp-{}-{:016x}",
            std::process::id(),
            u64::from_le_bytes(rnd)
        ));
        let io_err = |e| StoreError::io("cannot write the host key", &path, e);
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(e));
        }
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                sync_dir(&self.dir).map_err(io_err)?;
                Ok(key)
            }
            // Someone else created it first: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match read_key(&path) {
                Ok(k) => Ok(k),
                Err(KeyRead::Missing) => Err(StoreError::HostKey {
                    path,
                    detail: "vanished while being created; run the command again".into(),
                }),
                Err(KeyRead::Bad(e)) => Err(e),
            },
            Err(e) => Err(io_err(e)),
        }
    }

    /// The store in this home, keyed by the host key (generated on first
    /// use), with local mutation locking and open-lock checks.
    pub fn store(&self) -> Result<Store> {
        let key = self.host_key()?;
        Ok(
            Store::new(Box::new(LocalDirBackend::new(self.store_dir())), &key)
                .with_local_locks(self.store_locks_dir(), self.locks_dir()),
        )
    }

    /// Takes the exclusive open lock of session `name` (held until the
    /// returned guard drops or the process dies). Fails at once with
    /// [`StoreError::SessionOpen`] if another process holds it.
    pub fn lock_session(&self, name: &str) -> Result<SessionLock> {
        validate_name(name)?;
        SessionLock::acquire(&self.locks_dir(), name)
    }

    /// Whether a `host session open` holds the session's lock now (a probe
    /// that neither creates the lock file nor takes the lock).
    pub fn is_open(&self, name: &str) -> bool {
        session_lock_holder(&self.locks_dir(), name).is_some()
    }
}

enum KeyRead {
    Missing,
    Bad(StoreError),
}

fn read_key(path: &Path) -> Result<RepoKey, KeyRead> {
    let bad = |detail: String| {
        KeyRead::Bad(StoreError::HostKey {
            path: path.to_owned(),
            detail,
        })
    };
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(KeyRead::Missing),
        Err(e) => return Err(bad(format!("cannot be read ({e}); check its owner"))),
    };
    let meta = f
        .metadata()
        .map_err(|e| bad(format!("cannot be read ({e})")))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(bad(format!(
            "is readable by other users (mode {:o}); run `chmod 600 {}`",
            meta.permissions().mode() & 0o777,
            path.display()
        )));
    }
    let mut text = String::new();
    f.read_to_string(&mut text)
        .map_err(|_| bad("is not a host key file; restore it from a backup".into()))?;
    let hexpart = text
        .trim_end()
        .strip_prefix(KEY_PREFIX)
        .ok_or_else(|| bad("is not a host key file; restore it from a backup".into()))?;
    let bytes = unhex::<32>(hexpart).ok_or_else(|| {
        bad("is damaged (expected 64 hex digits); restore it from a backup".into())
    })?;
    Ok(RepoKey::from_bytes(bytes))
}

/// An exclusive `flock` on `locks/<name>.lock`. The holder's pid is written
/// into the file so that a second opener can name it. The kernel drops the
/// lock when the process dies, so a stale lock file never blocks anyone.
#[derive(Debug)]
pub struct SessionLock {
    file: File,
    path: PathBuf,
}

impl SessionLock {
    fn acquire(dir: &Path, name: &str) -> Result<SessionLock> {
        fs::create_dir_all(dir).map_err(|e| StoreError::io("cannot create", dir, e))?;
        let path = dir.join(format!("{name}.lock"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StoreError::io("cannot open the session lock", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::SessionOpen {
                    name: name.to_owned(),
                    pid: read_pid(&mut file),
                });
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(StoreError::io("cannot lock", &path, e));
            }
        }
        let pid = std::process::id().to_string();
        let write = |f: &mut File| -> io::Result<()> {
            f.set_len(0)?;
            f.rewind()?;
            f.write_all(pid.as_bytes())?;
            f.flush()
        };
        write(&mut file).map_err(|e| StoreError::io("cannot write the session lock", &path, e))?;
        Ok(SessionLock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn read_pid(f: &mut File) -> Option<u32> {
    let mut s = String::new();
    f.rewind().ok()?;
    f.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

/// Whether some process holds the open lock of `name` (and its pid).
pub(crate) fn session_lock_holder(dir: &Path, name: &str) -> Option<Option<u32>> {
    let path = dir.join(format!("{name}.lock"));
    let mut f = OpenOptions::new().read(true).write(true).open(&path).ok()?;
    match f.try_lock() {
        Ok(()) => {
            let _ = f.unlock();
            None
        }
        Err(_) => Some(read_pid(&mut f)),
    }
}
