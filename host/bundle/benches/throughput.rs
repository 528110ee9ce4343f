//! Seal/unseal throughput and unseal peak memory. Prints figures; asserts
//! nothing (speed is measured here, never in tests).
//!
//!     cargo bench -p sessbundle --bench throughput            # all
//!     cargo bench -p sessbundle --bench throughput -- quick   # 1 MB + 100 MB only
//!
//! Sizes: 1 MB and 100 MB of session-like state (many origins, JSON-ish
//! localStorage, typed IndexedDB) and of random bytes (IndexedDB
//! ArrayBuffers); then peak RSS of unsealing a 1 GiB bundle in a child
//! process; then `tar | zstd -1 | age` on the same session-like data, side by
//! side, when `tar`, `zstd` and `age` are installed.

use std::io::{BufWriter, Cursor, Write};
use std::time::Instant;

use sessbundle::keys::{OsRandom, SeededRandom};
use sessbundle::state::*;
use sessbundle::*;

fn key() -> (Unlock, SymmetricKey) {
    let k = SymmetricKey::generate(&mut SeededRandom::new(b"bench"));
    (Unlock::Key(k.clone()), k)
}

fn random_state(bytes: usize) -> SessionState {
    let mut s = SessionState::new("random", 0);
    let mut rng = OsRandom;
    let per_origin = 1 << 20;
    let mut left = bytes;
    let mut o = 0;
    while left > 0 {
        let n = left.min(per_origin);
        let mut records = Vec::new();
        let mut k = 0;
        let mut m = n;
        while m > 0 {
            let len = m.min(64 * 1024);
            let mut b = vec![0u8; len];
            sessbundle::keys::Randomness::fill(&mut rng, &mut b);
            records.push(IdbRecord {
                key: JsValue::Number(JsNumber(k as f64)),
                value: JsValue::ArrayBuffer(Bytes(b)),
            });
            k += 1;
            m -= len;
        }
        s.origins.push(OriginState {
            origin: format!("https://blob{o}.example"),
            local_storage: vec![],
            indexed_db: vec![IdbDatabase {
                name: "blobs".into(),
                version: 1,
                object_stores: vec![IdbObjectStore {
                    name: "b".into(),
                    records,
                    ..Default::default()
                }],
            }],
        });
        left -= n;
        o += 1;
    }
    s
}

fn state_bytes(s: &SessionState) -> usize {
    sessbundle::records::split(s)
        .iter()
        .map(|r| r.body.len())
        .sum()
}

fn mbps(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64());
        last = Some(v);
    }
    (best, last.unwrap())
}

fn run_case(label: &str, s: &SessionState) {
    let (unlock, _) = key();
    let plain = state_bytes(s);
    let reps = if plain > 50_000_000 { 3 } else { 10 };
    let (seal_s, bundle) = best_of(reps, || {
        let opts = SealOptions {
            created_ms: 0,
            ..Default::default()
        };
        seal(
            s,
            Vec::with_capacity(plain),
            std::slice::from_ref(&unlock),
            opts,
        )
        .unwrap()
        .0
    });
    // Payload unseal: decrypt, verify every segment and chunk id, decompress.
    let (open_s, n) = best_of(reps, || {
        let mut r = BundleReader::open(Cursor::new(&bundle), &unlock).unwrap();
        let mut n = 0usize;
        r.for_each_record(|rec| {
            n += rec.body.len();
            Ok(())
        })
        .unwrap();
        n
    });
    assert_eq!(n, plain);
    // Full unseal: also decode into a SessionState.
    let (state_s, _) = best_of(reps, || unseal(Cursor::new(&bundle), &unlock).unwrap());
    println!(
        "{label:<28} state {:>7.1} MB  bundle {:>7.1} MB ({:>4.2}x)  seal {:>7.0} MB/s  unseal payload {:>7.0} MB/s  unseal to SessionState {:>6.0} MB/s",
        plain as f64 / 1e6,
        bundle.len() as f64 / 1e6,
        plain as f64 / bundle.len() as f64,
        mbps(plain, seal_s),
        mbps(plain, open_s),
        mbps(plain, state_s),
    );
}

fn peak_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Child mode: unseal FILE record by record, discard, print peak RSS.
fn child_unseal(path: &str) {
    let (unlock, _) = key();
    let f = std::fs::File::open(path).unwrap();
    let t = Instant::now();
    let mut r = BundleReader::open(std::io::BufReader::with_capacity(1 << 17, f), &unlock).unwrap();
    let mut n = 0u64;
    r.for_each_record(|rec| {
        n += rec.body.len() as u64;
        Ok(())
    })
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!("{n} {secs} {}", peak_rss_kib());
}

