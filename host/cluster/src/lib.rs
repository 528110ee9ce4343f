//! `sesshost-cluster`: how several `host run --cluster` processes share one
//! bucket safely, using nothing but the bucket's conditional writes
//! (`If-None-Match: *` create-only, `If-Match: ETag` compare-and-swap).
//! The design and the measurements behind it: `shared/research/
//! distributed.md`; the object layout: `format-spec/STORE.md` (cluster
//! objects).
//!
//! # Layout
//! - [`bucket`]: the protocol's use of a `sesshost_store` backend with
//!   atomic conditional writes: a conditional write whose unknown outcome
//!   is resolved by a nonce ([`bucket::put_resolved`]) and a listing with
//!   ETags ([`bucket::list_with_etags`]). Tests use
//!   `sesshost_store::backend::memory::MemoryBackend` (atomic, with
//!   fault injection).
//! - [`clock`]: the monotonic clock the protocol reads ([`Clock`]), and a
//!   [`clock::FakeClock`] tests move by hand.
//! - [`records`]: the JSON records: host, claim, head.
//! - [`liveness`]: a host's own record, renewed by compare-and-swap,
//!   self-demotion at 0.8 T ([`HostLease`]); the fleet as observed, a
//!   host judged dead after its record stayed unchanged for 1.5 T of the
//!   observer's own clock ([`Fleet`]).
//! - [`claims`]: acquire (create, take a released claim, or take over a
//!   dead holder's, the epoch rising each time), fence the head with the
//!   new epoch, commit by compare-and-swap of the head (refused once a
//!   higher epoch fenced it), release.
//! - [`view`]: the fleet as the bucket records it (hosts, claims, heads,
//!   the GC lease), read once, for `host session list --cluster`.
//! - [`gclease`]: `cluster/gc`, the lease that makes one host at a time
//!   the collector of the shared repository (taken like a claim, no head).
//!
//! # Safety argument, in one paragraph
//! Every acquisition raises the session's epoch and then writes the epoch
//! into the session head by compare-and-swap before the new owner reads
//! any state. Every commit is a compare-and-swap of the head that is
//! refused when the head's epoch is higher than the writer's. So a writer
//! from an older epoch — paused, partitioned, or with a wrong clock — can
//! never overwrite newer state. Clocks only decide *liveness* (when to
//! take over), and only as durations on each host's own monotonic clock.
//!
//! # What this crate does not do
//! It does no I/O of its own (callers pass a backend), starts no
//! threads, and owns no browser or session state: the service calls it
//! from its tasks and stores snapshots through the store.

pub mod bucket;
pub mod claims;
pub mod clock;
pub mod gclease;
pub mod liveness;
pub mod records;
pub mod view;

pub use claims::{Acquired, ClaimError, Claims};
pub use clock::Clock;
pub use liveness::{Fleet, HostLease, Liveness};

/// A fresh random nonce (128 bits, hex) that marks a write as ours.
pub fn nonce() -> String {
    let mut b = [0u8; 16];
    // getrandom fails only without an OS entropy source; a time-based
    // fallback still makes collisions between two writers improbable.
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        b = t.to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
