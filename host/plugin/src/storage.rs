//! Storage backend plugins (world `storage-backend`, contract 0.1.0 or
//! 0.2.0): a flat key -> blob store. Blobs cross the boundary in
//! [`CHUNK`]-sized pieces, one guest call each (each with the full per-call
//! deadline), so a 200 MB blob is never one copy, in the host or in the
//! plugin.
//!
//! Contract 0.2.0 adds conditional writes ([`Precondition`]), ETags,
//! `head`, paginated `list-info` and `capabilities`. A 0.1.0 plugin keeps
//! working for the five basic calls: it declares no capability, a
//! conditional write on it is [`StorageErrorKind::Unsupported`], and ETags
//! it cannot give are `None`.

use std::path::Path;

use sesshost_store::{Capability, Etag, ListEntry, ListPage, ObjectInfo, Precondition};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use wasmtime::Store;
use wasmtime::component::{InstancePre, ResourceAny};

use crate::bindings::{StoragePre, storage as b1, storage2 as b2};
use crate::config::Grants;
use crate::error::{Error, Result, StorageErrorKind};
use crate::host::HostState;
use crate::runtime::{CallCx, Plugin, Runtime, World, private};

use b1::exports::sesshost::plugin::storage::StorageError as WErr1;
use b2::exports::sesshost::plugin::storage as w2;
use w2::StorageError as WErr2;

/// Bytes per `write`/`read` call into the plugin (1 MiB). Larger = fewer
/// calls (each ~µs plus the plugin's own work) but more memory per call in
/// both host and plugin.
pub const CHUNK: usize = 1 << 20;

/// Marker for the `storage-backend` world.
pub struct StorageWorld;

impl private::Sealed for StorageWorld {}

impl World for StorageWorld {
    const WORLD: &'static str = "storage-backend";
    type Pre = StoragePre;
    fn pre(pre: InstancePre<HostState>, version: &str) -> wasmtime::Result<Self::Pre> {
        if version == "0.1.0" {
            Ok(StoragePre::V1(b1::StorageBackendPre::new(pre)?))
        } else {
            Ok(StoragePre::V2(b2::StorageBackendPre::new(pre)?))
        }
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
        Err(host_err(
            StorageErrorKind::Invalid,
            format!(
                "invalid storage key {key:?}: use /-separated ASCII segments such as chunks/ab/abcdef"
            ),
        ))
    }
}

fn host_err(kind: StorageErrorKind, detail: String) -> Error {
    Error::Storage {
        plugin: "host".into(),
        kind,
        detail,
    }
}

/// One instance of either version.
enum Inst {
    V1(b1::StorageBackend),
    V2(b2::StorageBackend),
}

/// A plugin error of either version, before classification.
enum WErr {
    V1(WErr1),
    V2(WErr2),
}

impl From<WErr1> for WErr {
    fn from(e: WErr1) -> Self {
        WErr::V1(e)
    }
}

impl From<WErr2> for WErr {
    fn from(e: WErr2) -> Self {
        WErr::V2(e)
    }
}

fn precondition_to_wit(pre: &Precondition) -> w2::Precondition {
    match pre {
        Precondition::None => w2::Precondition::None,
        Precondition::IfAbsent => w2::Precondition::IfAbsent,
        Precondition::IfMatch(e) => w2::Precondition::IfMatch(e.0.clone()),
    }
}

