//! Test vectors (format-spec/vectors): known answers for each primitive and
//! whole bundles, positive and negative. `cargo test -p sessbundle vectors`
//! checks them; `SESSBUNDLE_WRITE_VECTORS=1 cargo test -p sessbundle
//! vectors` regenerates them (primitives are deterministic; bundle files are
//! fixed inputs, since zstd output may change between versions).

use std::io::Cursor;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::format::{Bin, Core, Header, to_msgpack};
use crate::keys::{self, *};
use crate::manifest::Manifest;
use crate::records::{RecordKind, normalize_cookie_order};
use crate::stream::{self, SEGMENT_CT, StreamWriter, stream_cipher};
use crate::writer::{SealOptions, chunk_id, seal_with};
use crate::{reader, sample, sign};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../format-spec/vectors")
}

fn h(b: &[u8]) -> String {
    keys::hex(b)
}

fn seq<const N: usize>(start: u8) -> [u8; N] {
    std::array::from_fn(|i| start.wrapping_add(i as u8))
}

fn primitives() -> Value {
    let file_key: [u8; 32] = seq(0);
    let stream_nonce: [u8; 16] = seq(0x40);
    let bundle_id: [u8; 16] = seq(0x80);
    let salt: [u8; 16] = seq(0xa0);
    let small = Argon2Params {
        m_kib: 64,
        t: 1,
        p: 1,
    };
    let argon_small = small.derive_kek(b"password", &salt).unwrap();
    let argon_default = Argon2Params::default()
        .derive_kek(b"correct horse battery staple", &salt)
        .unwrap();
    let raw: [u8; 32] = seq(0x20);
    let sym = SymmetricKey(raw);
    let kek = sym.kek(&salt);
    let wrapped = wrap_file_key(&kek, &file_key, &bundle_id);
    let cipher = stream_cipher(&file_key, &stream_nonce);
    let aad: [u8; 32] = seq(0xc0);
    let mut seg0 = b"hello, segment".to_vec();
    stream::seal_segment(&cipher, &aad, 0, true, &mut seg0);
    let mut seg5 = b"not the last".to_vec();
    stream::seal_segment(&cipher, &aad, 5, false, &mut seg5);
    let chunk_key = derive(CTX_CHUNK_ID, &[&file_key]);
    let sk = SigningKey(ed25519_dalek::SigningKey::from_bytes(&seq(0x60)));
    let comment = sign::trusted_comment(1_795_000_000, &bundle_id, "vectors");
    let file_hash: [u8; 32] = seq(0xe0);
    let block = sign::sign_hash(&sk, &file_hash, &comment);
    json!({
        "inputs": {"file_key": h(&file_key), "stream_nonce": h(&stream_nonce), "bundle_id": h(&bundle_id), "salt": h(&salt)},
        "argon2id": [
            {"password_utf8": "password", "salt": h(&salt), "m_kib": 64, "t": 1, "p": 1, "output": h(&argon_small)},
            {"password_utf8": "correct horse battery staple", "salt": h(&salt), "m_kib": 65536, "t": 3, "p": 4, "output": h(&argon_default)}
        ],
        "derive_key": {
            "header_mac_key": {"context": CTX_HEADER_MAC, "input": "file_key", "output": h(&derive(CTX_HEADER_MAC, &[&file_key]))},
            "stream_key": {"context": CTX_STREAM, "input": "file_key || stream_nonce", "output": h(&derive(CTX_STREAM, &[&file_key, &stream_nonce]))},
            "chunk_id_key": {"context": CTX_CHUNK_ID, "input": "file_key", "output": h(&chunk_key)},
            "key_file_kek": {"context": CTX_KEYFILE_KEK, "input": "raw_key || salt", "raw_key": h(&raw), "output": h(&kek)},
            "key_file_id": {"context": CTX_KEYFILE_ID, "raw_key": h(&raw), "output_first_8": h(&sym.key_id())}
        },
        "slot_wrap": {"kek": h(&kek), "file_key": h(&file_key), "bundle_id": h(&bundle_id), "aad": format!("\"sessbundle v1 slot\" || bundle_id"), "wrapped": h(&wrapped)},
        "header_tag": {"file_key": h(&file_key), "prefix_hex": h(b"example prefix"), "tag": h(&crate::format::header_tag(&file_key, b"example prefix"))},
        "segments": [
            {"stream_key_from": "file_key, stream_nonce", "aad": h(&aad), "index": 0, "last": true, "plaintext_utf8": "hello, segment", "sealed": h(&seg0)},
            {"stream_key_from": "file_key, stream_nonce", "aad": h(&aad), "index": 5, "last": false, "plaintext_utf8": "not the last", "sealed": h(&seg5)}
        ],
        "chunk_ids": [
            {"chunk_id_key": h(&chunk_key), "kind": 3, "plaintext_utf8": "chunk body", "id": h(&chunk_id(&chunk_key, RecordKind::Origin, b"chunk body"))},
            {"chunk_id_key": h(&chunk_key), "kind": 2, "plaintext_utf8": "chunk body", "id": h(&chunk_id(&chunk_key, RecordKind::Cookies, b"chunk body"))}
        ],
        "ed25519": {
            "seed": h(&seq::<32>(0x60)), "public_key": h(sk.public().0.as_bytes()), "key_id": h(&sk.public().key_id()),
            "secret_key_file": sk.to_file_string(), "public_key_file": sk.public().to_file_string(),
            "file_hash": h(&file_hash), "trusted_comment": comment, "signature": h(&block.sig), "block": block.to_text()
        },
        "symmetric_key_file": {"raw_key": h(&raw), "file": sym.to_file_string()},
        "x25519_slot": cases::x25519_kat(&file_key, &bundle_id)
    })
}

