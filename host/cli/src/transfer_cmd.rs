//! `host export` and `host import`: stored sessions to and from files — a
//! sealed `.sessbundle` (default), Playwright `storageState` JSON, or a
//! Netscape cookies.txt. Import never overwrites without `--force` and
//! leaves nothing behind when it fails.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use sessbundle::atomic::AtomicFile;
use sessbundle::keys::hex;
use sessbundle::{PublicKey, SealOptions, SessionState, SigningKey};
use sesshost_store::{Home, now_ms};

use crate::args::{KdfArgs, KeyArgs};
use crate::secrets::{self, Purpose};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FileFormat {
    /// Encrypted, signable .sessbundle (everything is kept).
    Sessbundle,
    /// Playwright storageState JSON (plaintext; no sessionStorage, tabs or typed IndexedDB values).
    Playwright,
    /// Netscape cookies.txt for curl/wget/yt-dlp (plaintext; cookies only).
    CookiesTxt,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    pub name: String,
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    #[arg(long, value_enum, default_value = "sessbundle")]
    pub format: FileFormat,
    /// Sign with this secret key (embedded signature; .sessbundle only).
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,
    /// Free text for the signature's trusted comment (default: $USER).
    #[arg(long, value_name = "TEXT")]
    pub signer: Option<String>,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub kdf: KdfArgs,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    pub force: bool,
    /// Run this sanitiser plugin on the state first (repeatable, in order);
    /// the stored session is not changed.
    #[arg(long, value_name = "P.wasm")]
    pub sanitize: Vec<PathBuf>,
    /// Sanitiser configuration `key=value` (to every sanitiser) or
    /// `STEM.key=value` (to the one whose file stem is STEM, e.g. redact.mode=drop).
    #[arg(long = "sanitize-config", value_name = "KEY=VALUE")]
    pub sanitize_config: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    pub file: PathBuf,
    /// Session name (default: the name inside a bundle, or the file's stem).
    #[arg(long = "as", value_name = "NAME")]
    pub name: Option<String>,
    /// Refuse the bundle unless it carries a valid signature by this public key.
    #[arg(long, value_name = "KEY.pub")]
    pub require_signature: Option<PathBuf>,
    /// Default: detected from the content.
    #[arg(long, value_enum)]
    pub format: Option<FileFormat>,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Replace an existing session of that name.
    #[arg(long)]
    pub force: bool,
}

fn warn_all(what: &str, warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {what}: {w}");
    }
}

pub fn export(home: &Path, a: ExportArgs) -> Result<()> {
    crate::bundle_cmd::refuse_overwrite(&a.output, a.force)?;
    let store = Home::new(home).store()?;
    let mut state = store.load(&a.name)?;
    let mut sanitizers = Vec::new();
    if !a.sanitize.is_empty() {
        let dest = a
            .output
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        (state, sanitizers) =
            crate::plugin_cmd::sanitize(home, &a.sanitize, &a.sanitize_config, &state, &dest)?;
    }
    match a.format {
        FileFormat::Sessbundle => export_bundle(&state, &a, sanitizers),
        other => {
            if a.sign.is_some() {
                bail!("--sign needs --format sessbundle: {other:?} files cannot carry a signature");
            }
            let (text, warnings) = match other {
                FileFormat::Playwright => sessbundle::interop::to_playwright(&state),
                _ => sessbundle::interop::to_cookies_txt(&state),
            };
            warn_all("the target format cannot hold everything", &warnings);
            let mut f = AtomicFile::create(&a.output, 0o600)?;
            f.write_all(text.as_bytes())?;
            f.commit()?;
            eprintln!(
                "exported session {} to {} (plaintext, mode 0600: it holds secrets; {} warnings)",
                a.name,
                a.output.display(),
                warnings.len()
            );
            Ok(())
        }
    }
}

