//! Entry points for the fuzz targets in `host/bundle/fuzz`: the parsers that
//! normally sit behind a MAC, reachable directly. Not a stable API.

use crate::records::{Joiner, Record, RecordKind};

/// Feed `data` to the parser picked by `sel`. Must never panic.
pub fn parse(sel: u8, data: &[u8]) {
    match sel % 6 {
        0 => {
            let _ = crate::format::Header::read_from(&mut &data[..]);
        }
        1 => {
            if let Ok(m) = crate::format::parse_canonical::<crate::manifest::Manifest>(data) {
                let _ = m.validate(&m.bundle_id.0, data.len() as u64);
            }
        }
        2 => {
            let _ = crate::sign::SignatureBlock::parse(data);
        }
        3 | 4 => {
            let Some((&k, body)) = data.split_first() else {
                return;
            };
            let Some(kind) = RecordKind::from_u8(k % 5) else {
                return;
            };
            let mut j = Joiner::default();
            let meta = crate::records::split(&crate::SessionState::new("f", 0)).remove(0);
            let _ = j.push(&meta);
            let _ = j.push(&Record {
                kind,
                key: String::from_utf8_lossy(&body[..body.len().min(8)]).into(),
                body: body.to_vec(),
            });
        }
        _ => {
            let _ = serde_json::from_slice::<crate::SessionState>(data);
        }
    }
}

/// The key every [`forged_bundle`] is sealed with.
pub const FORGED_KEY: [u8; 32] = [7u8; 32];

/// A bundle sealed with [`FORGED_KEY`] around fuzzer-controlled bytes, so a
/// fuzzer gets past authentication to the manifest and record parsers.
/// The first byte picks the mode:
/// - even: `data` is records, each `[kind u8][key_len u8][key][body_len u16 BE][body]`,
///   sealed by the real writer (valid manifest, chunk ids and framing; the
///   bodies are arbitrary);
/// - odd: `[region_len u16 BE][chunk region][manifest bytes]` written
///   straight into the encrypted stream (arbitrary manifest, authenticated).
///
/// `None` when the writer refuses the records (e.g. out of order).
pub fn forged_bundle(data: &[u8]) -> Option<Vec<u8>> {
    use crate::keys::{SeededRandom, SymmetricKey, Unlock};
    let (&mode, mut rest) = data.split_first()?;
    let unlocks = [Unlock::Key(SymmetricKey::from_bytes(FORGED_KEY))];
    let mut rng = SeededRandom::new(b"forged manifest");
    if mode % 2 == 0 {
        let mut w = crate::BundleWriter::new(
            Vec::new(),
            &unlocks,
            crate::SealOptions::default(),
            &mut rng,
        )
        .ok()?;
        while let Some((&k, r)) = rest.split_first() {
            let (&klen, r) = r.split_first()?;
            let key = r.get(..usize::from(klen))?;
            let r = &r[usize::from(klen)..];
            let blen = usize::from(u16::from_be_bytes([*r.first()?, *r.get(1)?]));
            let body = r.get(2..2 + blen)?;
            rest = &r[2 + blen..];
            let kind = RecordKind::from_u8(k % 5)?;
            w.add_record(kind, &String::from_utf8_lossy(key), body)
                .ok()?;
        }
        Some(w.finish().ok()?.0)
    } else {
        let n = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
        rest = &rest[2..];
        let region = rest.get(..n.min(rest.len()))?;
        let manifest = &rest[region.len()..];
        let (header, file_key) =
            crate::format::Header::create(&unlocks, crate::keys::Argon2Params::default(), &mut rng)
                .ok()?;
        let mut out = header.bytes();
        let cipher = crate::stream::stream_cipher(&file_key, &header.core.stream_nonce.0);
        let mut s = crate::stream::StreamWriter::new(&mut out, cipher, header.stream_aad());
        s.write_all(region).ok()?;
        s.write_all(manifest).ok()?;
        s.write_all(&(manifest.len() as u64).to_be_bytes()).ok()?;
        s.finish().ok()?;
        Some(out)
    }
}

/// Open a [`forged_bundle`] and read everything. Must never panic.
pub fn open_forged(data: &[u8]) {
    use crate::keys::{SymmetricKey, Unlock};
    let Some(bundle) = forged_bundle(data) else {
        return;
    };
    let key = Unlock::Key(SymmetricKey::from_bytes(FORGED_KEY));
    if let Ok(mut r) = crate::BundleReader::open(std::io::Cursor::new(&bundle), &key) {
        let _ = r.read_state();
    }
}

/// A Playwright `SerializedValue` (JSON) through the decoder and back.
/// Must never panic or allocate past the limits.
pub fn serialized(data: &[u8]) {
    crate::interop::serialized::fuzz_round_trip(data);
}
