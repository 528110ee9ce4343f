//! In-process timing of `state_json` seal and unseal on the
//! `seal_pipeline` bench's input (no file I/O, no process start):
//! `cargo run --release -p sessbundle --example state_json_speed [MB] [RUNS]`.

use std::io::Cursor;
use std::path::Path;
use std::time::Instant;

use sessbundle::keys::{OsRandom, SeededRandom};
use sessbundle::state_json::{seal_from_json, unseal_to_json};
use sessbundle::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let mb: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let state = sessbundle::sample::session_like(42, 400, mb * 1_000_000 * 7 / 10);
    let json = serde_json::to_vec(&state).expect("json");
    drop(state);
    let k = SymmetricKey::generate(&mut SeededRandom::new(b"speed"));
    let u = Unlock::Key(k);
    let mbs = |t: f64| json.len() as f64 / t / 1e6;
    let mut bundle = Vec::new();
    for _ in 0..runs {
        let s = Instant::now();
        let w = BundleWriter::new(
            Vec::with_capacity(json.len() / 2),
            std::slice::from_ref(&u),
            SealOptions::default(),
            &mut OsRandom,
        )
        .expect("writer");
        bundle = seal_from_json(&json, Path::new("STATE.json"), w)
            .expect("seal")
            .0;
        println!(
            "seal   {:>7.1} MB/s ({} MB JSON)",
            mbs(s.elapsed().as_secs_f64()),
            json.len() / 1_000_000
        );
    }
    let mut out = Vec::with_capacity(json.len() + 1024);
    for _ in 0..runs {
        out.clear();
        let s = Instant::now();
        let mut r = BundleReader::open(Cursor::new(&bundle), &u).expect("open");
        unseal_to_json(&mut r, &mut out).expect("unseal");
        println!("unseal {:>7.1} MB/s", mbs(s.elapsed().as_secs_f64()));
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
