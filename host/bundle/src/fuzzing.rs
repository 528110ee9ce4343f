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