fn small_opts() -> SealOptions {
    SealOptions {
        argon2: Argon2Params {
            m_kib: 64,
            t: 1,
            p: 1,
        },
        created_ms: 1_795_000_000_000,
        ..Default::default()
    }
}

const PASS: &str = "vector passphrase";

fn pw() -> Unlock {
    Unlock::Passphrase(Passphrase::new(PASS))
}

/// A hand-built bundle: header for `unlocks`, payload plaintext from `build`.
fn raw_bundle(
    seed: &[u8],
    core_critical: Vec<String>,
    build: impl FnOnce(&[u8; 32], [u8; 16]) -> Vec<u8>,
) -> Vec<u8> {
    let mut rng = SeededRandom::new(seed);
    let (mut header, file_key) = Header::create(&[pw()], small_opts().argon2, &mut rng).unwrap();
    if !core_critical.is_empty() {
        let mut core: Core = header.core.clone();
        core.critical = core_critical;
        header = Header::assemble(core, header.slots.clone(), &file_key);
    }
    let plain = build(&file_key, header.bundle_id());
    let mut out = header.bytes();
    let mut w = StreamWriter::new(
        Vec::new(),
        stream_cipher(&file_key, &header.core.stream_nonce.0),
        header.stream_aad(),
    );
    w.write_all(&plain).unwrap();
    out.extend(w.finish().unwrap());
    out
}

/// Payload plaintext with one meta record of one chunk, with hooks to lie.
fn one_chunk_payload(file_key: &[u8; 32], bundle_id: [u8; 16], lie: &str) -> Vec<u8> {
    let st = crate::SessionState::new("raw", 1);
    let body = crate::records::split(&st).remove(0).body;
    let key = derive(CTX_CHUNK_ID, &[file_key]);
    let mut id = chunk_id(&key, RecordKind::Meta, &body);
    let (mut stored, mut codec, mut len) = (body.clone(), 0u8, body.len() as u32);
    match lie {
        "id" => id[0] ^= 1,
        "bomb" => {
            stored = zstd::bulk::compress(&vec![0u8; 1 << 20], 19).unwrap();
            codec = 1;
            len = 64;
        }
        _ => {}
    }
    let m = Manifest {
        bundle_id: Bin(bundle_id),
        schema: 1,
        created_ms: 1,
        chunks: vec![crate::manifest::ChunkEntry {
            id: Bin(id),
            kind: 1,
            codec,
            len,
            stored: stored.len() as u32,
        }],
        records: vec![crate::manifest::RecordEntry {
            kind: 1,
            key: String::new(),
            chunks: vec![0],
            len: len as u64,
        }],
        sanitizers: vec![],
    };
    let mb = to_msgpack(&m);
    [stored, mb.clone(), (mb.len() as u64).to_be_bytes().to_vec()].concat()
}

#[derive(Default)]
struct Vector {
    name: &'static str,
    description: &'static str,
    bytes: Vec<u8>,
    op: &'static str,
    unlock: Value,
    expect: &'static str,
    state: Option<crate::SessionState>,
    public_key: Option<String>,
    /// Reader limits that differ from the defaults (field name -> number).
    limits: Option<Value>,
    /// The content of a detached `FILE.sig` next to the bundle.
    detached_sig: Option<Vec<u8>>,
}

