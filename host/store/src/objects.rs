//! The stored records (session record, snapshot manifest) and how the store
//! reads and writes them and rebuilds a state from a manifest's chunks.

use serde::{Deserialize, Serialize};

use sessbundle::records::{Joiner, Record, RecordKind};
use sessbundle::state::{Bytes, SessionState};

use crate::crypto::ChunkId;
use crate::error::{Result, StoreError};
use crate::layout::*;
use crate::report::*;
use crate::store::Store;

pub(crate) const MANIFEST_VERSION: u32 = 1;

/// Lifecycle facts, in `sessions/<name>` (so `extend` and `touch` never
/// cost a snapshot).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SessionRecord {
    pub(crate) v: u32,
    pub(crate) name: String,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    #[serde(default)]
    pub(crate) last_used_at: Option<i64>,
    #[serde(default)]
    pub(crate) expires_at: Option<i64>,
    #[serde(default)]
    pub(crate) ttl_secs: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Manifest {
    pub(crate) v: u32,
    pub(crate) session: String,
    pub(crate) seq: u64,
    pub(crate) created_at: i64,
    pub(crate) note: String,
    pub(crate) records: Vec<ManifestRecord>,
    pub(crate) summary: Summary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManifestRecord {
    pub(crate) kind: u8,
    pub(crate) key: String,
    pub(crate) len: u64,
    pub(crate) chunks: Vec<ChunkRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChunkRef {
    pub(crate) id: Bytes,
    pub(crate) len: u32,
    pub(crate) stored: u32,
}

impl ChunkRef {
    pub(crate) fn chunk_id(&self) -> Option<ChunkId> {
        <[u8; 32]>::try_from(self.id.0.as_slice()).ok().map(ChunkId)
    }
}

impl Manifest {
    pub(crate) fn info(&self) -> SnapshotInfo {
        SnapshotInfo {
            seq: self.seq,
            created_at: self.created_at,
            note: self.note.clone(),
            logical_bytes: self.records.iter().map(|r| r.len).sum(),
            stored_bytes: self.chunk_refs().map(|c| u64::from(c.stored)).sum(),
            chunks: self.chunk_refs().count() as u64,
            summary: self.summary.clone(),
        }
    }

    pub(crate) fn chunk_refs(&self) -> impl Iterator<Item = &ChunkRef> {
        self.records.iter().flat_map(|r| &r.chunks)
    }
}

impl Store {
    pub(crate) fn read_session(&self, name: &str) -> Result<SessionRecord> {
        let key = session_key(name);
        let obj = self
            .b_get(&key)?
            .ok_or_else(|| StoreError::SessionNotFound {
                name: name.to_owned(),
            })?;
        let what = format!("the record of session {name:?}");
        let plain = self.keys.open_record(&what, &session_aad(name), &obj)?;
        let rec: SessionRecord = rmp_serde::from_slice(&plain)
            .map_err(|e| StoreError::corrupt(&what, format!("does not decode: {e}")))?;
        if rec.name != name {
            return Err(StoreError::corrupt(what, "names another session"));
        }
        Ok(rec)
    }

    pub(crate) fn write_session(&self, rec: &SessionRecord) -> Result<u64> {
        let obj = self
            .keys
            .seal_record(&session_aad(&rec.name), &to_msgpack(rec))?;
        self.b_put(&session_key(&rec.name), &obj)?;
        Ok(obj.len() as u64)
    }

    /// Kept snapshot numbers, ascending.
    pub(crate) fn seqs(&self, name: &str) -> Result<Vec<u64>> {
        let prefix = snapshot_prefix(name);
        let mut v: Vec<u64> = self
            .b_list(&prefix)?
            .iter()
            .filter_map(|k| k.strip_prefix(&prefix)?.parse().ok())
            .collect();
        v.sort_unstable();
        Ok(v)
    }

    pub(crate) fn read_manifest(&self, name: &str, seq: u64) -> Result<Manifest> {
        self.read_manifest_sized(name, seq).map(|(m, _)| m)
    }

    /// A snapshot manifest and the size of its stored (sealed) object.
    pub(crate) fn read_manifest_sized(&self, name: &str, seq: u64) -> Result<(Manifest, usize)> {
        let key = snapshot_key(name, seq);
        let obj = self.b_get(&key)?.ok_or(StoreError::SnapshotNotFound {
            name: name.to_owned(),
            seq,
        })?;
        let what = format!("snapshot {seq} of session {name:?}");
        let plain = self
            .keys
            .open_record(&what, &manifest_aad(name, seq), &obj)?;
        let m: Manifest = rmp_serde::from_slice(&plain)
            .map_err(|e| StoreError::corrupt(&what, format!("does not decode: {e}")))?;
        if m.v != MANIFEST_VERSION || m.session != name || m.seq != seq {
            return Err(StoreError::corrupt(what, "manifest header does not match"));
        }
        Ok((m, obj.len()))
    }

    pub(crate) fn write_manifest(&self, m: &Manifest) -> Result<u64> {
        let obj = self
            .keys
            .seal_record(&manifest_aad(&m.session, m.seq), &to_msgpack(m))?;
        self.b_put(&snapshot_key(&m.session, m.seq), &obj)?;
        // After the manifest, never before: a GC mark that deleted this
        // marker before the manifest existed reads the manifest itself.
        let touched = touched_key(&m.session);
        if !self.b_has(&touched)? {
            self.b_put(&touched, b"")?;
        }
        Ok(obj.len() as u64)
    }

    pub(crate) fn read_state(&self, m: &Manifest) -> Result<SessionState> {
        let mut j = Joiner::default();
        let what = || format!("snapshot {} of session {:?}", m.seq, m.session);
        for r in &m.records {
            let kind = RecordKind::from_u8(r.kind).ok_or_else(|| {
                StoreError::corrupt(what(), format!("unknown record kind {}", r.kind))
            })?;
            let mut body = Vec::with_capacity(usize::try_from(r.len).unwrap_or(0).min(1 << 30));
            for c in &r.chunks {
                let id = c
                    .chunk_id()
                    .ok_or_else(|| StoreError::corrupt(what(), "malformed chunk id"))?;
                let obj = self.read_chunk_object(&id)?.ok_or_else(|| {
                    StoreError::corrupt(
                        format!("chunk {}", id.to_hex()),
                        format!("missing (needed by {})", what()),
                    )
                })?;
                body.extend_from_slice(&self.keys.open_chunk(&id, kind, c.len, &obj)?);
            }
            if body.len() as u64 != r.len {
                return Err(StoreError::corrupt(what(), "record length differs"));
            }
            j.push(&Record {
                kind,
                key: r.key.clone(),
                body,
            })
            .map_err(|e| StoreError::corrupt(what(), e.to_string()))?;
        }
        j.finish()
            .map_err(|e| StoreError::corrupt(what(), e.to_string()))
    }

    /// Applies the session record's lifecycle facts to a loaded state.
    pub(crate) fn apply_record(state: &mut SessionState, rec: &SessionRecord) {
        state.meta.name = rec.name.clone();
        state.meta.created_at = rec.created_at;
        state.meta.updated_at = rec.updated_at;
        state.meta.last_used_at = rec.last_used_at;
        state.meta.expires_at = rec.expires_at;
        state.meta.ttl_secs = rec.ttl_secs;
    }
}
