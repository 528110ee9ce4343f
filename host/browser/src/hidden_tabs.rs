//! Our own hidden tabs in a session's browser, and the target helpers they
//! need:
//! - the *keeper*: a tab of our own from launch to the end (headless
//!   Chromium drops session cookies when its last tab closes; headed, it
//!   quits with its last window); captures also read storage in it;
//! - short-lived internal pages (a capture's extra tabs), closed after use;
//! - [`mark_internal`] hides a target from capture and last-window
//!   detection; [`attached_page`] waits for chromiumoxide's page of a target.
//!
//! Owns: the keeper's target id, its attached page between captures.
//! Must not touch user tabs.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::target::CreateTargetParams;
use chromiumoxide::{Browser, Page};
use serde_json::json;

use crate::cdp::{browser_cmd, create_target};
use crate::error::{BrowserError, Result};
use crate::session::{BrowserSession, CAPTURE_TAB_URL, KEEPER_URL, Tracker};

impl BrowserSession {
    /// A hidden tab of our own, always: headless Chromium drops session
    /// cookies when its last tab closes. Headed mode: Chromium quits as soon
    /// as its last window closes, too early to capture. A minimised window of our own (one blank tab,
    /// hidden from capture) keeps it running; when the user's last tab is
    /// gone, `wait_closed` reports [`Closed::LastWindowClosed`].
    pub(crate) async fn open_keeper_window(&self) -> Result<()> {
        let id = create_target(
            &self.browser,
            json!({ "url": KEEPER_URL, "newWindow": true, "background": true }),
        )
        .await?;
        mark_internal(&self.tracker, &id);
        *self.keeper_id.lock().unwrap_or_else(|p| p.into_inner()) = Some(id.clone());
        if !self.headed {
            return Ok(());
        }
        let w = browser_cmd(
            &self.browser,
            "Browser.getWindowForTarget",
            json!({ "targetId": id }),
        )
        .await?;
        if let Some(window) = w["windowId"].as_i64() {
            browser_cmd(
                &self.browser,
                "Browser.setWindowBounds",
                json!({ "windowId": window, "bounds": { "windowState": "minimized" } }),
            )
            .await?;
        }
        Ok(())
    }

    /// Open a short-lived page (hidden from capture) in the default context.
    pub(crate) async fn internal_page(&self) -> Result<Page> {
        if let Some(p) = self.take_keeper().await {
            return Ok(p);
        }
        let page = match self
            .browser
            .new_page(
                CreateTargetParams::builder()
                    .url(CAPTURE_TAB_URL)
                    .background(true)
                    .build()
                    .map_err(BrowserError::Connection)?,
            )
            .await
        {
            Ok(p) => p,
            Err(e) => {
                // Headed, after the last window closed: chromiumoxide's
                // create-and-wait path fails; create the target raw and wait
                // for the handler to attach it.
                tracing::debug!("new_page failed ({e}); creating the target raw");
                let id = create_target(
                    &self.browser,
                    json!({ "url": CAPTURE_TAB_URL, "newWindow": true }),
                )
                .await?;
                mark_internal(&self.tracker, &id);
                attached_page(&self.browser, &id, ATTACH_WAIT, "opening a hidden tab").await?
            }
        };
        mark_internal(&self.tracker, page.target_id().as_ref());
        Ok(page)
    }

    /// Wait until the latest restore's gate is down (cookies set, storage
    /// written; see [`crate::restore_gate`]); returns the first failure not
    /// yet reported.
    pub async fn storage_settled(&self) -> Result<()> {
        let gate = self.gate.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(g) = gate
            && let Some(e) = g.settled().await.into_iter().next()
        {
            return Err(e);
        }
        Ok(())
    }

    /// Close an internal page without waiting for it to go.
    /// The keeper's attached page, if no capture holds it (attached on
    /// first use). `None` also when attaching failed once: then captures
    /// open tabs of their own.
    async fn take_keeper(&self) -> Option<Page> {
        if let Some(p) = self.spare.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Some(p);
        }
        let id = self
            .keeper_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        if self
            .keeper_attached
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return None;
        }
        match attached_page(&self.browser, &id, ATTACH_WAIT, "attaching the keeper tab").await {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::debug!("keeper tab not attachable ({e}); captures open tabs");
                None
            }
        }
    }

    /// Done with a hidden tab. The keeper goes back to [`KEEPER_URL`] and
    /// waits for the next capture; any other is closed. In the
    /// background: the caller does not wait.
    pub(crate) async fn close_internal(&self, page: Page) {
        let id: String = page.target_id().as_ref().to_string();
        let b = self.browser.clone();
        let spare = self.spare.clone();
        let keeper = self
            .keeper_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        tokio::spawn(async move {
            if keeper.as_deref() == Some(id.as_str()) {
                let _ = crate::cdp::page_cmd(&page, "Page.navigate", json!({ "url": KEEPER_URL }))
                    .await;
                *spare.lock().unwrap_or_else(|p| p.into_inner()) = Some(page);
                return;
            }
            let _ = browser_cmd(&b, "Target.closeTarget", json!({ "targetId": id })).await;
        });
    }

    /// Attach the keeper tab for captures now (e.g. while the browser
    /// waits in a warm pool), so the first capture does not pay for it.
    pub async fn prepare_capture_tab(&self) -> Result<()> {
        if let Some(p) = self.take_keeper().await {
            let mut s = self.spare.lock().unwrap_or_else(|p| p.into_inner());
            if s.is_none() {
                *s = Some(p);
            }
        }
        Ok(())
    }
}

/// How long [`attached_page`] waits for a target we created ourselves.
pub(crate) const ATTACH_WAIT: Duration = Duration::from_secs(10);

/// The chromiumoxide page of a target, once the handler has attached it
/// (it attaches every target it discovers; commands sent before its
/// initialisation ends wait for it). Polls every 3 ms for up to `wait`;
/// `what` names the step in the timeout error.
pub(crate) async fn attached_page(
    browser: &Browser,
    target_id: &str,
    wait: Duration,
    what: &str,
) -> Result<Page> {
    let start = Instant::now();
    loop {
        if let Ok(p) = browser.get_page(target_id.to_string().into()).await {
            return Ok(p);
        }
        if start.elapsed() >= wait {
            return Err(BrowserError::Timeout(what.to_string()));
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// Hide one of our own targets from capture and last-window detection.
pub(crate) fn mark_internal(tracker: &Mutex<Tracker>, id: &str) {
    let mut t = tracker.lock().unwrap_or_else(|p| p.into_inner());
    t.internal.insert(id.to_string());
    t.live_pages.remove(id);
    t.page_order.retain(|p| p != id);
}
