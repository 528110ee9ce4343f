//! Opening a bundle: header → key slot → header tag → last segment →
//! manifest → chunks on demand, each re-hashed against its id (SPEC.md §6.3).
//! Memory stays bounded by one segment, one chunk and one record.

use std::io::{Read, Seek};

use crate::error::{Error, Result};
use crate::format::{Header, Layout, parse_canonical};
use crate::keys::{self, PublicKey, Unlock};
use crate::limits::ReaderLimits;
use crate::manifest::{CODEC_ZSTD, Manifest};
use crate::records::{Joiner, Record, RecordKind};
use crate::sign::{SignatureBlock, Verified};
use crate::state::SessionState;
use crate::stream::{StreamReader, stream_cipher};
use crate::writer::chunk_id;

/// An opened, authenticated bundle.
pub struct BundleReader<R: Read + Seek> {
    header: Header,
    trailer: Option<SignatureBlock>,
    stream: StreamReader<R>,
    manifest: Manifest,
    offsets: Vec<u64>,
    chunk_id_key: [u8; 32],
    decompressor: zstd::bulk::Decompressor<'static>,
    stored: Vec<u8>,
    limits: ReaderLimits,
}

/// Which trusted key signed the bundle [`BundleReader::open_verified`] read.
#[derive(Debug, Clone)]
pub struct VerifiedSigner {
    /// The trusted key that verified (an element of `trusted`).
    pub public_key: PublicKey,
    /// Where the signature was, its key id and trusted comment.
    pub verified: Verified,
}

impl<R: Read + Seek> BundleReader<R> {
    /// Authenticate the header with `unlock` and load the manifest, under
    /// the default [`ReaderLimits`].
    pub fn open(src: R, unlock: &Unlock) -> Result<Self> {
        Self::open_with(src, unlock, &ReaderLimits::default())
    }

    /// [`BundleReader::open`] under `limits`: every cap is checked before
    /// the reader allocates or derives for the value it caps.
    pub fn open_with(src: R, unlock: &Unlock, limits: &ReaderLimits) -> Result<Self> {
        Self::open_any(src, std::slice::from_ref(unlock), limits)
    }

    /// Open with whichever of `unlocks` opens a slot (tried in order).
    pub fn open_any(mut src: R, unlocks: &[Unlock], limits: &ReaderLimits) -> Result<Self> {
        let layout = Layout::read_with(&mut src, limits)?;
        Self::open_layout(src, layout, unlocks, limits)
    }

    /// Verify a signature and read the bundle **through the same handle**:
    /// the bytes imported are the bytes whose hash was verified.
    ///
    /// The prefix is parsed, every byte before any embedded trailer is
    /// hashed from `src`, and the embedded signature and/or `detached`
    /// (the content of `FILE.sig`, read by the caller, at most
    /// `limits.max_sig_len` bytes) must verify under one of `trusted`
    /// (SPEC.md §8); only then is a key tried and the payload read, from
    /// the same `src`. Verifying a path and then re-opening it is unsafe:
    /// between the two opens the path can be renamed, re-linked or replaced
    /// (a symlink swap, a sync client writing a new version), so the verified
    /// file and the imported file can differ. With one handle on a regular
    /// file both are the same inode; only a writer that has the file itself
    /// open for writing could still change it, and every segment it changes
    /// must still pass AES-GCM under the file key.
    pub fn open_verified(
        mut src: R,
        unlock: &Unlock,
        limits: &ReaderLimits,
        trusted: &[PublicKey],
        detached: Option<&[u8]>,
    ) -> Result<(Self, VerifiedSigner)> {
        let layout = Layout::read_with(&mut src, limits)?;
        let (i, verified) =
            crate::sign::verify_layout(&mut src, &layout, trusted, detached, None, limits)?;
        let signer = VerifiedSigner {
            public_key: trusted[i].clone(),
            verified,
        };
        let r = Self::open_layout(src, layout, std::slice::from_ref(unlock), limits)?;
        Ok((r, signer))
    }

