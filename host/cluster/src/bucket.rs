//! What the protocol needs from storage, and nothing more: read an object
//! with its ETag, write one under a precondition, list a prefix with
//! ETags. A `sesshost_store` backend with atomic conditional writes (S3
//! with `If-None-Match`/`If-Match`, Ceph RGW, a shared directory through
//! `link(2)` and locks) provides all three.
//!
//! A conditional write has four outcomes (research: distributed.md §3):
//! won (2xx), lost (412; 404 on If-Match), lost this round (409
//! ConditionalRequestConflict: re-read and retry), and **unknown** (5xx,
//! timeout, a dropped connection: the write may or may not have been
//! applied; Ceph RGW answers 500 to most losers of a race). Every record
//! carries the writer's nonce, so [`put_resolved`] turns "unknown" into
//! won or lost by reading the object back.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// An object version, as the store reports it (opaque; compared whole).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Etag(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Unconditional.
    None,
    /// Create-only (`If-None-Match: *`).
    IfAbsent,
    /// Replace exactly this version (`If-Match`).
    IfMatch(Etag),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BucketError {
    /// The precondition did not hold; nothing was written.
    #[error("precondition failed")]
    PreconditionFailed,
    /// Another conditional write on the key was in flight; nothing was
    /// written; re-read and retry.
    #[error("conflicting conditional write")]
    Conflict,
    /// The outcome is not known (5xx, timeout): re-read to find out.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// The store refused or failed the request; the message says why.
    #[error("{0}")]
    Other(String),
}

pub trait Bucket: Send + Sync {
    /// The object's bytes and ETag, or `None` if absent.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Etag)>, BucketError>;
    /// Write `body` under `key` if `pre` holds; the new ETag.
    fn put(&self, key: &str, body: &[u8], pre: &Precondition) -> Result<Etag, BucketError>;
    /// Keys under `prefix`, sorted, with their ETags.
    fn list(&self, prefix: &str) -> Result<Vec<(String, Etag)>, BucketError>;
}

/// A conditional write's outcome once the ambiguity is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Our write is the object's current version.
    Won(Etag),
    /// Someone else's write got there first (412, 409, or an unknown
    /// outcome after which the object is another writer's).
    Lost,
    /// An unknown outcome after which the object is as the precondition
    /// expected it: our write was not applied and nobody else's was.
    NotApplied,
}

/// `put`, with "unknown" resolved by reading the object back: our `nonce`
/// in it (the JSON field `nonce` of `body`) is a win; the version the
/// precondition named (or still no object) means not applied; anything
/// else is lost. 409 is reported as lost (re-read and retry).
pub fn put_resolved(
    b: &dyn Bucket,
    key: &str,
    body: &[u8],
    pre: &Precondition,
    nonce: &str,
) -> Result<Outcome, BucketError> {
    match b.put(key, body, pre) {
        Ok(e) => Ok(Outcome::Won(e)),
        Err(BucketError::PreconditionFailed) | Err(BucketError::Conflict) => Ok(Outcome::Lost),
        Err(BucketError::Unknown(_)) => Ok(match (b.get(key)?, pre) {
            (Some((bytes, etag)), _) if nonce_of(&bytes).as_deref() == Some(nonce) => {
                Outcome::Won(etag)
            }
            (None, Precondition::IfAbsent) => Outcome::NotApplied,
            (Some((_, etag)), Precondition::IfMatch(e)) if etag == *e => Outcome::NotApplied,
            _ => Outcome::Lost,
        }),
        Err(e) => Err(e),
    }
}

fn nonce_of(bytes: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()?
        .get("nonce")?
        .as_str()
        .map(str::to_string)
}

/// A fault [`MemoryBucket`] injects into a coming `put`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 412 although the precondition held; nothing written.
    PreconditionFailed,
    /// 409; nothing written.
    Conflict,
    /// 500 or a timeout after the write *was* applied.
    UnknownApplied,
    /// 500 or a timeout; nothing written.
    UnknownNotApplied,
}

/// An atomic in-memory bucket (one mutex around check and write), with
/// faults injected into chosen writes. ETags count writes.
#[derive(Default)]
pub struct MemoryBucket {
    inner: Mutex<Mem>,
}

#[derive(Default)]
struct Mem {
    objects: BTreeMap<String, (Vec<u8>, Etag)>,
    writes: u64,
    faults: VecDeque<(String, Fault)>,
    /// Every successful write, in order: (key, bytes).
    log: Vec<(String, Vec<u8>)>,
    offline: bool,
}

impl MemoryBucket {
    fn lock(&self) -> std::sync::MutexGuard<'_, Mem> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next `put` to a key starting with `prefix` gets `fault`.
    pub fn inject(&self, prefix: &str, fault: Fault) {
        self.lock().faults.push_back((prefix.to_string(), fault));
    }

    /// While offline every call is `Unknown` (a partition, a dead server).
    pub fn set_offline(&self, offline: bool) {
        self.lock().offline = offline;
    }

    /// Every successful write so far.
    pub fn write_log(&self) -> Vec<(String, Vec<u8>)> {
        self.lock().log.clone()
    }
}

impl Bucket for MemoryBucket {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Etag)>, BucketError> {
        let m = self.lock();
        if m.offline {
            return Err(BucketError::Unknown("offline".into()));
        }
        Ok(m.objects.get(key).cloned())
    }

    fn put(&self, key: &str, body: &[u8], pre: &Precondition) -> Result<Etag, BucketError> {
        let mut m = self.lock();
        if m.offline {
            return Err(BucketError::Unknown("offline".into()));
        }
        let fault = m
            .faults
            .iter()
            .position(|(p, _)| key.starts_with(p.as_str()))
            .and_then(|i| m.faults.remove(i))
            .map(|(_, f)| f);
        match fault {
            Some(Fault::PreconditionFailed) => return Err(BucketError::PreconditionFailed),
            Some(Fault::Conflict) => return Err(BucketError::Conflict),
            Some(Fault::UnknownNotApplied) => {
                return Err(BucketError::Unknown("injected timeout".into()));
            }
            Some(Fault::UnknownApplied) | None => {}
        }
        let ok = match (pre, m.objects.get(key)) {
            (Precondition::None, _) => true,
            (Precondition::IfAbsent, cur) => cur.is_none(),
            (Precondition::IfMatch(e), Some((_, cur))) => cur == e,
            (Precondition::IfMatch(_), None) => false,
        };
        if !ok {
            return Err(BucketError::PreconditionFailed);
        }
        m.writes += 1;
        let etag = Etag(format!("\"w{}\"", m.writes));
        m.objects
            .insert(key.to_string(), (body.to_vec(), etag.clone()));
        m.log.push((key.to_string(), body.to_vec()));
        if fault == Some(Fault::UnknownApplied) {
            return Err(BucketError::Unknown("injected 500 after the write".into()));
        }
        Ok(etag)
    }

    fn list(&self, prefix: &str) -> Result<Vec<(String, Etag)>, BucketError> {
        let m = self.lock();
        if m.offline {
            return Err(BucketError::Unknown("offline".into()));
        }
        Ok(m.objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (_, e))| (k.clone(), e.clone()))
            .collect())
    }
}
