//! Sanitiser plugins (world `sanitizer`): `SessionState` in, sanitised
//! `SessionState` and a [`Report`] out, or a rejection.

use std::path::Path;

use serde::Serialize;
use sessbundle::state::SessionState;
use wasmtime::component::InstancePre;

use crate::bindings::sanitizer as b;
use crate::bindings::{state_from_wit, state_to_wit};
use crate::config::Grants;
use crate::error::{Error, Result};
use crate::host::HostState;
use crate::runtime::{Plugin, Runtime, World, private};

/// Marker for the `sanitizer` world.
pub struct SanitizerWorld;

impl private::Sealed for SanitizerWorld {}

impl World for SanitizerWorld {
    const WORLD: &'static str = "sanitizer";
    type Pre = b::SanitizerPre<HostState>;
    fn pre(pre: InstancePre<HostState>, _version: &str) -> wasmtime::Result<Self::Pre> {
        b::SanitizerPre::new(pre)
    }
}

/// A loaded sanitiser.
pub type Sanitizer = Plugin<SanitizerWorld>;

/// Why and where the state is leaving.
#[derive(Debug, Clone, Default)]
pub struct SanitizeContext {
    /// `export`, `push`, ...
    pub purpose: String,
    /// A file name or backend URL, if known.
    pub destination: Option<String>,
    /// Extra `key=value` configuration for this call (already resolved);
    /// overrides the plugin's `--plugin-config` for the same key.
    pub config: Vec<(String, String)>,
}

/// What a finding did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingAction {
    Dropped,
    Redacted,
    Filtered,
}

/// One change a sanitiser made (never contains the removed value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub location: String,
    pub action: FindingAction,
    pub reason: String,
}

/// A sanitiser's report, for `host export --sanitize` to print.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The plugin's file name.
    pub plugin: String,
    /// The plugin's BLAKE3 (for the bundle manifest).
    pub blake3: String,
    pub summary: String,
    pub findings: Vec<Finding>,
}

impl Runtime {
    /// Loads a sanitiser; fails if the file is not a `sanitizer` world of a
    /// supported version, or its manifest asks for more than `grants`.
    pub fn load_sanitizer(&self, path: &Path, grants: &Grants) -> Result<Sanitizer> {
        self.load(path, grants)
    }
}

impl Plugin<SanitizerWorld> {
    /// Runs the sanitiser on `state`. Returns the sanitised state and its
    /// report; [`Error::Rejected`] if the plugin refused the export; any
    /// other error if it misbehaved (the input is untouched either way).
    pub async fn sanitize(
        &self,
        state: &SessionState,
        ctx: &SanitizeContext,
    ) -> Result<(SessionState, Report)> {
        let (mut store, cx) = self.begin("sanitize").await?;
        let mut config = cx.prepared.config.clone();
        for (k, v) in &ctx.config {
            crate::config::set_config(&mut config, k, v);
        }
        let config: Vec<(&str, &str)> = config
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let wctx = b::exports::sesshost::plugin::sanitize::Context {
            purpose: &ctx.purpose,
            destination: ctx.destination.as_deref(),
            config: &config,
        };
        let bump = bumpalo::Bump::new();
        let input = state_to_wit(state, &bump);
        let prepared = cx.prepared.clone();
        let out = cx
            .step(async {
                let inst = prepared.pre.instantiate_async(&mut store).await?;
                inst.sesshost_plugin_sanitize()
                    .call_sanitize(&mut store, input, wctx)
                    .await
            })
            .await?;
        let name = prepared.name.clone();
        match out {
            Ok(s) => {
                let state = state_from_wit(s.state).map_err(|detail| Error::Malformed {
                    plugin: name.clone(),
                    call: "sanitize".into(),
                    detail,
                })?;
                use b::exports::sesshost::plugin::sanitize::Action;
                let findings = s
                    .report
                    .findings
                    .into_iter()
                    .map(|f| Finding {
                        location: f.location,
                        action: match f.action {
                            Action::Dropped => FindingAction::Dropped,
                            Action::Redacted => FindingAction::Redacted,
                            Action::Filtered => FindingAction::Filtered,
                        },
                        reason: f.reason,
                    })
                    .collect();
                Ok((
                    state,
                    Report {
                        plugin: name,
                        blake3: prepared.hash.clone(),
                        summary: s.report.summary,
                        findings,
                    },
                ))
            }
            Err(reason) => Err(cx.denied().unwrap_or(Error::Rejected {
                plugin: name,
                reason: crate::error::untrusted(&reason),
            })),
        }
    }
}
