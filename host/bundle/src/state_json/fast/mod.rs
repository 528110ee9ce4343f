//! Origin records between state JSON and MessagePack without building an
//! [`OriginState`](crate::state::OriginState): a walk over the schema of
//! SPEC.md §9 that reads one encoding and writes the other.
//!
//! Both directions take only the *canonical* form (fields in declaration
//! order, optional fields present only when non-empty, no `null`, no key
//! escapes, nesting under [`MAX_DEPTH`]) and give up (`None`) on anything
//! else; the caller then goes through serde, which accepts or refuses the
//! record with its own messages. So the accepted set is serde's exactly; on
//! what the walk accepts its output is byte for byte serde's (the tests
//! compare the two). Cost: ~3x faster than serde's parse plus re-encode,
//! because no value is allocated.

/// JsValue nesting the walk follows before it leaves a record to serde.
/// The bound keeps the walk within serde_json's nesting limit (128
/// brackets; a JsValue level takes at most 3, the record around it 8).
pub(crate) const MAX_DEPTH: usize = 32;

#[derive(Clone, Copy)]
pub(crate) enum Ty {
    Str,
    Bool,
    Uint,
    /// [`JsNumber`](crate::state::JsNumber): f64, or its special strings in JSON.
    Num,
    Bin,
    KeyPath,
    Js,
    Struct(&'static [Field]),
    Seq(&'static Ty),
    Pair(&'static Ty, &'static Ty),
}

/// A struct field. `opt`: omitted when absent or empty (`skip_serializing_if`);
/// otherwise always written.
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) ty: Ty,
    pub(crate) opt: bool,
}

const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        opt: false,
    }
}
const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        opt: true,
    }
}

pub(crate) static ITEM: Ty = Ty::Struct(&[req("key", Ty::Str), req("value", Ty::Str)]);
pub(crate) static INDEX: Ty = Ty::Struct(&[
    req("name", Ty::Str),
    req("keyPath", Ty::KeyPath),
    req("unique", Ty::Bool),
    req("multiEntry", Ty::Bool),
]);
pub(crate) static RECORD: Ty = Ty::Struct(&[req("key", Ty::Js), req("value", Ty::Js)]);
pub(crate) static STORE: Ty = Ty::Struct(&[
    req("name", Ty::Str),
    opt("keyPath", Ty::KeyPath),
    req("autoIncrement", Ty::Bool),
    opt("keyGenerator", Ty::Uint),
    opt("indexes", Ty::Seq(&INDEX)),
    opt("records", Ty::Seq(&RECORD)),
]);
pub(crate) static DB: Ty = Ty::Struct(&[
    req("name", Ty::Str),
    req("version", Ty::Uint),
    opt("objectStores", Ty::Seq(&STORE)),
]);
pub(crate) static ORIGIN: [Field; 3] = [
    req("origin", Ty::Str),
    opt("localStorage", Ty::Seq(&ITEM)),
    opt("indexedDB", Ty::Seq(&DB)),
];

pub(crate) static JS: Ty = Ty::Js;
pub(crate) static STR: Ty = Ty::Str;

/// JsValue variants (`t`) and the type of their `v` (None: no `v`).
static VARIANTS: [(&str, Option<Ty>); 16] = [
    ("undefined", None),
    ("null", None),
    ("bool", Some(Ty::Bool)),
    ("number", Some(Ty::Num)),
    ("bigInt", Some(Ty::Str)),
    ("string", Some(Ty::Str)),
    ("date", Some(Ty::Num)),
    (
        "regExp",
        Some(Ty::Struct(&[req("source", Ty::Str), req("flags", Ty::Str)])),
    ),
    ("arrayBuffer", Some(Ty::Bin)),
    (
        "typedArray",
        Some(Ty::Struct(&[req("kind", Ty::Str), req("bytes", Ty::Bin)])),
    ),
    (
        "blob",
        Some(Ty::Struct(&[req("type", Ty::Str), req("bytes", Ty::Bin)])),
    ),
    (
        "file",
        Some(Ty::Struct(&[
            req("name", Ty::Str),
            req("type", Ty::Str),
            req("lastModified", Ty::Num),
            req("bytes", Ty::Bin),
        ])),
    ),
    ("array", Some(Ty::Seq(&JS))),
    ("object", Some(Ty::Seq(&Ty::Pair(&STR, &JS)))),
    ("map", Some(Ty::Seq(&Ty::Pair(&JS, &JS)))),
    ("set", Some(Ty::Seq(&JS))),
];

pub(crate) fn variant(name: &[u8]) -> Option<Option<Ty>> {
    VARIANTS
        .iter()
        .find(|(n, _)| n.as_bytes() == name)
        .map(|(_, t)| *t)
}

/// The index of the first `"`, `\\` or control byte (< 0x20) in `s`: the
/// bytes a JSON string cannot hold as they are. Eight bytes at a time.
pub(crate) fn find_special(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for c in chunks.by_ref() {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w);
        let q = x ^ (ONES * b'"' as u64);
        let b = x ^ (ONES * b'\\' as u64);
        // A byte is flagged when zero (q, b) or below 0x20; the lowest
        // flag is exact (borrows only run upwards).
        let hit = ((q.wrapping_sub(ONES) & !q)
            | (b.wrapping_sub(ONES) & !b)
            | (x.wrapping_sub(ONES * 0x20) & !x))
            & HIGH;
        if hit != 0 {
            return Some(at + (hit.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = chunks.remainder();
    tail.iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|i| at + i)
}

mod to_json;
mod to_msgpack;

pub(super) use to_json::origin_to_json;
pub(super) use to_msgpack::origin_to_msgpack;

#[cfg(test)]
mod tests;
