//! [`SessionState`] -> live browser, all in the default browser context.
//!
//! Order (so a site that checks auth on load sees the user logged in on its
//! first real request):
//! 1. at once, together: cookies with `Storage.setCookies` (session
//!    cookies without `expires`, partitioned ones with their key), and the
//!    storage gate of [`crate::restore_gate`] (localStorage + IndexedDB are
//!    written by hidden writer pages while every document of a not yet
//!    written origin is held back). From here the state is in force:
//!    [`BrowserSession::restore_in_background`] returns.
//! 2. tabs: each tab first walks its history as placeholders (so back and
//!    forward work, and sessionStorage is written into the tab on a
//!    placeholder of its origin), then interception stops and the current
//!    entry loads for real (through the gate). A tab without history or
//!    sessionStorage just navigates. Emulation is applied to the tab before
//!    anything loads.
//! 3. the blank tab Chromium started with is closed.

use std::sync::{Arc, Mutex};

use chromiumoxide::{Browser, Page};
use serde_json::{Value, json};
use sessbundle::state::{
    Cookie, CookiePriority, HistoryEntry, OriginState, SameSite, SessionState, SourceScheme, Tab,
};
use tokio::task::JoinHandle;

use crate::capture::origin_of;
use crate::cdp::{browser_cmd, create_target, eval, page_cmd};
use crate::error::{BrowserError, Result};
use crate::js;
use crate::launch::Emulation;
use crate::restore_gate::{GateContext, RestoreGate};
use crate::session::{
    ATTACH_WAIT, BrowserSession, Placeholder, Tracker, apply_emulation, attached_page, navigate,
};

/// The model -> a CDP `CookieParam`.
pub(crate) fn cookie_to_cdp(c: &Cookie) -> Value {
    let mut v = json!({
        "name": c.name,
        "value": c.value,
        "domain": c.domain,
        "path": c.path,
        "secure": c.secure,
        "httpOnly": c.http_only,
    });
    if let Some(e) = c.expires {
        v["expires"] = json!(e);
    }
    if let Some(s) = c.same_site {
        v["sameSite"] = json!(match s {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        });
    }
    if let Some(p) = c.priority {
        v["priority"] = json!(match p {
            CookiePriority::Low => "Low",
            CookiePriority::Medium => "Medium",
            CookiePriority::High => "High",
        });
    }
    if let Some(s) = c.source_scheme {
        v["sourceScheme"] = json!(match s {
            SourceScheme::Unset => "Unset",
            SourceScheme::NonSecure => "NonSecure",
            SourceScheme::Secure => "Secure",
        });
    }
    if let Some(p) = c.source_port {
        v["sourcePort"] = json!(p);
    }
    if let Some(k) = &c.partition_key {
        v["partitionKey"] = json!({
            "topLevelSite": k.top_level_site,
            "hasCrossSiteAncestor": k.has_cross_site_ancestor,
        });
    }
    v
}

/// Parse-then-act: everything restore will do, checked up front.
fn validate(state: &SessionState) -> Result<()> {
    for o in &state.origins {
        if origin_of(&o.origin).as_deref() != Some(o.origin.as_str()) {
            return Err(BrowserError::InvalidState(format!(
                "origin {:?} is not a canonical http(s) origin (scheme://host[:port])",
                o.origin
            )));
        }
    }
    for c in &state.cookies {
        if c.name.is_empty() && c.value.is_empty() {
            return Err(BrowserError::InvalidState(
                "a cookie has neither name nor value".into(),
            ));
        }
        if c.domain.is_empty() {
            return Err(BrowserError::InvalidState(format!(
                "cookie {:?} has no domain",
                c.name
            )));
        }
    }
    for t in &state.tabs {
        if t.url.is_empty() {
            return Err(BrowserError::InvalidState("a tab has no URL".into()));
        }
        if !t.history.is_empty() && t.current_index as usize >= t.history.len() {
            return Err(BrowserError::InvalidState(format!(
                "tab {:?}: currentIndex {} is past its {} history entries",
                t.url,
                t.current_index,
                t.history.len()
            )));
        }
    }
    Ok(())
}

