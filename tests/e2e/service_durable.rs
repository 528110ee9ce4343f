//! `host run --plugin fs.wasm …`: the durable tier. A logged-in session
//! released on host A is written through to the repository; host B on an
//! empty home (A's disk is gone) serves it on first request by id
//! (read-through), with its name, tags, context and login; a delete on B
//! removes it from the repository, so a third empty home finds nothing.
//! Bad durable-tier flags are usage errors.

mod common;
mod service;

use std::time::Duration;

use serde_json::json;
use service::{Service, client, config};
use sesshost_fixture::Fixture;

fn tier_args(d: &common::Dir) -> Vec<String> {
    vec![
        "--plugin".into(),
        common::wasm("fs").display().to_string(),
        "--allow-dir".into(),
        d.p("bucket").display().to_string(),
        "--passphrase-file".into(),
        d.p("repo-pass").display().to_string(),
    ]
}

fn start(d: &common::Dir, home: &str) -> Service {
    let args = tier_args(d);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Service::start_with(&d.p(home), &config(""), &args)
}

#[test]
fn a_released_session_survives_the_loss_of_the_local_disk() {
    let fx = Fixture::start();
    let d = common::Dir::new("durable");
    std::fs::create_dir_all(d.p("bucket")).unwrap();
    std::fs::write(d.p("repo-pass"), "correct horse battery staple").unwrap();

    let mut a = start(&d, "homeA");
    let r = a.call(
        "POST",
        "/v1/sessions",
        Some(json!({"name": "shop", "tags": ["eu"]})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let r = a.call(
        "PUT",
        &format!("/v1/sessions/{id}/context"),
        Some(json!({"task": 7})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let lease = a.call(
        "POST",
        &format!("/v1/sessions/{id}/acquire"),
        Some(json!({})),
    );
    assert_eq!(lease.status, 200, "{}\n{}", lease.body, a.log());
    let lease = lease.json();
    client(
        "playwright",
        lease["cdp_url"].as_str().unwrap(),
        "login",
        &fx.a("/login"),
        Some("alice"),
    )
    .unwrap();
    let r = a.call(
        "POST",
        &format!("/v1/sessions/{id}/release"),
        Some(json!({"lease_id": lease["lease_id"], "hibernate": true})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // The release answered after the write-through: the repository holds
    // the session now, and none of it is readable.
    let sid = fx.logins().keys().next().cloned().expect("alice logged in");
    let files = common::files_under(&d.p("bucket"));
    assert!(files.len() > 2, "the repository holds nothing: {files:?}");
    for f in &files {
        let b = std::fs::read(f).unwrap();
        assert!(
            !common::contains(&b, &sid) && !common::contains(&b, "shop"),
            "plaintext in {}",
            f.display()
        );
    }
    assert_eq!(
        a.terminate(Duration::from_secs(40)).code(),
        Some(0),
        "{}",
        a.log()
    );
    // A's disk is gone.
    std::fs::remove_dir_all(d.p("homeA")).unwrap();

    let b = start(&d, "homeB");
    // Nothing local: the list is empty until the session is named.
    let r = b.call("GET", "/v1/sessions", None);
    assert_eq!(
        r.json()["sessions"].as_array().map(Vec::len),
        Some(0),
        "{}",
        r.body
    );
    let r = b.call("GET", &format!("/v1/sessions/{id}"), None);
    assert_eq!(
        r.status,
        200,
        "read-through failed: {}\n{}",
        r.body,
        b.log()
    );
    let v = r.json();
    assert_eq!(v["name"], "shop", "{v}");
    assert_eq!(v["tags"], json!(["eu"]), "{v}");
    let r = b.call("GET", &format!("/v1/sessions/{id}/context"), None);
    assert_eq!(r.json()["task"], 7, "{}", r.body);
    let lease = b.call(
        "POST",
        &format!("/v1/sessions/{id}/acquire"),
        Some(json!({})),
    );
    assert_eq!(lease.status, 200, "{}\n{}", lease.body, b.log());
    let lease = lease.json();
    let page = client(
        "playwright",
        lease["cdp_url"].as_str().unwrap(),
        "app",
        &fx.a("/app"),
        None,
    )
    .unwrap();
    assert_eq!(page["status"], "logged in as alice", "{page}");
    let r = b.call(
        "POST",
        &format!("/v1/sessions/{id}/release"),
        Some(json!({"lease_id": lease["lease_id"]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let m = b.req("GET", "/metrics", None, None).body;
    assert!(
        m.contains(r#"sesshost_tier_requests_total{tier="durable",result="hit"} 1"#),
        "{m}"
    );
    // An id nobody holds is a 404, also through the tier.
    let r = b.call(
        "GET",
        "/v1/sessions/sess_00000000000000000000000000000000",
        None,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    // A delete removes the repository's copy before it answers.
    let r = b.call("DELETE", &format!("/v1/sessions/{id}"), None);
    assert_eq!(r.status, 204, "{}", r.body);
    drop(b);
    let c = start(&d, "homeC");
    let r = c.call("GET", &format!("/v1/sessions/{id}"), None);
    assert_eq!(r.status, 404, "a deleted session came back: {}", r.body);
}

#[test]
fn durable_tier_flags_are_checked_before_start() {
    let d = common::Dir::new("durable-flags");
    let home = d.p("home");
    let run = |args: &[&str]| {
        service::host()
            .args(["run", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("SESSHOST_HOME", &home)
            .output()
            .unwrap()
    };
    // A repository key without a plugin.
    std::fs::write(d.p("pw"), "pw").unwrap();
    let o = run(&["--passphrase-file", d.p("pw").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no --plugin"),
        "{o:?}"
    );
    // A plugin without a repository key: never prompted, refused.
    let fs = common::wasm("fs");
    let o = run(&["--plugin", fs.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("repository key"),
        "{o:?}"
    );
    // A plugin without its directory grant: the tier cannot be opened.
    let o = run(&[
        "--plugin",
        fs.to_str().unwrap(),
        "--passphrase-file",
        d.p("pw").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot open the durable tier"),
        "{o:?}"
    );
}
