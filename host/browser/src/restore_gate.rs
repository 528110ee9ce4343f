//! The restore gate: a restored session is in force at once, while its
//! cookies are set and its storage written in the background.
//!
//! Setting 1,000 cookies costs Chromium ~100 ms, and storage can only be
//! written from a renderer of its origin (the first IndexedDB use of an
//! origin alone costs 100–300 ms), so writing 10 origins takes about a
//! second on two cores. Instead of making the caller wait, restore puts up
//! a *gate* through browser-level `Fetch.enable`, which sees the requests
//! of every tab, including tabs a CDP client opens later:
//!
//! - while cookies are being set, every request is held (cookies are
//!   attached by the network stack after interception, so a released
//!   request carries them);
//! - after that, a document (top-level or frame) of an origin whose storage
//!   is not written yet is held until its writer reports done, and that
//!   origin jumps the queue; every other request continues at once;
//! - each origin is written by a *writer page*: a hidden target at
//!   `{origin}/.sesshost-{token}/write`, whose document we fulfil ourselves
//!   (no network, no site script) with the data and [`js::restore_origin`]
//!   inline; it reports through a `fetch` of `.sesshost-{token}/done?…`,
//!   which we also answer ourselves. The token is random per gate, so a
//!   site's own script cannot fake a report.
//!
//! When cookies are set and every origin is written the gate comes down
//! (`Fetch.disable`). No request leaves before the cookies are there and
//! no page script of a restored origin runs before its storage is there,
//! so "in force" is as good as "written" for anything that loads.
//!
//! Owns: the gate task, the writer pages, the per-origin job list. Must not
//! touch user tabs beyond holding and continuing their requests.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chromiumoxide::Browser;
use chromiumoxide::cdp::browser_protocol::fetch::EventRequestPaused;
use chromiumoxide::cdp::browser_protocol::network::ResourceType;
use futures::StreamExt;
use serde_json::{Value, json};
use sessbundle::state::OriginState;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::capture::origin_of;
use crate::cdp::{browser_cmd, create_target, fulfil_params};
use crate::error::{BrowserError, Result};
use crate::js;
use crate::session::{Tracker, mark_internal};

/// How many writer pages run at once (an origin a page is waiting for
/// starts at once, beyond this). Cost: each is a renderer process (~30 MB)
/// until its origin is written, and they compete with the pages the user
/// is waiting for. Measured on 2 cores with the browser bench (11 origins):
/// 2 writers: all written 1,757 ms, app usable after launch 1,200 ms;
/// 4: 1,268 / 1,428 ms; 16: 1,128 / 1,888 ms.
pub const MAX_WRITERS: usize = 4;

/// A writer that has not reported after this long is failed (its origin is
/// released so pages do not hang). Generous: 100 MB of IndexedDB takes a
/// few seconds.
pub const WRITER_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Queued,
    Writing,
    Done,
}

#[derive(Debug)]
struct Job {
    /// The origin's data; the writer document is built when it starts, off
    /// the path of `start`.
    data: Option<Arc<OriginState>>,
    status: Status,
    target: Option<String>,
    started: Option<Instant>,
}

/// A request held by the gate.
#[derive(Debug)]
struct Held {
    id: String,
    origin: Option<String>,
    is_document: bool,
}

#[derive(Debug, Default)]
struct GateState {
    cookies_pending: bool,
    /// Requests held until the cookies are set.
    held_for_cookies: Vec<Held>,
    queue: VecDeque<String>,
    jobs: HashMap<String, Job>,
    /// Document requests per origin, released when it is written.
    held: HashMap<String, Vec<String>>,
    errors: Vec<BrowserError>,
}

impl GateState {
    /// Writers started and not finished.
    fn running(&self) -> usize {
        self.jobs
            .values()
            .filter(|j| j.status == Status::Writing)
            .count()
    }

    fn up(&self) -> bool {
        self.cookies_pending || self.jobs.values().any(|j| j.status != Status::Done)
    }
}

/// What the gate task needs from the session.
#[derive(Clone)]
pub(crate) struct GateContext {
    pub browser: Arc<Browser>,
    pub tracker: Arc<Mutex<Tracker>>,
    pub restored_origins: Arc<Mutex<BTreeSet<String>>>,
}

/// A running gate: dropping it stops the task (the browser is going away).
pub(crate) struct RestoreGate {
    state: Arc<Mutex<GateState>>,
    settled: watch::Receiver<bool>,
    cookies_done: mpsc::UnboundedSender<Result<()>>,
    task: JoinHandle<()>,
}

