//! `sesshost-service`: `host run`, the session service. A thin shell over
//! [`sesshost_engine`]: HTTP in, one engine flow, JSON out.
//!
//! # Layout
//! - [`config`]: `sesshost.toml` (`[limits]`, `[pool]`, `[lifecycle]`,
//!   `[security]`) with the embedded defaults.
//! - [`error`]: the crate's one error type, [`error::ServiceError`].
//! - [`tenants`]: tenants and API keys under `HOME/service/` (only key
//!   hashes are stored; keys made by another process are accepted at once).
//! - [`ratelimit`]: per-tenant token buckets for session creation.
//! - [`audit`]: the audit log (JSON lines: who, what, which session,
//!   result; counts, never values).
//! - [`metrics`]: counters, gauges and histograms in Prometheus text.
//! - [`cookies`], [`summary`]: cookie input, domain matching and edits;
//!   the human-readable state summary (pure functions on `SessionState`).
//!
//! # What this crate does not do
//! It owns no format and no session flow (the engine does), and never
//! hands out Chromium's own debugging endpoint: only the authenticated
//! proxy reaches a browser.

pub mod audit;
pub mod config;
pub mod cookies;
pub mod error;
pub mod metrics;
pub mod ratelimit;
pub mod summary;
pub mod tenants;
