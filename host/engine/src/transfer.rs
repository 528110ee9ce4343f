//! Export and import: a stored session to a file (sealed `.sessbundle`,
//! Playwright `storageState` JSON, Netscape cookies.txt) and back.
//!
//! Export: load from the store → sanitisers → seal (or convert) → atomic
//! write. Import: open once → verify on that handle → read → store, with
//! the exists check and the write under the session's lock.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sessbundle::atomic::AtomicFile;
use sessbundle::interop::{self, Detected, InteropLimits};
use sessbundle::{PublicKey, ReaderLimits, SealOptions, Unlock};
use sesshost_plugin::Report;
use sesshost_store::{SaveReport, StoreError, now_ms};

use crate::bundle_io::{SealSpec, Signed, open_bundle, refuse_overwrite, write_bundle};
use crate::engine::{Engine, blocking};
use crate::error::{Error, Result, ResultExt};
use crate::progress::Counter;
use crate::sanitize::SanitizeRequest;

/// The file formats a session moves in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Encrypted, signable .sessbundle (everything is kept).
    Sessbundle,
    /// Playwright storageState JSON (plaintext; no sessionStorage, tabs or typed IndexedDB values).
    Playwright,
    /// Netscape cookies.txt (plaintext; cookies only).
    CookiesTxt,
}

impl FileFormat {
    /// The name a person knows the format by.
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Sessbundle => ".sessbundle",
            FileFormat::Playwright => "Playwright storageState",
            FileFormat::CookiesTxt => "cookies.txt",
        }
    }
}

/// `export`: which session, where, how.
pub struct ExportRequest {
    pub name: String,
    pub output: PathBuf,
    pub format: FileFormat,
    /// Key slots and signer (used for [`FileFormat::Sessbundle`] only).
    pub seal: SealSpec,
    pub sanitize: SanitizeRequest,
    pub force: bool,
    pub progress: Option<Counter>,
}

/// What an export wrote.
pub struct ExportReport {
    pub format: FileFormat,
    /// Plaintext bytes of state (bundle) or bytes written (other formats).
    pub plain_bytes: u64,
    /// The bundle id (sessbundle only).
    pub bundle_id: Option<[u8; 16]>,
    pub signed: bool,
    /// What the target format could not hold.
    pub warnings: Vec<String>,
    /// One report per sanitiser, in order (never values).
    pub sanitizers: Vec<Report>,
}

/// `import`: which file, under which name, what to check.
pub struct ImportRequest {
    pub file: PathBuf,
    /// Default: the name inside a bundle, else the file's stem.
    pub name: Option<String>,
    /// Refuse a bundle without a valid signature by this key.
    pub require_signature: Option<PublicKey>,
    /// Default: detected from the content.
    pub format: Option<FileFormat>,
    /// Asked only once the file is known to be a bundle.
    pub unlock: Box<dyn FnOnce() -> Result<Unlock> + Send>,
    /// Replace an existing session (written first, the old one removed after).
    pub force: bool,
    /// Caps on what the bundle may make the reader allocate or derive.
    pub limits: ReaderLimits,
    /// Caps on Playwright / cookies.txt input.
    pub interop: InteropLimits,
    pub progress: Option<Counter>,
}

/// What an import stored.
pub struct ImportReport {
    pub name: String,
    pub cookies: usize,
    pub origins: usize,
    pub tabs: usize,
    pub stored: SaveReport,
    pub signed: Option<Signed>,
    pub warnings: Vec<String>,
}

impl Engine {
    /// Write stored session `req.name` to `req.output`.
    pub async fn export(&self, req: ExportRequest) -> Result<ExportReport> {
        refuse_overwrite(&req.output, req.force)?;
        if req.format != FileFormat::Sessbundle && req.seal.sign.is_some() {
            return Err(Error::Usage(format!(
                "--sign needs --format sessbundle: {} files cannot carry a signature",
                req.format.name()
            )));
        }
        let name = req.name.clone();
        let mut state = self.with_store(move |s| Ok(s.load(&name)?)).await?;
        let mut entries = Vec::new();
        let mut reports = Vec::new();
        if !req.sanitize.is_empty() {
            let dest = req
                .output
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let s = self.sanitize(&req.sanitize, state, &dest).await?;
            (state, entries, reports) = (s.state, s.entries, s.reports);
        }
        blocking(move || {
            let mut report = match req.format {
                FileFormat::Sessbundle => {
                    let opts = SealOptions {
                        argon2: req.seal.argon2,
                        sanitizers: entries,
                        ..Default::default()
                    };
                    let summary =
                        write_bundle(&state, &req.output, &req.seal, opts, req.progress.as_ref())?;
                    ExportReport {
                        format: req.format,
                        plain_bytes: summary.plain_bytes,
                        bundle_id: Some(summary.bundle_id),
                        signed: req.seal.sign.is_some(),
                        warnings: vec![],
                        sanitizers: vec![],
                    }
                }
                other => {
                    let (text, warnings) = match other {
                        FileFormat::Playwright => sessbundle::interop::to_playwright(&state),
                        _ => sessbundle::interop::to_cookies_txt(&state),
                    };
                    write_plaintext(&req.output, text.as_bytes())?;
                    ExportReport {
                        format: other,
                        plain_bytes: text.len() as u64,
                        bundle_id: None,
                        signed: false,
                        warnings,
                        sanitizers: vec![],
                    }
                }
            };
            report.sanitizers = reports;
            Ok(report)
        })
        .await
    }

