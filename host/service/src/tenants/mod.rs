//! Tenants and API keys: [`Registry`], kept in one of two places.
//!
//! - A home directory, `HOME/service/` ([`Registry::open`]; `dir.rs`):
//!   `tenants/<name>.json` (`{name, created_at}`), `keys/<id>.json`
//!   (`{id, tenant, sha256, created_at, revoked_at?}`), `initialized`.
//! - The cluster's bucket ([`Registry::open_bucket`]; `bucket.rs`), for
//!   `host run --cluster`: the same records as objects under `cluster/`
//!   (STORE.md, "Cluster objects"), created create-only, revoked by
//!   compare-and-swap, so every host on the bucket accepts every key and
//!   two hosts never both make one tenant or one default key.
//!
//! A key is `shk_<id>_<secret>`: `id` is 12 lowercase hex digits (random),
//! `secret` 32 random bytes in base64url without padding (`keys.rs`). Only
//! the SHA-256 of the whole key is stored, so the key is shown once, when
//! made.
//!
//! [`Registry::authenticate`] in a home reads the one record named by the
//! key's id on every call (re-validated against the file's mtime and
//! length, parsed records cached), so a key made or revoked by another
//! process (`host key create` while `host run` runs) takes effect at once.
//! Measured: ~17 µs a call on a warm cache in a debug build (sha2
//! optimised; ~35 µs with the other tests running beside it), under the
//! 50 µs target; the cost is two `stat` calls, one SHA-256 and a record
//! clone. `cargo test -p sesshost-service authenticate_speed -- --nocapture`
//! prints it. In a bucket, a record is trusted for [`BUCKET_CACHE_TTL`]
//! (no round trip per request; a key revoked on another host is accepted
//! here until then), an unknown id is read from the bucket at once (a key
//! made on another host works at once), and made-up ids are refused
//! without asking the bucket again for [`NEGATIVE_CACHE_TTL`].
//!
//! Files: `keys.rs` (key format, [`ApiKey`], the naming rule), `dir.rs`,
//! `bucket.rs`, `ttl_cache.rs` (the bucket's caches), `tests.rs`,
//! `bucket_tests.rs`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sesshost_store::{Backend, BackendError, BackendErrorKind, Etag};

use crate::error::{Result, ServiceError};

mod bucket;
mod dir;
mod keys;
mod ttl_cache;

#[cfg(test)]
mod bucket_tests;
#[cfg(test)]
mod tests;

pub use bucket::{BUCKET_CACHE_TTL, NEGATIVE_CACHE_TTL, UNKNOWN_ID_LOOKUPS_PER_SECOND};
pub use keys::{ApiKey, validate_tenant_name};

use keys::{KeyRecord, now_rfc3339, parse_key_id, random_key_id, sha256_hex, valid_key_id};

/// Name of the tenant [`Registry::ensure_default`] creates.
pub const DEFAULT_TENANT: &str = "default";
/// Records larger than this are refused as corrupt.
const MAX_RECORD_BYTES: u64 = 64 * 1024;
/// Cached key records at most (the cache is cleared when full).
const MAX_CACHED: usize = 10_000;
/// Tries of a revocation whose compare-and-swap lost to a concurrent
/// write (the only other write of a key record is a revocation, so the
/// second read sees it).
const REVOKE_ATTEMPTS: usize = 3;

/// A tenant: a namespace of sessions and keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub name: String,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// What may be shown of a key: never the key or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub tenant: String,
    /// RFC 3339 UTC.
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: String,
    pub key_id: String,
}

/// The version of a record a compare-and-swap names: the bucket's ETag;
/// `None` in a directory (this process's write lock serialises).
type Version = Option<Etag>;

/// Where the records live: a directory or a bucket. Names and ids are
/// validated before they get here.
trait Records: Send + Sync {
    /// For messages and `Debug`.
    fn location(&self) -> String;
    fn tenant(&self, name: &str) -> Result<Option<Tenant>>;
    /// Create-only; `false` when a tenant of that name exists.
    fn create_tenant(&self, t: &Tenant) -> Result<bool>;
    fn tenants(&self) -> Result<Vec<Tenant>>;
    fn has_tenants(&self) -> Result<bool>;
    fn delete_tenant(&self, name: &str) -> Result<()>;
    fn key(&self, id: &str) -> Result<Option<(KeyRecord, Version)>>;
    /// Create-only; `false` when the id is taken.
    fn create_key(&self, rec: &KeyRecord) -> Result<bool>;
    /// Replaces the record read as `version`; `false` when it changed
    /// since (re-read).
    fn replace_key(&self, rec: &KeyRecord, version: &Version) -> Result<bool>;
    fn keys(&self) -> Result<Vec<KeyRecord>>;
    fn initialized(&self) -> Result<bool>;
    /// Create-only; a marker another process wrote first is as good.
    fn mark_initialized(&self) -> Result<()>;
    /// For [`Registry::authenticate`], through this storage's cache: the
    /// record of `id` and whether its tenant exists.
    fn lookup(&self, id: &str) -> Result<Option<(KeyRecord, bool)>>;
}

