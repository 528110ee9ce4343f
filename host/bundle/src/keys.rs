//! Keys: randomness, the per-file key and its subkeys, key slots (Argon2id
//! passphrase, raw key file), and the key file formats (SPEC.md §1, §3.1, §7).

use std::path::Path;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;

use crate::error::{Error, Result};
pub use crate::recipient::{Identity, Recipient};

pub(crate) const CTX_HEADER_MAC: &str = "sessbundle v1 2026-11-22 header mac";
pub(crate) const CTX_STREAM: &str = "sessbundle v1 2026-11-22 payload stream";
pub(crate) const CTX_CHUNK_ID: &str = "sessbundle v1 2026-11-22 chunk id";
pub(crate) const CTX_KEYFILE_KEK: &str = "sessbundle v1 2026-11-22 key-file kek";
pub(crate) const CTX_KEYFILE_ID: &str = "sessbundle v1 2026-11-22 key-file id";
pub(crate) const CTX_SIGNING_KEY_ID: &str = "sessbundle v1 2026-11-22 signing key id";
const SLOT_AAD_PREFIX: &[u8] = b"sessbundle v1 slot";

/// Where random bytes come from. Production uses the OS; tests and the
/// vector generator inject a seeded stream so whole bundles are reproducible.
pub trait Randomness {
    fn fill(&mut self, buf: &mut [u8]);
}

/// The operating system's CSPRNG.
pub struct OsRandom;

impl Randomness for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("the operating system's random source failed");
    }
}

/// A deterministic stream (BLAKE3 XOF of a seed). **Tests and vectors only**:
/// anything sealed with it is as secret as the seed.
pub struct SeededRandom(blake3::OutputReader);

impl SeededRandom {
    pub fn new(seed: &[u8]) -> Self {
        SeededRandom(
            blake3::Hasher::new_derive_key("sessbundle test randomness")
                .update(seed)
                .finalize_xof(),
        )
    }
}

impl Randomness for SeededRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        self.0.fill(buf);
    }
}

pub(crate) fn random<const N: usize>(rng: &mut dyn Randomness) -> [u8; N] {
    let mut b = [0u8; N];
    rng.fill(&mut b);
    b
}

pub(crate) fn derive(ctx: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(ctx);
    for p in parts {
        h.update(p);
    }
    *h.finalize().as_bytes()
}

/// Argon2id cost parameters of a passphrase slot.
///
/// Cost: time and memory grow linearly with `m_kib × t`; `p` lanes run on
/// separate threads. The default (64 MiB, t=3, p=4; RFC 9106's second
/// recommended set) takes ~0.2–0.4 s on a 2-core machine — paid once per
/// seal and once per unseal, and by an attacker once per guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Argon2Params {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Argon2Params {
            m_kib: 64 * 1024,
            t: 3,
            p: 4,
        }
    }
}

/// Reader caps (SPEC.md §3): beyond these a hostile file could demand
/// gigabytes of memory or minutes of CPU.
pub const MAX_ARGON2_M_KIB: u32 = 1024 * 1024;
pub const MAX_ARGON2_T: u32 = 10;
pub const MAX_ARGON2_P: u32 = 16;

impl Argon2Params {
    pub fn check(&self) -> Result<()> {
        let Argon2Params { m_kib, t, p } = *self;
        let why = if m_kib > MAX_ARGON2_M_KIB {
            format!("memory {m_kib} KiB > {MAX_ARGON2_M_KIB} KiB")
        } else if t > MAX_ARGON2_T {
            format!("time cost {t} > {MAX_ARGON2_T}")
        } else if p > MAX_ARGON2_P {
            format!("parallelism {p} > {MAX_ARGON2_P}")
        } else if p < 1 || t < 1 || m_kib < 8 * p {
            format!("m={m_kib} KiB, t={t}, p={p} are below Argon2's minimums")
        } else {
            return Ok(());
        };
        Err(Error::KdfRejected(why))
    }

