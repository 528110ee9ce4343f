//! `PluginBackend`: the `fs` plugin as `sesshost_store`'s synchronous
//! `Backend`, called the way the engine calls it (from `spawn_blocking` in
//! a multi-thread runtime), from an async worker thread, and under a real
//! `sesshost_store::Store`.

mod common;

use std::sync::Arc;

use common::*;
use sesshost_plugin::{DirGrant, Error, Grants, PluginBackend, StorageBackend};
use sesshost_store::{Backend, RepoKey, Store};

fn fs_plugin(dir: &std::path::Path) -> StorageBackend {
    runtime()
        .load_storage(
            &wasm("fs"),
            &Grants::default().with_dir(DirGrant::parse(dir.to_str().unwrap()).unwrap()),
        )
        .unwrap()
}

/// Every `Backend` call once, with results checked against the directory.
fn exercise(b: &dyn Backend, dir: &std::path::Path) {
    b.put("chunks/ab/abcdef", b"hello").unwrap();
    b.put("sessions/work", b"").unwrap();
    assert_eq!(
        std::fs::read(dir.join("chunks/ab/abcdef")).unwrap(),
        b"hello"
    );
    assert_eq!(
        b.get("chunks/ab/abcdef").unwrap().as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(b.get("sessions/work").unwrap().as_deref(), Some(&b""[..]));
    assert_eq!(b.get("chunks/ab/missing").unwrap(), None);
    assert!(b.has("chunks/ab/abcdef").unwrap());
    assert!(!b.has("chunks/ab/missing").unwrap());
    let mut keys = b.list("").unwrap();
    keys.sort();
    assert_eq!(keys, ["chunks/ab/abcdef", "sessions/work"]);
    assert_eq!(b.list("sess").unwrap(), ["sessions/work"]);
    b.delete("chunks/ab/abcdef").unwrap();
    b.delete("chunks/ab/abcdef").unwrap();
    assert!(!b.has("chunks/ab/abcdef").unwrap());
    assert!(!dir.join("chunks/ab/abcdef").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_from_spawn_blocking_in_a_multi_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let b = PluginBackend::new(fs_plugin(dir.path()), tokio::runtime::Handle::current()).unwrap();
    let path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || exercise(&b, &path))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_on_an_async_worker_thread_without_nested_runtime_panic() {
    let dir = tempfile::tempdir().unwrap();
    let b = PluginBackend::new(fs_plugin(dir.path()), tokio::runtime::Handle::current()).unwrap();
    // Directly in the async fn: falls back to block_in_place.
    exercise(&b, dir.path());
}

#[test]
fn works_from_a_plain_thread_and_inside_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let b = Arc::new(PluginBackend::new(fs_plugin(dir.path()), mt.handle().clone()).unwrap());
    // A plain thread (no tokio context at all).
    exercise(&*b, dir.path());
    // On a current-thread runtime's own thread (block_in_place would
    // panic there), and from its spawn_blocking pool.
    let ct = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    ct.block_on(async {
        exercise(&*b, dir.path());
        let (b2, p) = (b.clone(), dir.path().to_path_buf());
        tokio::task::spawn_blocking(move || exercise(&*b2, &p))
            .await
            .unwrap();
    });
    // A current-thread handle is refused up front, naming the fix.
    let e = PluginBackend::new(fs_plugin(dir.path()), ct.handle().clone()).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(
        e.to_string().contains("fs.wasm") && e.to_string().contains("new_multi_thread"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_keeps_sessions_in_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let b = PluginBackend::new(fs_plugin(dir.path()), tokio::runtime::Handle::current()).unwrap();
    let state = sample_state();
    let expected = state.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        let store = Store::new(Box::new(b), &RepoKey::from_bytes([7; 32]));
        store
            .import_state("work", &state, false, 1_700_000_000_000)
            .unwrap();
        store.load("work").unwrap()
    })
    .await
    .unwrap();
    assert_eq!(loaded.cookies, expected.cookies);
    assert_eq!(loaded.origins, expected.origins);
    // The objects really are in the plugin's directory, encrypted.
    let sessions = std::fs::read_dir(dir.path().join("sessions"))
        .unwrap()
        .count();
    assert_eq!(sessions, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_errors_keep_their_kind_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = fs_plugin(dir.path());
    let b = PluginBackend::new(plugin, tokio::runtime::Handle::current()).unwrap();
    let e = tokio::task::spawn_blocking(move || b.put("bad//key", b"x"))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind, sesshost_store::BackendErrorKind::InvalidKey, "{e}");
    assert!(e.detail.contains("invalid storage key"), "{e}");
}

/// The fs plugin's conditional writes (create-only by link-at, if-match
/// under a create-new lock file), its BLAKE3 ETags (the same as the host's
/// LocalDirBackend gives), and the bucket probe over it.
#[test]
fn fs_plugin_conditional_writes_and_probe() {
    use sesshost_store::{BackendErrorKind, Etag, LocalDirBackend, Precondition};
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let b = PluginBackend::new(fs_plugin(dir.path()), rt.handle().clone()).unwrap();
    let e1 = b
        .put_if("leases/a", b"one", Precondition::IfAbsent)
        .unwrap();
    assert_eq!(e1, Etag::of_bytes(b"one"));
    let e = b
        .put_if("leases/a", b"two", Precondition::IfAbsent)
        .unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::PreconditionFailed, "{e}");
    let e = b
        .put_if(
            "leases/a",
            b"two",
            Precondition::IfMatch(Etag::of_bytes(b"x")),
        )
        .unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::PreconditionFailed, "{e}");
    let e2 = b
        .put_if("leases/a", b"two", Precondition::IfMatch(e1.clone()))
        .unwrap();
    // The host's own backend on the same directory agrees on the ETag.
    let local = LocalDirBackend::new(dir.path());
    assert_eq!(
        local.get_with_etag("leases/a").unwrap().unwrap(),
        (b"two".to_vec(), e2.clone())
    );
    assert_eq!(b.get_with_etag("leases/a").unwrap().unwrap().1, e2);
    assert_eq!(b.head("leases/a").unwrap().unwrap().size, 3);
    assert_eq!(b.head("leases/b").unwrap(), None);
    let e = b
        .put_if("leases/b", b"x", Precondition::IfMatch(e2))
        .unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::PreconditionFailed, "{e}");
    let page = b.list_info("leases/", None, 10).unwrap();
    assert_eq!(page.entries.len(), 1);
    let r = sesshost_store::probe::conditional_writes(&b).unwrap();
    println!(
        "probe on the fs plugin: {:.0} ms",
        r.total.as_secs_f64() * 1000.0
    );
}

