//! The cluster's records, JSON objects under `cluster/` in the bucket
//! (normative layout: `format-spec/STORE.md`, cluster objects). Every
//! record carries the writer's `nonce`, which resolves ambiguous writes.
//! Wall-clock fields are for people; the protocol never compares them.

use serde::{Deserialize, Serialize};

pub const HOSTS: &str = "cluster/hosts/";
pub const CLAIMS: &str = "cluster/claims/";
pub const HEADS: &str = "cluster/heads/";

pub fn host_key(host: &str) -> String {
    format!("{HOSTS}{host}")
}
pub fn claim_key(session: &str) -> String {
    format!("{CLAIMS}{session}")
}
pub fn head_key(session: &str) -> String {
    format!("{HEADS}{session}")
}

/// `cluster/hosts/<host_id>`: a host's liveness record, rewritten on every
/// renewal (its ETag changing is what observers watch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRecord {
    pub v: u32,
    pub host_id: String,
    /// Where other hosts proxy requests for this host's sessions.
    pub addr: String,
    pub renewals: u64,
    pub renewed_at_ms: i64,
    pub nonce: String,
}

/// `cluster/claims/<session>`: who holds the session's live browser, and
/// the epoch of that holding. `holder: null` = released (hibernated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRecord {
    pub v: u32,
    pub session: String,
    pub holder: Option<String>,
    pub addr: Option<String>,
    pub epoch: u64,
    pub nonce: String,
}

/// `cluster/heads/<session>`: the session's newest committed snapshot and
/// the epoch of the writer that fenced or committed it. A commit from an
/// epoch below `epoch` is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadRecord {
    pub v: u32,
    pub session: String,
    pub epoch: u64,
    /// Commits so far (0 = fenced, nothing committed yet).
    pub seq: u64,
    /// The newest snapshot's object name, if any.
    pub snapshot: Option<String>,
    /// The snapshot before it (the chain a checker walks).
    pub prev: Option<String>,
    pub nonce: String,
}

pub fn now_wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
