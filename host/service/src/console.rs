//! The web console: static assets built into the binary, served at `/`
//! (the page) and `/console/{file}` (its scripts and styles).
//!
//! Decisions:
//! - Plain HTML, CSS and ES-module JavaScript from `host/service/console/`,
//!   embedded with `include_str!`: no framework, no npm, no build step.
//!   The console is a client of the public API and nothing more: every
//!   action it takes is a `/v1` call a user could script, and its errors
//!   are the API's envelopes, shown as they are.
//! - No key is needed for the assets (they hold no data). The API key the
//!   user signs in with lives in the tab's `sessionStorage` and goes out as
//!   `Authorization: Bearer` on each call; never a cookie, so pages the
//!   live view shows cannot read it, and closing the tab forgets it.
//! - The live view talks CDP straight to the lease's `cdp_url` (a public
//!   API object) from the page; the proxy builds its own upstream request,
//!   so the console's `Origin` never reaches Chromium (see [`crate::proxy`]).
//! - Headers on every asset: a strict Content-Security-Policy (self only;
//!   `connect-src 'self' ws: wss:` for the CDP websocket; `img-src 'self'
//!   data: blob:` for screencast frames), `X-Frame-Options: DENY`,
//!   `nosniff`, `no-referrer` (the URL bar never leaks to the sites), and an
//!   ETag from a SHA-256 of the bytes with `Cache-Control: no-cache`, so a
//!   browser revalidates (a 304) and a new binary's assets are picked up at
//!   once.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::api::ApiError;
use crate::app::App;

/// The Content-Security-Policy of every console asset.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The embedded files: name, Content-Type, bytes.
pub const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../console/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../console/style.css"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/api.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/app.js"),
    ),
    (
        "detail.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/detail.js"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/live.js"),
    ),
    (
        "health.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/health.js"),
    ),
];

/// The console's routes (merged into the API router; not API routes, so
/// not in the OpenAPI document).
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(index))
        .route("/console/{file}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve(&file, &headers)
}

/// The ETags, computed once per asset.
fn etags() -> &'static Vec<String> {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|(_, _, body)| {
                let d = Sha256::digest(body.as_bytes());
                let hex: String = d.iter().take(12).map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

/// One asset with its headers; a 304 when `If-None-Match` holds its ETag.
pub fn serve(file: &str, req: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|(n, _, _)| *n == file) else {
        return ApiError::not_found("console file").into_response();
    };
    let (_, ctype, body) = ASSETS[i];
    let tag = etags().get(i).cloned().unwrap_or_default();
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut r = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, body).into_response()
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_loads_is_embedded() {
        let (_, _, html) = ASSETS[0];
        for (name, _, body) in ASSETS {
            assert!(!body.is_empty(), "{name} is empty");
            for part in body.split("/console/").skip(1) {
                let f: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
                    .collect();
                if f.ends_with(".js") || f.ends_with(".css") {
                    assert!(
                        ASSETS.iter().any(|(n, _, _)| *n == f),
                        "{name} loads /console/{f}, which is not embedded"
                    );
                }
            }
            // Module imports are relative (./x.js) and must be embedded too.
            for part in body.split("from './").skip(1) {
                let f: String = part.chars().take_while(|c| *c != '\'').collect();
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == f),
                    "{name} imports ./{f}, which is not embedded"
                );
            }
        }
        assert!(html.contains("/console/app.js"));
    }

    #[test]
    fn headers_etag_and_304() {
        let r = serve("app.js", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert!(
            h[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("connect-src 'self' ws: wss:")
        );
        let tag = h[header::ETAG].clone();
        let mut req = HeaderMap::new();
        req.insert(header::IF_NONE_MATCH, tag.clone());
        let r = serve("app.js", &req);
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(r.headers()[header::ETAG], tag);
        assert_ne!(
            serve("style.css", &HeaderMap::new()).headers()[header::ETAG],
            tag
        );
        assert_eq!(
            serve("../Cargo.toml", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }
}