/// The tenant and key registry of one home directory or one bucket.
pub struct Registry {
    records: Box<dyn Records>,
    /// Serialises this process's writes (duplicate checks, revocations).
    write_lock: Mutex<()>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("at", &self.records.location())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Opens (creating if needed) `home/service/`.
    pub fn open(home: &Path) -> Result<Registry> {
        Ok(Self::with(dir::DirRecords::open(home)?))
    }

    /// The registry in the cluster's bucket (objects under `cluster/`;
    /// nothing is written until a tenant or key is made). Refuses a
    /// backend that does not declare atomic conditional writes. Every
    /// method may block on the bucket (a `sesshost_plugin::PluginBackend`
    /// is safe to call from any thread, async workers included); a cached
    /// [`Registry::authenticate`] does not touch it.
    pub fn open_bucket(bucket: Arc<dyn Backend>) -> Result<Registry> {
        Self::open_bucket_clocked(bucket, Arc::new(std::time::Instant::now))
    }

    /// The registry of the cluster's bucket behind the storage plugin
    /// `plugin` with `grants` (what `host run --cluster` and `host tenant|key
    /// --cluster` open). No repository key is needed: these records are
    /// plaintext beside the encrypted repository.
    pub async fn open_cluster(
        engine: &sesshost_engine::Engine,
        plugin: &Path,
        grants: &sesshost_plugin::Grants,
    ) -> Result<Registry> {
        let bucket = engine
            .bucket(plugin, grants)
            .await
            .map_err(|e| ServiceError::BucketOpen {
                plugin: plugin.display().to_string(),
                message: e.to_string(),
            })?;
        Registry::open_bucket(bucket)
    }

    /// [`Registry::open_bucket`] reading time from `clock` (tests move it).
    fn open_bucket_clocked(bucket: Arc<dyn Backend>, clock: bucket::Clock) -> Result<Registry> {
        Ok(Self::with(bucket::BucketRecords::open(bucket, clock)?))
    }