impl Drop for RestoreGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RestoreGate {
    /// Put the gate up. With `cookies_pending`, every request is held until
    /// [`RestoreGate::cookies_set`]; documents of `origins` with
    /// localStorage or IndexedDB data are held until their writer is done
    /// (writers start at once). Returns `None` when there is nothing to
    /// gate.
    pub(crate) async fn start(
        ctx: GateContext,
        origins: &[OriginState],
        cookies_pending: bool,
    ) -> Result<Option<Self>> {
        let todo: Vec<&OriginState> = origins
            .iter()
            .filter(|o| !o.local_storage.is_empty() || !o.indexed_db.is_empty())
            .collect();
        if todo.is_empty() && !cookies_pending {
            return Ok(None);
        }
        let marker = format!("/.sesshost-{}/", random_token());
        let mut st = GateState {
            cookies_pending,
            ..GateState::default()
        };
        for o in todo {
            st.queue.push_back(o.origin.clone());
            st.jobs.insert(
                o.origin.clone(),
                Job {
                    data: Some(Arc::new(o.clone())),
                    status: Status::Queued,
                    target: None,
                    started: None,
                },
            );
        }
        let state = Arc::new(Mutex::new(st));
        let (settled_tx, settled) = watch::channel(false);
        let events = ctx.browser.event_listener::<EventRequestPaused>().await?;
        browser_cmd(
            &ctx.browser,
            "Fetch.enable",
            patterns(cookies_pending, &marker),
        )
        .await?;
        let (cookies_done, cookies_rx) = mpsc::unbounded_channel();
        let runner = Runner {
            ctx,
            state: state.clone(),
            marker,
        };
        runner.fill_slots();
        let task = tokio::spawn(runner.run(events, cookies_rx, settled_tx));
        Ok(Some(RestoreGate {
            state,
            settled,
            cookies_done,
            task,
        }))
    }

    /// The cookies are set (or failed to be): release what waited for them.
    pub(crate) fn cookies_set(&self, result: Result<()>) {
        let _ = self.cookies_done.send(result);
    }

    /// Resolves when the gate is down (cookies set, every origin written
    /// or failed); returns the failures not yet returned to anyone.
    pub(crate) async fn settled(&self) -> Vec<BrowserError> {
        let mut rx = self.settled.clone();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                break;
            }
        }
        std::mem::take(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()).errors)
    }
}

/// `Fetch.enable` params: everything while cookies are pending, then only
/// documents and our own writer URLs.
fn patterns(cookies_pending: bool, marker: &str) -> Value {
    if cookies_pending {
        json!({ "patterns": [{ "urlPattern": "*", "requestStage": "Request" }] })
    } else {
        json!({ "patterns": [
            { "urlPattern": "*", "resourceType": "Document", "requestStage": "Request" },
            { "urlPattern": format!("*{marker}*"), "requestStage": "Request" },
        ] })
    }
}

/// `data` as a JS literal that is safe inside `<script>`: serde_json puts
/// `<` only inside strings, where `\u003c` means the same.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
}

/// The writer page of one origin: its data and the restore script inline;
/// reports to `{marker}done`.
fn writer_document(o: &OriginState, marker: &str) -> String {
    let data = json!({
        "clear": true,
        "localStorage": o.local_storage,
        "indexedDB": o.indexed_db,
    });
    let restore = js::restore_origin(&script_safe(&data.to_string()));
    format!(
        "<!doctype html><meta charset=utf-8><link rel=icon href=\"data:,\">\
<title>sesshost storage writer</title><script>\n\
(async () => {{\n\
  const report = (q) => fetch('{marker}done?' + q, {{ cache: 'no-store' }}).catch(() => {{}});\n\
  try {{ const r = await {restore}; await report('ok=1&ms=' + encodeURIComponent(JSON.stringify(r))); }}\n\
  catch (e) {{ await report('error=' + encodeURIComponent(String((e && e.message) || e))); }}\n\
}})();\n\
</script>"
    )
}

/// `%XX` decoding of a query value (`+` is left alone: we encode with
/// `encodeURIComponent`).
fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_value<'a>(url: &'a str, key: &str) -> Option<&'a str> {
    let q = url.split_once('?')?.1;
    q.split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn random_token() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // Only spoof protection depends on this; a per-process random
        // hasher seed is still unguessable for a web page.
        use std::hash::{BuildHasher, Hasher};
        for half in b.chunks_mut(8) {
            let h = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            half.copy_from_slice(&h.to_le_bytes());
        }
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Runner {
    ctx: GateContext,
    state: Arc<Mutex<GateState>>,
    marker: String,
}

