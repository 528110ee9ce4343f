//! Per-session claims and the fenced head (research: distributed.md §3).
//!
//! - **Acquire** (any host, for any session): read `cluster/claims/<S>`.
//!   Absent → create it with epoch 1. Released, or held by a host this
//!   host judges dead → compare-and-swap it to us with epoch + 1. Held by
//!   a live host → [`Acquired::HeldBy`] (the caller proxies to it).
//! - **Fence**, right after winning a claim and before reading any state:
//!   compare-and-swap `cluster/heads/<S>` to our epoch, keeping its
//!   snapshot. From then on every writer with a smaller epoch fails.
//! - **Commit**: the snapshot object is written first (create-only, under a
//!   unique name, by the caller); then the head is compare-and-swapped to
//!   it, refused with [`ClaimError::Fenced`] when the head's epoch is
//!   higher than ours. A commit is acknowledged only when this returns Ok.
//! - **Release**: commit first, then compare-and-swap the claim to
//!   `holder: null`, so the next acquire anywhere needs no wait.
//!
//! Every write carries a fresh nonce; 5xx and timeouts are resolved by
//! reading back ([`crate::bucket::put_resolved`]); 409 and lost races are
//! retried after a re-read, at most [`MAX_ROUNDS`] times.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use sesshost_store::{Backend, BackendError, Etag, Precondition};

use crate::bucket::{Outcome, put_resolved};
use crate::liveness::Fleet;
use crate::records::{ClaimRecord, HeadRecord, claim_key, head_key};

/// Rounds of re-read and retry before giving up on a contended key.
pub const MAX_ROUNDS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// This host holds the session at `epoch` and has fenced its head.
    /// `took_over` names the dead host it was taken from.
    Mine {
        epoch: u64,
        took_over: Option<String>,
    },
    /// A live host holds it: send the request there.
    HeldBy {
        host: String,
        addr: Option<String>,
        epoch: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// A newer epoch owns the session: this host's view is stale. Stop its
    /// browser for the session and do not retry.
    #[error(
        "session {session}: fenced (this host's epoch {mine}, the session's {current}); another host took it over"
    )]
    Fenced {
        session: String,
        mine: u64,
        current: u64,
    },
    /// The key kept changing under us for [`MAX_ROUNDS`] rounds.
    #[error("session {0}: too many concurrent changes; retry shortly")]
    Contended(String),
    /// An object in the bucket is not a record this version understands.
    #[error(
        "{key} in the bucket is not a valid record ({detail}); was it written by another program?"
    )]
    Corrupt { key: String, detail: String },
    /// The commit's session has no head: it was never fenced.
    #[error("session {0} has no head: acquire it before committing")]
    NotFenced(String),
    #[error("bucket: {0}")]
    Bucket(#[from] BackendError),
}

/// The claim operations of one host.
pub struct Claims<'a> {
    b: &'a dyn Backend,
    me: &'a str,
    addr: &'a str,
}

fn read<T: DeserializeOwned>(b: &dyn Backend, key: &str) -> Result<Option<(T, Etag)>, ClaimError> {
    match crate::bucket::read_with_etag(b, key)? {
        None => Ok(None),
        Some((bytes, etag)) => serde_json::from_slice(&bytes)
            .map(|r| Some((r, etag)))
            .map_err(|e| ClaimError::Corrupt {
                key: key.to_string(),
                detail: e.to_string(),
            }),
    }
}

fn write<T: Serialize>(
    b: &dyn Backend,
    key: &str,
    rec: &T,
    pre: &Precondition,
    nonce: &str,
) -> Result<Outcome, ClaimError> {
    let body = serde_json::to_vec(rec).map_err(|e| ClaimError::Corrupt {
        key: key.to_string(),
        detail: e.to_string(),
    })?;
    Ok(put_resolved(b, key, &body, pre, nonce)?)
}

