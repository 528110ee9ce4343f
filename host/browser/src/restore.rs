//! [`SessionState`] -> live browser, all in the default browser context.
//!
//! Order (so a site that checks auth on load sees the user logged in on its
//! first real request):
//! 1. cookies with `Storage.setCookies` (session cookies without
//!    `expires`, partitioned ones with their key);
//! 2. localStorage + IndexedDB, one hidden tab visiting each origin through
//!    a placeholder page (`Fetch.fulfillRequest`; no network, no site
//!    script) and writing with page JS;
//! 3. tabs: each tab first walks its history as placeholders (so back and
//!    forward work, and sessionStorage is written into the tab on a
//!    placeholder of its origin), then interception stops and the current
//!    entry loads for real. A tab without history or sessionStorage just
//!    navigates. Emulation is applied to the tab before anything loads.
//! 4. the blank tab Chromium started with is closed.

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::target::CreateTargetParams;
use serde_json::{Value, json};
use sessbundle::state::{
    Cookie, CookiePriority, HistoryEntry, OriginState, SameSite, SessionState, SourceScheme, Tab,
};

use crate::capture::origin_of;
use crate::cdp::{browser_cmd, eval, page_cmd};
use crate::error::{BrowserError, Result};
use crate::js;
use crate::session::{BrowserSession, Placeholder, apply_emulation, navigate};

/// How many hidden tabs read or write origins' storage at once. Cost: each
/// is a renderer process (~30 MB) for the duration of a capture/restore;
/// beyond the number of cores it stops helping.
pub const PARALLEL_TABS: usize = 4;

/// Deal `items` round-robin into at most `n` non-empty groups.
pub(crate) fn spread<T: Clone>(items: &[T], n: usize) -> Vec<Vec<T>> {
    let n = n.max(1).min(items.len());
    let mut groups = vec![Vec::new(); n];
    for (i, it) in items.iter().enumerate() {
        groups[i % n].push(it.clone());
    }
    groups
}

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

impl BrowserSession {
    /// Restore `state` into this browser's default context: cookies and
    /// storage (concurrently, while the tabs open blank), then the tabs
    /// load (see the module docs). Returns once every tab has loaded.
    pub async fn restore(&self, state: &SessionState) -> Result<()> {
        let t0 = std::time::Instant::now();
        validate(state)?;
        let blank = self.blank_tabs().await?;
        let (cookies, origins, pages) = tokio::join!(
            self.restore_cookies(&state.cookies),
            self.restore_origins(&state.origins),
            self.open_blank_tabs(state.tabs.len()),
        );
        cookies?;
        origins?;
        let pages = pages?;
        tracing::debug!(
            "restore: cookies, storage and blank tabs after {:?}",
            t0.elapsed()
        );
        self.load_tabs(&pages, &state.tabs).await?;
        tracing::debug!("restore: tabs loaded after {:?}", t0.elapsed());
        if !state.tabs.is_empty() {
            self.close_targets(blank).await;
        }
        Ok(())
    }

    /// Set cookies (`Storage.setCookies`).
    pub async fn restore_cookies(&self, cookies: &[Cookie]) -> Result<()> {
        for chunk in cookies.chunks(500) {
            let list: Vec<Value> = chunk.iter().map(cookie_to_cdp).collect();
            browser_cmd(
                &self.browser,
                "Storage.setCookies",
                json!({ "cookies": list }),
            )
            .await?;
        }
        Ok(())
    }

    /// Replace localStorage and IndexedDB of each origin. Origins are spread
    /// over [`PARALLEL_TABS`] hidden tabs that work concurrently (each origin
    /// gets its own renderer process, so this uses every core).
    pub async fn restore_origins(&self, origins: &[OriginState]) -> Result<()> {
        let todo: Vec<&OriginState> = origins
            .iter()
            .filter(|o| !o.local_storage.is_empty() || !o.indexed_db.is_empty())
            .collect();
        let groups = spread(&todo, PARALLEL_TABS);
        futures::future::try_join_all(groups.into_iter().map(|g| self.restore_origin_group(g)))
            .await?;
        Ok(())
    }

