//! Garbage collection of the cluster's bucket: one host at a time, the
//! holder of `cluster/gc` (`sesshost_cluster::gclease`), runs the shared
//! repository's collection (`Store::gc_while`, STORE.md "Garbage
//! collection of a shared repository") every `lifecycle.gc_interval_seconds`
//! with a grace of `lifecycle.gc_grace_seconds`.
//!
//! The collection stops between two chunks as soon as this host stops
//! serving (0.8 T without a renewal: another host may take the lease after
//! 1.5 T) or shuts down; what it leaves is finished by the next collector,
//! which waits a grace first.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sesshost_cluster::gclease::{self, GcTurn};

use super::{Cluster, lock};
use crate::app::App;

/// What `/v1/cluster` shows of collection on this host.
#[derive(Debug, Default, Clone)]
pub(crate) struct GcView {
    /// This host's epoch of `cluster/gc`, while it holds it.
    pub epoch: Option<u64>,
    /// The holder another host is, when this host last asked.
    pub other: Option<String>,
    pub runs: u64,
    /// The last run's report (JSON) and when it ended (RFC 3339).
    pub last: Option<(Value, String)>,
}

impl Cluster {
    /// The collection task (spawned once at start).
    pub async fn collect(self: Arc<Self>, app: Arc<App>) {
        let every = Duration::from_secs(app.config.lifecycle.gc_interval_seconds.max(1));
        let grace = Duration::from_secs(app.config.lifecycle.gc_grace_seconds);
        loop {
            tokio::time::sleep(every).await;
            if app.is_shutting_down() {
                return;
            }
            if !self.serving() {
                continue;
            }
            let Some(epoch) = self.gc_turn().await else {
                continue;
            };
            let (c, a) = (self.clone(), app.clone());
            let go_on = move || c.serving() && !a.is_shutting_down();
            let r = self.tier.gc_while(grace, go_on).await;
            let result = match &r {
                Ok(rep) if rep.skipped.is_some() => "stopped",
                Ok(_) => "ok",
                Err(_) => "error",
            };
            app.metrics.cluster_gc_runs_total.inc(&[result]);
            let report = match r {
                Ok(rep) => {
                    app.metrics
                        .cluster_gc_chunks_deleted_total
                        .inc_by(rep.chunks_deleted);
                    tracing::info!(
                        "cluster: collected the bucket (epoch {epoch} of {}): {} chunks deleted, {} moved to the trash, {} put back, {} marked{}",
                        gclease::GC_LEASE,
                        rep.chunks_deleted,
                        rep.chunks_trashed,
                        rep.chunks_restored,
                        rep.chunks_marked,
                        rep.skipped
                            .as_deref()
                            .map(|s| format!("; {s}"))
                            .unwrap_or_default()
                    );
                    serde_json::to_value(&rep).unwrap_or(Value::Null)
                }
                Err(e) => {
                    tracing::warn!("cluster: collecting the bucket failed: {e}");
                    json!({ "error": e.to_string() })
                }
            };
            let mut v = lock(&self.gc);
            v.runs += 1;
            v.last = Some((report, crate::app::rfc3339(sesshost_store::now_ms())));
        }
    }

    /// Take (or keep) `cluster/gc`: `Some(epoch)` when it is this host's
    /// turn to collect.
    async fn gc_turn(self: &Arc<Self>) -> Option<u64> {
        let c = self.clone();
        let r = self
            .tier
            .with_backend(move |b| {
                let now = sesshost_cluster::Clock::now(&c.clock);
                gclease::take(b, &c.id, &mut |h| lock(&c.fleet).is_dead(h, now))
            })
            .await;
        let mut v = lock(&self.gc);
        match r {
            Ok(Ok(GcTurn::Mine { epoch, took_over })) => {
                if v.epoch != Some(epoch) {
                    match &took_over {
                        Some(dead) => tracing::info!(
                            "cluster: this host collects the bucket now (epoch {epoch}; taken from {dead}, judged dead)"
                        ),
                        None => tracing::info!(
                            "cluster: this host collects the bucket now (epoch {epoch})"
                        ),
                    }
                }
                v.epoch = Some(epoch);
                v.other = None;
                Some(epoch)
            }
            Ok(Ok(GcTurn::HeldBy { host, .. })) => {
                v.epoch = None;
                v.other = Some(host);
                None
            }
            Ok(Err(e)) => {
                tracing::debug!("cluster: cannot take {}: {e}", gclease::GC_LEASE);
                None
            }
            Err(e) => {
                tracing::debug!("cluster: cannot take {}: {e}", gclease::GC_LEASE);
                None
            }
        }
    }

    /// On SIGTERM: give `cluster/gc` up so another host collects next.
    pub(crate) async fn release_gc(self: &Arc<Self>) {
        let Some(epoch) = lock(&self.gc).epoch.take() else {
            return;
        };
        let c = self.clone();
        let _ = self
            .tier
            .with_backend(move |b| gclease::release(b, &c.id, epoch))
            .await;
    }

    /// `gc` of `GET /v1/cluster`.
    pub(crate) fn gc_json(&self) -> Value {
        let v = lock(&self.gc).clone();
        json!({
            "holder": match (&v.epoch, &v.other) {
                (Some(_), _) => Some(self.id.clone()),
                (None, o) => o.clone(),
            },
            "epoch": v.epoch,
            "runs": v.runs,
            "last_report": v.last.as_ref().map(|(r, _)| r.clone()),
            "last_run_at": v.last.as_ref().map(|(_, t)| t.clone()),
        })
    }
}
