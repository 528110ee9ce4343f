//! Round trips and tampering through the public API.

use std::io::Cursor;

use sessbundle::keys::SeededRandom;
use sessbundle::records::normalize_cookie_order;
use sessbundle::sample::session_like;
use sessbundle::*;

fn fast() -> SealOptions {
    SealOptions {
        argon2: Argon2Params {
            m_kib: 64,
            t: 1,
            p: 1,
        },
        created_ms: 1,
        ..Default::default()
    }
}

fn seal_bytes(state: &SessionState, unlocks: &[Unlock], seed: &[u8]) -> Vec<u8> {
    let mut rng = SeededRandom::new(seed);
    seal_with(state, Vec::new(), unlocks, fast(), &mut rng)
        .unwrap()
        .0
}

fn pw(s: &str) -> Unlock {
    Unlock::Passphrase(Passphrase::new(s))
}

#[test]
fn round_trip_with_passphrase_and_key_slots() {
    let mut s = session_like(1, 12, 600_000);
    let key = SymmetricKey::generate(&mut SeededRandom::new(b"k"));
    let b = seal_bytes(&s, &[pw("correct horse"), Unlock::Key(key.clone())], b"x");
    normalize_cookie_order(&mut s);
    assert_eq!(unseal(Cursor::new(&b), &pw("correct horse")).unwrap(), s);
    assert_eq!(unseal(Cursor::new(&b), &Unlock::Key(key)).unwrap(), s);
    let e = unseal(Cursor::new(&b), &pw("wrong")).unwrap_err();
    assert_eq!(e.outcome(), "no_matching_key");
    assert!(e.is_auth_failure());
}

#[test]
fn secrets_are_not_in_the_bundle_bytes() {
    let s = session_like(2, 3, 50_000);
    let b = seal_bytes(&s, &[pw("p")], b"y");
    for c in &s.cookies {
        assert!(!b.windows(c.value.len()).any(|w| w == c.value.as_bytes()));
    }
    let needle = b"wizard.step";
    assert!(!b.windows(needle.len()).any(|w| w == needle));
}

#[test]
fn every_truncation_and_flip_in_a_small_bundle_is_rejected() {
    let s = session_like(3, 2, 3_000);
    let b = seal_bytes(&s, &[pw("p")], b"z");
    for cut in (0..b.len()).step_by(97) {
        assert!(
            unseal(Cursor::new(&b[..cut]), &pw("p")).is_err(),
            "truncated at {cut}"
        );
    }
    for i in (0..b.len()).step_by(13) {
        let mut t = b.clone();
        t[i] ^= 0x20;
        assert!(unseal(Cursor::new(&t), &pw("p")).is_err(), "flip at {i}");
    }
}

#[test]
fn large_records_dedup_and_stream() {
    let mut s = session_like(4, 2, 4_000_000);
    // The same big origin twice under two names: identical chunks are stored once.
    let mut twin = s.origins[0].clone();
    twin.origin = "https://twin.example".into();
    s.origins.push(twin);
    let b = seal_bytes(&s, &[pw("p")], b"w");
    let mut r = BundleReader::open(Cursor::new(&b), &pw("p")).unwrap();
    let m = r.manifest().clone();
    let refs: usize = m.records.iter().map(|r| r.chunks.len()).sum();
    assert!(
        refs > m.chunks.len(),
        "{refs} refs, {} chunks",
        m.chunks.len()
    );
    let mut n = 0;
    r.for_each_record(|_| {
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(n, m.records.len());
}

#[test]
fn rekey_keeps_the_payload_and_changes_who_can_open() {
    let s = session_like(5, 2, 10_000);
    let b = seal_bytes(&s, &[pw("old")], b"r");
    let out = sessbundle::rekey::rekey(
        Cursor::new(&b),
        &pw("old"),
        &[pw("new")],
        Argon2Params {
            m_kib: 64,
            t: 1,
            p: 1,
        },
        Vec::new(),
        &mut SeededRandom::new(b"r2"),
    )
    .unwrap();
    assert!(unseal(Cursor::new(&out), &pw("old")).is_err());
    let mut s2 = s.clone();
    normalize_cookie_order(&mut s2);
    assert_eq!(unseal(Cursor::new(&out), &pw("new")).unwrap(), s2);
    // Payload bytes are unchanged.
    let tail = 4096.min(b.len() / 2);
    assert_eq!(b[b.len() - tail..], out[out.len() - tail..]);
}

#[test]
fn rekey_refuses_more_slots_than_a_reader_accepts() {
    let s = session_like(1, 1, 100);
    let b = seal_bytes(&s, &[pw("old")], b"r");
    let many: Vec<_> = (0..17).map(|i| pw(&format!("k{i}"))).collect();
    let fast = Argon2Params {
        m_kib: 64,
        t: 1,
        p: 1,
    };
    let e = sessbundle::rekey::rekey(
        Cursor::new(&b),
        &pw("old"),
        &many,
        fast,
        Vec::new(),
        &mut SeededRandom::new(b"r3"),
    )
    .expect_err("17 slots would make a bundle no reader opens");
    assert!(e.to_string().contains("at most 16 keys"), "{e}");
    // 16 is still fine, and the result opens (a reader tries at most 4
    // passphrase slots, so use the first).
    let out = sessbundle::rekey::rekey(
        Cursor::new(&b),
        &pw("old"),
        &many[..16],
        fast,
        Vec::new(),
        &mut SeededRandom::new(b"r4"),
    )
    .unwrap();
    assert!(unseal(Cursor::new(&out), &pw("k0")).is_ok());
}

#[test]
fn signatures_embedded_and_detached() {
    let dir = std::env::temp_dir().join(format!("sb-sig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let s = session_like(6, 2, 10_000);
    let path = dir.join("a.sessbundle");
    let key = SigningKey::generate(&mut SeededRandom::new(b"sig"));
    let other = SigningKey::generate(&mut SeededRandom::new(b"other"));
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let mut rng = SeededRandom::new(b"s");
    seal_with(&s, &mut f, &[pw("p")], fast(), &mut rng).unwrap();
    sessbundle::sign::append_embedded(&mut f, &key, "alice").unwrap();
    drop(f);
    let v = sessbundle::sign::verify_file(&path, &key.public()).unwrap();
    assert_eq!(v.source, sessbundle::sign::SignatureSource::Embedded);
    assert!(v.comment.contains("signer:alice"));
    // The signed bundle still opens.
    assert!(unseal(std::fs::File::open(&path).unwrap(), &pw("p")).is_ok());
    // Another key: no signature by it, until a detached one is added.
    assert_eq!(
        sessbundle::sign::verify_file(&path, &other.public())
            .unwrap_err()
            .outcome(),
        "no_signature"
    );
    sessbundle::sign::sign_detached(&path, &other, "bob").unwrap();
    let v = sessbundle::sign::verify_file(&path, &other.public()).unwrap();
    assert_eq!(v.source, sessbundle::sign::SignatureSource::Detached);
    // Tamper with one payload byte: both fail.
    let mut b = std::fs::read(&path).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    std::fs::write(&path, &b).unwrap();
    assert_eq!(
        sessbundle::sign::verify_file(&path, &key.public())
            .unwrap_err()
            .outcome(),
        "bad_signature"
    );
    assert_eq!(
        sessbundle::sign::verify_file(&path, &other.public())
            .unwrap_err()
            .outcome(),
        "bad_signature"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
