//! Local sessions through the real binary, real Chromium and the fixture app:
//! log in on "machine" A through the CDP URL, export a signed bundle, import
//! it on "machine" B (another --home), open it there and find the user
//! logged in on the first load; kill -9 mid-session and recover.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use chromiumoxide::Page;
use chromiumoxide::browser::Browser;
use chromiumoxide::cdp::browser_protocol::target::CreateTargetParams;
use futures::StreamExt;
use sesshost_fixture::Fixture;

mod common;
use common::{Dir, contains};

/// One Chromium-driving test at a time: they are heavy on 2 cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn cmd(d: &Dir, home: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_host"));
    c.arg("--home")
        .arg(d.p(home))
        .args(args)
        .current_dir(&d.0)
        .env("TMPDIR", d.p("tmp"))
        .stdin(Stdio::null());
    std::fs::create_dir_all(d.p("tmp")).unwrap();
    c
}

fn run(d: &Dir, home: &str, args: &[&str]) -> Output {
    cmd(d, home, args).output().unwrap()
}

fn ok(o: Output) -> String {
    let t = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "status {:?}: {t}", o.status);
    t
}

/// Start `host session open` and wait for its CDP URL file.
fn open_session(d: &Dir, home: &str, name: &str, extra: &[&str]) -> (Child, String) {
    let cdp = d.p(&format!("{home}-{name}.cdp"));
    let _ = std::fs::remove_file(&cdp);
    let mut args = vec!["session", "open", name, "--cdp-file", cdp.to_str().unwrap()];
    args.extend(extra);
    let mut child = cmd(d, home, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(&cdp)
            && s.ends_with('\n')
        {
            return (child, s.trim().to_string());
        }
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("host session open exited with {st}: {err}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no CDP URL after 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(child: &Child, sig: i32) {
    let r = unsafe_kill(child.id() as i32, sig);
    assert_eq!(r, 0, "kill failed");
}

#[allow(unsafe_code)]
fn unsafe_kill(pid: i32, sig: i32) -> i32 {
    // SAFETY: kill(2) has no memory effects; pid is our own child.
    unsafe { libc::kill(pid, sig) }
}

fn wait_exit(mut child: Child) -> (i32, String) {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (st.code().unwrap_or(-1), err);
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "host did not exit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn connect(ws: &str) -> (Browser, tokio::task::JoinHandle<()>) {
    let (browser, mut handler) = Browser::connect(ws).await.expect("connect over CDP");
    let h = tokio::spawn(async move { while handler.next().await.is_some() {} });
    (browser, h)
}

async fn wait_for(page: &Page, cond: &str) {
    for _ in 0..400 {
        if let Ok(r) = page.evaluate(cond).await
            && r.into_value::<bool>().unwrap_or(false)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition never became true: {cond}");
}

#[allow(dead_code)]
async fn eval(page: &Page, js: &str) -> serde_json::Value {
    page.evaluate(js)
        .await
        .expect("evaluate")
        .into_value()
        .expect("value")
}

/// Log in on site A, advance the wizard, seed IndexedDB on site B, get a
/// partitioned cookie: all through a plain CDP client, as a user's
/// automation would.
async fn do_login(browser: &Browser, fx: &Fixture) {
    let page = browser
        .new_page(CreateTargetParams::new(fx.a("/login")))
        .await
        .unwrap();
    page.evaluate(
        "document.getElementById('user').value = 'alice'; document.forms[0].submit(); true",
    )
    .await
    .unwrap();
    wait_for(
        &page,
        "document.getElementById('status')?.textContent === 'logged in as alice'",
    )
    .await;
    let wizard = browser
        .new_page(CreateTargetParams::new(fx.a("/wizard")))
        .await
        .unwrap();
    wizard.evaluate("advance(); advance(); true").await.unwrap();
    wait_for(&wizard, "document.title === 'Wizard step 3'").await;
    let idb = browser
        .new_page(CreateTargetParams::new(fx.b("/idb")))
        .await
        .unwrap();
    wait_for(&idb, "document.title === 'idb ready'").await;
    idb.close().await.unwrap();
    let chips = browser
        .new_page(CreateTargetParams::new(fx.a("/chips")))
        .await
        .unwrap();
    wait_for(&chips, "document.title === 'chips loaded'").await;
    chips.close().await.unwrap();
}

/// The restored tab whose URL satisfies `pick` (polls: a fresh CDP client
/// learns about existing targets asynchronously, from the `targetCreated`
/// events that `Target.setDiscoverTargets` replays on connect).
///
/// Never call `Browser::fetch_targets` here: in chromiumoxide 0.9 it replaces
/// every known target with a fresh, unattached one and re-attaches without
/// `flatten`, so a `pages()` right after it races the attach and, on a busy
/// machine, sees no page at all (CI failure of stop 5).
async fn find_page(browser: &mut Browser, pick: impl Fn(&str) -> bool) -> Page {
    let mut seen = Vec::new();
    for _ in 0..400 {
        seen.clear();
        for p in browser.pages().await.unwrap() {
            let url = p.url().await.ok().flatten().unwrap_or_default();
            if pick(&url) {
                return p;
            }
            seen.push(url);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no restored tab matched; tabs: {seen:?}");
}

/// Poll a JS condition in the restored tab whose URL satisfies `pick`,
/// re-finding the tab each time (a page attached while it was still loading
/// may keep a stale execution context in a fresh CDP client).
async fn tab_shows(browser: &mut Browser, pick: impl Fn(&str) -> bool + Copy, cond: &str) {
    for _ in 0..200 {
        let p = find_page(browser, pick).await;
        if let Ok(Ok(r)) = tokio::time::timeout(Duration::from_secs(2), p.evaluate(cond)).await
            && r.into_value::<bool>().unwrap_or(false)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the tab never satisfied: {cond}");
}

fn unseal_json(d: &Dir, bundle: &str, out: &str) -> serde_json::Value {
    ok(run(
        d,
        "x",
        &[
            "unseal",
            bundle,
            "-o",
            out,
            "--passphrase-file",
            "pw",
            "--force",
        ],
    ));
    serde_json::from_slice(&std::fs::read(d.p(out)).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carry_a_logged_in_session_to_another_machine() {
    let _g = SERIAL.lock().await;
    let d = Dir::new("carry");
    let fx = Fixture::start();
    std::fs::write(d.p("pw"), "a long passphrase\n").unwrap();
    ok(run(&d, "A", &["keygen", "-o", "signer"]));
    ok(run(
        &d,
        "A",
        &[
            "session",
            "create",
            "app",
            "--locale",
            "en-GB",
            "--timezone",
            "Europe/Paris",
            "--ttl",
            "7d",
        ],
    ));

    // Machine A: open, log in through the CDP URL, disconnect, stop.
    let (child, ws) = open_session(&d, "A", "app", &[]);
    assert!(
        ws.starts_with("ws://127.0.0.1:") && ws.contains("/devtools/browser/"),
        "{ws}"
    );
    // A second open of the same session fails clearly.
    let o = run(&d, "A", &["session", "open", "app"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already open"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (browser, h) = connect(&ws).await;
    do_login(&browser, &fx).await;
    drop(browser);
    h.abort();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut child = child;
    assert!(
        child.try_wait().unwrap().is_none(),
        "a CDP client disconnecting ended the session"
    );
    signal(&child, libc::SIGINT);
    let (code, err) = wait_exit(child);
    assert_eq!(code, 0, "{err}");

    // Export signed + encrypted; no secret in the bytes.
    ok(run(
        &d,
        "A",
        &[
            "export",
            "app",
            "-o",
            "app.sessbundle",
            "--sign",
            "signer",
            "--passphrase-file",
            "pw",
            "--argon2-memory",
            "16",
            "--argon2-time",
            "1",
        ],
    ));
    let bytes = std::fs::read(d.p("app.sessbundle")).unwrap();
    let logins = fx.logins();
    assert_eq!(logins.len(), 1, "{logins:?}");
    for (sid, login) in &logins {
        assert!(!contains(&bytes, sid), "sid cookie in plaintext");
        assert!(!contains(&bytes, &login.token), "auth token in plaintext");
    }
    assert!(!contains(&bytes, "alice"));

    // Machine B: import with a required signature, open, logged in at once.
    let o = run(
        &d,
        "B",
        &[
            "import",
            "app.sessbundle",
            "--require-signature",
            "signer.pub",
            "--passphrase-file",
            "pw",
        ],
    );
    ok(o);
    let o = run(
        &d,
        "B",
        &[
            "import",
            "app.sessbundle",
            "--require-signature",
            "signer.pub",
            "--passphrase-file",
            "pw",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "import must not overwrite");
    fx.reset_hits();
    let (child, ws) = open_session(&d, "B", "app", &[]);
    let (mut browser, h) = connect(&ws).await;
    tab_shows(
        &mut browser,
        |u| u.ends_with("/app"),
        "document.getElementById('status')?.textContent === 'logged in as alice'",
    )
    .await;
    assert_eq!(
        fx.hits("GET /login anon") + fx.hits("GET /login?reason=token auth"),
        0,
        "the app sent the user to log in"
    );
    assert_eq!(
        fx.hits("GET /app anon"),
        0,
        "the first /app load was anonymous"
    );
    tab_shows(
        &mut browser,
        |u| u.contains("/wizard"),
        "sessionStorage.getItem('wizardStep') === '3' && document.title === 'Wizard step 3'",
    )
    .await;
    // Every value equal: the state B saves equals the state A exported.
    drop(browser);
    h.abort();
    signal(&child, libc::SIGTERM);
    let (code, err) = wait_exit(child);
    assert_eq!(code, 0, "{err}");
    ok(run(
        &d,
        "B",
        &[
            "export",
            "app",
            "-o",
            "b.sessbundle",
            "--passphrase-file",
            "pw",
            "--argon2-memory",
            "16",
            "--argon2-time",
            "1",
        ],
    ));
    let a = unseal_json(&d, "app.sessbundle", "a.json");
    let b = unseal_json(&d, "b.sessbundle", "b.json");
    // Each list as sorted JSON texts (order carries no meaning).
    let sorted = |v: &serde_json::Value, list: &str, field: Option<&str>| -> Vec<String> {
        let mut out: Vec<String> = v[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| field.map_or(x, |f| &x[f]).to_string())
            .collect();
        out.sort();
        out
    };
    assert_eq!(sorted(&a, "cookies", None), sorted(&b, "cookies", None));
    let cookies = a["cookies"].as_array().unwrap();
    assert!(
        cookies.iter().any(|c| c["partitionKey"].is_object()),
        "partitioned cookie captured"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c["name"] == "sid" && c.get("expires").is_none()),
        "session cookie without expiry"
    );
    assert_eq!(sorted(&a, "origins", None), sorted(&b, "origins", None));
    assert!(
        a["origins"].to_string().contains("fixture-db"),
        "IndexedDB captured"
    );
    assert_eq!(
        sorted(&a, "tabs", Some("sessionStorage")),
        sorted(&b, "tabs", Some("sessionStorage"))
    );
    assert_eq!(a["meta"]["locale"], "en-GB");
    assert_eq!(b["meta"]["timezone"], "Europe/Paris");
}

fn chromium_alive(tmp: &Path) -> bool {
    let out = Command::new("pgrep")
        .arg("-f")
        .arg(tmp.to_str().unwrap())
        .output()
        .unwrap();
    !out.stdout.is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_at_most_one_autosave_and_leaves_no_chromium() {
    let _g = SERIAL.lock().await;
    let d = Dir::new("crash");
    let fx = Fixture::start();
    ok(run(&d, "A", &["session", "create", "app"]));
    let (child, ws) = open_session(&d, "A", "app", &["--autosave", "1s"]);
    let (browser, h) = connect(&ws).await;
    do_login(&browser, &fx).await;
    // Wait (bounded) until an autosave holds the login cookies.
    let start = Instant::now();
    loop {
        let o = run(&d, "A", &["session", "show", "app", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        let sum = v["snapshots"]
            .as_array()
            .and_then(|s| s.last())
            .map(|s| s["summary"].clone())
            .unwrap_or_default();
        let n = |k: &str| sum[k].as_u64().unwrap_or(0);
        // Login cookies + partitioned cookie, the auth token, IndexedDB, two tabs.
        if n("cookies") >= 3
            && n("localStorageItems") >= 1
            && n("idbRecords") >= 1
            && n("tabs") >= 2
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no autosave with the login: {v}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        chromium_alive(&d.p("A").join("run")),
        "Chromium should be running with its profile under HOME/run"
    );
    let profiles = || std::fs::read_dir(d.p("A").join("run")).map_or(0, |r| r.count());
    assert_eq!(profiles(), 1, "one live profile under HOME/run");
    signal(&child, libc::SIGKILL);
    let _ = wait_exit(child);
    drop(browser);
    h.abort();
    let start = Instant::now();
    while chromium_alive(&d.p("A").join("run")) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "Chromium outlived a kill -9 of the host"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The killed host could not delete its logged-in profile; the next
    // start of any `host` command on this home sweeps it.
    assert_eq!(profiles(), 1, "the killed host's profile is still there");
    ok(run(&d, "A", &["session", "list"]));
    assert_eq!(
        profiles(),
        0,
        "the next start swept the dead host's profile"
    );
    // The lock died with the process; the session opens with the login.
    fx.reset_hits();
    let (child, ws) = open_session(&d, "A", "app", &[]);
    let (mut browser, h) = connect(&ws).await;
    tab_shows(
        &mut browser,
        |u| u.ends_with("/app"),
        "document.getElementById('status')?.textContent === 'logged in as alice'",
    )
    .await;
    assert_eq!(fx.hits("GET /app anon"), 0);
    assert!(fx.hits("GET /app auth") >= 1);
    drop(browser);
    h.abort();
    signal(&child, libc::SIGINT);
    assert_eq!(wait_exit(child).0, 0);
}

#[test]
fn unknown_and_invalid_names_are_clear_errors() {
    let d = Dir::new("names");
    for sub in [
        vec!["session", "show", "nope"],
        vec!["session", "open", "nope"],
        vec!["export", "nope", "-o", "x"],
        vec!["session", "delete", "nope"],
    ] {
        let o = run(&d, "A", &sub);
        assert_eq!(o.status.code(), Some(1), "{sub:?}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains("nope") && e.contains("host session list"),
            "{sub:?}: {e}"
        );
    }
    let o = run(&d, "A", &["session", "create", "../evil"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!d.p("evil").exists());
}

/// Playwright's `connectOverCDP` finds the restored session in its first
/// context: cookies, the tab, its localStorage and sessionStorage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playwright_connect_over_cdp_sees_the_restored_session() {
    let _g = SERIAL.lock().await;
    let pw_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundle/tests/playwright");
    if !pw_dir.join("node_modules/playwright-core").is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "playwright-core missing: run `bash .ci/setup`"
        );
        eprintln!("skipped: run `bash .ci/setup` to install playwright-core");
        return;
    }
    let d = Dir::new("playwright");
    let fx = Fixture::start();
    let origin = fx.a("");
    let origin = origin.trim_end_matches('/');
    let state = serde_json::json!({
        "meta": {"name": "pw", "createdAt": 1, "updatedAt": 1},
        "cookies": [{"name": "pwcookie", "value": "PW-COOKIE", "domain": "127.0.0.1", "path": "/", "httpOnly": true}],
        "origins": [{"origin": origin, "localStorage": [{"key": "pwls", "value": "PW-LS"}]}],
        "tabs": [{"url": fx.a("/wizard"), "title": "Wizard",
                  "sessionStorage": [{"origin": origin, "items": [{"key": "wizardStep", "value": "2"}]}]}]
    });
    std::fs::write(d.p("state.json"), state.to_string()).unwrap();
    std::fs::write(d.p("pw"), "p").unwrap();
    ok(run(
        &d,
        "A",
        &[
            "seal",
            "state.json",
            "-o",
            "s.sessbundle",
            "--passphrase-file",
            "pw",
            "--argon2-memory",
            "8",
            "--argon2-time",
            "1",
        ],
    ));
    ok(run(
        &d,
        "A",
        &["import", "s.sessbundle", "--passphrase-file", "pw"],
    ));
    let (child, ws) = open_session(&d, "A", "pw", &[]);
    let out = Command::new("node")
        .arg(pw_dir.join("connect.mjs"))
        .arg(&ws)
        .current_dir(&pw_dir)
        .output()
        .expect("node");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(v["contexts"], 1, "{v}");
    assert!(
        v["cookies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "pwcookie" && c["value"] == "PW-COOKIE" && c["httpOnly"] == true),
        "{v}"
    );
    let page = v["pages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["url"].as_str().unwrap_or("").contains("/wizard"))
        .unwrap_or_else(|| panic!("no wizard page: {v}"));
    assert_eq!(page["localStorage"]["pwls"], "PW-LS", "{v}");
    assert_eq!(page["sessionStorage"]["wizardStep"], "2", "{v}");
    // Playwright disconnecting does not end the session.
    let mut child = child;
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the session ended when Playwright disconnected"
    );
    signal(&child, libc::SIGINT);
    assert_eq!(wait_exit(child).0, 0);
}
