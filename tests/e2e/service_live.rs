//! `host run` with real Chromium behind the lease's CDP proxy: Playwright
//! `connectOverCDP` and Puppeteer `connect` through `cdp_url`, lease
//! conflicts, the FIFO queue, lease expiry, hibernate → acquire restores
//! the login, graceful shutdown persists, kill -9 loses nothing committed,
//! a Chromium killed under a lease is replaced with the lease intact.

mod common;
mod service;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use service::{Service, chromium_pids, client, config, wait_until};
use sesshost_fixture::Fixture;

fn create(s: &Service) -> String {
    let r = s.call("POST", "/v1/sessions", Some(json!({"name": "worker"})));
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_str().unwrap().to_string()
}

fn acquire(s: &Service, id: &str, body: Value) -> Value {
    let r = s.call("POST", &format!("/v1/sessions/{id}/acquire"), Some(body));
    assert_eq!(r.status, 200, "acquire: {}\n{}", r.body, s.log());
    r.json()
}

fn release(s: &Service, id: &str, lease: &Value, hibernate: bool) -> Value {
    let r = s.call(
        "POST",
        &format!("/v1/sessions/{id}/release"),
        Some(json!({"lease_id": lease["lease_id"], "hibernate": hibernate})),
    );
    assert_eq!(r.status, 200, "release: {}", r.body);
    r.json()
}

fn logged_in(v: &Value, user: &str) -> bool {
    v["status"] == format!("logged in as {user}")
}

