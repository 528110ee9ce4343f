//! The API's error envelope `{"error": {"code", "message"}}` and the
//! mapping from engine and store errors to HTTP statuses.
//!
//! Every error a route returns goes through [`ApiError`]: a stable `code`
//! a client can branch on, a `message` that says what to do next, the
//! right status, and `Retry-After` where waiting helps. Internal details
//! (paths, lower errors) are logged at debug, never a secret.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    pub fn bad_request(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{field}: {message}"),
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "{what} not found (it may have been deleted or have expired; `GET /v1/sessions` lists yours)"
            ),
        )
    }

    pub fn session_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "session_not_found",
            format!(
                "no session {id} (it may have been deleted or have expired; `GET /v1/sessions` lists yours)"
            ),
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>, retry: u64) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message).with_retry_after(retry)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or unknown API key: send `Authorization: Bearer KEY` (make one with `host key create --tenant NAME`)",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": { "code": self.code, "message": self.message } }));
        let mut r = (self.status, body).into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

impl From<sesshost_engine::Error> for ApiError {
    fn from(e: sesshost_engine::Error) -> Self {
        engine_error(&e)
    }
}

/// Map an engine error to a status: auth failures are 403 (a key or
/// passphrase given for a bundle did not open it), bad input 400, a
/// session held elsewhere 409, the rest 500 with the engine's message
/// (which names what to do and never holds a secret).
pub fn engine_error(e: &sesshost_engine::Error) -> ApiError {
    use sesshost_engine::Error as E;
    use sesshost_store::StoreError as S;
    let msg = e.to_string();
    if e.is_auth_failure() {
        return ApiError::new(StatusCode::FORBIDDEN, "bundle_auth_failed", msg);
    }
    if e.is_usage() {
        return ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", msg);
    }
    let store = match e.root() {
        E::Store(s) => Some(s),
        _ => None,
    };
    match store {
        Some(S::SessionNotFound { .. }) => {
            ApiError::new(StatusCode::NOT_FOUND, "session_not_found", msg)
        }
        Some(S::SnapshotNotFound { .. }) | Some(S::NoEarlierSnapshot { .. }) => {
            ApiError::new(StatusCode::NOT_FOUND, "snapshot_not_found", msg)
        }
        Some(S::LockTimeout { .. }) | Some(S::SessionOpen { .. }) => {
            ApiError::conflict("session_busy", msg).with_retry_after(1)
        }
        Some(S::SessionExists { .. }) => ApiError::conflict("session_exists", msg),
        _ => match e.root() {
            E::Invalid(_) | E::Bundle(_) | E::Interop(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", msg)
            }
            _ => {
                tracing::warn!("internal error: {msg}");
                ApiError::internal(msg)
            }
        },
    }
}
