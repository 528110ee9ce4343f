//! Hostile input through the real binary: every reader (bundle, Playwright
//! JSON, cookies.txt, state JSON, key files, `.sig`, plugin files and
//! config) fed crafted and generated garbage. Each run must end with exit
//! 1, 2 or 3 and a message, under a memory bound (`ulimit -v`) and a time
//! bound; none may panic (exit 101) or be killed by a signal.
//!
//! Bounds stated here, checked on every case: [`MEM_KIB`] of address space
//! and [`TIME`] of wall time per command.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{Dir, contains};

/// Address-space cap per hostile command (1.5 GiB: the binary's runtime
/// and allocator reserve ~200 MiB before reading anything).
const MEM_KIB: u64 = 1_572_864;
/// Wall-time cap per hostile command.
const TIME: Duration = Duration::from_secs(20);

fn host_in(dir: &Path, home: &Path, args: &[&str]) -> Output {
    let quoted: Vec<String> = args
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let script = format!(
        "ulimit -v {MEM_KIB}; exec '{}' {}",
        env!("CARGO_BIN_EXE_host"),
        quoted.join(" ")
    );
    let started = Instant::now();
    let o = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("SESSHOST_HOME", home)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        started.elapsed() < TIME,
        "host {args:?} took {:?} (bound {TIME:?})",
        started.elapsed()
    );
    o
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// The run ended as a refusal: exit 1, 2 or 3, an `error:` line, no panic.
fn refused(o: &Output, what: &str) -> i32 {
    let t = text(o);
    let code = o.status.code();
    assert!(
        matches!(code, Some(1..=3)),
        "{what}: expected exit 1-3, got {:?} (signal or panic)\n{t}",
        o.status
    );
    assert!(!t.contains("panicked"), "{what}: panicked\n{t}");
    assert!(t.contains("error:"), "{what}: no message\n{t}");
    code.unwrap()
}

fn never_panics(o: &Output, what: &str) {
    let t = text(o);
    assert!(
        matches!(o.status.code(), Some(0..=3)),
        "{what}: exit {:?}\n{t}",
        o.status
    );
    assert!(!t.contains("panicked"), "{what}: panicked\n{t}");
}

/// A deterministic byte generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const STATE: &str = r#"{
 "meta": {"name": "demo", "createdAt": 1, "updatedAt": 2},
 "cookies": [{"name": "sid", "value": "COOKIE-SECRET-4711", "domain": "localhost", "path": "/"}],
 "origins": [{"origin": "http://localhost:8080", "localStorage": [{"key": "t", "value": "LS-SECRET"}]}],
 "tabs": [{"url": "http://localhost:8080/", "title": "x"}]
}"#;

const FAST_KDF: [&str; 6] = [
    "--argon2-memory",
    "1",
    "--argon2-time",
    "1",
    "--argon2-parallelism",
    "1",
];

fn setup(tag: &str) -> Dir {
    let d = Dir::new(&format!("hostile-{tag}"));
    std::fs::write(d.p("state.json"), STATE).unwrap();
    std::fs::write(d.p("pass"), "hostile passphrase\n").unwrap();
    let mut args = vec![
        "seal",
        "state.json",
        "-o",
        "good.sessbundle",
        "--passphrase-file",
        "pass",
    ];
    args.extend(FAST_KDF);
    let o = host_in(&d.0, &d.p("home"), &args);
    assert!(o.status.success(), "{}", text(&o));
    d
}

