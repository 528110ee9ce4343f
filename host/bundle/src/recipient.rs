//! Public-key recipients (SPEC.md §3.2): an `x25519` key slot seals the file
//! key to a recipient's X25519 public key with a fresh ephemeral key, so
//! anyone can seal to a recipient and only the holder of the identity opens.
//!
//! A slot carries only the ephemeral public key and the wrapped file key:
//! nothing in it names the recipient, so two bundles sealed to the same
//! recipient cannot be linked by their headers. A reader tries every
//! `x25519` slot with its identity (capped by
//! [`crate::ReaderLimits::max_slot_tries`]).

use std::path::Path;

use curve25519_dalek::montgomery::MontgomeryPoint;
use zeroize::Zeroize;

use crate::error::{Error, Result};
use crate::keys::{self, Randomness};

pub(crate) const CTX_X25519_KEK: &str = "sessbundle v1 2026-12-01 x25519 slot kek";
const IDENTITY_PREFIX: &str = "sessbundle-identity-v1";
const RECIPIENT_PREFIX: &str = "sessbundle-recipient-v1";

/// An X25519 secret key (`host keygen --identity`), mode 0600.
#[derive(Clone)]
pub struct Identity([u8; 32]);

impl Drop for Identity {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// An X25519 public key (`IDENTITY.pub`): whom a bundle is sealed to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Recipient(pub(crate) [u8; 32]);

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity(public {})", self.public().short())
    }
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recipient({})", self.short())
    }
}

impl Identity {
    pub fn generate(rng: &mut dyn Randomness) -> Self {
        Identity(keys::random(rng))
    }
    /// From 32 secret bytes (clamped when used, as X25519 does).
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Identity(b)
    }
    pub fn public(&self) -> Recipient {
        Recipient(MontgomeryPoint::mul_base_clamped(self.0).to_bytes())
    }
    /// `sessbundle-identity-v1:<base64url 32 bytes>\n`.
    pub fn to_file_string(&self) -> String {
        keys::key_line(IDENTITY_PREFIX, &self.0)
    }
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        if text.starts_with(RECIPIENT_PREFIX) {
            return Err(Error::KeyFile {
                path: path.into(),
                why:
                    "this is a recipient (public) key; opening needs the identity file it came from"
                        .into(),
            });
        }
        Ok(Identity(keys::parse_key_line(text, IDENTITY_PREFIX, path)?))
    }
    pub fn read(path: &Path) -> Result<Self> {
        let mut text = keys::read_key_text(path)?;
        let r = Self::parse(&text, path);
        text.zeroize();
        r
    }
    /// The shared secret with `epk`, or `None` for a low-order point.
    fn shared(&self, epk: &[u8; 32]) -> Option<[u8; 32]> {
        let s = MontgomeryPoint(*epk).mul_clamped(self.0).to_bytes();
        (s != [0u8; 32]).then_some(s)
    }
}

impl Recipient {
    /// `sessbundle-recipient-v1:<base64url 32 bytes>` (one line).
    pub fn parse_line(line: &str) -> Result<Self> {
        Self::parse(line, Path::new("recipient"))
    }
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        if text.starts_with(IDENTITY_PREFIX) {
            return Err(Error::KeyFile {
                path: path.into(),
                why: "this is a secret identity; sealing needs only its public recipient line (IDENTITY.pub) — and keep the identity private".into(),
            });
        }
        let b = keys::parse_key_line(text, RECIPIENT_PREFIX, path)?;
        let r = Recipient(b);
        if !r.is_usable() {
            return Err(Error::KeyFile {
                path: path.into(),
                why: "not a usable X25519 public key (a low-order point); use the .pub file `host keygen --identity` wrote".into(),
            });
        }
        Ok(r)
    }
    pub fn read(path: &Path) -> Result<Self> {
        Self::parse(&keys::read_key_text(path)?, path)
    }
    pub fn to_file_string(&self) -> String {
        keys::key_line(RECIPIENT_PREFIX, &self.0)
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    fn short(&self) -> String {
        keys::hex(&self.0[..8])
    }
    /// A key whose shared secret with every scalar is zero can't be sealed to.
    fn is_usable(&self) -> bool {
        MontgomeryPoint(self.0).mul_clamped([9u8; 32]).to_bytes() != [0u8; 32]
    }
}

