//! Session lifecycle: create, import, touch, extend, delete, history,
//! rollback.

use std::time::Duration;

use sessbundle::state::SessionState;

use crate::error::{Result, StoreError};
use crate::layout::*;
use crate::names::validate_name;
use crate::objects::*;
use crate::report::*;
use crate::store::Store;

impl Store {
    /// Creates a session with an empty first snapshot.
    pub fn create(&self, new: &NewSession, now_ms: i64) -> Result<SessionInfo> {
        validate_name(&new.name)?;
        let name = new.name.as_str();
        {
            let _g = self.guard()?;
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
            self.write_session(&rec)?;
            let mut state = SessionState::new(name, now_ms);
            state.meta.user_agent = new.user_agent.clone();
            state.meta.viewport = new.viewport.clone();
            state.meta.locale = new.locale.clone();
            state.meta.timezone = new.timezone.clone();
            self.save_locked(&rec, &state, now_ms, "create", &[], None)?;
        }
        self.show(name)
    }

    /// Stores `state` as a new session `name` (for `host import`): the
    /// session keeps the state's `createdAt`, `expiresAt` and `ttlSecs`.
    /// An existing session of that name is an error unless `replace`, in
    /// which case it is deleted first. If anything fails, nothing of the
    /// new session is left behind.
    pub fn import_state(
        &self,
        name: &str,
        state: &SessionState,
        replace: bool,
        now_ms: i64,
    ) -> Result<SaveReport> {
        validate_name(name)?;
        let exists = self.b_has(&session_key(name))?;
        if exists && !replace {
            return Err(StoreError::SessionExists {
                name: name.to_owned(),
            });
        }
        if exists {
            self.check_not_open(name)?;
        }
        let _g = self.guard()?;
        let old = self.seqs(name)?;
        if exists || !old.is_empty() {
            self.delete_locked(name, &old)?;
        }
        let rec = SessionRecord {
            v: 1,
            name: name.to_owned(),
            created_at: state.meta.created_at,
            updated_at: now_ms,
            last_used_at: None,
            expires_at: state.meta.expires_at,
            ttl_secs: state.meta.ttl_secs,
        };
        let result = self
            .write_session(&rec)
            .and_then(|_| self.save_locked(&rec, state, now_ms, "import", &[], None));
        match result {
            Ok(mut r) => {
                if exists {
                    r.gc = self.gc_locked()?;
                }
                Ok(r)
            }
            Err(e) => {
                let seqs = self.seqs(name).unwrap_or_default();
                let _ = self.delete_locked(name, &seqs);
                let _ = self.gc_locked();
                Err(e)
            }
        }
    }

    /// Saves `state` as the newest snapshot of session `name` (which must
    /// exist). Only chunks the store does not hold yet are written. The
    /// session's lifecycle facts (name, created/expiry) come from the store,
    /// not from `state.meta`. Older snapshots beyond [`KEEP_SNAPSHOTS`] are
    /// Records that the session was used now (call when opening it).
    pub fn touch(&self, name: &str, now_ms: i64) -> Result<()> {
        validate_name(name)?;
        let _g = self.guard()?;
        let mut rec = self.read_session(name)?;
        rec.last_used_at = Some(now_ms);
        self.write_session(&rec)?;
        Ok(())
    }

    /// Pushes the expiry of `name` back by `by` (from now if it already
    /// expired). A session without expiry keeps having none.
    pub fn extend(&self, name: &str, by: Duration, now_ms: i64) -> Result<SessionInfo> {
        validate_name(name)?;
        {
            let _g = self.guard()?;
            let mut rec = self.read_session(name)?;
            if let Some(e) = rec.expires_at {
                rec.expires_at = Some(e.max(now_ms).saturating_add(ms(by)));
                self.write_session(&rec)?;
            }
        }
        self.info(name, now_ms)
    }

    /// Deletes the session and its snapshots, then collects chunks no
    /// snapshot references any more. Refused while the session is open.
    pub fn delete(&self, name: &str) -> Result<GcReport> {
        validate_name(name)?;
        self.check_not_open(name)?;
        let _g = self.guard()?;
        let has_record = self.b_has(&session_key(name))?;
        let seqs = self.seqs(name)?;
        if !has_record && seqs.is_empty() {
            return Err(StoreError::SessionNotFound {
                name: name.to_owned(),
            });
        }
        self.delete_locked(name, &seqs)?;
        self.gc_locked()
    }

    pub(crate) fn delete_locked(&self, name: &str, seqs: &[u64]) -> Result<()> {
        // The record first: the session disappears from `list` at once; an
        // interruption leaves orphan snapshots that `cleanup` removes.
        self.b_delete(&session_key(name))?;
        for &s in seqs {
            self.b_delete(&snapshot_key(name, s))?;
        }
        Ok(())
    }

    /// Kept snapshots of `name`, oldest first.
    pub fn history(&self, name: &str) -> Result<Vec<SnapshotInfo>> {
        validate_name(name)?;
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
        let _g = self.guard()?;
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
        let seq = seqs.last().map_or(1, |s| s + 1);
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
        self.prune_locked(name, &after, &mut report)?;
        Ok(report)
    }
}
