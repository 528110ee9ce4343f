//! `host keygen|seal|unseal|sign|verify|inspect|rekey` through the real
//! binary: outputs, modes, exit codes, and that secrets stay out of output.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;
use common::{Dir, contains};

fn host(dir: &Dir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host"))
        .args(args)
        .current_dir(&dir.0)
        .env("SESSHOST_HOME", dir.p("home"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

const STATE: &str = r#"{
 "meta": {"name": "demo", "createdAt": 1, "updatedAt": 2, "locale": "en-GB"},
 "cookies": [
  {"name": "sid", "value": "COOKIE-SECRET-4711", "domain": "localhost", "path": "/", "httpOnly": true},
  {"name": "chip", "value": "PARTITIONED-SECRET", "domain": "localhost", "path": "/", "secure": true, "sameSite": "None",
   "partitionKey": {"topLevelSite": "http://127.0.0.1", "hasCrossSiteAncestor": true}}
 ],
 "origins": [{"origin": "http://localhost:8080", "localStorage": [{"key": "token", "value": "LS-TOKEN-SECRET"}],
   "indexedDB": [{"name": "app", "version": 3, "objectStores": [{"name": "notes", "keyPath": "id",
     "records": [{"key": {"t": "number", "v": 1}, "value": {"t": "object", "v": [["id", {"t": "number", "v": 1}], ["at", {"t": "date", "v": 1700000000000}]]}}]}]}]}],
 "tabs": [{"url": "http://localhost:8080/wizard", "title": "Wizard",
   "sessionStorage": [{"origin": "http://localhost:8080", "items": [{"key": "step", "value": "SS-SECRET-3"}]}]}]
}"#;

const SECRETS: [&str; 4] = [
    "COOKIE-SECRET-4711",
    "PARTITIONED-SECRET",
    "LS-TOKEN-SECRET",
    "SS-SECRET-3",
];

/// `host seal state.json -o a.sessbundle --passphrase-file pass` with a
/// fast KDF, plus `extra`.
fn seal_a(d: &Dir, extra: &[&str]) {
    let mut args = vec![
        "seal",
        "state.json",
        "-o",
        "a.sessbundle",
        "--passphrase-file",
        "pass",
    ];
    args.extend(fast_kdf());
    args.extend(extra);
    ok(&host(d, &args));
}

fn fast_kdf() -> [&'static str; 6] {
    [
        "--argon2-memory",
        "8",
        "--argon2-time",
        "1",
        "--argon2-parallelism",
        "1",
    ]
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn setup(d: &Dir) {
    std::fs::write(d.p("state.json"), STATE).unwrap();
    std::fs::write(d.p("pass"), "correct horse\n").unwrap();
    ok(&host(d, &["keygen", "-o", "sign.key"]));
}

#[test]
fn keygen_writes_private_and_public_keys_and_refuses_to_overwrite() {
    let d = Dir::new("keygen");
    ok(&host(&d, &["keygen", "-o", "k"]));
    assert_eq!(mode(&d.p("k")), 0o600);
    assert_eq!(mode(&d.p("k.pub")), 0o644);
    let o = host(&d, &["keygen", "-o", "k"]);
    assert_eq!(code(&o), 1);
    assert!(text(&o).contains("--force"), "{}", text(&o));
    ok(&host(&d, &["keygen", "--symmetric", "-o", "sym"]));
    assert_eq!(mode(&d.p("sym")), 0o600);
    assert!(
        std::fs::read_to_string(d.p("sym"))
            .unwrap()
            .starts_with("sessbundle-symmetric-key-v1:")
    );
    assert!(!d.p("sym.pub").exists());
}

#[test]
fn seal_unseal_round_trip_keeps_every_value_and_hides_them_in_the_bundle() {
    let d = Dir::new("roundtrip");
    setup(&d);
    seal_a(&d, &["--sign", "sign.key"]);
    let bytes = std::fs::read(d.p("a.sessbundle")).unwrap();
    for s in SECRETS {
        assert!(!contains(&bytes, s), "{s} is in the bundle in plaintext");
    }
    let o = host(
        &d,
        &[
            "unseal",
            "a.sessbundle",
            "-o",
            "out.json",
            "--passphrase-file",
            "pass",
        ],
    );
    ok(&o);
    assert_eq!(mode(&d.p("out.json")), 0o600);
    let want: serde_json::Value = serde_json::from_str(STATE).unwrap();
    let got: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.p("out.json")).unwrap()).unwrap();
    for s in SECRETS {
        assert!(got.to_string().contains(s), "{s} lost");
    }
    assert_eq!(
        got["cookies"][1]["partitionKey"],
        want["cookies"][1]["partitionKey"]
    );
    assert_eq!(got["origins"][0]["indexedDB"][0]["version"], 3);
    assert_eq!(
        got["tabs"][0]["sessionStorage"],
        want["tabs"][0]["sessionStorage"]
    );
    // The same through --passphrase-env.
    let o = Command::new(env!("CARGO_BIN_EXE_host"))
        .args([
            "unseal",
            "a.sessbundle",
            "-o",
            "env.json",
            "--passphrase-env",
            "SB_PW",
        ])
        .current_dir(&d.0)
        .env("SB_PW", "correct horse")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(
        std::fs::read(d.p("env.json")).unwrap(),
        std::fs::read(d.p("out.json")).unwrap()
    );
}

#[test]
fn wrong_key_and_tampering_exit_3_and_leave_no_output() {
    let d = Dir::new("auth");
    setup(&d);
    seal_a(&d, &[]);
    std::fs::write(d.p("wrong"), "nope").unwrap();
    let o = host(
        &d,
        &[
            "unseal",
            "a.sessbundle",
            "-o",
            "out.json",
            "--passphrase-file",
            "wrong",
        ],
    );
    assert_eq!(code(&o), 3, "{}", text(&o));
    assert!(text(&o).contains("wrong passphrase"), "{}", text(&o));
    assert!(!d.p("out.json").exists());
    let mut b = std::fs::read(d.p("a.sessbundle")).unwrap();
    let n = b.len();
    b[n - 40] ^= 1;
    std::fs::write(d.p("t.sessbundle"), &b).unwrap();
    let o = host(
        &d,
        &[
            "unseal",
            "t.sessbundle",
            "-o",
            "out.json",
            "--passphrase-file",
            "pass",
        ],
    );
    assert_eq!(code(&o), 3, "{}", text(&o));
    assert!(!d.p("out.json").exists());
    // No partial or temp files anywhere.
    let names: Vec<String> = std::fs::read_dir(&d.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains(".tmp-") || n == "out.json"),
        "{names:?}"
    );
    // Not a bundle: exit 1 with a hint.
    let o = host(&d, &["inspect", "state.json"]);
    assert_eq!(code(&o), 1);
    assert!(text(&o).contains("not a .sessbundle"), "{}", text(&o));
}

