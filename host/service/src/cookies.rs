//! Cookies over the REST API, as pure functions on sessbundle's state
//! model: parsing request input ([`parse_cookie_input`], every error naming
//! the exact field), RFC 6265 domain matching, and the edits
//! (upsert, delete) and JSON view used by the cookie routes.

use serde_json::{Map, Value, json};

use sessbundle::state::{Cookie, SameSite, SessionState};

/// Cookies accepted in one call at most.
pub const MAX_COOKIES_PER_CALL: usize = 1000;
/// `name` + `value` bytes at most (browsers refuse larger cookies).
pub const MAX_NAME_VALUE_BYTES: usize = 4096;
/// Cookie path bytes at most.
pub const MAX_PATH_BYTES: usize = 1024;

/// Which input field is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// e.g. `cookies[2].domain`.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

const FIELDS: &[&str] = &[
    "name",
    "value",
    "domain",
    "path",
    "expires",
    "http_only",
    "secure",
    "same_site",
];

/// Cookies from `{"cookies": [COOKIE, ...]}` or a single `COOKIE` object,
/// where `COOKIE` is `{name, value, domain, path?, expires? (unix seconds),
/// http_only?, secure?, same_site? ("Strict"|"Lax"|"None", any case)}`.
pub fn parse_cookie_input(body: &Value) -> Result<Vec<Cookie>, FieldError> {
    let Some(obj) = body.as_object() else {
        return Err(err(
            "body",
            "expected a JSON object: {\"cookies\": [...]} or one cookie object",
        ));
    };
    if let Some(list) = obj.get("cookies") {
        if let Some(k) = obj.keys().find(|k| *k != "cookies") {
            return Err(err(
                k.as_str(),
                "unknown field beside \"cookies\"; send {\"cookies\": [...]} alone",
            ));
        }
        let Some(list) = list.as_array() else {
            return Err(err("cookies", "expected an array of cookie objects"));
        };
        if list.is_empty() {
            return Err(err("cookies", "empty array; send at least one cookie"));
        }
        if list.len() > MAX_COOKIES_PER_CALL {
            return Err(err(
                "cookies",
                format!(
                    "{} cookies, over the {MAX_COOKIES_PER_CALL} per call cap; send them in several calls",
                    list.len()
                ),
            ));
        }
        list.iter()
            .enumerate()
            .map(|(i, c)| parse_one(c, &format!("cookies[{i}].")))
            .collect()
    } else {
        Ok(vec![parse_one(body, "")?])
    }
}

