//! Push and pull: a session through a storage-backend plugin into a
//! repository encrypted with the repository key (from a passphrase or a key
//! file, never the home's host key), sending only chunks the backend lacks.

use std::path::PathBuf;
use std::sync::Arc;

use sessbundle::SessionState;
use sesshost_plugin::Grants;
use sesshost_store::backend::counting::{CallCounts, Counting};
use sesshost_store::repo::{RepoUnlock, open_repo_key};
use sesshost_store::{ImportMode, SaveReport, Store, now_ms};

use crate::engine::{Engine, blocking};
use crate::error::{Error, Result};

/// Which backend plugin, with what grants, and the repository key.
pub struct Remote {
    pub plugin: PathBuf,
    pub grants: Grants,
    pub unlock: sessbundle::Unlock,
}

pub struct PushRequest {
    pub name: String,
    pub remote: Remote,
}

pub struct PullRequest {
    pub name: String,
    /// Store it locally under another name.
    pub as_name: Option<String>,
    /// Replace a local session of that name.
    pub force: bool,
    pub remote: Remote,
}

pub struct PullReport {
    pub name: String,
    pub stored: SaveReport,
}

impl Engine {
    /// A store over the remote repository (`create`: make its `config` if
    /// the backend holds none).
    async fn remote_store(&self, r: Remote, create: bool) -> Result<Arc<Store>> {
        Ok(self.remote_store_counted(r, create).await?.0)
    }

    /// [`Engine::remote_store`], with the count of calls made to its
    /// backend (`sesshost_store::backend::counting`).
    async fn remote_store_counted(
        &self,
        r: Remote,
        create: bool,
    ) -> Result<(Arc<Store>, Arc<CallCounts>)> {
        let backend = self.plugins()?.load_storage(&r.plugin, &r.grants)?;
        let handle = tokio::runtime::Handle::current();
        blocking(move || {
            let pb = sesshost_plugin::PluginBackend::new(backend, handle)?;
            let unlock = match &r.unlock {
                sessbundle::Unlock::Passphrase(p) => RepoUnlock::Passphrase(p.as_bytes()),
                sessbundle::Unlock::Key(k) => RepoUnlock::KeyFile(k.as_bytes()),
                sessbundle::Unlock::Identity(_) => {
                    return Err(Error::Usage(
                        "a repository is opened with --passphrase-file, --passphrase-env or --key-file, not --identity".into(),
                    ));
                }
            };
            let pb = Counting::new(pb);
            let counts = pb.counts();
            let key = open_repo_key(&pb, unlock, create)?;
            Ok((Arc::new(Store::new(Box::new(pb), &key)), counts))
        })
        .await
    }

    /// Store local session `req.name` in the remote repository.
    pub async fn push(&self, req: PushRequest) -> Result<SaveReport> {
        let name = req.name.clone();
        let state = self.with_store(move |s| Ok(s.load(&name)?)).await?;
        let (store, calls) = self.remote_store_counted(req.remote, true).await?;
        RemoteTier { store, calls }.put(&req.name, state).await
    }

    /// Fetch session `req.name` from the remote repository into the home.
    pub async fn pull(&self, req: PullRequest) -> Result<PullReport> {
        let remote = self.remote_store(req.remote, false).await?;
        let name = req.name.clone();
        let state = blocking(move || Ok(remote.load(&name)?)).await?;
        let local_name = req.as_name.unwrap_or(req.name);
        let n = local_name.clone();
        let force = req.force;
        let stored = self
            .with_store(move |s| Ok(s.import(&n, &state, import_mode(force), now_ms())?))
            .await?;
        Ok(PullReport {
            name: local_name,
            stored,
        })
    }
}

/// A remote repository held open for many calls: the service's durable
/// tier (`host run --plugin s3.wasm`). Cheap to clone; every call runs on
/// the blocking pool. Sessions are stored under the same names as locally.
#[derive(Clone)]
pub struct RemoteTier {
    store: Arc<Store>,
    calls: Arc<CallCounts>,
}

impl Engine {
    /// Open (or, when the backend holds none, create) the repository behind
    /// `r` once, for [`RemoteTier`] calls.
    pub async fn remote_tier(&self, r: Remote) -> Result<RemoteTier> {
        let (store, calls) = self.remote_store_counted(r, true).await?;
        Ok(RemoteTier { store, calls })
    }

    /// The raw backend of a storage plugin (the cluster's bucket: records
    /// beside the repository, written with conditional writes).
    pub async fn bucket(
        &self,
        plugin: &std::path::Path,
        grants: &Grants,
    ) -> Result<Arc<dyn sesshost_store::Backend>> {
        let backend = self.plugins()?.load_storage(plugin, grants)?;
        let handle = tokio::runtime::Handle::current();
        let pb =
            blocking(move || Ok(sesshost_plugin::PluginBackend::new(backend, handle)?)).await?;
        Ok(Arc::new(pb))
    }

