//! Cleanup (expired, damaged and orphaned sessions) and garbage collection
//! of unreferenced chunks.
//!
//! GC is two-phase and never runs inside a save:
//! 1. **Mark** (no store lock; saves go on): delete the `gc/touched/*`
//!    markers, read every manifest, list every chunk; the chunks no
//!    manifest references are the candidates, written to `gc/mark` with
//!    the time.
//! 2. **Sweep** (a later run, once the mark is older than the grace; at
//!    once with a zero grace), under the store lock held exclusively (no
//!    snapshot writer is in flight): re-read the manifests of the sessions
//!    with a `gc/touched/<name>` marker — every manifest written since the
//!    mark left one, after the manifest itself — and delete the candidates
//!    that are still unreferenced.
//!
//! So a chunk is deleted only if it was unreferenced at mark time, the mark
//! is older than the grace, and no manifest written since references it: a
//! save that deduplicates against an old unreferenced chunk while GC runs
//! keeps it. One GC at a time (`gc.lock`). Without local locks (a remote
//! repository other machines write) the sweep cannot exclude a save in
//! flight elsewhere, so that case is `gc_shared.rs`: candidates are moved
//! to a trash and deleted only after every manifest was read again, and
//! saves re-check their chunks when a collection ran meanwhile.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sessbundle::state::Bytes;

use crate::crypto::ChunkId;
use crate::error::{Result, StoreError};
use crate::layout::*;
use crate::lock::Mode;
use crate::names::validate_name;
use crate::objects::*;
use crate::report::*;
use crate::store::Store;

/// The grace `cleanup` uses on a store without local locks (each step of
/// the shared collection waits this long after the one before). Safety
/// does not depend on it (`gc_shared.rs`); it makes it rare for a save to
/// meet a collection. Cost: chunks of deleted or pruned snapshots stay on
/// the backend up to two graces longer.
pub const DEFAULT_REMOTE_GC_GRACE: Duration = Duration::from_secs(3600);

#[derive(Serialize, Deserialize)]
pub(crate) struct Mark {
    pub(crate) v: u32,
    pub(crate) marked_at: i64,
    pub(crate) candidates: Vec<Bytes>,
}

impl Store {
    /// Removes expired sessions, damaged snapshots and sessions (those that
    /// do not decrypt, decode or verify, or have no intact snapshot left),
    /// orphaned objects and stale index entries; then runs [`Store::gc`]
    /// with the store's grace (zero with local locks). Open sessions are
    /// left alone. Snapshots are verified (every chunk read) without any
    /// lock; a session's lock is taken only to act on what was found, after
    /// checking it again.
    pub fn cleanup(&self, now_ms: i64) -> Result<CleanupReport> {
        let mut report = CleanupReport::default();
        let mut names: BTreeSet<String> = BTreeSet::new();
        for k in self.b_list("sessions/")? {
            if let Some(n) = k.strip_prefix("sessions/") {
                names.insert(n.to_owned());
            }
        }
        for k in self.b_list("snapshots/")? {
            let Some((n, seq)) = k.strip_prefix("snapshots/").and_then(|r| r.split_once('/'))
            else {
                continue;
            };
            if seq.len() == 10 && seq.parse::<u64>().is_ok() {
                names.insert(n.to_owned());
            } else {
                // Not a snapshot the store wrote; it would block GC.
                self.b_delete(&k)?;
                report.removed.push(Removed {
                    name: n.to_owned(),
                    seq: None,
                    reason: format!("unexpected object {k:?} in the snapshot area"),
                });
            }
        }
        for k in self.b_list("index/")? {
            if let Some(n) = k.strip_prefix("index/")
                && !names.contains(n)
            {
                self.b_delete(&k)?; // index of a deleted session
            }
        }
        for name in names {
            if validate_name(&name).is_err() {
                continue; // not ours to interpret: leave it
            }
            if self.locks_dir.is_some() && self.check_not_open(&name).is_err() {
                report.skipped_open.push(name);
                continue;
            }
            self.cleanup_one(&name, now_ms, &mut report)?;
        }
        report.gc = self.gc(self.gc_grace)?;
        Ok(report)
    }

