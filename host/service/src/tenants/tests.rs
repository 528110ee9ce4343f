//! The registry in a home directory (the bucket's: `bucket_tests.rs`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::keys::{KEY_LEN, parse_key_id, sha256_hex};
use super::*;

fn reg() -> (tempfile::TempDir, Registry) {
    let d = tempfile::tempdir().unwrap();
    let r = Registry::open(d.path()).unwrap();
    (d, r)
}

#[test]
fn tenant_names() {
    for ok in ["a", "acme-1", "x_y", "z".repeat(64).as_str()] {
        validate_tenant_name(ok).unwrap();
    }
    for bad in ["", "A", "a.b", "../x", "a b", "é", "z".repeat(65).as_str()] {
        let e = validate_tenant_name(bad).unwrap_err().to_string();
        assert!(e.contains("a-z, 0-9"), "{e}");
    }
}

#[test]
fn tenants_add_list_remove() {
    let (d, r) = reg();
    r.add_tenant("acme").unwrap();
    r.add_tenant("beta").unwrap();
    let e = r.add_tenant("acme").unwrap_err();
    assert!(matches!(e, ServiceError::TenantExists(_)), "{e}");
    let names: Vec<_> = r
        .list_tenants()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["acme", "beta"]);
    assert!(r.tenant("acme").unwrap().is_some());
    assert!(r.tenant("../etc").unwrap().is_none());
    let (_, key) = r.create_key("acme").unwrap();
    assert!(r.authenticate(key.expose()).unwrap().is_some());
    r.remove_tenant("acme").unwrap();
    assert!(r.authenticate(key.expose()).unwrap().is_none());
    assert!(r.list_keys().unwrap()[0].revoked_at.is_some());
    assert!(matches!(
        r.remove_tenant("acme"),
        Err(ServiceError::NoSuchTenant(_))
    ));
    // Permissions.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.path().join("service")), 0o700);
    assert_eq!(mode(&d.path().join("service/keys")), 0o700);
    assert_eq!(mode(&d.path().join("service/tenants/beta.json")), 0o600);
}

#[test]
fn key_format_and_storage() {
    let (d, r) = reg();
    r.add_tenant("acme").unwrap();
    let (info, key) = r.create_key("acme").unwrap();
    let k = key.expose();
    assert_eq!(k.len(), KEY_LEN);
    assert!(k.starts_with("shk_"));
    assert_eq!(parse_key_id(k), Some(info.id.as_str()));
    assert_eq!(key.id(), info.id);
    let rec =
        std::fs::read_to_string(d.path().join(format!("service/keys/{}.json", info.id))).unwrap();
    assert!(!rec.contains(&k[17..]), "secret stored");
    assert!(rec.contains(&sha256_hex(k)));
    assert!(!format!("{key:?}").contains(&k[17..]));
    assert!(format!("{key:?}").contains(&info.id));
    let listed = serde_json::to_string(&r.list_keys().unwrap()).unwrap();
    assert!(listed.contains(&info.id) && !listed.contains("sha256") && !listed.contains(&k[17..]));
    assert!(matches!(
        r.create_key("nobody"),
        Err(ServiceError::NoSuchTenant(_))
    ));
}

#[test]
fn authenticate_accepts_refuses() {
    let (d, r) = reg();
    r.add_tenant("acme").unwrap();
    let (info, key) = r.create_key("acme").unwrap();
    let k = key.expose().to_string();
    let p = r.authenticate(&k).unwrap().unwrap();
    assert_eq!(
        p,
        Principal {
            tenant: "acme".into(),
            key_id: info.id.clone()
        }
    );
    // A wrong secret with the right id.
    let mut wrong = k.clone().into_bytes();
    let last = wrong.len() - 1;
    wrong[last] = if wrong[last] == b'A' { b'B' } else { b'A' };
    assert!(
        r.authenticate(std::str::from_utf8(&wrong).unwrap())
            .unwrap()
            .is_none()
    );
    for junk in [
        "",
        "shk_",
        "Bearer x",
        &k[..k.len() - 1],
        format!("{k}x").as_str(),
        "shk_../../../etc_passwdAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        assert!(r.authenticate(junk).unwrap().is_none(), "{junk}");
    }
    // A key made and revoked by another process (another Registry).
    let other = Registry::open(d.path()).unwrap();
    let (info2, key2) = other.create_key("acme").unwrap();
    assert!(r.authenticate(key2.expose()).unwrap().is_some());
    other.revoke_key(&info2.id).unwrap();
    assert!(r.authenticate(key2.expose()).unwrap().is_none());
    assert!(r.authenticate(&k).unwrap().is_some());
    assert!(matches!(
        r.revoke_key(&info2.id),
        Err(ServiceError::KeyAlreadyRevoked { .. })
    ));
    assert!(matches!(
        r.revoke_key("../x"),
        Err(ServiceError::NoSuchKey(_))
    ));
    assert!(matches!(
        r.revoke_key("000000000000"),
        Err(ServiceError::NoSuchKey(_))
    ));
}

#[test]
fn corrupt_record_is_an_error_not_a_panic() {
    let (d, r) = reg();
    let id = "0123456789ab";
    std::fs::write(
        d.path().join(format!("service/keys/{id}.json")),
        b"{not json",
    )
    .unwrap();
    let fake = format!("shk_{id}_{}", "A".repeat(43));
    let e = r.authenticate(&fake).unwrap_err().to_string();
    assert!(e.contains("corrupt") && e.contains(id), "{e}");
    assert!(!e.contains(&"A".repeat(43)));
}

#[test]
fn ensure_default_once() {
    let (d, r) = reg();
    let key = r
        .ensure_default()
        .unwrap()
        .expect("first start makes a key");
    let p = r.authenticate(key.expose()).unwrap().unwrap();
    assert_eq!(p.tenant, DEFAULT_TENANT);
    assert!(r.ensure_default().unwrap().is_none());
    assert!(
        Registry::open(d.path())
            .unwrap()
            .ensure_default()
            .unwrap()
            .is_none()
    );
    // A registry with tenants made before the first start gets no default.
    let (_d2, r2) = reg();
    r2.add_tenant("acme").unwrap();
    assert!(r2.ensure_default().unwrap().is_none());
    assert!(r2.tenant(DEFAULT_TENANT).unwrap().is_none());
}

#[test]
fn authenticate_speed() {
    let (_d, r) = reg();
    r.add_tenant("acme").unwrap();
    let (_, key) = r.create_key("acme").unwrap();
    let n = 2000;
    assert!(r.authenticate(key.expose()).unwrap().is_some());
    let t = std::time::Instant::now();
    for _ in 0..n {
        assert!(r.authenticate(key.expose()).unwrap().is_some());
    }
    let per = t.elapsed() / n;
    println!("authenticate: {per:?} per call (warm cache, {n} calls)");
    assert!(per < std::time::Duration::from_millis(2), "{per:?}");
}
