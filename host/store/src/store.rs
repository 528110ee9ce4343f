//! Sessions on top of a [`Backend`]: create, save (deduplicated), load,
//! list, show, extend, delete, history, rollback, cleanup, garbage
//! collection.
//!
//! Object layout (the same for every backend):
//! ```text
//! sessions/<name>                  sealed SessionRecord (lifecycle facts)
//! snapshots/<name>/<seq, 10 digits> sealed Manifest (records -> chunk ids)
//! chunks/<2 hex>/<64 hex>          sealed chunk (see crypto.rs)
//! ```
//! A snapshot holds the same records as a bundle (`sessbundle::records`):
//! meta, cookies per site, one per origin, one per tab; bodies over 256 KiB
//! are cut by FastCDC so an unchanged part of a big IndexedDB keeps its
//! chunks. Chunks are shared by every snapshot and session that holds the
//! same bytes, and written only when new.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use sessbundle::records::{self, Joiner, MetaRecord, Record, RecordKind};
use sessbundle::state::{Bytes, SessionState, Viewport};

use crate::backend::{Backend, BackendError};
use crate::crypto::{ChunkId, Keys, RepoKey};
use crate::error::{Result, StoreError};
use crate::home::{MutationGuard, session_lock_holder};
use crate::names::validate_name;

/// Snapshots kept per session. Cost: each kept snapshot pins the chunks
/// that differ from its neighbours (usually a few KiB, up to a whole
/// changed IndexedDB).
pub const KEEP_SNAPSHOTS: usize = 5;

const MANIFEST_VERSION: u32 = 1;

