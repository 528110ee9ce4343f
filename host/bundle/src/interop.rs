//! Conversions between [`SessionState`] and other tools' formats. Pure
//! functions: text in, text out, no I/O.
//!
//! - Playwright `storageState` JSON (`context.storageState()` /
//!   `newContext({ storageState })`), including the `indexedDB` field that
//!   Playwright 1.51+ writes with `storageState({ indexedDB: true })`.
//! - Netscape `cookies.txt` (curl `-b`/`-c`, wget, yt-dlp), with curl's
//!   `#HttpOnly_` prefix.
//!
//! Every conversion returns the warnings about what the target format
//! cannot hold (tabs and sessionStorage, partition keys, typed IndexedDB
//! values, …), so the caller can print them. A warning means data was
//! dropped or changed type; silence means the conversion is exact.
//!
//! Playwright IndexedDB records hold either a plain JSON `value`/`key`, or a
//! `valueEncoded`/`keyEncoded` in Playwright's `SerializedValue` form
//! (`{v:'undefined'|'null'|'NaN'|'Infinity'|'-Infinity'|'-0'}`, `{d: ISO}`,
//! `{bi}`, `{r:{p,f}}`, `{ta:{b,k}}`, `{a:[…],id}`, `{o:[{k,v}],id}`,
//! `{ref:id}`). It has no form for Map, Set, ArrayBuffer, Blob, File or
//! DataView: those are written as the nearest type that keeps the data
//! (arrays, `Uint8Array`) with a warning.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::state::*;

/// Why a foreign file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InteropError {
    #[error(
        "not a Playwright storageState file ({0}): write one with `await context.storageState({{ path: 'state.json', indexedDB: true }})`"
    )]
    PlaywrightJson(#[source] serde_json::Error),
    #[error(
        "no cookie line found: a Netscape cookies.txt has 7 tab-separated fields per line (domain, subdomains, path, secure, expiry, name, value)"
    )]
    NoCookies,
}

/// Warnings of a conversion, worded for the user.
pub type Warnings = Vec<String>;

// ---------------------------------------------------------------------------
// JSON that keeps object key order (serde_json's Map sorts keys unless the
// `preserve_order` feature is on; IndexedDB values must keep theirs).

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, k: &str) -> Option<&Json> {
        match self {
            Json::Object(es) => es.iter().find(|(n, _)| n == k).map(|(_, v)| v),
            _ => None,
        }
    }
    fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
}

