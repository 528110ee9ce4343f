//! `host session list --cluster`: the fleet as the cluster's bucket
//! records it (`sesshost_cluster::view`), printed. Flags → the bucket
//! (`Engine::bucket`) → one read → printing.

use std::io::Write;

use anyhow::Result;
use sesshost_cluster::view::FleetView;
use sesshost_engine::Engine;
use sesshost_store::now_ms;

use crate::args::session::FleetArgs;
use crate::print::fmt_span;

pub async fn list(engine: &Engine, at: &FleetArgs, json: bool, out: &mut dyn Write) -> Result<()> {
    let Some((plugin, grants)) = crate::plugin_cmd::storage(&at.storage)? else {
        crate::usage!(
            "--cluster lists the fleet in the cluster's bucket: add --plugin s3.wasm with the same --plugin-config (or --plugin-config-file) and --allow-host as `host run --cluster`"
        );
    };
    let b = engine.bucket(&plugin, &grants).await?;
    let view = tokio::task::spawn_blocking(move || sesshost_cluster::view::read(b.as_ref()))
        .await
        .map_err(|e| anyhow::anyhow!("reading the bucket stopped: {e}"))?
        .map_err(|e| anyhow::anyhow!("cannot read the cluster's records in the bucket: {e}"))?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &view)?;
        writeln!(out)?;
        return Ok(());
    }
    print(out, &view, now_ms())?;
    Ok(())
}

fn print(out: &mut dyn Write, v: &FleetView, now: i64) -> std::io::Result<()> {
    if v.hosts.is_empty() && v.sessions.is_empty() {
        writeln!(
            out,
            "no cluster records in this bucket: is `host run --cluster` running on it, with the same --plugin-config (prefix included)?"
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<40} {:<28} {:>6} {:>8}",
        "SESSION", "HOLDER", "EPOCH", "COMMITS"
    )?;
    for s in &v.sessions {
        writeln!(
            out,
            "{:<40} {:<28} {:>6} {:>8}",
            s.id,
            s.holder.as_deref().unwrap_or("- (hibernated)"),
            s.epoch,
            s.commits
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<28} {:<32} {:>9}  LAST RENEWAL (its clock)",
        "HOST", "ADDR", "RENEWALS"
    )?;
    for h in &v.hosts {
        let ago = now.saturating_sub(h.renewed_at_ms);
        writeln!(
            out,
            "{:<28} {:<32} {:>9}  {} ago",
            h.host_id,
            h.addr,
            h.renewals,
            fmt_span(ago.max(0))
        )?;
    }
    let gc = match &v.gc {
        Some(g) => match &g.holder {
            Some(h) => format!("{h} (epoch {})", g.epoch),
            None => format!("nobody (released at epoch {})", g.epoch),
        },
        None => "nobody yet".into(),
    };
    writeln!(out, "\ngarbage collection: {gc}")?;
    writeln!(
        out,
        "a host counts as dead once its record stops changing for 1.5 T (see GET /v1/cluster on any host for the live view)"
    )?;
    for k in &v.unreadable {
        writeln!(
            out,
            "warning: {k} is not a record this version reads (skipped)"
        )?;
    }
    Ok(())
}
