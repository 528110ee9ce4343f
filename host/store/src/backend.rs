//! The object-store shaped [`Backend`] trait, its value types, and its
//! implementations.
//!
//! The five whole-object calls (put/get/has/delete/list) are all the store
//! itself needs: objects are immutable and content-addressed, or replaced
//! whole. Several processes sharing one bucket need more, and the trait has
//! it (STORE.md "Conditional writes"): [`Backend::put_if`] with a
//! [`Precondition`] (create-only or compare-and-swap on an [`Etag`]),
//! [`Backend::head`], [`Backend::get_with_etag`], paginated
//! [`Backend::list_info`], and [`Backend::capabilities`] so a caller can
//! refuse a backend that does not check preconditions atomically (see
//! [`crate::probe`] for the check that does not take its word for it).
//!
//! Submodules:
//! - [`counting`]: [`counting::Counting`], a wrapper that counts calls by
//!   kind (metrics, cost figures).
//! - [`local`]: [`LocalDirBackend`], a directory (create-only by `link(2)`,
//!   compare-and-swap under a per-key `flock`), safe for several processes.
//! - [`memory`]: [`memory::MemoryBackend`], an in-memory atomic backend
//!   with fault injection, for deterministic tests (a test and reference
//!   backend, not for production data).

use std::io;

pub mod counting;
pub mod local;
pub mod memory;

pub use local::LocalDirBackend;

/// Why a backend call failed. Not-found is not an error (`get` returns
/// `Ok(None)`, `delete` of a missing key succeeds).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct BackendError {
    pub kind: BackendErrorKind,
    /// Human-readable detail (no secrets: keys are chunk ids and names).
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// Permission denied (fix the permissions or the credentials).
    Denied,
    /// The backend cannot be reached right now, and the operation was not
    /// applied (retry later).
    Unavailable,
    /// The key is not valid for this backend (a bug in the caller).
    InvalidKey,
    /// A [`Precondition`] did not hold (S3 412, or 404 for if-match on a
    /// missing key): nothing was written.
    PreconditionFailed,
    /// A concurrent conditional write on the same key won (S3 409): nothing
    /// was written; re-read and retry.
    Conflict,
    /// The write may or may not have been applied (S3 5xx, a timeout, a
    /// connection lost after sending): re-read the key to find out.
    UnknownOutcome,
    /// The backend cannot do this at all (a conditional write on a 0.1
    /// storage plugin).
    Unsupported,
    Other,
}

impl std::fmt::Display for BackendErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendErrorKind::Denied => "permission denied",
            BackendErrorKind::Unavailable => "backend unavailable",
            BackendErrorKind::InvalidKey => "invalid key",
            BackendErrorKind::PreconditionFailed => "precondition failed",
            BackendErrorKind::Conflict => "conflicting concurrent write",
            BackendErrorKind::UnknownOutcome => "outcome unknown (the write may have happened)",
            BackendErrorKind::Unsupported => "not supported by this backend",
            BackendErrorKind::Other => "backend error",
        })
    }
}

impl BackendError {
    pub fn new(kind: BackendErrorKind, detail: impl Into<String>) -> Self {
        BackendError {
            kind,
            detail: detail.into(),
        }
    }

    pub(crate) fn from_io(e: &io::Error) -> Self {
        let kind = match e.kind() {
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                BackendErrorKind::Denied
            }
            io::ErrorKind::TimedOut | io::ErrorKind::Interrupted => BackendErrorKind::Unavailable,
            _ => BackendErrorKind::Other,
        };
        BackendError::new(kind, e.to_string())
    }

    fn unsupported(what: &str) -> Self {
        BackendError::new(
            BackendErrorKind::Unsupported,
            format!(
                "{what} needs a backend with conditional writes (a storage plugin built against sesshost:plugin/storage@0.2.0, or a local directory)"
            ),
        )
    }
}

/// An object's entity tag: an opaque string that changes whenever the
/// object's bytes change. Compared as a string; only meaningful for the
/// key and backend it came from. Forms: S3 = the server's ETag without the
/// surrounding quotes; [`LocalDirBackend`] and [`memory::MemoryBackend`] =
/// the lowercase hex BLAKE3 of the bytes (64 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Etag(pub String);

impl Etag {
    /// The ETag [`LocalDirBackend`] and [`memory::MemoryBackend`] give
    /// `bytes`: lowercase hex BLAKE3.
    pub fn of_bytes(bytes: &[u8]) -> Etag {
        Etag(blake3::hash(bytes).to_hex().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Etag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What must hold for [`Backend::put_if`] to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Unconditional (as [`Backend::put`]).
    None,
    /// The key must not exist (create-only; S3 `If-None-Match: *`).
    IfAbsent,
    /// The key must exist with this ETag (compare-and-swap; S3 `If-Match`).
    IfMatch(Etag),
}

/// Size and ETag of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub etag: Etag,
}

/// One key of a [`ListPage`]. `etag` is `None` when the backend's listing
/// has none (s3s-fs): call [`Backend::head`] for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub key: String,
    pub size: u64,
    pub etag: Option<Etag>,
}

/// One page of [`Backend::list_info`], sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub entries: Vec<ListEntry>,
    /// More keys follow: pass this as `start_after` for the next page.
    pub next_start_after: Option<String>,
}

