//! `host export` / `host import` flags, as data.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{KeyArgs, LimitArgs, SealFlags};

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
    /// The stored session to export (see `host session list`).
    pub name: String,
    /// Where to write it (written atomically; refused if it exists, unless --force).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// What to write: an encrypted bundle, or a plaintext file for other tools.
    #[arg(long, value_enum, default_value = "sessbundle")]
    pub format: FileFormat,
    /// How to seal it (.sessbundle only): a passphrase, key files,
    /// recipients (a terminal prompt if none is given), optional signature.
    #[command(flatten)]
    pub seal: SealFlags,
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
    /// A .sessbundle, Playwright storageState JSON or cookies.txt file.
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
    /// How to open a bundle: passphrase, key file or identity.
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Replace an existing session of that name.
    #[arg(long)]
    pub force: bool,
}
