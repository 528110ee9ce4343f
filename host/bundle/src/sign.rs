//! Ed25519 signatures over the bundle bytes (SPEC.md §8): detached
//! `FILE.sig` or an embedded trailer. Verifying needs only the public key.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::Signer as _;

use crate::atomic::AtomicFile;
use crate::error::{Error, Result};
use crate::format::{Layout, MAX_TRAILER_BLOCK, TRAILER_MAGIC};
use crate::keys::{PublicKey, SigningKey, hex};
use crate::limits::{Limit, ReaderLimits, refuse};

const DOMAIN: &[u8] = b"sessbundle-sig-v1\0";
const FIRST_LINE: &str = "sessbundle-signature-v1";

/// One signature: who (key id), what they attest (trusted comment), and the
/// Ed25519 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureBlock {
    pub key_id: [u8; 8],
    pub comment: String,
    pub sig: [u8; 64],
}

impl SignatureBlock {
    pub fn to_text(&self) -> String {
        format!(
            "{FIRST_LINE}\nkey-id: {}\ntrusted-comment: {}\nsignature: {}\n",
            hex(&self.key_id),
            self.comment,
            base64::engine::general_purpose::STANDARD.encode(self.sig)
        )
    }

    /// Strict parse of the four-line block.
    pub fn parse(b: &[u8]) -> std::result::Result<Self, String> {
        let text = std::str::from_utf8(b).map_err(|_| "not UTF-8".to_string())?;
        let body = text.strip_suffix('\n').ok_or("missing final newline")?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [first, kid, comment, sig] = lines[..] else {
            return Err(format!("{} lines instead of 4", lines.len()));
        };
        if first != FIRST_LINE {
            return Err(format!("first line is not {FIRST_LINE:?}"));
        }
        let kid = kid.strip_prefix("key-id: ").ok_or("no key-id line")?;
        if kid.len() != 16
            || !kid
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        {
            return Err("key-id is not 16 lower-case hex digits".into());
        }
        let key_id = crate::keys::unhex::<8>(kid).ok_or("key-id is not hex")?;
        let comment = comment
            .strip_prefix("trusted-comment: ")
            .ok_or("no trusted-comment line")?
            .to_string();
        let sig = sig.strip_prefix("signature: ").ok_or("no signature line")?;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .map_err(|_| "signature is not base64")?
            .try_into()
            .map_err(|_| "signature is not 64 bytes")?;
        if comment.contains('\r') {
            return Err("trusted comment contains a line break".into());
        }
        Ok(SignatureBlock {
            key_id,
            comment,
            sig,
        })
    }

    /// The trusted comment's `bundle:` field.
    pub fn comment_bundle_id(&self) -> Option<&str> {
        self.comment
            .split(' ')
            .find_map(|f| f.strip_prefix("bundle:"))
    }
}

fn message(hash: &[u8; 32], key_id: &[u8; 8], comment: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + 44 + comment.len());
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(hash);
    m.extend_from_slice(key_id);
    m.extend_from_slice(&(comment.len() as u32).to_be_bytes());
    m.extend_from_slice(comment.as_bytes());
    m
}

/// `time:<unix s> bundle:<hex id> signer:<text>`; line breaks in `signer`
/// become spaces.
pub fn trusted_comment(unix_secs: u64, bundle_id: &[u8; 16], signer: &str) -> String {
    let signer: String = signer
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("time:{unix_secs} bundle:{} signer:{signer}", hex(bundle_id))
}

pub fn sign_hash(key: &SigningKey, hash: &[u8; 32], comment: &str) -> SignatureBlock {
    let key_id = key.public().key_id();
    let sig = key.0.sign(&message(hash, &key_id, comment)).to_bytes();
    SignatureBlock {
        key_id,
        comment: comment.to_string(),
        sig,
    }
}

fn check(
    block: &SignatureBlock,
    key: &PublicKey,
    hash: &[u8; 32],
    bundle_id: &[u8; 16],
) -> Result<()> {
    let sig = ed25519_dalek::Signature::from_bytes(&block.sig);
    key.0
        .verify_strict(&message(hash, &block.key_id, &block.comment), &sig)
        .map_err(|_| Error::BadSignature("the Ed25519 signature is invalid".into()))?;
    if block.comment_bundle_id() != Some(hex(bundle_id).as_str()) {
        return Err(Error::BadSignature(
            "its trusted comment names another bundle".into(),
        ));
    }
    Ok(())
}

