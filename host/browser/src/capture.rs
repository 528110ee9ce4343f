//! Live browser -> [`SessionState`].
//!
//! Which origins are read: every http(s) origin seen in this run (page and
//! out-of-process iframe targets, tab histories, frame trees of open tabs)
//! plus every origin this session restored. Each is read in one hidden tab
//! that "visits" the origin through a placeholder page (no network, no site
//! script), where page JS reads localStorage and IndexedDB with typed
//! values; the IndexedDB key generator comes from CDP
//! `IndexedDB.getMetadata`. Origins of `previous` that were neither seen
//! nor restored are carried over unchanged; a seen or restored origin that
//! is now empty is dropped (the site cleared it).
//!
//! localStorage items come out sorted by key (Chromium's own enumeration
//! order is unstable), so equal storage captures to equal state.
//!
//! Not read: storage partitioned under another top-level site (third-party
//! iframes' localStorage/IndexedDB), Cache Storage, service workers.

use std::collections::BTreeSet;

use chromiumoxide::Page;
use serde_json::{Value, json};
use sessbundle::state::{
    BrowserInfo, Cookie, CookiePriority, HistoryEntry, IdbDatabase, OriginState, OriginStorage,
    PartitionKey, SameSite, SessionState, SourceScheme, StorageItem, Tab,
};

use crate::cdp::{browser_cmd, eval, page_cmd};
use crate::error::{BrowserError, Result};
use crate::js;
use crate::session::{BrowserSession, Placeholder, navigate, now_ms};

/// How many hidden tabs read origins' storage at once during capture.
/// Cost: each is a renderer process (~30 MB) for the duration of a
/// capture; beyond the number of cores it stops helping.
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

/// How long one tab may take to report its history and sessionStorage
/// before capture skips it (it is most likely closing). Cost: a hung tab
/// delays capture by this much.
pub const TAB_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `scheme://host[:port]` of an http(s) URL; `None` for other schemes.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.is_empty() {
        return None;
    }
    let hostport = hostport.to_ascii_lowercase();
    let hostport = match (scheme.as_str(), hostport.rsplit_once(':')) {
        ("http", Some((h, "80"))) | ("https", Some((h, "443")))
            if !h.ends_with(']') || h.starts_with('[') =>
        {
            h.to_string()
        }
        _ => hostport,
    };
    Some(format!("{scheme}://{hostport}"))
}

/// One CDP cookie (JSON) -> the model. Session cookies get no `expires`.
pub(crate) fn cookie_from_cdp(v: &Value) -> Cookie {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let b = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    let session = b("session");
    let expires = v
        .get("expires")
        .and_then(Value::as_f64)
        .filter(|e| !session && *e > 0.0);
    let same_site = match v.get("sameSite").and_then(Value::as_str) {
        Some("Strict") => Some(SameSite::Strict),
        Some("Lax") => Some(SameSite::Lax),
        Some("None") => Some(SameSite::None),
        _ => None,
    };
    let priority = match v.get("priority").and_then(Value::as_str) {
        Some("Low") => Some(CookiePriority::Low),
        Some("Medium") => Some(CookiePriority::Medium),
        Some("High") => Some(CookiePriority::High),
        _ => None,
    };
    let source_scheme = match v.get("sourceScheme").and_then(Value::as_str) {
        Some("Unset") => Some(SourceScheme::Unset),
        Some("NonSecure") => Some(SourceScheme::NonSecure),
        Some("Secure") => Some(SourceScheme::Secure),
        _ => None,
    };
    let partition_key = match v.get("partitionKey") {
        Some(Value::Object(o)) => Some(PartitionKey {
            top_level_site: o
                .get("topLevelSite")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            has_cross_site_ancestor: o
                .get("hasCrossSiteAncestor")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }),
        // Chromium before 125 sent the top-level site as a string.
        Some(Value::String(s)) => Some(PartitionKey {
            top_level_site: s.clone(),
            has_cross_site_ancestor: false,
        }),
        _ => None,
    };
    Cookie {
        name: s("name"),
        value: s("value"),
        domain: s("domain"),
        path: s("path"),
        expires,
        http_only: b("httpOnly"),
        secure: b("secure"),
        same_site,
        priority,
        source_scheme,
        source_port: v
            .get("sourcePort")
            .and_then(Value::as_i64)
            .map(|p| p as i32),
        partition_key,
    }
}

