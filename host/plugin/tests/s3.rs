//! The `s3` storage backend against a real SigV4-checking S3 server on
//! loopback (`s3s-fs`, from `cargo install s3s-fs@0.14.1 --features binary`).
//! Found on PATH or via `$S3S_FS`. Missing: the tests fail when `CI` is set,
//! and are skipped with a printed note otherwise.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sesshost_plugin::{CHUNK, Error, Grants, StorageBackend, StorageErrorKind};

const AK: &str = "AKIDSESSHOSTTEST";
const SK: &str = "sesshost-test-secret-key";

struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s3s_fs() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("S3S_FS") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    let home_bin = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    std::env::split_paths(&path)
        .chain(home_bin)
        .map(|d| d.join("s3s-fs"))
        .find(|p| p.is_file())
}

/// Starts s3s-fs with bucket `sessions`; `None` (test skipped) if absent
/// and not in CI.
fn server() -> Option<Server> {
    let Some(bin) = s3s_fs() else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "s3s-fs not found: install it with `cargo install s3s-fs@0.14.1 --features binary` or set S3S_FS"
            );
        }
        eprintln!(
            "NOTE: s3s-fs not found (cargo install s3s-fs@0.14.1 --features binary); skipping the S3 test"
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sessions")).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&bin)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            AK,
            "--secret-key",
            SK,
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < until,
            "s3s-fs did not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Server {
        child,
        port,
        _dir: dir,
    })
}

fn backend(port: u16, extra: &[&str]) -> StorageBackend {
    let endpoint = format!("endpoint=http://127.0.0.1:{port}");
    let mut cfg = vec![
        endpoint.as_str(),
        "bucket=sessions",
        "access_key_id=AKIDSESSHOSTTEST",
        "prefix=team1/",
    ];
    cfg.extend_from_slice(extra);
    let secret = std::env::temp_dir().join(format!("sesshost-s3-secret-{port}"));
    std::fs::write(&secret, format!("{SK}\n")).unwrap();
    let sk = format!("secret_access_key=file:{}", secret.display());
    if !extra.iter().any(|e| e.starts_with("secret_access_key=")) {
        cfg.push(&sk);
    }
    let grants = Grants::default()
        .with_config(cfg)
        .unwrap()
        .with_hosts([format!("127.0.0.1:{port}").as_str()])
        .unwrap();
    runtime().load_storage(&wasm("s3"), &grants).unwrap()
}

#[tokio::test]
async fn s3_round_trip_against_a_sigv4_server() {
    let Some(srv) = server() else { return };
    let s3 = backend(srv.port, &[]);
    s3.put("chunks/ab/abcdef", b"hello s3").await.unwrap();
    s3.put("snapshots/work/0001", b"{}").await.unwrap();
    // It really is in the bucket, under the prefix.
    assert!(
        srv._dir
            .path()
            .join("sessions/team1/chunks/ab/abcdef")
            .exists()
    );
    assert_eq!(s3.get("chunks/ab/abcdef").await.unwrap(), b"hello s3");
    assert!(s3.has("chunks/ab/abcdef").await.unwrap());
    assert!(!s3.has("chunks/ab/nope").await.unwrap());
    assert_eq!(
        s3.list("").await.unwrap(),
        ["chunks/ab/abcdef", "snapshots/work/0001"]
    );
    assert_eq!(
        s3.list("snapshots/").await.unwrap(),
        ["snapshots/work/0001"]
    );
    let e = s3.get("chunks/ab/nope").await.unwrap_err();
    assert_eq!(e.storage_kind(), Some(StorageErrorKind::NotFound), "{e}");
    s3.delete("chunks/ab/abcdef").await.unwrap();
    assert!(!s3.has("chunks/ab/abcdef").await.unwrap());
    assert_eq!(s3.list("").await.unwrap(), ["snapshots/work/0001"]);

    // A multi-chunk blob streams both ways (ranged GETs).
    let blob: Vec<u8> = (0..(2 * CHUNK + 777)).map(|i| (i % 253) as u8).collect();
    s3.put_reader("chunks/big", blob.len() as u64, &blob[..])
        .await
        .unwrap();
    let got = s3.get("chunks/big").await.unwrap();
    assert!(
        got == blob,
        "big blob differs ({} vs {} bytes)",
        got.len(),
        blob.len()
    );
}

