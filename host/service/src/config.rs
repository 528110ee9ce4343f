//! `sesshost.toml`: the service's configuration (`listen`, `[limits]`,
//! `[pool]`, `[lifecycle]`, `[security]`) with its embedded defaults. Every
//! table refuses unknown keys (a typo is an error naming the key and the
//! valid keys), and every key may be left out.
//!
//! # Keys and defaults
//!
//! | Key | Default | Meaning and cost |
//! |-----|---------|------------------|
//! | `listen` | `"127.0.0.1:8080"` | Address the REST API listens on. |
//! | `limits.max_live_browsers` | from free memory | Browsers running at once. Unset: (MemAvailable - 1 GiB) / 300 MiB, clamped to 1..=64. Each browser costs ~300 MiB RSS. |
//! | `limits.max_queued` | `32` | Acquires waiting in lease queues (all sessions together); past it an acquire gets 503 `queue_full` with `Retry-After`. Each waiter costs a task and a socket. |
//! | `limits.sessions_per_tenant` | `10` | Sessions a tenant may hold (stored or live); past it create/fork get 429 `session_limit_reached`. |
//! | `limits.max_stored` | `1000` | Sessions the whole service stores (all tenants); past it 429 `session_limit_reached`. |
//! | `limits.create_per_minute` | `5` | Session creations per tenant per minute (token bucket refill). |
//! | `limits.create_burst` | `5` | Creations allowed at once before the per-minute rate applies. |
//! | `limits.max_body_bytes` | `1048576` (1 MiB) | Largest JSON request body; held in memory while parsed. |
//! | `limits.max_upload_bytes` | `268435456` (256 MiB) | Largest bundle upload (`POST /v1/sessions/import`; held in memory, then written to a temp file under the home). |
//! | `limits.js_heap_mb` | `100` | Per-browser JS heap watch (every 10 s): the worst browser above it is hibernated (idle) or recycled (leased: saved, replaced, restored). |
//! | `pool.size` | `2` | Warm browsers kept started; each costs ~300 MiB while idle and saves ~1 s per lease. |
//! | `lifecycle.idle_timeout_seconds` | `1800` | A released session's browser is kept this long for a quick next acquire, then the session is hibernated (per session: `idle_timeout_seconds` at create; 0 = hibernate on release). |
//! | `lifecycle.autosave_seconds` | `30` | Live sessions are captured to the store this often (one CDP capture each). |
//! | `lifecycle.check_interval_seconds` | `600` | Sessions with an `auth_check` are checked this often (and after each release); a failure sets `needs_auth`. |
//! | `lifecycle.cleanup_interval_seconds` | `60` | Expired sessions are removed this often. |
//! | `lifecycle.gc_interval_seconds` | `3600` | `--cluster`: the bucket is collected this often, by one host (the holder of `cluster/gc`). |
//! | `lifecycle.gc_grace_seconds` | `3600` | `--cluster`: age a GC mark or trash must reach before the next step (safety does not depend on it). |
//! | `lifecycle.lease_seconds` | `300` | Lease length when the acquire names none; heartbeats and CDP traffic renew it, an unrenewed lease is reclaimed (saved, ended). |
//! | `lifecycle.shutdown_seconds` | `30` | On SIGTERM, time given to save live sessions before exit. |
//! | `security.trusted_keys` | `[]` | Signer `.pub` files; when non-empty, imported bundles must be signed by one. |
//! | `security.signing_key` | unset | Signing key file; when set, exported bundles are signed. |

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Result, ServiceError};

/// The estimated memory cost of one live Chromium with one tab open, used
/// to size `max_live_browsers` when it is not set. An assumed figure
/// (Chromium's browser + GPU + renderer processes for a typical page run
/// 250-350 MiB RSS); measure your workload and set the key explicitly.
pub const BROWSER_COST_BYTES: u64 = 300 * 1024 * 1024;
/// Memory left to the OS and the service itself before browsers are counted.
pub const RESERVED_BYTES: u64 = 1024 * 1024 * 1024;
/// Upper bound of the computed `max_live_browsers`.
pub const MAX_COMPUTED_BROWSERS: usize = 64;

