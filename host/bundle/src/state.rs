//! The session state model: what a browser session *is*, independent of any
//! browser driver or storage. Every bundle holds exactly one [`SessionState`].
//!
//! The same serde derive gives two encodings:
//! - JSON (human readable; `host seal`/`host unseal`): byte strings are
//!   base64 (standard alphabet, padded), non-finite numbers are strings;
//! - MessagePack (inside bundles): byte strings are `bin`, structs are maps
//!   keyed by the field names shown in `format-spec/SPEC.md` §State.
//!
//! Field names are camelCase in both encodings (they mirror CDP where CDP has
//! a name for the thing). Optional fields are omitted when absent. Unknown
//! fields are rejected so that a typo in a hand-written state file is an
//! error, not silently lost data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One whole browser session.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionState {
    pub meta: Meta,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cookies: Vec<Cookie>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<OriginState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tabs: Vec<Tab>,
    /// Namespaced key/value data for plugins and execution context
    /// (`namespace -> key -> value`), e.g. `{"workflow": {"taskId": "42"}}`.
    /// Structured values are stored as JSON text by convention.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, BTreeMap<String, String>>,
}

/// Facts about the session as a whole. Timestamps are milliseconds since the
/// Unix epoch (UTC).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Meta {
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
    /// Absolute expiry (ms since epoch); absent = never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The TTL the session was created with, in seconds (informational;
    /// `expiresAt` is authoritative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<BrowserInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewport: Option<Viewport>,
    /// BCP 47 locale, e.g. `en-GB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// IANA time zone, e.g. `Europe/Paris`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BrowserInfo {
    /// e.g. `Chromium`.
    pub product: String,
    /// e.g. `156.0.8078.73`.
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Viewport {
    pub width: u32,
    pub height: u32,
    pub device_scale_factor: f64,
}

/// A cookie with every field CDP needs to recreate it exactly.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    /// As CDP reports it: `.example.com` for a domain cookie, `example.com`
    /// for a host-only cookie.
    pub domain: String,
    pub path: String,
    /// Seconds since the epoch. Absent = session cookie (never write 0/-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<f64>,
    #[serde(default)]
    pub http_only: bool,
    #[serde(default)]
    pub secure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_site: Option<SameSite>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<CookiePriority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_scheme: Option<SourceScheme>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_port: Option<i32>,
    /// CHIPS partition key; absent for unpartitioned cookies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<PartitionKey>,
}

