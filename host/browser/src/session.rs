//! A live browser session: one Chromium process, one DevTools connection,
//! and the bookkeeping capture needs (which origins were seen or restored).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::fetch::EventRequestPaused;
use chromiumoxide::cdp::browser_protocol::target::{
    CreateTargetParams, EventTargetCreated, EventTargetDestroyed, EventTargetInfoChanged,
};
use chromiumoxide::error::CdpError;
use chromiumoxide::handler::HandlerConfig;
use chromiumoxide::{Browser, Page};
use futures::StreamExt;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cdp::{browser_cmd, fulfil_params, page_cmd};
use crate::client_gate::{ClientGate, Hold, split_ws_url};
use crate::error::{BrowserError, Result};
pub(crate) use crate::hidden_tabs::{ATTACH_WAIT, attached_page, mark_internal};
use crate::launch::{ChromiumProcess, Emulation, LaunchOptions};
use crate::restore_gate::RestoreGate;

/// The URL of the minimised keeper tab of headed sessions.
pub const KEEPER_URL: &str = "about:blank#sesshost-keeper";
/// The URL of a capture's extra hidden tabs (many origins are read in
/// parallel; clients such as the console hide every
/// `about:blank#sesshost-` tab).
pub const CAPTURE_TAB_URL: &str = "about:blank#sesshost-capture";

/// Why a session's browser went away (see [`BrowserSession::wait_closed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Headed mode: the user closed the last window. Chromium is still
    /// running (kept alive for this), so a final [`BrowserSession::capture`]
    /// works; call [`BrowserSession::shutdown`] afterwards.
    LastWindowClosed,
    /// The browser process exited or the DevTools connection broke; nothing
    /// can be captured any more.
    BrowserGone,
}

/// Shared bookkeeping updated by the event tracker task.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// http(s) origins of every page/iframe target seen in this run.
    pub seen_origins: BTreeSet<String>,
    /// Page targets in the order they appeared (tab order).
    pub page_order: Vec<String>,
    /// Page targets alive now (excluding internal ones).
    pub live_pages: HashSet<String>,
    /// Our own short-lived targets, hidden from capture.
    pub internal: HashSet<String>,
    /// Whether a user page ever existed (for last-window detection).
    pub had_page: bool,
}

/// A Chromium we own, connected over DevTools. Dropping it kills the
/// browser's process group and deletes its profile.
pub struct BrowserSession {
    // Field order matters for drop: tasks stop, then the connection closes,
    // then the process group dies.
    tasks: Vec<JoinHandle<()>>,
    pub(crate) browser: Arc<Browser>,
    pub(crate) tracker: Arc<Mutex<Tracker>>,
    pub(crate) restored_origins: Arc<Mutex<BTreeSet<String>>>,
    /// The restore gate of the latest restore (cookies + storage), kept
    /// until the next restore so capture can wait for it.
    pub(crate) gate: Mutex<Option<Arc<RestoreGate>>>,
    /// The session's emulation, shared with the tracker task: replaced by
    /// [`BrowserSession::set_emulation`], read whenever a tab appears.
    pub(crate) emulation: Arc<RwLock<Emulation>>,
    /// Captures read storage in the keeper tab (navigated to each origin,
    /// then back to [`KEEPER_URL`]): opening and attaching a tab is most of
    /// a small capture's cost (~100-250 ms on 2 loaded cores), and every
    /// extra tab costs each CDP client an attach when it connects. The
    /// keeper's attached page is made on first use, or ahead of need by
    /// [`BrowserSession::prepare_capture_tab`]; `None` while a capture
    /// holds it.
    pub(crate) spare: Arc<Mutex<Option<Page>>>,
    /// The keeper tab's target id, and whether its page was attached.
    pub(crate) keeper_id: Mutex<Option<String>>,
    pub(crate) keeper_attached: std::sync::atomic::AtomicBool,
    closed_rx: watch::Receiver<Option<Closed>>,
    /// The URL handed to clients: through [`ClientGate`] when there is one.
    ws_url: String,
    /// Holds new clients while restored tabs are being rebuilt.
    client_gate: Option<ClientGate>,
    pub(crate) headed: bool,
    process: Option<ChromiumProcess>,
}

