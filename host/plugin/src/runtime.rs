//! The [`Runtime`]: one wasmtime `Engine` (epoch interruption on, component
//! model async calls without `concurrency_support`, pooling allocator when
//! the probe succeeds), the shared `Linker` (WASI 0.2 + `wasi:http`), the
//! epoch ticker thread, the compiled-component disk cache, and the generic
//! loaded [`Plugin`] with hot reload and the per-call guard (one `Store`
//! per call from an `InstancePre`, limits, deadline, error classification).

use std::hash::Hasher;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};

use crate::config::{Grants, Limits, Pooling, RuntimeConfig};
use crate::error::{Error, Result};
use crate::host::{self, HostState, SharedDiag, StateRecipe};
use crate::inspect::{self, PluginInfo};
use crate::manifest;

/// The contract versions this host accepts (the `@version` of the
/// exported `sesshost:plugin/...` interface).
/// Every world has 0.1.0; the storage world also has 0.2.0 (conditional
/// writes); [`versions_of`] gives them per world.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.1.0", "0.2.0"];

/// The contract versions this host accepts for `world`, oldest first.
pub fn versions_of(world: &str) -> &'static [&'static str] {
    match world {
        "storage-backend" => &["0.1.0", "0.2.0"],
        _ => &["0.1.0"],
    }
}

/// Runs plugins. Cheap to clone (an `Arc`); create one per process.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    cfg: RuntimeConfig,
    pooling: bool,
    /// Hex digest of the engine's compatibility hash (cache key half).
    compat: String,
    permits: Arc<Semaphore>,
    stop: Arc<AtomicBool>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Compiled-component cache counters since the runtime started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Loads served from the disk cache.
    pub hits: u64,
    /// Loads that compiled (no cache, no entry, or an unusable entry).
    pub misses: u64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A `Hasher` over BLAKE3, so the compatibility hash is stable across runs
