//! `sesshost_store`: the local session store.
//!
//! It owns the content-addressed, encrypted object layout that sessions are
//! kept in, whatever holds the objects (a local directory now, a storage
//! plugin later), plus the local home directory around it. Synchronous: no
//! async runtime. It must not touch a browser, a network or wasm: the
//! browser crate hands it a [`sessbundle::SessionState`] and gets one back.
//!
//! Modules:
//! - [`backend`]: the five-call [`Backend`] trait (put/get/has/delete/list)
//!   and [`LocalDirBackend`] (atomic file writes).
//! - [`crypto`]: [`RepoKey`], derived subkeys, sealed chunks (keyed BLAKE3
//!   ids, AES-256-GCM, optional zstd) and sealed records (manifests).
//! - [`store`]: [`Store`], sessions and their snapshots: create, save with
//!   deduplication, load, list/show, extend, delete, history, rollback,
//!   cleanup, garbage collection.
//! - [`home`]: [`Home`], the `$SESSHOST_HOME` directory: host key generated
//!   on first use, the store in `HOME/store/`, per-session open locks.
//! - [`names`]: session name rules.
//! - [`error`]: [`StoreError`], the one public error type.

pub mod backend;
pub mod crypto;
pub mod error;
pub mod home;
pub mod names;
pub mod store;

pub use backend::{Backend, BackendError, BackendErrorKind, LocalDirBackend};
pub use crypto::{ChunkId, RepoKey};
pub use error::{Result, StoreError};
pub use home::{Home, SessionLock};
pub use names::validate_name;
pub use store::{
    CleanupReport, GcReport, KEEP_SNAPSHOTS, NewSession, Removed, SaveReport, SessionInfo,
    SnapshotInfo, Store, Summary, now_ms,
};