/// The whole `sesshost.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the REST API listens on. Default `127.0.0.1:8080` (local
    /// only; put a TLS proxy in front to expose it).
    pub listen: SocketAddr,
    pub limits: Limits,
    pub pool: PoolConfig,
    pub lifecycle: Lifecycle,
    pub security: Security,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            limits: Limits::default(),
            pool: PoolConfig::default(),
            lifecycle: Lifecycle::default(),
            security: Security::default(),
        }
    }
}

/// `[limits]`: admission and size limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Browsers running at once. Default `None`: computed from free memory
    /// by [`Config::max_live_browsers`] (~300 MiB each).
    pub max_live_browsers: Option<usize>,
    /// Lease requests that may wait for a browser. Default 32; each waiter
    /// holds a task and a connection.
    pub max_queued: usize,
    /// Live sessions per tenant. Default 10.
    pub sessions_per_tenant: usize,
    /// Stored sessions per tenant. Default 1000 (disk: one bundle each).
    pub max_stored: usize,
    /// Session creations per tenant per minute. Default 5.
    pub create_per_minute: u32,
    /// Creations at once before the rate applies. Default 5.
    pub create_burst: u32,
    /// Largest JSON body. Default 1 MiB (held in memory while parsed).
    pub max_body_bytes: usize,
    /// Largest bundle upload. Default 256 MiB (streamed to disk).
    pub max_upload_bytes: u64,
    /// JS heap cap in MiB. Default 100.
    pub js_heap_mb: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_live_browsers: None,
            max_queued: 32,
            sessions_per_tenant: 10,
            max_stored: 1000,
            create_per_minute: 5,
            create_burst: 5,
            max_body_bytes: 1024 * 1024,
            max_upload_bytes: 256 * 1024 * 1024,
            js_heap_mb: 100,
        }
    }
}

/// `[pool]`: the warm browser pool.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Warm browsers kept started. Default 2; each costs ~300 MiB idle and
    /// saves a browser start (~1 s) per lease.
    pub size: usize,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig { size: 2 }
    }
}

/// `[lifecycle]`: timers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lifecycle {
    /// Idle lease hibernated after this long. Default 1800 s.
    pub idle_timeout_seconds: u64,
    /// Live sessions captured this often. Default 30 s (one CDP capture per
    /// live session each time).
    pub autosave_seconds: u64,
    /// Stored sessions health-checked this often. Default 600 s.
    pub check_interval_seconds: u64,
    /// Expired sessions removed this often. Default 60 s.
    pub cleanup_interval_seconds: u64,
    /// Default lease length. Default 300 s.
    pub lease_seconds: u64,
    /// Time to save live sessions on shutdown. Default 30 s.
    pub shutdown_seconds: u64,
    /// `--cluster`: the holder of the GC lease collects the bucket this
    /// often. Default 3600 s. Cost per run: one listing of every manifest
    /// and chunk plus a read of every manifest (the mark, and again when
    /// the trash is emptied).
    pub gc_interval_seconds: u64,
    /// `--cluster`: how old a mark (or a trash) must be before the next
    /// step. Default 3600 s. Safety does not depend on it (STORE.md); a
    /// longer grace makes it rarer for a commit to meet a collection and
    /// keeps freed chunks that long.
    pub gc_grace_seconds: u64,
}

impl Default for Lifecycle {
    fn default() -> Lifecycle {
        Lifecycle {
            idle_timeout_seconds: 1800,
            autosave_seconds: 30,
            check_interval_seconds: 600,
            cleanup_interval_seconds: 60,
            lease_seconds: 300,
            shutdown_seconds: 30,
            gc_interval_seconds: 3600,
            gc_grace_seconds: 3600,
        }
    }
}

/// `[security]`: bundle signatures.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Security {
    /// Signer `.pub` files. Default empty; when non-empty, imports must be
    /// signed by one of them.
    pub trusted_keys: Vec<PathBuf>,
    /// Signing key file. Default unset; when set, exports are signed.
    pub signing_key: Option<PathBuf>,
}

