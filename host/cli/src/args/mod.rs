//! The whole command-line surface, parsed into plain data (no I/O here).
//! Nothing in `args` refers to the command modules; they refer to it.
//! - [`session`]: `host session …`; [`transfer`]: export/import;
//!   [`plugin`]: plugin grants, push/pull; [`service`]: tenants and API
//!   keys of `host run`; [`parse`]: value parsers.

pub mod bundle;
pub mod parse;
pub mod plugin;
pub mod run;
pub mod service;
pub mod session;
pub mod transfer;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "host",
    version,
    about = "sesshost: capture, carry and restore whole browser sessions",
    long_about = "sesshost: capture, carry and restore whole browser sessions.\n\n\
Exit codes: 0 ok, 1 error, 2 usage, 3 authentication or signature failure \
(wrong passphrase or key, tampered data, bad or missing signature)."
)]
pub struct Cli {
    /// Data directory (sessions, host key). Default: $SESSHOST_HOME, else ~/.local/share/sesshost.
    #[arg(long, global = true, env = "SESSHOST_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Local sessions in the home's encrypted store: create, list, show, extend, delete, cleanup, history, rollback.
    #[command(subcommand)]
    Session(session::SessionCommand),
    /// Write a stored session to a file: a sealed .sessbundle (default), Playwright storageState JSON, or cookies.txt.
    Export(transfer::ExportArgs),
    /// Read a .sessbundle, Playwright storageState JSON or cookies.txt into a stored session.
    Import(transfer::ImportArgs),
    /// Store a session through a storage-backend plugin (only chunks the backend lacks are sent), encrypted with a repository key.
    Push(plugin::PushArgs),
    /// Fetch a session pushed with `host push` into the local store.
    Pull(plugin::PullArgs),
    /// WebAssembly plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Make a signing key pair (KEY secret, mode 0600, and KEY.pub), or with --symmetric a raw 256-bit key file for --key-file.
    Keygen(bundle::KeygenArgs),
    /// Seal a session state (JSON) into an encrypted .sessbundle.
    Seal(bundle::SealArgs),
    /// Decrypt a .sessbundle into session state JSON (mode 0600: it holds secrets).
    Unseal(bundle::UnsealArgs),
    /// Sign a bundle: writes IN.sessbundle.sig.
    Sign(bundle::SignArgs),
    /// Verify a bundle's signature (embedded or IN.sessbundle.sig) with a public key. No passphrase needed.
    Verify(bundle::VerifyArgs),
    /// Show a bundle's header facts; with a key or passphrase, a summary of its content (never values).
    Inspect(bundle::InspectArgs),
    /// Serve sessions over HTTP: REST API, leases with an authenticated CDP proxy, warm browser pool, hibernation to the store, tenants, limits, metrics.
    Run(run::RunArgs),
    /// Replace a bundle's keys (add or rotate a passphrase or key file) without re-encrypting its payload.
    Rekey(bundle::RekeyArgs),
    /// Tenants of the session service (`host run`): add, list, remove.
    #[command(subcommand)]
    Tenant(service::TenantCommand),
    /// API keys of the session service: create, list, revoke.
    #[command(subcommand)]
    Key(service::KeyCommand),
}

/// Where the passphrase or key comes from. Never from argv.
#[derive(Debug, Args, Clone, Default)]
pub struct KeyArgs {
    /// Read the passphrase from this file (one trailing newline is ignored).
    #[arg(long, value_name = "F", global = false)]
    pub passphrase_file: Option<PathBuf>,
    /// Read the passphrase from this environment variable.
    #[arg(long, value_name = "VAR")]
    pub passphrase_env: Option<String>,
    /// A raw key file from `host keygen --symmetric` (repeat to seal for several).
    #[arg(long, value_name = "K")]
    pub key_file: Vec<PathBuf>,
    /// Open with this identity from `host keygen --identity` (the secret half; opens bundles sealed to its .pub).
    #[arg(long, value_name = "ID")]
    pub identity: Vec<PathBuf>,
}

impl KeyArgs {
    pub fn is_empty(&self) -> bool {
        self.passphrase_file.is_none()
            && self.passphrase_env.is_none()
            && self.key_file.is_empty()
            && self.identity.is_empty()
    }
}

/// Public keys to seal to: whoever holds the matching identity can open
/// the bundle, with no shared secret.
#[derive(Debug, Args, Clone, Default)]
pub struct RecipientArgs {
    /// Seal to this recipient: an ID.pub file from `host keygen --identity`, or its one line (repeatable).
    #[arg(long, value_name = "ID.pub")]
    pub recipient: Vec<String>,
}

/// Caps on what an untrusted bundle may make the reader allocate or
/// derive (SPEC.md §12). The defaults suit sessions; raise one only for a
/// bundle you trust.
#[derive(Debug, Args, Clone, Default)]
pub struct LimitArgs {
    /// Most plaintext a bundle may hold, in bytes (default 1 GiB).
    #[arg(long, value_name = "BYTES")]
    pub max_plaintext: Option<u64>,
    /// Most plaintext one record may hold, in bytes (default 256 MiB).
    #[arg(long, value_name = "BYTES")]
    pub max_record: Option<u64>,
    /// Most Argon2id memory a passphrase slot may ask for, in KiB (default 1048576 = 1 GiB).
    #[arg(long, value_name = "KIB")]
    pub max_argon2_memory: Option<u32>,
}

impl LimitArgs {
    pub fn limits(&self) -> sessbundle::ReaderLimits {
        let mut l = sessbundle::ReaderLimits::default();
        if let Some(v) = self.max_plaintext {
            l.max_total_plaintext = v;
        }
        if let Some(v) = self.max_record {
            l.max_record = v;
        }
        if let Some(v) = self.max_argon2_memory {
            l.max_argon2_m_kib = v;
        }
        l
    }
}

/// How a new bundle is sealed (`seal`, `export`): its key slots, their
/// Argon2id cost and an optional embedded signature.
#[derive(Debug, Args, Clone)]
pub struct SealFlags {
    /// Sign with this secret key (the signature is embedded in the bundle).
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,
    /// Free text for the signature's trusted comment (default: $USER).
    #[arg(long, value_name = "TEXT")]
    pub signer: Option<String>,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub recipients: RecipientArgs,
    #[command(flatten)]
    pub kdf: KdfArgs,
}

/// Argon2id cost for new passphrase slots.
#[derive(Debug, Args, Clone)]
pub struct KdfArgs {
    /// Argon2id memory in MiB (default 64; readers refuse more than 1024).
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub argon2_memory: u32,
    /// Argon2id passes (default 3; readers refuse more than 10).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub argon2_time: u32,
    /// Argon2id lanes (default 4; readers refuse more than 16).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub argon2_parallelism: u32,
}
