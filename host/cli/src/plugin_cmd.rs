//! `host plugin inspect`, `host push`, `host pull`: flags → one engine
//! call → printing.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Result, bail};
use sesshost_engine::{Engine, PullRequest, PushRequest, Remote};
use sesshost_plugin::Grants;

use crate::args::KeyArgs;
use crate::args::plugin::{GrantArgs, PluginCommand, PullArgs, PushArgs, StorageArgs};
use crate::requests;
use crate::secrets::{self, Purpose};

pub fn run(home: &std::path::Path, cmd: PluginCommand, out: &mut dyn Write) -> Result<()> {
    match cmd {
        PluginCommand::Inspect { plugin, json } => {
            let info = sesshost_engine::plugin_runtime(home)?.inspect(&plugin)?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &info)?;
                writeln!(out)?;
                return Ok(());
            }
            writeln!(
                out,
                "{} ({} bytes, blake3 {})",
                info.name, info.size_bytes, info.blake3
            )?;
            writeln!(
                out,
                "world:        {}",
                info.world
                    .as_deref()
                    .unwrap_or("(none: not a sesshost plugin)")
            )?;
            writeln!(
                out,
                "version:      {}",
                info.version.as_deref().unwrap_or("-")
            )?;
            writeln!(
                out,
                "loadable:     {}",
                if info.loadable {
                    "yes".to_string()
                } else {
                    format!("no: {}", info.problem.as_deref().unwrap_or(""))
                }
            )?;
            writeln!(out, "exports:      {}", info.exports.join(", "))?;
            writeln!(
                out,
                "capabilities: {}",
                if info.capabilities.is_empty() {
                    "none".to_string()
                } else {
                    info.capabilities.join(", ")
                }
            )?;
            writeln!(out, "imports:      {}", info.imports.join(", "))?;
            Ok(())
        }
    }
}

/// The storage plugin and its grants of [`StorageArgs`] (`host run`,
/// `host tenant|key --cluster`); `None` without --plugin, a usage error
/// when grants are given without it.
pub(crate) fn storage(s: &StorageArgs) -> Result<Option<(PathBuf, Grants)>> {
    match &s.plugin {
        Some(p) => Ok(Some((p.clone(), requests::grants(&s.grants)?))),
        None if s.grants.any() => crate::usage!(
            "plugin grants (--plugin-config, --plugin-config-file, --allow-host, …) are given, but no --plugin: add --plugin s3.wasm (or fs.wasm)"
        ),
        None => Ok(None),
    }
}

/// The backend plugin, its grants and the repository key (exactly one;
/// asked on the terminal only when `prompt`).
pub(crate) fn remote(
    plugin: &std::path::Path,
    grants: &GrantArgs,
    keys: &KeyArgs,
    create: bool,
    prompt: bool,
) -> Result<Remote> {
    remote_with(
        plugin.to_path_buf(),
        requests::grants(grants)?,
        keys,
        create,
        prompt,
    )
}

/// [`remote`] with the grants already built.
pub(crate) fn remote_with(
    plugin: PathBuf,
    grants: Grants,
    keys: &KeyArgs,
    create: bool,
    prompt: bool,
) -> Result<Remote> {
    let purpose = if create {
        Purpose::New
    } else {
        Purpose::Existing
    };
    let mut u = secrets::unlocks(keys, purpose, prompt)?;
    if u.len() != 1 {
        bail!("give one repository key: --passphrase-file, --passphrase-env or --key-file");
    }
    Ok(Remote {
        plugin,
        grants,
        unlock: u.remove(0),
    })
}

pub async fn push(engine: &Engine, a: PushArgs) -> Result<()> {
    let report = engine
        .push(PushRequest {
            name: a.name.clone(),
            remote: remote(&a.plugin, &a.grants, &a.keys, true, true)?,
        })
        .await?;
    eprintln!(
        "pushed session {} through {}: {} of {} chunks were new, {} bytes sent for {} bytes of state",
        a.name,
        a.plugin.display(),
        report.chunks_written,
        report.chunks_total,
        report.bytes_written,
        report.logical_bytes
    );
    Ok(())
}

pub async fn pull(engine: &Engine, a: PullArgs) -> Result<()> {
    let report = engine
        .pull(PullRequest {
            name: a.name.clone(),
            as_name: a.as_name.clone(),
            force: a.force,
            remote: remote(&a.plugin, &a.grants, &a.keys, false, true)?,
        })
        .await?;
    eprintln!(
        "pulled session {} as {} ({} bytes of state)",
        a.name, report.name, report.stored.logical_bytes
    );
    Ok(())
}