#[tokio::test]
async fn s3_wrong_credentials_are_denied() {
    let Some(srv) = server() else { return };
    let s3 = backend(srv.port, &["secret_access_key=wrong-secret"]);
    let e = s3.list("").await.unwrap_err();
    assert_eq!(e.storage_kind(), Some(StorageErrorKind::Denied), "{e}");
    assert!(
        e.to_string()
            .contains("check access_key_id / secret_access_key"),
        "{e}"
    );
    assert!(
        !e.to_string().contains("wrong-secret"),
        "secret leaked: {e}"
    );
    let e = s3.put("k", b"x").await.unwrap_err();
    assert_eq!(e.storage_kind(), Some(StorageErrorKind::Denied), "{e}");
}

#[tokio::test]
async fn s3_missing_bucket_is_named() {
    let Some(srv) = server() else { return };
    let s3 = backend(srv.port, &["bucket=no-such-bucket"]);
    let e = s3.list("").await.unwrap_err();
    assert_eq!(e.storage_kind(), Some(StorageErrorKind::Invalid), "{e}");
    assert!(
        e.to_string()
            .contains("bucket `no-such-bucket` does not exist"),
        "{e}"
    );
}

#[tokio::test]
async fn s3_endpoint_not_allowed_is_refused() {
    let Some(srv) = server() else { return };
    let grants = Grants::default()
        .with_config([
            format!("endpoint=http://127.0.0.1:{}", srv.port).as_str(),
            "bucket=sessions",
            "access_key_id=a",
            "secret_access_key=b",
        ])
        .unwrap();
    let s3 = runtime().load_storage(&wasm("s3"), &grants).unwrap();
    let e = s3.has("k").await.unwrap_err();
    assert!(matches!(e, Error::HostDenied { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains(&format!("--allow-host 127.0.0.1:{}", srv.port)),
        "{e}"
    );
    // Missing config is named.
    let s3 = runtime()
        .load_storage(&wasm("s3"), &Grants::default())
        .unwrap();
    let e = s3.list("").await.unwrap_err();
    assert!(
        e.to_string().contains("missing config key `endpoint`"),
        "{e}"
    );
}

/// s3s-fs answers every single conditional request right (so the
/// single-request checks pass) but applies them non-atomically: the
/// bucket probe must refuse it, naming the race it lost.
#[test]
fn s3_probe_refuses_s3s_fs_naming_the_race() {
    let Some(srv) = server() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let b =
        sesshost_plugin::PluginBackend::new(backend(srv.port, &[]), rt.handle().clone()).unwrap();
    use sesshost_store::{Backend, BackendErrorKind, Precondition};
    // The single-request semantics are there...
    let e1 = b.put_if("leases/x", b"1", Precondition::IfAbsent).unwrap();
    let e = b
        .put_if("leases/x", b"2", Precondition::IfAbsent)
        .unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::PreconditionFailed, "{e}");
    b.put_if("leases/x", b"2", Precondition::IfMatch(e1))
        .unwrap();
    // ... listings come without ETags, so list-info HEADs each key.
    let page = b.list_info("leases/", None, 10).unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(
        page.entries[0].etag,
        Some(b.head("leases/x").unwrap().unwrap().etag)
    );
    // ... but two racing writers both win.
    let e = sesshost_store::probe::conditional_writes(&b).unwrap_err();
    assert!(matches!(e.check, "create-race" | "cas-race"), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("non-atomically") && msg.contains("Ceph RGW"),
        "{msg}"
    );
    println!("probe on s3s-fs: {msg}");
}
