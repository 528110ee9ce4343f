//! JSON → MessagePack (`host seal`): see the parent module.

use base64::Engine as _;

use super::to_json::MpIn;
use super::{Field, MAX_DEPTH, ORIGIN, STR, Ty, find_special, variant};

/// The MessagePack body of the origin whose JSON is `json` (canonical form
/// only), into `out` (cleared); returns the origin. `None`: let serde do it.
pub(crate) fn origin_to_msgpack(json: &[u8], out: &mut Vec<u8>) -> Option<String> {
    std::str::from_utf8(json).ok()?; // then every string in it is UTF-8
    out.clear();
    let mut j = JsonIn {
        b: json,
        i: 0,
        scratch: Vec::new(),
    };
    j.strukt(&ORIGIN, out, 0)?;
    j.ws();
    if j.i != json.len() {
        return None;
    }
    // The body starts: fixmap, "origin", the origin string.
    let mut m = MpIn {
        b: out.as_slice(),
        i: 0,
    };
    m.map_len()?;
    m.str()?;
    m.str().map(str::to_owned)
}

struct JsonIn<'a> {
    b: &'a [u8],
    i: usize,
    scratch: Vec<u8>,
}

impl JsonIn<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next non-blank byte, consumed.
    fn next(&mut self) -> Option<u8> {
        self.ws();
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn lit(&mut self, s: &[u8]) -> Option<()> {
        self.ws();
        let end = self.i + s.len();
        (self.b.get(self.i..end)? == s).then(|| self.i = end)
    }

    /// Whether the input continues with the key `"name"` (no escapes);
    /// consumes it if so.
    fn key_is(&mut self, name: &str) -> bool {
        let n = name.len();
        let rest = self.b.get(self.i..).unwrap_or_default();
        let hit = rest.len() > n + 1
            && rest[0] == b'"'
            && &rest[1..n + 1] == name.as_bytes()
            && rest[n + 1] == b'"';
        if hit {
            self.i += n + 2;
        }
        hit
    }

    /// A string's raw bytes when it has no escape (and no control byte).
    fn raw_str(&mut self) -> Option<(usize, usize, bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let rest = self.b.get(start..)?;
        let n = find_special(rest)?;
        match rest[n] {
            b'"' => {
                self.i = start + n + 1;
                Some((start, start + n, false))
            }
            b'\\' => Some((start, start + n, true)),
            _ => None, // a raw control byte: serde refuses it
        }
    }

    /// A string, unescaped: borrowed from the input or in `scratch`.
    fn str(&mut self) -> Option<&[u8]> {
        let (s, e, escaped) = self.raw_str()?;
        if !escaped {
            return self.b.get(s..e);
        }
        self.scratch.clear();
        self.i = s;
        loop {
            let rest = self.b.get(self.i..)?;
            let n = find_special(rest)?;
            self.scratch.extend_from_slice(&rest[..n]);
            self.i += n + 1;
            match rest[n] {
                b'"' => return Some(&self.scratch),
                b'\\' => {
                    let e = *self.b.get(self.i)?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let c = self.unicode()?;
                            let mut buf = [0u8; 4];
                            self.scratch
                                .extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                            continue;
                        }
                        _ => return None,
                    };
                    self.scratch.push(ch);
                }
                _ => return None, // a raw control byte: serde refuses it
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.b.get(self.i..self.i + 4)?;
        let s = std::str::from_utf8(h).ok()?;
        if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        self.i += 4;
        u32::from_str_radix(s, 16).ok()
    }

    /// After `\u`: one code point (a surrogate pair taken whole).
    fn unicode(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        if (0xDC00..0xE000).contains(&hi) {
            return None;
        }
        if (0xD800..0xDC00).contains(&hi) {
            if self.b.get(self.i..self.i + 2)? != b"\\u" {
                return None;
            }
            self.i += 2;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return None;
            }
            return char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
        }
        char::from_u32(hi)
    }

    /// A JSON number's text (grammar checked) and whether it is an integer.
    fn number(&mut self) -> Option<(&str, bool)> {
        self.ws();
        let b = self.b;
        let s = self.i;
        let mut i = s;
        let digits = |i: &mut usize| {
            let from = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > from
        };
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        if b.get(i) == Some(&b'0') {
            i += 1;
        } else if !digits(&mut i) {
            return None;
        }
        let mut int = true;
        if b.get(i) == Some(&b'.') {
            i += 1;
            int = false;
            if !digits(&mut i) {
                return None;
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            int = false;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
        }
        self.i = i;
        Some((std::str::from_utf8(b.get(s..i)?).ok()?, int))
    }

    fn strukt(&mut self, fields: &[Field], out: &mut Vec<u8>, depth: usize) -> Option<()> {
        self.eat(b'{')?;
        let at = out.len();
        out.push(0x80);
        let mut n = 0u8;
        let mut f = 0;
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            loop {
                self.ws();
                let field = loop {
                    let field = fields.get(f)?;
                    f += 1;
                    if self.key_is(field.name) {
                        break field;
                    }
                    if !field.opt {
                        return None; // missing, out of order, or unknown
                    }
                };
                self.eat(b':')?;
                mp_str(out, field.name.as_bytes());
                let len = self.value(field.ty, out, depth)?;
                if field.opt && len == Some(0) {
                    return None; // an empty list serde would leave out
                }
                n += 1;
                match self.next()? {
                    b',' => {}
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        if fields.get(f..)?.iter().any(|x| !x.opt) {
            return None;
        }
        *out.get_mut(at)? = 0x80 | n;
        Some(())
    }

    /// One value of type `ty`; for a list, its length.
    fn value(&mut self, ty: Ty, out: &mut Vec<u8>, depth: usize) -> Option<Option<usize>> {
        match ty {
            Ty::Str => {
                let s = self.str()?;
                mp_str(out, s);
            }
            Ty::Bool => match self.peek()? {
                b't' => self.lit(b"true").map(|_| out.push(0xc3))?,
                _ => self.lit(b"false").map(|_| out.push(0xc2))?,
            },
            Ty::Uint => {
                let (s, int) = self.number()?;
                if !int || s.starts_with('-') {
                    return None;
                }
                mp_uint(out, s.parse().ok()?);
            }
            Ty::Num => {
                let v = if self.peek()? == b'"' {
                    let s = self.str()?;
                    crate::state::JsNumber::from_special(std::str::from_utf8(s).ok()?)?.0
                } else {
                    let (s, int) = self.number()?;
                    // serde reads `-0` as the integer 0, and long integers
                    // its own way: leave those to it.
                    if int && (s == "-0" || s.len() > 18) {
                        return None;
                    }
                    let v: f64 = s.parse().ok()?;
                    if !v.is_finite() {
                        return None;
                    }
                    v
                };
                out.push(0xcb);
                out.extend_from_slice(&v.to_bits().to_be_bytes());
            }
            Ty::Bin => {
                let s = self.str()?;
                let mut bin = Vec::with_capacity(s.len() / 4 * 3);
                base64::engine::general_purpose::STANDARD
                    .decode_vec(s, &mut bin)
                    .ok()?;
                mp_bin(out, &bin);
            }
            Ty::KeyPath => {
                if self.peek()? == b'[' {
                    return self.seq(&STR, out, depth, 1).map(|_| None);
                }
                let s = self.str()?;
                mp_str(out, s);
            }
            Ty::Js => self.js(out, depth + 1)?,
            Ty::Struct(fields) => self.strukt(fields, out, depth)?,
            // Lists of values are short, a store's or origin's long.
            Ty::Seq(t) => {
                let guess = if matches!(t, Ty::Js | Ty::Pair(..)) {
                    1
                } else {
                    3
                };
                return self.seq(t, out, depth, guess).map(Some);
            }
            Ty::Pair(a, b) => {
                self.eat(b'[')?;
                out.push(0x92);
                self.value(*a, out, depth)?;
                self.eat(b',')?;
                self.value(*b, out, depth)?;
                self.eat(b']')?;
            }
        }
        Some(None)
    }

    /// A list. Its MessagePack header needs its length, known at the end:
    /// room for the header is left as `guess` bytes (1: up to 15 items,
    /// 3: up to 65535), and the items are moved only if that was wrong.
    fn seq(&mut self, t: &Ty, out: &mut Vec<u8>, depth: usize, guess: usize) -> Option<usize> {
        self.eat(b'[')?;
        let at = out.len();
        out.resize(at + guess, 0);
        let mut n = 0usize;
        if self.peek()? == b']' {
            self.i += 1;
        } else {
            loop {
                self.value(*t, out, depth)?;
                n += 1;
                match self.next()? {
                    b',' => {}
                    b']' => break,
                    _ => return None,
                }
            }
        }
        let mut h = [0u8; 5];
        let hl = {
            let mut v = Vec::with_capacity(5);
            mp_array(&mut v, n);
            h.get_mut(..v.len())?.copy_from_slice(&v);
            v.len()
        };
        if hl != guess {
            let end = out.len();
            if hl > guess {
                out.resize(end + hl - guess, 0);
            }
            out.copy_within(at + guess..end, at + hl);
            out.truncate(end + hl - guess);
        }
        out.get_mut(at..at + hl)?.copy_from_slice(h.get(..hl)?);
        Some(n)
    }

    fn js(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'{')?;
        let (s, e, escaped) = self.raw_str()?;
        if escaped || self.b.get(s..e)? != b"t" {
            return None;
        }
        self.eat(b':')?;
        let tag_at = out.len();
        out.push(0x81);
        mp_str(out, b"t");
        let (s, e, escaped) = self.raw_str()?;
        let tag = self.b.get(s..e)?;
        let ty = variant(tag).filter(|_| !escaped)?;
        mp_str(out, tag);
        match ty {
            None => self.eat(b'}'),
            Some(ty) => {
                self.eat(b',')?;
                let (s, e, escaped) = self.raw_str()?;
                if escaped || self.b.get(s..e)? != b"v" {
                    return None;
                }
                self.eat(b':')?;
                *out.get_mut(tag_at)? = 0x82;
                mp_str(out, b"v");
                self.value(ty, out, depth)?;
                self.eat(b'}')
            }
        }
    }
}

fn mp_len(out: &mut Vec<u8>, n: usize, fix: Option<(u8, usize)>, m8: Option<u8>, m16: u8, m32: u8) {
    match fix {
        Some((base, max)) if n < max => out.push(base | n as u8),
        _ => match m8 {
            Some(m) if n < 256 => out.extend_from_slice(&[m, n as u8]),
            _ if n < 65536 => {
                out.push(m16);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            _ => {
                out.push(m32);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
        },
    }
}

fn mp_str(out: &mut Vec<u8>, s: &[u8]) {
    mp_len(out, s.len(), Some((0xa0, 32)), Some(0xd9), 0xda, 0xdb);
    out.extend_from_slice(s);
}

fn mp_bin(out: &mut Vec<u8>, b: &[u8]) {
    mp_len(out, b.len(), None, Some(0xc4), 0xc5, 0xc6);
    out.extend_from_slice(b);
}

fn mp_array(out: &mut Vec<u8>, n: usize) {
    mp_len(out, n, Some((0x90, 16)), None, 0xdc, 0xdd);
}

fn mp_uint(out: &mut Vec<u8>, v: u64) {
    if v < 128 {
        out.push(v as u8);
    } else if v < 256 {
        out.extend_from_slice(&[0xcc, v as u8]);
    } else if v < 65536 {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v < (1 << 32) {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}
