//! `notrack`: the example sanitiser from plugins/README.md (kept building so
//! the README stays true).

wit_bindgen::generate!({ world: "sanitizer", path: "../../wit" });

use exports::sesshost::plugin::sanitize::{Action, Context, Finding, Guest, Report, Sanitized};
use sesshost::plugin::types::SessionState;

struct NoTrack;

impl Guest for NoTrack {
    fn sanitize(mut state: SessionState, ctx: Context) -> Result<Sanitized, String> {
        if state.meta.tags.iter().any(|t| t == "private") {
            return Err("session is tagged private".into());
        }
        // Configurable with --sanitize-config notrack.trackers=a.example,b.example
        let trackers: Vec<String> = ctx
            .config
            .iter()
            .find(|(k, _)| k == "trackers")
            .map(|(_, v)| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_else(|| vec!["doubleclick.net".into()]);
        let mut findings = Vec::new();
        state.cookies.retain(|c| {
            let site = c.domain.trim_start_matches('.');
            let tracked = trackers
                .iter()
                .any(|t| site == t || site.ends_with(&format!(".{t}")));
            if tracked {
                findings.push(Finding {
                    location: format!("cookie {}{} {}", c.domain, c.path, c.name),
                    action: Action::Dropped,
                    reason: "tracking domain".into(),
                });
            }
            !tracked
        });
        let summary = format!("notrack: dropped {} tracking cookies", findings.len());
        Ok(Sanitized {
            state,
            report: Report { findings, summary },
        })
    }
}

export!(NoTrack);
