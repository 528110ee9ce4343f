//! The vectors added with format 1.1 and the reader limits: one per §10
//! outcome that had none, header edge cases, detached and stripped
//! signatures, recipients (x25519 slots), and one negative per reader cap.

use super::*;
use crate::format::{MAX_HEADER_LEN, make_slots};
use crate::manifest::{ChunkEntry, RecordEntry};
use crate::recipient;

/// Randomness that hands out fixed bytes (for the x25519 known answer).
struct Fixed(Vec<u8>);

impl Randomness for Fixed {
    fn fill(&mut self, buf: &mut [u8]) {
        let n = buf.len();
        buf.copy_from_slice(&self.0[..n]);
        self.0.drain(..n);
    }
}

/// SPEC.md §3.2 known answer: fixed identity and ephemeral secrets.
pub(super) fn x25519_kat(file_key: &[u8; 32], bundle_id: &[u8; 16]) -> Value {
    let id_secret: [u8; 32] = seq(0x70);
    let eph_secret: [u8; 32] = seq(0x90);
    let id = Identity::from_bytes(id_secret);
    let to = id.public();
    let (epk, wrapped) =
        recipient::wrap_to(&to, file_key, bundle_id, &mut Fixed(eph_secret.to_vec())).unwrap();
    let shared = curve25519_dalek::montgomery::MontgomeryPoint(*to.as_bytes())
        .mul_clamped(eph_secret)
        .to_bytes();
    let kek = recipient::slot_kek(&epk, to.as_bytes(), &shared);
    assert_eq!(
        recipient::unwrap_with(&id, &epk, &wrapped, bundle_id),
        Some(*file_key)
    );
    json!({
        "identity_secret": h(&id_secret), "identity_file": id.to_file_string(),
        "recipient": h(to.as_bytes()), "recipient_file": to.to_file_string(),
        "ephemeral_secret": h(&eph_secret), "epk": h(&epk),
        "shared": h(&shared),
        "kek": {"context": recipient::CTX_X25519_KEK, "input": "epk || recipient || shared", "output": h(&kek)},
        "file_key": h(file_key), "bundle_id": h(bundle_id),
        "wrapped": h(&wrapped)
    })
}

/// A payload plaintext with one raw chunk per record body, then `lie` to
/// change the (authenticated) manifest.
fn payload(
    file_key: &[u8; 32],
    bundle_id: [u8; 16],
    recs: &[(RecordKind, &str, Vec<u8>)],
    lie: impl FnOnce(&mut Manifest),
) -> Vec<u8> {
    let key = derive(CTX_CHUNK_ID, &[file_key]);
    let mut m = Manifest {
        bundle_id: Bin(bundle_id),
        schema: 1,
        created_ms: 1,
        chunks: vec![],
        records: vec![],
        sanitizers: vec![],
    };
    let mut region = Vec::new();
    for (i, (kind, k, body)) in recs.iter().enumerate() {
        m.chunks.push(ChunkEntry {
            id: Bin(chunk_id(&key, *kind, body)),
            kind: *kind as u8,
            codec: 0,
            len: body.len() as u32,
            stored: body.len() as u32,
        });
        m.records.push(RecordEntry {
            kind: *kind as u8,
            key: k.to_string(),
            chunks: vec![i as u32],
            len: body.len() as u64,
        });
        region.extend_from_slice(body);
    }
    lie(&mut m);
    let mb = to_msgpack(&m);
    [region, mb.clone(), (mb.len() as u64).to_be_bytes().to_vec()].concat()
}

fn meta_body() -> Vec<u8> {
    crate::records::split(&crate::SessionState::new("raw", 1))
        .remove(0)
        .body
}

fn cookie_body() -> Vec<u8> {
    let mut s = crate::SessionState::new("raw", 1);
    s.cookies.push(crate::state::Cookie {
        name: "sid".into(),
        value: "v".repeat(40),
        domain: "a.test".into(),
        path: "/".into(),
        ..Default::default()
    });
    crate::records::split(&s).remove(1).body
}

/// A bundle of a meta record and one cookies record whose chunk `lie` may
/// list several times.
fn repeated(seed: &[u8], times: usize) -> Vec<u8> {
    raw_bundle(seed, vec![], |k, id| {
        let recs = [
            (RecordKind::Meta, "", meta_body()),
            (RecordKind::Cookies, "a.test", cookie_body()),
        ];
        let len = recs[1].2.len() as u64;
        payload(k, id, &recs, |m| {
            m.records[1].chunks = vec![1; times];
            m.records[1].len = len * times as u64;
        })
    })
}