impl Cookie {
    /// The site a cookie belongs to, for grouping: its domain without a
    /// leading dot, lower-cased.
    pub fn site(&self) -> String {
        self.domain.trim_start_matches('.').to_ascii_lowercase()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CookiePriority {
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceScheme {
    Unset,
    NonSecure,
    Secure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartitionKey {
    /// e.g. `https://example.com`.
    pub top_level_site: String,
    #[serde(default)]
    pub has_cross_site_ancestor: bool,
}

/// Everything stored for one origin (`scheme://host[:port]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OriginState {
    pub origin: String,
    /// localStorage, in the order the browser reported it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local_storage: Vec<StorageItem>,
    #[serde(default, rename = "indexedDB", skip_serializing_if = "Vec::is_empty")]
    pub indexed_db: Vec<IdbDatabase>,
}

/// A localStorage / sessionStorage entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageItem {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdbDatabase {
    pub name: String,
    pub version: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub object_stores: Vec<IdbObjectStore>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdbObjectStore {
    pub name: String,
    /// Absent = out-of-line keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_path: Option<KeyPath>,
    #[serde(default)]
    pub auto_increment: bool,
    /// The key generator's current number, when `autoIncrement` (the next
    /// generated key is this value). Absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_generator: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IdbIndex>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<IdbRecord>,
}

/// An IndexedDB key path: one path or a compound (array) path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeyPath {
    Single(String),
    Compound(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdbIndex {
    pub name: String,
    pub key_path: KeyPath,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub multi_entry: bool,
}

/// One record. `key` is the record's primary key (for in-line keys it is the
/// key the browser extracted; restore writes `value` alone in that case).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdbRecord {
    pub key: JsValue,
    pub value: JsValue,
}

/// A JavaScript value as the structured-clone algorithm sees it, keeping its
/// type. Encoded as `{"t": TYPE, "v": VALUE}` (`v` absent for
/// `undefined`/`null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "camelCase")]
pub enum JsValue {
    Undefined,
    Null,
    Bool(bool),
    Number(JsNumber),
    /// Decimal digits with an optional leading `-`.
    BigInt(String),
    String(String),
    /// Milliseconds since the epoch (`NaN` for an invalid Date).
    Date(JsNumber),
    RegExp(JsRegExp),
    ArrayBuffer(Bytes),
    /// `Uint8Array`, `Int16Array`, `Float64Array`, `DataView`, … with the
    /// bytes of its view (little-endian, as in memory).
    TypedArray(JsTypedArray),
    Blob(JsBlob),
    File(JsFile),
    Array(Vec<JsValue>),
    /// Own enumerable string-keyed properties in order.
    Object(Vec<(String, JsValue)>),
    Map(Vec<(JsValue, JsValue)>),
    Set(Vec<JsValue>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsRegExp {
    pub source: String,
    pub flags: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsTypedArray {
    /// Constructor name, e.g. `Uint8Array` or `DataView`.
    pub kind: String,
    pub bytes: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsBlob {
    /// MIME type, possibly empty.
    #[serde(rename = "type")]
    pub mime: String,
    pub bytes: Bytes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JsFile {
    pub name: String,
    #[serde(rename = "type")]
    pub mime: String,
    pub last_modified: JsNumber,
    pub bytes: Bytes,
}

/// One open tab.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tab {
    pub url: String,
    #[serde(default)]
    pub title: String,
    /// sessionStorage of this tab, per origin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub session_storage: Vec<OriginStorage>,
    /// Back/forward history (oldest first). Empty = just `url`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
    /// Index of the current entry in `history`.
    #[serde(default)]
    pub current_index: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginStorage {
    pub origin: String,
    pub items: Vec<StorageItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    pub url: String,
    #[serde(default)]
    pub title: String,
}

/// An IEEE-754 double that survives JSON: finite values (other than `-0`)
/// are JSON numbers; `NaN`, `Infinity`, `-Infinity` and `-0` are strings.
/// In MessagePack it is always a float64.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsNumber(pub f64);

impl PartialEq for JsNumber {
    /// Bit-for-bit equality except that every NaN equals every NaN, so a
    /// round trip can be checked with `==`.
    fn eq(&self, other: &Self) -> bool {
        (self.0.is_nan() && other.0.is_nan()) || self.0.to_bits() == other.0.to_bits()
    }
}

impl JsNumber {
    /// The string name of a value JSON has no number for: `NaN`,
    /// `Infinity`, `-Infinity` or `-0`; `None` for every other value.
    pub fn special_name(&self) -> Option<&'static str> {
        let v = self.0;
        if v.is_nan() {
            Some("NaN")
        } else if v == f64::INFINITY {
            Some("Infinity")
        } else if v == f64::NEG_INFINITY {
            Some("-Infinity")
        } else if v == 0.0 && v.is_sign_negative() {
            Some("-0")
        } else {
            None
        }
    }

    /// The value a [`special_name`](Self::special_name) stands for; `None`
    /// for any other string.
    pub fn from_special(name: &str) -> Option<JsNumber> {
        match name {
            "NaN" => Some(JsNumber(f64::NAN)),
            "Infinity" => Some(JsNumber(f64::INFINITY)),
            "-Infinity" => Some(JsNumber(f64::NEG_INFINITY)),
            "-0" => Some(JsNumber(-0.0)),
            _ => None,
        }
    }
}

impl Serialize for JsNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return s.serialize_f64(self.0);
        }
        match self.special_name() {
            Some(name) => s.serialize_str(name),
            None => s.serialize_f64(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for JsNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = JsNumber;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number or one of \"NaN\", \"Infinity\", \"-Infinity\", \"-0\"")
            }
            fn visit_f64<E>(self, v: f64) -> Result<JsNumber, E> {
                Ok(JsNumber(v))
            }
            fn visit_f32<E>(self, v: f32) -> Result<JsNumber, E> {
                Ok(JsNumber(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<JsNumber, E> {
                Ok(JsNumber(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<JsNumber, E> {
                Ok(JsNumber(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<JsNumber, E> {
                JsNumber::from_special(v)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// A byte string: base64 (standard, padded) in JSON, `bin` in MessagePack.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub struct Bytes(pub Vec<u8>);

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            use base64::Engine as _;
            s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes (base64 text in JSON)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Bytes, E> {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .map(Bytes)
                    .map_err(|e| E::custom(format!("invalid base64: {e}")))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_bytes(V)
        }
    }
}

impl SessionState {
    /// An empty session with the given name, created now.
    pub fn new(name: impl Into<String>, now_ms: i64) -> Self {
        SessionState {
            meta: Meta {
                name: name.into(),
                created_at: now_ms,
                updated_at: now_ms,
                ..Meta::default()
            },
            ..SessionState::default()
        }
    }

    /// Whether the session has expired at `now_ms`.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.meta.expires_at.is_some_and(|e| e <= now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_number_json_round_trips_special_values() {
        for v in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            1.5,
            -2e300,
        ] {
            let j = serde_json::to_string(&JsNumber(v)).unwrap();
            let back: JsNumber = serde_json::from_str(&j).unwrap();
            assert_eq!(back, JsNumber(v), "{j}");
        }
        assert_eq!(serde_json::to_string(&JsNumber(-0.0)).unwrap(), "\"-0\"");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<SessionState>(
            r#"{"meta":{"name":"a","createdAt":0,"updatedAt":0},"cookeis":[]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("cookeis"), "{err}");
    }

    #[test]
    fn js_value_json_shape() {
        let v = JsValue::Map(vec![(
            JsValue::String("k".into()),
            JsValue::Date(JsNumber(1.0)),
        )]);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"t":"map","v":[[{"t":"string","v":"k"},{"t":"date","v":1.0}]]}"#
        );
        let b = JsValue::Blob(JsBlob {
            mime: "text/plain".into(),
            bytes: Bytes(b"hi".to_vec()),
        });
        let j = serde_json::to_string(&b).unwrap();
        assert_eq!(
            j,
            r#"{"t":"blob","v":{"type":"text/plain","bytes":"aGk="}}"#
        );
        assert_eq!(serde_json::from_str::<JsValue>(&j).unwrap(), b);
    }
}
