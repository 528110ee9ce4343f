//! Exclusive leases: acquire (FIFO queue, bounded), heartbeat, release,
//! and what the reaper does with expired leases and dead browsers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde::Serialize;
use sesshost_store::now_ms;

use crate::api::{ApiError, ApiResult};
use crate::app::{App, rfc3339};
use crate::slots::{Lease, LeaseAuth, Slot, new_lease_secrets};
use crate::tenants::Principal;

#[derive(Debug, Serialize)]
pub struct Acquired {
    pub lease_id: String,
    pub cdp_url: String,
    pub expires_at: String,
}

/// Longest `lease_seconds` and `wait_seconds` a client may ask for.
pub const MAX_LEASE_SECONDS: u64 = 24 * 3600;
pub const MAX_WAIT_SECONDS: u64 = 600;

impl App {
    /// Take the session's lease, bring its browser up, and hand out the
    /// proxied CDP URL (`base` is `ws://HOST` as the client reached us).
    pub async fn acquire(
        self: &Arc<Self>,
        p: &Principal,
        id: &str,
        lease_seconds: Option<u64>,
        wait_seconds: u64,
        base: &str,
    ) -> ApiResult<Acquired> {
        let t0 = Instant::now();
        if self.is_shutting_down() {
            return Err(ApiError::unavailable(
                "shutting_down",
                "the service is stopping; retry on another host or after restart",
                5,
            ));
        }
        let rec = self.record(p, id)?;
        if let Some(info) = self.info(id).await
            && info.expired
        {
            return Err(ApiError::conflict(
                "session_expired",
                format!(
                    "session {id} has expired: extend it (`POST /v1/sessions/{id}/extend`) before acquiring"
                ),
            ));
        }
        let lease_seconds = lease_seconds
            .unwrap_or(self.config.lifecycle.lease_seconds)
            .clamp(1, MAX_LEASE_SECONDS);
        let wait = Duration::from_secs(wait_seconds.min(MAX_WAIT_SECONDS));
        let deadline = Instant::now() + wait;
        let slot = self.slots.get_or_create(id);
        let permit = match slot.queue.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if wait.is_zero() {
                    return Err(held(&slot, id));
                }
                let q = self.queued.fetch_add(1, Ordering::SeqCst);
                if q >= self.config.limits.max_queued {
                    self.queued.fetch_sub(1, Ordering::SeqCst);
                    return Err(ApiError::unavailable(
                        "queue_full",
                        format!(
                            "{q} acquires are already waiting ([limits] max_queued = {}): retry later",
                            self.config.limits.max_queued
                        ),
                        2,
                    ));
                }
                self.metrics
                    .queue_length
                    .set(self.queued.load(Ordering::SeqCst) as f64);
                let r = tokio::time::timeout(wait, slot.queue.clone().acquire_owned()).await;
                self.queued.fetch_sub(1, Ordering::SeqCst);
                self.metrics
                    .queue_length
                    .set(self.queued.load(Ordering::SeqCst) as f64);
                match r {
                    Ok(Ok(p)) => p,
                    Ok(Err(_)) => {
                        return Err(ApiError::unavailable(
                            "shutting_down",
                            "the service is stopping",
                            5,
                        ));
                    }
                    Err(_) => return Err(held(&slot, id)),
                }
            }
        };
        let mut g = slot.inner.lock().await;
        // The session may have been deleted while we queued.
        if self.catalog.get_for(&p.tenant, id).is_none() {
            return Err(ApiError::session_not_found(id));
        }
        self.ensure_live(
            &slot,
            &mut g,
            deadline.max(Instant::now() + Duration::from_secs(1)),
        )
        .await?;
        let (lease_id, token) =
            new_lease_secrets().map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
        let now = now_ms();
        g.lease = Some(Lease {
            id: lease_id.clone(),
            token: token.clone(),
            key_id: p.key_id.clone(),
            acquired_at_ms: now,
            lease_seconds,
            _permit: permit,
        });
        slot.activity_ms.store(now, Ordering::Relaxed);
        slot.set_lease_auth(Some(LeaseAuth {
            lease_id: lease_id.clone(),
            token: token.clone(),
            lease_seconds,
            holder: p.key_id.clone(),
            acquired_at_ms: now,
        }));
        drop(g);
        let _ = rec;
        self.metrics
            .acquire_seconds
            .observe(t0.elapsed().as_secs_f64());
        Ok(Acquired {
            lease_id,
            cdp_url: format!("{base}/v1/sessions/{id}/cdp?lease={token}"),
            expires_at: rfc3339(now + lease_seconds as i64 * 1000),
        })
    }

    fn check_lease(&self, slot: &Slot, id: &str, lease_id: &str) -> ApiResult<LeaseAuth> {
        match slot.lease_auth() {
            Some(a) if subtle_eq(&a.lease_id, lease_id) => Ok(a),
            Some(_) => Err(ApiError::conflict(
                "lease_mismatch",
                format!(
                    "session {id} is leased under another lease id: the lease you hold has ended (expired or released)"
                ),
            )),
            None => Err(ApiError::conflict(
                "not_leased",
                format!("session {id} has no lease: it was released or expired; acquire it again"),
            )),
        }
    }

    pub async fn heartbeat(&self, p: &Principal, id: &str, lease_id: &str) -> ApiResult<String> {
        self.record(p, id)?;
        let slot = self.slots.get(id).ok_or_else(|| {
            ApiError::conflict(
                "not_leased",
                format!("session {id} has no lease: acquire it"),
            )
        })?;
        let a = self.check_lease(&slot, id, lease_id)?;
        let now = now_ms();
        slot.touch(now);
        Ok(rfc3339(now + a.lease_seconds as i64 * 1000))
    }

    /// Capture and persist, end the lease; with `hibernate` (or an idle
    /// timeout of 0) also close the browser. Answers once the state is
    /// committed to the store: that state is never lost.
    pub async fn release(
        self: &Arc<Self>,
        p: &Principal,
        id: &str,
        lease_id: &str,
        hibernate: bool,
    ) -> ApiResult<()> {
        let rec = self.record(p, id)?;
        let slot = self.slots.get(id).ok_or_else(|| {
            ApiError::conflict(
                "not_leased",
                format!("session {id} has no lease: acquire it"),
            )
        })?;
        self.check_lease(&slot, id, lease_id)?;
        let mut g = slot.inner.lock().await;
        match &g.lease {
            Some(l) if l.id == lease_id => {}
            _ => {
                return Err(ApiError::conflict(
                    "not_leased",
                    format!("session {id}: that lease has ended"),
                ));
            }
        }
        self.end_lease_locked(&slot, &mut g, "release")
            .await
            .map_err(|e| {
                let mut a = ApiError::from(e);
                a.message = format!("{}; the lease is kept, retry the release", a.message);
                a
            })?;
        // In a cluster the release answers once the head names this state
        // (a fenced or failed commit is an error: nothing acknowledged is
        // lost).
        if self.cluster.is_some() {
            self.write_through(id).await?;
        }
        if (hibernate || rec.idle_timeout_seconds == 0)
            && !self.hibernate_locked(&slot, &mut g, "release").await
        {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "hibernate_failed",
                "the state was saved but the browser could not be closed cleanly",
            ));
        }
        drop(g);
        // A release answers once the state is in the durable tier too.
        if self.cluster.is_none() {
            self.write_through(id).await?;
        }
        // The login check runs on every release (in the background: the
        // release is answered once the state is committed).
        if rec.auth_check.is_some() {
            let (app, id) = (self.clone(), id.to_string());
            tokio::spawn(async move {
                if let Err(e) = crate::routes::data::run_check(&app, &id).await {
                    tracing::debug!("session {id}: login check after release not run: {e}");
                }
            });
        }
        Ok(())
    }
}

fn held(slot: &Slot, id: &str) -> ApiError {
    let until = slot
        .lease_view()
        .map(|v| rfc3339(v.expires_at_ms))
        .unwrap_or_else(|| "soon".into());
    ApiError::conflict(
        "lease_held",
        format!(
            "session {id} is leased until {until} (unless renewed): retry with a larger wait_seconds, or after that time"
        ),
    )
}

/// Constant-time string comparison (lease ids and tokens).
pub fn subtle_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
