//! The `s3` plugin's conditional writes against a real Ceph RGW (an S3
//! server that applies them atomically), started by `.ci/rgw` (installed by
//! `.ci/setup`). Nothing is skipped: if RGW cannot start, the test fails
//! with the script's log.
//!
//! One test function, so RGW starts once per binary (~20 s) and is stopped
//! at the end whatever happens. Prints the probe duration and the
//! conditional PUT latency:
//! `cargo test --workspace --locked --test s3_rgw -- --nocapture`.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use common::*;
use sesshost_plugin::{Grants, PluginBackend};
use sesshost_store::probe::conditional_writes;
use sesshost_store::repo::{RepoUnlock, open_repo_key};
use sesshost_store::{Backend, BackendErrorKind, Etag, Precondition};

struct Rgw {
    script: PathBuf,
    dir: PathBuf,
    port: u16,
    access_key: String,
    secret_key: String,
    bucket: String,
}

impl Drop for Rgw {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

fn start_rgw() -> Rgw {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.ci/rgw");
    let dir = std::env::temp_dir().join(format!("sesshost-rgw-test-{}", std::process::id()));
    let out = Command::new(&script)
        .arg("start")
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "Ceph RGW did not start ({}): run .ci/setup to install it.\n{stdout}\n{stderr}",
        out.status
    );
    eprintln!("rgw: {}", stderr.trim());
    let get = |k: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!(".ci/rgw printed no {k}=: {stdout}"))
            .to_string()
    };
    let endpoint = get("endpoint");
    let port = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    Rgw {
        script,
        dir,
        port,
        access_key: get("access_key"),
        secret_key: get("secret_key"),
        bucket: get("bucket"),
    }
}

fn backend(
    rgw: &Rgw,
    prefix: &str,
    extra: &[&str],
    handle: tokio::runtime::Handle,
) -> PluginBackend {
    let secret = rgw.dir.join(format!("secret-{prefix}"));
    std::fs::write(&secret, &rgw.secret_key).unwrap();
    let mut cfg = vec![
        format!("endpoint=http://127.0.0.1:{}", rgw.port),
        format!("bucket={}", rgw.bucket),
        format!("access_key_id={}", rgw.access_key),
        format!("secret_access_key=file:{}", secret.display()),
        format!("prefix={prefix}/"),
    ];
    cfg.extend(extra.iter().map(|s| s.to_string()));
    let grants = Grants::default()
        .with_config(cfg.iter().map(String::as_str))
        .unwrap()
        .with_hosts([format!("127.0.0.1:{}", rgw.port).as_str()])
        .unwrap();
    let plugin = runtime().load_storage(&wasm("s3"), &grants).unwrap();
    PluginBackend::new(plugin, handle).unwrap()
}

fn kind(r: Result<Etag, sesshost_store::BackendError>) -> BackendErrorKind {
    match r {
        Ok(e) => panic!("succeeded with ETag {e}, expected a failure"),
        Err(e) => e.kind,
    }
}

