//! `GET /v1/sessions` with `--cluster`: the whole fleet's sessions, who
//! holds each and at which epoch.
//!
//! A list first brings this host's catalog in line with the bucket: one
//! LIST of `cluster/heads/` names every session of the fleet; a session
//! made on another host is read through (at most
//! [`MAX_READ_THROUGH_PER_LIST`] per call, so one list stays bounded; the
//! rest follow on the next), and one this host had committed or refreshed
//! whose head is gone was deleted elsewhere and is dropped here. One LIST
//! of `cluster/claims/` with ETags then gives every holder; only claims
//! whose ETag changed since the last list are read (cached per session),
//! so a steady fleet costs two LISTs a list.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};
use sesshost_cluster::Claims;
use sesshost_cluster::bucket::list_with_etags;
use sesshost_cluster::records::{CLAIMS, HEADS};
use sesshost_store::Etag;

use super::{Cluster, lock};
use crate::app::App;

/// Sessions made elsewhere that one list reads through, at most.
pub const MAX_READ_THROUGH_PER_LIST: usize = 32;

/// A cached claim: its ETag, holder and address, epoch.
pub(crate) type CachedClaim = (Etag, Option<String>, Option<String>, u64);

impl Cluster {
    /// Sync the catalog with the bucket (above) and return, per session
    /// id, its `holder` ({host_id, addr} or null) and `epoch`. A bucket
    /// that does not answer leaves the catalog as it is and returns the
    /// holders this host knows (its own).
    pub async fn fleet_view(self: &Arc<Self>, app: &Arc<App>) -> HashMap<String, (Value, Value)> {
        let listed = self
            .tier
            .with_backend(|b| -> Result<_, sesshost_store::BackendError> {
                Ok((list_with_etags(b, HEADS)?, list_with_etags(b, CLAIMS)?))
            })
            .await;
        let (heads, claims) = match listed {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::debug!("cluster: cannot list the fleet's sessions: {e}");
                return self.own_holders();
            }
            Err(e) => {
                tracing::debug!("cluster: cannot list the fleet's sessions: {e}");
                return self.own_holders();
            }
        };
        let in_bucket: HashSet<String> = heads
            .iter()
            .filter_map(|(k, _)| k.strip_prefix(HEADS))
            .map(str::to_string)
            .collect();
        let missing: Vec<String> = in_bucket
            .iter()
            .filter(|id| app.catalog.get(id).is_none())
            .take(MAX_READ_THROUGH_PER_LIST)
            .cloned()
            .collect();
        for id in missing {
            if let Err(e) = self.refresh(app, &id).await {
                tracing::debug!("cluster: session {id}: read-through for a list: {e:?}");
            }
        }
        for rec in app.catalog.all() {
            if !in_bucket.contains(&rec.id) && !self.holds(&rec.id) {
                // Dropped only if this host had it from the bucket.
                self.forget_local(app, &rec.id).await;
            }
        }
        self.update_claims(claims).await;
        let mut out = self.own_holders();
        for (id, (_, holder, addr, epoch)) in lock(&self.claims_seen).iter() {
            if out.contains_key(id) {
                continue;
            }
            let h = match holder {
                Some(h) => json!({ "host_id": h, "addr": addr }),
                None => Value::Null,
            };
            out.insert(id.clone(), (h, json!(epoch)));
        }
        out
    }

    /// The sessions this host holds, with its epochs.
    fn own_holders(&self) -> HashMap<String, (Value, Value)> {
        lock(&self.local)
            .held
            .iter()
            .map(|(id, e)| {
                (
                    id.clone(),
                    (json!({ "host_id": self.id, "addr": self.addr }), json!(e)),
                )
            })
            .collect()
    }

    /// Read the claims whose ETag changed since the last list.
    async fn update_claims(self: &Arc<Self>, listed: Vec<(String, Etag)>) {
        let listed: HashMap<String, Etag> = listed
            .into_iter()
            .filter_map(|(k, e)| k.strip_prefix(CLAIMS).map(|id| (id.to_string(), e)))
            .collect();
        let stale: Vec<String> = {
            let seen = lock(&self.claims_seen);
            listed
                .iter()
                .filter(|(id, e)| seen.get(*id).is_none_or(|c| &c.0 != *e))
                .map(|(id, _)| id.clone())
                .collect()
        };
        let c = self.clone();
        let read = self
            .tier
            .with_backend(move |b| {
                let claims = Claims::new(b, &c.id, &c.addr);
                stale
                    .into_iter()
                    .filter_map(|id| match claims.claim_with_etag(&id) {
                        Ok(Some((cl, etag))) => Some((id, (etag, cl.holder, cl.addr, cl.epoch))),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default();
        let mut seen = lock(&self.claims_seen);
        seen.retain(|id, _| listed.contains_key(id));
        seen.extend(read);
    }
}
