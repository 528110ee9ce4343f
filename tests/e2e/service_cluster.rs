//! `host run --cluster`: three real hosts on one Ceph RGW bucket (atomic
//! conditional writes; started by `.ci/rgw`), with lease T = 3 s:
//!
//! 0. tenants and API keys live in the bucket: only A (the first start)
//!    prints a default key, and B and C accept it with nothing copied
//!    between the homes; `host key create --cluster …` run as a CLI while
//!    the hosts serve prints a key another host accepts at once, and
//!    `host key revoke --cluster …` makes every host refuse it within the
//!    documented cache TTL (the figure is printed);
//! 1. a session made on A is served through B (REST and the CDP
//!    websocket forwarded to A, the holder); `GET` shows holder and epoch;
//! 2. `kill -STOP` A for 3 T: an acquire sent to B waits, B judges A dead
//!    and takes the session over from its last commit (epoch rises), the
//!    login A committed is there;
//! 3. `kill -CONT` A: A finds its claim taken, logs "fenced" and closes its
//!    Chromium; B's state is intact;
//! 4. SIGTERM B hands its sessions over: C acquires at once;
//! 5. `kill -9` C: A takes over after ~1.5 T (the figure is printed);
//!
//! and `--cluster` refuses to start on s3s-fs, whose conditional writes
//! are not atomic, naming the failed check. One test function per server so
//! RGW starts once (~20 s). Figures:
//! `cargo test --workspace --locked --test service_cluster -- --nocapture`.

mod common;
mod service;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use service::{Service, chromium_pids, client, config, request, unsafe_kill, wait_until};
use sesshost_fixture::Fixture;

const T: u64 = 3;

/// Where a bucket is and how to sign for it.
struct S3 {
    endpoint: String,
    port: u16,
    access_key: String,
    secret_key: String,
    bucket: String,
}

struct Rgw {
    script: PathBuf,
    dir: PathBuf,
    s3: S3,
}

impl Drop for Rgw {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

fn start_rgw() -> Rgw {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.ci/rgw");
    let dir = std::env::temp_dir().join(format!("sesshost-rgw-cluster-{}", std::process::id()));
    let out = Command::new(&script)
        .arg("start")
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "Ceph RGW did not start: run .ci/setup.\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let get = |k: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k}= in {stdout}"))
            .to_string()
    };
    let endpoint = get("endpoint");
    let port = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    Rgw {
        script,
        dir,
        s3: S3 {
            endpoint,
            port,
            access_key: get("access_key"),
            secret_key: get("secret_key"),
            bucket: get("bucket"),
        },
    }
}

/// `host run --cluster` flags for a bucket at `endpoint` (port `port`):
/// `--cluster`, the lease, [`bucket_args`] and the repository key.
fn cluster_args(d: &common::Dir, s3: &S3, prefix: &str) -> Vec<String> {
    std::fs::write(d.p("repo-pass"), "correct horse battery staple").unwrap();
    let mut v: Vec<String> = vec!["--cluster".into(), "--lease-seconds".into(), T.to_string()];
    v.extend(bucket_args(d, s3, prefix));
    v.extend([
        "--passphrase-file".into(),
        d.p("repo-pass").display().to_string(),
    ]);
    v
}

/// The storage flags of the bucket (plugin, its config file, the host it
/// may reach): what `host run --cluster` and `host tenant|key --cluster`
/// both take.
fn bucket_args(d: &common::Dir, s3: &S3, prefix: &str) -> Vec<String> {
    let S3 {
        endpoint,
        port,
        access_key: ak,
        secret_key: sk,
        bucket,
    } = s3;
    let secret = d.p("s3-secret");
    std::fs::write(&secret, sk).unwrap();
    let cfg = d.p("s3.toml");
    std::fs::write(
        &cfg,
        format!(
            "endpoint = \"{endpoint}\"\nbucket = \"{bucket}\"\naccess_key_id = \"{ak}\"\nsecret_access_key = \"file:{}\"\nprefix = \"{prefix}/\"\n",
            secret.display()
        ),
    )
    .unwrap();
    vec![
        "--plugin".into(),
        common::wasm("s3").display().to_string(),
        "--plugin-config-file".into(),
        cfg.display().to_string(),
        "--allow-host".into(),
        format!("127.0.0.1:{port}"),
    ]
}

