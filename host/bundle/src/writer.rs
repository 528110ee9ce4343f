//! Sealing: state → records → chunks (keyed ids, per-chunk zstd) → STREAM,
//! manifest last. One pass, memory bounded by one record body and the chunk
//! table (SPEC.md §6).

use std::collections::HashMap;
use std::io::Write;

use crate::error::{Error, Result};
use crate::format::{Bin, Header};
use crate::keys::{self, Argon2Params, OsRandom, Randomness, Unlock};
use crate::manifest::{
    CODEC_NONE, CODEC_ZSTD, ChunkEntry, Manifest, RecordEntry, SCHEMA, SanitizerEntry,
};
use crate::records::{self, RecordKind};
use crate::state::SessionState;
use crate::stream::{StreamWriter, stream_cipher};

/// How to seal.
#[derive(Debug, Clone)]
pub struct SealOptions {
    /// Argon2id cost of passphrase slots (see [`Argon2Params`] for its cost).
    pub argon2: Argon2Params,
    /// zstd level. Cost: level 1 compresses session-like JSON ~3.4× at
    /// ~350 MB/s per core here; level 3 gains ~2 % size for ~35 % more time.
    pub zstd_level: i32,
    /// Sanitiser plugins that ran on the state (recorded in the manifest).
    pub sanitizers: Vec<SanitizerEntry>,
    /// Seal time, ms since the epoch (the manifest's `created_ms`).
    pub created_ms: i64,
}

