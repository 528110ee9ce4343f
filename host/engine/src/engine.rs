//! [`Engine`]: one home (its store and host key), the plugin runtime made on
//! first use, and the bridge from async callers to the synchronous store.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use sesshost_plugin::{Runtime, RuntimeConfig};
use sesshost_store::{Home, Store};

use crate::error::{Error, Result};

/// Whether a command may create the home directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeMode {
    /// Make the home (and its host key) if it does not exist: commands that
    /// write sessions.
    Create,
    /// The home must already exist: read-only commands say so instead of
    /// making an empty one.
    Existing,
}

/// The session engine of one home. Cheap to share (`Arc` inside); every
/// method is async and safe to call from many tasks at once: store work
/// runs on tokio's blocking pool, never on an executor thread.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    home: Home,
    store: Arc<Store>,
    plugins: OnceLock<Runtime>,
}

impl Engine {
    /// Open the home at `dir`. With [`HomeMode::Existing`] a missing home is
    /// [`Error::NoHome`] (nothing is created).
    pub fn open(dir: &Path, mode: HomeMode) -> Result<Engine> {
        if mode == HomeMode::Existing && !dir.join("store").exists() {
            return Err(Error::NoHome(dir.to_path_buf()));
        }
        let home = Home::new(dir);
        let store = home.store()?;
        // Profiles of hosts that died (kill -9, or a signal before their
        // handlers were up) hold logged-in sessions: remove them now.
        sweep_profiles(&dir.join("run"));
        Ok(Engine {
            inner: Arc::new(Inner {
                home,
                store: Arc::new(store),
                plugins: OnceLock::new(),
            }),
        })
    }

    pub fn home(&self) -> &Home {
        &self.inner.home
    }

    pub fn home_dir(&self) -> &Path {
        self.inner.home.dir()
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    /// Where Chromium profiles of this home live while a session is open
    /// (`HOME/run/`, mode 0700; stale ones are swept at start).
    pub fn run_dir(&self) -> PathBuf {
        self.home_dir().join("run")
    }

    /// The plugin runtime, made on first use (compiled components are
    /// cached in `HOME/plugin-cache`).
    pub fn plugins(&self) -> Result<&Runtime> {
        if let Some(rt) = self.inner.plugins.get() {
            return Ok(rt);
        }
        let rt = plugin_runtime(self.home_dir())?;
        Ok(self.inner.plugins.get_or_init(|| rt))
    }

    /// Run `f` with the store on the blocking pool.
    pub(crate) async fn with_store<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
    {
        let store = self.inner.store.clone();
        blocking(move || f(&store)).await
    }
}

/// Delete the Chromium profiles under `run` whose owner is gone; a failure
/// is logged, never fatal (the next start tries again).
fn sweep_profiles(run: &Path) {
    match sesshost_browser::sweep_stale_profiles(run) {
        Ok(r) => {
            for p in &r.removed {
                tracing::info!("removed the stale browser profile {}", p.display());
            }
            for (p, e) in &r.failed {
                tracing::warn!(
                    "cannot remove the stale browser profile {}: {e}",
                    p.display()
                );
            }
        }
        Err(e) => tracing::warn!("cannot sweep browser profiles in {}: {e}", run.display()),
    }
}

/// A plugin runtime caching compiled components under `home/plugin-cache`.
pub fn plugin_runtime(home: &Path) -> Result<Runtime> {
    Ok(Runtime::new(RuntimeConfig {
        cache_dir: Some(home.join("plugin-cache")),
        ..Default::default()
    })?)
}

/// Run blocking work (store, file I/O, crypto) off the async executor.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}