mod cases;

fn build_bundles() -> Vec<Vector> {
    let mut v = Vec::new();
    let state = sample::session_like(7, 2, 4_000);
    let mut normalized = state.clone();
    normalize_cookie_order(&mut normalized);
    let seal = |st: &crate::SessionState, unlocks: &[Unlock], seed: &[u8]| {
        seal_with(
            st,
            Vec::new(),
            unlocks,
            small_opts(),
            &mut SeededRandom::new(seed),
        )
        .unwrap()
        .0
    };
    let pass_json = json!({"passphrase": PASS});
    let ok = seal(&state, &[pw()], b"ok");
    v.push(Vector {
        name: "ok_passphrase",
        description: "two origins, cookies, IndexedDB, tabs; Argon2id m=64 KiB t=1 p=1",
        bytes: ok.clone(),
        op: "open",
        unlock: pass_json.clone(),
        expect: "ok",
        state: Some(normalized.clone()),
        public_key: None,
        ..Default::default()
    });
    let raw: [u8; 32] = seq(0x20);
    let key = SymmetricKey(raw);
    let multi = seal(&state, &[Unlock::Key(key.clone()), pw()], b"multi");
    v.push(Vector {
        name: "ok_key_file_two_slots",
        description: "a key-file slot and a passphrase slot; opened with the key file",
        bytes: multi,
        op: "open",
        unlock: json!({"key_file": key.to_file_string()}),
        expect: "ok",
        state: Some(normalized.clone()),
        public_key: None,
        ..Default::default()
    });
    // Incompressible, multi-segment bundle for the segment attacks.
    let mut big = crate::SessionState::new("segments", 1);
    let mut rng = SeededRandom::new(b"blob");
    let mut blob = vec![0u8; 200_000];
    rng.fill(&mut blob);
    big.extra.insert(
        "test".into(),
        [("blob".to_string(), keys::hex(&blob))].into(),
    );
    let mut bign = big.clone();
    normalize_cookie_order(&mut bign);
    let multi_seg = seal(&big, &[pw()], b"segs");
    let hl = Header::read_from(&mut &multi_seg[..]).unwrap().len();
    let segs: Vec<&[u8]> = multi_seg[hl..].chunks(SEGMENT_CT).collect();
    assert!(segs.len() >= 4, "{} segments", segs.len());
    let head = &multi_seg[..hl];
    let join = |parts: &[&[u8]]| [head, &parts.concat()].concat();
    v.push(Vector {
        name: "ok_multi_segment",
        description: "400 KB of hex text in extra: 7 segments",
        bytes: multi_seg.clone(),
        op: "open",
        unlock: pass_json.clone(),
        expect: "ok",
        state: Some(bign),
        public_key: None,
        ..Default::default()
    });
    v.push(Vector {
        name: "truncated_at_segment_boundary",
        description: "only the first two segments",
        bytes: join(&segs[..2]),
        op: "open",
        unlock: pass_json.clone(),
        expect: "payload_auth",
        state: None,
        public_key: None,
        ..Default::default()
    });
    v.push(Vector {
        name: "missing_last_segment",
        description: "every segment but the last",
        bytes: join(&segs[..segs.len() - 1]),
        op: "open",
        unlock: pass_json.clone(),
        expect: "payload_auth",
        state: None,
        public_key: None,
        ..Default::default()
    });
    let mut sw = segs.clone();
    sw.swap(1, 2);
    v.push(Vector {
        name: "swapped_segments",
        description: "segments 1 and 2 swapped",
        bytes: join(&sw),
        op: "open",
        unlock: pass_json.clone(),
        expect: "payload_auth",
        state: None,
        public_key: None,
        ..Default::default()
    });
    let mut dup = segs.clone();
    dup[2] = segs[1];
    v.push(Vector {
        name: "duplicated_segment",
        description: "segment 1 written again in place of segment 2",
        bytes: join(&dup),
        op: "open",
        unlock: pass_json.clone(),
        expect: "payload_auth",
        state: None,
        public_key: None,
        ..Default::default()
    });
    let other = seal(&big, &[pw()], b"other");
    let ohl = Header::read_from(&mut &other[..]).unwrap().len();
    let osegs: Vec<&[u8]> = other[ohl..].chunks(SEGMENT_CT).collect();
    let mut spl = segs.clone();
    spl[1] = osegs[1];
    v.push(Vector {
        name: "segment_from_another_bundle",
        description: "segment 1 taken from a bundle of the same state and passphrase",
        bytes: join(&spl),
        op: "open",
        unlock: pass_json.clone(),
        expect: "payload_auth",
        state: None,
        public_key: None,
        ..Default::default()
    });
    v.push(Vector {
        name: "trailing_bytes",
        description: "five bytes appended",
        bytes: [multi_seg.as_slice(), b"extra"].concat(),
        op: "open",
        unlock: pass_json.clone(),
        expect: "payload_auth",
        state: None,
        public_key: None,
        ..Default::default()
    });
    // Header attacks.
    let mut tag = ok.clone();
    let ohl = Header::read_from(&mut &ok[..]).unwrap().len();
    tag[ohl - 1] ^= 1;
    v.push(Vector {
        name: "header_tag_changed",
        description: "last byte of the header tag flipped",
        bytes: tag,
        op: "open",
        unlock: pass_json.clone(),
        expect: "header_auth",
        state: None,
        public_key: None,
        ..Default::default()
    });
    v.push(Vector {
        name: "wrong_passphrase",
        description: "ok_passphrase opened with another passphrase",
        bytes: ok.clone(),
        op: "open",
        unlock: json!({"passphrase": "not it"}),
        expect: "no_matching_key",
        state: None,
        public_key: None,
        ..Default::default()
    });
    v.push(Vector {
        name: "non_canonical_header",
        description: "the slot's t=1 re-encoded as uint8 (0xcc 0x01) instead of a fixint",
        bytes: non_canonical(&ok),
        op: "open",
        unlock: pass_json.clone(),
        expect: "malformed_header",
        state: None,
        public_key: None,
        ..Default::default()
    });
    v.push(Vector {
        name: "unknown_critical_field",
        description: "core.critical = [\"x-future-compression\"], header tag valid",
        bytes: raw_bundle(b"crit", vec!["x-future-compression".into()], |k, id| {
            one_chunk_payload(k, id, "")
        }),
        op: "open",
        unlock: pass_json.clone(),
        expect: "malformed_header",
        state: None,
        public_key: None,
        ..Default::default()
    });
    v.push(Vector {
        name: "oversize_argon2_params",
        description: "slot asks for m = 4 GiB",
        bytes: oversize_argon(&ok),
        op: "open",
        unlock: pass_json.clone(),
        expect: "kdf_rejected",
        state: None,
        public_key: None,
        ..Default::default()
    });
    v.push(Vector {
        name: "chunk_id_mismatch",
        description: "authenticated manifest whose chunk id has one bit flipped",
        bytes: raw_bundle(b"cid", vec![], |k, id| one_chunk_payload(k, id, "id")),
        op: "open",
        unlock: pass_json.clone(),
        expect: "chunk_mismatch",
        state: None,
        public_key: None,
        ..Default::default()
    });
    v.push(Vector {
        name: "decompression_bomb",
        description: "a zstd frame of 1 MiB of zeros declared as 64 bytes",
        bytes: raw_bundle(b"bomb", vec![], |k, id| one_chunk_payload(k, id, "bomb")),
        op: "open",
        unlock: pass_json.clone(),
        expect: "decompression",
        state: None,
        public_key: None,
        ..Default::default()
    });
    // Signatures.
    let sk = SigningKey(ed25519_dalek::SigningKey::from_bytes(&seq(0x60)));
    let pubkey = sk.public().to_file_string();
    let mut signed = Cursor::new(ok.clone());
    sign_embedded_fixed(&mut signed, &sk);
    let signed = signed.into_inner();
    v.push(Vector {
        name: "ok_signed_embedded",
        description: "ok_passphrase with an embedded signature",
        bytes: signed.clone(),
        op: "verify",
        unlock: json!(null),
        expect: "ok",
        state: None,
        public_key: Some(pubkey.clone()),
        ..Default::default()
    });
    let mut bad = signed.clone();
    bad[ohl + 10] ^= 1;
    v.push(Vector {
        name: "bad_signature_payload_changed",
        description: "one payload byte of ok_signed_embedded flipped",
        bytes: bad,
        op: "verify",
        unlock: json!(null),
        expect: "bad_signature",
        state: None,
        public_key: Some(pubkey.clone()),
        ..Default::default()
    });
    let pos = signed
        .windows(14)
        .position(|w| w == b"signer:vectors")
        .unwrap();
    let mut alt = signed.clone();
    alt[pos + 7..pos + 14].copy_from_slice(b"mallory");
    v.push(Vector {
        name: "altered_trusted_comment",
        description: "the trusted comment's signer changed",
        bytes: alt,
        op: "verify",
        unlock: json!(null),
        expect: "bad_signature",
        state: None,
        public_key: Some(pubkey.clone()),
        ..Default::default()
    });
    let other_key = SigningKey(ed25519_dalek::SigningKey::from_bytes(&seq(0x61)));
    v.push(Vector {
        name: "signed_by_another_key",
        description: "ok_signed_embedded verified with an unrelated public key",
        bytes: signed,
        op: "verify",
        unlock: json!(null),
        expect: "no_signature",
        state: None,
        public_key: Some(other_key.public().to_file_string()),
        ..Default::default()
    });
    cases::more(&mut v, &ok, &state, &normalized);
    v
}

