//! The fleet as the bucket records it, for `host session list --cluster`:
//! every host's liveness record, every session's claim and head, and the
//! GC lease. Read once, with no judgement of liveness (that needs 1.5 T of
//! watching, rule 1 of STORE.md): a host's last renewal time is its own
//! wall clock, shown for people.

use serde::Serialize;
use sesshost_store::{Backend, BackendError};

use crate::bucket::read_with_etag;
use crate::gclease::{GC_LEASE, GcLeaseRecord};
use crate::records::{CLAIMS, ClaimRecord, HEADS, HOSTS, HeadRecord, HostRecord};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionView {
    pub id: String,
    /// The host holding its live browser, or `None` (hibernated).
    pub holder: Option<String>,
    pub addr: Option<String>,
    /// Of the claim (the head's when there is no claim).
    pub epoch: u64,
    /// Commits on the head (0: fenced, nothing committed yet).
    pub commits: u64,
    /// The head's snapshot number, if any.
    pub snapshot: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetView {
    pub hosts: Vec<HostRecord>,
    pub sessions: Vec<SessionView>,
    /// Who collects the repository (`cluster/gc`), and at which epoch.
    pub gc: Option<GcLeaseRecord>,
    /// Objects under `cluster/` that did not parse (named, skipped).
    pub unreadable: Vec<String>,
}

fn read_all<T: serde::de::DeserializeOwned>(
    b: &dyn Backend,
    prefix: &str,
    bad: &mut Vec<String>,
) -> Result<Vec<(String, T)>, BackendError> {
    let mut keys = b.list(prefix)?;
    keys.sort();
    let mut out = Vec::new();
    for k in keys {
        let Some((bytes, _)) = read_with_etag(b, &k)? else {
            continue; // removed since the listing
        };
        match serde_json::from_slice::<T>(&bytes) {
            Ok(r) => out.push((k[prefix.len()..].to_string(), r)),
            Err(_) => bad.push(k),
        }
    }
    Ok(out)
}

/// Read the fleet from the bucket (one listing and one read per object).
pub fn read(b: &dyn Backend) -> Result<FleetView, BackendError> {
    let mut unreadable = Vec::new();
    let hosts = read_all::<HostRecord>(b, HOSTS, &mut unreadable)?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    let claims = read_all::<ClaimRecord>(b, CLAIMS, &mut unreadable)?;
    let heads: std::collections::BTreeMap<String, HeadRecord> =
        read_all::<HeadRecord>(b, HEADS, &mut unreadable)?
            .into_iter()
            .collect();
    let mut sessions: Vec<SessionView> = claims
        .into_iter()
        .map(|(id, c)| {
            let h = heads.get(&id);
            SessionView {
                holder: c.holder,
                addr: c.addr,
                epoch: c.epoch,
                commits: h.map_or(0, |h| h.seq),
                snapshot: h.and_then(|h| h.snapshot.clone()),
                id,
            }
        })
        .collect();
    for (id, h) in &heads {
        if !sessions.iter().any(|s| &s.id == id) {
            sessions.push(SessionView {
                id: id.clone(),
                holder: None,
                addr: None,
                epoch: h.epoch,
                commits: h.seq,
                snapshot: h.snapshot.clone(),
            });
        }
    }
    sessions.sort_by(|a, b| a.id.cmp(&b.id));
    let gc = match read_with_etag(b, GC_LEASE)? {
        None => None,
        Some((bytes, _)) => match serde_json::from_slice::<GcLeaseRecord>(&bytes) {
            Ok(r) => Some(r),
            Err(_) => {
                unreadable.push(GC_LEASE.to_string());
                None
            }
        },
    };
    Ok(FleetView {
        hosts,
        sessions,
        gc,
        unreadable,
    })
}