/// What a backend guarantees beyond the five whole-object calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// [`Backend::put_if`] checks `IfAbsent`/`IfMatch`, atomically: of two
    /// concurrent conditional writes on one key with the same precondition
    /// at most one succeeds. Declared, not proven: [`crate::probe`] checks.
    AtomicConditionalWrites,
    /// [`Backend::list_info`] returns ETags.
    ListEtags,
}

/// A flat object store. Keys are `/`-separated ASCII paths whose segments
/// use `[A-Za-z0-9._-]`, never start with `.`, and are never empty, e.g.
/// `chunks/ab/<64 hex>`, `snapshots/<name>/<seq>`, `sessions/<name>`.
///
/// `put` replaces an object whole and atomically (a reader sees the old or
/// the new bytes, never a mix). Implementations must be usable from several
/// threads.
///
/// The conditional calls have defaults for backends that only have the
/// five basic ones: [`Backend::put_if`] refuses preconditions
/// ([`BackendErrorKind::Unsupported`]), ETags are computed from the bytes,
/// and no capability is declared.
pub trait Backend: Send + Sync {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BackendError>;
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError>;
    fn has(&self, key: &str) -> Result<bool, BackendError>;
    /// Deleting a missing key succeeds. Unconditional.
    fn delete(&self, key: &str) -> Result<(), BackendError>;
    /// Every key that starts with `prefix` (string prefix), in any order.
    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError>;

    /// Writes `bytes` under `key` if `pre` holds; returns the new ETag.
    /// Errors: [`BackendErrorKind::PreconditionFailed`] (nothing written),
    /// [`BackendErrorKind::Conflict`] (nothing written, retry),
    /// [`BackendErrorKind::UnknownOutcome`] (re-read to find out).
    fn put_if(&self, key: &str, bytes: &[u8], pre: Precondition) -> Result<Etag, BackendError> {
        match pre {
            Precondition::None => {
                self.put(key, bytes)?;
                Ok(Etag::of_bytes(bytes))
            }
            _ => Err(BackendError::unsupported("a conditional write")),
        }
    }

    /// Size and ETag of `key`, `None` if it does not exist.
    fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BackendError> {
        Ok(self.get(key)?.map(|b| ObjectInfo {
            size: b.len() as u64,
            etag: Etag::of_bytes(&b),
        }))
    }

    /// The bytes of `key` and the ETag they were stored under.
    fn get_with_etag(&self, key: &str) -> Result<Option<(Vec<u8>, Etag)>, BackendError> {
        Ok(self.get(key)?.map(|b| {
            let e = Etag::of_bytes(&b);
            (b, e)
        }))
    }

    /// At most `max` (≥ 1) keys starting with `prefix` and sorting after
    /// `start_after`, sorted, with sizes and (where the backend lists them)
    /// ETags.
    fn list_info(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: u32,
    ) -> Result<ListPage, BackendError> {
        let mut keys = self.list(prefix)?;
        keys.sort();
        let mut out = ListPage::default();
        for key in keys
            .into_iter()
            .filter(|k| start_after.is_none_or(|s| k.as_str() > s))
        {
            if out.entries.len() >= max.max(1) as usize {
                out.next_start_after = out.entries.last().map(|e| e.key.clone());
                break;
            }
            if let Some(info) = self.head(&key)? {
                out.entries.push(ListEntry {
                    key,
                    size: info.size,
                    etag: Some(info.etag),
                });
            }
        }
        Ok(out)
    }

    /// What this backend declares it guarantees.
    fn capabilities(&self) -> Vec<Capability> {
        Vec::new()
    }
}

/// Reads of one object, in all, while each finds it replaced mid-way or
/// the server fails it.
pub const READ_ATTEMPTS: u32 = 5;

/// Run the read `read` again when the object was replaced while being
/// read (the s3 plugin's ranged reads saw its ETag change:
/// [`BackendErrorKind::Conflict`]) or the server failed the read
/// ([`BackendErrorKind::Unavailable`]: Ceph RGW answers 500 to some reads
/// that race a write), up to [`READ_ATTEMPTS`] times in all, backing off
/// 10, 15, 20, 25 ms. A read changes nothing, so retrying it is always
/// safe. Cost: an unreachable backend fails a read 70 ms later.
pub fn retry_read<T>(mut read: impl FnMut() -> Result<T, BackendError>) -> Result<T, BackendError> {
    let mut tries = 1;
    loop {
        match read() {
            Err(e)
                if matches!(
                    e.kind,
                    BackendErrorKind::Conflict | BackendErrorKind::Unavailable
                ) && tries < READ_ATTEMPTS =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(5 * u64::from(tries)));
            }
            r => return r,
        }
    }
}

/// Checks a key against the rules in [`Backend`].
pub fn validate_key(key: &str) -> Result<(), BackendError> {
    let ok = !key.is_empty()
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(BackendError::new(
            BackendErrorKind::InvalidKey,
            format!("{key:?} is not a valid object key"),
        ))
    }
}

/// Sorts and cuts `entries` into one page (for backends that hold
/// everything in memory).
pub(crate) fn page_of(
    mut entries: Vec<ListEntry>,
    start_after: Option<&str>,
    max: u32,
) -> ListPage {
    entries.retain(|e| start_after.is_none_or(|s| e.key.as_str() > s));
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    let max = max.max(1) as usize;
    let next_start_after = if entries.len() > max {
        entries.truncate(max);
        entries.last().map(|e| e.key.clone())
    } else {
        None
    };
    ListPage {
        entries,
        next_start_after,
    }
}