/// A restore whose state is in force (cookies being set, storage gate up,
/// tabs being rebuilt); [`Restoring::finish`] waits for the rest. It owns
/// what it waits for (no borrow of the session), so a caller can keep it
/// next to the session; dropping it lets the restore run on unwatched.
#[must_use = "call finish() to learn whether storage and tabs were restored"]
pub struct Restoring {
    tabs: Option<JoinHandle<Result<()>>>,
    gate: Option<Arc<RestoreGate>>,
}

impl std::fmt::Debug for Restoring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restoring").finish_non_exhaustive()
    }
}

impl Restoring {
    /// Wait until every tab has loaded and every origin's storage is
    /// written; the first failure of either is returned.
    pub async fn finish(self) -> Result<()> {
        let tabs = match self.tabs {
            Some(h) => h
                .await
                .unwrap_or_else(|e| Err(BrowserError::Connection(format!("tab restore: {e}")))),
            None => Ok(()),
        };
        let storage = match self.gate {
            Some(g) => g.settled().await.into_iter().next().map_or(Ok(()), Err),
            None => Ok(()),
        };
        tabs.and(storage)
    }
}

impl BrowserSession {
    /// Restore `state` into this browser's default context and wait until
    /// it is all there: storage written, every tab loaded. Same as
    /// [`BrowserSession::restore_in_background`] + [`Restoring::finish`].
    pub async fn restore(&self, state: &SessionState) -> Result<()> {
        self.restore_in_background(state).await?.finish().await
    }

    /// Put `state` in force and return (~3-30 ms): the restore gate is up
    /// (see [`crate::restore_gate`]: no request leaves before the cookies
    /// are set, and no document of a restored origin loads before its
    /// storage is written, whichever tab or CDP client asks), cookies are
    /// being set, writer pages are writing, and the tabs are being rebuilt.
    /// [`BrowserSession::ws_url`] may be handed out now: a client that
    /// connects before every restored tab has its history rebuilt and its
    /// current entry loaded is held until then (`client_gate.rs`), so it
    /// never sees a blank, placeholder or half-built tab. Capture waits for
    /// the writing to finish.
    ///
    /// Writer pages are hidden targets that live until their origin is
    /// written (~0.1-0.5 s each); a client listing targets meanwhile sees
    /// them at `{origin}/.sesshost-.../write`.
    pub async fn restore_in_background(&self, state: &SessionState) -> Result<Restoring> {
        use tracing::Instrument as _;
        let t0 = std::time::Instant::now();
        validate(state)?;
        // Taken before anything changes: a client connecting from here on
        // meets the finished tabs.
        let hold = (!state.tabs.is_empty())
            .then(|| self.hold_clients())
            .flatten();
        let find_blank = async {
            if state.tabs.is_empty() {
                Ok(Vec::new())
            } else {
                blank_tabs(&self.browser, &self.tracker).await
            }
        };
        let (blank, gate) = tokio::try_join!(
            find_blank,
            self.put_up_gate(&state.origins, !state.cookies.is_empty())
                .instrument(tracing::debug_span!("restore gate")),
        )?;
        tracing::debug!("restore: in force after {:?}", t0.elapsed());
        if let Some(g) = gate.clone().filter(|_| !state.cookies.is_empty()) {
            let browser = self.browser.clone();
            let cookies = state.cookies.clone();
            tokio::spawn(async move {
                let r = set_cookies(&browser, &cookies).await;
                tracing::debug!("restore: cookies set after {:?}", t0.elapsed());
                g.cookies_set(r);
            });
        }
        let tabs = (!state.tabs.is_empty()).then(|| {
            let browser = self.browser.clone();
            let emulation = self.emulation();
            let tabs = state.tabs.clone();
            tokio::spawn(
                async move {
                    let r = open_tabs(&browser, &emulation, &tabs, blank).await;
                    tracing::debug!("restore: tabs loaded after {:?}", t0.elapsed());
                    // Clients waiting at the client gate go through now,
                    // also when a tab failed (the caller learns it from
                    // `finish`).
                    drop(hold);
                    r
                }
                .instrument(tracing::debug_span!("restore tabs")),
            )
        });
        Ok(Restoring { tabs, gate })
    }

