//! `to_playwright` output loaded into real Playwright + Chromium and read
//! back: Playwright must accept the file and give back the same session.
//!
//! Needs node, Chromium (`SESSHOST_CHROMIUM` or /usr/bin/chromium) and
//! `npm ci` (or `npm install`) run in host/bundle/tests/playwright (it
//! installs playwright-core only, no browser download); `.ci/setup` does
//! that. Without it the test is skipped with a note, except under CI, where
//! it fails.

use std::path::Path;
use std::process::Command;

use sessbundle::interop::{from_playwright, to_playwright};
use sessbundle::state::*;

fn in_30_days() -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (now + 30 * 86_400) as f64
}

fn state() -> SessionState {
    let mut s = SessionState::new("pw", 1);
    s.cookies = vec![
        Cookie {
            name: "sid".into(),
            value: "s3cr3t".into(),
            domain: ".app.test".into(),
            path: "/".into(),
            // Within Chromium's 400-day cap on cookie lifetimes.
            expires: Some(in_30_days()),
            http_only: true,
            secure: true,
            same_site: Some(SameSite::Strict),
            ..Default::default()
        },
        Cookie {
            name: "session".into(),
            value: "1".into(),
            domain: "app.test".into(),
            path: "/".into(),
            secure: false,
            same_site: Some(SameSite::Lax),
            ..Default::default()
        },
        Cookie {
            name: "chip".into(),
            value: "p".into(),
            domain: "embed.test".into(),
            path: "/".into(),
            secure: true,
            same_site: Some(SameSite::None),
            partition_key: Some(PartitionKey {
                top_level_site: "https://app.test".into(),
                has_cross_site_ancestor: true,
            }),
            ..Default::default()
        },
    ];
    let typed = JsValue::Object(vec![
        ("id".into(), JsValue::Number(JsNumber(7.0))),
        ("when".into(), JsValue::Date(JsNumber(1_700_000_000_123.0))),
        (
            "big".into(),
            JsValue::BigInt("-12345678901234567890".into()),
        ),
        ("nan".into(), JsValue::Number(JsNumber(f64::NAN))),
        ("negz".into(), JsValue::Number(JsNumber(-0.0))),
        (
            "re".into(),
            JsValue::RegExp(JsRegExp {
                source: "a+".into(),
                flags: "gi".into(),
            }),
        ),
        (
            "f64".into(),
            JsValue::TypedArray(JsTypedArray {
                kind: "Float64Array".into(),
                bytes: Bytes(1.5f64.to_le_bytes().to_vec()),
            }),
        ),
        (
            "nested".into(),
            JsValue::Array(vec![JsValue::Null, JsValue::String("s".into())]),
        ),
    ]);
    s.origins = vec![OriginState {
        origin: "https://app.test".into(),
        local_storage: vec![
            StorageItem {
                key: "token".into(),
                value: "abc".into(),
            },
            StorageItem {
                key: "user".into(),
                value: "{\"name\":\"Ada\"}".into(),
            },
        ],
        indexed_db: vec![IdbDatabase {
            name: "appdb".into(),
            version: 4,
            object_stores: vec![
                IdbObjectStore {
                    name: "plain".into(),
                    auto_increment: true,
                    records: vec![
                        IdbRecord {
                            key: JsValue::Number(JsNumber(1.0)),
                            value: JsValue::Object(vec![
                                ("z".into(), JsValue::Number(JsNumber(1.0))),
                                ("a".into(), JsValue::Bool(true)),
                            ]),
                        },
                        IdbRecord {
                            key: JsValue::Number(JsNumber(2.0)),
                            value: JsValue::String("two".into()),
                        },
                    ],
                    ..Default::default()
                },
                IdbObjectStore {
                    name: "typed".into(),
                    key_path: Some(KeyPath::Single("id".into())),
                    indexes: vec![IdbIndex {
                        name: "byWhen".into(),
                        key_path: KeyPath::Compound(vec!["when".into(), "id".into()]),
                        unique: true,
                        multi_entry: false,
                    }],
                    records: vec![IdbRecord {
                        key: JsValue::Number(JsNumber(7.0)),
                        value: typed,
                    }],
                    ..Default::default()
                },
            ],
        }],
    }];
    s
}

#[test]
fn playwright_and_chromium_accept_and_give_back_our_storage_state() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/playwright");
    if !dir.join("node_modules/playwright-core").is_dir() {
        // CI must run it (.ci/setup installs it); elsewhere say why it is skipped.
        assert!(
            std::env::var_os("CI").is_none(),
            "playwright-core is not installed: run `bash .ci/setup` (it runs `npm ci` in {})",
            dir.display()
        );
        eprintln!("skipped: run `bash .ci/setup` to install playwright-core for this test");
        return;
    }
    let s = state();
    let (json, warnings) = to_playwright(&s);
    assert!(warnings.is_empty(), "{warnings:?}");
    let tmp = tempfile::tempdir().unwrap();
    let (input, output) = (tmp.path().join("in.json"), tmp.path().join("out.json"));
    std::fs::write(&input, &json).unwrap();
    let out = Command::new("node")
        .arg(dir.join("check.mjs"))
        .arg(&input)
        .arg(&output)
        .current_dir(&dir)
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "playwright failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back_json = std::fs::read_to_string(&output).unwrap();
    let (mut back, w) = from_playwright(&back_json, "pw", 1).unwrap();
    assert!(w.is_empty(), "{w:?}");
    // Chromium may list cookies and databases in another order.
    let key = |c: &Cookie| (c.domain.clone(), c.name.clone());
    back.cookies.sort_by_key(key);
    let mut want = s.clone();
    want.cookies.sort_by_key(key);
    for o in back.origins.iter_mut().chain(want.origins.iter_mut()) {
        for db in &mut o.indexed_db {
            db.object_stores.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }
    assert_eq!(back, want, "Playwright gave back:\n{back_json}");
}