fn sign_embedded_fixed(f: &mut Cursor<Vec<u8>>, sk: &SigningKey) {
    use std::io::{Seek, SeekFrom, Write};
    let layout = crate::format::Layout::read(f).unwrap();
    let hash = sign::hash_prefix(f, layout.file_len).unwrap();
    let block = sign::sign_hash(
        sk,
        &hash,
        &sign::trusted_comment(1_795_000_000, &layout.header.bundle_id(), "vectors"),
    );
    let t = block.to_text();
    f.seek(SeekFrom::End(0)).unwrap();
    f.write_all(t.as_bytes()).unwrap();
    f.write_all(&(t.len() as u32).to_be_bytes()).unwrap();
    f.write_all(&crate::format::TRAILER_MAGIC).unwrap();
}

fn rewrite_header(b: &[u8], f: impl FnOnce(Vec<u8>) -> Vec<u8>) -> Vec<u8> {
    let len = u32::from_be_bytes(b[12..16].try_into().unwrap()) as usize;
    let body = f(b[16..16 + len].to_vec());
    [
        &b[..12],
        &(body.len() as u32).to_be_bytes(),
        &body,
        &b[16 + len..],
    ]
    .concat()
}

fn non_canonical(b: &[u8]) -> Vec<u8> {
    rewrite_header(b, |body| {
        let pat = [0xa1, b't', 0x01];
        let i = body
            .windows(3)
            .position(|w| w == pat)
            .expect("t=1 in header");
        [&body[..i + 2], &[0xcc, 0x01], &body[i + 3..]].concat()
    })
}

