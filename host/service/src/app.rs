//! [`App`]: everything one `host run` holds (engine, catalog, tenants, the
//! live sessions, the pool, limits, metrics, audit), and the flows that
//! move a session between states:
//!
//! `hibernated` (at rest in the store) → acquire → `active` (leased, live
//! browser) → release → `idle` (live, no lease; its browser is kept for a
//! quick next acquire) → idle timeout, memory pressure or shutdown →
//! `hibernated`. `expired` once past its TTL (cleanup deletes it),
//! `needs_auth` when its login check fails, `failed` when its state cannot
//! be restored. A browser serves one session and is discarded with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sesshost_browser::BrowserSession;
use sesshost_engine::{Engine, OpenRequest};
use sesshost_store::SessionInfo;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api::{ApiError, ApiResult};
use crate::audit::{Audit, AuditEvent};
use crate::catalog::{Catalog, Record};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::pool::Pool;
use crate::ratelimit::RateLimiter;
use crate::slots::{Inner, Slot, Slots};
use crate::tenants::{Principal, Registry};

pub struct App {
    pub engine: Engine,
    pub config: Config,
    pub registry: Registry,
    pub audit: Audit,
    pub metrics: Metrics,
    pub limiter: RateLimiter,
    pub catalog: Catalog,
    pub slots: Slots,
    pub pool: Arc<Pool>,
    /// `max_live_browsers` permits (pooled browsers hold none).
    pub live_sem: Arc<Semaphore>,
    pub max_live: usize,
    /// Acquires waiting in a lease queue or for a live slot.
    pub queued: AtomicUsize,
    pub shutting_down: AtomicBool,
    pub started: Instant,
    /// The durable tier (`host run --plugin`), if any.
    pub durable: Option<Arc<crate::durable::Durable>>,
    /// `host run --cluster`: this host's part in the cluster.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// The last hour of samples for the console's charts.
    pub history: crate::history::History,
}

/// The state a session is in, as the API names it.
pub fn state_name(rec: &Record, info: Option<&SessionInfo>, slot: Option<&Slot>) -> &'static str {
    if rec.failed.is_some() {
        return "failed";
    }
    if info.is_some_and(|i| i.expired) {
        return "expired";
    }
    if let Some(s) = slot {
        if s.lease_auth().is_some() {
            return "active";
        }
        if s.is_live() {
            return "idle";
        }
    }
    if rec.needs_auth {
        return "needs_auth";
    }
    "hibernated"
}

/// An audit event by the caller `p`, stamped now.
pub fn audit_event(
    p: &Principal,
    action: &str,
    session: Option<&str>,
    result: &str,
    detail: serde_json::Value,
) -> AuditEvent {
    AuditEvent::now(&p.tenant, Some(&p.key_id), action, session, result, detail)
}

/// RFC 3339 UTC (seconds) of a ms timestamp.
pub fn rfc3339(ms: i64) -> String {
    sessbundle::interop::dates::format_rfc3339(ms.div_euclid(1000)).unwrap_or_default()
}

impl App {
    pub fn record(&self, p: &Principal, id: &str) -> ApiResult<Record> {
        self.catalog
            .get_for(&p.tenant, id)
            .ok_or_else(|| ApiError::session_not_found(id))
    }

    /// Sessions under a lease now.
    pub fn leased_count(&self) -> usize {
        self.slots
            .all()
            .iter()
            .filter(|s| s.lease_auth().is_some())
            .count()
    }

    /// Write `id` through to the durable tier, or commit it to the
    /// cluster (waits; a no-op without either). Only a cluster commit can
    /// fail the caller (refused as fenced, bucket down): the durable tier
    /// retries on its own.
    pub async fn write_through(self: &Arc<Self>, id: &str) -> ApiResult<()> {
        if let Some(c) = &self.cluster {
            return c.commit(self, id).await;
        }
        if let Some(d) = &self.durable {
            d.write_through(self, id).await;
        }
        Ok(())
    }

    /// Remove `id` from the durable tier or the cluster's bucket (waits; a
    /// no-op without either).
    pub async fn forget_durable(self: &Arc<Self>, id: &str) {
        if let Some(c) = &self.cluster {
            if let Err(e) = c.forget(id).await {
                tracing::warn!("cluster: session {id}: removing it from the bucket: {e:?}");
            }
            return;
        }
        if let Some(d) = &self.durable {
            d.remove(self, id).await;
        }
    }

