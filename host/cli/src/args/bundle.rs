//! The bundle-file commands' flags (keygen, seal, unseal, sign, verify,
//! inspect, rekey), as data.

use std::path::PathBuf;

use clap::Args;

use super::{KdfArgs, KeyArgs, LimitArgs, RecipientArgs, SealFlags};

/// Make a signing key pair (KEY secret, mode 0600, and KEY.pub), or with --symmetric a raw 256-bit key file for --key-file, or with --identity an X25519 identity (ID, mode 0600) and its recipient ID.pub.
#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// Where to write the key (the public half goes to KEY.pub).
    #[arg(short, long, value_name = "KEY")]
    pub output: PathBuf,
    /// A raw 256-bit key for --key-file instead of a signing key pair.
    #[arg(long, conflicts_with = "identity")]
    pub symmetric: bool,
    /// An identity to receive bundles: give ID.pub to senders (`--recipient ID.pub`), open with `--identity ID`.
    #[arg(long)]
    pub identity: bool,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

/// Seal a session state (JSON) into an encrypted .sessbundle.
#[derive(Debug, Clone, Args)]
pub struct SealArgs {
    #[arg(value_name = "STATE.json")]
    pub input: PathBuf,
    #[arg(short, long, value_name = "OUT.sessbundle")]
    pub output: PathBuf,
    /// How to seal: key slots, their cost, an optional signature.
    #[command(flatten)]
    pub seal: SealFlags,
    /// Overwrite OUT if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Decrypt a .sessbundle into session state JSON (mode 0600: it holds secrets).
#[derive(Debug, Clone, Args)]
pub struct UnsealArgs {
    #[arg(value_name = "IN.sessbundle")]
    pub input: PathBuf,
    #[arg(short, long, value_name = "STATE.json")]
    pub output: PathBuf,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Overwrite STATE.json if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Sign a bundle: writes IN.sessbundle.sig.
#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    #[arg(value_name = "IN.sessbundle")]
    pub input: PathBuf,
    /// The secret signing key (from `host keygen`).
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// Free text for the trusted comment (default: $USER).
    #[arg(long, value_name = "TEXT")]
    pub signer: Option<String>,
}

/// Verify a bundle's signature (embedded or IN.sessbundle.sig) with a public key. No passphrase needed.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    #[arg(value_name = "IN.sessbundle")]
    pub input: PathBuf,
    #[arg(long, value_name = "KEY.pub")]
    pub key: PathBuf,
    #[arg(long)]
    pub json: bool,
}

/// Show a bundle's header facts; with a key or passphrase, a summary of its content (never values).
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    #[arg(value_name = "IN.sessbundle")]
    pub input: PathBuf,
    #[arg(long)]
    pub json: bool,
    /// Ask for the passphrase on the terminal to show the content summary.
    #[arg(long)]
    pub decrypt: bool,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Replace a bundle's keys (add or rotate a passphrase or key file) without re-encrypting its payload.
#[derive(Debug, Clone, Args)]
pub struct RekeyArgs {
    #[arg(value_name = "IN.sessbundle")]
    pub input: PathBuf,
    #[arg(short, long, value_name = "OUT.sessbundle")]
    pub output: PathBuf,
    /// How to open the input.
    #[command(flatten)]
    pub keys: KeyArgs,
    /// New passphrase from this file (one slot).
    #[arg(long, value_name = "F")]
    pub new_passphrase_file: Option<PathBuf>,
    /// New passphrase from this environment variable (one slot).
    #[arg(long, value_name = "VAR")]
    pub new_passphrase_env: Option<String>,
    /// New key file (one slot each).
    #[arg(long, value_name = "K")]
    pub new_key_file: Vec<PathBuf>,
    /// Also seal to these recipients (the `--recipient` slots are added).
    #[command(flatten)]
    pub recipients: RecipientArgs,
    #[command(flatten)]
    pub kdf: KdfArgs,
    #[arg(long)]
    pub force: bool,
}
