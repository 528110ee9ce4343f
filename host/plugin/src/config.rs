//! Plain data, no I/O: the runtime's knobs and the operator's grants to one
//! plugin, parsed from flag strings (`--allow-host H:PORT`,
//! `--allow-dir HOST[:GUEST]`, `--plugin-config key=value`). Nothing here
//! touches wasmtime; [`crate::Runtime`] turns it into acting objects.

use std::path::PathBuf;
use std::time::Duration;

use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// A plugin's resolved configuration (`key`, `value`), in order. Values may
/// be secrets (an S3 key from `file:`): the whole list is wiped when
/// dropped.
pub(crate) type ResolvedConfig = Zeroizing<Vec<(String, String)>>;

/// Per-call limits of one plugin. The defaults suit sanitising a large
/// session; raise them per plugin, not globally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock deadline of one call (default 2 s). Enforced by epoch
    /// interruption inside wasm (checked every [`RuntimeConfig::epoch_tick`],
    /// so the real stop can be one tick late) and by a tokio timeout around
    /// the whole call (host calls such as HTTP are not interrupted by
    /// epochs). Cost: none while running; a longer deadline lets a runaway
    /// plugin hold a worker thread longer.
    pub deadline: Duration,
    /// Cap on each linear memory, in bytes (default 128 MiB). A plugin
    /// asking for more sees `memory.grow` fail (Rust guests abort and the
    /// call fails with [`Error::OutOfMemory`]). With the pooling allocator
    /// this also sizes each pool slot's committed memory.
    pub memory_bytes: u64,
    /// Caps on core instances, tables and linear memories per call (defaults
    /// 64/64/8): `memory_bytes` is per memory, so the memory count must be
    /// capped too. A Rust wasip2 component uses a handful of each.
    pub max_instances: u32,
    pub max_tables: u32,
    pub max_memories: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(2),
            memory_bytes: 128 << 20,
            max_instances: 64,
            max_tables: 64,
            max_memories: 8,
        }
    }
}

/// Whether to use wasmtime's pooling instance allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooling {
    /// Try it at start and fall back to on-demand allocation if the address
    /// space cannot be reserved (some containers, 39-bit VA machines).
    #[default]
    Auto,
    /// Never: every instance maps fresh memory (about 2x slower to
    /// instantiate, no up-front reservation).
    Off,
}

/// Knobs of the [`crate::Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Default per-call limits; also the operator's maximum that a plugin
    /// manifest may ask for.
    pub limits: Limits,
    /// Directory for compiled components, keyed by the wasm's BLAKE3 and
    /// the engine's compatibility hash. `None` = compile every load
    /// (tens of ms to seconds per plugin). Entries are a few MiB each and
    /// are memory-mapped while loaded: replace them only by rename (as the
    /// runtime does), never truncate one in place.
    pub cache_dir: Option<PathBuf>,
    /// Instance allocation strategy (see [`Pooling`]).
    pub pooling: Pooling,
    /// Calls that may run at the same time (default 16). Sizes the pool
    /// (address space reserved ∝ this × `max_memories`) and the semaphore
    /// gating calls; calls beyond it wait.
    pub max_concurrent_calls: u32,
    /// Epoch tick (default 10 ms): the granularity of deadlines and of
    /// yielding to other tokio tasks. Shorter = more precise, a thread
    /// waking more often.
    pub epoch_tick: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            limits: Limits::default(),
            cache_dir: None,
            pooling: Pooling::Auto,
            max_concurrent_calls: 16,
            epoch_tick: Duration::from_millis(10),
        }
    }
}

/// An allowed outgoing HTTP destination, `HOST:PORT`. `HOST` may start
/// with `*.` to allow every subdomain (not the domain itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostGrant {
    pub host: String,
    pub port: u16,
}

impl HostGrant {
    /// Parses `--allow-host` syntax: `example.com:443`, `127.0.0.1:9000`,
    /// `[::1]:9000`, `*.example.com:443`.
    pub fn parse(s: &str) -> Result<HostGrant> {
        let bad = || {
            Error::Config(format!(
                "--allow-host `{s}`: expected HOST:PORT, e.g. s3.example.com:443"
            ))
        };
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host.is_empty() || host.contains('/') {
            return Err(bad());
        }
        Ok(HostGrant { host, port })
    }

    /// Whether a request to `host:port` is allowed by this grant.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        port == self.port
            && match self.host.strip_prefix("*.") {
                Some(domain) => {
                    host.len() > domain.len()
                        && host.ends_with(domain)
                        && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
                }
                None => host == self.host,
            }
    }
}

impl std::fmt::Display for HostGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A host directory made visible to the plugin at `guest` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    pub host: PathBuf,
    /// Where the plugin sees it (default `/data`).
    pub guest: String,
    pub read_only: bool,
}

