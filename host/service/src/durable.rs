//! The durable tier: `host run --plugin s3.wasm …` keeps every session in
//! a remote repository (the same encrypted format as `host push`, opened
//! with the repository key, never the home's host key) behind the local
//! store.
//!
//! - **Write-through.** A session is written to the remote when a release
//!   (also one that hibernates) or the shutdown commits it (the caller
//!   waits for it, so a 2xx release means the state is in both tiers when
//!   the remote is up), and within a second of any other change (create,
//!   fork, edits, rollback, extend, an idle or memory hibernation; autosaves
//!   at the next `autosave_seconds` pass), by a single writer that compares each session's
//!   version (newest snapshot, update time, expiry, catalog record) with
//!   what it last wrote: an unchanged session costs no request. A failed
//!   write is logged and counted (`sesshost_plugin_failures_total{plugin=
//!   "durable",call="write"}`) and retried on the next pass; the local
//!   commit stands (the local store is the source of truth while it
//!   exists).
//! - **Read-through.** A request that names a session id the local tier
//!   lacks asks the remote; if it holds the session it is copied into the
//!   local store with its catalog record (tenant, name, tags, checks) and
//!   the request proceeds as if it had always been local. This is how a
//!   host whose disk was lost or replaced serves its sessions again. An id
//!   the remote lacks is remembered for [`NEGATIVE_TTL`] so unknown ids
//!   cost one remote lookup at most that often.
//! - **Deletes** (the API's delete, cleanup of expired sessions) remove the
//!   remote copy before they answer, so a deleted session cannot come back
//!   through read-through.
//!
//! The remote copy carries the catalog record in the state's `sesshost`
//! namespace of `extra` (key `record`, JSON text; SPEC §9); the local copy
//! never does, and exports never do.
//!
//! What it does not do: list sessions that only the remote holds (they
//! appear once addressed by id), or share sessions between hosts (that is
//! `--cluster`, which needs conditional writes).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sesshost_engine::RemoteTier;
use tokio::sync::{Mutex, Notify};

use crate::app::App;
use crate::catalog::Record;

/// How long an id the remote lacks is not asked for again.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(10);

/// The `extra` key of the remote copy's catalog record.
pub const RECORD_KEY: &str = "record";

/// Sessions to look at on the writer's next pass.
#[derive(Default)]
struct Dirty {
    /// Look at every session (a change whose session is not known, e.g.
    /// a create, or the periodic pass that catches autosaves).
    all: bool,
    ids: std::collections::HashSet<String>,
}

pub struct Durable {
    tier: RemoteTier,
    /// What was last written per session (its version), persisted in
    /// `HOME/service/durable.json` so a restart does not rewrite everything.
    written: Mutex<HashMap<String, String>>,
    state_file: PathBuf,
    /// Ids the remote lacked, and when that was seen.
    absent: std::sync::Mutex<HashMap<String, Instant>>,
    wake: Notify,
    /// What changed since the writer last looked.
    dirty: std::sync::Mutex<Dirty>,
    /// One write, fetch or delete at a time (simple and enough: each is a
    /// few requests; sessions change far less often than once a second).
    io: Mutex<()>,
}

