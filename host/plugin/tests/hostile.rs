//! Hostile plugins on real wasmtime: each misbehaviour is contained with a
//! clear error, and the same runtime and plugin serve the next call.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use sesshost_plugin::{DirGrant, Error, Grants, Limits, SanitizeContext, Sanitizer};

fn ctx(pairs: &[(&str, &str)]) -> SanitizeContext {
    SanitizeContext {
        purpose: "export".into(),
        config: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// Generous deadline: debug builds on a loaded machine are slow, and only
/// the loop test is about the deadline (it sets its own).
fn limits() -> Limits {
    Limits {
        deadline: Duration::from_secs(10),
        memory_bytes: 64 << 20,
        ..Limits::default()
    }
}

fn hostile(grants: Grants) -> Sanitizer {
    runtime()
        .load_sanitizer(
            &wasm("hostile"),
            &Grants {
                limits: Some(limits()),
                ..grants
            },
        )
        .unwrap()
}

/// The plugin still serves a well-behaved call.
async fn still_serves(p: &Sanitizer) {
    let (out, report) = p
        .sanitize(&sample_state(), &ctx(&[]))
        .await
        .expect("next call after a failure");
    assert_eq!(out, sample_state());
    assert_eq!(report.summary, "hostile: unchanged");
}

#[tokio::test]
async fn infinite_loop_is_stopped_at_the_deadline() {
    let p = runtime()
        .load_sanitizer(
            &wasm("hostile"),
            &Grants {
                limits: Some(Limits {
                    deadline: Duration::from_millis(500),
                    ..limits()
                }),
                ..Grants::default()
            },
        )
        .unwrap();
    let e = p
        .sanitize(&sample_state(), &ctx(&[("do", "loop")]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Timeout {
                deadline_ms: 500,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains("hostile.wasm did not finish sanitize within 500 ms"),
        "{e}"
    );
    still_serves(&p).await;
}

#[tokio::test]
async fn memory_bomb_hits_the_cap() {
    let p = hostile(Grants::default());
    let e = p
        .sanitize(&sample_state(), &ctx(&[("do", "membomb")]))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::OutOfMemory { cap_mib: 64, .. }), "{e:?}");
    assert!(e.to_string().contains("ran out of memory"), "{e}");
    still_serves(&p).await;
}

#[tokio::test]
async fn reading_etc_passwd_fails_without_and_with_a_granted_dir() {
    for grants in [
        Grants::default(),
        Grants::default().with_dir(DirGrant::parse(env!("CARGO_TARGET_TMPDIR")).unwrap()),
    ] {
        let p = hostile(grants);
        let e = p
            .sanitize(&sample_state(), &ctx(&[("do", "passwd")]))
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Error::Rejected { .. }), "{e:?}");
        assert!(
            msg.contains("cannot read /etc/passwd") && !msg.contains("root:"),
            "{msg}"
        );
        still_serves(&p).await;
    }
}

#[tokio::test]
async fn environment_is_empty_unless_passed() {
    let p = hostile(Grants::default());
    let (_, r) = p
        .sanitize(&sample_state(), &ctx(&[("do", "env"), ("var", "PATH")]))
        .await
        .unwrap();
    assert_eq!(r.summary, "");
    let p = hostile(Grants {
        env: vec![("GREETING".into(), "hi".into())],
        ..Grants::default()
    });
    let (_, r) = p
        .sanitize(&sample_state(), &ctx(&[("do", "env"), ("var", "GREETING")]))
        .await
        .unwrap();
    assert_eq!(r.summary, "hi");
}

/// An HTTP server on loopback answering 204 to everything; returns its port
/// and the number of connections it has served (the thread lives until the
/// test process exits).
fn http_server() -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n");
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, served)
}

#[tokio::test]
async fn connecting_to_a_host_not_allowed_is_refused_and_named() {
    let (port, server) = http_server();
    let p = hostile(Grants::default().with_hosts(["127.0.0.1:1"]).unwrap());
    let url = format!("http://127.0.0.1:{port}/steal");
    let e = p
        .sanitize(&sample_state(), &ctx(&[("do", "connect"), ("url", &url)]))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::HostDenied { .. }), "{e:?}");
    assert!(
        msg.contains(&format!("tried to connect to 127.0.0.1:{port}"))
            && msg.contains(&format!("--allow-host 127.0.0.1:{port}")),
        "{msg}"
    );
    still_serves(&p).await;
    assert_eq!(
        server.load(Ordering::SeqCst),
        0,
        "a denied request reached the server"
    );
    // Now allowed: the request goes through to the real server.
    let p = hostile(
        Grants::default()
            .with_hosts([format!("127.0.0.1:{port}").as_str()])
            .unwrap(),
    );
    let (_, r) = p
        .sanitize(&sample_state(), &ctx(&[("do", "connect"), ("url", &url)]))
        .await
        .unwrap();
    assert_eq!(r.summary, "status 204");
    assert_eq!(
        server.load(Ordering::SeqCst),
        1,
        "the allowed request never reached the server"
    );
}

