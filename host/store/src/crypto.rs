//! Keys and the two sealed object kinds: chunks and small records
//! (snapshot manifests, session records).
//!
//! Scheme (research/format.md §2 "Store chunks"):
//! - Subkeys of the 32-byte [`RepoKey`] via `blake3::derive_key` with the
//!   fixed contexts below.
//! - Chunk id = keyed BLAKE3(id_key, kind || plaintext). Keyed, so that an
//!   outsider cannot confirm that a known value is stored.
//! - Chunk key = derive_key(CTX_CHUNK_KEY, enc_key || chunk_id); AES-256-GCM
//!   with nonce 0 (each key encrypts exactly one plaintext, so ciphertext is
//!   deterministic and dedupable, and there is no nonce state).
//!   AAD = "sesshost-store/v1/chunk\0" || kind || id || u32 len || codec.
//! - Chunk object = "SHSC" | version 1 | kind | codec | u32 LE plaintext
//!   length | ciphertext+tag. zstd (level [`ZSTD_LEVEL`]) when the kind is
//!   compressible and it saves at least 5 %.
//! - On read: the object must be named by the expected id, have the expected
//!   kind and length, authenticate, decompress to exactly the stated length,
//!   and re-hash to its id. So a chunk can never be read as another id or
//!   kind, even by someone who can swap files.
//! - Records (manifests, session records) = "SHSR" | version 1 | 32-byte
//!   random salt | ciphertext+tag, key = derive_key(CTX_RECORD_KEY,
//!   record_key || salt), nonce 0 (a fresh key per write, so no nonce
//!   bound applies), AAD = a domain string naming what the record is and
//!   where it lives (session name, snapshot number): a manifest cannot be
//!   moved to another session or position.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::Nonce as AeadNonce;
use aes_gcm::aead::{Aead, KeyInit, Payload};

use sessbundle::format::MAX_CHUNK_LEN;
use sessbundle::records::RecordKind;

use crate::error::{Result, StoreError};

const CTX_ID: &str = "sesshost store v1 2026-11-22 chunk-id";
const CTX_ENC: &str = "sesshost store v1 2026-11-22 chunk-enc";
const CTX_CHUNK_KEY: &str = "sesshost store v1 2026-11-22 chunk-key";
const CTX_RECORD: &str = "sesshost store v1 2026-11-22 record";
const CTX_RECORD_KEY: &str = "sesshost store v1 2026-11-22 record-key";

const CHUNK_MAGIC: &[u8; 4] = b"SHSC";
const RECORD_MAGIC: &[u8; 4] = b"SHSR";
const VERSION: u8 = 1;
const CHUNK_HEADER: usize = 4 + 1 + 1 + 1 + 4;
const RECORD_HEADER: usize = 4 + 1 + 32;

/// zstd level for chunks. Cost: level 3 runs ~230 MB/s on one core (level 1
/// ~370 MB/s) for ~2 % better ratio on session JSON/msgpack.
pub const ZSTD_LEVEL: i32 = 3;

/// Largest sealed record (manifest) accepted on read: 64 MiB.
const MAX_RECORD_LEN: usize = 64 * 1024 * 1024;

const CODEC_RAW: u8 = 0;
const CODEC_ZSTD: u8 = 1;

/// The store's 32-byte master key. Never printed (Debug is redacted).
#[derive(Clone)]
pub struct RepoKey([u8; 32]);

impl std::fmt::Debug for RepoKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RepoKey(<redacted>)")
    }
}

impl RepoKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        RepoKey(bytes)
    }

    /// A fresh key from the OS's CSPRNG.
    pub fn generate() -> Result<Self> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).map_err(|e| StoreError::State(format!("no OS randomness: {e}")))?;
        Ok(RepoKey(k))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A chunk id: keyed BLAKE3 of kind || plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(pub [u8; 32]);

impl ChunkId {
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        blake3::Hash::from_hex(s)
            .ok()
            .map(|h| ChunkId(*h.as_bytes()))
    }

    /// The backend key: `chunks/<first 2 hex>/<64 hex>`.
    pub fn object_key(&self) -> String {
        let h = self.to_hex();
        format!("chunks/{}/{}", &h[..2], h)
    }
}

/// The subkeys derived from a [`RepoKey`].
#[derive(Clone)]
pub(crate) struct Keys {
    id: [u8; 32],
    enc: [u8; 32],
    record: [u8; 32],
}

/// A chunk sealed for storage.
pub(crate) struct SealedChunk {
    #[cfg_attr(not(test), allow(dead_code))]
    pub id: ChunkId,
    pub object: Vec<u8>,
}

impl Keys {
    pub fn new(k: &RepoKey) -> Self {
        Keys {
            id: blake3::derive_key(CTX_ID, &k.0),
            enc: blake3::derive_key(CTX_ENC, &k.0),
            record: blake3::derive_key(CTX_RECORD, &k.0),
        }
    }

