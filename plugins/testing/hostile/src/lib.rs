//! `hostile`: a sanitiser that misbehaves on purpose, for the host's tests.
//! The config key `do` picks the misbehaviour:
//! `loop` (spins forever), `membomb` (allocates until memory runs out),
//! `passwd` (reads /etc/passwd and puts it in the report), `connect`
//! (HTTP GET to the URL in config key `url`), `panic`, `malformed` (returns
//! an IndexedDB record whose JSON is not a JsValue), `print` (writes a line
//! to stdout and to stderr), `leak` (prints every cookie's value on stdout
//! and stderr, then panics with the first one in the message), `flood`
//! (writes 1 MiB to stdout and to stderr, then behaves), `env` (reports the
//! variable named by `var`), anything else: returns the state unchanged.

wit_bindgen::generate!({ world: "sanitizer", path: "../../../wit" });

use exports::sesshost::plugin::sanitize::{Context, Guest, Report, Sanitized};
use sesshost::plugin::types::{IdbDatabase, IdbObjectStore, IdbRecord, OriginState, SessionState};

struct Hostile;

fn get<'a>(ctx: &'a Context, key: &str) -> Option<&'a str> {
    ctx.config
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn ok(state: SessionState, summary: String) -> Result<Sanitized, String> {
    Ok(Sanitized {
        state,
        report: Report {
            findings: Vec::new(),
            summary,
        },
    })
}

impl Guest for Hostile {
    fn sanitize(mut state: SessionState, ctx: Context) -> Result<Sanitized, String> {
        match get(&ctx, "do").unwrap_or("") {
            "spin" => {
                // Busy for `ms` milliseconds, then behave.
                let ms: u64 = get(&ctx, "ms").and_then(|v| v.parse().ok()).unwrap_or(100);
                let start = std::time::Instant::now();
                while start.elapsed() < std::time::Duration::from_millis(ms) {
                    std::hint::spin_loop();
                }
                ok(state, "hostile: spun".into())
            }
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "membomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut v = vec![0u8; 16 << 20];
                    v[0] = 1;
                    hoard.push(std::hint::black_box(v));
                }
            }
            "passwd" => match std::fs::read_to_string("/etc/passwd") {
                Ok(s) => ok(state, s),
                Err(e) => Err(format!("cannot read /etc/passwd: {e}")),
            },
            "env" => ok(
                state,
                std::env::var(get(&ctx, "var").unwrap_or("HOME")).unwrap_or_default(),
            ),
            "connect" => connect(get(&ctx, "url").unwrap_or("http://127.0.0.1:9/"))
                .map(|s| ok(state, s).unwrap()),
            "print" => {
                println!("hello on stdout");
                eprintln!("hello on stderr");
                ok(state, "hostile: printed".into())
            }
            "panic" => panic!("hostile plugin panicked on purpose"),
            "leak" => {
                for c in &state.cookies {
                    println!("cookie {}={}", c.name, c.value);
                    eprintln!("cookie {}={}", c.name, c.value);
                }
                let first = state.cookies.first().map(|c| c.value.as_str());
                panic!("leaking {}", first.unwrap_or("nothing"));
            }
            "flood" => {
                let line = "flood ".repeat(170);
                for _ in 0..1024 {
                    println!("{line}");
                    eprintln!("{line}");
                }
                ok(state, "hostile: flooded".into())
            }
            "malformed" => {
                state.origins.push(OriginState {
                    origin: "https://evil.example".into(),
                    local_storage: Vec::new(),
                    indexed_db: vec![IdbDatabase {
                        name: "db".into(),
                        version: 1,
                        object_stores: vec![IdbObjectStore {
                            name: "s".into(),
                            key_path: None,
                            auto_increment: false,
                            key_generator: None,
                            indexes: Vec::new(),
                            records: vec![IdbRecord {
                                key_json: "{\"t\":\"number\",\"v\":1}".into(),
                                value_json: "{not json".into(),
                            }],
                        }],
                    }],
                });
                ok(state, "malformed".into())
            }
            _ => ok(state, "hostile: unchanged".into()),
        }
    }
}

export!(Hostile);

/// A plain wasi:http GET; returns the status line or the error.
fn connect(url: &str) -> Result<String, String> {
    use wasi::http::outgoing_handler::handle;
    use wasi::http::types::{Fields, OutgoingRequest, Scheme};
    let (scheme, rest) = url.split_once("://").ok_or("url needs a scheme")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let req = OutgoingRequest::new(Fields::new());
    req.set_scheme(Some(&if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    }))
    .map_err(|_| "scheme")?;
    req.set_authority(Some(authority))
        .map_err(|_| "authority")?;
    req.set_path_with_query(Some(path)).map_err(|_| "path")?;
    let fut = handle(req, None).map_err(|e| format!("request refused: {e:?}"))?;
    fut.subscribe().block();
    match fut.get() {
        Some(Ok(Ok(resp))) => Ok(format!("status {}", resp.status())),
        Some(Ok(Err(e))) => Err(format!("request failed: {e:?}")),
        other => Err(format!("request failed: {other:?}")),
    }
}
