use super::{origin_to_json, origin_to_msgpack};
use crate::format::to_msgpack;
use crate::state::*;

fn every_value() -> Vec<JsValue> {
    let s = |x: &str| JsValue::String(x.into());
    vec![
        JsValue::Undefined,
        JsValue::Null,
        JsValue::Bool(true),
        JsValue::Bool(false),
        JsValue::Number(JsNumber(0.0)),
        JsValue::Number(JsNumber(-0.0)),
        JsValue::Number(JsNumber(f64::NAN)),
        JsValue::Number(JsNumber(f64::INFINITY)),
        JsValue::Number(JsNumber(f64::NEG_INFINITY)),
        JsValue::Number(JsNumber(1e300)),
        JsValue::Number(JsNumber(-1.5e-300)),
        JsValue::Number(JsNumber(123456789.125)),
        JsValue::Number(JsNumber(9007199254740993.0)),
        JsValue::BigInt("-123456789012345678901234567890".into()),
        s(""),
        s("quote \" backslash \\ slash / nl \n tab \t cr \r bell \u{7} del \u{7f} é ☃ 🎉 \u{0}"),
        s(&"x".repeat(40)),
        s(&"y".repeat(300)),
        s(&"z".repeat(70_000)),
        JsValue::Date(JsNumber(1.7e12)),
        JsValue::Date(JsNumber(f64::NAN)),
        JsValue::RegExp(JsRegExp {
            source: "^a+$".into(),
            flags: "gi".into(),
        }),
        JsValue::ArrayBuffer(Bytes(vec![])),
        JsValue::ArrayBuffer(Bytes((0..=255).collect())),
        JsValue::ArrayBuffer(Bytes(vec![7; 70_000])),
        JsValue::TypedArray(JsTypedArray {
            kind: "Float64Array".into(),
            bytes: Bytes(vec![1, 2, 3, 4, 5, 6, 7, 8]),
        }),
        JsValue::Blob(JsBlob {
            mime: "text/plain".into(),
            bytes: Bytes(b"hi".to_vec()),
        }),
        JsValue::File(JsFile {
            name: "a.txt".into(),
            mime: String::new(),
            last_modified: JsNumber(1.0),
            bytes: Bytes(b"abc".to_vec()),
        }),
        JsValue::Array(vec![]),
        JsValue::Array(
            (0..20)
                .map(|i| JsValue::Number(JsNumber(i as f64)))
                .collect(),
        ),
        JsValue::Object(vec![("k".into(), s("v")), ("".into(), JsValue::Null)]),
        JsValue::Map(vec![(s("a"), JsValue::Set(vec![s("b")]))]),
        JsValue::Set(vec![]),
    ]
}

fn rich_origin() -> OriginState {
    let vals = every_value();
    OriginState {
        origin: "https://a.example:8443".into(),
        local_storage: vec![
            StorageItem {
                key: "k\"1".into(),
                value: "{\"a\":[1,2]}".into(),
            },
            StorageItem {
                key: String::new(),
                value: String::new(),
            },
        ],
        indexed_db: vec![
            IdbDatabase {
                name: "empty".into(),
                version: 0,
                object_stores: vec![],
            },
            IdbDatabase {
                name: "db".into(),
                version: u64::MAX,
                object_stores: vec![
                    IdbObjectStore {
                        name: "s1".into(),
                        key_path: Some(KeyPath::Compound(vec!["a".into(), "b.c".into()])),
                        auto_increment: true,
                        key_generator: Some(300),
                        indexes: vec![IdbIndex {
                            name: "i".into(),
                            key_path: KeyPath::Single("x".into()),
                            unique: true,
                            multi_entry: false,
                        }],
                        records: vals
                            .iter()
                            .enumerate()
                            .map(|(i, v)| IdbRecord {
                                key: JsValue::Number(JsNumber(i as f64)),
                                value: v.clone(),
                            })
                            .collect(),
                    },
                    IdbObjectStore {
                        name: "s2".into(),
                        key_path: Some(KeyPath::Compound(vec![])),
                        ..Default::default()
                    },
                ],
            },
        ],
    }
}

fn origins() -> Vec<OriginState> {
    let mut v = vec![
        rich_origin(),
        OriginState {
            origin: "https://bare".into(),
            ..Default::default()
        },
    ];
    v.extend(crate::sample::session_like(7, 5, 200_000).origins);
    // Many items: 16-bit and 32-bit array headers.
    v.push(OriginState {
        origin: "https://many".into(),
        local_storage: (0..70_000)
            .map(|i| StorageItem {
                key: i.to_string(),
                value: "v".into(),
            })
            .collect(),
        ..Default::default()
    });
    v
}

#[test]
fn both_ways_match_serde_byte_for_byte() {
    for o in origins() {
        let json = serde_json::to_vec(&o).unwrap();
        let mp = to_msgpack(&o);
        let mut body = Vec::new();
        let origin = origin_to_msgpack(&json, &mut body);
        assert_eq!(origin.as_deref(), Some(o.origin.as_str()), "{}", o.origin);
        assert!(body == mp, "msgpack differs for {}", o.origin);
        let mut text = b"prefix".to_vec();
        let counts = origin_to_json(&mp, &o.origin, &mut text).expect("fast unseal");
        if text[6..] != json[..] {
            let at = text[6..]
                .iter()
                .zip(&json)
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "JSON differs for {} at {at} ({} vs {} bytes, ends {:?}): {:?} vs {:?}",
                o.origin,
                text.len() - 6,
                json.len(),
                String::from_utf8_lossy(&text[text.len().saturating_sub(60)..]),
                String::from_utf8_lossy(
                    &text[6 + at.saturating_sub(40)..(6 + at + 40).min(text.len())]
                ),
                String::from_utf8_lossy(&json[at.saturating_sub(40)..(at + 40).min(json.len())])
            );
        }
        assert_eq!(counts.local_storage_items, o.local_storage.len());
        assert_eq!(counts.indexeddb_databases, o.indexed_db.len());
        let recs: usize = o
            .indexed_db
            .iter()
            .flat_map(|d| &d.object_stores)
            .map(|s| s.records.len())
            .sum();
        assert_eq!(counts.indexeddb_records, recs);
        // Pretty-printed JSON (blanks everywhere) is canonical too.
        let pretty = serde_json::to_vec_pretty(&o).unwrap();
        assert_eq!(
            origin_to_msgpack(&pretty, &mut body).as_deref(),
            Some(&*o.origin)
        );
        assert!(body == mp);
    }
}

