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
//! - [`profile`]: private profile dirs under a caller-given root, each
//!   with an owner lock (pid + flock for the browser's life);
//!   [`sweep_stale_profiles`] deletes those whose host died;
//! - [`session`]: [`BrowserSession`], one Chromium + DevTools connection,
//!   event tracking (origins seen, tabs, last window closed);
//! - `hidden_tabs`: our own tabs (the keeper, which captures also read
//!   storage in; a capture's extra tabs) and hiding them from capture;
//! - [`capture`]: live browser -> [`SessionState`] (cookies, localStorage,
//!   IndexedDB with typed values, sessionStorage, tabs with history, meta);
//! - [`restore`]: [`SessionState`] -> live browser, before page scripts run,
//!   into the default context;
//! - [`restore_gate`]: sets cookies and writes origins' storage (hidden
//!   writer pages) behind a browser-level request gate, so a restore is in
//!   force at once and no page ever sees it half done;
//! - [`visit`]: what the service does to a live browser besides capture
//!   and restore: visit a page and report it (`navigate`, login checks),
//!   replace the cookie jar (cookie edits on a live session);
//! - `client_gate` (private): the handed-out CDP URL is a local pipe to
//!   Chromium that holds clients connecting while restored tabs are being
//!   rebuilt, so the URL can go out as soon as a restore is in force;
//! - `cdp`, `js` (private): untyped DevTools commands (robust to protocol
//!   drift) and the page JavaScript that reads/writes an origin's storage.
//!
//! Decisions worth knowing:
//! - *Orphans*: Chromium is spawned by us in its own process group with
//!   `PR_SET_PDEATHSIG = SIGKILL` (the `unsafe` blocks, `pre_exec` and
//!   `kill(2)`, are in `launch.rs`), then connected with
//!   `Browser::connect`. Drop SIGKILLs the group at once and reaps it and
//!   deletes the profile on a thread (never blocking an executor);
//!   `shutdown().await` waits for that. A SIGKILLed host takes Chromium
//!   with it, and its profile is deleted by the next host's
//!   [`sweep_stale_profiles`] (both tested).
//! - *Which origins are captured*: every http(s) origin seen this run (page
//!   and iframe targets, tab histories and frame trees) plus every origin
//!   restored; `previous` supplies the rest unchanged. Each is read in a
//!   hidden tab through a placeholder page (no network, no site script).
//! - *Restore order*: the gate goes up first (the state is in force from
//!   there, ~20 ms), cookies and storage are written behind it, tabs load
//!   through it, so the first real request is logged in.
//!   sessionStorage is written into each tab on a placeholder of its
//!   origin before the real page loads; history is rebuilt the same way.
//! - *Emulation*: two ways in. [`BrowserSession::launch`] with
//!   [`LaunchOptions::emulation`] set also passes it as flags/env
//!   (`--user-agent`, `--lang`/`--accept-lang`, `TZ`, `--window-size`),
//!   which cover every tab from its first byte, including ones a CDP client
//!   or the user opens later. A *pooled* browser (launched with no
//!   emulation, so any session can take it) gets its emulation over CDP
//!   only: [`BrowserSession::set_emulation`] applies `Emulation.*`
//!   overrides to every open tab, and the tracker applies the current
//!   emulation to every tab as it appears (restored tabs before they load).
//!   What CDP emulation does not cover: (1) a tab a client or page opens
//!   gets its overrides when our connection has attached it (~10-50 ms),
//!   so that tab's first document request goes out with the browser's own
//!   User-Agent/Accept-Language; (2) workers: measured on Chromium 156, a
//!   dedicated worker gets the user agent and time zone but keeps the
//!   browser's `navigator.language`; a shared worker (a target of its own)
//!   keeps the browser's user agent and language (time zone follows its
//!   renderer); service workers, also targets of their own, are not
//!   reached either, nor the requests they make. See `tests/pool.rs`.
//! - *Headed close*: Chromium quits with its last window; a minimised keeper
//!   window (`session::KEEPER_URL`) keeps it alive so
//!   [`BrowserSession::wait_closed`] can report `LastWindowClosed` while a
//!   final capture still works. CDP clients that disconnect change nothing.
//! - *Protocol drift*: every command is sent as untyped JSON; chromiumoxide
//!   skips events it cannot parse, and the handler loop only stops when the
//!   socket itself fails.
//!
//! Typical use (inside a tokio runtime), a cold open:
//! ```no_run
//! # async fn f(read_store: impl std::future::Future<Output = sessbundle::state::SessionState>, run: std::path::PathBuf) -> Result<(), sesshost_browser::BrowserError> {
//! use sesshost_browser::{BrowserSession, Emulation, LaunchOptions, sweep_stale_profiles};
//! sweep_stale_profiles(&run)?; // at every host start
//! let opts = LaunchOptions { profile_root: Some(run), ..Default::default() };
//! // Chromium starts while the store is read.
//! let (session, state) = tokio::join!(BrowserSession::spawn(opts), read_store);
//! let session = session?;
//! let restoring = session.restore_in_background(&state).await?; // gate in force
//! println!("{}", session.ws_url()); // hand the CDP URL out now
//! restoring.finish().await?;
//! // ... later, or on SIGINT / `wait_closed()`:
//! let saved = session.capture(Some(&state)).await?;
//! session.shutdown().await;
//! # let _ = saved; Ok(()) }
//! ```
//!
//! [`SessionState`]: sessbundle::state::SessionState

pub mod capture;
mod cdp;
mod client_gate;
mod error;
mod hidden_tabs;
mod js;
pub mod launch;
pub mod profile;
pub mod restore;
pub mod restore_gate;
pub mod session;
pub mod visit;

pub use error::{BrowserError, Result};
pub use launch::{Emulation, LaunchOptions, find_chromium};
pub use profile::{SweepReport, sweep_stale_profiles};
pub use restore::Restoring;
pub use session::{BrowserSession, Closed, Launching};
pub use visit::{Visit, WaitUntil};
