//! A seeded simulation of three hosts on one bucket (the research's
//! leasesim, in Rust and deterministic): hosts commit, release and
//! re-acquire sessions; some freeze for 2.5 T and then commit blindly
//! (the worst case of a paused VM); writes fail at random with 412, 409
//! and 500/timeouts (applied or not). At the end every acknowledged
//! commit is on its session's chain, epochs never decrease along it, and
//! no epoch was ever held by two hosts.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sesshost_cluster::clock::FakeClock;
use sesshost_cluster::records::{CLAIMS, ClaimRecord, HEADS, HOSTS, HeadRecord};
use sesshost_cluster::{Acquired, ClaimError, Claims, Clock, Fleet, HostLease, Liveness};
use sesshost_store::backend::memory::{Fault, MemoryBackend};

const T: Duration = Duration::from_secs(2);

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1_000_000.0 < p
    }
    fn pick(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct SimHost {
    lease: HostLease,
    fleet: Fleet,
    /// Sessions this host believes it holds, with the epoch.
    held: HashMap<String, u64>,
    paused: u32,
    commits: u64,
}

#[derive(Default)]
struct Tally {
    acked: Vec<(String, String)>,
    fenced: u64,
    takeovers: u64,
    blind_ok: u64,
    releases: u64,
    restarts: u64,
}

fn run(seed: u64, sessions: &[&str], steps: u32) -> Tally {
    let b = MemoryBackend::default();
    let c = FakeClock::default();
    let mut rng = Rng(seed);
    let mut hosts: Vec<SimHost> = ["a", "b", "c"]
        .iter()
        .map(|id| {
            let mut lease = HostLease::new(id, &format!("http://{id}"), T);
            lease.renew(&b, &c);
            SimHost {
                lease,
                fleet: Fleet::new(id, T),
                held: HashMap::new(),
                paused: 0,
                commits: 0,
            }
        })
        .collect();
    let mut tally = Tally::default();
    let faults = [
        Fault::PreconditionFailed,
        Fault::Conflict,
        Fault::ServerError { applied: true },
        Fault::ServerError { applied: false },
        Fault::Timeout { applied: true },
        Fault::Timeout { applied: false },
    ];
    for _ in 0..steps {
        c.advance(T / 20);
        if rng.chance(0.02) {
            let prefix = [HOSTS, CLAIMS, HEADS][rng.pick(3)];
            b.inject_prefix(prefix, faults[rng.pick(faults.len())]);
        }
        for h in hosts.iter_mut() {
            if h.paused > 0 {
                h.paused -= 1;
                if h.paused == 0 {
                    // Wakes up and commits without checking anything.
                    for (s, e) in h.held.clone() {
                        h.commits += 1;
                        let snap = format!("{}-{}", h.lease.id, h.commits);
                        match Claims::new(&b, &h.lease.id, &h.lease.addr).commit(&s, e, &snap) {
                            Ok(_) => {
                                tally.blind_ok += 1;
                                tally.acked.push((s.clone(), snap));
                            }
                            Err(ClaimError::Fenced { .. }) => {
                                tally.fenced += 1;
                                h.held.remove(&s);
                            }
                            Err(_) => {}
                        }
                    }
                }
                continue;
            }
            if rng.chance(0.004) {
                h.paused = 50; // 2.5 T
                continue;
            }
            if h.lease.tick(&b, &c) == Liveness::Demoted {
                // Its record was replaced (an injected 412/409): the
                // process exits and comes back under a new id.
                tally.restarts += 1;
                let id = format!("{}{}", &h.lease.id[..1], tally.restarts);
                let mut lease = HostLease::new(&id, &format!("http://{id}"), T);
                lease.renew(&b, &c);
                *h = SimHost {
                    lease,
                    fleet: Fleet::new(&id, T),
                    held: HashMap::new(),
                    paused: 0,
                    commits: 0,
                };
                continue;
            }
            if !h.lease.serving(c.now()) {
                // Stops its browsers: it no longer believes it holds anything.
                h.held.clear();
                continue;
            }
            let _ = h.fleet.observe(&b, &c);
            let s = sessions[rng.pick(sessions.len())].to_string();
            let claims = Claims::new(&b, &h.lease.id, &h.lease.addr);
            if let Some(&e) = h.held.get(&s) {
                h.commits += 1;
                let snap = format!("{}-{}", h.lease.id, h.commits);
                match claims.commit(&s, e, &snap) {
                    Ok(_) => tally.acked.push((s.clone(), snap)),
                    Err(ClaimError::Fenced { .. }) => {
                        tally.fenced += 1;
                        h.held.remove(&s);
                        continue;
                    }
                    Err(_) => continue,
                }
                if rng.chance(0.1) && claims.release(&s, e).is_ok() {
                    tally.releases += 1;
                    h.held.remove(&s);
                }
            } else if rng.chance(0.3) {
                match claims.acquire(&mut h.fleet, &s, c.now()) {
                    Ok(Acquired::Mine { epoch, took_over }) => {
                        if took_over.is_some() {
                            tally.takeovers += 1;
                        }
                        h.held.insert(s, epoch);
                    }
                    Ok(Acquired::HeldBy { .. }) | Err(_) => {}
                }
            }
        }
    }
    check(&b, sessions, &tally);
    tally
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "acked {} fenced {} takeovers {} blind_ok {} releases {} restarts {}",
            self.acked.len(),
            self.fenced,
            self.takeovers,
            self.blind_ok,
            self.releases,
            self.restarts
        )
    }
}

