//! The collection of a repository other machines write while it runs
//! (`gc_shared.rs`, STORE.md "Garbage collection of a shared repository"),
//! driven deterministically: a backend wrapper runs one store's calls at an
//! exact point inside another store's save or collection, on one in-memory
//! atomic backend (the interleavings a bucket shared by several hosts
//! allows, without timing).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sessbundle::state::*;
use sesshost_store::backend::memory::MemoryBackend;
use sesshost_store::*;

const T0: i64 = 1_790_000_000_000;

type Trigger = (
    Box<dyn Fn(&str, &str) -> bool + Send>,
    Box<dyn FnOnce() + Send>,
);

/// `MemoryBackend` shared by several stores; `hooks` run once, before the
/// first call (op, key) their predicate accepts reaches the backend.
#[derive(Clone, Default)]
struct Shared {
    mem: Arc<MemoryBackend>,
    hooks: Arc<Mutex<Vec<Option<Trigger>>>>,
    /// Reads of a key still to fail as "replaced while being read" (what
    /// the s3 plugin reports when an object's ETag changes between the
    /// ranged reads of one get).
    replaced: Arc<Mutex<std::collections::HashMap<String, u32>>>,
    /// Reads of a key still to fail as a server error (RGW's 500 on a read
    /// that races a write).
    failing: Arc<Mutex<std::collections::HashMap<String, u32>>>,
}

impl Shared {
    fn on(
        &self,
        when: impl Fn(&str, &str) -> bool + Send + 'static,
        f: impl FnOnce() + Send + 'static,
    ) {
        self.hooks
            .lock()
            .unwrap()
            .push(Some((Box::new(when), Box::new(f))));
    }

    fn fire(&self, op: &str, key: &str) {
        let due: Vec<Box<dyn FnOnce() + Send>> = {
            let mut hooks = self.hooks.lock().unwrap();
            hooks
                .iter_mut()
                .filter(|h| h.as_ref().is_some_and(|(when, _)| when(op, key)))
                .filter_map(|h| h.take().map(|(_, f)| f))
                .collect()
        };
        for f in due {
            f();
        }
    }

    /// A store on the same objects with no hooks of its own.
    fn plain(&self) -> Shared {
        Shared {
            mem: self.mem.clone(),
            hooks: Arc::default(),
            replaced: Arc::default(),
            failing: Arc::default(),
        }
    }

    fn fired_all(&self) -> bool {
        self.hooks.lock().unwrap().iter().all(Option::is_none)
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        self.mem.list(prefix).unwrap()
    }
}

impl Backend for Shared {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BackendError> {
        self.fire("put", key);
        self.mem.put(key, bytes)
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.fire("get", key);
        if let Some(n) = self.replaced.lock().unwrap().get_mut(key)
            && *n > 0
        {
            *n -= 1;
            return Err(BackendError::new(
                BackendErrorKind::Conflict,
                format!("get {key}: the object was replaced while being read; read it again"),
            ));
        }
        if let Some(n) = self.failing.lock().unwrap().get_mut(key)
            && *n > 0
        {
            *n -= 1;
            return Err(BackendError::new(
                BackendErrorKind::Unavailable,
                format!("get {key}: HTTP 500 UnknownError"),
            ));
        }
        self.mem.get(key)
    }
    fn has(&self, key: &str) -> Result<bool, BackendError> {
        self.fire("has", key);
        self.mem.has(key)
    }
    fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.fire("delete", key);
        self.mem.delete(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        self.fire("list", prefix);
        self.mem.list(prefix)
    }
    fn put_if(&self, key: &str, bytes: &[u8], pre: Precondition) -> Result<Etag, BackendError> {
        self.fire("put", key);
        self.mem.put_if(key, bytes, pre)
    }
    fn capabilities(&self) -> Vec<Capability> {
        self.mem.capabilities()
    }
}

fn store(b: &Shared) -> Arc<Store> {
    Arc::new(Store::new(
        Box::new(b.clone()),
        &RepoKey::from_bytes([7; 32]),
    ))
}