/// Every bundle vector of format-spec/vectors through `unseal`, `inspect`
/// and `import`: ok vectors succeed, every other one is refused with the
/// exit code of its class (3 for authentication, 1 otherwise).
#[test]
fn every_spec_vector_through_every_bundle_command() {
    let d = setup("0");
    let vdir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../format-spec/vectors");
    let list: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vdir.join("bundles.json")).unwrap()).unwrap();
    let mut checked = 0;
    for v in list.as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let file = vdir.join(v["file"].as_str().unwrap());
        let expect = v["expect"].as_str().unwrap();
        let mut keys: Vec<String> = vec![];
        if let Some(p) = v["unlock"]["passphrase"].as_str() {
            std::fs::write(d.p("vpass"), p).unwrap();
            keys = vec![
                "--passphrase-file".into(),
                d.p("vpass").display().to_string(),
            ];
        } else if let Some(k) = v["unlock"]["key_file"].as_str() {
            std::fs::write(d.p("vkey"), k).unwrap();
            keys = vec!["--key-file".into(), d.p("vkey").display().to_string()];
        } else if let Some(k) = v["unlock"]["identity"].as_str() {
            std::fs::write(d.p("vid"), k).unwrap();
            keys = vec!["--identity".into(), d.p("vid").display().to_string()];
        }
        // Limits the CLI has flags for; a vector needing another is run
        // with defaults and only checked not to panic.
        let mut flags_cover = true;
        if let Some(l) = v["limits"].as_object() {
            for (k, val) in l {
                let flag = match k.as_str() {
                    "max_total_plaintext" => "--max-plaintext",
                    "max_record" => "--max-record",
                    "max_argon2_m_kib" => "--max-argon2-memory",
                    _ => {
                        flags_cover = false;
                        continue;
                    }
                };
                keys.push(flag.into());
                keys.push(val.to_string());
            }
        }
        let f = file.display().to_string();
        let k: Vec<&str> = keys.iter().map(String::as_str).collect();
        if v["op"] == "verify" {
            let pk = v["public_key_file"].as_str().unwrap();
            std::fs::write(d.p("vkey.pub"), pk).unwrap();
            let o = host_in(&d.0, &d.p("home"), &["verify", &f, "--key", "vkey.pub"]);
            if expect == "ok" {
                assert!(o.status.success(), "{name}: {}", text(&o));
            } else {
                refused(&o, name);
            }
            checked += 1;
            continue;
        }
        let auth = matches!(
            expect,
            "no_matching_key"
                | "header_auth"
                | "payload_auth"
                | "bad_signature"
                | "no_signature"
                | "chunk_mismatch"
        );
        for cmd in ["unseal", "inspect", "import"] {
            let out = d.p(&format!("{name}.{cmd}.json"));
            let out_s = out.display().to_string();
            let mut args: Vec<&str> = vec![cmd, &f];
            match cmd {
                "unseal" => args.extend(["-o", &out_s]),
                "import" => args.extend(["--as", "v", "--force"]),
                _ => {}
            }
            args.extend(&k);
            let o = host_in(&d.0, &d.p("home"), &args);
            if !flags_cover {
                never_panics(&o, name);
            } else if expect == "ok" {
                assert!(o.status.success(), "{name} {cmd}: {}", text(&o));
            } else if cmd == "inspect" && !matches!(o.status.code(), Some(1..=3)) {
                // inspect shows header facts of a bundle whose body it
                // could not read; it still must not panic.
                never_panics(&o, name);
            } else {
                let c = refused(&o, &format!("{name} {cmd}"));
                if auth {
                    assert_eq!(c, 3, "{name} {cmd}: auth failures exit 3\n{}", text(&o));
                }
                assert!(!out.exists(), "{name} {cmd}: a refused unseal left output");
            }
            checked += 1;
        }
    }
    assert!(checked > 90, "only {checked} runs");
}

/// Truncations and bit flips of a good bundle, every reader command.
#[test]
fn truncated_and_flipped_bundles_are_refused() {
    let d = setup("1");
    let good = std::fs::read(d.p("good.sessbundle")).unwrap();
    let mut rng = Rng(0x5e55_0057);
    for i in 0..24 {
        let mut b = good.clone();
        if i % 2 == 0 {
            b.truncate(rng.below(b.len()));
        } else {
            let at = rng.below(b.len());
            b[at] ^= 1 << rng.below(8);
        }
        std::fs::write(d.p("bad.sessbundle"), &b).unwrap();
        let o = host_in(
            &d.0,
            &d.p("home"),
            &[
                "unseal",
                "bad.sessbundle",
                "-o",
                "out.json",
                "--passphrase-file",
                "pass",
                "--force",
            ],
        );
        refused(&o, &format!("mutation {i}"));
        assert!(!d.p("out.json").exists());
        let o = host_in(&d.0, &d.p("home"), &["inspect", "bad.sessbundle"]);
        never_panics(&o, &format!("inspect mutation {i}"));
        let o = host_in(
            &d.0,
            &d.p("home"),
            &[
                "import",
                "bad.sessbundle",
                "--as",
                "m",
                "--passphrase-file",
                "pass",
            ],
        );
        refused(&o, &format!("import mutation {i}"));
    }
}

