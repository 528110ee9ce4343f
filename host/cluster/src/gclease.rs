//! The garbage-collection lease, `cluster/gc`: which one host collects the
//! shared repository (STORE.md, "Garbage collection of a shared
//! repository", needs one collector at a time).
//!
//! Taken like a session claim (absent → create with epoch 1; released, or
//! held by a host this host judges dead → compare-and-swap to us with
//! epoch + 1; held by a live host → its turn), but with no head to fence:
//! what protects the repository from a collector that lost the lease
//! while paused is that it stops at 0.8 T without a renewal (the service
//! asks `Cluster::serving` before every chunk it moves or deletes), and
//! another host takes the lease only after 1.5 T of unchanged record.
//! The holder keeps it while it lives and gives it up on SIGTERM.

use serde::{Deserialize, Serialize};
use sesshost_store::{Backend, Precondition};

use crate::ClaimError;
use crate::bucket::{Outcome, put_resolved};
use crate::claims::MAX_ROUNDS;

/// The lease's object name.
pub const GC_LEASE: &str = "cluster/gc";

/// `cluster/gc`: the collector and the epoch of its holding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcLeaseRecord {
    pub v: u32,
    /// The collecting host's id, or `null` (released).
    pub holder: Option<String>,
    /// +1 on every acquisition.
    pub epoch: u64,
    pub nonce: String,
}

/// Whose turn it is to collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcTurn {
    /// This host holds the lease at `epoch`; `took_over` names the dead
    /// host it was taken from.
    Mine {
        epoch: u64,
        took_over: Option<String>,
    },
    /// A live host holds it.
    HeldBy { host: String, epoch: u64 },
}

fn read(b: &dyn Backend) -> Result<Option<(GcLeaseRecord, sesshost_store::Etag)>, ClaimError> {
    match crate::bucket::read_with_etag(b, GC_LEASE)? {
        None => Ok(None),
        Some((bytes, etag)) => serde_json::from_slice(&bytes)
            .map(|r| Some((r, etag)))
            .map_err(|e| ClaimError::Corrupt {
                key: GC_LEASE.into(),
                detail: e.to_string(),
            }),
    }
}

fn write(
    b: &dyn Backend,
    holder: Option<&str>,
    epoch: u64,
    pre: &Precondition,
) -> Result<Outcome, ClaimError> {
    let nonce = crate::nonce();
    let rec = GcLeaseRecord {
        v: 1,
        holder: holder.map(str::to_string),
        epoch,
        nonce: nonce.clone(),
    };
    let body = serde_json::to_vec(&rec).map_err(|e| ClaimError::Corrupt {
        key: GC_LEASE.into(),
        detail: e.to_string(),
    })?;
    Ok(put_resolved(b, GC_LEASE, &body, pre, &nonce)?)
}

/// Take the lease for `me` if it is free or its holder is dead (see the
/// module doc); report the live holder otherwise.
/// `is_dead` judges a holder (the caller's fleet view: `Fleet::is_dead`
/// at its clock's now; asked between bucket calls, never over one).
pub fn take(
    b: &dyn Backend,
    me: &str,
    is_dead: &mut dyn FnMut(&str) -> bool,
) -> Result<GcTurn, ClaimError> {
    for _ in 0..MAX_ROUNDS {
        let cur = read(b)?;
        let (epoch, pre, took_over) = match &cur {
            None => (1, Precondition::IfAbsent, None),
            Some((r, etag)) => match &r.holder {
                Some(h) if h == me => {
                    return Ok(GcTurn::Mine {
                        epoch: r.epoch,
                        took_over: None,
                    });
                }
                Some(h) if !is_dead(h) => {
                    return Ok(GcTurn::HeldBy {
                        host: h.clone(),
                        epoch: r.epoch,
                    });
                }
                holder => (
                    r.epoch + 1,
                    Precondition::IfMatch(etag.clone()),
                    holder.clone(),
                ),
            },
        };
        if let Outcome::Won(_) = write(b, Some(me), epoch, &pre)? {
            return Ok(GcTurn::Mine { epoch, took_over });
        }
    }
    Err(ClaimError::Contended(GC_LEASE.into()))
}

/// Whether `me` still holds the lease at `epoch` (read from the bucket).
pub fn holds(b: &dyn Backend, me: &str, epoch: u64) -> Result<bool, ClaimError> {
    Ok(read(b)?.is_some_and(|(r, _)| r.holder.as_deref() == Some(me) && r.epoch == epoch))
}

/// Give the lease up (SIGTERM): the next host that wants to collect takes
/// it at once. Not ours any more → Ok (nothing to give).
pub fn release(b: &dyn Backend, me: &str, epoch: u64) -> Result<(), ClaimError> {
    for _ in 0..MAX_ROUNDS {
        let Some((r, etag)) = read(b)? else {
            return Ok(());
        };
        if r.holder.as_deref() != Some(me) || r.epoch != epoch {
            return Ok(());
        }
        if let Outcome::Won(_) = write(b, None, epoch, &Precondition::IfMatch(etag))? {
            return Ok(());
        }
    }
    Err(ClaimError::Contended(GC_LEASE.into()))
}