fn state(tag: &str) -> SessionState {
    let mut s = SessionState::new("ignored", 1);
    for i in 0..3 {
        s.cookies.push(Cookie {
            name: format!("sid{i}"),
            value: format!("SECRET-{i}-{tag}"),
            domain: format!(".site{i}.test"),
            path: "/".into(),
            ..Default::default()
        });
        s.origins.push(OriginState {
            origin: format!("https://site{i}.test"),
            local_storage: (0..40)
                .map(|k| StorageItem {
                    key: format!("k{k}"),
                    value: format!("value {k} of origin {i}"),
                })
                .collect(),
            ..Default::default()
        });
    }
    s
}

/// Chunks of `state("x")` left in the store with no manifest naming them
/// (session `a` saved, then deleted): what a collection finds to free and
/// a later save of the same state deduplicates against.
fn orphan_chunks(b: &Shared) -> usize {
    let st = store(&b.plain());
    st.import("a", &state("x"), ImportMode::New, T0).unwrap();
    st.delete("a").unwrap();
    let n = b.keys("chunks/").len();
    assert!(n > 0);
    n
}

fn same_data(a: &SessionState, b: &SessionState) -> bool {
    a.cookies == b.cookies && a.origins == b.origins
}

#[test]
fn a_save_that_counted_on_a_chunk_the_collection_deleted_uploads_it_again() {
    let b = Shared::default();
    let orphans = orphan_chunks(&b);
    let collector = store(&b.plain());
    let report = Arc::new(Mutex::new(None));
    // The whole collection (grace 0: mark, trash, empty) runs after the
    // writer found every chunk present and before its manifest exists, so
    // nothing protects the chunks and they are deleted for good.
    let (c, r) = (collector.clone(), report.clone());
    b.on(
        |op, key| op == "put" && key.starts_with("snapshots/b/"),
        move || *r.lock().unwrap() = Some(c.gc_while(Duration::ZERO, &|| true).unwrap()),
    );
    let writer = store(&b);
    let saved = writer
        .import("b", &state("x"), ImportMode::New, T0)
        .unwrap();
    assert!(b.fired_all());
    let gc = report.lock().unwrap().clone().unwrap();
    // The orphans b found present, and b's own new chunk (its meta record
    // names it), uploaded before its manifest existed.
    assert_eq!(gc.chunks_deleted as usize, orphans + 1, "{gc:?}");
    // The writer saw the collection's generation change and uploaded
    // again every chunk its manifest names (its new one twice).
    assert_eq!(saved.chunks_written, 1 + saved.chunks_total, "{saved:?}");
    assert!(same_data(&writer.load("b").unwrap(), &state("x")));
    // Nothing is left in the trash, and a second collection frees nothing b needs.
    assert!(b.keys("gc/trash/").is_empty());
    collector.gc_while(Duration::ZERO, &|| true).unwrap();
    assert!(same_data(&writer.load("b").unwrap(), &state("x")));
}

#[test]
fn a_chunk_moved_while_a_save_counted_on_it_is_read_from_the_trash_and_put_back() {
    let b = Shared::default();
    let orphans = orphan_chunks(&b);
    let writer = store(&b.plain());
    // The writer's whole save runs inside the collection's step 2, right
    // after the first chunk was copied to the trash and before it leaves
    // `chunks/`: the writer finds it present, re-checks it (the collection
    // is `trashing`), still finds it, and commits a manifest that needs it.
    let w = writer.clone();
    b.on(
        |op, key| op == "put" && key.starts_with("gc/trash/"),
        move || {
            w.import("b", &state("x"), ImportMode::New, T0).unwrap();
        },
    );
    // Step 3 starts by listing the trash: by then the chunk is only there,
    // and b must still load (readers fall back to the trash).
    let (w, loaded) = (writer.clone(), Arc::new(Mutex::new(false)));
    let l = loaded.clone();
    b.on(
        |op, key| op == "list" && key == "gc/trash/",
        move || *l.lock().unwrap() = same_data(&w.load("b").unwrap(), &state("x")),
    );
    let gc = store(&b).gc_while(Duration::ZERO, &|| true).unwrap();
    assert!(b.fired_all());
    assert!(
        *loaded.lock().unwrap(),
        "b did not load while its chunk was in the trash"
    );
    // Step 3 read every manifest again and put the chunk back.
    assert!(gc.chunks_restored >= 1, "{gc:?}");
    assert_eq!(
        (gc.chunks_deleted + gc.chunks_restored) as usize,
        orphans,
        "{gc:?}"
    );
    assert!(b.keys("gc/trash/").is_empty());
    assert!(same_data(&writer.load("b").unwrap(), &state("x")));
}

