//! The human-readable state summary ([`state_summary`]): per site, the
//! cookies (names, flags, expiry), the origins' storage sizes and key
//! counts; the tabs; totals. Never a value unless `values` is asked for.
//!
//! Sizes are bytes of UTF-8 text (`key` + `value` for Web Storage; browsers
//! count UTF-16 code units, so non-ASCII text may differ). IndexedDB bytes
//! are the length of each record's JSON encoding in the state model (a
//! stable, format-independent estimate, not the browser's on-disk size).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::cookies::cookie_json;
use sessbundle::interop::dates::format_rfc3339;
use sessbundle::state::{SessionState, StorageItem};

/// The host of an origin `scheme://host[:port]` (lower case; the origin
/// itself when it has no `://`).
fn origin_host(origin: &str) -> String {
    let rest = origin.split_once("://").map_or(origin, |(_, r)| r);
    let rest = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = if let Some(v6) = rest.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        rest.rsplit_once(':').map_or(rest, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                rest
            }
        })
    };
    host.to_ascii_lowercase()
}

/// Counts bytes written through it (sizes without buffering the encoding).
struct CountingWriter(u64);

impl std::io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn storage_bytes(items: &[StorageItem]) -> u64 {
    items
        .iter()
        .map(|i| (i.key.len() + i.value.len()) as u64)
        .sum()
}

#[derive(Default)]
struct OriginSum {
    ls_keys: u64,
    ls_bytes: u64,
    ss_keys: u64,
    ss_bytes: u64,
    idb_databases: u64,
    idb_stores: u64,
    idb_records: u64,
    idb_bytes: u64,
    ls_items: Vec<(String, String)>,
    ss_items: Vec<(String, String)>,
}