impl DirGrant {
    /// The guest path used when none is given.
    pub const DEFAULT_GUEST: &'static str = "/data";

    /// Parses `--allow-dir` syntax: `HOST[:GUEST][:ro]`, e.g.
    /// `/srv/sessions`, `/srv/sessions:/data`, `/etc/ssl:/ssl:ro`.
    pub fn parse(s: &str) -> Result<DirGrant> {
        let mut parts: Vec<&str> = s.split(':').collect();
        let read_only = parts.len() > 1 && parts.last() == Some(&"ro");
        if read_only {
            parts.pop();
        }
        let (host, guest) = match parts.as_slice() {
            [h] => (*h, Self::DEFAULT_GUEST),
            [h, g] if g.starts_with('/') => (*h, *g),
            _ => {
                return Err(Error::Config(format!(
                    "--allow-dir `{s}`: expected HOST[:GUEST][:ro], e.g. /srv/sessions:/data"
                )));
            }
        };
        if host.is_empty() {
            return Err(Error::Config(format!(
                "--allow-dir `{s}`: the host directory is empty"
            )));
        }
        Ok(DirGrant {
            host: PathBuf::from(host),
            guest: guest.to_string(),
            read_only,
        })
    }
}

/// A configuration value as the operator wrote it. A literal value is
/// wiped from memory when dropped (it may be a secret).
#[derive(Clone, PartialEq, Eq)]
pub enum ConfigValue {
    /// Used as is.
    Literal(String),
    /// `env:NAME`: read from the host's environment at load.
    Env(String),
    /// `file:PATH`: the file's contents (one trailing newline removed).
    File(PathBuf),
}

impl std::fmt::Debug for ConfigValue {
    /// Never prints a literal value: it may be a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigValue::Literal(_) => f.write_str("Literal(..)"),
            ConfigValue::Env(n) => write!(f, "Env({n})"),
            ConfigValue::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

impl Drop for ConfigValue {
    fn drop(&mut self) {
        if let ConfigValue::Literal(v) = self {
            v.zeroize();
        }
    }
}

impl ConfigValue {
    pub fn parse(v: &str) -> ConfigValue {
        if let Some(n) = v.strip_prefix("env:") {
            ConfigValue::Env(n.to_string())
        } else if let Some(p) = v.strip_prefix("file:") {
            ConfigValue::File(PathBuf::from(p))
        } else {
            ConfigValue::Literal(v.to_string())
        }
    }

    /// Reads the value (environment or file). Errors name the key and the
    /// source, never the value. The value is wiped when the result is
    /// dropped.
    pub fn resolve(&self, key: &str) -> Result<Zeroizing<String>> {
        match self {
            ConfigValue::Literal(v) => Ok(Zeroizing::new(v.clone())),
            ConfigValue::Env(n) => std::env::var(n).map(Zeroizing::new).map_err(|_| Error::ConfigValue {
                key: key.to_string(),
                detail: format!(
                    "environment variable {n} is not set (or not UTF-8); export it before running"
                ),
            }),
            ConfigValue::File(p) => {
                // read_to_string sizes its buffer from the file's length,
                // so no reallocation leaves a stray copy behind.
                let mut s = Zeroizing::new(std::fs::read_to_string(p).map_err(|e| {
                    Error::ConfigValue {
                        key: key.to_string(),
                        detail: format!("cannot read {}: {e}", p.display()),
                    }
                })?);
                if s.ends_with('\n') {
                    s.pop();
                    if s.ends_with('\r') {
                        s.pop();
                    }
                }
                Ok(s)
            }
        }
    }
}

/// Parses `key=value` (`--plugin-config` syntax).
pub fn parse_config_pair(s: &str) -> Result<(String, ConfigValue)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), ConfigValue::parse(v))),
        _ => Err(Error::Config(format!(
            "--plugin-config expects key=value (value may be env:NAME or file:PATH), got `{}`",
            s.split('=').next().unwrap_or("")
        ))),
    }
}

/// Reads a plugin configuration file (TOML): top-level `key = "value"`
/// pairs go to every plugin, a `[STEM]` table to the plugin whose file stem
/// is `STEM` (returned as `STEM.key`, for [`config_for`]). Values are
/// strings (`env:NAME` / `file:PATH` allowed), numbers or booleans.
///
/// ```toml
/// mode = "redact"
/// [s3]
/// bucket = "sessions"
/// secret_access_key = "file:/run/secrets/s3"
/// ```
pub fn read_config_file(path: &std::path::Path) -> Result<Vec<(String, ConfigValue)>> {
    let bad =
        |detail: String| Error::Config(format!("plugin config file {}: {detail}", path.display()));
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?,
    );
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| bad(e.to_string()))?;
    let out = config_pairs(&table, &bad);
    wipe_strings(&mut table);
    out
}