    /// Read `req.file` into a stored session.
    pub async fn import(&self, req: ImportRequest) -> Result<ImportReport> {
        let store = self.store().clone();
        blocking(move || {
            let now = now_ms();
            let format = match req.format {
                Some(f) => f,
                None => detect(&req.file)?,
            };
            let (state, from_bundle, signed, warnings) = match format {
                FileFormat::Sessbundle => {
                    let (mut r, signed) = open_bundle(
                        &req.file,
                        req.require_signature.as_ref(),
                        req.unlock,
                        &req.limits,
                        req.progress.as_ref(),
                    )?;
                    (r.read_state()?, true, signed, vec![])
                }
                other => {
                    if req.require_signature.is_some() {
                        return Err(Error::Usage(format!(
                            "--require-signature needs a .sessbundle; {} is a {} file, which cannot carry a signature",
                            req.file.display(),
                            other.name()
                        )));
                    }
                    let bytes = read_bounded(&req.file, &req.interop)?;
                    let name = req
                        .name
                        .clone()
                        .or_else(|| stem_name(&req.file))
                        .unwrap_or_else(|| "imported".into());
                    if other == FileFormat::Playwright
                        && req.format.is_none()
                        && interop::detect(&bytes) == Detected::SesshostStateJson
                    {
                        (state_json(&bytes, &req.file)?, true, None, vec![])
                    } else {
                        let (s, warnings) = match other {
                            FileFormat::Playwright => {
                                interop::from_playwright_bytes(&bytes, &name, now, &req.interop)
                            }
                            _ => interop::from_cookies_txt_bytes(&bytes, &name, now, &req.interop),
                        }
                        .with_context(|| {
                            format!("{} is not a valid {} file", req.file.display(), other.name())
                        })?;
                        (s, false, None, warnings)
                    }
                }
            };
            let name = match (&req.name, from_bundle) {
                (Some(n), _) => n.clone(),
                (None, true) if !state.meta.name.is_empty() => state.meta.name.clone(),
                _ => stem_name(&req.file).ok_or_else(|| {
                    Error::Usage("cannot derive a session name: pass --as NAME".into())
                })?,
            };
            let stored = store
                .import(&name, &state, crate::sync::import_mode(req.force), now)
                .map_err(|e| match e {
                    StoreError::SessionExists { .. } if !req.force => Error::Invalid(format!(
                        "{e} (pass --force to replace it, or --as NAME to import under another name)"
                    )),
                    e => e.into(),
                })?;
            Ok(ImportReport {
                name,
                cookies: state.cookies.len(),
                origins: state.origins.len(),
                tabs: state.tabs.len(),
                stored,
                signed,
                warnings,
            })
        })
        .await
    }
}

/// Plaintext exports hold secrets: mode 0600, atomic.
fn write_plaintext(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path, 0o600)?;
    f.write_all(bytes)
        .map_err(|e| Error::io("cannot write", path, e))?;
    f.commit()?;
    Ok(())
}

/// Read a plaintext import whole, refusing one over the interop input cap
/// before reading it.
fn read_bounded(path: &Path, limits: &InteropLimits) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let len = f
        .metadata()
        .map_err(|e| Error::io("cannot read", path, e))?
        .len();
    limits.check_input(&path.display().to_string(), len as usize)?;
    let mut b = Vec::with_capacity(len as usize);
    f.take(limits.max_input_bytes.saturating_add(1))
        .read_to_end(&mut b)
        .map_err(|e| Error::io("cannot read", path, e))?;
    limits.check_input(&path.display().to_string(), b.len())?;
    Ok(b)
}

/// sesshost's own state JSON (what `host unseal` writes), as a state: the
/// same model and checks `host seal` applies to it.
fn state_json(bytes: &[u8], path: &Path) -> Result<sessbundle::SessionState> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::Bundle(sessbundle::Error::StateJson {
            path: path.into(),
            why: format!("{e} (see format-spec/SPEC.md §9 for the fields)"),
        })
    })
}

/// The format of a file, from its first bytes (`interop::detect`); JSON
/// that is not a bundle is read as Playwright (or sesshost's own state
/// JSON), anything else as cookies.txt.
pub fn detect(path: &Path) -> Result<FileFormat> {
    let mut head = vec![0u8; interop::detect::DETECT_PREFIX];
    let mut n = 0;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(Error::io("cannot read", path, e)),
        }
    }
    Ok(match interop::detect(&head[..n]) {
        Detected::Sessbundle => FileFormat::Sessbundle,
        Detected::Playwright | Detected::SesshostStateJson => FileFormat::Playwright,
        Detected::CookiesTxt | Detected::Unknown => {
            if head[..n].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
                FileFormat::Playwright
            } else {
                FileFormat::CookiesTxt
            }
        }
    })
}

fn stem_name(path: &Path) -> Option<String> {
    let s = path.file_name()?.to_string_lossy();
    Some(s.split('.').next()?.to_string()).filter(|s| !s.is_empty())
}