fn oversize_argon(b: &[u8]) -> Vec<u8> {
    rewrite_header(b, |body| {
        // "m_kib": 64 (fixint 0x40) -> uint32 4 GiB - 1 KiB
        let pat = [0xa5, b'm', b'_', b'k', b'i', b'b', 0x40];
        let i = body
            .windows(7)
            .position(|w| w == pat)
            .expect("m_kib=64 in header");
        [
            &body[..i + 6],
            &[0xce, 0xff, 0xff, 0xff, 0xff],
            &body[i + 7..],
        ]
        .concat()
    })
}

/// The reader limits a vector names (`limits`: field -> number), over the
/// defaults.
fn limits_of(v: &Value) -> crate::ReaderLimits {
    let mut l = crate::ReaderLimits::default();
    if let Some(m) = v["limits"].as_object() {
        for (k, n) in m {
            let n = n.as_u64().unwrap();
            match k.as_str() {
                "max_record" => l.max_record = n,
                "max_total_plaintext" => l.max_total_plaintext = n,
                "max_refs_per_record" => l.max_refs_per_record = n,
                "max_argon2_m_kib" => l.max_argon2_m_kib = n as u32,
                "max_argon2_t" => l.max_argon2_t = n as u32,
                "max_argon2_p" => l.max_argon2_p = n as u32,
                "max_sig_len" => l.max_sig_len = n,
                "max_header_len" => l.max_header_len = n,
                other => panic!("unknown limit {other}"),
            }
        }
    }
    l
}

