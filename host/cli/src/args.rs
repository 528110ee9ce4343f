//! Command-line surface, parsed into plain data (no I/O here). `main.rs`
//! turns it into actions.

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
    Session(crate::session_cmd::SessionCommand),
    /// Write a stored session to a file: a sealed .sessbundle (default), Playwright storageState JSON, or cookies.txt.
    Export(crate::transfer_cmd::ExportArgs),
    /// Read a .sessbundle, Playwright storageState JSON or cookies.txt into a stored session.
    Import(crate::transfer_cmd::ImportArgs),
    /// Store a session through a storage-backend plugin (only chunks the backend lacks are sent), encrypted with a repository key.
    Push(crate::plugin_cmd::PushArgs),
    /// Fetch a session pushed with `host push` into the local store.
    Pull(crate::plugin_cmd::PullArgs),
    /// WebAssembly plugins.
    #[command(subcommand)]
    Plugin(crate::plugin_cmd::PluginCommand),
    /// Make a signing key pair (KEY secret, mode 0600, and KEY.pub), or with --symmetric a raw 256-bit key file for --key-file.
    Keygen {
        #[arg(short, long, value_name = "KEY")]
        output: PathBuf,
        /// A raw 256-bit key for --key-file instead of a signing key pair.
        #[arg(long)]
        symmetric: bool,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Seal a session state (JSON) into an encrypted .sessbundle.
    Seal {
        #[arg(value_name = "STATE.json")]
        input: PathBuf,
        #[arg(short, long, value_name = "OUT.sessbundle")]
        output: PathBuf,
        /// Sign with this secret key (the signature is embedded in the bundle).
        #[arg(long, value_name = "KEY")]
        sign: Option<PathBuf>,
        /// Free text for the signature's trusted comment (default: $USER).
        #[arg(long, value_name = "TEXT")]
        signer: Option<String>,
        #[command(flatten)]
        keys: KeyArgs,
        #[command(flatten)]
        kdf: KdfArgs,
        /// Overwrite OUT if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Decrypt a .sessbundle into session state JSON (mode 0600: it holds secrets).
    Unseal {
        #[arg(value_name = "IN.sessbundle")]
        input: PathBuf,
        #[arg(short, long, value_name = "STATE.json")]
        output: PathBuf,
        #[command(flatten)]
        keys: KeyArgs,
        /// Overwrite STATE.json if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Sign a bundle: writes IN.sessbundle.sig.
    Sign {
        #[arg(value_name = "IN.sessbundle")]
        input: PathBuf,
        /// The secret signing key (from `host keygen`).
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        /// Free text for the trusted comment (default: $USER).
        #[arg(long, value_name = "TEXT")]
        signer: Option<String>,
    },
    /// Verify a bundle's signature (embedded or IN.sessbundle.sig) with a public key. No passphrase needed.
    Verify {
        #[arg(value_name = "IN.sessbundle")]
        input: PathBuf,
        #[arg(long, value_name = "KEY.pub")]
        key: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Show a bundle's header facts; with a key or passphrase, a summary of its content (never values).
    Inspect {
        #[arg(value_name = "IN.sessbundle")]
        input: PathBuf,
        #[arg(long)]
        json: bool,
        /// Ask for the passphrase on the terminal to show the content summary.
        #[arg(long)]
        decrypt: bool,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Replace a bundle's keys (add or rotate a passphrase or key file) without re-encrypting its payload.
    Rekey {
        #[arg(value_name = "IN.sessbundle")]
        input: PathBuf,
        #[arg(short, long, value_name = "OUT.sessbundle")]
        output: PathBuf,
        /// How to open the input.
        #[command(flatten)]
        keys: KeyArgs,
        /// New passphrase from this file (one slot).
        #[arg(long, value_name = "F")]
        new_passphrase_file: Option<PathBuf>,
        /// New passphrase from this environment variable (one slot).
        #[arg(long, value_name = "VAR")]
        new_passphrase_env: Option<String>,
        /// New key file (one slot each).
        #[arg(long, value_name = "K")]
        new_key_file: Vec<PathBuf>,
        #[command(flatten)]
        kdf: KdfArgs,
        #[arg(long)]
        force: bool,
    },
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
}

impl KeyArgs {
    pub fn is_empty(&self) -> bool {
        self.passphrase_file.is_none() && self.passphrase_env.is_none() && self.key_file.is_empty()
    }
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
