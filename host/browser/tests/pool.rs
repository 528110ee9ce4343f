//! What a pooled browser (launched with no emulation flags, an empty
//! profile) needs to take on a session: emulation over CDP, and a JS heap
//! figure for the memory watch. Real Chromium, real fixture app.

use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::target::CreateTargetParams;
use sessbundle::state::Viewport;
use sesshost_browser::{BrowserSession, Emulation};
use sesshost_fixture::Fixture;

mod common;
use common::{eval_str, launch, open, wait_for};

const CHECK: &str = "JSON.stringify([navigator.userAgent, navigator.language, Intl.DateTimeFormat().resolvedOptions().timeZone, innerWidth, innerHeight])";

fn session_emulation() -> Emulation {
    Emulation {
        user_agent: Some("sesshost-test/1".into()),
        viewport: Some(Viewport {
            width: 800,
            height: 600,
            device_scale_factor: 1.0,
        }),
        locale: Some("fr-FR".into()),
        timezone: Some("Asia/Tokyo".into()),
    }
}

const WANT: &str = r#"["sesshost-test/1","fr-FR","Asia/Tokyo",800,600]"#;

/// The page of a target our session's connection has attached.
async fn page_of(s: &BrowserSession, id: &str) -> chromiumoxide::Page {
    for _ in 0..500 {
        if let Ok(p) = s.cdp().get_page(id.to_string().into()).await {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("target {id} was never attached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_emulation_reaches_open_tabs_and_tabs_a_client_opens_later() {
    let fx = Fixture::start();
    let s = launch().await;
    assert_eq!(s.emulation(), Emulation::default());
    let before = open(&s, &fx.a("/")).await;
    let plain = eval_str(&before, CHECK).await;
    assert_ne!(plain, WANT, "the test needs a browser that differs");

    s.set_emulation(session_emulation()).await.unwrap();
    assert_eq!(s.emulation(), session_emulation());
    // The tab that was open switches at once (the overrides are applied
    // when set_emulation returns).
    assert_eq!(eval_str(&before, CHECK).await, WANT, "tab open before");
    // What workers of that tab see (documented in the crate map): a
    // dedicated worker runs in the tab's renderer and target.
    let in_worker = "new Promise((res) => { const w = new Worker(URL.createObjectURL(new Blob(['postMessage(JSON.stringify([navigator.userAgent, navigator.language, Intl.DateTimeFormat().resolvedOptions().timeZone]))']))); w.onmessage = (e) => res(e.data); })";
    let worker = eval_str(&before, in_worker).await;
    // Measured on Chromium 156: user agent and time zone yes, language
    // no (it keeps the browser's); see the crate map.
    assert!(
        worker.contains("sesshost-test/1") && worker.contains("Asia/Tokyo"),
        "{worker}"
    );
    let in_shared = "new Promise((res) => { const w = new SharedWorker(URL.createObjectURL(new Blob(['onconnect = (e) => e.ports[0].postMessage(JSON.stringify([navigator.userAgent, navigator.language, Intl.DateTimeFormat().resolvedOptions().timeZone]))']))); w.port.onmessage = (e) => res(e.data); })";
    // Measured: the browser's user agent and language, the emulated time
    // zone (it runs in the same renderer). Printed, not asserted.
    eprintln!("shared worker sees {}", eval_str(&before, in_shared).await);

    // A client connects and opens a tab the way Playwright/Puppeteer do.
    let (client, mut handler) = chromiumoxide::Browser::connect(s.ws_url()).await.unwrap();
    let h = tokio::spawn(async move {
        while let Some(Ok(_)) = futures::StreamExt::next(&mut handler).await {}
    });
    let created = client
        .execute(CreateTargetParams::new(fx.b("/")))
        .await
        .unwrap();
    let later = page_of(&s, created.result.target_id.as_ref()).await;
    wait_for(&later, "document.readyState === 'complete'").await;
    // Applied as the tab is attached (tens of ms after it appears).
    wait_for(&later, &format!("{CHECK} === {}", serde_json::json!(WANT))).await;
    assert_eq!(eval_str(&later, CHECK).await, WANT, "tab opened later");
    // And it stays so across a navigation of that tab.
    later.goto(fx.a("/login")).await.unwrap();
    assert_eq!(eval_str(&later, CHECK).await, WANT, "after navigating");
    drop(client);
    h.abort();

    // Replacing it with no emulation gives open tabs the browser's own back.
    s.set_emulation(Emulation::default()).await.unwrap();
    assert_eq!(
        eval_str(&before, CHECK).await,
        plain,
        "reset to the browser's own"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_heap_rises_when_a_page_allocates() {
    let fx = Fixture::start();
    let s = launch().await;
    let page = open(&s, &fx.a("/")).await;
    let before = s.js_heap_bytes().await.unwrap();
    assert!(before > 0, "a page has some heap: {before}");
    // 60 x 64 Ki doubles = 31.5 MB of JS heap (fast double arrays).
    page.evaluate(
        "window.hog = Array.from({ length: 60 }, () => new Array(65536).fill(1.5)); true",
    )
    .await
    .unwrap();
    let after = s.js_heap_bytes().await.unwrap();
    assert!(
        after >= before + 25_000_000,
        "heap went from {before} to {after} bytes after allocating ~31 MB"
    );
    // A tab of another site (its own renderer, its own isolate) adds its heap.
    let other = open(&s, &fx.b("/")).await;
    other
        .evaluate("window.hog = Array.from({ length: 60 }, () => new Array(65536).fill(2.5)); true")
        .await
        .unwrap();
    let both = s.js_heap_bytes().await.unwrap();
    assert!(
        both >= after + 25_000_000,
        "a second site's tab adds its own heap: {after} -> {both}"
    );
    s.shutdown().await;
}