impl Config {
    /// Reads and validates `path`. A bad key or type is an error naming the
    /// file, the line and the key; an unknown key names the valid keys.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(ServiceError::io(format!("cannot read {}", path.display())))?;
        Config::parse(&text).map_err(|message| ServiceError::Config {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses config text; the error is the message without the file name.
    pub fn parse(text: &str) -> Result<Config, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().to_string();
            match e.span() {
                Some(span) => {
                    let line = text
                        .get(..span.start)
                        .map_or(1, |t| t.bytes().filter(|&b| b == b'\n').count() + 1);
                    format!("line {line}: {msg} (fix the key, or remove it to use the default)")
                }
                None => format!("{msg} (fix the key, or remove it to use the default)"),
            }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        let zero = |name: &str| {
            format!("{name} is 0; it must be at least 1 (or remove it to use the default)")
        };
        if self.limits.max_live_browsers == Some(0) {
            return Err(zero("limits.max_live_browsers"));
        }
        if self.limits.create_per_minute == 0 {
            return Err(zero("limits.create_per_minute"));
        }
        if self.limits.create_burst == 0 {
            return Err(zero("limits.create_burst"));
        }
        if self.limits.max_body_bytes == 0 {
            return Err(zero("limits.max_body_bytes"));
        }
        if self.lifecycle.lease_seconds == 0 {
            return Err(zero("lifecycle.lease_seconds"));
        }
        Ok(())
    }

    /// Browsers allowed at once: `limits.max_live_browsers` when set, else
    /// (MemAvailable - 1 GiB) / 300 MiB clamped to 1..=64 (1 when
    /// /proc/meminfo cannot be read).
    pub fn max_live_browsers(&self) -> usize {
        if let Some(n) = self.limits.max_live_browsers {
            return n;
        }
        let avail = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| mem_available_bytes(&t));
        browsers_for_memory(avail.unwrap_or(0))
    }
}

/// `MemAvailable` of a /proc/meminfo text, in bytes.
pub fn mem_available_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Browsers that fit in `avail` bytes (see [`BROWSER_COST_BYTES`]).
pub fn browsers_for_memory(avail: u64) -> usize {
    let n = avail.saturating_sub(RESERVED_BYTES) / BROWSER_COST_BYTES;
    usize::try_from(n)
        .unwrap_or(usize::MAX)
        .clamp(1, MAX_COMPUTED_BROWSERS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.limits.max_queued, 32);
        assert_eq!(c.limits.max_body_bytes, 1 << 20);
        assert_eq!(c.limits.max_upload_bytes, 256 << 20);
        assert_eq!(c.pool.size, 2);
        assert_eq!(c.lifecycle.idle_timeout_seconds, 1800);
        assert!(c.security.trusted_keys.is_empty());
    }

    #[test]
    fn partial_tables_keep_other_defaults() {
        let c = Config::parse(
            "listen = \"0.0.0.0:9000\"\n[limits]\nmax_live_browsers = 3\n[security]\ntrusted_keys = [\"a.pub\"]\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.max_live_browsers(), 3);
        assert_eq!(c.limits.max_queued, 32);
        assert_eq!(c.security.trusted_keys, vec![PathBuf::from("a.pub")]);
    }

    #[test]
    fn unknown_key_names_key_line_and_valid_keys() {
        let e = Config::parse("[limits]\nmax_queued = 4\nmax_qeued = 5\n").unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("max_qeued"), "{e}");
        assert!(e.contains("max_queued"), "{e}");
        assert!(e.contains("sessions_per_tenant"), "{e}");
    }

    #[test]
    fn bad_type_names_line() {
        let e = Config::parse("[pool]\n\nsize = \"two\"\n").unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        let e = Config::parse("listen = \"nowhere\"\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        let e = Config::parse("[limits]\ncreate_burst = 0\n").unwrap_err();
        assert!(e.contains("limits.create_burst"), "{e}");
    }

    #[test]
    fn load_names_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sesshost.toml");
        std::fs::write(&p, "[nope]\n").unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("sesshost.toml"), "{e}");
        assert!(e.contains("nope"), "{e}");
        let e = Config::load(&d.path().join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.toml"), "{e}");
    }

    #[test]
    fn browsers_from_memory() {
        assert_eq!(browsers_for_memory(0), 1);
        assert_eq!(
            browsers_for_memory(RESERVED_BYTES + 3 * BROWSER_COST_BYTES + 5),
            3
        );
        assert_eq!(browsers_for_memory(u64::MAX), 64);
        let info = "MemTotal: 100 kB\nMemAvailable:    4194304 kB\n";
        assert_eq!(mem_available_bytes(info), Some(4 << 30));
        assert_eq!(mem_available_bytes("garbage"), None);
        assert_eq!(mem_available_bytes("MemAvailable: x kB"), None);
        let c = Config::default();
        let n = c.max_live_browsers();
        assert!((1..=64).contains(&n));
    }
}