    /// Argon2id of `passphrase` with `salt` (32-byte output), after
    /// [`Argon2Params::check`]. Used for slots and for repository keys.
    pub fn derive_kek(&self, passphrase: &[u8], salt: &[u8; 16]) -> Result<[u8; 32]> {
        self.check()?;
        let params = argon2::Params::new(self.m_kib, self.t, self.p, Some(32))
            .map_err(|e| Error::KdfRejected(e.to_string()))?;
        let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = [0u8; 32];
        a.hash_password_into(passphrase, salt, &mut out)
            .map_err(|e| Error::KdfRejected(e.to_string()))?;
        Ok(out)
    }
}

/// A passphrase, held only in memory and never printed; zeroed on drop.
#[derive(Clone)]
pub struct Passphrase(Vec<u8>);

impl Drop for Passphrase {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl Passphrase {
    pub fn new(s: impl Into<Vec<u8>>) -> Self {
        Passphrase(s.into())
    }
    /// The content of a passphrase file: one trailing `\n` or `\r\n` removed.
    pub fn from_file_bytes(mut b: Vec<u8>) -> Self {
        if b.ends_with(b"\n") {
            b.pop();
            if b.ends_with(b"\r") {
                b.pop();
            }
        }
        Passphrase(b)
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// A raw 256-bit key (`host keygen --symmetric`), for automation; zeroed on drop.
#[derive(Clone)]
pub struct SymmetricKey(pub(crate) [u8; 32]);

impl Drop for SymmetricKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl std::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SymmetricKey(id {})", hex(&self.key_id()))
    }
}

impl SymmetricKey {
    pub fn generate(rng: &mut dyn Randomness) -> Self {
        SymmetricKey(random(rng))
    }
    pub fn from_bytes(b: [u8; 32]) -> Self {
        SymmetricKey(b)
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    pub fn key_id(&self) -> [u8; 8] {
        first8(derive(CTX_KEYFILE_ID, &[&self.0]))
    }
    pub(crate) fn kek(&self, salt: &[u8; 16]) -> [u8; 32] {
        derive(CTX_KEYFILE_KEK, &[&self.0, salt])
    }
    pub fn to_file_string(&self) -> String {
        key_line(SYMMETRIC_PREFIX, &self.0)
    }
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        Ok(SymmetricKey(parse_key_line(text, SYMMETRIC_PREFIX, path)?))
    }
    pub fn read(path: &Path) -> Result<Self> {
        Self::parse(&read_key_text(path)?, path)
    }
}

/// An Ed25519 signing key (`host keygen`).
pub struct SigningKey(pub(crate) ed25519_dalek::SigningKey);

/// An Ed25519 public key (`KEY.pub`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey(pub(crate) ed25519_dalek::VerifyingKey);

impl SigningKey {
    pub fn generate(rng: &mut dyn Randomness) -> Self {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&random(rng)))
    }
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }
    pub fn to_file_string(&self) -> String {
        key_line(SECRET_PREFIX, &self.0.to_bytes())
    }
    pub fn read(path: &Path) -> Result<Self> {
        let text = read_key_text(path)?;
        if text.starts_with(PUBLIC_PREFIX) {
            return Err(Error::KeyFile {
                path: path.into(),
                why:
                    "this is a public key; signing needs the secret key file (the one without .pub)"
                        .into(),
            });
        }
        Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(
            &parse_key_line(&text, SECRET_PREFIX, path)?,
        )))
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(id {})", hex(&self.public().key_id()))
    }
}

impl PublicKey {
    pub fn key_id(&self) -> [u8; 8] {
        first8(derive(CTX_SIGNING_KEY_ID, &[self.0.as_bytes()]))
    }
    pub fn to_file_string(&self) -> String {
        key_line(PUBLIC_PREFIX, self.0.as_bytes())
    }
    pub fn read(path: &Path) -> Result<Self> {
        let text = read_key_text(path)?;
        if text.starts_with(SECRET_PREFIX) {
            return Err(Error::KeyFile {
                path: path.into(),
                why: "this is a secret signing key; verifying needs only the public key (KEY.pub) — and keep the secret one private".into(),
            });
        }
        let b = parse_key_line(&text, PUBLIC_PREFIX, path)?;
        ed25519_dalek::VerifyingKey::from_bytes(&b)
            .map(PublicKey)
            .map_err(|_| Error::KeyFile {
                path: path.into(),
                why: "not a valid Ed25519 public key".into(),
            })
    }
}

