//! [`MemoryBackend`]: an in-memory, atomic [`Backend`] with fault
//! injection, for deterministic tests of protocols built on conditional
//! writes (this crate's tests, a future cluster crate's).
//!
//! A test and reference backend: everything lives in one `Mutex`, so every
//! call is trivially atomic and linearizable, which makes it the model the
//! other backends are checked against. Not for production data (nothing is
//! persisted).
//!
//! Faults are injected per write (every `put` and `put_if` counts, from 1):
//! [`MemoryBackend::inject`] makes the N-th write fail the way S3 fails,
//! including the two ambiguous ways (a 500 or a timeout after which the
//! write did or did not happen), so a caller's "re-read and compare a
//! nonce" path can be tested.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::{
    Backend, BackendError, BackendErrorKind, Capability, Etag, ListEntry, ListPage, ObjectInfo,
    Precondition, page_of, validate_key,
};

/// How an injected write fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 412 although the precondition held; nothing written.
    PreconditionFailed,
    /// 409 ConditionalRequestConflict; nothing written.
    Conflict,
    /// 500 (RGW's ECANCELED): [`BackendErrorKind::UnknownOutcome`];
    /// `applied` says whether the write happened anyway.
    ServerError { applied: bool },
    /// The response never came: [`BackendErrorKind::UnknownOutcome`];
    /// `applied` as above.
    Timeout { applied: bool },
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Vec<u8>>,
    writes: u64,
    faults: HashMap<u64, Fault>,
    /// Faults for the next write to a key with this prefix, in order.
    prefix_faults: Vec<(String, Fault)>,
    /// Every write that was applied, in order (key, bytes).
    log: Vec<(String, Vec<u8>)>,
    /// While set every call fails with `UnknownOutcome` (a partition).
    offline: bool,
}

/// See the module docs.
#[derive(Default)]
pub struct MemoryBackend {
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend").finish_non_exhaustive()
    }
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes write number `nth` (1-based, counting every `put`/`put_if`
    /// since creation) fail with `fault`.
    pub fn inject(&self, nth: u64, fault: Fault) {
        self.lock().faults.insert(nth, fault);
    }

    /// Makes the next write fail with `fault`.
    pub fn inject_next(&self, fault: Fault) {
        let mut s = self.lock();
        let n = s.writes + 1;
        s.faults.insert(n, fault);
    }

    /// Makes the next write to a key starting with `prefix` fail with
    /// `fault` (queued per call, matched in order).
    pub fn inject_prefix(&self, prefix: &str, fault: Fault) {
        self.lock().prefix_faults.push((prefix.to_string(), fault));
    }

    /// While offline every call fails as `UnknownOutcome` and nothing is
    /// applied (a partition, a dead server).
    pub fn set_offline(&self, offline: bool) {
        self.lock().offline = offline;
    }

    /// Every write that was applied, in order: (key, bytes).
    pub fn write_log(&self) -> Vec<(String, Vec<u8>)> {
        self.lock().log.clone()
    }

    fn check_online(&self) -> Result<(), BackendError> {
        if self.lock().offline {
            return Err(BackendError::new(
                BackendErrorKind::UnknownOutcome,
                "injected: the backend is offline",
            ));
        }
        Ok(())
    }

    /// How many writes (`put` and `put_if`) have been made.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking test thread poisons the mutex; the map is still whole
        // (every change is one insert or remove).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, key: &str, bytes: &[u8], pre: &Precondition) -> Result<Etag, BackendError> {
        validate_key(key)?;
        self.check_online()?;
        let mut s = self.lock();
        s.writes += 1;
        let n = s.writes;
        let by_prefix = s
            .prefix_faults
            .iter()
            .position(|(p, _)| key.starts_with(p.as_str()))
            .map(|i| s.prefix_faults.remove(i).1);
        let fault = s.faults.remove(&n).or(by_prefix);
        let err = |kind, what: &str| {
            Err(BackendError::new(
                kind,
                format!("{key}: injected {what} (write {n})"),
            ))
        };
        let apply = |s: &mut State| -> Result<Etag, BackendError> {
            let current = s.objects.get(key);
            let ok = match pre {
                Precondition::None => true,
                Precondition::IfAbsent => current.is_none(),
                Precondition::IfMatch(want) => current.is_some_and(|b| Etag::of_bytes(b) == *want),
            };
            if !ok {
                return Err(BackendError::new(
                    BackendErrorKind::PreconditionFailed,
                    format!("{key}: precondition {pre:?} does not hold"),
                ));
            }
            s.objects.insert(key.to_string(), bytes.to_vec());
            s.log.push((key.to_string(), bytes.to_vec()));
            Ok(Etag::of_bytes(bytes))
        };
        match fault {
            None => apply(&mut s),
            Some(Fault::PreconditionFailed) => err(BackendErrorKind::PreconditionFailed, "412"),
            Some(Fault::Conflict) => err(BackendErrorKind::Conflict, "409"),
            Some(Fault::ServerError { applied }) | Some(Fault::Timeout { applied }) => {
                if applied {
                    let _ = apply(&mut s);
                }
                let what = if matches!(fault, Some(Fault::Timeout { .. })) {
                    "timeout"
                } else {
                    "500"
                };
                err(BackendErrorKind::UnknownOutcome, what)
            }
        }
    }
}

