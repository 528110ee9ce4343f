//! Recipient (x25519) slots, rekey_add, open_any and open_verified through
//! the public API.

use std::io::Cursor;

use sessbundle::keys::SeededRandom;
use sessbundle::records::normalize_cookie_order;
use sessbundle::sample::session_like;
use sessbundle::*;

fn fast() -> Argon2Params {
    Argon2Params {
        m_kib: 64,
        t: 1,
        p: 1,
    }
}

fn opts() -> SealOptions {
    SealOptions {
        argon2: fast(),
        created_ms: 1,
        ..Default::default()
    }
}

fn seal_to(state: &SessionState, to: &[SlotSpec], seed: &[u8]) -> Vec<u8> {
    seal_with(state, Vec::new(), to, opts(), &mut SeededRandom::new(seed))
        .unwrap()
        .0
}

fn pw(s: &str) -> Unlock {
    Unlock::Passphrase(Passphrase::new(s))
}

fn ids(n: usize) -> Vec<Identity> {
    let mut rng = SeededRandom::new(b"ids");
    (0..n).map(|_| Identity::generate(&mut rng)).collect()
}

#[test]
fn two_recipients_open_and_a_third_identity_is_an_auth_failure() {
    let s = session_like(2, 3, 5_000);
    let mut want = s.clone();
    normalize_cookie_order(&mut want);
    let [a, b, c]: [Identity; 3] = ids(3).try_into().unwrap();
    let bundle = seal_to(
        &s,
        &[
            SlotSpec::Recipient(a.public()),
            SlotSpec::Recipient(b.public()),
        ],
        b"r",
    );
    for id in [&a, &b] {
        let got = unseal(Cursor::new(&bundle), &Unlock::Identity(id.clone())).unwrap();
        assert_eq!(got, want);
    }
    let e = unseal(Cursor::new(&bundle), &Unlock::Identity(c)).unwrap_err();
    assert!(e.is_auth_failure(), "{e}");
    assert_eq!(e.outcome(), "no_matching_key");
    // A passphrase on a recipients-only bundle says which flag to pass.
    let e = unseal(Cursor::new(&bundle), &pw("x"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("--identity"), "{e}");
}

#[test]
fn slots_do_not_name_the_recipient() {
    let s = session_like(1, 1, 100);
    let a = &ids(1)[0];
    let one = seal_to(&s, &[SlotSpec::Recipient(a.public())], b"1");
    let two = seal_to(&s, &[SlotSpec::Recipient(a.public())], b"2");
    let h1 = format::Header::read_from(&mut &one[..]).unwrap();
    let h2 = format::Header::read_from(&mut &two[..]).unwrap();
    let pk = a.public();
    for b in [&one, &two] {
        let head = &b[..h1.len().max(h2.len())];
        assert!(
            !head.windows(32).any(|w| w == pk.as_bytes()),
            "the recipient's public key is in the header"
        );
    }
    let (format::Slot::X25519 { epk: e1, .. }, format::Slot::X25519 { epk: e2, .. }) =
        (&h1.slots[0], &h2.slots[0])
    else {
        panic!("not x25519 slots")
    };
    assert_ne!(e1, e2, "ephemeral keys must be fresh per slot");
}

#[test]
fn slot_tries_are_capped() {
    let s = session_like(1, 1, 100);
    let ids = ids(3);
    let to: Vec<SlotSpec> = ids
        .iter()
        .map(|i| SlotSpec::Recipient(i.public()))
        .collect();
    let b = seal_to(&s, &to, b"t");
    let last = Unlock::Identity(ids[2].clone());
    assert!(unseal(Cursor::new(&b), &last).is_ok());
    let limits = ReaderLimits {
        max_slot_tries: 2,
        ..Default::default()
    };
    let e = unseal_with(Cursor::new(&b), &last, &limits).unwrap_err();
    assert_eq!(e.outcome(), "no_matching_key", "{e}");
}

#[test]
fn rekey_add_keeps_old_slots_and_adds_a_recipient() {
    let s = session_like(3, 2, 2_000);
    let b = seal_with(
        &s,
        Vec::new(),
        &[pw("old")],
        opts(),
        &mut SeededRandom::new(b"k"),
    )
    .unwrap()
    .0;
    let id = &ids(1)[0];
    assert!(unseal(Cursor::new(&b), &Unlock::Identity(id.clone())).is_err());
    let out = rekey::rekey_add(
        Cursor::new(&b),
        &pw("old"),
        &[id.public()],
        fast(),
        Vec::new(),
        &mut SeededRandom::new(b"k2"),
    )
    .unwrap();
    assert!(unseal(Cursor::new(&out), &pw("old")).is_ok());
    assert!(unseal(Cursor::new(&out), &Unlock::Identity(id.clone())).is_ok());
    let tail = 1024.min(b.len() / 2);
    assert_eq!(
        b[b.len() - tail..],
        out[out.len() - tail..],
        "payload copied"
    );
    // The replacing rekey takes recipients too.
    let only = rekey::rekey(
        Cursor::new(&out),
        &Unlock::Identity(id.clone()),
        &[SlotSpec::Recipient(id.public())],
        fast(),
        Vec::new(),
        &mut SeededRandom::new(b"k3"),
    )
    .unwrap();
    assert!(unseal(Cursor::new(&only), &pw("old")).is_err());
    assert!(unseal(Cursor::new(&only), &Unlock::Identity(id.clone())).is_ok());
}

#[test]
fn open_any_tries_each_unlock() {
    let s = session_like(1, 1, 100);
    let b = seal_with(
        &s,
        Vec::new(),
        &[pw("p")],
        opts(),
        &mut SeededRandom::new(b"a"),
    )
    .unwrap()
    .0;
    let tries = [Unlock::Identity(ids(1).remove(0)), pw("nope"), pw("p")];
    assert!(BundleReader::open_any(Cursor::new(&b), &tries, &ReaderLimits::default()).is_ok());
    assert!(
        BundleReader::open_any(Cursor::new(&b), &tries[..2], &ReaderLimits::default()).is_err()
    );
}

#[test]
fn open_verified_reads_what_it_verified() {
    let s = session_like(4, 2, 3_000);
    let key = SigningKey::generate(&mut SeededRandom::new(b"sig"));
    let other = SigningKey::generate(&mut SeededRandom::new(b"other"));
    let mut f = Cursor::new(Vec::new());
    seal_with(&s, &mut f, &[pw("p")], opts(), &mut SeededRandom::new(b"v")).unwrap();
    let unsigned = f.get_ref().clone();
    sign::append_embedded(&mut f, &key, "alice").unwrap();
    let signed = f.into_inner();
    let l = ReaderLimits::default();
    let trusted = [other.public(), key.public()];
    let (mut r, who) =
        BundleReader::open_verified(Cursor::new(&signed), &pw("p"), &l, &trusted, None).unwrap();
    assert_eq!(who.public_key, key.public());
    assert!(who.verified.comment.contains("signer:alice"));
    assert!(r.read_state().is_ok());
    // Untrusted signer: no_signature, and nothing is read.
    let e =
        BundleReader::open_verified(Cursor::new(&signed), &pw("p"), &l, &[other.public()], None)
            .err()
            .unwrap();
    assert_eq!(e.outcome(), "no_signature");
    // One payload byte flipped: bad_signature before any key is tried.
    let mut bad = signed.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    let e = BundleReader::open_verified(Cursor::new(&bad), &pw("wrong"), &l, &trusted, None)
        .err()
        .unwrap();
    assert_eq!(e.outcome(), "bad_signature");
    // Detached: the embedded block moved to a .sig verifies the unsigned bytes.
    let block = BundleReader::open(Cursor::new(&signed), &pw("p"))
        .unwrap()
        .embedded_signature()
        .unwrap()
        .to_text();
    let (_, who) = BundleReader::open_verified(
        Cursor::new(&unsigned),
        &pw("p"),
        &l,
        &trusted,
        Some(block.as_bytes()),
    )
    .unwrap();
    assert_eq!(who.verified.source, sign::SignatureSource::Detached);
}

#[test]
fn identity_files_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let id = &ids(1)[0];
    let (sp, pp) = (d.path().join("id"), d.path().join("id.pub"));
    atomic::write_atomic(&sp, id.to_file_string().as_bytes(), 0o600).unwrap();
    atomic::write_atomic(&pp, id.public().to_file_string().as_bytes(), 0o644).unwrap();
    assert_eq!(Identity::read(&sp).unwrap().public(), id.public());
    assert_eq!(Recipient::read(&pp).unwrap(), id.public());
    assert!(Identity::read(&pp).is_err());
    assert!(Recipient::read(&sp).is_err());
}
