//! Session state JSON ⇄ bundle, streaming: what `host seal`, `host unseal`
//! and `host inspect --decrypt` run.
//!
//! - [`unseal_to_json`] writes the state JSON record by record (memory: a
//!   few records, never the state), checking each record with the same
//!   [`RecordCheck`](crate::records::RecordCheck) that
//!   [`BundleReader::read_state`] (and so `import`) applies: it accepts
//!   exactly the bundles `import` accepts. Records are decoded and printed
//!   on worker threads (`unseal`).
//! - [`seal_from_json`] parses state JSON straight into records (no
//!   `SessionState` of the origins is ever built): a scan thread splits
//!   the top level (`scan`), workers turn origins into compressed records,
//!   this thread encrypts (`seal`). The bundle holds the same records
//!   `seal` of the parsed state would.
//! - `fast`: origin records JSON ⇄ MessagePack without serde's values, for
//!   the canonical form; anything else goes through serde.
//! - [`inspect`] counts what a bundle holds, through [`unseal_to_json`].
//!
//! The JSON layout of [`unseal_to_json`] (kept byte for byte from the first
//! CLI): `{`, `"meta"` and `"extra"` pretty-printed, then `"cookies"`,
//! `"origins"`, `"tabs"` arrays with one compact item per line, `}`.

use std::io::{Read, Seek};

use crate::error::Result;
use crate::reader::BundleReader;

mod fast;
mod scan;
mod seal;
mod unseal;

pub use seal::seal_from_json;
pub use unseal::unseal_to_json;

/// Records decoded ahead of the JSON writer (and parsed ahead of the
/// compressor). Cost: memory of this many records on top of one being
/// worked on; 4 keeps both threads busy on session-like states.
pub(crate) const AHEAD: usize = 4;

/// What [`unseal_to_json`] wrote. Counts and sizes only: never a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnsealReport {
    /// The session's name (`meta.name`).
    pub name: String,
    pub records: usize,
    pub cookies: usize,
    /// Cookie records (one per site).
    pub cookie_sites: usize,
    pub origins: Vec<OriginSummary>,
    pub tabs: usize,
    /// Decoded record bodies (MessagePack), summed over records: a chunk
    /// shared by two records counts twice.
    pub record_bytes: u64,
    /// Bytes of state JSON written: exactly the size of `host unseal`'s
    /// output file.
    pub json_bytes: u64,
}

/// One origin's counts, for `inspect`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginSummary {
    pub origin: String,
    pub local_storage_items: usize,
    pub indexeddb_databases: usize,
    pub indexeddb_records: usize,
    /// Bytes of its record body (MessagePack).
    pub bytes: u64,
}

/// What a bundle holds: [`UnsealReport`] plus the manifest's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectReport {
    pub content: UnsealReport,
    /// Seal time (manifest `created_ms`), ms since the epoch.
    pub sealed_ms: i64,
    pub chunks: usize,
    /// Plaintext of the distinct chunks (what deduplication keeps).
    pub chunk_bytes: u64,
    /// Bytes the chunks take in the payload (after compression).
    pub stored_bytes: u64,
    /// Sanitisers recorded in the manifest: name and blake3 of the plugin.
    pub sanitizers: Vec<(String, [u8; 32])>,
}

/// Count and check everything in `reader` (every chunk verified, every
/// record decoded as `import` would), without keeping or printing a value.
/// `content.json_bytes` is the exact size `host unseal` would write.
pub fn inspect<R: Read + Seek>(reader: &mut BundleReader<R>) -> Result<InspectReport> {
    let content = unseal_to_json(reader, &mut std::io::sink())?;
    let m = reader.manifest();
    Ok(InspectReport {
        content,
        sealed_ms: m.created_ms,
        chunks: m.chunks.len(),
        chunk_bytes: m.chunks.iter().map(|c| c.len as u64).sum(),
        stored_bytes: m.chunks.iter().map(|c| c.stored as u64).sum(),
        sanitizers: m
            .sanitizers
            .iter()
            .map(|s| (s.name.clone(), s.blake3.0))
            .collect(),
    })
}
