//! The protocol against an atomic in-memory bucket and a fake clock:
//! takeover after 1.5 T, self-demotion at 0.8 T, a stale commit after a
//! pause is fenced, 412 / 409 / 500 / timeout on each write resolved
//! correctly, release → immediate acquire elsewhere.

use std::time::Duration;

use sesshost_cluster::clock::FakeClock;
use sesshost_cluster::records::{CLAIMS, HEADS, HOSTS};
use sesshost_cluster::{Acquired, ClaimError, Claims, Fleet, HostLease, Liveness};
use sesshost_store::Backend;
use sesshost_store::backend::memory::{Fault, MemoryBackend};

const T: Duration = Duration::from_secs(15);

struct Host {
    lease: HostLease,
    fleet: Fleet,
}

impl Host {
    fn new(id: &str, b: &MemoryBackend, c: &FakeClock) -> Host {
        Host::new_on(id, b, c)
    }
    fn new_on(id: &str, b: &dyn Backend, c: &FakeClock) -> Host {
        let mut lease = HostLease::new(id, &format!("http://{id}:8080"), T);
        assert_eq!(lease.renew(b, c), Liveness::Serving);
        Host {
            lease,
            fleet: Fleet::new(id, T),
        }
    }
    fn claims<'a>(&'a self, b: &'a MemoryBackend) -> Claims<'a> {
        Claims::new(b, &self.lease.id, &self.lease.addr)
    }
    fn acquire(&mut self, b: &MemoryBackend, c: &FakeClock, s: &str) -> Acquired {
        self.acquire_on(b, c, s)
    }
    fn acquire_on(&mut self, b: &dyn Backend, c: &FakeClock, s: &str) -> Acquired {
        self.fleet.observe(b, c).unwrap();
        Claims::new(b, &self.lease.id, &self.lease.addr)
            .acquire(&mut self.fleet, s, sesshost_cluster::Clock::now(c))
            .unwrap()
    }
}

fn mine(epoch: u64) -> Acquired {
    Acquired::Mine {
        epoch,
        took_over: None,
    }
}

#[test]
fn a_dead_holder_is_taken_over_after_one_and_a_half_ttl_and_not_before() {
    let (b, c) = (MemoryBackend::default(), FakeClock::default());
    let mut a = Host::new("a", &b, &c);
    let mut h = Host::new("b", &b, &c);
    assert_eq!(a.acquire(&b, &c, "s1"), mine(1));
    // B sees A's record, then A stops renewing (frozen or dead).
    h.fleet.observe(&b, &c).unwrap();
    for _ in 0..14 {
        c.advance(T / 10);
        h.lease.tick(&b, &c);
        assert!(
            matches!(h.acquire(&b, &c, "s1"), Acquired::HeldBy { ref host, epoch: 1, .. } if host == "a"),
            "taken over early"
        );
    }
    c.advance(T / 10 + Duration::from_millis(1));
    assert_eq!(
        h.acquire(&b, &c, "s1"),
        Acquired::Mine {
            epoch: 2,
            took_over: Some("a".into())
        }
    );
    // The head is fenced with the new epoch before anything is restored.
    assert_eq!(h.claims(&b).head("s1").unwrap().unwrap().epoch, 2);
}

#[test]
fn a_renewing_holder_is_never_taken_over() {
    let (b, c) = (MemoryBackend::default(), FakeClock::default());
    let mut a = Host::new("a", &b, &c);
    let mut h = Host::new("b", &b, &c);
    assert_eq!(a.acquire(&b, &c, "s1"), mine(1));
    for _ in 0..100 {
        c.advance(T / 7);
        a.lease.tick(&b, &c);
        assert!(matches!(h.acquire(&b, &c, "s1"), Acquired::HeldBy { .. }));
    }
}

#[test]
fn a_host_that_cannot_renew_stops_serving_at_0_8_ttl() {
    let (b, c) = (MemoryBackend::default(), FakeClock::default());
    let mut a = Host::new("a", &b, &c);
    b.set_offline(true);
    c.advance(T.mul_f64(0.79));
    assert_eq!(a.lease.tick(&b, &c), Liveness::Serving);
    c.advance(T.mul_f64(0.02));
    assert_eq!(a.lease.tick(&b, &c), Liveness::Lapsed);
    // Renewals succeed again and nobody replaced the record: serving.
    b.set_offline(false);
    assert_eq!(a.lease.renew(&b, &c), Liveness::Serving);
}