fn parse_one(v: &Value, at: &str) -> Result<Cookie, FieldError> {
    let f = |name: &str| format!("{at}{name}");
    let Some(o) = v.as_object() else {
        let here = if at.is_empty() {
            "body"
        } else {
            at.trim_end_matches('.')
        };
        return Err(err(here, "expected a cookie object"));
    };
    if let Some(k) = o.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(err(
            f(k),
            format!("unknown field; valid fields are {}", FIELDS.join(", ")),
        ));
    }
    let string = |name: &str, required: bool| -> Result<Option<String>, FieldError> {
        match o.get(name) {
            None | Some(Value::Null) if !required => Ok(None),
            None | Some(Value::Null) => Err(err(f(name), "missing; it is required")),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(err(f(name), "expected a string")),
        }
    };
    let boolean = |name: &str| -> Result<bool, FieldError> {
        match o.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(err(f(name), "expected true or false")),
        }
    };
    let name = string("name", true)?.unwrap_or_default();
    let value = string("value", true)?.unwrap_or_default();
    let domain = string("domain", true)?.unwrap_or_default();
    if name.is_empty() {
        return Err(err(f("name"), "empty; a cookie needs a name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, ';' | '=' | ','))
    {
        return Err(err(
            f("name"),
            format!(
                "contains {c:?}; names may not hold control characters, spaces, ';', ',' or '='"
            ),
        ));
    }
    if value.chars().any(|c| c.is_control() || c == ';') {
        return Err(err(
            f("value"),
            "contains a control character or ';' (encode the value, e.g. percent-encoding)",
        ));
    }
    if name.len() + value.len() > MAX_NAME_VALUE_BYTES {
        return Err(err(
            f("value"),
            format!(
                "name and value are {} bytes, over the {MAX_NAME_VALUE_BYTES}-byte cap browsers apply",
                name.len() + value.len()
            ),
        ));
    }
    let domain = domain.to_ascii_lowercase();
    if let Err(m) = check_domain(&domain) {
        return Err(err(f("domain"), m));
    }
    let path = string("path", false)?.unwrap_or_else(|| "/".into());
    if !path.starts_with('/')
        || path.len() > MAX_PATH_BYTES
        || path.chars().any(|c| c.is_control() || c == ';')
    {
        return Err(err(
            f("path"),
            format!(
                "must start with '/', be at most {MAX_PATH_BYTES} bytes, with no control characters or ';'"
            ),
        ));
    }
    let expires = match o.get("expires") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x.is_finite() && x > 0.0 && x < 253_402_300_800.0 => Some(x),
            _ => {
                return Err(err(
                    f("expires"),
                    "expected unix seconds after 1970 and before 10000; leave it out for a session cookie",
                ));
            }
        },
        Some(_) => return Err(err(f("expires"), "expected a number (unix seconds)")),
    };
    let http_only = boolean("http_only")?;
    let secure = boolean("secure")?;
    let same_site = match string("same_site", false)? {
        None => None,
        Some(s) => Some(match s.to_ascii_lowercase().as_str() {
            "strict" => SameSite::Strict,
            "lax" => SameSite::Lax,
            "none" => SameSite::None,
            _ => {
                return Err(err(
                    f("same_site"),
                    "expected \"Strict\", \"Lax\" or \"None\"",
                ));
            }
        }),
    };
    if same_site == Some(SameSite::None) && !secure {
        return Err(err(
            f("secure"),
            "same_site \"None\" needs secure: true (browsers drop it otherwise)",
        ));
    }
    Ok(Cookie {
        name,
        value,
        domain,
        path,
        expires,
        http_only,
        secure,
        same_site,
        ..Cookie::default()
    })
}

/// Whether `domain` (optionally with a leading dot) is a valid host name or
/// IPv4 address; the error says what is wrong.
fn check_domain(domain: &str) -> Result<(), String> {
    let host = domain.strip_prefix('.').unwrap_or(domain);
    if host.is_empty() {
        return Err("empty; give the site's host name, e.g. example.com (or .example.com for subdomains too)".into());
    }
    if host.len() > 253 {
        return Err("longer than 253 characters, too long for a host name".into());
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("has an empty label or one over 63 characters; expected a host name like example.com".into());
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err("is not a host name (letters, digits, '-' and '.' only; IDN names in punycode, e.g. xn--bcher-kva.example)".into());
        }
    }
    Ok(())
}

/// RFC 6265 §5.1.3 domain matching: a leading dot marks a domain cookie
/// (the domain and its subdomains match); otherwise host-only (exact
/// match). Case-insensitive; "ample.com" does not match "example.com".
pub fn domain_matches(cookie_domain: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let cd = cookie_domain.to_ascii_lowercase();
    match cd.strip_prefix('.') {
        Some(d) => !d.is_empty() && within(&host, d),
        None => host == cd,
    }
}

/// Whether `site` is `domain` or one of its subdomains (both without a
/// leading dot, lower case).
fn within(site: &str, domain: &str) -> bool {
    site == domain
        || (site.len() > domain.len()
            && site.ends_with(domain)
            && site.as_bytes().get(site.len() - domain.len() - 1) == Some(&b'.'))
}

/// The cookies of `domain` and its subdomains, plus the parent-domain
/// cookies a request to `domain` would carry by RFC 6265 domain matching
/// (`.example.com` for `shop.example.com`); leading dot and case ignored.
pub fn cookies_for_domain<'a>(state: &'a SessionState, domain: &str) -> Vec<&'a Cookie> {
    let d = domain.trim_start_matches('.').to_ascii_lowercase();
    state
        .cookies
        .iter()
        .filter(|c| within(&c.site(), &d) || domain_matches(&c.domain, &d))
        .collect()
}

