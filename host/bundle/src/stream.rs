//! The payload STREAM (SPEC.md §5): AES-256-GCM over 64 KiB segments, nonce =
//! 88-bit segment counter ‖ last flag, AAD = hash of the header core.
//!
//! [`StreamWriter`] seals in one pass holding one segment. [`StreamReader`]
//! opens segments by index (random access, one-segment cache), so the reader
//! can fetch the manifest from the end and then chunks in any order with
//! bounded memory.

use std::io::{Read, Seek, SeekFrom, Write};

use aes_gcm::aead::Nonce;
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Tag};

use crate::error::{Error, Result};
use crate::keys;

/// Plaintext bytes per segment. Cost: 16 bytes of tag per segment (0.02 %);
/// smaller segments mean more tags and calls, larger ones more memory.
pub const SEGMENT: usize = 64 * 1024;
pub const TAG: usize = 16;
pub const SEGMENT_CT: usize = SEGMENT + TAG;

fn nonce(index: u64, last: bool) -> Nonce<Aes256Gcm> {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = last as u8;
    n.into()
}

pub(crate) fn stream_cipher(file_key: &[u8; 32], stream_nonce: &[u8; 16]) -> Aes256Gcm {
    Aes256Gcm::new_from_slice(&keys::derive(keys::CTX_STREAM, &[file_key, stream_nonce])).unwrap()
}

/// Seal one segment in place (appends the tag).
pub(crate) fn seal_segment(
    c: &Aes256Gcm,
    aad: &[u8; 32],
    index: u64,
    last: bool,
    buf: &mut Vec<u8>,
) {
    let tag = c
        .encrypt_inout_detached(&nonce(index, last), aad, buf.as_mut_slice().into())
        .expect("a segment is within AES-GCM limits");
    buf.extend_from_slice(&tag);
}

/// Open one segment in place (removes the tag), or fail.
pub(crate) fn open_segment(
    c: &Aes256Gcm,
    aad: &[u8; 32],
    index: u64,
    last: bool,
    buf: &mut Vec<u8>,
) -> bool {
    if buf.len() < TAG {
        return false;
    }
    let split = buf.len() - TAG;
    let tag = Tag::try_from(&buf[split..]).unwrap();
    let ok = c
        .decrypt_inout_detached(&nonce(index, last), aad, (&mut buf[..split]).into(), &tag)
        .is_ok();
    buf.truncate(split);
    ok
}

/// Seals a plaintext stream. Call [`StreamWriter::finish`]: the last segment
/// is only sealed then, with the last flag.
pub struct StreamWriter<W: Write> {
    out: W,
    cipher: Aes256Gcm,
    aad: [u8; 32],
    index: u64,
    buf: Vec<u8>,
    pub(crate) written: u64,
}

impl<W: Write> StreamWriter<W> {
    pub(crate) fn new(out: W, cipher: Aes256Gcm, aad: [u8; 32]) -> Self {
        StreamWriter {
            out,
            cipher,
            aad,
            index: 0,
            buf: Vec::with_capacity(SEGMENT_CT),
            written: 0,
        }
    }

    pub(crate) fn write_all(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            if self.buf.len() == SEGMENT {
                self.flush_segment(false)?;
            }
            let n = (SEGMENT - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            self.written += n as u64;
        }
        Ok(())
    }

    fn flush_segment(&mut self, last: bool) -> Result<()> {
        seal_segment(&self.cipher, &self.aad, self.index, last, &mut self.buf);
        self.out
            .write_all(&self.buf)
            .map_err(Error::io("cannot write the bundle"))?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<W> {
        debug_assert!(
            !self.buf.is_empty(),
            "the payload always ends with the manifest length"
        );
        self.flush_segment(true)?;
        Ok(self.out)
    }
}

/// Random access to the plaintext of a sealed stream.
pub struct StreamReader<R: Read + Seek> {
    src: R,
    cipher: Aes256Gcm,
    aad: [u8; 32],
    start: u64,
    segments: u64,
    plain_len: u64,
    cache_index: u64,
    cache: Vec<u8>,
}

impl<R: Read + Seek> StreamReader<R> {
    /// `start..end` is the ciphertext range in `src`.
    pub(crate) fn new(
        src: R,
        cipher: Aes256Gcm,
        aad: [u8; 32],
        start: u64,
        end: u64,
    ) -> Result<Self> {
        let len = end.saturating_sub(start);
        let segments = len.div_ceil(SEGMENT_CT as u64);
        let last_ct = len - segments.saturating_sub(1) * SEGMENT_CT as u64;
        if segments == 0 || last_ct <= TAG as u64 {
            return Err(Error::PayloadAuth(format!(
                "the payload is {len} bytes, which is not a whole number of segments (truncated?)"
            )));
        }
        let plain_len = (segments - 1) * SEGMENT as u64 + (last_ct - TAG as u64);
        Ok(StreamReader {
            src,
            cipher,
            aad,
            start,
            segments,
            plain_len,
            cache_index: u64::MAX,
            cache: Vec::with_capacity(SEGMENT_CT),
        })
    }

    pub fn plain_len(&self) -> u64 {
        self.plain_len
    }

    fn load(&mut self, i: u64) -> Result<()> {
        if self.cache_index == i {
            return Ok(());
        }
        self.cache_index = u64::MAX;
        let last = i + 1 == self.segments;
        let ct_len = if last {
            (self.plain_len - i * SEGMENT as u64) as usize + TAG
        } else {
            SEGMENT_CT
        };
        self.cache.resize(ct_len, 0);
        self.src
            .seek(SeekFrom::Start(self.start + i * SEGMENT_CT as u64))
            .map_err(Error::io("cannot read the bundle"))?;
        self.src
            .read_exact(&mut self.cache)
            .map_err(Error::io("cannot read the bundle"))?;
        if !open_segment(&self.cipher, &self.aad, i, last, &mut self.cache) {
            return Err(Error::PayloadAuth(if last {
                format!("segment {i} is not a valid last segment (truncated, reordered or altered)")
            } else {
                format!(
                    "segment {i} of {} does not authenticate (altered, reordered or from another bundle)",
                    self.segments
                )
            }));
        }
        self.cache_index = i;
        Ok(())
    }

    /// Fill `out` with plaintext starting at `offset`.
    pub(crate) fn read_at(&mut self, mut offset: u64, mut out: &mut [u8]) -> Result<()> {
        if offset + out.len() as u64 > self.plain_len {
            return Err(Error::MalformedManifest(
                "a range points past the end of the payload".into(),
            ));
        }
        while !out.is_empty() {
            let i = offset / SEGMENT as u64;
            self.load(i)?;
            let within = (offset % SEGMENT as u64) as usize;
            let n = (self.cache.len() - within).min(out.len());
            out[..n].copy_from_slice(&self.cache[within..within + n]);
            out = &mut out[n..];
            offset += n as u64;
        }
        Ok(())
    }

    pub(crate) fn into_inner(self) -> R {
        self.src
    }
}
