//! Netscape `cookies.txt` (curl `-b`/`-c`, wget, yt-dlp), with curl's
//! `#HttpOnly_` prefix.

use super::{InteropError, InteropLimits, Loss, Warnings, state_level_warnings};
use crate::state::*;

/// A state's cookies as a Netscape cookies.txt (curl's format, with
/// `#HttpOnly_` for httpOnly cookies), with warnings. Partitioned cookies
/// are left out (the format cannot say they are partitioned, and sending
/// them unpartitioned would change who receives them).
pub fn to_cookies_txt(state: &SessionState) -> (String, Warnings) {
    let mut warnings = Warnings::new();
    let mut loss = Loss::default();
    let mut out = String::from(
        "# Netscape HTTP Cookie File\n# Written by sesshost. Holds login secrets: keep it private.\n\n",
    );
    for c in &state.cookies {
        if c.partition_key.is_some() {
            loss.add(
                "partitioned (CHIPS) cookie left out (cookies.txt cannot hold a partition key)",
            );
            continue;
        }
        let bad = |s: &str| s.contains(['\t', '\n', '\r']);
        if bad(&c.name) || bad(&c.value) || bad(&c.domain) || bad(&c.path) {
            loss.add("cookie with a tab or line break in a field left out");
            continue;
        }
        if c.same_site.is_some() {
            loss.add("cookie SameSite attribute dropped (cookies.txt cannot hold it)");
        }
        let sub = c.domain.starts_with('.');
        let expires = c.expires.map_or(0, |e| e.max(1.0) as i64);
        out.push_str(&format!(
            "{}{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            if c.http_only { "#HttpOnly_" } else { "" },
            c.domain,
            if sub { "TRUE" } else { "FALSE" },
            c.path,
            if c.secure { "TRUE" } else { "FALSE" },
            expires,
            c.name,
            c.value
        ));
    }
    if !state.origins.is_empty() {
        let ls: usize = state.origins.iter().map(|o| o.local_storage.len()).sum();
        let idb: usize = state.origins.iter().map(|o| o.indexed_db.len()).sum();
        warnings.push(format!(
            "localStorage ({ls} item(s)) and IndexedDB ({idb} database(s)) of {} origin(s) are not kept: cookies.txt holds cookies only",
            state.origins.len()
        ));
    }
    state_level_warnings(state, "cookies.txt", &mut warnings);
    loss.into_warnings(&mut warnings);
    (out, warnings)
}

/// Reads a Netscape cookies.txt into a new state named `name`, with
/// [`InteropLimits::default`]. Lines that are not cookies are skipped with
/// a warning.
pub fn from_cookies_txt(
    text: &str,
    name: &str,
    now_ms: i64,
) -> Result<(SessionState, Warnings), InteropError> {
    from_cookies_txt_bytes(text.as_bytes(), name, now_ms, &InteropLimits::default())
}

