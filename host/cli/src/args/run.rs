//! `host run`: the session service.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::KeyArgs;
use super::plugin::GrantArgs;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Address to serve the API on (overrides `listen` in the config).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Settings file (`[limits]`, `[pool]`, `[lifecycle]`, `[security]`); every key has a default.
    #[arg(long, value_name = "sesshost.toml")]
    pub config: Option<PathBuf>,
    /// Log lines as text (default) or JSON objects, one per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// A storage-backend plugin (s3.wasm, fs.wasm) as the durable tier: every committed session is written
    /// through to it, and a session missing locally is read from it. Needs the repository key
    /// (--key-file, --passphrase-file or --passphrase-env; never prompted).
    #[arg(long, value_name = "P.wasm")]
    pub plugin: Option<PathBuf>,
    #[command(flatten)]
    pub grants: GrantArgs,
    /// The durable tier's repository key (the same on every machine that reads it, as for `host push`).
    #[command(flatten)]
    pub keys: KeyArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
