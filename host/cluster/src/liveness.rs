//! Liveness, on each host's own monotonic clock:
//! - [`HostLease`]: this host's record `cluster/hosts/<id>`, created
//!   create-only and renewed by compare-and-swap every T/3. A renewal
//!   counts from the moment it was *sent*. Past 0.8 T without a good
//!   renewal the host is no longer serving (it must stop its browsers and
//!   refuse its sessions' commands), before anyone may judge it dead at
//!   1.5 T. A renewal that loses its compare-and-swap is read back: if
//!   the record is still this host's last version (a 409, a spurious 412)
//!   it is retried at the next tick; if another process replaced or
//!   removed the record, the host is demoted for good.
//! - [`Fleet`]: the other hosts as observed by listing `cluster/hosts/`
//!   (one request; listings carry ETags). A host is dead once its record
//!   has not changed for 1.5 T on the observer's clock, or has been absent
//!   that long. A host never seen before is given the full 1.5 T from the
//!   moment it is first noticed, so a freshly started observer takes over
//!   nothing early.
//!
//! This assumes clock *rates* differ by less than ~30 % over T; wall-clock
//! offsets, NTP steps and pauses do not matter for safety (fencing does).

use std::collections::HashMap;
use std::time::Duration;

use sesshost_store::{Backend, BackendError, Etag, Precondition};

use crate::bucket::{Outcome, list_with_etags, put_resolved, resolve_unknown};
use crate::clock::Clock;
use crate::records::{HOSTS, HostRecord, host_key, now_wall_ms};

/// Whether this host may act for its sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Serving,
    /// No good renewal for 0.8 T (it may recover when renewals succeed
    /// again, if nobody replaced the record).
    Lapsed,
    /// The record was replaced or removed by someone else: stop for good.
    Demoted,
}

pub struct HostLease {
    pub id: String,
    pub addr: String,
    pub ttl: Duration,
    etag: Option<Etag>,
    renewals: u64,
    last_good: Option<Duration>,
    last_try: Option<Duration>,
    demoted: bool,
}

impl HostLease {
    pub fn new(id: &str, addr: &str, ttl: Duration) -> HostLease {
        HostLease {
            id: id.to_string(),
            addr: addr.to_string(),
            ttl,
            etag: None,
            renewals: 0,
            last_good: None,
            last_try: None,
            demoted: false,
        }
    }

    fn record(&self, nonce: &str) -> Vec<u8> {
        serde_json::to_vec(&HostRecord {
            v: 1,
            host_id: self.id.clone(),
            addr: self.addr.clone(),
            renewals: self.renewals,
            renewed_at_ms: now_wall_ms(),
            nonce: nonce.to_string(),
        })
        .unwrap_or_default()
    }

    /// Write the record (create-only, or compare-and-swap of our last
    /// version). Returns the liveness after it.
    pub fn renew(&mut self, b: &dyn Backend, clock: &dyn Clock) -> Liveness {
        if self.demoted {
            return Liveness::Demoted;
        }
        let sent = clock.now();
        self.last_try = Some(sent);
        self.renewals += 1;
        let nonce = crate::nonce();
        let pre = match &self.etag {
            None => Precondition::IfAbsent,
            Some(e) => Precondition::IfMatch(e.clone()),
        };
        let key = host_key(&self.id);
        let mut outcome = put_resolved(b, &key, &self.record(&nonce), &pre, &nonce);
        if let Ok(Outcome::Lost) = outcome {
            // Only this host writes its record, so a lost renewal is
            // suspect (RGW answers 409 to a conditional write that merely
            // overlapped another request, and a 412 can be spurious): read
            // it back, and demote only if someone else's version is there.
            outcome = resolve_unknown(b, &key, &pre, &nonce);
        }
        match outcome {
            Ok(Outcome::Won(e)) => {
                self.etag = Some(e);
                self.last_good = Some(sent);
            }
            Ok(Outcome::Lost) => self.demoted = true,
            // Not applied, unreachable or undecided: try again at the next
            // tick; the 0.8 T bound keeps this safe.
            Ok(Outcome::NotApplied) | Err(_) => {}
        }
        self.liveness(clock.now())
    }

    /// Renew when T/3 has passed since the last attempt.
    pub fn tick(&mut self, b: &dyn Backend, clock: &dyn Clock) -> Liveness {
        let now = clock.now();
        if self
            .last_try
            .is_none_or(|t| now.saturating_sub(t) >= self.ttl / 3)
        {
            return self.renew(b, clock);
        }
        self.liveness(now)
    }

    pub fn liveness(&self, now: Duration) -> Liveness {
        if self.demoted {
            return Liveness::Demoted;
        }
        match self.last_good {
            Some(t) if now.saturating_sub(t) < self.ttl.mul_f64(0.8) => Liveness::Serving,
            _ => Liveness::Lapsed,
        }
    }

    pub fn serving(&self, now: Duration) -> bool {
        self.liveness(now) == Liveness::Serving
    }

