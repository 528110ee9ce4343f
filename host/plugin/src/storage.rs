//! Storage backend plugins (world `storage-backend`): a flat key -> blob
//! store. Blobs cross the boundary in [`CHUNK`]-sized pieces, one guest call
//! each (each with the full per-call deadline), so a 200 MB blob is never
//! one copy, in the host or in the plugin.

use std::path::Path;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use wasmtime::Store;
use wasmtime::component::InstancePre;

use crate::bindings::storage as b;
use crate::config::Grants;
use crate::error::{Error, Result, StorageErrorKind};
use crate::host::HostState;
use crate::runtime::{CallCx, Plugin, Runtime, World, private};

use b::exports::sesshost::plugin::storage::StorageError as WErr;

/// Bytes per `write`/`read` call into the plugin (1 MiB). Larger = fewer
/// calls (each ~µs plus the plugin's own work) but more memory per call in
/// both host and plugin.
pub const CHUNK: usize = 1 << 20;

/// Marker for the `storage-backend` world.
pub struct StorageWorld;

impl private::Sealed for StorageWorld {}

impl World for StorageWorld {
    const WORLD: &'static str = "storage-backend";
    type Pre = b::StorageBackendPre<HostState>;
    fn pre(pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
        b::StorageBackendPre::new(pre)
    }
}

/// A loaded storage backend.
pub type StorageBackend = Plugin<StorageWorld>;

impl Runtime {
    /// Loads a storage backend.
    pub fn load_storage(&self, path: &Path, grants: &Grants) -> Result<StorageBackend> {
        self.load(path, grants)
    }
}

/// Keys are `/`-separated, no empty, `.` or `..` segments, no leading `/`,
/// printable ASCII.
fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 1024
        && key.bytes().all(|c| c.is_ascii_graphic() && c != b'\\')
        && key
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    if ok {
        Ok(())
    } else {
        Err(Error::Storage {
            plugin: "host".into(),
            kind: StorageErrorKind::Invalid,
            detail: format!(
                "invalid storage key {key:?}: use /-separated ASCII segments such as chunks/ab/abcdef"
            ),
        })
    }
}

type Inst = b::StorageBackend;

impl Plugin<StorageWorld> {
    fn storage_err(cx: &CallCx<StorageWorld>, e: WErr) -> Error {
        if let Some(denied) = cx.denied() {
            return denied;
        }
        let (kind, detail) = match e {
            WErr::NotFound(d) => (StorageErrorKind::NotFound, d),
            WErr::Denied(d) => (StorageErrorKind::Denied, d),
            WErr::Unavailable(d) => (StorageErrorKind::Unavailable, d),
            WErr::Invalid(d) => (StorageErrorKind::Invalid, d),
            WErr::Other(d) => (StorageErrorKind::Other, d),
        };
        Error::Storage {
            plugin: cx.prepared.name.clone(),
            kind,
            detail: crate::error::untrusted(&detail),
        }
    }

    /// Begins a call: store, instance, `configure`.
    async fn open(
        &self,
        call: &'static str,
    ) -> Result<(Store<HostState>, CallCx<StorageWorld>, Inst)> {
        let (mut store, cx) = self.begin(call).await?;
        let prepared = cx.prepared.clone();
        let inst = cx.step(prepared.pre.instantiate_async(&mut store)).await?;
        let r = cx
            .step(
                inst.sesshost_plugin_storage()
                    .call_configure(&mut store, &prepared.config),
            )
            .await?;
        r.map_err(|e| Self::storage_err(&cx, e))?;
        Ok((store, cx, inst))
    }

