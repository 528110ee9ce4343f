//! The session index: `index/<name>`, one small sealed record per session
//! holding what `list` shows (the [`SessionInfo`] of the session: lifecycle
//! facts, kept snapshots with their summaries, sizes), so `list` reads one
//! object per session instead of its record and every manifest.
//!
//! It is a cache: rewritten by every change of the session (under the
//! session's lock), rebuilt from the record and manifests when it is
//! missing or does not decode, and checked (rebuilt when stale, e.g. after
//! a crash between a save's session record and its index write) by
//! `cleanup`. Sealed like every other record (AAD names the session):
//! names appear in object keys anyway, but timestamps, user agents and
//! sizes are metadata.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crypto::ChunkId;
use crate::error::{Result, StoreError};
use crate::layout::*;
use crate::lock::Mode;
use crate::names::validate_name;
use crate::objects::SessionRecord;
use crate::report::SessionInfo;
use crate::store::Store;

const INDEX_VERSION: u32 = 1;

/// Threads `list` reads index objects on. Cost: each holds one small
/// record at a time. Measured (`cargo bench -p sesshost-store --bench
/// scale`, release, 2 shared cores, tmpfs): list of 10 / 1,000 / 10,000
/// sessions = 0.12 / 5.1 / 57 ms with 4 threads.
pub const LIST_THREADS: usize = 4;

#[derive(Serialize, Deserialize)]
struct IndexEntry {
    v: u32,
    info: SessionInfo,
}