#[test]
fn a_stopped_collection_waits_a_grace_before_anyone_empties_its_trash() {
    let b = Shared::default();
    let orphans = orphan_chunks(&b);
    let grace = Duration::from_millis(300);
    let one = store(&b);
    let other = store(&b.plain());
    // Run 1 marks; run 2 (the mark a grace old) starts moving and is told
    // to stop before the first chunk.
    let r = one.gc_while(grace, &|| true).unwrap();
    assert_eq!(r.chunks_marked as usize, orphans);
    std::thread::sleep(grace + Duration::from_millis(50));
    let r = one.gc_while(grace, &|| false).unwrap();
    assert!(
        r.skipped.as_deref().unwrap_or("").contains("stopped"),
        "{r:?}"
    );
    assert_eq!(b.keys("chunks/").len(), orphans);
    // Another collector does not touch it while the stopped one might
    // still be moving chunks.
    let r = other.gc_while(grace, &|| true).unwrap();
    assert!(r.waiting_for_grace_ms.is_some(), "{r:?}");
    // A grace later it takes the moves as over, and a grace after that it
    // empties the trash. The orphans were never moved, so they are marked
    // again by the next cycle and freed by it.
    std::thread::sleep(grace + Duration::from_millis(50));
    other.gc_while(grace, &|| true).unwrap();
    std::thread::sleep(grace + Duration::from_millis(50));
    other.gc_while(grace, &|| true).unwrap();
    let mut freed = 0;
    for _ in 0..3 {
        std::thread::sleep(grace + Duration::from_millis(50));
        freed += other.gc_while(grace, &|| true).unwrap().chunks_deleted;
    }
    assert_eq!(freed as usize, orphans);
    assert!(b.keys("chunks/").is_empty());
    assert!(b.keys("gc/trash/").is_empty());
}

#[test]
fn reads_of_objects_replaced_mid_way_are_retried_and_never_fail_a_save() {
    let b = Shared::default();
    orphan_chunks(&b);
    let st = store(&b);
    st.gc_while(Duration::ZERO, &|| true).unwrap(); // gc/state exists now
    let replaced = |key: &str, n: u32| {
        b.replaced.lock().unwrap().insert(key.into(), n);
    };
    // A few replaced reads of gc/state: read again, the save goes on.
    replaced("gc/state", 3);
    let r = st.import("b", &state("x"), ImportMode::New, T0).unwrap();
    assert_eq!(b.replaced.lock().unwrap()["gc/state"], 0);
    assert_eq!(r.chunks_written, 7, "{r:?}");
    // gc/state replaced on every read: the save takes a collection to be
    // at work, checks its chunks again, and still succeeds.
    replaced("gc/state", 1000);
    st.save("b", &state("y"), T0 + 1).unwrap();
    b.replaced.lock().unwrap().clear();
    // So is one the server fails (RGW's 500 on a read racing a write).
    b.failing.lock().unwrap().insert("gc/state".into(), 2);
    st.save("b", &state("y"), T0 + 2).unwrap();
    assert_eq!(b.failing.lock().unwrap()["gc/state"], 0);
    // A session record replaced while read is read again too.
    replaced("sessions/b", 2);
    assert!(same_data(&st.load("b").unwrap(), &state("y")));
    // Past the attempts, the error names the object and says what to do.
    replaced("sessions/b", 1000);
    let e = st.load("b").unwrap_err().to_string();
    assert!(
        e.contains("sessions/b") && e.contains("read it again"),
        "{e}"
    );
}

#[test]
fn a_collection_with_nothing_to_free_leaves_the_state_alone() {
    let b = Shared::default();
    let st = store(&b);
    st.import("a", &state("x"), ImportMode::New, T0).unwrap();
    for _ in 0..3 {
        let r = st.gc_while(Duration::ZERO, &|| true).unwrap();
        assert_eq!((r.chunks_marked, r.chunks_deleted), (0, 0), "{r:?}");
    }
    // No gc/state write: saves meanwhile saw nothing change.
    assert!(
        b.keys("gc/").iter().all(|k| k.starts_with("gc/touched/")),
        "{:?}",
        b.keys("gc/")
    );
}