/// The storage of one origin as the capture script reports it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct OriginDump {
    local_storage: Vec<StorageItem>,
    #[serde(rename = "indexedDB")]
    indexed_db: Vec<IdbDatabase>,
}

impl BrowserSession {
    /// Capture the whole live session. `previous` (the last saved state of
    /// this session) supplies the meta (name, dates, TTL, tags) and the
    /// origins this run never touched.
    pub async fn capture(&self, previous: Option<&SessionState>) -> Result<SessionState> {
        // Storage still being restored would be read half-written. An
        // origin whose writing failed is not in `restored_origins`, so its
        // previous state is kept below; the failure itself went to whoever
        // restored.
        let _ = self.storage_settled().await;
        let now = now_ms();
        let mut state = match previous {
            Some(p) => SessionState {
                meta: p.meta.clone(),
                extra: p.extra.clone(),
                ..SessionState::default()
            },
            None => SessionState::new("", now),
        };
        state.meta.updated_at = now;
        let version = browser_cmd(&self.browser, "Browser.getVersion", json!({})).await?;
        if let Some((product, ver)) = version["product"].as_str().and_then(|p| p.split_once('/')) {
            state.meta.browser = Some(BrowserInfo {
                product: product.to_string(),
                version: ver.to_string(),
            });
        }
        let e = &self.emulation();
        if e.user_agent.is_some() {
            state.meta.user_agent = e.user_agent.clone();
        }
        if e.viewport.is_some() {
            state.meta.viewport = e.viewport.clone();
        }
        if e.locale.is_some() {
            state.meta.locale = e.locale.clone();
        }
        if e.timezone.is_some() {
            state.meta.timezone = e.timezone.clone();
        }

        state.cookies = self.capture_cookies().await?;

        let (tabs, tab_origins) = self.capture_tabs().await?;
        state.tabs = tabs;

        let mut candidates: BTreeSet<String> = tab_origins;
        {
            let t = self.tracker.lock().unwrap_or_else(|p| p.into_inner());
            candidates.extend(t.seen_origins.iter().cloned());
        }
        candidates.extend(
            self.restored_origins
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned(),
        );
        let mut origins = self.capture_origins(&candidates).await?;
        if let Some(p) = previous {
            for o in &p.origins {
                if !candidates.contains(&o.origin) {
                    origins.push(o.clone());
                }
            }
        }
        origins.sort_by(|a, b| a.origin.cmp(&b.origin));
        state.origins = origins;
        Ok(state)
    }

