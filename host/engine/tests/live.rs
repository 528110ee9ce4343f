//! Live sessions in real Chromium against the real fixture app:
//! `open_live_in` restores into a browser launched beforehand (the
//! service's warm pool) with the session's emulation.

use std::path::Path;

use sessbundle::state::{Cookie, OriginState, StorageItem, Tab};
use sesshost_browser::{BrowserSession, LaunchOptions};
use sesshost_engine::{Engine, HomeMode, OpenRequest};
use sesshost_fixture::Fixture;
use sesshost_store::NewSession;

/// A stored session "pool" with emulation, a cookie, localStorage and one
/// tab on the fixture.
async fn stored(home: &Path, fx: &Fixture) -> Engine {
    let engine = Engine::open(home, HomeMode::Create).unwrap();
    engine
        .create(NewSession {
            name: "pool".into(),
            user_agent: Some("sesshost-pool/1".into()),
            timezone: Some("Asia/Tokyo".into()),
            locale: Some("fr-FR".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let store = engine.store().clone();
    // The fixture's site A is http://127.0.0.1:PORT.
    let host = "127.0.0.1".to_string();
    let (origin, url) = (fx.site_a.clone(), fx.a("/"));
    tokio::task::spawn_blocking(move || {
        let mut s = store.load("pool").unwrap();
        s.cookies.push(Cookie {
            name: "pooled".into(),
            value: "yes".into(),
            domain: host,
            path: "/".into(),
            ..Default::default()
        });
        s.origins.push(OriginState {
            origin,
            local_storage: vec![StorageItem {
                key: "k".into(),
                value: "v".into(),
            }],
            indexed_db: vec![],
        });
        s.tabs.push(Tab {
            url,
            title: "Fixture".into(),
            ..Default::default()
        });
        store.save("pool", &s, sesshost_store::now_ms()).unwrap();
    })
    .await
    .unwrap();
    engine
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().next() != Some("Z"))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_live_in_restores_into_a_pooled_browser_with_its_emulation() {
    let fx = Fixture::start();
    let d = tempfile::tempdir().unwrap();
    let engine = stored(&d.path().join("home"), &fx).await;
    let pooled = || {
        BrowserSession::launch(LaunchOptions {
            profile_root: Some(engine.run_dir()),
            ..Default::default()
        })
    };

    let mut live = engine
        .open_live_in(
            OpenRequest {
                name: "pool".into(),
                ..Default::default()
            },
            pooled().await.unwrap(),
        )
        .await
        .unwrap();
    // open_live_in returns once the restore is in force; the tabs finish
    // loading in the background.
    live.restored().await.unwrap();
    assert_eq!(live.seq(), None);
    assert_eq!(live.state().tabs.len(), 1);
    assert_eq!(
        live.browser().emulation().timezone.as_deref(),
        Some("Asia/Tokyo")
    );
    let mut seen = None;
    for p in live.browser().cdp().pages().await.unwrap() {
        if p.url().await.ok().flatten().as_deref() == Some(fx.a("/").as_str()) {
            let v = p
                .evaluate("JSON.stringify([navigator.userAgent, navigator.language, Intl.DateTimeFormat().resolvedOptions().timeZone, document.cookie, localStorage.getItem('k')])")
                .await
                .unwrap();
            seen = v.into_value::<String>().ok();
        }
    }
    assert_eq!(
        seen.as_deref(),
        Some(r#"["sesshost-pool/1","fr-FR","Asia/Tokyo","pooled=yes","v"]"#),
        "the restored tab, in the session's emulation"
    );
    let pid = live.browser().pid().unwrap();
    // A second open of the same session fails, and shuts its browser down.
    let other = pooled().await.unwrap();
    let other_pid = other.pid().unwrap();
    let err = engine
        .open_live_in(
            OpenRequest {
                name: "pool".into(),
                ..Default::default()
            },
            other,
        )
        .await
        .err()
        .expect("the session is open already");
    assert!(!err.to_string().is_empty());
    assert!(
        !alive(other_pid),
        "the browser of a failed open is shut down"
    );
    // Closing saves what the pooled browser holds: the restored cookie.
    let report = live.close(true).await.unwrap();
    assert!(report.seq.is_some());
    assert!(!alive(pid));
    let store = engine.store().clone();
    let saved = tokio::task::spawn_blocking(move || store.load("pool").unwrap())
        .await
        .unwrap();
    assert!(
        saved
            .cookies
            .iter()
            .any(|c| c.name == "pooled" && c.value == "yes")
    );
    assert_eq!(saved.meta.timezone.as_deref(), Some("Asia/Tokyo"));
}
