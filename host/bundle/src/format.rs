//! The fixed parts of a bundle: magic, version, header (strict, canonical
//! MessagePack), header tag, and the layout of a file on disk (where the
//! payload starts and ends, whether a signature trailer is present).
//! SPEC.md §2–§4, §8 (trailer).

use std::io::{Read, Seek, SeekFrom};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keys::{self, Argon2Params, Randomness, SlotSpec, ToSlotSpec, Unlock};
use crate::limits::{Limit, ReaderLimits, refuse};
use crate::sign::SignatureBlock;

pub const MAGIC: [u8; 8] = [0x89, b'S', b'B', b'D', b'L', 0x0D, 0x0A, 0x1A];
pub const TRAILER_MAGIC: [u8; 8] = [0x89, b'S', b'B', b'S', b'I', b'G', 0x0D, 0x0A];
pub const MAJOR: u16 = 1;
pub const MINOR: u16 = 0;
pub const SUITE: &str = "argon2id-aes256gcm-blake3-ed25519";
pub const MAX_HEADER_LEN: usize = 64 * 1024;
pub const MAX_SLOTS: usize = 16;
/// At most this many Argon2id slots are tried (each costs a KDF run).
pub const MAX_ARGON2_TRIES: usize = 4;
pub const MAX_TRAILER_BLOCK: usize = 4096;
/// Largest chunk plaintext a reader accepts.
pub const MAX_CHUNK_LEN: usize = 1024 * 1024;
pub const MAX_MANIFEST_LEN: u64 = 64 * 1024 * 1024;
pub const TAG_LEN: usize = 32;

/// A fixed-size byte string, MessagePack `bin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bin<const N: usize>(pub [u8; N]);

impl<const N: usize> Serialize for Bin<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de, const N: usize> Deserialize<'de> for Bin<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<const N: usize>;
        impl<const N: usize> serde::de::Visitor<'_> for V<N> {
            type Value = Bin<N>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "{N} bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> std::result::Result<Bin<N>, E> {
                v.try_into()
                    .map(Bin)
                    .map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(V::<N>)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Core {
    pub suite: String,
    pub bundle_id: Bin<16>,
    pub stream_nonce: Bin<16>,
    pub critical: Vec<String>,
}

/// A key slot (SPEC.md §3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum Slot {
    #[serde(rename = "argon2id")]
    Argon2id {
        salt: Bin<16>,
        m_kib: u32,
        t: u32,
        p: u32,
        wrapped: Bin<48>,
    },
    #[serde(rename = "key")]
    Key {
        key_id: Bin<8>,
        salt: Bin<16>,
        wrapped: Bin<48>,
    },
    /// SPEC.md §3.2 (format 1.1): sealed to an X25519 recipient. `epk` is
    /// the slot's ephemeral public key; nothing names the recipient.
    #[serde(rename = "x25519")]
    X25519 { epk: Bin<32>, wrapped: Bin<48> },
}

impl Slot {
    pub fn describe(&self) -> String {
        match self {
            Slot::Argon2id { m_kib, t, p, .. } => {
                format!("passphrase (Argon2id m={m_kib} KiB t={t} p={p})")
            }
            Slot::Key { key_id, .. } => format!("key file {}", keys::hex(&key_id.0)),
            Slot::X25519 { .. } => "recipient (X25519 identity)".into(),
        }
    }

