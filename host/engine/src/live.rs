//! A stored session live in its own Chromium: restore, hand out the CDP
//! URL, autosave, capture and save on the way out.
//!
//! One open is one entry of the session's history: the first save adds a
//! snapshot, autosaves and the final save replace it (`Store::save_over`),
//! so a rollback steps back one open, not one autosave.

use std::future::Future;
use std::time::Duration;

use sessbundle::SessionState;
use sessbundle::records::normalize_cookie_order;
use sessbundle::state::{Meta, Tab};
use sesshost_browser::{BrowserSession, Closed, Emulation, LaunchOptions, Restoring};
use sesshost_store::{SessionLock, now_ms};

use crate::engine::{Engine, blocking};
use crate::error::{Error, Result, ResultExt};

/// What to open and how.
#[derive(Debug, Clone, Default)]
pub struct OpenRequest {
    pub name: String,
    /// Extra tabs to open after the restored ones.
    pub urls: Vec<String>,
    /// Show windows (needs a display); closing the last one ends the open.
    pub headed: bool,
}

/// Why a live session should stop (given by the caller's stop future).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Interrupt,
    Terminate,
}

/// How a live session ended.
#[derive(Debug, Clone)]
pub struct CloseReport {
    /// The snapshot this open wrote, if it saved anything.
    pub seq: Option<u64>,
    pub why: &'static str,
}

/// An open session: a restored Chromium plus what is needed to save it.
/// Dropping it kills the browser without saving (use [`LiveSession::run`]
/// or [`LiveSession::close`]).
pub struct LiveSession {
    engine: Engine,
    name: String,
    browser: BrowserSession,
    /// The snapshot this open writes to, once it has written one.
    seq: Option<u64>,
    last: SessionState,
    loaded_meta: Meta,
    /// The rest of the restore (storage writers, tab loads), running since
    /// `open_live` returned; `save`, `close` and `run` wait for it first.
    restoring: Option<Restoring>,
    _lock: SessionLock,
}

impl Engine {
    /// Restore session `req.name` into a new Chromium. Fails at once if the
    /// session is open elsewhere or expired; on a failed restore the stored
    /// session is unchanged and no browser is left behind.
    ///
    /// Returns as soon as the restored state is in force (the restore gate
    /// is up, tens of ms after Chromium is connected): hand
    /// [`LiveSession::ws_url`] out then. The rest of the restore finishes in
    /// the background; a client connecting meanwhile is held until every
    /// restored tab is rebuilt (see `sesshost_browser`), and
    /// [`LiveSession::save`], [`LiveSession::close`] and [`LiveSession::run`]
    /// wait for it first and report its failure (then nothing is saved).
    pub async fn open_live(&self, req: OpenRequest) -> Result<LiveSession> {
        // The lock and the session's emulation (from its manifest, no
        // chunks read) first; then Chromium starts with those flags while
        // the state itself is read and decrypted.
        let (lock, launch_emulation) = self.lock_and_peek(&req.name).await?;
        let opts = LaunchOptions {
            headed: req.headed,
            emulation: launch_emulation.clone(),
            profile_root: Some(self.run_dir()),
            ..Default::default()
        };
        let launching = BrowserSession::spawn(opts);
        // Dropping `launching` on an error kills the browser.
        let state = self.load_for_open(&req.name).await?;
        let browser = launching.await?;
        let full = Emulation::from_meta(&state.meta);
        if full != launch_emulation
            && let Err(e) = browser.set_emulation(full).await
        {
            browser.shutdown().await;
            return Err(Error::from(e).context("applying the session's emulation failed"));
        }
        self.restore_live(req, lock, state, browser).await
    }

    /// Restore session `req.name` into `browser`, one already launched (a
    /// pooled browser: empty profile, no emulation flags, launched with
    /// `LaunchOptions { profile_root: Some(engine.run_dir()), .. }`). The
    /// session's emulation is applied over CDP first
    /// ([`BrowserSession::set_emulation`]; see `sesshost_browser` for what
    /// that does not cover); `req.headed` is ignored (the browser is what it
    /// is). On any failure the browser is shut down and the stored session
    /// is unchanged.
    pub async fn open_live_in(
        &self,
        req: OpenRequest,
        browser: BrowserSession,
    ) -> Result<LiveSession> {
        let (lock, state) = match self.lock_and_load(&req.name).await {
            Ok(v) => v,
            Err(e) => {
                browser.shutdown().await;
                return Err(e);
            }
        };
        if let Err(e) = browser
            .set_emulation(Emulation::from_meta(&state.meta))
            .await
        {
            browser.shutdown().await;
            return Err(Error::from(e).context(
                "applying the session's emulation to the browser failed; the stored session is unchanged",
            ));
        }
        self.restore_live(req, lock, state, browser).await
    }

