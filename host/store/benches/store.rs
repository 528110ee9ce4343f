//! Store benchmark (prints figures; not a pass/fail test).
//!
//! `cargo bench -p sesshost-store` — a session of 10 origins, 1,000 cookies,
//! 10,000 localStorage items and 1 MB of IndexedDB: first save, load,
//! second save with one origin changed (bytes written), unchanged save.
//! Medians of several runs on a local directory (with fsyncs).

use std::time::Instant;

use sessbundle::state::*;
use sesshost_store::{Home, NewSession, now_ms};

const RUNS: usize = 7;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn token(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..n)
            .map(|_| A[(self.next() % 64) as usize] as char)
            .collect()
    }
}

fn session() -> SessionState {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut s = SessionState::new("bench", 0);
    for o in 0..10 {
        let site = format!("site{o}.example");
        for c in 0..100 {
            s.cookies.push(Cookie {
                name: format!("c{c}"),
                value: r.token(40),
                domain: format!(".{site}"),
                path: "/".into(),
                expires: Some(2e9),
                http_only: c % 3 == 0,
                secure: true,
                same_site: Some(SameSite::Lax),
                ..Default::default()
            });
        }
        let local_storage = (0..1000)
            .map(|i| StorageItem {
                key: format!("app:cache:{i}"),
                value: format!(
                    "{{\"id\":{i},\"token\":\"{}\",\"label\":\"item number {i}\"}}",
                    r.token(24)
                ),
            })
            .collect();
        // ~100 KB of IndexedDB per origin.
        let records = (0..100)
            .map(|i| IdbRecord {
                key: JsValue::Number(JsNumber(f64::from(i))),
                value: JsValue::Object(vec![
                    ("id".into(), JsValue::Number(JsNumber(f64::from(i)))),
                    (
                        "title".into(),
                        JsValue::String(format!("message {i} {}", r.token(200))),
                    ),
                    ("at".into(), JsValue::Date(JsNumber(1.7e12 + f64::from(i)))),
                    (
                        "blob".into(),
                        JsValue::TypedArray(JsTypedArray {
                            kind: "Uint8Array".into(),
                            bytes: Bytes((0..700).map(|_| r.next() as u8).collect()),
                        }),
                    ),
                ]),
            })
            .collect();
        s.origins.push(OriginState {
            origin: format!("https://{site}"),
            local_storage,
            indexed_db: vec![IdbDatabase {
                name: "app".into(),
                version: 1,
                object_stores: vec![IdbObjectStore {
                    name: "messages".into(),
                    key_path: Some(KeyPath::Single("id".into())),
                    records,
                    ..Default::default()
                }],
            }],
        });
    }
    s
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let state = session();
    let idb_bytes: usize = state
        .origins
        .iter()
        .flat_map(|o| &o.indexed_db[0].object_stores[0].records)
        .map(|r| match &r.value {
            JsValue::Object(f) => f
                .iter()
                .map(|(_, v)| match v {
                    JsValue::String(s) => s.len(),
                    JsValue::TypedArray(t) => t.bytes.len(),
                    _ => 8,
                })
                .sum::<usize>(),
            _ => 0,
        })
        .sum();
    let mut changed = state.clone();
    changed.origins[3].local_storage[10].value = "changed".into();

    let (mut first, mut load, mut second, mut same) = (vec![], vec![], vec![], vec![]);
    let mut reports = None;
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let store = home.store().unwrap();
        store
            .create(
                &NewSession {
                    name: "bench".into(),
                    ..Default::default()
                },
                now_ms(),
            )
            .unwrap();
        let t = Instant::now();
        let r1 = store.save("bench", &state, now_ms()).unwrap();
        first.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let back = store.load("bench").unwrap();
        load.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(back.cookies.len(), 1000);
        let t = Instant::now();
        let r2 = store.save("bench", &changed, now_ms()).unwrap();
        second.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let r3 = store.save("bench", &changed, now_ms()).unwrap();
        same.push(t.elapsed().as_secs_f64() * 1e3);
        reports = Some((r1, r2, r3));
    }
    let (r1, r2, r3) = reports.unwrap();
    println!(
        "session: 10 origins, 1000 cookies, 10000 localStorage items, {:.2} MB IndexedDB payload; {:.2} MB of records",
        idb_bytes as f64 / 1e6,
        r1.logical_bytes as f64 / 1e6
    );
    println!("medians of {RUNS} runs, local directory with fsync:");
    println!(
        "  first save            {:8.1} ms  ({} chunks, {} bytes written)",
        median(first),
        r1.chunks_written,
        r1.bytes_written
    );
    println!("  load                  {:8.1} ms", median(load));
    println!(
        "  save, 1 origin changed{:8.1} ms  ({} of {} chunks, {} bytes written of {} logical)",
        median(second),
        r2.chunks_written,
        r2.chunks_total,
        r2.bytes_written,
        r2.logical_bytes
    );
    println!(
        "  save, nothing changed {:8.1} ms  ({} chunks, {} bytes written)",
        median(same),
        r3.chunks_written,
        r3.bytes_written
    );
}