#[tokio::test]
async fn panic_is_a_trap_that_points_at_the_debug_log_not_the_panic_text() {
    let p = hostile(Grants::default());
    let e = p
        .sanitize(&sample_state(), &ctx(&[("do", "panic")]))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Trap { .. }), "{e:?}");
    assert!(
        msg.contains("hostile.wasm crashed in sanitize")
            && msg.contains("logged at debug level only")
            && msg.contains("RUST_LOG=sesshost_plugin::guest=debug"),
        "{msg}"
    );
    // What the plugin printed (here its panic message) is not in the error.
    assert!(!msg.contains("panicked on purpose"), "{msg}");
    still_serves(&p).await;
}

#[tokio::test]
async fn malformed_state_is_refused() {
    let p = hostile(Grants::default());
    let e = p
        .sanitize(&sample_state(), &ctx(&[("do", "malformed")]))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Malformed { .. }), "{e:?}");
    assert!(
        msg.contains("https://evil.example db/s record 0: value-json"),
        "{msg}"
    );
    still_serves(&p).await;
}

/// Writes `text` (WAT) as a binary component or module: the runtime
/// loads binary only.
fn wat_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wat");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, wat::parse_str(text).unwrap()).unwrap();
    p
}

#[test]
fn a_text_file_is_not_a_component_and_its_content_is_never_shown() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let secret = "correct horse battery staple";
    let mut checked = 0;
    for (name, content) in [
        ("pw.txt", format!("{secret}\n")),
        // WAT text: a production build must not parse it either.
        ("plugin.wat", format!("(component) ;; {secret}")),
        ("short.wasm", "\0as".to_string()),
        ("empty.wasm", String::new()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &content).unwrap();
        let errors = [
            rt.inspect(&path).err().unwrap(),
            rt.load_sanitizer(&path, &Grants::default()).err().unwrap(),
            rt.load_storage(&path, &Grants::default()).err().unwrap(),
        ];
        for e in errors {
            assert!(
                matches!(&e, Error::NotWasm { path: p } if *p == path),
                "{e:?}"
            );
            let (msg, dbg) = (e.to_string(), format!("{e:?}"));
            assert!(
                msg.contains(&path.display().to_string())
                    && msg.contains("is not a WebAssembly component")
                    && msg.contains("bash plugins/build.sh"),
                "{msg}"
            );
            assert!(
                !msg.contains("horse") && !dbg.contains("horse"),
                "{msg} / {dbg}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
    // Reload refuses it too and keeps the good version.
    let path = dir.path().join("hostile.wasm");
    std::fs::copy(wasm("hostile"), &path).unwrap();
    let p = rt.load_sanitizer(&path, &Grants::default()).unwrap();
    let good = p.blake3();
    std::fs::write(&path, secret).unwrap();
    let e = p.reload().unwrap_err();
    assert!(matches!(e, Error::NotWasm { .. }), "{e:?}");
    assert!(!e.to_string().contains("horse"), "{e}");
    assert_eq!(p.blake3(), good);
}

const NOP: &str = r#"(core module $m (func (export "f")))
  (core instance $i (instantiate $m))
  (func $f (canon lift (core func $i "f")))
  (instance $x (export "nop" (func $f)))"#;

#[tokio::test]
async fn wrong_world_or_version_is_refused_naming_both() {
    let rt = runtime();
    let e = rt
        .load_storage(&wasm("redact"), &Grants::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("redact.wasm implements world sanitizer@0.1.0, but world storage-backend@0.2.0 was expected"), "{e}");

    let v2 = wat_file(
        "v2.wasm",
        &format!("(component {NOP} (export \"sesshost:plugin/sanitize@0.2.0\" (instance $x)))"),
    );
    let e = rt.load_sanitizer(&v2, &Grants::default()).err().unwrap();
    assert!(matches!(e, Error::WorldMismatch { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("implements world sanitizer@0.2.0, but world sanitizer@0.1.0 was expected"),
        "{e}"
    );

    let none = wat_file(
        "none.wasm",
        &format!("(component {NOP} (export \"other:thing/api\" (instance $x)))"),
    );
    let e = rt
        .load_sanitizer(&none, &Grants::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no sesshost:plugin world"), "{e}");

    let core = wat_file("core.wasm", "(module)");
    let e = rt.load_sanitizer(&core, &Grants::default()).err().unwrap();
    assert!(matches!(e, Error::Invalid { .. }), "{e:?}");

    let bad_import = wat_file(
        "import.wasm",
        &format!(
            "(component (import \"evil:host/backdoor\" (instance (export \"run\" (func)))) {NOP} (export \"sesshost:plugin/sanitize@0.1.0\" (instance $x)))"
        ),
    );
    let e = rt
        .load_sanitizer(&bad_import, &Grants::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("evil:host/backdoor"), "{e}");

    // Exports the right name with the wrong shape.
    let shape = wat_file(
        "shape.wasm",
        &format!("(component {NOP} (export \"sesshost:plugin/sanitize@0.1.0\" (instance $x)))"),
    );
    let e = rt.load_sanitizer(&shape, &Grants::default()).err().unwrap();
    assert!(matches!(e, Error::Invalid { .. }), "{e:?}");

    // The runtime still loads and runs a good plugin.
    still_serves(
        &rt.load_sanitizer(&wasm("hostile"), &Grants::default())
            .unwrap(),
    )
    .await;
}

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every `tracing` event (debug and up, but wasmtime-wasi's) of the current thread
/// while `f` runs; returns the formatted log.
async fn capture_log<F: Future<Output = ()>>(f: F) -> String {
    let cap = Captured::default();
    let cap2 = cap.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || cap2.clone())
        // wasmtime-wasi logs every raw guest write at debug under its own
        // target (uncapped, unmarked): a host must keep that target at info.
        .with_env_filter("debug,wasmtime_wasi=info")
        .with_ansi(false)
        .finish();
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        f.await;
    }
    String::from_utf8(cap.0.lock().unwrap().clone()).unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn plugin_stdout_and_stderr_go_to_the_debug_log_tagged_with_its_name() {
    let log = capture_log(async {
        let p = hostile(Grants::default());
        let (_, r) = p
            .sanitize(&sample_state(), &ctx(&[("do", "print")]))
            .await
            .unwrap();
        assert_eq!(r.summary, "hostile: printed");
    })
    .await;
    let line = |needle: &str| log.lines().find(|l| l.contains(needle)).map(str::to_string);
    for stream in ["stdout", "stderr"] {
        let l = line(&format!("hello on {stream}"))
            .unwrap_or_else(|| panic!("{stream} line missing: {log}"));
        assert!(
            l.contains("DEBUG")
                && l.contains("plugin hostile.wasm said: hello on")
                && l.contains("plugin=hostile.wasm")
                && l.contains(&format!("stream={stream}")),
            "{l}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_plugin_printing_cookies_leaks_them_into_no_error_and_no_warning() {
    let mut err = None;
    let log = capture_log(async {
        let p = hostile(Grants::default());
        err = Some(
            p.sanitize(&sample_state(), &ctx(&[("do", "leak")]))
                .await
                .unwrap_err(),
        );
        still_serves(&p).await;
    })
    .await;
    let e = err.unwrap();
    assert!(matches!(e, Error::Trap { .. }), "{e:?}");
    let (msg, dbg) = (e.to_string(), format!("{e:?}"));
    // The cookie values of sample_state(), which the plugin printed.
    for secret in ["S3CRET-SID", "S3CRET-AUTH", "S3CRET-KEY"] {
        assert!(
            !msg.contains(secret) && !dbg.contains(secret),
            "{secret} in {msg} / {dbg}"
        );
        // In the log only at debug level, marked as the plugin's words.
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(secret)).collect();
        assert!(
            !lines.is_empty(),
            "{secret} was printed but not logged: {log}"
        );
        for l in lines {
            assert!(
                l.contains("DEBUG") && l.contains("plugin hostile.wasm said: "),
                "{l}"
            );
        }
    }
    assert!(msg.contains("printed"), "{msg}");
}

#[tokio::test(flavor = "current_thread")]
async fn plugin_output_is_capped_per_call() {
    let log = capture_log(async {
        let p = hostile(Grants::default());
        let (_, r) = p
            .sanitize(&sample_state(), &ctx(&[("do", "flood")]))
            .await
            .unwrap();
        assert_eq!(r.summary, "hostile: flooded");
    })
    .await;
    let kept: usize = log
        .lines()
        .filter_map(|l| l.split_once(" said: "))
        // fmt appends the fields after the message.
        .map(|(_, t)| t.rsplit_once(" plugin=").map_or(t, |(t, _)| t).len() + 1)
        .sum();
    // 2 MiB written, 4 KiB kept (lines may be cut at the cap).
    assert!(
        kept > 1000 && kept <= 4096,
        "{kept} bytes of plugin output logged"
    );
    assert!(
        log.contains("printed more than 4096 bytes in this call; the rest was dropped"),
        "{log}"
    );
    assert!(log.len() < 16 << 10, "log is {} bytes", log.len());
}