impl Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Number(n) => whole_as_int(n, s),
            Json::String(t) => s.serialize_str(t),
            Json::Array(a) => {
                let mut q = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    q.serialize_element(v)?;
                }
                q.end()
            }
            Json::Object(es) => {
                let mut m = s.serialize_map(Some(es.len()))?;
                for (k, v) in es {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
                Ok(Json::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
                Ok(Json::Number(n as f64))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
                Ok(Json::Number(n as f64))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Json, E> {
                Ok(Json::Number(n))
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::String(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<Json, E> {
                Ok(Json::String(s))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Json::Array(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = a.next_entry()? {
                    v.push((k, x));
                }
                Ok(Json::Object(v))
            }
        }
        d.deserialize_any(V)
    }
}

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

fn whole_as_int<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
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

/// Counts lossy changes while converting, to word the warnings once.
#[derive(Default)]
struct Loss {
    counts: BTreeMap<&'static str, u64>,
}

impl Loss {
    fn add(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }
    fn into_warnings(self, out: &mut Warnings) {
        for (what, n) in self.counts {
            out.push(format!("{n} × {what}"));
        }
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

/// Warnings for the parts of a state that neither foreign format holds.
fn state_level_warnings(state: &SessionState, fmt: &str, w: &mut Warnings) {
    if !state.tabs.is_empty() {
        let ss: usize = state.tabs.iter().map(|t| t.session_storage.len()).sum();
        w.push(format!(
            "{} tab(s) with their history and {ss} sessionStorage area(s) are not kept: {fmt} has no tabs",
            state.tabs.len()
        ));
    }
    let m = &state.meta;
    if m.user_agent.is_some() || m.viewport.is_some() || m.locale.is_some() || m.timezone.is_some()
    {
        w.push(format!(
            "user agent, viewport, locale and timezone are not kept: {fmt} has no place for them (pass them to the browser yourself)"
        ));
    }
    if !state.extra.is_empty() {
        w.push(format!(
            "{} extra namespace(s) ({}) are not kept",
            state.extra.len(),
            state.extra.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
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

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn obj(entries: Vec<(&str, Json)>) -> Json {
    Json::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

fn special(s: &str) -> Json {
    obj(vec![("v", Json::String(s.into()))])
}

/// Playwright's `SerializedValue` of a value.
fn encode(v: &JsValue, loss: &mut Loss) -> Json {
    let mut id = 0u32;
    encode_inner(v, loss, &mut id)
}

fn encode_inner(v: &JsValue, loss: &mut Loss, id: &mut u32) -> Json {
    let array = |items: Vec<Json>, id: &mut u32| {
        *id += 1;
        obj(vec![
            ("a", Json::Array(items)),
            ("id", Json::Number(f64::from(*id))),
        ])
    };
    let ta = |bytes: &[u8], k: &str| {
        obj(vec![(
            "ta",
            obj(vec![
                ("b", Json::String(b64(bytes))),
                ("k", Json::String(k.into())),
            ]),
        )])
    };
    match v {
        JsValue::Undefined => special("undefined"),
        JsValue::Null => special("null"),
        JsValue::Bool(b) => Json::Bool(*b),
        JsValue::Number(n) => match n.special_name() {
            Some(name) => special(name),
            None => Json::Number(n.0),
        },
        JsValue::BigInt(s) => obj(vec![("bi", Json::String(s.clone()))]),
        JsValue::String(s) => Json::String(s.clone()),
        JsValue::Date(JsNumber(ms)) => match format_iso(*ms) {
            Some(s) => obj(vec![("d", Json::String(s))]),
            None => {
                loss.add("invalid Date written as the epoch (Playwright has no form for an invalid Date)");
                obj(vec![("d", Json::String("1970-01-01T00:00:00.000Z".into()))])
            }
        },
        JsValue::RegExp(r) => obj(vec![(
            "r",
            obj(vec![
                ("p", Json::String(r.source.clone())),
                ("f", Json::String(r.flags.clone())),
            ]),
        )]),
        JsValue::ArrayBuffer(b) => {
            loss.add("ArrayBuffer written as Uint8Array (Playwright has no form for ArrayBuffer)");
            ta(b, "ui8")
        }
        JsValue::TypedArray(t) => {
            match typed_array_code(&t.kind) {
                Some(k) => ta(&t.bytes, k),
                None => {
                    loss.add("DataView/Float16Array written as Uint8Array (Playwright has no form for them)");
                    ta(&t.bytes, "ui8")
                }
            }
        }
        JsValue::Blob(b) => {
            loss.add("Blob written as Uint8Array of its bytes, type dropped (Playwright has no form for Blob)");
            ta(&b.bytes, "ui8")
        }
        JsValue::File(f) => {
            loss.add("File written as Uint8Array of its bytes, name/type/lastModified dropped (Playwright has no form for File)");
            ta(&f.bytes, "ui8")
        }
        JsValue::Array(a) => {
            *id += 1;
            let my = *id;
            let items = a.iter().map(|x| encode_inner(x, loss, id)).collect();
            obj(vec![
                ("a", Json::Array(items)),
                ("id", Json::Number(f64::from(my))),
            ])
        }
        JsValue::Object(es) => {
            *id += 1;
            let my = *id;
            let items = es
                .iter()
                .map(|(k, x)| {
                    obj(vec![
                        ("k", Json::String(k.clone())),
                        ("v", encode_inner(x, loss, id)),
                    ])
                })
                .collect();
            obj(vec![
                ("o", Json::Array(items)),
                ("id", Json::Number(f64::from(my))),
            ])
        }
        JsValue::Map(es) => {
            loss.add(
                "Map written as an array of [key, value] arrays (Playwright has no form for Map)",
            );
            let pairs = es
                .iter()
                .map(|(k, x)| {
                    let k = encode_inner(k, loss, id);
                    let x = encode_inner(x, loss, id);
                    array(vec![k, x], id)
                })
                .collect();
            array(pairs, id)
        }
        JsValue::Set(xs) => {
            loss.add("Set written as an array (Playwright has no form for Set)");
            let items = xs.iter().map(|x| encode_inner(x, loss, id)).collect();
            array(items, id)
        }
    }
}

const TYPED_ARRAYS: [(&str, &str); 11] = [
    ("Int8Array", "i8"),
    ("Uint8Array", "ui8"),
    ("Uint8ClampedArray", "ui8c"),
    ("Int16Array", "i16"),
    ("Uint16Array", "ui16"),
    ("Int32Array", "i32"),
    ("Uint32Array", "ui32"),
    ("Float32Array", "f32"),
    ("Float64Array", "f64"),
    ("BigInt64Array", "bi64"),
    ("BigUint64Array", "bui64"),
];

fn typed_array_code(kind: &str) -> Option<&'static str> {
    TYPED_ARRAYS
        .iter()
        .find(|(n, _)| *n == kind)
        .map(|(_, c)| *c)
}

fn typed_array_name(code: &str) -> Option<&'static str> {
    TYPED_ARRAYS
        .iter()
        .find(|(_, c)| *c == code)
        .map(|(n, _)| *n)
}

// ---------------------------------------------------------------------------
// Playwright -> SessionState

/// Reads Playwright `storageState` JSON into a new state named `name`.
pub fn from_playwright(
    json: &str,
    name: &str,
    now_ms: i64,
) -> Result<(SessionState, Warnings), InteropError> {
    let pw: PwState = serde_json::from_str(json).map_err(InteropError::PlaywrightJson)?;
    let mut warnings = Warnings::new();
    let mut loss = Loss::default();
    let mut state = SessionState::new(name, now_ms);
    for k in pw.other.keys() {
        warnings.push(format!("unknown top-level field {k:?} ignored"));
    }
    for c in pw.cookies {
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
                        (_, Some(e)) => decode(&e, &mut loss),
                        (Some(v), None) => from_trivial(&v),
                        (None, None) => JsValue::Undefined,
                    };
                    let key = match (r.key, r.key_encoded, &key_path) {
                        (_, Some(e), _) => decode(&e, &mut loss),
                        (Some(k), None, _) => from_trivial(&k),
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

fn from_trivial(j: &Json) -> JsValue {
    match j {
        Json::Null => JsValue::Null,
        Json::Bool(b) => JsValue::Bool(*b),
        Json::Number(n) => JsValue::Number(JsNumber(*n)),
        Json::String(s) => JsValue::String(s.clone()),
        Json::Array(a) => JsValue::Array(a.iter().map(from_trivial).collect()),
        Json::Object(es) => JsValue::Object(
            es.iter()
                .map(|(k, v)| (k.clone(), from_trivial(v)))
                .collect(),
        ),
    }
}

/// Decodes Playwright's `SerializedValue`.
fn decode(j: &Json, loss: &mut Loss) -> JsValue {
    let mut refs: BTreeMap<u64, JsValue> = BTreeMap::new();
    decode_inner(j, loss, &mut refs)
}

fn decode_inner(j: &Json, loss: &mut Loss, refs: &mut BTreeMap<u64, JsValue>) -> JsValue {
    let id_of = |j: &Json| match j.get("id") {
        Some(Json::Number(n)) => Some(*n as u64),
        _ => None,
    };
    match j {
        Json::Null => JsValue::Null,
        Json::Bool(b) => JsValue::Bool(*b),
        Json::Number(n) => JsValue::Number(JsNumber(*n)),
        Json::String(s) => JsValue::String(s.clone()),
        Json::Array(a) => {
            // Not a SerializedValue form, but plain JSON: keep it.
            JsValue::Array(a.iter().map(|x| decode_inner(x, loss, refs)).collect())
        }
        Json::Object(_) => {
            if let Some(v) = j.get("v").and_then(Json::as_str) {
                return match v {
                    "null" => JsValue::Null,
                    other => {
                        JsNumber::from_special(other).map_or(JsValue::Undefined, JsValue::Number)
                    }
                };
            }
            if let Some(d) = j.get("d") {
                return match d.as_str().and_then(parse_iso) {
                    Some(ms) => JsValue::Date(JsNumber(ms)),
                    None => JsValue::Date(JsNumber(f64::NAN)),
                };
            }
            if let Some(u) = j.get("u").and_then(Json::as_str) {
                loss.add("URL object imported as a string");
                return JsValue::String(u.to_owned());
            }
            if let Some(bi) = j.get("bi").and_then(Json::as_str) {
                return JsValue::BigInt(bi.to_owned());
            }
            if let Some(e) = j.get("e") {
                loss.add("Error object imported as a plain object {name, message, stack}");
                let f =
                    |k: &str| JsValue::String(e.get(k).and_then(Json::as_str).unwrap_or("").into());
                return JsValue::Object(vec![
                    ("name".into(), f("n")),
                    ("message".into(), f("m")),
                    ("stack".into(), f("s")),
                ]);
            }
            if let Some(r) = j.get("r") {
                let f = |k: &str| r.get(k).and_then(Json::as_str).unwrap_or("").to_owned();
                return JsValue::RegExp(JsRegExp {
                    source: f("p"),
                    flags: f("f"),
                });
            }
            if let Some(Json::Array(items)) = j.get("a") {
                let v = JsValue::Array(items.iter().map(|x| decode_inner(x, loss, refs)).collect());
                if let Some(id) = id_of(j) {
                    refs.insert(id, v.clone());
                }
                return v;
            }
            if let Some(Json::Array(items)) = j.get("o") {
                let v = JsValue::Object(
                    items
                        .iter()
                        .map(|e| {
                            let k = e.get("k").and_then(Json::as_str).unwrap_or("").to_owned();
                            let x = e
                                .get("v")
                                .map_or(JsValue::Undefined, |x| decode_inner(x, loss, refs));
                            (k, x)
                        })
                        .collect(),
                );
                if let Some(id) = id_of(j) {
                    refs.insert(id, v.clone());
                }
                return v;
            }
            if let Some(Json::Number(r)) = j.get("ref") {
                return match refs.get(&(*r as u64)) {
                    Some(v) => {
                        loss.add("shared reference imported as a copy");
                        v.clone()
                    }
                    None => {
                        loss.add("circular reference imported as undefined");
                        JsValue::Undefined
                    }
                };
            }
            if j.get("h").is_some() {
                loss.add("handle reference imported as undefined");
                return JsValue::Undefined;
            }
            if let Some(ta) = j.get("ta") {
                let bytes = ta
                    .get("b")
                    .and_then(Json::as_str)
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .unwrap_or_default();
                let kind = ta
                    .get("k")
                    .and_then(Json::as_str)
                    .and_then(typed_array_name)
                    .unwrap_or("Uint8Array");
                return JsValue::TypedArray(JsTypedArray {
                    kind: kind.to_owned(),
                    bytes: Bytes(bytes),
                });
            }
            loss.add("unrecognised encoded value imported as undefined");
            JsValue::Undefined
        }
    }
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

// ---------------------------------------------------------------------------
// ISO 8601 dates as `Date.prototype.toJSON` writes them.

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's
/// civil-from-days), for printing dates without a time crate.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `Date.prototype.toJSON` of a time value; `None` for an invalid Date.
fn format_iso(ms: f64) -> Option<String> {
    if !ms.is_finite() || ms.abs() > 8.64e15 {
        return None;
    }
    let t = ms as i64;
    let (days, rem) = (t.div_euclid(86_400_000), t.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else if y < 0 {
        format!("-{:06}", -y)
    } else {
        format!("+{y:06}")
    };
    Some(format!(
        "{year}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    ))
}

/// Parses `[±YY]YYYY-MM-DDTHH:MM:SS[.sss]Z`.
fn parse_iso(s: &str) -> Option<f64> {
    let (sign, rest, ylen) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..], 6),
        b'-' => (-1, &s[1..], 6),
        _ => (1, s, 4),
    };
    let num = |t: &str| -> Option<i64> {
        if t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty() {
            t.parse().ok()
        } else {
            None
        }
    };
    let y = sign * num(rest.get(..ylen)?)?;
    let r = rest.get(ylen..)?;
    let r = r.strip_suffix('Z')?;
    let b = r.as_bytes();
    if b.len() < 15 || b[0] != b'-' || b[3] != b'-' || b[6] != b'T' || b[9] != b':' || b[12] != b':'
    {
        return None;
    }
    let (mo, d, h, mi, se) = (
        num(&r[1..3])?,
        num(&r[4..6])?,
        num(&r[7..9])?,
        num(&r[10..12])?,
        num(&r[13..15])?,
    );
    let frac = &r[15..];
    let msec = if frac.is_empty() {
        0
    } else {
        let f = frac.strip_prefix('.')?;
        let digits = num(f)?;
        match f.len() {
            1 => digits * 100,
            2 => digits * 10,
            3 => digits,
            _ => return None,
        }
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 24 || mi > 59 || se > 59 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400_000 + h * 3_600_000 + mi * 60_000 + se * 1000 + msec) as f64)
}

// ---------------------------------------------------------------------------
// Netscape cookies.txt

/// A state's cookies as a Netscape cookies.txt (curl's format, with
/// `#HttpOnly_` for httpOnly cookies), with warnings. Partitioned cookies
/// are left out (the format cannot say they are partitioned, and sending
/// them unpartitioned would change who receives them).
pub fn to_cookies_txt(state: &SessionState) -> (String, Warnings) {
    let mut warnings = Warnings::new();
    let mut loss = Loss::default();
    let mut out = String::from(
        "# Netscape HTTP Cookie File\n# Written by sesshost. Holds login secrets: keep it private.\n\n",
    );
    for c in &state.cookies {
        if c.partition_key.is_some() {
            loss.add(
                "partitioned (CHIPS) cookie left out (cookies.txt cannot hold a partition key)",
            );
            continue;
        }
        let bad = |s: &str| s.contains(['\t', '\n', '\r']);
        if bad(&c.name) || bad(&c.value) || bad(&c.domain) || bad(&c.path) {
            loss.add("cookie with a tab or line break in a field left out");
            continue;
        }
        if c.same_site.is_some() {
            loss.add("cookie SameSite attribute dropped (cookies.txt cannot hold it)");
        }
        let sub = c.domain.starts_with('.');
        let expires = c.expires.map_or(0, |e| e.max(1.0) as i64);
        out.push_str(&format!(
            "{}{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            if c.http_only { "#HttpOnly_" } else { "" },
            c.domain,
            if sub { "TRUE" } else { "FALSE" },
            c.path,
            if c.secure { "TRUE" } else { "FALSE" },
            expires,
            c.name,
            c.value
        ));
    }
    if !state.origins.is_empty() {
        let ls: usize = state.origins.iter().map(|o| o.local_storage.len()).sum();
        let idb: usize = state.origins.iter().map(|o| o.indexed_db.len()).sum();
        warnings.push(format!(
            "localStorage ({ls} item(s)) and IndexedDB ({idb} database(s)) of {} origin(s) are not kept: cookies.txt holds cookies only",
            state.origins.len()
        ));
    }
    state_level_warnings(state, "cookies.txt", &mut warnings);
    loss.into_warnings(&mut warnings);
    (out, warnings)
}

/// Reads a Netscape cookies.txt into a new state named `name`. Lines that
/// are not cookies are skipped with a warning.
pub fn from_cookies_txt(
    text: &str,
    name: &str,
    now_ms: i64,
) -> Result<(SessionState, Warnings), InteropError> {
    let mut warnings = Warnings::new();
    let mut state = SessionState::new(name, now_ms);
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let (http_only, line) = match line.strip_prefix("#HttpOnly_") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let parsed = (|| {
            if f.len() != 7 && f.len() != 6 {
                return None;
            }
            let flag = |s: &str| match s {
                "TRUE" => Some(true),
                "FALSE" => Some(false),
                _ => None,
            };
            let sub = flag(f[1])?;
            let secure = flag(f[3])?;
            let exp: f64 = f[4].trim().parse().ok()?;
            let mut domain = f[0].to_owned();
            if domain.is_empty() {
                return None;
            }
            if sub && !domain.starts_with('.') {
                domain.insert(0, '.');
            }
            if !sub && domain.starts_with('.') {
                domain.remove(0);
            }
            Some(Cookie {
                name: f[5].to_owned(),
                value: f.get(6).copied().unwrap_or("").to_owned(),
                domain,
                path: f[2].to_owned(),
                expires: (exp > 0.0).then_some(exp),
                http_only,
                secure,
                ..Default::default()
            })
        })();
        match parsed {
            Some(c) => state.cookies.push(c),
            None => warnings.push(format!("line {} is not a cookie line; skipped", i + 1)),
        }
    }
    if state.cookies.is_empty() {
        return Err(InteropError::NoCookies);
    }
    warnings.push(format!(
        "{} cookie(s) imported without SameSite (cookies.txt cannot hold it; the browser applies its default, Lax)",
        state.cookies.len()
    ));
    Ok((state, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(name: &str, domain: &str) -> Cookie {
        Cookie {
            name: name.into(),
            value: format!("v-{name}"),
            domain: domain.into(),
            path: "/".into(),
            ..Default::default()
        }
    }

    fn sample() -> SessionState {
        let mut s = SessionState::new("x", 5);
        s.cookies = vec![
            Cookie {
                expires: Some(1_900_000_000.5),
                http_only: true,
                secure: true,
                same_site: Some(SameSite::Strict),
                ..cookie("sid", ".app.test")
            },
            Cookie {
                same_site: Some(SameSite::None),
                secure: true,
                partition_key: Some(PartitionKey {
                    top_level_site: "https://top.test".into(),
                    has_cross_site_ancestor: false,
                }),
                ..cookie("chip", "embed.test")
            },
            Cookie {
                same_site: Some(SameSite::Lax),
                ..cookie("sess", "app.test")
            },
        ];
        let typed = JsValue::Object(vec![
            ("id".into(), JsValue::Number(JsNumber(7.0))),
            ("when".into(), JsValue::Date(JsNumber(1_700_000_000_123.0))),
            (
                "big".into(),
                JsValue::BigInt("-12345678901234567890".into()),
            ),
            ("nan".into(), JsValue::Number(JsNumber(f64::NAN))),
            ("negz".into(), JsValue::Number(JsNumber(-0.0))),
            ("undef".into(), JsValue::Undefined),
            (
                "re".into(),
                JsValue::RegExp(JsRegExp {
                    source: "a+".into(),
                    flags: "gi".into(),
                }),
            ),
            (
                "f64".into(),
                JsValue::TypedArray(JsTypedArray {
                    kind: "Float64Array".into(),
                    bytes: Bytes(1.5f64.to_le_bytes().to_vec()),
                }),
            ),
            (
                "nested".into(),
                JsValue::Array(vec![JsValue::Null, JsValue::String("s".into())]),
            ),
        ]);
        s.origins = vec![OriginState {
            origin: "https://app.test".into(),
            local_storage: vec![StorageItem {
                key: "token".into(),
                value: "abc".into(),
            }],
            indexed_db: vec![IdbDatabase {
                name: "appdb".into(),
                version: 4,
                object_stores: vec![
                    IdbObjectStore {
                        name: "typed".into(),
                        key_path: Some(KeyPath::Single("id".into())),
                        indexes: vec![IdbIndex {
                            name: "byWhen".into(),
                            key_path: KeyPath::Compound(vec!["when".into(), "id".into()]),
                            unique: true,
                            multi_entry: false,
                        }],
                        records: vec![IdbRecord {
                            key: JsValue::Number(JsNumber(7.0)),
                            value: typed,
                        }],
                        ..Default::default()
                    },
                    IdbObjectStore {
                        name: "plain".into(),
                        auto_increment: true,
                        records: vec![
                            IdbRecord {
                                key: JsValue::Number(JsNumber(1.0)),
                                value: JsValue::Object(vec![
                                    ("z".into(), JsValue::Number(JsNumber(1.0))),
                                    ("a".into(), JsValue::Bool(true)),
                                ]),
                            },
                            IdbRecord {
                                key: JsValue::Date(JsNumber(0.0)),
                                value: JsValue::String("dated".into()),
                            },
                        ],
                        ..Default::default()
                    },
                ],
            }],
        }];
        s
    }

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

    #[test]
    fn iso_dates() {
        for ms in [
            0.0,
            1_700_000_000_123.0,
            -1.0,
            -62_198_755_200_000.0,
            8.64e15,
            951_782_400_000.0,
        ] {
            let s = format_iso(ms).unwrap();
            assert_eq!(parse_iso(&s), Some(ms), "{s}");
        }
        assert_eq!(format_iso(-1.0).unwrap(), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_iso(8.64e15).unwrap(), "+275760-09-13T00:00:00.000Z");
        assert_eq!(format_iso(f64::NAN), None);
        assert_eq!(parse_iso("2020-01-01T00:00:00Z"), Some(1_577_836_800_000.0));
        assert_eq!(parse_iso("2020-13-01T00:00:00Z"), None);
        assert_eq!(parse_iso("garbage"), None);
    }

    #[test]
    fn cookies_txt_round_trip_and_warnings() {
        let s = sample();
        let (txt, w) = to_cookies_txt(&s);
        assert!(txt.starts_with("# Netscape HTTP Cookie File"));
        assert!(txt.contains("#HttpOnly_.app.test\tTRUE\t/\tTRUE\t1900000000\tsid\tv-sid\n"));
        assert!(txt.contains("\napp.test\tFALSE\t/\tFALSE\t0\tsess\tv-sess\n"));
        assert!(!txt.contains("chip"), "partitioned cookies are left out");
        let all = w.join("\n");
        assert!(all.contains("partitioned (CHIPS) cookie left out"), "{all}");
        assert!(all.contains("SameSite"), "{all}");
        assert!(
            all.contains("localStorage (1 item(s)) and IndexedDB (1 database(s))"),
            "{all}"
        );

        let (back, w2) = from_cookies_txt(&txt, "c", 1).unwrap();
        assert_eq!(back.cookies.len(), 2);
        let sid = &back.cookies[0];
        assert_eq!(
            (sid.domain.as_str(), sid.http_only, sid.secure, sid.expires),
            (".app.test", true, true, Some(1_900_000_000.0))
        );
        let sess = &back.cookies[1];
        assert_eq!(
            (sess.domain.as_str(), sess.expires, sess.http_only),
            ("app.test", None, false)
        );
        assert!(w2.iter().any(|w| w.contains("without SameSite")));
    }

    #[test]
    fn cookies_txt_reader_is_lenient_but_not_blind() {
        let txt = "# comment\n\nexample.com\tTRUE\t/\tFALSE\t0\tname\t\r\nnot a cookie line\n.x.org\tFALSE\t/p\tTRUE\t123\tn2\tv2\n";
        let (s, w) = from_cookies_txt(txt, "c", 1).unwrap();
        assert_eq!(s.cookies.len(), 2);
        assert_eq!(s.cookies[0].domain, ".example.com");
        assert_eq!(s.cookies[0].value, "");
        assert_eq!(s.cookies[1].domain, "x.org");
        assert_eq!(s.cookies[1].expires, Some(123.0));
        assert!(w.iter().any(|w| w.contains("line 4")), "{w:?}");
        assert!(matches!(
            from_cookies_txt("# only comments\n", "c", 1),
            Err(InteropError::NoCookies)
        ));
    }
}
