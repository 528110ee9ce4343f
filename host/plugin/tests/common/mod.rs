//! Shared test helpers: building the wasm plugins (once per test binary,
//! via `plugins/build.sh`) and small fixtures.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use sessbundle::state::*;
use sesshost_plugin::{Runtime, RuntimeConfig};

/// `plugins/target/wasm32-wasip2/release/NAME.wasm`, built on first use.
pub fn wasm(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
        let st = std::process::Command::new(root.join("build.sh"))
            .arg("--quiet")
            .status()
            .expect("cannot run plugins/build.sh (needs `rustup target add wasm32-wasip2`)");
        assert!(st.success(), "plugins/build.sh failed");
        root.join("target/wasm32-wasip2/release")
    });
    let p = dir.join(format!("{name}.wasm"));
    assert!(p.exists(), "{} missing after plugins/build.sh", p.display());
    p
}

/// A runtime with a compiled-component cache shared by all tests (debug
/// builds of Cranelift compile slowly; the cache makes that once per wasm).
pub fn runtime() -> Runtime {
    runtime_with(RuntimeConfig::default())
}

/// Tests that are not about deadlines get 10 s per call: debug builds on a
/// machine shared with other compiles can be slow.
pub fn runtime_with(mut cfg: RuntimeConfig) -> Runtime {
    cfg.limits.deadline = cfg.limits.deadline.max(std::time::Duration::from_secs(10));
    if cfg.cache_dir.is_none() {
        cfg.cache_dir = Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache"));
    }
    Runtime::new(cfg).expect("runtime")
}

pub fn cookie(domain: &str, name: &str, value: &str) -> Cookie {
    Cookie {
        name: name.into(),
        value: value.into(),
        domain: domain.into(),
        path: "/".into(),
        ..Default::default()
    }
}

/// A session with secrets in every place redact looks.
pub fn sample_state() -> SessionState {
    let mut s = SessionState::new("sample", 1_700_000_000_000);
    s.cookies = vec![
        cookie(".shop.example", "sessionid", "S3CRET-SID"),
        cookie(".shop.example", "theme", "dark"),
        cookie("bank.example", "auth_token", "S3CRET-AUTH"),
        cookie("bank.example", "lang", "en"),
        cookie(".news.example", "X-Api-Key", "S3CRET-KEY"),
    ];
    s.origins = vec![
        OriginState {
            origin: "https://shop.example".into(),
            local_storage: vec![
                StorageItem {
                    key: "cart".into(),
                    value: "3 items".into(),
                },
                StorageItem {
                    key: "refreshToken".into(),
                    value: "S3CRET-RT".into(),
                },
            ],
            indexed_db: vec![IdbDatabase {
                name: "app".into(),
                version: 1,
                object_stores: vec![IdbObjectStore {
                    name: "users".into(),
                    records: vec![IdbRecord {
                        key: JsValue::Number(JsNumber(1.0)),
                        value: JsValue::Object(vec![
                            ("name".into(), JsValue::String("ann".into())),
                            ("password".into(), JsValue::String("S3CRET-PW".into())),
                        ]),
                    }],
                    ..Default::default()
                }],
            }],
        },
        OriginState {
            origin: "https://bank.example".into(),
            local_storage: vec![StorageItem {
                key: "ssn".into(),
                value: "S3CRET-SSN".into(),
            }],
            ..Default::default()
        },
    ];
    s.tabs = vec![Tab {
        url: "https://shop.example/cart?item=4&token=S3CRET-URL#top".into(),
        title: "Cart".into(),
        session_storage: vec![OriginStorage {
            origin: "https://shop.example".into(),
            items: vec![
                StorageItem {
                    key: "csrf_secret".into(),
                    value: "S3CRET-CSRF".into(),
                },
                StorageItem {
                    key: "step".into(),
                    value: "2".into(),
                },
            ],
        }],
        history: vec![],
        current_index: 0,
    }];
    s
}

/// Every secret value planted by [`sample_state`].
pub const SECRETS: &[&str] = &[
    "S3CRET-SID",
    "S3CRET-AUTH",
    "S3CRET-KEY",
    "S3CRET-RT",
    "S3CRET-PW",
    "S3CRET-SSN",
    "S3CRET-URL",
    "S3CRET-CSRF",
];

pub fn json(s: &SessionState) -> String {
    serde_json::to_string(s).unwrap()
}