    /// Stores `data` under `key` (in [`CHUNK`]s).
    pub async fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        self.put_reader(key, data.len() as u64, data).await
    }

    /// Stores exactly `size` bytes read from `reader` under `key`,
    /// streaming. Fails (and the backend discards the upload) if the reader
    /// ends early.
    pub async fn put_reader<R: AsyncRead + Unpin>(
        &self,
        key: &str,
        size: u64,
        mut reader: R,
    ) -> Result<()> {
        check_key(key)?;
        let (mut store, cx, inst) = self.open("put").await?;
        let api = inst.sesshost_plugin_storage();
        let w = cx
            .step(api.call_put(&mut store, key, size))
            .await?
            .map_err(|e| Self::storage_err(&cx, e))?;
        let res = async {
            let mut left = size;
            let mut buf = vec![0u8; CHUNK.min(size as usize).max(1)];
            while left > 0 {
                let want = buf.len().min(left as usize);
                let n = reader.read(&mut buf[..want]).await.map_err(|e| Error::Io {
                    what: format!("reading the data for {key}"),
                    source: e,
                })?;
                if n == 0 {
                    return Err(Error::Io {
                        what: format!("reading the data for {key}"),
                        source: std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("{left} of {size} bytes missing"),
                        ),
                    });
                }
                cx.step(api.writer().call_write(&mut store, w, &buf[..n]))
                    .await?
                    .map_err(|e| Self::storage_err(&cx, e))?;
                left -= n as u64;
            }
            cx.step(api.writer().call_finish(&mut store, w))
                .await?
                .map_err(|e| Self::storage_err(&cx, e))
        }
        .await;
        // Dropping the writer lets the backend discard an unfinished upload
        // (after a failure the instance may be unusable: best effort).
        let dropped = cx.step(w.resource_drop_async(&mut store)).await;
        res?;
        dropped
    }

    /// Fetches the blob under `key` into memory (use [`Self::get_to_writer`]
    /// for large blobs).
    pub async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.get_to_writer(key, &mut out).await?;
        Ok(out)
    }

    /// Streams the blob under `key` into `writer`; returns its size.
    pub async fn get_to_writer<W: AsyncWrite + Unpin>(
        &self,
        key: &str,
        mut writer: W,
    ) -> Result<u64> {
        check_key(key)?;
        let (mut store, cx, inst) = self.open("get").await?;
        let api = inst.sesshost_plugin_storage();
        let (r, size) = cx
            .step(api.call_get(&mut store, key))
            .await?
            .map_err(|e| Self::storage_err(&cx, e))?;
        let mut got: u64 = 0;
        loop {
            let chunk = cx
                .step(api.reader().call_read(&mut store, r, CHUNK as u32))
                .await?
                .map_err(|e| Self::storage_err(&cx, e))?;
            if chunk.is_empty() {
                break;
            }
            got += chunk.len() as u64;
            if chunk.len() > CHUNK || got > size {
                return Err(Error::Malformed {
                    plugin: cx.prepared.name.clone(),
                    call: "get".into(),
                    detail: format!("{key}: sent more than the {size} bytes it announced"),
                });
            }
            writer.write_all(&chunk).await.map_err(|e| Error::Io {
                what: format!("writing {key}"),
                source: e,
            })?;
        }
        if got != size {
            return Err(Error::Malformed {
                plugin: cx.prepared.name.clone(),
                call: "get".into(),
                detail: format!("{key}: announced {size} bytes but sent {got}"),
            });
        }
        writer.flush().await.map_err(|e| Error::Io {
            what: format!("writing {key}"),
            source: e,
        })?;
        cx.step(r.resource_drop_async(&mut store)).await?;
        Ok(size)
    }

    /// Whether `key` exists.
    pub async fn has(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        let (mut store, cx, inst) = self.open("has").await?;
        cx.step(inst.sesshost_plugin_storage().call_has(&mut store, key))
            .await?
            .map_err(|e| Self::storage_err(&cx, e))
    }

    /// Deletes `key` (deleting a missing key succeeds).
    pub async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        let (mut store, cx, inst) = self.open("delete").await?;
        cx.step(inst.sesshost_plugin_storage().call_delete(&mut store, key))
            .await?
            .map_err(|e| Self::storage_err(&cx, e))
    }

    /// All keys starting with `prefix` (may be empty), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let (mut store, cx, inst) = self.open("list").await?;
        let mut keys = cx
            .step(inst.sesshost_plugin_storage().call_list(&mut store, prefix))
            .await?
            .map_err(|e| Self::storage_err(&cx, e))?;
        keys.sort();
        Ok(keys)
    }
}
