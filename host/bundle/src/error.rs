//! The crate's one public error. Every message says what failed and what to
//! do about it; none contains a secret (passphrases, keys, cookie or storage
//! values never reach an error).

use std::path::PathBuf;

/// Everything that can go wrong reading, writing, signing or verifying a
/// bundle. [`Error::outcome`] gives the spec's outcome name (SPEC.md §10) and
/// [`Error::is_auth_failure`] tells a CLI to exit with code 3.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "this is not a .sessbundle file (bad magic bytes): check that you passed the bundle, not its .sig or a JSON state"
    )]
    NotABundle,
    #[error(
        "this bundle is format version {major}.{minor}, and this host reads only version 1.x: upgrade sesshost"
    )]
    UnsupportedVersion { major: u16, minor: u16 },
    #[error(
        "the bundle header is malformed ({0}): the file is damaged or was not written by a sessbundle v1 writer"
    )]
    MalformedHeader(String),
    #[error(
        "the bundle asks for Argon2id parameters beyond this reader's limits ({0}): refusing to run them; re-seal the bundle with default parameters"
    )]
    KdfRejected(String),
    #[error(
        "wrong passphrase or key, or the bundle header was changed: check the passphrase or key file the sender used"
    )]
    NoMatchingKey,
    #[error(
        "no key slot of this bundle can use the given kind of key (it has {available}): pass {hint} instead"
    )]
    NoSlotForKeyKind { available: String, hint: String },
    #[error(
        "the bundle header was changed after sealing (header tag mismatch): do not trust this file; ask the sender for a fresh copy"
    )]
    HeaderAuth,
    #[error(
        "the bundle payload failed authentication ({0}): it was truncated, reordered or altered; ask the sender for a fresh copy"
    )]
    PayloadAuth(String),
    #[error(
        "the bundle manifest is inconsistent ({0}): the file was altered or written by a faulty tool"
    )]
    MalformedManifest(String),
    #[error(
        "chunk {index} does not match its content id: the bundle was altered; ask the sender for a fresh copy"
    )]
    ChunkMismatch { index: usize },
    #[error(
        "chunk {index} does not decompress to its declared {len} bytes ({why}): the bundle was altered or is a decompression bomb"
    )]
    Decompression { index: usize, len: u32, why: String },
    #[error(
        "the session state in the bundle does not decode ({0}): the bundle was written by an incompatible tool"
    )]
    BadState(String),
    #[error("invalid session state JSON in {path}: {why}")]
    StateJson { path: PathBuf, why: String },
    #[error(
        "the signature does not verify ({0}): the bundle or its signature was changed after signing, or it was signed by another key; do not trust it"
    )]
    BadSignature(String),
    #[error(
        "no signature by key {key_id} (looked for an embedded signature and {sig_path}): sign it with `host sign`, or check you have the signer's public key"
    )]
    NoSignature { key_id: String, sig_path: PathBuf },
    #[error(
        "{what}: {value}, over this reader's cap of {cap} ({}; {}), or ask the sender for a smaller bundle",
        limit.option(),
        limit.how_to_raise()
    )]
    Limit {
        limit: crate::limits::Limit,
        what: String,
        value: u64,
        cap: u64,
    },
    #[error("{path}: {why}")]
    KeyFile { path: PathBuf, why: String },
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }

    /// The outcome name of SPEC.md §10, as used in the test vectors.
    pub fn outcome(&self) -> &'static str {
        match self {
            Error::NotABundle => "not_a_bundle",
            Error::UnsupportedVersion { .. } => "unsupported_version",
            Error::MalformedHeader(_) => "malformed_header",
            Error::KdfRejected(_) => "kdf_rejected",
            Error::NoMatchingKey | Error::NoSlotForKeyKind { .. } => "no_matching_key",
            Error::HeaderAuth => "header_auth",
            Error::PayloadAuth(_) => "payload_auth",
            Error::MalformedManifest(_) => "malformed_manifest",
            Error::ChunkMismatch { .. } => "chunk_mismatch",
            Error::Decompression { .. } => "decompression",
            Error::BadState(_) => "bad_state",
            Error::BadSignature(_) => "bad_signature",
            Error::NoSignature { .. } => "no_signature",
            Error::Limit { .. } => "limit_exceeded",
            Error::Io { .. } => "io",
            Error::StateJson { .. } => "state_json",
            Error::KeyFile { .. } => "key_file",
            Error::Usage(_) => "usage",
        }
    }

    /// A [`crate::ReaderLimits`] cap refused the bundle: not damage, a local
    /// policy (CLI exit code 1; the message names the flag that raises it).
    pub fn is_limit(&self) -> bool {
        matches!(self, Error::Limit { .. })
    }

    /// Authentication or signature failure: wrong key, tampered or truncated
    /// data, bad or missing signature (CLI exit code 3).
    pub fn is_auth_failure(&self) -> bool {
        matches!(
            self,
            Error::NoMatchingKey
                | Error::NoSlotForKeyKind { .. }
                | Error::HeaderAuth
                | Error::PayloadAuth(_)
                | Error::MalformedManifest(_)
                | Error::ChunkMismatch { .. }
                | Error::Decompression { .. }
                | Error::BadState(_)
                | Error::BadSignature(_)
                | Error::NoSignature { .. }
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
