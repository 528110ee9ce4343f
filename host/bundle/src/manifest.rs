//! The manifest (SPEC.md §6): the authenticated table of chunks and records
//! at the end of the payload, and its consistency rules.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::{Bin, MAX_CHUNK_LEN};
use crate::records::RecordKind;

pub const SCHEMA: u32 = 1;
pub const CODEC_NONE: u8 = 0;
pub const CODEC_ZSTD: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub bundle_id: Bin<16>,
    pub schema: u32,
    pub created_ms: i64,
    pub chunks: Vec<ChunkEntry>,
    pub records: Vec<RecordEntry>,
    pub sanitizers: Vec<SanitizerEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkEntry {
    pub id: Bin<32>,
    pub kind: u8,
    pub codec: u8,
    pub len: u32,
    pub stored: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordEntry {
    pub kind: u8,
    pub key: String,
    pub chunks: Vec<u32>,
    pub len: u64,
}

/// A sanitiser plugin that ran on the state before it was sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SanitizerEntry {
    pub name: String,
    pub blake3: Bin<32>,
}

impl Manifest {
    /// Check every rule of SPEC.md §6 that does not need the chunk bytes.
    /// Returns the offset of each chunk in the region.
    pub(crate) fn validate(&self, bundle_id: &[u8; 16], region_len: u64) -> Result<Vec<u64>> {
        let bad = |s: String| Err(Error::MalformedManifest(s));
        if &self.bundle_id.0 != bundle_id {
            return bad("it names another bundle id (spliced from another bundle?)".into());
        }
        if self.schema != SCHEMA {
            return bad(format!("state schema {} is not {SCHEMA}", self.schema));
        }
        let mut offsets = Vec::with_capacity(self.chunks.len());
        let mut at = 0u64;
        let mut ids = std::collections::HashSet::with_capacity(self.chunks.len());
        for (i, c) in self.chunks.iter().enumerate() {
            if RecordKind::from_u8(c.kind).is_none() {
                return bad(format!("chunk {i} has unknown kind {}", c.kind));
            }
            let ok_len = c.len as usize <= MAX_CHUNK_LEN
                && match c.codec {
                    CODEC_NONE => c.stored == c.len,
                    CODEC_ZSTD => c.stored as usize <= c.len as usize + 1024,
                    _ => false,
                };
            if !ok_len {
                return bad(format!(
                    "chunk {i} has codec {} len {} stored {}",
                    c.codec, c.len, c.stored
                ));
            }
            if !ids.insert(c.id.0) {
                return bad(format!("chunk {i} is listed twice"));
            }
            offsets.push(at);
            at += c.stored as u64;
        }
        if at != region_len {
            return bad(format!(
                "chunks total {at} bytes but the region holds {region_len}"
            ));
        }
        let mut used = vec![false; self.chunks.len()];
        let mut last_kind = 0u8;
        for (n, r) in self.records.iter().enumerate() {
            let Some(kind) = RecordKind::from_u8(r.kind) else {
                return bad(format!("record {n} has unknown kind {}", r.kind));
            };
            if !kind.may_follow(n == 0, last_kind) {
                return bad(format!("record {n} ({}) is out of order", kind.name()));
            }
            last_kind = r.kind;
            let mut total = 0u64;
            for &ci in &r.chunks {
                let Some(c) = self.chunks.get(ci as usize) else {
                    return bad(format!(
                        "record {n} points at chunk {ci}, which does not exist"
                    ));
                };
                if c.kind != r.kind {
                    return bad(format!("record {n} uses chunk {ci} of another kind"));
                }
                used[ci as usize] = true;
                total += c.len as u64;
            }
            if total != r.len {
                return bad(format!(
                    "record {n} declares {} bytes but its chunks hold {total}",
                    r.len
                ));
            }
        }
        if self.records.is_empty() {
            return bad("it has no meta record".into());
        }
        if let Some(i) = used.iter().position(|u| !u) {
            return bad(format!("chunk {i} is used by no record"));
        }
        Ok(offsets)
    }
}