/// Wipes every string in a parsed TOML table (its values may be secrets).
fn wipe_strings(table: &mut toml::Table) {
    for (_, v) in table.iter_mut() {
        match v {
            toml::Value::String(s) => s.zeroize(),
            toml::Value::Table(t) => wipe_strings(t),
            _ => {}
        }
    }
}

/// The `key = value` pairs of [`read_config_file`]'s table.
fn config_pairs(
    table: &toml::Table,
    bad: &dyn Fn(String) -> Error,
) -> Result<Vec<(String, ConfigValue)>> {
    fn scalar(v: &toml::Value) -> Option<Zeroizing<String>> {
        match v {
            toml::Value::String(s) => Some(Zeroizing::new(s.clone())),
            toml::Value::Integer(i) => Some(Zeroizing::new(i.to_string())),
            toml::Value::Float(f) => Some(Zeroizing::new(f.to_string())),
            toml::Value::Boolean(b) => Some(Zeroizing::new(b.to_string())),
            _ => None,
        }
    }
    let mut out = Vec::new();
    for (k, v) in table {
        match v {
            toml::Value::Table(t) => {
                for (k2, v2) in t {
                    let s = scalar(v2).ok_or_else(|| {
                        bad(format!("`{k}.{k2}` must be a string, number or boolean"))
                    })?;
                    out.push((format!("{k}.{k2}"), ConfigValue::parse(&s)));
                }
            }
            other => {
                let s = scalar(other).ok_or_else(|| {
                    bad(format!("`{k}` must be a string, number, boolean or table"))
                })?;
                out.push((k.clone(), ConfigValue::parse(&s)));
            }
        }
    }
    Ok(out)
}

/// Picks one plugin's share of `--sanitize-config` style pairs when several
/// plugins are loaded: `STEM.key=value` goes only to the plugin whose file
/// stem is `STEM` (e.g. `redact.mode=drop` to `redact.wasm`, as `mode`);
/// a key whose prefix is not one of `all_stems` goes to every plugin
/// unchanged. Order is kept; a later pair for the same key wins when the
/// result is resolved.
pub fn config_for(
    pairs: &[(String, ConfigValue)],
    stem: &str,
    all_stems: &[&str],
) -> Vec<(String, ConfigValue)> {
    pairs
        .iter()
        .filter_map(|(k, v)| match k.split_once('.') {
            Some((p, rest)) if all_stems.contains(&p) => {
                (p == stem).then(|| (rest.to_string(), v.clone()))
            }
            _ => Some((k.clone(), v.clone())),
        })
        .collect()
}

/// What the operator grants one plugin. Empty by default: no network, no
/// filesystem, no environment, no configuration. `Debug` shows environment
/// variable names and config keys, never their values.
#[derive(Clone, Default)]
pub struct Grants {
    /// Allowed HTTP destinations (`--allow-host`).
    pub hosts: Vec<HostGrant>,
    /// Granted directories (`--allow-dir`).
    pub dirs: Vec<DirGrant>,
    /// Environment variables passed to the plugin (name, value).
    pub env: Vec<(String, String)>,
    /// Configuration handed to the plugin (`--plugin-config`), in order;
    /// a later key replaces an earlier one.
    pub config: Vec<(String, ConfigValue)>,
    /// Per-plugin limits; `None` = the runtime's defaults. With the pooling
    /// allocator, memory and instance/table/memory counts are capped at the
    /// runtime's limits (pool slots are sized by them).
    pub limits: Option<Limits>,
}

impl std::fmt::Debug for Grants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Grants")
            .field("hosts", &self.hosts)
            .field("dirs", &self.dirs)
            .field("env", &env)
            .field("config", &self.config)
            .field("limits", &self.limits)
            .finish()
    }
}

impl Grants {
    /// Adds `key=value` configuration pairs (flag syntax).
    pub fn with_config<'a>(mut self, pairs: impl IntoIterator<Item = &'a str>) -> Result<Grants> {
        for p in pairs {
            self.config.push(parse_config_pair(p)?);
        }
        Ok(self)
    }

    /// Adds `HOST:PORT` allowed hosts (flag syntax).
    pub fn with_hosts<'a>(mut self, hosts: impl IntoIterator<Item = &'a str>) -> Result<Grants> {
        for h in hosts {
            self.hosts.push(HostGrant::parse(h)?);
        }
        Ok(self)
    }

    /// Adds a directory grant.
    pub fn with_dir(mut self, dir: DirGrant) -> Grants {
        self.dirs.push(dir);
        self
    }

    /// Resolves `env:`/`file:` values; later keys win, first-seen order.
    pub(crate) fn resolved_config(&self) -> Result<ResolvedConfig> {
        let mut out = ResolvedConfig::default();
        for (k, v) in &self.config {
            set_config(&mut out, k, &v.resolve(k)?);
        }
        Ok(out)
    }
}

