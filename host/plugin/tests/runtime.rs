//! Runtime-level behaviour: compiled-component cache, hot reload with a
//! call in flight, inspect, manifests, concurrency, allocation strategies.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use common::*;
use sesshost_plugin::{Error, Grants, Pooling, RuntimeConfig, SanitizeContext};

fn export_ctx() -> SanitizeContext {
    SanitizeContext {
        purpose: "export".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn compiled_components_are_cached_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let cfg = || RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..Default::default()
    };
    let a = runtime_with(cfg());
    a.load_sanitizer(&wasm("redact"), &Grants::default())
        .unwrap();
    assert_eq!((a.cache_stats().hits, a.cache_stats().misses), (0, 1));
    let hash = blake3::hash(&std::fs::read(wasm("redact")).unwrap())
        .to_hex()
        .to_string();
    let entries: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        entries[0].starts_with(&hash) && entries[0].ends_with(".cwasm"),
        "{entries:?}"
    );

    // A second runtime loads from the cache, and the plugin works.
    let b = runtime_with(cfg());
    let p = b
        .load_sanitizer(&wasm("redact"), &Grants::default())
        .unwrap();
    assert_eq!((b.cache_stats().hits, b.cache_stats().misses), (1, 0));
    p.sanitize(&sample_state(), &export_ctx()).await.unwrap();

    // A corrupt entry is a miss, not an error, and is rewritten. (Replaced
    // by rename, as the runtime itself writes: entries are mmapped, and
    // truncating one in place under a live runtime would fault.)
    drop((p, b));
    let entry = cache.path().join(&entries[0]);
    let tmp = cache.path().join("garbage.tmp");
    std::fs::write(&tmp, b"garbage").unwrap();
    std::fs::rename(&tmp, &entry).unwrap();
    let c = runtime_with(cfg());
    c.load_sanitizer(&wasm("redact"), &Grants::default())
        .unwrap();
    assert_eq!((c.cache_stats().hits, c.cache_stats().misses), (0, 1));
    assert!(std::fs::metadata(&entry).unwrap().len() > 1000);
}

#[tokio::test]
async fn hot_reload_swaps_while_a_call_in_flight_finishes_on_the_old_version() {
    // A server that holds its response until told to answer, so the
    // hostile plugin's call is provably in flight during the reload.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (accepted_tx, accepted_rx) = std::sync::mpsc::channel();
    let (answer_tx, answer_rx) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        accepted_tx.send(()).unwrap();
        answer_rx.recv().unwrap();
        s.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
            .unwrap();
    });

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.wasm");
    std::fs::copy(wasm("hostile"), &path).unwrap();
    let rt = runtime();
    let grants = Grants::default()
        .with_hosts([format!("127.0.0.1:{port}").as_str()])
        .unwrap();
    let p = Arc::new(rt.load_sanitizer(&path, &grants).unwrap());
    let old_hash = p.blake3();
    assert!(!p.reload().unwrap(), "unchanged file must not reload");

    let p2 = p.clone();
    let url = format!("http://127.0.0.1:{port}/");
    let in_flight = tokio::spawn(async move {
        let ctx = SanitizeContext {
            config: vec![("do".into(), "connect".into()), ("url".into(), url)],
            ..export_ctx()
        };
        p2.sanitize(&sample_state(), &ctx).await
    });
    tokio::task::spawn_blocking(move || accepted_rx.recv().unwrap())
        .await
        .unwrap();

    std::fs::copy(wasm("redact"), &path).unwrap();
    assert!(p.reload().unwrap());
    assert_ne!(p.blake3(), old_hash);
    let (_, report) = p.sanitize(&sample_state(), &export_ctx()).await.unwrap();
    assert!(report.summary.starts_with("redact:"), "{}", report.summary);

    answer_tx.send(()).unwrap();
    let (_, old_report) = in_flight.await.unwrap().unwrap();
    assert_eq!(old_report.summary, "status 204");
    assert_eq!(old_report.blake3, old_hash);
    server.join().unwrap();

    // A bad replacement is refused and the loaded version stays.
    std::fs::copy(wasm("ttl"), &path).unwrap();
    let e = p.reload().unwrap_err();
    assert!(matches!(e, Error::WorldMismatch { .. }), "{e:?}");
    let (_, report) = p.sanitize(&sample_state(), &export_ctx()).await.unwrap();
    assert!(report.summary.starts_with("redact:"), "{}", report.summary);
}

#[tokio::test]
async fn inspect_reports_world_version_exports_and_capabilities() {
    let rt = runtime();
    let info = rt.inspect(&wasm("redact")).unwrap();
    assert_eq!(info.world.as_deref(), Some("sanitizer"));
    assert_eq!(info.version.as_deref(), Some("0.1.0"));
    assert!(info.loadable, "{:?}", info.problem);
    assert!(
        info.exports
            .iter()
            .any(|e| e == "sesshost:plugin/sanitize@0.1.0#sanitize"),
        "{:?}",
        info.exports
    );
    assert!(
        !info.capabilities.iter().any(|c| c.contains("HTTP")),
        "{:?}",
        info.capabilities
    );
    let text = info.to_string();
    assert!(
        text.contains("world:   sanitizer (sesshost:plugin@0.1.0)")
            && text.contains("status:  loadable"),
        "{text}"
    );

    let s3 = rt.inspect(&wasm("s3")).unwrap();
    assert_eq!(s3.world.as_deref(), Some("storage-backend"));
    assert!(
        s3.capabilities.iter().any(|c| c.contains("outgoing HTTP")),
        "{:?}",
        s3.capabilities
    );
    assert!(
        s3.imports
            .iter()
            .any(|i| i.starts_with("wasi:http/outgoing-handler@")),
        "{:?}",
        s3.imports
    );
    let json = serde_json::to_value(&s3).unwrap();
    assert_eq!(json["world"], "storage-backend");
    assert_eq!(json["blake3"].as_str().unwrap().len(), 64);

    let fs = rt.inspect(&wasm("fs")).unwrap();
    assert!(
        fs.capabilities.iter().any(|c| c.starts_with("filesystem")),
        "{:?}",
        fs.capabilities
    );
    assert!(
        rt.inspect(std::path::Path::new("/nonexistent.wasm"))
            .unwrap_err()
            .to_string()
            .contains("cannot read plugin")
    );
}

