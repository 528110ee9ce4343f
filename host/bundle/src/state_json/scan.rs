//! A structural scan of state JSON's top level: the value of each field
//! and each element of `origins`, as byte ranges, without parsing them, so
//! the origins can be parsed on several threads.
//!
//! The scan checks the top level's syntax (`{`, keys, `:`, `,`, `}`, end of
//! input) and finds where each value ends by counting brackets outside
//! strings. It does not check a value's own syntax: every range it gives is
//! parsed by serde afterwards, and the concatenation of a well-formed top
//! level and well-formed values is exactly well-formed JSON. Cost: one pass
//! on its own thread, at memory speed over origins laid out as serde
//! writes them (see [`elements`]).

/// What the scan found, in input order.
pub(super) enum Event<'a> {
    /// A top-level field other than an `origins` array: its key
    /// (unescaped) and its value's bytes.
    Field(String, &'a [u8]),
    /// `"origins": [`: the elements follow.
    OriginsStart,
    /// One element of `origins`.
    Origin(&'a [u8]),
}

/// Why the scan stopped.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// The top level is not an object (it may be the array form of a
    /// state, which the serial parser reads).
    NotAnObject,
    /// Not well-formed JSON (serde will say exactly where).
    Invalid,
    /// The event handler said stop.
    Handler,
}

/// Scan `b`, handing each [`Event`] to `on` (which returns false to stop).
pub(super) fn scan<'a>(b: &'a [u8], mut on: impl FnMut(Event<'a>) -> bool) -> Result<(), Stop> {
    let mut i = ws(b, 0);
    match b.get(i) {
        Some(b'{') => i += 1,
        _ => return Err(Stop::NotAnObject),
    }
    i = ws(b, i);
    if b.get(i) == Some(&b'}') {
        return end(b, i + 1);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return Err(Stop::Invalid);
        }
        let k_end = string_end(b, i).ok_or(Stop::Invalid)?;
        let key = key(&b[i..k_end]).ok_or(Stop::Invalid)?;
        i = ws(b, k_end);
        if b.get(i) != Some(&b':') {
            return Err(Stop::Invalid);
        }
        i = ws(b, i + 1);
        if key == "origins" && b.get(i) == Some(&b'[') {
            if !on(Event::OriginsStart) {
                return Err(Stop::Handler);
            }
            i = elements(b, i, &mut on)?;
        } else {
            let v_end = value_end(b, i).ok_or(Stop::Invalid)?;
            if !on(Event::Field(key, &b[i..v_end])) {
                return Err(Stop::Handler);
            }
            i = v_end;
        }
        i = ws(b, i);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1),
            Some(b'}') => return end(b, i + 1),
            _ => return Err(Stop::Invalid),
        }
    }
}

/// How an element of `origins` starts in the layout serde and `host
/// unseal` write (no other object inside an origin has `origin` first).
const ORIGIN_START: &[u8] = b"{\"origin\":";

/// The elements of the array at `b[i] == b'['`; returns the index after `]`.
///
/// An element that starts with [`ORIGIN_START`] is taken to end before the
/// `,` that precedes the next [`ORIGIN_START`] (found with `memmem`, far
/// faster than walking the element), else it is walked. Either way serde
/// then parses the element whole; a wrong guess is a range that does not
/// parse, so it cannot pass for a valid state. (If a range from one
/// element start to a `,` parses as a whole value, the JSON grammar makes
/// that `,` the element's end: a value is never a prefix of a longer one
/// that continues with `,`.)
fn elements<'a>(
    b: &'a [u8],
    mut i: usize,
    on: &mut impl FnMut(Event<'a>) -> bool,
) -> Result<usize, Stop> {
    let finder = memchr::memmem::Finder::new(ORIGIN_START);
    i = ws(b, i + 1);
    if b.get(i) == Some(&b']') {
        return Ok(i + 1);
    }
    loop {
        let guess = b
            .get(i..)
            .filter(|rest| rest.starts_with(ORIGIN_START))
            .and_then(|_| finder.find(b.get(i + 1..)?))
            .and_then(|n| {
                let next = i + 1 + n;
                let before = b.get(i..next)?;
                let comma = before
                    .iter()
                    .rposition(|c| !matches!(c, b' ' | b'\n' | b'\r' | b'\t'))?;
                (before[comma] == b',').then_some(i + comma)
            });
        let e = match guess {
            Some(e) => {
                // Trim blanks before the comma.
                let mut e = e;
                while e > i && matches!(b[e - 1], b' ' | b'\n' | b'\r' | b'\t') {
                    e -= 1;
                }
                e
            }
            None => value_end(b, i).ok_or(Stop::Invalid)?,
        };
        if !on(Event::Origin(&b[i..e])) {
            return Err(Stop::Handler);
        }
        i = ws(b, e);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1),
            Some(b']') => return Ok(i + 1),
            _ => return Err(Stop::Invalid),
        }
    }
}