impl Default for SealOptions {
    fn default() -> Self {
        SealOptions {
            argon2: Argon2Params::default(),
            zstd_level: 1,
            sanitizers: vec![],
            created_ms: now_ms(),
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What sealing produced.
#[derive(Debug, Clone)]
pub struct SealSummary {
    pub bundle_id: [u8; 16],
    pub records: usize,
    pub chunks: usize,
    /// Bytes of record bodies (uncompressed).
    pub plain_bytes: u64,
    /// Bytes of the whole file.
    pub file_bytes: u64,
}

/// Writes one bundle to `W` in a single pass.
pub struct BundleWriter<W: Write> {
    stream: StreamWriter<W>,
    header_len: usize,
    bundle_id: [u8; 16],
    chunk_id_key: [u8; 32],
    compressor: zstd::bulk::Compressor<'static>,
    zbuf: Vec<u8>,
    chunks: Vec<ChunkEntry>,
    index: HashMap<[u8; 32], u32>,
    records: Vec<RecordEntry>,
    plain_bytes: u64,
    opts: SealOptions,
}

impl<W: Write> BundleWriter<W> {
    /// Write the header for `unlocks` (one slot each) and start the payload.
    pub fn new(
        mut out: W,
        unlocks: &[Unlock],
        opts: SealOptions,
        rng: &mut dyn Randomness,
    ) -> Result<Self> {
        let (header, file_key) = Header::create(unlocks, opts.argon2, rng)?;
        let bytes = header.bytes();
        out.write_all(&bytes)
            .map_err(Error::io("cannot write the bundle"))?;
        let cipher = stream_cipher(&file_key, &header.core.stream_nonce.0);
        Ok(BundleWriter {
            stream: StreamWriter::new(out, cipher, header.stream_aad()),
            header_len: bytes.len(),
            bundle_id: header.bundle_id(),
            chunk_id_key: keys::derive(keys::CTX_CHUNK_ID, &[&file_key]),
            compressor: zstd::bulk::Compressor::new(opts.zstd_level)
                .map_err(Error::io("cannot start the zstd compressor"))?,
            zbuf: Vec::new(),
            chunks: Vec::new(),
            index: HashMap::new(),
            records: Vec::new(),
            plain_bytes: 0,
            opts,
        })
    }

    /// Add one record. Records must come in the spec's order (meta first,
    /// then cookies, origins, tabs); [`BundleWriter::add_state`] does that.
    pub fn add_record(&mut self, kind: RecordKind, key: &str, body: &[u8]) -> Result<()> {
        let first = self.records.is_empty();
        let last_kind = self.records.last().map_or(0, |r| r.kind);
        if first != (kind == RecordKind::Meta) || (kind as u8) < last_kind {
            return Err(Error::Usage(format!(
                "record {} {key:?} is out of order: meta first, then cookies, origins, tabs",
                kind.name()
            )));
        }
        let mut chunk_ids = Vec::new();
        for range in records::chunk_bounds(body) {
            chunk_ids.push(self.add_chunk(kind, &body[range])?);
        }
        self.plain_bytes += body.len() as u64;
        self.records.push(RecordEntry {
            kind: kind as u8,
            key: key.to_string(),
            chunks: chunk_ids,
            len: body.len() as u64,
        });
        Ok(())
    }

    fn add_chunk(&mut self, kind: RecordKind, plain: &[u8]) -> Result<u32> {
        let id = chunk_id(&self.chunk_id_key, kind, plain);
        if let Some(&i) = self.index.get(&id) {
            return Ok(i);
        }
        let mut codec = CODEC_NONE;
        if kind.compressible() && plain.len() >= 64 {
            self.zbuf.clear();
            self.zbuf
                .reserve(zstd::zstd_safe::compress_bound(plain.len()));
            let n = self
                .compressor
                .compress_to_buffer(plain, &mut self.zbuf)
                .map_err(Error::io("zstd compression failed"))?;
            // Keep it only when it saves at least 5 %.
            if n * 20 <= plain.len() * 19 {
                codec = CODEC_ZSTD;
            }
        }
        let stored: &[u8] = if codec == CODEC_ZSTD {
            &self.zbuf
        } else {
            plain
        };
        self.stream.write_all(stored)?;
        let i = self.chunks.len() as u32;
        self.chunks.push(ChunkEntry {
            id: Bin(id),
            kind: kind as u8,
            codec,
            len: plain.len() as u32,
            stored: stored.len() as u32,
        });
        self.index.insert(id, i);
        Ok(i)
    }

    /// Add every record of a state, in order.
    pub fn add_state(&mut self, state: &SessionState) -> Result<()> {
        for r in records::split(state) {
            self.add_record(r.kind, &r.key, &r.body)?;
        }
        Ok(())
    }

    /// Write the manifest and the last segment; return the output.
    pub fn finish(mut self) -> Result<(W, SealSummary)> {
        if self.records.is_empty() {
            return Err(Error::Usage(
                "a bundle needs at least the meta record".into(),
            ));
        }
        let manifest = Manifest {
            bundle_id: Bin(self.bundle_id),
            schema: SCHEMA,
            created_ms: self.opts.created_ms,
            chunks: std::mem::take(&mut self.chunks),
            records: std::mem::take(&mut self.records),
            sanitizers: std::mem::take(&mut self.opts.sanitizers),
        };
        let m = crate::format::to_msgpack(&manifest);
        self.stream.write_all(&m)?;
        self.stream.write_all(&(m.len() as u64).to_be_bytes())?;
        let plain = self.stream.written;
        let out = self.stream.finish()?;
        let segments = plain.div_ceil(crate::stream::SEGMENT as u64);
        Ok((
            out,
            SealSummary {
                bundle_id: self.bundle_id,
                records: manifest.records.len(),
                chunks: manifest.chunks.len(),
                plain_bytes: self.plain_bytes,
                file_bytes: self.header_len as u64 + plain + segments * crate::stream::TAG as u64,
            },
        ))
    }
}

pub(crate) fn chunk_id(key: &[u8; 32], kind: RecordKind, plain: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(&[kind as u8]);
    h.update(plain);
    *h.finalize().as_bytes()
}

/// Seal a whole state with fresh OS randomness.
pub fn seal<W: Write>(
    state: &SessionState,
    out: W,
    unlocks: &[Unlock],
    opts: SealOptions,
) -> Result<(W, SealSummary)> {
    seal_with(state, out, unlocks, opts, &mut OsRandom)
}

/// Seal with injected randomness (tests, vectors).
pub fn seal_with<W: Write>(
    state: &SessionState,
    out: W,
    unlocks: &[Unlock],
    opts: SealOptions,
    rng: &mut dyn Randomness,
) -> Result<(W, SealSummary)> {
    let mut w = BundleWriter::new(out, unlocks, opts, rng)?;
    w.add_state(state)?;
    w.finish()
}
