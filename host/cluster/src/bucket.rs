//! What the protocol needs from storage: a `sesshost_store` [`Backend`]
//! with atomic conditional writes (S3 with signed `If-None-Match` /
//! `If-Match`, Ceph RGW, a directory through `link(2)` and `flock`; the
//! host refuses others after `sesshost_store::probe`), and the two
//! helpers on top of it the protocol uses everywhere.
//!
//! A conditional write has four outcomes (research: distributed.md §3;
//! STORE.md "Conditional writes"): won (2xx), lost (412; 404 on If-Match),
//! lost this round (409: re-read and retry), and **unknown** (5xx, timeout,
//! a dropped connection: it may or may not have been applied; Ceph RGW
//! answers 500 to most losers of a race). Every record carries its
//! writer's nonce, so [`put_resolved`] turns "unknown" into won, lost or
//! not applied by reading the object back.

use sesshost_store::{Backend, BackendError, BackendErrorKind, Etag, Precondition};

/// `get_with_etag`, retried by `sesshost_store::backend::retry_read` when
/// the object was replaced mid-way or the server failed the read: claims,
/// heads and host records are replaced all the time while others read
/// them.
pub fn read_with_etag(b: &dyn Backend, key: &str) -> Result<Option<(Vec<u8>, Etag)>, BackendError> {
    sesshost_store::backend::retry_read(|| b.get_with_etag(key))
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

/// `put_if`, with "unknown" resolved by reading the object back: our
/// `nonce` in it (the JSON field `nonce` of `body`) is a win; the version
/// the precondition named (or still no object) means not applied; anything
/// else is lost. 409 is reported as lost (re-read and retry).
pub fn put_resolved(
    b: &dyn Backend,
    key: &str,
    body: &[u8],
    pre: &Precondition,
    nonce: &str,
) -> Result<Outcome, BackendError> {
    let e = match b.put_if(key, body, pre.clone()) {
        Ok(e) => return Ok(Outcome::Won(e)),
        Err(e) => e,
    };
    match e.kind {
        BackendErrorKind::PreconditionFailed | BackendErrorKind::Conflict => Ok(Outcome::Lost),
        BackendErrorKind::UnknownOutcome => resolve_unknown(b, key, pre, nonce),
        _ => Err(e),
    }
}

/// What a write whose outcome was unknown did, read back: our `nonce` in
/// the object is a win; the version `pre` named (or still no object) is
/// not applied; anything else is lost. For callers with their own retry
/// policy around `put_if` (the service's tenant records).
pub fn resolve_unknown(
    b: &dyn Backend,
    key: &str,
    pre: &Precondition,
    nonce: &str,
) -> Result<Outcome, BackendError> {
    Ok(match (read_with_etag(b, key)?, pre) {
        (Some((bytes, etag)), _) if nonce_of(&bytes).as_deref() == Some(nonce) => {
            Outcome::Won(etag)
        }
        (None, Precondition::IfAbsent) => Outcome::NotApplied,
        (Some((_, etag)), Precondition::IfMatch(e)) if etag == *e => Outcome::NotApplied,
        _ => Outcome::Lost,
    })
}

/// The writer's nonce of a JSON record (its `nonce` field).
pub fn nonce_of(bytes: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()?
        .get("nonce")?
        .as_str()
        .map(str::to_string)
}

/// Every key under `prefix` with its ETag, all pages (a HEAD per key where
/// the listing has no ETags, as on s3s-fs).
pub fn list_with_etags(b: &dyn Backend, prefix: &str) -> Result<Vec<(String, Etag)>, BackendError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = b.list_info(prefix, after.as_deref(), 1000)?;
        for e in page.entries {
            let etag = match e.etag {
                Some(t) => Some(t),
                None => b.head(&e.key)?.map(|i| i.etag),
            };
            if let Some(t) = etag {
                out.push((e.key, t));
            }
        }
        match page.next_start_after {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}
