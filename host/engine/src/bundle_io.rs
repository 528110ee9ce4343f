//! Bundles as files: sealing a state into an output path atomically, and
//! opening one for reading with its signature checked on the same handle.
//! Shared by `host seal` and export (writing), `host unseal`/`inspect` and
//! import (reading).

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use sessbundle::atomic::AtomicFile;
use sessbundle::format::Layout;
use sessbundle::{
    BundleReader, PublicKey, ReaderLimits, SealOptions, SealSummary, SessionState, SigningKey,
    SlotSpec, Unlock,
};

use crate::error::{Error, Result};
use crate::progress::{Counted, Counter};

/// How to seal: the key slots, their Argon2id cost, an optional signer.
pub struct SealSpec {
    /// Passphrases, key files and recipients, one slot each.
    pub slots: Vec<SlotSpec>,
    pub argon2: sessbundle::Argon2Params,
    pub sign: Option<SigningKey>,
    /// The signature's trusted comment (free text, e.g. the user name).
    pub signer: String,
}

/// Refuse to replace `path` unless `force`.
pub fn refuse_overwrite(path: &Path, force: bool) -> Result<()> {
    if !force && path.exists() {
        return Err(Error::Invalid(format!(
            "{} already exists: choose another path or pass --force to replace it",
            path.display()
        )));
    }
    Ok(())
}

/// Seal `state` into `output` atomically (temp file, fsync, rename, fsync
/// the directory), with an embedded signature when the spec has a key.
pub fn write_bundle(
    state: &SessionState,
    output: &Path,
    spec: &SealSpec,
    opts: SealOptions,
    progress: Option<&Counter>,
) -> Result<SealSummary> {
    let mut f = AtomicFile::create(output, 0o644)?;
    let summary = {
        let counter = progress.cloned().unwrap_or_default();
        let w = BufWriter::with_capacity(256 * 1024, counter.wrap(f.file()));
        let (mut w, summary) = sessbundle::seal(state, w, &spec.slots, opts)?;
        w.flush()
            .map_err(|e| Error::io("cannot write", output, e))?;
        summary
    };
    if let Some(k) = &spec.sign {
        sessbundle::sign::append_embedded(f.file(), k, &spec.signer)?;
    }
    f.commit()?;
    Ok(summary)
}

/// Seal the state JSON file `input` (what `host unseal` writes) into
/// `output` atomically, parsed straight into records
/// (`sessbundle::state_json::seal_from_json`: no whole `SessionState`, the
/// parse overlapped with compression and encryption).
pub fn seal_json_file(
    input: &Path,
    output: &Path,
    spec: &SealSpec,
    opts: SealOptions,
    progress: Option<&Counter>,
) -> Result<SealSummary> {
    let json = std::fs::read(input).map_err(|e| Error::io("cannot read", input, e))?;
    let mut f = AtomicFile::create(output, 0o644)?;
    let summary = {
        let counter = progress.cloned().unwrap_or_default();
        let w = BufWriter::with_capacity(256 * 1024, counter.wrap(f.file()));
        let bw =
            sessbundle::BundleWriter::new(w, &spec.slots, opts, &mut sessbundle::keys::OsRandom)?;
        let (mut w, summary) = sessbundle::state_json::seal_from_json(&json, input, bw)?;
        w.flush()
            .map_err(|e| Error::io("cannot write", output, e))?;
        summary
    };
    drop(json);
    if let Some(k) = &spec.sign {
        sessbundle::sign::append_embedded(f.file(), k, &spec.signer)?;
    }
    f.commit()?;
    Ok(summary)
}

/// A bundle being read, counted into a progress counter.
pub type OpenBundle = BundleReader<BufReader<Counted<File>>>;

/// Who signed a bundle that was verified on open.
#[derive(Debug, Clone)]
pub struct Signed {
    pub key_id: [u8; 8],
    pub comment: String,
}

/// Open `path` once: check it is a bundle (before any secret is asked
/// for), then, with `trusted`, verify its signature (embedded or
/// `PATH.sig`) on that same handle before a key is tried, and read from it.
/// The bytes read are the bytes verified: the file is never reopened by
/// name (see `BundleReader::open_verified`). Every read is bounded by
/// `limits`.
pub fn open_bundle(
    path: &Path,
    trusted: Option<&PublicKey>,
    unlock: impl FnOnce() -> Result<Unlock>,
    limits: &ReaderLimits,
    progress: Option<&Counter>,
) -> Result<(OpenBundle, Option<Signed>)> {
    let mut f = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    Layout::read_with(&mut f, limits)?;
    f.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io("cannot read", path, e))?;
    let unlock = unlock()?;
    let counter = progress.cloned().unwrap_or_default();
    let src = BufReader::with_capacity(128 * 1024, counter.wrap(f));
    Ok(match trusted {
        Some(key) => {
            let detached =
                sessbundle::sign::read_sig_file(&sessbundle::sign::sig_path(path), limits)?;
            let (r, v) = BundleReader::open_verified(
                src,
                &unlock,
                limits,
                std::slice::from_ref(key),
                detached.as_deref(),
            )?;
            let signed = Signed {
                key_id: v.verified.key_id,
                comment: v.verified.comment,
            };
            (r, Some(signed))
        }
        None => (BundleReader::open_with(src, &unlock, limits)?, None),
    })
}
