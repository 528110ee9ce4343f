//! `host tenant …` and `host key …` through the real binary: tenants are
//! added, listed and removed; a key is printed alone on stdout and never
//! again (not by `key list`, not in any file); revocation; errors.

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;
use common::{Dir, contains};

fn host(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("SESSHOST_HOME")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(home: &Path, args: &[&str]) -> String {
    let o = host(home, args);
    assert!(
        o.status.success(),
        "host {args:?}: {:?}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn files_under(dir: &Path, out: &mut Vec<Vec<u8>>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(std::fs::read(&p).unwrap());
        }
    }
}

#[test]
fn tenants_add_list_remove() {
    let d = Dir::new("svc-tenants");
    let home = d.p("home");
    assert!(ok(&home, &["tenant", "list"]).contains("no tenants"));
    ok(&home, &["tenant", "add", "acme"]);
    ok(&home, &["tenant", "add", "beta-2"]);
    let list = ok(&home, &["tenant", "list"]);
    assert!(list.contains("acme") && list.contains("beta-2"), "{list}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&home, &["tenant", "list", "--json"])).unwrap();
    let names: Vec<_> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["acme", "beta-2"]);
    assert!(json[0]["created_at"].as_str().unwrap().ends_with('Z'));

    // Duplicate: exit 1 with a message.
    let o = host(&home, &["tenant", "add", "acme"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        contains(&o.stderr, "already exists"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Bad names: exit 2 with the rule.
    for bad in ["Acme", "a/b", "", "x".repeat(65).as_str()] {
        let o = host(&home, &["tenant", "add", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(
            contains(&o.stderr, "a-z, 0-9"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    ok(&home, &["tenant", "remove", "acme"]);
    let list = ok(&home, &["tenant", "list"]);
    assert!(!list.contains("acme") && list.contains("beta-2"), "{list}");
    let o = host(&home, &["tenant", "remove", "acme"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(contains(&o.stderr, "no tenant"));
}

#[test]
fn keys_create_list_revoke() {
    let d = Dir::new("svc-keys");
    let home = d.p("home");
    ok(&home, &["tenant", "add", "acme"]);
    let o = host(&home, &["key", "create", "--tenant", "acme"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8(o.stdout).unwrap();
    // The key alone, one line.
    assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
    let key = stdout.trim_end_matches('\n');
    assert!(
        key.starts_with("shk_") && key.len() == 60 && !key.contains(' '),
        "{key:?}"
    );
    assert!(contains(&o.stderr, "Authorization: Bearer"));
    assert!(!contains(&o.stderr, key), "key on stderr");
    let id = &key[4..16];

    let list = ok(&home, &["key", "list"]);
    assert!(list.contains(id) && list.contains("acme"), "{list}");
    let secret = &key[17..];
    assert!(!list.contains(secret), "key in list");
    let json = ok(&home, &["key", "list", "--json"]);
    assert!(!json.contains(secret) && !json.contains("sha256"), "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["id"], id);
    assert_eq!(v[0]["tenant"], "acme");
    assert!(v[0].get("revoked_at").is_none());

    // The key is not stored anywhere under the home.
    let mut files = vec![];
    files_under(&home, &mut files);
    assert!(!files.is_empty());
    assert!(
        files.iter().all(|f| !contains(f, secret)),
        "key stored in clear"
    );

    ok(&home, &["key", "revoke", id]);
    let v: serde_json::Value =
        serde_json::from_str(&ok(&home, &["key", "list", "--json"])).unwrap();
    assert!(v[0]["revoked_at"].as_str().unwrap().ends_with('Z'));
    let o = host(&home, &["key", "revoke", id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(contains(&o.stderr, "already revoked"));
    let o = host(&home, &["key", "revoke", "nonsense"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(contains(&o.stderr, "host key list"));

    // A key for a tenant that does not exist.
    let o = host(&home, &["key", "create", "--tenant", "ghost"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert!(contains(&o.stderr, "host tenant add"));
}

/// `--cluster`: the same commands on the bucket's registry, here a
/// directory through fs.wasm (atomic create-only and compare-and-swap),
/// given with `host run`'s storage flags; nothing lands in the home.
#[test]
fn cluster_tenants_and_keys_live_in_the_bucket() {
    let d = Dir::new("svc-cluster");
    let home = d.p("home");
    let bucket = d.p("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let fs = common::wasm("fs").display().to_string();
    let b = bucket.display().to_string();
    let at = |cmd: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        v.extend(["--cluster", "--plugin", &fs, "--allow-dir", &b].map(String::from));
        v
    };
    let run = |cmd: &[&str]| {
        let a = at(cmd);
        host(&home, &a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let ok_at = |cmd: &[&str]| {
        let o = run(cmd);
        assert!(
            o.status.success(),
            "host {cmd:?} --cluster: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    assert!(ok_at(&["tenant", "list"]).contains("no tenants"));
    assert!(ok_at(&["tenant", "add", "acme"]).contains("in the cluster's bucket"));
    let o = run(&["tenant", "add", "acme"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(contains(&o.stderr, "already exists"));
    let out = ok_at(&["key", "create", "--tenant", "acme"]);
    let key = out.trim();
    assert!(key.starts_with("shk_") && out.lines().count() == 1, "{out}");
    let id = &key[4..16];
    assert!(bucket.join("cluster/tenants/acme").is_file());
    assert!(bucket.join(format!("cluster/keys/{id}")).is_file());
    // The home has none of it; without --cluster the home's registry is
    // untouched (empty).
    assert!(!home.join("service/tenants/acme.json").exists());
    assert!(ok(&home, &["tenant", "list"]).contains("no tenants"));
    // The key is in no file, only its hash.
    let mut files = Vec::new();
    files_under(&bucket, &mut files);
    files_under(&home, &mut files);
    assert!(files.iter().all(|f| !contains(f, key)));
    let list: serde_json::Value = serde_json::from_str(&ok_at(&["key", "list", "--json"])).unwrap();
    assert_eq!(list[0]["id"], id);
    assert!(ok_at(&["key", "revoke", id]).contains("revoked"));
    let o = run(&["key", "revoke", id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(contains(&o.stderr, "already revoked"));
    ok_at(&["tenant", "remove", "acme"]);
    assert!(!bucket.join("cluster/tenants/acme").exists());

    // Usage errors name the flag (exit 2).
    for (args, flag) in [
        (vec!["tenant", "list", "--cluster"], "--plugin"),
        (vec!["key", "list", "--plugin", &fs], "--cluster"),
        (
            vec!["key", "list", "--config", "sesshost.toml"],
            "--cluster",
        ),
        (vec!["key", "list", "--allow-dir", &b], "--plugin"),
    ] {
        let o = host(&home, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            contains(&o.stderr, flag),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