    /// Set cookies and wait until they are set (no gate).
    pub async fn restore_cookies(&self, cookies: &[Cookie]) -> Result<()> {
        set_cookies(&self.browser, cookies).await
    }

    /// Wait for the previous gate (one at a time: a second one would pause
    /// requests twice), put up a new one and keep it for capture.
    async fn put_up_gate(
        &self,
        origins: &[OriginState],
        cookies_pending: bool,
    ) -> Result<Option<Arc<RestoreGate>>> {
        let _ = self.storage_settled().await;
        let ctx = GateContext {
            browser: self.browser.clone(),
            tracker: self.tracker.clone(),
            restored_origins: self.restored_origins.clone(),
        };
        let gate = RestoreGate::start(ctx, origins, cookies_pending)
            .await?
            .map(Arc::new);
        *self.gate.lock().unwrap_or_else(|p| p.into_inner()) = gate.clone();
        Ok(gate)
    }

    /// Replace localStorage and IndexedDB of each origin and wait until it
    /// is written (the gate of [`crate::restore_gate`], without tabs).
    pub async fn restore_origins(&self, origins: &[OriginState]) -> Result<()> {
        self.put_up_gate(origins, false).await?;
        self.storage_settled().await
    }

    /// Open the tabs, then close the blank tabs that were there before.
    pub async fn restore_tabs(&self, tabs: &[Tab]) -> Result<()> {
        if tabs.is_empty() {
            return Ok(());
        }
        let blank = blank_tabs(&self.browser, &self.tracker).await?;
        open_tabs(&self.browser, &self.emulation(), tabs, blank).await
    }
}

/// Set cookies with `Storage.setCookies`, in a few concurrent batches
/// (Chromium spends ~0.1 ms per cookie; batches overlap a little).
async fn set_cookies(browser: &Browser, cookies: &[Cookie]) -> Result<()> {
    futures::future::try_join_all(cookies.chunks(250).map(|chunk| {
        let list: Vec<Value> = chunk.iter().map(cookie_to_cdp).collect();
        browser_cmd(browser, "Storage.setCookies", json!({ "cookies": list }))
    }))
    .await?;
    Ok(())
}

/// Ids of user tabs showing about:blank (Chromium's start tab).
async fn blank_tabs(browser: &Browser, tracker: &Mutex<Tracker>) -> Result<Vec<String>> {
    let before = browser_cmd(browser, "Target.getTargets", json!({})).await?;
    let internal = tracker
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .internal
        .clone();
    Ok(before["targetInfos"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["type"] == "page" && i["url"] == "about:blank")
        .filter_map(|i| i["targetId"].as_str().map(str::to_string))
        .filter(|id| !internal.contains(id))
        .collect())
}

async fn close_targets(browser: &Browser, ids: Vec<String>) {
    for id in ids {
        let _ = browser_cmd(browser, "Target.closeTarget", json!({ "targetId": id })).await;
    }
}

/// Open `tabs` (history, sessionStorage, then the real page), then close
/// the `blank` tabs that were there before.
async fn open_tabs(
    browser: &Browser,
    emulation: &Emulation,
    tabs: &[Tab],
    blank: Vec<String>,
) -> Result<()> {
    let pages = open_blank_tabs(browser, emulation, tabs.len()).await?;
    load_tabs(&pages, tabs).await?;
    close_targets(browser, blank).await;
    Ok(())
}

/// `n` new blank tabs with the session's emulation applied. The targets
/// are created one after the other, so tab order (= creation order) is
/// kept, with raw `Target.createTarget` (~20 ms each); attaching and
/// emulation then happen for all of them at once (chromiumoxide's
/// `new_page` would wait ~150 ms per tab for each in turn).
async fn open_blank_tabs(browser: &Browser, emulation: &Emulation, n: usize) -> Result<Vec<Page>> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(create_target(browser, json!({ "url": "about:blank" })).await?);
    }
    futures::future::try_join_all(ids.iter().map(|id| async move {
        let page = attached_page(browser, id, ATTACH_WAIT, "opening a restored tab").await?;
        apply_emulation(browser, &page, emulation).await?;
        Ok::<_, BrowserError>(page)
    }))
    .await
}