#[test]
fn escapes_and_numbers_parse_as_serde_does() {
    let json = br#"{"origin":"https://\u0061\/b","localStorage":[{"key":"\ud83c\udf89\t\"","value":"\u00e9"}],"indexedDB":[{"name":"d","version":7,"objectStores":[{"name":"s","autoIncrement":false,"records":[{"key":{"t":"number","v":-12},"value":{"t":"date","v":1.5E+3}},{"key":{"t":"number","v":"-0"},"value":{"t":"number","v":1e-400}},{"key":{"t":"number","v":123456789012345678},"value":{"t":"undefined"}}]}]}]}"#;
    let o: OriginState = serde_json::from_slice(json).unwrap();
    let mut body = Vec::new();
    assert_eq!(
        origin_to_msgpack(json, &mut body).as_deref(),
        Some("https://a/b")
    );
    assert!(body == to_msgpack(&o));
}

#[test]
fn gives_up_on_what_is_not_canonical() {
    let o = r#"{"origin":"https://a","#;
    for json in [
        r#"{"localStorage":[{"key":"a","value":"b"}],"origin":"https://a"}"#.to_string(),
        format!("{o}\"localStorage\":[]}}"),
        format!("{o}\"localStorage\":null}}"),
        format!("{o}\"extra\":1}}"),
        format!("{o}\"localStorage\":[{{\"value\":\"b\",\"key\":\"a\"}}]}}"),
        format!("{o}\"localStorage\":[{{\"key\":\"a\",\"value\":\"b\",\"key\":\"c\"}}]}}"),
        format!("{o}\"indexedDB\":[{{\"name\":\"d\",\"version\":1.0}}]}}"),
        format!("{o}\"indexedDB\":[{{\"name\":\"d\",\"version\":-1}}]}}"),
        format!("{o}\"indexedDB\":[{{\"name\":\"d\",\"version\":01}}]}}"),
        format!("{o}\"localStorage\":[{{\"key\":\"\\ud800\",\"value\":\"b\"}}]}}"),
        format!("{o}\"localStorage\":[{{\"key\":\"a\u{1}\",\"value\":\"b\"}}]}}"),
        r#"{"o\u0072igin":"https://a"}"#.to_string(),
        r#"{"origin":"https://a"} x"#.to_string(),
        r#"{"origin":"https://a""#.to_string(),
    ] {
        assert_eq!(
            origin_to_msgpack(json.as_bytes(), &mut Vec::new()),
            None,
            "{json}"
        );
    }
    let deep = format!(
        "{o}\"indexedDB\":[{{\"name\":\"d\",\"version\":1,\"objectStores\":[{{\"name\":\"s\",\"autoIncrement\":false,\"records\":[{{\"key\":{{\"t\":\"null\"}},\"value\":{}{{\"t\":\"null\"}}{}}}]}}]}}]}}",
        "{\"t\":\"array\",\"v\":[".repeat(50),
        "]}".repeat(50)
    );
    assert!(serde_json::from_str::<OriginState>(&deep).is_ok());
    assert_eq!(origin_to_msgpack(deep.as_bytes(), &mut Vec::new()), None);
    // msgpack: wrong key, trailing bytes, a nil where a list goes.
    let mp = to_msgpack(&rich_origin());
    let mut out = Vec::new();
    assert!(origin_to_json(&mp, "https://other", &mut out).is_none());
    let mut long = mp.clone();
    long.push(0xc0);
    assert!(origin_to_json(&long, "https://a.example:8443", &mut out).is_none());
    let bare = to_msgpack(&OriginState {
        origin: "x".into(),
        ..Default::default()
    });
    let mut nil = bare.clone();
    nil[0] = 0x82;
    nil.extend_from_slice(&[0xac]);
    nil.extend_from_slice(b"localStorage");
    nil.push(0xc0);
    assert!(origin_to_json(&nil, "x", &mut out).is_none());
    for cut in (0..mp.len()).step_by(97) {
        assert!(origin_to_json(&mp[..cut], "https://a.example:8443", &mut out).is_none());
    }
}

#[test]
fn find_special_agrees_with_a_byte_loop() {
    let naive = |s: &[u8]| s.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for len in 0..200 {
        for _ in 0..20 {
            let s: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Mostly plain text, sometimes a special or high byte.
                    match x % 40 {
                        0 => b'"',
                        1 => b'\\',
                        2 => (x >> 8) as u8 % 0x20,
                        3 => 0x80 | (x >> 8) as u8,
                        _ => b' ' + (x >> 8) as u8 % 90,
                    }
                })
                .collect();
            assert_eq!(super::find_special(&s), naive(&s), "{s:?}");
        }
    }
}