    /// Until when (this host's clock) it may serve without another good
    /// renewal: 0.8 T after the last one; `None` if demoted or never
    /// renewed. For callers that must not wait on the lease's lock while
    /// a renewal is in flight.
    pub fn serving_until(&self) -> Option<Duration> {
        if self.demoted {
            return None;
        }
        self.last_good.map(|t| t + self.ttl.mul_f64(0.8))
    }
}

/// How old (in T) the last listing of the hosts may be when a host is
/// judged dead; older, the observer lists again first.
pub const STALE_OBSERVATION: f64 = 0.5;

/// The other hosts, as this host has observed them.
#[derive(Debug, Clone)]
pub struct Fleet {
    me: String,
    ttl: Duration,
    /// host → (its record's ETag, None if absent; when that was first seen).
    seen: HashMap<String, (Option<Etag>, Duration)>,
    /// When the last listing succeeded (this observer's clock).
    observed_at: Option<Duration>,
}

impl Fleet {
    pub fn new(me: &str, ttl: Duration) -> Fleet {
        Fleet {
            me: me.to_string(),
            ttl,
            seen: HashMap::new(),
            observed_at: None,
        }
    }

    /// List `cluster/hosts/` and note every change.
    pub fn observe(&mut self, b: &dyn Backend, clock: &dyn Clock) -> Result<(), BackendError> {
        let listed = Fleet::list(b)?;
        self.apply(listed, clock.now());
        Ok(())
    }

    /// The bucket half of [`Fleet::observe`]: the host records and their
    /// ETags. Callers that share a `Fleet` behind a lock list without
    /// holding it, then [`Fleet::apply`] (a lock held over a bucket call
    /// stalls every thread that wants it for as long as the bucket takes).
    pub fn list(b: &dyn Backend) -> Result<Vec<(String, Etag)>, BackendError> {
        list_with_etags(b, HOSTS)
    }

    /// The bookkeeping half of [`Fleet::observe`]: note a listing made
    /// just before `now`.
    pub fn apply(&mut self, listed: Vec<(String, Etag)>, now: Duration) {
        let mut present = std::collections::HashSet::new();
        for (key, etag) in listed {
            let Some(id) = key.strip_prefix(HOSTS) else {
                continue;
            };
            present.insert(id.to_string());
            self.note(id, Some(etag), now);
        }
        let absent: Vec<String> = self
            .seen
            .keys()
            .filter(|h| !present.contains(*h))
            .cloned()
            .collect();
        for h in absent {
            self.note(&h, None, now);
        }
        self.observed_at = Some(now);
    }

    fn note(&mut self, host: &str, etag: Option<Etag>, now: Duration) {
        match self.seen.get(host) {
            Some((e, _)) if *e == etag => {}
            _ => {
                self.seen.insert(host.to_string(), (etag, now));
            }
        }
    }

    /// Whether the last listing is older than `age` (or there was none):
    /// list again before judging anyone ([`Fleet::is_dead`] refuses to
    /// judge on a listing older than [`STALE_OBSERVATION`] of T).
    pub fn stale(&self, now: Duration, age: Duration) -> bool {
        self.observed_at.is_none_or(|t| now.saturating_sub(t) > age)
    }

    /// Take from `other` (a copy of this fleet that judged hosts on its
    /// own) the hosts this one has not seen, so that their 1.5 T keeps
    /// counting from when the copy first noticed them.
    pub fn merge_unseen(&mut self, other: &Fleet) {
        for (h, v) in &other.seen {
            self.seen.entry(h.clone()).or_insert_with(|| v.clone());
        }
    }

    /// Whether `host` is dead: its record unchanged (or absent) for 1.5 T
    /// of this observer's clock, as seen by a listing at most
    /// [`STALE_OBSERVATION`] × T old. A host not seen before starts its
    /// 1.5 T now. This host is never dead to itself.
    ///
    /// The freshness rule matters: an observer that itself stopped listing
    /// (its own task starved, its bucket calls slow) has seen no change
    /// because it did not look, not because the other host stopped
    /// renewing; without the rule it took a live host's sessions over.
    pub fn is_dead(&mut self, host: &str, now: Duration) -> bool {
        if host == self.me {
            return false;
        }
        if self.stale(now, self.ttl.mul_f64(STALE_OBSERVATION)) {
            return false;
        }
        let since = match self.seen.get(host) {
            Some((_, t)) => *t,
            None => {
                self.seen.insert(host.to_string(), (None, now));
                now
            }
        };
        now.saturating_sub(since) >= self.ttl.mul_f64(1.5)
    }

    /// Hosts whose records are present and not judged dead.
    pub fn alive(&mut self, now: Duration) -> Vec<String> {
        let hosts: Vec<String> = self
            .seen
            .iter()
            .filter(|(_, (e, _))| e.is_some())
            .map(|(h, _)| h.clone())
            .collect();
        let mut v: Vec<String> = hosts
            .into_iter()
            .filter(|h| !self.is_dead(h, now))
            .collect();
        v.sort();
        v
    }
}
