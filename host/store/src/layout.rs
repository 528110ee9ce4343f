//! Object names and authenticated-data strings: where each kind of object
//! lives in a backend.
//!
//! Object layout (the same for every backend):
//! ```text
//! sessions/<name>                  sealed SessionRecord (lifecycle facts)
//! snapshots/<name>/<seq, 10 digits> sealed Manifest (records -> chunk ids)
//! chunks/<2 hex>/<64 hex>          sealed chunk (see crypto.rs)
//! ```

use std::time::Duration;

use serde::Serialize;

pub(crate) fn session_key(name: &str) -> String {
    format!("sessions/{name}")
}

pub(crate) fn snapshot_prefix(name: &str) -> String {
    format!("snapshots/{name}/")
}

pub(crate) fn snapshot_key(name: &str, seq: u64) -> String {
    format!("snapshots/{name}/{seq:010}")
}

pub(crate) fn session_aad(name: &str) -> Vec<u8> {
    [b"sesshost-store/v1/session\0".as_slice(), name.as_bytes()].concat()
}

pub(crate) fn manifest_aad(name: &str, seq: u64) -> Vec<u8> {
    let mut a = b"sesshost-store/v1/manifest\0".to_vec();
    a.extend_from_slice(name.as_bytes());
    a.push(0);
    a.extend_from_slice(&seq.to_le_bytes());
    a
}

pub(crate) fn to_msgpack<T: Serialize>(v: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(v).expect("in-memory MessagePack encoding cannot fail")
}

pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch, now (the workspace's one clock,
/// `sessbundle::interop::dates::now_ms`).
pub use sessbundle::interop::dates::now_ms;

/// `index/<name>`: the session's summary for `list` (see `index.rs`).
pub(crate) fn index_key(name: &str) -> String {
    format!("index/{name}")
}

pub(crate) fn index_aad(name: &str) -> Vec<u8> {
    [b"sesshost-store/v1/index\0".as_slice(), name.as_bytes()].concat()
}

/// `gc/touched/<name>`: written after each manifest write; tells a garbage
/// collection's sweep which sessions changed since its mark (see `gc.rs`).
pub(crate) fn touched_key(name: &str) -> String {
    format!("gc/touched/{name}")
}

pub(crate) const TOUCHED_PREFIX: &str = "gc/touched/";

/// `gc/mark`: the last mark phase's unreferenced chunks and its time.
pub(crate) const MARK_KEY: &str = "gc/mark";

pub(crate) const MARK_AAD: &[u8] = b"sesshost-store/v1/gc-mark";
