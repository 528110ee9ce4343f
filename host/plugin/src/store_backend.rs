//! [`PluginBackend`]: a storage-backend plugin as `sesshost_store`'s
//! synchronous [`Backend`], so a `sesshost_store::Store` can keep its
//! objects in any plugin (S3, a granted directory, ...).
//!
//! The store is synchronous; plugin calls are async. Each [`Backend`] call
//! blocks its thread on the plugin call, driven by the tokio runtime whose
//! [`Handle`] was given to [`PluginBackend::new`] (a multi-thread runtime,
//! whose workers drive the timers and I/O the call needs).
//!
//! # Where to call it from
//!
//! From a thread that is not running async tasks: a plain thread, or
//! `tokio::task::spawn_blocking` (what an async caller should do: Store
//! methods do many backend calls and much CPU work). Elsewhere it still
//! works and never panics with "Cannot start a runtime from within a
//! runtime":
//! - on a multi-thread runtime's worker thread (inside an `async fn`), it
//!   hands the worker's other tasks off with `tokio::task::block_in_place`
//!   first: correct, but it ties up a worker for the whole call;
//! - inside a current-thread runtime (where `block_in_place` is not
//!   allowed), it runs the call on a short-lived helper thread and waits,
//!   blocking that runtime's thread meanwhile.

use std::sync::Arc;

use sesshost_store::{
    Backend, BackendError, BackendErrorKind, Capability, Etag, ListPage, ObjectInfo, Precondition,
};
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::error::{Error, Result, StorageErrorKind};
use crate::storage::StorageBackend;

/// A loaded storage-backend plugin behind `sesshost_store`'s synchronous
/// [`Backend`] trait. Cheap to share across threads (`Send + Sync`); see
/// the module docs for which threads may call it.
pub struct PluginBackend {
    plugin: Arc<StorageBackend>,
    handle: Handle,
}

impl std::fmt::Debug for PluginBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginBackend")
            .field("plugin", &self.plugin.path())
            .finish_non_exhaustive()
    }
}

impl PluginBackend {
    /// Wraps `plugin` (a `StorageBackend` or an `Arc` of one); its calls
    /// run on the runtime of `handle`, which must be a multi-thread runtime
    /// (`tokio::runtime::Builder::new_multi_thread().enable_all()`): a
    /// current-thread runtime drives timers and I/O only inside its own
    /// `block_on`, which the blocked caller may be holding up. Refused
    /// with [`Error::Config`] otherwise.
    pub fn new(plugin: impl Into<Arc<StorageBackend>>, handle: Handle) -> Result<PluginBackend> {
        let plugin = plugin.into();
        if handle.runtime_flavor() != RuntimeFlavor::MultiThread {
            return Err(Error::Config(format!(
                "the storage plugin {} needs a multi-thread tokio runtime to run on (a current-thread runtime cannot drive a plugin call while a Store method blocks its thread); pass the Handle of a runtime built with tokio::runtime::Builder::new_multi_thread().enable_all()",
                plugin.path().display()
            )));
        }
        Ok(PluginBackend { plugin, handle })
    }

    /// The plugin behind this backend.
    pub fn plugin(&self) -> &Arc<StorageBackend> {
        &self.plugin
    }

    /// Runs one plugin call to completion from synchronous code, whatever
    /// thread this is (see the module docs).
    fn run<T: Send>(&self, fut: impl Future<Output = Result<T>> + Send) -> Result<T> {
        match Handle::try_current().map(|h| h.runtime_flavor()) {
            // A plain thread (no tokio context): `block_on` is allowed.
            Err(_) => self.handle.block_on(fut),
            // A worker (or `block_on`) of a multi-thread runtime, or one of
            // its spawn_blocking threads: `block_in_place` moves the
            // worker's tasks elsewhere (and is a no-op on a blocking
            // thread), after which `block_on` is allowed.
            Ok(RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.handle.block_on(fut))
            }
            // Inside a current-thread runtime: this thread may be the one
            // driving it, where neither `block_on` nor `block_in_place` is
            // allowed. A helper thread has no context; `self.handle` is a
            // multi-thread runtime (checked in `new`), so it needs nothing
            // from the blocked thread.
            Ok(_) => std::thread::scope(|s| {
                std::thread::Builder::new()
                    .name("sesshost-plugin-store".into())
                    .spawn_scoped(s, || self.handle.block_on(fut))
                    .map_err(|e| Error::Io {
                        what: format!(
                            "cannot start a thread for a call to the storage plugin {}",
                            self.plugin.path().display()
                        ),
                        source: e,
                    })?
                    .join()
                    .unwrap_or_else(|_| {
                        Err(Error::Engine(format!(
                            "a call to the storage plugin {} panicked",
                            self.plugin.path().display()
                        )))
                    })
            }),
        }
    }
}