fn open(
    name: &'static str,
    description: &'static str,
    bytes: Vec<u8>,
    unlock: Value,
    expect: &'static str,
) -> Vector {
    Vector {
        name,
        description,
        bytes,
        op: "open",
        unlock,
        expect,
        ..Default::default()
    }
}

fn set_u32(b: &[u8], at: usize, v: &[u8]) -> Vec<u8> {
    let mut b = b.to_vec();
    b[at..at + v.len()].copy_from_slice(v);
    b
}

pub(super) fn more(
    v: &mut Vec<Vector>,
    ok: &[u8],
    state: &crate::SessionState,
    normalized: &crate::SessionState,
) {
    let pass = || json!({"passphrase": PASS});
    // §10 outcomes that had no vector.
    v.push(open(
        "not_a_bundle",
        "ok_passphrase with its second magic byte changed",
        set_u32(ok, 1, b"X"),
        pass(),
        "not_a_bundle",
    ));
    v.push(open(
        "unsupported_version",
        "ok_passphrase with major version 2",
        set_u32(ok, 8, &[0, 2]),
        pass(),
        "unsupported_version",
    ));
    v.push(open(
        "header_len_zero",
        "header_len = 0",
        set_u32(ok, 12, &[0, 0, 0, 0]),
        pass(),
        "malformed_header",
    ));
    v.push(open(
        "header_len_over_max",
        "header_len = 65,537 (one over the format's cap)",
        set_u32(ok, 12, &(MAX_HEADER_LEN as u32 + 1).to_be_bytes()),
        pass(),
        "malformed_header",
    ));
    let mut rng = SeededRandom::new(b"17");
    let (h17, fk) = Header::create(&[pw()], small_opts().argon2, &mut rng).unwrap();
    let keys17: Vec<Unlock> = (0..17)
        .map(|_| Unlock::Key(SymmetricKey::generate(&mut rng)))
        .collect();
    let mut slots = h17.slots.clone();
    slots.extend(
        make_slots(
            &keys17[1..],
            small_opts().argon2,
            &fk,
            &h17.bundle_id(),
            &mut rng,
        )
        .unwrap(),
    );
    let h17 = Header::assemble(h17.core.clone(), slots, &fk);
    let ohl = Header::read_from(&mut &ok[..]).unwrap().len();
    v.push(open(
        "seventeen_slots",
        "a passphrase slot and 16 key-file slots (17 > 16), header tag valid",
        [h17.bytes().as_slice(), &ok[ohl..]].concat(),
        pass(),
        "malformed_header",
    ));
    v.push(open(
        "malformed_manifest",
        "authenticated manifest naming another bundle id",
        raw_bundle(b"mm", vec![], |k, id| {
            payload(k, id, &[(RecordKind::Meta, "", meta_body())], |m| {
                m.bundle_id.0[0] ^= 1
            })
        }),
        pass(),
        "malformed_manifest",
    ));
    v.push(open(
        "manifest_missing_chunk",
        "authenticated manifest whose record points at chunk 7 of 1",
        raw_bundle(b"mc", vec![], |k, id| {
            payload(k, id, &[(RecordKind::Meta, "", meta_body())], |m| {
                m.records[0].chunks = vec![7]
            })
        }),
        pass(),
        "malformed_manifest",
    ));
    v.push(open(
        "bad_state",
        "a meta record whose body is the MessagePack string \"not meta\" (chunk id valid)",
        raw_bundle(b"bs", vec![], |k, id| {
            payload(
                k,
                id,
                &[(RecordKind::Meta, "", to_msgpack(&"not meta"))],
                |_| {},
            )
        }),
        pass(),
        "bad_state",
    ));
    // Recipients (x25519 slots, SPEC.md §3.2).
    let id = Identity::from_bytes(seq(0x70));
    let other = Identity::from_bytes(seq(0x71));
    let to_r = seal_with(
        state,
        Vec::new(),
        &[SlotSpec::Recipient(id.public())],
        small_opts(),
        &mut SeededRandom::new(b"recipient"),
    )
    .unwrap()
    .0;
    v.push(Vector {
        state: Some(normalized.clone()),
        ..open(
            "ok_recipient",
            "sealed to one X25519 recipient; opened with its identity",
            to_r.clone(),
            json!({"identity": id.to_file_string()}),
            "ok",
        )
    });
    v.push(open(
        "wrong_identity",
        "ok_recipient opened with another identity",
        to_r,
        json!({"identity": other.to_file_string()}),
        "no_matching_key",
    ));
    // Signatures: detached, stripped trailer, oversized .sig.
    let sk = SigningKey(ed25519_dalek::SigningKey::from_bytes(&seq(0x60)));
    let pubkey = sk.public().to_file_string();
    let bid = Header::read_from(&mut &ok[..]).unwrap().bundle_id();
    let block = sign::sign_hash(
        &sk,
        blake3::hash(ok).as_bytes(),
        &sign::trusted_comment(1_795_000_000, &bid, "vectors"),
    )
    .to_text()
    .into_bytes();
    let verify = |name, description, bytes: Vec<u8>, sig: Option<Vec<u8>>, expect| Vector {
        name,
        description,
        bytes,
        op: "verify",
        expect,
        public_key: Some(pubkey.clone()),
        detached_sig: sig,
        ..Default::default()
    };
    v.push(verify(
        "ok_detached_signature",
        "ok_passphrase with a detached .sig",
        ok.to_vec(),
        Some(block.clone()),
        "ok",
    ));
    let mut flipped = ok.to_vec();
    flipped[ohl + 10] ^= 1;
    v.push(verify(
        "bad_detached_signature",
        "ok_detached_signature's .sig beside a bundle with one payload byte flipped",
        flipped,
        Some(block.clone()),
        "bad_signature",
    ));
    v.push(verify(
        "stripped_trailer",
        "ok_signed_embedded with its trailer cut off (= ok_passphrase): unsigned",
        ok.to_vec(),
        None,
        "no_signature",
    ));
    v.push(verify(
        "stripped_trailer_moved_to_sig",
        "ok_signed_embedded's trailer block moved to a detached .sig: the same signed bytes",
        ok.to_vec(),
        Some(block),
        "ok",
    ));
    v.push(verify(
        "oversized_sig",
        "a 70,000-byte .sig (over the 64 KiB default of max_sig_len)",
        ok.to_vec(),
        Some(vec![b'x'; 70_000]),
        "limit_exceeded",
    ));
    // One negative per reader cap.
    v.push(open(
        "record_declares_5_tib",
        "an authenticated manifest whose meta record declares 5 TiB (default max_record 256 MiB)",
        raw_bundle(b"5t", vec![], |k, id| {
            payload(k, id, &[(RecordKind::Meta, "", meta_body())], |m| {
                m.records[0].len = 5 << 40
            })
        }),
        pass(),
        "limit_exceeded",
    ));
    v.push(Vector {
        limits: Some(json!({"max_total_plaintext": 4096})),
        ..open(
            "repeated_chunk_over_total_cap",
            "a cookies record listing its one chunk 100 times (~9 KB from a ~1 KB file), max_total_plaintext 4096",
            repeated(b"rep", 100),
            pass(),
            "limit_exceeded",
        )
    });
    v.push(Vector {
        limits: Some(json!({"max_refs_per_record": 4})),
        ..open(
            "too_many_refs",
            "a cookies record with 5 chunk references, max_refs_per_record 4",
            repeated(b"refs", 5),
            pass(),
            "limit_exceeded",
        )
    });
    v.push(Vector {
        limits: Some(json!({"max_argon2_m_kib": 32})),
        ..open(
            "argon2_over_reader_limit",
            "ok_passphrase (m = 64 KiB) read with max_argon2_m_kib 32",
            ok.to_vec(),
            pass(),
            "limit_exceeded",
        )
    });
}