    fn cleanup_one(&self, name: &str, now_ms: i64, report: &mut CleanupReport) -> Result<()> {
        let removed = |reason: String| Removed {
            name: name.to_owned(),
            seq: None,
            reason,
        };
        // Lifecycle checks: cheap, under the lock.
        {
            let _l = self.lock_session(name, Mode::Exclusive)?;
            let seqs = self.seqs(name)?;
            match self.read_session(name) {
                Ok(rec) => {
                    if let Some(exp) = rec.expires_at.filter(|&e| e <= now_ms) {
                        self.delete_locked(name, &seqs)?;
                        report
                            .removed
                            .push(removed(format!("expired at {exp} (ms since epoch)")));
                        return Ok(());
                    }
                }
                Err(StoreError::SessionNotFound { .. }) => {
                    self.delete_locked(name, &seqs)?;
                    report.removed.push(removed(
                        "snapshots without a session record (an interrupted delete)".into(),
                    ));
                    return Ok(());
                }
                Err(e @ StoreError::Backend { .. }) => return Err(e),
                Err(e) => {
                    self.delete_locked(name, &seqs)?;
                    report.removed.push(removed(format!("damaged: {e}")));
                    return Ok(());
                }
            }
        }
        // Verification: reads every chunk, without a lock.
        let verify = |s: u64| {
            self.read_manifest(name, s)
                .and_then(|m| self.read_state(&m))
        };
        let mut bad = Vec::new();
        for s in self.seqs(name)? {
            match verify(s) {
                Ok(_) => {}
                Err(e @ StoreError::Backend { .. }) => return Err(e),
                Err(StoreError::SnapshotNotFound { .. }) => {} // pruned meanwhile
                Err(_) => bad.push(s),
            }
        }
        let _l = self.lock_session(name, Mode::Exclusive)?;
        for s in bad {
            // Checked again under the lock: it may have been replaced.
            match verify(s) {
                Ok(_) | Err(StoreError::SnapshotNotFound { .. }) => {}
                Err(e @ StoreError::Backend { .. }) => return Err(e),
                Err(e) => {
                    self.b_delete(&snapshot_key(name, s))?;
                    report.removed.push(Removed {
                        name: name.to_owned(),
                        seq: Some(s),
                        reason: format!("damaged snapshot: {e}"),
                    });
                }
            }
        }
        if self.seqs(name)?.is_empty() {
            if self.b_has(&session_key(name))? {
                self.delete_locked(name, &[])?;
                report
                    .removed
                    .push(removed("no intact snapshot left".into()));
            }
            return Ok(());
        }
        // A stale index entry (a crash between record and index) is rebuilt.
        let fresh = self.info_unlocked(name, now_ms)?;
        let stale = match self.read_index(name) {
            Ok(Some(mut i)) => {
                i.expired = fresh.expired;
                i != fresh
            }
            _ => true,
        };
        if stale {
            self.write_index(&fresh)?;
        }
        Ok(())
    }

    /// Collects chunks that no kept snapshot references (see the module
    /// doc). Sweeps the previous mark if it is at least `grace` old, then
    /// marks anew; with a zero grace it marks and sweeps in one call. Cost:
    /// the mark reads every manifest and lists every chunk (no lock held,
    /// saves go on); the sweep holds the store lock exclusively for the
    /// manifests of sessions changed since the mark plus the deletes.
    /// Measured (benches/scale.rs, release, 10,000 sessions all changed
    /// since the last mark): 0.2 s on tmpfs, 32 s on the shared VM disk,
    /// where deleting one `gc/touched` marker per changed session (each
    /// delete fsyncs the directory) dominates; saves are not blocked during
    /// the mark.
    ///
    /// Without local locks (a repository other machines write) this is the
    /// shared collection of `gc_shared.rs`: candidates go to `gc/trash/`
    /// first and are deleted a grace later ([`Store::gc_while`]).
    pub fn gc(&self, grace: Duration) -> Result<GcReport> {
        if self.locks.is_none() {
            return self.gc_while(grace, &|| true);
        }
        let _gc = self.locks.as_ref().map(|l| l.gc()).transpose()?;
        let mut report = GcReport::default();
        let now = now_ms();
        if let Some(mark) = self.read_mark()? {
            let age = now.saturating_sub(mark.marked_at);
            if age < ms(grace) {
                report.waiting_for_grace_ms = Some(age);
                report.chunks_marked = mark.candidates.len() as u64;
                return Ok(report);
            }
            report.chunks_deleted += self.sweep(&mark, &mut report)?;
        }
        let Some(mark) = self.mark(&mut report)? else {
            self.b_delete(MARK_KEY)?;
            return Ok(report);
        };
        report.chunks_marked = mark.candidates.len() as u64;
        if grace.is_zero() {
            report.chunks_deleted += self.sweep(&mark, &mut report)?;
            self.b_delete(MARK_KEY)?;
        } else {
            let obj = self.keys.seal_record(MARK_AAD, &to_msgpack(&mark))?;
            self.b_put(MARK_KEY, &obj)?;
        }
        Ok(report)
    }

