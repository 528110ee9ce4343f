//! `sesshost-engine`: every session flow of sesshost behind one async API,
//! shared by the `host` CLI and the service. The CLI parses flags into the
//! request structs here, makes one engine call and prints the report.
//!
//! # Layout (follow the data)
//! - [`engine`]: [`Engine`], one home (store + host key), the plugin
//!   runtime made on first use, store work moved to the blocking pool.
//! - [`sessions`]: stored sessions without a browser: create, list, show,
//!   extend, delete, history, rollback, cleanup (built-in or a strategy).
//! - [`stored`]: a stored session's state as data: load, edit in place
//!   (under its open lock), fork under a new name.
//! - [`live`]: a session live in Chromium: Chromium starts while the state
//!   loads → restore in force → CDP URL (the rest of the restore finishes
//!   in the background) → autosave → capture → save → close
//!   ([`LiveSession`]); `open_live_in` restores into a browser launched
//!   beforehand (the service's warm pool).
//! - [`transfer`]: export (load → [`sanitize`] → [`bundle_io`] seal or
//!   Playwright/cookies.txt → atomic write) and import (open once → verify
//!   that handle → read → store).
//! - [`sync`]: push/pull through a storage-backend plugin with the
//!   repository key (format in `sesshost_store::repo`); [`RemoteTier`],
//!   a repository held open (the service's durable tier).
//! - [`bundle_io`]: bundles as files: atomic sealed writes, one-open reads.
//! - [`progress`]: byte counters the caller can show.
//! - [`error`]: [`Error`], the one public error.
//!
//! `host export` to bytes on disk, in five files: `host/cli/src/transfer_cmd.rs`
//! (flags → [`ExportRequest`]) → [`transfer`] (`Engine::export`: load,
//! sanitise) → [`bundle_io::write_bundle`] → `sessbundle::writer` (records,
//! chunks, compression, encryption) → `sessbundle::atomic` (temp file,
//! fsync, rename, fsync the directory).
//!
//! # What this crate does not do
//! It parses no command line and prints nothing (reports are returned), owns
//! no format (that is `sessbundle`, `sesshost-store`), builds no async
//! runtime (callers bring one), and never blocks an executor thread.

pub mod bundle_io;
pub mod engine;
pub mod error;
pub mod live;
pub mod progress;
pub mod sanitize;
pub mod sessions;
pub mod stored;
pub mod sync;
pub mod transfer;

pub use engine::{Engine, HomeMode, plugin_runtime};
pub use error::{Error, Result, ResultExt};
pub use live::{CloseReport, LiveSession, OpenRequest, StopReason};
pub use progress::Counter;
pub use sanitize::SanitizeRequest;
pub use sessions::{Decision, DecisionOutcome, StrategyCleanup};
pub use sync::{PullReport, PullRequest, PushRequest, Remote, RemoteTier};
pub use transfer::{ExportReport, ExportRequest, FileFormat, ImportReport, ImportRequest};