/// Threads that seal and write new chunks during a save. Cost: each holds
/// one sealed chunk (up to ~1 MiB) at a time; more threads than cores only
/// help when the backend waits (fsync, network).
pub const WRITE_THREADS: usize = 4;

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
    fn of(s: &SessionState, sites: usize) -> Self {
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    pub gc: GcReport,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    pub chunks_deleted: u64,
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

/// Lifecycle facts, in `sessions/<name>` (so `extend` and `touch` never
/// cost a snapshot).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SessionRecord {
    v: u32,
    name: String,
    created_at: i64,
    updated_at: i64,
    #[serde(default)]
    last_used_at: Option<i64>,
    #[serde(default)]
    expires_at: Option<i64>,
    #[serde(default)]
    ttl_secs: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Manifest {
    v: u32,
    session: String,
    seq: u64,
    created_at: i64,
    note: String,
    records: Vec<ManifestRecord>,
    summary: Summary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestRecord {
    kind: u8,
    key: String,
    len: u64,
    chunks: Vec<ChunkRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChunkRef {
    id: Bytes,
    len: u32,
    stored: u32,
}

impl ChunkRef {
    fn chunk_id(&self) -> Option<ChunkId> {
        <[u8; 32]>::try_from(self.id.0.as_slice()).ok().map(ChunkId)
    }
}

impl Manifest {
    fn info(&self) -> SnapshotInfo {
        SnapshotInfo {
            seq: self.seq,
            created_at: self.created_at,
            note: self.note.clone(),
            logical_bytes: self.records.iter().map(|r| r.len).sum(),
            stored_bytes: self.chunk_refs().map(|c| u64::from(c.stored)).sum(),
            chunks: self.chunk_refs().count() as u64,
            summary: self.summary.clone(),
        }
    }

    fn chunk_refs(&self) -> impl Iterator<Item = &ChunkRef> {
        self.records.iter().flat_map(|r| &r.chunks)
    }
}

fn session_key(name: &str) -> String {
    format!("sessions/{name}")
}

fn snapshot_prefix(name: &str) -> String {
    format!("snapshots/{name}/")
}

fn snapshot_key(name: &str, seq: u64) -> String {
    format!("snapshots/{name}/{seq:010}")
}

fn session_aad(name: &str) -> Vec<u8> {
    [b"sesshost-store/v1/session\0".as_slice(), name.as_bytes()].concat()
}

fn manifest_aad(name: &str, seq: u64) -> Vec<u8> {
    let mut a = b"sesshost-store/v1/manifest\0".to_vec();
    a.extend_from_slice(name.as_bytes());
    a.push(0);
    a.extend_from_slice(&seq.to_le_bytes());
    a
}

fn to_msgpack<T: Serialize>(v: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(v).expect("in-memory MessagePack encoding cannot fail")
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The session store. All methods are synchronous; a `Store` may be shared
/// between threads.
pub struct Store {
    backend: Box<dyn Backend>,
    keys: Keys,
    mutation_lock: Option<PathBuf>,
    locks_dir: Option<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("mutation_lock", &self.mutation_lock)
            .field("locks_dir", &self.locks_dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// A store on any backend. Without [`Store::with_local_locks`] the
    /// caller must make sure only one process mutates it at a time.
    pub fn new(backend: Box<dyn Backend>, key: &RepoKey) -> Self {
        Store {
            backend,
            keys: Keys::new(key),
            mutation_lock: None,
            locks_dir: None,
        }
    }

    /// Serialise mutations through an exclusive `flock` on `mutation_lock`
    /// (so that a garbage collection never races a concurrent save), and
    /// refuse `delete`/`rollback` of sessions whose open lock in
    /// `locks_dir` is held.
    pub fn with_local_locks(mut self, mutation_lock: PathBuf, locks_dir: PathBuf) -> Self {
        self.mutation_lock = Some(mutation_lock);
        self.locks_dir = Some(locks_dir);
        self
    }

    fn guard(&self) -> Result<Option<MutationGuard>> {
        self.mutation_lock
            .as_deref()
            .map(MutationGuard::acquire)
            .transpose()
    }

    fn check_not_open(&self, name: &str) -> Result<()> {
        if let Some(dir) = &self.locks_dir
            && let Some(pid) = session_lock_holder(dir, name)
        {
            return Err(StoreError::SessionOpen {
                name: name.to_owned(),
                pid,
            });
        }
        Ok(())
    }

    // ---- backend helpers -------------------------------------------------

    fn b_put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        self.backend.put(key, bytes).map_err(berr("write", key))
    }
    fn b_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.backend.get(key).map_err(berr("read", key))
    }
    fn b_has(&self, key: &str) -> Result<bool> {
        self.backend.has(key).map_err(berr("check", key))
    }
    fn b_delete(&self, key: &str) -> Result<()> {
        self.backend.delete(key).map_err(berr("delete", key))
    }
    fn b_list(&self, prefix: &str) -> Result<Vec<String>> {
        self.backend.list(prefix).map_err(berr("list", prefix))
    }

    fn read_session(&self, name: &str) -> Result<SessionRecord> {
        let key = session_key(name);
        let obj = self
            .b_get(&key)?
            .ok_or_else(|| StoreError::SessionNotFound {
                name: name.to_owned(),
            })?;
        let what = format!("the record of session {name:?}");
        let plain = self.keys.open_record(&what, &session_aad(name), &obj)?;
        let rec: SessionRecord = rmp_serde::from_slice(&plain)
            .map_err(|e| StoreError::corrupt(&what, format!("does not decode: {e}")))?;
        if rec.name != name {
            return Err(StoreError::corrupt(what, "names another session"));
        }
        Ok(rec)
    }

    fn write_session(&self, rec: &SessionRecord) -> Result<u64> {
        let obj = self
            .keys
            .seal_record(&session_aad(&rec.name), &to_msgpack(rec))?;
        self.b_put(&session_key(&rec.name), &obj)?;
        Ok(obj.len() as u64)
    }

    /// Kept snapshot numbers, ascending.
    fn seqs(&self, name: &str) -> Result<Vec<u64>> {
        let prefix = snapshot_prefix(name);
        let mut v: Vec<u64> = self
            .b_list(&prefix)?
            .iter()
            .filter_map(|k| k.strip_prefix(&prefix)?.parse().ok())
            .collect();
        v.sort_unstable();
        Ok(v)
    }

    fn read_manifest(&self, name: &str, seq: u64) -> Result<Manifest> {
        self.read_manifest_sized(name, seq).map(|(m, _)| m)
    }

    /// A snapshot manifest and the size of its stored (sealed) object.
    fn read_manifest_sized(&self, name: &str, seq: u64) -> Result<(Manifest, usize)> {
        let key = snapshot_key(name, seq);
        let obj = self.b_get(&key)?.ok_or(StoreError::SnapshotNotFound {
            name: name.to_owned(),
            seq,
        })?;
        let what = format!("snapshot {seq} of session {name:?}");
        let plain = self
            .keys
            .open_record(&what, &manifest_aad(name, seq), &obj)?;
        let m: Manifest = rmp_serde::from_slice(&plain)
            .map_err(|e| StoreError::corrupt(&what, format!("does not decode: {e}")))?;
        if m.v != MANIFEST_VERSION || m.session != name || m.seq != seq {
            return Err(StoreError::corrupt(what, "manifest header does not match"));
        }
        Ok((m, obj.len()))
    }

    fn write_manifest(&self, m: &Manifest) -> Result<u64> {
        let obj = self
            .keys
            .seal_record(&manifest_aad(&m.session, m.seq), &to_msgpack(m))?;
        self.b_put(&snapshot_key(&m.session, m.seq), &obj)?;
        Ok(obj.len() as u64)
    }

    fn read_state(&self, m: &Manifest) -> Result<SessionState> {
        let mut j = Joiner::default();
        let what = || format!("snapshot {} of session {:?}", m.seq, m.session);
        for r in &m.records {
            let kind = RecordKind::from_u8(r.kind).ok_or_else(|| {
                StoreError::corrupt(what(), format!("unknown record kind {}", r.kind))
            })?;
            let mut body = Vec::with_capacity(usize::try_from(r.len).unwrap_or(0).min(1 << 30));
            for c in &r.chunks {
                let id = c
                    .chunk_id()
                    .ok_or_else(|| StoreError::corrupt(what(), "malformed chunk id"))?;
                let obj = self.b_get(&id.object_key())?.ok_or_else(|| {
                    StoreError::corrupt(
                        format!("chunk {}", id.to_hex()),
                        format!("missing (needed by {})", what()),
                    )
                })?;
                body.extend_from_slice(&self.keys.open_chunk(&id, kind, c.len, &obj)?);
            }
            if body.len() as u64 != r.len {
                return Err(StoreError::corrupt(what(), "record length differs"));
            }
            j.push(&Record {
                kind,
                key: r.key.clone(),
                body,
            })
            .map_err(|e| StoreError::corrupt(what(), e.to_string()))?;
        }
        j.finish()
            .map_err(|e| StoreError::corrupt(what(), e.to_string()))
    }

    /// Applies the session record's lifecycle facts to a loaded state.
    fn apply_record(state: &mut SessionState, rec: &SessionRecord) {
        state.meta.name = rec.name.clone();
        state.meta.created_at = rec.created_at;
        state.meta.updated_at = rec.updated_at;
        state.meta.last_used_at = rec.last_used_at;
        state.meta.expires_at = rec.expires_at;
        state.meta.ttl_secs = rec.ttl_secs;
    }

    // ---- public API --------------------------------------------------------

    /// Creates a session with an empty first snapshot.
    pub fn create(&self, new: &NewSession, now_ms: i64) -> Result<SessionInfo> {
        validate_name(&new.name)?;
        let name = new.name.as_str();
        {
            let _g = self.guard()?;
            if self.b_has(&session_key(name))? {
                return Err(StoreError::SessionExists {
                    name: name.to_owned(),
                });
            }
            // Leftovers of an interrupted delete.
            for seq in self.seqs(name)? {
                self.b_delete(&snapshot_key(name, seq))?;
            }
            let rec = SessionRecord {
                v: 1,
                name: name.to_owned(),
                created_at: now_ms,
                updated_at: now_ms,
                last_used_at: None,
                expires_at: new.ttl.map(|t| now_ms.saturating_add(ms(t))),
                ttl_secs: new.ttl.map(|t| t.as_secs()),
            };
            self.write_session(&rec)?;
            let mut state = SessionState::new(name, now_ms);
            state.meta.user_agent = new.user_agent.clone();
            state.meta.viewport = new.viewport.clone();
            state.meta.locale = new.locale.clone();
            state.meta.timezone = new.timezone.clone();
            self.save_locked(&rec, &state, now_ms, "create", &[], None)?;
        }
        self.show(name)
    }

    /// Stores `state` as a new session `name` (for `host import`): the
    /// session keeps the state's `createdAt`, `expiresAt` and `ttlSecs`.
    /// An existing session of that name is an error unless `replace`, in
    /// which case it is deleted first. If anything fails, nothing of the
    /// new session is left behind.
    pub fn import_state(
        &self,
        name: &str,
        state: &SessionState,
        replace: bool,
        now_ms: i64,
    ) -> Result<SaveReport> {
        validate_name(name)?;
        let exists = self.b_has(&session_key(name))?;
        if exists && !replace {
            return Err(StoreError::SessionExists {
                name: name.to_owned(),
            });
        }
        if exists {
            self.check_not_open(name)?;
        }
        let _g = self.guard()?;
        let old = self.seqs(name)?;
        if exists || !old.is_empty() {
            self.delete_locked(name, &old)?;
        }
        let rec = SessionRecord {
            v: 1,
            name: name.to_owned(),
            created_at: state.meta.created_at,
            updated_at: now_ms,
            last_used_at: None,
            expires_at: state.meta.expires_at,
            ttl_secs: state.meta.ttl_secs,
        };
        let result = self
            .write_session(&rec)
            .and_then(|_| self.save_locked(&rec, state, now_ms, "import", &[], None));
        match result {
            Ok(mut r) => {
                if exists {
                    r.gc = self.gc_locked()?;
                }
                Ok(r)
            }
            Err(e) => {
                let seqs = self.seqs(name).unwrap_or_default();
                let _ = self.delete_locked(name, &seqs);
                let _ = self.gc_locked();
                Err(e)
            }
        }
    }

    /// Saves `state` as the newest snapshot of session `name` (which must
    /// exist). Only chunks the store does not hold yet are written. The
    /// session's lifecycle facts (name, created/expiry) come from the store,
    /// not from `state.meta`. Older snapshots beyond [`KEEP_SNAPSHOTS`] are
    /// pruned and unreferenced chunks collected.
    pub fn save(&self, name: &str, state: &SessionState, now_ms: i64) -> Result<SaveReport> {
        self.save_over(name, state, now_ms, None)
    }

    /// Like [`Store::save`], but when `replace` is the newest snapshot's
    /// number, that snapshot is replaced instead of a new one being added
    /// (and chunks only it used are collected). `host session open` uses this
    /// so that one open — with its autosaves and its final save — is one
    /// entry of history, and rollback goes back one open, not 30 seconds.
    pub fn save_over(
        &self,
        name: &str,
        state: &SessionState,
        now_ms: i64,
        replace: Option<u64>,
    ) -> Result<SaveReport> {
        validate_name(name)?;
        let _g = self.guard()?;
        let rec = self.read_session(name)?;
        let seqs = self.seqs(name)?;
        let replace = replace.filter(|r| Some(r) == seqs.last());
        let mut report = self.save_locked(&rec, state, now_ms, "save", &seqs, replace)?;
        if replace.is_some() {
            report.gc = self.gc_locked()?;
        }
        Ok(report)
    }

    /// Write `state` as a new snapshot of `rec`'s session (or over
    /// `replace`, one of `seqs`), where `seqs` are the snapshots it has now
    /// (the caller holds the store lock, so they cannot change).
    fn save_locked(
        &self,
        rec: &SessionRecord,
        state: &SessionState,
        now_ms: i64,
        note: &str,
        seqs: &[u64],
        replace: Option<u64>,
    ) -> Result<SaveReport> {
        let name = rec.name.as_str();
        let seq = replace.unwrap_or_else(|| seqs.last().map_or(1, |s| s + 1));
        // Stored sizes of chunks we already hold, from the previous snapshot.
        let mut known: HashMap<ChunkId, u32> = HashMap::new();
        if let Some(&prev) = seqs.last()
            && let Ok(m) = self.read_manifest(name, prev)
        {
            known.extend(
                m.chunk_refs()
                    .filter_map(|c| Some((c.chunk_id()?, c.stored))),
            );
        }

        let mut recs = records::split(state);
        // Lifecycle facts live in the session record and are applied on
        // load; the meta record holds fixed values for them so that it
        // keeps its chunk id from one save to the next.
        let mut meta = state.meta.clone();
        meta.name = name.to_owned();
        meta.created_at = rec.created_at;
        meta.updated_at = rec.created_at;
        meta.last_used_at = None;
        meta.expires_at = None;
        meta.ttl_secs = None;
        recs[0].body = to_msgpack(&MetaRecord {
            meta,
            extra: state.extra.clone(),
        });
        let sites = recs
            .iter()
            .filter(|r| r.kind == RecordKind::Cookies)
            .count();

        let mut report = SaveReport {
            seq,
            chunks_total: 0,
            chunks_written: 0,
            logical_bytes: 0,
            bytes_written: 0,
            pruned: Vec::new(),
            gc: GcReport::default(),
        };
        // Pass 1: chunk ids, and which chunks must be sealed (new ones, and
        // ones held for another session whose stored size we do not know).
        let mut plan: Vec<Vec<(ChunkId, std::ops::Range<usize>)>> = Vec::with_capacity(recs.len());
        let mut todo: Vec<(ChunkId, RecordKind, &[u8], bool)> = Vec::new();
        let mut seen: BTreeSet<ChunkId> = BTreeSet::new();
        for r in &recs {
            let mut chunks = Vec::new();
            for range in records::chunk_bounds(&r.body) {
                let plain = &r.body[range.clone()];
                let id = self.keys.chunk_id(r.kind, plain);
                if seen.insert(id) {
                    // Checked even when the previous snapshot has it, so a
                    // chunk lost outside the store is written again.
                    let exists = self.b_has(&id.object_key())?;
                    if !exists || !known.contains_key(&id) {
                        todo.push((id, r.kind, plain, !exists));
                    }
                }
                chunks.push((id, range));
            }
            plan.push(chunks);
        }
        // Pass 2: seal and write them on a few threads (compression and
        // encryption use the cores; fsync waits overlap).
        let next = AtomicUsize::new(0);
        let results: Vec<Result<Vec<(ChunkId, u32, bool)>>> = std::thread::scope(|sc| {
            let workers: Vec<_> = (0..WRITE_THREADS.min(todo.len()))
                .map(|_| {
                    sc.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&(id, kind, plain, write)) = todo.get(i) else {
                                return Ok(done);
                            };
                            let sealed = self.keys.seal_chunk(kind, plain, Some(id));
                            if write {
                                self.b_put(&id.object_key(), &sealed.object)?;
                            }
                            done.push((id, sealed.object.len() as u32, write));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("chunk writer panicked"))
                .collect()
        });
        for done in results {
            for (id, stored, wrote) in done? {
                if wrote {
                    report.chunks_written += 1;
                    report.bytes_written += u64::from(stored);
                }
                known.insert(id, stored);
            }
        }
        // Pass 3: the manifest.
        let mut mrecs = Vec::with_capacity(recs.len());
        for (r, chunks) in recs.iter().zip(plan) {
            report.chunks_total += chunks.len() as u64;
            report.logical_bytes += r.body.len() as u64;
            mrecs.push(ManifestRecord {
                kind: r.kind as u8,
                key: r.key.clone(),
                len: r.body.len() as u64,
                chunks: chunks
                    .into_iter()
                    .map(|(id, range)| ChunkRef {
                        id: Bytes(id.0.to_vec()),
                        len: range.len() as u32,
                        stored: known[&id],
                    })
                    .collect(),
            });
        }
        let m = Manifest {
            v: MANIFEST_VERSION,
            session: name.to_owned(),
            seq,
            created_at: now_ms,
            note: note.to_owned(),
            records: mrecs,
            summary: Summary::of(state, sites),
        };
        report.bytes_written += self.write_manifest(&m)?;
        let mut rec = rec.clone();
        rec.updated_at = now_ms;
        report.bytes_written += self.write_session(&rec)?;
        let mut after = seqs.to_vec();
        if replace.is_none() {
            after.push(seq);
        }
        self.prune_locked(name, &after, &mut report)?;
        Ok(report)
    }

    /// Delete all but the newest [`KEEP_SNAPSHOTS`] of `seqs` (ascending,
    /// the session's snapshots after a save).
    fn prune_locked(&self, name: &str, seqs: &[u64], report: &mut SaveReport) -> Result<()> {
        if seqs.len() > KEEP_SNAPSHOTS {
            for &s in &seqs[..seqs.len() - KEEP_SNAPSHOTS] {
                self.b_delete(&snapshot_key(name, s))?;
                report.pruned.push(s);
            }
            report.gc = self.gc_locked()?;
        }
        Ok(())
    }

    /// The newest snapshot of `name`, with lifecycle facts from the store.
    pub fn load(&self, name: &str) -> Result<SessionState> {
        validate_name(name)?;
        let rec = self.read_session(name)?;
        let seq = *self.seqs(name)?.last().ok_or_else(|| {
            StoreError::corrupt(format!("session {name:?}"), "it has no snapshot")
        })?;
        let mut s = self.read_state(&self.read_manifest(name, seq)?)?;
        Self::apply_record(&mut s, &rec);
        Ok(s)
    }

    /// A given kept snapshot of `name`.
    pub fn load_snapshot(&self, name: &str, seq: u64) -> Result<SessionState> {
        validate_name(name)?;
        let rec = self.read_session(name)?;
        let mut s = self.read_state(&self.read_manifest(name, seq)?)?;
        Self::apply_record(&mut s, &rec);
        Ok(s)
    }

    /// Records that the session was used now (call when opening it).
    pub fn touch(&self, name: &str, now_ms: i64) -> Result<()> {
        validate_name(name)?;
        let _g = self.guard()?;
        let mut rec = self.read_session(name)?;
        rec.last_used_at = Some(now_ms);
        self.write_session(&rec)?;
        Ok(())
    }

    /// Whether a session of that name exists.
    pub fn exists(&self, name: &str) -> Result<bool> {
        validate_name(name)?;
        self.b_has(&session_key(name))
    }

    /// Every session, sorted by name. Damaged sessions are listed with
    /// `problem` set instead of failing the listing.
    pub fn list(&self, now_ms: i64) -> Result<Vec<SessionInfo>> {
        let mut names: Vec<String> = self
            .b_list("sessions/")?
            .into_iter()
            .filter_map(|k| k.strip_prefix("sessions/").map(str::to_owned))
            .filter(|n| validate_name(n).is_ok())
            .collect();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            out.push(match self.info(&n, now_ms) {
                Ok(i) => i,
                Err(e @ StoreError::Backend { .. }) => return Err(e),
                Err(e) => SessionInfo {
                    name: n,
                    created_at: 0,
                    updated_at: 0,
                    last_used_at: None,
                    expires_at: None,
                    ttl_secs: None,
                    expired: false,
                    snapshots: Vec::new(),
                    stored_bytes: 0,
                    problem: Some(e.to_string()),
                },
            });
        }
        Ok(out)
    }

    /// Facts about one session (reads its record and manifests, no chunks).
    pub fn show(&self, name: &str) -> Result<SessionInfo> {
        self.info(name, now_ms())
    }

    pub fn info(&self, name: &str, now_ms: i64) -> Result<SessionInfo> {
        validate_name(name)?;
        let rec = self.read_session(name)?;
        let mut snapshots = Vec::new();
        let mut distinct: BTreeMap<ChunkId, u32> = BTreeMap::new();
        let mut manifest_bytes = 0u64;
        for seq in self.seqs(name)? {
            let (m, stored) = self.read_manifest_sized(name, seq)?;
            manifest_bytes += stored as u64;
            distinct.extend(
                m.chunk_refs()
                    .filter_map(|c| Some((c.chunk_id()?, c.stored))),
            );
            snapshots.push(m.info());
        }
        Ok(SessionInfo {
            name: rec.name,
            created_at: rec.created_at,
            updated_at: rec.updated_at,
            last_used_at: rec.last_used_at,
            expires_at: rec.expires_at,
            ttl_secs: rec.ttl_secs,
            expired: rec.expires_at.is_some_and(|e| e <= now_ms),
            snapshots,
            stored_bytes: distinct.values().map(|&s| u64::from(s)).sum::<u64>() + manifest_bytes,
            problem: None,
        })
    }

    /// Pushes the expiry of `name` back by `by` (from now if it already
    /// expired). A session without expiry keeps having none.
    pub fn extend(&self, name: &str, by: Duration, now_ms: i64) -> Result<SessionInfo> {
        validate_name(name)?;
        {
            let _g = self.guard()?;
            let mut rec = self.read_session(name)?;
            if let Some(e) = rec.expires_at {
                rec.expires_at = Some(e.max(now_ms).saturating_add(ms(by)));
                self.write_session(&rec)?;
            }
        }
        self.info(name, now_ms)
    }

    /// Deletes the session and its snapshots, then collects chunks no
    /// snapshot references any more. Refused while the session is open.
    pub fn delete(&self, name: &str) -> Result<GcReport> {
        validate_name(name)?;
        self.check_not_open(name)?;
        let _g = self.guard()?;
        let has_record = self.b_has(&session_key(name))?;
        let seqs = self.seqs(name)?;
        if !has_record && seqs.is_empty() {
            return Err(StoreError::SessionNotFound {
                name: name.to_owned(),
            });
        }
        self.delete_locked(name, &seqs)?;
        self.gc_locked()
    }

    fn delete_locked(&self, name: &str, seqs: &[u64]) -> Result<()> {
        // The record first: the session disappears from `list` at once; an
        // interruption leaves orphan snapshots that `cleanup` removes.
        self.b_delete(&session_key(name))?;
        for &s in seqs {
            self.b_delete(&snapshot_key(name, s))?;
        }
        Ok(())
    }

    /// Kept snapshots of `name`, oldest first.
    pub fn history(&self, name: &str) -> Result<Vec<SnapshotInfo>> {
        validate_name(name)?;
        self.read_session(name)?;
        self.seqs(name)?
            .into_iter()
            .map(|s| self.read_manifest(name, s).map(|m| m.info()))
            .collect()
    }

    /// Makes snapshot `to` (default: the one before the newest) the newest
    /// again, as a new snapshot (so the rollback itself can be undone). The
    /// target is fully read and verified first. Refused while open.
    pub fn rollback(&self, name: &str, to: Option<u64>, now_ms: i64) -> Result<SaveReport> {
        validate_name(name)?;
        self.check_not_open(name)?;
        let _g = self.guard()?;
        let mut rec = self.read_session(name)?;
        let seqs = self.seqs(name)?;
        let target = match to {
            Some(t) if seqs.contains(&t) => t,
            Some(t) => {
                return Err(StoreError::SnapshotNotFound {
                    name: name.to_owned(),
                    seq: t,
                });
            }
            None if seqs.len() >= 2 => seqs[seqs.len() - 2],
            None => {
                return Err(StoreError::NoEarlierSnapshot {
                    name: name.to_owned(),
                });
            }
        };
        let old = self.read_manifest(name, target)?;
        self.read_state(&old)?; // verify every chunk before relying on it
        let seq = seqs.last().map_or(1, |s| s + 1);
        let m = Manifest {
            seq,
            created_at: now_ms,
            note: format!("rollback to {target}"),
            ..old
        };
        let mut report = SaveReport {
            seq,
            chunks_total: m.chunk_refs().count() as u64,
            chunks_written: 0,
            logical_bytes: m.records.iter().map(|r| r.len).sum(),
            bytes_written: 0,
            pruned: Vec::new(),
            gc: GcReport::default(),
        };
        report.bytes_written += self.write_manifest(&m)?;
        rec.updated_at = now_ms;
        report.bytes_written += self.write_session(&rec)?;
        let mut after = seqs;
        after.push(seq);
        self.prune_locked(name, &after, &mut report)?;
        Ok(report)
    }

    /// Removes expired sessions, damaged snapshots and sessions (those that
    /// do not decrypt, decode or verify, or have no intact snapshot left),
    /// and orphaned objects; then collects unreferenced chunks. Open
    /// sessions are left alone. Reads every chunk of every snapshot.
    pub fn cleanup(&self, now_ms: i64) -> Result<CleanupReport> {
        let _g = self.guard()?;
        let mut report = CleanupReport::default();
        let mut names: BTreeSet<String> = BTreeSet::new();
        for k in self.b_list("sessions/")? {
            if let Some(n) = k.strip_prefix("sessions/") {
                names.insert(n.to_owned());
            }
        }
        for k in self.b_list("snapshots/")? {
            let Some((n, seq)) = k.strip_prefix("snapshots/").and_then(|r| r.split_once('/'))
            else {
                continue;
            };
            if seq.len() == 10 && seq.parse::<u64>().is_ok() {
                names.insert(n.to_owned());
            } else {
                // Not a snapshot the store wrote; it would block GC.
                self.b_delete(&k)?;
                report.removed.push(Removed {
                    name: n.to_owned(),
                    seq: None,
                    reason: format!("unexpected object {k:?} in the snapshot area"),
                });
            }
        }
        for name in names {
            if validate_name(&name).is_err() {
                // Not ours to interpret: leave it.
                continue;
            }
            if self.locks_dir.is_some() && self.check_not_open(&name).is_err() {
                report.skipped_open.push(name);
                continue;
            }
            let seqs = self.seqs(&name)?;
            let removed = |reason: String| Removed {
                name: name.clone(),
                seq: None,
                reason,
            };
            let rec = match self.read_session(&name) {
                Ok(r) => r,
                Err(StoreError::SessionNotFound { .. }) => {
                    self.delete_locked(&name, &seqs)?;
                    report.removed.push(removed(
                        "snapshots without a session record (an interrupted delete)".into(),
                    ));
                    continue;
                }
                Err(e @ StoreError::Backend { .. }) => return Err(e),
                Err(e) => {
                    self.delete_locked(&name, &seqs)?;
                    report.removed.push(removed(format!("damaged: {e}")));
                    continue;
                }
            };
            if let Some(exp) = rec.expires_at.filter(|&e| e <= now_ms) {
                self.delete_locked(&name, &seqs)?;
                report
                    .removed
                    .push(removed(format!("expired at {exp} (ms since epoch)")));
                continue;
            }
            let mut intact = 0;
            for &s in &seqs {
                let check = self
                    .read_manifest(&name, s)
                    .and_then(|m| self.read_state(&m));
                match check {
                    Ok(_) => intact += 1,
                    Err(e @ StoreError::Backend { .. }) => return Err(e),
                    Err(e) => {
                        self.b_delete(&snapshot_key(&name, s))?;
                        report.removed.push(Removed {
                            name: name.clone(),
                            seq: Some(s),
                            reason: format!("damaged snapshot: {e}"),
                        });
                    }
                }
            }
            if intact == 0 {
                self.delete_locked(&name, &[])?;
                report
                    .removed
                    .push(removed("no intact snapshot left".into()));
            }
        }
        report.gc = self.gc_locked()?;
        Ok(report)
    }

    /// Deletes chunks that no kept snapshot of any session references.
    pub fn gc(&self) -> Result<GcReport> {
        let _g = self.guard()?;
        self.gc_locked()
    }

    fn gc_locked(&self) -> Result<GcReport> {
        let mut live: BTreeSet<ChunkId> = BTreeSet::new();
        for k in self.b_list("snapshots/")? {
            let parsed = k
                .strip_prefix("snapshots/")
                .and_then(|r| r.split_once('/'))
                .and_then(|(n, s)| Some((n.to_owned(), s.parse::<u64>().ok()?)));
            let Some((name, seq)) = parsed else {
                return Ok(GcReport {
                    chunks_deleted: 0,
                    skipped: Some(format!("unexpected object {k:?}")),
                });
            };
            match self.read_manifest(&name, seq) {
                Ok(m) => live.extend(m.chunk_refs().filter_map(ChunkRef::chunk_id)),
                Err(e @ StoreError::Backend { .. }) => return Err(e),
                Err(e) => {
                    return Ok(GcReport {
                        chunks_deleted: 0,
                        skipped: Some(format!("{e}")),
                    });
                }
            }
        }
        let mut report = GcReport::default();
        for k in self.b_list("chunks/")? {
            let id = k.rsplit('/').next().and_then(ChunkId::from_hex);
            if id.is_some_and(|id| live.contains(&id)) {
                continue;
            }
            self.b_delete(&k)?;
            report.chunks_deleted += 1;
        }
        Ok(report)
    }
}

fn berr(op: &'static str, key: &str) -> impl FnOnce(BackendError) -> StoreError {
    let key = key.to_owned();
    move |source| StoreError::Backend { op, key, source }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(ms)
        .unwrap_or(0)
}
