//! state_json: unseal output byte-identical to the first CLI's, the same
//! acceptance as `read_state` (import), inspect sizes, seal_from_json ==
//! seal of the parsed state.

use std::io::{Cursor, Write};
use std::path::Path;

use sessbundle::keys::OsRandom;
use sessbundle::records::{MetaRecord, RecordKind};
use sessbundle::sample::session_like;
use sessbundle::state::{Cookie, OriginState, Tab};
use sessbundle::state_json::{inspect, seal_from_json, unseal_to_json};
use sessbundle::{BundleReader, BundleWriter, SealOptions, SessionState, SymmetricKey, Unlock};

fn key() -> Unlock {
    Unlock::Key(SymmetricKey::generate(&mut OsRandom))
}

fn seal(s: &SessionState, u: &Unlock) -> Vec<u8> {
    sessbundle::seal(
        s,
        Vec::new(),
        std::slice::from_ref(u),
        SealOptions::default(),
    )
    .unwrap()
    .0
}

/// The JSON writer `host unseal` had before state_json (kept verbatim as
/// the reference: decode each record, print it).
fn old_unseal(b: &[u8], u: &Unlock) -> Vec<u8> {
    let mut r = BundleReader::open(Cursor::new(b), u).unwrap();
    let mut w = Vec::new();
    let mut section: Option<RecordKind> = None;
    let mut first = true;
    r.for_each_record(|rec| {
        if rec.kind == RecordKind::Meta {
            let m: MetaRecord = rmp_serde::from_slice(&rec.body).unwrap();
            write!(w, "{{\n\"meta\": ").unwrap();
            serde_json::to_writer_pretty(&mut w, &m.meta).unwrap();
            if !m.extra.is_empty() {
                write!(w, ",\n\"extra\": ").unwrap();
                serde_json::to_writer_pretty(&mut w, &m.extra).unwrap();
            }
            return Ok(());
        }
        if section != Some(rec.kind) {
            if section.is_some() {
                write!(w, "\n]").unwrap();
            }
            let name = match rec.kind {
                RecordKind::Cookies => "cookies",
                RecordKind::Origin => "origins",
                _ => "tabs",
            };
            write!(w, ",\n\"{name}\": [").unwrap();
            section = Some(rec.kind);
            first = true;
        }
        let mut item = |j: String| {
            writeln!(w, "{}", if first { "" } else { "," }).unwrap();
            first = false;
            w.extend_from_slice(j.as_bytes());
        };
        match rec.kind {
            RecordKind::Cookies => {
                for c in rmp_serde::from_slice::<Vec<Cookie>>(&rec.body).unwrap() {
                    item(serde_json::to_string(&c).unwrap());
                }
            }
            RecordKind::Origin => item(
                serde_json::to_string(&rmp_serde::from_slice::<OriginState>(&rec.body).unwrap())
                    .unwrap(),
            ),
            _ => item(
                serde_json::to_string(&rmp_serde::from_slice::<Tab>(&rec.body).unwrap()).unwrap(),
            ),
        }
        Ok(())
    })
    .unwrap();
    if section.is_some() {
        write!(w, "\n]").unwrap();
    }
    writeln!(w, "\n}}").unwrap();
    w
}

fn new_unseal(b: &[u8], u: &Unlock) -> sessbundle::Result<(Vec<u8>, u64)> {
    let mut r = BundleReader::open(Cursor::new(b), u)?;
    let mut out = Vec::new();
    let rep = unseal_to_json(&mut r, &mut out)?;
    Ok((out, rep.json_bytes))
}

fn samples() -> Vec<SessionState> {
    let mut with_extra = session_like(7, 5, 300_000);
    with_extra
        .extra
        .entry("workflow".into())
        .or_default()
        .insert("taskId".into(), "42".into());
    vec![
        SessionState::new("empty", 1),
        session_like(1, 1, 2_000),
        session_like(2, 20, 600_000),
        with_extra,
    ]
}

#[test]
fn unseal_output_is_byte_identical_to_the_old_cli_and_parses_back() {
    let u = key();
    for s in samples() {
        let b = seal(&s, &u);
        let (new, n) = new_unseal(&b, &u).unwrap();
        assert_eq!(new, old_unseal(&b, &u), "state {}", s.meta.name);
        assert_eq!(n, new.len() as u64);
        let mut want = s.clone();
        sessbundle::records::normalize_cookie_order(&mut want);
        assert_eq!(serde_json::from_slice::<SessionState>(&new).unwrap(), want);
    }
}

