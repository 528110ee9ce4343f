//! Garbage collection of a repository without local locks: a bucket that
//! other machines write while the collector runs (`host push` from several
//! machines, every host of `host run --cluster`). STORE.md, "Garbage
//! collection of a shared repository", is the normative text.
//!
//! A local store excludes saves with its store lock while it deletes; a
//! bucket has no such lock, so a save on another machine may find a chunk
//! present (and not upload it) just before the collector deletes it. The
//! collection therefore never deletes a chunk a writer could still be
//! counting on; it **moves** it out of the way and deletes it only after a
//! full re-read of the manifests:
//!
//! 1. **Mark** (as in `gc.rs`): the unreferenced chunks are candidates.
//! 2. **Trash** (a later run, the mark at least `grace` old): write
//!    `gc/state` = `trashing`, then move every candidate that no manifest
//!    changed since the mark references from `chunks/…` to `gc/trash/…`,
//!    then write `gc/state` = `trashed`.
//! 3. **Empty** (a later run, `trashed` at least `grace` old; with a zero
//!    grace, 1-3 run in one call): re-read **every** manifest; put back the
//!    trashed chunks one references, delete the rest, write `gc/state` =
//!    `idle`.
//!
//! Every write of `gc/state` raises its `generation`. A writer (`save.rs`) reads
//! `gc/state` before its dedup checks and again after its manifest; unless
//! both reads saw `idle` with the same `generation`, it checks again every chunk
//! it did not upload and uploads the missing ones, before it returns (and
//! so before a cluster commit names the snapshot). Readers fall back to
//! `gc/trash/…` for a missing chunk.
//!
//! Why nothing a committed snapshot needs is lost, whatever the timing:
//! take a chunk X a writer deduplicated against, and the collection that
//! moved X at D. If the writer's re-check ran after D, it found X missing
//! and uploaded it. If it ran before D, its manifest (written before the
//! re-check) exists when step 3 re-reads every manifest (step 3 starts
//! after step 2 ended, so after D), and step 3 puts X back. Saves that saw
//! `idle` twice with one `generation` ran wholly before step 2 began (their
//! manifests are seen by step 2's touched re-read) or wholly after step 3
//! ended (their dedup checks saw the truth). No clock is involved; the
//! grace only spares work (a save rarely meets a collection in progress).
//!
//! What it needs: one collector at a time (the cluster runs it under its
//! own lease, `cluster/gc`), and a collector that stops moving chunks when
//! told to ([`Store::gc_while`]'s `go_on`, checked before every move and
//! delete). A `trashing` state left by a collector that died is taken as
//! finished once it is `grace` old.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::crypto::ChunkId;
use crate::error::{Result, StoreError};
use crate::gc::Mark;
use crate::layout::*;
use crate::report::GcReport;
use crate::store::Store;

/// `gc/state`: the shared collection's phase (sealed, AAD
/// [`GC_STATE_AAD`]).
pub(crate) const GC_STATE_KEY: &str = "gc/state";
pub(crate) const GC_STATE_AAD: &[u8] = b"sesshost-store/v1/gc-state";
/// `gc/trash/<2 hex>/<64 hex>`: a chunk moved out of `chunks/` (same bytes).
pub(crate) const TRASH_PREFIX: &str = "gc/trash/";

