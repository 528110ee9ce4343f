//! The registry in a bucket: `MemoryBackend` (atomic, with fault
//! injection) behind a wrapper that counts reads, and a clock the tests
//! move by hand; then `LocalDirBackend` (a real backend: create-only by
//! `link(2)`, compare-and-swap under `flock`) shared by registries on
//! several threads, as several hosts share a bucket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use sesshost_store::backend::memory::{Fault, MemoryBackend};
use sesshost_store::{BackendError, ListPage, LocalDirBackend, ObjectInfo, Precondition};

use super::*;

/// A `MemoryBackend` that counts the calls that would be round trips.
#[derive(Default)]
struct Counted {
    inner: MemoryBackend,
    reads: AtomicU64,
}

impl Counted {
    fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }
    fn read(&self) {
        self.reads.fetch_add(1, Ordering::SeqCst);
    }
}

impl Backend for Counted {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BackendError> {
        self.inner.put(key, bytes)
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.read();
        self.inner.get(key)
    }
    fn has(&self, key: &str) -> Result<bool, BackendError> {
        self.read();
        self.inner.has(key)
    }
    fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.inner.delete(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        self.read();
        self.inner.list(prefix)
    }
    fn put_if(&self, key: &str, bytes: &[u8], pre: Precondition) -> Result<Etag, BackendError> {
        self.inner.put_if(key, bytes, pre)
    }
    fn head(&self, key: &str) -> Result<Option<ObjectInfo>, BackendError> {
        self.read();
        self.inner.head(key)
    }
    fn get_with_etag(&self, key: &str) -> Result<Option<(Vec<u8>, Etag)>, BackendError> {
        self.read();
        self.inner.get_with_etag(key)
    }
    fn list_info(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        max: u32,
    ) -> Result<ListPage, BackendError> {
        self.read();
        self.inner.list_info(prefix, start_after, max)
    }
    fn capabilities(&self) -> Vec<sesshost_store::Capability> {
        self.inner.capabilities()
    }
}

/// A clock that stands still until moved.
#[derive(Clone)]
struct Clock {
    base: Instant,
    ms: Arc<AtomicU64>,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            base: Instant::now(),
            ms: Arc::new(AtomicU64::new(0)),
        }
    }
    fn advance(&self, d: Duration) {
        self.ms.fetch_add(d.as_millis() as u64, Ordering::SeqCst);
    }
    fn f(&self) -> bucket::Clock {
        let c = self.clone();
        Arc::new(move || c.base + Duration::from_millis(c.ms.load(Ordering::SeqCst)))
    }
}

fn bucket() -> Arc<Counted> {
    Arc::new(Counted::default())
}

fn open(b: &Arc<Counted>, clock: &Clock) -> Registry {
    Registry::open_bucket_clocked(b.clone(), clock.f()).unwrap()
}

#[test]
fn two_registries_see_each_others_tenants_and_keys_at_once() {
    let (b, clock) = (bucket(), Clock::new());
    let (r1, r2) = (open(&b, &clock), open(&b, &clock));
    r1.add_tenant("acme").unwrap();
    let e = r2.add_tenant("acme").unwrap_err();
    assert!(matches!(e, ServiceError::TenantExists(_)), "{e}");
    let (info, key) = r2.create_key("acme").unwrap();
    // r1 never saw this id: read from the bucket at once.
    let p = r1.authenticate(key.expose()).unwrap().unwrap();
    assert_eq!(
        (p.tenant.as_str(), p.key_id.as_str()),
        ("acme", info.id.as_str())
    );
    assert_eq!(r1.list_keys().unwrap(), vec![info.clone()]);
    let names: Vec<_> = r2
        .list_tenants()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["acme"]);
    // The objects are where STORE.md says, and hold no secret.
    let obj = b
        .inner
        .get(&format!("cluster/keys/{}", info.id))
        .unwrap()
        .unwrap();
    let obj: serde_json::Value = serde_json::from_slice(&obj).unwrap();
    assert_eq!(obj["v"], 1);
    assert_eq!(obj["sha256"], sha256_hex(key.expose()));
    assert_eq!(obj["nonce"].as_str().unwrap().len(), 32);
    assert!(!obj.to_string().contains(&key.expose()[17..]));
    assert!(b.inner.has("cluster/tenants/acme").unwrap());
    assert!(matches!(
        r1.create_key("nobody"),
        Err(ServiceError::NoSuchTenant(_))
    ));
    // An object that is not a key id's is not a key (and breaks no list).
    b.inner.put("cluster/keys/stray.txt", b"x").unwrap();
    assert_eq!(r1.list_keys().unwrap(), vec![info.clone()]);
}

