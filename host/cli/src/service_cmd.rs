//! `host tenant …` and `host key …`: one call each into the service's
//! tenant registry (`sesshost_service::tenants`), then printing. A new key
//! is printed alone on stdout (for `$(host key create …)`), the usage hint
//! on stderr.

use std::io::Write;
use std::path::Path;

use sesshost_service::error::ServiceError;
use sesshost_service::tenants::Registry;

use crate::UsageError;
use crate::args::service::{KeyCommand, TenantCommand};

/// A bad tenant name is a usage error (exit 2); the rest exit 1.
fn map_err(e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::InvalidTenantName { .. } => anyhow::Error::new(UsageError(e.to_string())),
        e => anyhow::Error::new(e),
    }
}

pub fn tenant(home: &Path, cmd: TenantCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    let reg = Registry::open(home).map_err(map_err)?;
    match cmd {
        TenantCommand::Add { name } => {
            let t = reg.add_tenant(&name).map_err(map_err)?;
            writeln!(out, "tenant {} created", t.name)?;
        }
        TenantCommand::List { json } => {
            let list = reg.list_tenants().map_err(map_err)?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &list)?;
                writeln!(out)?;
            } else if list.is_empty() {
                writeln!(out, "no tenants (create one with `host tenant add NAME`)")?;
            } else {
                writeln!(out, "{:<24} CREATED", "NAME")?;
                for t in list {
                    writeln!(out, "{:<24} {}", t.name, t.created_at)?;
                }
            }
        }
        TenantCommand::Remove { name } => {
            let t = reg.remove_tenant(&name).map_err(map_err)?;
            writeln!(out, "tenant {} removed (its API keys are revoked)", t.name)?;
        }
    }
    Ok(())
}

pub fn key(home: &Path, cmd: KeyCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    let reg = Registry::open(home).map_err(map_err)?;
    match cmd {
        KeyCommand::Create { tenant } => {
            let (info, key) = reg.create_key(&tenant).map_err(map_err)?;
            writeln!(out, "{}", key.expose())?;
            out.flush()?;
            eprintln!(
                "API key {} for tenant {} (shown once; keep it secret). Send it as the header `Authorization: Bearer KEY`.",
                info.id, info.tenant
            );
        }
        KeyCommand::List { json } => {
            let list = reg.list_keys().map_err(map_err)?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &list)?;
                writeln!(out)?;
            } else if list.is_empty() {
                writeln!(
                    out,
                    "no API keys (create one with `host key create --tenant NAME`)"
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
        KeyCommand::Revoke { id } => {
            let k = reg.revoke_key(&id).map_err(map_err)?;
            writeln!(out, "API key {} (tenant {}) revoked", k.id, k.tenant)?;
        }
    }
    Ok(())
}
