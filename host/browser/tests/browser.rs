//! Tests against real Chromium (`SESSHOST_CHROMIUM` or `chromium` on PATH)
//! and the real fixture app on 127.0.0.1/localhost.

use std::collections::BTreeMap;
use std::time::Duration;

use chromiumoxide::Page;
use sessbundle::state::*;
use sesshost_browser::{BrowserSession, Emulation, LaunchOptions};
use sesshost_fixture::Fixture;

mod common;
use common::{eval_str, group_members, launch, open, processes_mentioning, wait_for};

async fn login(s: &BrowserSession, fx: &Fixture, user: &str) -> Page {
    let page = open(s, &fx.a("/login")).await;
    page.evaluate(format!(
        "document.getElementById('user').value = '{user}'; document.forms[0].submit(); true"
    ))
    .await
    .unwrap();
    wait_for(
        &page,
        &format!("document.getElementById('status')?.textContent === 'logged in as {user}'"),
    )
    .await;
    page
}

fn find<'a>(state: &'a SessionState, origin: &str) -> &'a OriginState {
    state
        .origins
        .iter()
        .find(|o| o.origin == origin)
        .unwrap_or_else(|| {
            panic!(
                "origin {origin} not captured: {:?}",
                state.origins.iter().map(|o| &o.origin).collect::<Vec<_>>()
            )
        })
}

fn record<'a>(store: &'a IdbObjectStore, key: &str) -> &'a JsValue {
    &store
        .records
        .iter()
        .find(|r| r.key == JsValue::String(key.into()))
        .unwrap_or_else(|| panic!("no record {key}"))
        .value
}

fn s(v: &str) -> JsValue {
    JsValue::String(v.into())
}

