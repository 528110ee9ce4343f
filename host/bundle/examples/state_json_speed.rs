//! In-process timing of `state_json` seal and unseal on the
//! `seal_pipeline` bench's input (no file I/O, no process start):
//! `cargo run --release -p sessbundle --example state_json_speed [MB] [RUNS] [seal|unseal]`.

use std::io::Cursor;
use std::path::Path;
use std::time::Instant;

use sessbundle::keys::{OsRandom, SeededRandom};
use sessbundle::state_json::{seal_from_json, unseal_to_json};
use sessbundle::*;

/// CPU seconds this process used so far (all threads), from /proc: on a
/// loaded machine wall time says little, CPU time still does.
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // utime and stime are fields 14 and 15 (12 and 13 after the name).
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mb: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    // `seal` or `unseal` times only that (for `perf record`); else both
    // and serde's pieces.
    let only = args.next().unwrap_or_default();
    let state = sessbundle::sample::session_like(42, 400, mb * 1_000_000 * 7 / 10);
    let json = serde_json::to_vec(&state).expect("json");
    drop(state);
    if let Ok(path) = std::env::var("STATE_JSON_OUT") {
        std::fs::write(path, &json).expect("write the state JSON");
        return;
    }
    let k = SymmetricKey::generate(&mut SeededRandom::new(b"speed"));
    let u = Unlock::Key(k);
    let mbs = |t: f64| json.len() as f64 / t / 1e6;
    let mut bundle = Vec::new();
    for i in 0..runs.max(1) {
        if only == "unseal" && i > 0 {
            break;
        }
        let (s, c) = (Instant::now(), cpu());
        let w = BundleWriter::new(
            Vec::with_capacity(json.len() / 2),
            std::slice::from_ref(&u),
            SealOptions {
                zstd_level: std::env::var("ZSTD_LEVEL")
                    .ok()
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(SealOptions::default().zstd_level),
                ..SealOptions::default()
            },
            &mut OsRandom,
        )
        .expect("writer");
        bundle = seal_from_json(&json, Path::new("STATE.json"), w)
            .expect("seal")
            .0;
        println!(
            "seal   {:>7.1} MB/s, {:.2} CPU s ({} MB JSON -> {:.1} MB bundle)",
            mbs(s.elapsed().as_secs_f64()),
            cpu() - c,
            json.len() / 1_000_000,
            bundle.len() as f64 / 1e6
        );
    }
    if only == "seal" {
        return;
    }
    let mut out = Vec::with_capacity(json.len() + 1024);
    for _ in 0..runs {
        out.clear();
        let (s, c) = (Instant::now(), cpu());
        let mut r = BundleReader::open(Cursor::new(&bundle), &u).expect("open");
        unseal_to_json(&mut r, &mut out).expect("unseal");
        println!(
            "unseal {:>7.1} MB/s, {:.2} CPU s",
            mbs(s.elapsed().as_secs_f64()),
            cpu() - c
        );
    }
    if only == "unseal" {
        return;
    }
    let s = Instant::now();
    let st: SessionState = serde_json::from_slice(&json).expect("parse");
    println!(
        "serde parse only {:>7.1} MB/s",
        mbs(s.elapsed().as_secs_f64())
    );
    let s = Instant::now();
    let recs = sessbundle::records::split(&st);
    println!(
        "msgpack encode only {:>7.1} MB/s",
        mbs(s.elapsed().as_secs_f64())
    );
    let s = Instant::now();
    let _ = sessbundle::records::join(&recs).expect("join");
    println!(
        "msgpack decode only {:>7.1} MB/s",
        mbs(s.elapsed().as_secs_f64())
    );
    let s = Instant::now();
    let j = serde_json::to_vec(&st).expect("json");
    println!(
        "json print only {:>7.1} MB/s",
        mbs(s.elapsed().as_secs_f64())
    );
    drop(j);
}