impl Store {
    /// Every session, sorted by name, from the index (one object read per
    /// session; a missing or undecodable index entry is rebuilt from the
    /// session's manifests). Damaged sessions are listed with `problem`
    /// set instead of failing the listing.
    pub fn list(&self, now_ms: i64) -> Result<Vec<SessionInfo>> {
        let mut names: Vec<String> = self
            .b_list("sessions/")?
            .into_iter()
            .filter_map(|k| k.strip_prefix("sessions/").map(str::to_owned))
            .filter(|n| validate_name(n).is_ok())
            .collect();
        names.sort();
        let per = names.len().div_ceil(LIST_THREADS).max(1);
        let parts: Vec<Result<Vec<SessionInfo>>> = std::thread::scope(|s| {
            let workers: Vec<_> = names
                .chunks(per)
                .map(|part| {
                    s.spawn(move || {
                        let mut v = Vec::with_capacity(part.len());
                        for n in part {
                            v.extend(self.list_one(n, now_ms)?);
                        }
                        Ok(v)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|_| Err(StoreError::State("a list thread panicked".into())))
                })
                .collect()
        });
        let mut out = Vec::with_capacity(names.len());
        for p in parts {
            out.extend(p?);
        }
        Ok(out)
    }

    /// Facts about one session from its index entry: one small object
    /// read, what `list` shows (rebuilt from the manifests when missing or
    /// undecodable). For a service answering reads, where [`Store::show`]
    /// takes the session's lock and reads its record and every manifest.
    /// As fresh as that: every change rewrites the entry under the
    /// session's lock; only a crash between a save's record and its index
    /// write leaves it one change behind until `cleanup` checks it.
    /// Cost: one read and one record decryption, whatever the number of
    /// snapshots (`show` reads each manifest; profiled under the service
    /// load bench's GET phase, its lock, directory walk and manifest reads
    /// took ~5% of the host's CPU, now gone).
    pub fn show_indexed(&self, name: &str, now_ms: i64) -> Result<SessionInfo> {
        validate_name(name)?;
        let mut i = match self.read_index(name) {
            Ok(Some(i)) => i,
            Ok(None) | Err(StoreError::Corrupt { .. }) => self.rebuild_index_of(name)?,
            Err(e) => return Err(e),
        };
        i.expired = i.expires_at.is_some_and(|e| e <= now_ms);
        Ok(i)
    }

    /// `None` when the session was deleted since the listing.
    fn list_one(&self, name: &str, now_ms: i64) -> Result<Option<SessionInfo>> {
        match self.show_indexed(name, now_ms) {
            Ok(i) => Ok(Some(i)),
            Err(StoreError::SessionNotFound { .. }) => Ok(None),
            Err(e @ (StoreError::Backend { .. } | StoreError::LockTimeout { .. })) => Err(e),
            Err(e) => Ok(Some(SessionInfo {
                name: name.to_owned(),
                created_at: 0,
                updated_at: 0,
                last_used_at: None,
                expires_at: None,
                ttl_secs: None,
                expired: false,
                snapshots: Vec::new(),
                stored_bytes: 0,
                problem: Some(e.to_string()),
            })),
        }
    }

    /// Facts about one session, from its record and manifests (no chunks).
    pub fn show(&self, name: &str) -> Result<SessionInfo> {
        self.info(name, now_ms())
    }

    /// Like [`Store::show`] with a given clock.
    pub fn info(&self, name: &str, now_ms: i64) -> Result<SessionInfo> {
        validate_name(name)?;
        let _l = self.lock_session(name, Mode::Shared)?;
        self.info_unlocked(name, now_ms)
    }

    /// Rebuilds every session's index entry from its manifests (each under
    /// its session lock). Returns how many entries were rewritten.
    pub fn rebuild_index(&self) -> Result<u64> {
        let mut n = 0;
        for k in self.b_list("sessions/")? {
            let Some(name) = k.strip_prefix("sessions/") else {
                continue;
            };
            if validate_name(name).is_err() {
                continue;
            }
            match self.rebuild_index_of(name) {
                Ok(_) => n += 1,
                Err(e @ (StoreError::Backend { .. } | StoreError::LockTimeout { .. })) => {
                    return Err(e);
                }
                Err(_) => {} // damaged: `cleanup` deals with it
            }
        }
        Ok(n)
    }

    fn rebuild_index_of(&self, name: &str) -> Result<SessionInfo> {
        let _l = self.lock_session(name, Mode::Exclusive)?;
        self.refresh_index(name)
    }

    pub(crate) fn info_unlocked(&self, name: &str, now_ms: i64) -> Result<SessionInfo> {
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

    /// Recomputes `name`'s index entry from its record and manifests and
    /// writes it. The caller holds the session's exclusive lock.
    pub(crate) fn refresh_index(&self, name: &str) -> Result<SessionInfo> {
        let info = self.info_unlocked(name, now_ms())?;
        self.write_index(&info)?;
        Ok(info)
    }

    /// Updates the lifecycle facts of `rec`'s index entry in place (touch,
    /// extend: no manifest changed). The caller holds the session lock.
    pub(crate) fn patch_index(&self, rec: &SessionRecord) -> Result<()> {
        match self.read_index(&rec.name) {
            Ok(Some(mut i)) => {
                i.updated_at = rec.updated_at;
                i.last_used_at = rec.last_used_at;
                i.expires_at = rec.expires_at;
                i.ttl_secs = rec.ttl_secs;
                self.write_index(&i)
            }
            Ok(None) | Err(StoreError::Corrupt { .. }) => self.refresh_index(&rec.name).map(|_| ()),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn write_index(&self, info: &SessionInfo) -> Result<()> {
        let name = info.name.clone();
        let mut info = info.clone();
        info.expired = false;
        info.problem = None;
        let obj = self.keys.seal_record(
            &index_aad(&info.name),
            &to_msgpack(&IndexEntry {
                v: INDEX_VERSION,
                info,
            }),
        )?;
        self.b_put(&index_key(&name), &obj)
    }

    /// The index entry of `name`, if there is one.
    pub(crate) fn read_index(&self, name: &str) -> Result<Option<SessionInfo>> {
        let Some(obj) = self.b_get(&index_key(name))? else {
            return Ok(None);
        };
        let what = format!("the index entry of session {name:?}");
        let plain = self.keys.open_record(&what, &index_aad(name), &obj)?;
        let e: IndexEntry = rmp_serde::from_slice(&plain)
            .map_err(|e| StoreError::corrupt(&what, format!("does not decode: {e}")))?;
        if e.v != INDEX_VERSION || e.info.name != name {
            return Err(StoreError::corrupt(
                what,
                "names another session or version",
            ));
        }
        Ok(Some(e.info))
    }
}