/// Reads a cookies.txt file (raw bytes) within `limits`. Lines that are not
/// cookies are skipped with a warning; a NUL byte, invalid UTF-8 or a line
/// or field over its cap refuses the file, naming the line.
pub fn from_cookies_txt_bytes(
    bytes: &[u8],
    name: &str,
    now_ms: i64,
    limits: &InteropLimits,
) -> Result<(SessionState, Warnings), InteropError> {
    limits.check_input("cookies.txt file", bytes.len())?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // A final newline ends the last line; it does not start another.
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut warnings = Warnings::new();
    let mut state = SessionState::new(name, now_ms);
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let n = i as u64 + 1;
        if n > limits.max_lines {
            return Err(InteropError::OverLimit {
                what: format!(
                    "the cookies.txt file has more than {} lines",
                    limits.max_lines
                ),
                cap: limits.max_lines,
                knob: "max_lines",
            });
        }
        if raw.len() as u64 > limits.max_line_bytes {
            return Err(InteropError::OverLimit {
                what: format!("cookies.txt line {n} is {} bytes", raw.len()),
                cap: limits.max_line_bytes,
                knob: "max_line_bytes",
            });
        }
        if let Some(at) = raw.iter().position(|&b| b == 0) {
            return Err(InteropError::CookiesTxtLine {
                line: n,
                why: format!(
                    "has a NUL byte (at byte {}): a cookies.txt is text; check that you passed the right file",
                    at + 1
                ),
            });
        }
        let line = std::str::from_utf8(raw).map_err(|e| InteropError::CookiesTxtLine {
            line: n,
            why: format!(
                "is not valid UTF-8 (at byte {}): re-save the file as UTF-8",
                e.valid_up_to() + 1
            ),
        })?;
        let line = line.trim_end_matches('\r');
        let (http_only, line) = match line.strip_prefix("#HttpOnly_") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if let Some(big) = f.iter().find(|x| x.len() as u64 > limits.max_field_bytes) {
            return Err(InteropError::OverLimit {
                what: format!("a field of cookies.txt line {n} is {} bytes", big.len()),
                cap: limits.max_field_bytes,
                knob: "max_field_bytes",
            });
        }
        let parsed = (|| {
            if f.len() != 7 && f.len() != 6 {
                return None;
            }
            let flag = |s: &str| match s {
                "TRUE" => Some(true),
                "FALSE" => Some(false),
                _ => None,
            };
            let sub = flag(f[1])?;
            let secure = flag(f[3])?;
            let exp: f64 = f[4].trim().parse().ok().filter(|e: &f64| e.is_finite())?;
            let mut domain = f[0].to_owned();
            if domain.is_empty() {
                return None;
            }
            if sub && !domain.starts_with('.') {
                domain.insert(0, '.');
            }
            if !sub && domain.starts_with('.') {
                domain.remove(0);
            }
            Some(Cookie {
                name: f[5].to_owned(),
                value: f.get(6).copied().unwrap_or("").to_owned(),
                domain,
                path: f[2].to_owned(),
                expires: (exp > 0.0).then_some(exp),
                http_only,
                secure,
                ..Default::default()
            })
        })();
        match parsed {
            Some(c) => state.cookies.push(c),
            None => warnings.push(format!("line {n} is not a cookie line; skipped")),
        }
    }
    if state.cookies.is_empty() {
        return Err(InteropError::NoCookies);
    }
    warnings.push(format!(
        "{} cookie(s) imported without SameSite (cookies.txt cannot hold it; the browser applies its default, Lax)",
        state.cookies.len()
    ));
    Ok((state, warnings))
}
#[cfg(test)]
mod tests {
    use super::super::fixtures::sample;
    use super::*;

    #[test]
    fn cookies_txt_round_trip_and_warnings() {
        let s = sample();
        let (txt, w) = to_cookies_txt(&s);
        assert!(txt.starts_with("# Netscape HTTP Cookie File"));
        assert!(txt.contains("#HttpOnly_.app.test\tTRUE\t/\tTRUE\t1900000000\tsid\tv-sid\n"));
        assert!(txt.contains("\napp.test\tFALSE\t/\tFALSE\t0\tsess\tv-sess\n"));
        assert!(!txt.contains("chip"), "partitioned cookies are left out");
        let all = w.join("\n");
        assert!(all.contains("partitioned (CHIPS) cookie left out"), "{all}");
        assert!(all.contains("SameSite"), "{all}");
        assert!(
            all.contains("localStorage (1 item(s)) and IndexedDB (1 database(s))"),
            "{all}"
        );

        let (back, w2) = from_cookies_txt(&txt, "c", 1).unwrap();
        assert_eq!(back.cookies.len(), 2);
        let sid = &back.cookies[0];
        assert_eq!(
            (sid.domain.as_str(), sid.http_only, sid.secure, sid.expires),
            (".app.test", true, true, Some(1_900_000_000.0))
        );
        let sess = &back.cookies[1];
        assert_eq!(
            (sess.domain.as_str(), sess.expires, sess.http_only),
            ("app.test", None, false)
        );
        assert!(w2.iter().any(|w| w.contains("without SameSite")));
    }

