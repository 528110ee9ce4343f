//! The `s3` storage backend against moto's S3 server (`pip install
//! 'moto[server]'`), a second S3 implementation with its own XML and error
//! shapes; moto also reports a missing bucket on writes. Found as
//! `moto_server` on PATH or via `$MOTO_SERVER`. Missing: the test fails
//! when `CI` is set, and is skipped with a printed note otherwise.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sesshost_plugin::{Grants, StorageBackend, StorageErrorKind};

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn moto() -> Option<(Moto, u16)> {
    let bin = std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|d| d.join("moto_server"))
                .find(|p| p.is_file())
        });
    let Some(bin) = bin else {
        if std::env::var_os("CI").is_some() {
            panic!("moto_server not found: pip install 'moto[server]' or set MOTO_SERVER");
        }
        eprintln!(
            "NOTE: moto_server not found (pip install 'moto[server]'); skipping the moto test"
        );
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let m = Moto(child);
    let until = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < until,
            "moto_server did not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((m, port))
}

/// Creates a bucket with a plain (unsigned) request; moto accepts it.
fn create_bucket(port: u16, name: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

fn backend(port: u16, bucket: &str) -> StorageBackend {
    let grants = Grants::default()
        .with_config([
            format!("endpoint=http://127.0.0.1:{port}").as_str(),
            &format!("bucket={bucket}"),
            "access_key_id=testing",
            "secret_access_key=testing",
            "region=eu-west-1",
        ])
        .unwrap()
        .with_hosts([format!("127.0.0.1:{port}").as_str()])
        .unwrap();
    runtime().load_storage(&wasm("s3"), &grants).unwrap()
}

#[tokio::test]
async fn s3_against_moto() {
    let Some((_moto, port)) = moto() else { return };
    let missing = backend(port, "not-there");
    for e in [
        missing.list("").await.unwrap_err(),
        missing.put("k", b"x").await.unwrap_err(),
    ] {
        assert_eq!(e.storage_kind(), Some(StorageErrorKind::Invalid), "{e}");
        assert!(
            e.to_string().contains("bucket `not-there` does not exist"),
            "{e}"
        );
    }

    create_bucket(port, "sessions");
    let s3 = backend(port, "sessions");
    s3.put("chunks/01/0123", b"moto blob").await.unwrap();
    s3.put("snapshots/a/0001", b"1").await.unwrap();
    assert_eq!(s3.get("chunks/01/0123").await.unwrap(), b"moto blob");
    assert!(s3.has("snapshots/a/0001").await.unwrap());
    assert_eq!(
        s3.list("").await.unwrap(),
        ["chunks/01/0123", "snapshots/a/0001"]
    );
    s3.delete("chunks/01/0123").await.unwrap();
    assert_eq!(s3.list("chunks/").await.unwrap(), Vec::<String>::new());
    let e = s3.get("chunks/01/0123").await.unwrap_err();
    assert_eq!(e.storage_kind(), Some(StorageErrorKind::NotFound), "{e}");
}
