//! Concurrency on one real home: threads and processes saving, loading,
//! rolling back, deleting and importing at random while GC runs; atomic
//! import; the GC grace race. Real files, real processes (the test binary
//! re-runs itself as a child through the ignored `stress_child` test).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use sessbundle::state::{Cookie, SessionState};
use sesshost_store::*;

const SESSIONS: usize = 200;
const HOT: usize = 4;
const THREADS: usize = 8;
const PROCS: usize = 2;
const WORKERS: usize = THREADS + PROCS;

fn state(tag: &str) -> SessionState {
    let mut s = SessionState::new("x", 1);
    s.cookies.push(Cookie {
        name: "tag".into(),
        value: tag.into(),
        domain: ".t.test".into(),
        path: "/".into(),
        ..Default::default()
    });
    s
}

fn tag_of(s: &SessionState) -> Option<String> {
    s.cookies.first().map(|c| c.value.clone())
}

/// Kept snapshots of one session, oldest first: (seq, tag; None = created empty).
type Hist = Vec<(u64, Option<String>)>;

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Log {
    own: BTreeMap<String, Hist>,
    /// (session, seq, tag) of every committed save of a hot session.
    hot: Vec<(String, u64, String)>,
    ops: u64,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn prune(h: &mut Hist, pruned: &[u64]) {
    h.retain(|(s, _)| !pruned.contains(s));
}

/// One worker: random operations on its own sessions (names i with
/// i % WORKERS == w), saves to the shared hot sessions, and reads of
/// anybody's sessions, for `secs`.
fn worker(st: &Store, w: usize, secs: f64) -> Log {
    let mut log = Log::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((w as u64 + 1) * 0x1234_5678));
    let own: Vec<String> = (0..SESSIONS)
        .filter(|i| i % WORKERS == w)
        .map(|i| format!("s{i:03}"))
        .collect();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        n += 1;
        let tag = format!("w{w}-{n}");
        let now = now_ms();
        let name = &own[rng.next(own.len() as u64) as usize];
        match log.own.get_mut(name) {
            None => {
                if rng.next(2) == 0 {
                    st.create(
                        &NewSession {
                            name: name.clone(),
                            ..Default::default()
                        },
                        now,
                    )
                    .unwrap();
                    log.own.insert(name.clone(), vec![(1, None)]);
                } else {
                    let r = st.import(name, &state(&tag), ImportMode::New, now).unwrap();
                    log.own
                        .insert(name.clone(), vec![(r.seq, Some(tag.clone()))]);
                }
            }
            Some(h) => match rng.next(20) {
                0..=8 => {
                    let r = st.save(name, &state(&tag), now).unwrap();
                    prune(h, &r.pruned);
                    h.push((r.seq, Some(tag.clone())));
                }
                9..=10 => {
                    let got = tag_of(&st.load(name).unwrap());
                    assert_eq!(got, h.last().unwrap().1, "{name} latest");
                }
                11..=12 => match st.rollback(name, None, now) {
                    Ok(r) => {
                        let target = h[h.len() - 2].1.clone();
                        prune(h, &r.pruned);
                        h.push((r.seq, target));
                    }
                    Err(StoreError::NoEarlierSnapshot { .. }) => assert_eq!(h.len(), 1),
                    Err(e) => panic!("rollback {name}: {e}"),
                },
                13..=14 => {
                    st.delete(name).unwrap();
                    log.own.remove(name);
                }
                15..=16 => {
                    let hist = st.history(name).unwrap();
                    let seqs: Vec<u64> = hist.iter().map(|s| s.seq).collect();
                    assert_eq!(seqs, h.iter().map(|x| x.0).collect::<Vec<_>>(), "{name}");
                    let (seq, t) = &h[rng.next(h.len() as u64) as usize];
                    assert_eq!(&tag_of(&st.load_snapshot(name, *seq).unwrap()), t);
                }
                _ => {
                    let r = st
                        .import(name, &state(&tag), ImportMode::Replace, now)
                        .unwrap();
                    *h = vec![(r.seq, Some(tag.clone()))];
                }
            },
        }
        // Someone else's session or a hot one.
        match rng.next(4) {
            0 => {
                let other = format!("s{:03}", rng.next(SESSIONS as u64));
                match st.load(&other) {
                    Ok(s) => {
                        if let Some(t) = tag_of(&s) {
                            assert!(t.starts_with('w'), "{other}: {t}");
                        }
                    }
                    Err(StoreError::SessionNotFound { .. }) => {}
                    Err(e) => panic!("load {other}: {e}"),
                }
            }
            1 => {
                let hot = format!("hot{}", rng.next(HOT as u64));
                let r = st.save(&hot, &state(&tag), now_ms()).unwrap();
                log.hot.push((hot, r.seq, tag.clone()));
            }
            _ => {}
        }
    }
    log.ops = n;
    log
}

