//! What the service does on its own: the reaper (expired leases, crashed
//! browsers, idle timeouts, autosave; every second), cleanup of expired
//! sessions (every `cleanup_interval_seconds`), login checks (every
//! `check_interval_seconds`), the per-browser memory watch (every 10 s),
//! the metrics-history sampler (every 10 s, [`crate::history`]) and
//! graceful shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sesshost_store::now_ms;

use crate::api::ApiResult;
use crate::app::App;
use crate::slots::Slot;

/// Start every background loop.
pub fn spawn_all(app: &Arc<App>) {
    let a = app.clone();
    tokio::spawn(async move {
        let mut t = tokio::time::interval(Duration::from_secs(1));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            t.tick().await;
            if a.is_shutting_down() {
                return;
            }
            reap(&a).await;
        }
    });
    let a = app.clone();
    tokio::spawn(async move {
        let every = Duration::from_secs(a.config.lifecycle.cleanup_interval_seconds.max(1));
        loop {
            tokio::time::sleep(every).await;
            if a.is_shutting_down() {
                return;
            }
            if let Err(e) = cleanup_once(&a, None).await {
                tracing::warn!("cleanup failed, will retry: {e}");
            }
        }
    });
    let a = app.clone();
    tokio::spawn(async move {
        let every = Duration::from_secs(a.config.lifecycle.check_interval_seconds.max(1));
        loop {
            tokio::time::sleep(every).await;
            if a.is_shutting_down() {
                return;
            }
            for rec in a.catalog.all() {
                if rec.auth_check.is_none()
                    || a.slots
                        .get(&rec.id)
                        .is_some_and(|s| s.lease_auth().is_some())
                {
                    continue;
                }
                match crate::routes::data::run_check(&a, &rec.id).await {
                    Ok(r) if !r.ok => tracing::info!(
                        "session {}: login check failed ({}): needs_auth",
                        rec.id,
                        r.detail
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::debug!("session {}: login check not run: {e}", rec.id),
                }
            }
        }
    });
    let a = app.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            if a.is_shutting_down() {
                return;
            }
            memory_watch(&a).await;
        }
    });
    let a = app.clone();
    tokio::spawn(async move {
        let mut t = tokio::time::interval(crate::history::INTERVAL);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            t.tick().await;
            if a.is_shutting_down() {
                return;
            }
            a.history.push(crate::history::sample(&a));
        }
    });
}

/// One pass of the reaper over the live sessions. A session whose
/// transition is running (its lock is taken) is looked at next time.
async fn reap(app: &Arc<App>) {
    let now = now_ms();
    for slot in app.slots.all() {
        let Ok(mut g) = slot.inner.try_lock() else {
            continue;
        };
        // A crashed Chromium: a leased session gets a new browser with its
        // last autosave (the lease and its cdp_url stay valid); an idle one
        // just goes to rest.
        let crashed = g
            .live
            .as_ref()
            .is_some_and(|l| futures::FutureExt::now_or_never(l.browser().wait_closed()).is_some());
        if crashed {
            if g.lease.is_some() {
                tracing::warn!(
                    "session {}: Chromium died under a lease; replacing it from the last autosave",
                    slot.id
                );
                if let Err(e) = app
                    .ensure_live(&slot, &mut g, Instant::now() + Duration::from_secs(30))
                    .await
                {
                    tracing::warn!(
                        "session {}: replacing its browser failed, will retry: {e}",
                        slot.id
                    );
                }
            } else {
                tracing::warn!(
                    "session {}: its idle Chromium died; the session keeps its last save",
                    slot.id
                );
                app.close_browser_locked(&slot, &mut g, false).await;
            }
            continue;
        }
        if let Some(lease) = &g.lease {
            let last = slot.activity_ms.load(Ordering::Relaxed);
            if now - last > lease.lease_seconds as i64 * 1000 {
                tracing::info!(
                    "session {}: lease {} expired; reclaiming it",
                    slot.id,
                    lease.id
                );
                if let Err(e) = app.end_lease_locked(&slot, &mut g, "lease expired").await {
                    tracing::warn!(
                        "session {}: saving the expired lease's state failed, will retry: {e}",
                        slot.id
                    );
                }
                continue;
            }
        }
        if g.live.is_some() && g.lease.is_none() {
            let idle = app
                .catalog
                .get(&slot.id)
                .map_or(app.config.lifecycle.idle_timeout_seconds, |r| {
                    r.idle_timeout_seconds
                });
            if g.idle_since.elapsed() >= Duration::from_secs(idle) {
                app.hibernate_locked(&slot, &mut g, "idle timeout").await;
                continue;
            }
        }
        if g.live.is_some()
            && g.last_autosave.elapsed()
                >= Duration::from_secs(app.config.lifecycle.autosave_seconds.max(1))
        {
            g.last_autosave = Instant::now();
            if let Some(l) = g.live.as_mut()
                && let Err(e) = l.save("autosave").await
            {
                tracing::warn!("session {}: autosave failed, will retry: {e}", slot.id);
            }
        }
    }
}

