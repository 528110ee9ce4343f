//! Driving `host run` for the service tests: start the real binary on a
//! random port, talk HTTP/1.1 to it over a plain TcpStream (no client
//! library between the test and the wire), run the Node CDP clients.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn host() -> Command {
    Command::new(env!("CARGO_BIN_EXE_host"))
}

pub struct Service {
    pub child: Child,
    pub addr: String,
    pub home: PathBuf,
    pub key: Option<String>,
    pub stderr: Arc<Mutex<String>>,
}

impl Service {
    /// Start `host run` on `home` with `config` (TOML) and wait until it
    /// serves.
    pub fn start(home: &Path, config: &str) -> Service {
        Service::start_with(home, config, &[])
    }

    /// [`Service::start`] with more `host run` arguments.
    pub fn start_with(home: &Path, config: &str, args: &[&str]) -> Service {
        let cfg = home.with_extension("toml");
        std::fs::write(&cfg, config).unwrap();
        let mut child = host()
            .args(["run", "--listen", "127.0.0.1:0", "--config"])
            .arg(&cfg)
            .args(args)
            .env("SESSHOST_HOME", home)
            .env(
                "RUST_LOG",
                std::env::var("SESSHOST_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let l2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if let Some(a) = line.split("serving on http://").nth(1) {
                    let _ = tx.send(a.split_whitespace().next().unwrap_or("").to_string());
                }
                let mut g = l2.lock().unwrap();
                g.push_str(&line);
                g.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("host run did not start:\n{}", log.lock().unwrap()));
        let key = log
            .lock()
            .unwrap()
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("shk_"))
            .map(str::to_string);
        Service {
            child,
            addr,
            home: home.to_path_buf(),
            key,
            stderr: log,
        }
    }

    pub fn key(&self) -> &str {
        self.key
            .as_deref()
            .expect("the first start prints the default key")
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn req(&self, method: &str, path: &str, key: Option<&str>, body: Option<&Value>) -> Resp {
        request(
            &self.addr,
            method,
            path,
            key,
            body.map(|b| b.to_string()).as_deref(),
        )
    }

    /// A request with the default tenant's key.
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.req(method, path, Some(self.key()), body.as_ref())
    }

    /// SIGTERM and wait (up to `within`) for the exit status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        unsafe_kill(self.child.id() as i32, libc::SIGTERM);
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                t0.elapsed() < within,
                "host run did not stop within {within:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(unsafe_code)]
pub fn unsafe_kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) with a pid we spawned (or found); no memory involved.
    unsafe {
        libc::kill(pid, sig);
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The error code of an error envelope.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

/// One HTTP/1.1 request with `Connection: close`. A host that cannot be
/// reached (refused, reset) gives status 0, as one that does not answer.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> Resp {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return parse_response(&[]);
    };
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(k) = key {
        head.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    if s.write_all(head.as_bytes()).is_err() || s.write_all(body.as_bytes()).is_err() {
        return parse_response(&[]);
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

/// A request with extra headers and a binary body; returns the status and
/// the raw body (Content-Length bodies only).
pub fn request_bytes(
    addr: &str,
    method: &str,
    path: &str,
    key: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |i| i + 4);
    let status = String::from_utf8_lossy(&raw[..split.min(raw.len())])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, raw[split.min(raw.len())..].to_vec())
}

fn parse_response(raw: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Run the Node CDP client (tests/e2e/node/client.mjs).
pub fn client(
    lib: &str,
    cdp: &str,
    op: &str,
    url: &str,
    arg: Option<&str>,
) -> Result<Value, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/node");
    let mut c = Command::new("node");
    c.current_dir(&dir)
        .arg("client.mjs")
        .args([lib, cdp, op, url]);
    if let Some(a) = arg {
        c.arg(a);
    }
    let out = c.output().map_err(|e| format!("cannot run node: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "client {lib} {op} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim().lines().last().unwrap_or(""))
        .map_err(|e| format!("{e}: {line}"))
}

/// `host tenant add NAME` then `host key create --tenant NAME` on `home`
/// (works while `host run` runs); the new key.
pub fn tenant_key(home: &Path, name: &str) -> String {
    for args in [
        vec!["tenant", "add", name],
        vec!["key", "create", "--tenant", name],
    ] {
        let out = host()
            .args(&args)
            .env("SESSHOST_HOME", home)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "host {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if args[0] == "key" {
            let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
            assert!(key.starts_with("shk_"), "{key}");
            return key;
        }
    }
    unreachable!()
}

/// Pids of Chromium processes whose profile is under `home`.
pub fn chromium_pids(home: &Path) -> Vec<i32> {
    let needle = home.join("run").to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'));
        if !zombie
            && cmd.contains("--user-data-dir=")
            && cmd.contains(&needle)
            && !cmd.contains("--type=")
        {
            pids.push(pid);
        }
    }
    pids
}

/// Wait until `f` holds (polling), or panic with `what`.
pub fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A small test configuration: quick intervals, no warm pool unless asked.
pub fn config(extra: &str) -> String {
    let pool = if extra.contains("[pool]") {
        ""
    } else {
        "[pool]\nsize = 0\n"
    };
    format!("{pool}[lifecycle]\nautosave_seconds = 2\ncleanup_interval_seconds = 1\n{extra}")
}
