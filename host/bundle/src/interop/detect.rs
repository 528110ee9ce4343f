//! Which file format a file is, from its first bytes, so `host import` can
//! pick a reader or say what to do with a file it cannot import.

/// What [`detect`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// A `.sessbundle` (its magic bytes).
    Sessbundle,
    /// Playwright `storageState` JSON (top-level `cookies` or `origins`).
    Playwright,
    /// Netscape cookies.txt (its header comment, or a 7-field cookie line).
    CookiesTxt,
    /// sesshost's own state JSON, as `host unseal` writes it (top-level
    /// `meta`): not an import format; seal it with
    /// `host seal FILE -o X.sessbundle` first, then import the bundle.
    SesshostStateJson,
    Unknown,
}

/// How many leading bytes [`detect`] looks at (more are ignored).
pub const DETECT_PREFIX: usize = 64 * 1024;

/// The format of a file from its first bytes (pass up to
/// [`DETECT_PREFIX`]; 4 KiB is enough for any file this tool writes). Never
/// panics; a prefix cut anywhere is fine.
pub fn detect(bytes_prefix: &[u8]) -> Detected {
    let b = &bytes_prefix[..bytes_prefix.len().min(DETECT_PREFIX)];
    if b.starts_with(&crate::format::MAGIC) {
        return Detected::Sessbundle;
    }
    let b = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
    let start = b.iter().position(|c| !c.is_ascii_whitespace());
    match start.map(|i| (b[i], &b[i..])) {
        Some((b'{', json)) => json_kind(json),
        Some(_) => cookies_txt_kind(b),
        None => Detected::Unknown,
    }
}

/// Looks at the top-level keys of a JSON object, as far as the prefix goes.
fn json_kind(json: &[u8]) -> Detected {
    let (mut depth, mut in_str, mut esc) = (0u32, false, false);
    let mut str_start = 0usize;
    let mut last_top_string: Option<&[u8]> = None;
    for (i, &c) in json.iter().enumerate() {
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
                if depth == 1 {
                    last_top_string = json.get(str_start..i);
                }
            }
            continue;
        }
        match c {
            b'"' => {
                in_str = true;
                str_start = i + 1;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b':' if depth == 1 => match last_top_string.take() {
                Some(b"meta") => return Detected::SesshostStateJson,
                Some(b"cookies" | b"origins") => return Detected::Playwright,
                _ => {}
            },
            c if !c.is_ascii_whitespace() => last_top_string = None,
            _ => {}
        }
    }
    Detected::Unknown
}

fn cookies_txt_kind(text: &[u8]) -> Detected {
    for line in text.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b"# Netscape HTTP Cookie File")
            || line.starts_with(b"# HTTP Cookie File")
        {
            return Detected::CookiesTxt;
        }
        let line = line.strip_prefix(b"#HttpOnly_").unwrap_or(line);
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let f: Vec<&[u8]> = line.split(|&c| c == b'\t').collect();
        let flag = |x: &[u8]| x == b"TRUE" || x == b"FALSE";
        if (f.len() == 7 || f.len() == 6) && flag(f[1]) && flag(f[3]) {
            return Detected::CookiesTxt;
        }
        return Detected::Unknown;
    }
    Detected::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interop::fixtures::sample;

    #[test]
    fn detects_each_format_from_a_prefix() {
        let (pw, _) = crate::interop::to_playwright(&sample());
        let (txt, _) = crate::interop::to_cookies_txt(&sample());
        let state = serde_json::to_string_pretty(&sample()).unwrap();
        assert_eq!(detect(pw.as_bytes()), Detected::Playwright);
        assert_eq!(detect(&pw.as_bytes()[..20]), Detected::Playwright);
        assert_eq!(detect(txt.as_bytes()), Detected::CookiesTxt);
        assert_eq!(
            detect(b"\n.x.org\tTRUE\t/\tFALSE\t0\tn\tv\n"),
            Detected::CookiesTxt
        );
        assert_eq!(detect(state.as_bytes()), Detected::SesshostStateJson);
        assert_eq!(
            detect(br#"{"cookiesX":1, "x": {"meta": 1}, "origins": []}"#),
            Detected::Playwright,
            "nested keys are not top-level keys"
        );
        assert_eq!(detect(br#"{"x": "meta", "y": 2}"#), Detected::Unknown);
        assert_eq!(detect(&crate::format::MAGIC), Detected::Sessbundle);
        assert_eq!(detect(b""), Detected::Unknown);
        assert_eq!(detect(b"hello world"), Detected::Unknown);
        assert_eq!(detect(b"{\"a\\\"meta\": 1}"), Detected::Unknown);
    }
}
