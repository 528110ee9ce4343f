//! The service's catalog: which tenant owns which stored session, and the
//! service-only facts about it (API name, tags, idle timeout, login check,
//! `needs_auth`). One small JSON file per session under
//! `HOME/service/sessions/<id>.json`, written atomically, all held in memory.
//!
//! The session's *state* lives in the engine's store under the name `<id>`
//! (`sess_` + 32 hex = 128 random bits); the catalog never holds state.
//! On start [`Catalog::open`] reconciles the two: a catalog entry whose
//! stored session is gone is dropped (a create that crashed before its
//! first store write), a stored session with no entry is adopted by the
//! `default` tenant (sessions made with `host session create` or left by a
//! crash between the store write and the catalog write), so nothing
//! committed is ever lost.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

/// How the service tells whether a session is still logged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthCheck {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<u16>,
    /// Logged out when the page ends on a URL starting with this (a
    /// redirect to the login page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_url_prefix: Option<String>,
}

/// The outcome of the latest login check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub at_ms: i64,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub tenant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub idle_timeout_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_check: Option<AuthCheck>,
    pub created_at_ms: i64,
    #[serde(default)]
    pub needs_auth: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<CheckResult>,
    /// Set when restoring it failed for good (damaged state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

impl Record {
    /// The record of a stored session found without one (made by `host
    /// session create`, left by a crash, or fetched from a durable tier
    /// written by `host push`): owned by tenant `default`, named after
    /// its id.
    pub fn adopted(id: &str, now_ms: i64) -> Record {
        Record {
            id: id.to_string(),
            tenant: "default".into(),
            name: Some(id.to_string()),
            tags: Vec::new(),
            idle_timeout_seconds: 1800,
            auth_check: None,
            created_at_ms: now_ms,
            needs_auth: false,
            last_check: None,
            failed: None,
        }
    }
}

pub struct Catalog {
    dir: PathBuf,
    records: RwLock<HashMap<String, Record>>,
}

/// A fresh session id: `sess_` + 128 random bits in hex.
pub fn new_session_id() -> std::io::Result<String> {
    Ok(format!("sess_{}", random_hex(16)?))
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> std::io::Result<String> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Whether `id` has the shape of a session id (checked before any lookup,
/// so a path never reaches the file system).
pub fn is_session_id(id: &str) -> bool {
    id.len() == 37
        && id.starts_with("sess_")
        && id[5..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl Catalog {
    /// Load the catalog and reconcile it with the stored sessions
    /// `stored` (their names).
    pub fn open(home: &Path, stored: &[String]) -> std::io::Result<Catalog> {
        let dir = home.join("service").join("sessions");
        std::fs::create_dir_all(&dir)?;
        let mut records = HashMap::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let fname = entry.file_name();
            let Some(id) = fname.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if !is_session_id(id) {
                continue;
            }
            let bytes = match std::fs::read(entry.path()) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("cannot read catalog entry {id}: {e}");
                    continue;
                }
            };
            match serde_json::from_slice::<Record>(&bytes) {
                Ok(r) if r.id == id => {
                    records.insert(r.id.clone(), r);
                }
                Ok(_) | Err(_) => {
                    tracing::warn!(
                        "catalog entry {id} is damaged; it is rebuilt as a default-tenant session if its state exists"
                    )
                }
            }
        }
        let cat = Catalog {
            dir,
            records: RwLock::new(records),
        };
        cat.reconcile(stored)?;
        Ok(cat)
    }

    fn reconcile(&self, stored: &[String]) -> std::io::Result<()> {
        let stored_set: std::collections::HashSet<&str> =
            stored.iter().map(String::as_str).collect();
        let gone: Vec<String> = self
            .read()
            .keys()
            .filter(|id| !stored_set.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            tracing::info!(
                "catalog entry {id} has no stored session (a create that did not finish): dropped"
            );
            self.remove(&id)?;
        }
        let now = sessbundle::interop::dates::now_ms();
        for name in stored {
            if self.get(name).is_none() {
                tracing::info!(
                    "stored session {name} has no catalog entry: adopted by tenant `default`"
                );
                self.put(Record::adopted(name, now))?;
            }
        }
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Record>> {
        self.records.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Record>> {
        self.records.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<Record> {
        self.read().get(id).cloned()
    }

    /// The record of `id` if `tenant` owns it (another tenant's session
    /// does not exist for the caller).
    pub fn get_for(&self, tenant: &str, id: &str) -> Option<Record> {
        self.read().get(id).filter(|r| r.tenant == tenant).cloned()
    }

    pub fn list_for(&self, tenant: &str) -> Vec<Record> {
        let mut v: Vec<Record> = self
            .read()
            .values()
            .filter(|r| r.tenant == tenant)
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        v
    }

    pub fn all(&self) -> Vec<Record> {
        self.read().values().cloned().collect()
    }

    pub fn count_for(&self, tenant: &str) -> usize {
        self.read().values().filter(|r| r.tenant == tenant).count()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Write `r` durably (temp file, fsync, rename, fsync the directory),
    /// then make it visible.
    pub fn put(&self, r: Record) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(&r).map_err(std::io::Error::other)?;
        sessbundle::atomic::write_atomic(&self.path(&r.id), &bytes, 0o600)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.write().insert(r.id.clone(), r);
        Ok(())
    }

    /// Change a record in place and persist it; `None` if it is gone.
    pub fn update(&self, id: &str, f: impl FnOnce(&mut Record)) -> std::io::Result<Option<Record>> {
        let Some(mut r) = self.get(id) else {
            return Ok(None);
        };
        f(&mut r);
        self.put(r.clone())?;
        Ok(Some(r))
    }

    pub fn remove(&self, id: &str) -> std::io::Result<()> {
        self.write().remove(id);
        match std::fs::remove_file(self.path(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_well_formed() {
        let a = new_session_id().unwrap();
        let b = new_session_id().unwrap();
        assert_ne!(a, b);
        assert!(is_session_id(&a), "{a}");
        assert!(!is_session_id("sess_../../etc/passwd"));
        assert!(!is_session_id(&a.to_uppercase()));
    }

    #[test]
    fn reconcile_drops_orphans_and_adopts_stored_sessions() {
        let home = tempfile::tempdir().unwrap();
        let id = new_session_id().unwrap();
        let kept = new_session_id().unwrap();
        {
            let c = Catalog::open(home.path(), &[]).unwrap();
            for i in [&id, &kept] {
                c.put(Record {
                    id: i.clone(),
                    tenant: "acme".into(),
                    name: None,
                    tags: vec![],
                    idle_timeout_seconds: 60,
                    auth_check: None,
                    created_at_ms: 1,
                    needs_auth: false,
                    last_check: None,
                    failed: None,
                })
                .unwrap();
            }
        }
        let c = Catalog::open(home.path(), &[kept.clone(), "work".into()]).unwrap();
        assert!(c.get(&id).is_none(), "entry without state must be dropped");
        assert_eq!(c.get(&kept).unwrap().tenant, "acme");
        assert_eq!(c.get("work").unwrap().tenant, "default");
        assert!(c.get_for("other", &kept).is_none());
    }
}