/// Playwright files: the two crashes of the issue (a non-ASCII character
/// in a date; `ref`s doubling each level) plus generated garbage.
#[test]
fn hostile_playwright_files_are_refused_in_bounds() {
    let d = setup("2");
    let home = d.p("home");
    let mut cases: Vec<(String, String)> = vec![
        (
            "non-ascii date".into(),
            r#"{"cookies":[],"origins":[{"origin":"https://a.test","localStorage":[],
              "indexedDB":[{"name":"d","version":1,"stores":[{"name":"s","autoIncrement":false,
              "records":[{"key":1,"value":{"d":"2024-01-0é1T00:00:00Z"}}],"indexes":[]}]}]}]}"#
                .into(),
        ),
        ("deep nesting".into(), format!("{}{}", "[".repeat(100_000), "]".repeat(100_000))),
        ("huge numbers".into(), r#"{"cookies":[{"name":"a","value":"b","domain":"x","path":"/","expires":1e309,"httpOnly":false,"secure":false,"sameSite":"Lax"}],"origins":[]}"#.into()),
        ("NUL in names".into(), "{\"cookies\":[{\"name\":\"a\\u0000b\",\"value\":\"v\",\"domain\":\"x\\u0000\",\"path\":\"/\",\"expires\":-1,\"httpOnly\":false,\"secure\":false,\"sameSite\":\"Lax\"}],\"origins\":[]}".into()),
        ("not json".into(), "{ this is not json".into()),
        ("wrong types".into(), r#"{"cookies":"x","origins":7}"#.into()),
    ];
    // refs doubling each level: each level's object refers to the last twice.
    let mut serialized = String::from(r#"{"o":[],"id":1}"#);
    for lvl in 0..40 {
        serialized = format!(
            r#"{{"o":[{{"k":"a","v":{serialized}}},{{"k":"b","v":{{"ref":{}}}}}],"id":{}}}"#,
            lvl + 1,
            lvl + 2
        );
    }
    cases.push((
        "doubling refs".into(),
        format!(
            r#"{{"cookies":[],"origins":[{{"origin":"https://a.test","localStorage":[],"indexedDB":[{{"name":"d","version":1,"stores":[{{"name":"s","autoIncrement":false,"records":[{{"key":1,"valueEncoded":{serialized}}}],"indexes":[]}}]}}]}}]}}"#
        ),
    ));
    for (what, body) in &cases {
        std::fs::write(d.p("pw.json"), body).unwrap();
        let o = host_in(&d.0, &home, &["import", "pw.json", "--as", "pw", "--force"]);
        never_panics(&o, what);
    }
    // Invalid UTF-8 inside a string field.
    let mut b = br#"{"cookies":[{"name":""#.to_vec();
    b.extend([0xff, 0xfe]);
    b.extend(br#"","value":"v","domain":"x","path":"/","expires":-1,"httpOnly":false,"secure":false,"sameSite":"Lax"}],"origins":[]}"#);
    std::fs::write(d.p("pw.json"), &b).unwrap();
    let o = host_in(
        &d.0,
        &home,
        &["import", "pw.json", "--as", "pw", "--format", "playwright"],
    );
    refused(&o, "invalid UTF-8");
    // Random bytes that start like JSON.
    let mut rng = Rng(77);
    for i in 0..10 {
        let mut b = b"{".to_vec();
        b.extend((0..rng.below(4096)).map(|_| rng.next() as u8));
        std::fs::write(d.p("pw.json"), &b).unwrap();
        let o = host_in(
            &d.0,
            &home,
            &["import", "pw.json", "--as", "pw", "--format", "playwright"],
        );
        refused(&o, &format!("random json {i}"));
    }
}

#[test]
fn hostile_cookies_txt_files_are_refused() {
    let d = setup("3");
    let home = d.p("home");
    let long = "a".repeat(2_000_000);
    let cases: Vec<Vec<u8>> = vec![
        b"# Netscape HTTP Cookie File\n.x\tTRUE\t/\tFALSE\tnot-a-number\tn\tv\n".to_vec(),
        b"# Netscape HTTP Cookie File\n.x\tTRUE\t/\n".to_vec(),
        b"# Netscape HTTP Cookie File\n.x\tTRUE\t/\tFALSE\t99999999999999999999999\tn\tv\n"
            .to_vec(),
        format!("# Netscape HTTP Cookie File\n.x\tTRUE\t/\tFALSE\t0\tn\t{long}\n").into_bytes(),
        b"# Netscape HTTP Cookie File\n.x\0\tTRUE\t/\tFALSE\t0\tn\0\tv\n".to_vec(),
        [
            b"# Netscape HTTP Cookie File\n.x\tTRUE\t/\tFALSE\t0\t".as_slice(),
            &[0xff, 0xc0],
            b"\tv\n",
        ]
        .concat(),
    ];
    for (i, c) in cases.iter().enumerate() {
        std::fs::write(d.p("c.txt"), c).unwrap();
        let o = host_in(
            &d.0,
            &home,
            &[
                "import",
                "c.txt",
                "--as",
                "c",
                "--force",
                "--format",
                "cookies-txt",
            ],
        );
        never_panics(&o, &format!("cookies.txt case {i}"));
    }
}

/// Key files, signature files, public keys, identities, state JSON and
/// plugin files given garbage.
#[test]
fn hostile_key_sig_state_and_plugin_files() {
    let d = setup("4");
    let home = d.p("home");
    let mut rng = Rng(4242);
    for i in 0..6 {
        let junk: Vec<u8> = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
        std::fs::write(d.p("junk"), &junk).unwrap();
        let w = format!("case {i}");
        refused(
            &host_in(
                &d.0,
                &home,
                &[
                    "unseal",
                    "good.sessbundle",
                    "-o",
                    "o.json",
                    "--key-file",
                    "junk",
                ],
            ),
            &w,
        );
        refused(
            &host_in(
                &d.0,
                &home,
                &[
                    "unseal",
                    "good.sessbundle",
                    "-o",
                    "o.json",
                    "--identity",
                    "junk",
                ],
            ),
            &w,
        );
        refused(
            &host_in(&d.0, &home, &["verify", "good.sessbundle", "--key", "junk"]),
            &w,
        );
        refused(
            &host_in(
                &d.0,
                &home,
                &[
                    "seal",
                    "state.json",
                    "-o",
                    "x.sessbundle",
                    "--recipient",
                    "junk",
                    "--force",
                ],
            ),
            &w,
        );
        refused(
            &host_in(
                &d.0,
                &home,
                &[
                    "seal",
                    "junk",
                    "-o",
                    "x.sessbundle",
                    "--passphrase-file",
                    "pass",
                    "--force",
                ],
            ),
            &w,
        );
        std::fs::write(d.p("good.sessbundle.sig"), &junk).unwrap();
        std::fs::write(
            d.p("k.pub"),
            "sessbundle-signing-public-key-v1:F0VTtFbd38aQjsqxwQH-arIeK6oGF3lbfUOmNIKZP9U\n",
        )
        .unwrap();
        refused(
            &host_in(
                &d.0,
                &home,
                &["verify", "good.sessbundle", "--key", "k.pub"],
            ),
            &w,
        );
        let _ = std::fs::remove_file(d.p("good.sessbundle.sig"));
    }
    // A text file where a .wasm is expected: refused without its content.
    std::fs::write(d.p("pw.txt"), "PLUGIN-PASSPHRASE-SECRET\n").unwrap();
    let o = host_in(&d.0, &home, &["plugin", "inspect", "pw.txt"]);
    never_panics(&o, "plugin inspect text");
    assert!(
        !contains(&o.stderr, "PLUGIN-PASSPHRASE-SECRET")
            && !contains(&o.stdout, "PLUGIN-PASSPHRASE-SECRET"),
        "{}",
        text(&o)
    );
    // A plugin config file that is not TOML.
    std::fs::write(d.p("cfg.toml"), [0xffu8, 0, b'=', b'[']).unwrap();
    let o = host_in(
        &d.0,
        &home,
        &[
            "session",
            "cleanup",
            "--strategy",
            "pw.txt",
            "--plugin-config-file",
            "cfg.toml",
        ],
    );
    never_panics(&o, "plugin config");
}

/// The issue's CLI manners: EPIPE, usage exit codes, a missing home, an
/// output that is a directory, sesshost's own state JSON on import.
#[test]
fn cli_manners() {
    let d = setup("5");
    let home = d.p("home");
    // `host inspect x | head -1`: a closed pipe is a quiet exit.
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' inspect good.sessbundle | head -c 1 >/dev/null; exit ${{PIPESTATUS:-0}}",
            env!("CARGO_BIN_EXE_host")
        ))
        .current_dir(&d.0)
        .output()
        .unwrap();
    assert!(!contains(&o.stderr, "panicked"), "{}", text(&o));
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; for i in 1 2 3 4 5 6 7 8; do '{}' session list --home '{}' ; done | head -c 1 >/dev/null; echo ${{PIPESTATUS[0]}}",
            env!("CARGO_BIN_EXE_host"),
            home.display()
        ))
        .current_dir(&d.0)
        .output()
        .unwrap();
    assert!(!contains(&o.stderr, "panicked"), "{}", text(&o));

    // 17 keys: a usage error found after parsing exits 2.
    let mut args = vec!["seal", "state.json", "-o", "k.sessbundle"];
    for i in 0..17 {
        let p = d.p(&format!("k{i}"));
        let o = host_in(
            &d.0,
            &home,
            &["keygen", "--symmetric", "-o", p.to_str().unwrap()],
        );
        assert!(o.status.success(), "{}", text(&o));
    }
    let names: Vec<String> = (0..17).map(|i| format!("k{i}")).collect();
    for n in &names {
        args.extend(["--key-file", n.as_str()]);
    }
    let o = host_in(&d.0, &home, &args);
    assert_eq!(refused(&o, "17 keys"), 2, "{}", text(&o));

    // Read-only commands on a home that does not exist say so, create nothing.
    let nowhere = d.p("no-such-home");
    for args in [
        &["session", "list"][..],
        &["session", "show", "x"],
        &["export", "x", "-o", "x.json", "--format", "playwright"],
    ] {
        let o = host_in(&d.0, &nowhere, args);
        refused(&o, "missing home");
        assert!(text(&o).contains("no sesshost home at"), "{}", text(&o));
        assert!(!nowhere.exists(), "{args:?} created the home");
    }

    // -o DIR: refused, nothing left behind.
    std::fs::create_dir(d.p("outdir")).unwrap();
    let mut a = vec![
        "seal",
        "state.json",
        "-o",
        "outdir",
        "--passphrase-file",
        "pass",
        "--force",
    ];
    a.extend(FAST_KDF);
    refused(&host_in(&d.0, &home, &a), "-o DIR");
    let left: Vec<_> = std::fs::read_dir(&d.0)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");

    // sesshost's own state JSON (what `host unseal` writes) imports.
    let o = host_in(
        &d.0,
        &home,
        &[
            "unseal",
            "good.sessbundle",
            "-o",
            "own.json",
            "--passphrase-file",
            "pass",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = host_in(&d.0, &home, &["import", "own.json", "--as", "own"]);
    assert!(o.status.success(), "own state JSON: {}", text(&o));
    let o = host_in(&d.0, &home, &["session", "show", "own"]);
    assert!(text(&o).contains("cookies     1"), "{}", text(&o));
}

/// Two imports of one name at once: exactly one wins, the other is told
/// the session exists; the winner's session loads.
#[test]
fn concurrent_imports_of_one_name() {
    let d = setup("6");
    let home = d.p("home");
    for round in 0..4 {
        let name = format!("race{round}");
        let spawn = || {
            Command::new(env!("CARGO_BIN_EXE_host"))
                .args([
                    "import",
                    "good.sessbundle",
                    "--as",
                    &name,
                    "--passphrase-file",
                    "pass",
                ])
                .current_dir(&d.0)
                .env("SESSHOST_HOME", &home)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let wins = [&a, &b].iter().filter(|o| o.status.success()).count();
        assert_eq!(wins, 1, "round {round}:\n{}\n{}", text(&a), text(&b));
        let loser = if a.status.success() { &b } else { &a };
        assert!(text(loser).contains("already exists"), "{}", text(loser));
    }
}

/// Machine B makes an identity, A exports to B's .pub, B imports with
/// --identity; a third identity cannot open it (exit 3).
#[test]
fn export_to_a_recipient_and_import_with_the_identity() {
    let d = setup("7");
    let (a, b) = (d.p("home-a"), d.p("home-b"));
    let ok = |o: Output| {
        assert!(o.status.success(), "{}", text(&o));
        text(&o)
    };
    ok(host_in(
        &d.0,
        &a,
        &[
            "import",
            "good.sessbundle",
            "--as",
            "shop",
            "--passphrase-file",
            "pass",
        ],
    ));
    ok(host_in(&d.0, &b, &["keygen", "--identity", "-o", "b.id"]));
    ok(host_in(
        &d.0,
        &d.p("home-c"),
        &["keygen", "--identity", "-o", "c.id"],
    ));
    let pubkey = std::fs::read_to_string(d.p("b.id.pub")).unwrap();
    assert_eq!(pubkey.lines().count(), 1, "{pubkey}");
    ok(host_in(
        &d.0,
        &a,
        &[
            "export",
            "shop",
            "-o",
            "to-b.sessbundle",
            "--recipient",
            "b.id.pub",
        ],
    ));
    ok(host_in(
        &d.0,
        &b,
        &["import", "to-b.sessbundle", "--identity", "b.id"],
    ));
    let shown = ok(host_in(&d.0, &b, &["session", "show", "shop"]));
    assert!(shown.contains("cookies     1"), "{shown}");
    // The recipient line itself works too.
    ok(host_in(
        &d.0,
        &a,
        &[
            "export",
            "shop",
            "-o",
            "to-b2.sessbundle",
            "--recipient",
            pubkey.trim(),
        ],
    ));
    let o = host_in(
        &d.0,
        &d.p("home-c"),
        &["import", "to-b.sessbundle", "--identity", "c.id"],
    );
    assert_eq!(refused(&o, "third identity"), 3, "{}", text(&o));
}