/// Each reader cap refuses, and (so the test can fail without the check)
/// the same input gets through, or fails differently, when the cap is raised.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReaderLimits;

    fn open_with(b: &[u8], u: &Unlock, l: &ReaderLimits) -> crate::Result<crate::SessionState> {
        reader::unseal_with(Cursor::new(b), u, l)
    }

    fn ok_bytes() -> Vec<u8> {
        let st = sample::session_like(1, 1, 200);
        seal_with(
            &st,
            Vec::new(),
            &[pw()],
            small_opts(),
            &mut SeededRandom::new(b"t"),
        )
        .unwrap()
        .0
    }

    #[test]
    fn a_repeated_chunk_is_capped_by_total_plaintext() {
        let b = repeated(b"rep", 100);
        assert!(b.len() < 2_000, "{} bytes", b.len());
        let l = ReaderLimits {
            max_total_plaintext: 4096,
            ..Default::default()
        };
        let e = open_with(&b, &pw(), &l).unwrap_err();
        assert!(e.is_limit(), "{e}");
        assert!(e.to_string().contains("--max-plaintext"), "{e}");
        // Uncapped, the manifest is valid and the reader reads all 100 copies.
        let r = open_with(&b, &pw(), &ReaderLimits::default());
        assert!(!r.as_ref().is_err_and(|e| e.is_limit()), "{:?}", r.err());
    }

    #[test]
    fn a_declared_record_length_is_capped_before_reading() {
        let b = raw_bundle(b"5t", vec![], |k, id| {
            payload(k, id, &[(RecordKind::Meta, "", meta_body())], |m| {
                m.records[0].len = 5 << 40
            })
        });
        let e = open_with(&b, &pw(), &ReaderLimits::default()).unwrap_err();
        assert!(
            e.is_limit() && e.to_string().contains("--max-record"),
            "{e}"
        );
        let huge = ReaderLimits {
            max_record: u64::MAX,
            max_total_plaintext: u64::MAX,
            ..Default::default()
        };
        let e = open_with(&b, &pw(), &huge).unwrap_err();
        assert_eq!(e.outcome(), "malformed_manifest", "{e}");
    }

    #[test]
    fn refs_per_record_are_capped() {
        let b = repeated(b"refs", 5);
        let l = ReaderLimits {
            max_refs_per_record: 4,
            ..Default::default()
        };
        assert!(open_with(&b, &pw(), &l).unwrap_err().is_limit());
        let r = open_with(&b, &pw(), &ReaderLimits::default());
        assert!(!r.as_ref().is_err_and(|e| e.is_limit()));
    }

    #[test]
    fn argon2_reader_caps_refuse_before_deriving() {
        let b = ok_bytes();
        for l in [
            ReaderLimits {
                max_argon2_m_kib: 32,
                ..Default::default()
            },
            ReaderLimits {
                max_argon2_t: 0,
                ..Default::default()
            },
            ReaderLimits {
                max_argon2_p: 0,
                ..Default::default()
            },
        ] {
            assert!(open_with(&b, &pw(), &l).unwrap_err().is_limit(), "{l:?}");
        }
        assert!(open_with(&b, &pw(), &ReaderLimits::default()).is_ok());
    }

    #[test]
    fn argon2_tries_are_capped() {
        let st = sample::session_like(1, 1, 100);
        let u = |s: &str| Unlock::Passphrase(Passphrase::new(s));
        let b = seal_with(
            &st,
            Vec::new(),
            &[u("a"), u("b"), u("c")],
            small_opts(),
            &mut SeededRandom::new(b"3"),
        )
        .unwrap()
        .0;
        assert!(open_with(&b, &u("c"), &ReaderLimits::default()).is_ok());
        let l = ReaderLimits {
            max_argon2_tries: 2,
            ..Default::default()
        };
        assert_eq!(
            open_with(&b, &u("c"), &l).unwrap_err().outcome(),
            "no_matching_key"
        );
    }

    #[test]
    fn header_and_signature_sizes_are_capped() {
        let b = ok_bytes();
        let l = ReaderLimits {
            max_header_len: 100,
            ..Default::default()
        };
        assert!(open_with(&b, &pw(), &l).unwrap_err().is_limit());
        let sk = SigningKey(ed25519_dalek::SigningKey::from_bytes(&seq(0x60)));
        let mut c = Cursor::new(b);
        sign_embedded_fixed(&mut c, &sk);
        let signed = c.into_inner();
        assert!(open_with(&signed, &pw(), &ReaderLimits::default()).is_ok());
        let l = ReaderLimits {
            max_sig_len: 100,
            ..Default::default()
        };
        assert!(open_with(&signed, &pw(), &l).unwrap_err().is_limit());
        // A detached .sig over the cap is refused from its size.
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("b.sessbundle");
        std::fs::write(&f, &signed).unwrap();
        std::fs::write(sign::sig_path(&f), vec![b'x'; 200]).unwrap();
        let e = sign::verify_file_with(&f, &[sk.public()], &l).unwrap_err();
        assert!(e.is_limit(), "{e}");
    }
}
