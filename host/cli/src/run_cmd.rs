//! `host run`: flags → [`sesshost_service::RunOptions`] → the service,
//! stopped by SIGTERM or SIGINT (every live session is saved first).

use std::path::PathBuf;

use anyhow::Context;
use sesshost_service::RunOptions;

use crate::args::run::RunArgs;

pub async fn run(home: PathBuf, a: RunArgs) -> anyhow::Result<()> {
    let durable = match crate::plugin_cmd::storage(&a.storage)? {
        Some((plugin, grants)) => Some(crate::plugin_cmd::remote_with(
            plugin, grants, &a.keys, true, false,
        )?),
        None => {
            if !a.keys.is_empty() {
                crate::usage!(
                    "a repository key is given, but no --plugin: add --plugin s3.wasm (or fs.wasm)"
                );
            }
            None
        }
    };
    let cluster = if a.cluster {
        if a.storage.plugin.is_none() {
            crate::usage!(
                "--cluster shares sessions through a bucket: add --plugin s3.wasm with its --plugin-config and the repository key"
            );
        }
        Some(sesshost_service::cluster::ClusterOptions {
            host_id: a.host_id.clone(),
            advertise: a.advertise.clone(),
            lease: std::time::Duration::from_secs(
                a.lease_seconds
                    .unwrap_or(sesshost_service::cluster::DEFAULT_LEASE_SECONDS),
            ),
        })
    } else {
        if a.advertise.is_some() || a.lease_seconds.is_some() || a.host_id.is_some() {
            crate::usage!(
                "--advertise, --lease-seconds and --host-id work with --cluster: add --cluster"
            );
        }
        None
    };
    let opts = RunOptions {
        home,
        listen: a.listen,
        config: a.config,
        durable,
        cluster,
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    let stop = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    sesshost_service::run(opts, stop, |addr| {
        eprintln!("sesshost: serving on http://{addr} (API under /v1, metrics at /metrics; SIGTERM or Ctrl-C stops it after saving every live session)");
    })
    .await?;
    Ok(())
}