/// BLAKE3 of `src[0..end]`.
pub fn hash_prefix<R: Read + Seek>(src: &mut R, end: u64) -> Result<[u8; 32]> {
    src.seek(SeekFrom::Start(0))
        .map_err(Error::io("cannot read the bundle"))?;
    let mut h = blake3::Hasher::new();
    let mut take = src.take(end);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = take
            .read(&mut buf)
            .map_err(Error::io("cannot read the bundle"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(*h.finalize().as_bytes())
}

pub fn sig_path(bundle: &Path) -> PathBuf {
    let mut s = bundle.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Hash the signed bytes (everything before any trailer) and sign them with
/// a trusted comment stamped now.
fn sign_layout<R: Read + Seek>(
    src: &mut R,
    layout: &Layout,
    key: &SigningKey,
    signer: &str,
) -> Result<SignatureBlock> {
    let hash = hash_prefix(src, layout.payload_end)?;
    Ok(sign_hash(
        key,
        &hash,
        &trusted_comment(unix_now(), &layout.header.bundle_id(), signer),
    ))
}

/// Sign `bundle` into `bundle.sig` (written atomically). Returns its path.
pub fn sign_detached(bundle: &Path, key: &SigningKey, signer: &str) -> Result<PathBuf> {
    let mut f = std::fs::File::open(bundle)
        .map_err(Error::io(format!("cannot open {}", bundle.display())))?;
    let layout = Layout::read(&mut f)?;
    let block = sign_layout(&mut f, &layout, key, signer)?;
    let out = sig_path(bundle);
    let mut w = AtomicFile::create(&out, 0o644)?;
    w.write_all(block.to_text().as_bytes())
        .map_err(Error::io(format!("cannot write {}", out.display())))?;
    w.commit()?;
    Ok(out)
}

/// Append an embedded signature to a finished, unsigned bundle open for
/// reading and writing (used by `seal --sign` on its temp file).
pub fn append_embedded<F: Read + Write + Seek>(
    file: &mut F,
    key: &SigningKey,
    signer: &str,
) -> Result<SignatureBlock> {
    let layout = Layout::read(file)?;
    if layout.trailer.is_some() {
        return Err(Error::Usage(
            "the bundle already has an embedded signature".into(),
        ));
    }
    // No trailer, so payload_end == file_len: the whole file is signed.
    let block = sign_layout(file, &layout, key, signer)?;
    let text = block.to_text();
    debug_assert!(text.len() <= MAX_TRAILER_BLOCK);
    file.seek(SeekFrom::End(0))
        .map_err(Error::io("cannot write the bundle"))?;
    file.write_all(text.as_bytes())
        .map_err(Error::io("cannot write the bundle"))?;
    file.write_all(&(text.len() as u32).to_be_bytes())
        .map_err(Error::io("cannot write the bundle"))?;
    file.write_all(&TRAILER_MAGIC)
        .map_err(Error::io("cannot write the bundle"))?;
    Ok(block)
}

/// Where a verified signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureSource {
    Embedded,
    Detached,
}

/// A signature that verified.
#[derive(Debug, Clone)]
pub struct Verified {
    pub source: SignatureSource,
    pub key_id: [u8; 8],
    pub comment: String,
    /// Signatures by other keys that were present and ignored.
    pub others: Vec<[u8; 8]>,
}

/// Verify `bundle` against `key`: its embedded signature and/or `bundle.sig`
/// (SPEC.md §8). No passphrase needed. Default [`ReaderLimits`].
pub fn verify_file(bundle: &Path, key: &PublicKey) -> Result<Verified> {
    verify_file_with(bundle, std::slice::from_ref(key), &ReaderLimits::default()).map(|(_, v)| v)
}

/// [`verify_file`] against any of `trusted`, under `limits` (the `.sig`
/// file's size is checked before it is read). Returns the index in
/// `trusted` of the key that verified.
pub fn verify_file_with(
    bundle: &Path,
    trusted: &[PublicKey],
    limits: &ReaderLimits,
) -> Result<(usize, Verified)> {
    let mut f = std::fs::File::open(bundle)
        .map_err(Error::io(format!("cannot open {}", bundle.display())))?;
    let layout = Layout::read_with(&mut f, limits)?;
    let detached_path = sig_path(bundle);
    let detached = read_sig_file(&detached_path, limits)?;
    verify_layout(
        &mut f,
        &layout,
        trusted,
        detached.as_deref(),
        Some(&detached_path),
        limits,
    )
}

/// The content of a detached `.sig`, `None` if there is none; refused
/// before reading when over `limits.max_sig_len`.
pub fn read_sig_file(path: &Path, limits: &ReaderLimits) -> Result<Option<Vec<u8>>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Io {
                what: format!("cannot read {}", path.display()),
                source: e,
            });
        }
    };
    let len = f
        .metadata()
        .map_err(Error::io(format!("cannot read {}", path.display())))?
        .len();
    let too_big = |n: u64| {
        refuse(
            Limit::SignatureLen,
            format!("{} is this many bytes", path.display()),
            n,
            limits.max_sig_len,
        )
    };
    if len > limits.max_sig_len {
        return Err(too_big(len));
    }
    let mut b = Vec::new();
    f.take(limits.max_sig_len + 1)
        .read_to_end(&mut b)
        .map_err(Error::io(format!("cannot read {}", path.display())))?;
    if b.len() as u64 > limits.max_sig_len {
        return Err(too_big(b.len() as u64));
    }
    Ok(Some(b))
}