    /// The `host` flag that passes a key for this kind of slot.
    pub fn flag(&self) -> &'static str {
        match self {
            Slot::Argon2id { .. } => "--passphrase-file or --passphrase-env",
            Slot::Key { .. } => "--key-file",
            Slot::X25519 { .. } => "--identity",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderRepr {
    core: Core,
    slots: Vec<Slot>,
}

/// A parsed header and the exact bytes it came from.
#[derive(Debug, Clone)]
pub struct Header {
    pub(crate) core: Core,
    pub slots: Vec<Slot>,
    /// magic ‖ version ‖ header_len ‖ header: what the tag and signature cover first.
    pub(crate) prefix: Vec<u8>,
    pub tag: [u8; TAG_LEN],
    pub minor: u16,
}

impl Header {
    pub fn bundle_id(&self) -> [u8; 16] {
        self.core.bundle_id.0
    }
    /// Total bytes before the payload.
    pub fn len(&self) -> usize {
        self.prefix.len() + TAG_LEN
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    /// The stream AAD: BLAKE3(magic ‖ major ‖ minor ‖ core).
    pub(crate) fn stream_aad(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(&self.prefix[..12]);
        h.update(&to_msgpack(&self.core));
        *h.finalize().as_bytes()
    }

    /// Build a new header: fresh bundle id, stream nonce, file key and one
    /// slot per unlock. Returns the header (prefix and tag computed) and the
    /// file key.
    pub(crate) fn create<S: ToSlotSpec>(
        unlocks: &[S],
        argon2: Argon2Params,
        rng: &mut dyn Randomness,
    ) -> Result<(Header, [u8; 32])> {
        if unlocks.is_empty() {
            return Err(Error::Usage(
                "a bundle needs at least one key: pass --passphrase-file, --passphrase-env or --key-file".into(),
            ));
        }
        check_not_too_many(unlocks.len())?;
        argon2.check()?;
        let file_key: [u8; 32] = keys::random(rng);
        let core = Core {
            suite: SUITE.into(),
            bundle_id: Bin(keys::random(rng)),
            stream_nonce: Bin(keys::random(rng)),
            critical: vec![],
        };
        let slots = make_slots(unlocks, argon2, &file_key, &core.bundle_id.0, rng)?;
        Ok((Header::assemble(core, slots, &file_key), file_key))
    }

    pub(crate) fn assemble(core: Core, slots: Vec<Slot>, file_key: &[u8; 32]) -> Header {
        let body = to_msgpack(&HeaderRepr {
            core: core.clone(),
            slots: slots.clone(),
        });
        let mut prefix = Vec::with_capacity(16 + body.len());
        prefix.extend_from_slice(&MAGIC);
        prefix.extend_from_slice(&MAJOR.to_be_bytes());
        prefix.extend_from_slice(&MINOR.to_be_bytes());
        prefix.extend_from_slice(&(body.len() as u32).to_be_bytes());
        prefix.extend_from_slice(&body);
        let tag = header_tag(file_key, &prefix);
        Header {
            core,
            slots,
            prefix,
            tag,
            minor: MINOR,
        }
    }

    /// A copy of this header with another slot list (key rotation); the
    /// payload stays valid because the stream AAD covers only the core.
    pub(crate) fn with_slots(&self, slots: Vec<Slot>, file_key: &[u8; 32]) -> Header {
        Header::assemble(self.core.clone(), slots, file_key)
    }

    pub(crate) fn bytes(&self) -> Vec<u8> {
        [self.prefix.as_slice(), &self.tag].concat()
    }

    /// Read and strictly parse the header (no key needed; nothing here is
    /// authenticated until [`Header::unlock`]).
    pub fn read_from(r: &mut impl Read) -> Result<Header> {
        Self::read_from_with(r, &ReaderLimits::default())
    }

    /// [`Header::read_from`] under `limits` (`max_header_len` is checked
    /// before the header is allocated).
    pub fn read_from_with(r: &mut impl Read, limits: &ReaderLimits) -> Result<Header> {
        let mut fixed = [0u8; 16];
        r.read_exact(&mut fixed)
            .map_err(|e| short(e, "the file is shorter than a bundle header"))?;
        if fixed[..8] != MAGIC {
            return Err(Error::NotABundle);
        }
        let major = u16::from_be_bytes([fixed[8], fixed[9]]);
        let minor = u16::from_be_bytes([fixed[10], fixed[11]]);
        if major != MAJOR {
            return Err(Error::UnsupportedVersion { major, minor });
        }
        let len = u32::from_be_bytes([fixed[12], fixed[13], fixed[14], fixed[15]]) as usize;
        if len == 0 || len > MAX_HEADER_LEN {
            return Err(Error::MalformedHeader(format!(
                "header length {len} is outside 1..={MAX_HEADER_LEN}"
            )));
        }
        if len as u64 > limits.max_header_len {
            return Err(refuse(
                Limit::HeaderLen,
                "the header is this many bytes".into(),
                len as u64,
                limits.max_header_len,
            ));
        }
        let mut prefix = vec![0u8; 16 + len];
        prefix[..16].copy_from_slice(&fixed);
        r.read_exact(&mut prefix[16..])
            .map_err(|e| short(e, "the file ends inside its header"))?;
        let mut tag = [0u8; TAG_LEN];
        r.read_exact(&mut tag)
            .map_err(|e| short(e, "the file ends before its header tag"))?;
        let repr: HeaderRepr = parse_canonical(&prefix[16..]).map_err(Error::MalformedHeader)?;
        if repr.core.suite != SUITE {
            return Err(Error::MalformedHeader(format!(
                "unknown suite {:?}",
                repr.core.suite
            )));
        }
        if let Some(c) = repr.core.critical.first() {
            return Err(Error::MalformedHeader(format!(
                "unknown critical field {c:?}: this bundle needs a newer reader"
            )));
        }
        if repr.slots.is_empty() || repr.slots.len() > MAX_SLOTS {
            return Err(Error::MalformedHeader(format!(
                "{} key slots (1..={MAX_SLOTS} allowed)",
                repr.slots.len()
            )));
        }
        Ok(Header {
            core: repr.core,
            slots: repr.slots,
            prefix,
            tag,
            minor,
        })
    }

    /// Find the file key with `unlock` and verify the header tag.
    pub fn unlock(&self, unlock: &Unlock) -> Result<[u8; 32]> {
        self.unlock_with(unlock, &ReaderLimits::default())
    }

    /// [`Header::unlock`] under `limits`: Argon2id parameters are checked
    /// against them before each KDF run, and at most
    /// `max_argon2_tries` passphrase / `max_slot_tries` other slots are tried.
    pub fn unlock_with(&self, unlock: &Unlock, limits: &ReaderLimits) -> Result<[u8; 32]> {
        self.unlock_any(std::slice::from_ref(unlock), limits)
    }

    /// Try each of `unlocks` in turn (e.g. an identity and a passphrase);
    /// the first that opens a slot wins. Errors other than "no slot matched"
    /// (a limit, a KDF refusal) stop the search.
    pub fn unlock_any(&self, unlocks: &[Unlock], limits: &ReaderLimits) -> Result<[u8; 32]> {
        let mut tried_any = false;
        let mut found = None;
        for u in unlocks {
            let (tried, key) = self.try_unlock(u, limits)?;
            tried_any |= tried;
            if key.is_some() {
                found = key;
                break;
            }
        }
        if !tried_any {
            let available = self
                .slots
                .iter()
                .map(Slot::describe)
                .collect::<Vec<_>>()
                .join(", ");
            let mut flags: Vec<&str> = self.slots.iter().map(Slot::flag).collect();
            flags.sort_unstable();
            flags.dedup();
            return Err(Error::NoSlotForKeyKind {
                available,
                hint: flags.join(" or "),
            });
        }
        let file_key = found.ok_or(Error::NoMatchingKey)?;
        if !constant_time_eq(&header_tag(&file_key, &self.prefix), &self.tag) {
            return Err(Error::HeaderAuth);
        }
        Ok(file_key)
    }

    /// (whether any slot of this key's kind exists, the file key if one opened).
    fn try_unlock(
        &self,
        unlock: &Unlock,
        limits: &ReaderLimits,
    ) -> Result<(bool, Option<[u8; 32]>)> {
        let id = &self.core.bundle_id.0;
        let (mut kind_seen, mut argon_tries, mut tries) = (false, 0usize, 0usize);
        for s in &self.slots {
            let key = match (unlock, s) {
                (
                    Unlock::Key(k),
                    Slot::Key {
                        key_id,
                        salt,
                        wrapped,
                    },
                ) => {
                    kind_seen = true;
                    if key_id.0 != k.key_id() {
                        continue;
                    }
                    tries += 1;
                    if tries > limits.max_slot_tries {
                        break;
                    }
                    keys::unwrap_file_key(&k.kek(&salt.0), &wrapped.0, id)
                }
                (
                    Unlock::Passphrase(p),
                    Slot::Argon2id {
                        salt,
                        m_kib,
                        t,
                        p: lanes,
                        wrapped,
                    },
                ) => {
                    kind_seen = true;
                    let params = Argon2Params {
                        m_kib: *m_kib,
                        t: *t,
                        p: *lanes,
                    };
                    limits.check_argon2(&params)?;
                    argon_tries += 1;
                    if argon_tries > limits.max_argon2_tries {
                        break;
                    }
                    let mut kek = params.derive_kek(p.as_bytes(), &salt.0)?;
                    let r = keys::unwrap_file_key(&kek, &wrapped.0, id);
                    zeroize::Zeroize::zeroize(&mut kek);
                    r
                }
                (Unlock::Identity(i), Slot::X25519 { epk, wrapped }) => {
                    kind_seen = true;
                    tries += 1;
                    if tries > limits.max_slot_tries {
                        break;
                    }
                    crate::recipient::unwrap_with(i, &epk.0, &wrapped.0, id)
                }
                _ => continue,
            };
            if key.is_some() {
                return Ok((true, key));
            }
        }
        Ok((kind_seen, None))
    }
}

fn make_slot(
    u: &SlotSpec,
    argon2: Argon2Params,
    file_key: &[u8; 32],
    bundle_id: &[u8; 16],
    rng: &mut dyn Randomness,
) -> Result<Slot> {
    let salt: [u8; 16] = keys::random(rng);
    Ok(match u {
        SlotSpec::Passphrase(p) => {
            if p.is_empty() {
                return Err(Error::Usage(
                    "the passphrase is empty: choose a non-empty passphrase".into(),
                ));
            }
            let kek = argon2.derive_kek(p.as_bytes(), &salt)?;
            Slot::Argon2id {
                salt: Bin(salt),
                m_kib: argon2.m_kib,
                t: argon2.t,
                p: argon2.p,
                wrapped: Bin(keys::wrap_file_key(&kek, file_key, bundle_id)),
            }
        }
        SlotSpec::Key(k) => Slot::Key {
            key_id: Bin(k.key_id()),
            salt: Bin(salt),
            wrapped: Bin(keys::wrap_file_key(&k.kek(&salt), file_key, bundle_id)),
        },
        SlotSpec::Recipient(r) => {
            let (epk, wrapped) = crate::recipient::wrap_to(r, file_key, bundle_id, rng)?;
            Slot::X25519 {
                epk: Bin(epk),
                wrapped: Bin(wrapped),
            }
        }
    })
}

/// A reader refuses more than [`MAX_SLOTS`] slots, so no writer (seal or
/// rekey) may make more.
pub(crate) fn check_not_too_many(n: usize) -> Result<()> {
    if n > MAX_SLOTS {
        return Err(Error::Usage(format!(
            "{n} keys given, but a bundle holds at most {MAX_SLOTS} keys: give fewer --passphrase/--key-file/--recipient keys (or seal several bundles)"
        )));
    }
    Ok(())
}

pub(crate) fn make_slots<S: ToSlotSpec>(
    unlocks: &[S],
    argon2: Argon2Params,
    file_key: &[u8; 32],
    bundle_id: &[u8; 16],
    rng: &mut dyn Randomness,
) -> Result<Vec<Slot>> {
    unlocks
        .iter()
        .map(|u| make_slot(&u.to_slot_spec(), argon2, file_key, bundle_id, rng))
        .collect()
}

pub(crate) fn header_tag(file_key: &[u8; 32], prefix: &[u8]) -> [u8; 32] {
    let k = keys::derive(keys::CTX_HEADER_MAC, &[file_key]);
    *blake3::keyed_hash(&k, prefix).as_bytes()
}

pub(crate) fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    blake3::Hash::from_bytes(*a) == blake3::Hash::from_bytes(*b)
}

fn short(e: std::io::Error, what: &str) -> Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        Error::MalformedHeader(what.into())
    } else {
        Error::Io {
            what: "cannot read the bundle".into(),
            source: e,
        }
    }
}

