//! Any host accepts any request. The middleware [`route`] looks at each
//! request that names a session:
//!
//! - held here → served here; after a change that answered 2xx the state
//!   is committed before the response leaves (a 2xx change is in the
//!   bucket);
//! - held by another live host → forwarded there unchanged (the `Host`
//!   header is kept, so a CDP URL in an acquire's answer points back at the
//!   host the client reached; the CDP websocket is relayed byte for byte
//!   through an HTTP upgrade). A holder that does not answer is waited for
//!   until it is judged dead (1.5 T unchanged record), then this host takes
//!   the session over and serves the request itself; the wait is bounded
//!   by the request's `wait_seconds` (acquire) or 2 T;
//! - held by nobody → a read refreshes the local copy from the head and is
//!   served; a change (or an acquire) claims the session first, and a
//!   session left without a live browser afterwards is committed and its
//!   claim released.
//!
//! Creating routes (create, import, fork) publish the new session (claim,
//! commit, release) before their 2xx leaves. A request another host
//! forwarded carries [`FORWARDED`] and is never forwarded again.
//!
//! Cost on loopback: one pooled HTTP/1.1 connection per holder; a forward
//! adds one hop (measured in the cluster bench); the holder's address is
//! cached for [`HOLDER_CACHE`], so a steady stream of requests costs no
//! bucket read on the forwarding host.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::sessions::{Place, not_serving, release_claim};
use super::{Cluster, lock};
use crate::api::ApiError;
use crate::app::App;
use crate::durable::session_id_in_path;

/// Header a forwarding host adds (its host id).
pub const FORWARDED: &str = "x-sesshost-forwarded-by";

/// How long another host's claim is trusted without re-reading it. Cost:
/// a request may be forwarded to a holder that just released (it then
/// serves it itself: any host can).
pub const HOLDER_CACHE: Duration = Duration::from_secs(2);

/// Largest request body replayed locally after a takeover (bodies of
/// session routes are small JSON; larger ones are forwarded only).
const MAX_REPLAY: usize = 8 * 1024 * 1024;

pub type Client = hyper_util::client::legacy::Client<HttpConnector, Body>;

pub fn client() -> Client {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    c.set_connect_timeout(Some(Duration::from_secs(2)));
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(c)
}

const HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Creating routes: their new session is published before they answer.
fn creates(method: &Method, path: &str) -> bool {
    method == Method::POST
        && (path == "/v1/sessions"
            || path == "/v1/sessions/import"
            || (path.starts_with("/v1/sessions/") && path.ends_with("/fork")))
}

/// Routes that change a session or bring it live: they need its claim.
fn claims(method: &Method, path: &str) -> bool {
    method != Method::GET || path.ends_with("/cdp")
}

pub async fn route(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let Some(c) = app.cluster.clone() else {
        return next.run(req).await;
    };
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    if creates(&method, &path) {
        if !c.serving() {
            return not_serving().into_response();
        }
        let resp = next.run(req).await;
        return publish_from(&c, &app, resp).await;
    }
    let Some(id) = session_id_in_path(&path).map(str::to_string) else {
        return next.run(req).await;
    };
    let is_cdp = path.ends_with("/cdp");
    // Requests without a valid key never reach the bucket (the route
    // answers 401); the CDP route's credential is its lease token, which
    // only the holder can check.
    if !is_cdp && crate::http::bearer_principal(&app, req.headers()).is_none() {
        return next.run(req).await;
    }
    if !c.serving() {
        return not_serving().into_response();
    }
    let forwarded = req.headers().contains_key(FORWARDED);
    if c.holds(&id) {
        return serve_held(&c, &app, &id, &method, req, next).await;
    }
    // Another host's claim, recently seen.
    let cached = {
        let l = lock(&c.local);
        l.holders
            .get(&id)
            .filter(|h| h.3.elapsed() < HOLDER_CACHE)
            .map(|h| (h.0.clone(), h.1.clone(), h.2))
    };
    let place = match cached {
        Some((host, addr, epoch)) if !forwarded => Place::Elsewhere { host, addr, epoch },
        _ if !claims(&method, &path) => {
            // A read: whoever holds it, or the head.
            match peek_holder(&c, &id).await {
                Ok(Some((host, addr, epoch))) if !forwarded => {
                    Place::Elsewhere { host, addr, epoch }
                }
                Ok(_) => {
                    return match c.refresh(&app, &id).await {
                        Ok(_) => next.run(req).await,
                        Err(e) => e.into_response(),
                    };
                }
                Err(e) => return e.into_response(),
            }
        }
        _ => match c.take(&app, &id, false).await {
            Ok(p) => p,
            Err(e) => return e.into_response(),
        },
    };
    match place {
        Place::Mine => serve_held(&c, &app, &id, &method, req, next).await,
        Place::Missing => next.run(req).await,
        Place::Elsewhere { .. } if forwarded => {
            // The forwarding host thought we held it; we do not, and the
            // holder is someone else: answer, do not bounce it on.
            ApiError::unavailable(
                "moved",
                format!(
                    "session {id} moved to another host while this request was forwarded; retry"
                ),
                1,
            )
            .into_response()
        }
        Place::Elsewhere { host, addr, .. } => {
            forward_or_take(&c, &app, &id, &host, &addr, req, next).await
        }
    }
}

