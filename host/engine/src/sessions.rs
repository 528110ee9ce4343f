//! Stored sessions that need no browser: create, list, show, extend,
//! delete, history, rollback, cleanup (built-in or by a strategy plugin).

use std::path::PathBuf;
use std::time::Duration;

use sesshost_plugin::{CleanupAction, CleanupLimits, Grants, SessionStatus};
use sesshost_store::{
    CleanupReport, GcReport, NewSession, SaveReport, SessionInfo, SnapshotInfo, now_ms,
};

use crate::engine::Engine;
use crate::error::{Result, ResultExt};

/// `cleanup` with a strategy plugin.
#[derive(Debug, Clone)]
pub struct StrategyCleanup {
    pub strategy: PathBuf,
    pub grants: Grants,
    pub limits: CleanupLimits,
    pub dry_run: bool,
}

/// What was done with one session a strategy decided on.
#[derive(Debug, Clone)]
pub struct Decision {
    pub name: String,
    pub action: CleanupAction,
    pub reason: String,
    pub outcome: DecisionOutcome,
}

#[derive(Debug, Clone)]
pub enum DecisionOutcome {
    Kept,
    /// A stored session is already at rest; the service acts on these.
    KeptAtRest,
    WouldRemove,
    Removed,
    NotRemoved(String),
}

impl Engine {
    pub async fn create(&self, new: NewSession) -> Result<SessionInfo> {
        self.with_store(move |s| Ok(s.create(&new, now_ms())?))
            .await
    }

    pub async fn list(&self) -> Result<Vec<SessionInfo>> {
        self.with_store(|s| Ok(s.list(now_ms())?)).await
    }

    pub async fn show(&self, name: &str) -> Result<SessionInfo> {
        let name = name.to_string();
        self.with_store(move |s| Ok(s.show(&name)?)).await
    }

    /// [`Engine::show`] from the session's index entry (one small read;
    /// `sesshost_store::Store::show_indexed`): for answering reads often.
    pub async fn show_indexed(&self, name: &str) -> Result<SessionInfo> {
        let name = name.to_string();
        self.with_store(move |s| Ok(s.show_indexed(&name, now_ms())?))
            .await
    }

    pub async fn extend(&self, name: &str, by: Duration) -> Result<SessionInfo> {
        let name = name.to_string();
        self.with_store(move |s| Ok(s.extend(&name, by, now_ms())?))
            .await
    }

    pub async fn delete(&self, name: &str) -> Result<GcReport> {
        let name = name.to_string();
        self.with_store(move |s| Ok(s.delete(&name)?)).await
    }

    pub async fn history(&self, name: &str) -> Result<Vec<SnapshotInfo>> {
        let name = name.to_string();
        self.with_store(move |s| Ok(s.history(&name)?)).await
    }

    /// Make snapshot `to` (default: the one before the current) current
    /// again, as a new snapshot; also returns that snapshot's note.
    pub async fn rollback(&self, name: &str, to: Option<u64>) -> Result<(SaveReport, String)> {
        let name = name.to_string();
        self.with_store(move |s| {
            let r = s
                .rollback(&name, to, now_ms())
                .with_context(|| format!("cannot roll back session {name}"))?;
            let note = s
                .history(&name)?
                .last()
                .map(|x| x.note.clone())
                .unwrap_or_default();
            Ok((r, note))
        })
        .await
    }

    /// Remove expired and damaged sessions (the built-in rule).
    pub async fn cleanup(&self) -> Result<CleanupReport> {
        self.with_store(|s| Ok(s.cleanup(now_ms())?)).await
    }

    /// Let a cleanup-strategy plugin decide per session; the engine acts.
    pub async fn cleanup_with_strategy(&self, req: StrategyCleanup) -> Result<Vec<Decision>> {
        let now = now_ms();
        let infos = self.list().await?;
        let home = self.home().clone();
        let sessions: Vec<sesshost_plugin::SessionInfo> = infos
            .iter()
            .map(|i| sesshost_plugin::SessionInfo {
                name: i.name.clone(),
                tenant: None,
                created_at: i.created_at,
                last_used_at: i.last_used_at.unwrap_or(i.updated_at.max(i.created_at)),
                expires_at: i.expires_at,
                ttl_secs: i.ttl_secs,
                size_bytes: i.stored_bytes,
                status: if i.expired {
                    SessionStatus::Expired
                } else if home.is_open(&i.name) {
                    SessionStatus::Active
                } else {
                    SessionStatus::Idle
                },
            })
            .collect();
        let plugin = self.plugins()?.load_cleanup(&req.strategy, &req.grants)?;
        let limits = CleanupLimits { now, ..req.limits };
        let decisions = plugin.decide(&sessions, &limits).await?;
        let mut out = Vec::with_capacity(decisions.len());
        for d in decisions {
            let outcome = match d.action {
                CleanupAction::Keep => DecisionOutcome::Kept,
                CleanupAction::Hibernate => DecisionOutcome::KeptAtRest,
                CleanupAction::Expire | CleanupAction::Delete if req.dry_run => {
                    DecisionOutcome::WouldRemove
                }
                CleanupAction::Expire | CleanupAction::Delete => match self.delete(&d.name).await {
                    Ok(_) => DecisionOutcome::Removed,
                    Err(e) => DecisionOutcome::NotRemoved(e.to_string()),
                },
            };
            out.push(Decision {
                name: d.name,
                action: d.action,
                reason: d.reason,
                outcome,
            });
        }
        Ok(out)
    }
}