impl Durable {
    pub fn new(tier: RemoteTier, state_file: PathBuf) -> Durable {
        let written = std::fs::read(&state_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Durable {
            tier,
            written: Mutex::new(written),
            state_file,
            absent: std::sync::Mutex::new(HashMap::new()),
            wake: Notify::new(),
            dirty: std::sync::Mutex::new(Dirty::default()),
            io: Mutex::new(()),
        }
    }

    /// Session `id` changed (`None`: a change whose session is not known,
    /// such as a create): let the writer look at it soon. A known id costs
    /// the writer one session, not a pass over all of them.
    pub fn changed(&self, id: Option<&str>) {
        {
            let mut d = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
            match id {
                Some(id) => {
                    d.ids.insert(id.to_string());
                }
                None => d.all = true,
            }
        }
        self.wake.notify_one();
    }

    async fn persist(&self, written: &HashMap<String, String>) {
        let Ok(bytes) = serde_json::to_vec(written) else {
            return;
        };
        let path = self.state_file.clone();
        let r = tokio::task::spawn_blocking(move || {
            sessbundle::atomic::write_atomic(&path, &bytes, 0o600)
        })
        .await;
        if !matches!(r, Ok(Ok(_))) {
            tracing::warn!(
                "cannot record the durable tier's progress in {}",
                self.state_file.display()
            );
        }
    }

    /// Write `id` to the remote if it changed since the last write; the
    /// caller waits. Errors are logged and counted, never returned: the
    /// local commit stands and the writer retries.
    pub async fn write_through(&self, app: &App, id: &str) {
        let _io = self.io.lock().await;
        self.write_locked(app, id).await;
    }

    async fn write_locked(&self, app: &App, id: &str) {
        let Some(rec) = app.catalog.get(id) else {
            return;
        };
        let Ok(info) = app.engine.show(id).await else {
            return;
        };
        let version = version_of(&info, &rec);
        if self.written.lock().await.get(id) == Some(&version) {
            return;
        }
        let t0 = Instant::now();
        let result = async {
            let state = remote_copy(app, id, &info, &rec).await?;
            self.tier.put(id, state).await
        }
        .await;
        self.count_metric(app, "write", result.is_ok(), t0);
        match result {
            Ok(r) => {
                tracing::debug!(
                    "durable tier: wrote {id} ({} bytes new of {})",
                    r.bytes_written,
                    r.logical_bytes
                );
                let mut w = self.written.lock().await;
                w.insert(id.to_string(), version);
                self.persist(&w).await;
                self.absent_remove(id);
            }
            Err(e) => tracing::warn!("durable tier: cannot write session {id} (retried): {e}"),
        }
    }

    /// Remove `id` from the remote (delete, expiry). Errors are logged and
    /// the id is kept for the writer to retry.
    pub async fn remove(&self, app: &App, id: &str) {
        let _io = self.io.lock().await;
        let t0 = Instant::now();
        let r = self.tier.remove(id).await;
        self.count_metric(app, "delete", r.is_ok(), t0);
        match r {
            Ok(()) => {
                let mut w = self.written.lock().await;
                w.remove(id);
                self.persist(&w).await;
            }
            Err(e) => {
                tracing::warn!("durable tier: cannot delete session {id} (retried): {e}");
                // Marked so the writer's pass deletes it again.
                self.written
                    .lock()
                    .await
                    .insert(id.to_string(), "deleted".into());
            }
        }
    }

    fn absent_remove(&self, id: &str) {
        self.absent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Read-through: when the local tier lacks `id` and the remote holds
    /// it, copy it in (state and catalog record). Returns whether it is
    /// local now.
    pub async fn fetch(&self, app: &App, id: &str) -> bool {
        {
            let mut a = self.absent.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(t) = a.get(id) {
                if t.elapsed() < NEGATIVE_TTL {
                    return false;
                }
                a.remove(id);
            }
        }
        let _io = self.io.lock().await;
        if app.catalog.get(id).is_some() {
            return true;
        }
        if self.written.lock().await.get(id).map(String::as_str) == Some("deleted") {
            return false;
        }
        let t0 = Instant::now();
        let got = self.tier.get(id).await;
        self.count_metric(app, "read", got.is_ok(), t0);
        if let Ok(g) = &got {
            app.metrics
                .tier_requests_total
                .inc(&["durable", if g.is_some() { "hit" } else { "miss" }]);
        }
        let mut state = match got {
            Ok(Some(s)) => s,
            Ok(None) => {
                self.absent
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id.to_string(), Instant::now());
                return false;
            }
            Err(e) => {
                tracing::warn!("durable tier: cannot read session {id}: {e}");
                return false;
            }
        };
        let rec = split_remote_copy(&mut state, id, sesshost_store::now_ms());
        if let Err(e) = app.engine.adopt_state(id, state).await {
            tracing::warn!("durable tier: cannot store fetched session {id} locally: {e}");
            return false;
        }
        let tenant = rec.tenant.clone();
        if let Err(e) = app.catalog.put(rec) {
            tracing::warn!("durable tier: cannot record fetched session {id}: {e}");
            return false;
        }
        tracing::info!("durable tier: fetched session {id} (tenant {tenant}) on a local miss");
        true
    }

    /// Duration and failure of one remote operation, as plugin-call
    /// metrics (`plugin="durable"`, `call` = write | read | delete).
    fn count_metric(&self, app: &App, op: &str, ok: bool, t0: Instant) {
        app.metrics
            .plugin_call_seconds
            .observe(&["durable", op], t0.elapsed().as_secs_f64());
        if !ok {
            app.metrics.plugin_failures_total.inc(&["durable", op]);
        }
    }

    /// One pass over every session: write those that changed, delete
    /// remote copies of sessions deleted here.
    pub async fn pass(&self, app: &App) {
        let ids: std::collections::BTreeSet<String> = {
            let w = self.written.lock().await;
            app.catalog
                .all()
                .into_iter()
                .map(|r| r.id)
                .chain(w.keys().cloned())
                .collect()
        };
        self.pass_over(app, ids).await;
    }

    /// Write those of `ids` that changed; delete the remote copies of those
    /// deleted here.
    async fn pass_over(&self, app: &App, ids: impl IntoIterator<Item = String>) {
        let _io = self.io.lock().await;
        let mut gone = Vec::new();
        for id in ids {
            if app.catalog.get(&id).is_some() {
                self.write_locked(app, &id).await;
            } else if self.written.lock().await.contains_key(&id) {
                gone.push(id);
            }
        }
        for id in gone {
            let t0 = Instant::now();
            let r = self.tier.remove(&id).await;
            self.count_metric(app, "delete", r.is_ok(), t0);
            if r.is_ok() {
                let mut w = self.written.lock().await;
                w.remove(&id);
                self.persist(&w).await;
            }
        }
    }

    /// The writer: the changed sessions within a second of a change, and
    /// a pass over all of them every `autosave_seconds` (autosaves do not
    /// notify).
    pub async fn run(self: Arc<Self>, app: Arc<App>) {
        let period = Duration::from_secs(app.config.lifecycle.autosave_seconds.max(1));
        loop {
            tokio::select! {
                _ = self.wake.notified() => tokio::time::sleep(Duration::from_millis(200)).await,
                _ = tokio::time::sleep(period) => {
                    self.dirty.lock().unwrap_or_else(|p| p.into_inner()).all = true;
                }
            }
            if app.shutting_down.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            let d = std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|p| p.into_inner()));
            if d.all {
                self.pass(&app).await;
            } else {
                self.pass_over(&app, d.ids).await;
            }
        }
    }
}

