//! Playwright's `SerializedValue`, the typed form of IndexedDB keys and
//! values in `storageState` (`valueEncoded` / `keyEncoded`).

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;

use super::dates::{format_iso, parse_iso};
use super::json::{Json, b64, obj, special};
use super::{InteropError, InteropLimits, Loss};
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

/// Node counts against [`InteropLimits`] across all values of one file.
pub(crate) struct Budget<'l> {
    limits: &'l InteropLimits,
    file_nodes: u64,
}

impl<'l> Budget<'l> {
    pub(crate) fn new(limits: &'l InteropLimits) -> Self {
        Budget {
            limits,
            file_nodes: 0,
        }
    }
}

/// Decodes one key or value. Playwright writes a shared object once with an
/// `id` and later occurrences as `{ref: id}`. The state model is a tree
/// (SPEC.md §State has no reference form), so a shared object becomes a
/// copy; only the targets of a `ref` are kept, and every copy is charged to
/// the node caps *before* it is made, so a value whose refs double at each
/// level is refused after at most `max_nodes_per_value` nodes of work.
struct Decoder<'a, 'l> {
    loss: &'a mut Loss,
    budget: &'a mut Budget<'l>,
    /// Ids some `{ref}` of this value names: only these are kept.
    wanted: BTreeSet<u64>,
    /// Finished targets, with the nodes each copy costs.
    refs: BTreeMap<u64, (JsValue, u64)>,
    nodes: u64,
}

/// Decodes Playwright's `SerializedValue` within the limits.
pub(crate) fn decode(
    j: &Json,
    loss: &mut Loss,
    budget: &mut Budget,
) -> Result<JsValue, InteropError> {
    let mut wanted = BTreeSet::new();
    collect_refs(j, &mut wanted);
    let mut d = Decoder {
        loss,
        budget,
        wanted,
        refs: BTreeMap::new(),
        nodes: 0,
    };
    d.value(j, 0)
}

/// A plain JSON `key`/`value` (no typed forms) within the limits.
pub(crate) fn decode_plain(
    j: &Json,
    loss: &mut Loss,
    budget: &mut Budget,
) -> Result<JsValue, InteropError> {
    let mut d = Decoder {
        loss,
        budget,
        wanted: BTreeSet::new(),
        refs: BTreeMap::new(),
        nodes: 0,
    };
    d.plain(j, 0)
}

/// The JSON nesting is bounded by the parser (128 levels), so recursion is.
fn collect_refs(j: &Json, out: &mut BTreeSet<u64>) {
    match j {
        Json::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        Json::Object(es) => {
            for (k, v) in es {
                match (k.as_str(), v) {
                    ("ref", Json::Number(n)) => {
                        out.insert(*n as u64);
                    }
                    _ => collect_refs(v, out),
                }
            }
        }
        _ => {}
    }
}

fn id_of(j: &Json) -> Option<u64> {
    match j.get("id") {
        Some(Json::Number(n)) => Some(*n as u64),
        _ => None,
    }
}

impl Decoder<'_, '_> {
    /// Account for `n` more nodes held in memory.
    fn charge(&mut self, n: u64) -> Result<(), InteropError> {
        self.nodes = self.nodes.saturating_add(n);
        self.budget.file_nodes = self.budget.file_nodes.saturating_add(n);
        let l = self.budget.limits;
        if self.nodes > l.max_nodes_per_value {
            return Err(InteropError::OverLimit {
                what: format!(
                    "an IndexedDB value expands to more than {} nodes (shared references counted at each copy)",
                    l.max_nodes_per_value
                ),
                cap: l.max_nodes_per_value,
                knob: "max_nodes_per_value",
            });
        }
        if self.budget.file_nodes > l.max_nodes_per_file {
            return Err(InteropError::OverLimit {
                what: format!(
                    "the IndexedDB values of this file expand to more than {} nodes",
                    l.max_nodes_per_file
                ),
                cap: l.max_nodes_per_file,
                knob: "max_nodes_per_file",
            });
        }
        Ok(())
    }

    /// Enter a container at nesting level `depth + 1`.
    fn enter(&mut self, depth: u32) -> Result<u32, InteropError> {
        let max = self.budget.limits.max_depth;
        if depth >= max {
            return Err(InteropError::OverLimit {
                what: format!("an IndexedDB value nests deeper than {max} arrays/objects"),
                cap: u64::from(max),
                knob: "max_depth",
            });
        }
        self.charge(1)?;
        Ok(depth + 1)
    }

