//! The crate's one public error type.

use std::path::PathBuf;

/// Everything that can go wrong while owning, capturing or restoring a
/// browser. Each message says what failed and what to do next. No message
/// ever contains a cookie or storage value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrowserError {
    /// No Chromium binary was found.
    #[error(
        "no Chromium found (tried $SESSHOST_CHROMIUM, then chromium, chromium-browser, google-chrome on PATH): \
         install it with `apt-get install chromium`, or set SESSHOST_CHROMIUM to the browser binary"
    )]
    ChromiumNotFound,

    /// `SESSHOST_CHROMIUM` names something that is not an executable file.
    #[error(
        "SESSHOST_CHROMIUM is set to {0:?}, which is not an executable file: fix the path or unset the variable"
    )]
    BadChromiumPath(PathBuf),

    /// Starting the Chromium process failed.
    #[error(
        "could not start Chromium {binary:?}: {source}; check that the binary runs (`{binary:?} --version`)"
    )]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Chromium started but never announced its DevTools endpoint.
    #[error(
        "Chromium did not open its DevTools endpoint ({reason}); last output: {stderr_tail:?}. \
         Run the binary by hand with --headless=new to see why it fails"
    )]
    NoDevToolsEndpoint { reason: String, stderr_tail: String },

    /// Creating the private profile directory failed.
    #[error(
        "could not create a private Chromium profile directory: {0}; check that the temp dir (TMPDIR) is writable"
    )]
    ProfileDir(#[source] std::io::Error),

    /// The DevTools connection could not be opened or broke.
    #[error(
        "lost or could not open the DevTools connection to Chromium: {0}; the browser may have crashed, relaunch the session"
    )]
    Connection(String),

    /// A DevTools command failed.
    #[error(
        "DevTools command {method} failed: {message}; this Chromium may be incompatible, try another version (SESSHOST_CHROMIUM)"
    )]
    Cdp { method: String, message: String },

    /// A step of capture or restore failed inside the page.
    #[error(
        "{what} failed for {origin}: {message}; the site's storage may be locked by an open tab or over quota, retry after closing it"
    )]
    Storage {
        what: &'static str,
        origin: String,
        message: String,
    },

    /// The session state cannot be applied as given.
    #[error("invalid session state: {0}; fix or re-capture the session")]
    InvalidState(String),

    /// A step did not finish in time.
    #[error("{0} timed out; the browser may be hung, relaunch the session")]
    Timeout(String),
}

/// Shorthand used throughout the crate.
pub type Result<T, E = BrowserError> = std::result::Result<T, E>;

impl From<chromiumoxide::error::CdpError> for BrowserError {
    fn from(e: chromiumoxide::error::CdpError) -> Self {
        use chromiumoxide::error::CdpError as C;
        match e {
            C::Chrome(err) => BrowserError::Cdp {
                method: "?".into(),
                message: err.message,
            },
            C::Timeout => BrowserError::Timeout("a DevTools command".into()),
            other => BrowserError::Connection(other.to_string()),
        }
    }
}