/// The slot KEK: `derive_key(CTX, epk || recipient || shared)`.
pub(crate) fn slot_kek(epk: &[u8; 32], recipient: &[u8; 32], shared: &[u8; 32]) -> [u8; 32] {
    keys::derive(CTX_X25519_KEK, &[epk, recipient, shared])
}

/// Seal `file_key` to `to`: returns (ephemeral public key, wrapped key).
pub(crate) fn wrap_to(
    to: &Recipient,
    file_key: &[u8; 32],
    bundle_id: &[u8; 16],
    rng: &mut dyn Randomness,
) -> Result<([u8; 32], [u8; 48])> {
    let mut eph: [u8; 32] = keys::random(rng);
    let epk = MontgomeryPoint::mul_base_clamped(eph).to_bytes();
    let mut shared = MontgomeryPoint(to.0).mul_clamped(eph).to_bytes();
    eph.zeroize();
    if shared == [0u8; 32] {
        return Err(Error::Usage(
            "the recipient key is a low-order X25519 point: nothing can be sealed to it".into(),
        ));
    }
    let mut kek = slot_kek(&epk, &to.0, &shared);
    shared.zeroize();
    let wrapped = keys::wrap_file_key(&kek, file_key, bundle_id);
    kek.zeroize();
    Ok((epk, wrapped))
}

/// Try to open one `x25519` slot with `id`.
pub(crate) fn unwrap_with(
    id: &Identity,
    epk: &[u8; 32],
    wrapped: &[u8; 48],
    bundle_id: &[u8; 16],
) -> Option<[u8; 32]> {
    let mut shared = id.shared(epk)?;
    let mut kek = slot_kek(epk, &id.public().0, &shared);
    shared.zeroize();
    let r = keys::unwrap_file_key(&kek, wrapped, bundle_id);
    kek.zeroize();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SeededRandom;

    #[test]
    fn files_round_trip_and_refuse_the_other_kind() {
        let id = Identity::generate(&mut SeededRandom::new(b"id"));
        let p = Path::new("x");
        let back = Identity::parse(&id.to_file_string(), p).unwrap();
        assert_eq!(back.public(), id.public());
        let r = Recipient::parse_line(id.public().to_file_string().trim_end()).unwrap();
        assert_eq!(r, id.public());
        assert!(Identity::parse(&r.to_file_string(), p).is_err());
        let e = Recipient::parse(&id.to_file_string(), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("secret identity"), "{e}");
        assert!(
            !format!("{id:?}").contains(&keys::hex(&id.0)),
            "Debug leaks the secret"
        );
        // A low-order point (0) is refused.
        let zero = keys::key_line(RECIPIENT_PREFIX, &[0u8; 32]);
        assert!(Recipient::parse(&zero, p).is_err());
    }

    /// Cost of one x25519 slot try (what a reader pays per slot). Prints
    /// the figure: `cargo test -p sessbundle x25519_try_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn x25519_try_cost() {
        let mut rng = SeededRandom::new(b"cost");
        let id = Identity::generate(&mut rng);
        let other = Identity::generate(&mut rng);
        let (epk, w) = wrap_to(&other.public(), &[1; 32], &[2; 16], &mut rng).unwrap();
        let n = 2000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            assert!(unwrap_with(&id, &epk, &w, &[2; 16]).is_none());
        }
        println!(
            "x25519 slot try: {:.1} µs",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }

    #[test]
    fn wrap_and_unwrap() {
        let mut rng = SeededRandom::new(b"w");
        let id = Identity::generate(&mut rng);
        let other = Identity::generate(&mut rng);
        let (fk, bid) = ([5u8; 32], [6u8; 16]);
        let (epk, w) = wrap_to(&id.public(), &fk, &bid, &mut rng).unwrap();
        assert_eq!(unwrap_with(&id, &epk, &w, &bid), Some(fk));
        assert_eq!(unwrap_with(&other, &epk, &w, &bid), None);
        assert_eq!(unwrap_with(&id, &epk, &w, &[7u8; 16]), None);
        assert_eq!(unwrap_with(&id, &[0u8; 32], &w, &bid), None);
    }
}