impl Plugin<StorageWorld> {
    fn storage_err(cx: &CallCx<StorageWorld>, e: impl Into<WErr>) -> Error {
        if let Some(denied) = cx.denied() {
            return denied;
        }
        use StorageErrorKind as K;
        let (kind, detail) = match e.into() {
            WErr::V1(e) => match e {
                WErr1::NotFound(d) => (K::NotFound, d),
                WErr1::Denied(d) => (K::Denied, d),
                WErr1::Unavailable(d) => (K::Unavailable, d),
                WErr1::Invalid(d) => (K::Invalid, d),
                WErr1::Other(d) => (K::Other, d),
            },
            WErr::V2(e) => match e {
                WErr2::NotFound(d) => (K::NotFound, d),
                WErr2::Denied(d) => (K::Denied, d),
                WErr2::Unavailable(d) => (K::Unavailable, d),
                WErr2::Invalid(d) => (K::Invalid, d),
                WErr2::Other(d) => (K::Other, d),
                WErr2::PreconditionFailed(d) => (K::PreconditionFailed, d),
                WErr2::Conflict(d) => (K::Conflict, d),
                WErr2::UnknownOutcome(d) => (K::UnknownOutcome, d),
            },
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
        let inst = match &prepared.pre {
            StoragePre::V1(pre) => {
                let inst = cx.step(pre.instantiate_async(&mut store)).await?;
                cx.step(
                    inst.sesshost_plugin_storage()
                        .call_configure(&mut store, &prepared.config),
                )
                .await?
                .map_err(|e| Self::storage_err(&cx, e))?;
                Inst::V1(inst)
            }
            StoragePre::V2(pre) => {
                let inst = cx.step(pre.instantiate_async(&mut store)).await?;
                cx.step(
                    inst.sesshost_plugin_storage()
                        .call_configure(&mut store, &prepared.config),
                )
                .await?
                .map_err(|e| Self::storage_err(&cx, e))?;
                Inst::V2(inst)
            }
        };
        Ok((store, cx, inst))
    }

    /// The contract version of the plugin as loaded now (`0.1.0` or
    /// `0.2.0`).
    pub fn contract_version(&self) -> &'static str {
        match self.prepared().pre {
            StoragePre::V1(_) => "0.1.0",
            StoragePre::V2(_) => "0.2.0",
        }
    }

    /// What the plugin declares it guarantees (a 0.1.0 plugin: nothing).
    pub async fn capabilities(&self) -> Result<Vec<Capability>> {
        let (mut store, cx, inst) = self.open("capabilities").await?;
        let Inst::V2(inst) = inst else {
            return Ok(Vec::new());
        };
        let caps = cx
            .step(inst.sesshost_plugin_storage().call_capabilities(&mut store))
            .await?;
        Ok(caps
            .into_iter()
            .map(|c| match c {
                w2::Capability::AtomicConditionalWrites => Capability::AtomicConditionalWrites,
                w2::Capability::ListEtags => Capability::ListEtags,
            })
            .collect())
    }

    /// Stores `data` under `key` (in [`CHUNK`]s).
    pub async fn put(&self, key: &str, data: &[u8]) -> Result<()> {
        self.put_reader(key, data.len() as u64, data).await
    }

    /// Stores `data` under `key` if `pre` holds; returns the new ETag
    /// (`None` only from a 0.1.0 plugin, which refuses any precondition
    /// but [`Precondition::None`] with [`StorageErrorKind::Unsupported`]).
    pub async fn put_if(&self, key: &str, data: &[u8], pre: &Precondition) -> Result<Option<Etag>> {
        self.put_reader_if(key, data.len() as u64, data, pre).await
    }

    /// Stores exactly `size` bytes read from `reader` under `key`,
    /// streaming. Fails (and the backend discards the upload) if the reader
    /// ends early.
    pub async fn put_reader<R: AsyncRead + Unpin>(
        &self,
        key: &str,
        size: u64,
        reader: R,
    ) -> Result<()> {
        self.put_reader_if(key, size, reader, &Precondition::None)
            .await
            .map(|_| ())
    }

