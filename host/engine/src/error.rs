//! The engine's one public error. It wraps the lower crates' errors (whose
//! messages already say what to do next) and adds the engine's own cases.
//! No message holds a secret or a stored value.

/// Everything an engine flow can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Bundle(#[from] sessbundle::Error),
    #[error(transparent)]
    Store(#[from] sesshost_store::StoreError),
    #[error(transparent)]
    Browser(#[from] sesshost_browser::BrowserError),
    #[error(transparent)]
    Plugin(#[from] sesshost_plugin::Error),
    #[error(transparent)]
    Interop(#[from] sessbundle::interop::InteropError),
    /// The request itself is wrong (a combination of options that cannot
    /// work); the CLI maps it to exit code 2.
    #[error("{0}")]
    Usage(String),
    /// The home directory does not exist and the command only reads.
    #[error(
        "no sesshost home at {}: nothing is stored there yet. Create a session first (`host session create NAME`), or pass --home DIR / set SESSHOST_HOME to the home you meant",
        .0.display()
    )]
    NoHome(std::path::PathBuf),
    /// Input that is not what it claims to be.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be read or written. (The I/O error is part of
    /// the message and deliberately not a `source()`, so a printer of the
    /// chain shows it once.)
    #[error("{what} {}: {io}", path.display())]
    Io {
        what: &'static str,
        path: std::path::PathBuf,
        io: std::io::Error,
    },
    /// A lower error, with what the engine was doing when it happened (the
    /// lower error is part of the message, not a `source()`, for the same
    /// reason).
    #[error("{what}: {inner}")]
    Context { what: String, inner: Box<Error> },
    /// A blocking task died (a bug: it panicked).
    #[error("an internal task failed ({0}); please report this")]
    Task(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wrap with what the engine was doing.
    pub fn context(self, what: impl Into<String>) -> Error {
        Error::Context {
            what: what.into(),
            inner: Box::new(self),
        }
    }

    pub(crate) fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Error {
        Error::Io {
            what,
            path: path.to_path_buf(),
            io: source,
        }
    }

    /// The innermost engine error (under any [`Error::Context`]).
    pub fn root(&self) -> &Error {
        match self {
            Error::Context { inner, .. } => inner.root(),
            e => e,
        }
    }

    /// The wrapped lower error of a `transparent` variant (whose
    /// `source()` skips it), else the ordinary source.
    fn next<'a>(
        e: &'a (dyn std::error::Error + 'static),
    ) -> Option<&'a (dyn std::error::Error + 'static)> {
        match e.downcast_ref::<Error>() {
            Some(Error::Bundle(x)) => Some(x),
            Some(Error::Store(x)) => Some(x),
            Some(Error::Browser(x)) => Some(x),
            Some(Error::Plugin(x)) => Some(x),
            Some(Error::Interop(x)) => Some(x),
            Some(Error::Context { inner, .. }) => Some(inner.as_ref()),
            _ => e.source(),
        }
    }

    /// Whether any error in the chain (through wrapped lower errors)
    /// satisfies `f`.
    fn any(&self, f: impl Fn(&(dyn std::error::Error + 'static)) -> bool) -> bool {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cur {
            if f(e) {
                return true;
            }
            cur = Error::next(e);
        }
        false
    }

    /// A wrong passphrase or key, tampered data, or a bad or missing
    /// signature (exit code 3 in the CLI).
    pub fn is_auth_failure(&self) -> bool {
        self.any(|e| {
            e.downcast_ref::<sessbundle::Error>()
                .is_some_and(|b| b.is_auth_failure())
                || matches!(
                    e.downcast_ref::<sesshost_store::StoreError>(),
                    Some(sesshost_store::StoreError::WrongRepoKey)
                )
        })
    }

    /// A request that could never work as given (exit code 2).
    pub fn is_usage(&self) -> bool {
        self.any(|e| {
            matches!(e.downcast_ref::<Error>(), Some(Error::Usage(_)))
                || matches!(
                    e.downcast_ref::<sessbundle::Error>(),
                    Some(sessbundle::Error::Usage(_))
                )
        })
    }
}

/// `.context(...)` on engine results.
pub trait ResultExt<T> {
    fn context(self, what: impl Into<String>) -> Result<T>;
    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: Into<Error>> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }
    fn with_context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| e.into().context(what()))
    }
}