const SYMMETRIC_PREFIX: &str = "sessbundle-symmetric-key-v1";
const SECRET_PREFIX: &str = "sessbundle-signing-secret-key-v1";
const PUBLIC_PREFIX: &str = "sessbundle-signing-public-key-v1";

pub(crate) fn key_line(prefix: &str, bytes: &[u8]) -> String {
    format!(
        "{prefix}:{}\n",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub(crate) fn read_key_text(path: &Path) -> Result<String> {
    let b = std::fs::read(path).map_err(Error::io(format!(
        "cannot read key file {}",
        path.display()
    )))?;
    if b.len() > 4096 {
        return Err(Error::KeyFile {
            path: path.into(),
            why: "too large to be a sessbundle key file".into(),
        });
    }
    String::from_utf8(b).map_err(|_| Error::KeyFile {
        path: path.into(),
        why: "not a sessbundle key file (not text)".into(),
    })
}

pub(crate) fn parse_key_line(text: &str, prefix: &str, path: &Path) -> Result<[u8; 32]> {
    let bad = |why: String| Error::KeyFile {
        path: path.into(),
        why,
    };
    let line = text.strip_suffix('\n').unwrap_or(text);
    let Some(b64) = line.strip_prefix(prefix).and_then(|r| r.strip_prefix(':')) else {
        let found = line
            .split(':')
            .next()
            .unwrap_or("")
            .chars()
            .take(40)
            .collect::<String>();
        return Err(bad(format!(
            "not a {prefix} file (it starts with {found:?}); use the file `host keygen` wrote"
        )));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| bad("the key is not valid base64url; the file is damaged".into()))?;
    bytes
        .try_into()
        .map_err(|_| bad("the key is not 32 bytes long; the file is damaged".into()))
}

fn first8(b: [u8; 32]) -> [u8; 8] {
    b[..8].try_into().unwrap()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Exactly `N` bytes from `2 × N` hex digits (either case), or `None`.
pub fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// What the user unlocks a bundle with.
#[derive(Debug, Clone)]
pub enum Unlock {
    Passphrase(Passphrase),
    Key(SymmetricKey),
    /// An X25519 identity: opens `x25519` slots sealed to its public key.
    Identity(Identity),
}

impl Unlock {
    /// The `host` flag that passes this kind of key.
    pub fn flag(&self) -> &'static str {
        match self {
            Unlock::Passphrase(_) => "--passphrase-file or --passphrase-env",
            Unlock::Key(_) => "--key-file",
            Unlock::Identity(_) => "--identity",
        }
    }
}

/// Whom a bundle is sealed for: one key slot each (SPEC.md §3.1–§3.2).
#[derive(Debug, Clone)]
pub enum SlotSpec {
    /// An `argon2id` slot.
    Passphrase(Passphrase),
    /// A `key` (key-file) slot.
    Key(SymmetricKey),
    /// An `x25519` slot: anyone can seal to a public recipient.
    Recipient(Recipient),
}

/// What [`crate::seal`], [`crate::BundleWriter::new`] and [`crate::rekey::rekey`]
/// accept as slot specifications: [`SlotSpec`] or an [`Unlock`] (an identity
/// seals to its own public key).
pub trait ToSlotSpec {
    fn to_slot_spec(&self) -> SlotSpec;
}

impl ToSlotSpec for SlotSpec {
    fn to_slot_spec(&self) -> SlotSpec {
        self.clone()
    }
}

impl ToSlotSpec for Unlock {
    fn to_slot_spec(&self) -> SlotSpec {
        match self {
            Unlock::Passphrase(p) => SlotSpec::Passphrase(p.clone()),
            Unlock::Key(k) => SlotSpec::Key(k.clone()),
            Unlock::Identity(i) => SlotSpec::Recipient(i.public()),
        }
    }
}

impl ToSlotSpec for Recipient {
    fn to_slot_spec(&self) -> SlotSpec {
        SlotSpec::Recipient(*self)
    }
}

/// AES-256-GCM with a single-use key and the all-zero nonce (SPEC.md §3.1).
pub(crate) fn wrap_file_key(kek: &[u8; 32], file_key: &[u8; 32], bundle_id: &[u8; 16]) -> [u8; 48] {
    let aad = [SLOT_AAD_PREFIX, bundle_id.as_slice()].concat();
    let mut out = [0u8; 48];
    out[..32].copy_from_slice(file_key);
    let tag = Aes256Gcm::new_from_slice(kek)
        .unwrap()
        .encrypt_inout_detached(&Nonce::default(), &aad, (&mut out[..32]).into())
        .expect("32 bytes are within AES-GCM limits");
    out[32..].copy_from_slice(&tag);
    out
}

pub(crate) fn unwrap_file_key(
    kek: &[u8; 32],
    wrapped: &[u8; 48],
    bundle_id: &[u8; 16],
) -> Option<[u8; 32]> {
    let aad = [SLOT_AAD_PREFIX, bundle_id.as_slice()].concat();
    let mut key: [u8; 32] = wrapped[..32].try_into().unwrap();
    let tag = aes_gcm::Tag::try_from(&wrapped[32..]).ok()?;
    Aes256Gcm::new_from_slice(kek)
        .unwrap()
        .decrypt_inout_detached(&Nonce::default(), &aad, (&mut key[..]).into(), &tag)
        .ok()?;
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip_and_reject_the_wrong_kind() {
        let dir = std::env::temp_dir().join(format!("sb-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut rng = SeededRandom::new(b"k");
        let sk = SigningKey::generate(&mut rng);
        let (s, p) = (dir.join("k"), dir.join("k.pub"));
        std::fs::write(&s, sk.to_file_string()).unwrap();
        std::fs::write(&p, sk.public().to_file_string()).unwrap();
        assert_eq!(PublicKey::read(&p).unwrap(), sk.public());
        assert_eq!(SigningKey::read(&s).unwrap().public(), sk.public());
        assert!(
            PublicKey::read(&s)
                .unwrap_err()
                .to_string()
                .contains("secret")
        );
        assert!(
            SigningKey::read(&p)
                .unwrap_err()
                .to_string()
                .contains("public key")
        );
        let e = SymmetricKey::read(&p).unwrap_err().to_string();
        assert!(e.contains("sessbundle-symmetric-key-v1"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unhex_round_trips_and_rejects_bad_input() {
        assert_eq!(unhex::<3>(&hex(&[0, 0xab, 0xff])), Some([0, 0xab, 0xff]));
        assert_eq!(unhex::<2>("abc"), None);
        assert_eq!(unhex::<2>("zz00"), None);
        assert_eq!(unhex::<1>("+1"), None);
    }

    #[test]
    fn argon2_caps() {
        assert!(
            Argon2Params {
                m_kib: MAX_ARGON2_M_KIB + 1,
                t: 1,
                p: 1
            }
            .check()
            .is_err()
        );
        assert!(
            Argon2Params {
                m_kib: 64,
                t: 11,
                p: 1
            }
            .check()
            .is_err()
        );
        assert!(
            Argon2Params {
                m_kib: 64,
                t: 1,
                p: 17
            }
            .check()
            .is_err()
        );
        assert!(
            Argon2Params {
                m_kib: 8,
                t: 1,
                p: 2
            }
            .check()
            .is_err()
        );
        assert!(Argon2Params::default().check().is_ok());
    }

    #[test]
    fn wrap_unwrap() {
        let (kek, fk, id) = ([1u8; 32], [2u8; 32], [3u8; 16]);
        let w = wrap_file_key(&kek, &fk, &id);
        assert_eq!(unwrap_file_key(&kek, &w, &id), Some(fk));
        assert_eq!(unwrap_file_key(&[9u8; 32], &w, &id), None);
        assert_eq!(unwrap_file_key(&kek, &w, &[4u8; 16]), None);
    }

    #[test]
    fn passphrase_file_strips_one_newline_only() {
        assert_eq!(
            Passphrase::from_file_bytes(b"ab\r\n".to_vec()).as_bytes(),
            b"ab"
        );
        assert_eq!(
            Passphrase::from_file_bytes(b"ab\n\n".to_vec()).as_bytes(),
            b"ab\n"
        );
        assert_eq!(
            format!("{:?}", Passphrase::new("secret")),
            "Passphrase(<redacted>)"
        );
    }
}
