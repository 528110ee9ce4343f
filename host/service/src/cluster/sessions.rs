//! One session in the cluster: claim it (the epoch rises, the head is
//! fenced), refresh the local copy from the committed head, commit
//! (snapshot create-only, then the head by compare-and-swap, refused once
//! a newer epoch fenced it), release the claim, publish a new session,
//! delete one.
//!
//! A commit that is refused as fenced means another host took the session
//! over while this one was paused or cut off: this host logs it, closes its
//! Chromium for the session without saving, and forgets its local copy.

use std::sync::Arc;

use sesshost_cluster::clock::Clock;
use sesshost_cluster::records::{claim_key, head_key};
use sesshost_cluster::{Acquired, ClaimError, Claims};

use super::{Cluster, lock};
use crate::api::ApiError;
use crate::app::App;
use crate::durable::{remote_copy, split_remote_copy, version_of};

/// Where a session is, as seen from this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// This host holds its claim (and has refreshed its local copy).
    Mine,
    /// Another live host holds it.
    Elsewhere {
        host: String,
        addr: String,
        epoch: u64,
    },
    /// The bucket has no such session.
    Missing,
}

fn bucket_error(id: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(
        "bucket_unavailable",
        format!("session {id}: the cluster's bucket did not answer ({e}); retry shortly"),
        2,
    )
}

fn claim_error(id: &str, e: ClaimError) -> ApiError {
    match e {
        ClaimError::Fenced { .. } => ApiError::conflict("fenced", e.to_string()),
        ClaimError::Contended(_) => ApiError::unavailable("contended", e.to_string(), 1),
        other => bucket_error(id, other),
    }
}

/// Close the session's browser here without saving (fenced, or the lease
/// lapsed).
pub async fn close_local(app: &Arc<App>, id: &str) {
    if let Some(slot) = app.slots.get(id) {
        let mut g = slot.inner.lock().await;
        g.lease = None;
        slot.set_lease_auth(None);
        app.close_browser_locked(&slot, &mut g, false).await;
    }
}

impl Cluster {
    /// Make this host the session's holder (see the module doc), then
    /// bring the local copy up to the committed head. `create`: the
    /// session is new (made here, not yet in the bucket).
    pub async fn take(
        self: &Arc<Self>,
        app: &Arc<App>,
        id: &str,
        create: bool,
    ) -> Result<Place, ApiError> {
        if !self.serving() {
            return Err(not_serving());
        }
        let _g = self.session_lock(id).await;
        if self.holds(id) {
            return Ok(Place::Mine);
        }
        let (c, sid) = (self.clone(), id.to_string());
        let got = self
            .tier
            .with_backend(move |b| -> Result<Option<Acquired>, ClaimError> {
                let claims = Claims::new(b, &c.id, &c.addr);
                if !create && claims.claim(&sid)?.is_none() && claims.head(&sid)?.is_none() {
                    return Ok(None);
                }
                if lock(&c.fleet).stale(c.clock.now(), c.ttl / 6) {
                    // Judge the holder on a fresh listing (Fleet::is_dead).
                    let _ = c.observe_with(b);
                }
                // On a copy: the acquisition's bucket calls must not run
                // under the fleet's lock, which request paths take.
                let mut fleet = lock(&c.fleet).clone();
                let r = claims.acquire(&mut fleet, &sid, c.clock.now());
                lock(&c.fleet).merge_unseen(&fleet);
                r.map(Some)
            })
            .await
            .map_err(|e| bucket_error(id, e))?
            .map_err(|e| claim_error(id, e))?;
        match got {
            None => {
                self.forget_local(app, id).await;
                Ok(Place::Missing)
            }
            Some(Acquired::HeldBy { host, addr, epoch }) => {
                let addr = addr.unwrap_or_default();
                lock(&self.local).holders.insert(
                    id.to_string(),
                    (host.clone(), addr.clone(), epoch, std::time::Instant::now()),
                );
                Ok(Place::Elsewhere { host, addr, epoch })
            }
            Some(Acquired::Mine { epoch, took_over }) => {
                {
                    let mut l = lock(&self.local);
                    l.held.insert(id.to_string(), epoch);
                    l.holders.remove(id);
                    l.orphaned.remove(id);
                }
                if let Some(dead) = took_over {
                    app.metrics.cluster_takeovers_total.inc();
                    tracing::warn!(
                        "cluster: session {id}: taken over from host {dead}, judged dead (epoch {epoch})"
                    );
                }
                if !create && let Err(e) = self.refresh_locked(app, id).await {
                    // Not restorable here now: give the claim back so
                    // another host (or a retry) can.
                    drop(_g);
                    release_claim(self, app, id, true).await;
                    return Err(e);
                }
                Ok(Place::Mine)
            }
        }
    }

