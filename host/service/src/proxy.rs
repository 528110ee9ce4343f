//! The CDP proxy: `GET /v1/sessions/{id}/cdp?lease=TOKEN` upgrades to a
//! websocket and relays frames, unchanged, to the session's browser, so
//! Playwright's `connectOverCDP` and Puppeteer's `connect` work through it.
//!
//! - The token in the URL is the only credential (clients cannot easily
//!   set headers on a websocket); it is compared in constant time and
//!   works until the lease ends. Chromium's own endpoint is never shown.
//! - The upstream request is ours: the page's `Origin` (a console tab, a
//!   client) is never passed to Chromium.
//! - Every frame counts as lease activity (the lease's idle timer) and into
//!   `sesshost_cdp_proxy_bytes_total`.
//! - When the lease ends or the browser is replaced (a crash), the
//!   generation changes and the connection closes; a client reconnects to
//!   the same URL and reaches the new browser.
//! - No permessage-deflate on either leg (it costs more CPU than loopback
//!   bandwidth saves: Kernel measured -22 % per op with it on).

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message as AMsg, WebSocket};
use futures::{SinkExt, StreamExt};
use sesshost_store::now_ms;
use tokio_tungstenite::tungstenite::Message as TMsg;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::app::App;
use crate::slots::Slot;

/// Largest CDP message relayed (a full-page screenshot is a few MiB).
/// Cost: a frame is held whole in memory once per leg.
pub const MAX_CDP_MESSAGE: usize = 256 * 1024 * 1024;

/// Relay one client connection until either side closes, the lease ends
/// or the browser is replaced.
pub async fn relay(app: Arc<App>, slot: Arc<Slot>, client: WebSocket) {
    let Some(upstream) = slot.upstream() else {
        return;
    };
    let mut gen_rx = slot.generation.subscribe();
    gen_rx.borrow_and_update();
    let mut cfg = WebSocketConfig::default();
    cfg.max_message_size = Some(MAX_CDP_MESSAGE);
    cfg.max_frame_size = Some(MAX_CDP_MESSAGE);
    let up = match tokio_tungstenite::connect_async_with_config(upstream.as_str(), Some(cfg), true)
        .await
    {
        Ok((ws, _)) => ws,
        Err(e) => {
            tracing::warn!("session {}: cannot reach its browser: {e}", slot.id);
            let mut client = client;
            let _ = client
                .send(AMsg::Close(Some(CloseFrame {
                    code: 1011,
                    reason: "the session's browser is not reachable; reconnect in a moment".into(),
                })))
                .await;
            return;
        }
    };
    let (mut up_tx, mut up_rx) = up.split();
    let (mut cl_tx, mut cl_rx) = client.split();
    let m = &app.metrics;
    loop {
        tokio::select! {
            msg = cl_rx.next() => {
                let Some(Ok(msg)) = msg else { break };
                let out = match msg {
                    AMsg::Text(t) => {
                        m.cdp_proxy_bytes_total.inc_by(&["client_to_browser"], t.len() as u64);
                        TMsg::text(t.as_str())
                    }
                    AMsg::Binary(b) => {
                        m.cdp_proxy_bytes_total.inc_by(&["client_to_browser"], b.len() as u64);
                        TMsg::binary(b)
                    }
                    AMsg::Ping(p) => TMsg::Ping(p),
                    AMsg::Pong(p) => TMsg::Pong(p),
                    AMsg::Close(_) => break,
                };
                slot.touch(now_ms());
                if up_tx.send(out).await.is_err() {
                    break;
                }
            }
            msg = up_rx.next() => {
                let Some(Ok(msg)) = msg else { break };
                let out = match msg {
                    TMsg::Text(t) => {
                        m.cdp_proxy_bytes_total.inc_by(&["browser_to_client"], t.len() as u64);
                        AMsg::Text(t.as_str().into())
                    }
                    TMsg::Binary(b) => {
                        m.cdp_proxy_bytes_total.inc_by(&["browser_to_client"], b.len() as u64);
                        AMsg::Binary(b)
                    }
                    TMsg::Ping(p) => AMsg::Ping(p),
                    TMsg::Pong(p) => AMsg::Pong(p),
                    TMsg::Close(_) => break,
                    TMsg::Frame(_) => continue,
                };
                slot.touch(now_ms());
                if cl_tx.send(out).await.is_err() {
                    break;
                }
            }
            _ = gen_rx.changed() => {
                let _ = cl_tx
                    .send(AMsg::Close(Some(CloseFrame {
                        code: 1012,
                        reason: "the lease ended or the browser was replaced; reconnect if your lease is still valid".into(),
                    })))
                    .await;
                break;
            }
        }
    }
    let _ = up_tx.close().await;
    let _ = cl_tx.close().await;
}
