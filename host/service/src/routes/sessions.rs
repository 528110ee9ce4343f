//! Session routes: create, list, stats, show, delete, extend, fork,
//! cleanup; acquire, heartbeat, release; the CDP websocket.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sessbundle::state::Viewport;
use sesshost_store::{NewSession, SessionInfo, now_ms};

use crate::api::{ApiError, ApiResult};
use crate::app::{App, audit_event, rfc3339, state_name};
use crate::catalog::{AuthCheck, Record, new_session_id};
use crate::http::{Auth, Body};
use crate::leases::{MAX_LEASE_SECONDS, subtle_eq};

/// Longest TTL a session may be created or extended with (10 years).
pub const MAX_TTL_SECONDS: u64 = 10 * 365 * 24 * 3600;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub name: Option<String>,
    pub ttl_seconds: Option<u64>,
    pub idle_timeout_seconds: Option<u64>,
    pub user_agent: Option<String>,
    pub viewport: Option<ViewportBody>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub auth_check: Option<AuthCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewportBody {
    pub width: u32,
    pub height: u32,
}

fn check_text(field: &str, v: &Option<String>, max: usize) -> ApiResult<()> {
    if let Some(s) = v
        && (s.is_empty() || s.len() > max || s.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(
            field,
            format!("must be 1-{max} characters with no control characters"),
        ));
    }
    Ok(())
}

fn validate_create(b: &CreateBody) -> ApiResult<()> {
    check_text("name", &b.name, 128)?;
    check_text("user_agent", &b.user_agent, 512)?;
    check_text("locale", &b.locale, 35)?;
    check_text("timezone", &b.timezone, 64)?;
    if let Some(t) = b.ttl_seconds
        && (t == 0 || t > MAX_TTL_SECONDS)
    {
        return Err(ApiError::bad_request(
            "ttl_seconds",
            format!("must be 1..={MAX_TTL_SECONDS}"),
        ));
    }
    if let Some(v) = &b.viewport
        && (!(100..=8192).contains(&v.width) || !(100..=8192).contains(&v.height))
    {
        return Err(ApiError::bad_request(
            "viewport",
            "width and height must be 100..=8192",
        ));
    }
    if b.tags.len() > 32 {
        return Err(ApiError::bad_request("tags", "at most 32 tags"));
    }
    for (i, t) in b.tags.iter().enumerate() {
        if t.is_empty() || t.len() > 64 || t.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                &format!("tags[{i}]"),
                "a tag is 1-64 characters with no control characters",
            ));
        }
    }
    if let Some(c) = &b.auth_check {
        if !(c.url.starts_with("http://") || c.url.starts_with("https://")) || c.url.len() > 2048 {
            return Err(ApiError::bad_request(
                "auth_check.url",
                "must be an http(s) URL of at most 2048 characters",
            ));
        }
        let n = [
            c.expect_text.is_some(),
            c.expect_status.is_some(),
            c.login_url_prefix.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if n != 1 {
            return Err(ApiError::bad_request(
                "auth_check",
                "give exactly one of expect_text, expect_status, login_url_prefix",
            ));
        }
    }
    Ok(())
}

/// The JSON a session is shown as.
pub fn session_json(app: &App, rec: &Record, info: Option<&SessionInfo>) -> Value {
    let slot = app.slots.get(&rec.id);
    let state = state_name(rec, info, slot.as_deref());
    let lease = slot.as_ref().and_then(|s| s.lease_view()).map(|l| {
        json!({ "lease_id": l.lease_id, "holder": l.holder, "acquired_at": rfc3339(l.acquired_at_ms), "expires_at": rfc3339(l.expires_at_ms) })
    });
    let latest = info.and_then(|i| i.latest());
    json!({
        "id": rec.id,
        "name": rec.name,
        "state": state,
        "tags": rec.tags,
        "created_at": rfc3339(rec.created_at_ms),
        "expires_at": info.and_then(|i| i.expires_at).map(rfc3339),
        "updated_at": info.map(|i| rfc3339(i.updated_at)),
        "last_used_at": info.and_then(|i| i.last_used_at).map(rfc3339),
        "idle_timeout_seconds": rec.idle_timeout_seconds,
        "lease": lease,
        "needs_auth": rec.needs_auth,
        "auth_check": rec.auth_check,
        "last_check": rec.last_check.as_ref().map(|c| json!({"at": rfc3339(c.at_ms), "ok": c.ok, "detail": c.detail})),
        "failed": rec.failed,
        "sizes": {
            "stored_bytes": info.map(|i| i.stored_bytes),
            "logical_bytes": latest.map(|l| l.logical_bytes),
            "snapshots": info.map(|i| i.snapshots.len()),
        },
        "counts": latest.map(|l| json!({
            "cookies": l.summary.cookies, "sites": l.summary.sites, "origins": l.summary.origins,
            "tabs": l.summary.tabs, "local_storage_items": l.summary.local_storage_items,
            "idb_records": l.summary.idb_records,
        })),
    })
}