/// The summary of `state` as JSON:
/// `{name, viewport: {width, height} | null, sites: [{site, cookies: [...], origins: [{origin, local_storage:
/// {keys, bytes}, session_storage: {keys, bytes}, indexed_db: {databases,
/// object_stores, records, bytes}}]}], tabs: [{url, title}], totals}`.
/// Cookie values and storage items appear only with `values`.
pub fn state_summary(state: &SessionState, values: bool) -> Value {
    let mut origins: BTreeMap<String, OriginSum> = BTreeMap::new();
    for o in &state.origins {
        let s = origins.entry(o.origin.clone()).or_default();
        s.ls_keys += o.local_storage.len() as u64;
        s.ls_bytes += storage_bytes(&o.local_storage);
        if values {
            s.ls_items.extend(
                o.local_storage
                    .iter()
                    .map(|i| (i.key.clone(), i.value.clone())),
            );
        }
        s.idb_databases += o.indexed_db.len() as u64;
        for db in &o.indexed_db {
            s.idb_stores += db.object_stores.len() as u64;
            for st in &db.object_stores {
                s.idb_records += st.records.len() as u64;
                let mut w = CountingWriter(0);
                for r in &st.records {
                    let _ = serde_json::to_writer(&mut w, r);
                }
                s.idb_bytes += w.0;
            }
        }
    }
    for tab in &state.tabs {
        for ss in &tab.session_storage {
            let s = origins.entry(ss.origin.clone()).or_default();
            s.ss_keys += ss.items.len() as u64;
            s.ss_bytes += storage_bytes(&ss.items);
            if values {
                s.ss_items
                    .extend(ss.items.iter().map(|i| (i.key.clone(), i.value.clone())));
            }
        }
    }

    let mut sites: BTreeMap<String, (Vec<Value>, Vec<Value>)> = BTreeMap::new();
    for c in &state.cookies {
        let mut j = cookie_json(c, values);
        if let Some(m) = j.as_object_mut() {
            m.remove("expires");
            let exp = c.expires.and_then(|e| {
                if e.is_finite() {
                    format_rfc3339(e as i64)
                } else {
                    None
                }
            });
            m.insert("session".into(), json!(c.expires.is_none()));
            m.insert("expires".into(), exp.map_or(Value::Null, Value::String));
        }
        sites.entry(c.site()).or_default().0.push(j);
    }
    let (mut t_ls_k, mut t_ls_b, mut t_ss_k, mut t_ss_b, mut t_idb_r, mut t_idb_b) =
        (0, 0, 0, 0, 0, 0);
    for (origin, s) in &origins {
        t_ls_k += s.ls_keys;
        t_ls_b += s.ls_bytes;
        t_ss_k += s.ss_keys;
        t_ss_b += s.ss_bytes;
        t_idb_r += s.idb_records;
        t_idb_b += s.idb_bytes;
        let mut ls = json!({"keys": s.ls_keys, "bytes": s.ls_bytes});
        let mut ss = json!({"keys": s.ss_keys, "bytes": s.ss_bytes});
        if values {
            let items = |v: &[(String, String)]| {
                Value::Object(
                    v.iter()
                        .map(|(k, v)| (k.clone(), json!(v)))
                        .collect::<Map<_, _>>(),
                )
            };
            ls["items"] = items(&s.ls_items);
            ss["items"] = items(&s.ss_items);
        }
        let o = json!({
            "origin": origin,
            "local_storage": ls,
            "session_storage": ss,
            "indexed_db": {"databases": s.idb_databases, "object_stores": s.idb_stores, "records": s.idb_records, "bytes": s.idb_bytes},
        });
        sites.entry(origin_host(origin)).or_default().1.push(o);
    }
    let sites: Vec<Value> = sites
        .into_iter()
        .map(|(site, (cookies, origins))| json!({"site": site, "cookies": cookies, "origins": origins}))
        .collect();
    let n_sites = sites.len();
    let tabs: Vec<Value> = state
        .tabs
        .iter()
        .map(|t| json!({"url": t.url, "title": t.title}))
        .collect();
    json!({
        "name": state.meta.name,
        "viewport": state.meta.viewport.as_ref().map(|v| json!({"width": v.width, "height": v.height})),
        "sites": sites,
        "tabs": tabs,
        "totals": {
            "sites": n_sites,
            "cookies": state.cookies.len(),
            "origins": origins.len(),
            "local_storage_keys": t_ls_k,
            "local_storage_bytes": t_ls_b,
            "session_storage_keys": t_ss_k,
            "session_storage_bytes": t_ss_b,
            "indexed_db_records": t_idb_r,
            "indexed_db_bytes": t_idb_b,
            "tabs": state.tabs.len(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessbundle::state::*;

    fn sample() -> SessionState {
        SessionState {
            meta: Meta {
                name: "demo".into(),
                ..Meta::default()
            },
            cookies: vec![
                Cookie {
                    name: "sid".into(),
                    value: "SECRET-COOKIE".into(),
                    domain: ".example.com".into(),
                    path: "/".into(),
                    expires: Some(1_900_000_000.0),
                    secure: true,
                    ..Cookie::default()
                },
                Cookie {
                    name: "pref".into(),
                    value: "SECRET-PREF".into(),
                    domain: "other.org".into(),
                    path: "/".into(),
                    ..Cookie::default()
                },
            ],
            origins: vec![OriginState {
                origin: "https://example.com".into(),
                local_storage: vec![
                    StorageItem {
                        key: "k1".into(),
                        value: "SECRET-LS".into(),
                    },
                    StorageItem {
                        key: "k2".into(),
                        value: "é".into(),
                    },
                ],
                indexed_db: vec![IdbDatabase {
                    name: "db".into(),
                    version: 1,
                    object_stores: vec![IdbObjectStore {
                        name: "st".into(),
                        records: vec![IdbRecord {
                            key: JsValue::Number(JsNumber(1.0)),
                            value: JsValue::String("SECRET-IDB".into()),
                        }],
                        ..IdbObjectStore::default()
                    }],
                }],
            }],
            tabs: vec![Tab {
                url: "https://example.com/a".into(),
                title: "A".into(),
                session_storage: vec![OriginStorage {
                    origin: "https://example.com:443".into(),
                    items: vec![StorageItem {
                        key: "s".into(),
                        value: "SECRET-SS".into(),
                    }],
                }],
                ..Tab::default()
            }],
            ..SessionState::default()
        }
    }

    #[test]
    fn no_values_unless_asked() {
        let s = sample();
        let text = state_summary(&s, false).to_string();
        assert!(!text.contains("SECRET"), "{text}");
        let with = state_summary(&s, true).to_string();
        for v in ["SECRET-COOKIE", "SECRET-PREF", "SECRET-LS", "SECRET-SS"] {
            assert!(with.contains(v), "{v} missing");
        }
        assert!(
            !with.contains("SECRET-IDB"),
            "IndexedDB values are sizes only"
        );
    }

    #[test]
    fn groups_sizes_totals() {
        let v = state_summary(&sample(), false);
        let sites = v["sites"].as_array().unwrap();
        assert_eq!(
            sites
                .iter()
                .map(|s| s["site"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["example.com", "other.org"]
        );
        let ex = &sites[0];
        assert_eq!(ex["cookies"][0]["name"], "sid");
        assert_eq!(ex["cookies"][0]["expires"], "2030-03-17T17:46:40Z");
        assert_eq!(ex["cookies"][0]["session"], false);
        assert_eq!(sites[1]["cookies"][0]["session"], true);
        assert_eq!(sites[1]["cookies"][0]["expires"], Value::Null);
        let origins = ex["origins"].as_array().unwrap();
        assert_eq!(origins.len(), 2); // https://example.com and :443 as reported
        let o = &origins[0];
        assert_eq!(o["local_storage"]["keys"], 2);
        assert_eq!(o["local_storage"]["bytes"], 2 + 9 + 2 + 2);
        assert_eq!(o["indexed_db"]["records"], 1);
        assert!(o["indexed_db"]["bytes"].as_u64().unwrap() > 10);
        assert_eq!(origins[1]["session_storage"]["keys"], 1);
        assert_eq!(v["tabs"][0]["title"], "A");
        assert_eq!(v["totals"]["cookies"], 2);
        assert_eq!(v["totals"]["session_storage_bytes"], 10);
        assert_eq!(v["totals"]["tabs"], 1);
        let empty = state_summary(&SessionState::default(), false);
        assert_eq!(empty["totals"]["cookies"], 0);
    }

    #[test]
    fn origin_hosts() {
        assert_eq!(origin_host("https://Example.com:8443"), "example.com");
        assert_eq!(origin_host("http://[::1]:80"), "::1");
        assert_eq!(origin_host("file://"), "");
        assert_eq!(origin_host("weird"), "weird");
    }
}