    #[test]
    fn cookies_txt_reader_is_lenient_but_not_blind() {
        let txt = "# comment\n\nexample.com\tTRUE\t/\tFALSE\t0\tname\t\r\nnot a cookie line\n.x.org\tFALSE\t/p\tTRUE\t123\tn2\tv2\n";
        let (s, w) = from_cookies_txt(txt, "c", 1).unwrap();
        assert_eq!(s.cookies.len(), 2);
        assert_eq!(s.cookies[0].domain, ".example.com");
        assert_eq!(s.cookies[0].value, "");
        assert_eq!(s.cookies[1].domain, "x.org");
        assert_eq!(s.cookies[1].expires, Some(123.0));
        assert!(w.iter().any(|w| w.contains("line 4")), "{w:?}");
        assert!(matches!(
            from_cookies_txt("# only comments\n", "c", 1),
            Err(InteropError::NoCookies)
        ));
    }

    fn read(b: &[u8], l: &InteropLimits) -> Result<(SessionState, Warnings), InteropError> {
        from_cookies_txt_bytes(b, "c", 1, l)
    }

    #[test]
    fn nul_and_invalid_utf8_name_their_line() {
        let l = InteropLimits::default();
        let e = read(
            b"# c\nx.org\tFALSE\t/\tFALSE\t0\tn\\0\tv\nx.org\tFALSE\t/\tFALSE\t0\ta\x00b\tv\n",
            &l,
        )
        .unwrap_err();
        assert!(
            matches!(e, InteropError::CookiesTxtLine { line: 3, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("NUL"), "{e}");
        let e = read(b"x.org\tFALSE\t/\tFALSE\t0\tn\t\xff\xfe\n", &l).unwrap_err();
        assert!(
            matches!(e, InteropError::CookiesTxtLine { line: 1, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("UTF-8"), "{e}");
        // A UTF-8 byte-order mark is fine.
        assert!(read(b"\xEF\xBB\xBFx.org\tFALSE\t/\tFALSE\t0\tn\tv\n", &l).is_ok());
    }

    #[test]
    fn lines_fields_and_size_are_capped() {
        let knob = |r: Result<(SessionState, Warnings), InteropError>| match r {
            Err(InteropError::OverLimit { knob, .. }) => knob,
            other => panic!("{other:?}"),
        };
        let line = b"x.org\tFALSE\t/\tFALSE\t0\tn\tv\n";
        let small = InteropLimits {
            max_lines: 3,
            max_line_bytes: 40,
            max_field_bytes: 8,
            max_input_bytes: 200,
            ..Default::default()
        };
        assert!(read(&line.repeat(3), &small).is_ok());
        assert_eq!(knob(read(&line.repeat(4), &small)), "max_lines");
        assert_eq!(knob(read(&line.repeat(8), &small)), "max_input_bytes");
        let long = b"x.org\tFALSE\t/\tFALSE\t0\tn\t0123456789012345678901234567890\n";
        assert_eq!(knob(read(long, &small)), "max_line_bytes");
        let field = b"x.org\tFALSE\t/\tFALSE\t0\tn\t0123456789\n";
        assert_eq!(knob(read(field, &small)), "max_field_bytes");
    }

    #[test]
    fn non_finite_expiry_is_not_a_cookie() {
        // `"inf".parse::<f64>()` succeeds: the old reader kept an infinite expiry.
        for e in ["inf", "NaN", "1e999"] {
            let txt =
                format!("x.org\tFALSE\t/\tFALSE\t{e}\tn\tv\ny.org\tFALSE\t/\tFALSE\t0\tm\tv\n");
            let (s, w) = from_cookies_txt(&txt, "c", 1).unwrap();
            assert_eq!(s.cookies.len(), 1, "{e}");
            assert!(w.iter().any(|w| w.contains("line 1")), "{w:?}");
        }
    }
}
