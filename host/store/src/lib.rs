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
//! - [`store`]: the [`Store`] handle, its backend helpers and the read side
//!   (load, exists, list, show).
//! - `layout`: object names and AAD strings (where each object lives).
//! - `objects`: the stored session record and snapshot manifest, their
//!   read/write, and rebuilding a state from a manifest's chunks.
//! - `save`: the save pipeline (dedup, sealing on threads, pruning).
//! - `lifecycle`: create, import, touch, extend, delete, history, rollback.
//! - `gc`: cleanup and garbage collection.
//! - [`report`]: the public value types (infos and reports).
//! - [`home`]: [`Home`], the `$SESSHOST_HOME` directory: host key generated
//!   on first use, the store in `HOME/store/`, per-session open locks.
//! - [`names`]: session name rules.
//! - [`error`]: [`StoreError`], the one public error type.

pub mod backend;
pub mod crypto;
pub mod error;
pub mod home;
pub mod names;
pub mod report;
pub mod store;

mod gc;
mod layout;
mod lifecycle;
mod objects;
mod save;

pub use backend::{Backend, BackendError, BackendErrorKind, LocalDirBackend};
pub use crypto::{ChunkId, RepoKey};
pub use error::{Result, StoreError};
pub use home::{Home, SessionLock};
pub use layout::now_ms;
pub use names::validate_name;
pub use report::{
    CleanupReport, GcReport, NewSession, Removed, SaveReport, SessionInfo, SnapshotInfo, Summary,
};
pub use save::{KEEP_SNAPSHOTS, WRITE_THREADS};
pub use store::Store;