    /// Keep a finished container if some `ref` names it.
    fn keep(&mut self, j: &Json, v: &JsValue, start: u64) -> Result<(), InteropError> {
        if let Some(id) = id_of(j).filter(|id| self.wanted.contains(id)) {
            let size = self.nodes - start;
            self.charge(size)?;
            self.refs.insert(id, (v.clone(), size));
        }
        Ok(())
    }

    fn plain(&mut self, j: &Json, depth: u32) -> Result<JsValue, InteropError> {
        Ok(match j {
            Json::Array(a) => {
                let depth = self.enter(depth)?;
                let mut out = Vec::with_capacity(a.len());
                for x in a {
                    out.push(self.plain(x, depth)?);
                }
                JsValue::Array(out)
            }
            Json::Object(es) => {
                let depth = self.enter(depth)?;
                let mut out = Vec::with_capacity(es.len());
                for (k, x) in es {
                    out.push((k.clone(), self.plain(x, depth)?));
                }
                JsValue::Object(out)
            }
            scalar => {
                self.charge(1)?;
                match scalar {
                    Json::Bool(b) => JsValue::Bool(*b),
                    Json::Number(n) => JsValue::Number(JsNumber(*n)),
                    Json::String(s) => JsValue::String(s.clone()),
                    _ => JsValue::Null,
                }
            }
        })
    }

    fn value(&mut self, j: &Json, depth: u32) -> Result<JsValue, InteropError> {
        let s = |k: &str| j.get(k).and_then(Json::as_str).is_some();
        let any = |k: &str| j.get(k).is_some();
        if s("v") || any("d") || s("u") || s("bi") || any("e") || any("r") {
            self.charge(1)?;
            return Ok(self.scalar_form(j));
        }
        let Json::Object(_) = j else {
            // Not a SerializedValue form but plain JSON (arrays, scalars): keep it.
            return match j {
                Json::Array(a) => {
                    let depth = self.enter(depth)?;
                    let mut out = Vec::with_capacity(a.len());
                    for x in a {
                        out.push(self.value(x, depth)?);
                    }
                    Ok(JsValue::Array(out))
                }
                other => self.plain(other, depth),
            };
        };
        if let Some(Json::Array(items)) = j.get("a") {
            let start = self.nodes;
            let inner = self.enter(depth)?;
            let mut out = Vec::with_capacity(items.len());
            for x in items {
                out.push(self.value(x, inner)?);
            }
            let v = JsValue::Array(out);
            self.keep(j, &v, start)?;
            return Ok(v);
        }
        if let Some(Json::Array(items)) = j.get("o") {
            let start = self.nodes;
            let inner = self.enter(depth)?;
            let mut out = Vec::with_capacity(items.len());
            for e in items {
                let k = e.get("k").and_then(Json::as_str).unwrap_or("").to_owned();
                let x = match e.get("v") {
                    Some(x) => self.value(x, inner)?,
                    None => {
                        self.charge(1)?;
                        JsValue::Undefined
                    }
                };
                out.push((k, x));
            }
            let v = JsValue::Object(out);
            self.keep(j, &v, start)?;
            return Ok(v);
        }
        if let Some(Json::Number(r)) = j.get("ref") {
            let id = *r as u64;
            let size = self.refs.get(&id).map(|(_, n)| *n);
            return Ok(match size {
                Some(n) => {
                    self.charge(n)?;
                    self.loss.add("shared reference imported as a copy");
                    self.refs
                        .get(&id)
                        .map_or(JsValue::Undefined, |(v, _)| v.clone())
                }
                None => {
                    self.charge(1)?;
                    self.loss.add("circular reference imported as undefined");
                    JsValue::Undefined
                }
            });
        }
        self.charge(1)?;
        Ok(self.scalar_form(j))
    }

    /// The forms that hold no nested values.
    fn scalar_form(&mut self, j: &Json) -> JsValue {
        let loss = &mut *self.loss;
        if let Some(v) = j.get("v").and_then(Json::as_str) {
            return match v {
                "null" => JsValue::Null,
                other => JsNumber::from_special(other).map_or(JsValue::Undefined, JsValue::Number),
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
            let f = |k: &str| JsValue::String(e.get(k).and_then(Json::as_str).unwrap_or("").into());
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

/// Fuzzing entry: JSON through [`decode`] and [`encode`]; never panics.
#[doc(hidden)]
pub fn fuzz_round_trip(data: &[u8]) {
    let Ok(j) = serde_json::from_slice::<Json>(data) else {
        return;
    };
    let limits = InteropLimits::default();
    let mut budget = Budget::new(&limits);
    let mut loss = Loss::default();
    if let Ok(v) = decode(&j, &mut loss, &mut budget) {
        let _ = encode(&v, &mut loss);
    }
    let _ = decode_plain(&j, &mut loss, &mut budget);
}