/// Records `import` (read_state) refuses: the old CLI printed them anyway.
#[test]
fn unseal_refuses_what_import_refuses() {
    let u = key();
    let meta = rmp_serde::to_vec_named(&MetaRecord {
        meta: SessionState::new("x", 1).meta,
        extra: Default::default(),
    })
    .unwrap();
    let origin = |o: &str| {
        rmp_serde::to_vec_named(&OriginState {
            origin: o.into(),
            ..Default::default()
        })
        .unwrap()
    };
    let tab = rmp_serde::to_vec_named(&Tab::default()).unwrap();
    type Recs<'a> = Vec<(RecordKind, &'a str, Vec<u8>)>;
    let cases: Vec<(&str, Recs)> = vec![
        (
            "origin key differs from its body",
            vec![
                (RecordKind::Meta, "", meta.clone()),
                (
                    RecordKind::Origin,
                    "https://a.test",
                    origin("https://b.test"),
                ),
            ],
        ),
        (
            "tab key is not its position",
            vec![
                (RecordKind::Meta, "", meta.clone()),
                (RecordKind::Tab, "1", tab.clone()),
            ],
        ),
        (
            "origin body does not decode",
            vec![
                (RecordKind::Meta, "", meta.clone()),
                (RecordKind::Origin, "https://a.test", vec![0xc1]),
            ],
        ),
    ];
    for (what, recs) in cases {
        let mut w = BundleWriter::new(
            Vec::new(),
            std::slice::from_ref(&u),
            SealOptions::default(),
            &mut OsRandom,
        )
        .unwrap();
        for (k, key, body) in &recs {
            w.add_record(*k, key, body).unwrap();
        }
        let b = w.finish().unwrap().0;
        let import = BundleReader::open(Cursor::new(&b), &u)
            .unwrap()
            .read_state();
        assert!(import.is_err(), "{what}: import accepted it");
        let e = new_unseal(&b, &u).unwrap_err();
        assert_eq!(e.outcome(), "bad_state", "{what}: {e}");
        let mut r = BundleReader::open(Cursor::new(&b), &u).unwrap();
        assert!(inspect(&mut r).is_err(), "{what}: inspect accepted it");
    }
}

#[test]
fn inspect_counts_match_the_unsealed_output() {
    let u = key();
    let s = session_like(3, 12, 400_000);
    let b = seal(&s, &u);
    let (out, _) = new_unseal(&b, &u).unwrap();
    let mut r = BundleReader::open(Cursor::new(&b), &u).unwrap();
    let i = inspect(&mut r).unwrap();
    assert_eq!(i.content.json_bytes, out.len() as u64);
    assert_eq!(i.content.cookies, s.cookies.len());
    assert_eq!(i.content.origins.len(), 12);
    assert_eq!(i.content.tabs, s.tabs.len());
    let decoded: u64 = sessbundle::records::split(&s)
        .iter()
        .map(|r| r.body.len() as u64)
        .sum();
    assert_eq!(i.content.record_bytes, decoded);
}

fn seal_json(json: &[u8], u: &Unlock) -> sessbundle::Result<Vec<u8>> {
    let w = BundleWriter::new(
        Vec::new(),
        std::slice::from_ref(u),
        SealOptions::default(),
        &mut OsRandom,
    )?;
    Ok(seal_from_json(json, Path::new("state.json"), w)?.0)
}

#[test]
fn seal_from_json_keeps_the_state_in_any_field_order() {
    let u = key();
    for s in samples() {
        let mut want = s.clone();
        sessbundle::records::normalize_cookie_order(&mut want);
        let serde_order = serde_json::to_vec(&s).unwrap(); // extra last
        let cli_order = new_unseal(&seal(&s, &u), &u).unwrap().0; // extra first
        // Blanks everywhere: origins are walked, not split by pattern.
        let pretty = serde_json::to_vec_pretty(&s).unwrap();
        for json in [serde_order, cli_order, pretty] {
            let b = seal_json(&json, &u).unwrap();
            let back = BundleReader::open(Cursor::new(&b), &u)
                .unwrap()
                .read_state()
                .unwrap();
            assert_eq!(back, want);
            // Same records as sealing the parsed state.
            let a = BundleReader::open(Cursor::new(&b), &u).unwrap();
            let old = seal(&s, &u);
            let o = BundleReader::open(Cursor::new(&old), &u).unwrap();
            let lens = |m: &sessbundle::manifest::Manifest| {
                m.records
                    .iter()
                    .map(|r| (r.kind, r.key.clone(), r.len))
                    .collect::<Vec<_>>()
            };
            assert_eq!(lens(a.manifest()), lens(o.manifest()));
        }
    }
}

#[test]
fn seal_from_json_errors_are_serdes() {
    let u = key();
    let cases = [
        r#"{"meta":{"name":"a","createdAt":0,"updatedAt":0},"cookeis":[]}"#,
        r#"{"meta":{"name":"a","createdAt":0,"updatedAt":0},"origins":[],"origins":[]}"#,
        r#"{"origins":[{"origin":"https://a"}]}"#,
        r#"{"meta":{"name":"a","createdAt":0,"updatedAt":0},"origins":[{"origin":1}]}"#,
        r#"{"meta":{"name":"a","createdAt":0,"updatedAt":0}} x"#,
        r#"{"meta":{"name":"a","createdAt":0,"updatedAt":0},"origins":null}"#,
    ];
    for c in cases {
        let want = serde_json::from_str::<SessionState>(c)
            .unwrap_err()
            .to_string();
        let got = seal_json(c.as_bytes(), &u).unwrap_err().to_string();
        assert!(got.contains(&want), "{c}: {got} vs {want}");
    }
}