    /// Phase 1. `None` (with `report.skipped` set) when a manifest cannot
    /// be read: collecting then might delete chunks it needs.
    pub(crate) fn mark(&self, report: &mut GcReport) -> Result<Option<Mark>> {
        let marked_at = now_ms();
        for k in self.b_list(TOUCHED_PREFIX)? {
            self.b_delete(&k)?;
        }
        let Some(live) = self.scan_live(report)? else {
            return Ok(None);
        };
        let mut candidates = Vec::new();
        for k in self.b_list("chunks/")? {
            match k.rsplit('/').next().and_then(ChunkId::from_hex) {
                Some(id) if live.contains(&id) => {}
                Some(id) => candidates.push(Bytes(id.0.to_vec())),
                // Not a chunk name: nothing references it.
                None => self.b_delete(&k)?,
            }
        }
        Ok(Some(Mark {
            v: 1,
            marked_at,
            candidates,
        }))
    }

    /// The chunks every manifest in the store references. `None` (with
    /// `report.skipped` set) when one cannot be read.
    pub(crate) fn scan_live(&self, report: &mut GcReport) -> Result<Option<HashSet<ChunkId>>> {
        let mut live: HashSet<ChunkId> = HashSet::new();
        for k in self.b_list("snapshots/")? {
            let parsed = k
                .strip_prefix("snapshots/")
                .and_then(|r| r.split_once('/'))
                .and_then(|(n, s)| Some((n.to_owned(), s.parse::<u64>().ok()?)));
            let Some((name, seq)) = parsed else {
                report.skipped = Some(format!("unexpected object {k:?}"));
                return Ok(None);
            };
            match self.read_manifest(&name, seq) {
                Ok(m) => live.extend(m.chunk_refs().filter_map(ChunkRef::chunk_id)),
                Err(StoreError::SnapshotNotFound { .. }) => {} // pruned meanwhile
                Err(e @ StoreError::Backend { .. }) => return Err(e),
                Err(e) => {
                    report.skipped = Some(e.to_string());
                    return Ok(None);
                }
            }
        }
        Ok(Some(live))
    }

    /// The chunks the manifests of sessions with a `gc/touched/<name>`
    /// marker (changed since the mark) reference; `None` as in
    /// [`Store::scan_live`].
    pub(crate) fn touched_live(&self, report: &mut GcReport) -> Result<Option<HashSet<ChunkId>>> {
        let mut live: HashSet<ChunkId> = HashSet::new();
        for k in self.b_list(TOUCHED_PREFIX)? {
            let Some(name) = k.strip_prefix(TOUCHED_PREFIX) else {
                continue;
            };
            for seq in self.seqs(name)? {
                match self.read_manifest(name, seq) {
                    Ok(m) => live.extend(m.chunk_refs().filter_map(ChunkRef::chunk_id)),
                    Err(StoreError::SnapshotNotFound { .. }) => {}
                    Err(e @ StoreError::Backend { .. }) => return Err(e),
                    Err(e) => {
                        report.skipped = Some(e.to_string());
                        return Ok(None);
                    }
                }
            }
        }
        Ok(Some(live))
    }

    /// Phase 2: deletes the candidates of `mark` that no manifest written
    /// since references. Returns how many were deleted.
    fn sweep(&self, mark: &Mark, report: &mut GcReport) -> Result<u64> {
        let _store = self
            .locks
            .as_ref()
            .map(|l| l.store_exclusive())
            .transpose()?;
        let Some(live) = self.touched_live(report)? else {
            return Ok(0);
        };
        let mut n = 0;
        for c in &mark.candidates {
            let Ok(id) = <[u8; 32]>::try_from(c.0.as_slice()).map(ChunkId) else {
                continue;
            };
            if !live.contains(&id) && self.b_has(&id.object_key())? {
                self.b_delete(&id.object_key())?;
                n += 1;
            }
        }
        Ok(n)
    }

    pub(crate) fn read_mark(&self) -> Result<Option<Mark>> {
        let Some(obj) = self.b_get(MARK_KEY)? else {
            return Ok(None);
        };
        // A damaged mark is dropped: the next mark replaces it.
        let mark = self
            .keys
            .open_record("the GC mark", MARK_AAD, &obj)
            .ok()
            .and_then(|p| rmp_serde::from_slice::<Mark>(&p).ok())
            .filter(|m| m.v == 1);
        Ok(mark)
    }
}