    /// [`Self::put_reader`] under a precondition (see [`Self::put_if`]).
    pub async fn put_reader_if<R: AsyncRead + Unpin>(
        &self,
        key: &str,
        size: u64,
        mut reader: R,
        pre: &Precondition,
    ) -> Result<Option<Etag>> {
        check_key(key)?;
        let (mut store, cx, inst) = self.open("put").await?;
        let w: ResourceAny = match &inst {
            Inst::V1(i) => {
                if *pre != Precondition::None {
                    return Err(Error::Storage {
                        plugin: cx.prepared.name.clone(),
                        kind: StorageErrorKind::Unsupported,
                        detail: "a conditional write needs a storage plugin built against sesshost:plugin/storage@0.2.0; this one is 0.1.0".into(),
                    });
                }
                cx.step(i.sesshost_plugin_storage().call_put(&mut store, key, size))
                    .await?
                    .map_err(|e| Self::storage_err(&cx, e))?
            }
            Inst::V2(i) => cx
                .step(i.sesshost_plugin_storage().call_put_if(
                    &mut store,
                    key,
                    size,
                    &precondition_to_wit(pre),
                ))
                .await?
                .map_err(|e| Self::storage_err(&cx, e))?,
        };
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
                match &inst {
                    Inst::V1(i) => cx
                        .step(i.sesshost_plugin_storage().writer().call_write(
                            &mut store,
                            w,
                            &buf[..n],
                        ))
                        .await?
                        .map_err(|e| Self::storage_err(&cx, e))?,
                    Inst::V2(i) => cx
                        .step(i.sesshost_plugin_storage().writer().call_write(
                            &mut store,
                            w,
                            &buf[..n],
                        ))
                        .await?
                        .map_err(|e| Self::storage_err(&cx, e))?,
                }
                left -= n as u64;
            }
            match &inst {
                Inst::V1(i) => cx
                    .step(
                        i.sesshost_plugin_storage()
                            .writer()
                            .call_finish(&mut store, w),
                    )
                    .await?
                    .map(|()| None)
                    .map_err(|e| Self::storage_err(&cx, e)),
                Inst::V2(i) => cx
                    .step(
                        i.sesshost_plugin_storage()
                            .writer()
                            .call_finish(&mut store, w),
                    )
                    .await?
                    .map(|etag| Some(Etag(etag)))
                    .map_err(|e| Self::storage_err(&cx, e)),
            }
        }
        .await;
        // Dropping the writer lets the backend discard an unfinished upload
        // (after a failure the instance may be unusable: best effort).
        let dropped = cx.step(w.resource_drop_async(&mut store)).await;
        let etag = res?;
        dropped?;
        Ok(etag)
    }

    /// Fetches the blob under `key` into memory (use [`Self::get_to_writer`]
    /// for large blobs).
    pub async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.get_to_writer(key, &mut out).await?;
        Ok(out)
    }

    /// The blob under `key` and its ETag (`None` from a 0.1.0 plugin).
    pub async fn get_with_etag(&self, key: &str) -> Result<(Vec<u8>, Option<Etag>)> {
        let mut out = Vec::new();
        let (_, etag) = self.get_to_writer_with_etag(key, &mut out).await?;
        Ok((out, etag))
    }

    /// Streams the blob under `key` into `writer`; returns its size.
    pub async fn get_to_writer<W: AsyncWrite + Unpin>(&self, key: &str, writer: W) -> Result<u64> {
        self.get_to_writer_with_etag(key, writer)
            .await
            .map(|(size, _)| size)
    }

    /// [`Self::get_to_writer`], also returning the ETag (`None` from a
    /// 0.1.0 plugin).
    pub async fn get_to_writer_with_etag<W: AsyncWrite + Unpin>(
        &self,
        key: &str,
        mut writer: W,
    ) -> Result<(u64, Option<Etag>)> {
        check_key(key)?;
        let (mut store, cx, inst) = self.open("get").await?;
        let (r, size, etag) = match &inst {
            Inst::V1(i) => {
                let (r, size) = cx
                    .step(i.sesshost_plugin_storage().call_get(&mut store, key))
                    .await?
                    .map_err(|e| Self::storage_err(&cx, e))?;
                (r, size, None)
            }
            Inst::V2(i) => {
                let (r, info) = cx
                    .step(i.sesshost_plugin_storage().call_get(&mut store, key))
                    .await?
                    .map_err(|e| Self::storage_err(&cx, e))?;
                (r, info.size, Some(Etag(info.etag)))
            }
        };
        let mut got: u64 = 0;
        loop {
            let chunk = match &inst {
                Inst::V1(i) => cx
                    .step(i.sesshost_plugin_storage().reader().call_read(
                        &mut store,
                        r,
                        CHUNK as u32,
                    ))
                    .await?
                    .map_err(|e| Self::storage_err(&cx, e))?,
                Inst::V2(i) => cx
                    .step(i.sesshost_plugin_storage().reader().call_read(
                        &mut store,
                        r,
                        CHUNK as u32,
                    ))
                    .await?
                    .map_err(|e| Self::storage_err(&cx, e))?,
            };
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
        Ok((size, etag))
    }

    /// Size and ETag of `key`, `None` if it does not exist. A 0.1.0 plugin
    /// has no `head`: [`StorageErrorKind::Unsupported`].
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        check_key(key)?;
        let (mut store, cx, inst) = self.open("head").await?;
        let Inst::V2(i) = inst else {
            return Err(Error::Storage {
                plugin: cx.prepared.name.clone(),
                kind: StorageErrorKind::Unsupported,
                detail: "head needs a storage plugin built against sesshost:plugin/storage@0.2.0"
                    .into(),
            });
        };
        let info = cx
            .step(i.sesshost_plugin_storage().call_head(&mut store, key))
            .await?
            .map_err(|e| Self::storage_err(&cx, e))?;
        Ok(info.map(|i| ObjectInfo {
            size: i.size,
            etag: Etag(i.etag),
        }))
    }

    /// Whether `key` exists.
    pub async fn has(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        let (mut store, cx, inst) = self.open("has").await?;
        match inst {
            Inst::V1(i) => cx
                .step(i.sesshost_plugin_storage().call_has(&mut store, key))
                .await?
                .map_err(|e| Self::storage_err(&cx, e)),
            Inst::V2(i) => cx
                .step(i.sesshost_plugin_storage().call_has(&mut store, key))
                .await?
                .map_err(|e| Self::storage_err(&cx, e)),
        }
    }

    /// Deletes `key` (deleting a missing key succeeds).
    pub async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        let (mut store, cx, inst) = self.open("delete").await?;
        match inst {
            Inst::V1(i) => cx
                .step(i.sesshost_plugin_storage().call_delete(&mut store, key))
                .await?
                .map_err(|e| Self::storage_err(&cx, e)),
            Inst::V2(i) => cx
                .step(i.sesshost_plugin_storage().call_delete(&mut store, key))
                .await?
                .map_err(|e| Self::storage_err(&cx, e)),
        }
    }

    /// All keys starting with `prefix` (may be empty), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let (mut store, cx, inst) = self.open("list").await?;
        let mut keys = match inst {
            Inst::V1(i) => cx
                .step(i.sesshost_plugin_storage().call_list(&mut store, prefix))
                .await?
                .map_err(|e| Self::storage_err(&cx, e))?,
            Inst::V2(i) => cx
                .step(i.sesshost_plugin_storage().call_list(&mut store, prefix))
                .await?
                .map_err(|e| Self::storage_err(&cx, e))?,
        };
        keys.sort();
        Ok(keys)
    }

    /// At most `max` keys after `start_after` starting with `prefix`, with
    /// sizes and (if the server lists them) ETags. A 0.1.0 plugin has no
    /// `list-info`: [`StorageErrorKind::Unsupported`].
    pub async fn list_info(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: u32,
    ) -> Result<ListPage> {
        let (mut store, cx, inst) = self.open("list-info").await?;
        let Inst::V2(i) = inst else {
            return Err(Error::Storage {
                plugin: cx.prepared.name.clone(),
                kind: StorageErrorKind::Unsupported,
                detail:
                    "list-info needs a storage plugin built against sesshost:plugin/storage@0.2.0"
                        .into(),
            });
        };
        let page = cx
            .step(i.sesshost_plugin_storage().call_list_info(
                &mut store,
                prefix,
                start_after,
                max.max(1),
            ))
            .await?
            .map_err(|e| Self::storage_err(&cx, e))?;
        let mut entries: Vec<ListEntry> = page
            .entries
            .into_iter()
            .map(|e| ListEntry {
                key: e.key,
                size: e.size,
                etag: e.etag.map(Etag),
            })
            .collect();
        if entries.len() > max.max(1) as usize
            || entries.iter().any(|e| {
                !e.key.starts_with(prefix) || start_after.is_some_and(|s| e.key.as_str() <= s)
            })
        {
            return Err(Error::Malformed {
                plugin: cx.prepared.name.clone(),
                call: "list-info".into(),
                detail: format!(
                    "returned keys outside the request (prefix {prefix:?}, after {start_after:?}, at most {max})"
                ),
            });
        }
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(ListPage {
            entries,
            next_start_after: page.next_start_after,
        })
    }
}
