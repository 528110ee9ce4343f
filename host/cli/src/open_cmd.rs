//! `host session open NAME`: flags → [`Engine::open_live`] → print the CDP
//! URL → [`LiveSession::run`] until Ctrl-C, SIGTERM or (headed) the last
//! window closes.

use std::io::Write;

use anyhow::Result;
use sessbundle::atomic::AtomicFile;
use sesshost_engine::{Engine, OpenRequest, StopReason};
use tokio::signal::unix::{SignalKind, signal};

use crate::args::session::OpenArgs;

pub async fn run(engine: &Engine, a: OpenArgs) -> Result<()> {
    // Handlers first: a Ctrl-C during launch or restore is then a save
    // request, not a kill that leaves a profile behind.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let live = engine
        .open_live(OpenRequest {
            name: a.name.clone(),
            urls: a.urls.clone(),
            headed: a.headed,
        })
        .await?;
    let ws = live.ws_url().to_string();
    if let Some(f) = &a.cdp_file {
        let mut w = AtomicFile::create(f, 0o600)?;
        w.write_all(format!("{ws}\n").as_bytes())?;
        w.commit()?;
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{ws}")?;
        out.flush()?;
    }
    eprintln!(
        "session {} is open (CDP: {ws}); Ctrl-C saves it and exits{}",
        a.name,
        if a.headed {
            ", and so does closing the last window"
        } else {
            ""
        }
    );
    let stop = async move {
        tokio::select! {
            _ = sigint.recv() => StopReason::Interrupt,
            _ = sigterm.recv() => StopReason::Terminate,
        }
    };
    let outcome = live.run(a.autosave, stop).await;
    if let Some(f) = &a.cdp_file {
        let _ = std::fs::remove_file(f);
    }
    let report = outcome?;
    eprintln!(
        "session {} saved{}",
        a.name,
        report
            .seq
            .map_or(String::new(), |s| format!(" (snapshot {s})"))
    );
    Ok(())
}
