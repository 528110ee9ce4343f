//! A cold open hands the CDP URL out as soon as the restore is in force:
//! a client that connects that very instant must meet every restored tab
//! finished, never a blank, placeholder or half-built one. Real Chromium,
//! real fixture app.

use std::borrow::Cow;

use chromiumoxide::cdp::browser_protocol::target::GetTargetsParams;
use chromiumoxide::types::{Command, Method, MethodId};
use futures::StreamExt;
use sessbundle::state::{HistoryEntry, Tab};
use sesshost_fixture::Fixture;

mod common;
use common::{eval_str, launch, open, wait_for};

/// `Page.getNavigationHistory` as untyped JSON (robust to protocol drift).
#[derive(Debug, Clone, serde::Serialize)]
struct GetHistory {}

impl Method for GetHistory {
    fn identifier(&self) -> MethodId {
        Cow::Borrowed("Page.getNavigationHistory")
    }
}

impl Command for GetHistory {
    type Response = serde_json::Value;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_connecting_the_instant_the_url_is_out_sees_every_tab_restored() {
    let fx = Fixture::start();
    // A real login, captured: its tab has the login flow as history.
    let s0 = launch().await;
    let page = open(&s0, &fx.a("/login")).await;
    page.evaluate(
        "document.getElementById('user').value = 'quick'; document.forms[0].submit(); true",
    )
    .await
    .unwrap();
    wait_for(
        &page,
        "document.getElementById('status')?.textContent === 'logged in as quick'",
    )
    .await;
    let mut state = s0.capture(None).await.unwrap();
    s0.shutdown().await;
    // And a second tab whose current entry is not its last.
    state.tabs.push(Tab {
        url: fx.b("/"),
        title: "Fixture".into(),
        history: vec![
            HistoryEntry {
                url: fx.b("/"),
                title: "Fixture".into(),
            },
            HistoryEntry {
                url: fx.a("/login"),
                title: "Login".into(),
            },
        ],
        current_index: 0,
        ..Tab::default()
    });
    assert_eq!(state.tabs.len(), 2, "{:#?}", state.tabs);
    assert!(state.tabs[0].history.len() >= 2, "{:#?}", state.tabs[0]);

    let s = launch().await;
    let restoring = s.restore_in_background(&state).await.unwrap();
    // The instant the URL is out.
    let (client, mut handler) = chromiumoxide::Browser::connect(s.ws_url()).await.unwrap();
    let h = tokio::spawn(async move { while let Some(Ok(_)) = handler.next().await {} });
    // The client's first command already meets the finished tabs.
    let targets = client.execute(GetTargetsParams::default()).await.unwrap();
    let tabs: Vec<(String, String)> = targets
        .result
        .target_infos
        .iter()
        .filter(|t| {
            t.r#type == "page"
                && !t.url.contains("/.sesshost-")
                && !t.url.contains("#sesshost-keeper")
        })
        .map(|t| (t.target_id.as_ref().to_string(), t.url.clone()))
        .collect();
    let mut urls: Vec<&str> = tabs.iter().map(|(_, u)| u.as_str()).collect();
    urls.sort();
    let mut want: Vec<&str> = state.tabs.iter().map(|t| t.url.as_str()).collect();
    want.sort();
    assert_eq!(urls, want, "the client's first look at the tabs");

    for (id, url) in &tabs {
        let tab = state.tabs.iter().find(|t| &t.url == url).unwrap();
        let mut page = None;
        for _ in 0..500 {
            if let Ok(p) = client.get_page(id.clone().into()).await {
                page = Some(p);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let page = page.expect("the client attached the tab");
        let hist = page.execute(GetHistory {}).await.unwrap().result;
        let entries: Vec<&str> = hist["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["url"].as_str())
            .collect();
        let want_entries: Vec<&str> = tab.history.iter().map(|h| h.url.as_str()).collect();
        assert_eq!(entries, want_entries, "history of {url}");
        assert_eq!(
            hist["currentIndex"].as_u64(),
            Some(tab.current_index as u64),
            "current entry of {url}"
        );
        if url == &fx.a("/app") {
            // The app's own script saw the user (cookie + localStorage in
            // force on its first load), and the session cookie is there.
            assert_eq!(
                eval_str(&page, "document.getElementById('status').textContent").await,
                "logged in as quick"
            );
            assert_ne!(
                eval_str(&page, "localStorage.getItem('authToken')").await,
                "null"
            );
            assert_eq!(
                eval_str(&page, "fetch('/api/me').then(r => r.status)").await,
                "200"
            );
        } else {
            // The real page, not a placeholder (whose body is empty).
            assert!(
                eval_str(&page, "document.body.textContent")
                    .await
                    .contains("fixture on"),
                "{url} is the real page"
            );
        }
    }
    drop(client);
    h.abort();
    restoring.finish().await.unwrap();
    s.shutdown().await;
}