    /// Take the session's lock (held for the whole open: a second open of
    /// it fails at once) and load it ([`Engine::load_for_open`]).
    async fn lock_and_load(&self, name: &str) -> Result<(SessionLock, SessionState)> {
        let lock = self.lock_open(name).await?;
        Ok((lock, self.load_for_open(name).await?))
    }

    /// Take the session's lock and read its emulation from its newest
    /// manifest (no chunks); refuses an expired session.
    async fn lock_and_peek(&self, name: &str) -> Result<(SessionLock, Emulation)> {
        let lock = self.lock_open(name).await?;
        let n = name.to_string();
        let info = self.with_store(move |s| Ok(s.show(&n)?)).await?;
        refuse_expired(name, info.expires_at)?;
        let em = info.latest().map(|l| &l.summary).map(|s| Emulation {
            user_agent: s.user_agent.clone(),
            viewport: s.viewport.as_deref().and_then(parse_viewport),
            locale: s.locale.clone(),
            timezone: s.timezone.clone(),
        });
        Ok((lock, em.unwrap_or_default()))
    }

    async fn lock_open(&self, name: &str) -> Result<SessionLock> {
        let home = self.home().clone();
        let n = name.to_string();
        blocking(move || Ok(home.lock_session(&n)?)).await
    }

    /// Load a session to open it: refuse it if expired, mark it used.
    async fn load_for_open(&self, name: &str) -> Result<SessionState> {
        let name = name.to_string();
        self.with_store(move |s| {
            let state = s.load(&name)?;
            let now = now_ms();
            refuse_expired(&name, state.meta.expires_at)?;
            s.touch(&name, now)?;
            Ok(state)
        })
        .await
    }

    /// Restore `state` (plus `req.urls` as extra tabs) into `browser`; on
    /// failure shut the browser down.
    async fn restore_live(
        &self,
        req: OpenRequest,
        lock: SessionLock,
        state: SessionState,
        browser: BrowserSession,
    ) -> Result<LiveSession> {
        let mut shown = state.clone();
        shown.tabs.extend(req.urls.iter().map(|u| Tab {
            url: u.clone(),
            ..Default::default()
        }));
        let restoring = match browser.restore_in_background(&shown).await {
            Ok(r) => r,
            Err(e) => {
                browser.shutdown().await;
                return Err(Error::from(e).context(RESTORE_FAILED));
            }
        };
        Ok(LiveSession {
            engine: self.clone(),
            name: req.name,
            browser,
            seq: None,
            loaded_meta: state.meta.clone(),
            last: state,
            restoring: Some(restoring),
            _lock: lock,
        })
    }
}

const RESTORE_FAILED: &str =
    "restoring the session into Chromium failed; the stored session is unchanged";

fn refuse_expired(name: &str, expires_at: Option<i64>) -> Result<()> {
    let now = now_ms();
    if let Some(exp) = expires_at.filter(|&e| e <= now) {
        return Err(Error::Invalid(format!(
            "session {name} expired {} minutes ago: extend it with `host session extend {name} --by 7d`, or delete it",
            (now - exp) / 60_000
        )));
    }
    Ok(())
}

/// A manifest's `WxH` viewport (scale factor 1; the full one comes with
/// the state and is applied over CDP if it differs).
fn parse_viewport(s: &str) -> Option<sessbundle::state::Viewport> {
    let (w, h) = s.split_once('x')?;
    Some(sessbundle::state::Viewport {
        width: w.parse().ok()?,
        height: h.parse().ok()?,
        device_scale_factor: 1.0,
    })
}

/// The comparable content of a state: what a save would change.
fn content(s: &SessionState) -> SessionState {
    let mut c = s.clone();
    normalize_cookie_order(&mut c);
    c.meta.updated_at = 0;
    c.meta.last_used_at = None;
    c
}

