//! The registry in the cluster's bucket (`host run --cluster`, `host
//! tenant|key … --cluster`), so that every host on the bucket accepts
//! every key. Objects (STORE.md, "Cluster objects"), plain JSON, `v` 1:
//!
//! - `cluster/tenants/<name>`: `{v, name, created_at, nonce}`,
//!   create-only; removed by a delete (its keys are revoked before and
//!   after, so a key made meanwhile by another process does not outlive
//!   it);
//! - `cluster/keys/<id>`: `{v, id, tenant, sha256, created_at,
//!   revoked_at?, nonce}`, create-only; revoked by compare-and-swap;
//! - `cluster/initialized`: `{v, initialized_at, nonce}`, create-only,
//!   once the first host's `ensure_default` has run.
//!
//! Plaintext is enough: a key record holds the SHA-256 of a key whose
//! secret is 256 random bits, which cannot be reversed or guessed; the
//! key itself is never stored. `nonce` (fresh per write) resolves a write
//! whose outcome was unknown (5xx, timeout): read back, our nonce → ours;
//! still as the precondition expected → not applied, written again;
//! anything else → another writer's.
//!
//! Key lookups are cached so a request does not cost a round trip: a
//! record read from the bucket is trusted for [`BUCKET_CACHE_TTL`], an id
//! the bucket does not have is refused without asking again for
//! [`NEGATIVE_CACHE_TTL`], and at most [`UNKNOWN_ID_LOOKUPS_PER_SECOND`]
//! ids never seen before are looked up each second (beyond that they are
//! refused as unknown: a flood of made-up keys cannot hammer the bucket;
//! cached keys keep working).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sesshost_cluster::bucket::{Outcome, nonce_of, resolve_unknown};
use sesshost_store::{Backend, BackendError, BackendErrorKind, Capability, Etag, Precondition};

use super::keys::{KeyRecord, nonce, now_rfc3339, valid_key_id, validate_tenant_name};
use super::ttl_cache::{Budget, TtlMap};
use super::{MAX_CACHED, MAX_RECORD_BYTES, Records, Tenant, Version};
use crate::error::{Result, ServiceError};

/// How long a host trusts a key record it read from the bucket. The cost:
/// a key revoked (or a tenant removed) on another host is still accepted
/// here for up to this long; the host that revokes refuses it at once.
pub const BUCKET_CACHE_TTL: Duration = Duration::from_secs(5);
/// How long an id the bucket does not have is refused without asking it
/// again (a key made since is accepted after at most this long, but a new
/// key's id cannot have been asked for before it was made).
pub const NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(1);
/// Ids never seen before looked up in the bucket per second, at most.
pub const UNKNOWN_ID_LOOKUPS_PER_SECOND: u32 = 64;
/// Unknown ids remembered at most.
const NEGATIVE_CACHE_CAP: usize = 4096;
/// Tries of one conditional write that met a conflict (409) or an
/// unknown outcome that turned out not applied.
const WRITE_ATTEMPTS: u32 = 4;

const TENANTS: &str = "cluster/tenants/";
const KEYS: &str = "cluster/keys/";
const INITIALIZED: &str = "cluster/initialized";

pub(super) type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// `cluster/tenants/<name>`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantObject {
    v: u32,
    name: String,
    created_at: String,
    nonce: String,
}

/// `cluster/keys/<id>`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyObject {
    v: u32,
    id: String,
    tenant: String,
    sha256: String,
    created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
    nonce: String,
}

/// `cluster/initialized`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkerObject {
    v: u32,
    initialized_at: String,
    nonce: String,
}

impl KeyObject {
    fn new(r: &KeyRecord, nonce: String) -> KeyObject {
        KeyObject {
            v: 1,
            id: r.id.clone(),
            tenant: r.tenant.clone(),
            sha256: r.sha256.clone(),
            created_at: r.created_at.clone(),
            revoked_at: r.revoked_at.clone(),
            nonce,
        }
    }

    fn record(self) -> KeyRecord {
        KeyRecord {
            id: self.id,
            tenant: self.tenant,
            sha256: self.sha256,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        }
    }
}