#[test]
fn a_host_whose_record_was_replaced_is_demoted_for_good() {
    let (b, c) = (MemoryBackend::default(), FakeClock::default());
    let mut a = Host::new("a", &b, &c);
    // Another process with the same id (a misconfigured clone) wrote it.
    let mut clone = HostLease::new("a", "http://clone", T);
    clone.renew(&b, &c); // create-only: loses, demoted itself
    assert_eq!(clone.liveness(Duration::ZERO), Liveness::Demoted);
    b.put(&format!("{HOSTS}a"), b"{}").unwrap();
    assert_eq!(a.lease.renew(&b, &c), Liveness::Demoted);
    c.advance(T);
    assert_eq!(a.lease.renew(&b, &c), Liveness::Demoted);
}

#[test]
fn a_stale_commit_after_a_pause_is_fenced_and_the_newer_state_stands() {
    let (b, c) = (MemoryBackend::default(), FakeClock::default());
    let mut a = Host::new("a", &b, &c);
    let mut h = Host::new("b", &b, &c);
    assert_eq!(a.acquire(&b, &c, "s1"), mine(1));
    a.claims(&b).commit("s1", 1, "snap-a1").unwrap();
    h.fleet.observe(&b, &c).unwrap();
    // A freezes for 3 T; B takes over and commits.
    c.advance(T * 3);
    assert!(matches!(
        h.acquire(&b, &c, "s1"),
        Acquired::Mine { epoch: 2, .. }
    ));
    h.claims(&b).commit("s1", 2, "snap-b1").unwrap();
    // A wakes and commits blindly: refused, whatever its clock says.
    let err = a.claims(&b).commit("s1", 1, "snap-a2").unwrap_err();
    assert!(
        matches!(
            err,
            ClaimError::Fenced {
                mine: 1,
                current: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("fenced"), "{err}");
    assert!(a.claims(&b).release("s1", 1).is_err());
    let head = h.claims(&b).head("s1").unwrap().unwrap();
    assert_eq!(
        (head.snapshot.as_deref(), head.prev.as_deref(), head.epoch),
        (Some("snap-b1"), Some("snap-a1"), 2)
    );
    // A's renewal after the pause: its record was not replaced, it is
    // serving again, but its sessions are fenced.
    assert_eq!(a.lease.renew(&b, &c), Liveness::Serving);
}

#[test]
fn release_lets_another_host_acquire_at_once() {
    let (b, c) = (MemoryBackend::default(), FakeClock::default());
    let mut a = Host::new("a", &b, &c);
    let mut h = Host::new("b", &b, &c);
    assert_eq!(a.acquire(&b, &c, "s1"), mine(1));
    a.claims(&b).commit("s1", 1, "snap-a1").unwrap();
    a.claims(&b).release("s1", 1).unwrap();
    // No time passes: B acquires, epoch rises, the head keeps A's commit.
    assert_eq!(h.acquire(&b, &c, "s1"), mine(2));
    let head = h.claims(&b).head("s1").unwrap().unwrap();
    assert_eq!((head.epoch, head.snapshot.as_deref()), (2, Some("snap-a1")));
}

/// Every injected fault on every kind of write ends in the right outcome.
#[test]
fn faults_on_each_write_are_resolved() {
    let faults = [
        Fault::PreconditionFailed,
        Fault::Conflict,
        Fault::ServerError { applied: true },
        Fault::ServerError { applied: false },
        Fault::Timeout { applied: true },
        Fault::Timeout { applied: false },
    ];
    for prefix in [HOSTS, CLAIMS, HEADS] {
        for f in &faults {
            let (b, c) = (MemoryBackend::default(), FakeClock::default());
            let what = format!("{f:?} on {prefix}");
            let mut a = Host::new("a", &b, &c);
            b.inject_prefix(prefix, *f);
            if prefix == HOSTS {
                // Only a record someone else replaced demotes (tested
                // apart); a 412 or 409 with the record still ours, and
                // "unknown, not applied", leave it to the next tick;
                // "applied" is a win.
                let l = a.lease.renew(&b, &c);
                match f {
                    Fault::ServerError { applied: true } | Fault::Timeout { applied: true } => {
                        assert_eq!(l, Liveness::Serving, "{what}")
                    }
                    _ => {
                        assert_eq!(l, Liveness::Serving, "{what}: the last good renewal stands");
                        assert_eq!(a.lease.renew(&b, &c), Liveness::Serving, "{what}");
                    }
                }
                continue;
            }
            // Claims and heads: acquire + commit + release still succeed,
            // exactly once, with a consistent epoch.
            assert_eq!(a.acquire(&b, &c, "s1"), mine(1), "{what}");
            b.inject_prefix(prefix, *f);
            let h = a.claims(&b).commit("s1", 1, "snap1").unwrap();
            assert_eq!((h.seq, h.epoch), (1, 1), "{what}");
            b.inject_prefix(prefix, *f);
            a.claims(&b).release("s1", 1).unwrap();
            let claim = a.claims(&b).claim("s1").unwrap().unwrap();
            assert_eq!((claim.holder, claim.epoch), (None, 1), "{what}");
            let head = a.claims(&b).head("s1").unwrap().unwrap();
            assert_eq!(head.snapshot.as_deref(), Some("snap1"), "{what}");
        }
    }
}

#[test]
fn a_fresh_observer_waits_one_and_a_half_ttl_before_taking_over() {
    let (b, c) = (MemoryBackend::default(), FakeClock::default());
    let mut a = Host::new("a", &b, &c);
    assert_eq!(a.acquire(&b, &c, "s1"), mine(1));
    // A dies long before B starts.
    c.advance(T * 10);
    let mut h = Host::new("b", &b, &c);
    assert!(matches!(h.acquire(&b, &c, "s1"), Acquired::HeldBy { .. }));
    c.advance(T.mul_f64(1.5));
    assert!(matches!(
        h.acquire(&b, &c, "s1"),
        Acquired::Mine { epoch: 2, .. }
    ));
}

#[test]
fn a_record_that_is_not_json_is_named() {
    let (b, c) = (MemoryBackend::default(), FakeClock::default());
    let mut a = Host::new("a", &b, &c);
    b.put(&format!("{CLAIMS}s1"), b"garbage").unwrap();
    a.fleet.observe(&b, &c).unwrap();
    let err = Claims::new(&b, &a.lease.id, &a.lease.addr)
        .acquire(&mut a.fleet, "s1", Duration::ZERO)
        .unwrap_err();
    assert!(err.to_string().contains("cluster/claims/s1"), "{err}");
}

/// The same fencing on a real atomic backend: a directory shared through
/// `LocalDirBackend` (create-only by link(2), compare-and-swap under flock).
#[test]
fn fencing_holds_on_a_shared_directory() {
    let dir = tempfile::tempdir().unwrap();
    let b = sesshost_store::LocalDirBackend::new(dir.path());
    let c = FakeClock::default();
    let mut a = Host::new_on("a", &b, &c);
    let mut h = Host::new_on("b", &b, &c);
    assert!(matches!(
        a.acquire_on(&b, &c, "s1"),
        Acquired::Mine { epoch: 1, .. }
    ));
    Claims::new(&b, "a", "http://a:8080")
        .commit("s1", 1, "snap-a1")
        .unwrap();
    h.fleet.observe(&b, &c).unwrap();
    c.advance(T * 2);
    assert!(matches!(
        h.acquire_on(&b, &c, "s1"),
        Acquired::Mine { epoch: 2, .. }
    ));
    let err = Claims::new(&b, "a", "http://a:8080")
        .commit("s1", 1, "snap-a2")
        .unwrap_err();
    assert!(matches!(err, ClaimError::Fenced { .. }), "{err}");
    let head = Claims::new(&b, "b", "http://b:8080")
        .head("s1")
        .unwrap()
        .unwrap();
    assert_eq!((head.epoch, head.snapshot.as_deref()), (2, Some("snap-a1")));
}

#[test]
fn an_observer_that_stopped_listing_judges_no_one() {
    // B listed the hosts once, then its own listing fell behind (its task
    // starved) while A kept renewing: B has seen no change because it did
    // not look, and must not take A's session on that.
    let (b, c) = (MemoryBackend::default(), FakeClock::default());
    let mut a = Host::new("a", &b, &c);
    let mut h = Host::new("b", &b, &c);
    assert_eq!(a.acquire(&b, &c, "s1"), mine(1));
    h.fleet.observe(&b, &c).unwrap();
    for _ in 0..30 {
        c.advance(T / 10);
        a.lease.tick(&b, &c);
    }
    let now = sesshost_cluster::Clock::now(&c);
    assert!(h.fleet.stale(now, T / 6));
    assert!(!h.fleet.is_dead("a", now), "judged on a 3 T old listing");
    let claims = Claims::new(&b, "b", "http://b");
    let held = claims.acquire(&mut h.fleet, "s1", now).unwrap();
    assert!(matches!(held, Acquired::HeldBy { ref host, epoch: 1, .. } if host == "a"));
    // A fresh listing shows A renewing: still alive.
    assert!(matches!(h.acquire(&b, &c, "s1"), Acquired::HeldBy { .. }));
    // And once A stops, a fresh listing 1.5 T later judges it dead.
    for _ in 0..16 {
        c.advance(T / 10);
        h.fleet.observe(&b, &c).unwrap();
    }
    assert_eq!(
        h.acquire(&b, &c, "s1"),
        Acquired::Mine {
            epoch: 2,
            took_over: Some("a".into())
        }
    );
}

#[test]
fn one_collector_at_a_time_and_a_dead_ones_lease_is_taken_after_one_and_a_half_ttl() {
    use sesshost_cluster::gclease::{self, GcTurn};
    let (b, c) = (MemoryBackend::default(), FakeClock::default());
    let mut a = Host::new("a", &b, &c);
    let mut h = Host::new("b", &b, &c);
    let now = |c: &FakeClock| sesshost_cluster::Clock::now(c);
    let turn = |host: &mut Host, c: &FakeClock| {
        host.fleet.observe(&b, c).unwrap();
        let (id, t) = (host.lease.id.clone(), now(c));
        gclease::take(&b, &id, &mut |h| host.fleet.is_dead(h, t)).unwrap()
    };
    assert_eq!(
        turn(&mut a, &c),
        GcTurn::Mine {
            epoch: 1,
            took_over: None
        }
    );
    // Taking it again is a no-op for the holder; the other host waits.
    assert!(matches!(turn(&mut a, &c), GcTurn::Mine { epoch: 1, .. }));
    assert_eq!(
        turn(&mut h, &c),
        GcTurn::HeldBy {
            host: "a".into(),
            epoch: 1
        }
    );
    // A stops renewing: B does not take the lease before 1.5 T, then does.
    for _ in 0..14 {
        c.advance(T / 10);
        h.lease.tick(&b, &c);
        assert!(
            matches!(turn(&mut h, &c), GcTurn::HeldBy { .. }),
            "taken early"
        );
    }
    c.advance(T / 10 + Duration::from_millis(1));
    assert_eq!(
        turn(&mut h, &c),
        GcTurn::Mine {
            epoch: 2,
            took_over: Some("a".into())
        }
    );
    // A, back, finds it no longer holds the lease, and its release changes nothing.
    assert!(!gclease::holds(&b, "a", 1).unwrap());
    gclease::release(&b, "a", 1).unwrap();
    assert!(gclease::holds(&b, "b", 2).unwrap());
    // B's release lets the next host take it at once, at a higher epoch.
    gclease::release(&b, "b", 2).unwrap();
    a.lease.renew(&b, &c);
    assert_eq!(
        turn(&mut a, &c),
        GcTurn::Mine {
            epoch: 3,
            took_over: None
        }
    );
}

#[test]
fn the_fleet_view_shows_holders_epochs_commits_and_the_collector() {
    use sesshost_cluster::view;
    let (b, c) = (MemoryBackend::default(), FakeClock::default());
    let mut a = Host::new("a", &b, &c);
    let mut h = Host::new("b", &b, &c);
    assert_eq!(a.acquire(&b, &c, "s1"), mine(1));
    a.claims(&b).commit("s1", 1, "1").unwrap();
    a.claims(&b).commit("s1", 1, "2").unwrap();
    assert_eq!(h.acquire(&b, &c, "s2"), mine(1));
    h.claims(&b).release("s2", 1).unwrap();
    sesshost_cluster::gclease::take(&b, "b", &mut |_| false).unwrap();
    b.put("cluster/claims/junk", b"not json").unwrap();
    let v = view::read(&b).unwrap();
    let hosts: Vec<&str> = v.hosts.iter().map(|r| r.host_id.as_str()).collect();
    assert_eq!(hosts, ["a", "b"]);
    let s: Vec<String> = v
        .sessions
        .iter()
        .map(|s| {
            format!(
                "{} {:?} {} {} {:?}",
                s.id, s.holder, s.epoch, s.commits, s.snapshot
            )
        })
        .collect();
    assert_eq!(s, [r#"s1 Some("a") 1 2 Some("2")"#, "s2 None 1 0 None"]);
    assert_eq!(v.gc.as_ref().and_then(|g| g.holder.as_deref()), Some("b"));
    assert_eq!(v.unreadable, ["cluster/claims/junk"]);
}

#[test]
fn a_409_or_a_spurious_412_on_a_renewal_is_retried_not_a_demotion() {
    let (b, c) = (MemoryBackend::default(), FakeClock::default());
    let mut a = Host::new("a", &b, &c);
    for fault in [Fault::Conflict, Fault::PreconditionFailed] {
        c.advance(T / 3);
        b.inject_next(fault);
        // Not applied; the record is still A's last version: still serving
        // (the last good renewal is T/3 old), and the next renewal works.
        assert_eq!(a.lease.renew(&b, &c), Liveness::Serving);
        c.advance(T / 3);
        assert_eq!(a.lease.renew(&b, &c), Liveness::Serving);
    }
    // Two lost renewals in a row still only lapse it at 0.8 T, never
    // demote it; it serves again once a renewal lands.
    c.advance(T / 3);
    b.inject_next(Fault::Conflict);
    a.lease.renew(&b, &c);
    c.advance(T / 2);
    b.inject_next(Fault::Conflict);
    assert_eq!(a.lease.renew(&b, &c), Liveness::Lapsed);
    assert_eq!(a.lease.renew(&b, &c), Liveness::Serving);
}
