//! [`Counting`]: a [`Backend`] wrapper that counts the calls made to the
//! backend it wraps, by kind, for metrics (`host run` exposes them as
//! `sesshost_bucket_calls_total{op}`) and for the cost figures of the
//! cluster (bucket requests per session-hour). Over a storage plugin each
//! call is one S3 request, except `list`, which pages (one request per
//! 1000 keys). Cost: one relaxed atomic add per call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Backend, BackendError, Capability, Etag, ListPage, ObjectInfo, Precondition};

/// The kinds of call [`Counting`] counts, in [`CallCounts::snapshot`] order.
pub const CALL_KINDS: [&str; 8] = [
    "put",
    "put_if",
    "get",
    "has",
    "head",
    "delete",
    "list",
    "list_info",
];

/// Calls counted so far, shared between the wrapper and its readers.
#[derive(Debug, Default)]
pub struct CallCounts([AtomicU64; 8]);

impl CallCounts {
    fn add(&self, i: usize) {
        self.0[i].fetch_add(1, Ordering::Relaxed);
    }

    /// `(kind, calls)` for each of [`CALL_KINDS`].
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        CALL_KINDS
            .iter()
            .zip(&self.0)
            .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
            .collect()
    }

    /// All calls of every kind.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }
}

/// Counts every call to `B` (see the module doc).
pub struct Counting<B> {
    inner: B,
    counts: Arc<CallCounts>,
}

impl<B: Backend> Counting<B> {
    pub fn new(inner: B) -> Counting<B> {
        Counting {
            inner,
            counts: Arc::default(),
        }
    }

    /// The counts, readable while the wrapper is in use.
    pub fn counts(&self) -> Arc<CallCounts> {
        self.counts.clone()
    }
}

impl<B: Backend> Backend for Counting<B> {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BackendError> {
        self.counts.add(0);
        self.inner.put(key, bytes)
    }
    fn put_if(&self, key: &str, bytes: &[u8], pre: Precondition) -> Result<Etag, BackendError> {
        self.counts.add(1);
        self.inner.put_if(key, bytes, pre)
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.counts.add(2);
        self.inner.get(key)
    }
    fn get_with_etag(&self, key: &str) -> Result<Option<(Vec<u8>, Etag)>, BackendError> {
        self.counts.add(2);
        self.inner.get_with_etag(key)
    }
    fn has(&self, key: &str) -> Result<bool, BackendError> {
        self.counts.add(3);
        self.inner.has(key)
    }
    fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BackendError> {
        self.counts.add(4);
        self.inner.head(key)
    }
    fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.counts.add(5);
        self.inner.delete(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        self.counts.add(6);
        self.inner.list(prefix)
    }
    fn list_info(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: u32,
    ) -> Result<ListPage, BackendError> {
        self.counts.add(7);
        self.inner.list_info(prefix, start_after, max)
    }
    fn capabilities(&self) -> Vec<Capability> {
        self.inner.capabilities()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;

    #[test]
    fn every_call_is_counted_by_kind() {
        let c = Counting::new(MemoryBackend::new());
        let n = c.counts();
        c.put("a/b", b"1").unwrap();
        c.put_if("a/c", b"2", Precondition::IfAbsent).unwrap();
        c.get("a/b").unwrap();
        c.get_with_etag("a/b").unwrap();
        c.has("a/b").unwrap();
        c.head("a/b").unwrap();
        c.list("a/").unwrap();
        c.list_info("a/", None, 10).unwrap();
        c.delete("a/b").unwrap();
        let s: std::collections::HashMap<_, _> = n.snapshot().into_iter().collect();
        assert_eq!(
            (s["put"], s["put_if"], s["get"], s["has"], s["head"]),
            (1, 1, 2, 1, 1)
        );
        assert_eq!((s["delete"], s["list"], s["list_info"]), (1, 1, 1));
        assert_eq!(n.total(), 9);
        assert!(!c.has("a/b").unwrap());
    }
}