impl LiveSession {
    /// The CDP websocket URL (full control of this browser: hand it only to
    /// the session's user).
    pub fn ws_url(&self) -> &str {
        self.browser.ws_url()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn is_headed(&self) -> bool {
        self.browser.is_headed()
    }

    /// The browser, for callers that drive it directly.
    pub fn browser(&self) -> &BrowserSession {
        &self.browser
    }

    /// The snapshot this open has written (autosaves and the final save
    /// replace it), `None` before its first save.
    pub fn seq(&self) -> Option<u64> {
        self.seq
    }

    /// The state last loaded from or saved to the store by this open.
    pub fn state(&self) -> &SessionState {
        &self.last
    }

    /// Wait for the restore started by the open to finish (once); its
    /// failure is returned (then this open must not save: the browser holds
    /// a half-restored session).
    pub async fn restored(&mut self) -> Result<()> {
        match self.restoring.take() {
            Some(r) => r
                .finish()
                .await
                .map_err(|e| Error::from(e).context(RESTORE_FAILED)),
            None => Ok(()),
        }
    }

    /// Capture and save if anything changed (after the restore finished).
    /// Returns whether it saved.
    pub async fn save(&mut self, why: &str) -> Result<bool> {
        self.restored().await?;
        let mut captured = self
            .browser
            .capture(Some(&self.last))
            .await
            .with_context(|| format!("capture for {why} failed"))?;
        // The session's emulation and lifecycle facts are the store's, not
        // what this browser happened to report.
        let browser = captured.meta.browser.take();
        captured.meta = Meta {
            browser,
            ..self.loaded_meta.clone()
        };
        if content(&captured) == content(&self.last) {
            tracing::debug!("{why}: nothing changed");
            return Ok(false);
        }
        self.commit(captured, why).await?;
        Ok(true)
    }

    /// Capture, apply `edit` to what is saved (the session's meta, e.g. a
    /// later expiry, and its `extra` data, e.g. the execution context) and
    /// save at once, changed or not: the edit is durable when this returns
    /// and every later save keeps it. Returns the snapshot written.
    pub async fn edit_and_save(
        &mut self,
        why: &str,
        edit: impl FnOnce(
            &mut Meta,
            &mut std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
        ),
    ) -> Result<u64> {
        let mut captured = self
            .browser
            .capture(Some(&self.last))
            .await
            .with_context(|| format!("capture for {why} failed"))?;
        let browser = captured.meta.browser.take();
        let mut meta = self.loaded_meta.clone();
        edit(&mut meta, &mut captured.extra);
        self.loaded_meta = meta.clone();
        captured.meta = Meta { browser, ..meta };
        self.commit(captured, why).await
    }

    /// Save `captured` over this open's snapshot.
    async fn commit(&mut self, captured: SessionState, why: &str) -> Result<u64> {
        let (name, seq) = (self.name.clone(), self.seq);
        let to_save = captured.clone();
        let report = self
            .engine
            .with_store(move |s| Ok(s.save_over(&name, &to_save, now_ms(), seq)?))
            .await?;
        self.seq = Some(report.seq);
        self.last = captured;
        tracing::info!(
            "{why}: saved snapshot {} ({} of {} chunks new, {} bytes written)",
            report.seq,
            report.chunks_written,
            report.chunks_total,
            report.bytes_written
        );
        Ok(report.seq)
    }

    /// Autosave every `autosave` until `stop` resolves or (headed) the last
    /// window closes; then capture, save and close the browser. A failed
    /// autosave is logged and retried at the next tick.
    pub async fn run(
        mut self,
        autosave: Duration,
        stop: impl Future<Output = StopReason>,
    ) -> Result<CloseReport> {
        if let Err(e) = self.restored().await {
            self.browser.shutdown().await;
            return Err(e);
        }
        let mut tick = tokio::time::interval(autosave);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        tokio::pin!(stop);
        let outcome: Result<&'static str> = loop {
            tokio::select! {
                why = &mut stop => {
                    let why = match why {
                        StopReason::Interrupt => "interrupt",
                        StopReason::Terminate => "terminate",
                    };
                    break self.save(why).await.map(|_| why);
                }
                c = self.browser.wait_closed() => match c {
                    Closed::LastWindowClosed => {
                        break self.save("last window closed").await.map(|_| "last window closed");
                    }
                    Closed::BrowserGone => break Err(Error::Invalid(format!(
                        "Chromium exited on its own; the session keeps its last autosave ({})",
                        self.seq.map_or("none in this run".to_string(), |s| format!("snapshot {s}"))
                    ))),
                },
                _ = tick.tick() => {
                    if let Err(e) = self.save("autosave").await {
                        tracing::warn!("autosave failed, will retry: {e}");
                    }
                }
            }
        };
        let seq = self.seq;
        self.browser.shutdown().await;
        Ok(CloseReport { seq, why: outcome? })
    }

    /// Save (if `save`) and close the browser.
    pub async fn close(mut self, save: bool) -> Result<CloseReport> {
        if let Err(e) = self.restored().await {
            self.browser.shutdown().await;
            return Err(e);
        }
        let r = if save {
            self.save("close").await.map(|_| ())
        } else {
            Ok(())
        };
        let seq = self.seq;
        self.browser.shutdown().await;
        r?;
        Ok(CloseReport { seq, why: "close" })
    }
}