impl std::fmt::Debug for BrowserSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserSession")
            .field("ws_url", &self.ws_url)
            .field("headed", &self.headed)
            .field("process", &self.process)
            .finish_non_exhaustive()
    }
}

/// A Chromium launch in progress ([`BrowserSession::spawn`]): it runs on
/// its own task from the moment it is created, so the caller can read the
/// session store meanwhile. Await it for the session; dropping it cancels
/// the launch (a browser already started is killed and cleaned up).
#[must_use = "await it for the session; dropping it kills the browser"]
pub struct Launching {
    task: JoinHandle<Result<BrowserSession>>,
}

impl std::future::Future for Launching {
    type Output = Result<BrowserSession>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.task).poll(cx).map(|r| {
            r.unwrap_or_else(|e| Err(BrowserError::Connection(format!("launch task: {e}"))))
        })
    }
}

impl Drop for Launching {
    fn drop(&mut self) {
        // Aborting drops the half-built session (or the finished one not
        // yet taken), whose drop kills the browser.
        self.task.abort();
    }
}

impl BrowserSession {
    /// Start launching now and return at once; await the [`Launching`]
    /// when the session is needed. For a cold open, call this before
    /// reading the store and `restore_in_background` once the state is
    /// there: Chromium's ~0.5-1 s start overlaps the store read. The
    /// emulation must be known here (it becomes launch flags); must run
    /// inside a tokio runtime.
    pub fn spawn(opts: LaunchOptions) -> Launching {
        Launching {
            task: tokio::spawn(Self::launch(opts)),
        }
    }

    /// Launch a fresh Chromium (private profile, 127.0.0.1 debugging on a
    /// random port) and connect to it. Must run inside a tokio runtime.
    pub async fn launch(opts: LaunchOptions) -> Result<Self> {
        use tracing::Instrument as _;
        Self::launch_inner(opts)
            .instrument(tracing::debug_span!("launch"))
            .await
    }