    async fn restore_origin_group(&self, group: Vec<&OriginState>) -> Result<()> {
        let t0 = std::time::Instant::now();
        let page = self.internal_page().await?;
        tracing::debug!("restore: hidden tab open after {:?}", t0.elapsed());
        let r = async {
            let _ph = Placeholder::start(&page).await?;
            for o in &group {
                navigate(&page, &format!("{}/", o.origin)).await?;
                tracing::debug!("restore: at {} after {:?}", o.origin, t0.elapsed());
                let data = json!({
                    "clear": true,
                    "localStorage": o.local_storage,
                    "indexedDB": o.indexed_db,
                });
                let js = js::restore_origin(&data.to_string());
                let t1 = std::time::Instant::now();
                let took = eval(&page, &js).await.map_err(|e| BrowserError::Storage {
                    what: "writing storage",
                    origin: o.origin.clone(),
                    message: e.to_string(),
                })?;
                tracing::debug!(
                    "restore: wrote {} after {:?} (eval {:?}, in page {took})",
                    o.origin,
                    t0.elapsed(),
                    t1.elapsed()
                );
                self.restored_origins
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(o.origin.clone());
            }
            Ok::<_, BrowserError>(())
        }
        .await;
        self.close_internal(page).await;
        r
    }

    /// Open the tabs, then close the blank tabs that were there before.
    pub async fn restore_tabs(&self, tabs: &[Tab]) -> Result<()> {
        if tabs.is_empty() {
            return Ok(());
        }
        let blank = self.blank_tabs().await?;
        let pages = self.open_blank_tabs(tabs.len()).await?;
        self.load_tabs(&pages, tabs).await?;
        self.close_targets(blank).await;
        Ok(())
    }

    /// Ids of user tabs showing about:blank (Chromium's start tab).
    async fn blank_tabs(&self) -> Result<Vec<String>> {
        let before = browser_cmd(&self.browser, "Target.getTargets", json!({})).await?;
        let internal = self
            .tracker
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

    async fn close_targets(&self, ids: Vec<String>) {
        for id in ids {
            let _ = browser_cmd(
                &self.browser,
                "Target.closeTarget",
                json!({ "targetId": id }),
            )
            .await;
        }
    }

    /// `n` new blank tabs with the session's emulation applied, opened one
    /// after the other so that tab order (= creation order) is kept.
    async fn open_blank_tabs(&self, n: usize) -> Result<Vec<Page>> {
        let mut pages = Vec::with_capacity(n);
        for _ in 0..n {
            let page = self
                .browser
                .new_page(CreateTargetParams::new("about:blank"))
                .await?;
            apply_emulation(&page, &self.emulation).await?;
            pages.push(page);
        }
        Ok(pages)
    }

    /// Load each tab's history and page, all tabs at once.
    async fn load_tabs(&self, pages: &[Page], tabs: &[Tab]) -> Result<()> {
        futures::future::try_join_all(pages.iter().zip(tabs).map(|(p, t)| restore_tab(p, t)))
            .await?;
        Ok(())
    }
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
        return navigate(page, &history[0].url).await;
    }
    let ph = Placeholder::start(page).await?;
    {
        let mut titles = ph.titles.lock().unwrap_or_else(|p| p.into_inner());
        for h in &history {
            titles.insert(h.url.clone(), h.title.clone());
        }
    }
    let mut written: Vec<&str> = Vec::new();
    for h in &history {
        navigate(page, &h.url).await?;
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
            tracing::warn!(
                "tab {}: sessionStorage of {} not restored (no history entry of that origin)",
                tab.url,
                ss.origin
            );
        }
    }
    ph.stop(page).await?;
    if current + 1 == history.len() {
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