enum Reply {
    Continue,
    Fulfil {
        code: u16,
        content_type: &'static str,
        body: String,
    },
    Hold,
}

impl Runner {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, method: &'static str, params: Value) {
        let b = self.ctx.browser.clone();
        tokio::spawn(async move {
            let _ = browser_cmd(&b, method, params).await;
        });
    }

    /// Start queued writers while fewer than [`MAX_WRITERS`] run.
    fn fill_slots(&self) {
        loop {
            let origin = {
                let mut st = self.lock();
                if st.running() >= MAX_WRITERS {
                    return;
                }
                let Some(o) = st.queue.pop_front() else {
                    return;
                };
                o
            };
            self.start_writer(origin);
        }
    }

    fn start_writer(&self, origin: String) {
        {
            let mut st = self.lock();
            st.queue.retain(|o| o != &origin);
            let Some(job) = st.jobs.get_mut(&origin) else {
                return;
            };
            if job.status != Status::Queued {
                return;
            }
            job.status = Status::Writing;
            job.started = Some(Instant::now());
        }
        let url = format!("{origin}{}write", self.marker);
        let browser = self.ctx.browser.clone();
        let tracker = self.ctx.tracker.clone();
        let state = self.state.clone();
        tokio::spawn(async move {
            // Hidden targets stay out of the tab strip; Chromium builds that
            // refuse them get a background tab instead.
            let mut r = create_target(&browser, json!({ "url": url, "hidden": true })).await;
            if r.is_err() {
                r = create_target(&browser, json!({ "url": url, "background": true })).await;
            }
            let id = match r {
                Ok(id) => id,
                Err(e) => {
                    // The writer timeout fails the origin.
                    // The error may quote the writer URL (with the gate's
                    // token): details at debug only.
                    tracing::warn!("restore: could not open a writer page for {origin}");
                    tracing::debug!("restore: writer page for {origin}: {e}");
                    return;
                }
            };
            mark_internal(&tracker, &id);
            let close_now = {
                let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                match st.jobs.get_mut(&origin) {
                    Some(j) if j.status == Status::Writing => {
                        j.target = Some(id.clone());
                        false
                    }
                    // Reported (or timed out) before we learnt the id.
                    _ => true,
                }
            };
            if close_now {
                let _ =
                    browser_cmd(&browser, "Target.closeTarget", json!({ "targetId": id })).await;
            }
        });
    }

    /// An origin is finished (written or failed): release what waits on it.
    fn finish(&self, origin: &str, error: Option<String>) {
        let (held, target) = {
            let mut st = self.lock();
            let Some(job) = st.jobs.get_mut(origin) else {
                return;
            };
            if job.status != Status::Writing {
                return;
            }
            job.status = Status::Done;
            job.data = None;
            let target = job.target.take();
            let took = job.started.map(|s| s.elapsed());
            match &error {
                None => tracing::debug!("restore: {origin} written in {took:?}"),
                Some(e) => st.errors.push(BrowserError::Storage {
                    what: "writing storage",
                    origin: origin.to_string(),
                    message: e.clone(),
                }),
            }
            (st.held.remove(origin).unwrap_or_default(), target)
        };
        if error.is_none() {
            self.ctx
                .restored_origins
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(origin.to_string());
        }
        for id in held {
            self.send("Fetch.continueRequest", json!({ "requestId": id }));
        }
        if let Some(t) = target {
            self.send("Target.closeTarget", json!({ "targetId": t }));
        }
        self.fill_slots();
    }

    /// Cookies are set: narrow the interception to documents and release
    /// (or re-hold, for storage) what waited.
    async fn cookies_set(&self, result: Result<()>) {
        let held = {
            let mut st = self.lock();
            if !st.cookies_pending {
                return;
            }
            st.cookies_pending = false;
            if let Err(e) = result {
                st.errors.push(e);
            }
            std::mem::take(&mut st.held_for_cookies)
        };
        if self.lock().up() {
            let _ = browser_cmd(
                &self.ctx.browser,
                "Fetch.enable",
                patterns(false, &self.marker),
            )
            .await;
        }
        for h in held {
            if let (true, Some(origin)) = (h.is_document, h.origin)
                && self.hold_for_storage(&origin, &h.id)
            {
                continue;
            }
            self.send("Fetch.continueRequest", json!({ "requestId": h.id }));
        }
    }

    /// Hold a document request of `origin` if its storage is not written
    /// yet (starting its writer now if it was queued).
    fn hold_for_storage(&self, origin: &str, request_id: &str) -> bool {
        let status = self.lock().jobs.get(origin).map(|j| j.status);
        match status {
            Some(Status::Queued) | Some(Status::Writing) => {
                self.lock()
                    .held
                    .entry(origin.to_string())
                    .or_default()
                    .push(request_id.to_string());
                if status == Some(Status::Queued) {
                    tracing::debug!("restore: a page wants {origin}; writing it next");
                    self.start_writer(origin.to_string());
                }
                true
            }
            _ => false,
        }
    }

    fn writer_reply(&self, origin: &str, rest: &str, url: &str) -> Reply {
        let empty = |code| Reply::Fulfil {
            code,
            content_type: "text/plain",
            body: String::new(),
        };
        if rest.starts_with("write") {
            let data = {
                let st = self.lock();
                st.jobs
                    .get(origin)
                    .filter(|j| j.status == Status::Writing)
                    .and_then(|j| j.data.clone())
            };
            return match data {
                Some(o) => Reply::Fulfil {
                    code: 200,
                    content_type: "text/html; charset=utf-8",
                    body: writer_document(&o, &self.marker),
                },
                None => empty(404),
            };
        }
        if rest.starts_with("done") {
            if let Some(ms) = query_value(url, "ms") {
                tracing::debug!("restore: {origin} in-page times {}", percent_decode(ms));
            }
            self.finish(origin, query_value(url, "error").map(percent_decode));
            return empty(204);
        }
        empty(404)
    }

    fn decide(&self, ev: &EventRequestPaused) -> Reply {
        let url = ev.request.url.as_str();
        let origin = origin_of(url);
        if let Some(o) = &origin
            && let Some(rest) = url[o.len()..].strip_prefix(self.marker.as_str())
        {
            return self.writer_reply(o, rest, url);
        }
        let is_document = matches!(ev.resource_type, ResourceType::Document);
        let id = ev.request_id.as_ref().to_string();
        {
            let mut st = self.lock();
            if st.cookies_pending {
                st.held_for_cookies.push(Held {
                    id,
                    origin,
                    is_document,
                });
                return Reply::Hold;
            }
        }
        match origin {
            Some(o) if is_document && self.hold_for_storage(&o, &id) => Reply::Hold,
            _ => Reply::Continue,
        }
    }

    /// Fail writers that never reported.
    fn expire(&self) {
        let late: Vec<String> = self
            .lock()
            .jobs
            .iter()
            .filter(|(_, j)| {
                j.status == Status::Writing
                    && j.started.is_some_and(|s| s.elapsed() > WRITER_TIMEOUT)
            })
            .map(|(o, _)| o.clone())
            .collect();
        for o in late {
            self.finish(
                &o,
                Some(format!(
                    "the writer page did not finish within {} s",
                    WRITER_TIMEOUT.as_secs()
                )),
            );
        }
    }

    async fn run(
        self,
        mut events: chromiumoxide::listeners::EventStream<EventRequestPaused>,
        mut cookies: mpsc::UnboundedReceiver<Result<()>>,
        settled: watch::Sender<bool>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut cookies_open = true;
        while self.lock().up() {
            tokio::select! {
                r = cookies.recv(), if cookies_open => {
                    cookies_open = false;
                    self.cookies_set(r.unwrap_or_else(|| Err(BrowserError::Connection(
                        "restore stopped before the cookies were set".into(),
                    ))))
                    .await;
                }
                ev = events.next() => {
                    let Some(ev) = ev else { break };
                    let id = ev.request_id.as_ref().to_string();
                    match self.decide(&ev) {
                        Reply::Hold => {}
                        Reply::Continue => self.send("Fetch.continueRequest", json!({ "requestId": id })),
                        Reply::Fulfil { code, content_type, body } => self.send(
                            "Fetch.fulfillRequest",
                            fulfil_params(&id, code, content_type, &body),
                        ),
                    }
                }
                _ = tick.tick() => self.expire(),
            }
        }
        // Disabling continues anything still paused.
        let _ = browser_cmd(&self.ctx.browser, "Fetch.disable", json!({})).await;
        let _ = settled.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_decode() {
        let u = "http://a.test/.sesshost-x/done?error=bad%20thing%3A%20%E2%9C%93&ms=1";
        assert_eq!(
            query_value(u, "error").map(percent_decode).as_deref(),
            Some("bad thing: ✓")
        );
        assert_eq!(query_value(u, "ms"), Some("1"));
        assert_eq!(query_value(u, "ok"), None);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn script_data_cannot_close_the_script() {
        let s = script_safe(&json!({ "v": "</script><script>alert(1)</script>" }).to_string());
        assert!(!s.contains('<'));
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back["v"], "</script><script>alert(1)</script>");
    }

    #[test]
    fn tokens_are_random_hex() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