/// The `extra` key of the remote copy's lifecycle facts (created, expiry,
/// TTL as JSON): a cluster reads a snapshot as committed, without the
/// repository's session record.
pub const LIFECYCLE_KEY: &str = "lifecycle";

/// What a remote copy holds of a session, as one string: it changes when
/// the newest local snapshot, the update time, the expiry or the catalog
/// record does.
pub(crate) fn version_of(info: &sesshost_store::SessionInfo, rec: &Record) -> String {
    format!(
        "{}:{}:{:?}:{}",
        info.latest().map_or(0, |s| s.seq),
        info.updated_at,
        info.expires_at,
        record_digest(rec)
    )
}

/// The remote copy of session `id`: its local state with the lifecycle
/// facts and the catalog record in the `sesshost` namespace of `extra`.
pub(crate) async fn remote_copy(
    app: &App,
    id: &str,
    info: &sesshost_store::SessionInfo,
    rec: &Record,
) -> sesshost_engine::Result<sessbundle::SessionState> {
    let mut state = app.engine.load_state(id).await?;
    state.meta.expires_at = info.expires_at;
    state.meta.ttl_secs = info.ttl_secs;
    let life = serde_json::json!({
        "created_at": state.meta.created_at,
        "expires_at": info.expires_at,
        "ttl_secs": info.ttl_secs,
    });
    let ns = state
        .extra
        .entry(crate::SESSHOST_NS.to_string())
        .or_default();
    ns.insert(
        RECORD_KEY.to_string(),
        serde_json::to_string(rec).unwrap_or_default(),
    );
    ns.insert(LIFECYCLE_KEY.to_string(), life.to_string());
    Ok(state)
}