/// Delete expired sessions that are not live (a leased session keeps its
/// browser until the lease ends, then goes). Returns the ids removed.
pub async fn cleanup_once(app: &Arc<App>, tenant: Option<&str>) -> ApiResult<Vec<String>> {
    let infos = app.engine.list().await?;
    let mut removed = Vec::new();
    for info in infos {
        if !info.expired && info.problem.is_none() {
            continue;
        }
        let Some(rec) = app.catalog.get(&info.name) else {
            continue;
        };
        if tenant.is_some_and(|t| t != rec.tenant) {
            continue;
        }
        if app.slots.get(&rec.id).is_some_and(|s| s.is_live()) {
            continue;
        }
        // In a cluster only the session's holder deletes it, after
        // reading its committed state (another host may have extended it).
        if let Some(c) = &app.cluster {
            match c.take(app, &rec.id, false).await {
                Ok(crate::cluster::sessions::Place::Mine) => {}
                _ => continue,
            }
            if app
                .engine
                .show(&rec.id)
                .await
                .is_ok_and(|i| !i.expired && i.problem.is_none())
            {
                crate::cluster::sessions::release_claim(c, app, &rec.id, true).await;
                continue;
            }
        }
        match app.engine.delete(&rec.id).await {
            Ok(_) => {
                app.forget_durable(&rec.id).await;
                let _ = app.catalog.remove(&rec.id);
                app.slots.remove(&rec.id);
                if let Some(age) = now_ms().checked_sub(rec.created_at_ms) {
                    app.metrics.lifetime_seconds.observe(age as f64 / 1000.0);
                }
                app.metrics.expired_total.inc();
                app.audit(crate::audit::AuditEvent::now(
                    &rec.tenant,
                    None,
                    "session.expire",
                    Some(&rec.id),
                    "ok",
                    serde_json::json!({}),
                ));
                removed.push(rec.id);
            }
            Err(e) => tracing::warn!("cleanup: cannot delete {}: {e}", rec.id),
        }
    }
    Ok(removed)
}

/// Hibernate (idle) or recycle (leased: save, new browser, restore) the
/// browser with the largest JS heap above `[limits] js_heap_mb`.
async fn memory_watch(app: &Arc<App>) {
    let limit = app.config.limits.js_heap_mb.saturating_mul(1024 * 1024);
    let mut worst: Option<(u64, Arc<Slot>)> = None;
    for slot in app.slots.all() {
        let Ok(g) = slot.inner.try_lock() else {
            continue;
        };
        let Some(l) = g.live.as_ref() else { continue };
        if let Ok(bytes) = l.browser().js_heap_bytes().await
            && bytes > limit
            && worst.as_ref().is_none_or(|(b, _)| bytes > *b)
        {
            worst = Some((bytes, slot.clone()));
        }
    }
    let Some((bytes, slot)) = worst else { return };
    let mut g = slot.inner.lock().await;
    tracing::warn!(
        "session {}: its browser's JS heap is {} MB, over [limits] js_heap_mb = {}",
        slot.id,
        bytes / (1024 * 1024),
        app.config.limits.js_heap_mb
    );
    if g.lease.is_none() {
        app.hibernate_locked(&slot, &mut g, "memory watch").await;
    } else if let Some(l) = g.live.as_mut()
        && l.save("memory watch").await.is_ok()
    {
        app.close_browser_locked(&slot, &mut g, true).await;
        if let Err(e) = app
            .ensure_live(&slot, &mut g, Instant::now() + Duration::from_secs(30))
            .await
        {
            tracing::warn!("session {}: recycling its browser failed: {e}", slot.id);
        }
    }
}

/// Graceful shutdown: capture and persist every live session (bounded by
/// `shutdown_seconds`), close the browsers and the pool.
pub async fn shutdown(app: &Arc<App>) {
    app.shutting_down.store(true, Ordering::SeqCst);
    let budget = Duration::from_secs(app.config.lifecycle.shutdown_seconds.max(1));
    let all = app.slots.all();
    let work = futures::future::join_all(all.iter().map(|slot| async move {
        let mut g = slot.inner.lock().await;
        g.lease = None;
        slot.set_lease_auth(None);
        app.hibernate_locked(slot, &mut g, "shutdown").await
    }));
    match tokio::time::timeout(budget, work).await {
        Ok(r) => {
            let failed = r.iter().filter(|ok| !**ok).count();
            tracing::info!(
                "shutdown: {} live sessions saved, {failed} failed",
                r.len() - failed
            );
        }
        Err(_) => tracing::warn!(
            "shutdown: saving live sessions took over {} s; the rest keep their last autosave",
            budget.as_secs()
        ),
    }
    // Browsers not closed above die with their handles.
    for slot in app.slots.all() {
        if let Ok(mut g) = slot.inner.try_lock()
            && let Some(l) = g.live.take()
        {
            l.close(false).await.ok();
        }
    }
    app.pool.close().await;
    // Everything saved above, into the durable tier before exit.
    if let Some(d) = &app.durable
        && tokio::time::timeout(budget, d.pass(app)).await.is_err()
    {
        tracing::warn!(
            "shutdown: the durable tier did not take every session within {} s; the local store holds them",
            budget.as_secs()
        );
    }
    app.audit.flush();
}
