//! Property tests: any state round-trips exactly; any single-byte change to
//! a bundle is rejected (never a silently different state).

use std::io::Cursor;

use proptest::prelude::*;
use sessbundle::keys::SeededRandom;
use sessbundle::records::normalize_cookie_order;
use sessbundle::state::*;
use sessbundle::*;

fn opts() -> SealOptions {
    SealOptions {
        argon2: Argon2Params {
            m_kib: 8,
            t: 1,
            p: 1,
        },
        created_ms: 0,
        ..Default::default()
    }
}

fn js_value() -> impl Strategy<Value = JsValue> {
    let leaf = prop_oneof![
        Just(JsValue::Undefined),
        Just(JsValue::Null),
        any::<bool>().prop_map(JsValue::Bool),
        any::<f64>().prop_map(|f| JsValue::Number(JsNumber(f))),
        "-?[0-9]{1,30}".prop_map(JsValue::BigInt),
        ".{0,20}".prop_map(JsValue::String),
        any::<f64>().prop_map(|f| JsValue::Date(JsNumber(f))),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| JsValue::ArrayBuffer(Bytes(b))),
        (
            proptest::collection::vec(any::<u8>(), 0..40),
            "[A-Z][a-z0-9]{2,12}"
        )
            .prop_map(|(b, kind)| JsValue::TypedArray(JsTypedArray {
                kind,
                bytes: Bytes(b)
            })),
        (
            proptest::collection::vec(any::<u8>(), 0..40),
            "[a-z]{0,10}/[a-z]{0,10}"
        )
            .prop_map(|(b, mime)| JsValue::Blob(JsBlob {
                mime,
                bytes: Bytes(b)
            })),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(JsValue::Array),
            proptest::collection::vec((".{0,8}", inner.clone()), 0..4).prop_map(JsValue::Object),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..3).prop_map(JsValue::Map),
            proptest::collection::vec(inner, 0..3).prop_map(JsValue::Set),
        ]
    })
}

fn cookie() -> impl Strategy<Value = Cookie> {
    (
        "[a-zA-Z0-9_]{1,12}",
        ".{0,40}",
        "\\.?[a-z]{1,8}\\.(com|org|test)",
        proptest::option::of(0f64..4e9),
        any::<(bool, bool)>(),
        proptest::option::of(prop_oneof![
            Just(SameSite::Strict),
            Just(SameSite::Lax),
            Just(SameSite::None)
        ]),
        proptest::option::of(("https://[a-z]{1,8}\\.com", any::<bool>())),
    )
        .prop_map(
            |(name, value, domain, expires, (http_only, secure), same_site, pk)| Cookie {
                name,
                value,
                domain,
                path: "/".into(),
                expires,
                http_only,
                secure,
                same_site,
                partition_key: pk.map(|(top_level_site, has_cross_site_ancestor)| PartitionKey {
                    top_level_site,
                    has_cross_site_ancestor,
                }),
                ..Default::default()
            },
        )
}

fn origin() -> impl Strategy<Value = OriginState> {
    (
        "https://[a-z]{1,10}\\.(com|dev)",
        proptest::collection::vec((".{0,12}", ".{0,60}"), 0..6),
        proptest::collection::vec((js_value(), js_value()), 0..4),
    )
        .prop_map(|(origin, ls, recs)| OriginState {
            origin,
            local_storage: ls
                .into_iter()
                .map(|(key, value)| StorageItem { key, value })
                .collect(),
            indexed_db: vec![IdbDatabase {
                name: "db".into(),
                version: 1,
                object_stores: vec![IdbObjectStore {
                    name: "s".into(),
                    key_path: None,
                    auto_increment: true,
                    key_generator: Some(7),
                    indexes: vec![],
                    records: recs
                        .into_iter()
                        .map(|(key, value)| IdbRecord { key, value })
                        .collect(),
                }],
            }],
        })
}

fn state() -> impl Strategy<Value = SessionState> {
    (
        ".{0,20}",
        any::<i64>(),
        proptest::collection::vec(cookie(), 0..8),
        proptest::collection::vec(origin(), 0..4),
        proptest::collection::vec(("https://[a-z]{1,8}\\.com/.{0,10}", ".{0,10}"), 0..3),
        proptest::collection::btree_map(
            "[a-z]{1,6}",
            proptest::collection::btree_map(".{0,6}", ".{0,20}", 0..3),
            0..3,
        ),
    )
        .prop_map(|(name, t, cookies, origins, tabs, extra)| {
            let mut s = SessionState::new(name, t);
            s.cookies = cookies;
            s.origins = origins;
            s.tabs = tabs
                .into_iter()
                .map(|(url, title)| Tab {
                    url,
                    title,
                    ..Default::default()
                })
                .collect();
            s.extra = extra;
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_state_round_trips(s in state(), seed in any::<u64>()) {
        let mut rng = SeededRandom::new(&seed.to_le_bytes());
        let pw = Unlock::Passphrase(Passphrase::new("p"));
        let (b, _) = seal_with(&s, Vec::new(), std::slice::from_ref(&pw), opts(), &mut rng).unwrap();
        let mut want = s.clone();
        normalize_cookie_order(&mut want);
        prop_assert_eq!(unseal(Cursor::new(&b), &pw).unwrap(), want.clone());
        // And through JSON, as `host seal`/`host unseal` do.
        let j = serde_json::to_string(&want).unwrap();
        prop_assert_eq!(serde_json::from_str::<SessionState>(&j).unwrap(), want);
    }

    #[test]
    fn any_byte_flip_is_rejected(s in state(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut rng = SeededRandom::new(b"flip");
        let pw = Unlock::Passphrase(Passphrase::new("p"));
        let (mut b, _) = seal_with(&s, Vec::new(), std::slice::from_ref(&pw), opts(), &mut rng).unwrap();
        let i = pos.index(b.len());
        b[i] ^= 1 << bit;
        prop_assert!(unseal(Cursor::new(&b), &pw).is_err(), "flip of bit {} at {} of {} accepted", bit, i, b.len());
    }
}