fn secs() -> f64 {
    std::env::var("SESSHOST_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30.0)
}

/// The child process side of `threads_and_processes_share_one_home`.
#[test]
#[ignore = "run by threads_and_processes_share_one_home as a child process"]
fn stress_child() {
    let (Ok(home), Ok(w), Ok(out)) = (
        std::env::var("SESSHOST_STRESS_HOME"),
        std::env::var("SESSHOST_STRESS_WORKER"),
        std::env::var("SESSHOST_STRESS_OUT"),
    ) else {
        return;
    };
    let st = Home::new(home).store().unwrap();
    let log = worker(&st, w.parse().unwrap(), secs());
    std::fs::write(out, serde_json::to_vec(&log).unwrap()).unwrap();
}

#[test]
fn threads_and_processes_share_one_home() {
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path().join("home"));
    let st = Arc::new(home.store().unwrap());
    for i in 0..HOT {
        st.create(
            &NewSession {
                name: format!("hot{i}"),
                ..Default::default()
            },
            now_ms(),
        )
        .unwrap();
    }
    let secs = secs();
    let deadline = Duration::from_secs_f64(secs + 120.0);
    let start = Instant::now();
    let exe = std::env::current_exe().unwrap();
    let mut children = Vec::new();
    for p in 0..PROCS {
        let w = THREADS + p;
        let out = d.path().join(format!("log{w}.json"));
        let child = Command::new(&exe)
            .args(["stress_child", "--exact", "--ignored", "--nocapture"])
            .env("SESSHOST_STRESS_HOME", home.dir())
            .env("SESSHOST_STRESS_WORKER", w.to_string())
            .env("SESSHOST_STRESS_OUT", &out)
            .env("SESSHOST_STRESS_SECS", secs.to_string())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        children.push((child, out));
    }
    let (tx, rx) = mpsc::channel();
    for w in 0..THREADS {
        let (st, tx) = (st.clone(), tx.clone());
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker(&st, w, secs)));
            let _ = tx.send(r.map_err(|e| {
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            }));
        });
    }
    // GC keeps running while everyone works.
    let stop = Arc::new(AtomicBool::new(false));
    let gc = {
        let (st, stop) = (st.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            let mut deleted = 0;
            while !stop.load(Ordering::Relaxed) {
                deleted += st.gc(Duration::ZERO).unwrap().chunks_deleted;
                runs += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            (runs, deleted)
        })
    };
    let mut logs = Vec::new();
    for _ in 0..THREADS {
        let left = deadline.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(Ok(l)) => logs.push(l),
            Ok(Err(msg)) => panic!("a worker thread failed: {msg}"),
            Err(_) => {
                panic!("watchdog: worker threads still running after {deadline:?} (deadlock?)")
            }
        }
    }
    for (mut c, out) in children {
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                assert!(status.success(), "child worker failed: {status}");
                break;
            }
            if start.elapsed() > deadline {
                let _ = c.kill();
                panic!("watchdog: child worker still running after {deadline:?} (deadlock?)");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        logs.push(serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let (gc_runs, gc_deleted) = gc.join().unwrap();
    let ops: u64 = logs.iter().map(|l| l.ops).sum();
    eprintln!(
        "{ops} operations by {WORKERS} workers in {:.1} s; {gc_runs} GC runs deleted {gc_deleted} chunks",
        start.elapsed().as_secs_f64()
    );
    assert!(ops > 100, "too few operations ({ops}) to mean anything");
    assert!(logs.iter().all(|l| l.ops > 0));

    let verify = |when: &str| {
        let mut own: BTreeMap<&String, &Hist> = BTreeMap::new();
        for l in &logs {
            own.extend(l.own.iter());
        }
        for i in 0..SESSIONS {
            let name = format!("s{i:03}");
            match own.get(&name) {
                None => assert!(
                    !st.exists(&name).unwrap(),
                    "{when}: {name} should be deleted"
                ),
                Some(h) => {
                    let hist = st.history(&name).unwrap();
                    let seqs: Vec<u64> = hist.iter().map(|s| s.seq).collect();
                    assert_eq!(
                        seqs,
                        h.iter().map(|x| x.0).collect::<Vec<_>>(),
                        "{when}: {name}"
                    );
                    for (seq, t) in h.iter() {
                        let got = tag_of(&st.load_snapshot(&name, *seq).unwrap());
                        assert_eq!(&got, t, "{when}: {name} snapshot {seq}");
                    }
                    assert_eq!(tag_of(&st.load(&name).unwrap()), h.last().unwrap().1);
                }
            }
        }
        let mut hot: BTreeMap<(String, u64), String> = BTreeMap::new();
        for l in &logs {
            for (n, s, t) in &l.hot {
                assert!(
                    hot.insert((n.clone(), *s), t.clone()).is_none(),
                    "{n} seq {s} committed twice"
                );
            }
        }
        for i in 0..HOT {
            let name = format!("hot{i}");
            let hist = st.history(&name).unwrap();
            let newest = hot
                .keys()
                .filter(|(n, _)| *n == name)
                .map(|(_, s)| *s)
                .max();
            if let Some(newest) = newest {
                assert_eq!(hist.last().unwrap().seq, newest, "{when}: {name}");
                let latest = tag_of(&st.load(&name).unwrap()).unwrap();
                assert_eq!(latest, hot[&(name.clone(), newest)], "{when}: {name}");
            }
            for s in hist {
                let got = tag_of(&st.load_snapshot(&name, s.seq).unwrap());
                if let Some(t) = hot.get(&(name.clone(), s.seq)) {
                    assert_eq!(got.as_ref(), Some(t), "{when}: {name} {}", s.seq);
                }
            }
        }
        // The index agrees with the manifests.
        for info in st.list(now_ms()).unwrap() {
            assert_eq!(
                info,
                st.show(&info.name)
                    .map(|mut i| {
                        i.expired = info.expired;
                        i
                    })
                    .unwrap()
            );
        }
    };
    verify("after the run");
    st.gc(Duration::ZERO).unwrap();
    verify("after a final GC");
    assert_eq!(st.cleanup(now_ms()).unwrap().removed, vec![]);
}

#[test]
fn concurrent_imports_of_one_name_exactly_one_wins() {
    let d = tempfile::tempdir().unwrap();
    let home = Home::new(d.path().join("home"));
    for round in 0..3 {
        let name = format!("imp{round}");
        let barrier = Barrier::new(8);
        let results: Vec<(usize, Result<SaveReport>)> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let (barrier, home, name) = (&barrier, &home, &name);
                    s.spawn(move || {
                        let st = home.store().unwrap(); // own handle, own fds
                        barrier.wait();
                        (
                            i,
                            st.import(name, &state(&format!("t{i}")), ImportMode::New, now_ms()),
                        )
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<usize> = results
            .iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        for (_, r) in &results {
            if let Err(e) = r {
                assert!(matches!(e, StoreError::SessionExists { .. }), "{e}");
            }
        }
        let st = home.store().unwrap();
        assert_eq!(
            tag_of(&st.load(&name).unwrap()),
            Some(format!("t{}", winners[0]))
        );
        assert_eq!(st.history(&name).unwrap().len(), 1);
    }
}

/// A backend that can fail or pause chosen writes.
struct Gated {
    inner: LocalDirBackend,
    fail_prefix: Mutex<Option<String>>,
    pause_prefix: Mutex<Option<String>>,
    paused: Mutex<Option<mpsc::Sender<()>>>,
    go: Mutex<Option<mpsc::Receiver<()>>>,
}

struct GatedBackend(Arc<Gated>);

impl Backend for GatedBackend {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BackendError> {
        if self
            .0
            .fail_prefix
            .lock()
            .unwrap()
            .as_deref()
            .is_some_and(|p| key.starts_with(p))
        {
            return Err(BackendError::new(
                BackendErrorKind::Unavailable,
                "injected failure",
            ));
        }
        let pause = {
            let mut p = self.0.pause_prefix.lock().unwrap();
            if p.as_deref().is_some_and(|p| key.starts_with(p)) {
                p.take()
            } else {
                None
            }
        };
        if pause.is_some() {
            self.0
                .paused
                .lock()
                .unwrap()
                .take()
                .unwrap()
                .send(())
                .unwrap();
            self.0.go.lock().unwrap().take().unwrap().recv().unwrap();
        }
        self.0.inner.put(key, bytes)
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.0.inner.get(key)
    }
    fn has(&self, key: &str) -> Result<bool, BackendError> {
        self.0.inner.has(key)
    }
    fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.0.inner.delete(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        self.0.inner.list(prefix)
    }
}

fn gated_store(dir: &Path) -> (Arc<Gated>, Store) {
    let g = Arc::new(Gated {
        inner: LocalDirBackend::new(dir.join("store")),
        fail_prefix: Mutex::new(None),
        pause_prefix: Mutex::new(None),
        paused: Mutex::new(None),
        go: Mutex::new(None),
    });
    let st = Store::new(
        Box::new(GatedBackend(g.clone())),
        &RepoKey::from_bytes([9; 32]),
    )
    .with_local_locks(dir.join("locks"), dir.join("open"));
    (g, st)
}

fn chunk_count(dir: &Path) -> usize {
    fn walk(p: &Path) -> usize {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.map(|e| {
                    let e = e.unwrap();
                    if e.file_type().unwrap().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
            })
            .unwrap_or(0)
    }
    walk(&dir.join("store/chunks"))
}

#[test]
fn a_save_in_flight_that_reuses_an_unreferenced_chunk_survives_gc() {
    let d = tempfile::tempdir().unwrap();
    let (g, st) = gated_store(d.path());
    let st = Arc::new(st);
    let big = state("shared-value");
    st.import("a", &big, ImportMode::New, now_ms()).unwrap();
    st.create(
        &NewSession {
            name: "b".into(),
            ..Default::default()
        },
        now_ms(),
    )
    .unwrap();
    st.delete("a").unwrap(); // a's chunks are now unreferenced
    let (ptx, prx) = mpsc::channel();
    let (gtx, grx) = mpsc::channel();
    *g.paused.lock().unwrap() = Some(ptx);
    *g.go.lock().unwrap() = Some(grx);
    *g.pause_prefix.lock().unwrap() = Some("snapshots/b/".into());
    // b's save finds a's chunks present (dedup, nothing written) and stops
    // just before its manifest.
    let saver = {
        let st = st.clone();
        std::thread::spawn(move || st.save("b", &big, now_ms()).unwrap())
    };
    prx.recv_timeout(Duration::from_secs(10)).unwrap();
    let collector = {
        let st = st.clone();
        std::thread::spawn(move || st.gc(Duration::ZERO).unwrap())
    };
    // The mark ran (the reused chunks are candidates); the sweep waits for
    // the save.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !collector.is_finished(),
        "the sweep must wait for the save in flight"
    );
    gtx.send(()).unwrap();
    let saved = saver.join().unwrap();
    // Its meta chunk is b's own; its cookie chunk is a's, unreferenced,
    // found present and not written again.
    assert_eq!(saved.chunks_written, 0, "the save deduplicated: {saved:?}");
    let report = collector.join().unwrap();
    assert!(report.chunks_marked >= 1, "{report:?}");
    assert_eq!(
        tag_of(&st.load("b").unwrap()).as_deref(),
        Some("shared-value")
    );
    st.gc(Duration::ZERO).unwrap();
    assert_eq!(
        tag_of(&st.load("b").unwrap()).as_deref(),
        Some("shared-value")
    );
}

#[test]
fn gc_deletes_only_after_the_grace_and_keeps_what_is_referenced_again() {
    let d = tempfile::tempdir().unwrap();
    let (_g, st) = gated_store(d.path());
    st.import("a", &state("gone"), ImportMode::New, now_ms())
        .unwrap();
    st.import("k", &state("kept"), ImportMode::New, now_ms())
        .unwrap();
    let before = chunk_count(d.path());
    st.delete("a").unwrap();
    let hour = Duration::from_secs(3600);
    let r = st.gc(hour).unwrap();
    assert!(r.chunks_marked >= 1 && r.chunks_deleted == 0, "{r:?}");
    let r = st.gc(hour).unwrap();
    assert!(
        r.waiting_for_grace_ms.is_some() && r.chunks_deleted == 0,
        "{r:?}"
    );
    assert_eq!(chunk_count(d.path()), before);
    // One candidate is referenced again before the sweep.
    st.import("a2", &state("gone"), ImportMode::New, now_ms())
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let r = st.gc(Duration::from_millis(10)).unwrap();
    // a's meta chunk (it names the session) goes; its cookie chunk, which
    // a2 references now, stays.
    assert_eq!(r.chunks_deleted, 1, "{r:?}");
    assert_eq!(tag_of(&st.load("a2").unwrap()).as_deref(), Some("gone"));
    st.delete("a2").unwrap();
    let r = st.gc(Duration::ZERO).unwrap();
    assert!(r.chunks_deleted >= 1, "{r:?}");
    assert_eq!(tag_of(&st.load("k").unwrap()).as_deref(), Some("kept"));
}

#[test]
fn a_failed_replacing_import_loses_nothing() {
    let d = tempfile::tempdir().unwrap();
    let (g, st) = gated_store(d.path());
    st.import("x", &state("old"), ImportMode::New, now_ms())
        .unwrap();
    st.save("x", &state("old2"), now_ms()).unwrap();
    *g.fail_prefix.lock().unwrap() = Some("sessions/x".into());
    let e = st
        .import("x", &state("new"), ImportMode::Replace, now_ms())
        .unwrap_err();
    assert!(e.to_string().contains("injected failure"), "{e}");
    *g.fail_prefix.lock().unwrap() = None;
    assert_eq!(tag_of(&st.load("x").unwrap()).as_deref(), Some("old2"));
    assert_eq!(st.history("x").unwrap().len(), 2);
    // A failed new import leaves nothing behind.
    *g.fail_prefix.lock().unwrap() = Some("sessions/y".into());
    st.import("y", &state("n"), ImportMode::New, now_ms())
        .unwrap_err();
    *g.fail_prefix.lock().unwrap() = None;
    assert!(!st.exists("y").unwrap());
    assert!(st.list(now_ms()).unwrap().iter().all(|i| i.name != "y"));
    // And a replacing import that works replaces.
    st.import("x", &state("new"), ImportMode::Replace, now_ms())
        .unwrap();
    assert_eq!(tag_of(&st.load("x").unwrap()).as_deref(), Some("new"));
    assert_eq!(st.history("x").unwrap().len(), 1);
}

#[test]
fn a_held_session_lock_times_out_with_the_holder_named() {
    let d = tempfile::tempdir().unwrap();
    let (g, st) = gated_store(d.path());
    let st = Arc::new(st.with_lock_timeout(Duration::from_millis(300)));
    assert_eq!(
        st.lock_config().unwrap().timeout,
        Duration::from_millis(300)
    );
    st.create(
        &NewSession {
            name: "l".into(),
            ..Default::default()
        },
        now_ms(),
    )
    .unwrap();
    let (ptx, prx) = mpsc::channel();
    let (gtx, grx) = mpsc::channel();
    *g.paused.lock().unwrap() = Some(ptx);
    *g.go.lock().unwrap() = Some(grx);
    *g.pause_prefix.lock().unwrap() = Some("snapshots/l/".into());
    let saver = {
        let st = st.clone();
        std::thread::spawn(move || st.save("l", &state("v"), now_ms()).unwrap())
    };
    prx.recv_timeout(Duration::from_secs(10)).unwrap();
    let t = Instant::now();
    let e = st.save("l", &state("w"), now_ms()).unwrap_err();
    assert!(t.elapsed() >= Duration::from_millis(300));
    let text = e.to_string();
    assert!(matches!(e, StoreError::LockTimeout { .. }), "{text}");
    assert!(
        text.contains(&format!("pid {}", std::process::id())) && text.contains("session \"l\""),
        "{text}"
    );
    // Other sessions are not blocked by it.
    st.create(
        &NewSession {
            name: "m".into(),
            ..Default::default()
        },
        now_ms(),
    )
    .unwrap();
    gtx.send(()).unwrap();
    saver.join().unwrap();
    assert_eq!(tag_of(&st.load("l").unwrap()).as_deref(), Some("v"));
}