    /// All cookies of the default context (`Storage.getCookies`).
    pub async fn capture_cookies(&self) -> Result<Vec<Cookie>> {
        let r = browser_cmd(&self.browser, "Storage.getCookies", json!({})).await?;
        Ok(r["cookies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(cookie_from_cdp)
            .collect())
    }

    /// Open tabs (in the order they were opened) and the http(s) origins of
    /// their frames and history entries.
    async fn capture_tabs(&self) -> Result<(Vec<Tab>, BTreeSet<String>)> {
        let targets = browser_cmd(&self.browser, "Target.getTargets", json!({})).await?;
        let (internal, order) = {
            let t = self.tracker.lock().unwrap_or_else(|p| p.into_inner());
            (t.internal.clone(), t.page_order.clone())
        };
        let mut infos: Vec<&Value> = targets["targetInfos"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["type"] == "page")
            .filter(|i| !internal.contains(i["targetId"].as_str().unwrap_or("")))
            .collect();
        infos.sort_by_key(|i| {
            let id = i["targetId"].as_str().unwrap_or("");
            order.iter().position(|p| p == id).unwrap_or(usize::MAX)
        });
        let mut tabs = Vec::new();
        let mut origins = BTreeSet::new();
        for info in infos {
            let id = info["targetId"].as_str().unwrap_or("").to_string();
            let page = match self.browser.get_page(id.clone().into()).await {
                Ok(p) => p,
                Err(e) => {
                    // Errors may quote the tab's URL: details at debug only.
                    tracing::warn!("tab {id} is not attached, skipping it");
                    tracing::debug!("tab {id} not attached: {e}");
                    continue;
                }
            };
            // A blank tab holds nothing; it may also be one that restore
            // just closed, whose commands would never be answered.
            if info["url"] == "about:blank" {
                continue;
            }
            // A tab closing while we read it must not fail the capture.
            let tab = match tokio::time::timeout(TAB_TIMEOUT, capture_tab(&page, info)).await {
                Ok(Ok(tab)) => tab,
                Ok(Err(e)) => {
                    tracing::warn!("tab {id} skipped: reading it failed");
                    tracing::debug!("tab {id} skipped: {e}");
                    continue;
                }
                Err(_) => {
                    tracing::warn!("tab {id} skipped: it did not answer within {TAB_TIMEOUT:?}");
                    continue;
                }
            };
            if tab.url == "about:blank" && tab.history.len() <= 1 && tab.session_storage.is_empty()
            {
                continue;
            }
            origins.extend(tab.history.iter().filter_map(|h| origin_of(&h.url)));
            origins.extend(origin_of(&tab.url));
            origins.extend(tab.session_storage.iter().map(|s| s.origin.clone()));
            tabs.push(tab);
        }
        Ok((tabs, origins))
    }

    /// localStorage + IndexedDB of each origin; origins with neither are
    /// left out.
    async fn capture_origins(&self, origins: &BTreeSet<String>) -> Result<Vec<OriginState>> {
        let list: Vec<String> = origins.iter().cloned().collect();
        let groups = spread(&list, PARALLEL_TABS);
        let results = futures::future::try_join_all(groups.into_iter().map(|g| async move {
            let page = self.internal_page().await?;
            let r = capture_origins_in(&page, &g).await;
            self.close_internal(page).await;
            r
        }))
        .await?;
        Ok(results.into_iter().flatten().collect())
    }
}

async fn capture_origins_in(page: &Page, origins: &[String]) -> Result<Vec<OriginState>> {
    let ph = Placeholder::start(page).await?;
    let script = js::capture_origin();
    let mut out = Vec::new();
    for origin in origins {
        navigate(page, &format!("{origin}/")).await?;
        let dump = eval(page, &script)
            .await
            .map_err(|e| BrowserError::Storage {
                what: "reading storage",
                origin: origin.clone(),
                message: e.to_string(),
            })?;
        let dump: OriginDump =
            serde_json::from_str(dump.as_str().unwrap_or("{}")).map_err(|e| {
                BrowserError::Storage {
                    what: "decoding storage",
                    origin: origin.clone(),
                    message: e.to_string(),
                }
            })?;
        let mut dbs = dump.indexed_db;
        for db in &mut dbs {
            for store in &mut db.object_stores {
                if store.auto_increment {
                    store.key_generator = key_generator(page, origin, &db.name, &store.name).await;
                }
            }
        }
        if !dump.local_storage.is_empty() || !dbs.is_empty() {
            // Chromium enumerates localStorage in no stable order; sort by
            // key so that equal storage captures to equal bytes (and the
            // content-addressed store can share the chunk).
            let mut local_storage = dump.local_storage;
            local_storage.sort_by(|a, b| a.key.cmp(&b.key));
            out.push(OriginState {
                origin: origin.clone(),
                local_storage,
                indexed_db: dbs,
            });
        }
    }
    drop(ph);
    Ok(out)
}

/// The key generator's current number (`IndexedDB.getMetadata`).
async fn key_generator(page: &Page, origin: &str, db: &str, store: &str) -> Option<u64> {
    let key = format!("{origin}/");
    for addr in [
        json!({ "storageKey": key }),
        json!({ "securityOrigin": origin }),
    ] {
        let mut p = addr;
        p["databaseName"] = json!(db);
        p["objectStoreName"] = json!(store);
        match page_cmd(page, "IndexedDB.getMetadata", p).await {
            Ok(r) => return r["keyGeneratorValue"].as_f64().map(|v| v as u64),
            Err(e) => tracing::debug!("IndexedDB.getMetadata: {e}"),
        }
    }
    None
}

async fn capture_tab(page: &Page, info: &Value) -> Result<Tab> {
    let hist = page_cmd(page, "Page.getNavigationHistory", json!({})).await?;
    let mut entries: Vec<HistoryEntry> = hist["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| HistoryEntry {
            url: e["url"].as_str().unwrap_or("").to_string(),
            title: e["title"].as_str().unwrap_or("").to_string(),
        })
        .collect();
    let mut current = hist["currentIndex"].as_u64().unwrap_or(0) as usize;
    // The initial about:blank of a tab we or the user opened is no history.
    while entries.len() > 1 && current > 0 && entries[0].url == "about:blank" {
        entries.remove(0);
        current -= 1;
    }
    let url = entries
        .get(current)
        .map(|e| e.url.clone())
        .unwrap_or_else(|| info["url"].as_str().unwrap_or("").to_string());
    let title = info["title"].as_str().unwrap_or("").to_string();

