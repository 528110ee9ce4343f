//! MessagePack → JSON (`host unseal`): see the parent module.

use base64::Engine as _;

use super::{DB, Field, ITEM, MAX_DEPTH, ORIGIN, STORE, STR, Ty, find_special, variant};

/// What `inspect` counts of an origin.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub local_storage_items: usize,
    pub indexeddb_databases: usize,
    pub indexeddb_records: usize,
}

/// The JSON of the origin record `body` with key `key` (canonical form
/// only; the origin must equal the key), appended to `out`. `None`: let
/// serde do it (`out` may then hold a partial text: truncate it).
pub(crate) fn origin_to_json(body: &[u8], key: &str, out: &mut Vec<u8>) -> Option<Counts> {
    let mut m = MpIn { b: body, i: 0 };
    let mut c = Counts::default();
    let n = m.map_len()?;
    if !(1..=3).contains(&n) || m.str()? != "origin" {
        return None;
    }
    let origin = m.str()?;
    if origin != key {
        return None;
    }
    out.extend_from_slice(b"{\"origin\":");
    json_str(out, origin.as_bytes());
    let mut left = &ORIGIN[1..];
    for _ in 1..n {
        let k = m.str()?;
        let at = left.iter().position(|f| f.name == k)?;
        left = left.get(at + 1..)?;
        out.push(b',');
        json_str(out, k.as_bytes());
        out.push(b':');
        let len = if k == "localStorage" {
            c.local_storage_items = m.seq(&ITEM, out, 0)?;
            c.local_storage_items
        } else {
            let dbs = m.arr_len()?;
            c.indexeddb_databases = dbs;
            out.push(b'[');
            for d in 0..dbs {
                if d > 0 {
                    out.push(b',');
                }
                c.indexeddb_records += m.db(out)?;
            }
            out.push(b']');
            dbs
        };
        if len == 0 {
            return None; // an empty list serde would leave out
        }
    }
    out.push(b'}');
    (m.i == body.len()).then_some(c)
}

/// Prints one present field's value; for a list, returns its length.
type PrintField<'a, 'f> =
    dyn FnMut(&mut MpIn<'a>, &Field, &mut Vec<u8>) -> Option<Option<usize>> + 'f;

pub(super) struct MpIn<'a> {
    pub(super) b: &'a [u8],
    pub(super) i: usize,
}

impl<'a> MpIn<'a> {
    fn byte(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        Some(s)
    }

    fn be(&mut self, n: usize) -> Option<u64> {
        Some(self.take(n)?.iter().fold(0u64, |a, &c| a << 8 | c as u64))
    }

    pub(super) fn map_len(&mut self) -> Option<usize> {
        match self.byte()? {
            c @ 0x80..=0x8f => Some((c & 0x0f) as usize),
            0xde => self.be(2).map(|n| n as usize),
            0xdf => self.be(4).map(|n| n as usize),
            _ => None,
        }
    }

    fn arr_len(&mut self) -> Option<usize> {
        match self.byte()? {
            c @ 0x90..=0x9f => Some((c & 0x0f) as usize),
            0xdc => self.be(2).map(|n| n as usize),
            0xdd => self.be(4).map(|n| n as usize),
            _ => None,
        }
    }

