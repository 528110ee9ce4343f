//! What is inside a session: cookies, execution context, the readable
//! state summary, snapshots and rollback, navigate and the login check,
//! the audit trail. Each works on a live session (through its browser)
//! and on a hibernated one (by editing the stored state).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sessbundle::SessionState;
use sesshost_browser::WaitUntil;
use sesshost_store::now_ms;

use crate::api::{ApiError, ApiResult};
use crate::app::{App, audit_event, rfc3339};
use crate::catalog::CheckResult;
use crate::cookies;
use crate::http::{Auth, Body};

// Namespace and key of the execution context in `SessionState::extra`.
use crate::SESSHOST_NS as CONTEXT_NS;
pub const CONTEXT_KEY: &str = "context";
/// Largest execution context (serialized JSON).
pub const MAX_CONTEXT_BYTES: usize = 1024 * 1024;

/// Edit the session's state: through its browser when live (`live_edit`
/// gets the cookies it should end with), else in the store.
async fn edit_state<T: Send + 'static>(
    app: &Arc<App>,
    id: &str,
    edit: impl FnOnce(&mut SessionState) -> T + Send + 'static,
) -> ApiResult<T> {
    if let Some(slot) = app.slots.get(id) {
        let mut g = slot.inner.lock().await;
        if let Some(live) = g.live.as_mut() {
            let mut s = live.state().clone();
            s.cookies =
                live.browser().capture_cookies().await.map_err(|e| {
                    ApiError::internal(format!("reading the live cookies failed: {e}"))
                })?;
            let before_cookies = s.cookies.clone();
            let t = edit(&mut s);
            if s.cookies != before_cookies {
                live.browser()
                    .replace_cookies(&s.cookies)
                    .await
                    .map_err(|e| {
                        ApiError::internal(format!("setting the live cookies failed: {e}"))
                    })?;
            }
            let extra = s.extra.clone();
            live.edit_and_save("edit", move |_, x| *x = extra).await?;
            return Ok(t);
        }
        // Hold the slot while editing the store: an acquire waits.
        let (t, _) = app.engine.edit_stored(id, move |s| Ok(edit(s))).await?;
        drop(g);
        return Ok(t);
    }
    let (t, _) = app.engine.edit_stored(id, move |s| Ok(edit(s))).await?;
    Ok(t)
}

/// The session's current state: captured live, else the latest snapshot.
async fn current_state(app: &Arc<App>, id: &str) -> ApiResult<SessionState> {
    if let Some(slot) = app.slots.get(id) {
        let g = slot.inner.lock().await;
        if let Some(live) = g.live.as_ref() {
            let mut s = live.state().clone();
            if let Ok(c) = live.browser().capture_cookies().await {
                s.cookies = c;
            }
            return Ok(s);
        }
    }
    Ok(app.engine.load_state(id).await?)
}

pub async fn add_cookies(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(b): Body<Value>,
) -> ApiResult<Json<Value>> {
    app.record(&p, &id)?;
    let new =
        cookies::parse_cookie_input(&b).map_err(|e| ApiError::bad_request(&e.field, e.message))?;
    let n = new.len();
    let changed = edit_state(&app, &id, move |s| cookies::upsert_cookies(s, new)).await?;
    app.audit(audit_event(
        &p,
        "cookies.set",
        Some(&id),
        "ok",
        json!({"cookies": n}),
    ));
    Ok(Json(json!({ "set": n, "replaced": changed })))
}

#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    pub domain: Option<String>,
    pub name: Option<String>,
}

pub async fn delete_cookies(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<Json<Value>> {
    app.record(&p, &id)?;
    let (d, n) = (q.domain.clone(), q.name.clone());
    let removed = edit_state(&app, &id, move |s| {
        cookies::delete_cookies(s, d.as_deref(), n.as_deref())
    })
    .await?;
    app.audit(audit_event(
        &p,
        "cookies.delete",
        Some(&id),
        "ok",
        json!({"removed": removed}),
    ));
    Ok(Json(json!({ "removed": removed })))
}

#[derive(Debug, Deserialize)]
pub struct ValuesQuery {
    #[serde(default)]
    pub values: bool,
}

pub async fn domain_cookies(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path((id, domain)): Path<(String, String)>,
    Query(q): Query<ValuesQuery>,
) -> ApiResult<Json<Value>> {
    app.record(&p, &id)?;
    let s = current_state(&app, &id).await?;
    let list: Vec<Value> = cookies::cookies_for_domain(&s, &domain)
        .into_iter()
        .map(|c| cookies::cookie_json(c, q.values))
        .collect();
    Ok(Json(json!({ "cookies": list })))
}

pub async fn put_context(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(b): Body<Value>,
) -> ApiResult<Json<Value>> {
    app.record(&p, &id)?;
    if !b.is_object() {
        return Err(ApiError::bad_request(
            "body",
            "the context must be a JSON object",
        ));
    }
    let text = serde_json::to_string(&b).map_err(|e| ApiError::bad_request("body", e))?;
    if text.len() > MAX_CONTEXT_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "context_too_large",
            format!("the context is {} bytes, over its 1 MiB cap", text.len()),
        ));
    }
    let n = text.len();
    edit_state(&app, &id, move |s| {
        s.extra
            .entry(CONTEXT_NS.into())
            .or_default()
            .insert(CONTEXT_KEY.into(), text);
    })
    .await?;
    app.audit(audit_event(
        &p,
        "context.put",
        Some(&id),
        "ok",
        json!({"bytes": n}),
    ));
    Ok(Json(b))
}

