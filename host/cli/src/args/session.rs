//! `host session …` flags, as data.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use sessbundle::state::Viewport;

use super::parse::{parse_duration, parse_token, parse_viewport};
use super::plugin::StorageArgs;

/// `host session list --cluster`: the bucket of `host run --cluster`.
#[derive(Debug, Clone, Args, Default)]
pub struct FleetArgs {
    /// List the sessions of every `host run --cluster` on the cluster's bucket (holder, epoch,
    /// commits; the hosts and their last renewals; who collects garbage) instead of this home's.
    /// Give the same --plugin, --plugin-config / --plugin-config-file and --allow-host as to
    /// `host run --cluster`; no repository key needed (these records hold no secret).
    #[arg(long)]
    pub cluster: bool,
    #[command(flatten)]
    pub storage: StorageArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum SessionCommand {
    /// Create an empty session.
    Create(CreateArgs),
    /// Restore a session into its own Chromium and keep it open; print the CDP URL; save on exit.
    Open(OpenArgs),
    /// List the sessions in this home; with --cluster, the whole fleet in the cluster's bucket (who
    /// holds what, at which epoch, and the hosts).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        fleet: FleetArgs,
    },
    /// Show one session: times, expiry, sizes, contents, snapshots.
    Show {
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Push a session's expiry back.
    Extend {
        name: String,
        /// How much longer, e.g. `30m`, `12h`, `7d`.
        #[arg(long, value_parser = parse_duration)]
        by: Duration,
    },
    /// Delete a session and every snapshot of it.
    Delete { name: String },
    /// Remove expired sessions and damaged ones, or let a cleanup-strategy plugin decide; says what it removed and why.
    Cleanup(CleanupArgs),
    /// List the kept snapshots of a session (the last 5 saves).
    History { name: String },
    /// Make an earlier snapshot current again (as a new snapshot).
    Rollback {
        name: String,
        /// Snapshot number (see `host session history`); default: the one
        /// before the current one.
        #[arg(long)]
        to: Option<u64>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct CleanupArgs {
    /// A cleanup-strategy plugin (e.g. ttl.wasm) that decides per session.
    #[arg(long, value_name = "P.wasm")]
    pub strategy: Option<std::path::PathBuf>,
    /// With --strategy: sessions unused this long are idle, e.g. `30m`.
    #[arg(long, value_parser = parse_duration, requires = "strategy")]
    pub idle_timeout: Option<Duration>,
    /// With --strategy: keep at most this many sessions.
    #[arg(long, requires = "strategy")]
    pub max_sessions: Option<u32>,
    /// With --strategy: keep at most this many stored bytes.
    #[arg(long, requires = "strategy")]
    pub max_bytes: Option<u64>,
    /// With --strategy: show the decisions without removing anything.
    #[arg(long, requires = "strategy")]
    pub dry_run: bool,
    #[command(flatten)]
    pub grants: super::plugin::GrantArgs,
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    pub name: String,
    /// Time to live, e.g. `30m`, `12h`, `7d` (default: never expires).
    #[arg(long, value_parser = parse_duration)]
    pub ttl: Option<Duration>,
    /// User agent string the browser presents.
    #[arg(long)]
    pub user_agent: Option<String>,
    /// Viewport size, `WIDTHxHEIGHT`, e.g. `1280x720`.
    #[arg(long, value_parser = parse_viewport)]
    pub viewport: Option<Viewport>,
    /// Locale, e.g. `en-GB`.
    #[arg(long, value_parser = parse_token)]
    pub locale: Option<String>,
    /// IANA time zone, e.g. `Europe/Paris`.
    #[arg(long, value_parser = parse_token)]
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct OpenArgs {
    pub name: String,
    /// Also open this URL in a new tab (repeatable).
    #[arg(long = "url", value_name = "URL")]
    pub urls: Vec<String>,
    /// Show browser windows (needs a display). Closing the last window
    /// saves the session and exits.
    #[arg(long)]
    pub headed: bool,
    /// Write the CDP websocket URL to this file (mode 0600: it grants full
    /// control of the browser) for Playwright `connectOverCDP` / Puppeteer.
    #[arg(long, value_name = "F")]
    pub cdp_file: Option<PathBuf>,
    /// Save the session this often while it is open, e.g. `30s`, `5m`
    /// (a crash loses at most this much).
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration)]
    pub autosave: Duration,
}