#[test]
fn a_cached_key_costs_no_round_trip_and_garbage_ids_are_not_asked_twice() {
    let (b, clock) = (bucket(), Clock::new());
    let r = open(&b, &clock);
    r.add_tenant("acme").unwrap();
    let (_, key) = r.create_key("acme").unwrap();
    let other = open(&b, &clock);
    assert!(other.authenticate(key.expose()).unwrap().is_some());
    let n = b.reads();
    for _ in 0..1000 {
        assert!(other.authenticate(key.expose()).unwrap().is_some());
    }
    assert_eq!(b.reads(), n, "a cached key went to the bucket");
    // After the TTL: read again (key and tenant), then cached again.
    clock.advance(BUCKET_CACHE_TTL);
    assert!(other.authenticate(key.expose()).unwrap().is_some());
    assert_eq!(b.reads(), n + 2);

    let fake = format!("shk_0123456789ab_{}", "A".repeat(43));
    let n = b.reads();
    for _ in 0..100 {
        assert!(other.authenticate(&fake).unwrap().is_none());
    }
    assert_eq!(b.reads(), n + 1, "an unknown id is asked once per second");
    clock.advance(NEGATIVE_CACHE_TTL);
    assert!(other.authenticate(&fake).unwrap().is_none());
    assert_eq!(b.reads(), n + 2);

    // Made-up ids, all different: at most the budget per second.
    clock.advance(Duration::from_secs(1));
    let n = b.reads();
    for i in 0..1000u32 {
        let k = format!("shk_{i:012x}_{}", "A".repeat(43));
        assert!(other.authenticate(&k).unwrap().is_none());
    }
    assert_eq!(b.reads(), n + u64::from(UNKNOWN_ID_LOOKUPS_PER_SECOND));
    // The known key still works meanwhile, without a round trip.
    assert!(other.authenticate(key.expose()).unwrap().is_some());
    assert_eq!(b.reads(), n + u64::from(UNKNOWN_ID_LOOKUPS_PER_SECOND));
}

#[test]
fn revoke_takes_effect_at_once_here_and_within_the_ttl_elsewhere() {
    let (b, clock) = (bucket(), Clock::new());
    let (a, other) = (open(&b, &clock), open(&b, &clock));
    a.add_tenant("acme").unwrap();
    let (info, key) = a.create_key("acme").unwrap();
    assert!(a.authenticate(key.expose()).unwrap().is_some());
    assert!(other.authenticate(key.expose()).unwrap().is_some());
    let revoked = a.revoke_key(&info.id).unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(
        a.authenticate(key.expose()).unwrap().is_none(),
        "the revoking host"
    );
    // A third host that never cached it refuses it at once.
    assert!(
        open(&b, &clock)
            .authenticate(key.expose())
            .unwrap()
            .is_none()
    );
    // The host that had it cached: until the TTL, no longer.
    clock.advance(BUCKET_CACHE_TTL - Duration::from_millis(1));
    assert!(other.authenticate(key.expose()).unwrap().is_some());
    clock.advance(Duration::from_millis(1));
    assert!(other.authenticate(key.expose()).unwrap().is_none());
    assert!(matches!(
        other.revoke_key(&info.id),
        Err(ServiceError::KeyAlreadyRevoked { .. })
    ));
    assert!(matches!(
        other.revoke_key("000000000000"),
        Err(ServiceError::NoSuchKey(_))
    ));

    // Removing a tenant revokes its keys and refuses them at once here.
    let (_, k2) = a.create_key("acme").unwrap();
    assert!(other.authenticate(k2.expose()).unwrap().is_some());
    a.remove_tenant("acme").unwrap();
    assert!(a.authenticate(k2.expose()).unwrap().is_none());
    assert!(
        a.list_keys()
            .unwrap()
            .iter()
            .all(|k| k.revoked_at.is_some())
    );
    assert!(a.tenant("acme").unwrap().is_none());
    clock.advance(BUCKET_CACHE_TTL);
    assert!(other.authenticate(k2.expose()).unwrap().is_none());
    // The name is free again; the old keys stay revoked.
    a.add_tenant("acme").unwrap();
    assert!(a.authenticate(k2.expose()).unwrap().is_none());
}