/// MessagePack with struct fields as maps (the form the spec documents).
pub(crate) fn to_msgpack<T: Serialize>(v: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(v).expect("in-memory MessagePack encoding cannot fail")
}

/// Parse MessagePack strictly: one value, no trailing bytes, no unknown or
/// duplicate fields, and canonical (re-encoding gives the same bytes).
pub(crate) fn parse_canonical<T: Serialize + for<'de> Deserialize<'de>>(
    b: &[u8],
) -> std::result::Result<T, String> {
    let mut de = rmp_serde::Deserializer::from_read_ref(b);
    let v = T::deserialize(&mut de).map_err(|e| e.to_string())?;
    if to_msgpack(&v) != b {
        return Err(
            "not in canonical form (trailing bytes, reordered keys or a non-shortest encoding)"
                .into(),
        );
    }
    Ok(v)
}

/// Where the parts of a bundle file are.
#[derive(Debug)]
pub struct Layout {
    pub header: Header,
    pub payload_start: u64,
    pub payload_end: u64,
    pub trailer: Option<SignatureBlock>,
    pub file_len: u64,
}

impl Layout {
    /// Read the header and find the payload and any signature trailer.
    pub fn read<R: Read + Seek>(r: &mut R) -> Result<Layout> {
        Self::read_with(r, &ReaderLimits::default())
    }

