//! `ttl`: the reference cleanup strategy.
//!
//! For each session, in this order:
//! 1. past its TTL (`expires-at <= now`): `expire`, or `delete` if it was
//!    already expired;
//! 2. idle longer than the idle timeout: `hibernate` (sessions already
//!    hibernated stay so);
//! 3. over quota: the least recently used sessions are `delete`d until each
//!    tenant, then the whole store, is within `max-sessions*` / `max-bytes*`;
//! 4. otherwise `keep`.
//!
//! The idle timeout is `limits.idle-timeout-secs`, else the config key
//! `idle_timeout_secs`, else 30 minutes. Sessions without a tenant share the
//! tenant "" for per-tenant quotas.

wit_bindgen::generate!({ world: "cleanup-strategy", path: "../../wit" });

use std::collections::BTreeMap;

use exports::sesshost::plugin::cleanup::{
    Action, Decision, Guest, Limits, SessionInfo, SessionStatus,
};

/// Default idle timeout: 30 minutes.
const DEFAULT_IDLE_SECS: u64 = 30 * 60;

struct Ttl;

impl Guest for Ttl {
    fn decide(
        sessions: Vec<SessionInfo>,
        limits: Limits,
        config: Vec<(String, String)>,
    ) -> Result<Vec<Decision>, String> {
        let mut idle_secs = DEFAULT_IDLE_SECS;
        for (k, v) in &config {
            if k == "idle_timeout_secs" {
                idle_secs = v.parse().map_err(|_| {
                    format!("ttl: idle_timeout_secs must be a number of seconds, not `{v}`")
                })?;
            }
        }
        let idle_secs = limits.idle_timeout_secs.unwrap_or(idle_secs);
        let now = limits.now;
        let mut out: Vec<Option<Decision>> = vec![None; sessions.len()];
        for (i, s) in sessions.iter().enumerate() {
            let d = |action, reason: String| {
                Some(Decision {
                    name: s.name.clone(),
                    action,
                    reason,
                })
            };
            if s.status == SessionStatus::Expired {
                out[i] = d(Action::Delete, "expired earlier".into());
            } else if let Some(e) = s.expires_at.filter(|e| *e <= now) {
                out[i] = d(
                    Action::Expire,
                    format!("TTL ran out {} s ago", (now - e) / 1000),
                );
            } else {
                let idle = (now - s.last_used_at).max(0) as u64 / 1000;
                if idle > idle_secs && s.status != SessionStatus::Hibernated {
                    out[i] = d(
                        Action::Hibernate,
                        format!("idle for {idle} s (timeout {idle_secs} s)"),
                    );
                }
            }
        }
        // Quotas over the sessions still alive, least recently used first.
        let mut alive: Vec<usize> = (0..sessions.len())
            .filter(|&i| {
                !matches!(
                    out[i].as_ref().map(|d| d.action),
                    Some(Action::Expire | Action::Delete)
                )
            })
            .collect();
        let lru = |i: usize| (sessions[i].last_used_at, &sessions[i].name);
        alive.sort_by(|&a, &b| lru(a).cmp(&lru(b)));
        let mut tenants: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for &i in &alive {
            tenants
                .entry(sessions[i].tenant.as_deref().unwrap_or(""))
                .or_default()
                .push(i);
        }
        let evict = |group: &[usize],
                     max_n: Option<u32>,
                     max_b: Option<u64>,
                     scope: &str,
                     out: &mut Vec<Option<Decision>>| {
            let live: Vec<usize> = group
                .iter()
                .copied()
                .filter(|&i| !matches!(out[i].as_ref().map(|d| d.action), Some(Action::Delete)))
                .collect();
            let mut n = live.len() as u64;
            let mut b: u64 = live.iter().map(|&i| sessions[i].size_bytes).sum();
            for &i in &live {
                let over_n = max_n.is_some_and(|m| n > u64::from(m));
                let over_b = max_b.is_some_and(|m| b > m);
                if !over_n && !over_b {
                    break;
                }
                let why = if over_n {
                    format!(
                        "{scope} has {n} sessions, limit {}; least recently used",
                        max_n.unwrap_or(0)
                    )
                } else {
                    format!(
                        "{scope} uses {b} bytes, limit {}; least recently used",
                        max_b.unwrap_or(0)
                    )
                };
                out[i] = Some(Decision {
                    name: sessions[i].name.clone(),
                    action: Action::Delete,
                    reason: why,
                });
                n -= 1;
                b -= sessions[i].size_bytes;
            }
        };
        for (tenant, group) in &tenants {
            let scope = if tenant.is_empty() {
                "the default tenant".to_string()
            } else {
                format!("tenant {tenant}")
            };
            evict(
                group,
                limits.max_sessions_per_tenant,
                limits.max_bytes_per_tenant,
                &scope,
                &mut out,
            );
        }
        evict(
            &alive,
            limits.max_sessions,
            limits.max_bytes,
            "the store",
            &mut out,
        );
        Ok(out
            .into_iter()
            .zip(&sessions)
            .map(|(d, s)| {
                d.unwrap_or_else(|| Decision {
                    name: s.name.clone(),
                    action: Action::Keep,
                    reason: "within TTL, idle timeout and quotas".into(),
                })
            })
            .collect())
    }
}

export!(Ttl);