trait Object: DeserializeOwned {
    fn v(&self) -> u32;
}
impl Object for TenantObject {
    fn v(&self) -> u32 {
        self.v
    }
}
impl Object for KeyObject {
    fn v(&self) -> u32 {
        self.v
    }
}

fn tenant_key(name: &str) -> String {
    format!("{TENANTS}{name}")
}

fn key_key(id: &str) -> String {
    format!("{KEYS}{id}")
}

fn bucket_err(what: String) -> impl FnOnce(BackendError) -> ServiceError {
    move |source| ServiceError::Bucket { what, source }
}

fn corrupt(key: &str, message: String) -> ServiceError {
    ServiceError::CorruptRecord {
        path: PathBuf::from(key),
        message,
    }
}

struct Caches {
    keys: TtlMap<KeyRecord>,
    tenants: TtlMap<bool>,
    missing: TtlMap<()>,
    unknown_lookups: Budget,
}

pub(super) struct BucketRecords {
    b: Arc<dyn Backend>,
    caches: Mutex<Caches>,
    clock: Clock,
}

impl BucketRecords {
    /// Refuses a backend that does not declare atomic conditional writes
    /// (two hosts could both "create" one tenant).
    pub fn open(b: Arc<dyn Backend>, clock: Clock) -> Result<BucketRecords> {
        if !b
            .capabilities()
            .contains(&Capability::AtomicConditionalWrites)
        {
            return Err(ServiceError::Bucket {
                what: "cannot keep tenants and API keys in this bucket".into(),
                source: BackendError::new(
                    BackendErrorKind::Unsupported,
                    "its plugin does not declare atomic conditional writes (use s3.wasm, or another plugin built against sesshost:plugin/storage@0.2.0)",
                ),
            });
        }
        Ok(BucketRecords {
            b,
            caches: Mutex::new(Caches {
                keys: TtlMap::new(BUCKET_CACHE_TTL, MAX_CACHED),
                tenants: TtlMap::new(BUCKET_CACHE_TTL, MAX_CACHED),
                missing: TtlMap::new(NEGATIVE_CACHE_TTL, NEGATIVE_CACHE_CAP),
                unknown_lookups: Budget::new(UNKNOWN_ID_LOOKUPS_PER_SECOND),
            }),
            clock,
        })
    }

    fn caches(&self) -> std::sync::MutexGuard<'_, Caches> {
        // Every change to the caches is one insert or remove.
        self.caches.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A small JSON object and its ETag; `Ok(None)` when absent.
    fn read<T: Object>(&self, key: &str) -> Result<Option<(T, Etag)>> {
        let got = sesshost_cluster::bucket::read_with_etag(self.b.as_ref(), key)
            .map_err(bucket_err(format!("cannot read {key} from the bucket")))?;
        let Some((bytes, etag)) = got else {
            return Ok(None);
        };
        if bytes.len() as u64 > MAX_RECORD_BYTES {
            let n = bytes.len();
            return Err(corrupt(
                key,
                format!("{n} bytes, over the {MAX_RECORD_BYTES}-byte cap"),
            ));
        }
        let obj: T = serde_json::from_slice(&bytes).map_err(|e| corrupt(key, e.to_string()))?;
        if obj.v() != 1 {
            return Err(corrupt(
                key,
                format!(
                    "version {}; this sesshost reads version 1 (upgrade it)",
                    obj.v()
                ),
            ));
        }
        Ok(Some((obj, etag)))
    }

    fn read_key(&self, id: &str) -> Result<Option<(KeyRecord, Etag)>> {
        let key = key_key(id);
        let Some((obj, etag)) = self.read::<KeyObject>(&key)? else {
            return Ok(None);
        };
        if obj.id != id {
            let msg = format!("its id {:?} does not match the object name", obj.id);
            return Err(corrupt(&key, msg));
        }
        Ok(Some((obj.record(), etag)))
    }