/// SPEC.md §8 verification over an open bundle, in the spec's order:
/// parse the signature blocks; keep those whose key id is one of
/// `trusted`'s (none: [`Error::NoSignature`]); hash `src[0..payload_end]`
/// from this same handle; every kept block must verify (Ed25519 strict) and
/// name this bundle in its trusted comment. Returns the index in `trusted`
/// of the first key that verified.
pub fn verify_layout<R: Read + Seek>(
    src: &mut R,
    layout: &Layout,
    trusted: &[PublicKey],
    detached: Option<&[u8]>,
    detached_path: Option<&Path>,
    limits: &ReaderLimits,
) -> Result<(usize, Verified)> {
    let shown = detached_path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("the detached signature"));
    if let Some(d) = detached
        && d.len() as u64 > limits.max_sig_len
    {
        return Err(refuse(
            Limit::SignatureLen,
            format!("{} is this many bytes", shown.display()),
            d.len() as u64,
            limits.max_sig_len,
        ));
    }
    let detached = match detached {
        Some(b) => Some(SignatureBlock::parse(b).map_err(|e| {
            Error::BadSignature(format!(
                "{} is not a sessbundle signature: {e}",
                shown.display()
            ))
        })?),
        None => None,
    };
    let mut others = Vec::new();
    let mut candidates = Vec::new();
    for (src, b) in [
        (SignatureSource::Embedded, &layout.trailer),
        (SignatureSource::Detached, &detached),
    ] {
        if let Some(b) = b {
            match trusted.iter().position(|k| k.key_id() == b.key_id) {
                Some(i) => candidates.push((src, i, b.clone())),
                None => others.push(b.key_id),
            }
        }
    }
    if candidates.is_empty() {
        let key_id = trusted
            .iter()
            .map(|k| hex(&k.key_id()))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::NoSignature {
            key_id: if key_id.is_empty() {
                "(no trusted key given)".into()
            } else {
                key_id
            },
            sig_path: shown,
        });
    }
    let hash = hash_prefix(src, layout.payload_end)?;
    let bundle_id = layout.header.bundle_id();
    let mut verified: Option<(usize, Verified)> = None;
    for (source, i, b) in candidates {
        check(&b, &trusted[i], &hash, &bundle_id)?;
        verified.get_or_insert((
            i,
            Verified {
                source,
                key_id: b.key_id,
                comment: b.comment,
                others: vec![],
            },
        ));
    }
    let Some((i, mut v)) = verified else {
        return Err(Error::BadSignature("no candidate signature".into()));
    };
    v.others = others;
    Ok((i, v))
}