fn outcome_of(v: &Value, bytes: &[u8]) -> (String, Option<crate::SessionState>) {
    let limits = limits_of(v);
    let res = match v["op"].as_str().unwrap() {
        "open" => {
            let u = &v["unlock"];
            let unlock = if let Some(p) = u["passphrase"].as_str() {
                Unlock::Passphrase(Passphrase::new(p))
            } else if let Some(i) = u["identity"].as_str() {
                Unlock::Identity(Identity::parse(i, "vector".as_ref()).unwrap())
            } else {
                Unlock::Key(
                    SymmetricKey::parse(u["key_file"].as_str().unwrap(), "vector".as_ref())
                        .unwrap(),
                )
            };
            reader::unseal_with(Cursor::new(bytes), &unlock, &limits).map(Some)
        }
        "verify" => {
            let d = std::env::temp_dir().join(format!(
                "sb-vec-{}-{}",
                std::process::id(),
                v["name"].as_str().unwrap()
            ));
            std::fs::create_dir_all(&d).unwrap();
            let (f, k) = (d.join("b.sessbundle"), d.join("k.pub"));
            std::fs::write(&f, bytes).unwrap();
            std::fs::write(&k, v["public_key"].as_str().unwrap()).unwrap();
            if let Some(sf) = v["detached_sig_file"].as_str() {
                std::fs::copy(dir().join(sf), sign::sig_path(&f)).unwrap();
            }
            let key = PublicKey::read(&k).unwrap();
            let r = sign::verify_file_with(&f, &[key], &limits).map(|_| None);
            std::fs::remove_dir_all(&d).unwrap();
            r
        }
        op => panic!("unknown op {op}"),
    };
    match res {
        Ok(s) => ("ok".into(), s),
        Err(e) => (e.outcome().into(), None),
    }
}

#[test]
fn vectors() {
    let d = dir();
    if std::env::var_os("SESSBUNDLE_WRITE_VECTORS").is_some() {
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("primitives.json"),
            serde_json::to_string_pretty(&primitives()).unwrap() + "\n",
        )
        .unwrap();
        let mut index = Vec::new();
        for v in build_bundles() {
            let file = format!("{}.sessbundle", v.name);
            std::fs::write(d.join(&file), &v.bytes).unwrap();
            let mut e = json!({"name": v.name, "description": v.description, "file": file, "op": v.op, "expect": v.expect});
            if v.op == "open" {
                e["unlock"] = v.unlock;
            }
            if let Some(pk) = v.public_key {
                e["public_key_file"] = json!(pk);
            }
            if let Some(l) = v.limits {
                e["limits"] = l;
            }
            if let Some(sig) = v.detached_sig {
                let sf = format!("{}.sessbundle.sig", v.name);
                std::fs::write(d.join(&sf), sig).unwrap();
                e["detached_sig_file"] = json!(sf);
            }
            if let Some(st) = v.state {
                let sf = format!("{}.state.json", v.name);
                std::fs::write(
                    d.join(&sf),
                    serde_json::to_string_pretty(&st).unwrap() + "\n",
                )
                .unwrap();
                e["state"] = json!(sf);
            }
            index.push(e);
        }
        std::fs::write(
            d.join("bundles.json"),
            serde_json::to_string_pretty(&index).unwrap() + "\n",
        )
        .unwrap();
    }
    // Primitives: recomputed, must match byte for byte.
    let stored: Value = serde_json::from_slice(
        &std::fs::read(d.join("primitives.json")).expect("format-spec/vectors/primitives.json"),
    )
    .unwrap();
    assert_eq!(stored, primitives(), "a primitive's known answer changed");
    // Bundles: each file gives its expected outcome.
    let index: Vec<Value> =
        serde_json::from_slice(&std::fs::read(d.join("bundles.json")).unwrap()).unwrap();
    assert!(index.len() >= 39, "{} vectors", index.len());
    let outcomes: std::collections::BTreeSet<&str> =
        index.iter().filter_map(|v| v["expect"].as_str()).collect();
    for o in [
        "ok",
        "not_a_bundle",
        "unsupported_version",
        "malformed_header",
        "kdf_rejected",
        "no_matching_key",
        "header_auth",
        "payload_auth",
        "malformed_manifest",
        "chunk_mismatch",
        "decompression",
        "bad_state",
        "bad_signature",
        "no_signature",
        "limit_exceeded",
    ] {
        assert!(outcomes.contains(o), "no vector for outcome {o}");
    }
    for v in &index {
        let mut v = v.clone();
        if v.get("public_key_file").is_some() {
            v["public_key"] = v["public_key_file"].clone();
        }
        let bytes = std::fs::read(d.join(v["file"].as_str().unwrap())).unwrap();
        let (got, state) = outcome_of(&v, &bytes);
        assert_eq!(got, v["expect"].as_str().unwrap(), "vector {}", v["name"]);
        if let Some(sf) = v["state"].as_str() {
            let want: crate::SessionState =
                serde_json::from_slice(&std::fs::read(d.join(sf)).unwrap()).unwrap();
            assert_eq!(state.unwrap(), want, "vector {} state", v["name"]);
        }
    }
}