/// Take the catalog record and lifecycle facts out of a remote copy (a
/// copy without a record, e.g. from `host push`, is adopted by tenant
/// `default`).
pub(crate) fn split_remote_copy(
    state: &mut sessbundle::SessionState,
    id: &str,
    now_ms: i64,
) -> Record {
    let ns = state.extra.get_mut(crate::SESSHOST_NS);
    let (rec, life) = match ns {
        Some(ns) => (ns.remove(RECORD_KEY), ns.remove(LIFECYCLE_KEY)),
        None => (None, None),
    };
    if let Some(l) = life.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()) {
        if let Some(c) = l["created_at"].as_i64() {
            state.meta.created_at = c;
        }
        state.meta.expires_at = l["expires_at"].as_i64();
        state.meta.ttl_secs = l["ttl_secs"].as_u64();
    }
    if state
        .extra
        .get(crate::SESSHOST_NS)
        .is_some_and(|ns| ns.is_empty())
    {
        state.extra.remove(crate::SESSHOST_NS);
    }
    rec.and_then(|t| serde_json::from_str::<Record>(&t).ok())
        .filter(|r| r.id == id)
        .unwrap_or_else(|| Record::adopted(id, now_ms))
}

/// SHA-256 of the record's JSON, hex: part of a session's version.
fn record_digest(rec: &Record) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(serde_json::to_vec(rec).unwrap_or_default());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The session id in `/v1/sessions/{id}[/…]`, if the path has one.
pub(crate) fn session_id_in_path(path: &str) -> Option<&str> {
    let id = path.strip_prefix("/v1/sessions/")?.split('/').next()?;
    crate::catalog::is_session_id(id).then_some(id)
}

/// Middleware: a request with a valid API key that names a session id the
/// local tier lacks asks the durable tier first (read-through). Requests
/// without a valid key never reach the remote.
pub async fn read_through(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Some(d) = &app.durable
        && let Some(id) = session_id_in_path(req.uri().path())
    {
        if app.catalog.get(id).is_some() {
            app.metrics.tier_requests_total.inc(&["local", "hit"]);
        } else if crate::http::bearer_principal(&app, req.headers()).is_some() {
            app.metrics.tier_requests_total.inc(&["local", "miss"]);
            let id = id.to_string();
            d.fetch(&app, &id).await;
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::session_id_in_path;

    #[test]
    fn finds_the_session_id_of_session_routes_only() {
        let id = "sess_0123456789abcdef0123456789abcdef";
        assert_eq!(session_id_in_path(&format!("/v1/sessions/{id}")), Some(id));
        assert_eq!(
            session_id_in_path(&format!("/v1/sessions/{id}/acquire")),
            Some(id)
        );
        assert_eq!(session_id_in_path("/v1/sessions/stats"), None);
        assert_eq!(session_id_in_path("/v1/sessions/import"), None);
        assert_eq!(session_id_in_path("/v1/sessions/sess_../../x"), None);
        assert_eq!(session_id_in_path("/metrics"), None);
    }
}