/// (std's `DefaultHasher` is not guaranteed to be).
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        let h = self.0.finalize();
        u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or([0; 8]))
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn engine_config(cfg: &RuntimeConfig, pooling: bool) -> Config {
    let mut c = Config::new();
    c.epoch_interruption(true);
    // Default-on in wasmtime 48 and ~5x slower per call; plugins don't use
    // WASIp3 / component-model async.
    c.concurrency_support(false);
    if pooling {
        let n = cfg.max_concurrent_calls.max(1);
        let l = &cfg.limits;
        let mut p = PoolingAllocationConfig::default();
        p.total_component_instances(n)
            .total_core_instances(n * l.max_instances)
            .total_memories(n * l.max_memories)
            .total_tables(n * l.max_tables)
            .total_stacks(n)
            .max_core_instances_per_component(l.max_instances)
            .max_memories_per_component(l.max_memories)
            .max_tables_per_component(l.max_tables)
            .max_memory_size(l.memory_bytes as usize);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    c
}

impl Runtime {
    /// Builds the engine (probing the pooling allocator), the linker and
    /// the epoch thread.
    pub fn new(cfg: RuntimeConfig) -> Result<Runtime> {
        let (engine, pooling) = match cfg.pooling {
            Pooling::Auto => match Engine::new(&engine_config(&cfg, true)) {
                Ok(e) => (e, true),
                Err(e) => {
                    tracing::info!(error = %e, "pooling allocator unavailable, using on-demand allocation");
                    (
                        Engine::new(&engine_config(&cfg, false))
                            .map_err(|e| Error::Engine(e.to_string()))?,
                        false,
                    )
                }
            },
            Pooling::Off => (
                Engine::new(&engine_config(&cfg, false))
                    .map_err(|e| Error::Engine(e.to_string()))?,
                false,
            ),
        };
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| Error::Engine(e.to_string()))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| Error::Engine(e.to_string()))?;
        let mut h = Blake3Hasher(blake3::Hasher::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
        let compat = h.0.finalize().to_hex()[..16].to_string();

        // Epochs tick from a plain thread: a tokio task could be starved by
        // the very wasm it is meant to interrupt.
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let tick = cfg.epoch_tick;
        let stop2 = stop.clone();
        std::thread::Builder::new()
            .name("sesshost-plugin-epoch".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    match weak.upgrade() {
                        Some(e) => e.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| Error::Engine(format!("cannot start the epoch thread: {e}")))?;
        if let Some(dir) = &cfg.cache_dir {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io {
                what: format!("cannot create the plugin cache directory {}", dir.display()),
                source: e,
            })?;
        }
        let permits = Arc::new(Semaphore::new(cfg.max_concurrent_calls.max(1) as usize));
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                cfg,
                pooling,
                compat,
                permits,
                stop,
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        })
    }

    /// Whether the pooling allocator is in use (the probe succeeded).
    pub fn pooling_enabled(&self) -> bool {
        self.inner.pooling
    }

    /// Compiled-component cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
        }
    }

    /// Describes a plugin without running it (`host plugin inspect`).
    pub fn inspect(&self, path: &Path) -> Result<PluginInfo> {
        let bytes = read(path)?;
        let name = plugin_name(path);
        let hash = blake3::hash(&bytes);
        let component = self.compile(&name, &bytes, &hash)?;
        Ok(inspect::describe(
            self, path, &name, &bytes, &hash, &component,
        ))
    }

    /// Compiles (or loads from the cache) a component.
    fn compile(&self, name: &str, bytes: &[u8], hash: &blake3::Hash) -> Result<Component> {
        let engine = &self.inner.engine;
        let cached = self
            .inner
            .cfg
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{}-{}.cwasm", hash.to_hex(), self.inner.compat)));
        if let Some(p) = cached.as_ref().filter(|p| p.exists()) {
            // SAFETY: the file is one this runtime wrote (temp file +
            // rename in its own cache directory) for this exact wasm
            // (BLAKE3 in the name) and engine configuration
            // (compatibility hash in the name); wasmtime also checks the
            // engine compatibility itself. A corrupt or foreign file is
            // the one residual risk of any native-code cache.
            #[allow(unsafe_code)]
            match unsafe { Component::deserialize_file(engine, p) } {
                Ok(c) => {
                    self.inner.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(c);
                }
                Err(e) => {
                    tracing::warn!(plugin = name, error = %e, "ignoring unusable compiled-plugin cache entry")
                }
            }
        }
        self.inner.misses.fetch_add(1, Ordering::Relaxed);
        let c = Component::new(engine, bytes).map_err(|e| Error::Invalid {
            plugin: name.to_string(),
            detail: format!("{e:#}"),
        })?;
        if let Some(p) = &cached {
            match c.serialize() {
                Ok(data) => {
                    if let Err(e) = write_atomic(p, &data) {
                        tracing::warn!(plugin = name, error = %e, "cannot write compiled-plugin cache entry");
                    }
                }
                Err(e) => {
                    tracing::warn!(plugin = name, error = %e, "cannot serialise compiled plugin")
                }
            }
        }
        Ok(c)
    }

    /// Loads a plugin of world `W` with the operator's `grants` (intersected
    /// with the plugin's manifest, if any).
    pub(crate) fn load<W: World>(&self, path: &Path, grants: &Grants) -> Result<Plugin<W>> {
        let prepared = self.prepare::<W>(path, grants)?;
        Ok(Plugin {
            rt: self.clone(),
            path: path.to_path_buf(),
            grants: grants.clone(),
            current: RwLock::new(Arc::new(prepared)),
            _w: PhantomData,
        })
    }

    fn prepare<W: World>(&self, path: &Path, grants: &Grants) -> Result<Prepared<W>> {
        let bytes = read(path)?;
        let hash = blake3::hash(&bytes);
        self.prepare_from(path, bytes, hash, grants)
    }

    /// [`Runtime::prepare`] for wasm already read from `path` (`hash` is
    /// its BLAKE3), so a reload neither reads nor hashes the file twice.
    fn prepare_from<W: World>(
        &self,
        path: &Path,
        bytes: Vec<u8>,
        hash: blake3::Hash,
        grants: &Grants,
    ) -> Result<Prepared<W>> {
        let name = plugin_name(path);
        let manifest = manifest::read_manifest(path)?;
        let mut effective = manifest::effective(
            &name,
            &hash.to_hex(),
            manifest.as_ref(),
            grants,
            self.inner.cfg.limits,
        )?;
        let mut limits = effective.limits.unwrap_or(self.inner.cfg.limits);
        if self.inner.pooling {
            // Pool slots are sized by the runtime's limits.
            let max = &self.inner.cfg.limits;
            limits.memory_bytes = limits.memory_bytes.min(max.memory_bytes);
            limits.max_instances = limits.max_instances.min(max.max_instances);
            limits.max_memories = limits.max_memories.min(max.max_memories);
            limits.max_tables = limits.max_tables.min(max.max_tables);
        }
        effective.limits = Some(limits);
        let config = effective.resolved_config()?;
        let component = self.compile(&name, &bytes, &hash)?;
        let kind = inspect::kind_of(&self.inner.engine, &component);
        let versions = versions_of(W::WORLD);
        // The newest version is the one to build new plugins against.
        let newest = versions.last().copied().unwrap_or("0.1.0");
        let expected = format!("world {}@{newest}", W::WORLD);
        let version = match &kind {
            Some((world, version)) if world == W::WORLD && versions.contains(&version.as_str()) => {
                version.clone()
            }
            Some((world, version)) => {
                return Err(Error::WorldMismatch {
                    plugin: name,
                    found: format!("world {world}@{version}"),
                    expected,
                    supported: versions.join(", "),
                });
            }
            None => {
                return Err(Error::WorldMismatch {
                    plugin: name,
                    found: "no sesshost:plugin world (it exports no sesshost:plugin interface)"
                        .into(),
                    expected,
                    supported: versions.join(", "),
                });
            }
        };
        let pre = self.inner.linker.instantiate_pre(&component).map_err(|e| {
            let detail = format!("{e:#}");
            match inspect::import_from_error(&detail) {
                Some(import) => Error::UnsupportedImport {
                    plugin: name.clone(),
                    import,
                },
                None => Error::Invalid {
                    plugin: name.clone(),
                    detail,
                },
            }
        })?;
        let world_pre = W::pre(pre, &version).map_err(|e| Error::Invalid {
            plugin: name.clone(),
            detail: format!("its exports do not match world {}: {e:#}", W::WORLD),
        })?;
        Ok(Prepared {
            pre: world_pre,
            recipe: StateRecipe {
                plugin: name.clone().into(),
                grants: Arc::new(effective),
                limits,
            },
            name,
            hash: hash.to_hex().to_string(),
            config,
        })
    }
}

