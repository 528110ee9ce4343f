//! `host run`: the session service.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::KeyArgs;
use super::plugin::StorageArgs;

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
    /// --plugin and its grants (--plugin-config, --plugin-config-file, --allow-host, …).
    #[command(flatten)]
    pub storage: StorageArgs,
    /// The durable tier's repository key (the same on every machine that reads it, as for `host push`).
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Serve the bucket's sessions together with every other `host run --cluster` on it: exclusive
    /// claims with fenced commits, requests forwarded to the holding host, takeover of a dead host's
    /// sessions. Needs --plugin s3.wasm on a bucket with atomic conditional writes (probed at start).
    /// Tenants and API keys then live in the bucket too (`host tenant|key --cluster` change them).
    #[arg(long)]
    pub cluster: bool,
    /// With --cluster: the URL other hosts reach this one at (default http://LISTEN; in Kubernetes
    /// http://$(POD_IP):8080).
    #[arg(long, value_name = "URL")]
    pub advertise: Option<String>,
    /// With --cluster: the liveness lease T in seconds (renewed every T/3; a host that cannot renew
    /// stops serving at 0.8 T; others take its sessions over after 1.5 T).
    #[arg(long, value_name = "T")]
    pub lease_seconds: Option<u64>,
    /// With --cluster: this host's name in the bucket (default the machine's host name); a random
    /// suffix is added on every start.
    #[arg(long, value_name = "NAME")]
    pub host_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}
