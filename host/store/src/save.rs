//! The save pipeline: split a state into records, cut and seal only the
//! chunks the store does not hold, write them on a few threads, then the
//! manifest and the session record; prune old snapshots.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use sessbundle::records::{self, MetaRecord, RecordKind};
use sessbundle::state::{Bytes, SessionState};

use crate::crypto::ChunkId;
use crate::error::Result;
use crate::layout::*;
use crate::names::validate_name;
use crate::objects::*;
use crate::report::*;
use crate::store::Store;

/// Snapshots kept per session. Pruning beyond it deletes only this
/// session's manifests (chunk GC runs apart), so save cost does not grow
/// with the store: p50 0.27 ms with 10 sessions, 0.15 ms with 10,000
/// (benches/scale.rs, release, tmpfs). Cost: each kept snapshot pins the chunks
/// that differ from its neighbours (usually a few KiB, up to a whole
/// changed IndexedDB).
pub const KEEP_SNAPSHOTS: usize = 5;

/// Threads that seal and write new chunks during a save. Cost: each holds
/// one sealed chunk (up to ~1 MiB) at a time; more threads than cores only
/// help when the backend waits (fsync, network).
pub const WRITE_THREADS: usize = 4;

impl Store {
    /// Saves `state` as the newest snapshot of session `name` (which must
    /// exist). Only chunks the store does not hold yet are written. The
    /// session's lifecycle facts (name, created/expiry) come from the store,
    /// not from `state.meta`. Older snapshots beyond [`KEEP_SNAPSHOTS`] are
    /// pruned (their manifests deleted); their chunks are freed by
    /// [`Store::gc`], never here, so a save costs O(size of the session).
    /// Holds the store lock shared and the session's lock exclusive.
    pub fn save(&self, name: &str, state: &SessionState, now_ms: i64) -> Result<SaveReport> {
        self.save_over(name, state, now_ms, None)
    }

    /// Like [`Store::save`], but when `replace` is the newest snapshot's
    /// number, that snapshot is replaced instead of a new one being added.
    /// `host session open` uses this so that one open — with its autosaves
    /// and its final save — is one entry of history, and rollback goes back
    /// one open, not 30 seconds.
    pub fn save_over(
        &self,
        name: &str,
        state: &SessionState,
        now_ms: i64,
        replace: Option<u64>,
    ) -> Result<SaveReport> {
        validate_name(name)?;
        let _locks = self.lock_for_write(name)?;
        let mut rec = self.read_session(name)?;
        let seqs = self.seqs(name)?;
        let replace = replace.filter(|r| Some(r) == seqs.last());
        let seq = replace.unwrap_or_else(|| next_seq(&seqs));
        let mut report =
            self.write_snapshot(&rec, state, now_ms, "save", seqs.last().copied(), seq)?;
        rec.updated_at = now_ms;
        report.bytes_written += self.write_session(&rec)?;
        let mut after = seqs;
        if replace.is_none() {
            after.push(seq);
        }
        self.prune(name, &after, &mut report)?;
        self.refresh_index(name)?;
        Ok(report)
    }

    /// Writes `state` as snapshot `seq` of `rec`'s session: new chunks,
    /// then the manifest (nothing else: the caller writes the session
    /// record and holds [`Store::lock_for_write`]). `prev` is a snapshot
    /// whose manifest tells the stored sizes of chunks it shares.
    pub(crate) fn write_snapshot(
        &self,
        rec: &SessionRecord,
        state: &SessionState,
        now_ms: i64,
        note: &str,
        prev: Option<u64>,
        seq: u64,
    ) -> Result<SaveReport> {
        self.write_snapshot_with(rec, state, now_ms, note, prev, seq, false)?
            .ok_or_else(|| crate::error::StoreError::corrupt("a snapshot write", "lost its number"))
    }

