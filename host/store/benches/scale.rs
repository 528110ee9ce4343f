//! `cargo bench -p sesshost-store --bench scale`: save p50/p99 and `list`
//! time with 10, 1,000 and 10,000 sessions in one store. Targets: save p50
//! at 10,000 within 1.5x of save p50 at 10 (a save costs O(its session),
//! not O(store)); list of 10,000 under 200 ms.
//!
//! The store lives in `SESSHOST_BENCH_DIR` (default /dev/shm if present,
//! so populating 10,000 sessions takes seconds, not minutes of fsyncs; on a
//! disk each save adds ~2 fsyncs per object written).
//!
//! Measured on the 2-core shared VM, release:
//! ```text
//!            tmpfs (default)                 SESSHOST_BENCH_DIR=/var/tmp (disk)
//! sessions   save p50  p99     list          save p50  p99      list
//!     10     0.27 ms   5.5 ms  0.12 ms       52 ms     225 ms   0.30 ms
//!  1,000     0.24 ms   4.1 ms  5.1 ms        32 ms     192 ms   5.4 ms
//! 10,000     0.15 ms   1.1 ms  57 ms         32 ms     44 ms    94 ms
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sessbundle::state::{Cookie, SessionState};
use sesshost_store::*;

fn state(tag: &str) -> SessionState {
    let mut s = SessionState::new("x", 1);
    s.meta.user_agent = Some("Bench/1".into());
    s.cookies.push(Cookie {
        name: "sid".into(),
        value: tag.into(),
        domain: ".bench.test".into(),
        path: "/".into(),
        ..Default::default()
    });
    s
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let base = std::env::var_os("SESSHOST_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let shm = PathBuf::from("/dev/shm");
            if shm.is_dir() {
                shm
            } else {
                std::env::temp_dir()
            }
        });
    let dir = tempfile::tempdir_in(&base).expect("a temporary directory");
    let home = Home::new(dir.path().join("home"));
    let st = home.store().expect("the store");
    let mut have = 0usize;
    for target in [10usize, 1_000, 10_000] {
        let t = Instant::now();
        std::thread::scope(|s| {
            let st = &st;
            for w in 0..4 {
                s.spawn(move || {
                    for i in (have..target).filter(|i| i % 4 == w) {
                        st.import(
                            &format!("s{i:05}"),
                            &state(&format!("v{i}")),
                            ImportMode::New,
                            now_ms(),
                        )
                        .expect("populate");
                    }
                });
            }
        });
        let populate = t.elapsed();
        let added = target - have;
        have = target;
        let mut saves = Vec::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for n in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let name = format!("s{:05}", x % target as u64);
            let t = Instant::now();
            st.save(&name, &state(&format!("r{n}")), now_ms())
                .expect("save");
            saves.push(t.elapsed());
        }
        let mut lists = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            let l = st.list(now_ms()).expect("list");
            lists.push(t.elapsed());
            assert_eq!(l.len(), target);
        }
        let line = format!(
            "{target:>6} sessions: save p50 {:>7.2} ms  p99 {:>7.2} ms   list {:>8.2} ms (median of 5)   [populated +{} in {:.1} s]",
            pct(&mut saves, 0.5).as_secs_f64() * 1e3,
            pct(&mut saves, 0.99).as_secs_f64() * 1e3,
            pct(&mut lists, 0.5).as_secs_f64() * 1e3,
            added,
            populate.as_secs_f64()
        );
        println!("{line}");
    }
    let t = Instant::now();
    let r = st.gc(Duration::ZERO).expect("gc");
    println!(
        "gc (mark + sweep) over 10000 sessions: {:.0} ms, {} chunks deleted",
        t.elapsed().as_secs_f64() * 1e3,
        r.chunks_deleted
    );
}