fn single_requests(b: &PluginBackend, quoted: &PluginBackend) {
    let e1 = b
        .put_if("leases/a", b"one", Precondition::IfAbsent)
        .unwrap();
    assert!(!e1.0.starts_with('"'), "ETags cross without quotes: {e1}");
    assert_eq!(
        kind(b.put_if("leases/a", b"two", Precondition::IfAbsent)),
        BackendErrorKind::PreconditionFailed
    );
    let wrong = Etag("00000000000000000000000000000000".into());
    assert_eq!(
        kind(b.put_if("leases/a", b"two", Precondition::IfMatch(wrong))),
        BackendErrorKind::PreconditionFailed
    );
    // RGW's quirk: the quoted form never matches there.
    assert_eq!(
        kind(quoted.put_if("leases/a", b"two", Precondition::IfMatch(e1.clone()))),
        BackendErrorKind::PreconditionFailed
    );
    // `auto` (the default) falls back to the unquoted form.
    let e2 = b
        .put_if("leases/a", b"two", Precondition::IfMatch(e1.clone()))
        .unwrap();
    assert_ne!(e1, e2);
    assert_eq!(
        b.get_with_etag("leases/a").unwrap().unwrap(),
        (b"two".to_vec(), e2.clone())
    );
    let info = b.head("leases/a").unwrap().unwrap();
    assert_eq!((info.size, info.etag), (3, e2.clone()));
    assert_eq!(b.head("leases/none").unwrap(), None);
    assert_eq!(
        kind(b.put_if("leases/a", b"three", Precondition::IfMatch(e1.clone()))),
        BackendErrorKind::PreconditionFailed,
        "a stale ETag"
    );
    assert_eq!(
        kind(b.put_if("leases/none", b"x", Precondition::IfMatch(e2.clone()))),
        BackendErrorKind::PreconditionFailed,
        "If-Match on a missing key (RGW: 404 or 412)"
    );
    // A conditional body over 4 KiB takes the streamed path.
    let big = vec![7u8; 10_000];
    let eb = b
        .put_if("leases/big", &big, Precondition::IfAbsent)
        .unwrap();
    assert_eq!(
        kind(b.put_if("leases/big", &big, Precondition::IfAbsent)),
        BackendErrorKind::PreconditionFailed
    );
    b.put_if("leases/big", &big[..9_000], Precondition::IfMatch(eb))
        .unwrap();
    assert_eq!(b.get("leases/big").unwrap().unwrap().len(), 9_000);
    // Paginated listing with the PUTs' ETags.
    for i in 0..5 {
        b.put_if(
            &format!("list/{i}"),
            format!("v{i}").as_bytes(),
            Precondition::None,
        )
        .unwrap();
    }
    let p1 = b.list_info("list/", None, 2).unwrap();
    let keys: Vec<_> = p1.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["list/0", "list/1"]);
    assert_eq!(p1.next_start_after.as_deref(), Some("list/1"));
    assert_eq!(
        p1.entries[0].etag,
        Some(b.head("list/0").unwrap().unwrap().etag)
    );
    let p2 = b.list_info("list/", Some("list/3"), 2).unwrap();
    assert_eq!(p2.entries.len(), 1);
    assert_eq!(p2.next_start_after, None);
}

