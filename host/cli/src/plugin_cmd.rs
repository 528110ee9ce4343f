//! Wiring of the WebAssembly plugins (`sesshost-plugin`) into the CLI:
//! `host plugin inspect`, sanitisers for `host export --sanitize`, storage
//! backends for `host push` / `host pull`, cleanup strategies for
//! `host session cleanup --strategy`.
//!
//! Parse then act: flags become [`GrantArgs`] (plain data), then
//! [`GrantArgs::grants`] builds the `Grants` the runtime enforces.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use sessbundle::SessionState;
use sessbundle::manifest::SanitizerEntry;
use sesshost_plugin::{
    ConfigValue, DirGrant, Grants, Runtime, RuntimeConfig, SanitizeContext, StorageBackend,
    StorageErrorKind, config_for, parse_config_pair, read_config_file,
};
use sesshost_store::{Backend, BackendError, BackendErrorKind, Home, RepoKey, Store, now_ms};

use crate::args::KeyArgs;
use crate::secrets::{self, Purpose};

#[derive(Debug, Clone, Subcommand)]
pub enum PluginCommand {
    /// Show a plugin's world, contract version, exports and the capabilities it can ask for.
    Inspect {
        #[arg(value_name = "P.wasm")]
        plugin: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// What the operator grants a plugin. Nothing by default.
#[derive(Debug, Clone, Args, Default)]
pub struct GrantArgs {
    /// Configuration for the plugin, `key=value`; a value `env:NAME` or
    /// `file:PATH` is read from the environment or a file (keeps secrets off argv).
    #[arg(long = "plugin-config", value_name = "KEY=VALUE")]
    pub plugin_config: Vec<String>,
    /// A TOML file of plugin configuration (same value syntax).
    #[arg(long = "plugin-config-file", value_name = "F")]
    pub plugin_config_file: Option<PathBuf>,
    /// Let the plugin reach HOST:PORT over HTTP (repeatable; nothing else is reachable).
    #[arg(long = "allow-host", value_name = "HOST:PORT")]
    pub allow_host: Vec<String>,
    /// Give the plugin a directory, HOST[:GUEST][:ro] (repeatable; no other files are visible).
    #[arg(long = "allow-dir", value_name = "DIR")]
    pub allow_dir: Vec<String>,
    /// Pass this host environment variable to the plugin (repeatable; none by default).
    #[arg(long = "plugin-env", value_name = "NAME")]
    pub plugin_env: Vec<String>,
    /// Wall-clock limit per plugin call in ms (default 2000).
    #[arg(long = "plugin-deadline-ms", value_name = "N")]
    pub plugin_deadline_ms: Option<u64>,
    /// Memory limit per plugin instance in MiB (default 128).
    #[arg(long = "plugin-memory-mib", value_name = "N")]
    pub plugin_memory_mib: Option<u64>,
}

impl GrantArgs {
    pub fn grants(&self) -> Result<Grants> {
        let mut g = Grants::default();
        if let Some(f) = &self.plugin_config_file {
            g.config.extend(read_config_file(f)?);
        }
        g = g.with_config(self.plugin_config.iter().map(String::as_str))?;
        g = g.with_hosts(self.allow_host.iter().map(String::as_str))?;
        for d in &self.allow_dir {
            g = g.with_dir(DirGrant::parse(d)?);
        }
        for name in &self.plugin_env {
            let v = std::env::var(name)
                .with_context(|| format!("--plugin-env {name}: the variable is not set"))?;
            g.env.push((name.clone(), v));
        }
        if self.plugin_deadline_ms.is_some() || self.plugin_memory_mib.is_some() {
            let mut l = sesshost_plugin::Limits::default();
            if let Some(ms) = self.plugin_deadline_ms {
                l.deadline = std::time::Duration::from_millis(ms);
            }
            if let Some(m) = self.plugin_memory_mib {
                l.memory_bytes = m << 20;
            }
            g.limits = Some(l);
        }
        Ok(g)
    }
}

pub fn runtime(home: &Path) -> Result<Runtime> {
    Ok(Runtime::new(RuntimeConfig {
        cache_dir: Some(home.join("plugin-cache")),
        ..Default::default()
    })?)
}

pub fn tokio_rt() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn run(home: &Path, cmd: PluginCommand) -> Result<()> {
    match cmd {
        PluginCommand::Inspect { plugin, json } => {
            let info = runtime(home)?.inspect(&plugin)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
                return Ok(());
            }
            println!(
                "{} ({} bytes, blake3 {})",
                info.name, info.size_bytes, info.blake3
            );
            println!(
                "world:        {}",
                info.world
                    .as_deref()
                    .unwrap_or("(none: not a sesshost plugin)")
            );
            println!("version:      {}", info.version.as_deref().unwrap_or("-"));
            println!(
                "loadable:     {}",
                if info.loadable {
                    "yes".to_string()
                } else {
                    format!("no: {}", info.problem.as_deref().unwrap_or(""))
                }
            );
            println!("exports:      {}", info.exports.join(", "));
            println!(
                "capabilities: {}",
                if info.capabilities.is_empty() {
                    "none".to_string()
                } else {
                    info.capabilities.join(", ")
                }
            );
            println!("imports:      {}", info.imports.join(", "));
            Ok(())
        }
    }
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Run `plugins` in order on `state` for an export to `destination`.
/// `pairs` are `--sanitize-config` values: `STEM.key=v` goes to one plugin,
/// `key=v` to all. Prints each report on stderr; returns the sanitised state
/// and the manifest entries.
pub fn sanitize(
    home: &Path,
    plugins: &[PathBuf],
    pairs: &[String],
    state: &SessionState,
    destination: &str,
) -> Result<(SessionState, Vec<SanitizerEntry>)> {
    let rt = runtime(home)?;
    let parsed: Vec<(String, ConfigValue)> = pairs
        .iter()
        .map(|p| parse_config_pair(p))
        .collect::<sesshost_plugin::Result<_>>()?;
    let stems: Vec<String> = plugins.iter().map(|p| stem(p)).collect();
    let stem_refs: Vec<&str> = stems.iter().map(String::as_str).collect();
    let tokio = tokio_rt()?;
    let mut current = state.clone();
    let mut entries = Vec::new();
    for (path, st) in plugins.iter().zip(&stems) {
        let grants = Grants {
            config: config_for(&parsed, st, &stem_refs),
            ..Default::default()
        };
        let s = rt.load_sanitizer(path, &grants)?;
        let ctx = SanitizeContext {
            purpose: "export".into(),
            destination: Some(destination.into()),
            config: vec![],
        };
        let (next, report) = tokio
            .block_on(s.sanitize(&current, &ctx))
            .with_context(|| {
                format!(
                    "sanitiser {} stopped the export; nothing was written",
                    path.display()
                )
            })?;
        eprintln!("sanitiser {}: {}", report.plugin, report.summary);
        for f in &report.findings {
            eprintln!("  {:?} {} ({})", f.action, f.location, f.reason);
        }
        let b3 =
            sessbundle::keys::unhex::<32>(&report.blake3).context("plugin blake3 is not hex")?;
        entries.push(SanitizerEntry {
            name: report.plugin.clone(),
            blake3: sessbundle::format::Bin(b3),
        });
        current = next;
    }
    Ok((current, entries))
}

/// A storage-backend plugin as the store's synchronous [`Backend`]: each
/// call runs on a private tokio runtime (the store calls from plain threads).
struct PluginBackend {
    handle: tokio::runtime::Handle,
    backend: Arc<StorageBackend>,
}

fn backend_err(e: sesshost_plugin::Error) -> BackendError {
    let kind = match e.storage_kind() {
        Some(StorageErrorKind::Denied) => BackendErrorKind::Denied,
        Some(StorageErrorKind::Unavailable) => BackendErrorKind::Unavailable,
        Some(StorageErrorKind::Invalid) => BackendErrorKind::InvalidKey,
        _ => BackendErrorKind::Other,
    };
    BackendError::new(kind, e.to_string())
}

impl Backend for PluginBackend {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BackendError> {
        self.handle
            .block_on(self.backend.put(key, bytes))
            .map_err(backend_err)
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        match self.handle.block_on(self.backend.get(key)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.storage_kind() == Some(StorageErrorKind::NotFound) => Ok(None),
            Err(e) => Err(backend_err(e)),
        }
    }
    fn has(&self, key: &str) -> Result<bool, BackendError> {
        self.handle
            .block_on(self.backend.has(key))
            .map_err(backend_err)
    }
    fn delete(&self, key: &str) -> Result<(), BackendError> {
        match self.handle.block_on(self.backend.delete(key)) {
            Err(e) if e.storage_kind() != Some(StorageErrorKind::NotFound) => Err(backend_err(e)),
            _ => Ok(()),
        }
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        self.handle
            .block_on(self.backend.list(prefix))
            .map_err(backend_err)
    }
}

const REPO_CONFIG_KEY: &str = "config";
const CTX_REPO_KEY: &str = "sesshost 2026-11-22 repository key";
const CTX_REPO_CHECK: &str = "sesshost 2026-11-22 repository key check";

/// The repository's key, from the passphrase (Argon2id with the salt kept in
/// the backend's `config` object) or a key file. Never the home's host key:
/// another machine with the same passphrase or key file can read it.
fn repo_key(backend: &dyn Backend, keys: &KeyArgs, create: bool) -> Result<RepoKey> {
    let unlock = {
        let mut u = secrets::unlocks(
            keys,
            if create {
                Purpose::New
            } else {
                Purpose::Existing
            },
            true,
        )?;
        if u.len() != 1 {
            bail!("give one repository key: --passphrase-file, --passphrase-env or --key-file");
        }
        u.remove(0)
    };
    let existing = backend
        .get(REPO_CONFIG_KEY)
        .map_err(|e| anyhow::anyhow!("cannot read the repository config: {e}"))?;
    let config: serde_json::Value = match existing {
        Some(b) => serde_json::from_slice(&b)
            .context("the repository's config object is not valid JSON")?,
        None if create => {
            let mut salt = [0u8; 16];
            getrandom_fill(&mut salt);
            let p = sessbundle::Argon2Params::default();
            json!({"v": 1, "salt": sessbundle::keys::hex(&salt), "m_kib": p.m_kib, "t": p.t, "p": p.p})
        }
        None => bail!(
            "this backend holds no sesshost repository yet (no `config` object): push a session to it first"
        ),
    };
    let key: [u8; 32] = match &unlock {
        sessbundle::Unlock::Key(k) => blake3::derive_key(CTX_REPO_KEY, k.as_bytes()),
        sessbundle::Unlock::Passphrase(pw) => {
            let salt_hex = config["salt"]
                .as_str()
                .context("repository config has no salt")?;
            let salt = sessbundle::keys::unhex::<16>(salt_hex)
                .context("repository salt is not 16 bytes of hex")?;
            let p = sessbundle::Argon2Params {
                m_kib: config["m_kib"].as_u64().unwrap_or(0) as u32,
                t: config["t"].as_u64().unwrap_or(0) as u32,
                p: config["p"].as_u64().unwrap_or(0) as u32,
            };
            blake3::derive_key(CTX_REPO_KEY, &p.derive_kek(pw.as_bytes(), &salt)?)
        }
    };
    let check =
        sessbundle::keys::hex(blake3::keyed_hash(&key, CTX_REPO_CHECK.as_bytes()).as_bytes());
    match config["check"].as_str() {
        Some(c) if c == check => {}
        Some(_) => {
            return Err(anyhow::Error::new(sessbundle::Error::NoMatchingKey))
                .context("this repository was created with another passphrase or key file");
        }
        None => {
            let mut c = config.clone();
            c["check"] = json!(check);
            backend
                .put(REPO_CONFIG_KEY, serde_json::to_vec_pretty(&c)?.as_slice())
                .map_err(|e| anyhow::anyhow!("cannot write the repository config: {e}"))?;
        }
    }
    Ok(RepoKey::from_bytes(key))
}

fn getrandom_fill(b: &mut [u8]) {
    sessbundle::keys::Randomness::fill(&mut sessbundle::keys::OsRandom, b);
}

#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    pub name: String,
    /// The storage-backend plugin (e.g. s3.wasm, fs.wasm).
    #[arg(long, value_name = "P.wasm")]
    pub plugin: PathBuf,
    #[command(flatten)]
    pub grants: GrantArgs,
    /// The repository key (not the home's key): the same on every machine that pulls.
    #[command(flatten)]
    pub keys: KeyArgs,
}

#[derive(Debug, Clone, Args)]
pub struct PullArgs {
    pub name: String,
    #[arg(long, value_name = "P.wasm")]
    pub plugin: PathBuf,
    /// Store it locally under another name.
    #[arg(long = "as", value_name = "NAME")]
    pub as_name: Option<String>,
    /// Replace a local session of that name.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub grants: GrantArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
}

fn remote(
    home: &Path,
    plugin: &Path,
    grants: &GrantArgs,
    keys: &KeyArgs,
    create: bool,
) -> Result<(tokio::runtime::Runtime, Store)> {
    let rt = runtime(home)?;
    let backend = rt.load_storage(plugin, &grants.grants()?)?;
    let tokio = tokio_rt()?;
    let pb = PluginBackend {
        handle: tokio.handle().clone(),
        backend: Arc::new(backend),
    };
    let key = repo_key(&pb, keys, create)?;
    Ok((tokio, Store::new(Box::new(pb), &key)))
}

pub fn push(home: &Path, a: PushArgs) -> Result<()> {
    let local = Home::new(home).store()?;
    let state = local.load(&a.name)?;
    let (_rt, remote) = remote(home, &a.plugin, &a.grants, &a.keys, true)?;
    let now = now_ms();
    let report = if remote.exists(&a.name)? {
        remote.save(&a.name, &state, now)?
    } else {
        remote.import_state(&a.name, &state, false, now)?
    };
    eprintln!(
        "pushed session {} through {}: {} of {} chunks were new, {} bytes sent for {} bytes of state",
        a.name,
        a.plugin.display(),
        report.chunks_written,
        report.chunks_total,
        report.bytes_written,
        report.logical_bytes
    );
    Ok(())
}

pub fn pull(home: &Path, a: PullArgs) -> Result<()> {
    let (_rt, remote) = remote(home, &a.plugin, &a.grants, &a.keys, false)?;
    let state = remote.load(&a.name)?;
    let name = a.as_name.clone().unwrap_or_else(|| a.name.clone());
    let local = Home::new(home).store()?;
    let report = local.import_state(&name, &state, a.force, now_ms())?;
    eprintln!(
        "pulled session {} as {name} ({} bytes of state)",
        a.name, report.logical_bytes
    );
    Ok(())
}

/// `host session cleanup --strategy P.wasm`: the plugin decides, the host
/// acts and says what it did and why.
pub fn cleanup_with_strategy(
    home: &Path,
    strategy: &Path,
    grants: &GrantArgs,
    limits: sesshost_plugin::CleanupLimits,
    dry_run: bool,
) -> Result<()> {
    let h = Home::new(home);
    let store = h.store()?;
    let now = now_ms();
    let infos = store.list(now)?;
    let sessions: Vec<sesshost_plugin::SessionInfo> = infos
        .iter()
        .map(|i| {
            let open = h.is_open(&i.name);
            sesshost_plugin::SessionInfo {
                name: i.name.clone(),
                tenant: None,
                created_at: i.created_at,
                last_used_at: i.last_used_at.unwrap_or(i.updated_at.max(i.created_at)),
                expires_at: i.expires_at,
                ttl_secs: i.ttl_secs,
                size_bytes: i.stored_bytes,
                status: if i.expired {
                    sesshost_plugin::SessionStatus::Expired
                } else if open {
                    sesshost_plugin::SessionStatus::Active
                } else {
                    sesshost_plugin::SessionStatus::Idle
                },
            }
        })
        .collect();
    let plugin = runtime(home)?.load_cleanup(strategy, &grants.grants()?)?;
    let limits = sesshost_plugin::CleanupLimits { now, ..limits };
    let decisions = tokio_rt()?.block_on(plugin.decide(&sessions, &limits))?;
    for d in decisions {
        use sesshost_plugin::CleanupAction::*;
        let verb = match d.action {
            Keep => "kept",
            Hibernate => "kept (hibernate: a stored session is already at rest)",
            Expire | Delete if dry_run => "would remove",
            Expire | Delete => match store.delete(&d.name) {
                Ok(_) => "removed",
                Err(e) => {
                    eprintln!("{}: not removed: {e}", d.name);
                    continue;
                }
            },
        };
        println!("{}: {verb} ({:?}: {})", d.name, d.action, d.reason);
    }
    Ok(())
}