fn end(b: &[u8], i: usize) -> Result<(), Stop> {
    if ws(b, i) == b.len() {
        Ok(())
    } else {
        Err(Stop::Invalid)
    }
}

/// A key's text: borrowed when it has no escapes, else unescaped by serde.
fn key(quoted: &[u8]) -> Option<String> {
    let inner = quoted.get(1..quoted.len().saturating_sub(1))?;
    if inner.contains(&b'\\') {
        serde_json::from_slice(quoted).ok()
    } else {
        std::str::from_utf8(inner).ok().map(str::to_owned)
    }
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(i) {
        i += 1;
    }
    i
}

/// `b[i] == b'"'`: the index after the closing quote.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        j += super::fast::find_special(b.get(j..)?)?;
        match b[j] {
            b'"' => return Some(j + 1),
            b'\\' => j += 2, // a backslash and the byte it escapes
            _ => j += 1,     // a control byte: serde will refuse it
        }
    }
}

/// The index after the value starting at `i` (brackets counted, strings
/// skipped; the value's own syntax is left to serde).
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while let Some(&c) = b.get(j) {
                match c {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let n = b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t'))
                .unwrap_or(b.len() - i);
            (n > 0).then_some(i + n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(s: &str) -> Result<Vec<String>, Stop> {
        let mut v = Vec::new();
        scan(s.as_bytes(), |e| {
            v.push(match e {
                Event::Field(k, b) => format!("{k}={}", String::from_utf8_lossy(b)),
                Event::OriginsStart => "[".into(),
                Event::Origin(b) => format!("o:{}", String::from_utf8_lossy(b)),
            });
            true
        })?;
        Ok(v)
    }

    #[test]
    fn finds_fields_and_origins() {
        let got = events(
            " {\"meta\" : {\"a\":\"}\\\"]\"} , \"o\\u0072igins\":[ {\"x\":[1,{}]} ,2, \"s\"],\"n\":-1.5e3 } \n",
        )
        .unwrap();
        assert_eq!(
            got,
            [
                r#"meta={"a":"}\"]"}"#,
                "[",
                r#"o:{"x":[1,{}]}"#,
                "o:2",
                r#"o:"s""#,
                "n=-1.5e3"
            ]
        );
        // Origins laid out as serde writes them are split by pattern.
        let got = events(
            "{\"origins\":[{\"origin\":\"a\",\"v\":\",{\\\"origin\\\":1\"} ,\n{\"origin\":\"b\"},{\"origin\":\"c\" ,{\"origin\":\"d\"}]}",
        )
        .unwrap();
        assert_eq!(
            got,
            [
                "[",
                r#"o:{"origin":"a","v":",{\"origin\":1"}"#,
                r#"o:{"origin":"b"}"#,
                // Not an element (serde refuses it), but a range ending at a comma.
                r#"o:{"origin":"c""#,
                r#"o:{"origin":"d"}"#,
            ]
        );
        assert_eq!(events("{}").unwrap(), Vec::<String>::new());
        assert_eq!(events(r#"{"origins":[]}"#).unwrap(), ["["]);
        assert_eq!(events(r#"{"origins":null}"#).unwrap(), ["origins=null"]);
    }

    #[test]
    fn refuses_bad_top_levels() {
        assert_eq!(events("[1]"), Err(Stop::NotAnObject));
        assert_eq!(events(""), Err(Stop::NotAnObject));
        for bad in [
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{\"a\":1 \"b\":2}",
            "{\"a\":1} x",
            "{\"a\":\"x}",
            "{\"a\":[1,2}",
            "{\"origins\":[1,]}",
            "{\"origins\":[1 2]}",
            "{\"origins\":[{\"a\":\"\\",
            "{1:2}",
        ] {
            assert_eq!(events(bad), Err(Stop::Invalid), "{bad}");
        }
    }
}
