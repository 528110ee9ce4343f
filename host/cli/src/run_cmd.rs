//! `host run`: flags → [`sesshost_service::RunOptions`] → the service,
//! stopped by SIGTERM or SIGINT (every live session is saved first).

use std::path::PathBuf;

use anyhow::Context;
use sesshost_service::RunOptions;

use crate::args::run::RunArgs;

pub async fn run(home: PathBuf, a: RunArgs) -> anyhow::Result<()> {
    let opts = RunOptions {
        home,
        listen: a.listen,
        config: a.config,
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
