//! Playwright's `SerializedValue`, the typed form of IndexedDB keys and
//! values in `storageState` (`valueEncoded` / `keyEncoded`).

use std::collections::BTreeMap;

use base64::Engine as _;

use super::Loss;
use super::dates::{format_iso, parse_iso};
use super::json::{Json, b64, obj, special};
use crate::state::*;

/// Playwright's `SerializedValue` of a value.
pub(crate) fn encode(v: &JsValue, loss: &mut Loss) -> Json {
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

/// Decodes Playwright's `SerializedValue`.
pub(crate) fn decode(j: &Json, loss: &mut Loss) -> JsValue {
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
