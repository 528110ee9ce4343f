//! The router: every route of the API and what it needs.
//! - [`sessions`]: lifecycle and leases (and the CDP websocket);
//! - [`data`]: cookies, context, state summary, snapshots, navigate,
//!   login checks, audit;
//! - [`transfer`]: bundle export (download) and import (upload);
//! - [`ops`]: metrics, health, readiness, pressure, OpenAPI (no key),
//!   the metrics history (key);
//! - the web console's assets at `/` and `/console/*` ([`crate::console`]).

pub mod data;
pub mod ops;
pub mod sessions;
pub mod transfer;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::app::App;

pub fn router(app: Arc<App>) -> Router {
    use data as d;
    use sessions as s;
    Router::new()
        .route("/v1/sessions", post(s::create).get(s::list))
        .route("/v1/sessions/stats", get(s::stats))
        .route(
            "/v1/sessions/import",
            post(transfer::import).layer(DefaultBodyLimit::max(
                usize::try_from(app.config.limits.max_upload_bytes).unwrap_or(usize::MAX),
            )),
        )
        .route("/v1/sessions/{id}/export", get(transfer::export))
        .route("/v1/sessions/cleanup", post(s::cleanup))
        .route("/v1/sessions/{id}", get(s::show).delete(s::delete))
        .route("/v1/sessions/{id}/extend", post(s::extend))
        .route("/v1/sessions/{id}/fork", post(s::fork))
        .route("/v1/sessions/{id}/acquire", post(s::acquire))
        .route("/v1/sessions/{id}/heartbeat", post(s::heartbeat))
        .route("/v1/sessions/{id}/release", post(s::release))
        .route("/v1/sessions/{id}/cdp", get(s::cdp))
        .route(
            "/v1/sessions/{id}/cookies",
            post(d::add_cookies).delete(d::delete_cookies),
        )
        .route("/v1/sessions/{id}/cookies/{domain}", get(d::domain_cookies))
        .route(
            "/v1/sessions/{id}/context",
            get(d::get_context).put(d::put_context),
        )
        .route("/v1/sessions/{id}/state", get(d::state_summary))
        .route("/v1/sessions/{id}/snapshots", get(d::snapshots))
        .route("/v1/sessions/{id}/rollback", post(d::rollback))
        .route("/v1/sessions/{id}/navigate", post(d::navigate))
        .route("/v1/sessions/{id}/check", post(d::check))
        .route("/v1/audit", get(d::audit))
        .route("/metrics", get(ops::metrics))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/v1/pressure", get(ops::pressure))
        .route("/v1/metrics/history", get(ops::history))
        .route("/v1/openapi.json", get(ops::openapi))
        .route("/v1/cluster", get(ops::cluster))
        .merge(crate::console::router())
        .fallback(|| async { crate::api::ApiError::not_found("route") })
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::durable::read_through,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::cluster::forward::route,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::http::observe,
        ))
        .layer(DefaultBodyLimit::max(app.config.limits.max_body_bytes))
        .with_state(app)
}
