//! Service administration flags, as data: `host tenant …` and `host key …`
//! (tenants and API keys of `host run`: under HOME/service/, or with
//! `--cluster` in the bucket every `host run --cluster` on it reads).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::plugin::StorageArgs;

/// Which registry a command works on: the home's (default) or, with
/// `--cluster`, the cluster's bucket, given as to `host run --cluster`.
#[derive(Debug, Clone, Args, Default)]
pub struct RegistryArgs {
    /// Work on the tenants and API keys in the cluster's bucket (read by every `host run --cluster`
    /// on it) instead of HOME/service/. Give the same --plugin, --plugin-config /
    /// --plugin-config-file and --allow-host as to `host run --cluster`; no repository key needed.
    #[arg(long)]
    pub cluster: bool,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// With --cluster: `host run`'s settings file, accepted so the same flags work here; it is
    /// checked, and nothing in it changes where tenants and keys live.
    #[arg(long, value_name = "sesshost.toml")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (name: 1-64 characters from a-z, 0-9, '_' and '-').
    Add {
        name: String,
        #[command(flatten)]
        at: RegistryArgs,
    },
    /// List tenants.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        at: RegistryArgs,
    },
    /// Remove a tenant and revoke all its API keys.
    Remove {
        name: String,
        #[command(flatten)]
        at: RegistryArgs,
    },
}

impl TenantCommand {
    pub fn at(&self) -> &RegistryArgs {
        match self {
            TenantCommand::Add { at, .. }
            | TenantCommand::List { at, .. }
            | TenantCommand::Remove { at, .. } => at,
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum KeyCommand {
    /// Create an API key for a tenant; the key is printed once, alone, on stdout.
    Create {
        #[arg(long, value_name = "NAME")]
        tenant: String,
        #[command(flatten)]
        at: RegistryArgs,
    },
    /// List API keys (ids, tenants, dates; never the keys).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        at: RegistryArgs,
    },
    /// Revoke an API key by id (refused at once by a `host run` on the same home; with --cluster by
    /// every host on the bucket within 5 s).
    Revoke {
        #[arg(value_name = "KEY_ID")]
        id: String,
        #[command(flatten)]
        at: RegistryArgs,
    },
}

impl KeyCommand {
    pub fn at(&self) -> &RegistryArgs {
        match self {
            KeyCommand::Create { at, .. }
            | KeyCommand::List { at, .. }
            | KeyCommand::Revoke { at, .. } => at,
        }
    }
}