/// The holder as the claim says, without claiming (`None`: nobody live).
async fn peek_holder(
    c: &Arc<Cluster>,
    id: &str,
) -> Result<Option<(String, String, u64)>, ApiError> {
    let (c2, sid) = (c.clone(), id.to_string());
    let claim = c
        .tier
        .with_backend(move |b| sesshost_cluster::Claims::new(b, &c2.id, &c2.addr).claim(&sid))
        .await
        .map_err(|e| {
            ApiError::unavailable(
                "bucket_unavailable",
                format!("the cluster's bucket: {e}"),
                2,
            )
        })?
        .map_err(|e| ApiError::unavailable("bucket_unavailable", e.to_string(), 2))?;
    let Some(cl) = claim else { return Ok(None) };
    match cl.holder {
        Some(h) if h != c.id && !c.judge_dead(&h).await => {
            let addr = cl.addr.unwrap_or_default();
            lock(&c.local).holders.insert(
                id.to_string(),
                (h.clone(), addr.clone(), cl.epoch, Instant::now()),
            );
            Ok(Some((h, addr, cl.epoch)))
        }
        _ => Ok(None),
    }
}

/// Serve a request for a session this host holds; commit a 2xx change
/// before answering; release the claim when nothing here needs it.
async fn serve_held(
    c: &Arc<Cluster>,
    app: &Arc<App>,
    id: &str,
    method: &Method,
    req: Request,
    next: Next,
) -> Response {
    c.begin(id);
    let resp = next.run(req).await;
    let idle = c.end(id);
    let mut resp = resp;
    if *method != Method::GET
        && resp.status().is_success()
        && let Err(e) = c.commit(app, id).await
    {
        resp = e.into_response();
    }
    if idle && !app.slots.get(id).is_some_and(|s| s.is_live()) && c.holds(id) {
        if let Err(e) = c.commit(app, id).await {
            tracing::warn!("cluster: session {id}: commit before releasing the claim: {e:?}");
        }
        release_claim(c, app, id, false).await;
    }
    resp
}