pub async fn create(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Body(b): Body<CreateBody>,
) -> ApiResult<Response> {
    validate_create(&b)?;
    app.check_creation(&p.tenant)?;
    let id = new_session_id().map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    let now = now_ms();
    let rec = Record {
        id: id.clone(),
        tenant: p.tenant.clone(),
        name: b.name.clone(),
        tags: b.tags.clone(),
        idle_timeout_seconds: b
            .idle_timeout_seconds
            .unwrap_or(app.config.lifecycle.idle_timeout_seconds),
        auth_check: b.auth_check.clone(),
        created_at_ms: now,
        needs_auth: false,
        last_check: None,
        failed: None,
    };
    // Catalog first: a crash before the store write leaves an entry that
    // the next start drops (no state was committed).
    app.catalog
        .put(rec.clone())
        .map_err(|e| ApiError::internal(format!("cannot write the catalog: {e}")))?;
    let new = NewSession {
        name: id.clone(),
        ttl: b.ttl_seconds.map(Duration::from_secs),
        user_agent: b.user_agent,
        viewport: b.viewport.map(|v| Viewport {
            width: v.width,
            height: v.height,
            device_scale_factor: 1.0,
        }),
        locale: b.locale,
        timezone: b.timezone,
    };
    let info = match app.engine.create(new).await {
        Ok(i) => i,
        Err(e) => {
            let _ = app.catalog.remove(&id);
            return Err(e.into());
        }
    };
    app.metrics.created_total.inc();
    app.audit(audit_event(
        &p,
        "session.create",
        Some(&id),
        "ok",
        json!({}),
    ));
    Ok((
        StatusCode::CREATED,
        Json(session_json(&app, &rec, Some(&info))),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub state: Option<String>,
    pub tag: Option<String>,
    pub limit: Option<usize>,
    /// The last id of the previous page.
    pub after: Option<String>,
}

pub async fn list(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    // With --cluster: the fleet's sessions (read through first), each with
    // its holder and epoch, and the hosts.
    let fleet = match &app.cluster {
        Some(c) => Some((c.fleet_view(&app).await, c.hosts().await)),
        None => None,
    };
    let infos: std::collections::HashMap<String, SessionInfo> = app
        .engine
        .list()
        .await?
        .into_iter()
        .map(|i| (i.name.clone(), i))
        .collect();
    let mut out = Vec::new();
    let mut next = None;
    for rec in app.catalog.list_for(&p.tenant) {
        if let Some(a) = &q.after
            && rec.id.as_str() <= a.as_str()
        {
            continue;
        }
        if let Some(t) = &q.tag
            && !rec.tags.contains(t)
        {
            continue;
        }
        let mut j = session_json(&app, &rec, infos.get(&rec.id));
        if let Some((holders, _)) = &fleet {
            let (h, e) = holders
                .get(&rec.id)
                .cloned()
                .unwrap_or((Value::Null, Value::Null));
            j["holder"] = h;
            j["epoch"] = e;
        }
        if let Some(s) = &q.state
            && j["state"] != s.as_str()
        {
            continue;
        }
        if out.len() == limit {
            next = out
                .last()
                .and_then(|v: &Value| v["id"].as_str().map(str::to_string));
            break;
        }
        out.push(j);
    }
    let mut body = json!({ "sessions": out, "next_after": next });
    if let Some((_, hosts)) = fleet {
        body["hosts"] = json!(hosts);
    }
    Ok(Json(body))
}

pub async fn show(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let rec = app.record(&p, &id)?;
    let info = app.info(&id).await;
    let mut j = session_json(&app, &rec, info.as_ref());
    if let Some(c) = &app.cluster {
        let (holder, epoch) = c.holder_json(&id).await;
        j["holder"] = holder;
        j["epoch"] = epoch;
    }
    if let Some(slot) = app.slots.get(&id)
        && let Ok(g) = slot.inner.try_lock()
        && let Some(live) = &g.live
    {
        j["tabs"] = json!(
            live.state()
                .tabs
                .iter()
                .map(|t| json!({"url": t.url, "title": t.title}))
                .collect::<Vec<_>>()
        );
    }
    Ok(Json(j))
}

pub async fn delete(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.record(&p, &id)?;
    if let Some(slot) = app.slots.get(&id) {
        let mut g = slot.inner.lock().await;
        g.lease = None;
        slot.set_lease_auth(None);
        app.close_browser_locked(&slot, &mut g, false).await;
    }
    app.engine.delete(&id).await?;
    app.forget_durable(&id).await;
    app.catalog
        .remove(&id)
        .map_err(|e| ApiError::internal(format!("cannot update the catalog: {e}")))?;
    app.slots.remove(&id);
    app.metrics.deleted_total.inc();
    app.audit(audit_event(
        &p,
        "session.delete",
        Some(&id),
        "ok",
        json!({}),
    ));
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    pub additional_seconds: u64,
}

pub async fn extend(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(b): Body<ExtendBody>,
) -> ApiResult<Json<Value>> {
    let rec = app.record(&p, &id)?;
    if b.additional_seconds == 0 || b.additional_seconds > MAX_TTL_SECONDS {
        return Err(ApiError::bad_request(
            "additional_seconds",
            format!("must be 1..={MAX_TTL_SECONDS}"),
        ));
    }
    let by = Duration::from_secs(b.additional_seconds);
    let live = match app.slots.get(&id) {
        Some(slot) => {
            let mut g = slot.inner.lock().await;
            match g.live.as_mut() {
                Some(l) => {
                    // Extend the live session's own meta too, or its next
                    // autosave would write the old expiry back.
                    let info = app.engine.extend(&id, by).await?;
                    let exp = info.expires_at;
                    l.edit_and_save("extend", |m, _| m.expires_at = exp).await?;
                    true
                }
                None => false,
            }
        }
        None => false,
    };
    if !live {
        app.engine.extend(&id, by).await?;
    }
    let info = app.info(&id).await;
    app.audit(audit_event(
        &p,
        "session.extend",
        Some(&id),
        "ok",
        json!({"additional_seconds": b.additional_seconds}),
    ));
    Ok(Json(session_json(&app, &rec, info.as_ref())))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ForkBody {
    pub name: Option<String>,
}

pub async fn fork(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(b): Body<ForkBody>,
) -> ApiResult<Response> {
    let src = app.record(&p, &id)?;
    check_text("name", &b.name, 128)?;
    app.check_caps(&p.tenant)?;
    // A live source is saved first, so the fork holds what its browser shows.
    app.save_if_live(&id, "fork").await?;
    let new_id = new_session_id().map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    let rec = Record {
        id: new_id.clone(),
        name: b.name.or(src.name.clone()),
        created_at_ms: now_ms(),
        needs_auth: false,
        last_check: None,
        failed: None,
        ..src.clone()
    };
    app.catalog
        .put(rec.clone())
        .map_err(|e| ApiError::internal(format!("cannot write the catalog: {e}")))?;
    let info = match app.engine.fork(&id, &new_id).await {
        Ok(i) => i,
        Err(e) => {
            let _ = app.catalog.remove(&new_id);
            return Err(e.into());
        }
    };
    app.metrics.created_total.inc();
    // The new session is not in the request's path: name it to the tier.
    if let Some(d) = &app.durable {
        d.changed(Some(&new_id));
    }
    app.audit(audit_event(
        &p,
        "session.fork",
        Some(&new_id),
        "ok",
        json!({"from": id}),
    ));
    Ok((
        StatusCode::CREATED,
        Json(session_json(&app, &rec, Some(&info))),
    )
        .into_response())
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AcquireBody {
    pub lease_seconds: Option<u64>,
    #[serde(default)]
    pub wait_seconds: u64,
}

/// `ws://HOST` as the client reached us.
pub fn ws_base(headers: &HeaderMap, app: &App) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".:-[]".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| app.config.listen.to_string());
    format!("ws://{host}")
}

pub async fn acquire(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(b): Body<AcquireBody>,
) -> ApiResult<Json<Value>> {
    if let Some(s) = b.lease_seconds
        && (s == 0 || s > MAX_LEASE_SECONDS)
    {
        return Err(ApiError::bad_request(
            "lease_seconds",
            format!("must be 1..={MAX_LEASE_SECONDS}"),
        ));
    }
    let base = ws_base(&headers, &app);
    let r = app
        .acquire(&p, &id, b.lease_seconds, b.wait_seconds, &base)
        .await;
    let result = match &r {
        Ok(_) => "ok",
        Err(e) => e.code,
    };
    app.audit(audit_event(
        &p,
        "session.acquire",
        Some(&id),
        result,
        json!({}),
    ));
    let a = r?;
    Ok(Json(
        json!({ "lease_id": a.lease_id, "cdp_url": a.cdp_url, "expires_at": a.expires_at }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseBody {
    pub lease_id: String,
    #[serde(default)]
    pub hibernate: bool,
}

pub async fn heartbeat(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(b): Body<LeaseBody>,
) -> ApiResult<Json<Value>> {
    let exp = app.heartbeat(&p, &id, &b.lease_id).await?;
    Ok(Json(json!({ "lease_id": b.lease_id, "expires_at": exp })))
}

pub async fn release(
    State(app): State<Arc<App>>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Body(b): Body<LeaseBody>,
) -> ApiResult<Json<Value>> {
    let r = app.release(&p, &id, &b.lease_id, b.hibernate).await;
    app.audit(audit_event(
        &p,
        "session.release",
        Some(&id),
        r.as_ref().map_or_else(|e| e.code, |_| "ok"),
        json!({}),
    ));
    r?;
    let rec = app.record(&p, &id)?;
    let info = app.info(&id).await;
    Ok(Json(session_json(&app, &rec, info.as_ref())))
}

#[derive(Debug, Deserialize)]
pub struct CdpQuery {
    pub lease: Option<String>,
}

/// The CDP websocket: the lease token in the URL is the credential.
pub async fn cdp(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<CdpQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let bad = || {
        ApiError::new(StatusCode::UNAUTHORIZED, "bad_lease_token", "this CDP URL's lease has ended or the token is wrong: acquire the session again for a new cdp_url").into_response()
    };
    let (Some(token), Some(slot)) = (q.lease, app.slots.get(&id)) else {
        return bad();
    };
    match slot.lease_auth() {
        Some(a) if subtle_eq(&a.token, &token) => {}
        _ => return bad(),
    }
    slot.touch(now_ms());
    ws.max_message_size(crate::proxy::MAX_CDP_MESSAGE)
        .max_frame_size(crate::proxy::MAX_CDP_MESSAGE)
        .on_upgrade(move |socket| crate::proxy::relay(app, slot, socket))
}

pub async fn cleanup(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    let removed = crate::background::cleanup_once(&app, Some(&p.tenant)).await?;
    app.audit(audit_event(
        &p,
        "session.cleanup",
        None,
        "ok",
        json!({"removed": removed.len()}),
    ));
    Ok(Json(json!({ "removed": removed })))
}

pub async fn stats(State(app): State<Arc<App>>, Auth(p): Auth) -> ApiResult<Json<Value>> {
    let infos: std::collections::HashMap<String, SessionInfo> = app
        .engine
        .list()
        .await?
        .into_iter()
        .map(|i| (i.name.clone(), i))
        .collect();
    let mut by_state = serde_json::Map::new();
    let now = now_ms();
    let (mut bytes, mut age_sum, mut n) = (0u64, 0i64, 0i64);
    for rec in app.catalog.list_for(&p.tenant) {
        let info = infos.get(&rec.id);
        let s = state_name(&rec, info, app.slots.get(&rec.id).as_deref());
        let e = by_state.entry(s).or_insert(json!(0));
        *e = json!(e.as_u64().unwrap_or(0) + 1);
        bytes += info.map_or(0, |i| i.stored_bytes);
        age_sum += now - rec.created_at_ms;
        n += 1;
    }
    let m = &app.metrics;
    Ok(Json(json!({
        "total": n,
        "by_state": by_state,
        "created_total": m.created_total.get(),
        "expired_total": m.expired_total.get(),
        "deleted_total": m.deleted_total.get(),
        "store_bytes": bytes,
        "average_age_seconds": if n > 0 { age_sum / n / 1000 } else { 0 },
        "tier_hit_rates": { "local": 1.0 },
    })))
}
