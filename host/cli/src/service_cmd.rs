//! `host tenant …` and `host key …`: one call each into the service's
//! tenant registry (`sesshost_service::tenants`), then printing. The
//! registry is the home's (HOME/service/) or, with `--cluster`, the
//! cluster's bucket, opened through the same storage plugin and grants as
//! `host run --cluster`. A new key is printed alone on stdout (for
//! `$(host key create …)`), the usage hint on stderr.

use std::io::Write;
use std::path::Path;

use sesshost_service::error::ServiceError;
use sesshost_service::tenants::{BUCKET_CACHE_TTL, Registry};

use crate::UsageError;
use crate::args::service::{KeyCommand, RegistryArgs, TenantCommand};

/// A bad tenant name is a usage error (exit 2); the rest exit 1.
fn map_err(e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::InvalidTenantName { .. } => anyhow::Error::new(UsageError(e.to_string())),
        e => anyhow::Error::new(e),
    }
}

/// The registry a command works on: the home's, or with `--cluster` the
/// cluster's bucket. `main` runs this on its runtime, which must outlive
/// the registry (the plugin's calls run on it).
pub async fn open(home: &Path, at: &RegistryArgs) -> anyhow::Result<Registry> {
    let storage = crate::plugin_cmd::storage(&at.storage)?;
    if !at.cluster {
        if at.storage.plugin.is_some() || at.config.is_some() {
            crate::usage!(
                "--plugin and --config work with --cluster (tenants and keys in the cluster's bucket): add --cluster, or drop them for the home's HOME/service/"
            );
        }
        return Registry::open(home).map_err(map_err);
    }
    let Some((plugin, grants)) = storage else {
        crate::usage!(
            "--cluster works on the cluster's bucket: add --plugin s3.wasm with the same --plugin-config (or --plugin-config-file) and --allow-host as `host run --cluster`"
        );
    };
    if let Some(c) = &at.config {
        sesshost_service::config::Config::load(c).map_err(map_err)?;
    }
    let engine = sesshost_engine::Engine::open(home, sesshost_engine::HomeMode::Create)?;
    Registry::open_cluster(&engine, &plugin, &grants)
        .await
        .map_err(map_err)
}

/// What to add to a hint command so it works on the same registry.
fn suffix(at: &RegistryArgs) -> &'static str {
    if at.cluster {
        " --cluster --plugin … --plugin-config …"
    } else {
        ""
    }
}

/// `host tenant …` on `reg` (from [`open`]).
pub fn tenant(reg: &Registry, cmd: TenantCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    let at = cmd.at();
    let more = suffix(at);
    let place = if at.cluster {
        " in the cluster's bucket"
    } else {
        ""
    };
    match &cmd {
        TenantCommand::Add { name, .. } => {
            let t = reg.add_tenant(name).map_err(map_err)?;
            writeln!(out, "tenant {} created{place}", t.name)?;
        }
        TenantCommand::List { json, .. } => {
            let list = reg.list_tenants().map_err(map_err)?;
            if *json {
                serde_json::to_writer_pretty(&mut *out, &list)?;
                writeln!(out)?;
            } else if list.is_empty() {
                writeln!(
                    out,
                    "no tenants{place} (create one with `host tenant add NAME{more}`)"
                )?;
            } else {
                writeln!(out, "{:<24} CREATED", "NAME")?;
                for t in list {
                    writeln!(out, "{:<24} {}", t.name, t.created_at)?;
                }
            }
        }
        TenantCommand::Remove { name, .. } => {
            let t = reg.remove_tenant(name).map_err(map_err)?;
            writeln!(
                out,
                "tenant {} removed{place} (its API keys are revoked)",
                t.name
            )?;
        }
    }
    Ok(())
}

/// `host key …` on `reg` (from [`open`]).
pub fn key(reg: &Registry, cmd: KeyCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    let at = cmd.at();
    let more = suffix(at);
    match &cmd {
        KeyCommand::Create { tenant, .. } => {
            let (info, key) = reg.create_key(tenant).map_err(map_err)?;
            writeln!(out, "{}", key.expose())?;
            out.flush()?;
            let place = if at.cluster {
                " in the cluster's bucket (every host on it accepts it at once)"
            } else {
                ""
            };
            eprintln!(
                "API key {} for tenant {}{place} (shown once; keep it secret). Send it as the header `Authorization: Bearer KEY`.",
                info.id, info.tenant
            );
        }
        KeyCommand::List { json, .. } => {
            let list = reg.list_keys().map_err(map_err)?;
            if *json {
                serde_json::to_writer_pretty(&mut *out, &list)?;
                writeln!(out)?;
            } else if list.is_empty() {
                writeln!(
                    out,
                    "no API keys (create one with `host key create --tenant NAME{more}`)"
                )?;
            } else {
                writeln!(
                    out,
                    "{:<14} {:<24} {:<22} REVOKED",
                    "ID", "TENANT", "CREATED"
                )?;
                for k in list {
                    writeln!(
                        out,
                        "{:<14} {:<24} {:<22} {}",
                        k.id,
                        k.tenant,
                        k.created_at,
                        k.revoked_at.as_deref().unwrap_or("-")
                    )?;
                }
            }
        }
        KeyCommand::Revoke { id, .. } => {
            let k = reg.revoke_key(id).map_err(map_err)?;
            if at.cluster {
                writeln!(
                    out,
                    "API key {} (tenant {}) revoked in the cluster's bucket (hosts that checked it recently refuse it within {} s)",
                    k.id,
                    k.tenant,
                    BUCKET_CACHE_TTL.as_secs()
                )?;
            } else {
                writeln!(out, "API key {} (tenant {}) revoked", k.id, k.tenant)?;
            }
        }
    }
    Ok(())
}
