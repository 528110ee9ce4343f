//! The [`Store`] handle: its backend and keys, lock settings, backend
//! helpers, and the read side (load, exists, list, show).

use std::path::PathBuf;

use sessbundle::state::SessionState;

use crate::backend::{Backend, BackendError};

use crate::crypto::{Keys, RepoKey};
use crate::error::{Result, StoreError};
use crate::gc::DEFAULT_REMOTE_GC_GRACE;
use crate::home::session_lock_holder;
use crate::layout::*;
use crate::lock::{LockConfig, LockGuard, Mode};
use crate::names::validate_name;
use std::time::Duration;

/// The session store. All methods are synchronous; a `Store` may be shared
/// between threads.
pub struct Store {
    pub(crate) backend: Box<dyn Backend>,
    pub(crate) keys: Keys,
    /// Store and session locks (local stores); `None` = the caller
    /// serialises access (remote repositories).
    pub(crate) locks: Option<LockConfig>,
    /// Directory of the `host session open` locks.
    pub(crate) locks_dir: Option<PathBuf>,
    pub(crate) gc_grace: Duration,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("locks", &self.locks)
            .field("locks_dir", &self.locks_dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// A store on any backend. Without [`Store::with_local_locks`] the
    /// caller must make sure only one process mutates it at a time.
    pub fn new(backend: Box<dyn Backend>, key: &RepoKey) -> Self {
        Store {
            backend,
            keys: Keys::new(key),
            locks: None,
            locks_dir: None,
            gc_grace: DEFAULT_REMOTE_GC_GRACE,
        }
    }

    /// Lock sessions and the store with `flock`s under `lock_dir` (see
    /// `lock.rs`; [`crate::DEFAULT_LOCK_TIMEOUT`]), so that threads and processes
    /// on one machine can share the store, and refuse `delete`/`rollback`/
    /// replacing `import` of sessions whose open lock in `open_locks_dir`
    /// is held. Cleanup then collects garbage with no grace period (the
    /// store lock already keeps in-flight saves safe).
    pub fn with_local_locks(self, lock_dir: PathBuf, open_locks_dir: PathBuf) -> Self {
        self.with_locks(LockConfig::new(lock_dir), open_locks_dir)
    }

    /// Like [`Store::with_local_locks`] with a full [`LockConfig`] (lock
    /// directory and timeout).
    pub fn with_locks(mut self, locks: LockConfig, open_locks_dir: PathBuf) -> Self {
        self.locks = Some(locks);
        self.locks_dir = Some(open_locks_dir);
        self.gc_grace = Duration::ZERO;
        self
    }

    /// The backend the store keeps its objects in (the cluster writes its
    /// records beside the repository's).
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The lock settings, if the store locks locally.
    pub fn lock_config(&self) -> Option<&LockConfig> {
        self.locks.as_ref()
    }

    /// How long to wait for a lock (with local locks) before failing with
    /// [`StoreError::LockTimeout`].
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        if let Some(l) = &mut self.locks {
            l.timeout = timeout;
        }
        self
    }

    /// The grace period `cleanup` passes to [`Store::gc`].
    pub fn with_gc_grace(mut self, grace: Duration) -> Self {
        self.gc_grace = grace;
        self
    }

    pub(crate) fn lock_session(&self, name: &str, mode: Mode) -> Result<Option<LockGuard>> {
        self.locks
            .as_ref()
            .map(|l| l.session(name, mode))
            .transpose()
    }

    /// What every snapshot writer holds: the store lock shared, then the
    /// session's lock exclusive (always in this order).
    pub(crate) fn lock_for_write(
        &self,
        name: &str,
    ) -> Result<(Option<LockGuard>, Option<LockGuard>)> {
        let store = self.locks.as_ref().map(|l| l.store_shared()).transpose()?;
        let session = self.lock_session(name, Mode::Exclusive)?;
        Ok((store, session))
    }

    pub(crate) fn check_not_open(&self, name: &str) -> Result<()> {
        if let Some(dir) = &self.locks_dir
            && let Some(pid) = session_lock_holder(dir, name)
        {
            return Err(StoreError::SessionOpen {
                name: name.to_owned(),
                pid,
            });
        }
        Ok(())
    }

    // ---- backend helpers -------------------------------------------------

    pub(crate) fn b_put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        self.backend.put(key, bytes).map_err(berr("write", key))
    }
    /// A read, retried by [`crate::backend::retry_read`] when the object
    /// was replaced mid-way or the server failed it: objects such as
    /// `gc/state` and session records are replaced while others read them.
    pub(crate) fn b_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        crate::backend::retry_read(|| self.backend.get(key)).map_err(berr("read", key))
    }
    pub(crate) fn b_has(&self, key: &str) -> Result<bool> {
        self.backend.has(key).map_err(berr("check", key))
    }
    pub(crate) fn b_delete(&self, key: &str) -> Result<()> {
        self.backend.delete(key).map_err(berr("delete", key))
    }
    pub(crate) fn b_list(&self, prefix: &str) -> Result<Vec<String>> {
        self.backend.list(prefix).map_err(berr("list", prefix))
    }

    /// The newest snapshot of `name`, with lifecycle facts from the store.
    pub fn load(&self, name: &str) -> Result<SessionState> {
        validate_name(name)?;
        let _l = self.lock_session(name, Mode::Shared)?;
        let rec = self.read_session(name)?;
        let seq = *self.seqs(name)?.last().ok_or_else(|| {
            StoreError::corrupt(format!("session {name:?}"), "it has no snapshot")
        })?;
        let mut s = self.read_state(&self.read_manifest(name, seq)?)?;
        Self::apply_record(&mut s, &rec);
        Ok(s)
    }

    /// A given kept snapshot of `name`.
    pub fn load_snapshot(&self, name: &str, seq: u64) -> Result<SessionState> {
        validate_name(name)?;
        let _l = self.lock_session(name, Mode::Shared)?;
        let rec = self.read_session(name)?;
        let mut s = self.read_state(&self.read_manifest(name, seq)?)?;
        Self::apply_record(&mut s, &rec);
        Ok(s)
    }

    /// Whether a session of that name exists.
    pub fn exists(&self, name: &str) -> Result<bool> {
        validate_name(name)?;
        self.b_has(&session_key(name))
    }
}

pub(crate) fn berr(op: &'static str, key: &str) -> impl FnOnce(BackendError) -> StoreError {
    let key = key.to_owned();
    move |source| StoreError::Backend { op, key, source }
}