    /// [`Store::write_snapshot`]; with `exclusive` the manifest is written
    /// create-only and `Ok(None)` means snapshot `seq` exists already.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_snapshot_with(
        &self,
        rec: &SessionRecord,
        state: &SessionState,
        now_ms: i64,
        note: &str,
        prev: Option<u64>,
        seq: u64,
        exclusive: bool,
    ) -> Result<Option<SaveReport>> {
        let name = rec.name.as_str();
        // Stored sizes of chunks we already hold, from the previous snapshot.
        let mut known: HashMap<ChunkId, u32> = HashMap::new();
        if let Some(prev) = prev
            && let Ok(m) = self.read_manifest(name, prev)
        {
            known.extend(
                m.chunk_refs()
                    .filter_map(|c| Some((c.chunk_id()?, c.stored))),
            );
        }

        // A repository other machines write: what its collection was doing
        // before the dedup checks (gc_shared.rs).
        let shared = self.locks.is_none();
        let gc_before = if shared { Some(self.gc_seen()?) } else { None };

        let mut recs = records::split(state);
        // Lifecycle facts live in the session record and are applied on
        // load; the meta record holds fixed values for them so that it
        // keeps its chunk id from one save to the next.
        let mut meta = state.meta.clone();
        meta.name = name.to_owned();
        meta.created_at = rec.created_at;
        meta.updated_at = rec.created_at;
        meta.last_used_at = None;
        meta.expires_at = None;
        meta.ttl_secs = None;
        recs[0].body = to_msgpack(&MetaRecord {
            meta,
            extra: state.extra.clone(),
        });
        let sites = recs
            .iter()
            .filter(|r| r.kind == RecordKind::Cookies)
            .count();

        let mut report = SaveReport {
            seq,
            chunks_total: 0,
            chunks_written: 0,
            logical_bytes: 0,
            bytes_written: 0,
            pruned: Vec::new(),
            gc: GcReport::default(),
        };
        // Pass 1: chunk ids, and which chunks must be sealed (new ones, and
        // ones held for another session whose stored size we do not know).
        let mut plan: Vec<Vec<(ChunkId, std::ops::Range<usize>)>> = Vec::with_capacity(recs.len());
        let mut todo: Vec<(ChunkId, RecordKind, &[u8], bool)> = Vec::new();
        let mut seen: BTreeSet<ChunkId> = BTreeSet::new();
        // Every chunk the manifest will name: a collection running before
        // the manifest exists may move those found present and those
        // uploaded alike (both look unreferenced to its mark).
        let mut named: Vec<(ChunkId, RecordKind, &[u8])> = Vec::new();
        for r in &recs {
            let mut chunks = Vec::new();
            for range in records::chunk_bounds(&r.body) {
                let plain = &r.body[range.clone()];
                let id = self.keys.chunk_id(r.kind, plain);
                if seen.insert(id) {
                    // Checked even when the previous snapshot has it, so a
                    // chunk lost outside the store is written again.
                    let exists = self.b_has(&id.object_key())?;
                    if !exists || !known.contains_key(&id) {
                        todo.push((id, r.kind, plain, !exists));
                    }
                    if shared {
                        named.push((id, r.kind, plain));
                    }
                }
                chunks.push((id, range));
            }
            plan.push(chunks);
        }
        // Pass 2: seal and write them on a few threads (compression and
        // encryption use the cores; fsync waits overlap).
        let next = AtomicUsize::new(0);
        let results: Vec<Result<Vec<(ChunkId, u32, bool)>>> = std::thread::scope(|sc| {
            let workers: Vec<_> = (0..WRITE_THREADS.min(todo.len()))
                .map(|_| {
                    sc.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&(id, kind, plain, write)) = todo.get(i) else {
                                return Ok(done);
                            };
                            let sealed = self.keys.seal_chunk(kind, plain, Some(id));
                            if write {
                                self.b_put(&id.object_key(), &sealed.object)?;
                            }
                            done.push((id, sealed.object.len() as u32, write));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("chunk writer panicked"))
                .collect()
        });
        for done in results {
            for (id, stored, wrote) in done? {
                if wrote {
                    report.chunks_written += 1;
                    report.bytes_written += u64::from(stored);
                }
                known.insert(id, stored);
            }
        }
        // Pass 3: the manifest.
        let mut mrecs = Vec::with_capacity(recs.len());
        for (r, chunks) in recs.iter().zip(plan) {
            report.chunks_total += chunks.len() as u64;
            report.logical_bytes += r.body.len() as u64;
            mrecs.push(ManifestRecord {
                kind: r.kind as u8,
                key: r.key.clone(),
                len: r.body.len() as u64,
                chunks: chunks
                    .into_iter()
                    .map(|(id, range)| ChunkRef {
                        id: Bytes(id.0.to_vec()),
                        len: range.len() as u32,
                        stored: known[&id],
                    })
                    .collect(),
            });
        }
        let m = Manifest {
            v: MANIFEST_VERSION,
            session: name.to_owned(),
            seq,
            created_at: now_ms,
            note: note.to_owned(),
            records: mrecs,
            summary: Summary::of(state, sites),
        };
        report.bytes_written += if exclusive {
            match self.write_manifest_exclusive(&m)? {
                Some(n) => n,
                None => return Ok(None),
            }
        } else {
            self.write_manifest(&m)?
        };
        // Pass 4 (shared repositories): if a collection may have moved
        // chunks since pass 1, check every chunk the manifest names again
        // and upload the missing ones, before the snapshot counts as
        // written. Cost: two reads of `gc/state` per save, plus one check
        // per chunk only when a collection ran meanwhile.
        if let Some(before) = gc_before
            && before.must_recheck(self.gc_seen()?)
        {
            for (id, kind, plain) in named {
                if !self.b_has(&id.object_key())? {
                    let sealed = self.keys.seal_chunk(kind, plain, Some(id));
                    self.b_put(&id.object_key(), &sealed.object)?;
                    report.chunks_written += 1;
                    report.bytes_written += sealed.object.len() as u64;
                }
            }
        }
        Ok(Some(report))
    }

    /// Delete all but the newest [`KEEP_SNAPSHOTS`] of `seqs` (ascending,
    /// the session's snapshots after a save).
    pub(crate) fn prune(&self, name: &str, seqs: &[u64], report: &mut SaveReport) -> Result<()> {
        if seqs.len() > KEEP_SNAPSHOTS {
            for &s in &seqs[..seqs.len() - KEEP_SNAPSHOTS] {
                self.b_delete(&snapshot_key(name, s))?;
                report.pruned.push(s);
            }
        }
        Ok(())
    }
}

/// The number of a snapshot added after `seqs` (ascending).
pub(crate) fn next_seq(seqs: &[u64]) -> u64 {
    seqs.last().map_or(1, |s| s + 1)
}
