//! `host session open NAME`: restore a stored session into its own Chromium,
//! hand out the CDP URL, autosave, and capture + save on the way out
//! (SIGINT, SIGTERM, or the last window closed in `--headed` mode).
//!
//! One open is one entry of the session's history: the first save adds a
//! snapshot, autosaves and the final save replace it (`Store::save_over`),
//! so `host session rollback` steps back one open, not 30 seconds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use sessbundle::SessionState;
use sessbundle::atomic::AtomicFile;
use sessbundle::records::normalize_cookie_order;
use sessbundle::state::Tab;
use sesshost_browser::{BrowserSession, Closed, Emulation, LaunchOptions};
use sesshost_store::{Home, Store, now_ms};

use crate::session_cmd::parse_duration;

#[derive(Debug, Clone, Args)]
pub struct OpenArgs {
    pub name: String,
    /// Also open this URL in a new tab (repeatable).
    #[arg(long = "url", value_name = "URL")]
    pub urls: Vec<String>,
    /// Show browser windows (needs a display). Closing the last window
    /// saves the session and exits.
    #[arg(long)]
    pub headed: bool,
    /// Write the CDP websocket URL to this file (mode 0600: it grants full
    /// control of the browser) for Playwright `connectOverCDP` / Puppeteer.
    #[arg(long, value_name = "F")]
    pub cdp_file: Option<PathBuf>,
    /// Save the session this often while it is open, e.g. `30s`, `5m`
    /// (a crash loses at most this much).
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration)]
    pub autosave: Duration,
}

pub fn run(home: &Path, a: OpenArgs) -> Result<()> {
    let home = Home::new(home);
    let store = home.store()?;
    // Held until we return: a second `open` of this session fails at once.
    let _lock = home.lock_session(&a.name)?;
    let state = store.load(&a.name)?;
    let now = now_ms();
    if let Some(exp) = state.meta.expires_at.filter(|&e| e <= now) {
        bail!(
            "session {} expired {} minutes ago: extend it with `host session extend {} --by 7d`, or delete it",
            a.name,
            (now - exp) / 60_000,
            a.name
        );
    }
    store.touch(&a.name, now)?;
    crate::plugin_cmd::tokio_rt()?.block_on(open(Arc::new(store), state, a))
}

/// The comparable content of a state: what a save would change.
fn content(s: &SessionState) -> SessionState {
    let mut c = s.clone();
    normalize_cookie_order(&mut c);
    c.meta.updated_at = 0;
    c.meta.last_used_at = None;
    c
}

struct Saver {
    store: Arc<Store>,
    name: String,
    /// The snapshot this open writes to, once it has written one.
    seq: Option<u64>,
    last: SessionState,
    loaded_meta: sessbundle::state::Meta,
}

impl Saver {
    /// Capture and save if anything changed. Returns whether it saved.
    async fn save(&mut self, session: &BrowserSession, why: &str) -> Result<bool> {
        let mut captured = session
            .capture(Some(&self.last))
            .await
            .with_context(|| format!("capture for {why} failed"))?;
        // The session's emulation and lifecycle facts are the store's, not
        // what this browser happened to report.
        let browser = captured.meta.browser.take();
        captured.meta = sessbundle::state::Meta {
            browser,
            ..self.loaded_meta.clone()
        };
        if content(&captured) == content(&self.last) {
            tracing::debug!("{why}: nothing changed");
            return Ok(false);
        }
        let (store, name, seq) = (self.store.clone(), self.name.clone(), self.seq);
        let to_save = captured.clone();
        let report =
            tokio::task::spawn_blocking(move || store.save_over(&name, &to_save, now_ms(), seq))
                .await
                .context("the save task failed")??;
        self.seq = Some(report.seq);
        self.last = captured;
        tracing::info!(
            "{why}: saved snapshot {} ({} of {} chunks new, {} bytes written)",
            report.seq,
            report.chunks_written,
            report.chunks_total,
            report.bytes_written
        );
        Ok(true)
    }
}

async fn open(store: Arc<Store>, state: SessionState, a: OpenArgs) -> Result<()> {
    let opts = LaunchOptions {
        headed: a.headed,
        emulation: Emulation::from_meta(&state.meta),
        ..Default::default()
    };
    let session = BrowserSession::launch(opts).await?;
    let mut shown = state.clone();
    shown.tabs.extend(a.urls.iter().map(|u| Tab {
        url: u.clone(),
        ..Default::default()
    }));
    if let Err(e) = session.restore(&shown).await {
        session.shutdown().await;
        return Err(e).context(
            "restoring the session into Chromium failed; the stored session is unchanged",
        );
    }
    let ws = session.ws_url().to_string();
    if let Some(f) = &a.cdp_file {
        let mut w = AtomicFile::create(f, 0o600)?;
        std::io::Write::write_all(&mut w, format!("{ws}\n").as_bytes())?;
        w.commit()?;
    }
    println!("{ws}");
    eprintln!(
        "session {} is open (CDP: {ws}); Ctrl-C saves it and exits{}",
        a.name,
        if a.headed {
            ", and so does closing the last window"
        } else {
            ""
        }
    );
    let loaded_meta = state.meta.clone();
    let mut saver = Saver {
        store,
        name: a.name.clone(),
        seq: None,
        last: state,
        loaded_meta,
    };
    let mut tick = tokio::time::interval(a.autosave);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let outcome: Result<()> = loop {
        tokio::select! {
            _ = sigint.recv() => break saver.save(&session, "interrupt").await.map(|_| ()),
            _ = sigterm.recv() => break saver.save(&session, "terminate").await.map(|_| ()),
            c = session.wait_closed() => match c {
                Closed::LastWindowClosed => break saver.save(&session, "last window closed").await.map(|_| ()),
                Closed::BrowserGone => break Err(anyhow::anyhow!(
                    "Chromium exited on its own; the session keeps its last autosave ({})",
                    saver.seq.map_or("none in this run".to_string(), |s| format!("snapshot {s}"))
                )),
            },
            _ = tick.tick() => {
                if let Err(e) = saver.save(&session, "autosave").await {
                    tracing::warn!("autosave failed, will retry: {e:#}");
                }
            }
        }
    };
    session.shutdown().await;
    if let Some(f) = &a.cdp_file {
        let _ = std::fs::remove_file(f);
    }
    outcome?;
    eprintln!(
        "session {} saved{}",
        a.name,
        saver
            .seq
            .map_or(String::new(), |s| format!(" (snapshot {s})"))
    );
    Ok(())
}