    /// A conditional write, its outcome resolved: `true` when our bytes
    /// are the object's current version, `false` when the precondition
    /// did not hold (another writer's version is there).
    fn write<T: Serialize>(
        &self,
        key: &str,
        obj: &T,
        pre: Precondition,
        nonce: &str,
    ) -> Result<bool> {
        let body = serde_json::to_vec(obj).map_err(|e| corrupt(key, e.to_string()))?;
        let mut last = None;
        // An earlier try's outcome was unknown and looked "not applied":
        // it may still land, so a later "precondition failed" may be ours.
        let mut ambiguous = false;
        for attempt in 0..WRITE_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(50 * u64::from(attempt)));
            }
            let e = match self.b.put_if(key, &body, pre.clone()) {
                Ok(_) => return Ok(true),
                Err(e) => e,
            };
            match e.kind {
                BackendErrorKind::PreconditionFailed if ambiguous => {
                    return self.is_ours(key, nonce);
                }
                BackendErrorKind::PreconditionFailed => return Ok(false),
                // Nothing written this round: try again.
                BackendErrorKind::Conflict => {}
                BackendErrorKind::UnknownOutcome => {
                    match resolve_unknown(&*self.b, key, &pre, nonce).map_err(bucket_err(
                        format!("cannot read {key} back from the bucket"),
                    ))? {
                        Outcome::Won(_) => return Ok(true),
                        Outcome::Lost => return Ok(false),
                        Outcome::NotApplied => ambiguous = true,
                    }
                }
                _ => return Err(bucket_err(format!("cannot write {key} to the bucket"))(e)),
            }
            last = Some(e);
        }
        let e = last.unwrap_or_else(|| BackendError::new(BackendErrorKind::Other, "no attempt"));
        Err(bucket_err(format!(
            "cannot write {key} to the bucket ({WRITE_ATTEMPTS} tries)"
        ))(e))
    }

    /// Whether `key` now holds the bytes of our write with `nonce`.
    fn is_ours(&self, key: &str, nonce: &str) -> Result<bool> {
        let now = self.b.get(key).map_err(bucket_err(format!(
            "cannot read {key} back from the bucket"
        )))?;
        Ok(now.is_some_and(|bytes| nonce_of(&bytes).as_deref() == Some(nonce)))
    }

    /// The record names under `prefix` (one segment each).
    fn names(&self, prefix: &str) -> Result<Vec<String>> {
        let keys = self
            .b
            .list(prefix)
            .map_err(bucket_err(format!("cannot list {prefix} in the bucket")))?;
        let mut out: Vec<String> = keys
            .iter()
            .filter_map(|k| k.strip_prefix(prefix))
            .filter(|n| !n.is_empty() && !n.contains('/'))
            .map(str::to_string)
            .collect();
        out.sort();
        Ok(out)
    }

    fn tenant_exists(&self, name: &str) -> Result<bool> {
        if validate_tenant_name(name).is_err() {
            return Ok(false);
        }
        let now = (self.clock)();
        if let Some(t) = self.caches().tenants.get(name, now) {
            return Ok(t);
        }
        let key = tenant_key(name);
        let exists = self
            .b
            .has(&key)
            .map_err(bucket_err(format!("cannot read {key} from the bucket")))?;
        self.caches().tenants.insert(name, exists, now);
        Ok(exists)
    }
}

impl Records for BucketRecords {
    fn location(&self) -> String {
        "the cluster's bucket (cluster/)".into()
    }

    fn tenant(&self, name: &str) -> Result<Option<Tenant>> {
        let key = tenant_key(name);
        let Some((obj, _)) = self.read::<TenantObject>(&key)? else {
            return Ok(None);
        };
        if obj.name != name {
            let msg = format!("its name {:?} does not match the object name", obj.name);
            return Err(corrupt(&key, msg));
        }
        Ok(Some(Tenant {
            name: obj.name,
            created_at: obj.created_at,
        }))
    }

    fn create_tenant(&self, t: &Tenant) -> Result<bool> {
        let n = nonce()?;
        let obj = TenantObject {
            v: 1,
            name: t.name.clone(),
            created_at: t.created_at.clone(),
            nonce: n.clone(),
        };
        let won = self.write(&tenant_key(&t.name), &obj, Precondition::IfAbsent, &n)?;
        self.caches().tenants.insert(&t.name, true, (self.clock)());
        Ok(won)
    }