fn one_gib() {
    let path = std::env::temp_dir().join(format!(
        "sessbundle-bench-1g-{}.sessbundle",
        std::process::id()
    ));
    let (unlock, _) = key();
    // Write 1 GiB of incompressible records without holding them in memory.
    {
        let f = std::fs::File::create(&path).unwrap();
        let mut w = BundleWriter::new(
            BufWriter::with_capacity(1 << 20, f),
            std::slice::from_ref(&unlock),
            SealOptions {
                created_ms: 0,
                ..Default::default()
            },
            &mut OsRandom,
        )
        .unwrap();
        let meta = sessbundle::records::split(&SessionState::new("1g", 0)).remove(0);
        w.add_record(meta.kind, &meta.key, &meta.body).unwrap();
        let mut body = vec![0u8; 1 << 20];
        for i in 0..1024 {
            sessbundle::keys::Randomness::fill(&mut OsRandom, &mut body);
            let o = OriginState {
                origin: format!("https://o{i}.example"),
                indexed_db: vec![IdbDatabase {
                    name: "d".into(),
                    version: 1,
                    object_stores: vec![IdbObjectStore {
                        name: "s".into(),
                        records: vec![IdbRecord {
                            key: JsValue::Null,
                            value: JsValue::ArrayBuffer(Bytes(body.clone())),
                        }],
                        ..Default::default()
                    }],
                }],
                ..Default::default()
            };
            let rec = rmp_serde::to_vec_named(&o).unwrap();
            w.add_record(sessbundle::records::RecordKind::Origin, &o.origin, &rec)
                .unwrap();
        }
        let (mut out, _) = w.finish().unwrap();
        out.flush().unwrap();
    }
    let size = std::fs::metadata(&path).unwrap().len();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env("SESSBUNDLE_BENCH_CHILD", &path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() == 3 {
        println!(
            "unseal 1 GiB from disk          bundle {:.0} MiB: {:.0} MB/s, peak RSS {:.1} MiB (child process)",
            size as f64 / (1 << 20) as f64,
            v[0] / v[1] / 1e6,
            v[2] / 1024.0
        );
    } else {
        println!(
            "1 GiB child failed: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_file(&path);
}

fn have(cmd: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd} >/dev/null"))
        .status()
        .is_ok_and(|s| s.success())
}

fn versus_age(s: &SessionState) {
    if !(have("tar") && have("zstd") && have("age") && have("age-keygen")) {
        println!("tar | zstd -1 | age: skipped (apt-get install zstd age)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("sessbundle-bench-age-{}", std::process::id()));
    let data = dir.join("state");
    std::fs::create_dir_all(&data).unwrap();
    // The same state as files, one JSON file per origin plus cookies and tabs.
    let plain = state_bytes(s);
    for (i, o) in s.origins.iter().enumerate() {
        std::fs::write(
            data.join(format!("origin{i}.json")),
            serde_json::to_vec(o).unwrap(),
        )
        .unwrap();
    }
    std::fs::write(
        data.join("cookies.json"),
        serde_json::to_vec(&s.cookies).unwrap(),
    )
    .unwrap();
    std::fs::write(data.join("tabs.json"), serde_json::to_vec(&s.tabs).unwrap()).unwrap();
    let json_bytes: u64 = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let key = dir.join("age.key");
    std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .unwrap();
    let cmd = format!(
        "tar -C {d} -cf - state | zstd -1 -q -c | age -e -i {k} -o {o}",
        d = dir.display(),
        k = key.display(),
        o = dir.join("out.age").display()
    );
    let (secs, _) = best_of(3, || {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .status()
            .unwrap()
    });
    let (unlock, _) = key_pair_for_compare();
    let (seal_s, b) = best_of(3, || {
        seal(
            s,
            Vec::with_capacity(plain),
            std::slice::from_ref(&unlock),
            SealOptions {
                created_ms: 0,
                ..Default::default()
            },
        )
        .unwrap()
        .0
    });
    let age_size = std::fs::metadata(dir.join("out.age")).unwrap().len();
    println!(
        "side by side, same session-like state ({:.0} MB as JSON files, {:.0} MB as records):\n  tar | zstd -1 | age   {:>6.0} ms  -> {:.1} MB\n  sessbundle seal       {:>6.0} ms  -> {:.1} MB",
        json_bytes as f64 / 1e6,
        plain as f64 / 1e6,
        secs * 1e3,
        age_size as f64 / 1e6,
        seal_s * 1e3,
        b.len() as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn key_pair_for_compare() -> (Unlock, SymmetricKey) {
    key()
}

fn main() {
    if let Ok(p) = std::env::var("SESSBUNDLE_BENCH_CHILD") {
        child_unseal(&p);
        return;
    }
    let quick = std::env::args().any(|a| a == "quick");
    println!("sessbundle throughput (best of N, key-file slot so no Argon2 in the figures)");
    let t = Instant::now();
    let (unlock, _) = key();
    let pw = Unlock::Passphrase(Passphrase::new("bench"));
    let small = sessbundle::sample::session_like(1, 8, 1_000_000);
    let b = seal(
        &small,
        Vec::new(),
        std::slice::from_ref(&pw),
        SealOptions::default(),
    )
    .unwrap()
    .0;
    let kdf = Instant::now();
    let _ = unseal(Cursor::new(&b), &pw).unwrap();
    println!(
        "(for scale: unsealing 1 MB with a default Argon2id passphrase slot takes {:.0} ms)",
        kdf.elapsed().as_secs_f64() * 1e3
    );
    let _ = unlock;
    run_case("session-like 1 MB", &small);
    let big = sessbundle::sample::session_like(2, 400, 100_000_000);
    run_case("session-like 100 MB", &big);
    run_case("random bytes 1 MB", &random_state(1_000_000));
    run_case("random bytes 100 MB", &random_state(100_000_000));
    versus_age(&big);
    if !quick {
        one_gib();
    }
    println!("total bench time {:.1} s", t.elapsed().as_secs_f64());
}