/// A storage plugin on contract 0.1.0 (the old `fs`, kept as the test
/// plugin `fs01`) still loads and serves the five basic calls; it declares
/// no capability, refuses conditional writes as unsupported, the probe
/// refuses it up front, and a first push on it still creates `config`.
#[test]
fn a_0_1_storage_plugin_still_works_without_conditional_writes() {
    use sesshost_store::{BackendErrorKind, Etag, Precondition};
    let dir = tempfile::tempdir().unwrap();
    let plugin = runtime()
        .load_storage(
            &wasm("fs01"),
            &Grants::default().with_dir(DirGrant::parse(dir.path().to_str().unwrap()).unwrap()),
        )
        .unwrap();
    assert_eq!(plugin.contract_version(), "0.1.0");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let b = PluginBackend::new(plugin, rt.handle().clone()).unwrap();
    exercise(&b, dir.path());
    assert!(b.capabilities().is_empty());
    let e = b
        .put_if("leases/a", b"x", Precondition::IfAbsent)
        .unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::Unsupported, "{e}");
    assert!(e.detail.contains("0.2.0"), "{e}");
    assert_eq!(
        b.put_if("leases/a", b"x", Precondition::None).unwrap(),
        Etag::of_bytes(b"x")
    );
    assert_eq!(
        b.head("leases/a").unwrap().unwrap().etag,
        Etag::of_bytes(b"x")
    );
    assert_eq!(b.list_info("leases/", None, 5).unwrap().entries.len(), 1);
    let e = sesshost_store::probe::conditional_writes(&b).unwrap_err();
    assert_eq!(e.check, "declared", "{e}");
    let kf = [5u8; 32];
    let k =
        sesshost_store::open_repo_key(&b, sesshost_store::RepoUnlock::KeyFile(&kf), true).unwrap();
    let again =
        sesshost_store::open_repo_key(&b, sesshost_store::RepoUnlock::KeyFile(&kf), false).unwrap();
    assert_eq!(k.as_bytes(), again.as_bytes());
}
