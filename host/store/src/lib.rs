//! `sesshost_store`: the local session store.
//!
//! It owns the content-addressed, encrypted object layout that sessions are
//! kept in, whatever holds the objects (a local directory now, a storage
//! plugin later), plus the local home directory around it. Synchronous: no
//! async runtime. It must not touch a browser, a network or wasm: the
//! browser crate hands it a [`sessbundle::SessionState`] and gets one back.
//!
//! Modules:
//! - [`backend`]: the [`Backend`] trait (put/get/has/delete/list, plus
//!   conditional writes with ETags, paginated listings, capabilities),
//!   [`LocalDirBackend`] (atomic file writes; create-only by `link(2)`,
//!   compare-and-swap under `flock`) and `backend::memory` (an in-memory
//!   atomic test backend with fault injection).
//! - [`probe`]: the bucket probe ([`probe::conditional_writes`]): does a
//!   backend apply conditional writes, atomically (a two-writer race)?
//! - [`crypto`]: [`RepoKey`], derived subkeys, sealed chunks (keyed BLAKE3
//!   ids, AES-256-GCM, optional zstd) and sealed records (manifests).
//! - [`store`]: the [`Store`] handle, its backend helpers and the read side
//!   (load, exists, list, show).
//! - `layout`: object names and AAD strings (where each object lives).
//! - `objects`: the stored session record and snapshot manifest, their
//!   read/write, and rebuilding a state from a manifest's chunks.
//! - `save`: the save pipeline (dedup, sealing on threads, pruning).
//! - `exact`: snapshots at a number the caller chooses, manifest written
//!   create-only ([`Store::save_exact`], [`Store::load_exact`]): the
//!   cluster's fenced commits.
//! - [`lifecycle`]: create, [`ImportMode`] import, touch, extend, delete,
//!   history, rollback.
//! - [`gc`]: cleanup and two-phase garbage collection with a grace period.
//! - `gc_shared`: the collection of a repository without local locks
//!   (other machines write while it runs): chunks go to `gc/trash/` and
//!   are deleted only after every manifest was read again; saves re-check
//!   their deduplicated chunks when a collection moved some meanwhile
//!   ([`Store::gc_while`]).
//! - [`index`]: `index/<name>` summaries so `list` reads one object per
//!   session; `show`/`info`.
//! - [`lock`]: per-session and store `flock`s with a timeout that name
//!   their holder ([`LockConfig`]).
//! - [`repo`]: a remote repository's `config` object and its key
//!   ([`open_repo_key`]).
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

mod exact;
pub mod gc;
mod gc_shared;
pub mod index;
mod layout;
pub mod lifecycle;
pub mod lock;
mod objects;
pub mod probe;
pub mod repo;
mod save;

pub use backend::{
    Backend, BackendError, BackendErrorKind, Capability, Etag, ListEntry, ListPage,
    LocalDirBackend, ObjectInfo, Precondition,
};
pub use crypto::{ChunkId, RepoKey};
pub use error::{Result, StoreError};
pub use gc::DEFAULT_REMOTE_GC_GRACE;
pub use home::{Home, SessionLock};
pub use index::LIST_THREADS;
pub use layout::now_ms;
pub use lifecycle::ImportMode;
pub use lock::{DEFAULT_LOCK_TIMEOUT, LockConfig};
pub use names::validate_name;
pub use repo::{RepoUnlock, open_repo_key};
pub use report::{
    CleanupReport, GcReport, NewSession, Removed, SaveReport, SessionInfo, SnapshotInfo, Summary,
};
pub use save::{KEEP_SNAPSHOTS, WRITE_THREADS};
pub use store::Store;
