//! Opening a bundle: header → key slot → header tag → last segment →
//! manifest → chunks on demand, each re-hashed against its id (SPEC.md §6.3).
//! Memory stays bounded by one segment, one chunk and one record.

use std::io::{Read, Seek};

use crate::error::{Error, Result};
use crate::format::{Header, Layout, parse_canonical};
use crate::keys::{self, Unlock};
use crate::manifest::{CODEC_ZSTD, Manifest};
use crate::records::{Joiner, Record, RecordKind};
use crate::sign::SignatureBlock;
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
}

impl<R: Read + Seek> BundleReader<R> {
    /// Authenticate the header with `unlock` and load the manifest.
    pub fn open(mut src: R, unlock: &Unlock) -> Result<Self> {
        let layout = Layout::read(&mut src)?;
        let file_key = layout.header.unlock(unlock)?;
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
        let offsets = manifest.validate(&header.bundle_id(), p - 8 - mlen)?;
        Ok(BundleReader {
            header,
            trailer: layout.trailer,
            stream,
            manifest,
            offsets,
            chunk_id_key: keys::derive(keys::CTX_CHUNK_ID, &[&file_key]),
            decompressor: zstd::bulk::Decompressor::new()
                .map_err(Error::io("cannot start zstd"))?,
            stored: Vec::new(),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn embedded_signature(&self) -> Option<&SignatureBlock> {
        self.trailer.as_ref()
    }

    /// Read, decompress and verify chunk `index`, appending its plaintext.
    pub fn read_chunk_into(&mut self, index: usize, out: &mut Vec<u8>) -> Result<()> {
        let c = &self.manifest.chunks[index];
        let (len, stored, codec) = (c.len, c.stored as usize, c.codec);
        let kind = RecordKind::from_u8(c.kind).expect("validated");
        let start = out.len();
        if codec == CODEC_ZSTD {
            self.stored.resize(stored, 0);
            self.stream.read_at(self.offsets[index], &mut self.stored)?;
            out.resize(start + len as usize, 0);
            let n = self
                .decompressor
                .decompress_to_buffer(&self.stored, &mut out[start..])
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
        let r = &self.manifest.records[n];
        let (kind, key, chunks) = (
            RecordKind::from_u8(r.kind).expect("validated"),
            r.key.clone(),
            r.chunks.clone(),
        );
        let mut body = Vec::with_capacity(r.len.min(1 << 30) as usize);
        for ci in chunks {
            self.read_chunk_into(ci as usize, &mut body)?;
        }
        Ok(Record { kind, key, body })
    }

    /// Read and verify everything, returning the state.
    pub fn read_state(&mut self) -> Result<SessionState> {
        let mut j = Joiner::default();
        for n in 0..self.manifest.records.len() {
            let r = self.read_record(n)?;
            j.push(&r).map_err(|e| Error::BadState(e.to_string()))?;
        }
        j.finish().map_err(|e| Error::BadState(e.to_string()))
    }

    /// Stream every record to `f` in order, verifying as it goes. Memory is
    /// bounded by the largest record.
    pub fn for_each_record(&mut self, mut f: impl FnMut(Record) -> Result<()>) -> Result<()> {
        for n in 0..self.manifest.records.len() {
            f(self.read_record(n)?)?;
        }
        Ok(())
    }

    pub fn into_inner(self) -> R {
        self.stream.into_inner()
    }
}

/// Open and read a whole state.
pub fn unseal<R: Read + Seek>(src: R, unlock: &Unlock) -> Result<SessionState> {
    BundleReader::open(src, unlock)?.read_state()
}