    /// Store `state` locally as session `name`, replacing the one there
    /// (new snapshot first; what a cluster host does when the session's
    /// committed head is newer than its local copy).
    pub async fn replace_state(&self, name: &str, state: SessionState) -> Result<SaveReport> {
        let name = name.to_string();
        self.with_store(move |s| Ok(s.import(&name, &state, ImportMode::Replace, now_ms())?))
            .await
    }

    /// Store `state` locally as a new session `name` (what the durable tier
    /// fetched on a miss); refuses if `name` exists.
    pub async fn adopt_state(&self, name: &str, state: SessionState) -> Result<SaveReport> {
        let name = name.to_string();
        self.with_store(move |s| Ok(s.import(&name, &state, ImportMode::New, now_ms())?))
            .await
    }
}

impl RemoteTier {
    /// Write `state` as the newest snapshot of `name` (only chunks the
    /// backend lacks are sent).
    pub async fn put(&self, name: &str, state: SessionState) -> Result<SaveReport> {
        let (remote, name) = (self.store.clone(), name.to_string());
        blocking(move || {
            let now = now_ms();
            Ok(if remote.exists(&name)? {
                remote.save(&name, &state, now)?
            } else {
                remote.import(&name, &state, ImportMode::New, now)?
            })
        })
        .await
    }

    /// The newest state of `name`, or `None` when the repository lacks it.
    pub async fn get(&self, name: &str) -> Result<Option<SessionState>> {
        let (remote, name) = (self.store.clone(), name.to_string());
        blocking(move || {
            if !remote.exists(&name)? {
                return Ok(None);
            }
            Ok(Some(remote.load(&name)?))
        })
        .await
    }

    /// Remove `name` and its snapshots (missing is not an error).
    pub async fn remove(&self, name: &str) -> Result<()> {
        let (remote, name) = (self.store.clone(), name.to_string());
        blocking(move || {
            if remote.exists(&name)? {
                remote.delete(&name)?;
            }
            Ok(())
        })
        .await
    }

    /// Write `state` as snapshot `seq` of `name`, create-only (a cluster
    /// commit, before the head names it). `None`: `seq` is taken.
    pub async fn put_exact(
        &self,
        name: &str,
        state: SessionState,
        seq: u64,
    ) -> Result<Option<SaveReport>> {
        let (remote, name) = (self.store.clone(), name.to_string());
        blocking(move || Ok(remote.save_exact(&name, &state, now_ms(), seq)?)).await
    }

    /// Snapshot `seq` of `name`, as it was committed.
    pub async fn get_exact(&self, name: &str, seq: u64) -> Result<SessionState> {
        let (remote, name) = (self.store.clone(), name.to_string());
        blocking(move || Ok(remote.load_exact(&name, seq)?)).await
    }

    /// Run `f` on the repository's backend, on the blocking pool (the
    /// cluster's claims and heads live beside the repository).
    pub async fn with_backend<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn sesshost_store::Backend) -> T + Send + 'static,
    ) -> Result<T> {
        let remote = self.store.clone();
        blocking(move || Ok(f(remote.backend()))).await
    }

    /// Collect the repository's garbage as one of several writers
    /// ([`Store::gc_while`]: a chunk is moved to the trash before it is
    /// deleted, and writers re-check theirs). `go_on` is asked before every
    /// chunk moved or deleted; the cluster passes "this host still holds
    /// the GC lease and serves".
    pub async fn gc_while(
        &self,
        grace: std::time::Duration,
        go_on: impl Fn() -> bool + Send + 'static,
    ) -> Result<sesshost_store::GcReport> {
        let remote = self.store.clone();
        blocking(move || Ok(remote.gc_while(grace, &go_on)?)).await
    }

    /// Calls made to the repository's backend so far, by kind (over a
    /// storage plugin, one S3 request each; `list` pages).
    pub fn calls(&self) -> Arc<CallCounts> {
        self.calls.clone()
    }

    /// Names of every session in the repository.
    pub async fn names(&self) -> Result<Vec<String>> {
        let remote = self.store.clone();
        blocking(move || Ok(remote.list(now_ms())?.into_iter().map(|i| i.name).collect())).await
    }
}

/// `--force` → replace (new snapshot first, old ones removed after).
pub(crate) fn import_mode(force: bool) -> ImportMode {
    if force {
        ImportMode::Replace
    } else {
        ImportMode::New
    }
}