    fn open_layout(
        src: R,
        layout: Layout,
        unlocks: &[Unlock],
        limits: &ReaderLimits,
    ) -> Result<Self> {
        let mut file_key = layout.header.unlock_any(unlocks, limits)?;
        let header = layout.header;
        let cipher = stream_cipher(&file_key, &header.core.stream_nonce.0);
        let mut stream = StreamReader::new(
            src,
            cipher,
            header.stream_aad(),
            layout.payload_start,
            layout.payload_end,
        )?;
        let p = stream.plain_len();
        if p < 8 {
            return Err(Error::PayloadAuth(
                "the payload is too short to hold a manifest".into(),
            ));
        }
        let mut footer = [0u8; 8];
        stream.read_at(p - 8, &mut footer)?;
        let mlen = u64::from_be_bytes(footer);
        if mlen > crate::format::MAX_MANIFEST_LEN || mlen > p - 8 {
            return Err(Error::MalformedManifest(format!(
                "manifest length {mlen} is impossible"
            )));
        }
        let mut mbytes = vec![0u8; mlen as usize];
        stream.read_at(p - 8 - mlen, &mut mbytes)?;
        let manifest: Manifest = parse_canonical(&mbytes).map_err(Error::MalformedManifest)?;
        limits.check_manifest(&manifest)?;
        let offsets = manifest.validate(&header.bundle_id(), p - 8 - mlen)?;
        let chunk_id_key = keys::derive(keys::CTX_CHUNK_ID, &[&file_key]);
        zeroize::Zeroize::zeroize(&mut file_key);
        Ok(BundleReader {
            header,
            trailer: layout.trailer,
            stream,
            manifest,
            offsets,
            chunk_id_key,
            decompressor: zstd::bulk::Decompressor::new()
                .map_err(Error::io("cannot start zstd"))?,
            stored: Vec::new(),
            limits: limits.clone(),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The limits this reader was opened with.
    pub fn limits(&self) -> &ReaderLimits {
        &self.limits
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn embedded_signature(&self) -> Option<&SignatureBlock> {
        self.trailer.as_ref()
    }

    /// Read, decompress and verify chunk `index`, appending its plaintext.
    pub fn read_chunk_into(&mut self, index: usize, out: &mut Vec<u8>) -> Result<()> {
        let Some(c) = self.manifest.chunks.get(index) else {
            return Err(Error::Usage(format!(
                "chunk {index} does not exist (the bundle has {})",
                self.manifest.chunks.len()
            )));
        };
        let (len, stored, codec) = (c.len, c.stored as usize, c.codec);
        let Some(kind) = RecordKind::from_u8(c.kind) else {
            return Err(Error::MalformedManifest(format!(
                "chunk {index} has an unknown kind"
            )));
        };
        let start = out.len();
        if codec == CODEC_ZSTD {
            self.stored.resize(stored, 0);
            self.stream.read_at(self.offsets[index], &mut self.stored)?;
            // Into the spare capacity after `start`: no zero-fill first.
            out.reserve(len as usize);
            let mut tail = std::io::Cursor::new(&mut *out);
            tail.set_position(start as u64);
            let n = self
                .decompressor
                .decompress_to_buffer(&self.stored, &mut tail)
                .map_err(|e| Error::Decompression {
                    index,
                    len,
                    why: e.to_string(),
                })?;
            if n != len as usize {
                return Err(Error::Decompression {
                    index,
                    len,
                    why: format!("it gave {n} bytes"),
                });
            }
        } else {
            out.resize(start + stored, 0);
            self.stream
                .read_at(self.offsets[index], &mut out[start..])?;
        }
        let id = chunk_id(&self.chunk_id_key, kind, &out[start..]);
        if id != self.manifest.chunks[index].id.0 {
            out.truncate(start);
            return Err(Error::ChunkMismatch { index });
        }
        Ok(())
    }

    /// Read record `n` whole (bounded by that record's size).
    pub fn read_record(&mut self, n: usize) -> Result<Record> {
        let Some(r) = self.manifest.records.get(n) else {
            return Err(Error::Usage(format!(
                "record {n} does not exist (the bundle has {})",
                self.manifest.records.len()
            )));
        };
        let Some(kind) = RecordKind::from_u8(r.kind) else {
            return Err(Error::MalformedManifest(format!(
                "record {n} has an unknown kind"
            )));
        };
        let (key, chunks, len) = (r.key.clone(), r.chunks.clone(), r.len);
        // `len` was checked against max_record at open; cap the up-front
        // allocation anyway so a reader with raised limits grows as it reads.
        let mut body = Vec::with_capacity(len.min(self.limits.max_record).min(64 << 20) as usize);
        for ci in chunks {
            self.read_chunk_into(ci as usize, &mut body)?;
            if body.len() as u64 > len {
                return Err(Error::MalformedManifest(format!(
                    "record {n} holds more than its declared {len} bytes"
                )));
            }
        }
        Ok(Record { kind, key, body })
    }

    /// Read and verify everything, returning the state.
    pub fn read_state(&mut self) -> Result<SessionState> {
        let mut j = Joiner::default();
        self.for_each_record(|r| j.push(&r).map_err(|e| Error::BadState(e.to_string())))?;
        j.finish().map_err(|e| Error::BadState(e.to_string()))
    }

    /// Stream every record to `f` in order, verifying as it goes. Memory is
    /// bounded by the largest record.
    /// The plaintext produced is capped by `max_total_plaintext` as it is
    /// read (a chunk listed many times counts each time).
    pub fn for_each_record(&mut self, mut f: impl FnMut(Record) -> Result<()>) -> Result<()> {
        let mut total = 0u64;
        for n in 0..self.manifest.records.len() {
            let r = self.read_record(n)?;
            total = total.saturating_add(r.body.len() as u64);
            if total > self.limits.max_total_plaintext {
                return Err(crate::limits::refuse(
                    crate::limits::Limit::TotalPlaintext,
                    format!("records 0..={n} decode to plaintext bytes in total"),
                    total,
                    self.limits.max_total_plaintext,
                ));
            }
            f(r)?;
        }
        Ok(())
    }

    pub fn into_inner(self) -> R {
        self.stream.into_inner()
    }
}

/// Open and read a whole state (default [`ReaderLimits`]).
pub fn unseal<R: Read + Seek>(src: R, unlock: &Unlock) -> Result<SessionState> {
    BundleReader::open(src, unlock)?.read_state()
}

/// [`unseal`] under `limits`.
pub fn unseal_with<R: Read + Seek>(
    src: R,
    unlock: &Unlock,
    limits: &ReaderLimits,
) -> Result<SessionState> {
    BundleReader::open_with(src, unlock, limits)?.read_state()
}
