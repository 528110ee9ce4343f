//! `redact`: the reference sanitiser.
//!
//! Drops (or, with `mode=redact`, blanks the value of) every cookie,
//! localStorage / sessionStorage item, IndexedDB object property and URL
//! query parameter whose *name* contains a sensitive pattern; optionally
//! keeps some sites untouched and exports only some sites.
//!
//! Configuration (all optional; unknown keys are ignored because unprefixed
//! `--sanitize-config` keys reach every sanitiser):
//! - `patterns`: comma-separated, replaces the default list;
//! - `extra_patterns`: comma-separated, added to the list;
//! - `mode`: `drop` (default) or `redact` (keep the name, replace the value);
//! - `keep_domains`: comma-separated sites never touched;
//! - `only_domains`: comma-separated sites to export; everything of other
//!   sites is removed.
//!
//! Names match case-insensitively, by substring, with `-` treated as `_`
//! (`X-Api-Key` matches `api_key`). A domain `d` matches a site `s` when
//! `s == d` or `s` ends with `.d`.

wit_bindgen::generate!({ world: "sanitizer", path: "../../wit" });

use exports::sesshost::plugin::sanitize::{Action, Context, Finding, Guest, Report, Sanitized};
use sesshost::plugin::types::{Cookie, SessionState, StorageItem};

/// The default patterns (issue 4).
const DEFAULT_PATTERNS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "auth",
    "session",
    "ssn",
    "credit_card",
    "card_number",
    "cvv",
];

/// What replaces a value in `redact` mode.
const REDACTED: &str = "REDACTED";

struct Policy {
    patterns: Vec<String>,
    redact: bool,
    keep: Vec<String>,
    only: Option<Vec<String>>,
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

impl Policy {
    fn parse(config: &[(String, String)]) -> Result<Policy, String> {
        let mut p = Policy {
            patterns: DEFAULT_PATTERNS.iter().map(|s| s.to_string()).collect(),
            redact: false,
            keep: Vec::new(),
            only: None,
        };
        let mut extra = Vec::new();
        for (k, v) in config {
            match k.as_str() {
                "patterns" => {
                    p.patterns = list(v).into_iter().map(|s| s.replace('-', "_")).collect()
                }
                "extra_patterns" => extra.extend(list(v).into_iter().map(|s| s.replace('-', "_"))),
                "mode" => {
                    p.redact = match v.as_str() {
                        "drop" => false,
                        "redact" => true,
                        other => {
                            return Err(format!(
                                "redact: mode must be `drop` or `redact`, not `{other}`"
                            ));
                        }
                    }
                }
                "keep_domains" => p.keep = list(v),
                "only_domains" => p.only = Some(list(v)),
                _ => {}
            }
        }
        p.patterns.extend(extra);
        Ok(p)
    }

    /// The first pattern `name` contains (ASCII case-insensitive, `-` as
    /// `_`). Allocation-free: it runs for every name in the session.
    fn sensitive(&self, name: &str) -> Option<&str> {
        fn norm(b: u8) -> u8 {
            if b == b'-' {
                b'_'
            } else {
                b.to_ascii_lowercase()
            }
        }
        let n = name.as_bytes();
        self.patterns
            .iter()
            .find(|p| {
                let p = p.as_bytes();
                !p.is_empty()
                    && n.len() >= p.len()
                    && n.windows(p.len())
                        .any(|w| w.iter().zip(p).all(|(a, b)| norm(*a) == *b))
            })
            .map(|s| s.as_str())
    }

    fn kept(&self, site: &str) -> bool {
        matches_any(&self.keep, site)
    }

    fn excluded(&self, site: &str) -> bool {
        self.only.as_ref().is_some_and(|o| !matches_any(o, site))
    }