    fn tenants(&self) -> Result<Vec<Tenant>> {
        let mut out = Vec::new();
        for name in self.names(TENANTS)? {
            if validate_tenant_name(&name).is_err() {
                continue;
            }
            if let Some(t) = self.tenant(&name)? {
                out.push(t);
            }
        }
        Ok(out)
    }

    fn has_tenants(&self) -> Result<bool> {
        let page = self
            .b
            .list_info(TENANTS, None, 1)
            .map_err(bucket_err(format!("cannot list {TENANTS} in the bucket")))?;
        Ok(!page.entries.is_empty())
    }

    fn delete_tenant(&self, name: &str) -> Result<()> {
        let key = tenant_key(name);
        self.b
            .delete(&key)
            .map_err(bucket_err(format!("cannot delete {key} from the bucket")))?;
        self.caches().tenants.insert(name, false, (self.clock)());
        Ok(())
    }

    fn key(&self, id: &str) -> Result<Option<(KeyRecord, Version)>> {
        Ok(self.read_key(id)?.map(|(r, e)| (r, Some(e))))
    }

    fn create_key(&self, rec: &KeyRecord) -> Result<bool> {
        let n = nonce()?;
        let won = self.write(
            &key_key(&rec.id),
            &KeyObject::new(rec, n.clone()),
            Precondition::IfAbsent,
            &n,
        )?;
        if won {
            let mut c = self.caches();
            c.missing.remove(&rec.id);
            c.keys.insert(&rec.id, rec.clone(), (self.clock)());
        }
        Ok(won)
    }

    fn replace_key(&self, rec: &KeyRecord, version: &Version) -> Result<bool> {
        let Some(etag) = version else {
            return Ok(false);
        };
        let n = nonce()?;
        let won = self.write(
            &key_key(&rec.id),
            &KeyObject::new(rec, n.clone()),
            Precondition::IfMatch(etag.clone()),
            &n,
        )?;
        let mut c = self.caches();
        if won {
            c.keys.insert(&rec.id, rec.clone(), (self.clock)());
        } else {
            c.keys.remove(&rec.id);
        }
        Ok(won)
    }

    fn keys(&self) -> Result<Vec<KeyRecord>> {
        let mut out = Vec::new();
        // Names that are not key ids are not ours (no key could have one).
        for id in self.names(KEYS)?.into_iter().filter(|n| valid_key_id(n)) {
            if let Some((r, _)) = self.read_key(&id)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    fn initialized(&self) -> Result<bool> {
        self.b.has(INITIALIZED).map_err(bucket_err(format!(
            "cannot read {INITIALIZED} from the bucket"
        )))
    }

    fn mark_initialized(&self) -> Result<()> {
        let n = nonce()?;
        let obj = MarkerObject {
            v: 1,
            initialized_at: now_rfc3339(),
            nonce: n.clone(),
        };
        // Lost: another host marked it first, which is as good.
        self.write(INITIALIZED, &obj, Precondition::IfAbsent, &n)?;
        Ok(())
    }

    fn lookup(&self, id: &str) -> Result<Option<(KeyRecord, bool)>> {
        let now = (self.clock)();
        let cached = {
            let mut c = self.caches();
            match c.keys.get(id, now) {
                Some(rec) => Some(rec),
                None if c.missing.get(id, now).is_some() => return Ok(None),
                // An id this host has not read recently: spend the budget
                // only on ids it never had (expired ones are re-read).
                None if !c.keys.contains(id) && !c.unknown_lookups.take(now) => {
                    return Ok(None);
                }
                None => None,
            }
        };
        let rec = match cached {
            Some(rec) => rec,
            None => match self.read_key(id)? {
                Some((rec, _)) => {
                    self.caches().keys.insert(id, rec.clone(), now);
                    rec
                }
                None => {
                    let mut c = self.caches();
                    c.keys.remove(id);
                    c.missing.insert(id, (), now);
                    return Ok(None);
                }
            },
        };
        let tenant_exists = self.tenant_exists(&rec.tenant)?;
        Ok(Some((rec, tenant_exists)))
    }
}