    /// Bring the local copy of `id` to the committed head (no claim
    /// needed: reads of a session nobody holds).
    pub async fn refresh(self: &Arc<Self>, app: &Arc<App>, id: &str) -> Result<bool, ApiError> {
        let _g = self.session_lock(id).await;
        self.refresh_locked(app, id).await
    }

    /// The session's head in the bucket (`None`: no such session).
    async fn read_head(
        self: &Arc<Self>,
        id: &str,
    ) -> Result<Option<sesshost_cluster::records::HeadRecord>, ApiError> {
        let (c, sid) = (self.clone(), id.to_string());
        self.tier
            .with_backend(move |b| Claims::new(b, &c.id, &c.addr).head(&sid))
            .await
            .map_err(|e| bucket_error(id, e))?
            .map_err(|e| claim_error(id, e))
    }

    /// `Ok(false)`: the bucket has no head for `id`.
    async fn refresh_locked(self: &Arc<Self>, app: &Arc<App>, id: &str) -> Result<bool, ApiError> {
        if app.slots.get(id).is_some_and(|s| s.is_live()) && self.holds(id) {
            return Ok(true); // our live browser is newer than any commit
        }
        let Some(head) = self.read_head(id).await? else {
            return Ok(false);
        };
        let Some(seq) = head.snapshot.as_deref().and_then(|s| s.parse::<u64>().ok()) else {
            return Ok(true); // fenced, nothing committed yet
        };
        if lock(&self.local).synced.get(id) == Some(&seq) && app.catalog.get(id).is_some() {
            return Ok(true);
        }
        let mut state = self
            .tier
            .get_exact(id, seq)
            .await
            .map_err(|e| bucket_error(id, e))?;
        let rec = split_remote_copy(&mut state, id, sesshost_store::now_ms());
        let stored = if app.engine.show(id).await.is_ok() {
            app.engine.replace_state(id, state).await
        } else {
            app.engine.adopt_state(id, state).await
        };
        stored.map_err(|e| {
            ApiError::internal(format!(
                "session {id}: cannot store the committed state locally: {e}"
            ))
        })?;
        app.catalog
            .put(rec.clone())
            .map_err(|e| ApiError::internal(format!("cannot write the catalog: {e}")))?;
        let version = app.engine.show(id).await.ok().map(|i| version_of(&i, &rec));
        let mut l = lock(&self.local);
        l.synced.insert(id.to_string(), seq);
        if let Some(v) = version {
            l.committed.insert(id.to_string(), v);
        }
        tracing::debug!("cluster: session {id}: local copy refreshed to snapshot {seq}");
        Ok(true)
    }

    /// Commit the local state of `id` if it changed since the last commit
    /// (held sessions only; Ok for others). Ok = acknowledged: the head
    /// names it.
    pub async fn commit(self: &Arc<Self>, app: &Arc<App>, id: &str) -> Result<(), ApiError> {
        let _g = self.session_lock(id).await;
        self.commit_locked(app, id).await
    }

