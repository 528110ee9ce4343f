//! The `fs` storage backend on a granted directory and the `ttl` cleanup
//! strategy, through the crate's API on real wasmtime.

mod common;

use common::*;
use sesshost_plugin::{
    CHUNK, CleanupAction, CleanupLimits, DirGrant, Error, Grants, SessionInfo, SessionStatus,
    StorageErrorKind,
};

fn fs_grants(dir: &std::path::Path) -> Grants {
    Grants::default().with_dir(DirGrant::parse(dir.to_str().unwrap()).unwrap())
}

#[tokio::test]
async fn fs_put_get_has_list_delete_on_a_granted_dir() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let fs = rt
        .load_storage(&wasm("fs"), &fs_grants(dir.path()))
        .unwrap();
    fs.put("chunks/ab/abcdef", b"hello").await.unwrap();
    fs.put("snapshots/work/0001", b"").await.unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("chunks/ab/abcdef")).unwrap(),
        b"hello"
    );
    assert_eq!(fs.get("chunks/ab/abcdef").await.unwrap(), b"hello");
    assert_eq!(fs.get("snapshots/work/0001").await.unwrap(), b"");
    assert!(fs.has("chunks/ab/abcdef").await.unwrap());
    assert!(!fs.has("chunks/ab/missing").await.unwrap());
    assert_eq!(
        fs.list("").await.unwrap(),
        ["chunks/ab/abcdef", "snapshots/work/0001"]
    );
    assert_eq!(fs.list("snap").await.unwrap(), ["snapshots/work/0001"]);
    assert_eq!(fs.list("chunks/zz").await.unwrap(), Vec::<String>::new());
    let e = fs.get("chunks/ab/missing").await.unwrap_err();
    assert_eq!(e.storage_kind(), Some(StorageErrorKind::NotFound), "{e}");
    fs.delete("chunks/ab/abcdef").await.unwrap();
    fs.delete("chunks/ab/abcdef").await.unwrap();
    assert!(!fs.has("chunks/ab/abcdef").await.unwrap());
    // No temp files left behind.
    assert_eq!(
        std::fs::read_dir(dir.path().join(".tmp")).unwrap().count(),
        0
    );
}

#[tokio::test]
async fn fs_streams_a_blob_larger_than_a_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let fs = runtime()
        .load_storage(&wasm("fs"), &fs_grants(dir.path()))
        .unwrap();
    let blob: Vec<u8> = (0..(3 * CHUNK + 12345))
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    fs.put_reader("chunks/big", blob.len() as u64, &blob[..])
        .await
        .unwrap();
    let mut out = Vec::new();
    let n = fs.get_to_writer("chunks/big", &mut out).await.unwrap();
    assert_eq!(n, blob.len() as u64);
    assert!(out == blob, "round trip differs");
    // A short reader fails and leaves nothing under the key.
    let e = fs
        .put_reader("chunks/short", 10, &b"abc"[..])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(!fs.has("chunks/short").await.unwrap());
    // ... and the backend discarded its partial upload.
    assert_eq!(
        std::fs::read_dir(dir.path().join(".tmp")).unwrap().count(),
        0
    );
}

#[tokio::test]
async fn fs_without_a_granted_dir_is_denied_and_bad_keys_are_refused() {
    let fs = runtime()
        .load_storage(&wasm("fs"), &Grants::default())
        .unwrap();
    let e = fs.list("").await.unwrap_err();
    assert_eq!(e.storage_kind(), Some(StorageErrorKind::Denied), "{e}");
    assert!(e.to_string().contains("grant a directory"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let fs = runtime()
        .load_storage(&wasm("fs"), &fs_grants(dir.path()))
        .unwrap();
    for bad in ["../escape", "/abs", "a//b", ""] {
        let e = fs.put(bad, b"x").await.unwrap_err();
        assert_eq!(
            e.storage_kind(),
            Some(StorageErrorKind::Invalid),
            "{bad}: {e}"
        );
    }
    // A read-only grant refuses writes.
    let ro = Grants::default()
        .with_dir(DirGrant::parse(&format!("{}:/data:ro", dir.path().display())).unwrap());
    let fs = runtime().load_storage(&wasm("fs"), &ro).unwrap();
    let e = fs.put("k", b"x").await.unwrap_err();
    assert!(matches!(e, Error::Storage { .. }), "{e:?}");
}

const MIN: i64 = 60_000;

fn info(name: &str, tenant: &str, last_used_min_ago: i64, size: u64) -> SessionInfo {
    let now = 1_000 * MIN;
    SessionInfo {
        name: name.into(),
        tenant: Some(tenant.into()),
        created_at: now - 500 * MIN,
        last_used_at: now - last_used_min_ago * MIN,
        expires_at: None,
        ttl_secs: None,
        size_bytes: size,
        status: SessionStatus::Active,
    }
}

#[tokio::test]
async fn ttl_expires_hibernates_and_evicts_least_recently_used() {
    let rt = runtime();
    let ttl = rt.load_cleanup(&wasm("ttl"), &Grants::default()).unwrap();
    let now = 1_000 * MIN;
    let mut expired = info("expired", "a", 1, 10);
    expired.expires_at = Some(now - MIN);
    let mut gone = info("gone", "a", 1, 10);
    gone.status = SessionStatus::Expired;
    let sessions = vec![
        expired,
        gone,
        info("idle", "a", 45, 10),
        info("fresh", "a", 1, 10),
        info("b-old", "b", 20, 10),
        info("b-mid", "b", 10, 10),
        info("b-new", "b", 2, 10),
    ];
    let limits = CleanupLimits {
        now,
        max_sessions_per_tenant: Some(2),
        ..Default::default()
    };
    let d = ttl.decide(&sessions, &limits).await.unwrap();
    let act: Vec<(&str, CleanupAction)> = d.iter().map(|d| (d.name.as_str(), d.action)).collect();
    assert_eq!(
        act,
        [
            ("expired", CleanupAction::Expire),
            ("gone", CleanupAction::Delete),
            ("idle", CleanupAction::Hibernate),
            ("fresh", CleanupAction::Keep),
            ("b-old", CleanupAction::Delete),
            ("b-mid", CleanupAction::Keep),
            ("b-new", CleanupAction::Keep),
        ]
    );
    assert!(d[2].reason.contains("timeout 1800 s"), "{}", d[2].reason);
    assert!(
        d[4].reason.contains("tenant b has 3 sessions, limit 2"),
        "{}",
        d[4].reason
    );

    // Global byte quota, and the idle timeout from config.
    let ttl = rt
        .load_cleanup(
            &wasm("ttl"),
            &Grants::default()
                .with_config(["idle_timeout_secs=60"])
                .unwrap(),
        )
        .unwrap();
    let sessions = vec![
        info("x", "a", 0, 600),
        info("y", "b", 0, 600),
        info("z", "c", 3, 600),
    ];
    let d = ttl
        .decide(
            &sessions,
            &CleanupLimits {
                now,
                max_bytes: Some(1000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let act: Vec<CleanupAction> = d.iter().map(|d| d.action).collect();
    assert_eq!(
        act,
        [
            CleanupAction::Delete,
            CleanupAction::Keep,
            CleanupAction::Delete
        ],
        "{d:?}"
    );
    let bad = rt
        .load_cleanup(
            &wasm("ttl"),
            &Grants::default()
                .with_config(["idle_timeout_secs=soon"])
                .unwrap(),
        )
        .unwrap();
    let e = bad
        .decide(
            &sessions,
            &CleanupLimits {
                now,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("idle_timeout_secs must be a number"),
        "{e}"
    );
}
