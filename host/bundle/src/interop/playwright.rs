//! Playwright `storageState` JSON (`context.storageState()` /
//! `newContext({ storageState })`) both ways, including the `indexedDB`
//! field of Playwright 1.51+.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::json::{Json, whole_as_int};
use super::serialized::{Budget, decode, decode_plain, encode};
use super::{InteropError, InteropLimits, Loss, Warnings, state_level_warnings};
use crate::state::*;

// ---------------------------------------------------------------------------
// Playwright's storageState shape.

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PwState {
    #[serde(default)]
    cookies: Vec<PwCookie>,
    #[serde(default)]
    origins: Vec<PwOrigin>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PwCookie {
    name: String,
    value: String,
    domain: String,
    path: String,
    /// Seconds since the epoch; -1 for a session cookie. Whole numbers are
    /// written as integers, as Playwright does.
    #[serde(serialize_with = "whole_as_int", default = "session_expiry")]
    expires: f64,
    #[serde(default)]
    http_only: bool,
    #[serde(default)]
    secure: bool,
    /// Always written; tolerated absent on read (hand-written files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    same_site: Option<SameSite>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    partition_key: Option<String>,
    #[serde(
        rename = "_crHasCrossSiteAncestor",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    cr_has_cross_site_ancestor: Option<bool>,
}

fn session_expiry() -> f64 {
    -1.0
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PwOrigin {
    origin: String,
    #[serde(default)]
    local_storage: Vec<PwNameValue>,
    #[serde(rename = "indexedDB", default, skip_serializing_if = "Vec::is_empty")]
    indexed_db: Vec<PwDatabase>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct PwNameValue {
    name: String,
    value: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct PwDatabase {
    name: String,
    version: u64,
    #[serde(default)]
    stores: Vec<PwStore>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PwStore {
    name: String,
    #[serde(default)]
    auto_increment: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_path_array: Option<Vec<String>>,
    #[serde(default)]
    records: Vec<PwRecord>,
    #[serde(default)]
    indexes: Vec<PwIndex>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PwRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_encoded: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_encoded: Option<Json>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PwIndex {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_path_array: Option<Vec<String>>,
    #[serde(default)]
    multi_entry: bool,
    #[serde(default)]
    unique: bool,
}

fn split_key_path(k: &Option<KeyPath>) -> (Option<String>, Option<Vec<String>>) {
    match k {
        None => (None, None),
        Some(KeyPath::Single(s)) => (Some(s.clone()), None),
        Some(KeyPath::Compound(v)) => (None, Some(v.clone())),
    }
}

fn join_key_path(single: Option<String>, array: Option<Vec<String>>) -> Option<KeyPath> {
    match (array, single) {
        (Some(a), _) => Some(KeyPath::Compound(a)),
        (None, Some(s)) => Some(KeyPath::Single(s)),
        (None, None) => None,
    }
}

// ---------------------------------------------------------------------------
// SessionState -> Playwright

/// A state as Playwright `storageState` JSON (pretty-printed), with
/// warnings about what it cannot hold.
pub fn to_playwright(state: &SessionState) -> (String, Warnings) {
    let mut warnings = Warnings::new();
    let mut loss = Loss::default();
    let mut cookies = Vec::with_capacity(state.cookies.len());
    for c in &state.cookies {
        if c.same_site.is_none() {
            loss.add("cookie without SameSite written as \"Lax\" (Playwright requires a value; Chromium's default is Lax)");
        }
        if c.priority.is_some_and(|p| p != CookiePriority::Medium)
            || c.source_scheme.is_some()
            || c.source_port.is_some()
        {
            loss.add("cookie priority/sourceScheme/sourcePort dropped (Playwright does not hold them; the browser recomputes them)");
        }
        cookies.push(PwCookie {
            name: c.name.clone(),
            value: c.value.clone(),
            domain: c.domain.clone(),
            path: c.path.clone(),
            expires: c.expires.unwrap_or(-1.0),
            http_only: c.http_only,
            secure: c.secure,
            same_site: Some(c.same_site.unwrap_or(SameSite::Lax)),
            partition_key: c.partition_key.as_ref().map(|p| p.top_level_site.clone()),
            cr_has_cross_site_ancestor: c.partition_key.as_ref().map(|p| p.has_cross_site_ancestor),
        });
    }
    let mut origins = Vec::with_capacity(state.origins.len());
    for o in &state.origins {
        let mut dbs = Vec::with_capacity(o.indexed_db.len());
        for db in &o.indexed_db {
            let mut stores = Vec::new();
            for st in &db.object_stores {
                if st.key_generator.is_some() {
                    loss.add("IndexedDB key generator position dropped (Playwright does not hold it; new keys restart after the highest numeric key)");
                }
                let (key_path, key_path_array) = split_key_path(&st.key_path);
                let records = st
                    .records
                    .iter()
                    .map(|r| {
                        let mut pr = PwRecord::default();
                        if st.key_path.is_none() {
                            match trivial(&r.key) {
                                Some(j) => pr.key = Some(j),
                                None => pr.key_encoded = Some(encode(&r.key, &mut loss)),
                            }
                        }
                        match trivial(&r.value) {
                            Some(j) => pr.value = Some(j),
                            None => pr.value_encoded = Some(encode(&r.value, &mut loss)),
                        }
                        pr
                    })
                    .collect();
                let indexes = st
                    .indexes
                    .iter()
                    .map(|i| {
                        let (key_path, key_path_array) = split_key_path(&Some(i.key_path.clone()));
                        PwIndex {
                            name: i.name.clone(),
                            key_path,
                            key_path_array,
                            multi_entry: i.multi_entry,
                            unique: i.unique,
                        }
                    })
                    .collect();
                stores.push(PwStore {
                    name: st.name.clone(),
                    auto_increment: st.auto_increment,
                    key_path,
                    key_path_array,
                    records,
                    indexes,
                });
            }
            dbs.push(PwDatabase {
                name: db.name.clone(),
                version: db.version,
                stores,
            });
        }
        origins.push(PwOrigin {
            origin: o.origin.clone(),
            local_storage: o
                .local_storage
                .iter()
                .map(|i| PwNameValue {
                    name: i.key.clone(),
                    value: i.value.clone(),
                })
                .collect(),
            indexed_db: dbs,
            other: BTreeMap::new(),
        });
    }
    state_level_warnings(state, "Playwright storageState", &mut warnings);
    loss.into_warnings(&mut warnings);
    let pw = PwState {
        cookies,
        origins,
        other: BTreeMap::new(),
    };
    let text = serde_json::to_string_pretty(&pw).expect("in-memory JSON encoding cannot fail");
    (text, warnings)
}

/// The plain-JSON form of a value, when JSON holds it exactly.
fn trivial(v: &JsValue) -> Option<Json> {
    Some(match v {
        JsValue::Null => Json::Null,
        JsValue::Bool(b) => Json::Bool(*b),
        JsValue::Number(n) if n.special_name().is_none() => Json::Number(n.0),
        JsValue::String(s) => Json::String(s.clone()),
        JsValue::Array(a) => Json::Array(a.iter().map(trivial).collect::<Option<_>>()?),
        JsValue::Object(es) => Json::Object(
            es.iter()
                .map(|(k, v)| Some((k.clone(), trivial(v)?)))
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// Playwright -> SessionState

/// Reads Playwright `storageState` JSON into a new state named `name`,
/// with [`InteropLimits::default`].
pub fn from_playwright(
    json: &str,
    name: &str,
    now_ms: i64,
) -> Result<(SessionState, Warnings), InteropError> {
    from_playwright_bytes(json.as_bytes(), name, now_ms, &InteropLimits::default())
}

/// Reads a Playwright `storageState` file (raw bytes: invalid UTF-8 in any
/// string is an error with its line and column) within `limits`.
pub fn from_playwright_bytes(
    json: &[u8],
    name: &str,
    now_ms: i64,
    limits: &InteropLimits,
) -> Result<(SessionState, Warnings), InteropError> {
    limits.check_input("Playwright file", json.len())?;
    let pw: PwState = serde_json::from_slice(json).map_err(InteropError::PlaywrightJson)?;
    let mut budget = Budget::new(limits);
    let mut warnings = Warnings::new();
    let mut loss = Loss::default();
    let mut state = SessionState::new(name, now_ms);
    for k in pw.other.keys() {
        warnings.push(format!("unknown top-level field {k:?} ignored"));
    }
    for (index, c) in pw.cookies.into_iter().enumerate() {
        for (field, v) in [("name", &c.name), ("domain", &c.domain), ("path", &c.path)] {
            if v.contains('\0') {
                return Err(InteropError::PlaywrightCookie {
                    index,
                    why: format!("has a NUL character in its {field}"),
                });
            }
        }
        state.cookies.push(Cookie {
            name: c.name,
            value: c.value,
            domain: c.domain,
            path: c.path,
            expires: (c.expires > 0.0).then_some(c.expires),
            http_only: c.http_only,
            secure: c.secure,
            same_site: c.same_site,
            partition_key: c.partition_key.map(|top_level_site| PartitionKey {
                top_level_site,
                // Playwright's own default when the hint is absent.
                has_cross_site_ancestor: c.cr_has_cross_site_ancestor.unwrap_or(true),
            }),
            ..Default::default()
        });
    }
    for o in pw.origins {
        for k in o.other.keys() {
            if k == "opfs" {
                loss.add("origin's OPFS files not imported (sesshost does not hold OPFS)");
            } else {
                warnings.push(format!(
                    "unknown field {k:?} of origin {} ignored",
                    o.origin
                ));
            }
        }
        let mut dbs = Vec::new();
        for db in o.indexed_db {
            let mut stores = Vec::new();
            for st in db.stores {
                let key_path = join_key_path(st.key_path, st.key_path_array);
                let mut records = Vec::with_capacity(st.records.len());
                for r in st.records {
                    let value = match (r.value, r.value_encoded) {
                        (_, Some(e)) => decode(&e, &mut loss, &mut budget)?,
                        (Some(v), None) => decode_plain(&v, &mut loss, &mut budget)?,
                        (None, None) => JsValue::Undefined,
                    };
                    let key = match (r.key, r.key_encoded, &key_path) {
                        (_, Some(e), _) => decode(&e, &mut loss, &mut budget)?,
                        (Some(k), None, _) => decode_plain(&k, &mut loss, &mut budget)?,
                        (None, None, Some(kp)) => match extract_key(&value, kp) {
                            Some(k) => k,
                            None => {
                                loss.add("IndexedDB record whose in-line key could not be found in its value (key left undefined)");
                                JsValue::Undefined
                            }
                        },
                        (None, None, None) => {
                            loss.add("IndexedDB record without a key in an out-of-line store (key left undefined)");
                            JsValue::Undefined
                        }
                    };
                    records.push(IdbRecord { key, value });
                }
                stores.push(IdbObjectStore {
                    name: st.name,
                    key_path,
                    auto_increment: st.auto_increment,
                    key_generator: None,
                    indexes: st
                        .indexes
                        .into_iter()
                        .map(|i| IdbIndex {
                            name: i.name,
                            key_path: join_key_path(i.key_path, i.key_path_array)
                                .unwrap_or(KeyPath::Single(String::new())),
                            unique: i.unique,
                            multi_entry: i.multi_entry,
                        })
                        .collect(),
                    records,
                });
            }
            dbs.push(IdbDatabase {
                name: db.name,
                version: db.version,
                object_stores: stores,
            });
        }
        state.origins.push(OriginState {
            origin: o.origin,
            local_storage: o
                .local_storage
                .into_iter()
                .map(|nv| StorageItem {
                    key: nv.name,
                    value: nv.value,
                })
                .collect(),
            indexed_db: dbs,
        });
    }
    loss.into_warnings(&mut warnings);
    Ok((state, warnings))
}

/// The key at `kp` in `value`, as IndexedDB's key extraction finds it.
fn extract_key(value: &JsValue, kp: &KeyPath) -> Option<JsValue> {
    fn at(value: &JsValue, path: &str) -> Option<JsValue> {
        if path.is_empty() {
            return Some(value.clone());
        }
        let mut cur = value;
        for part in path.split('.') {
            cur = match cur {
                JsValue::Object(es) => &es.iter().find(|(k, _)| k == part)?.1,
                _ => return None,
            };
        }
        Some(cur.clone())
    }
    match kp {
        KeyPath::Single(p) => at(value, p),
        KeyPath::Compound(ps) => ps
            .iter()
            .map(|p| at(value, p))
            .collect::<Option<Vec<_>>>()
            .map(JsValue::Array),
    }
}

#[cfg(test)]
mod tests {
    use super::super::dates::days_from_civil;
    use super::super::fixtures::{cookie, sample};
    use super::*;

    #[test]
    fn playwright_round_trip_is_exact_for_what_it_holds() {
        let s = sample();
        let (json, warnings) = to_playwright(&s);
        assert!(warnings.is_empty(), "{warnings:?}");
        let (back, w2) = from_playwright(&json, "x", 5).unwrap();
        assert!(w2.is_empty(), "{w2:?}");
        assert_eq!(back, s);
    }

    #[test]
    fn playwright_shape_matches_what_playwright_writes() {
        let (json, _) = to_playwright(&sample());
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let c = &v["cookies"];
        assert_eq!(c[0]["expires"], 1_900_000_000.5);
        assert_eq!(c[0]["httpOnly"], true);
        assert_eq!(c[0]["sameSite"], "Strict");
        assert_eq!(c[1]["partitionKey"], "https://top.test");
        assert_eq!(c[1]["_crHasCrossSiteAncestor"], false);
        assert_eq!(c[2]["expires"], -1, "session cookie");
        assert!(c[2].get("partitionKey").is_none());
        let o = &v["origins"][0];
        assert_eq!(o["localStorage"][0]["name"], "token");
        let db = &o["indexedDB"][0];
        assert_eq!(db["version"], 4);
        let typed = &db["stores"][0];
        assert_eq!(typed["keyPath"], "id");
        assert_eq!(typed["indexes"][0]["keyPathArray"][1], "id");
        assert_eq!(typed["indexes"][0]["unique"], true);
        let rec = &typed["records"][0];
        assert!(rec.get("key").is_none(), "in-line keys are not written");
        let enc = &rec["valueEncoded"];
        assert_eq!(enc["id"], 1);
        let field = |name: &str| {
            enc["o"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["k"] == name)
                .unwrap()["v"]
                .clone()
        };
        assert_eq!(field("when")["d"], "2023-11-14T22:13:20.123Z");
        assert_eq!(field("big")["bi"], "-12345678901234567890");
        assert_eq!(field("nan")["v"], "NaN");
        assert_eq!(field("negz")["v"], "-0");
        assert_eq!(field("undef")["v"], "undefined");
        assert_eq!(field("re")["r"]["f"], "gi");
        assert_eq!(field("f64")["ta"]["k"], "f64");
        assert_eq!(field("nested")["a"][0]["v"], "null");
        let plain = &db["stores"][1];
        assert_eq!(plain["autoIncrement"], true);
        assert_eq!(plain["records"][0]["key"], 1);
        assert_eq!(plain["records"][0]["value"]["z"], 1);
        // Key order of the object is kept.
        assert!(json.find("\"z\"").unwrap() < json.find("\"a\": true").unwrap());
        assert_eq!(
            plain["records"][1]["keyEncoded"]["d"],
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn playwright_warns_about_what_it_cannot_hold() {
        let mut s = sample();
        s.cookies.push(Cookie {
            priority: Some(CookiePriority::High),
            ..cookie("nosamesite", "app.test")
        });
        s.tabs.push(Tab {
            url: "https://app.test/".into(),
            session_storage: vec![OriginStorage {
                origin: "https://app.test".into(),
                items: vec![],
            }],
            ..Default::default()
        });
        s.meta.user_agent = Some("UA".into());
        s.origins[0].indexed_db[0].object_stores[1]
            .records
            .push(IdbRecord {
                key: JsValue::Number(JsNumber(3.0)),
                value: JsValue::Map(vec![(
                    JsValue::String("k".into()),
                    JsValue::Blob(JsBlob {
                        mime: "text/plain".into(),
                        bytes: Bytes(b"hi".to_vec()),
                    }),
                )]),
            });
        s.origins[0].indexed_db[0].object_stores[1].key_generator = Some(4);
        let (json, w) = to_playwright(&s);
        let all = w.join("\n");
        for needle in [
            "1 tab(s)",
            "1 sessionStorage",
            "user agent",
            "SameSite written as \"Lax\"",
            "priority",
            "Map written as an array",
            "Blob written as Uint8Array",
            "key generator",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
        // The Blob's bytes survive as a Uint8Array inside [[key, value]].
        let (back, _) = from_playwright(&json, "x", 5).unwrap();
        let v = &back.origins[0].indexed_db[0].object_stores[1].records[2].value;
        assert_eq!(
            v,
            &JsValue::Array(vec![JsValue::Array(vec![
                JsValue::String("k".into()),
                JsValue::TypedArray(JsTypedArray {
                    kind: "Uint8Array".into(),
                    bytes: Bytes(b"hi".to_vec())
                })
            ])])
        );
    }

    #[test]
    fn reads_a_file_playwright_wrote() {
        // Shape as written by Playwright's storageState({ indexedDB: true }).
        let json = r#"{
          "cookies": [{"name":"a","value":"1","domain":"localhost","path":"/","expires":-1,
                       "httpOnly":false,"secure":false,"sameSite":"Lax"}],
          "origins": [{"origin":"http://localhost:3000",
            "localStorage":[{"name":"k","value":"v"}],
            "indexedDB":[{"name":"db","version":1,"stores":[
              {"name":"s","autoIncrement":false,"keyPath":"id","records":[
                 {"value":{"id":"x","n":1}},
                 {"valueEncoded":{"o":[{"k":"id","v":"y"},{"k":"at","v":{"d":"2024-02-29T12:00:00.000Z"}},
                                       {"k":"self","v":{"ref":1}}],"id":1}}],
               "indexes":[{"name":"byN","keyPath":"n","multiEntry":false,"unique":false}]}]}],
            "opfs": []}]
        }"#;
        let (s, w) = from_playwright(json, "imp", 9).unwrap();
        assert_eq!(s.meta.name, "imp");
        assert_eq!(s.cookies[0].expires, None);
        assert_eq!(s.cookies[0].same_site, Some(SameSite::Lax));
        let st = &s.origins[0].indexed_db[0].object_stores[0];
        assert_eq!(st.records[0].key, JsValue::String("x".into()));
        assert_eq!(st.records[1].key, JsValue::String("y".into()));
        let JsValue::Object(fields) = &st.records[1].value else {
            panic!()
        };
        let expected = days_from_civil(2024, 2, 29) as f64 * 86_400_000.0 + 12.0 * 3_600_000.0;
        assert_eq!(fields[1].1, JsValue::Date(JsNumber(expected)));
        assert_eq!(fields[2].1, JsValue::Undefined);
        let all = w.join("\n");
        assert!(all.contains("circular reference"), "{all}");
        assert!(all.contains("OPFS"), "{all}");
        let e = from_playwright("{\"cookies\": 3}", "x", 0).unwrap_err();
        assert!(e.to_string().contains("storageState"), "{e}");
    }

    /// A storageState holding one record whose `valueEncoded` is `enc`.
    fn with_value(enc: &str) -> String {
        format!(
            r#"{{"cookies":[],"origins":[{{"origin":"https://a.test","localStorage":[],
              "indexedDB":[{{"name":"db","version":1,"stores":[{{"name":"s","records":[
                {{"key":1,"valueEncoded":{enc}}}]}}]}}]}}]}}"#
        )
    }

    fn value_of(s: &SessionState) -> &JsValue {
        &s.origins[0].indexed_db[0].object_stores[0].records[0].value
    }

    fn knob(e: InteropError) -> &'static str {
        match e {
            InteropError::OverLimit { knob, .. } => knob,
            other => panic!("expected a limit error, got {other}"),
        }
    }

    #[test]
    fn non_ascii_in_a_date_is_an_invalid_date_not_a_panic() {
        // The byte slicing of the old date parser split the `é` and panicked.
        let json = with_value(r#"{"d":"2024-02-29T12:00:5\u00e9Z"}"#);
        let (s, _) = from_playwright(&json, "x", 0).unwrap();
        assert!(matches!(value_of(&s), JsValue::Date(JsNumber(n)) if n.is_nan()));
        let json = with_value(r#"{"d":"2024-02-29T12:00:00é.000Z"}"#);
        assert!(from_playwright(&json, "x", 0).is_ok());
    }

    /// Level k refers twice to level k-1: 2^k nodes once expanded.
    fn ref_bomb(levels: u32) -> String {
        let mut items = vec![r#"{"a":[1],"id":1}"#.to_string()];
        for k in 2..=levels {
            items.push(format!(
                r#"{{"a":[{{"ref":{p}}},{{"ref":{p}}}],"id":{k}}}"#,
                p = k - 1
            ));
        }
        with_value(&format!(r#"{{"a":[{}],"id":0}}"#, items.join(",")))
    }

    #[test]
    fn a_ref_bomb_is_refused_by_the_node_cap() {
        // ~1.5 KB of JSON that expands to 2^40 nodes: the old decoder cloned
        // every level and ran out of memory.
        let json = ref_bomb(40);
        assert!(json.len() < 2048, "{}", json.len());
        let e = from_playwright(&json, "x", 0).unwrap_err();
        assert!(e.to_string().contains("max_nodes_per_value"), "{e}");
        assert_eq!(knob(e), "max_nodes_per_value");
        // A small one is imported, shared levels as copies.
        let (s, w) = from_playwright(&ref_bomb(4), "x", 0).unwrap();
        let JsValue::Array(levels) = value_of(&s) else {
            panic!()
        };
        assert_eq!(levels.len(), 4);
        assert_eq!(
            levels[3],
            JsValue::Array(vec![levels[2].clone(), levels[2].clone()])
        );
        assert!(
            w.iter()
                .any(|w| w.contains("shared reference imported as a copy"))
        );
    }

    #[test]
    fn nesting_past_the_depth_cap_is_refused() {
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let ok = with_value(&deep(64));
        assert!(from_playwright(&ok, "x", 0).is_ok());
        let e = from_playwright(&with_value(&deep(65)), "x", 0).unwrap_err();
        assert_eq!(knob(e), "max_depth");
        // The same for plain (not encoded) values.
        let plain =
            with_value("1").replace(r#""valueEncoded":1"#, &format!(r#""value":{}"#, deep(65)));
        assert_eq!(
            knob(from_playwright(&plain, "x", 0).unwrap_err()),
            "max_depth"
        );
        let l = InteropLimits {
            max_depth: 100,
            ..Default::default()
        };
        assert!(from_playwright_bytes(plain.as_bytes(), "x", 0, &l).is_ok());
    }

    #[test]
    fn file_and_input_caps_are_enforced() {
        let json = with_value(r#"{"a":[1,2,3,4,5,6,7,8],"id":1}"#);
        let l = InteropLimits {
            max_nodes_per_file: 5,
            ..Default::default()
        };
        assert_eq!(
            knob(from_playwright_bytes(json.as_bytes(), "x", 0, &l).unwrap_err()),
            "max_nodes_per_file"
        );
        let l = InteropLimits {
            max_input_bytes: 10,
            ..Default::default()
        };
        let e = from_playwright_bytes(json.as_bytes(), "x", 0, &l).unwrap_err();
        assert!(e.to_string().contains("max_input_bytes"), "{e}");
    }

    #[test]
    fn hostile_scalars_are_errors_not_panics() {
        let l = InteropLimits::default();
        let read = |b: &[u8]| from_playwright_bytes(b, "x", 0, &l);
        // Invalid UTF-8 inside a string field, and a lone surrogate escape.
        let mut bad = br#"{"cookies":[{"name":"a","value":"#.to_vec();
        bad.extend_from_slice(b"\"\xff\xfe\",\"domain\":\"d\",\"path\":\"/\"}]}");
        assert!(matches!(read(&bad), Err(InteropError::PlaywrightJson(_))));
        let surrogate = br#"{"origins":[{"origin":"\ud800","localStorage":[]}]}"#;
        assert!(matches!(
            read(surrogate),
            Err(InteropError::PlaywrightJson(_))
        ));
        // Numbers too big for their field.
        for num in [
            r#"{"origins":[{"origin":"o","indexedDB":[{"name":"d","version":18446744073709551616}]}]}"#,
            r#"{"origins":[{"origin":"o","indexedDB":[{"name":"d","version":1e400}]}]}"#,
            r#"{"cookies":[{"name":"a","value":"","domain":"d","path":"/","expires":1e400}]}"#,
        ] {
            assert!(
                matches!(read(num.as_bytes()), Err(InteropError::PlaywrightJson(_))),
                "{num}"
            );
        }
        assert!(read(with_value(r#"{"ref":1e300}"#).as_bytes()).is_ok());
        // A NUL in a cookie's name.
        let nul = br#"{"cookies":[{"name":"a\u0000b","value":"","domain":"d","path":"/"}]}"#;
        let e = read(nul).unwrap_err();
        assert!(
            matches!(e, InteropError::PlaywrightCookie { index: 0, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("NUL"), "{e}");
    }
}