fn check(b: &MemoryBackend, sessions: &[&str], tally: &Tally) {
    let log = b.write_log();
    // No epoch of a session was ever claimed by two hosts.
    let mut owners: HashMap<(String, u64), HashSet<String>> = HashMap::new();
    for (k, v) in &log {
        if k.starts_with(CLAIMS) {
            let c: ClaimRecord = serde_json::from_slice(v).unwrap();
            if let Some(h) = c.holder {
                owners.entry((c.session, c.epoch)).or_default().insert(h);
            }
        }
    }
    for (k, hs) in &owners {
        assert_eq!(hs.len(), 1, "epoch {k:?} held by {hs:?}");
    }
    for s in sessions {
        let heads: Vec<HeadRecord> = log
            .iter()
            .filter(|(k, _)| *k == format!("{HEADS}{s}"))
            .map(|(_, v)| serde_json::from_slice(v).unwrap())
            .collect();
        // Epochs never decrease along the head's history.
        for w in heads.windows(2) {
            assert!(w[1].epoch >= w[0].epoch, "{s}: epoch went down: {w:?}");
        }
        // Walk the chain back from the final head.
        let prev: HashMap<String, Option<String>> = heads
            .iter()
            .filter_map(|h| h.snapshot.clone().map(|sn| (sn, h.prev.clone())))
            .collect();
        let mut chain = HashSet::new();
        let mut cur = heads.last().and_then(|h| h.snapshot.clone());
        while let Some(sn) = cur {
            assert!(chain.insert(sn.clone()), "{s}: a cycle at {sn}");
            cur = prev.get(&sn).cloned().flatten();
        }
        for (sess, snap) in &tally.acked {
            if sess == s {
                assert!(chain.contains(snap), "{s}: acknowledged commit {snap} lost");
            }
        }
    }
}

#[test]
fn high_contention_one_session_loses_no_acknowledged_commit() {
    for seed in [1, 2, 3, 4, 5] {
        let t = run(seed * 7919, &["s1"], 6000);
        println!("seed {seed}, one session: {t:?}");
        assert!(t.acked.len() > 500, "seed {seed}: too few commits: {t:?}");
        assert!(
            t.fenced > 0,
            "seed {seed}: no stale commit was fenced: {t:?}"
        );
        assert!(t.takeovers > 0, "seed {seed}: no takeover happened: {t:?}");
        assert!(t.releases > 0, "seed {seed}: no release: {t:?}");
    }
}

#[test]
fn three_sessions_lose_no_acknowledged_commit() {
    for seed in [11, 12, 13] {
        let t = run(seed, &["s1", "s2", "s3"], 6000);
        println!("seed {seed}, three sessions: {t:?}");
        assert!(t.acked.len() > 500, "seed {seed}: {t:?}");
        assert!(t.fenced > 0 && t.takeovers > 0, "seed {seed}: {t:?}");
    }
}