    // sessionStorage of every http(s) origin in the tab's frame tree.
    let tree = page_cmd(page, "Page.getFrameTree", json!({})).await?;
    let mut frame_origins = Vec::new();
    collect_frame_origins(&tree["frameTree"], &mut frame_origins);
    let mut session_storage = Vec::new();
    for (i, origin) in frame_origins.iter().enumerate() {
        let items = match read_session_storage(page, origin).await {
            Ok(items) => items,
            Err(e) if i == 0 => {
                // Main frame: fall back to page JS.
                tracing::debug!("DOMStorage read failed ({e}); reading sessionStorage via JS");
                let v = eval(page, js::READ_SESSION_STORAGE).await?;
                serde_json::from_value(v).unwrap_or_default()
            }
            Err(e) => {
                tracing::debug!("sessionStorage of frame origin {origin} not read: {e}");
                continue;
            }
        };
        if !items.is_empty()
            && !session_storage
                .iter()
                .any(|s: &OriginStorage| &s.origin == origin)
        {
            session_storage.push(OriginStorage {
                origin: origin.clone(),
                items,
            });
        }
    }
    Ok(Tab {
        url,
        title,
        session_storage,
        history: if entries.len() > 1 {
            entries
        } else {
            Vec::new()
        },
        current_index: if current > 0 { current as u32 } else { 0 },
    })
}

fn collect_frame_origins(node: &Value, out: &mut Vec<String>) {
    if let Some(o) = node["frame"]["url"]
        .as_str()
        .and_then(origin_of)
        .filter(|o| !out.contains(o))
    {
        out.push(o);
    }
    for child in node["childFrames"].as_array().into_iter().flatten() {
        collect_frame_origins(child, out);
    }
}

async fn read_session_storage(page: &Page, origin: &str) -> Result<Vec<StorageItem>> {
    let mut last = None;
    for id in [
        json!({ "securityOrigin": origin, "isLocalStorage": false }),
        json!({ "storageKey": format!("{origin}/"), "isLocalStorage": false }),
    ] {
        match page_cmd(
            page,
            "DOMStorage.getDOMStorageItems",
            json!({ "storageId": id }),
        )
        .await
        {
            Ok(r) => {
                return Ok(r["entries"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| {
                        Some(StorageItem {
                            key: e.get(0)?.as_str()?.to_string(),
                            value: e.get(1)?.as_str()?.to_string(),
                        })
                    })
                    .collect());
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("tried at least once"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("http://127.0.0.1:8080/a?b#c").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin_of("https://User@Example.com:443/").as_deref(),
            Some("https://example.com")
        );
        assert_eq!(
            origin_of("http://localhost:80").as_deref(),
            Some("http://localhost")
        );
        assert_eq!(origin_of("about:blank"), None);
        assert_eq!(origin_of("chrome://version"), None);
        assert_eq!(origin_of("http:///x"), None);
    }

    #[test]
    fn session_cookie_has_no_expiry() {
        let c = cookie_from_cdp(
            &json!({"name":"a","value":"b","domain":"x","path":"/","expires":-1,"session":true,
            "partitionKey":{"topLevelSite":"https://t.test","hasCrossSiteAncestor":true},"sourcePort":443,"sourceScheme":"Secure","priority":"High"}),
        );
        assert_eq!(c.expires, None);
        assert_eq!(c.partition_key.unwrap().top_level_site, "https://t.test");
        assert_eq!(c.source_port, Some(443));
        assert_eq!(c.priority, Some(CookiePriority::High));
    }
}