pub async fn get_context(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    app.record(&p, &id)?;
    let s = current_state(&app, &id).await?;
    let v = s
        .extra
        .get(CONTEXT_NS)
        .and_then(|m| m.get(CONTEXT_KEY))
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .unwrap_or_else(|| json!({}));
    Ok(Json(v))
}

pub async fn state_summary(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<ValuesQuery>,
) -> ApiResult<Json<Value>> {
    app.record(&p, &id)?;
    let s = current_state(&app, &id).await?;
    if q.values {
        app.audit(audit_event(
            &p,
            "state.values",
            Some(&id),
            "ok",
            json!({"cookies": s.cookies.len()}),
        ));
    }
    Ok(Json(crate::summary::state_summary(&s, q.values)))
}

pub async fn snapshots(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    app.record(&p, &id)?;
    let h = app.engine.history(&id).await?;
    let list: Vec<Value> = h
        .iter()
        .map(|s| json!({"seq": s.seq, "created_at": rfc3339(s.created_at), "note": s.note, "logical_bytes": s.logical_bytes, "stored_bytes": s.stored_bytes, "cookies": s.summary.cookies, "origins": s.summary.origins, "tabs": s.summary.tabs}))
        .collect();
    Ok(Json(json!({ "snapshots": list })))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    pub seq: Option<u64>,
}