    async fn launch_inner(opts: LaunchOptions) -> Result<Self> {
        let t0 = Instant::now();
        let o2 = opts.clone();
        let process = tokio::task::spawn_blocking(move || ChromiumProcess::spawn(&o2))
            .await
            .map_err(|e| BrowserError::Connection(e.to_string()))??;
        tracing::debug!("launch: DevTools endpoint after {:?}", t0.elapsed());
        let direct_url = process.ws_url().to_string();
        let config = HandlerConfig {
            viewport: None,
            request_timeout: Duration::from_secs(60),
            ..HandlerConfig::default()
        };
        let gate = async {
            match split_ws_url(&direct_url, 0) {
                Some((upstream, _)) => ClientGate::start(upstream).await.map(Some),
                None => Ok(None),
            }
        };
        let (connected, client_gate) = tokio::join!(
            Browser::connect_with_config(direct_url.clone(), config),
            gate
        );
        let (browser, mut handler) =
            connected.map_err(|e| BrowserError::Connection(e.to_string()))?;
        let client_gate = client_gate?;
        let ws_url = client_gate
            .as_ref()
            .and_then(|g| split_ws_url(&direct_url, g.port()))
            .map_or(direct_url, |(_, url)| url);
        tracing::debug!("launch: connected after {:?}", t0.elapsed());
        let (closed_tx, closed_rx) = watch::channel(None);
        let closed_tx = Arc::new(closed_tx);
        let ctx = closed_tx.clone();
        let handler_task = tokio::spawn(async move {
            while let Some(ev) = handler.next().await {
                match ev {
                    Ok(()) => {}
                    // The socket itself failed: the browser is gone.
                    Err(e @ (CdpError::Ws(_) | CdpError::Io(_))) => {
                        tracing::debug!("DevTools connection ended: {e}");
                        break;
                    }
                    // Anything else (a failed internal command, an event of
                    // a newer protocol) concerns one message, not the
                    // connection: keep going.
                    Err(e) => tracing::debug!("DevTools handler: {e}"),
                }
            }
            ctx.send_replace(Some(Closed::BrowserGone));
        });
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let mut session = BrowserSession {
            tasks: vec![handler_task],
            browser: Arc::new(browser),
            tracker: tracker.clone(),
            restored_origins: Arc::default(),
            gate: Mutex::new(None),
            emulation: Arc::new(RwLock::new(opts.emulation.clone())),
            spare: Arc::default(),
            keeper_id: Mutex::new(None),
            keeper_attached: std::sync::atomic::AtomicBool::new(false),
            closed_rx,
            ws_url,
            client_gate,
            headed: opts.headed,
            process: Some(process),
        };
        // The cookie store opens its database on first use (40-60 ms here).
        // Ask for it now and do not wait: a restore's `Storage.setCookies`
        // queues behind it in the network service, so the load overlaps
        // the tracker, the restore gate and the first tab instead of
        // delaying them.
        let browser = session.browser.clone();
        session.tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let _ = browser_cmd(&browser, "Storage.getCookies", json!({})).await;
            tracing::debug!("launch: cookie store warm after {:?}", t.elapsed());
        }));
        session.start_tracker(closed_tx).await?;
        // Headless too: Chromium ends its "browser session" when its last
        // tab closes and drops every session cookie with it (a CDP client
        // that opens one page, logs in and closes it would lose the login;
        // measured with Puppeteer through the service's proxy). Our own
        // hidden keeper tab keeps the session open.
        session.open_keeper_window().await?;
        tracing::debug!("launch: ready after {:?}", t0.elapsed());
        Ok(session)
    }

    async fn start_tracker(&mut self, closed_tx: Arc<watch::Sender<Option<Closed>>>) -> Result<()> {
        let mut created = self.browser.event_listener::<EventTargetCreated>().await?;
        let mut changed = self
            .browser
            .event_listener::<EventTargetInfoChanged>()
            .await?;
        let mut destroyed = self
            .browser
            .event_listener::<EventTargetDestroyed>()
            .await?;
        // Targets that existed before the listeners.
        let existing = browser_cmd(&self.browser, "Target.getTargets", json!({})).await?;
        {
            let mut t = self.tracker.lock().unwrap_or_else(|p| p.into_inner());
            for info in existing["targetInfos"].as_array().into_iter().flatten() {
                note_target(
                    &mut t,
                    info["targetId"].as_str().unwrap_or(""),
                    info["type"].as_str().unwrap_or(""),
                    info["url"].as_str().unwrap_or(""),
                );
            }
        }
        let tracker = self.tracker.clone();
        let shared_emulation = self.emulation.clone();
        let headed = self.headed;
        let browser = self.browser.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(ev) = created.next() => {
                        let info = &ev.target_info;
                        let is_new_page = {
                            let mut t = tracker.lock().unwrap_or_else(|p| p.into_inner());
                            note_target(&mut t, info.target_id.as_ref(), &info.r#type, &info.url)
                        };
                        let em = read_emulation(&shared_emulation);
                        if is_new_page && em != Emulation::default() {
                            // Tabs opened later (by the user, the page or a
                            // CDP client) get the session's emulation too,
                            // as it is when they appear.
                            let b = browser.clone();
                            let id = info.target_id.clone();
                            tokio::spawn(async move {
                                let page = attached_page(&b, id.as_ref(), Duration::from_secs(1), "").await;
                                if let Ok(page) = page {
                                    let _ = apply_emulation(&b, &page, &em).await;
                                }
                            });
                        }
                    }
                    Some(ev) = changed.next() => {
                        let info = &ev.target_info;
                        let mut t = tracker.lock().unwrap_or_else(|p| p.into_inner());
                        note_target(&mut t, info.target_id.as_ref(), &info.r#type, &info.url);
                    }
                    Some(ev) = destroyed.next() => {
                        let mut t = tracker.lock().unwrap_or_else(|p| p.into_inner());
                        let id: &str = ev.target_id.as_ref();
                        t.live_pages.remove(id);
                        if t.internal.contains(id) {
                            continue;
                        }
                        let user_pages = t.live_pages.iter().filter(|p| !t.internal.contains(*p)).count();
                        if headed && t.had_page && user_pages == 0 {
                            // Never turn "gone" back into "closed".
                            closed_tx.send_if_modified(|v| {
                                let fresh = v.is_none();
                                if fresh {
                                    *v = Some(Closed::LastWindowClosed);
                                }
                                fresh
                            });
                        }
                    }
                    else => break,
                }
            }
        });
        self.tasks.push(task);
        Ok(())
    }

    /// `ws://127.0.0.1:PORT/devtools/browser/ID`, for Playwright
    /// `connectOverCDP` / Puppeteer `connect`. Clients that disconnect do not
    /// end the session. The port is the session's client gate (see
    /// `client_gate.rs`): a client that connects while restored tabs are
    /// being rebuilt is answered once they are, so it can be handed out as
    /// soon as a restore is in force.
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// Hold clients that connect from now until the guard is dropped.
    pub(crate) fn hold_clients(&self) -> Option<Hold> {
        self.client_gate.as_ref().map(ClientGate::hold)
    }

    /// The browser's process id (= its process group id), if we launched it.
    pub fn pid(&self) -> Option<i32> {
        self.process.as_ref().map(|p| p.pid())
    }

    /// The private profile directory (deleted when the session ends).
    pub fn profile_dir(&self) -> Option<&std::path::Path> {
        self.process.as_ref().map(|p| p.profile_dir())
    }

    /// Whether the session shows windows.
    pub fn is_headed(&self) -> bool {
        self.headed
    }

    /// The emulation this session applies now (a copy: it may be replaced
    /// by [`BrowserSession::set_emulation`]).
    pub fn emulation(&self) -> Emulation {
        read_emulation(&self.emulation)
    }

    /// Replace the session's emulation (user agent, Accept-Language and
    /// `navigator.language` from the locale, locale, time zone, viewport):
    /// applied over CDP to every open tab at once, and to every tab that
    /// appears later (restored ones before they load; ones a client or page
    /// opens as soon as they are attached, ~10-50 ms after they appear).
    /// Fields that are `None` are reset to the browser's own on open tabs.
    ///
    /// This is how a pooled browser (launched without emulation flags) takes
    /// on a session. What CDP emulation does not reach, unlike launch flags
    /// (see the crate docs): service and shared workers, and requests a tab
    /// sent before its override was applied.
    pub async fn set_emulation(&self, em: Emulation) -> Result<()> {
        *self.emulation.write().unwrap_or_else(|p| p.into_inner()) = em.clone();
        let internal = self
            .tracker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .internal
            .clone();
        let pages = self.browser.pages().await?;
        let browser = &self.browser;
        let em = &em;
        futures::future::try_join_all(
            pages
                .iter()
                .filter(|p| !internal.contains(p.target_id().as_ref()))
                .map(|p| replace_emulation(browser, p, em)),
        )
        .await?;
        Ok(())
    }

    /// Used JS heap of this browser's tabs, in bytes: `Runtime.getHeapUsage`
    /// of every page target, each V8 isolate counted once (tabs sharing a
    /// renderer share one), our own hidden pages left out. Out-of-process
    /// iframes, workers and non-JS memory (DOM, images, ArrayBuffer
    /// contents) are not included. Costs two CDP round trips per tab, all
    /// tabs at once (~1-5 ms for a few tabs).
    pub async fn js_heap_bytes(&self) -> Result<u64> {
        let internal = self
            .tracker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .internal
            .clone();
        let pages = self.browser.pages().await?;
        let per_page = futures::future::join_all(
            pages
                .iter()
                .filter(|p| !internal.contains(p.target_id().as_ref()))
                .map(|p| async move {
                    let (iso, heap) = tokio::join!(
                        page_cmd(p, "Runtime.getIsolateId", json!({})),
                        page_cmd(p, "Runtime.getHeapUsage", json!({})),
                    );
                    // A tab that closed meanwhile has no heap any more.
                    let heap = heap.ok()?;
                    let id = iso.ok().and_then(|v| v["id"].as_str().map(str::to_string));
                    Some((id, heap["usedSize"].as_f64().unwrap_or(0.0)))
                }),
        )
        .await;
        let mut isolates = HashSet::new();
        let mut total = 0.0;
        for (id, used) in per_page.into_iter().flatten() {
            if id.is_none_or(|id| isolates.insert(id)) {
                total += used;
            }
        }
        Ok(total.max(0.0) as u64)
    }

    /// Open a user tab at `url` in the default context, with the session's
    /// emulation, and wait for it to load (the CLI's `--url`).
    pub async fn open_tab(&self, url: &str) -> Result<()> {
        let page = self
            .browser
            .new_page(CreateTargetParams::new("about:blank"))
            .await?;
        apply_emulation(&self.browser, &page, &self.emulation()).await?;
        navigate(&page, url).await
    }

    /// The chromiumoxide handle, for driving pages (tests, the CLI's
    /// `--url`). Everything it opens lands in the default context.
    pub fn cdp(&self) -> &Browser {
        &self.browser
    }

    /// Resolves when the browser is gone or, in headed mode, the user closed
    /// the last window (then a final capture still works).
    pub async fn wait_closed(&self) -> Closed {
        let mut rx = self.closed_rx.clone();
        loop {
            if let Some(c) = *rx.borrow_and_update() {
                return c;
            }
            if rx.changed().await.is_err() {
                return Closed::BrowserGone;
            }
        }
    }

    /// Close the browser: kill its process group, reap it, delete the
    /// profile, and wait until all of that is done. Dropping the session
    /// does the same without waiting (it never blocks the caller).
    pub async fn shutdown(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        if let Some(done) = self.process.as_mut().and_then(|p| p.kill_in_background()) {
            let _ = done.await;
        }
    }
}

