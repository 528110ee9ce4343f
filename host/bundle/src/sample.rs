//! Session-like sample states for tests, vectors and benchmarks: many
//! origins, cookies, JSON-ish localStorage values, typed IndexedDB records.
//! Deterministic for a given seed. Not used by the format itself.

use crate::state::*;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn token(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..n)
            .map(|_| A[(self.next() % 64) as usize] as char)
            .collect()
    }
}

/// A state of roughly `target_bytes` of record bodies spread over `origins`
/// origins (cookies, localStorage with JSON values, an IndexedDB per origin,
/// two tabs with sessionStorage).
pub fn session_like(seed: u64, origins: usize, target_bytes: usize) -> SessionState {
    let mut r = Lcg(seed ^ 0x5eed);
    let mut s = SessionState::new("sample", 1_700_000_000_000);
    s.meta.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0".into());
    s.meta.viewport = Some(Viewport {
        width: 1280,
        height: 800,
        device_scale_factor: 1.0,
    });
    s.meta.locale = Some("en-GB".into());
    s.meta.timezone = Some("Europe/London".into());
    s.meta.tags = vec!["sample".into()];
    let per_origin = target_bytes / origins.max(1);
    for o in 0..origins {
        let host = format!("app{o}.example{}.com", o % 7);
        let origin = format!("https://{host}");
        for c in 0..4 {
            s.cookies.push(Cookie {
                name: format!("c{c}_{}", r.token(4)),
                value: r.token(32),
                domain: if c % 2 == 0 {
                    format!(".{host}")
                } else {
                    host.clone()
                },
                path: "/".into(),
                expires: if c == 0 { None } else { Some(1.9e9 + c as f64) },
                http_only: c % 2 == 0,
                secure: true,
                same_site: Some(SameSite::Lax),
                ..Default::default()
            });
        }
        let mut ls = Vec::new();
        let mut size = 0;
        while size < per_origin * 3 / 4 {
            let key = format!(
                "app:{}:{}",
                ["user", "cache", "prefs", "feed"][(r.next() % 4) as usize],
                r.token(6)
            );
            let value = format!(
                "{{\"id\":{},\"name\":\"{}\",\"items\":[{},{},{}],\"active\":{},\"updated\":\"2026-11-{:02}T10:00:00Z\",\"token\":\"{}\"}}",
                r.next() % 100000,
                r.token(10),
                r.next() % 1000,
                r.next() % 1000,
                r.next() % 1000,
                r.next().is_multiple_of(2),
                1 + r.next() % 28,
                r.token(24)
            );
            size += key.len() + value.len();
            ls.push(StorageItem { key, value });
        }
        let mut records = Vec::new();
        let mut isize = 0;
        while isize < per_origin / 4 {
            let id = records.len() as f64;
            let bytes: Vec<u8> = (0..32).map(|_| r.next() as u8).collect();
            isize += 200;
            records.push(IdbRecord {
                key: JsValue::Number(JsNumber(id)),
                value: JsValue::Object(vec![
                    ("id".into(), JsValue::Number(JsNumber(id))),
                    (
                        "title".into(),
                        JsValue::String(format!("note {}", r.token(12))),
                    ),
                    ("at".into(), JsValue::Date(JsNumber(1.7e12 + id))),
                    (
                        "raw".into(),
                        JsValue::TypedArray(JsTypedArray {
                            kind: "Uint8Array".into(),
                            bytes: Bytes(bytes),
                        }),
                    ),
                    (
                        "tags".into(),
                        JsValue::Set(vec![
                            JsValue::String("a".into()),
                            JsValue::String("b".into()),
                        ]),
                    ),
                ]),
            });
        }
        s.origins.push(OriginState {
            origin,
            local_storage: ls,
            indexed_db: vec![IdbDatabase {
                name: "app".into(),
                version: 3,
                object_stores: vec![IdbObjectStore {
                    name: "notes".into(),
                    key_path: Some(KeyPath::Single("id".into())),
                    auto_increment: false,
                    key_generator: None,
                    indexes: vec![IdbIndex {
                        name: "by_title".into(),
                        key_path: KeyPath::Single("title".into()),
                        unique: false,
                        multi_entry: false,
                    }],
                    records,
                }],
            }],
        });
    }
    for t in 0..2.min(origins) {
        let origin = s.origins[t].origin.clone();
        s.tabs.push(Tab {
            url: format!("{origin}/dashboard"),
            title: "Dashboard".into(),
            session_storage: vec![OriginStorage {
                origin: origin.clone(),
                items: vec![StorageItem {
                    key: "wizard.step".into(),
                    value: "3".into(),
                }],
            }],
            history: vec![
                HistoryEntry {
                    url: format!("{origin}/login"),
                    title: "Log in".into(),
                },
                HistoryEntry {
                    url: format!("{origin}/dashboard"),
                    title: "Dashboard".into(),
                },
            ],
            current_index: 1,
        });
    }
    s
}