#[tokio::test]
async fn manifest_requests_are_intersected_with_operator_grants() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s3.wasm");
    std::fs::copy(wasm("s3"), &path).unwrap();
    let hash = blake3::hash(&std::fs::read(&path).unwrap())
        .to_hex()
        .to_string();
    std::fs::write(
        dir.path().join("s3.toml"),
        "[requests]\nhosts = [\"x.example:443\"]\n",
    )
    .unwrap();
    let rt = runtime();
    let e = rt
        .load_storage(&path, &Grants::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("s3.wasm asked for network access to x.example:443; allow it with --allow-host x.example:443"), "{e}");
    rt.load_storage(
        &path,
        &Grants::default()
            .with_hosts(["x.example:443", "y.example:443"])
            .unwrap(),
    )
    .unwrap();

    std::fs::write(
        dir.path().join("s3.toml"),
        format!("blake3 = \"{}\"\n", "0".repeat(64)),
    )
    .unwrap();
    let e = rt.load_storage(&path, &Grants::default()).err().unwrap();
    assert!(matches!(e, Error::PinMismatch { .. }), "{e:?}");
    std::fs::write(dir.path().join("s3.toml"), format!("blake3 = \"{hash}\"\n")).unwrap();
    rt.load_storage(&path, &Grants::default()).unwrap();
    std::fs::write(dir.path().join("s3.toml"), "hosts = 3\n").unwrap();
    let e = rt.load_storage(&path, &Grants::default()).err().unwrap();
    assert!(matches!(e, Error::Manifest { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_beyond_the_pool_wait_their_turn() {
    for pooling in [Pooling::Auto, Pooling::Off] {
        let rt = runtime_with(RuntimeConfig {
            max_concurrent_calls: 3,
            pooling,
            ..Default::default()
        });
        if pooling == Pooling::Off {
            assert!(!rt.pooling_enabled());
        }
        let p = Arc::new(
            rt.load_sanitizer(&wasm("redact"), &Grants::default())
                .unwrap(),
        );
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                p.sanitize(&sample_state(), &export_ctx())
                    .await
                    .map(|(s, _)| s.cookies.len())
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 2);
        }
    }
}

/// Every field of the state model survives the trip into a plugin and back
/// (the hostile plugin passes the state through unchanged).
#[tokio::test]
async fn full_state_round_trips_through_a_plugin() {
    let mut st = sessbundle::state::SessionState::new("rt", 1_700_000_000_000);
    st.meta.labels.insert("team".into(), "a".into());
    st.cookies.push(sessbundle::state::Cookie {
        name: "sid".into(),
        value: "v".into(),
        domain: ".a.example".into(),
        path: "/".into(),
        expires: Some(1.5),
        same_site: Some(sessbundle::state::SameSite::Lax),
        partition_key: Some(sessbundle::state::PartitionKey {
            top_level_site: "https://a.example".into(),
            has_cross_site_ancestor: true,
        }),
        ..Default::default()
    });
    st.origins.push(sessbundle::state::OriginState {
        origin: "https://a.example".into(),
        local_storage: vec![sessbundle::state::StorageItem {
            key: "k".into(),
            value: "v".into(),
        }],
        indexed_db: vec![sessbundle::state::IdbDatabase {
            name: "db".into(),
            version: 3,
            object_stores: vec![sessbundle::state::IdbObjectStore {
                name: "os".into(),
                key_path: Some(sessbundle::state::KeyPath::Compound(vec![
                    "a".into(),
                    "b".into(),
                ])),
                records: vec![sessbundle::state::IdbRecord {
                    key: sessbundle::state::JsValue::Number(sessbundle::state::JsNumber(f64::NAN)),
                    value: sessbundle::state::JsValue::Object(vec![(
                        "x".into(),
                        sessbundle::state::JsValue::BigInt("-12".into()),
                    )]),
                }],
                ..Default::default()
            }],
        }],
    });
    st.tabs.push(sessbundle::state::Tab {
        url: "https://a.example/".into(),
        history: vec![sessbundle::state::HistoryEntry {
            url: "https://a.example/".into(),
            title: "A".into(),
        }],
        ..Default::default()
    });
    st.extra
        .entry("wf".into())
        .or_default()
        .insert("id".into(), "42".into());
    let p = runtime()
        .load_sanitizer(&wasm("hostile"), &Grants::default())
        .unwrap();
    let (back, _) = p.sanitize(&st, &SanitizeContext::default()).await.unwrap();
    assert_eq!(back, st);
}
