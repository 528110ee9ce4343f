//! Session lifecycle: create, import, touch, extend, delete, history,
//! rollback. Every change holds the session's lock (and, when it writes a
//! snapshot, the store lock shared: see [`Store::lock_for_write`]).

use std::time::Duration;

use sessbundle::state::SessionState;

use crate::error::{Result, StoreError};
use crate::layout::*;
use crate::lock::Mode;
use crate::names::validate_name;
use crate::objects::*;
use crate::report::*;
use crate::save::next_seq;
use crate::store::Store;

/// What [`Store::import`] does when a session of that name exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Fail with [`StoreError::SessionExists`].
    New,
    /// Replace it (refused while it is open): the new snapshot is written
    /// first and the old snapshots removed only after, so a failure leaves
    /// the old session as it was.
    Replace,
}

impl Store {
    /// Creates a session with an empty first snapshot.
    pub fn create(&self, new: &NewSession, now_ms: i64) -> Result<SessionInfo> {
        validate_name(&new.name)?;
        let name = new.name.as_str();
        let _locks = self.lock_for_write(name)?;
        if self.b_has(&session_key(name))? {
            return Err(StoreError::SessionExists {
                name: name.to_owned(),
            });
        }
        // Leftovers of an interrupted delete.
        for seq in self.seqs(name)? {
            self.b_delete(&snapshot_key(name, seq))?;
        }
        let rec = SessionRecord {
            v: 1,
            name: name.to_owned(),
            created_at: now_ms,
            updated_at: now_ms,
            last_used_at: None,
            expires_at: new.ttl.map(|t| now_ms.saturating_add(ms(t))),
            ttl_secs: new.ttl.map(|t| t.as_secs()),
        };
        let mut state = SessionState::new(name, now_ms);
        state.meta.user_agent = new.user_agent.clone();
        state.meta.viewport = new.viewport.clone();
        state.meta.locale = new.locale.clone();
        state.meta.timezone = new.timezone.clone();
        // Snapshot first, record last: until the record exists the session
        // does not exist, and an interruption leaves only leftovers.
        self.write_snapshot(&rec, &state, now_ms, "create", None, 1)?;
        self.write_session(&rec)?;
        let mut info = self.refresh_index(name)?;
        info.expired = rec.expires_at.is_some_and(|e| e <= now_ms);
        Ok(info)
    }

    /// Stores `state` as session `name` (for `host import` and `pull`):
    /// the session keeps the state's `createdAt`, `expiresAt` and
    /// `ttlSecs`. The exists check and the write happen under the session's
    /// lock, so of two concurrent imports of one name with
    /// [`ImportMode::New`] exactly one succeeds. With
    /// [`ImportMode::Replace`] the new snapshot and record are written
    /// before the old snapshots are removed: if anything fails, the old
    /// session is left whole (and a new session leaves nothing behind).
    pub fn import(
        &self,
        name: &str,
        state: &SessionState,
        mode: ImportMode,
        now_ms: i64,
    ) -> Result<SaveReport> {
        validate_name(name)?;
        let _locks = self.lock_for_write(name)?;
        let exists = self.b_has(&session_key(name))?;
        if exists && mode == ImportMode::New {
            return Err(StoreError::SessionExists {
                name: name.to_owned(),
            });
        }
        if exists {
            self.check_not_open(name)?;
        }
        let mut old = self.seqs(name)?;
        if !exists {
            // Leftovers of an interrupted delete.
            for &s in &old {
                self.b_delete(&snapshot_key(name, s))?;
            }
            old.clear();
        }
        let seq = next_seq(&old);
        let rec = SessionRecord {
            v: 1,
            name: name.to_owned(),
            created_at: state.meta.created_at,
            updated_at: now_ms,
            last_used_at: None,
            expires_at: state.meta.expires_at,
            ttl_secs: state.meta.ttl_secs,
        };
        let written = self
            .write_snapshot(&rec, state, now_ms, "import", None, seq)
            .and_then(|mut r| {
                r.bytes_written += self.write_session(&rec)?;
                Ok(r)
            });
        let mut report = match written {
            Ok(r) => r,
            Err(e) => {
                // Undo what this import wrote; the old session (if any) is
                // untouched. Its chunks are left for GC.
                let _ = self.b_delete(&snapshot_key(name, seq));
                if !exists {
                    let _ = self.b_delete(&session_key(name));
                }
                return Err(e);
            }
        };
        for &s in &old {
            self.b_delete(&snapshot_key(name, s))?;
        }
        report.pruned = old;
        self.refresh_index(name)?;
        Ok(report)
    }