#[test]
fn leases_proxy_cdp_and_hibernation_keeps_the_login() {
    let fx = Fixture::start();
    let dir = common::Dir::new("svc-lease");
    let home = dir.p("home");
    let s = Service::start(&home, &config("[pool]\nsize = 1\n"));
    let id = create(&s);

    // Acquire → a CDP URL on the host (never Chromium's own endpoint).
    let lease = acquire(&s, &id, json!({"lease_seconds": 120}));
    let cdp = lease["cdp_url"].as_str().unwrap().to_string();
    assert!(
        cdp.starts_with(&format!("ws://{}/v1/sessions/{id}/cdp?lease=", s.addr)),
        "{cdp}"
    );
    assert!(!cdp.contains("devtools"), "{cdp}");
    let shown = s.call("GET", &format!("/v1/sessions/{id}"), None).json();
    assert_eq!(shown["state"], "active");
    assert_eq!(shown["lease"]["lease_id"], lease["lease_id"]);
    assert!(!shown.to_string().contains("devtools"), "{shown}");

    // Log in by Playwright through the proxy.
    let v = client("puppeteer", &cdp, "login", &fx.a("/login"), Some("ada")).unwrap();
    assert!(logged_in(&v, "ada"), "{v}");
    // A wrong token is refused.
    let bad = cdp.split("lease=").next().unwrap().to_string() + "lease=AAAA";
    assert!(client("playwright", &bad, "app", &fx.a("/app"), None).is_err());

    // A second acquire: 409 at once naming the holder's expiry.
    let r = s.call(
        "POST",
        &format!("/v1/sessions/{id}/acquire"),
        Some(json!({"wait_seconds": 0})),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.code(), "lease_held");
    assert!(r.body.contains("leased until 20"), "{}", r.body);

    // Queue: a waiter gets the lease when the holder releases.
    let (addr, key, id2) = (s.addr.clone(), s.key().to_string(), id.clone());
    let waiter = std::thread::spawn(move || {
        let t0 = Instant::now();
        let r = service::request(
            &addr,
            "POST",
            &format!("/v1/sessions/{id2}/acquire"),
            Some(&key),
            Some(r#"{"wait_seconds": 20}"#),
        );
        (r, t0.elapsed())
    });
    std::thread::sleep(Duration::from_millis(1500));
    let p = s.req("GET", "/v1/pressure", None, None).json();
    assert_eq!(p["queued"], 1, "{p}");
    let after = release(&s, &id, &lease, false);
    // The waiter takes the lease at once: the state is idle or already active again.
    assert!(
        after["state"] == "idle" || after["state"] == "active",
        "{after}"
    );
    let (r, waited) = waiter.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        waited >= Duration::from_millis(1000),
        "the waiter waited for the release: {waited:?}"
    );
    let lease2 = r.json();
    // The old lease's URL no longer works; the new one shows the login.
    assert!(client("playwright", &cdp, "app", &fx.a("/app"), None).is_err());
    let cdp2 = lease2["cdp_url"].as_str().unwrap().to_string();
    let v = client("puppeteer", &cdp2, "app", &fx.a("/app"), Some("7")).unwrap();
    assert!(logged_in(&v, "ada"), "{v}\n{}", s.log());
    let r = s.call(
        "POST",
        &format!("/v1/sessions/{id}/heartbeat"),
        Some(json!({"lease_id": lease2["lease_id"]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // Release with hibernation: the browser goes, the state is stored.
    let after = release(&s, &id, &lease2, true);
    assert_eq!(after["state"], "hibernated", "{after}");
    wait_until(
        "the session's Chromium to exit",
        Duration::from_secs(10),
        || chromium_pids(&home).len() <= 1,
    );

    // Acquire again: restored from the store into a pooled browser.
    let lease3 = acquire(&s, &id, json!({}));
    let v = client(
        "playwright",
        lease3["cdp_url"].as_str().unwrap(),
        "app",
        &fx.a("/app"),
        None,
    )
    .unwrap();
    assert!(logged_in(&v, "ada"), "restored from hibernation: {v}");
    assert_eq!(
        v["counter"], "7",
        "the counter written before hibernation survived: {v}"
    );
    // Cookies of a live session come from its browser (values hidden).
    let r = s.call("GET", &format!("/v1/sessions/{id}/cookies/127.0.0.1"), None);
    let names: Vec<String> = r.json()["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(names.iter().any(|n| n == "sid"), "{}", r.body);
    release(&s, &id, &lease3, false);

    // A lease that is not renewed expires and is reclaimed (state saved).
    let lease4 = acquire(&s, &id, json!({"lease_seconds": 2}));
    wait_until(
        "the 2 s lease to be reclaimed",
        Duration::from_secs(15),
        || s.call("GET", &format!("/v1/sessions/{id}"), None).json()["state"] == "idle",
    );
    let r = s.call(
        "POST",
        &format!("/v1/sessions/{id}/heartbeat"),
        Some(json!({"lease_id": lease4["lease_id"]})),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        !common::contains(s.log().as_bytes(), "lease="),
        "no CDP token in the service's log"
    );
    let m = s.req("GET", "/metrics", None, None).body;
    assert!(m.contains("sesshost_acquire_seconds_count"), "{m}");
    assert!(
        m.contains("sesshost_cdp_proxy_bytes_total{direction=\"browser_to_client\"}"),
        "{m}"
    );
}

#[test]
fn shutdown_persists_kill9_loses_nothing_and_a_crashed_chromium_is_replaced() {
    let fx = Fixture::start();
    let dir = common::Dir::new("svc-recover");
    let home = dir.p("home");
    let cfg = config("");
    let mut s = Service::start(&home, &cfg);
    let key = s.key().to_string();
    let id = create(&s);

    // SIGTERM with a live, leased, logged-in session: it is saved.
    let lease = acquire(&s, &id, json!({}));
    let v = client(
        "playwright",
        lease["cdp_url"].as_str().unwrap(),
        "login",
        &fx.a("/login"),
        Some("bob"),
    )
    .unwrap();
    assert!(logged_in(&v, "bob"), "{v}");
    let status = s.terminate(Duration::from_secs(40));
    assert!(
        status.success(),
        "graceful stop exits 0: {status:?}\n{}",
        s.log()
    );
    assert!(
        chromium_pids(&home).is_empty(),
        "no Chromium left after shutdown: {:?}",
        chromium_pids(&home)
    );

    // Restart: the session is there and logged in.
    let mut s = Service::start(&home, &cfg);
    assert!(
        s.key.is_none(),
        "the default key is printed on the first start only"
    );
    s.key = Some(key.clone());
    let lease = acquire(&s, &id, json!({}));
    let cdp = lease["cdp_url"].as_str().unwrap().to_string();
    let v = client("playwright", &cdp, "app", &fx.a("/app"), Some("1")).unwrap();
    assert!(logged_in(&v, "bob"), "persisted by the graceful stop: {v}");

    // Kill Chromium under the lease: replaced within seconds from the last
    // autosave; the same cdp_url works again.
    std::thread::sleep(Duration::from_secs(3)); // an autosave (2 s) holds counter=1
    let pids = chromium_pids(&home);
    assert_eq!(pids.len(), 1, "{pids:?}");
    service::unsafe_kill(pids[0], libc::SIGKILL);
    let t0 = Instant::now();
    wait_until("a replacement Chromium", Duration::from_secs(10), || {
        let p = chromium_pids(&home);
        p.len() == 1 && p[0] != pids[0]
    });
    let replaced = t0.elapsed();
    assert!(
        replaced < Duration::from_secs(6),
        "detected and replaced in {replaced:?}"
    );
    let v = client("playwright", &cdp, "app", &fx.a("/app"), None).unwrap();
    assert!(
        logged_in(&v, "bob"),
        "the replacement holds the last autosave: {v}"
    );
    assert_eq!(v["counter"], "1", "{v}");
    let v = client("playwright", &cdp, "app", &fx.a("/app"), Some("2")).unwrap();
    assert_eq!(v["counter"], "2");
    release(&s, &id, &lease, false);

    // kill -9 the service: what the release committed survives.
    s.kill9();
    wait_until(
        "Chromium to die with its host",
        Duration::from_secs(10),
        || chromium_pids(&home).is_empty(),
    );
    let mut s = Service::start(&home, &cfg);
    s.key = Some(key);
    let lease = acquire(&s, &id, json!({}));
    let v = client(
        "puppeteer",
        lease["cdp_url"].as_str().unwrap(),
        "app",
        &fx.a("/app"),
        None,
    )
    .unwrap();
    assert!(logged_in(&v, "bob"), "{v}");
    assert_eq!(
        v["counter"], "2",
        "the released state survived kill -9: {v}"
    );
}

#[test]
fn navigate_and_login_check_mark_needs_auth() {
    let fx = Fixture::start();
    let dir = common::Dir::new("svc-check");
    let home = dir.p("home");
    let s = Service::start(&home, &config(""));
    let r = s.call(
        "POST",
        "/v1/sessions",
        Some(json!({"auth_check": {"url": fx.a("/app"), "login_url_prefix": fx.a("/login")}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    // Not logged in: the check fails and the session needs auth.
    let r = s.call("POST", &format!("/v1/sessions/{id}/check"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["ok"], false, "{}", r.body);
    let shown = s.call("GET", &format!("/v1/sessions/{id}"), None).json();
    assert_eq!(shown["needs_auth"], true, "{shown}");
    // Log in through the API's navigate? No: through a lease, as a user would.
    let lease = acquire(&s, &id, json!({}));
    let v = client(
        "playwright",
        lease["cdp_url"].as_str().unwrap(),
        "login",
        &fx.a("/login"),
        Some("cy"),
    )
    .unwrap();
    assert!(logged_in(&v, "cy"), "{v}");
    release(&s, &id, &lease, false);
    let r = s.call("POST", &format!("/v1/sessions/{id}/check"), None);
    assert_eq!(r.json()["ok"], true, "{}\n{}", r.body, s.log());
    // navigate: final URL, status, title, text.
    let r = s.call(
        "POST",
        &format!("/v1/sessions/{id}/navigate"),
        Some(json!({"url": fx.a("/app"), "include": ["text"]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["final_url"], fx.a("/app"));
    assert!(
        v["text"].as_str().unwrap().contains("logged in as cy"),
        "{v}"
    );
    let r = s.call(
        "POST",
        &format!("/v1/sessions/{id}/navigate"),
        Some(json!({"url": "file:///etc/passwd"})),
    );
    assert_eq!(r.status, 400, "{}", r.body);
}

#[test]
fn memory_watch_recycles_a_leased_browser_and_hibernates_an_idle_one() {
    let fx = Fixture::start();
    let d = common::Dir::new("memwatch");
    let s = Service::start(&d.p("home"), &config("[limits]\njs_heap_mb = 40\n"));
    let id = create(&s);
    let lease = acquire(&s, &id, json!({}));
    let cdp = lease["cdp_url"].as_str().unwrap();
    let v = client("playwright", cdp, "login", &fx.a("/login"), Some("alice")).unwrap();
    assert!(logged_in(&v, "alice"), "{v}");
    let before = chromium_pids(&s.home);
    assert_eq!(before.len(), 1, "{before:?}");
    // A tab holding 80 MiB of JS heap, over the 40 MiB cap, under a lease:
    // the watch (every 10 s) saves the session and replaces the browser;
    // the lease and its cdp_url stay valid.
    client("puppeteer", cdp, "hog", &fx.a("/app"), Some("80")).unwrap();
    wait_until(
        "the leased browser to be recycled",
        Duration::from_secs(45),
        || {
            let now = chromium_pids(&s.home);
            now.len() == 1 && now[0] != before[0]
        },
    );
    assert!(
        s.log().contains("over [limits] js_heap_mb = 40"),
        "{}",
        s.log()
    );
    let v = client("playwright", cdp, "app", &fx.a("/app"), None).unwrap();
    assert!(
        logged_in(&v, "alice"),
        "the recycled browser lost the login: {v}"
    );
    // The same, idle: the session is hibernated and its browser closed.
    client("puppeteer", cdp, "hog", &fx.a("/app"), Some("80")).unwrap();
    release(&s, &id, &lease, false);
    wait_until(
        "the idle hog to be hibernated",
        Duration::from_secs(45),
        || s.call("GET", &format!("/v1/sessions/{id}"), None).json()["state"] == "hibernated",
    );
    wait_until("its Chromium to exit", Duration::from_secs(10), || {
        chromium_pids(&s.home).is_empty()
    });
}