    pub fn chunk_id(&self, kind: RecordKind, plain: &[u8]) -> ChunkId {
        let mut h = blake3::Hasher::new_keyed(&self.id);
        h.update(&[kind as u8]);
        h.update(plain);
        ChunkId(*h.finalize().as_bytes())
    }

    fn chunk_cipher(&self, id: &ChunkId) -> Aes256Gcm {
        let mut material = [0u8; 64];
        material[..32].copy_from_slice(&self.enc);
        material[32..].copy_from_slice(&id.0);
        let k = blake3::derive_key(CTX_CHUNK_KEY, &material);
        Aes256Gcm::new_from_slice(&k).expect("32-byte key")
    }

    /// Seals one chunk; `id` may be passed when the caller already has it.
    pub fn seal_chunk(&self, kind: RecordKind, plain: &[u8], id: Option<ChunkId>) -> SealedChunk {
        assert!(plain.len() <= MAX_CHUNK_LEN, "chunk over MAX_CHUNK_LEN");
        let id = id.unwrap_or_else(|| self.chunk_id(kind, plain));
        let compressed = if kind.compressible() && plain.len() >= 64 {
            zstd::bulk::compress(plain, ZSTD_LEVEL)
                .ok()
                .filter(|c| c.len() * 100 <= plain.len() * 95)
        } else {
            None
        };
        let (codec, body) = match &compressed {
            Some(c) => (CODEC_ZSTD, c.as_slice()),
            None => (CODEC_RAW, plain),
        };
        let len = plain.len() as u32;
        let aad = chunk_aad(kind, &id, len, codec);
        let ct = self
            .chunk_cipher(&id)
            .encrypt(
                &AeadNonce::<Aes256Gcm>::default(),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption of a bounded chunk cannot fail");
        let mut object = Vec::with_capacity(CHUNK_HEADER + ct.len());
        object.extend_from_slice(CHUNK_MAGIC);
        object.push(VERSION);
        object.push(kind as u8);
        object.push(codec);
        object.extend_from_slice(&len.to_le_bytes());
        object.extend_from_slice(&ct);
        SealedChunk { id, object }
    }

    /// Opens a chunk object that must be chunk `id` of kind `kind` with
    /// `len` plaintext bytes.
    pub fn open_chunk(
        &self,
        id: &ChunkId,
        kind: RecordKind,
        len: u32,
        object: &[u8],
    ) -> Result<Vec<u8>> {
        let what = || format!("chunk {}", id.to_hex());
        if object.len() < CHUNK_HEADER + 16 || &object[..4] != CHUNK_MAGIC {
            return Err(StoreError::corrupt(what(), "not a chunk object"));
        }
        if object[4] != VERSION {
            return Err(StoreError::corrupt(
                what(),
                format!("unknown chunk version {}", object[4]),
            ));
        }
        if object[5] != kind as u8 {
            return Err(StoreError::corrupt(
                what(),
                format!(
                    "holds a {} chunk where a {} chunk was expected",
                    object[5],
                    kind.name()
                ),
            ));
        }
        let codec = object[6];
        let stored_len = u32::from_le_bytes(object[7..11].try_into().expect("4 bytes"));
        if stored_len != len || len as usize > MAX_CHUNK_LEN {
            return Err(StoreError::corrupt(
                what(),
                "length does not match the manifest",
            ));
        }
        let aad = chunk_aad(kind, id, len, codec);
        let body = self
            .chunk_cipher(id)
            .decrypt(
                &AeadNonce::<Aes256Gcm>::default(),
                Payload {
                    msg: &object[CHUNK_HEADER..],
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::corrupt(what(), "authentication failed"))?;
        let plain = match codec {
            CODEC_RAW => body,
            CODEC_ZSTD => zstd::bulk::decompress(&body, len as usize)
                .map_err(|e| StoreError::corrupt(what(), format!("does not decompress: {e}")))?,
            c => return Err(StoreError::corrupt(what(), format!("unknown codec {c}"))),
        };
        if plain.len() != len as usize {
            return Err(StoreError::corrupt(what(), "decompressed length differs"));
        }
        if self.chunk_id(kind, &plain) != *id {
            return Err(StoreError::corrupt(
                what(),
                "content does not hash to its id",
            ));
        }
        Ok(plain)
    }

    /// Seals a small record under a fresh key; `aad` names what and where
    /// the record is.
    pub fn seal_record(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt)
            .map_err(|e| StoreError::State(format!("no OS randomness: {e}")))?;
        let ct = self
            .record_cipher(&salt)
            .encrypt(
                &AeadNonce::<Aes256Gcm>::default(),
                Payload { msg: plain, aad },
            )
            .expect("AES-GCM encryption of a bounded record cannot fail");
        let mut out = Vec::with_capacity(RECORD_HEADER + ct.len());
        out.extend_from_slice(RECORD_MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&salt);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn open_record(&self, what: &str, aad: &[u8], object: &[u8]) -> Result<Vec<u8>> {
        if object.len() < RECORD_HEADER + 16
            || object.len() > MAX_RECORD_LEN
            || &object[..4] != RECORD_MAGIC
        {
            return Err(StoreError::corrupt(what, "not a sealed record"));
        }
        if object[4] != VERSION {
            return Err(StoreError::corrupt(
                what,
                format!("unknown record version {}", object[4]),
            ));
        }
        let salt: [u8; 32] = object[5..37].try_into().expect("32 bytes");
        self.record_cipher(&salt)
            .decrypt(
                &AeadNonce::<Aes256Gcm>::default(),
                Payload {
                    msg: &object[RECORD_HEADER..],
                    aad,
                },
            )
            .map_err(|_| StoreError::corrupt(what, "authentication failed"))
    }

    fn record_cipher(&self, salt: &[u8; 32]) -> Aes256Gcm {
        let mut material = [0u8; 64];
        material[..32].copy_from_slice(&self.record);
        material[32..].copy_from_slice(salt);
        let k = blake3::derive_key(CTX_RECORD_KEY, &material);
        Aes256Gcm::new_from_slice(&k).expect("32-byte key")
    }
}

fn chunk_aad(kind: RecordKind, id: &ChunkId, len: u32, codec: u8) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64);
    aad.extend_from_slice(b"sesshost-store/v1/chunk\0");
    aad.push(kind as u8);
    aad.extend_from_slice(&id.0);
    aad.extend_from_slice(&len.to_le_bytes());
    aad.push(codec);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(&RepoKey::from_bytes([7; 32]))
    }

    #[test]
    fn chunk_round_trip_and_dedup_determinism() {
        let k = keys();
        let plain = b"{\"a\":1}".repeat(100);
        let a = k.seal_chunk(RecordKind::Origin, &plain, None);
        let b = k.seal_chunk(RecordKind::Origin, &plain, None);
        assert_eq!(a.id, b.id);
        assert_eq!(a.object, b.object, "deterministic, so dedupable");
        assert_eq!(a.object[6], CODEC_ZSTD);
        let back = k
            .open_chunk(&a.id, RecordKind::Origin, plain.len() as u32, &a.object)
            .unwrap();
        assert_eq!(back, plain);
        // Tabs are never compressed.
        let t = k.seal_chunk(RecordKind::Tab, &plain, None);
        assert_eq!(t.object[6], CODEC_RAW);
    }

    #[test]
    fn chunk_cannot_be_read_as_another_kind_or_id_or_key() {
        let k = keys();
        let plain = b"secret-cookie-value".to_vec();
        let a = k.seal_chunk(RecordKind::Cookies, &plain, None);
        let len = plain.len() as u32;
        assert!(
            k.open_chunk(&a.id, RecordKind::Origin, len, &a.object)
                .unwrap_err()
                .is_corrupt()
        );
        // Relabel the kind byte: the AAD no longer matches.
        let mut relabeled = a.object.clone();
        relabeled[5] = RecordKind::Origin as u8;
        assert!(
            k.open_chunk(&a.id, RecordKind::Origin, len, &relabeled)
                .is_err()
        );
        let other = k.seal_chunk(RecordKind::Cookies, b"other", None);
        assert!(
            k.open_chunk(&other.id, RecordKind::Cookies, len, &a.object)
                .is_err()
        );
        let mut flipped = a.object.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(
            k.open_chunk(&a.id, RecordKind::Cookies, len, &flipped)
                .is_err()
        );
        let k2 = Keys::new(&RepoKey::from_bytes([8; 32]));
        assert!(
            k2.open_chunk(&a.id, RecordKind::Cookies, len, &a.object)
                .is_err()
        );
        // Plaintext never appears in the object.
        assert!(!a.object.windows(plain.len()).any(|w| w == plain));
    }

    #[test]
    fn record_binds_its_aad() {
        let k = keys();
        let sealed = k.seal_record(b"manifest a 1", b"hello").unwrap();
        assert_eq!(
            k.open_record("m", b"manifest a 1", &sealed).unwrap(),
            b"hello"
        );
        assert!(k.open_record("m", b"manifest b 1", &sealed).is_err());
        let again = k.seal_record(b"manifest a 1", b"hello").unwrap();
        assert_ne!(sealed, again, "fresh salt per write");
    }

    #[test]
    fn ids_are_keyed_and_typed() {
        let k = keys();
        let k2 = Keys::new(&RepoKey::from_bytes([9; 32]));
        assert_ne!(
            k.chunk_id(RecordKind::Origin, b"x"),
            k2.chunk_id(RecordKind::Origin, b"x")
        );
        assert_ne!(
            k.chunk_id(RecordKind::Origin, b"x"),
            k.chunk_id(RecordKind::Tab, b"x")
        );
        let id = k.chunk_id(RecordKind::Origin, b"x");
        assert_eq!(ChunkId::from_hex(&id.to_hex()), Some(id));
        assert!(
            id.object_key()
                .starts_with(&format!("chunks/{}/", &id.to_hex()[..2]))
        );
    }
}