impl Backend for MemoryBackend {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BackendError> {
        self.write(key, bytes, &Precondition::None).map(|_| ())
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        validate_key(key)?;
        self.check_online()?;
        Ok(self.lock().objects.get(key).cloned())
    }

    fn has(&self, key: &str) -> Result<bool, BackendError> {
        validate_key(key)?;
        Ok(self.lock().objects.contains_key(key))
    }

    fn delete(&self, key: &str) -> Result<(), BackendError> {
        validate_key(key)?;
        self.lock().objects.remove(key);
        Ok(())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        Ok(self
            .lock()
            .objects
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    fn put_if(&self, key: &str, bytes: &[u8], pre: Precondition) -> Result<Etag, BackendError> {
        self.write(key, bytes, &pre)
    }

    fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BackendError> {
        validate_key(key)?;
        Ok(self.lock().objects.get(key).map(|b| ObjectInfo {
            size: b.len() as u64,
            etag: Etag::of_bytes(b),
        }))
    }

    fn get_with_etag(&self, key: &str) -> Result<Option<(Vec<u8>, Etag)>, BackendError> {
        validate_key(key)?;
        self.check_online()?;
        Ok(self
            .lock()
            .objects
            .get(key)
            .map(|b| (b.clone(), Etag::of_bytes(b))))
    }

    fn list_info(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: u32,
    ) -> Result<ListPage, BackendError> {
        self.check_online()?;
        let s = self.lock();
        let entries = s
            .objects
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, b)| ListEntry {
                key: k.clone(),
                size: b.len() as u64,
                etag: Some(Etag::of_bytes(b)),
            })
            .collect();
        Ok(page_of(entries, start_after, max))
    }

    fn capabilities(&self) -> Vec<Capability> {
        vec![Capability::AtomicConditionalWrites, Capability::ListEtags]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_and_faults() {
        let b = MemoryBackend::new();
        let e1 = b.put_if("k", b"1", Precondition::IfAbsent).unwrap();
        assert_eq!(e1, Etag::of_bytes(b"1"));
        let e = b.put_if("k", b"2", Precondition::IfAbsent).unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::PreconditionFailed);
        let e = b
            .put_if("k", b"2", Precondition::IfMatch(Etag("x".into())))
            .unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::PreconditionFailed);
        let e2 = b
            .put_if("k", b"2", Precondition::IfMatch(e1.clone()))
            .unwrap();
        assert_eq!(
            b.get_with_etag("k").unwrap().unwrap(),
            (b"2".to_vec(), e2.clone())
        );
        let e = b
            .put_if("missing", b"2", Precondition::IfMatch(e1))
            .unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::PreconditionFailed);

        b.inject_next(Fault::Conflict);
        let e = b
            .put_if("k", b"3", Precondition::IfMatch(e2.clone()))
            .unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::Conflict);
        assert_eq!(b.get("k").unwrap().unwrap(), b"2");
        b.inject_next(Fault::ServerError { applied: true });
        let e = b
            .put_if("k", b"3", Precondition::IfMatch(e2.clone()))
            .unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::UnknownOutcome);
        assert_eq!(b.get("k").unwrap().unwrap(), b"3");
        let n = b.writes();
        b.inject(n + 2, Fault::Timeout { applied: false });
        b.put("a", b"a").unwrap();
        let e = b.put("b", b"b").unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::UnknownOutcome);
        assert!(!b.has("b").unwrap());
        b.inject_next(Fault::PreconditionFailed);
        let e = b.put_if("new", b"n", Precondition::IfAbsent).unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::PreconditionFailed);
        assert!(!b.has("new").unwrap());

        for i in 0..5 {
            b.put(&format!("p/{i}"), b"x").unwrap();
        }
        let p1 = b.list_info("p/", None, 2).unwrap();
        assert_eq!(p1.entries.len(), 2);
        assert_eq!(p1.next_start_after.as_deref(), Some("p/1"));
        let p3 = b.list_info("p/", Some("p/3"), 2).unwrap();
        assert_eq!(p3.entries.len(), 1);
        assert_eq!(p3.next_start_after, None);
    }
}
