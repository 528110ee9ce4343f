//! Routes that need no key: metrics, health, readiness, pressure, the
//! OpenAPI document; and, with a key, the last hour of metrics
//! ([`crate::history`]) the console charts.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::{App, state_name};
use crate::http::Auth;

pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    // Session counts by state are computed at scrape time.
    let mut counts: std::collections::BTreeMap<&'static str, i64> = [
        "active",
        "idle",
        "hibernated",
        "expired",
        "needs_auth",
        "failed",
    ]
    .into_iter()
    .map(|s| (s, 0))
    .collect();
    let infos: std::collections::HashMap<String, sesshost_store::SessionInfo> = app
        .engine
        .list()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|i| (i.name.clone(), i))
        .collect();
    for rec in app.catalog.all() {
        let s = state_name(&rec, infos.get(&rec.id), app.slots.get(&rec.id).as_deref());
        *counts.entry(s).or_default() += 1;
    }
    app.metrics.sessions.reset();
    for (s, n) in counts {
        app.metrics.sessions.set(&[s], n as f64);
    }
    app.metrics.pool_size.set(app.pool.available() as f64);
    app.metrics
        .queue_length
        .set(app.queued.load(Ordering::Relaxed) as f64);
    app.refresh_live_gauge();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let store_ok = app.engine.list().await.is_ok();
    let pool_ok = app.pool.usable();
    // In a cluster: the bucket probe passed (or the host would not have
    // started) and the liveness record is renewing.
    let cluster_ok = app.cluster.as_ref().is_none_or(|c| c.serving());
    let ok = store_ok && pool_ok && cluster_ok && !app.is_shutting_down();
    let mut body = json!({ "ready": ok, "store": store_ok, "pool": pool_ok, "shutting_down": app.is_shutting_down() });
    if let Some(c) = &app.cluster {
        body["cluster"] = json!({ "host_id": c.id, "serving": c.serving(), "probe": "passed" });
    }
    let body = Json(body);
    if ok {
        (StatusCode::OK, body).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

/// 1-minute load average per core.
fn cpu_fraction() -> Option<f64> {
    let t = std::fs::read_to_string("/proc/loadavg").ok()?;
    let l: f64 = t.split_whitespace().next()?.parse().ok()?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    Some(l / cores)
}

/// Memory use above which `/v1/pressure` says unavailable.
pub const MEMORY_THRESHOLD: f64 = 0.95;

pub async fn pressure(State(app): State<Arc<App>>) -> Response {
    let live = app.max_live - app.live_sem.available_permits().min(app.max_live);
    let leased = app.leased_count();
    let queued = app.queued.load(Ordering::Relaxed);
    let max_q = app.config.limits.max_queued;
    let mem = crate::history::memory_fraction().unwrap_or(0.0);
    let cpu = cpu_fraction().unwrap_or(0.0);
    let reason = if app.is_shutting_down() {
        "shutting_down"
    } else if leased >= app.max_live && queued >= max_q {
        "full"
    } else if mem > MEMORY_THRESHOLD {
        "memory"
    } else {
        ""
    };
    let available = reason.is_empty();
    let body = Json(json!({
        "cpu": (cpu * 1000.0).round() / 1000.0,
        "memory": (mem * 1000.0).round() / 1000.0,
        "live": live,
        "leased": leased,
        "queued": queued,
        "max_live": app.max_live,
        "max_queued": max_q,
        "pool": app.pool.available(),
        "available": available,
        "reason": reason,
    }));
    if available {
        (StatusCode::OK, body).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::DOCUMENT,
    )
        .into_response()
}

/// `GET /v1/metrics/history`: the samples of the last hour, oldest first.
pub async fn history(
    State(app): State<Arc<App>>,
    crate::http::Auth(_): crate::http::Auth,
    headers: axum::http::HeaderMap,
) -> Json<serde_json::Value> {
    // This host as the client reached it (the configured listen may be port 0).
    let listen = crate::routes::sessions::ws_base(&headers, &app)
        .trim_start_matches("ws://")
        .to_string();
    let samples: Vec<serde_json::Value> = app
        .history
        .samples()
        .into_iter()
        .map(|s| {
            let mut v = json!(s);
            v["at"] = json!(crate::app::rfc3339(s.at_ms));
            v
        })
        .collect();
    let me = json!({
        "listen": listen,
        "uptime_seconds": app.started.elapsed().as_secs(),
        "max_live": app.max_live,
    });
    // With --cluster: every host on the bucket (this one with its own
    // figures), alive or judged dead.
    let hosts = match &app.cluster {
        None => vec![me],
        Some(c) => c
            .hosts()
            .await
            .into_iter()
            .map(|mut h| {
                h["listen"] = h["addr"].clone();
                if h["self"] == json!(true) {
                    h["uptime_seconds"] = me["uptime_seconds"].clone();
                    h["max_live"] = me["max_live"].clone();
                }
                h
            })
            .collect(),
    };
    Json(json!({
        "interval_seconds": crate::history::INTERVAL.as_secs(),
        "capacity": crate::history::CAPACITY,
        "samples": samples,
        "hosts": hosts,
    }))
}

/// `GET /v1/cluster` (key): this host, every host of the cluster as this
/// host sees it (alive or judged dead), and what this host holds.
pub async fn cluster(State(app): State<Arc<App>>, Auth(_p): Auth) -> Response {
    let Some(c) = &app.cluster else {
        return crate::api::ApiError::not_found("cluster (this host runs without --cluster)")
            .into_response();
    };
    let hosts = c.hosts().await;
    Json(json!({
        "host_id": c.id,
        "addr": c.addr,
        "lease_seconds": c.ttl.as_secs(),
        "serving": c.serving(),
        "held": c.held_sessions(),
        "hosts": hosts,
        "gc": c.gc_json(),
    }))
    .into_response()
}