    fn with(records: impl Records + 'static) -> Registry {
        Registry {
            records: Box::new(records),
            write_lock: Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a tenant (name rule: 1-64 of `a-z0-9_-`; duplicates refused,
    /// also when another host made it at the same moment).
    pub fn add_tenant(&self, name: &str) -> Result<Tenant> {
        validate_tenant_name(name)?;
        let _g = self.lock();
        let t = Tenant {
            name: name.to_string(),
            created_at: now_rfc3339(),
        };
        if !self.records.create_tenant(&t)? {
            return Err(ServiceError::TenantExists(name.to_string()));
        }
        Ok(t)
    }

    /// All tenants, by name.
    pub fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let mut out = self.records.tenants()?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One tenant; `None` when it does not exist (or the name is invalid).
    pub fn tenant(&self, name: &str) -> Result<Option<Tenant>> {
        if validate_tenant_name(name).is_err() {
            return Ok(None);
        }
        self.records.tenant(name)
    }

    /// Removes a tenant and revokes all its keys: keys first, so a crash
    /// half-way leaves no live key of a removed tenant, and again after
    /// the delete, for a key another process made meanwhile (one made
    /// after that second pass sees the tenant gone and revokes itself,
    /// see [`Registry::create_key`]).
    pub fn remove_tenant(&self, name: &str) -> Result<Tenant> {
        let t = self
            .tenant(name)?
            .ok_or_else(|| ServiceError::NoSuchTenant(name.chars().take(80).collect()))?;
        let _g = self.lock();
        self.revoke_all_locked(name)?;
        self.records.delete_tenant(name)?;
        self.revoke_all_locked(name)?;
        Ok(t)
    }

    fn revoke_all_locked(&self, tenant: &str) -> Result<()> {
        for rec in self.records.keys()? {
            if rec.tenant == tenant && rec.revoked_at.is_none() {
                match self.revoke_locked(&rec.id) {
                    Ok(_)
                    | Err(ServiceError::KeyAlreadyRevoked { .. } | ServiceError::NoSuchKey(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Makes a key for `tenant` (which must exist, before and after the
    /// key is written: a key whose tenant another process removed
    /// meanwhile is revoked again and refused with
    /// [`ServiceError::NoSuchTenant`]). The [`ApiKey`] is the only copy of
    /// the key: show it once.
    pub fn create_key(&self, tenant: &str) -> Result<(KeyInfo, ApiKey)> {
        if self.tenant(tenant)?.is_none() {
            return Err(ServiceError::NoSuchTenant(
                tenant.chars().take(80).collect(),
            ));
        }
        let _g = self.lock();
        loop {
            let key = ApiKey::generate(random_key_id()?)?;
            let rec = KeyRecord {
                id: key.id().to_string(),
                tenant: tenant.to_string(),
                sha256: sha256_hex(key.expose()),
                created_at: now_rfc3339(),
                revoked_at: None,
            };
            // An id taken (1 in 2^48 per existing key): draw another.
            if !self.records.create_key(&rec)? {
                continue;
            }
            if self.records.tenant(tenant)?.is_none() {
                match self.revoke_locked(&rec.id) {
                    Ok(_) | Err(ServiceError::KeyAlreadyRevoked { .. }) => {}
                    Err(e) => return Err(e),
                }
                return Err(ServiceError::NoSuchTenant(tenant.to_string()));
            }
            return Ok((rec.info(), key));
        }
    }

    /// All keys (revoked ones too), oldest first. Never the key or hash.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut recs = self.records.keys()?;
        recs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(recs.iter().map(KeyRecord::info).collect())
    }

    /// Revokes a key by id: refused at once by this process and by every
    /// process on the same home; by other hosts on the same bucket within
    /// [`BUCKET_CACHE_TTL`].
    pub fn revoke_key(&self, id: &str) -> Result<KeyInfo> {
        let _g = self.lock();
        self.revoke_locked(id)
    }

    fn revoke_locked(&self, id: &str) -> Result<KeyInfo> {
        let no_such = || ServiceError::NoSuchKey(id.chars().take(40).collect());
        if !valid_key_id(id) {
            return Err(no_such());
        }
        for _ in 0..REVOKE_ATTEMPTS {
            let (mut rec, version) = self.records.key(id)?.ok_or_else(no_such)?;
            if let Some(at) = rec.revoked_at {
                return Err(ServiceError::KeyAlreadyRevoked { id: rec.id, at });
            }
            rec.revoked_at = Some(now_rfc3339());
            if self.records.replace_key(&rec, &version)? {
                return Ok(rec.info());
            }
        }
        Err(ServiceError::Bucket {
            what: format!("cannot revoke API key {id}"),
            source: BackendError::new(
                BackendErrorKind::Conflict,
                format!("its record changed under each of {REVOKE_ATTEMPTS} tries"),
            ),
        })
    }

    /// The principal of a presented key, or `None` for a malformed, unknown
    /// or revoked key or one whose tenant was removed. `Err` only when the
    /// registry itself cannot be read.
    pub fn authenticate(&self, presented: &str) -> Result<Option<Principal>> {
        let Some(id) = parse_key_id(presented) else {
            return Ok(None);
        };
        let Some((rec, tenant_exists)) = self.records.lookup(id)? else {
            return Ok(None);
        };
        let hash = sha256_hex(presented);
        let equal: bool =
            subtle::ConstantTimeEq::ct_eq(hash.as_bytes(), rec.sha256.as_bytes()).into();
        if !equal || rec.revoked_at.is_some() || !tenant_exists {
            return Ok(None);
        }
        Ok(Some(Principal {
            tenant: rec.tenant,
            key_id: rec.id,
        }))
    }

    /// On first start: creates tenant `default` and a key for it and
    /// returns the key (show it once). Later starts, or a registry that
    /// already had tenants, return `None`. Race-free on a bucket: of hosts
    /// starting at once, the one whose create of tenant `default` wins
    /// makes the key and returns it; the others return `None`. (A host that
    /// dies between the tenant and its key leaves `default` without a key:
    /// `host key create --tenant default --cluster …` makes one.)
    pub fn ensure_default(&self) -> Result<Option<ApiKey>> {
        if self.records.initialized()? {
            return Ok(None);
        }
        let out = if self.records.has_tenants()? {
            None
        } else {
            match self.add_tenant(DEFAULT_TENANT) {
                Ok(_) => Some(self.create_key(DEFAULT_TENANT)?.1),
                Err(ServiceError::TenantExists(_)) => None,
                Err(e) => return Err(e),
            }
        };
        self.records.mark_initialized()?;
        Ok(out)
    }
}