/// Publish the session a creating route answered with (its `id`).
async fn publish_from(c: &Arc<Cluster>, app: &Arc<App>, resp: Response) -> Response {
    if !resp.status().is_success() {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return ApiError::internal("cannot read the created session's answer").into_response();
    };
    let id = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_string));
    if let Some(id) = id
        && let Err(e) = c.publish(app, &id).await
    {
        tracing::warn!("cluster: session {id}: publishing the new session: {e:?}");
        return e.into_response();
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Forward to the holder; while it does not answer, wait for it to be
/// judged dead and then take over.
async fn forward_or_take(
    c: &Arc<Cluster>,
    app: &Arc<App>,
    id: &str,
    host: &str,
    addr: &str,
    req: Request,
    next: Next,
) -> Response {
    app.metrics.cluster_forwarded_total.inc();
    if is_upgrade(&req) {
        return forward_upgrade(c, addr, req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REPLAY).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "request body too large to forward",
        )
        .into_response();
    };
    let wait = if parts.uri.path().ends_with("/acquire") {
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["wait_seconds"].as_u64())
            .map(|w| Duration::from_secs(w.min(crate::leases::MAX_WAIT_SECONDS)))
            .unwrap_or_default()
    } else {
        Duration::ZERO
    };
    // The holder itself answers an acquire within `wait`: give it that
    // and 2 T more before calling it unresponsive (a holder judged dead
    // ends the wait sooner).
    let deadline = Instant::now() + wait + c.ttl * 2;
    let needs_claim = claims(&parts.method, parts.uri.path());
    let (mut host, mut addr) = (host.to_string(), addr.to_string());
    loop {
        let mut fwd = Box::pin(forward_once(c, &addr, &parts, bytes.clone()));
        // Checked from T/6 on: an interval's immediate first tick would
        // cost a trip through the timer wheel (~1 ms) on every request.
        let every = c.ttl / 6;
        let mut check = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let outcome = loop {
            tokio::select! {
                r = &mut fwd => break Some(r),
                _ = check.tick() => {
                    if c.judge_dead(&host).await || Instant::now() >= deadline {
                        break None;
                    }
                }
            }
        };
        drop(fwd);
        match outcome {
            Some(Ok(resp)) => return resp,
            Some(Err(e)) => {
                tracing::debug!("cluster: session {id}: holder {host} at {addr}: {e}");
            }
            None => {}
        }
        // The holder did not answer (or is judged dead): where is the
        // session now? A released claim, or a dead holder's, is ours to
        // take; a live holder is waited for.
        lock(&c.local).holders.remove(id);
        let place = if needs_claim {
            c.take(app, id, false).await
        } else {
            match peek_holder(c, id).await {
                Ok(Some((h, a, epoch))) => Ok(Place::Elsewhere {
                    host: h,
                    addr: a,
                    epoch,
                }),
                Ok(None) => match c.refresh(app, id).await {
                    Ok(_) => {
                        let req = Request::from_parts(parts, Body::from(bytes));
                        return next.run(req).await;
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            }
        };
        match place {
            Ok(Place::Mine) => {
                let method = parts.method.clone();
                let req = Request::from_parts(parts, Body::from(bytes));
                return serve_held(c, app, id, &method, req, next).await;
            }
            Ok(Place::Missing) => return ApiError::session_not_found(id).into_response(),
            Ok(Place::Elsewhere {
                host: h, addr: a, ..
            }) => {
                host = h;
                addr = a;
            }
            Err(e) => return e.into_response(),
        }
        if Instant::now() >= deadline {
            return ApiError::unavailable(
                "holder_unreachable",
                format!(
                    "session {id} is held by host {host} ({addr}), which does not answer; it is taken over once judged dead (1.5 x {} s): retry then",
                    c.ttl.as_secs()
                ),
                c.ttl.as_secs().max(1),
            )
            .into_response();
        }
        tokio::time::sleep(c.ttl / 6).await;
    }
}

fn is_upgrade(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn target(addr: &str, parts: &axum::http::request::Parts) -> Result<axum::http::Uri, String> {
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{addr}{pq}")
        .parse()
        .map_err(|e| format!("bad holder address {addr:?}: {e}"))
}

async fn forward_once(
    c: &Arc<Cluster>,
    addr: &str,
    parts: &axum::http::request::Parts,
    body: Bytes,
) -> Result<Response, String> {
    let mut b = axum::http::Request::builder()
        .method(parts.method.clone())
        .uri(target(addr, parts)?);
    for (k, v) in &parts.headers {
        if !HOP.contains(&k.as_str()) {
            b = b.header(k, v);
        }
    }
    let req = b
        .header(
            FORWARDED,
            HeaderValue::from_str(&c.id).map_err(|e| e.to_string())?,
        )
        .body(Body::from(body))
        .map_err(|e| e.to_string())?;
    let resp = c.client.request(req).await.map_err(|e| e.to_string())?;
    let (mut parts, body) = resp.into_parts();
    for h in HOP {
        parts.headers.remove(h);
    }
    Ok(Response::from_parts(
        parts,
        Body::new(body.map_err(axum::Error::new)),
    ))
}

/// The CDP websocket: forward the upgrade request, then copy bytes both
/// ways between the two upgraded connections.
async fn forward_upgrade(c: &Arc<Cluster>, addr: &str, mut req: Request) -> Response {
    let bad =
        |m: String| ApiError::new(StatusCode::BAD_GATEWAY, "holder_unreachable", m).into_response();
    let client_up = hyper::upgrade::on(&mut req);
    let (parts, _) = req.into_parts();
    let uri = match target(addr, &parts) {
        Ok(u) => u,
        Err(e) => return bad(e),
    };
    let Some(authority) = uri.authority().map(|a| a.to_string()) else {
        return bad(format!("bad holder address {addr:?}"));
    };
    let stream = match tokio::net::TcpStream::connect(&authority).await {
        Ok(s) => s,
        Err(e) => return bad(format!("the session's host {addr} is not reachable: {e}")),
    };
    let _ = stream.set_nodelay(true);
    let (mut send, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
        Ok(x) => x,
        Err(e) => return bad(format!("the session's host {addr}: {e}")),
    };
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut b = axum::http::Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    for (k, v) in &parts.headers {
        b = b.header(k, v);
    }
    let Ok(up_req) = b
        .header(
            FORWARDED,
            HeaderValue::from_str(&c.id).unwrap_or(HeaderValue::from_static("?")),
        )
        .body(Body::empty())
    else {
        return bad("cannot build the forwarded request".into());
    };
    let mut resp = match send.send_request(up_req).await {
        Ok(r) => r,
        Err(e) => return bad(format!("the session's host {addr}: {e}")),
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (p, body) = resp.into_parts();
        return Response::from_parts(p, Body::new(body.map_err(axum::Error::new)));
    }
    let upstream_up = hyper::upgrade::on(&mut resp);
    tokio::spawn(async move {
        let (Ok(a), Ok(b)) = (client_up.await, upstream_up.await) else {
            return;
        };
        let (mut a, mut b) = (TokioIo::new(a), TokioIo::new(b));
        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
    });
    let (p, _) = resp.into_parts();
    Response::from_parts(p, Body::empty())
}