/// The store's view of a plugin error: the kind decides retry/fix advice,
/// the detail is the plugin error's full message (it names the plugin and
/// what to do; never a secret or the plugin's output).
fn backend_err_of(e: Error, write: bool) -> BackendError {
    let kind = match e.storage_kind() {
        Some(StorageErrorKind::Denied) => BackendErrorKind::Denied,
        Some(StorageErrorKind::Unavailable) => BackendErrorKind::Unavailable,
        Some(StorageErrorKind::Invalid) => BackendErrorKind::InvalidKey,
        Some(StorageErrorKind::PreconditionFailed) => BackendErrorKind::PreconditionFailed,
        Some(StorageErrorKind::Conflict) => BackendErrorKind::Conflict,
        Some(StorageErrorKind::UnknownOutcome) => BackendErrorKind::UnknownOutcome,
        Some(StorageErrorKind::Unsupported) => BackendErrorKind::Unsupported,
        // A plugin call that ran out of time may have sent its request:
        // for a write that is "outcome unknown", never "not applied".
        _ if matches!(e, Error::Timeout { .. }) && write => BackendErrorKind::UnknownOutcome,
        _ if matches!(e, Error::Timeout { .. }) => BackendErrorKind::Unavailable,
        _ => BackendErrorKind::Other,
    };
    BackendError::new(kind, e.to_string())
}

fn backend_err(e: Error) -> BackendError {
    backend_err_of(e, false)
}

fn write_err(e: Error) -> BackendError {
    backend_err_of(e, true)
}

impl Backend for PluginBackend {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BackendError> {
        self.run(self.plugin.put(key, bytes)).map_err(write_err)
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        match self.run(self.plugin.get(key)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.storage_kind() == Some(StorageErrorKind::NotFound) => Ok(None),
            Err(e) => Err(backend_err(e)),
        }
    }

    fn has(&self, key: &str) -> Result<bool, BackendError> {
        self.run(self.plugin.has(key)).map_err(backend_err)
    }

    fn delete(&self, key: &str) -> Result<(), BackendError> {
        match self.run(self.plugin.delete(key)) {
            Err(e) if e.storage_kind() != Some(StorageErrorKind::NotFound) => Err(backend_err(e)),
            _ => Ok(()),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        self.run(self.plugin.list(prefix)).map_err(backend_err)
    }

    fn put_if(&self, key: &str, bytes: &[u8], pre: Precondition) -> Result<Etag, BackendError> {
        match self.run(self.plugin.put_if(key, bytes, &pre)) {
            Ok(Some(etag)) => Ok(etag),
            // A 0.1.0 plugin (only unconditional writes get here): the
            // ETag the store computes for bytes it has no ETag for.
            Ok(None) => Ok(Etag::of_bytes(bytes)),
            Err(e) => Err(write_err(e)),
        }
    }

    fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BackendError> {
        if self.plugin.contract_version() == "0.1.0" {
            return Ok(self.get(key)?.map(|b| ObjectInfo {
                size: b.len() as u64,
                etag: Etag::of_bytes(&b),
            }));
        }
        self.run(self.plugin.head(key)).map_err(backend_err)
    }

    fn get_with_etag(&self, key: &str) -> Result<Option<(Vec<u8>, Etag)>, BackendError> {
        match self.run(self.plugin.get_with_etag(key)) {
            Ok((b, Some(etag))) => Ok(Some((b, etag))),
            Ok((b, None)) => {
                let etag = Etag::of_bytes(&b);
                Ok(Some((b, etag)))
            }
            Err(e) if e.storage_kind() == Some(StorageErrorKind::NotFound) => Ok(None),
            Err(e) => Err(backend_err(e)),
        }
    }

    fn list_info(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: u32,
    ) -> Result<ListPage, BackendError> {
        if self.plugin.contract_version() == "0.1.0" {
            // The trait's fallback: list, then one read per key.
            let mut keys = self.list(prefix)?;
            keys.retain(|k| start_after.is_none_or(|s| k.as_str() > s));
            let mut page = ListPage::default();
            for key in keys {
                if page.entries.len() >= max.max(1) as usize {
                    page.next_start_after = page.entries.last().map(|e| e.key.clone());
                    break;
                }
                if let Some(info) = self.head(&key)? {
                    page.entries.push(sesshost_store::ListEntry {
                        key,
                        size: info.size,
                        etag: Some(info.etag),
                    });
                }
            }
            return Ok(page);
        }
        self.run(self.plugin.list_info(prefix, start_after, max))
            .map_err(backend_err)
    }

    fn capabilities(&self) -> Vec<Capability> {
        // A plugin that cannot even say is treated as promising nothing.
        self.run(self.plugin.capabilities()).unwrap_or_default()
    }
}
