//! The crate's one public error type. Every message says what failed and
//! what to do next. No message ever holds key material or stored values.

use std::path::PathBuf;

use crate::backend::BackendError;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error(
        "invalid session name {name:?}: {reason}; use 1-64 characters from A-Z a-z 0-9 . _ -, not starting with '.' or '-'"
    )]
    InvalidName { name: String, reason: &'static str },

    #[error("no session named {name:?}: run `host session list` to see the sessions there are")]
    SessionNotFound { name: String },

    #[error(
        "a session named {name:?} already exists: pick another name, or `host session delete {name}` first"
    )]
    SessionExists { name: String },

    #[error("session {name:?} is already open ({}): close that `host session open` first", pid_text(*.pid))]
    SessionOpen { name: String, pid: Option<u32> },

    #[error(
        "session {name:?} has no snapshot {seq}: run `host session history {name}` to see the snapshots it keeps"
    )]
    SnapshotNotFound { name: String, seq: u64 },

    #[error(
        "session {name:?} has no earlier snapshot to roll back to: run `host session history {name}`"
    )]
    NoEarlierSnapshot { name: String },

    /// Stored bytes failed authentication, did not decode, or did not match
    /// their name.
    #[error(
        "{what} is damaged or was changed ({detail}), or the host key is not the one this store was written with: run `host session cleanup` to remove damaged sessions"
    )]
    Corrupt { what: String, detail: String },

    #[error("host key {}: {detail}", path.display())]
    HostKey { path: PathBuf, detail: String },

    #[error("{op} {key:?} failed: {source}; check that the store is reachable and writable")]
    Backend {
        op: &'static str,
        key: String,
        #[source]
        source: BackendError,
    },

    #[error("{what} {}: {source}; check the path exists and is writable", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A lock was not free within the timeout.
    #[error(
        "timed out after {} s waiting for the lock of {what} ({}), {holder}: wait for that command to finish and retry, or give the store a longer lock timeout (Store::with_lock_timeout)",
        *waited_ms as f64 / 1000.0, path.display()
    )]
    LockTimeout {
        what: String,
        path: PathBuf,
        waited_ms: u64,
        holder: String,
    },

    #[error(
        "this backend holds no sesshost repository yet (no `config` object): push a session to it first, or check the plugin configuration points at the right place"
    )]
    NoRepository,

    #[error(
        "this repository was created with another passphrase or key file: give the one it was created with"
    )]
    WrongRepoKey,

    #[error(
        "the repository's `config` object {detail}: restore it from a backup of the repository, or push into a new location"
    )]
    RepoConfig { detail: String },

    #[error("the session state cannot be stored: {0}")]
    State(String),
}

fn pid_text(pid: Option<u32>) -> String {
    match pid {
        Some(p) => format!("pid {p}"),
        None => "pid unknown".into(),
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub(crate) fn corrupt(what: impl Into<String>, detail: impl Into<String>) -> Self {
        StoreError::Corrupt {
            what: what.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// Whether the error says stored data is damaged (as opposed to the
    /// store being unreachable or the request being wrong).
    pub fn is_corrupt(&self) -> bool {
        matches!(self, StoreError::Corrupt { .. })
    }
}