    /// [`Layout::read`] under `limits` (header length, trailer size).
    pub fn read_with<R: Read + Seek>(r: &mut R, limits: &ReaderLimits) -> Result<Layout> {
        let file_len = r
            .seek(SeekFrom::End(0))
            .map_err(Error::io("cannot read the bundle"))?;
        r.seek(SeekFrom::Start(0))
            .map_err(Error::io("cannot read the bundle"))?;
        let header = Header::read_from_with(r, limits)?;
        let payload_start = header.len() as u64;
        let mut payload_end = file_len;
        let mut trailer = None;
        if file_len >= payload_start + 12 {
            let mut tail = [0u8; 12];
            r.seek(SeekFrom::Start(file_len - 12))
                .map_err(Error::io("cannot read the bundle"))?;
            r.read_exact(&mut tail)
                .map_err(Error::io("cannot read the bundle"))?;
            if tail[4..] == TRAILER_MAGIC {
                let blen = u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
                if blen as usize > MAX_TRAILER_BLOCK || payload_start + blen + 12 > file_len {
                    return Err(Error::PayloadAuth(
                        "the signature trailer is malformed".into(),
                    ));
                }
                if blen > limits.max_sig_len {
                    return Err(refuse(
                        Limit::SignatureLen,
                        "the embedded signature block is this many bytes".into(),
                        blen,
                        limits.max_sig_len,
                    ));
                }
                let start = file_len - 12 - blen;
                let mut block = vec![0u8; blen as usize];
                r.seek(SeekFrom::Start(start))
                    .map_err(Error::io("cannot read the bundle"))?;
                r.read_exact(&mut block)
                    .map_err(Error::io("cannot read the bundle"))?;
                trailer = Some(SignatureBlock::parse(&block).map_err(|e| {
                    Error::PayloadAuth(format!("the embedded signature is malformed: {e}"))
                })?);
                payload_end = start;
            }
        }
        Ok(Layout {
            header,
            payload_start,
            payload_end,
            trailer,
            file_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Passphrase, SeededRandom, SymmetricKey};

    fn small() -> Argon2Params {
        Argon2Params {
            m_kib: 64,
            t: 1,
            p: 1,
        }
    }

    #[test]
    fn header_round_trip_and_unlock() {
        let mut rng = SeededRandom::new(b"h");
        let key = SymmetricKey::generate(&mut rng);
        let unlocks = [
            Unlock::Passphrase(Passphrase::new("pw")),
            Unlock::Key(key.clone()),
        ];
        let (h, fk) = Header::create(&unlocks, small(), &mut rng).unwrap();
        let bytes = h.bytes();
        let h2 = Header::read_from(&mut &bytes[..]).unwrap();
        assert_eq!(h2.unlock(&unlocks[0]).unwrap(), fk);
        assert_eq!(h2.unlock(&unlocks[1]).unwrap(), fk);
        assert!(matches!(
            h2.unlock(&Unlock::Passphrase(Passphrase::new("no"))),
            Err(Error::NoMatchingKey)
        ));
        let other = SymmetricKey::generate(&mut rng);
        assert!(matches!(
            h2.unlock(&Unlock::Key(other)),
            Err(Error::NoMatchingKey)
        ));
    }

    #[test]
    fn header_changes_are_caught() {
        let mut rng = SeededRandom::new(b"h");
        let key = SymmetricKey::generate(&mut rng);
        let (h, _) = Header::create(&[Unlock::Key(key.clone())], small(), &mut rng).unwrap();
        // Flip one byte in the stream nonce: still parses, tag fails.
        let mut b = h.bytes();
        let pos = b.windows(12).position(|w| w == b"stream_nonce").unwrap() + 14;
        b[pos] ^= 1;
        let h2 = Header::read_from(&mut &b[..]).unwrap();
        assert!(matches!(
            h2.unlock(&Unlock::Key(key)),
            Err(Error::HeaderAuth)
        ));
    }

    #[test]
    fn strict_parsing() {
        // Unknown field.
        #[derive(Serialize)]
        struct Extra<'a> {
            core: &'a Core,
            slots: &'a [Slot],
            x: u8,
        }
        let mut rng = SeededRandom::new(b"h");
        let (h, _) = Header::create(
            &[Unlock::Key(SymmetricKey::generate(&mut rng))],
            small(),
            &mut rng,
        )
        .unwrap();
        let body = to_msgpack(&Extra {
            core: &h.core,
            slots: &h.slots,
            x: 1,
        });
        assert!(
            parse_canonical::<HeaderRepr>(&body)
                .unwrap_err()
                .contains("unknown field")
        );
        // Trailing byte.
        let mut body = to_msgpack(&HeaderRepr {
            core: h.core.clone(),
            slots: h.slots.clone(),
        });
        body.push(0xc0);
        assert!(
            parse_canonical::<HeaderRepr>(&body)
                .unwrap_err()
                .contains("canonical")
        );
    }
}