    pub fn audit(&self, ev: AuditEvent) {
        if let Err(e) = self.audit.append(&ev) {
            tracing::warn!("cannot write the audit log: {e}");
        }
    }

    /// A live-browser permit: free now, or by hibernating the idle session
    /// that has waited longest, or by waiting (bounded by `deadline`).
    pub async fn live_permit(&self, deadline: Instant) -> ApiResult<OwnedSemaphorePermit> {
        loop {
            if let Ok(p) = self.live_sem.clone().try_acquire_owned() {
                return Ok(p);
            }
            if self.hibernate_oldest_idle().await {
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ApiError::unavailable(
                    "capacity",
                    format!(
                        "all {} live browser slots are leased ([limits] max_live_browsers): retry later or release a session",
                        self.max_live
                    ),
                    5,
                ));
            }
            match tokio::time::timeout(
                left.min(Duration::from_millis(250)),
                self.live_sem.clone().acquire_owned(),
            )
            .await
            {
                Ok(Ok(p)) => return Ok(p),
                Ok(Err(_)) => {
                    return Err(ApiError::unavailable(
                        "shutting_down",
                        "the service is stopping",
                        5,
                    ));
                }
                Err(_) => continue,
            }
        }
    }

    /// Hibernate the idle (live, unleased) session idle the longest; false
    /// if there is none.
    async fn hibernate_oldest_idle(&self) -> bool {
        let mut best: Option<(Instant, Arc<Slot>)> = None;
        for s in self.slots.all() {
            if s.lease_auth().is_some() || !s.is_live() {
                continue;
            }
            if let Ok(g) = s.inner.try_lock()
                && g.lease.is_none()
                && g.live.is_some()
                && best.as_ref().is_none_or(|(t, _)| g.idle_since < *t)
            {
                best = Some((g.idle_since, s.clone()));
            }
        }
        let Some((_, slot)) = best else { return false };
        let mut g = slot.inner.lock().await;
        if g.lease.is_some() || g.live.is_none() {
            return true; // changed meanwhile: look again
        }
        self.hibernate_locked(&slot, &mut g, "making room").await;
        true
    }

    /// Bring the session's browser up (from the warm pool) if it is not.
    pub async fn ensure_live(
        &self,
        slot: &Slot,
        g: &mut Inner,
        deadline: Instant,
    ) -> ApiResult<()> {
        if let Some(l) = &g.live {
            if futures::FutureExt::now_or_never(l.browser().wait_closed()).is_none() {
                return Ok(());
            }
            tracing::warn!(
                "session {}: its Chromium is gone; restoring the last save into a new one",
                slot.id
            );
            self.close_browser_locked(slot, g, true).await;
        }
        let permit = match g.live_permit.take() {
            Some(p) => p,
            None => self.live_permit(deadline).await?,
        };
        let browser: BrowserSession = match self.pool.take().await {
            Ok(b) => b,
            Err(e) => {
                return Err(ApiError::unavailable(
                    "browser_unavailable",
                    format!("cannot start Chromium: {e}"),
                    5,
                ));
            }
        };
        self.metrics.pool_size.set(self.pool.available() as f64);
        let req = OpenRequest {
            name: slot.id.clone(),
            ..Default::default()
        };
        let live = match self.engine.open_live_in(req, browser).await {
            Ok(l) => l,
            Err(e) => {
                drop(permit);
                let err = ApiError::from(e);
                if err.status.is_server_error() {
                    let msg = err.message.clone();
                    let _ = self.catalog.update(&slot.id, |r| r.failed = Some(msg));
                }
                return Err(err);
            }
        };
        slot.set_upstream(Some(live.ws_url().to_string()));
        g.live = Some(live);
        g.live_permit = Some(permit);
        g.last_autosave = Instant::now();
        g.idle_since = Instant::now();
        self.refresh_live_gauge();
        Ok(())
    }

    pub fn refresh_live_gauge(&self) {
        let live = self.max_live - self.live_sem.available_permits().min(self.max_live);
        self.metrics.live_browsers.set(live as f64);
    }

    /// Capture, save and close the browser (the session is at rest after).
    /// A failed save keeps the browser (nothing is lost) and returns false.
    pub async fn hibernate_locked(&self, slot: &Slot, g: &mut Inner, why: &str) -> bool {
        let Some(live) = g.live.as_mut() else {
            return true;
        };
        if let Err(e) = live.save(why).await {
            tracing::warn!(
                "session {}: saving before hibernation failed, the browser is kept: {e}",
                slot.id
            );
            return false;
        }
        self.close_browser_locked(slot, g, false).await;
        tracing::info!("session {} hibernated ({why})", slot.id);
        if let Some(d) = &self.durable {
            d.changed(Some(&slot.id));
        }
        if let Some(c) = &self.cluster
            && let Some(app) = c.app()
        {
            // Commit, then give the claim up: any host may acquire it now.
            if let Err(e) = c.commit(&app, &slot.id).await {
                tracing::warn!(
                    "cluster: session {}: commit after hibernation: {e:?}",
                    slot.id
                );
            }
            crate::cluster::sessions::release_claim(c, &app, &slot.id, false).await;
        }
        true
    }

    /// Close the session's browser without saving. Its proxied connections
    /// end first (a lease's clients reconnect to the same URL); with
    /// `keep_permit` the live-browser slot stays with the session (a
    /// replacement browser follows), else it is freed.
    pub async fn close_browser_locked(&self, slot: &Slot, g: &mut Inner, keep_permit: bool) {
        slot.set_upstream(None);
        slot.bump_generation();
        if let Some(l) = g.live.take() {
            let _ = l.close(false).await;
        }
        if !keep_permit {
            g.live_permit = None;
        }
        self.refresh_live_gauge();
    }

    /// Save the session's browser state if it is live (so what is read from
    /// the store next is what its browser shows).
    pub async fn save_if_live(&self, id: &str, why: &str) -> sesshost_engine::Result<()> {
        if let Some(slot) = self.slots.get(id) {
            let mut g = slot.inner.lock().await;
            if let Some(l) = g.live.as_mut() {
                l.save(why).await?;
            }
        }
        Ok(())
    }

    /// End the lease (if any) after saving; the browser stays as `idle`.
    pub async fn end_lease_locked(
        &self,
        slot: &Slot,
        g: &mut Inner,
        why: &str,
    ) -> sesshost_engine::Result<()> {
        if let Some(live) = g.live.as_mut() {
            live.save(why).await?;
            g.last_autosave = Instant::now();
        }
        g.lease = None;
        slot.set_lease_auth(None);
        slot.bump_generation();
        g.idle_since = Instant::now();
        Ok(())
    }

    /// Store info of one session (`None` if it is gone from the store).
    pub async fn info(&self, id: &str) -> Option<SessionInfo> {
        self.engine.show_indexed(id).await.ok()
    }

    /// Whether `tenant` may add a session now (create, import): its
    /// creation rate, then the caps.
    pub fn check_creation(&self, tenant: &str) -> ApiResult<()> {
        if let Err(wait) = self.limiter.check(tenant) {
            self.metrics.rate_limited_total.inc();
            let l = &self.config.limits;
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "tenant {tenant} creates sessions faster than its rate ([limits] create_per_minute = {}, create_burst = {}): retry after {} s",
                    l.create_per_minute,
                    l.create_burst,
                    wait.as_secs().max(1)
                ),
            )
            .with_retry_after(wait.as_secs().max(1)));
        }
        self.check_caps(tenant)
    }

    /// The tenant's session cap and the global stored cap.
    pub fn check_caps(&self, tenant: &str) -> ApiResult<()> {
        let n = self.catalog.count_for(tenant);
        if n >= self.config.limits.sessions_per_tenant {
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "session_limit_reached",
                format!(
                    "tenant {tenant} has {n} sessions, its cap ([limits] sessions_per_tenant = {}): delete one first",
                    self.config.limits.sessions_per_tenant
                ),
            )
            .with_retry_after(60));
        }
        let total = self.catalog.len();
        if total >= self.config.limits.max_stored {
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "session_limit_reached",
                format!(
                    "the service stores {total} sessions, its cap ([limits] max_stored = {}): delete some first",
                    self.config.limits.max_stored
                ),
            )
            .with_retry_after(60));
        }
        Ok(())
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }
}
