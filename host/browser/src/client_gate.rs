//! The CDP URL a session hands out points here: a local TCP pipe to
//! Chromium's DevTools port that holds *new* client connections while
//! restored tabs are being rebuilt.
//!
//! Why: a cold open hands the URL out as soon as the restore gate is in
//! force (tens of ms after launch), but each restored tab still walks its
//! history on placeholder documents and then loads its current entry. A
//! client that attached meanwhile would see a blank tab, a placeholder, or
//! a history one entry short. Instead, a connection made while tabs are
//! being rebuilt is accepted at once and answered once they are: the
//! client's first CDP message already meets every restored tab at its
//! restored URL with its full history and the restored cookies and
//! storage in force. Connections made before a restore started are not
//! held (they are piped already).
//!
//! The pipe is bytes only (HTTP upgrade, WebSocket frames, `/json/*`
//! endpoints pass unchanged; Chromium builds `webSocketDebuggerUrl` from
//! the Host header, so those point back here). Cost: one local hop per
//! message, ~20-50 µs; a held client waits until the tabs have loaded.
//!
//! Owns: the listener task and one task per client connection. Does not
//! read or change what flows through.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::error::{BrowserError, Result};

/// The listener; dropping it closes the port and every piped connection.
pub(crate) struct ClientGate {
    /// How many holds are in place (clients wait while it is above 0).
    holds: Arc<watch::Sender<usize>>,
    port: u16,
    task: JoinHandle<()>,
}

impl Drop for ClientGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// While alive, new clients wait; dropping it lets them through (once no
/// other hold is left).
#[must_use = "clients are let through when this is dropped"]
pub(crate) struct Hold {
    holds: Arc<watch::Sender<usize>>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.holds.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl ClientGate {
    /// Listen on a random 127.0.0.1 port and pipe every connection to
    /// `upstream` (Chromium's DevTools address).
    pub(crate) async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| BrowserError::Connection(format!("listening for CDP clients: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| BrowserError::Connection(format!("listening for CDP clients: {e}")))?
            .port();
        let (holds, _) = watch::channel(0usize);
        let holds = Arc::new(holds);
        let h2 = holds.clone();
        let task = tokio::spawn(async move {
            // Dropped (aborted) with the accept loop: every pipe ends.
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        match accepted {
                            Ok((inbound, _)) => {
                                conns.spawn(pipe(inbound, upstream, h2.subscribe()));
                            }
                            // Out of descriptors, say: back off, never spin.
                            Err(e) => {
                                tracing::debug!("CDP client accept failed: {e}");
                                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            }
                        }
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Ok(ClientGate { holds, port, task })
    }

    /// The local port clients connect to.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Hold new clients until the returned guard is dropped.
    pub(crate) fn hold(&self) -> Hold {
        self.holds.send_modify(|n| *n += 1);
        Hold {
            holds: self.holds.clone(),
        }
    }
}

async fn pipe(inbound: TcpStream, upstream: SocketAddr, mut holds: watch::Receiver<usize>) {
    // A closed sender means the session is going away: let the connection
    // fail against Chromium rather than hang.
    let _ = holds.wait_for(|n| *n == 0).await;
    let Ok(out) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = out.set_nodelay(true);
    let (client_rx, client_tx) = inbound.into_split();
    let (chromium_rx, chromium_tx) = out.into_split();
    // Client -> Chromium; at its end, dropping the write half shuts
    // Chromium's side down, which then finishes its answer and closes.
    let up = async move {
        let _ = pump(&client_rx, &chromium_tx).await;
        drop(chromium_tx);
    };
    let down = pump(&chromium_rx, &client_tx);
    tokio::pin!(up, down);
    tokio::select! {
        _ = &mut down => {}
        _ = &mut up => { let _ = down.await; }
    }
}

/// Copy bytes from `from` to `to` until `from` ends (tokio's `io-util`
/// copy without the feature: readiness + non-blocking reads and writes).
async fn pump(
    from: &tokio::net::tcp::OwnedReadHalf,
    to: &tokio::net::tcp::OwnedWriteHalf,
) -> std::io::Result<()> {
    use std::io::ErrorKind::WouldBlock;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        from.readable().await?;
        let n = match from.try_read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == WouldBlock => continue,
            Err(e) => return Err(e),
        };
        let mut done = 0;
        while done < n {
            to.writable().await?;
            match to.try_write(&buf[done..n]) {
                Ok(k) => done += k,
                Err(e) if e.kind() == WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// `ws://HOST:PORT/devtools/...` -> (the socket address, the URL with
/// 127.0.0.1:`port` instead).
pub(crate) fn split_ws_url(ws_url: &str, port: u16) -> Option<(SocketAddr, String)> {
    let rest = ws_url.strip_prefix("ws://")?;
    let (authority, path) = rest.split_once('/')?;
    let addr: SocketAddr = authority.parse().ok()?;
    Some((addr, format!("ws://127.0.0.1:{port}/{path}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_rewritten_to_the_pipe() {
        let (addr, url) = split_ws_url("ws://127.0.0.1:9222/devtools/browser/abc-1", 4000).unwrap();
        assert_eq!(addr.port(), 9222);
        assert_eq!(url, "ws://127.0.0.1:4000/devtools/browser/abc-1");
        assert!(split_ws_url("http://127.0.0.1:9222/x", 1).is_none());
        assert!(split_ws_url("ws://localhost:9222/x", 1).is_none());
    }
}