/// `host ARGS… --cluster BUCKET_ARGS…` as a separate CLI process on its
/// own home (no host's): its stdout, after checking it exited 0.
fn cluster_cli(d: &common::Dir, args: &[&str], bucket: &[String]) -> String {
    let o = service::host()
        .args(args)
        .arg("--cluster")
        .args(bucket)
        .env("SESSHOST_HOME", d.p("home-cli"))
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    );
    assert!(o.status.success(), "host {args:?} --cluster: {err}\n{out}");
    out
}

fn start(home: &Path, args: &[String], name: &str) -> Service {
    let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
    a.extend(["--host-id", name]);
    // The bucket is collected every 2 s with no grace (the strictest
    // setting: every step of a collection runs in one go while the hosts
    // commit), by whichever host holds cluster/gc.
    Service::start_with(
        home,
        &config("gc_interval_seconds = 2\ngc_grace_seconds = 0\n"),
        &a,
    )
}

fn session(s: &Service, key: &str, id: &str) -> Value {
    let r = s.req("GET", &format!("/v1/sessions/{id}"), Some(key), None);
    assert_eq!(r.status, 200, "{}\n{}", r.body, s.log());
    r.json()
}

/// `GET /v1/sessions/{id}/context` on `s`, checked 200.
fn context(s: &Service, key: &str, id: &str) -> Value {
    let r = s.req(
        "GET",
        &format!("/v1/sessions/{id}/context"),
        Some(key),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn holder(v: &Value) -> String {
    v["holder"]["host_id"].as_str().unwrap_or("").to_string()
}

fn acquire(s: &Service, key: &str, id: &str, wait: u64) -> Value {
    let r = s.req(
        "POST",
        &format!("/v1/sessions/{id}/acquire"),
        Some(key),
        Some(&json!({"wait_seconds": wait})),
    );
    assert_eq!(
        r.status,
        200,
        "acquire via {}: {}\n{}",
        s.addr,
        r.body,
        s.log()
    );
    r.json()
}

fn release(s: &Service, key: &str, id: &str, lease: &Value) {
    let r = s.req(
        "POST",
        &format!("/v1/sessions/{id}/release"),
        Some(key),
        Some(&json!({"lease_id": lease["lease_id"]})),
    );
    assert_eq!(
        r.status,
        200,
        "release via {}: {}\n{}",
        s.addr,
        r.body,
        s.log()
    );
}

/// The median of `n` timed GETs of `path` on `addr`, in ms.
fn median_get(addr: &str, key: &str, path: &str, n: usize) -> f64 {
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let r = request(addr, "GET", path, Some(key), None);
            assert_eq!(r.status, 200, "{}", r.body);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[n / 2]
}

#[test]
fn three_hosts_share_one_rgw_bucket() {
    let rgw = start_rgw();
    let fx = Fixture::start();
    let d = common::Dir::new("cluster");
    let args = cluster_args(&d, &rgw.s3, "c1");
    let mut a = start(&d.p("homeA"), &args, "a");
    let key = a.key().to_string();
    // 0. Tenants and keys live in the bucket: B and C make no default key
    // of their own and accept A's, with nothing copied between homes.
    let mut b = start(&d.p("homeB"), &args, "b");
    let mut c = start(&d.p("homeC"), &args, "c");
    assert!(
        b.key.is_none() && c.key.is_none(),
        "only the first start prints a key"
    );
    for s in [&a, &b, &c] {
        let r = request(&s.addr, "GET", "/readyz", None, None);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["cluster"]["serving"], true, "{}", r.body);
        assert!(
            !s.home.join("service/keys").exists(),
            "no key registry in a --cluster home"
        );
    }
    let r = b.req("GET", "/v1/cluster", Some(&key), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let hosts = r.json()["hosts"].as_array().cloned().unwrap_or_default();
    assert_eq!(hosts.len(), 3, "{}", r.body);
    assert_eq!(c.req("GET", "/v1/sessions", Some(&key), None).status, 200);
    // A key made by the CLI while the hosts run (the same storage flags,
    // plus a --plugin-config and host run's --config) works on every host
    // at once; revoked, every host refuses it within the cache TTL.
    let mut bucket = bucket_args(&d, &rgw.s3, "c1");
    bucket.extend([
        "--plugin-config".into(),
        "prefix=c1/".into(),
        "--config".into(),
        d.p("homeA").with_extension("toml").display().to_string(),
    ]);
    let out = cluster_cli(&d, &["key", "create", "--tenant", "default"], &bucket);
    let k2 = out.trim().to_string();
    assert!(k2.starts_with("shk_") && out.lines().count() == 1, "{out}");
    let k2_id = k2[4..16].to_string();
    for s in [&b, &c, &a] {
        let r = s.req("GET", "/v1/sessions", Some(&k2), None);
        assert_eq!(r.status, 200, "a new key via {}: {}", s.addr, r.body);
    }
    let list = cluster_cli(&d, &["key", "list", "--json"], &bucket);
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    assert!(!list.to_string().contains(&k2[17..]), "no secret listed");
    let tenants = cluster_cli(&d, &["tenant", "list"], &bucket);
    assert!(tenants.contains("default"), "{tenants}");
    cluster_cli(&d, &["key", "revoke", &k2_id], &bucket);
    let t0 = Instant::now();
    let ttl = Duration::from_secs(5); // tenants::BUCKET_CACHE_TTL
    wait_until(
        "every host refuses the revoked key",
        ttl + Duration::from_secs(3),
        || {
            [&a, &b, &c]
                .iter()
                .all(|s| s.req("GET", "/v1/sessions", Some(&k2), None).status == 401)
        },
    );
    eprintln!(
        "figure: a key revoked by the CLI is refused by every host {:.1} s later (cache TTL {} s)",
        t0.elapsed().as_secs_f64(),
        ttl.as_secs()
    );
    assert_eq!(a.req("GET", "/v1/sessions", Some(&key), None).status, 200);

    // 1. Made on A; acquired on A; served through B.
    let r = a.req(
        "POST",
        "/v1/sessions",
        Some(&key),
        Some(&json!({"name": "shop"})),
    );
    assert_eq!(r.status, 201, "{}\n{}", r.body, a.log());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let v = session(&c, &key, &id);
    assert_eq!(v["name"], "shop", "C reads a session made on A: {v}");
    let lease = acquire(&a, &key, &id, 0);
    let v = session(&b, &key, &id);
    assert!(holder(&v).starts_with("a-"), "{v}");
    // A list on C shows the fleet: the session with its holder and epoch,
    // and the three hosts.
    let r = c.req("GET", "/v1/sessions", Some(&key), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let l = r.json();
    let item = l["sessions"]
        .as_array()
        .and_then(|v| v.iter().find(|s| s["id"] == id.as_str()).cloned())
        .unwrap_or_else(|| panic!("C's list lacks {id}: {l}"));
    assert!(holder(&item).starts_with("a-"), "{item}");
    assert_eq!(item["epoch"], v["epoch"], "{item}");
    assert_eq!(l["hosts"].as_array().map(Vec::len), Some(3), "{l}");
    // So does `host session list --cluster`, a CLI on the bucket alone.
    let flags = bucket_args(&d, &rgw.s3, "c1");
    let out = cluster_cli(&d, &["session", "list", "--json"], &flags);
    let fl: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let s = fl["sessions"]
        .as_array()
        .and_then(|v| v.iter().find(|s| s["id"] == id.as_str()).cloned())
        .unwrap_or_else(|| panic!("the CLI's fleet lacks {id}: {fl}"));
    assert!(s["holder"].as_str().unwrap_or("").starts_with("a-"), "{s}");
    assert_eq!(s["epoch"], v["epoch"], "{s}");
    assert_eq!(fl["hosts"].as_array().map(Vec::len), Some(3), "{fl}");
    let table = cluster_cli(&d, &["session", "list"], &flags);
    assert!(
        table.contains(&id) && table.contains("garbage collection:"),
        "{table}"
    );
    let epoch1 = v["epoch"].as_u64().unwrap();
    // The CDP websocket through B reaches A's browser.
    let cdp_b = lease["cdp_url"].as_str().unwrap().replace(&a.addr, &b.addr);
    client(
        "playwright",
        &cdp_b,
        "login",
        &fx.a("/login"),
        Some("alice"),
    )
    .unwrap();
    let r = b.req(
        "POST",
        &format!("/v1/sessions/{id}/heartbeat"),
        Some(&key),
        Some(&json!({"lease_id": lease["lease_id"]})),
    );
    assert_eq!(r.status, 200, "heartbeat through B: {}", r.body);
    // Proxy overhead on a GET: through B vs on A itself.
    let path = format!("/v1/sessions/{id}/context");
    let direct = median_get(&a.addr, &key, &path, 200);
    let via = median_get(&b.addr, &key, &path, 200);
    eprintln!(
        "figure: GET {path}: direct on the holder {direct:.2} ms, forwarded through another host {via:.2} ms (overhead {:.2} ms, p50 of 200)",
        via - direct
    );
    // And on a CDP round trip (Runtime.evaluate on a page), through B's
    // websocket proxy vs A's own CDP URL.
    let rtt = |url: &str| {
        let out = client("puppeteer", url, "rtt", &fx.a("/app"), Some("300")).unwrap();
        out["rtt_p50_ms"]
            .as_f64()
            .unwrap_or_else(|| panic!("{out}"))
    };
    let cdp_a = lease["cdp_url"].as_str().unwrap();
    let (direct, via) = (rtt(cdp_a), rtt(&cdp_b));
    eprintln!(
        "figure: CDP round trip: on the holder {direct:.3} ms, forwarded through another host {via:.3} ms (overhead {:.3} ms, p50 of 300)",
        via - direct
    );
    release(&b, &key, &id, &lease);
    // A keeps the browser (idle) and the claim.
    let lease = acquire(&a, &key, &id, 0);
    release(&a, &key, &id, &lease);
    assert!(holder(&session(&c, &key, &id)).starts_with("a-"));

    // 2. A freezes; an acquire on B waits, then B takes over.
    let a_pid = a.child.id() as i32;
    unsafe_kill(a_pid, libc::SIGSTOP);
    let t0 = Instant::now();
    let lease = acquire(&b, &key, &id, 30);
    let took = t0.elapsed();
    eprintln!(
        "figure: takeover of a frozen host's session: {:.1} s after SIGSTOP (T = {T} s; 1.5 T = {:.1} s, plus restore)",
        took.as_secs_f64(),
        1.5 * T as f64
    );
    // B counts 1.5 T from the last renewal of A's it saw, which A sent up
    // to T/3 (its renewal period) before it was stopped: the takeover may
    // come 1.5 T - T/3 after SIGSTOP, never sooner.
    assert!(
        took >= Duration::from_secs_f64((1.5 - 1.0 / 3.0) * T as f64 - 0.05),
        "taken over too early: {took:?}"
    );
    let v = session(&c, &key, &id);
    assert!(holder(&v).starts_with("b-"), "{v}");
    let epoch2 = v["epoch"].as_u64().unwrap();
    assert!(epoch2 > epoch1, "the epoch rose: {epoch1} -> {epoch2}");
    let page = client(
        "playwright",
        lease["cdp_url"].as_str().unwrap(),
        "app",
        &fx.a("/app"),
        None,
    )
    .unwrap();
    assert_eq!(page["status"], "logged in as alice", "{page}\n{}", b.log());
    let r = b.req(
        "PUT",
        &format!("/v1/sessions/{id}/context"),
        Some(&key),
        Some(&json!({"by": "b"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    release(&b, &key, &id, &lease);

    // 3. A wakes up: fenced, its Chromium for the session closed.
    std::thread::sleep(Duration::from_secs(T)); // A stays frozen 3 T in all
    unsafe_kill(a_pid, libc::SIGCONT);
    wait_until(
        "A logs that it was fenced",
        Duration::from_secs(4 * T),
        || a.log().contains("fenced"),
    );
    wait_until("A closes its Chromium", Duration::from_secs(4 * T), || {
        chromium_pids(&d.p("homeA")).is_empty()
    });
    let v = context(&c, &key, &id);
    assert_eq!(v["by"], "b", "B's state is intact: {v}");

    // 4. SIGTERM B: it commits and releases; C acquires at once.
    assert_eq!(
        b.terminate(Duration::from_secs(40)).code(),
        Some(0),
        "{}",
        b.log()
    );
    let t0 = Instant::now();
    let lease = acquire(&c, &key, &id, 0);
    eprintln!(
        "figure: acquire on C right after SIGTERM of the holder: {:.0} ms (no lease wait)",
        t0.elapsed().as_secs_f64() * 1000.0
    );
    let v = session(&c, &key, &id);
    assert!(holder(&v).starts_with("c-"), "{v}");
    assert!(v["epoch"].as_u64().unwrap() > epoch2, "{v}");
    let page = client(
        "playwright",
        lease["cdp_url"].as_str().unwrap(),
        "app",
        &fx.a("/app"),
        None,
    )
    .unwrap();
    assert_eq!(page["status"], "logged in as alice", "{page}");

    // 5. kill -9 C while it holds the session: A takes over after ~1.5 T.
    c.kill9();
    let t0 = Instant::now();
    let lease = acquire(&a, &key, &id, 30);
    let took = t0.elapsed();
    eprintln!(
        "figure: takeover after kill -9 of the holder: {:.1} s (target <= 1.5 T + restore = {:.1} s + restore)",
        took.as_secs_f64(),
        1.5 * T as f64
    );
    let v = session(&a, &key, &id);
    assert!(holder(&v).starts_with("a-"), "{v}");
    assert_eq!(context(&a, &key, &id)["by"], "b");
    release(&a, &key, &id, &lease);
    let m = request(&a.addr, "GET", "/metrics", None, None).body;
    assert!(m.contains("sesshost_cluster_takeovers_total 1"), "{m}");

    // 6. One collector at a time: the GC lease changed hands (A was
    // frozen, B left, C died) and is now A's, the only live host, whose
    // collections (every 2 s, grace 0) ran without error; the session's
    // committed state still restores from the bucket after them.
    let mut gc = Value::Null;
    wait_until("A holds cluster/gc", Duration::from_secs(4 * T), || {
        gc = a.req("GET", "/v1/cluster", Some(&key), None).json()["gc"].clone();
        gc["epoch"].is_u64() && gc["runs"].as_u64() >= Some(1)
    });
    assert!(gc["holder"].as_str().unwrap().starts_with("a-"), "{gc}");
    assert!(
        gc["epoch"].as_u64().unwrap() >= 2,
        "the lease never moved: {gc}"
    );
    assert!(gc["last_report"].get("error").is_none(), "{gc}");
    eprintln!("figure: collection on A after the lease moved: {gc}");
    let m = request(&a.addr, "GET", "/metrics", None, None).body;
    assert!(
        !m.contains("sesshost_cluster_gc_runs_total{result=\"error\"}"),
        "{m}"
    );
    // A session deleted from the bucket frees its own chunks: the next
    // collections delete them (the metric counts what A's deleted).
    let deleted = |m: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix("sesshost_cluster_gc_chunks_deleted_total "))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = deleted(&request(&a.addr, "GET", "/metrics", None, None).body);
    let r = a.req(
        "POST",
        "/v1/sessions",
        Some(&key),
        Some(&json!({"name": "scratch"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let tmp = r.json()["id"].as_str().unwrap().to_string();
    let l = acquire(&a, &key, &tmp, 0);
    let r = a.req(
        "PUT",
        &format!("/v1/sessions/{tmp}/context"),
        Some(&key),
        Some(&json!({"scratch": "x".repeat(4096)})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    release(&a, &key, &tmp, &l);
    let r = a.req("DELETE", &format!("/v1/sessions/{tmp}"), Some(&key), None);
    assert!(r.status == 200 || r.status == 204, "{}", r.body);
    wait_until(
        "A's collection deletes the deleted session's chunks",
        Duration::from_secs(20),
        || deleted(&request(&a.addr, "GET", "/metrics", None, None).body) > before,
    );
    assert_eq!(
        a.terminate(Duration::from_secs(40)).code(),
        Some(0),
        "{}",
        a.log()
    );
    // What the kept session needs survived every collection: a new host
    // with an empty home restores it from the bucket alone.
    let mut e = start(&d.p("homeE"), &args, "e");
    let lease = acquire(&e, &key, &id, 0);
    assert_eq!(context(&e, &key, &id)["by"], "b");
    release(&e, &key, &id, &lease);
    assert_eq!(
        e.terminate(Duration::from_secs(40)).code(),
        Some(0),
        "{}",
        e.log()
    );
    drop(rgw);
}

#[test]
fn cluster_refuses_a_bucket_without_atomic_conditional_writes() {
    let Some(bin) = which("s3s-fs") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "s3s-fs not installed: run .ci/setup"
        );
        eprintln!("NOTE: s3s-fs not installed; skipped");
        return;
    };
    let d = common::Dir::new("cluster-s3s");
    std::fs::create_dir_all(d.p("data/sessions")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ak, sk) = ("AKIAS3SFSTEST", "s3s-fs-test-secret");
    let mut srv = Command::new(bin)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            ak,
            "--secret-key",
            sk,
        ])
        .arg(d.p("data"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("s3s-fs listens", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let s3 = S3 {
        endpoint: format!("http://127.0.0.1:{port}"),
        port,
        access_key: ak.into(),
        secret_key: sk.into(),
        bucket: "sessions".into(),
    };
    let args = cluster_args(&d, &s3, "p");
    let o = service::host()
        .args(["run", "--listen", "127.0.0.1:0"])
        .args(&args)
        .env("SESSHOST_HOME", d.p("home"))
        .output()
        .unwrap();
    let _ = srv.kill();
    let _ = srv.wait();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("atomic conditional writes"), "{err}");
    assert!(err.contains("race"), "the failed check is named: {err}");
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let home_bin = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    std::env::split_paths(&path)
        .chain(home_bin)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A small deterministic generator (xorshift64*), seeded and printed so a
/// failing run can be replayed with `SESSHOST_CHAOS_SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum HostState {
    Running,
    Stopped,
}

/// What one worker saw: per acknowledged release, the counter it wrote
/// and the epoch its holder had.
#[derive(Default, Debug)]
struct Ledger {
    acked: Vec<(u64, u64)>,
    attempts: u64,
    failures: u64,
    last_tried: u64,
}

/// Chaos: three hosts on one RGW bucket, random `kill -STOP` / `kill -CONT`
/// / `kill -9` (then restart) events while one worker per session writes a
/// counter through leases (acquire on a random host, `PUT context`,
/// release; a 2xx release is an acknowledged commit). At the end every
/// session's counter is at least the last acknowledged one (no
/// acknowledged commit lost), the epochs the workers saw at their
/// acknowledgements never decrease, and after SIGTERM no Chromium is left.
///
/// Opt-in: `SESSHOST_CHAOS_EVENTS` (default 10) within
/// `SESSHOST_CHAOS_SECONDS` (default 60); the issue's run is
/// `SESSHOST_CHAOS_EVENTS=50 SESSHOST_CHAOS_SECONDS=300 cargo test -p
/// sesshost-cli --test service_cluster chaos -- --ignored --nocapture`.
/// CI runs the scripted 3-host scenario above instead.
#[test]
#[ignore = "opt-in (minutes, heavy): cargo test -p sesshost-cli --test service_cluster chaos -- --ignored --nocapture"]
fn chaos_loses_no_acknowledged_commit() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let events = env_num("SESSHOST_CHAOS_EVENTS", 10);
    let seconds = env_num("SESSHOST_CHAOS_SECONDS", 60);
    let seed = env_num(
        "SESSHOST_CHAOS_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1,
    );
    eprintln!("chaos: {events} events in {seconds} s, seed {seed}");
    let mut rng = Rng(seed);

    let rgw = start_rgw();
    let d = common::Dir::new("cluster-chaos");
    let args = cluster_args(&d, &rgw.s3, "chaos");
    let names = ["a", "b", "c"];
    let homes: Vec<PathBuf> = names.iter().map(|n| d.p(&format!("home-{n}"))).collect();
    let first = start(&homes[0], &args, names[0]);
    let key = first.key().to_string();
    let mut hosts: Vec<Service> = vec![first];
    for i in 1..3 {
        hosts.push(start(&homes[i], &args, names[i]));
    }
    // Which hosts the workers may call (a stopped host would hold a call
    // for as long as it is stopped).
    let table: Arc<Mutex<Vec<(String, HostState)>>> = Arc::new(Mutex::new(
        hosts
            .iter()
            .map(|h| (h.addr.clone(), HostState::Running))
            .collect(),
    ));

    let sessions: Vec<String> = (0..3)
        .map(|i| {
            let r = hosts[i].req(
                "POST",
                "/v1/sessions",
                Some(&key),
                Some(&json!({"name": format!("counter-{i}")})),
            );
            assert_eq!(r.status, 201, "{}", r.body);
            r.json()["id"].as_str().unwrap().to_string()
        })
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for (w, id) in sessions.iter().cloned().enumerate() {
        let (table, stop, key) = (table.clone(), stop.clone(), key.clone());
        let mut wrng = Rng(seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(w as u64 + 1)));
        workers.push(std::thread::spawn(move || {
            let mut l = Ledger::default();
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let addr = {
                    let t = table.lock().unwrap();
                    let up: Vec<&String> = t
                        .iter()
                        .filter(|(_, s)| *s == HostState::Running)
                        .map(|(a, _)| a)
                        .collect();
                    if up.is_empty() {
                        None
                    } else {
                        Some(up[wrng.below(up.len())].clone())
                    }
                };
                let Some(addr) = addr else {
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                };
                n += 1;
                l.attempts += 1;
                l.last_tried = n;
                let ok = (|| {
                    let r = request(
                        &addr,
                        "POST",
                        &format!("/v1/sessions/{id}/acquire"),
                        Some(&key),
                        Some(r#"{"wait_seconds": 10, "lease_seconds": 20}"#),
                    );
                    if r.status != 200 {
                        return None;
                    }
                    let lease = r.json();
                    let release = || {
                        request(
                            &addr,
                            "POST",
                            &format!("/v1/sessions/{id}/release"),
                            Some(&key),
                            Some(&json!({"lease_id": lease["lease_id"]}).to_string()),
                        )
                    };
                    let r = request(
                        &addr,
                        "PUT",
                        &format!("/v1/sessions/{id}/context"),
                        Some(&key),
                        Some(&json!({"n": n}).to_string()),
                    );
                    if r.status != 200 {
                        // Hand the lease back (not acknowledged either way).
                        release();
                        return None;
                    }
                    let v = request(
                        &addr,
                        "GET",
                        &format!("/v1/sessions/{id}"),
                        Some(&key),
                        None,
                    );
                    let epoch = (v.status == 200)
                        .then(|| v.json()["epoch"].as_u64())
                        .flatten();
                    (release().status == 200).then_some(epoch.unwrap_or(0))
                })();
                match ok {
                    Some(epoch) => l.acked.push((n, epoch)),
                    None => {
                        l.failures += 1;
                        std::thread::sleep(Duration::from_millis(300));
                    }
                }
            }
            l
        }));
    }

    // The events, evenly spaced; at most one host stopped at a time (so
    // that two of three can always take over), a stopped host woken by the
    // next event, a killed host restarted on its own home at once.
    let gap = Duration::from_secs(seconds) / events.max(1) as u32;
    let mut state = [HostState::Running; 3];
    let (mut stops, mut conts, mut kills) = (0, 0, 0);
    for _ in 0..events {
        std::thread::sleep(gap);
        if let Some(i) = state.iter().position(|s| *s == HostState::Stopped) {
            if rng.below(2) == 0 {
                unsafe_kill(hosts[i].child.id() as i32, libc::SIGCONT);
                conts += 1;
            } else {
                hosts[i].kill9();
                hosts[i] = start(&homes[i], &args, names[i]);
                kills += 1;
            }
            state[i] = HostState::Running;
            table.lock().unwrap()[i] = (hosts[i].addr.clone(), HostState::Running);
            continue;
        }
        let i = rng.below(3);
        if rng.below(3) < 2 {
            table.lock().unwrap()[i].1 = HostState::Stopped;
            unsafe_kill(hosts[i].child.id() as i32, libc::SIGSTOP);
            state[i] = HostState::Stopped;
            stops += 1;
        } else {
            table.lock().unwrap()[i].1 = HostState::Stopped;
            hosts[i].kill9();
            hosts[i] = start(&homes[i], &args, names[i]);
            table.lock().unwrap()[i] = (hosts[i].addr.clone(), HostState::Running);
            kills += 1;
        }
    }
    for (i, s) in state.iter().enumerate() {
        if *s == HostState::Stopped {
            unsafe_kill(hosts[i].child.id() as i32, libc::SIGCONT);
            table.lock().unwrap()[i].1 = HostState::Running;
            conts += 1;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let ledgers: Vec<Ledger> = workers.into_iter().map(|w| w.join().unwrap()).collect();

    // Every acknowledged counter is on its session's chain: the state a
    // fresh acquire restores holds it (or the one write after it that was
    // tried and not acknowledged).
    let mut lost = 0;
    for (id, l) in sessions.iter().zip(&ledgers) {
        let r = hosts[0].req(
            "POST",
            &format!("/v1/sessions/{id}/acquire"),
            Some(&key),
            Some(&json!({"wait_seconds": 30})),
        );
        if r.status != 200 {
            dump_stacks(&hosts);
        }
        assert_eq!(
            r.status,
            200,
            "final acquire of {id}: {}\n{}",
            r.body,
            hosts
                .iter()
                .map(|h| format!("--- {}\n{}", h.addr, h.log()))
                .collect::<String>()
        );
        let lease = r.json();
        let r = hosts[0].req(
            "GET",
            &format!("/v1/sessions/{id}/context"),
            Some(&key),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let got = r.json()["n"].as_u64().unwrap_or(0);
        let want = l.acked.last().map_or(0, |a| a.0);
        if got < want || got > l.last_tried {
            lost += 1;
            eprintln!(
                "session {id}: counter {got}, last acknowledged {want}, last tried {}",
                l.last_tried
            );
        }
        for w in l.acked.windows(2) {
            assert!(
                w[1].1 >= w[0].1,
                "session {id}: epoch fell from {} to {} between acknowledged commits {} and {}",
                w[0].1,
                w[1].1,
                w[0].0,
                w[1].0
            );
        }
        release(&hosts[0], &key, id, &lease);
    }
    let acked: usize = ledgers.iter().map(|l| l.acked.len()).sum();
    let failed: u64 = ledgers.iter().map(|l| l.failures).sum();
    let max_epoch = ledgers
        .iter()
        .filter_map(|l| l.acked.last().map(|a| a.1))
        .max()
        .unwrap_or(0);
    let fenced: usize = hosts
        .iter()
        .map(|h| h.log().matches("commit fenced").count())
        .sum();
    eprintln!(
        "figure: chaos: {events} events in {seconds} s ({stops} STOP, {conts} CONT, {kills} kill -9 + restart): {acked} acknowledged commits, {failed} refused or failed writes, {fenced} fenced commits logged by the live hosts, highest epoch {max_epoch}, acknowledged commits lost: {lost}"
    );
    assert_eq!(lost, 0, "acknowledged commits were lost");
    assert!(acked >= 3, "the workers made no progress: {ledgers:?}");

    // Cost: bucket calls (one S3 request each; list pages) from the hosts'
    // sesshost_bucket_calls_total, over three quiet windows of the same
    // length: idle hosts; one session held live (leased, autosaving, no
    // change); one session used in a loop (acquire, PUT context, release).
    let window = Duration::from_secs(env_num("SESSHOST_COST_SECONDS", 30));
    let calls = |hosts: &[Service]| -> u64 {
        hosts
            .iter()
            .map(|h| {
                request(&h.addr, "GET", "/metrics", None, None)
                    .body
                    .lines()
                    .filter(|l| l.starts_with("sesshost_bucket_calls_total{"))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                    .sum::<u64>()
            })
            .sum()
    };
    let per_hour = |n: u64| n as f64 * 3600.0 / window.as_secs_f64();
    let c0 = calls(&hosts);
    std::thread::sleep(window);
    let idle = calls(&hosts) - c0;
    let lease = acquire(&hosts[1], &key, &sessions[0], 30);
    let c0 = calls(&hosts);
    std::thread::sleep(window);
    let live = (calls(&hosts) - c0).saturating_sub(idle);
    release(&hosts[1], &key, &sessions[0], &lease);
    let c0 = calls(&hosts);
    let t0 = Instant::now();
    let mut cycles = 0u64;
    while t0.elapsed() < window {
        let h = &hosts[cycles as usize % 3];
        let lease = acquire(h, &key, &sessions[1], 30);
        let r = h.req(
            "PUT",
            &format!("/v1/sessions/{}/context", sessions[1]),
            Some(&key),
            Some(&json!({"n": 1_000_000 + cycles})),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        release(h, &key, &sessions[1], &lease);
        cycles += 1;
    }
    let used = (calls(&hosts) - c0).saturating_sub(idle);
    eprintln!(
        "figure: bucket calls (S3 requests): idle cluster {:.0}/host-hour (T = {T} s; renewals, listings, collection); a session held live and unchanged {:.0}/session-hour; a session used in a loop {:.0}/session-hour ({cycles} acquire+write+release cycles in {} s through 3 hosts, {:.0} calls per cycle)",
        per_hour(idle) / 3.0,
        per_hour(live),
        per_hour(used),
        window.as_secs(),
        used as f64 / cycles.max(1) as f64
    );

    for h in hosts.iter_mut() {
        assert_eq!(
            h.terminate(Duration::from_secs(60)).code(),
            Some(0),
            "{}",
            h.log()
        );
    }
    for home in &homes {
        wait_until("every Chromium gone", Duration::from_secs(15), || {
            chromium_pids(home).is_empty()
        });
    }
    drop(rgw);
}

/// On a failure: every host's threads' stacks (gdb, if installed) into
/// `$TMPDIR/sesshost-chaos-stacks-PID.txt`, for a hang.
fn dump_stacks(hosts: &[Service]) {
    for h in hosts {
        let pid = h.child.id();
        let out = Command::new("gdb")
            .args([
                "-p",
                &pid.to_string(),
                "-batch",
                "-ex",
                "thread apply all bt",
            ])
            .output();
        if let Ok(o) = out {
            let f = std::env::temp_dir().join(format!("sesshost-chaos-stacks-{pid}.txt"));
            let _ = std::fs::write(&f, &o.stdout);
            eprintln!("stacks of {} (pid {pid}): {}", h.addr, f.display());
        }
    }
}