fn same_cookie(a: &Cookie, b: &Cookie) -> bool {
    a.name == b.name && a.path == b.path && a.domain.eq_ignore_ascii_case(&b.domain)
}

/// Adds `new`, replacing any cookie with the same (name, domain, path).
/// Returns how many were written.
pub fn upsert_cookies(state: &mut SessionState, new: Vec<Cookie>) -> usize {
    let n = new.len();
    for c in new {
        match state.cookies.iter_mut().find(|old| same_cookie(old, &c)) {
            Some(old) => *old = c,
            None => state.cookies.push(c),
        }
    }
    n
}

/// Deletes the cookies of `domain` (and its subdomains) and/or named
/// `name`; both `None` deletes every cookie. Returns how many went.
pub fn delete_cookies(state: &mut SessionState, domain: Option<&str>, name: Option<&str>) -> usize {
    let d = domain.map(|d| d.trim_start_matches('.').to_ascii_lowercase());
    let before = state.cookies.len();
    state.cookies.retain(|c| {
        let dm = d.as_deref().is_none_or(|d| within(&c.site(), d));
        let nm = name.is_none_or(|n| c.name == n);
        !(dm && nm)
    });
    before - state.cookies.len()
}

/// A cookie as JSON, in the input's field names; `value` only with `values`.
pub fn cookie_json(c: &Cookie, values: bool) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(c.name));
    if values {
        m.insert("value".into(), json!(c.value));
    }
    m.insert("domain".into(), json!(c.domain));
    m.insert("path".into(), json!(c.path));
    if let Some(e) = c.expires {
        m.insert("expires".into(), json!(e));
    }
    m.insert("http_only".into(), json!(c.http_only));
    m.insert("secure".into(), json!(c.secure));
    if let Some(s) = c.same_site {
        let s = match s {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        };
        m.insert("same_site".into(), json!(s));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ck(name: &str, domain: &str, path: &str) -> Cookie {
        Cookie {
            name: name.into(),
            value: "v".into(),
            domain: domain.into(),
            path: path.into(),
            ..Cookie::default()
        }
    }

    #[test]
    fn parses_list_and_single() {
        let one =
            parse_cookie_input(&json!({"name": "sid", "value": "x", "domain": "Example.COM"}))
                .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].domain, "example.com");
        assert_eq!(one[0].path, "/");
        let many = parse_cookie_input(&json!({"cookies": [
            {"name": "a", "value": "1", "domain": ".example.com", "path": "/x", "expires": 1900000000, "http_only": true, "secure": true, "same_site": "none"},
            {"name": "b", "value": "", "domain": "127.0.0.1", "same_site": "LAX"}
        ]}))
        .unwrap();
        assert_eq!(many[0].same_site, Some(SameSite::None));
        assert_eq!(many[0].expires, Some(1.9e9));
        assert!(many[0].http_only && many[0].secure);
        assert_eq!(many[1].same_site, Some(SameSite::Lax));
        // Round trip through cookie_json.
        let back = parse_cookie_input(&cookie_json(&many[0], true)).unwrap();
        assert_eq!(back[0], many[0]);
        assert!(cookie_json(&many[0], false).get("value").is_none());
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!([1]), "body"),
            (json!({"cookies": 3}), "cookies"),
            (
                json!({"cookies": [{"name": "a", "value": "b", "domain": "e.com"}, "x"]}),
                "cookies[1]",
            ),
            (json!({"cookies": []}), "cookies"),
            (json!({"cookies": [], "x": 1}), "x"),
            (
                json!({"cookies": [{"name": "a", "value": "b", "domain": "e.com"}, {"name": "a", "value": "b"}]}),
                "cookies[1].domain",
            ),
            (
                json!({"cookies": [{"name": "a", "value": "b", "domain": "e.com"}, {"name": "a", "value": "b", "domain": "e.com"}, {"name": "a", "value": "b", "domain": "bad domain"}]}),
                "cookies[2].domain",
            ),
            (json!({"name": "", "value": "b", "domain": "e.com"}), "name"),
            (
                json!({"name": "a=b", "value": "b", "domain": "e.com"}),
                "name",
            ),
            (json!({"name": "a", "value": 5, "domain": "e.com"}), "value"),
            (
                json!({"name": "a", "value": "x;y", "domain": "e.com"}),
                "value",
            ),
            (
                json!({"name": "a", "value": "x".repeat(4096), "domain": "e.com"}),
                "value",
            ),
            (
                json!({"name": "a", "value": "b", "domain": "-e.com"}),
                "domain",
            ),
            (json!({"name": "a", "value": "b", "domain": "."}), "domain"),
            (
                json!({"name": "a", "value": "b", "domain": "e..com"}),
                "domain",
            ),
            (
                json!({"name": "a", "value": "b", "domain": "e.com", "path": "x"}),
                "path",
            ),
            (
                json!({"name": "a", "value": "b", "domain": "e.com", "expires": "soon"}),
                "expires",
            ),
            (
                json!({"name": "a", "value": "b", "domain": "e.com", "expires": -1}),
                "expires",
            ),
            (
                json!({"name": "a", "value": "b", "domain": "e.com", "secure": "yes"}),
                "secure",
            ),
            (
                json!({"name": "a", "value": "b", "domain": "e.com", "same_site": "sometimes"}),
                "same_site",
            ),
            (
                json!({"name": "a", "value": "b", "domain": "e.com", "same_site": "None"}),
                "secure",
            ),
            (
                json!({"name": "a", "value": "b", "domain": "e.com", "httpOnly": true}),
                "httpOnly",
            ),
        ];
        for (input, field) in cases {
            let e = parse_cookie_input(&input).unwrap_err();
            assert_eq!(e.field, field, "{input}: {e}");
            assert!(!e.message.is_empty());
        }
        let too_many: Vec<Value> = (0..1001)
            .map(|_| json!({"name": "a", "value": "b", "domain": "e.com"}))
            .collect();
        let e = parse_cookie_input(&json!({"cookies": too_many})).unwrap_err();
        assert_eq!(e.field, "cookies");
        assert!(e.message.contains("1000"));
    }

    #[test]
    fn rfc6265_domain_matching() {
        assert!(domain_matches(".example.com", "example.com"));
        assert!(domain_matches(".example.com", "www.Example.com"));
        assert!(domain_matches(".EXAMPLE.com", "a.b.example.com."));
        assert!(!domain_matches(".example.com", "ample.com"));
        assert!(!domain_matches(".ample.com", "example.com"));
        assert!(!domain_matches(".example.com", "badexample.com"));
        assert!(domain_matches("example.com", "EXAMPLE.COM"));
        assert!(!domain_matches("example.com", "www.example.com"));
        assert!(!domain_matches("", "example.com"));
        assert!(!domain_matches(".", "example.com"));
    }

    #[test]
    fn select_upsert_delete() {
        let mut s = SessionState {
            cookies: vec![
                ck("a", ".example.com", "/"),
                ck("b", "www.example.com", "/"),
                ck("c", "ample.com", "/"),
            ],
            ..SessionState::default()
        };
        let got: Vec<_> = cookies_for_domain(&s, "Example.com")
            .iter()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(got, ["a", "b"]);
        // www.example.com: its own cookie and the .example.com one it is sent.
        assert_eq!(cookies_for_domain(&s, "www.example.com").len(), 2);
        assert_eq!(cookies_for_domain(&s, "ample.com").len(), 1);
        let mut repl = ck("a", ".EXAMPLE.com", "/");
        repl.value = "new".into();
        assert_eq!(
            upsert_cookies(&mut s, vec![repl, ck("a", ".example.com", "/other")]),
            2
        );
        assert_eq!(s.cookies.len(), 4);
        assert_eq!(s.cookies[0].value, "new");
        assert_eq!(delete_cookies(&mut s, Some("example.com"), Some("a")), 2);
        assert_eq!(delete_cookies(&mut s, Some("nowhere.org"), None), 0);
        assert_eq!(delete_cookies(&mut s, None, Some("c")), 1);
        assert_eq!(delete_cookies(&mut s, None, None), 1);
        assert!(s.cookies.is_empty());
    }
}
