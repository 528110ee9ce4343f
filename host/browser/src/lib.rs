//! `sesshost-browser`: sesshost's owner of Chromium.
//!
//! It turns a live Chromium into a [`SessionState`] and back, and nothing
//! else: no session store, no bundles, no CLI (those live in `sessbundle`
//! and `host`).
//!
//! Modules:
//! - [`launch`]: find Chromium (`SESSHOST_CHROMIUM`, then `PATH`), spawn it
//!   with a private profile in its own process group that dies with the
//!   host (even on SIGKILL), flags for a closed network;
//! - [`session`]: [`BrowserSession`], one Chromium + DevTools connection,
//!   event tracking (origins seen, tabs, last window closed);
//! - [`capture`]: live browser -> [`SessionState`] (cookies, localStorage,
//!   IndexedDB with typed values, sessionStorage, tabs with history, meta);
//! - [`restore`]: [`SessionState`] -> live browser, before page scripts run,
//!   into the default context;
//! - `cdp`, `js` (private): untyped DevTools commands (robust to protocol
//!   drift) and the page JavaScript that reads/writes an origin's storage.
//!
//! Typical use (inside a tokio runtime):
//! ```no_run
//! # async fn f(state: sessbundle::state::SessionState) -> Result<(), sesshost_browser::BrowserError> {
//! use sesshost_browser::{BrowserSession, Emulation, LaunchOptions};
//! let opts = LaunchOptions { emulation: Emulation::from_meta(&state.meta), ..Default::default() };
//! let session = BrowserSession::launch(opts).await?;
//! session.restore(&state).await?;
//! println!("{}", session.ws_url());
//! // ... later, or on SIGINT / `wait_closed()`:
//! let saved = session.capture(Some(&state)).await?;
//! session.shutdown().await;
//! # let _ = saved; Ok(()) }
//! ```
//!
//! [`SessionState`]: sessbundle::state::SessionState

pub mod capture;
mod cdp;
mod error;
mod js;
pub mod launch;
pub mod restore;
pub mod session;

pub use error::{BrowserError, Result};
pub use launch::{Emulation, LaunchOptions, find_chromium};
pub use session::{BrowserSession, Closed};
