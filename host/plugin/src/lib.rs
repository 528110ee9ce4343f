//! `sesshost-plugin`: runs sesshost's WebAssembly component plugins
//! (sanitisers, storage backends, cleanup strategies; contract in
//! `wit/plugin.wit`) in wasmtime, sandboxed: capabilities are granted,
//! never ambient, and every call has a deadline and memory caps.
//!
//! # Layout
//!
//! Parse, then act: [`config`] and [`manifest`] are plain data (flags,
//! TOML); [`Runtime`] turns them into acting objects.
//!
//! - [`config`]: runtime knobs ([`RuntimeConfig`], [`Limits`]) and the
//!   operator's grants to a plugin ([`Grants`]: `--allow-host`,
//!   `--allow-dir`, env, `--plugin-config` with `env:`/`file:` values).
//! - [`manifest`]: the optional `NAME.toml` beside `NAME.wasm` and the
//!   effective grant (manifest ∩ operator; refusals name the flag).
//! - `runtime`: [`Runtime`] (engine, pooling probe, epoch thread, compiled
//!   component disk cache, linker), reading a plugin file (the `\0asm`
//!   magic is checked first: [`Error::NotWasm`]) and [`Plugin`] (hot
//!   reload, one `Store` per call, deadline, error classification).
//! - `host`: what lives in a `Store`: WASI context from the grant, the
//!   `wasi:http` allow-list hook, memory limiter, plugin stdout/stderr to
//!   `tracing` at debug level only (4 KiB per call; never in an error).
//! - `bindings`: `bindgen!` output per world and the `SessionState` <->
//!   WIT conversions.
//! - [`sanitize`], [`storage`], [`cleanup`]: the typed calls of each world.
//! - [`store_backend`]: [`PluginBackend`], a storage plugin as
//!   `sesshost_store`'s synchronous `Backend` (blocks on a tokio `Handle`).
//! - [`inspect`]: [`PluginInfo`] for `host plugin inspect`.
//! - [`error`]: the one public [`Error`], and the capping/escaping of text
//!   a plugin returns.
//!
//! # What this crate does not do
//!
//! It does not parse command lines, seal bundles, or decide where sessions
//! live (that is `host/cli` and `sessbundle`), and it never changes the
//! state it is given: sanitising returns a new state.
//!
//! # Use
//!
//! ```no_run
//! # async fn demo(state: sessbundle::SessionState) -> sesshost_plugin::Result<()> {
//! use sesshost_plugin::{Grants, Runtime, RuntimeConfig, SanitizeContext};
//! let rt = Runtime::new(RuntimeConfig { cache_dir: Some("/var/cache/sesshost".into()), ..Default::default() })?;
//! let grants = Grants::default().with_config(["mode=redact"])?;
//! let redact = rt.load_sanitizer("redact.wasm".as_ref(), &grants)?;
//! let (clean, report) = redact.sanitize(&state, &SanitizeContext { purpose: "export".into(), ..Default::default() }).await?;
//! println!("{}", report.summary);
//! # let _ = clean; Ok(()) }
//! ```
//!
//! Loading compiles (or loads from the cache) and is synchronous; call it
//! from `spawn_blocking` in a latency-sensitive async context. Calls are
//! async and must run inside a tokio runtime (time and I/O enabled).

mod bindings;
pub mod cleanup;
pub mod config;
pub mod error;
mod host;
pub mod inspect;
pub mod manifest;
mod runtime;
pub mod sanitize;
pub mod storage;
pub mod store_backend;

pub use cleanup::{
    CleanupAction, CleanupLimits, CleanupStrategy, Decision, SessionInfo, SessionStatus,
};
pub use config::{
    ConfigValue, DirGrant, Grants, HostGrant, Limits, Pooling, RuntimeConfig, config_for,
    parse_config_pair, read_config_file,
};
pub use error::{Error, Result, StorageErrorKind};
pub use inspect::PluginInfo;
pub use runtime::{CacheStats, Plugin, Runtime, SUPPORTED_VERSIONS, World, versions_of};
pub use sanitize::{Finding, FindingAction, Report, SanitizeContext, Sanitizer};
pub use storage::{CHUNK, StorageBackend};
pub use store_backend::PluginBackend;