pub(crate) fn trash_key(id: &ChunkId) -> String {
    let h = id.to_hex();
    format!("{TRASH_PREFIX}{}/{h}", &h[..2])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Phase {
    Idle,
    Trashing,
    Trashed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GcState {
    pub(crate) v: u32,
    /// Raised by every write.
    pub(crate) generation: u64,
    pub(crate) phase: Phase,
    /// When `phase` began (ms since the epoch, the collector's clock; only
    /// compared with the grace by a later collector).
    pub(crate) since: i64,
}

/// What a writer saw of the collection (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GcSeen {
    /// No collection was moving chunks: `idle` at this `generation` (0: no state).
    Quiet(u64),
    /// A collection was between steps 2 and 3, or the state was unreadable.
    Busy,
}

impl GcSeen {
    /// Whether a save that saw `self` before its dedup checks and `after`
    /// after its manifest must check its deduplicated chunks again.
    pub(crate) fn must_recheck(self, after: GcSeen) -> bool {
        !matches!((self, after), (GcSeen::Quiet(a), GcSeen::Quiet(b)) if a == b)
    }
}

impl Store {
    /// What a save reads before its dedup checks and after its manifest.
    /// A read that keeps failing (the state keeps being replaced, the
    /// server keeps failing it) counts as `Busy`: the save re-checks its
    /// chunks, which is always safe, instead of failing.
    pub(crate) fn gc_seen(&self) -> Result<GcSeen> {
        let st = match self.read_gc_state() {
            Err(StoreError::Backend { .. }) => return Ok(GcSeen::Busy),
            r => r?,
        };
        Ok(match st {
            Ok(None) => GcSeen::Quiet(0),
            Ok(Some(s)) if s.phase == Phase::Idle => GcSeen::Quiet(s.generation),
            _ => GcSeen::Busy,
        })
    }

    /// `Err(())` when the object is there but does not open or decode.
    fn read_gc_state(&self) -> Result<std::result::Result<Option<GcState>, ()>> {
        let Some(obj) = self.b_get(GC_STATE_KEY)? else {
            return Ok(Ok(None));
        };
        Ok(self
            .keys
            .open_record("the GC state", GC_STATE_AAD, &obj)
            .ok()
            .and_then(|p| rmp_serde::from_slice::<GcState>(&p).ok())
            .filter(|s| s.v == 1)
            .map(Some)
            .ok_or(()))
    }

    fn write_gc_state(&self, generation: u64, phase: Phase) -> Result<u64> {
        let st = GcState {
            v: 1,
            generation,
            phase,
            since: now_ms(),
        };
        let obj = self.keys.seal_record(GC_STATE_AAD, &to_msgpack(&st))?;
        self.b_put(GC_STATE_KEY, &obj)?;
        Ok(generation)
    }

    /// A chunk's sealed bytes: `chunks/…`, or its trashed copy while a
    /// shared collection has it in `gc/trash/`.
    pub(crate) fn read_chunk_object(&self, id: &ChunkId) -> Result<Option<Vec<u8>>> {
        match self.b_get(&id.object_key())? {
            Some(b) => Ok(Some(b)),
            None => self.b_get(&trash_key(id)),
        }
    }

    /// [`Store::gc`] for a repository without local locks, advancing the
    /// shared collection by the steps whose grace has passed (all three
    /// with a zero grace). `go_on` is asked before every chunk moved,
    /// restored or deleted; when it says no the run stops where it is (a
    /// later run, by this collector or another, carries on) and
    /// `report.skipped` says so. The cluster passes "this host still holds
    /// the GC lease and is serving". With local locks this is
    /// [`Store::gc`] (the store lock protects saves; `go_on` is not asked).
    pub fn gc_while(&self, grace: Duration, go_on: &dyn Fn() -> bool) -> Result<GcReport> {
        if self.locks.is_some() {
            return self.gc(grace);
        }
        let mut report = GcReport::default();
        let old_enough = |since: i64| {
            let age = now_ms().saturating_sub(since);
            (grace.is_zero() || age >= ms(grace), age)
        };
        let (mut generation, phase, since) = match self.read_gc_state()? {
            Ok(None) => (0, Phase::Idle, 0),
            Ok(Some(s)) => (s.generation, s.phase, s.since),
            // Unreadable: as if a collection were moving chunks now, at a
            // generation no writer can have seen (the clock's ms).
            Err(()) => {
                let generation = u64::try_from(now_ms()).unwrap_or(1);
                self.write_gc_state(generation, Phase::Trashing)?;
                (generation, Phase::Trashing, now_ms())
            }
        };
        if phase != Phase::Idle {
            let (ok, age) = old_enough(since);
            if !ok {
                report.waiting_for_grace_ms = Some(age);
                return Ok(report);
            }
            if phase == Phase::Trashing {
                // Its collector died or stopped mid-way a grace ago: its
                // moves are over; empty a grace from now.
                generation = self.write_gc_state(generation + 1, Phase::Trashed)?;
                if !grace.is_zero() {
                    return Ok(report);
                }
            }
            if !self.empty_trash(&mut report, go_on)? {
                return Ok(report);
            }
            generation = self.write_gc_state(generation + 1, Phase::Idle)?;
            if !grace.is_zero() {
                return Ok(report);
            }
        }
        // Idle: trash an old enough mark, or mark.
        let mark = match self.read_mark()? {
            Some(m) => {
                let (ok, age) = old_enough(m.marked_at);
                if !ok {
                    report.waiting_for_grace_ms = Some(age);
                    report.chunks_marked = m.candidates.len() as u64;
                    return Ok(report);
                }
                m
            }
            None => {
                let Some(m) = self.mark(&mut report)? else {
                    self.b_delete(MARK_KEY)?;
                    return Ok(report);
                };
                report.chunks_marked = m.candidates.len() as u64;
                if !grace.is_zero() {
                    let obj = self.keys.seal_record(MARK_AAD, &to_msgpack(&m))?;
                    self.b_put(MARK_KEY, &obj)?;
                    return Ok(report);
                }
                m
            }
        };
        if mark.candidates.is_empty() {
            // Nothing to move: no state change, so saves meanwhile need no
            // re-check.
            self.b_delete(MARK_KEY)?;
            return Ok(report);
        }
        let generation = self.write_gc_state(generation + 1, Phase::Trashing)?;
        let finished = self.trash(&mark, &mut report, go_on)?;
        self.b_delete(MARK_KEY)?;
        if !finished {
            // Left `trashing`: a later run empties it once it is a grace old.
            return Ok(report);
        }
        let generation = self.write_gc_state(generation + 1, Phase::Trashed)?;
        if grace.is_zero() && self.empty_trash(&mut report, go_on)? {
            self.write_gc_state(generation + 1, Phase::Idle)?;
        }
        Ok(report)
    }

    /// Step 2. `false`: stopped (by `go_on`, or a manifest did not read).
    fn trash(&self, mark: &Mark, report: &mut GcReport, go_on: &dyn Fn() -> bool) -> Result<bool> {
        let Some(live) = self.touched_live(report)? else {
            return Ok(false);
        };
        for c in &mark.candidates {
            let Ok(id) = <[u8; 32]>::try_from(c.0.as_slice()).map(ChunkId) else {
                continue;
            };
            if live.contains(&id) {
                continue;
            }
            if !go_on() {
                report.skipped = Some(STOPPED.into());
                return Ok(false);
            }
            if let Some(bytes) = self.b_get(&id.object_key())? {
                self.b_put(&trash_key(&id), &bytes)?;
                self.b_delete(&id.object_key())?;
                report.chunks_trashed += 1;
            }
        }
        Ok(true)
    }

    /// Step 3. `false`: stopped (by `go_on`, or a manifest did not read).
    fn empty_trash(&self, report: &mut GcReport, go_on: &dyn Fn() -> bool) -> Result<bool> {
        let Some(live) = self.scan_live(report)? else {
            return Ok(false);
        };
        for k in self.b_list(TRASH_PREFIX)? {
            if !go_on() {
                report.skipped = Some(STOPPED.into());
                return Ok(false);
            }
            if let Some(id) = k.rsplit('/').next().and_then(ChunkId::from_hex)
                && live.contains(&id)
            {
                if !self.b_has(&id.object_key())?
                    && let Some(bytes) = self.b_get(&k)?
                {
                    self.b_put(&id.object_key(), &bytes)?;
                }
                report.chunks_restored += 1;
            } else {
                report.chunks_deleted += 1;
            }
            self.b_delete(&k)?;
        }
        Ok(true)
    }
}

const STOPPED: &str = "stopped before it finished (the collector lost its lease or is shutting down); a later run carries on";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_rechecks_unless_it_saw_one_quiet_generation() {
        use GcSeen::*;
        assert!(!Quiet(0).must_recheck(Quiet(0)));
        assert!(!Quiet(7).must_recheck(Quiet(7)));
        assert!(Quiet(7).must_recheck(Quiet(9)));
        assert!(Quiet(7).must_recheck(Busy));
        assert!(Busy.must_recheck(Quiet(7)));
        assert!(Busy.must_recheck(Busy));
    }
}
#[cfg(test)]
mod vector {
    use super::*;
    use crate::crypto::RepoKey;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `format-spec/vectors/store/gc-state.json` opens with its key and
    /// decodes to the fields it states; the plaintext is the canonical
    /// MessagePack of those fields.
    #[test]
    fn the_gc_state_vector_opens_and_decodes() {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../format-spec/vectors/store/gc-state.json"
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        let key: [u8; 32] = unhex(v["repo_key_hex"].as_str().unwrap())
            .try_into()
            .unwrap();
        let st = Store::new(
            Box::new(crate::backend::memory::MemoryBackend::new()),
            &RepoKey::from_bytes(key),
        );
        let obj = unhex(v["object_hex"].as_str().unwrap());
        let plain = st
            .keys
            .open_record("the GC state", GC_STATE_AAD, &obj)
            .unwrap();
        assert_eq!(plain, unhex(v["plaintext_msgpack_hex"].as_str().unwrap()));
        let got: GcState = rmp_serde::from_slice(&plain).unwrap();
        let want: GcState = serde_json::from_value(v["decoded"].clone()).unwrap();
        assert_eq!(got, want);
        assert_eq!(to_msgpack(&want), plain);
    }
}
