//! `host run`: the session service.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
