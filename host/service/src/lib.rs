//! `sesshost-service`: `host run`, the session service. A thin shell over
//! [`sesshost_engine`]: HTTP in, one engine flow, JSON out.
//!
//! # Layout
//! - [`config`]: `sesshost.toml` (`[limits]`, `[pool]`, `[lifecycle]`,
//!   `[security]`) with the embedded defaults.
//! - [`error`]: the crate's one error type, [`error::ServiceError`].
//! - [`tenants`]: tenants and API keys under `HOME/service/`, or in the
//!   cluster's bucket with `--cluster` (only key hashes are stored; keys
//!   made by another process or host are accepted at once).
//! - [`ratelimit`]: per-tenant token buckets for session creation.
//! - [`audit`]: the audit log (JSON lines: who, what, which session,
//!   result; counts, never values).
//! - [`metrics`]: counters, gauges and histograms in Prometheus text;
//!   [`history`]: the last hour of samples for the console's charts.
//! - [`cookies`], [`summary`]: cookie input, domain matching and edits;
//!   the human-readable state summary (pure functions on `SessionState`).
//!
//! - [`server`]: start (home, default key, catalog reconcile, pool),
//!   serve, graceful stop; [`app`]: [`app::App`] and the state moves
//!   (hibernate, bring live, end a lease); [`leases`]: acquire / heartbeat
//!   / release; [`slots`]: what a live session holds; [`pool`]: the warm
//!   pool; [`proxy`]: the authenticated CDP websocket relay;
//!   [`background`]: reaper, cleanup, login checks, memory watch,
//!   shutdown; [`catalog`]: tenant ownership and service facts per session;
//!   [`durable`]: the durable tier behind the local store (`--plugin`):
//!   write-through, read-through on a miss, deletes; [`cluster`]: `host
//!   run --cluster` (claims, fenced commits, forwarding to the holder,
//!   takeover, liveness).
//! - [`routes`]: the router and handlers; [`http`]: auth and JSON
//!   extractors, request ids, access log; [`api`]: the error envelope;
//!   [`openapi`]: the OpenAPI 3.1 document; [`console`]: the web console
//!   (embedded static assets at `/`, a client of the public API).
//!
//! # What this crate does not do
//! It owns no format and no session flow (the engine does), and never
//! hands out Chromium's own debugging endpoint: only the authenticated
//! proxy reaches a browser.

pub mod api;
pub mod app;
pub mod audit;
pub mod background;
pub mod catalog;
pub mod cluster;
pub mod config;
pub mod console;
pub mod cookies;
pub mod durable;
pub mod error;
pub mod history;
pub mod http;
pub mod leases;
pub mod metrics;
pub mod openapi;
pub mod pool;
pub mod proxy;
pub mod ratelimit;
pub mod routes;
pub mod server;
pub mod slots;
pub mod summary;
pub mod tenants;

pub use server::{RunOptions, run};

/// The service's namespace in a state's `extra` (SPEC §9): key `context`
/// holds the execution context; key `record` the catalog record, in the
/// durable tier's copy only.
pub const SESSHOST_NS: &str = "sesshost";