fn export_bundle(
    state: &SessionState,
    a: &ExportArgs,
    sanitizers: Vec<sessbundle::manifest::SanitizerEntry>,
) -> Result<()> {
    let sign_key = a.sign.as_deref().map(SigningKey::read).transpose()?;
    let unlocks = secrets::unlocks(&a.keys, Purpose::New, true)?;
    let opts = SealOptions {
        argon2: crate::bundle_cmd::argon2(&a.kdf)?,
        sanitizers,
        ..Default::default()
    };
    let summary = crate::bundle_cmd::write_bundle(
        &format!("exporting {}", a.name),
        state,
        &a.output,
        &unlocks,
        opts,
        sign_key.as_ref(),
        a.signer.clone(),
    )?;
    eprintln!(
        "exported session {} to {} ({} bytes of state, bundle id {}{})",
        a.name,
        a.output.display(),
        summary.plain_bytes,
        hex(&summary.bundle_id),
        if sign_key.is_some() { ", signed" } else { "" }
    );
    Ok(())
}

fn detect(path: &Path) -> Result<FileFormat> {
    use std::io::Read;
    let mut head = [0u8; 8];
    let n = std::fs::File::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .read(&mut head)?;
    Ok(
        if head[..n] == sessbundle::format::MAGIC[..n.min(8)] && n == 8 {
            FileFormat::Sessbundle
        } else if head[..n].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            FileFormat::Playwright
        } else {
            FileFormat::CookiesTxt
        },
    )
}

fn stem_name(path: &Path) -> Option<String> {
    let s = path.file_name()?.to_string_lossy();
    Some(s.split('.').next()?.to_string()).filter(|s| !s.is_empty())
}

pub fn import(home: &Path, a: ImportArgs) -> Result<()> {
    let format = match a.format {
        Some(f) => f,
        None => detect(&a.file)?,
    };
    let now = now_ms();
    let (state, from_bundle) = match format {
        FileFormat::Sessbundle => {
            if let Some(pk) = &a.require_signature {
                let key = PublicKey::read(pk)?;
                let v = sessbundle::sign::verify_file(&a.file, &key)?;
                eprintln!("good signature by key {}: {}", hex(&v.key_id), v.comment);
            }
            let what = format!("importing {}", a.file.display());
            let (mut r, progress) = crate::bundle_cmd::open_bundle(&a.file, &a.keys, &what)?;
            let state = r.read_state()?;
            progress.finish();
            (state, true)
        }
        other => {
            if a.require_signature.is_some() {
                bail!(
                    "--require-signature needs a .sessbundle; {} is {other:?}, which cannot carry a signature",
                    a.file.display()
                );
            }
            let text = std::fs::read_to_string(&a.file)
                .with_context(|| format!("cannot read {}", a.file.display()))?;
            let name = a
                .name
                .clone()
                .or_else(|| stem_name(&a.file))
                .unwrap_or_else(|| "imported".into());
            let (s, warnings) = match other {
                FileFormat::Playwright => sessbundle::interop::from_playwright(&text, &name, now),
                _ => sessbundle::interop::from_cookies_txt(&text, &name, now),
            }
            .with_context(|| format!("{} is not a valid {other:?} file", a.file.display()))?;
            warn_all("import", &warnings);
            (s, false)
        }
    };
    let name = match (&a.name, from_bundle) {
        (Some(n), _) => n.clone(),
        (None, true) if !state.meta.name.is_empty() => state.meta.name.clone(),
        _ => stem_name(&a.file).context("cannot derive a session name: pass --as NAME")?,
    };
    let store = Home::new(home).store()?;
    let report = store
        .import_state(&name, &state, a.force, now)
        .map_err(|e| match e {
            sesshost_store::StoreError::SessionExists { .. } if !a.force => anyhow::anyhow!(
                "{e} (pass --force to replace it, or --as NAME to import under another name)"
            ),
            e => e.into(),
        })?;
    eprintln!(
        "imported {} as session {name} ({} cookies, {} origins, {} tabs; {} bytes)",
        a.file.display(),
        state.cookies.len(),
        state.origins.len(),
        state.tabs.len(),
        report.logical_bytes
    );
    Ok(())
}