/// Set `key` in a plugin config list: replace its value where it already
/// is (so the first-seen order stays; the old value is wiped), else
/// append. Copies `value` (the caller keeps and wipes its own).
pub(crate) fn set_config(config: &mut ResolvedConfig, key: &str, value: &str) {
    match config.iter_mut().find(|(n, _)| n == key) {
        Some(slot) => {
            slot.1.zeroize();
            slot.1.push_str(value);
        }
        None => config.push((key.to_string(), value.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_grants_parse_and_match() {
        let g = HostGrant::parse("S3.Example.com:443").unwrap();
        assert!(g.allows("s3.example.com", 443));
        assert!(!g.allows("s3.example.com", 80));
        assert!(!g.allows("evil.s3.example.com", 443));
        let w = HostGrant::parse("*.example.com:443").unwrap();
        assert!(w.allows("a.example.com", 443));
        assert!(!w.allows("example.com", 443));
        assert!(!w.allows("aexample.com", 443));
        let v6 = HostGrant::parse("[::1]:9000").unwrap();
        assert!(v6.allows("[::1]", 9000));
        assert_eq!(v6.to_string(), "[::1]:9000");
        assert!(HostGrant::parse("example.com").is_err());
        assert!(HostGrant::parse("example.com:http").is_err());
    }

    #[test]
    fn prefixed_config_goes_to_one_plugin() {
        let pairs: Vec<_> = [
            "mode=redact",
            "redact.mode=drop",
            "notrack.trackers=a",
            "x.y=1",
        ]
        .into_iter()
        .map(|p| parse_config_pair(p).unwrap())
        .collect();
        let stems = ["redact", "notrack"];
        let keys = |stem| {
            let g = Grants {
                config: config_for(&pairs, stem, &stems),
                ..Grants::default()
            };
            g.resolved_config().unwrap().to_vec()
        };
        assert_eq!(
            keys("redact"),
            [
                ("mode".to_string(), "drop".to_string()),
                ("x.y".into(), "1".into())
            ]
        );
        assert_eq!(
            keys("notrack"),
            [
                ("mode".to_string(), "redact".to_string()),
                ("trackers".into(), "a".into()),
                ("x.y".into(), "1".into())
            ]
        );
    }

    #[test]
    fn config_file_has_shared_and_per_plugin_keys() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("plugins.toml");
        std::fs::write(&f, "mode = \"redact\"\n[s3]\nbucket = \"b\"\npath_style = true\nsecret_access_key = \"env:S3_SECRET\"\n").unwrap();
        let pairs = read_config_file(&f).unwrap();
        let s3 = config_for(&pairs, "s3", &["s3", "redact"]);
        let keys: Vec<_> = s3.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        assert_eq!(
            keys,
            [
                "mode=Literal(..)",
                "bucket=Literal(..)",
                "path_style=Literal(..)",
                "secret_access_key=Env(S3_SECRET)"
            ]
        );
        assert_eq!(config_for(&pairs, "redact", &["s3", "redact"]).len(), 1);
        std::fs::write(&f, "x = [1]\n").unwrap();
        assert!(
            read_config_file(&f)
                .unwrap_err()
                .to_string()
                .contains("`x` must be")
        );
    }

    #[test]
    fn dir_grants_parse() {
        assert_eq!(DirGrant::parse("/srv/x").unwrap().guest, "/data");
        let d = DirGrant::parse("/srv/x:/store:ro").unwrap();
        assert_eq!((d.guest.as_str(), d.read_only), ("/store", true));
        assert!(DirGrant::parse("/a:rel").is_err());
    }

    #[test]
    fn config_values_resolve_without_leaking() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("secret");
        std::fs::write(&f, "s3cr3t\n").unwrap();
        let g = Grants::default()
            .with_config(["a=plain", &format!("b=file:{}", f.display()), "a=later"])
            .unwrap();
        let r = g.resolved_config().unwrap();
        assert_eq!(
            *r,
            vec![("a".into(), "later".into()), ("b".into(), "s3cr3t".into())]
        );
        let missing = Grants::default()
            .with_config(["k=env:SESSHOST_TEST_DEFINITELY_UNSET"])
            .unwrap()
            .resolved_config()
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("SESSHOST_TEST_DEFINITELY_UNSET") && missing.contains("`k`"),
            "{missing}"
        );
        assert_eq!(
            format!("{:?}", ConfigValue::parse("hunter2")),
            "Literal(..)"
        );
        assert!(parse_config_pair("novalue").is_err());
    }
}