    fn action(&self) -> Action {
        if self.redact {
            Action::Redacted
        } else {
            Action::Dropped
        }
    }
}

fn matches_any(domains: &[String], site: &str) -> bool {
    domains.iter().any(|d| {
        site == d
            || (site.len() > d.len()
                && site.ends_with(d.as_str())
                && site.as_bytes()[site.len() - d.len() - 1] == b'.')
    })
}

/// `https://a.example:8443/x` -> `a.example`.
fn url_site(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.split(':').next().unwrap_or(host)
    };
    host.to_ascii_lowercase()
}

struct Run<'a> {
    p: &'a Policy,
    findings: Vec<Finding>,
}

impl Run<'_> {
    fn note(&mut self, location: String, action: Action, reason: String) {
        self.findings.push(Finding {
            location,
            action,
            reason,
        });
    }

    /// Applies the name patterns to storage items; `what` names the store.
    fn items(&mut self, what: &str, origin: &str, items: &mut Vec<StorageItem>) {
        let p = self.p;
        items.retain_mut(|it| match p.sensitive(&it.key) {
            None => true,
            Some(pat) => {
                self.findings.push(Finding {
                    location: format!("{what} {origin} {}", it.key),
                    action: p.action(),
                    reason: format!("key matches `{pat}`"),
                });
                if p.redact {
                    it.value = REDACTED.into();
                }
                p.redact
            }
        });
    }

    /// Applies the name patterns to a URL's query parameters.
    fn url(&mut self, what: &str, url: &mut String) {
        let Some((base, rest)) = url.split_once('?') else {
            return;
        };
        let (query, frag) = match rest.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (rest, None),
        };
        let mut changed = false;
        let mut out = Vec::new();
        for pair in query.split('&') {
            let name = pair.split('=').next().unwrap_or("");
            match self.p.sensitive(name) {
                None => out.push(pair.to_string()),
                Some(pat) => {
                    changed = true;
                    self.findings.push(Finding {
                        location: format!("{what} {base} ?{name}"),
                        action: self.p.action(),
                        reason: format!("query parameter matches `{pat}`"),
                    });
                    if self.p.redact {
                        out.push(format!("{name}={REDACTED}"));
                    }
                }
            }
        }
        if changed {
            let mut u = base.to_string();
            if !out.is_empty() {
                u.push('?');
                u.push_str(&out.join("&"));
            }
            if let Some(f) = frag {
                u.push('#');
                u.push_str(f);
            }
            *url = u;
        }
    }

    /// Walks a `JsValue` (JSON form) and drops/redacts sensitive object
    /// properties and string-keyed map entries. Returns whether it changed.
    fn js(&mut self, loc: &str, v: &mut serde_json::Value) -> bool {
        use serde_json::Value;
        let Some(obj) = v.as_object_mut() else {
            return false;
        };
        let t = obj
            .get("t")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let Some(Value::Array(items)) = obj.get_mut("v") else {
            return false;
        };
        let mut changed = false;
        match t.as_str() {
            "object" | "map" => {
                let p = self.p;
                let mut i = 0;
                while i < items.len() {
                    let name = match &items[i] {
                        Value::Array(kv) if t == "object" => {
                            kv.first().and_then(Value::as_str).map(str::to_string)
                        }
                        Value::Array(kv) => kv
                            .first()
                            .filter(|k| k.get("t").and_then(Value::as_str) == Some("string"))
                            .and_then(|k| k.get("v"))
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        _ => None,
                    };
                    if let Some(pat) = name.as_deref().and_then(|n| p.sensitive(n)) {
                        let name = name.clone().unwrap_or_default();
                        self.note(
                            format!("{loc} .{name}"),
                            p.action(),
                            format!("property matches `{pat}`"),
                        );
                        changed = true;
                        if p.redact {
                            items[i][1] = serde_json::json!({"t": "string", "v": REDACTED});
                            i += 1;
                        } else {
                            items.remove(i);
                        }
                        continue;
                    }
                    if let Some(Value::Array(kv)) = items.get_mut(i)
                        && let Some(inner) = kv.get_mut(1)
                    {
                        changed |= self.js(loc, inner);
                    }
                    i += 1;
                }
            }
            "array" | "set" => {
                for it in items.iter_mut() {
                    changed |= self.js(loc, it);
                }
            }
            _ => {}
        }
        changed
    }

    fn state(&mut self, s: &mut SessionState) {
        let p = self.p;
        // Cookies.
        let by_site = !p.keep.is_empty() || p.only.is_some();
        s.cookies.retain_mut(|c| {
            let loc = |c: &Cookie| format!("cookie {}{} {}", c.domain, c.path, c.name);
            if by_site {
                let site = c.domain.trim_start_matches('.').to_ascii_lowercase();
                if p.kept(&site) {
                    return true;
                }
                if p.excluded(&site) {
                    self.findings.push(Finding {
                        location: loc(c),
                        action: Action::Filtered,
                        reason: "site not in only_domains".into(),
                    });
                    return false;
                }
            }
            match p.sensitive(&c.name) {
                None => true,
                Some(pat) => {
                    self.findings.push(Finding {
                        location: loc(c),
                        action: p.action(),
                        reason: format!("name matches `{pat}`"),
                    });
                    if p.redact {
                        c.value = REDACTED.into();
                    }
                    p.redact
                }
            }
        });
        // Origins: localStorage and IndexedDB.
        let mut origins = std::mem::take(&mut s.origins);
        origins.retain_mut(|o| {
            let site = url_site(&o.origin);
            if p.kept(&site) {
                return true;
            }
            if p.excluded(&site) {
                self.note(
                    format!("origin {}", o.origin),
                    Action::Filtered,
                    "site not in only_domains".into(),
                );
                return false;
            }
            self.items("localStorage", &o.origin, &mut o.local_storage);
            for db in &mut o.indexed_db {
                for st in &mut db.object_stores {
                    let loc = format!("indexedDB {} {}/{}", o.origin, db.name, st.name);
                    for r in &mut st.records {
                        if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&r.value_json)
                            && self.js(&loc, &mut v)
                        {
                            r.value_json = v.to_string();
                        }
                    }
                }
            }
            true
        });
        s.origins = origins;
        // Tabs: URLs, history and sessionStorage.
        let mut tabs = std::mem::take(&mut s.tabs);
        tabs.retain_mut(|t| {
            let site = url_site(&t.url);
            if p.kept(&site) {
                return true;
            }
            if p.excluded(&site) {
                self.note(
                    format!("tab {site}"),
                    Action::Filtered,
                    "site not in only_domains".into(),
                );
                return false;
            }
            self.url("tab", &mut t.url);
            for h in &mut t.history {
                self.url("history", &mut h.url);
            }
            t.session_storage.retain_mut(|os| {
                let site = url_site(&os.origin);
                if p.kept(&site) {
                    return true;
                }
                if p.excluded(&site) {
                    self.note(
                        format!("sessionStorage {}", os.origin),
                        Action::Filtered,
                        "site not in only_domains".into(),
                    );
                    return false;
                }
                self.items("sessionStorage", &os.origin, &mut os.items);
                true
            });
            true
        });
        s.tabs = tabs;
    }
}

struct Redact;

impl Guest for Redact {
    fn sanitize(mut state: SessionState, ctx: Context) -> Result<Sanitized, String> {
        let policy = Policy::parse(&ctx.config)?;
        let mut run = Run {
            p: &policy,
            findings: Vec::new(),
        };
        run.state(&mut state);
        let count = |a: Action| run.findings.iter().filter(|f| f.action == a).count();
        let summary = format!(
            "redact: {} dropped, {} redacted, {} filtered by site",
            count(Action::Dropped),
            count(Action::Redacted),
            count(Action::Filtered)
        );
        Ok(Sanitized {
            state,
            report: Report {
                findings: run.findings,
                summary,
            },
        })
    }
}

export!(Redact);