impl Drop for BrowserSession {
    fn drop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        // ChromiumProcess's own Drop SIGKILLs the group at once and cleans
        // up on a thread of its own: nothing here blocks the executor.
    }
}

/// Record a target; returns true when it is a user page seen for the first
/// time.
fn note_target(t: &mut Tracker, id: &str, kind: &str, url: &str) -> bool {
    if t.internal.contains(id) {
        return false;
    }
    // Our own writer and placeholder documents (`{origin}/.sesshost-{token}/…`)
    // do not make an origin "seen": their event can arrive before the
    // target is marked internal, and an origin whose writing failed must
    // keep its previous state in the next capture, not be read half-written.
    let ours = url.contains("/.sesshost-");
    if let Some(o) =
        crate::capture::origin_of(url).filter(|_| !ours && (kind == "page" || kind == "iframe"))
    {
        t.seen_origins.insert(o);
    }
    if kind == "page" && !t.page_order.iter().any(|p| p == id) {
        t.page_order.push(id.to_string());
        t.live_pages.insert(id.to_string());
        t.had_page = true;
        return true;
    }
    false
}

/// A copy of the shared emulation.
pub(crate) fn read_emulation(e: &RwLock<Emulation>) -> Emulation {
    e.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The browser's own user agent (`--user-agent` if it was launched with
/// one).
async fn browser_user_agent(browser: &Browser) -> Result<String> {
    let v = browser_cmd(browser, "Browser.getVersion", json!({})).await?;
    Ok(v["userAgent"].as_str().unwrap_or_default().to_string())
}

/// The user agent to send with `Emulation.setUserAgentOverride`, if any:
/// the session's, else (with a locale) the browser's own, since only that
/// command sets Accept-Language and `navigator.language`.
async fn user_agent_for(browser: &Browser, e: &Emulation) -> Result<Option<String>> {
    match (&e.user_agent, &e.locale) {
        (Some(ua), _) => Ok(Some(ua.clone())),
        (None, Some(_)) => Ok(Some(browser_user_agent(browser).await?)),
        (None, None) => Ok(None),
    }
}

/// Apply a session's emulation to one fresh tab through CDP (fields that
/// are `None` are left as the browser has them).
pub(crate) async fn apply_emulation(browser: &Browser, page: &Page, e: &Emulation) -> Result<()> {
    if let Some(ua) = user_agent_for(browser, e).await? {
        let mut p = json!({ "userAgent": ua });
        if let Some(l) = &e.locale {
            p["acceptLanguage"] = json!(l);
        }
        page_cmd(page, "Emulation.setUserAgentOverride", p).await?;
    }
    if let Some(l) = &e.locale {
        page_cmd(page, "Emulation.setLocaleOverride", json!({ "locale": l })).await?;
    }
    if let Some(tz) = &e.timezone {
        page_cmd(
            page,
            "Emulation.setTimezoneOverride",
            json!({ "timezoneId": tz }),
        )
        .await?;
    }
    if let Some(v) = &e.viewport {
        page_cmd(page, "Emulation.setDeviceMetricsOverride", metrics(v)).await?;
    }
    Ok(())
}

/// Replace the emulation of a tab that may carry an older one: fields
/// that are `None` go back to the browser's own.
async fn replace_emulation(browser: &Browser, page: &Page, e: &Emulation) -> Result<()> {
    let ua = match &e.user_agent {
        Some(ua) => ua.clone(),
        None => browser_user_agent(browser).await?,
    };
    let (ua_cmd, locale, tz, metrics_cmd) = tokio::join!(
        page_cmd(
            page,
            "Emulation.setUserAgentOverride",
            json!({ "userAgent": ua, "acceptLanguage": e.locale.clone().unwrap_or_default() }),
        ),
        page_cmd(
            page,
            "Emulation.setLocaleOverride",
            match &e.locale {
                Some(l) => json!({ "locale": l }),
                None => json!({}),
            },
        ),
        page_cmd(
            page,
            "Emulation.setTimezoneOverride",
            json!({ "timezoneId": e.timezone.clone().unwrap_or_default() }),
        ),
        async {
            match &e.viewport {
                Some(v) => page_cmd(page, "Emulation.setDeviceMetricsOverride", metrics(v)).await,
                None => page_cmd(page, "Emulation.clearDeviceMetricsOverride", json!({})).await,
            }
        },
    );
    ua_cmd?;
    locale?;
    tz?;
    metrics_cmd?;
    Ok(())
}

fn metrics(v: &sessbundle::state::Viewport) -> serde_json::Value {
    json!({
        "width": v.width,
        "height": v.height,
        "deviceScaleFactor": if v.device_scale_factor > 0.0 { v.device_scale_factor } else { 1.0 },
        "mobile": false,
    })
}

/// Answers every request of a page with a placeholder, so that page can
/// "visit" any origin without touching the network. Documents get an empty
/// HTML page (titled from `titles` when the URL is known), everything else
/// a 404. Dropping it stops answering (call [`Placeholder::stop`] first to
/// also disable interception).
pub(crate) struct Placeholder {
    task: JoinHandle<()>,
    pub titles: Arc<Mutex<HashMap<String, String>>>,
}

impl Placeholder {
    pub async fn start(page: &Page) -> Result<Self> {
        let mut events = page.event_listener::<EventRequestPaused>().await?;
        let titles: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let t2 = titles.clone();
        let p2 = page.clone();
        let task = tokio::spawn(async move {
            while let Some(ev) = events.next().await {
                let is_doc = matches!(
                    ev.resource_type,
                    chromiumoxide::cdp::browser_protocol::network::ResourceType::Document
                );
                let params = if is_doc {
                    let title = t2
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&ev.request.url)
                        .cloned()
                        .unwrap_or_default();
                    let body = format!(
                        "<!doctype html><meta charset=utf-8><title>{}</title>",
                        html_escape(&title)
                    );
                    fulfil_params(
                        ev.request_id.as_ref(),
                        200,
                        "text/html; charset=utf-8",
                        &body,
                    )
                } else {
                    json!({ "requestId": ev.request_id.as_ref(), "responseCode": 404, "body": "" })
                };
                let _ = page_cmd(&p2, "Fetch.fulfillRequest", params).await;
            }
        });
        page_cmd(
            page,
            "Fetch.enable",
            json!({ "patterns": [{ "urlPattern": "*", "requestStage": "Request" }] }),
        )
        .await?;
        Ok(Placeholder { task, titles })
    }

    /// Stop intercepting: later navigations of the page use the network.
    pub async fn stop(self, page: &Page) -> Result<()> {
        page_cmd(page, "Fetch.disable", json!({})).await?;
        self.task.abort();
        Ok(())
    }
}

impl Drop for Placeholder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Navigate `page` and wait until the new document has loaded.
pub(crate) async fn navigate(page: &Page, url: &str) -> Result<()> {
    let started = Instant::now();
    page.goto(url).await.map_err(|e| BrowserError::Cdp {
        method: "Page.navigate".into(),
        message: format!("{e} (after {:?})", started.elapsed()),
    })?;
    Ok(())
}

pub(crate) use sessbundle::interop::dates::now_ms;