/// Build the fixture's whole state in a browser: login on site A (cookie +
/// localStorage), wizard in a second tab (sessionStorage + history), typed
/// IndexedDB on site B in a tab that is then closed, a partitioned cookie.
async fn build_state(s: &BrowserSession, fx: &Fixture) {
    let _app = login(s, fx, "alice").await;
    let wizard = open(s, &fx.a("/wizard")).await;
    wizard.evaluate("advance(); advance(); true").await.unwrap();
    wizard.goto(fx.a("/wizard?view=summary")).await.unwrap();
    wait_for(&wizard, "document.title === 'Wizard step 3'").await;
    let idb = open(s, &fx.b("/idb")).await;
    wait_for(&idb, "document.title.startsWith('idb ')").await;
    assert_eq!(eval_str(&idb, "document.title").await, "idb ready");
    idb.evaluate("localStorage.setItem('siteB', 'b-value'); true")
        .await
        .unwrap();
    // The origin must be captured although no tab shows it any more.
    idb.close().await.unwrap();
    let chips = open(s, &fx.a("/chips")).await;
    wait_for(&chips, "document.title === 'chips loaded'").await;
    chips.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_every_surface_then_restore_logged_in_on_first_load() {
    let fx = Fixture::start();
    let s1 = launch().await;
    build_state(&s1, &fx).await;
    let state = s1.capture(None).await.expect("capture");

    // Cookies.
    let sid = state
        .cookies
        .iter()
        .find(|c| c.name == "sid")
        .expect("sid cookie");
    assert!(sid.http_only && !sid.secure);
    assert_eq!(sid.expires, None, "session cookie must have no expiry");
    assert_eq!(sid.same_site, Some(SameSite::Lax));
    assert_eq!(sid.domain, "127.0.0.1");
    assert_eq!(sid.priority, Some(CookiePriority::Medium));
    assert_eq!(sid.source_scheme, Some(SourceScheme::NonSecure));
    assert_eq!(sid.source_port, Some(fx.port as i32));
    let pref = state
        .cookies
        .iter()
        .find(|c| c.name == "pref")
        .expect("pref cookie");
    assert!(pref.expires.is_some_and(|e| e > 0.0));
    assert_eq!(pref.same_site, Some(SameSite::Strict));
    let chip = state
        .cookies
        .iter()
        .find(|c| c.name == "chip")
        .expect("partitioned cookie");
    assert!(chip.secure);
    assert_eq!(chip.domain, "localhost");
    assert_eq!(chip.same_site, Some(SameSite::None));
    let pk = chip.partition_key.as_ref().expect("partition key");
    assert_eq!(pk.top_level_site, "http://127.0.0.1");
    assert!(pk.has_cross_site_ancestor);

    // localStorage of both sites (site B's tab is closed).
    let a = find(&state, &fx.site_a);
    let login = fx.logins().into_values().next().expect("a login");
    assert!(a.local_storage.contains(&StorageItem {
        key: "authToken".into(),
        value: login.token.clone()
    }));
    let b = find(&state, &fx.site_b);
    assert!(b.local_storage.contains(&StorageItem {
        key: "siteB".into(),
        value: "b-value".into()
    }));

    // IndexedDB schema and typed values.
    let db = b
        .indexed_db
        .iter()
        .find(|d| d.name == "fixture-db")
        .expect("fixture-db");
    assert_eq!(db.version, 3);
    let items = db.object_stores.iter().find(|o| o.name == "items").unwrap();
    assert_eq!(items.key_path, Some(KeyPath::Single("id".into())));
    assert!(items.auto_increment);
    assert_eq!(items.key_generator, Some(3));
    let by_tag = items.indexes.iter().find(|i| i.name == "byTag").unwrap();
    assert!(by_tag.multi_entry && !by_tag.unique);
    assert!(
        items
            .indexes
            .iter()
            .find(|i| i.name == "byName")
            .unwrap()
            .unique
    );
    assert_eq!(items.records.len(), 2);
    assert_eq!(items.records[0].key, JsValue::Number(JsNumber(1.0)));
    let JsValue::Object(alpha) = &items.records[0].value else {
        panic!("object")
    };
    assert!(alpha.contains(&("when".into(), JsValue::Date(JsNumber(1700000000000.0)))));
    let counter = db
        .object_stores
        .iter()
        .find(|o| o.name == "counter")
        .unwrap();
    assert_eq!(counter.key_path, None);
    assert_eq!(counter.records.len(), 2);
    assert_eq!(
        counter.key_generator,
        Some(4),
        "generator survives deleted records"
    );
    let compound = db
        .object_stores
        .iter()
        .find(|o| o.name == "compound")
        .unwrap();
    assert_eq!(
        compound.key_path,
        Some(KeyPath::Compound(vec!["a".into(), "b".into()]))
    );
    let typed = db.object_stores.iter().find(|o| o.name == "typed").unwrap();
    assert_eq!(
        record(typed, "date"),
        &JsValue::Date(JsNumber(1600000000123.0))
    );
    assert_eq!(
        record(typed, "arraybuffer"),
        &JsValue::ArrayBuffer(Bytes(vec![1, 2, 3, 250]))
    );
    let JsValue::TypedArray(f64s) = record(typed, "float64") else {
        panic!("typed array")
    };
    assert_eq!(f64s.kind, "Float64Array");
    assert_eq!(f64s.bytes.len(), 32);
    assert_eq!(
        record(typed, "blob"),
        &JsValue::Blob(JsBlob {
            mime: "text/plain".into(),
            bytes: Bytes(b"hello blob".to_vec())
        })
    );
    assert_eq!(
        record(typed, "map"),
        &JsValue::Map(vec![
            (s("k"), JsValue::Number(JsNumber(1.0))),
            (JsValue::Number(JsNumber(2.0)), JsValue::Set(vec![s("s")])),
        ])
    );
    assert_eq!(
        record(typed, "set"),
        &JsValue::Set(vec![
            JsValue::Number(JsNumber(1.0)),
            s("a"),
            JsValue::Date(JsNumber(0.0))
        ])
    );
    let JsValue::Object(nested) = record(typed, "nested") else {
        panic!("nested")
    };
    let JsValue::Object(deep) = &nested[0].1 else {
        panic!("deep")
    };
    assert_eq!(
        deep[0].1,
        JsValue::Array(vec![
            JsValue::TypedArray(JsTypedArray {
                kind: "Uint8Array".into(),
                bytes: Bytes(vec![9])
            }),
            JsValue::Null,
            JsValue::Undefined,
            JsValue::Bool(true),
            JsValue::BigInt("12345678901234567890".into()),
        ])
    );
    let keys: Vec<&JsValue> = typed.records.iter().map(|r| &r.key).collect();
    assert!(keys.contains(&&JsValue::Date(JsNumber(1234567890000.0))));
    assert!(keys.contains(&&JsValue::ArrayBuffer(Bytes(vec![0xde, 0xad]))));
    assert!(keys.contains(&&JsValue::Array(vec![
        JsValue::Number(JsNumber(1.0)),
        s("b"),
        JsValue::Date(JsNumber(5.0))
    ])));
    let empty = b
        .indexed_db
        .iter()
        .find(|d| d.name == "empty-db")
        .expect("empty-db");
    assert_eq!(empty.object_stores.len(), 1);
    assert!(empty.object_stores[0].records.is_empty());

    // Tabs: app and wizard, in order; wizard with sessionStorage + history.
    let urls: Vec<&str> = state.tabs.iter().map(|t| t.url.as_str()).collect();
    assert_eq!(
        urls,
        vec![fx.a("/app"), fx.a("/wizard?view=summary")],
        "{:#?}",
        state.tabs
    );
    assert_eq!(state.tabs[0].title, "App alice");
    let wiz = &state.tabs[1];
    assert_eq!(wiz.title, "Wizard step 3");
    assert_eq!(
        wiz.session_storage,
        vec![OriginStorage {
            origin: fx.site_a.clone(),
            items: vec![StorageItem {
                key: "wizardStep".into(),
                value: "3".into()
            }]
        }]
    );
    assert_eq!(
        wiz.history,
        vec![
            HistoryEntry {
                url: fx.a("/wizard"),
                title: "Wizard step 3".into()
            },
            HistoryEntry {
                url: fx.a("/wizard?view=summary"),
                title: "Wizard step 3".into()
            },
        ]
    );
    assert_eq!(wiz.current_index, 1);
    assert_eq!(state.tabs[0].history[0].url, fx.a("/login"));
    assert!(
        state
            .meta
            .browser
            .as_ref()
            .is_some_and(|b| !b.version.is_empty())
    );

    // The state survives the model's own encodings.
    let json = serde_json::to_string(&state).unwrap();
    assert_eq!(serde_json::from_str::<SessionState>(&json).unwrap(), state);
    s1.shutdown().await;

    // Restore into a fresh browser: the app sees the user on first load.
    fx.reset_hits();
    let s2 = launch().await;
    s2.restore(&state).await.expect("restore");
    assert_eq!(
        fx.hits("GET /app anon"),
        0,
        "the app saw a logged-out request"
    );
    assert_eq!(
        fx.hits("GET /login?reason=token anon") + fx.hits("GET /login?reason=token auth"),
        0
    );
    assert_eq!(fx.hits("GET /login anon"), 0);
    assert_eq!(fx.hits("GET /app auth"), 1);
    let pages = s2.cdp().pages().await.unwrap();
    let mut app = None;
    for p in pages {
        // Pages closed by restore (the initial blank tab) may still be listed.
        if p.url().await.ok().flatten().unwrap_or_default() == fx.a("/app") {
            app = Some(p);
        }
    }
    let app = app.expect("app tab restored");
    assert_eq!(
        eval_str(&app, "document.getElementById('status').textContent").await,
        "logged in as alice"
    );

    // Capturing again gives the same state (apart from the meta's times).
    let again = s2.capture(Some(&state)).await.expect("capture again");
    let sort = |mut c: Vec<Cookie>| {
        c.sort_by(|a, b| (&a.name, &a.domain).cmp(&(&b.name, &b.domain)));
        c
    };
    assert_eq!(sort(again.cookies.clone()), sort(state.cookies.clone()));
    assert_eq!(again.origins, state.origins);
    assert_eq!(again.tabs, state.tabs);
    s2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_round_trip_exactly() {
    // Chromium caps expiry at 400 days from now (RFC 6265bis); stay below.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let far = (now + 30.0 * 86400.0).floor() + 0.5;
    let cookie = |name: &str, domain: &str| Cookie {
        name: name.into(),
        value: format!("v-{name}"),
        domain: domain.into(),
        path: "/".into(),
        priority: Some(CookiePriority::Medium),
        source_scheme: Some(SourceScheme::NonSecure),
        source_port: Some(80),
        ..Cookie::default()
    };
    let mut cookies = vec![
        Cookie {
            http_only: true,
            same_site: Some(SameSite::Lax),
            ..cookie("session", "example.test")
        },
        Cookie {
            expires: Some(far),
            same_site: Some(SameSite::Strict),
            priority: Some(CookiePriority::High),
            ..cookie("persistent", ".example.test")
        },
        Cookie {
            secure: true,
            same_site: Some(SameSite::None),
            source_scheme: Some(SourceScheme::Secure),
            source_port: Some(443),
            partition_key: Some(PartitionKey {
                top_level_site: "https://top.test".into(),
                has_cross_site_ancestor: true,
            }),
            ..cookie("chips", "embed.test")
        },
        Cookie {
            path: "/deep".into(),
            priority: Some(CookiePriority::Low),
            ..cookie("low", "example.test")
        },
    ];
    let s = launch().await;
    s.restore_cookies(&cookies).await.expect("set cookies");
    let mut got = s.capture_cookies().await.expect("get cookies");
    let key = |c: &Cookie| c.name.clone();
    got.sort_by_key(key);
    cookies.sort_by_key(key);
    assert_eq!(got, cookies);
    assert_eq!(
        got.iter().find(|c| c.name == "session").unwrap().expires,
        None
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulation_applies_to_every_tab_and_capture_merges_previous() {
    let fx = Fixture::start();
    let emulation = Emulation {
        user_agent: Some("SesshostTest/1.0".into()),
        viewport: Some(Viewport {
            width: 900,
            height: 700,
            device_scale_factor: 1.0,
        }),
        locale: Some("fr-FR".into()),
        timezone: Some("Asia/Tokyo".into()),
    };
    let s = BrowserSession::launch(LaunchOptions {
        emulation: emulation.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut state = SessionState::new("emu", 1);
    state.tabs.push(Tab {
        url: fx.a("/"),
        title: "Fixture".into(),
        ..Tab::default()
    });
    state.origins.push(OriginState {
        origin: "http://untouched.test".into(),
        local_storage: vec![StorageItem {
            key: "k".into(),
            value: "kept".into(),
        }],
        indexed_db: vec![],
    });
    state.origins.push(OriginState {
        origin: fx.site_b.clone(),
        local_storage: vec![StorageItem {
            key: "gone".into(),
            value: "soon".into(),
        }],
        indexed_db: vec![],
    });
    // Restore only the tab and site B (untouched.test stays only in `state`).
    s.restore_origins(&state.origins[1..]).await.unwrap();
    s.restore_tabs(&state.tabs).await.unwrap();
    let later = open(&s, &fx.b("/")).await;
    later.evaluate("localStorage.clear(); true").await.unwrap();
    // UA, locale and time zone come from launch flags (there from the first
    // byte); the exact viewport is applied over CDP as the tab attaches.
    wait_for(&later, "innerWidth === 900 && innerHeight === 700").await;
    let check = "JSON.stringify([navigator.userAgent, navigator.language, Intl.DateTimeFormat().resolvedOptions().timeZone, innerWidth, innerHeight])";
    let want = r#"["SesshostTest/1.0","fr-FR","Asia/Tokyo",900,700]"#;
    for p in s.cdp().pages().await.unwrap() {
        if p.url()
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
            .starts_with("http")
        {
            assert_eq!(eval_str(&p, check).await, want);
        }
    }
    // The UA reached the server too.
    assert_eq!(
        eval_str(&later, "fetch('/api/me').then(r => r.status)").await,
        "401"
    );

    // An external CDP client connects and disconnects: the session lives on.
    {
        let (client, mut handler) = chromiumoxide::Browser::connect(s.ws_url()).await.unwrap();
        let h = tokio::spawn(async move {
            while let Some(Ok(_)) = futures::StreamExt::next(&mut handler).await {}
        });
        let targets = client
            .execute(chromiumoxide::cdp::browser_protocol::target::GetTargetsParams::default())
            .await
            .unwrap();
        assert!(
            targets
                .result
                .target_infos
                .iter()
                .any(|t| t.r#type == "page")
        );
        drop(client);
        h.abort();
    }
    let got = s
        .capture(Some(&state))
        .await
        .expect("capture after client left");
    assert_eq!(got.meta.name, "emu");
    assert_eq!(got.meta.timezone.as_deref(), Some("Asia/Tokyo"));
    assert_eq!(got.meta.user_agent.as_deref(), Some("SesshostTest/1.0"));
    let origins: BTreeMap<&str, &OriginState> =
        got.origins.iter().map(|o| (o.origin.as_str(), o)).collect();
    assert_eq!(
        origins["http://untouched.test"], &state.origins[0],
        "untouched origin carried over"
    );
    assert!(
        !origins.contains_key(fx.site_b.as_str()),
        "site B was cleared in this run"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_kills_the_process_group_and_deletes_the_profile() {
    let s = launch().await;
    assert!(s.ws_url().starts_with("ws://127.0.0.1:"), "{}", s.ws_url());
    assert!(s.ws_url().contains("/devtools/browser/"));
    let pid = s.pid().unwrap();
    let profile = s.profile_dir().unwrap().to_path_buf();
    assert!(profile.is_dir());
    assert!(!group_members(pid).is_empty());
    s.shutdown().await;
    assert!(!profile.exists(), "profile dir left behind");
    // The group is SIGKILLed and the browser reaped; helper processes
    // (renderers, utilities) are reparented and reaped by init, which can
    // take a moment on a loaded machine: allow 3 s, no more.
    let t0 = std::time::Instant::now();
    while !group_members(pid).is_empty() && t0.elapsed() < std::time::Duration::from_secs(3) {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        group_members(pid),
        Vec::<i32>::new(),
        "processes of the group survive"
    );
}

/// Child mode of the orphan test: hold a browser and wait to be killed.
#[test]
#[ignore = "run by no_chromium_survives_a_sigkilled_host as its child"]
fn orphan_holder() {
    if std::env::var_os("SESSHOST_TEST_HOLD_BROWSER").is_none() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = launch().await;
        println!(
            "HOLDING {} {}",
            s.pid().unwrap(),
            s.profile_dir().unwrap().display()
        );
        tokio::time::sleep(Duration::from_secs(600)).await;
    });
}

#[test]
fn no_chromium_survives_a_sigkilled_host() {
    use std::io::BufRead;
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .args([
            "orphan_holder",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SESSHOST_TEST_HOLD_BROWSER", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let line = out
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.split_once("HOLDING ").map(|(_, rest)| rest.to_string()))
        .expect("holder reports its browser");
    let mut parts = line.split_whitespace();
    let pgid: i32 = parts.next().unwrap().parse().unwrap();
    let profile = parts.next().unwrap().to_string();
    assert!(
        !processes_mentioning(&profile).is_empty(),
        "browser is running"
    );
    child.kill().unwrap(); // SIGKILL: no destructor runs in the holder.
    child.wait().unwrap();
    // Wait (bounded) for the kernel's parent-death signal to take effect.
    for _ in 0..100 {
        if processes_mentioning(&profile).is_empty() && group_members(pgid).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        processes_mentioning(&profile),
        Vec::<i32>::new(),
        "Chromium outlived its host"
    );
    assert_eq!(
        group_members(pgid),
        Vec::<i32>::new(),
        "the browser's process group outlived its host"
    );
    let _ = std::fs::remove_dir_all(&profile);
}

#[test]
fn missing_chromium_says_how_to_install_it() {
    let err =
        sesshost_browser::launch::find_chromium_in(None, Some("/nonexistent".into())).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("apt-get install chromium") && msg.contains("SESSHOST_CHROMIUM"),
        "{msg}"
    );
    let err = sesshost_browser::launch::find_chromium_in(Some("/nonexistent/chrome".into()), None)
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/chrome"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("chromium-browser");
    std::fs::write(&fake, "#!/bin/sh\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let found = sesshost_browser::launch::find_chromium_in(None, Some(dir.path().into())).unwrap();
    assert_eq!(found, fake);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_closed_reports_a_browser_that_died() {
    let s = launch().await;
    let pid = s.pid().unwrap();
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(30), s.wait_closed())
        .await
        .expect("noticed");
    assert_eq!(closed, sesshost_browser::Closed::BrowserGone);
    s.shutdown().await;
}

/// Headed mode under Xvfb (apt-get install xvfb): closing the last window
/// leaves Chromium alive long enough for a final capture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headed_last_window_closed_can_still_be_captured() {
    let fx = Fixture::start();
    let display = 90 + (std::process::id() % 100);
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _xvfb = KillOnDrop(
        std::process::Command::new("Xvfb")
            .args([
                format!(":{display}"),
                "-screen".into(),
                "0".into(),
                "1280x800x24".into(),
                "-nolisten".into(),
                "tcp".into(),
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("Xvfb is needed for the headed test: apt-get install xvfb"),
    );
    let sock = format!("/tmp/.X11-unix/X{display}");
    for _ in 0..100 {
        if std::path::Path::new(&sock).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let opts = LaunchOptions {
        headed: true,
        env: vec![("DISPLAY".into(), format!(":{display}").into())],
        ..Default::default()
    };
    let s = BrowserSession::launch(opts).await.expect("headed launch");
    // Restoring storage opens (and closes) writer pages: that is not the
    // user closing the last window.
    let mut restored = SessionState::new("headed", 1);
    restored.origins.push(OriginState {
        origin: fx.site_b.clone(),
        local_storage: vec![StorageItem {
            key: "restored".into(),
            value: "headed".into(),
        }],
        indexed_db: vec![],
    });
    s.restore(&restored).await.expect("headed restore");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), s.wait_closed())
            .await
            .is_err(),
        "writer pages must not count as the user's windows"
    );
    let page = open(&s, &fx.a("/wizard")).await;
    page.evaluate("advance(); localStorage.setItem('headed', 'yes'); true")
        .await
        .unwrap();
    // The user closes every tab (= the last window).
    let targets = s
        .cdp()
        .execute(chromiumoxide::cdp::browser_protocol::target::GetTargetsParams::default())
        .await
        .unwrap();
    for t in targets
        .result
        .target_infos
        .iter()
        .filter(|t| t.r#type == "page" && t.url != sesshost_browser::session::KEEPER_URL)
    {
        let _ = s
            .cdp()
            .execute(
                chromiumoxide::cdp::browser_protocol::target::CloseTargetParams::new(
                    t.target_id.clone(),
                ),
            )
            .await;
    }
    let closed = tokio::time::timeout(Duration::from_secs(30), s.wait_closed())
        .await
        .expect("noticed");
    assert_eq!(closed, sesshost_browser::Closed::LastWindowClosed);
    let state = s
        .capture(None)
        .await
        .expect("capture after the last window closed");
    let a = find(&state, &fx.site_a);
    assert!(a.local_storage.contains(&StorageItem {
        key: "headed".into(),
        value: "yes".into()
    }));
    assert_eq!(
        find(&state, &fx.site_b).local_storage,
        restored.origins[0].local_storage
    );
    assert!(state.tabs.is_empty());
    s.shutdown().await;
}

/// An origin with `ls` localStorage items and `records` IndexedDB records
/// of 8 KiB each (enough that writing it takes a while).
fn heavy_origin(origin: &str, ls: usize, records: usize) -> OriginState {
    OriginState {
        origin: origin.to_string(),
        local_storage: (0..ls)
            .map(|i| StorageItem {
                key: format!("k{i:04}"),
                value: format!("v{i}"),
            })
            .collect(),
        indexed_db: vec![IdbDatabase {
            name: "heavy".into(),
            version: 2,
            object_stores: vec![IdbObjectStore {
                name: "s".into(),
                key_path: None,
                auto_increment: false,
                key_generator: None,
                indexes: vec![],
                records: (0..records)
                    .map(|i| IdbRecord {
                        key: JsValue::Number(JsNumber(i as f64)),
                        value: JsValue::ArrayBuffer(Bytes(vec![(i % 256) as u8; 8192])),
                    })
                    .collect(),
            }],
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_is_in_force_before_storage_is_written() {
    let fx = Fixture::start();
    let s = launch().await;
    let mut state = SessionState::new("gate", 1);
    // Site A: heavy storage. Site B: none, so only the cookie hold keeps
    // its first request back.
    state.origins.push(heavy_origin(&fx.site_a, 500, 400));
    // Records without the key the store's keyPath names: the writer fails.
    state.origins.push(OriginState {
        origin: "http://broken.test".into(),
        local_storage: vec![],
        indexed_db: vec![IdbDatabase {
            name: "bad".into(),
            version: 1,
            object_stores: vec![IdbObjectStore {
                name: "s".into(),
                key_path: Some(KeyPath::Single("id".into())),
                auto_increment: false,
                key_generator: None,
                indexes: vec![],
                records: vec![IdbRecord {
                    key: JsValue::Number(JsNumber(1.0)),
                    value: JsValue::Object(vec![]),
                }],
            }],
        }],
    });
    state.origins.sort_by(|a, b| a.origin.cmp(&b.origin));
    // 150 cookies for each fixture host (Chromium keeps 180 per domain)
    // among 6,300: setting them takes Chromium ~0.5 s.
    let host_a = fx
        .site_a
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let host_b = fx
        .site_b
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    // The fixture's cookies come last, so they are set last.
    for (i, domain) in (0..6000)
        .map(|i| format!("filler{}.test", i % 60))
        .chain(std::iter::repeat_n(host_a, 150))
        .chain(std::iter::repeat_n(host_b, 150))
        .enumerate()
    {
        state.cookies.push(Cookie {
            name: format!("c{i}"),
            value: "v".into(),
            domain,
            path: "/".into(),
            expires: Some(2_000_000_000.0),
            ..Cookie::default()
        });
    }
    let restoring = s.restore_in_background(&state).await.expect("restore");
    // Pages of both origins load at once, while cookies are still being set
    // and ~5 MB of IndexedDB written: their first request must carry every
    // cookie and their first script must see all the storage.
    let (url_a, url_b) = (fx.a("/probe"), fx.b("/probe"));
    let (a, b) = tokio::join!(open(&s, &url_a), open(&s, &url_b));
    wait_for(&a, "document.title.startsWith('probe ')").await;
    wait_for(&b, "document.title.startsWith('probe ')").await;
    assert_eq!(
        eval_str(&a, "document.title").await,
        r#"probe {"ls":500,"dbs":["heavy"],"records":400,"serverCookies":150}"#
    );
    assert_eq!(
        eval_str(&b, "document.title").await,
        r#"probe {"ls":0,"dbs":[],"records":0,"serverCookies":150}"#
    );
    // The failed origin is reported by name, and did not hold anything up.
    let err = restoring.finish().await.expect_err("broken.test must fail");
    let msg = err.to_string();
    assert!(msg.contains("http://broken.test"), "{msg}");
    // Capture waits for the writing and keeps the failed origin's previous
    // state: what comes back is exactly what went in.
    let mut want = state.clone();
    for o in &mut want.origins {
        o.local_storage.sort_by(|x, y| x.key.cmp(&y.key));
    }
    let mut got = s.capture(Some(&state)).await.expect("capture");
    // The order origins are listed in follows which page was seen first,
    // and the two probe pages load at once: compare them as a set.
    want.origins.sort_by(|x, y| x.origin.cmp(&y.origin));
    got.origins.sort_by(|x, y| x.origin.cmp(&y.origin));
    for o in &mut got.origins {
        o.local_storage.sort_by(|x, y| x.key.cmp(&y.key));
    }
    let names = |v: &[sessbundle::state::OriginState]| -> Vec<String> {
        v.iter().map(|o| o.origin.clone()).collect()
    };
    assert_eq!(
        names(&got.origins),
        names(&want.origins),
        "captured origins"
    );
    for (g, w) in got.origins.iter().zip(&want.origins) {
        assert!(
            g == w,
            "capture of {} differs from the restored state: {} vs {} localStorage items, {} vs {} databases",
            w.origin,
            g.local_storage.len(),
            w.local_storage.len(),
            g.indexed_db.len(),
            w.indexed_db.len()
        );
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_held_open_by_a_tab_fails_the_restore_clearly() {
    let fx = Fixture::start();
    let s = launch().await;
    let state = SessionState {
        origins: vec![heavy_origin(&fx.site_a, 3, 3)],
        ..SessionState::new("held", 1)
    };
    s.restore_origins(&state.origins)
        .await
        .expect("first restore");
    // A page that keeps the database open and ignores 'versionchange'.
    let page = open(&s, &fx.a("/")).await;
    page.evaluate(
        "new Promise((res, rej) => { const r = indexedDB.open('heavy'); \
         r.onsuccess = () => { window.held = r.result; res(true); }; r.onerror = () => rej(r.error); })",
    )
    .await
    .unwrap();
    let err = s
        .restore_origins(&state.origins)
        .await
        .expect_err("the delete is blocked");
    let msg = err.to_string();
    assert!(msg.contains("held open by another tab"), "{msg}");
    assert!(msg.contains(&fx.site_a), "{msg}");
    // The gate holds nothing any more: the origin's pages load again.
    let again = open(&s, &fx.a("/")).await;
    assert_eq!(eval_str(&again, "document.title").await, "Fixture");
    s.shutdown().await;
}

/// Captures reuse one hidden tab: repeated captures leave no tab behind
/// (the page-target count settles at the user's tabs + the keeper + one
/// spare), see what the first saw, and a storage change between them is
/// captured (the kept tab reads fresh storage, not a stale document).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_captures_reuse_one_hidden_tab() {
    let fx = Fixture::start();
    let s = launch().await;
    let app = login(&s, &fx, "alice").await;
    async fn pages(s: &BrowserSession) -> usize {
        let t = s
            .cdp()
            .execute(chromiumoxide::cdp::browser_protocol::target::GetTargetsParams::default())
            .await
            .unwrap();
        t.result
            .target_infos
            .iter()
            .filter(|i| i.r#type == "page")
            .count()
    }
    let first = s.capture(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_first = pages(&s).await;
    for i in 0..4 {
        app.evaluate(format!("localStorage.setItem('n', '{i}')"))
            .await
            .unwrap();
        let c = s.capture(Some(&first)).await.unwrap();
        let ls = &find(&c, &fx.site_a).local_storage;
        assert!(
            ls.iter().any(|e| e.key == "n" && e.value == i.to_string()),
            "capture {i} read stale storage: {ls:?}"
        );
        assert!(ls.iter().any(|e| e.key == "authToken"), "{ls:?}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pages(&s).await, after_first, "captures leaked tabs");
    s.shutdown().await;
}

/// A browser's first window must not build Chromium's WebUI address-bar
/// popups (a renderer of their own, 0.8-1 CPU s on 2 cores, headless
/// too): the launch flags turn them off (launch.rs, BASE_FLAGS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_window_builds_no_webui_omnibox_popup() {
    let s = launch().await;
    let _page = open(&s, "about:blank").await;
    // Chromium creates the popups right after the window, not with it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let t = s
        .cdp()
        .execute(chromiumoxide::cdp::browser_protocol::target::GetTargetsParams::default())
        .await
        .unwrap();
    let urls: Vec<&str> = t
        .result
        .target_infos
        .iter()
        .map(|i| i.url.as_str())
        .collect();
    assert!(
        urls.contains(&"about:blank"),
        "the page is listed: {urls:?}"
    );
    assert!(
        !urls.iter().any(|u| u.starts_with("chrome://")),
        "a WebUI page was built: {urls:?}"
    );
    let pgid = s.pid().expect("a launched browser has a pid");
    let ours = group_members(pgid);
    let webui: Vec<i32> = processes_mentioning("--top-chrome-webui")
        .into_iter()
        .filter(|p| ours.contains(p))
        .collect();
    assert!(webui.is_empty(), "top-chrome WebUI renderers: {webui:?}");
    s.shutdown().await;
}