    async fn commit_locked(self: &Arc<Self>, app: &Arc<App>, id: &str) -> Result<(), ApiError> {
        let Some(epoch) = lock(&self.local).held.get(id).copied() else {
            return Ok(());
        };
        let (Some(rec), Ok(info)) = (app.catalog.get(id), app.engine.show(id).await) else {
            return Ok(()); // deleted here meanwhile
        };
        let version = version_of(&info, &rec);
        if lock(&self.local).committed.get(id) == Some(&version) {
            return Ok(());
        }
        let state = remote_copy(app, id, &info, &rec).await.map_err(|e| {
            ApiError::internal(format!("session {id}: cannot read it to commit: {e}"))
        })?;
        let t0 = std::time::Instant::now();
        for _ in 0..8 {
            let Some(head) = self.read_head(id).await? else {
                return Err(self.fenced(app, id, epoch, 0, "its head is gone (deleted elsewhere)"));
            };
            if head.epoch > epoch {
                return Err(self.fenced(app, id, epoch, head.epoch, "a newer epoch fenced it"));
            }
            let base = head
                .snapshot
                .as_deref()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
            let synced = lock(&self.local).synced.get(id).copied().unwrap_or(0);
            let seq = base.max(synced) + 1;
            let wrote = self
                .tier
                .put_exact(id, state.clone(), seq)
                .await
                .map_err(|e| bucket_error(id, e))?;
            if wrote.is_none() {
                // A stale writer took the number: leave it and go on.
                lock(&self.local).synced.insert(id.to_string(), seq);
                continue;
            }
            let (c, sid) = (self.clone(), id.to_string());
            let r = self
                .tier
                .with_backend(move |b| {
                    Claims::new(b, &c.id, &c.addr).commit(&sid, epoch, &seq.to_string())
                })
                .await
                .map_err(|e| bucket_error(id, e))?;
            match r {
                Ok(_) => {
                    let mut l = lock(&self.local);
                    l.synced.insert(id.to_string(), seq);
                    l.committed.insert(id.to_string(), version);
                    drop(l);
                    app.metrics.cluster_commits_total.inc(&["ok"]);
                    app.metrics
                        .plugin_call_seconds
                        .observe(&["cluster", "commit"], t0.elapsed().as_secs_f64());
                    return Ok(());
                }
                Err(ClaimError::Fenced { current, .. }) => {
                    return Err(self.fenced(app, id, epoch, current, "a newer epoch fenced it"));
                }
                Err(e) => {
                    app.metrics.cluster_commits_total.inc(&["error"]);
                    return Err(claim_error(id, e));
                }
            }
        }
        app.metrics.cluster_commits_total.inc(&["error"]);
        Err(ApiError::unavailable(
            "contended",
            format!("session {id}: every snapshot number tried was taken; retry"),
            1,
        ))
    }

    /// A refused commit: log, close the browser here, forget the claim.
    fn fenced(
        self: &Arc<Self>,
        app: &Arc<App>,
        id: &str,
        mine: u64,
        current: u64,
        why: &str,
    ) -> ApiError {
        app.metrics.cluster_commits_total.inc(&["fenced"]);
        tracing::warn!(
            "cluster: session {id}: commit fenced ({why}; this host's epoch {mine}, the session's {current}): another host took it over; closing its Chromium here"
        );
        {
            let mut l = lock(&self.local);
            l.held.remove(id);
            l.synced.remove(id);
            l.committed.remove(id);
        }
        let (app, sid) = (app.clone(), id.to_string());
        tokio::spawn(async move { close_local(&app, &sid).await });
        ApiError::conflict(
            "fenced",
            format!(
                "session {id} was taken over by another host (epoch {current} > {mine}); this host's state for it was not committed: acquire it again"
            ),
        )
    }

    /// Check every held claim is still this host's (after a pause or a
    /// lapse); close the browsers of those taken over, release orphaned
    /// claims still ours.
    pub(crate) async fn verify_held(self: &Arc<Self>, app: &Arc<App>) {
        let held: Vec<(String, u64)> = lock(&self.local)
            .held
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        for (id, epoch) in held {
            let (c, sid) = (self.clone(), id.clone());
            let claim = self
                .tier
                .with_backend(move |b| Claims::new(b, &c.id, &c.addr).claim(&sid))
                .await;
            let ours = match &claim {
                Ok(Ok(Some(cl))) => {
                    cl.holder.as_deref() == Some(self.id.as_str()) && cl.epoch == epoch
                }
                Ok(Ok(None)) => false,
                _ => continue, // unknown: the next commit decides
            };
            let orphaned = lock(&self.local).orphaned.contains(&id);
            if !ours {
                let current = match claim {
                    Ok(Ok(Some(cl))) => cl.epoch,
                    _ => 0,
                };
                let _ = self.fenced(
                    app,
                    &id,
                    epoch,
                    current,
                    "its claim was taken while this host was away",
                );
            } else if orphaned {
                release_claim(self, app, &id, true).await;
            }
        }
        lock(&self.local).orphaned.clear();
    }

