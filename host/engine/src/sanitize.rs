//! Sanitiser plugins run on a state before it leaves the store (export).
//! The stored session is never changed: each plugin returns a new state.

use std::path::{Path, PathBuf};

use sessbundle::SessionState;
use sessbundle::manifest::SanitizerEntry;
use sesshost_plugin::{
    ConfigValue, Grants, Report, SanitizeContext, config_for, parse_config_pair,
};

use crate::engine::Engine;
use crate::error::{Error, Result, ResultExt};

/// Sanitisers to run, in order, with their configuration: `key=value` goes
/// to every sanitiser, `STEM.key=value` to the one whose file stem is STEM.
#[derive(Debug, Clone, Default)]
pub struct SanitizeRequest {
    pub plugins: Vec<PathBuf>,
    pub config: Vec<String>,
}

impl SanitizeRequest {
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }
}

/// The sanitised state, the manifest entries naming each sanitiser, and
/// each sanitiser's report (never values).
pub struct Sanitized {
    pub state: SessionState,
    pub entries: Vec<SanitizerEntry>,
    pub reports: Vec<Report>,
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Engine {
    /// Run the sanitisers of `req` on `state` for an export to `destination`.
    pub async fn sanitize(
        &self,
        req: &SanitizeRequest,
        state: SessionState,
        destination: &str,
    ) -> Result<Sanitized> {
        let parsed: Vec<(String, ConfigValue)> = req
            .config
            .iter()
            .map(|p| parse_config_pair(p))
            .collect::<sesshost_plugin::Result<_>>()?;
        let stems: Vec<String> = req.plugins.iter().map(|p| stem(p)).collect();
        let stem_refs: Vec<&str> = stems.iter().map(String::as_str).collect();
        let mut current = state;
        let mut entries = Vec::new();
        let mut reports = Vec::new();
        for (path, st) in req.plugins.iter().zip(&stems) {
            let grants = Grants {
                config: config_for(&parsed, st, &stem_refs),
                ..Default::default()
            };
            let s = self.plugins()?.load_sanitizer(path, &grants)?;
            let ctx = SanitizeContext {
                purpose: "export".into(),
                destination: Some(destination.into()),
                config: vec![],
            };
            let (next, report) = s.sanitize(&current, &ctx).await.with_context(|| {
                format!(
                    "sanitiser {} stopped the export; nothing was written",
                    path.display()
                )
            })?;
            let b3 = sessbundle::keys::unhex::<32>(&report.blake3).ok_or_else(|| {
                Error::Invalid(format!(
                    "sanitiser {}: the runtime reported a blake3 that is not 32 bytes of hex",
                    path.display()
                ))
            })?;
            entries.push(SanitizerEntry {
                name: report.plugin.clone(),
                blake3: sessbundle::format::Bin(b3),
            });
            reports.push(report);
            current = next;
        }
        Ok(Sanitized {
            state: current,
            entries,
            reports,
        })
    }
}
