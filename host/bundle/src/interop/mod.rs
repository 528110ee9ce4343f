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
//!
//! # Layout
//! - [`playwright`]: `storageState` JSON both ways.
//! - [`serialized`]: Playwright's `SerializedValue` typed values (IndexedDB).
//! - [`cookies_txt`]: Netscape cookies.txt both ways.
//! - [`dates`]: the workspace's one date module (ISO 8601 / civil days).
//! - [`detect`](mod@detect): which of these formats a file is, from its first bytes.
//! - `json`: an order-keeping JSON tree shared by the above.
//!
//! Readers of untrusted files take an [`InteropLimits`]; over a cap they
//! refuse the file with an error naming the cap, never panic or allocate
//! without bound.

use std::collections::BTreeMap;

use crate::state::SessionState;

pub mod cookies_txt;
pub mod dates;
pub mod detect;
mod json;
pub mod playwright;
pub mod serialized;

pub use cookies_txt::{from_cookies_txt, from_cookies_txt_bytes, to_cookies_txt};
pub use dates::civil_from_days;
pub use detect::{Detected, detect};
pub use playwright::{from_playwright, from_playwright_bytes, to_playwright};

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
    #[error(
        "{what}, over the cap of {cap} (InteropLimits::{knob}): refused as damaged or hostile; if the file is genuine, raise InteropLimits::{knob}"
    )]
    OverLimit {
        what: String,
        cap: u64,
        knob: &'static str,
    },
    #[error("cookies.txt line {line} {why}")]
    CookiesTxtLine { line: u64, why: String },
    #[error(
        "cookie {index} of the Playwright file {why}: Playwright never writes one; fix or remove that cookie"
    )]
    PlaywrightCookie { index: usize, why: String },
}

/// Caps for reading untrusted foreign files. Every reader of this module
/// that takes bytes from outside takes one; [`Default`] suits real files.
/// Over a cap the file is refused with [`InteropError::OverLimit`] naming
/// the field here to raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteropLimits {
    /// Largest input file. Default 256 MiB. Cost: a Playwright file is held
    /// three times over while it is parsed (bytes, JSON tree, state), so
    /// the peak is a small multiple of this.
    pub max_input_bytes: u64,
    /// Deepest nesting of arrays/objects in one IndexedDB key or value.
    /// Default 64. Playwright's serializer sets no depth limit of its own,
    /// but the JSON parser already refuses 128 JSON levels, which a
    /// `valueEncoded` object reaches at ~40 JS levels (3 JSON levels each);
    /// real application data is rarely deeper than ~15.
    pub max_depth: u32,
    /// Most nodes (scalars and containers) held in memory for one IndexedDB
    /// key or value, shared `{ref}` targets counted at their full size each
    /// time they are copied. Default 1 000 000 (each node is ~80 bytes:
    /// ~80 MB). This is what stops a "ref bomb", where each level refers
    /// twice to the one before and the expanded value doubles per level.
    pub max_nodes_per_value: u64,
    /// Most nodes held for the whole file, summed over all values.
    /// Default 8 000 000 (~640 MB).
    pub max_nodes_per_file: u64,
    /// cookies.txt: longest line in bytes. Default 64 KiB (browsers cap a
    /// cookie's name plus value at 4 KiB).
    pub max_line_bytes: u64,
    /// cookies.txt: most lines. Default 1 000 000.
    pub max_lines: u64,
    /// cookies.txt: largest field (domain, path, name, value) in bytes.
    /// Default 16 KiB.
    pub max_field_bytes: u64,
}

impl Default for InteropLimits {
    fn default() -> Self {
        InteropLimits {
            max_input_bytes: 256 << 20,
            max_depth: 64,
            max_nodes_per_value: 1_000_000,
            max_nodes_per_file: 8_000_000,
            max_line_bytes: 64 << 10,
            max_lines: 1_000_000,
            max_field_bytes: 16 << 10,
        }
    }
}

impl InteropLimits {
    /// Refuse an input over [`InteropLimits::max_input_bytes`].
    pub fn check_input(&self, what: &str, len: usize) -> Result<(), InteropError> {
        if len as u64 > self.max_input_bytes {
            return Err(InteropError::OverLimit {
                what: format!("the {what} is {len} bytes"),
                cap: self.max_input_bytes,
                knob: "max_input_bytes",
            });
        }
        Ok(())
    }
}

/// Warnings of a conversion, worded for the user.
pub type Warnings = Vec<String>;

/// Counts lossy changes while converting, to word the warnings once.
#[derive(Default)]
pub(crate) struct Loss {
    counts: BTreeMap<&'static str, u64>,
}

impl Loss {
    pub(crate) fn add(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }
    pub(crate) fn into_warnings(self, out: &mut Warnings) {
        for (what, n) in self.counts {
            out.push(format!("{n} × {what}"));
        }
    }
}

/// Warnings for the parts of a state that neither foreign format holds.
pub(crate) fn state_level_warnings(state: &SessionState, fmt: &str, w: &mut Warnings) {
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

#[cfg(test)]
pub(crate) mod fixtures {
    use crate::state::*;

    pub(crate) fn cookie(name: &str, domain: &str) -> Cookie {
        Cookie {
            name: name.into(),
            value: format!("v-{name}"),
            domain: domain.into(),
            path: "/".into(),
            ..Default::default()
        }
    }

    pub(crate) fn sample() -> SessionState {
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
}