    /// A new session made here: claim it (epoch 1), commit, release
    /// unless it is live.
    pub async fn publish(self: &Arc<Self>, app: &Arc<App>, id: &str) -> Result<(), ApiError> {
        self.take(app, id, true).await?;
        let r = self.commit(app, id).await;
        release_claim(self, app, id, false).await;
        r
    }

    /// Remove `id` from the bucket (its repository copy, head and claim);
    /// the caller holds the claim and has deleted the local copy.
    pub async fn forget(self: &Arc<Self>, id: &str) -> Result<(), ApiError> {
        let _g = self.session_lock(id).await;
        self.tier
            .remove(id)
            .await
            .map_err(|e| bucket_error(id, e))?;
        let (hk, ck) = (head_key(id), claim_key(id));
        self.tier
            .with_backend(move |b| {
                b.delete(&hk)?;
                b.delete(&ck)
            })
            .await
            .map_err(|e| bucket_error(id, e))?
            .map_err(|e| bucket_error(id, e))?;
        let mut l = lock(&self.local);
        l.held.remove(id);
        l.synced.remove(id);
        l.committed.remove(id);
        Ok(())
    }

    /// The bucket has no such session: drop a stale local copy (deleted
    /// by another host).
    pub(crate) async fn forget_local(&self, app: &Arc<App>, id: &str) {
        let was_synced = lock(&self.local).synced.remove(id).is_some();
        if was_synced && app.catalog.get(id).is_some() {
            close_local(app, id).await;
            let _ = app.engine.delete(id).await;
            let _ = app.catalog.remove(id);
            app.slots.remove(id);
            tracing::info!("cluster: session {id} was deleted by another host; local copy removed");
        }
    }

    pub(crate) fn begin(&self, id: &str) {
        *lock(&self.local)
            .inflight
            .entry(id.to_string())
            .or_default() += 1;
    }

    pub(crate) fn end(&self, id: &str) -> bool {
        let mut l = lock(&self.local);
        let n = l.inflight.entry(id.to_string()).or_default();
        *n = n.saturating_sub(1);
        let idle = *n == 0;
        if idle {
            l.inflight.remove(id);
        }
        idle
    }
}

/// Give up the claim of `id` when nothing here needs it (no live browser,
/// no request running on it; `force` skips the request count). Errors are
/// logged: the claim then lapses with this host's lease.
pub async fn release_claim(c: &Arc<Cluster>, app: &Arc<App>, id: &str, force: bool) {
    let _g = c.session_lock(id).await;
    if app.slots.get(id).is_some_and(|s| s.is_live()) {
        return;
    }
    let epoch = {
        let l = lock(&c.local);
        if !force && l.inflight.get(id).is_some_and(|n| *n > 0) {
            return;
        }
        match l.held.get(id) {
            Some(e) => *e,
            None => return,
        }
    };
    let (c2, sid) = (c.clone(), id.to_string());
    let r = c
        .tier
        .with_backend(move |b| Claims::new(b, &c2.id, &c2.addr).release(&sid, epoch))
        .await;
    lock(&c.local).held.remove(id);
    match r {
        Ok(Ok(())) => tracing::debug!("cluster: session {id}: claim released (epoch {epoch})"),
        Ok(Err(e)) => tracing::warn!("cluster: session {id}: releasing the claim: {e}"),
        Err(e) => tracing::warn!("cluster: session {id}: releasing the claim: {e}"),
    }
}

pub(crate) fn not_serving() -> ApiError {
    ApiError::unavailable(
        "not_serving",
        "this host lost contact with the cluster's bucket (its lease lapsed) and serves no session now; retry on another host",
        2,
    )
}