#[test]
fn concurrent_ensure_default_makes_one_key() {
    for round in 0..20 {
        let (b, clock) = (bucket(), Clock::new());
        let n = 4;
        let barrier = Arc::new(Barrier::new(n));
        let threads: Vec<_> = (0..n)
            .map(|_| {
                let r = open(&b, &clock);
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    r.ensure_default().unwrap().map(|k| k.expose().to_string())
                })
            })
            .collect();
        let keys: Vec<String> = threads
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(
            keys.len(),
            1,
            "round {round}: {} hosts printed a key",
            keys.len()
        );
        let r = open(&b, &clock);
        assert_eq!(r.list_keys().unwrap().len(), 1, "round {round}");
        assert_eq!(
            r.authenticate(&keys[0]).unwrap().unwrap().tenant,
            DEFAULT_TENANT
        );
        assert!(b.inner.has("cluster/initialized").unwrap());
        assert!(r.ensure_default().unwrap().is_none());
    }
    // A bucket with tenants made before the first start gets no default.
    let (b, clock) = (bucket(), Clock::new());
    open(&b, &clock).add_tenant("acme").unwrap();
    let r = open(&b, &clock);
    assert!(r.ensure_default().unwrap().is_none());
    assert!(r.tenant(DEFAULT_TENANT).unwrap().is_none());
}

#[test]
fn unknown_outcomes_are_resolved_by_reading_back() {
    let (b, clock) = (bucket(), Clock::new());
    let (r, other) = (open(&b, &clock), open(&b, &clock));
    // A 500 after which the create was applied: ours (not "exists").
    b.inner
        .inject_prefix("cluster/tenants/", Fault::ServerError { applied: true });
    r.add_tenant("acme").unwrap();
    // A timeout after which it was not: written again.
    b.inner
        .inject_prefix("cluster/tenants/", Fault::Timeout { applied: false });
    r.add_tenant("beta").unwrap();
    assert!(r.tenant("beta").unwrap().is_some());
    // A 500 on a create another host had made: theirs, so "exists".
    b.inner
        .inject_prefix("cluster/tenants/", Fault::ServerError { applied: true });
    let e = other.add_tenant("acme").unwrap_err();
    assert!(matches!(e, ServiceError::TenantExists(_)), "{e}");
    // A key whose create timed out after being applied: one record, works.
    b.inner
        .inject_prefix("cluster/keys/", Fault::Timeout { applied: true });
    let (info, key) = r.create_key("acme").unwrap();
    assert_eq!(r.list_keys().unwrap(), vec![info.clone()]);
    assert!(other.authenticate(key.expose()).unwrap().is_some());
    // A 409 is retried.
    b.inner.inject_prefix("cluster/keys/", Fault::Conflict);
    let (_, key2) = r.create_key("acme").unwrap();
    assert!(other.authenticate(key2.expose()).unwrap().is_some());
    // A revocation applied behind a 500 is ours, not "already revoked".
    b.inner
        .inject_prefix("cluster/keys/", Fault::ServerError { applied: true });
    assert!(r.revoke_key(&info.id).unwrap().revoked_at.is_some());
    assert!(r.authenticate(key.expose()).unwrap().is_none());
    // Never applied, every time: an error that says to retry, nothing half-made.
    for _ in 0..4 {
        b.inner
            .inject_prefix("cluster/tenants/", Fault::Timeout { applied: false });
    }
    let e = r.add_tenant("gamma").unwrap_err().to_string();
    assert!(
        e.contains("cluster/tenants/gamma") && e.contains("retry"),
        "{e}"
    );
    assert!(r.tenant("gamma").unwrap().is_none());
    // An offline bucket: a cached key still works, an unknown one is an
    // error (never a silent yes).
    b.inner.set_offline(true);
    assert!(other.authenticate(key2.expose()).unwrap().is_some());
    let fake = format!("shk_0123456789ab_{}", "A".repeat(43));
    assert!(other.authenticate(&fake).is_err());
    b.inner.set_offline(false);
}

