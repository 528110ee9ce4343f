//! Cleanup strategy plugins (world `cleanup-strategy`): session infos and
//! limits in, one [`Decision`] per session out.

use std::path::Path;

use serde::Serialize;
use wasmtime::component::InstancePre;

use crate::bindings::cleanup as b;
use crate::config::Grants;
use crate::error::{Error, Result};
use crate::host::HostState;
use crate::runtime::{Plugin, Runtime, World, private};

use b::exports::sesshost::plugin::cleanup as w;

/// Marker for the `cleanup-strategy` world.
pub struct CleanupWorld;

impl private::Sealed for CleanupWorld {}

impl World for CleanupWorld {
    const WORLD: &'static str = "cleanup-strategy";
    type Pre = b::CleanupStrategyPre<HostState>;
    fn pre(pre: InstancePre<HostState>, _version: &str) -> wasmtime::Result<Self::Pre> {
        b::CleanupStrategyPre::new(pre)
    }
}

/// A loaded cleanup strategy.
pub type CleanupStrategy = Plugin<CleanupWorld>;

/// Lifecycle state of a stored session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Active,
    Idle,
    Hibernated,
    Expired,
}

/// What the host knows about one stored session. Times in ms since epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub name: String,
    pub tenant: Option<String>,
    pub created_at: i64,
    /// Equals `created_at` if never used.
    pub last_used_at: i64,
    pub expires_at: Option<i64>,
    pub ttl_secs: Option<u64>,
    pub size_bytes: u64,
    pub status: SessionStatus,
}

/// Limits handed to the strategy; `None` = no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupLimits {
    /// Current time, ms since epoch (plugins get no clock of their own
    /// that the host vouches for).
    pub now: i64,
    pub idle_timeout_secs: Option<u64>,
    pub max_sessions: Option<u32>,
    pub max_bytes: Option<u64>,
    pub max_sessions_per_tenant: Option<u32>,
    pub max_bytes_per_tenant: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CleanupAction {
    Keep,
    Hibernate,
    Expire,
    Delete,
}

/// The strategy's decision for one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub name: String,
    pub action: CleanupAction,
    pub reason: String,
}

impl Runtime {
    /// Loads a cleanup strategy.
    pub fn load_cleanup(&self, path: &Path, grants: &Grants) -> Result<CleanupStrategy> {
        self.load(path, grants)
    }
}

impl Plugin<CleanupWorld> {
    /// Asks the strategy what to do with each session. The result has
    /// exactly one decision per input session, in input order (sessions the
    /// plugin left out are kept); a decision for an unknown session or two
    /// for the same session is [`Error::Malformed`].
    pub async fn decide(
        &self,
        sessions: &[SessionInfo],
        limits: &CleanupLimits,
    ) -> Result<Vec<Decision>> {
        let (mut store, cx) = self.begin("decide").await?;
        let infos: Vec<w::SessionInfo> = sessions
            .iter()
            .map(|s| w::SessionInfo {
                name: s.name.clone(),
                tenant: s.tenant.clone(),
                created_at: s.created_at,
                last_used_at: s.last_used_at,
                expires_at: s.expires_at,
                ttl_secs: s.ttl_secs,
                size_bytes: s.size_bytes,
                status: match s.status {
                    SessionStatus::Active => w::SessionStatus::Active,
                    SessionStatus::Idle => w::SessionStatus::Idle,
                    SessionStatus::Hibernated => w::SessionStatus::Hibernated,
                    SessionStatus::Expired => w::SessionStatus::Expired,
                },
            })
            .collect();
        let wl = w::Limits {
            now: limits.now,
            idle_timeout_secs: limits.idle_timeout_secs,
            max_sessions: limits.max_sessions,
            max_bytes: limits.max_bytes,
            max_sessions_per_tenant: limits.max_sessions_per_tenant,
            max_bytes_per_tenant: limits.max_bytes_per_tenant,
        };
        let prepared = cx.prepared.clone();
        let out = cx
            .step(async {
                let inst = prepared.pre.instantiate_async(&mut store).await?;
                inst.sesshost_plugin_cleanup()
                    .call_decide(&mut store, &infos, wl, &prepared.config)
                    .await
            })
            .await?;
        let name = prepared.name.clone();
        let decisions = out.map_err(|reason| Error::Cleanup {
            plugin: name.clone(),
            reason: crate::error::untrusted(&reason),
        })?;
        let mut result: Vec<Option<Decision>> = vec![None; sessions.len()];
        // Session name -> its first index (what `position` would find).
        let mut index: std::collections::HashMap<&str, usize> = Default::default();
        for (i, s) in sessions.iter().enumerate() {
            index.entry(s.name.as_str()).or_insert(i);
        }
        for d in decisions {
            let malformed = |detail: String| Error::Malformed {
                plugin: name.clone(),
                call: "decide".into(),
                detail,
            };
            let i = *index
                .get(d.name.as_str())
                .ok_or_else(|| malformed(format!("a decision for unknown session `{}`", d.name)))?;
            if result[i].is_some() {
                return Err(malformed(format!("two decisions for session `{}`", d.name)));
            }
            result[i] = Some(Decision {
                name: d.name,
                action: match d.action {
                    w::Action::Keep => CleanupAction::Keep,
                    w::Action::Hibernate => CleanupAction::Hibernate,
                    w::Action::Expire => CleanupAction::Expire,
                    w::Action::Delete => CleanupAction::Delete,
                },
                reason: d.reason,
            });
        }
        Ok(result
            .into_iter()
            .zip(sessions)
            .map(|(d, s)| {
                d.unwrap_or_else(|| Decision {
                    name: s.name.clone(),
                    action: CleanupAction::Keep,
                    reason: "no decision from the plugin".into(),
                })
            })
            .collect())
    }
}