/// Load each tab's history and page, all tabs at once.
async fn load_tabs(pages: &[Page], tabs: &[Tab]) -> Result<()> {
    futures::future::try_join_all(pages.iter().zip(tabs).map(|(p, t)| restore_tab(p, t))).await?;
    Ok(())
}

async fn restore_tab(page: &Page, tab: &Tab) -> Result<()> {
    let history: Vec<HistoryEntry> = if tab.history.is_empty() {
        vec![HistoryEntry {
            url: tab.url.clone(),
            title: tab.title.clone(),
        }]
    } else {
        tab.history.clone()
    };
    let current = (tab.current_index as usize).min(history.len() - 1);
    if history.len() == 1 && tab.session_storage.is_empty() {
        navigate(page, &history[0].url).await?;
        return forget_blank_entry(page).await;
    }
    let ph = Placeholder::start(page).await?;
    {
        let mut titles = ph.titles.lock().unwrap_or_else(|p| p.into_inner());
        for h in &history {
            titles.insert(h.url.clone(), h.title.clone());
        }
    }
    // When the current entry is the last one and its origin's
    // sessionStorage (if any) can be written on an earlier entry, the walk
    // stops one short and the current entry loads for real at once (one
    // navigation less than walking it as a placeholder and reloading).
    let last = history.len() - 1;
    let last_origin = origin_of(&history[last].url);
    let needs_own_placeholder = tab
        .session_storage
        .iter()
        .any(|ss| Some(&ss.origin) == last_origin.as_ref())
        && !history[..last]
            .iter()
            .any(|h| origin_of(&h.url) == last_origin);
    let direct = current == last && !needs_own_placeholder;
    let walk = if direct {
        &history[..last]
    } else {
        &history[..]
    };
    let mut written: Vec<&str> = Vec::new();
    for (i, h) in walk.iter().enumerate() {
        navigate(page, &h.url).await?;
        if i == 0 {
            forget_blank_entry(page).await?;
        }
        let Some(origin) = origin_of(&h.url) else {
            continue;
        };
        if let Some(ss) = tab
            .session_storage
            .iter()
            .find(|s| s.origin == origin && !written.contains(&s.origin.as_str()))
        {
            {
                let items = serde_json::to_string(&ss.items).unwrap_or_else(|_| "[]".into());
                eval(page, &js::write_session_storage(&items))
                    .await
                    .map_err(|e| BrowserError::Storage {
                        what: "writing sessionStorage",
                        origin: origin.clone(),
                        message: e.to_string(),
                    })?;
                written.push(ss.origin.as_str());
            }
        }
    }
    for ss in &tab.session_storage {
        if !written.contains(&ss.origin.as_str()) {
            // Tab URLs may carry tokens: never above debug.
            tracing::warn!(
                "a restored tab's sessionStorage of one origin was not restored (no history entry of that origin)"
            );
            tracing::debug!(
                "tab {}: sessionStorage of {} not restored",
                tab.url,
                ss.origin
            );
        }
    }
    ph.stop(page).await?;
    if direct {
        navigate(page, &history[last].url).await?;
        if walk.is_empty() {
            forget_blank_entry(page).await?;
        }
    } else if current == last {
        page.reload().await?;
    } else {
        let h = page_cmd(page, "Page.getNavigationHistory", json!({})).await?;
        let entries = h["entries"].as_array().cloned().unwrap_or_default();
        // Our placeholder walk is the tail of the tab's history.
        let base = entries.len().saturating_sub(history.len());
        let id = entries
            .get(base + current)
            .and_then(|e| e["id"].as_i64())
            .ok_or_else(|| BrowserError::Cdp {
                method: "Page.getNavigationHistory".into(),
                message: "restored history entries are missing".into(),
            })?;
        page_cmd(
            page,
            "Page.navigateToHistoryEntry",
            json!({ "entryId": id }),
        )
        .await?;
        page.wait_for_navigation().await?;
    }
    Ok(())
}

/// Drop the `about:blank` entry a new tab starts with from its history
/// (called right after its first navigation, so only that entry goes):
/// otherwise "back" from a restored tab's first entry shows a blank page,
/// and a client sees one entry too many.
async fn forget_blank_entry(page: &Page) -> Result<()> {
    page_cmd(page, "Page.resetNavigationHistory", json!({})).await?;
    Ok(())
}