#[test]
fn no_prompt_without_a_terminal_and_usage_errors_exit_2() {
    let d = Dir::new("prompt");
    setup(&d);
    let o = host(&d, &["seal", "state.json", "-o", "a.sessbundle"]);
    assert_eq!(code(&o), 1);
    assert!(text(&o).contains("not a terminal"), "{}", text(&o));
    assert!(!d.p("a.sessbundle").exists());
    let o = host(&d, &["seal", "state.json"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let o = host(&d, &["frobnicate"]);
    assert_eq!(code(&o), 2);
    // --home is accepted before and after the subcommand.
    ok(&host(&d, &["--home", "h1", "keygen", "-o", "k1"]));
    ok(&host(&d, &["keygen", "-o", "k2", "--home", "h2"]));
}

#[test]
fn signatures_detached_and_embedded_verify_without_a_passphrase() {
    let d = Dir::new("sign");
    setup(&d);
    ok(&host(&d, &["keygen", "-o", "other.key"]));
    seal_a(&d, &[]);
    // Unsigned: verify fails with 3 and says how to sign.
    let o = host(&d, &["verify", "a.sessbundle", "--key", "sign.key.pub"]);
    assert_eq!(code(&o), 3);
    assert!(text(&o).contains("host sign"), "{}", text(&o));
    ok(&host(
        &d,
        &[
            "sign",
            "a.sessbundle",
            "--key",
            "sign.key",
            "--signer",
            "ci bot",
        ],
    ));
    assert!(d.p("a.sessbundle.sig").exists());
    let out = ok(&host(
        &d,
        &["verify", "a.sessbundle", "--key", "sign.key.pub"],
    ));
    assert!(
        out.contains("good signature") && out.contains("signer:ci bot"),
        "{out}"
    );
    // Another key's public key: no signature by it.
    assert_eq!(
        code(&host(
            &d,
            &["verify", "a.sessbundle", "--key", "other.key.pub"]
        )),
        3
    );
    // A secret key where a public one belongs: clear error.
    let o = host(&d, &["verify", "a.sessbundle", "--key", "sign.key"]);
    assert!(text(&o).contains("public key"), "{}", text(&o));
    // Tamper: bad signature, exit 3.
    let mut b = std::fs::read(d.p("a.sessbundle")).unwrap();
    let n = b.len() / 2;
    b[n] ^= 4;
    std::fs::write(d.p("a.sessbundle"), &b).unwrap();
    let o = host(&d, &["verify", "a.sessbundle", "--key", "sign.key.pub"]);
    assert_eq!(code(&o), 3);
    assert!(text(&o).contains("does not verify"), "{}", text(&o));
}

#[test]
fn inspect_shows_facts_and_counts_never_values() {
    let d = Dir::new("inspect");
    setup(&d);
    seal_a(&d, &["--sign", "sign.key"]);
    let plain = ok(&host(&d, &["inspect", "a.sessbundle"]));
    assert!(
        plain.contains("Argon2id") && plain.contains("embedded"),
        "{plain}"
    );
    let j = host(
        &d,
        &[
            "inspect",
            "a.sessbundle",
            "--json",
            "--passphrase-file",
            "pass",
        ],
    );
    let out = ok(&j);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["content"]["cookies"], 2);
    assert_eq!(v["content"]["origins"][0]["local_storage_items"], 1);
    assert_eq!(v["content"]["origins"][0]["indexeddb_records"], 1);
    assert_eq!(v["content"]["tabs"], 1);
    assert_eq!(v["key_slots"][0]["type"], "passphrase");
    let human = ok(&host(
        &d,
        &["inspect", "a.sessbundle", "--passphrase-file", "pass"],
    ));
    for s in SECRETS {
        assert!(
            !out.contains(s) && !human.contains(s),
            "inspect printed {s}"
        );
    }
    assert!(!human.contains("/wizard"), "inspect printed a tab URL");
}

#[test]
fn key_files_and_rekey() {
    let d = Dir::new("rekey");
    setup(&d);
    ok(&host(&d, &["keygen", "--symmetric", "-o", "k1"]));
    ok(&host(&d, &["keygen", "--symmetric", "-o", "k2"]));
    ok(&host(
        &d,
        &[
            "seal",
            "state.json",
            "-o",
            "a.sessbundle",
            "--key-file",
            "k1",
        ],
    ));
    ok(&host(
        &d,
        &[
            "unseal",
            "a.sessbundle",
            "-o",
            "o1.json",
            "--key-file",
            "k1",
        ],
    ));
    let o = host(
        &d,
        &[
            "unseal",
            "a.sessbundle",
            "-o",
            "o2.json",
            "--passphrase-file",
            "pass",
        ],
    );
    assert_eq!(code(&o), 3);
    assert!(text(&o).contains("--key-file"), "{}", text(&o));
    let mut args = vec![
        "rekey",
        "a.sessbundle",
        "-o",
        "b.sessbundle",
        "--key-file",
        "k1",
        "--new-key-file",
        "k2",
        "--new-passphrase-file",
        "pass",
    ];
    args.extend(fast_kdf());
    ok(&host(&d, &args));
    assert_eq!(
        code(&host(
            &d,
            &["unseal", "b.sessbundle", "-o", "x.json", "--key-file", "k1"]
        )),
        3
    );
    ok(&host(
        &d,
        &[
            "unseal",
            "b.sessbundle",
            "-o",
            "o3.json",
            "--key-file",
            "k2",
        ],
    ));
    ok(&host(
        &d,
        &[
            "unseal",
            "b.sessbundle",
            "-o",
            "o4.json",
            "--passphrase-file",
            "pass",
        ],
    ));
    assert_eq!(
        std::fs::read(d.p("o1.json")).unwrap(),
        std::fs::read(d.p("o3.json")).unwrap()
    );
}

#[test]
fn progress_bar_only_on_a_terminal() {
    let d = Dir::new("progress");
    setup(&d);
    seal_a(&d, &[]);
    // Not a terminal (these pipes): no bar, no control characters.
    let o = host(
        &d,
        &[
            "unseal",
            "a.sessbundle",
            "-o",
            "plain.json",
            "--passphrase-file",
            "pass",
        ],
    );
    assert!(!text(&ok_output(o)).contains('\r'));
    // A pseudo-terminal (script(1)): a bar over the bundle's size, cleared
    // at the end; the bar never shows a secret.
    let cmd = format!(
        "{} unseal a.sessbundle -o tty.json --passphrase-file pass",
        env!("CARGO_BIN_EXE_host")
    );
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(&d.0)
        .env("SESSHOST_HOME", d.p("home"))
        .env("SESSHOST_PROGRESS_DELAY_MS", "0")
        .stdin(Stdio::null())
        .output()
        .expect("script(1) from bsdutils");
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("unsealing a.sessbundle ["), "{t:?}");
    assert!(t.contains("% "), "{t:?}");
    assert!(t.contains("\r\x1b[2K"), "{t:?}");
    for s in SECRETS {
        assert!(!t.contains(s));
    }
    assert_eq!(
        std::fs::read(d.p("tty.json")).unwrap(),
        std::fs::read(d.p("plain.json")).unwrap()
    );
}

fn ok_output(o: Output) -> Output {
    ok(&o);
    o
}