impl<'a> Claims<'a> {
    pub fn new(b: &'a dyn Backend, me: &'a str, addr: &'a str) -> Claims<'a> {
        Claims { b, me, addr }
    }

    pub fn claim(&self, session: &str) -> Result<Option<ClaimRecord>, ClaimError> {
        Ok(read::<ClaimRecord>(self.b, &claim_key(session))?.map(|(c, _)| c))
    }

    /// [`Claims::claim`] with the ETag it was read at (a cache of claims
    /// re-reads only those whose listed ETag changed).
    pub fn claim_with_etag(
        &self,
        session: &str,
    ) -> Result<Option<(ClaimRecord, Etag)>, ClaimError> {
        read::<ClaimRecord>(self.b, &claim_key(session))
    }

    pub fn head(&self, session: &str) -> Result<Option<HeadRecord>, ClaimError> {
        Ok(read::<HeadRecord>(self.b, &head_key(session))?.map(|(h, _)| h))
    }

    /// Acquire `session` for this host (see the module doc).
    pub fn acquire(
        &self,
        fleet: &mut Fleet,
        session: &str,
        now: Duration,
    ) -> Result<Acquired, ClaimError> {
        let key = claim_key(session);
        for _ in 0..MAX_ROUNDS {
            let cur = read::<ClaimRecord>(self.b, &key)?;
            let (epoch, pre, took_over) = match &cur {
                None => (1, Precondition::IfAbsent, None),
                Some((c, etag)) => match &c.holder {
                    Some(h) if h == self.me => {
                        self.fence(session, c.epoch)?;
                        return Ok(Acquired::Mine {
                            epoch: c.epoch,
                            took_over: None,
                        });
                    }
                    Some(h) if !fleet.is_dead(h, now) => {
                        return Ok(Acquired::HeldBy {
                            host: h.clone(),
                            addr: c.addr.clone(),
                            epoch: c.epoch,
                        });
                    }
                    holder => (
                        c.epoch + 1,
                        Precondition::IfMatch(etag.clone()),
                        holder.clone(),
                    ),
                },
            };
            let nonce = crate::nonce();
            let rec = ClaimRecord {
                v: 1,
                session: session.to_string(),
                holder: Some(self.me.to_string()),
                addr: Some(self.addr.to_string()),
                epoch,
                nonce: nonce.clone(),
            };
            if let Outcome::Won(_) = write(self.b, &key, &rec, &pre, &nonce)? {
                self.fence(session, epoch)?;
                return Ok(Acquired::Mine { epoch, took_over });
            }
        }
        Err(ClaimError::Contended(session.to_string()))
    }

    /// Raise the head's epoch to `epoch`, keeping its snapshot; refused if
    /// it is already higher.
    pub fn fence(&self, session: &str, epoch: u64) -> Result<(), ClaimError> {
        let key = head_key(session);
        for _ in 0..MAX_ROUNDS {
            let cur = read::<HeadRecord>(self.b, &key)?;
            let nonce = crate::nonce();
            let (rec, pre) = match cur {
                None => (
                    HeadRecord {
                        v: 1,
                        session: session.to_string(),
                        epoch,
                        seq: 0,
                        snapshot: None,
                        prev: None,
                        nonce: nonce.clone(),
                    },
                    Precondition::IfAbsent,
                ),
                Some((h, _)) if h.epoch > epoch => {
                    return Err(ClaimError::Fenced {
                        session: session.to_string(),
                        mine: epoch,
                        current: h.epoch,
                    });
                }
                Some((h, _)) if h.epoch == epoch => return Ok(()),
                Some((h, etag)) => (
                    HeadRecord {
                        epoch,
                        nonce: nonce.clone(),
                        ..h
                    },
                    Precondition::IfMatch(etag),
                ),
            };
            if let Outcome::Won(_) = write(self.b, &key, &rec, &pre, &nonce)? {
                return Ok(());
            }
        }
        Err(ClaimError::Contended(session.to_string()))
    }

    /// Make `snapshot` (already written) the session's head, as the holder
    /// of `epoch`. Ok = acknowledged: it is on the session's chain for good.
    pub fn commit(
        &self,
        session: &str,
        epoch: u64,
        snapshot: &str,
    ) -> Result<HeadRecord, ClaimError> {
        let key = head_key(session);
        for _ in 0..MAX_ROUNDS {
            let Some((h, etag)) = read::<HeadRecord>(self.b, &key)? else {
                return Err(ClaimError::NotFenced(session.to_string()));
            };
            if h.epoch > epoch {
                return Err(ClaimError::Fenced {
                    session: session.to_string(),
                    mine: epoch,
                    current: h.epoch,
                });
            }
            let nonce = crate::nonce();
            let rec = HeadRecord {
                v: 1,
                session: session.to_string(),
                epoch,
                seq: h.seq + 1,
                snapshot: Some(snapshot.to_string()),
                prev: h.snapshot.clone(),
                nonce: nonce.clone(),
            };
            if let Outcome::Won(_) =
                write(self.b, &key, &rec, &Precondition::IfMatch(etag), &nonce)?
            {
                return Ok(rec);
            }
        }
        Err(ClaimError::Contended(session.to_string()))
    }

    /// Give the session up (after the final commit): any host may acquire
    /// it at once.
    pub fn release(&self, session: &str, epoch: u64) -> Result<(), ClaimError> {
        let key = claim_key(session);
        for _ in 0..MAX_ROUNDS {
            let Some((c, etag)) = read::<ClaimRecord>(self.b, &key)? else {
                return Ok(());
            };
            if c.holder.as_deref() != Some(self.me) || c.epoch != epoch {
                return Err(ClaimError::Fenced {
                    session: session.to_string(),
                    mine: epoch,
                    current: c.epoch,
                });
            }
            let nonce = crate::nonce();
            let rec = ClaimRecord {
                holder: None,
                addr: None,
                nonce: nonce.clone(),
                ..c
            };
            if let Outcome::Won(_) =
                write(self.b, &key, &rec, &Precondition::IfMatch(etag), &nonce)?
            {
                return Ok(());
            }
        }
        Err(ClaimError::Contended(session.to_string()))
    }
}