pub async fn rollback(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(b): Body<RollbackBody>,
) -> ApiResult<Json<Value>> {
    app.record(&p, &id)?;
    if let Some(slot) = app.slots.get(&id) {
        let g = slot.inner.lock().await;
        if g.live.is_some() {
            return Err(ApiError::conflict(
                "session_live",
                format!(
                    "session {id} is live in a browser: release it with hibernate=true first, then roll back"
                ),
            ));
        }
    }
    let (r, note) = app.engine.rollback(&id, b.seq).await?;
    app.audit(audit_event(
        &p,
        "session.rollback",
        Some(&id),
        "ok",
        json!({"to": b.seq}),
    ));
    Ok(Json(json!({ "seq": r.seq, "restored": note })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NavigateBody {
    pub url: String,
    pub wait: Option<String>,
    #[serde(default)]
    pub include: Vec<String>,
}

fn parse_wait(w: Option<&str>) -> ApiResult<WaitUntil> {
    match w {
        None | Some("load") => Ok(WaitUntil::Load),
        Some("domcontentloaded") => Ok(WaitUntil::DomContentLoaded),
        Some("networkidle") => Ok(WaitUntil::NetworkIdle),
        Some(o) => Err(ApiError::bad_request(
            "wait",
            format!("{o:?} is not one of load, domcontentloaded, networkidle"),
        )),
    }
}

fn check_url(field: &str, u: &str) -> ApiResult<()> {
    if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() > 2048 {
        return Err(ApiError::bad_request(
            field,
            "must be an http(s) URL of at most 2048 characters",
        ));
    }
    Ok(())
}

/// Visit `url` in the session's browser (bringing it up if hibernated),
/// save, and return what it showed. Refused while a lease is held: with
/// `hold_queue` it also holds the lease queue meanwhile (`navigate`: an
/// acquire arriving now waits for it), without it only the session's
/// transition lock (background login checks never make an acquire fail).
async fn visit(
    app: &Arc<App>,
    id: &str,
    url: &str,
    wait: WaitUntil,
    text: bool,
    html: bool,
    hold_queue: bool,
) -> ApiResult<sesshost_browser::Visit> {
    let slot = app.slots.get_or_create(id);
    let busy = || {
        ApiError::conflict(
            "lease_held",
            format!(
                "session {id} is leased: navigate through its cdp_url, or after it is released"
            ),
        )
    };
    let permit = if hold_queue {
        Some(slot.queue.clone().try_acquire_owned().map_err(|_| busy())?)
    } else {
        None
    };
    let mut g = slot.inner.lock().await;
    if g.lease.is_some() {
        return Err(busy());
    }
    app.ensure_live(
        &slot,
        &mut g,
        std::time::Instant::now() + Duration::from_secs(10),
    )
    .await?;
    let live = g
        .live
        .as_mut()
        .ok_or_else(|| ApiError::internal("the browser went away"))?;
    let v = live
        .browser()
        .visit(url, wait, text, html, Duration::from_secs(30))
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "navigation_failed", e.to_string()))?;
    live.save("navigate").await?;
    g.idle_since = std::time::Instant::now();
    drop(g);
    drop(permit);
    Ok(v)
}

pub async fn navigate(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(b): Body<NavigateBody>,
) -> ApiResult<Json<Value>> {
    app.record(&p, &id)?;
    check_url("url", &b.url)?;
    let wait = parse_wait(b.wait.as_deref())?;
    for (i, x) in b.include.iter().enumerate() {
        if x != "text" && x != "html" {
            return Err(ApiError::bad_request(
                &format!("include[{i}]"),
                "must be \"text\" or \"html\"",
            ));
        }
    }
    let text = b.include.iter().any(|x| x == "text");
    let html = b.include.iter().any(|x| x == "html");
    let v = visit(&app, &id, &b.url, wait, text, html, true).await?;
    app.audit(audit_event(
        &p,
        "session.navigate",
        Some(&id),
        "ok",
        json!({"status": v.status}),
    ));
    Ok(Json(serde_json::to_value(&v).unwrap_or_default()))
}

/// Run the session's login check and record the result (`needs_auth`).
pub async fn run_check(app: &Arc<App>, id: &str) -> ApiResult<CheckResult> {
    let rec = app
        .catalog
        .get(id)
        .ok_or_else(|| ApiError::session_not_found(id))?;
    let Some(c) = rec.auth_check.clone() else {
        return Err(ApiError::bad_request(
            "auth_check",
            "this session has no auth_check: give one when creating it",
        ));
    };
    let v = visit(
        app,
        id,
        &c.url,
        WaitUntil::Load,
        c.expect_text.is_some(),
        false,
        false,
    )
    .await?;
    let (ok, detail) = if let Some(t) = &c.expect_text {
        let ok = v.text.as_deref().is_some_and(|x| x.contains(t.as_str()));
        (
            ok,
            if ok {
                "expected text found".to_string()
            } else {
                "expected text not on the page".to_string()
            },
        )
    } else if let Some(s) = c.expect_status {
        (v.status == s, format!("status {} (expected {s})", v.status))
    } else if let Some(pfx) = &c.login_url_prefix {
        let out = v.final_url.starts_with(pfx.as_str());
        (
            !out,
            if out {
                "redirected to the login page".to_string()
            } else {
                "not redirected to the login page".to_string()
            },
        )
    } else {
        (true, String::new())
    };
    let res = CheckResult {
        at_ms: now_ms(),
        ok,
        detail,
    };
    let r2 = res.clone();
    app.catalog
        .update(id, move |r| {
            r.needs_auth = !r2.ok;
            r.last_check = Some(r2);
        })
        .map_err(|e| ApiError::internal(format!("cannot update the catalog: {e}")))?;
    Ok(res)
}

pub async fn check(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    app.record(&p, &id)?;
    let r = run_check(&app, &id).await?;
    app.audit(audit_event(
        &p,
        "session.check",
        Some(&id),
        if r.ok { "ok" } else { "needs_auth" },
        json!({}),
    ));
    Ok(Json(
        json!({ "ok": r.ok, "detail": r.detail, "at": rfc3339(r.at_ms), "state": if r.ok { "logged_in" } else { "needs_auth" } }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    pub session: Option<String>,
    pub since: Option<String>,
    pub limit: Option<usize>,
}

pub async fn audit(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Value>> {
    let since = match &q.since {
        None => None,
        Some(s) => Some(
            sessbundle::interop::dates::parse_rfc3339(s)
                .map(|secs| secs * 1000)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "since",
                        "must be an RFC 3339 time such as 2026-12-01T00:00:00Z",
                    )
                })?,
        ),
    };
    let evs = app
        .audit
        .query(
            &p.tenant,
            q.session.as_deref(),
            since,
            q.limit.unwrap_or(1000).clamp(1, 10_000),
        )
        .map_err(|e| ApiError::internal(format!("cannot read the audit log: {e}")))?;
    Ok(Json(json!({ "events": evs })))
}
