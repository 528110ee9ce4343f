//! Sealing: state → records → chunks (keyed ids, per-chunk zstd) → STREAM,
//! manifest last. One pass, memory bounded by one record body and the chunk
//! table (SPEC.md §6).

use std::collections::HashMap;
use std::io::Write;

use crate::error::{Error, Result};
use crate::format::{Bin, Header};
use crate::keys::{self, Argon2Params, OsRandom, Randomness, ToSlotSpec};
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

pub use crate::interop::dates::now_ms;

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
    /// Write the header for `unlocks` (one slot each: [`crate::Unlock`]s
    /// or [`crate::SlotSpec`]s, e.g. a recipient) and start the payload.
    pub fn new<S: ToSlotSpec>(
        mut out: W,
        unlocks: &[S],
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
        let p = prepare(
            kind,
            key.to_string(),
            body,
            &self.chunk_id_key,
            &mut self.compressor,
            &mut self.zbuf,
        )?;
        self.add_prepared(p)
    }

    /// The expensive half of [`BundleWriter::add_record`] (chunking, keyed
    /// ids, zstd), without writing: lets a caller compress records whose
    /// turn has not come yet (`state_json` does, for origins parsed before
    /// the meta record is complete). Add it later with
    /// [`BundleWriter::add_prepared_record`]. Memory: the compressed record.
    pub fn prepare_record(
        &mut self,
        kind: RecordKind,
        key: String,
        body: &[u8],
    ) -> Result<PreparedRecord> {
        prepare(
            kind,
            key,
            body,
            &self.chunk_id_key,
            &mut self.compressor,
            &mut self.zbuf,
        )
        .map(PreparedRecord)
    }

    /// Encrypt and write a record made by [`BundleWriter::prepare_record`]
    /// of this writer (order rules as for [`BundleWriter::add_record`]).
    pub fn add_prepared_record(&mut self, p: PreparedRecord) -> Result<()> {
        self.add_prepared(p.0)
    }

    /// What worker threads need to prepare records for this writer
    /// (`state_json` prepares on its own workers).
    pub(crate) fn preparer(&self) -> Preparer {
        Preparer {
            chunk_id_key: self.chunk_id_key,
            level: self.opts.zstd_level,
        }
    }

    pub(crate) fn add_prepared(&mut self, p: Prepared) -> Result<()> {
        let first = self.records.is_empty();
        let last_kind = self.records.last().map_or(0, |r| r.kind);
        if !p.kind.may_follow(first, last_kind) {
            return Err(Error::Usage(format!(
                "record {} {:?} is out of order: meta first, then cookies, origins, tabs",
                p.kind.name(),
                p.key
            )));
        }
        let mut chunk_ids = Vec::with_capacity(p.chunks.len());
        for c in p.chunks {
            let i = match self.index.get(&c.id) {
                Some(&i) => i,
                None => {
                    self.stream.write_all(&c.stored)?;
                    let i = self.chunks.len() as u32;
                    self.chunks.push(ChunkEntry {
                        id: Bin(c.id),
                        kind: p.kind as u8,
                        codec: c.codec,
                        len: c.len,
                        stored: c.stored.len() as u32,
                    });
                    self.index.insert(c.id, i);
                    i
                }
            };
            chunk_ids.push(i);
        }
        self.plain_bytes += p.len;
        self.records.push(RecordEntry {
            kind: p.kind as u8,
            key: p.key,
            chunks: chunk_ids,
            len: p.len,
        });
        Ok(())
    }

    /// Add every record of a state, in order. Serialising, hashing and
    /// compressing run on worker threads (one per core, at most 8);
    /// encryption and writing stay on this thread, in order. Cost: up to
    /// ~2 × threads prepared records are buffered, on top of the state.
    pub fn add_state(&mut self, state: &SessionState) -> Result<()> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        self.add_state_with_threads(state, threads)
    }

    /// [`BundleWriter::add_state`] with an explicit number of worker threads
    /// (1 = all on this thread).
    pub fn add_state_with_threads(&mut self, state: &SessionState, threads: usize) -> Result<()> {
        let jobs = records::jobs(state);
        if threads <= 1 || jobs.len() < 4 {
            for j in &jobs {
                let r = records::job_record(state, j);
                self.add_record(r.kind, &r.key, &r.body)?;
            }
            return Ok(());
        }
        use std::sync::atomic::{AtomicUsize, Ordering};
        let next = AtomicUsize::new(0);
        let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Result<Prepared>)>(threads * 2);
        let key = self.chunk_id_key;
        let level = self.opts.zstd_level;
        std::thread::scope(|scope| -> Result<()> {
            for _ in 0..threads {
                let (tx, next, jobs) = (tx.clone(), &next, &jobs);
                scope.spawn(move || {
                    let mut comp = match zstd::bulk::Compressor::new(level) {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = tx.send((
                                0,
                                Err(Error::Io {
                                    what: "cannot start zstd".into(),
                                    source: e,
                                }),
                            ));
                            return;
                        }
                    };
                    let mut zbuf = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(j) = jobs.get(i) else { return };
                        let r = records::job_record(state, j);
                        let p = prepare(r.kind, r.key, &r.body, &key, &mut comp, &mut zbuf);
                        if tx.send((i, p)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(tx);
            let mut pending = std::collections::BTreeMap::new();
            let mut want = 0;
            let mut result = Ok(());
            for (i, p) in rx.iter() {
                if result.is_err() {
                    continue; // drain, so the workers can finish
                }
                let step = p.and_then(|p| {
                    pending.insert(i, p);
                    while let Some(p) = pending.remove(&want) {
                        self.add_prepared(p)?;
                        want += 1;
                    }
                    Ok(())
                });
                if let Err(e) = step {
                    result = Err(e);
                    next.store(usize::MAX / 2, Ordering::Relaxed);
                }
            }
            result
        })
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

/// A record compressed by [`BundleWriter::prepare_record`], waiting for
/// its turn to be written.
pub struct PreparedRecord(Prepared);

/// Prepares records for one writer on another thread: see
/// [`BundleWriter::preparer`]. Each thread makes its own [`Compressor`].
#[derive(Clone)]
pub(crate) struct Preparer {
    chunk_id_key: [u8; 32],
    level: i32,
}

/// A zstd context and its output buffer, one per thread.
pub(crate) struct Compressor {
    zstd: zstd::bulk::Compressor<'static>,
    zbuf: Vec<u8>,
}

impl Preparer {
    pub(crate) fn compressor(&self) -> Result<Compressor> {
        Ok(Compressor {
            zstd: zstd::bulk::Compressor::new(self.level)
                .map_err(Error::io("cannot start the zstd compressor"))?,
            zbuf: Vec::new(),
        })
    }

    pub(crate) fn prepare(
        &self,
        c: &mut Compressor,
        kind: RecordKind,
        key: String,
        body: &[u8],
    ) -> Result<Prepared> {
        prepare(
            kind,
            key,
            body,
            &self.chunk_id_key,
            &mut c.zstd,
            &mut c.zbuf,
        )
    }
}

/// A record cut into chunks, ids computed and compressed, ready to write.
pub(crate) struct Prepared {
    kind: RecordKind,
    key: String,
    len: u64,
    chunks: Vec<PreparedChunk>,
}

struct PreparedChunk {
    id: [u8; 32],
    codec: u8,
    len: u32,
    stored: Vec<u8>,
}

fn prepare(
    kind: RecordKind,
    key: String,
    body: &[u8],
    chunk_id_key: &[u8; 32],
    compressor: &mut zstd::bulk::Compressor<'static>,
    zbuf: &mut Vec<u8>,
) -> Result<Prepared> {
    let mut chunks = Vec::new();
    for range in records::chunk_bounds(body) {
        let plain = &body[range];
        let id = chunk_id(chunk_id_key, kind, plain);
        let mut codec = CODEC_NONE;
        if kind.compressible() && plain.len() >= 64 {
            zbuf.clear();
            zbuf.reserve(zstd::zstd_safe::compress_bound(plain.len()));
            let n = compressor
                .compress_to_buffer(plain, zbuf)
                .map_err(Error::io("zstd compression failed"))?;
            // Keep it only when it saves at least 5 %.
            if n * 20 <= plain.len() * 19 {
                codec = CODEC_ZSTD;
            }
        }
        let stored = if codec == CODEC_ZSTD {
            zbuf.clone()
        } else {
            plain.to_vec()
        };
        chunks.push(PreparedChunk {
            id,
            codec,
            len: plain.len() as u32,
            stored,
        });
    }
    Ok(Prepared {
        kind,
        key,
        len: body.len() as u64,
        chunks,
    })
}

pub(crate) fn chunk_id(key: &[u8; 32], kind: RecordKind, plain: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(&[kind as u8]);
    h.update(plain);
    *h.finalize().as_bytes()
}

/// Seal a whole state with fresh OS randomness.
pub fn seal<W: Write, S: ToSlotSpec>(
    state: &SessionState,
    out: W,
    unlocks: &[S],
    opts: SealOptions,
) -> Result<(W, SealSummary)> {
    seal_with(state, out, unlocks, opts, &mut OsRandom)
}

/// Seal with injected randomness (tests, vectors).
pub fn seal_with<W: Write, S: ToSlotSpec>(
    state: &SessionState,
    out: W,
    unlocks: &[S],
    opts: SealOptions,
    rng: &mut dyn Randomness,
) -> Result<(W, SealSummary)> {
    let mut w = BundleWriter::new(out, unlocks, opts, rng)?;
    w.add_state(state)?;
    w.finish()
}
