//! `host run` over real HTTP: routes, errors, tenants and limits (no
//! browser needed). The lease / CDP / recovery tests are in
//! `service_live.rs`.

mod common;
mod service;

use std::time::Duration;

use serde_json::json;
use service::{Service, config, host};

#[test]
fn routes_answer_as_documented_and_errors_name_the_field() {
    let dir = common::Dir::new("svc-routes");
    let home = dir.p("home");
    let s = Service::start(&home, &config(""));
    assert!(s.key().starts_with("shk_"));
    assert!(
        !s.log().contains("sha256"),
        "the key's hash is never printed"
    );

    // No key, a wrong key: 401 with the envelope.
    let r = s.req("GET", "/v1/sessions", None, None);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.code(), "unauthorized");
    let r = s.req("GET", "/v1/sessions", Some("shk_000000000000_nope"), None);
    assert_eq!(r.status, 401);

    // Create.
    let r = s.call(
        "POST",
        "/v1/sessions",
        Some(
            json!({"name": "shop", "ttl_seconds": 3600, "tags": ["eu", "shop"], "locale": "fr-FR"}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    let id = v["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sess_") && id.len() == 37, "{id}");
    assert_eq!(v["name"], "shop");
    assert_eq!(v["state"], "hibernated");
    let exp = v["expires_at"].as_str().unwrap().to_string();
    assert!(exp.ends_with('Z') && exp.contains('T'), "{exp}");

    // Bad input: 400 naming the field, never 500.
    let r = s.call("POST", "/v1/sessions", Some(json!({"ttl_seconds": "soon"})));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ttl_seconds"),
        "{}",
        r.body
    );
    let r = s.call("POST", "/v1/sessions", Some(json!({"colour": "red"})));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("colour"), "{}", r.body);
    let r = s.req("POST", "/v1/sessions", Some(s.key()), None);
    assert_eq!(
        r.status, 201,
        "an empty body is an empty object: {}",
        r.body
    );
    let other = r.json()["id"].as_str().unwrap().to_string();
    let r = service::request(
        &s.addr,
        "POST",
        "/v1/sessions",
        Some(s.key()),
        Some("{not json"),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let r = service::request(&s.addr, "POST", "/v1/sessions", Some(s.key()), Some(&big));
    assert_eq!(r.status, 413, "{}", r.body);

    // List, filter, show.
    let r = s.call("GET", "/v1/sessions?tag=shop", None);
    let list = r.json()["sessions"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{}", r.body);
    assert_eq!(list[0]["id"], id.as_str());
    let r = s.call("GET", "/v1/sessions?limit=1", None);
    assert_eq!(r.json()["sessions"].as_array().unwrap().len(), 1);
    assert!(r.json()["next_after"].is_string(), "{}", r.body);
    let r = s.call("GET", &format!("/v1/sessions/{id}"), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["tags"], json!(["eu", "shop"]));

    // Extend adds to the current expiry.
    let r = s.call(
        "POST",
        &format!("/v1/sessions/{id}/extend"),
        Some(json!({"additional_seconds": 86400})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let exp2 = r.json()["expires_at"].as_str().unwrap().to_string();
    assert!(exp2 > exp, "{exp2} must be later than {exp}");
    let r = s.call(
        "POST",
        &format!("/v1/sessions/{id}/extend"),
        Some(json!({"additional_seconds": -5})),
    );
    assert_eq!(r.status, 400);

    // Cookies on a hibernated session: set, read (values hidden), delete.
    let r = s.call(
        "POST",
        &format!("/v1/sessions/{id}/cookies"),
        Some(json!({"cookies": [
            {"name": "sid", "value": "s3cr3t", "domain": ".example.com", "http_only": true, "secure": true, "same_site": "Lax"},
            {"name": "pref", "value": "dark", "domain": "shop.example.com", "expires": 4102444800u64}
        ]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.call(
        "POST",
        &format!("/v1/sessions/{id}/cookies"),
        Some(json!({"name": "x", "value": "1", "domain": "other.org"})),
    );
    assert_eq!(
        r.status, 200,
        "a single cookie object is accepted: {}",
        r.body
    );
    let r = s.call(
        "POST",
        &format!("/v1/sessions/{id}/cookies"),
        Some(json!({"cookies": [{"name": "x", "value": "1"}]})),
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("cookies[0].domain"), "{}", r.body);
    let r = s.call(
        "GET",
        &format!("/v1/sessions/{id}/cookies/shop.example.com"),
        None,
    );
    let cookies = r.json()["cookies"].as_array().unwrap().clone();
    assert_eq!(
        cookies.len(),
        2,
        "the domain cookie and the host cookie match: {}",
        r.body
    );
    assert!(
        !r.body.contains("s3cr3t"),
        "values are hidden unless asked: {}",
        r.body
    );
    let r = s.call(
        "GET",
        &format!("/v1/sessions/{id}/cookies/shop.example.com?values=true"),
        None,
    );
    assert!(r.body.contains("s3cr3t"), "{}", r.body);
    let r = s.call("GET", &format!("/v1/sessions/{id}/cookies/ample.com"), None);
    assert_eq!(
        r.json()["cookies"].as_array().unwrap().len(),
        0,
        "{}",
        r.body
    );
    let r = s.call(
        "DELETE",
        &format!("/v1/sessions/{id}/cookies?domain=other.org&name=x"),
        None,
    );
    assert_eq!(r.json()["removed"], 1, "{}", r.body);

    // Execution context.
    let r = s.call(
        "PUT",
        &format!("/v1/sessions/{id}/context"),
        Some(json!({"task": 42, "steps": ["login"]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.call("GET", &format!("/v1/sessions/{id}/context"), None);
    assert_eq!(r.json(), json!({"task": 42, "steps": ["login"]}));
    let r = s.call(
        "PUT",
        &format!("/v1/sessions/{id}/context"),
        Some(json!([1, 2])),
    );
    assert_eq!(r.status, 400);

    // State summary: names and flags, no values.
    let r = s.call("GET", &format!("/v1/sessions/{id}/state"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("sid") && !r.body.contains("s3cr3t"),
        "{}",
        r.body
    );

    // Snapshots and rollback: undo the context edit.
    let r = s.call("GET", &format!("/v1/sessions/{id}/snapshots"), None);
    let snaps = r.json()["snapshots"].as_array().unwrap().len();
    assert!(snaps >= 2, "{}", r.body);
    let r = s.call(
        "POST",
        &format!("/v1/sessions/{id}/rollback"),
        Some(json!({})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.call("GET", &format!("/v1/sessions/{id}/context"), None);
    assert_eq!(
        r.json(),
        json!({}),
        "rolled back to before the context was set"
    );

    // Fork: same state under a new id.
    let r = s.call(
        "POST",
        &format!("/v1/sessions/{id}/fork"),
        Some(json!({"name": "shop-2"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let fork = r.json()["id"].as_str().unwrap().to_string();
    assert_ne!(fork, id);
    let r = s.call(
        "GET",
        &format!("/v1/sessions/{fork}/cookies/example.com"),
        None,
    );
    assert_eq!(
        r.json()["cookies"].as_array().unwrap().len(),
        2,
        "{}",
        r.body
    );

    // Export sealed to a recipient's public key; import with the identity.
    let idf = dir.p("bob.id");
    let out = host()
        .args(["keygen", "--identity", "-o"])
        .arg(&idf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = std::fs::read_to_string(dir.p("bob.id.pub")).unwrap();
    let secret = std::fs::read_to_string(&idf).unwrap();
    let secret_line = secret
        .lines()
        .find(|l| l.starts_with("sessbundle-identity-v1:"))
        .unwrap()
        .to_string();
    let (st, bundle) = service::request_bytes(
        &s.addr,
        "GET",
        &format!("/v1/sessions/{id}/export"),
        s.key(),
        &[("X-Sesshost-Recipient", public.trim())],
        b"",
    );
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&bundle));
    assert!(
        bundle.len() > 64 && !common::contains(&bundle, "s3cr3t"),
        "an encrypted bundle"
    );
    let (st, body) = service::request_bytes(
        &s.addr,
        "GET",
        &format!("/v1/sessions/{id}/export"),
        s.key(),
        &[],
        b"",
    );
    assert_eq!(
        st,
        400,
        "no key to seal to: {}",
        String::from_utf8_lossy(&body)
    );
    let (st, body) = service::request_bytes(
        &s.addr,
        "POST",
        "/v1/sessions/import?name=moved",
        s.key(),
        &[("X-Sesshost-Identity", &secret_line)],
        &bundle,
    );
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&body));
    let moved: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let moved_id = moved["id"].as_str().unwrap().to_string();
    let r = s.call(
        "GET",
        &format!("/v1/sessions/{moved_id}/cookies/example.com?values=true"),
        None,
    );
    assert!(
        r.body.contains("s3cr3t"),
        "the imported session holds the cookies: {}",
        r.body
    );
    let other_id = "sessbundle-identity-v1:".to_string() + &"A".repeat(43);
    let (st, _) = service::request_bytes(
        &s.addr,
        "POST",
        "/v1/sessions/import",
        s.key(),
        &[("X-Sesshost-Identity", &other_id)],
        &bundle,
    );
    assert!(st == 400 || st == 403, "a wrong identity is refused: {st}");
    let (st, _) = service::request_bytes(
        &s.addr,
        "POST",
        "/v1/sessions/import",
        s.key(),
        &[("X-Sesshost-Identity", &secret_line)],
        b"garbage that is not a bundle",
    );
    assert!(st == 400 || st == 403, "garbage is refused: {st}");
    s.call("DELETE", &format!("/v1/sessions/{moved_id}"), None);

    // Stats and audit.
    let r = s.call("GET", "/v1/sessions/stats", None);
    assert_eq!(r.json()["total"], 3, "{}", r.body);
    let r = s.call("GET", &format!("/v1/audit?session={id}"), None);
    let actions: Vec<String> = r.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert!(
        actions.contains(&"session.create".to_string())
            && actions.contains(&"cookies.set".to_string()),
        "{actions:?}"
    );
    assert!(
        !r.body.contains("s3cr3t"),
        "the audit log holds counts, never values"
    );

    // Delete: 404 afterwards, on every route.
    let r = s.call("DELETE", &format!("/v1/sessions/{other}"), None);
    assert_eq!(r.status, 204, "{}", r.body);
    for (m, p, body) in [
        ("GET", "", None),
        ("POST", "/extend", Some(json!({"additional_seconds": 1}))),
        ("GET", "/context", None),
        ("POST", "/acquire", Some(json!({}))),
    ] {
        let r = s.call(m, &format!("/v1/sessions/{other}{p}"), body);
        assert_eq!(r.status, 404, "{m} {p}: {}", r.body);
    }

    // Unauthenticated service routes.
    for p in ["/healthz", "/v1/openapi.json"] {
        let r = s.req("GET", p, None, None);
        assert_eq!(r.status, 200, "{p}: {}", r.body);
        let _ = r.json();
    }
    let r = s.req("GET", "/v1/pressure", None, None);
    assert!(r.json()["max_live"].as_u64().unwrap() >= 1, "{}", r.body);
    let r = s.req("GET", "/metrics", None, None);
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("sesshost_sessions{state=\"hibernated\"} 2"),
        "{}",
        r.body
    );
    assert!(r.body.contains("sesshost_created_total 4"), "{}", r.body);
    assert!(
        !common::contains(s.log().as_bytes(), "s3cr3t"),
        "no cookie value in the service's log"
    );
    assert!(
        !common::contains(s.log().as_bytes(), "lease="),
        "no lease token in the service's log"
    );
    let r = s.req("GET", "/nope", None, None);
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "not_found");
}

#[test]
fn tenants_are_isolated_and_limits_answer_429() {
    let dir = common::Dir::new("svc-tenants");
    let home = dir.p("home");
    let s = Service::start(
        &home,
        &config("[limits]\ncreate_per_minute = 1\ncreate_burst = 2\nsessions_per_tenant = 5\n"),
    );
    let mine = s
        .call("POST", "/v1/sessions", Some(json!({"name": "a"})))
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.call("POST", "/v1/sessions", None).status, 201);
    // Over the creation rate: 429 with Retry-After.
    let r = s.call("POST", "/v1/sessions", None);
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.code(), "rate_limited");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    // A tenant and key made while the service runs work at once.
    let gkey = service::tenant_key(&home, "globex");
    let r = s.req("GET", "/v1/sessions", Some(&gkey), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["sessions"].as_array().unwrap().len(),
        0,
        "another tenant's sessions are invisible"
    );
    for (m, p) in [
        ("GET", ""),
        ("GET", "/context"),
        ("DELETE", ""),
        ("GET", "/state"),
    ] {
        let r = s.req(m, &format!("/v1/sessions/{mine}{p}"), Some(&gkey), None);
        assert_eq!(r.status, 404, "{m} {p}: {}", r.body);
    }
    // Its own rate is its own.
    let r = s.req("POST", "/v1/sessions", Some(&gkey), Some(&json!({})));
    assert_eq!(r.status, 201, "{}", r.body);

    // A revoked key is refused at once.
    let out = host()
        .args(["key", "list", "--json"])
        .env("SESSHOST_HOME", &home)
        .output()
        .unwrap();
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let gid = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["tenant"] == "globex")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&gkey),
        "key list never shows a key"
    );
    let out = host()
        .args(["key", "revoke", &gid])
        .env("SESSHOST_HOME", &home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.req("GET", "/v1/sessions", Some(&gkey), None).status, 401);
}

#[test]
fn session_cap_answers_429_and_expired_sessions_are_cleaned_up() {
    let dir = common::Dir::new("svc-cap");
    let home = dir.p("home");
    let s = Service::start(
        &home,
        &config("[limits]\ncreate_burst = 10\nsessions_per_tenant = 2\n"),
    );
    let short = s
        .call("POST", "/v1/sessions", Some(json!({"ttl_seconds": 1})))
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.call("POST", "/v1/sessions", None).status, 201);
    let r = s.call("POST", "/v1/sessions", None);
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.code(), "session_limit_reached");
    assert!(r.header("retry-after").is_some());
    // The 1 s session expires and the 1 s cleanup removes it.
    service::wait_until(
        "the expired session to be cleaned up",
        Duration::from_secs(20),
        || s.call("GET", &format!("/v1/sessions/{short}"), None).status == 404,
    );
    assert_eq!(
        s.call("POST", "/v1/sessions", None).status,
        201,
        "room again"
    );
    let m = s.req("GET", "/metrics", None, None).body;
    assert!(m.contains("sesshost_expired_total 1"), "{m}");
}