/// Two threads, `rounds` lock-step rounds each of a create-only race on a
/// fresh key and a compare-and-swap race on a counter; ambiguous answers
/// (RGW's 500 to losers) are resolved by reading back.
fn races(b: &PluginBackend, rounds: usize) -> (usize, usize, usize) {
    b.put_if("race/counter", b"0", Precondition::None).unwrap();
    let barrier = Barrier::new(2);
    let mut double_creates = 0;
    let mut acked = 0usize;
    let mut ambiguous = 0;
    for round in 0..rounds {
        let key = format!("race/k{round}");
        let res: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|i| {
                    let (barrier, key) = (&barrier, &key);
                    s.spawn(move || {
                        barrier.wait();
                        b.put_if(key, format!("w{i}").as_bytes(), Precondition::IfAbsent)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let held = b.get(&key).unwrap().unwrap();
        let mut wins = 0;
        for (i, r) in res.iter().enumerate() {
            match r {
                Ok(_) => wins += 1,
                Err(e) if e.kind == BackendErrorKind::PreconditionFailed => {}
                Err(e) if e.kind == BackendErrorKind::UnknownOutcome => {
                    ambiguous += 1;
                    if held == format!("w{i}").as_bytes() {
                        wins += 1;
                    }
                }
                Err(e) => panic!("round {round}: unexpected {e}"),
            }
        }
        if wins > 1 {
            double_creates += 1;
        }

        // CAS from the same ETag: both read, then both write n+1.
        let (bytes, etag) = b.get_with_etag("race/counter").unwrap().unwrap();
        let n: usize = std::str::from_utf8(&bytes).unwrap().parse().unwrap();
        let next = (n + 1).to_string();
        let res: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    let (barrier, etag, next) = (&barrier, &etag, &next);
                    s.spawn(move || {
                        barrier.wait();
                        b.put_if(
                            "race/counter",
                            next.as_bytes(),
                            Precondition::IfMatch(etag.clone()),
                        )
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ok = res.iter().filter(|r| r.is_ok()).count();
        assert!(ok <= 1, "round {round}: two CAS winners from one ETag");
        let now: usize = std::str::from_utf8(&b.get("race/counter").unwrap().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        for r in &res {
            match r {
                Err(e) if e.kind == BackendErrorKind::UnknownOutcome => ambiguous += 1,
                Err(e) if e.kind == BackendErrorKind::PreconditionFailed => {}
                Err(e) => panic!("round {round}: unexpected {e}"),
                Ok(_) => {}
            }
        }
        // Acknowledged = applied, exactly: an ack that is not in the
        // counter is a lost update.
        assert!(
            now == n || now == n + 1,
            "round {round}: counter {n} -> {now}"
        );
        assert!(
            ok == 0 || now == n + 1,
            "round {round}: acknowledged write lost"
        );
        acked += ok;
        if ok == 0 && now == n + 1 {
            acked += 1; // an ambiguous answer that was applied
        }
    }
    let fin: usize = std::str::from_utf8(&b.get("race/counter").unwrap().unwrap())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(fin, acked, "lost updates: {} ", acked.abs_diff(fin));
    (double_creates, acked, ambiguous)
}

#[test]
fn rgw_conditional_writes_probe_races_and_config() {
    let rgw = start_rgw();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let h = rt.handle().clone();

    let b = backend(&rgw, "cases", &[], h.clone());
    let quoted = backend(&rgw, "cases", &["etag_quotes=quoted"], h.clone());
    single_requests(&b, &quoted);

    let b = backend(&rgw, "probe", &[], h.clone());
    let report = conditional_writes(&b).unwrap_or_else(|e| panic!("probe refused RGW: {e}"));
    assert_eq!(report.create_double_wins + report.cas_double_wins, 0);
    println!(
        "probe on RGW: {:.0} ms, {} ambiguous answers resolved ({})",
        report.total.as_secs_f64() * 1000.0,
        report.ambiguous,
        report
            .checks
            .iter()
            .map(|c| format!("{} {:.0} ms", c.check, c.took.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let b = backend(&rgw, "race", &["etag_quotes=unquoted"], h.clone());
    let (double, acked, ambiguous) = races(&b, 100);
    println!(
        "RGW 2-writer race, 100 rounds: {double} double creates, 0 lost updates ({acked} CAS acknowledged), {ambiguous} ambiguous answers resolved"
    );
    assert_eq!(double, 0);

    // Conditional PUT latency (If-Match, unquoted, one writer).
    let mut etag = b.put_if("lat/k", b"0", Precondition::None).unwrap();
    let mut ms = Vec::new();
    for i in 0..50 {
        let t = Instant::now();
        etag = b
            .put_if(
                "lat/k",
                format!("{i}").as_bytes(),
                Precondition::IfMatch(etag),
            )
            .unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    println!(
        "RGW conditional PUT (If-Match) through the s3 plugin: p50 {:.1} ms, p90 {:.1} ms (50 sequential)",
        ms[25], ms[45]
    );

    // Two first pushes to one empty repository converge on one config.
    let b = Arc::new(backend(&rgw, "repo", &[], h.clone()));
    let barrier = Barrier::new(2);
    let keys: Vec<[u8; 32]> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let (b, barrier) = (&b, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    *open_repo_key(b.as_ref(), RepoUnlock::Passphrase(b"pw"), true)
                        .unwrap()
                        .as_bytes()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        keys[0], keys[1],
        "the two first pushes used different configs"
    );
    drop(rt);
}
