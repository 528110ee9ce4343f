//! What the service holds for a session while it is live: its browser
//! (an engine [`LiveSession`]), its lease, the lease queue, and what the
//! CDP proxy needs to find the browser.
//!
//! Locking: `inner` (an async mutex) is held across every transition of
//! one session (restore, save, release, hibernate, replace after a crash),
//! so they never interleave; the proxy and read-only routes use the small
//! sync fields (`lease_auth`, `upstream`, `activity_ms`) and never wait for
//! a transition. The lease queue is a one-permit FIFO semaphore: waiters
//! are served in arrival order, each bounded by its `wait_seconds`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use sesshost_engine::LiveSession;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// A lease: the exclusive right to drive the session's browser.
pub struct Lease {
    pub id: String,
    /// The secret in the CDP URL (256 bits, base64url).
    pub token: String,
    pub key_id: String,
    pub acquired_at_ms: i64,
    pub lease_seconds: u64,
    /// The lease queue's permit: dropping the lease serves the next waiter.
    pub _permit: OwnedSemaphorePermit,
}

/// What `GET /v1/sessions/{id}` shows about a lease.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseView {
    pub lease_id: String,
    /// The API key id that holds it.
    pub holder: String,
    pub acquired_at_ms: i64,
    pub expires_at_ms: i64,
}

pub struct Inner {
    pub live: Option<LiveSession>,
    /// A `max_live_browsers` slot, held while `live` is.
    pub live_permit: Option<OwnedSemaphorePermit>,
    pub lease: Option<Lease>,
    /// When the session last went without a lease (for the idle timeout).
    pub idle_since: Instant,
    pub last_autosave: Instant,
}

pub struct Slot {
    pub id: String,
    pub queue: Arc<Semaphore>,
    pub inner: tokio::sync::Mutex<Inner>,
    /// Last lease activity (acquire, heartbeat, a CDP frame), ms.
    pub activity_ms: AtomicI64,
    /// `(lease id, token, lease seconds, holder, acquired)` of the current
    /// lease, for the proxy's check.
    pub lease_auth: Mutex<Option<LeaseAuth>>,
    /// The browser's own DevTools URL (never shown to anyone).
    pub upstream: Mutex<Option<String>>,
    /// Bumped when the lease ends or the browser is replaced: proxied
    /// connections of the old generation close (clients reconnect).
    pub generation: watch::Sender<u64>,
}

#[derive(Clone)]
pub struct LeaseAuth {
    pub lease_id: String,
    pub token: String,
    pub lease_seconds: u64,
    pub holder: String,
    pub acquired_at_ms: i64,
}

impl Slot {
    fn new(id: &str) -> Slot {
        Slot {
            id: id.to_string(),
            queue: Arc::new(Semaphore::new(1)),
            inner: tokio::sync::Mutex::new(Inner {
                live: None,
                live_permit: None,
                lease: None,
                idle_since: Instant::now(),
                last_autosave: Instant::now(),
            }),
            activity_ms: AtomicI64::new(0),
            lease_auth: Mutex::new(None),
            upstream: Mutex::new(None),
            generation: watch::channel(0).0,
        }
    }

    pub fn touch(&self, now_ms: i64) {
        self.activity_ms.fetch_max(now_ms, Ordering::Relaxed);
    }

    pub fn lease_auth(&self) -> Option<LeaseAuth> {
        self.lease_auth
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_lease_auth(&self, a: Option<LeaseAuth>) {
        *self.lease_auth.lock().unwrap_or_else(|p| p.into_inner()) = a;
    }

    pub fn upstream(&self) -> Option<String> {
        self.upstream
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_upstream(&self, u: Option<String>) {
        *self.upstream.lock().unwrap_or_else(|p| p.into_inner()) = u;
    }

    /// End every proxied connection of the current generation.
    pub fn bump_generation(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn lease_view(&self) -> Option<LeaseView> {
        let a = self.lease_auth()?;
        let act = self.activity_ms.load(Ordering::Relaxed);
        Some(LeaseView {
            lease_id: a.lease_id,
            holder: a.holder,
            acquired_at_ms: a.acquired_at_ms,
            expires_at_ms: act.saturating_add((a.lease_seconds as i64).saturating_mul(1000)),
        })
    }

    /// Whether a browser is live for it (without waiting for a transition).
    pub fn is_live(&self) -> bool {
        self.upstream().is_some()
    }
}

/// Every session the service has touched since start.
#[derive(Default)]
pub struct Slots {
    map: Mutex<HashMap<String, Arc<Slot>>>,
}

impl Slots {
    pub fn get_or_create(&self, id: &str) -> Arc<Slot> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Slot::new(id)))
            .clone()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Slot>> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    pub fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    pub fn all(&self) -> Vec<Arc<Slot>> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// A lease id (`lease_` + 128 bits hex) and its CDP token (256 bits,
/// base64url).
pub fn new_lease_secrets() -> std::io::Result<(String, String)> {
    use base64::Engine as _;
    let id = format!("lease_{}", crate::catalog::random_hex(16)?);
    let mut t = [0u8; 32];
    getrandom::fill(&mut t).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok((
        id,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t),
    ))
}