#[test]
fn a_corrupt_object_is_an_error_not_a_panic() {
    let (b, clock) = (bucket(), Clock::new());
    let r = open(&b, &clock);
    let id = "0123456789ab";
    let fake = format!("shk_{id}_{}", "A".repeat(43));
    for bad in [
        &b"{not json"[..],
        br#"{"v":2,"id":"0123456789ab","tenant":"a","sha256":"x","created_at":"x","nonce":"n"}"#,
        br#"{"v":1,"id":"ffffffffffff","tenant":"a","sha256":"x","created_at":"x","nonce":"n"}"#,
        &[b' '; 70 * 1024][..],
    ] {
        b.inner.put(&format!("cluster/keys/{id}"), bad).unwrap();
        let e = open(&b, &clock)
            .authenticate(&fake)
            .unwrap_err()
            .to_string();
        assert!(e.contains("corrupt") && e.contains(id), "{e}");
        assert!(!e.contains(&"A".repeat(43)));
        assert!(r.list_keys().is_err());
    }
    b.inner.put("cluster/tenants/acme", b"[]").unwrap();
    let e = r.list_tenants().unwrap_err().to_string();
    assert!(
        e.contains("cluster/tenants/acme") && e.contains("corrupt"),
        "{e}"
    );
}

#[test]
fn a_backend_without_atomic_conditional_writes_is_refused() {
    struct Plain(MemoryBackend);
    impl Backend for Plain {
        fn put(&self, k: &str, b: &[u8]) -> Result<(), BackendError> {
            self.0.put(k, b)
        }
        fn get(&self, k: &str) -> Result<Option<Vec<u8>>, BackendError> {
            self.0.get(k)
        }
        fn has(&self, k: &str) -> Result<bool, BackendError> {
            self.0.has(k)
        }
        fn delete(&self, k: &str) -> Result<(), BackendError> {
            self.0.delete(k)
        }
        fn list(&self, p: &str) -> Result<Vec<String>, BackendError> {
            self.0.list(p)
        }
    }
    let e = Registry::open_bucket(Arc::new(Plain(MemoryBackend::new())))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("atomic conditional writes") && e.contains("s3.wasm"),
        "{e}"
    );
}

fn local() -> (tempfile::TempDir, Arc<LocalDirBackend>) {
    let d = tempfile::tempdir().unwrap();
    let b = Arc::new(LocalDirBackend::new(d.path().join("bucket")));
    (d, b)
}

