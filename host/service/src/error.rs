//! The crate's one error type, [`ServiceError`]. Every message says what is
//! wrong and what to do next; none carries a key, secret or cookie value.

use std::path::PathBuf;

/// Everything that can go wrong in the service's own parts (config, tenants,
/// keys, audit log).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A filesystem operation failed.
    #[error("{what}: {source} (check that the path exists and is writable by this user)")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// An atomic write (temp file, fsync, rename) failed.
    #[error("{0}")]
    Bundle(#[from] sessbundle::error::Error),
    /// `sesshost.toml` is not valid.
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    /// A tenant name breaks the naming rule.
    #[error(
        "invalid tenant name {name:?}: {rule} (use 1-64 characters from a-z, 0-9, '_' and '-')"
    )]
    InvalidTenantName { name: String, rule: &'static str },
    /// `add_tenant` of a name that exists.
    #[error("tenant {0:?} already exists (pick another name, or `host tenant list` to see them)")]
    TenantExists(String),
    /// A tenant that does not exist.
    #[error(
        "no tenant {0:?} (create it with `host tenant add NAME`; `host tenant list` shows them)"
    )]
    NoSuchTenant(String),
    /// A key id that is not known.
    #[error("no API key with id {0:?} (`host key list` shows the key ids)")]
    NoSuchKey(String),
    /// Revoking a key that is already revoked.
    #[error("API key {id} was already revoked at {at} (nothing to do)")]
    KeyAlreadyRevoked { id: String, at: String },
    /// A stored record (tenant, key) that cannot be read back.
    #[error("{path}: corrupt record ({message}); restore it from a backup or remove it")]
    CorruptRecord { path: PathBuf, message: String },
    /// The cluster's bucket (tenants and keys of `--cluster`) failed or
    /// kept answering ambiguously.
    #[error(
        "{what}: {source} (check that the bucket is reachable and the plugin's settings, then retry)"
    )]
    Bucket {
        what: String,
        #[source]
        source: sesshost_store::BackendError,
    },
    /// The cluster's bucket could not be opened through its storage plugin
    /// (`--cluster --plugin …`).
    #[error(
        "cannot open the cluster's bucket through {plugin}: {message} (check --plugin, --plugin-config and --allow-host: the same as `host run --cluster` is given)"
    )]
    BucketOpen { plugin: String, message: String },
    /// `host run` could not start (home, listen address, catalog).
    #[error("cannot start the service: {0}")]
    Startup(String),
    /// The system random generator failed.
    #[error("the system random generator failed ({0}); check /dev/urandom and retry")]
    Random(String),
}

impl ServiceError {
    /// An [`std::io::Error`] with a description of what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServiceError {
        let what = what.into();
        move |source| ServiceError::Io { what, source }
    }
}

/// The crate's result type.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;
