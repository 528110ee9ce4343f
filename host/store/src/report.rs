//! The public value types the store hands out: what a new session starts
//! with, session/snapshot facts for `list`/`show`/`history`, and reports of
//! saves, cleanups and garbage collections.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use sessbundle::state::{SessionState, Viewport};

/// What a new session starts with.
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    pub name: String,
    /// Absent = never expires.
    pub ttl: Option<Duration>,
    pub user_agent: Option<String>,
    pub viewport: Option<Viewport>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
}

/// Counts and emulation settings of one snapshot, stored in its manifest so
/// `list`/`show` never read chunks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub cookies: u64,
    pub sites: u64,
    pub origins: u64,
    pub local_storage_items: u64,
    pub idb_databases: u64,
    pub idb_records: u64,
    pub tabs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// `WxH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewport: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

impl Summary {
    pub(crate) fn of(s: &SessionState, sites: usize) -> Self {
        let dbs = s.origins.iter().flat_map(|o| &o.indexed_db);
        Summary {
            cookies: s.cookies.len() as u64,
            sites: sites as u64,
            origins: s.origins.len() as u64,
            local_storage_items: s.origins.iter().map(|o| o.local_storage.len() as u64).sum(),
            idb_databases: dbs.clone().count() as u64,
            idb_records: dbs
                .flat_map(|d| &d.object_stores)
                .map(|st| st.records.len() as u64)
                .sum(),
            tabs: s.tabs.len() as u64,
            user_agent: s.meta.user_agent.clone(),
            viewport: s
                .meta
                .viewport
                .as_ref()
                .map(|v| format!("{}x{}", v.width, v.height)),
            locale: s.meta.locale.clone(),
            timezone: s.meta.timezone.clone(),
        }
    }
}

/// One kept snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotInfo {
    pub seq: u64,
    /// ms since the epoch.
    pub created_at: i64,
    /// `save`, `create`, `rollback to N`.
    pub note: String,
    /// Plaintext size of all records.
    pub logical_bytes: u64,
    /// Stored (compressed, encrypted) size of all its chunks, shared or not.
    pub stored_bytes: u64,
    pub chunks: u64,
    pub summary: Summary,
}

/// What `list` and `show` report about a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
    /// Absent = never expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    pub expired: bool,
    /// Kept snapshots, oldest first.
    pub snapshots: Vec<SnapshotInfo>,
    /// Stored size of the distinct chunks of all kept snapshots plus their
    /// manifests (chunks shared with other sessions are counted here too).
    pub stored_bytes: u64,
    /// Set when the session is damaged (then only `name` is meaningful);
    /// `host session cleanup` removes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl SessionInfo {
    pub fn latest(&self) -> Option<&SnapshotInfo> {
        self.snapshots.last()
    }
}

/// What a save wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SaveReport {
    pub seq: u64,
    pub chunks_total: u64,
    pub chunks_written: u64,
    /// Plaintext size of the snapshot.
    pub logical_bytes: u64,
    /// Bytes handed to the backend (new chunks + manifest + session record).
    pub bytes_written: u64,
    /// Snapshots dropped because more than [`KEEP_SNAPSHOTS`] were kept.
    pub pruned: Vec<u64>,
    /// Always empty: a save no longer collects garbage (chunks of pruned
    /// snapshots are freed by [`crate::Store::gc`] / `cleanup`). Kept so
    /// callers that print it still compile.
    pub gc: GcReport,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    pub chunks_deleted: u64,
    /// Unreferenced chunks found by this run's mark phase; they are deleted
    /// by a later run once the grace period has passed (at once with a
    /// zero grace) unless a save references them again.
    pub chunks_marked: u64,
    /// Chunks moved to `gc/trash/` by this run (a repository without local
    /// locks: they are deleted for good by a later run, or put back if a
    /// manifest written meanwhile needs them).
    #[serde(skip_serializing_if = "is_zero")]
    pub chunks_trashed: u64,
    /// Trashed chunks put back because a manifest written since needs them.
    #[serde(skip_serializing_if = "is_zero")]
    pub chunks_restored: u64,
    /// Age of the previous mark when it was too young to sweep (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for_grace_ms: Option<i64>,
    /// Why nothing was collected (a manifest could not be read: deleting
    /// chunks then might delete chunks it needs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Removed {
    pub name: String,
    /// Snapshot number when only one snapshot was removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupReport {
    pub removed: Vec<Removed>,
    /// Sessions left alone because a process has them open.
    pub skipped_open: Vec<String>,
    pub gc: GcReport,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
