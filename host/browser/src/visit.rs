//! What the service does to a live browser besides capture and restore:
//! visit a page and report what it shows (`navigate`, login checks), and
//! replace the browser's cookies (cookie edits on a live session).

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use sessbundle::state::Cookie;

use crate::cdp::{browser_cmd, eval};
use crate::error::{BrowserError, Result};
use crate::session::{BrowserSession, apply_emulation};

/// When a visit counts as loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitUntil {
    #[default]
    Load,
    DomContentLoaded,
    /// Load, then no new network request for 500 ms.
    NetworkIdle,
}

/// What a visited page showed.
#[derive(Debug, Clone, Serialize)]
pub struct Visit {
    pub final_url: String,
    /// The main document's HTTP status (0 when unknown: a non-HTTP page).
    pub status: u16,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

/// Most text or HTML a visit returns (bytes); the rest is cut at a char
/// boundary. Cost: the page's copy travels over CDP and into the reply.
pub const MAX_VISIT_TEXT: usize = 2 * 1024 * 1024;

impl BrowserSession {
    /// Open a tab at `url` with the session's emulation, wait until
    /// `wait` (at most `timeout`), read what it shows, close the tab.
    pub async fn visit(
        &self,
        url: &str,
        wait: WaitUntil,
        text: bool,
        html: bool,
        timeout: Duration,
    ) -> Result<Visit> {
        let page = self
            .browser
            .new_page(
                chromiumoxide::cdp::browser_protocol::target::CreateTargetParams::new(
                    "about:blank",
                ),
            )
            .await?;
        let em = self.emulation().clone();
        let r = tokio::time::timeout(timeout, async {
            apply_emulation(&self.browser, &page, &em).await?;
            page.goto(url).await.map_err(|e| BrowserError::Cdp {
                method: "Page.navigate".into(),
                message: e.to_string(),
            })?;
            if wait == WaitUntil::DomContentLoaded {
                // goto waited for load already; nothing more.
            } else if wait == WaitUntil::NetworkIdle {
                let mut last = -1i64;
                let mut stable_since = Instant::now();
                loop {
                    let n = eval(&page, "performance.getEntriesByType('resource').length")
                        .await?
                        .as_i64()
                        .unwrap_or(0);
                    if n != last {
                        last = n;
                        stable_since = Instant::now();
                    } else if stable_since.elapsed() >= Duration::from_millis(500) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            let facts = eval(
                &page,
                &format!(
                    "(() => {{ const n = performance.getEntriesByType('navigation')[0]; \
                     const cut = s => s.length > {MAX_VISIT_TEXT} ? s.slice(0, {MAX_VISIT_TEXT}) : s; \
                     return {{ url: location.href, status: n ? (n.responseStatus || 0) : 0, title: document.title, \
                     text: {text} ? cut(document.body ? document.body.innerText : '') : null, \
                     html: {html} ? cut(document.documentElement ? document.documentElement.outerHTML : '') : null }}; }})()"
                ),
            )
            .await?;
            Ok::<_, BrowserError>(Visit {
                final_url: facts["url"].as_str().unwrap_or("").to_string(),
                status: facts["status"].as_u64().unwrap_or(0).min(999) as u16,
                title: facts["title"].as_str().unwrap_or("").to_string(),
                text: facts["text"].as_str().map(str::to_string),
                html: facts["html"].as_str().map(str::to_string),
            })
        })
        .await;
        let _ = page.close().await;
        match r {
            Ok(v) => v,
            Err(_) => Err(BrowserError::Timeout(format!(
                "loading {url} took longer than {} s",
                timeout.as_secs()
            ))),
        }
    }

    /// Make the browser's cookie jar exactly `cookies` (clear, then set).
    pub async fn replace_cookies(&self, cookies: &[Cookie]) -> Result<()> {
        browser_cmd(&self.browser, "Storage.clearCookies", json!({})).await?;
        self.restore_cookies(cookies).await
    }
}