    pub(super) fn str(&mut self) -> Option<&'a str> {
        let n = match self.byte()? {
            c @ 0xa0..=0xbf => (c & 0x1f) as usize,
            0xd9 => self.be(1)? as usize,
            0xda => self.be(2)? as usize,
            0xdb => self.be(4)? as usize,
            _ => return None,
        };
        std::str::from_utf8(self.take(n)?).ok()
    }

    fn bin(&mut self) -> Option<&'a [u8]> {
        let n = match self.byte()? {
            0xc4 => self.be(1)?,
            0xc5 => self.be(2)?,
            0xc6 => self.be(4)?,
            _ => return None,
        };
        self.take(n as usize)
    }

    fn uint(&mut self) -> Option<u64> {
        match self.byte()? {
            c @ 0x00..=0x7f => Some(c as u64),
            0xcc => self.be(1),
            0xcd => self.be(2),
            0xce => self.be(4),
            0xcf => self.be(8),
            _ => None,
        }
    }

    /// One database; returns its record count.
    fn db(&mut self, out: &mut Vec<u8>) -> Option<usize> {
        let Ty::Struct(fields) = DB else { return None };
        let mut records = 0;
        self.strukt(fields, out, 0, &mut |m, f, out| {
            if f.name != "objectStores" {
                return m.value(f.ty, out, 0);
            }
            let n = m.arr_len()?;
            out.push(b'[');
            for s in 0..n {
                if s > 0 {
                    out.push(b',');
                }
                let Ty::Struct(sf) = STORE else { return None };
                m.strukt(sf, out, 0, &mut |m, f, out| {
                    let len = m.value(f.ty, out, 0)?;
                    if f.name == "records" {
                        records += len.unwrap_or(0);
                    }
                    Some(len)
                })?;
            }
            out.push(b']');
            Some(Some(n))
        })?;
        Some(records)
    }

    /// A struct; `field` prints each present field's value.
    fn strukt(
        &mut self,
        fields: &[Field],
        out: &mut Vec<u8>,
        _depth: usize,
        field: &mut PrintField<'a, '_>,
    ) -> Option<()> {
        let n = self.map_len()?;
        let mut f = 0;
        out.push(b'{');
        for k in 0..n {
            let key = self.str()?;
            let fd = loop {
                let fd = fields.get(f)?;
                f += 1;
                if fd.name == key {
                    break fd;
                }
                if !fd.opt {
                    return None;
                }
            };
            if k > 0 {
                out.push(b',');
            }
            json_str(out, key.as_bytes());
            out.push(b':');
            if field(self, fd, out)? == Some(0) && fd.opt {
                return None;
            }
        }
        if fields.get(f..)?.iter().any(|x| !x.opt) {
            return None;
        }
        out.push(b'}');
        Some(())
    }

    fn seq(&mut self, t: &Ty, out: &mut Vec<u8>, depth: usize) -> Option<usize> {
        let n = self.arr_len()?;
        out.push(b'[');
        for k in 0..n {
            if k > 0 {
                out.push(b',');
            }
            self.value(*t, out, depth)?;
        }
        out.push(b']');
        Some(n)
    }

    fn value(&mut self, ty: Ty, out: &mut Vec<u8>, depth: usize) -> Option<Option<usize>> {
        match ty {
            Ty::Str => json_str(out, self.str()?.as_bytes()),
            Ty::Bool => match self.byte()? {
                0xc2 => out.extend_from_slice(b"false"),
                0xc3 => out.extend_from_slice(b"true"),
                _ => return None,
            },
            Ty::Uint => {
                let v = self.uint()?;
                out.extend_from_slice(v.to_string().as_bytes());
            }
            Ty::Num => {
                if self.byte()? != 0xcb {
                    return None;
                }
                let v = crate::state::JsNumber(f64::from_bits(self.be(8)?));
                match v.special_name() {
                    Some(s) => {
                        out.push(b'"');
                        out.extend_from_slice(s.as_bytes());
                        out.push(b'"');
                    }
                    None => {
                        out.extend_from_slice(zmij::Buffer::new().format_finite(v.0).as_bytes())
                    }
                }
            }
            Ty::Bin => {
                let b = self.bin()?;
                out.push(b'"');
                let at = out.len();
                out.resize(at + base64::encoded_len(b.len(), true)?, 0);
                base64::engine::general_purpose::STANDARD
                    .encode_slice(b, out.get_mut(at..)?)
                    .ok()?;
                out.push(b'"');
            }
            Ty::KeyPath => match self.b.get(self.i)? {
                0x90..=0x9f | 0xdc | 0xdd => return self.seq(&STR, out, depth).map(|_| None),
                _ => json_str(out, self.str()?.as_bytes()),
            },
            Ty::Js => self.js(out, depth + 1)?,
            Ty::Struct(fields) => self.strukt(fields, out, depth, &mut |m, f, out| {
                m.value(f.ty, out, depth)
            })?,
            Ty::Seq(t) => return self.seq(t, out, depth).map(Some),
            Ty::Pair(a, b) => {
                if self.arr_len()? != 2 {
                    return None;
                }
                out.push(b'[');
                self.value(*a, out, depth)?;
                out.push(b',');
                self.value(*b, out, depth)?;
                out.push(b']');
            }
        }
        Some(None)
    }

    fn js(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let n = self.map_len()?;
        if self.str()? != "t" {
            return None;
        }
        let tag = self.str()?;
        let ty = variant(tag.as_bytes())?;
        out.extend_from_slice(b"{\"t\":");
        json_str(out, tag.as_bytes());
        match (ty, n) {
            (None, 1) => {}
            (Some(ty), 2) => {
                if self.str()? != "v" {
                    return None;
                }
                out.extend_from_slice(b",\"v\":");
                self.value(ty, out, depth)?;
            }
            _ => return None,
        }
        out.push(b'}');
        Some(())
    }
}

/// A JSON string as serde_json writes it: `"` and `\` escaped, control
/// bytes as `\b \t \n \f \r` or `\u00xx`, everything else as is.
fn json_str(out: &mut Vec<u8>, mut s: &[u8]) {
    out.push(b'"');
    while let Some(i) = find_special(s) {
        out.extend_from_slice(&s[..i]);
        let c = s[i];
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 0xf) as usize]);
                s = &s[i + 1..];
                continue;
            }
        };
        out.extend_from_slice(esc);
        s = &s[i + 1..];
    }
    out.extend_from_slice(s);
    out.push(b'"');
}