/// The first bytes of every WebAssembly binary (core module or component).
pub(crate) const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Reads a plugin file, refusing anything that does not start with
/// [`WASM_MAGIC`] before reading the rest ([`Error::NotWasm`], which shows
/// none of the content: a passphrase file given by mistake stays unseen).
fn read(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let io = |e| Error::Read {
        path: path.to_path_buf(),
        source: e,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut bytes = Vec::new();
    (&mut f).take(4).read_to_end(&mut bytes).map_err(io)?;
    if bytes.as_slice() != WASM_MAGIC {
        return Err(Error::NotWasm {
            path: path.to_path_buf(),
        });
    }
    // The size is only a hint (the file may change while read).
    bytes.reserve(usize::try_from(size).unwrap_or(0).saturating_sub(4));
    f.read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// `dir/redact.wasm` -> `redact.wasm`.
pub(crate) fn plugin_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Temp file in the same directory, fsync, rename.
/// A compiled component into the cache, through the workspace's one atomic
/// write (`sessbundle::atomic::write_atomic`).
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    sessbundle::atomic::write_atomic(path, data, 0o644).map_err(|e| match e {
        sessbundle::Error::Io { source, .. } => source,
        e => std::io::Error::other(e.to_string()),
    })
}

/// One of the three worlds (sealed).
pub trait World: Send + Sync + 'static + private::Sealed {
    /// The world's name in `wit/plugin.wit`.
    const WORLD: &'static str;
    #[doc(hidden)]
    type Pre: Send + Sync + 'static;
    #[doc(hidden)]
    /// `version` is the contract version the component exports (one of
    /// [`versions_of`] this world).
    fn pre(pre: InstancePre<HostState>, version: &str) -> wasmtime::Result<Self::Pre>;
}

pub(crate) mod private {
    pub trait Sealed {}
}

/// A compiled, linked plugin ready to instantiate, plus what each call
/// needs.
pub(crate) struct Prepared<W: World> {
    pub(crate) pre: W::Pre,
    recipe: StateRecipe,
    pub(crate) name: String,
    pub(crate) hash: String,
    /// Resolved `--plugin-config` (values may be secrets: never logged,
    /// wiped when this version of the plugin is dropped).
    pub(crate) config: crate::config::ResolvedConfig,
}

/// A loaded plugin of world `W`; see the aliases [`crate::Sanitizer`],
/// [`crate::StorageBackend`], [`crate::CleanupStrategy`].
///
/// Every call gets a fresh `Store` and instance (cheap with `InstancePre`:
/// tens of µs), so a trap or a leak in one call cannot affect the next.
pub struct Plugin<W: World> {
    rt: Runtime,
    path: PathBuf,
    grants: Grants,
    current: RwLock<Arc<Prepared<W>>>,
    _w: PhantomData<W>,
}

impl<W: World> Plugin<W> {
    /// The plugin's file name, e.g. `redact.wasm`.
    pub fn name(&self) -> String {
        self.prepared().name.clone()
    }

    /// Hex BLAKE3 of the wasm currently loaded.
    pub fn blake3(&self) -> String {
        self.prepared().hash.clone()
    }

