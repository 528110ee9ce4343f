//! Snapshots at a number the caller chooses, written create-only: the
//! cluster's commits (`host run --cluster`; STORE.md, cluster objects).
//!
//! In a repository several hosts write, a snapshot number is taken by
//! whoever creates its manifest first (`If-None-Match: *`), so a writer
//! from an older epoch can never overwrite the manifest a newer one
//! committed; the session head (`cluster/heads/<S>`, compare-and-swap)
//! names which snapshot is current, not "the highest number". Chunks are
//! content-addressed and written as in every save (the same bytes under
//! the same name, so a race between two writers of one chunk is harmless).
//!
//! The session record (`sessions/<name>`) is still written, for `list` and
//! for single-host readers, but a cluster reader takes the lifecycle facts
//! from the state's `extra` ([`Store::load_exact`] applies no record): the
//! record is the last writer's, the head's snapshot is the committed
//! one's.

use sessbundle::state::SessionState;

use crate::backend::{BackendErrorKind, Precondition};
use crate::error::Result;
use crate::layout::*;
use crate::names::validate_name;
use crate::objects::*;
use crate::report::SaveReport;
use crate::save::KEEP_SNAPSHOTS;
use crate::store::{Store, berr};

impl Store {
    /// Write `state` as snapshot `seq` of `name`, creating the session's
    /// record if it has none. `Ok(None)`: snapshot `seq` exists already
    /// (another writer took the number: re-read the head and choose
    /// again). Snapshots numbered `KEEP_SNAPSHOTS` or more below `seq` are
    /// pruned (their chunks are freed by GC).
    pub fn save_exact(
        &self,
        name: &str,
        state: &SessionState,
        now_ms: i64,
        seq: u64,
    ) -> Result<Option<SaveReport>> {
        validate_name(name)?;
        if self.b_has(&snapshot_key(name, seq))? {
            return Ok(None);
        }
        let rec = SessionRecord {
            v: 1,
            name: name.to_owned(),
            created_at: state.meta.created_at,
            updated_at: now_ms,
            last_used_at: state.meta.last_used_at,
            expires_at: state.meta.expires_at,
            ttl_secs: state.meta.ttl_secs,
        };
        let mut report =
            self.write_snapshot_with(&rec, state, now_ms, "commit", None, seq, true)?;
        let Some(r) = report.as_mut() else {
            return Ok(None);
        };
        r.bytes_written += self.write_session(&rec)?;
        let old: Vec<u64> = self
            .seqs(name)?
            .into_iter()
            .filter(|s| *s + KEEP_SNAPSHOTS as u64 <= seq)
            .collect();
        for s in old {
            self.b_delete(&snapshot_key(name, s))?;
            r.pruned.push(s);
        }
        self.refresh_index(name)?;
        Ok(report)
    }

    /// Snapshot `seq` of `name` as its manifest stores it: the session
    /// record's lifecycle facts are not applied (the manifest's meta keeps
    /// fixed values for them, STORE.md), so a caller that needs the facts
    /// of this very snapshot carries them in the state (the service:
    /// `extra.sesshost.lifecycle`).
    pub fn load_exact(&self, name: &str, seq: u64) -> Result<SessionState> {
        validate_name(name)?;
        let m = self.read_manifest(name, seq)?;
        self.read_state(&m)
    }

    /// Write a sealed manifest create-only. `Ok(false)`: the name is taken.
    /// An unknown outcome (5xx, timeout) is resolved by reading the object
    /// back and comparing its plaintext with ours.
    pub(crate) fn write_manifest_exclusive(&self, m: &Manifest) -> Result<Option<u64>> {
        let key = snapshot_key(&m.session, m.seq);
        let aad = manifest_aad(&m.session, m.seq);
        let plain = to_msgpack(m);
        let obj = self.keys.seal_record(&aad, &plain)?;
        match self.backend.put_if(&key, &obj, Precondition::IfAbsent) {
            Ok(_) => {}
            Err(e) if e.kind == BackendErrorKind::PreconditionFailed => return Ok(None),
            Err(e) if e.kind == BackendErrorKind::Conflict => return Ok(None),
            Err(e) if e.kind == BackendErrorKind::UnknownOutcome => {
                let ours = match self.b_get(&key)? {
                    Some(o) => self
                        .keys
                        .open_record(&key, &aad, &o)
                        .is_ok_and(|p| p == plain),
                    None => false,
                };
                if !ours {
                    return Ok(None);
                }
            }
            Err(e) => return Err(berr("write", &key)(e)),
        }
        let touched = touched_key(&m.session);
        if !self.b_has(&touched)? {
            self.b_put(&touched, b"")?;
        }
        Ok(Some(obj.len() as u64))
    }
}
