//! Cleanup (expired, damaged and orphaned sessions) and garbage collection
//! of unreferenced chunks.

use std::collections::BTreeSet;

use crate::crypto::ChunkId;
use crate::error::{Result, StoreError};
use crate::layout::*;
use crate::names::validate_name;
use crate::objects::*;
use crate::report::*;
use crate::store::Store;

impl Store {
    /// Removes expired sessions, damaged snapshots and sessions (those that
    /// do not decrypt, decode or verify, or have no intact snapshot left),
    /// and orphaned objects; then collects unreferenced chunks. Open
    /// sessions are left alone. Reads every chunk of every snapshot.
    pub fn cleanup(&self, now_ms: i64) -> Result<CleanupReport> {
        let _g = self.guard()?;
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
        for name in names {
            if validate_name(&name).is_err() {
                // Not ours to interpret: leave it.
                continue;
            }
            if self.locks_dir.is_some() && self.check_not_open(&name).is_err() {
                report.skipped_open.push(name);
                continue;
            }
            let seqs = self.seqs(&name)?;
            let removed = |reason: String| Removed {
                name: name.clone(),
                seq: None,
                reason,
            };
            let rec = match self.read_session(&name) {
                Ok(r) => r,
                Err(StoreError::SessionNotFound { .. }) => {
                    self.delete_locked(&name, &seqs)?;
                    report.removed.push(removed(
                        "snapshots without a session record (an interrupted delete)".into(),
                    ));
                    continue;
                }
                Err(e @ StoreError::Backend { .. }) => return Err(e),
                Err(e) => {
                    self.delete_locked(&name, &seqs)?;
                    report.removed.push(removed(format!("damaged: {e}")));
                    continue;
                }
            };
            if let Some(exp) = rec.expires_at.filter(|&e| e <= now_ms) {
                self.delete_locked(&name, &seqs)?;
                report
                    .removed
                    .push(removed(format!("expired at {exp} (ms since epoch)")));
                continue;
            }
            let mut intact = 0;
            for &s in &seqs {
                let check = self
                    .read_manifest(&name, s)
                    .and_then(|m| self.read_state(&m));
                match check {
                    Ok(_) => intact += 1,
                    Err(e @ StoreError::Backend { .. }) => return Err(e),
                    Err(e) => {
                        self.b_delete(&snapshot_key(&name, s))?;
                        report.removed.push(Removed {
                            name: name.clone(),
                            seq: Some(s),
                            reason: format!("damaged snapshot: {e}"),
                        });
                    }
                }
            }
            if intact == 0 {
                self.delete_locked(&name, &[])?;
                report
                    .removed
                    .push(removed("no intact snapshot left".into()));
            }
        }
        report.gc = self.gc_locked()?;
        Ok(report)
    }

    /// Deletes chunks that no kept snapshot of any session references.
    pub fn gc(&self) -> Result<GcReport> {
        let _g = self.guard()?;
        self.gc_locked()
    }

    pub(crate) fn gc_locked(&self) -> Result<GcReport> {
        let mut live: BTreeSet<ChunkId> = BTreeSet::new();
        for k in self.b_list("snapshots/")? {
            let parsed = k
                .strip_prefix("snapshots/")
                .and_then(|r| r.split_once('/'))
                .and_then(|(n, s)| Some((n.to_owned(), s.parse::<u64>().ok()?)));
            let Some((name, seq)) = parsed else {
                return Ok(GcReport {
                    chunks_deleted: 0,
                    skipped: Some(format!("unexpected object {k:?}")),
                });
            };
            match self.read_manifest(&name, seq) {
                Ok(m) => live.extend(m.chunk_refs().filter_map(ChunkRef::chunk_id)),
                Err(e @ StoreError::Backend { .. }) => return Err(e),
                Err(e) => {
                    return Ok(GcReport {
                        chunks_deleted: 0,
                        skipped: Some(format!("{e}")),
                    });
                }
            }
        }
        let mut report = GcReport::default();
        for k in self.b_list("chunks/")? {
            let id = k.rsplit('/').next().and_then(ChunkId::from_hex);
            if id.is_some_and(|id| live.contains(&id)) {
                continue;
            }
            self.b_delete(&k)?;
            report.chunks_deleted += 1;
        }
        Ok(report)
    }
}