    /// [`Store::import`] with `replace` as a bool (the earlier API).
    pub fn import_state(
        &self,
        name: &str,
        state: &SessionState,
        replace: bool,
        now_ms: i64,
    ) -> Result<SaveReport> {
        let mode = if replace {
            ImportMode::Replace
        } else {
            ImportMode::New
        };
        self.import(name, state, mode, now_ms)
    }

    /// Records that the session was used now (call when opening it).
    pub fn touch(&self, name: &str, now_ms: i64) -> Result<()> {
        validate_name(name)?;
        let _l = self.lock_session(name, Mode::Exclusive)?;
        let mut rec = self.read_session(name)?;
        rec.last_used_at = Some(now_ms);
        self.write_session(&rec)?;
        self.patch_index(&rec)
    }

    /// Pushes the expiry of `name` back by `by` (from now if it already
    /// expired). A session without expiry keeps having none.
    pub fn extend(&self, name: &str, by: Duration, now_ms: i64) -> Result<SessionInfo> {
        validate_name(name)?;
        let _l = self.lock_session(name, Mode::Exclusive)?;
        let mut rec = self.read_session(name)?;
        if let Some(e) = rec.expires_at {
            rec.expires_at = Some(e.max(now_ms).saturating_add(ms(by)));
            self.write_session(&rec)?;
            self.patch_index(&rec)?;
        }
        self.info_unlocked(name, now_ms)
    }

    /// Deletes the session's record, snapshots and index entry (under its
    /// lock). Refused while the session is open. Its chunks are freed by
    /// the next [`Store::gc`] (not here: a delete costs O(session)); the
    /// returned report is empty and kept for the callers that print it.
    pub fn delete(&self, name: &str) -> Result<GcReport> {
        validate_name(name)?;
        self.check_not_open(name)?;
        let _l = self.lock_session(name, Mode::Exclusive)?;
        let has_record = self.b_has(&session_key(name))?;
        let seqs = self.seqs(name)?;
        if !has_record && seqs.is_empty() {
            return Err(StoreError::SessionNotFound {
                name: name.to_owned(),
            });
        }
        self.delete_locked(name, &seqs)?;
        Ok(GcReport::default())
    }

    pub(crate) fn delete_locked(&self, name: &str, seqs: &[u64]) -> Result<()> {
        // The record first: the session disappears from `list` at once; an
        // interruption leaves orphan snapshots that `cleanup` removes.
        self.b_delete(&session_key(name))?;
        for &s in seqs {
            self.b_delete(&snapshot_key(name, s))?;
        }
        self.b_delete(&index_key(name))
    }

    /// Kept snapshots of `name`, oldest first.
    pub fn history(&self, name: &str) -> Result<Vec<SnapshotInfo>> {
        validate_name(name)?;
        let _l = self.lock_session(name, Mode::Shared)?;
        self.read_session(name)?;
        self.seqs(name)?
            .into_iter()
            .map(|s| self.read_manifest(name, s).map(|m| m.info()))
            .collect()
    }

    /// Makes snapshot `to` (default: the one before the newest) the newest
    /// again, as a new snapshot (so the rollback itself can be undone). The
    /// target is fully read and verified first. Refused while open.
    pub fn rollback(&self, name: &str, to: Option<u64>, now_ms: i64) -> Result<SaveReport> {
        validate_name(name)?;
        self.check_not_open(name)?;
        let _locks = self.lock_for_write(name)?;
        let mut rec = self.read_session(name)?;
        let seqs = self.seqs(name)?;
        let target = match to {
            Some(t) if seqs.contains(&t) => t,
            Some(t) => {
                return Err(StoreError::SnapshotNotFound {
                    name: name.to_owned(),
                    seq: t,
                });
            }
            None if seqs.len() >= 2 => seqs[seqs.len() - 2],
            None => {
                return Err(StoreError::NoEarlierSnapshot {
                    name: name.to_owned(),
                });
            }
        };
        let old = self.read_manifest(name, target)?;
        self.read_state(&old)?; // verify every chunk before relying on it
        let seq = next_seq(&seqs);
        let m = Manifest {
            seq,
            created_at: now_ms,
            note: format!("rollback to {target}"),
            ..old
        };
        let mut report = SaveReport {
            seq,
            chunks_total: m.chunk_refs().count() as u64,
            chunks_written: 0,
            logical_bytes: m.records.iter().map(|r| r.len).sum(),
            bytes_written: 0,
            pruned: Vec::new(),
            gc: GcReport::default(),
        };
        report.bytes_written += self.write_manifest(&m)?;
        rec.updated_at = now_ms;
        report.bytes_written += self.write_session(&rec)?;
        let mut after = seqs;
        after.push(seq);
        self.prune(name, &after, &mut report)?;
        self.refresh_index(name)?;
        Ok(report)
    }
}