#[test]
fn local_dir_backend_registries_share_tenants_keys_and_revocations() {
    let (_d, b) = local();
    let clock = Clock::new();
    let a = Registry::open_bucket_clocked(b.clone(), clock.f()).unwrap();
    let other = Registry::open_bucket_clocked(b.clone(), clock.f()).unwrap();
    assert!(a.list_tenants().unwrap().is_empty() && a.list_keys().unwrap().is_empty());
    a.add_tenant("acme").unwrap();
    assert!(matches!(
        other.add_tenant("acme"),
        Err(ServiceError::TenantExists(_))
    ));
    let (info, key) = other.create_key("acme").unwrap();
    assert!(b.has(&format!("cluster/keys/{}", info.id)).unwrap());
    assert!(b.has("cluster/tenants/acme").unwrap());
    assert_eq!(
        a.authenticate(key.expose()).unwrap().unwrap().key_id,
        info.id
    );
    assert_eq!(a.list_keys().unwrap(), vec![info.clone()]);
    // Revoked by compare-and-swap on one, refused there at once and by
    // the other after its TTL.
    a.revoke_key(&info.id).unwrap();
    assert!(a.authenticate(key.expose()).unwrap().is_none());
    assert!(other.authenticate(key.expose()).unwrap().is_some());
    clock.advance(BUCKET_CACHE_TTL);
    assert!(other.authenticate(key.expose()).unwrap().is_none());
    assert!(matches!(
        other.revoke_key(&info.id),
        Err(ServiceError::KeyAlreadyRevoked { .. })
    ));
    // A fresh registry on the same directory (a restarted host) sees all.
    let again = Registry::open_bucket(b.clone()).unwrap();
    assert_eq!(again.list_keys().unwrap()[0].id, info.id);
    assert!(again.list_keys().unwrap()[0].revoked_at.is_some());
    again.remove_tenant("acme").unwrap();
    assert!(!b.has("cluster/tenants/acme").unwrap());
    assert!(matches!(
        a.create_key("acme"),
        Err(ServiceError::NoSuchTenant(_))
    ));
}

#[test]
fn local_dir_backend_concurrent_first_starts_make_one_default_key() {
    for round in 0..10 {
        let (_d, b) = local();
        let n = 4;
        let barrier = Arc::new(Barrier::new(n));
        let threads: Vec<_> = (0..n)
            .map(|_| {
                let r = Registry::open_bucket(b.clone()).unwrap();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    r.ensure_default().unwrap().map(|k| k.expose().to_string())
                })
            })
            .collect();
        let keys: Vec<String> = threads
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(
            keys.len(),
            1,
            "round {round}: {} hosts printed a key",
            keys.len()
        );
        let r = Registry::open_bucket(b.clone()).unwrap();
        assert_eq!(r.list_keys().unwrap().len(), 1, "round {round}");
        assert_eq!(r.list_tenants().unwrap().len(), 1, "round {round}");
        assert_eq!(
            r.authenticate(&keys[0]).unwrap().unwrap().tenant,
            DEFAULT_TENANT
        );
        assert!(b.has("cluster/initialized").unwrap());
        assert!(r.ensure_default().unwrap().is_none());
    }
}

#[test]
fn local_dir_backend_concurrent_revocations_have_one_winner() {
    let (_d, b) = local();
    let r = Registry::open_bucket(b.clone()).unwrap();
    r.add_tenant("acme").unwrap();
    let (info, _) = r.create_key("acme").unwrap();
    let n = 4;
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let r = Registry::open_bucket(b.clone()).unwrap();
            let (barrier, id) = (barrier.clone(), info.id.clone());
            std::thread::spawn(move || {
                barrier.wait();
                r.revoke_key(&id)
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(ServiceError::KeyAlreadyRevoked { .. })))
    );
}