    /// The plugin's file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn prepared(&self) -> Arc<Prepared<W>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reloads the plugin file if its contents changed: compiles, checks,
    /// and swaps the prepared instance. Calls already running finish on the
    /// old version; later calls use the new one. On error the old version
    /// stays. Returns whether a new version was swapped in.
    pub fn reload(&self) -> Result<bool> {
        let bytes = read(&self.path)?;
        let hash = blake3::hash(&bytes);
        if hash.to_hex().as_str() == self.prepared().hash {
            return Ok(false);
        }
        let next = self
            .rt
            .prepare_from::<W>(&self.path, bytes, hash, &self.grants)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        Ok(true)
    }

    /// Starts a call: waits for a permit, builds the store.
    pub(crate) async fn begin(&self, call: &'static str) -> Result<(Store<HostState>, CallCx<W>)> {
        let permit = self
            .rt
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Engine("runtime shut down".into()))?;
        let prepared = self.prepared();
        let diag: SharedDiag = Default::default();
        let state = prepared.recipe.build(&diag)?;
        let mut store = Store::new(&self.rt.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        let deadline = Arc::new(std::sync::Mutex::new(
            Instant::now() + prepared.recipe.limits.deadline,
        ));
        let d2 = deadline.clone();
        store.epoch_deadline_callback(move |_| {
            let at = *d2.lock().unwrap_or_else(|p| p.into_inner());
            if Instant::now() >= at {
                Ok(UpdateDeadline::Interrupt)
            } else {
                // Let other tokio tasks run, then check again next tick.
                Ok(UpdateDeadline::YieldCustom(
                    1,
                    Box::pin(tokio::task::yield_now()),
                ))
            }
        });
        store.set_epoch_deadline(1);
        Ok((
            store,
            CallCx {
                prepared,
                diag,
                deadline,
                call,
                _permit: permit,
            },
        ))
    }
}

/// One call in progress (beside its store): the version it runs, the
/// deadline, diagnostics, the concurrency permit.
pub(crate) struct CallCx<W: World> {
    pub(crate) prepared: Arc<Prepared<W>>,
    diag: SharedDiag,
    deadline: Arc<std::sync::Mutex<Instant>>,
    call: &'static str,
    _permit: OwnedSemaphorePermit,
}

impl<W: World> CallCx<W> {
    fn limits(&self) -> Limits {
        self.prepared.recipe.limits
    }

    /// Runs one step (one call into the guest) under the deadline: the
    /// epoch callback stops wasm, the tokio timeout stops host calls. Each
    /// step gets the full deadline (a streamed blob is many steps).
    pub(crate) async fn step<R>(
        &self,
        fut: impl Future<Output = wasmtime::Result<R>>,
    ) -> Result<R> {
        let limit = self.limits().deadline;
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now() + limit;
        // Grace for the epoch to fire first (one tick late at most).
        let grace = limit + Duration::from_millis(250);
        match tokio::time::timeout(grace, fut).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(self.classify(e)),
            Err(_) => Err(Error::Timeout {
                plugin: self.prepared.name.clone(),
                call: self.call.into(),
                deadline_ms: limit.as_millis() as u64,
            }),
        }
    }

    /// Turns a wasmtime error into the most useful [`Error`].
    fn classify(&self, e: wasmtime::Error) -> Error {
        let plugin = self.prepared.name.clone();
        let call = self.call.to_string();
        let d = host::take(&self.diag);
        if d.oom {
            return Error::OutOfMemory {
                plugin,
                call,
                cap_mib: self.limits().memory_bytes >> 20,
            };
        }
        if let Some(Trap::Interrupt) = e.downcast_ref::<Trap>() {
            return Error::Timeout {
                plugin,
                call,
                deadline_ms: self.limits().deadline.as_millis() as u64,
            };
        }
        if let Some(target) = d.denied.first() {
            return host_denied(&plugin, target);
        }
        let mut detail = match e.downcast_ref::<Trap>() {
            Some(t) => t.to_string(),
            None => format!("{e:#}"),
        };
        // What the plugin printed (a panic message, or a cookie it was
        // handed) stays out of the error: say where it went instead.
        if d.output_bytes > 0 {
            detail.push_str(&format!(
                " (it printed {} bytes before that, logged at debug level only: see them with RUST_LOG={}=debug)",
                d.output_bytes,
                host::GUEST_TARGET
            ));
        }
        Error::Trap {
            plugin,
            call,
            detail,
        }
    }

    /// If the plugin was refused a host during this call, the error to
    /// report instead of the plugin's own (which only says "denied").
    pub(crate) fn denied(&self) -> Option<Error> {
        let d = host::take(&self.diag);
        d.denied
            .first()
            .map(|t| host_denied(&self.prepared.name, t))
    }
}

fn host_denied(plugin: &str, target: &str) -> Error {
    Error::HostDenied {
        plugin: plugin.to_string(),
        target: target.to_string(),
        allow: target.split(' ').next().unwrap_or(target).to_string(),
    }
}
