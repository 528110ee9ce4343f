//! Plugin flags, as data: `host plugin …`, the grants given to a plugin,
//! `host push` / `host pull`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::KeyArgs;

#[derive(Debug, Clone, Subcommand)]
pub enum PluginCommand {
    /// Show a plugin's world, contract version, exports and the capabilities it can ask for.
    Inspect {
        #[arg(value_name = "P.wasm")]
        plugin: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// What the operator grants a plugin. Nothing by default.
#[derive(Debug, Clone, Args, Default)]
pub struct GrantArgs {
    /// Configuration for the plugin, `key=value`; a value `env:NAME` or
    /// `file:PATH` is read from the environment or a file (keeps secrets off argv).
    #[arg(long = "plugin-config", value_name = "KEY=VALUE")]
    pub plugin_config: Vec<String>,
    /// A TOML file of plugin configuration (same value syntax).
    #[arg(long = "plugin-config-file", value_name = "F")]
    pub plugin_config_file: Option<PathBuf>,
    /// Let the plugin reach HOST:PORT over HTTP (repeatable; nothing else is reachable).
    #[arg(long = "allow-host", value_name = "HOST:PORT")]
    pub allow_host: Vec<String>,
    /// Give the plugin a directory, HOST[:GUEST][:ro] (repeatable; no other files are visible).
    #[arg(long = "allow-dir", value_name = "DIR")]
    pub allow_dir: Vec<String>,
    /// Pass this host environment variable to the plugin (repeatable; none by default).
    #[arg(long = "plugin-env", value_name = "NAME")]
    pub plugin_env: Vec<String>,
    /// Wall-clock limit per plugin call in ms (default 2000).
    #[arg(long = "plugin-deadline-ms", value_name = "N")]
    pub plugin_deadline_ms: Option<u64>,
    /// Memory limit per plugin instance in MiB (default 128).
    #[arg(long = "plugin-memory-mib", value_name = "N")]
    pub plugin_memory_mib: Option<u64>,
}

impl GrantArgs {
    /// Whether any grant flag (the ones that only mean something with a
    /// plugin) was given.
    pub fn any(&self) -> bool {
        !self.plugin_config.is_empty()
            || self.plugin_config_file.is_some()
            || !self.allow_host.is_empty()
            || !self.allow_dir.is_empty()
            || !self.plugin_env.is_empty()
            || self.plugin_deadline_ms.is_some()
            || self.plugin_memory_mib.is_some()
    }
}

/// A storage-backend plugin and its grants, optional: `host run`'s durable
/// tier (and with --cluster its shared bucket), and the bucket of `host
/// tenant|key --cluster`. One definition, so the same flags mean the same
/// everywhere (`plugin_cmd::storage` turns them into a plugin and grants).
#[derive(Debug, Clone, Args, Default)]
pub struct StorageArgs {
    /// A storage-backend plugin (s3.wasm, fs.wasm). `host run`: the durable tier (every committed
    /// session is written through to it, a session missing locally is read from it; needs the
    /// repository key: --key-file, --passphrase-file or --passphrase-env, never prompted), with
    /// --cluster the bucket the hosts share. `host tenant|key --cluster`: that bucket (no key needed).
    #[arg(long, value_name = "P.wasm")]
    pub plugin: Option<PathBuf>,
    #[command(flatten)]
    pub grants: GrantArgs,
}

#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    pub name: String,
    /// The storage-backend plugin (e.g. s3.wasm, fs.wasm).
    #[arg(long, value_name = "P.wasm")]
    pub plugin: PathBuf,
    #[command(flatten)]
    pub grants: GrantArgs,
    /// The repository key (not the home's key): the same on every machine that pulls.
    #[command(flatten)]
    pub keys: KeyArgs,
}

#[derive(Debug, Clone, Args)]
pub struct PullArgs {
    pub name: String,
    #[arg(long, value_name = "P.wasm")]
    pub plugin: PathBuf,
    /// Store it locally under another name.
    #[arg(long = "as", value_name = "NAME")]
    pub as_name: Option<String>,
    /// Replace a local session of that name.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub grants: GrantArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
}
