//! Service administration flags, as data: `host tenant …` and `host key …`
//! (tenants and API keys of `host run`, under HOME/service/).

use clap::Subcommand;

#[derive(Debug, Clone, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant (name: 1-64 characters from a-z, 0-9, '_' and '-').
    Add { name: String },
    /// List tenants.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a tenant and revoke all its API keys.
    Remove { name: String },
}

#[derive(Debug, Clone, Subcommand)]
pub enum KeyCommand {
    /// Create an API key for a tenant; the key is printed once, alone, on stdout.
    Create {
        #[arg(long, value_name = "NAME")]
        tenant: String,
    },
    /// List API keys (ids, tenants, dates; never the keys).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key by id (refused at once, also by a running `host run`).
    Revoke {
        #[arg(value_name = "KEY_ID")]
        id: String,
    },
}