#[test]
fn a_key_made_while_its_tenant_is_removed_does_not_outlive_it() {
    // The tenant goes between create_key's check and its write: the new
    // key is revoked again and the call says the tenant is gone.
    struct DropTenantOnKeyWrite(LocalDirBackend);
    impl Backend for DropTenantOnKeyWrite {
        fn put(&self, k: &str, b: &[u8]) -> Result<(), BackendError> {
            self.0.put(k, b)
        }
        fn get(&self, k: &str) -> Result<Option<Vec<u8>>, BackendError> {
            self.0.get(k)
        }
        fn has(&self, k: &str) -> Result<bool, BackendError> {
            self.0.has(k)
        }
        fn delete(&self, k: &str) -> Result<(), BackendError> {
            self.0.delete(k)
        }
        fn list(&self, p: &str) -> Result<Vec<String>, BackendError> {
            self.0.list(p)
        }
        fn put_if(&self, k: &str, b: &[u8], pre: Precondition) -> Result<Etag, BackendError> {
            if k.starts_with("cluster/keys/") && pre == Precondition::IfAbsent {
                self.0.delete("cluster/tenants/acme")?;
            }
            self.0.put_if(k, b, pre)
        }
        fn get_with_etag(&self, k: &str) -> Result<Option<(Vec<u8>, Etag)>, BackendError> {
            self.0.get_with_etag(k)
        }
        fn capabilities(&self) -> Vec<sesshost_store::Capability> {
            self.0.capabilities()
        }
    }
    let d = tempfile::tempdir().unwrap();
    let b = Arc::new(DropTenantOnKeyWrite(LocalDirBackend::new(d.path())));
    let r = Registry::open_bucket(b.clone()).unwrap();
    r.add_tenant("acme").unwrap();
    assert!(matches!(
        r.create_key("acme"),
        Err(ServiceError::NoSuchTenant(_))
    ));
    let keys = r.list_keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].revoked_at.is_some(), "{keys:?}");
}

fn vector(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../format-spec/vectors/cluster")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// format-spec/vectors/cluster/{tenant,key,key-revoked,initialized}.json
/// (STORE.md, cluster objects) are read as written there, by a registry
/// that never wrote them; the key's known answer authenticates.
#[test]
fn the_spec_vectors_are_read_as_specified() {
    const KEY: &str = "shk_0123456789ab_AAAAAAAAAAAAAAAAAAAAbbbbbbbbbbbbbbbbbbbbbbb";
    let (b, clock) = (bucket(), Clock::new());
    b.inner
        .put("cluster/tenants/acme", &vector("tenant.json"))
        .unwrap();
    b.inner
        .put("cluster/keys/0123456789ab", &vector("key.json"))
        .unwrap();
    b.inner
        .put("cluster/initialized", &vector("initialized.json"))
        .unwrap();
    let r = open(&b, &clock);
    assert!(r.ensure_default().unwrap().is_none(), "initialized");
    let t = r.list_tenants().unwrap();
    assert_eq!(
        (t[0].name.as_str(), t[0].created_at.as_str()),
        ("acme", "2026-12-01T09:30:00Z")
    );
    let p = r.authenticate(KEY).unwrap().unwrap();
    assert_eq!(
        (p.tenant.as_str(), p.key_id.as_str()),
        ("acme", "0123456789ab")
    );
    assert_eq!(
        sha256_hex(KEY),
        serde_json::from_slice::<serde_json::Value>(&vector("key.json")).unwrap()["sha256"]
    );
    b.inner
        .put("cluster/keys/0123456789ab", &vector("key-revoked.json"))
        .unwrap();
    let k = open(&b, &clock).list_keys().unwrap();
    assert_eq!(k[0].revoked_at.as_deref(), Some("2026-12-02T10:00:00Z"));
    assert!(open(&b, &clock).authenticate(KEY).unwrap().is_none());
    // An unknown field is refused (corrupt), never ignored.
    let mut v: serde_json::Value = serde_json::from_slice(&vector("key.json")).unwrap();
    v["surprise"] = serde_json::json!(1);
    b.inner
        .put("cluster/keys/0123456789ab", v.to_string().as_bytes())
        .unwrap();
    let e = open(&b, &clock).authenticate(KEY).unwrap_err().to_string();
    assert!(e.contains("corrupt") && e.contains("surprise"), "{e}");
}
