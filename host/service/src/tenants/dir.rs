//! The registry in a home directory, `HOME/service/` (directories 0700,
//! files 0600, every write atomic via [`sessbundle::atomic::write_atomic`]):
//! `tenants/<name>.json`, `keys/<id>.json`, `initialized`. The registry's
//! write lock serialises one process's writes; `host run` and `host key`
//! on one home do not race on the same record (ids are random, a tenant is
//! added by one command).
//!
//! A key lookup re-validates its cached record against the file's mtime
//! and length on every call, so a key made or revoked by another process
//! takes effect at once.

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::keys::{KeyRecord, validate_tenant_name};
use super::{MAX_CACHED, MAX_RECORD_BYTES, Records, Tenant, Version};
use crate::error::{Result, ServiceError};

#[derive(Clone)]
struct Cached {
    mtime_ns: i128,
    len: u64,
    record: KeyRecord,
}

pub(super) struct DirRecords {
    root: PathBuf,
    cache: Mutex<HashMap<String, Cached>>,
}

fn make_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(ServiceError::io(format!("cannot create {}", dir.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(ServiceError::io(
        format!("cannot set permissions of {}", dir.display()),
    ))
}

/// Reads a small JSON record; `Ok(None)` when the file does not exist.
fn read_record<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    let cannot = |e| ServiceError::io(format!("cannot read {}", path.display()))(e);
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(cannot(e)),
    };
    if meta.len() > MAX_RECORD_BYTES {
        return Err(ServiceError::CorruptRecord {
            path: path.to_path_buf(),
            message: format!("{} bytes, over the {MAX_RECORD_BYTES}-byte cap", meta.len()),
        });
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(cannot(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ServiceError::CorruptRecord {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

fn write_record<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| ServiceError::CorruptRecord {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    bytes.push(b'\n');
    sessbundle::atomic::write_atomic(path, &bytes, 0o600)?;
    Ok(())
}

/// The `.json` records of a directory, sorted by file name (temp files,
/// which start with '.', are skipped).
fn record_paths(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir)
        .map_err(ServiceError::io(format!("cannot list {}", dir.display())))?;
    for ent in rd {
        let ent = ent.map_err(ServiceError::io(format!("cannot list {}", dir.display())))?;
        let name = ent.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') && name.ends_with(".json") {
            out.push(ent.path());
        }
    }
    out.sort();
    Ok(out)
}

impl DirRecords {
    /// Opens (creating if needed) `home/service/`.
    pub fn open(home: &Path) -> Result<DirRecords> {
        let root = home.join("service");
        make_dir(&root)?;
        make_dir(&root.join("tenants"))?;
        make_dir(&root.join("keys"))?;
        Ok(DirRecords {
            root,
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn tenant_path(&self, name: &str) -> PathBuf {
        self.root.join("tenants").join(format!("{name}.json"))
    }

    fn key_path(&self, id: &str) -> PathBuf {
        self.root.join("keys").join(format!("{id}.json"))
    }

    /// The key record of `id`, through the cache (re-validated with the
    /// file's mtime and length).
    fn cached_key(&self, id: &str) -> Result<Option<KeyRecord>> {
        let path = self.key_path(id);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ServiceError::io(format!("cannot read {}", path.display()))(
                    e,
                ));
            }
        };
        let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        let len = meta.len();
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cache.get(id)
                && c.mtime_ns == mtime_ns
                && c.len == len
            {
                return Ok(Some(c.record.clone()));
            }
        }
        let Some(record) = read_record::<KeyRecord>(&path)? else {
            return Ok(None);
        };
        if record.id != id {
            return Err(ServiceError::CorruptRecord {
                path,
                message: format!("its id {:?} does not match the file name", record.id),
            });
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(
            id.to_string(),
            Cached {
                mtime_ns,
                len,
                record: record.clone(),
            },
        );
        Ok(Some(record))
    }
}

impl Records for DirRecords {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn tenant(&self, name: &str) -> Result<Option<Tenant>> {
        read_record(&self.tenant_path(name))
    }

    fn create_tenant(&self, t: &Tenant) -> Result<bool> {
        let path = self.tenant_path(&t.name);
        if path.exists() {
            return Ok(false);
        }
        write_record(&path, t)?;
        Ok(true)
    }

    fn tenants(&self) -> Result<Vec<Tenant>> {
        let mut out = Vec::new();
        for p in record_paths(&self.root.join("tenants"))? {
            if let Some(t) = read_record::<Tenant>(&p)? {
                out.push(t);
            }
        }
        Ok(out)
    }

    fn has_tenants(&self) -> Result<bool> {
        Ok(!self.tenants()?.is_empty())
    }

    fn delete_tenant(&self, name: &str) -> Result<()> {
        let path = self.tenant_path(name);
        std::fs::remove_file(&path).map_err(ServiceError::io(format!(
            "cannot remove {}",
            path.display()
        )))?;
        // Make the removal durable (best effort: some filesystems cannot
        // sync a directory).
        if let Ok(d) = std::fs::File::open(self.root.join("tenants")) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn key(&self, id: &str) -> Result<Option<(KeyRecord, Version)>> {
        Ok(read_record(&self.key_path(id))?.map(|r| (r, None)))
    }

    fn create_key(&self, rec: &KeyRecord) -> Result<bool> {
        let path = self.key_path(&rec.id);
        if path.exists() {
            return Ok(false);
        }
        write_record(&path, rec)?;
        Ok(true)
    }

    fn replace_key(&self, rec: &KeyRecord, _version: &Version) -> Result<bool> {
        write_record(&self.key_path(&rec.id), rec)?;
        Ok(true)
    }

    fn keys(&self) -> Result<Vec<KeyRecord>> {
        let mut out = Vec::new();
        for p in record_paths(&self.root.join("keys"))? {
            if let Some(r) = read_record::<KeyRecord>(&p)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    fn initialized(&self) -> Result<bool> {
        Ok(self.root.join("initialized").exists())
    }

    fn mark_initialized(&self) -> Result<()> {
        sessbundle::atomic::write_atomic(&self.root.join("initialized"), b"1\n", 0o600)?;
        Ok(())
    }

    fn lookup(&self, id: &str) -> Result<Option<(KeyRecord, bool)>> {
        let Some(rec) = self.cached_key(id)? else {
            return Ok(None);
        };
        let tenant_exists =
            validate_tenant_name(&rec.tenant).is_ok() && self.tenant_path(&rec.tenant).exists();
        Ok(Some((rec, tenant_exists)))
    }
}
