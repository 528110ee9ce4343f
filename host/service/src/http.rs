//! HTTP plumbing shared by every route: the API-key extractor, the JSON
//! body extractor whose errors name the field, request ids, access logs
//! and request metrics.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;

use crate::api::ApiError;
use crate::app::App;
use crate::tenants::Principal;

/// The caller, from `Authorization: Bearer KEY`.
pub struct Auth(pub Principal);

/// The key of `Authorization: Bearer KEY`, if the header has that form.
fn bearer_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// The caller of a request with a valid key, for middleware (no metrics,
/// no error: the route's [`Auth`] answers for a bad key).
pub fn bearer_principal(app: &App, headers: &axum::http::HeaderMap) -> Option<Principal> {
    app.registry
        .authenticate(bearer_key(headers)?)
        .ok()
        .flatten()
}

impl FromRequestParts<Arc<App>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let Some(key) = bearer_key(&parts.headers) else {
            app.metrics.auth_failures_total.inc();
            return Err(ApiError::unauthorized());
        };
        match app.registry.authenticate(key) {
            Ok(Some(p)) => Ok(Auth(p)),
            Ok(None) => {
                app.metrics.auth_failures_total.inc();
                Err(ApiError::unauthorized())
            }
            // The cluster's bucket did not answer a key this host has not
            // cached: retry shortly.
            Err(e @ crate::error::ServiceError::Bucket { .. }) => Err(ApiError::unavailable(
                "bucket_unavailable",
                format!("cannot check the API key: {e}"),
                2,
            )),
            Err(e) => Err(ApiError::internal(format!("cannot check the API key: {e}"))),
        }
    }
}

/// A JSON body; a malformed one is a 400 naming the field, an oversized
/// one a 413 naming the cap.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let empty = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0");
        if empty {
            return serde_json::from_str("{}").map(Body).map_err(|e| {
                ApiError::bad_request("body", format!("a JSON object is required ({e})"))
            });
        }
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(r) => Err(json_rejection(r)),
        }
    }
}

pub fn json_rejection(r: JsonRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is over the service's cap ([limits] max_body_bytes)",
        );
    }
    match r {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        other => {
            // serde's text names the field path ("ttl_seconds: invalid type …").
            let t = other.body_text();
            let t = t
                .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                .unwrap_or(&t)
                .to_string();
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("bad JSON body: {t}"),
            )
        }
    }
}

/// Request id, access log and request metrics for every request.
pub async fn observe(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let t0 = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    // Kept only where the durable tier needs it (a change).
    let path = (app.durable.is_some() && method != axum::http::Method::GET)
        .then(|| req.uri().path().to_string());
    let rid = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_string)
        .unwrap_or_else(|| crate::catalog::random_hex(8).unwrap_or_default());
    let span = tracing::info_span!("request", id = %rid);
    let mut resp = {
        let _e = span.enter();
        drop(_e);
        next.run(req).await
    };
    let status = resp.status().as_u16();
    let secs = t0.elapsed().as_secs_f64();
    if let (Some(d), Some(path)) = (&app.durable, &path)
        && resp.status().is_success()
    {
        d.changed(crate::durable::session_id_in_path(path));
    }
    app.metrics
        .http_requests_total
        .inc(&[route.as_str(), &status.to_string()]);
    app.metrics
        .http_request_seconds
        .observe(&[route.as_str()], secs);
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    // Paths only (never query strings: the CDP URL's carries the lease token).
    tracing::info!(request_id = %rid, "{method} {route} {status} {:.1} ms", secs * 1000.0);
    resp
}
