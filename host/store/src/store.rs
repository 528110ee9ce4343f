//! The [`Store`] handle: its backend and keys, lock settings, backend
//! helpers, and the read side (load, exists, list, show).

use std::collections::BTreeMap;
use std::path::PathBuf;

use sessbundle::state::SessionState;

use crate::backend::{Backend, BackendError};
use crate::crypto::{ChunkId, Keys, RepoKey};
use crate::error::{Result, StoreError};
use crate::home::{MutationGuard, session_lock_holder};
use crate::layout::*;
use crate::names::validate_name;
use crate::report::*;

/// The session store. All methods are synchronous; a `Store` may be shared
/// between threads.
pub struct Store {
    pub(crate) backend: Box<dyn Backend>,
    pub(crate) keys: Keys,
    pub(crate) mutation_lock: Option<PathBuf>,
    pub(crate) locks_dir: Option<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("mutation_lock", &self.mutation_lock)
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
            mutation_lock: None,
            locks_dir: None,
        }
    }

    /// Serialise mutations through an exclusive `flock` on `mutation_lock`
    /// (so that a garbage collection never races a concurrent save), and
    /// refuse `delete`/`rollback` of sessions whose open lock in
    /// `locks_dir` is held.
    pub fn with_local_locks(mut self, mutation_lock: PathBuf, locks_dir: PathBuf) -> Self {
        self.mutation_lock = Some(mutation_lock);
        self.locks_dir = Some(locks_dir);
        self
    }

    pub(crate) fn guard(&self) -> Result<Option<MutationGuard>> {
        self.mutation_lock
            .as_deref()
            .map(MutationGuard::acquire)
            .transpose()
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
    pub(crate) fn b_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.backend.get(key).map_err(berr("read", key))
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

    /// Every session, sorted by name. Damaged sessions are listed with
    /// `problem` set instead of failing the listing.
    pub fn list(&self, now_ms: i64) -> Result<Vec<SessionInfo>> {
        let mut names: Vec<String> = self
            .b_list("sessions/")?
            .into_iter()
            .filter_map(|k| k.strip_prefix("sessions/").map(str::to_owned))
            .filter(|n| validate_name(n).is_ok())
            .collect();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            out.push(match self.info(&n, now_ms) {
                Ok(i) => i,
                Err(e @ StoreError::Backend { .. }) => return Err(e),
                Err(e) => SessionInfo {
                    name: n,
                    created_at: 0,
                    updated_at: 0,
                    last_used_at: None,
                    expires_at: None,
                    ttl_secs: None,
                    expired: false,
                    snapshots: Vec::new(),
                    stored_bytes: 0,
                    problem: Some(e.to_string()),
                },
            });
        }
        Ok(out)
    }

    /// Facts about one session (reads its record and manifests, no chunks).
    pub fn show(&self, name: &str) -> Result<SessionInfo> {
        self.info(name, now_ms())
    }

    pub fn info(&self, name: &str, now_ms: i64) -> Result<SessionInfo> {
        validate_name(name)?;
        let rec = self.read_session(name)?;
        let mut snapshots = Vec::new();
        let mut distinct: BTreeMap<ChunkId, u32> = BTreeMap::new();
        let mut manifest_bytes = 0u64;
        for seq in self.seqs(name)? {
            let (m, stored) = self.read_manifest_sized(name, seq)?;
            manifest_bytes += stored as u64;
            distinct.extend(
                m.chunk_refs()
                    .filter_map(|c| Some((c.chunk_id()?, c.stored))),
            );
            snapshots.push(m.info());
        }
        Ok(SessionInfo {
            name: rec.name,
            created_at: rec.created_at,
            updated_at: rec.updated_at,
            last_used_at: rec.last_used_at,
            expires_at: rec.expires_at,
            ttl_secs: rec.ttl_secs,
            expired: rec.expires_at.is_some_and(|e| e <= now_ms),
            snapshots,
            stored_bytes: distinct.values().map(|&s| u64::from(s)).sum::<u64>() + manifest_bytes,
            problem: None,
        })
    }
}

pub(crate) fn berr(op: &'static str, key: &str) -> impl FnOnce(BackendError) -> StoreError {
    let key = key.to_owned();
    move |source| StoreError::Backend { op, key, source }
}
