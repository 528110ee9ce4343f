//! The bucket probe on the local backends (real directory, real threads),
//! and on two deliberately broken backends it must refuse, naming the
//! check. Prints the probe duration (`cargo test --workspace --locked
//! --test probe -- --nocapture`).

use std::time::Duration;

use sesshost_store::backend::memory::MemoryBackend;
use sesshost_store::probe::conditional_writes;
use sesshost_store::*;

#[test]
fn probe_passes_on_a_local_directory() {
    let d = tempfile::tempdir().unwrap();
    let b = LocalDirBackend::new(d.path());
    let r = conditional_writes(&b).unwrap();
    assert_eq!(r.create_double_wins, 0);
    assert_eq!(r.cas_double_wins, 0);
    assert_eq!(r.rounds, 20);
    println!(
        "probe on LocalDirBackend: {:.1} ms ({:?})",
        r.total.as_secs_f64() * 1000.0,
        r.checks
            .iter()
            .map(|c| format!("{} {:.1} ms", c.check, c.took.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
    );
    // It cleaned up after itself.
    assert_eq!(b.list("probe/").unwrap(), Vec::<String>::new());
}

#[test]
fn probe_passes_on_the_memory_backend() {
    let b = MemoryBackend::new();
    let r = conditional_writes(&b).unwrap();
    assert_eq!(r.create_double_wins + r.cas_double_wins, 0);
}

/// Declares atomic conditional writes but checks, then acts (as s3s-fs
/// 0.14 and moto do), with a pause between so the race shows every time.
struct CheckThenAct(LocalDirBackend);

impl Backend for CheckThenAct {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BackendError> {
        self.0.put(key, bytes)
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.0.get(key)
    }
    fn has(&self, key: &str) -> Result<bool, BackendError> {
        self.0.has(key)
    }
    fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.0.delete(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        self.0.list(prefix)
    }
    fn put_if(&self, key: &str, bytes: &[u8], pre: Precondition) -> Result<Etag, BackendError> {
        let current = self.0.get_with_etag(key)?;
        let ok = match &pre {
            Precondition::None => true,
            Precondition::IfAbsent => current.is_none(),
            Precondition::IfMatch(e) => current.is_some_and(|(_, c)| c == *e),
        };
        if !ok {
            return Err(BackendError::new(
                BackendErrorKind::PreconditionFailed,
                "412",
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
        self.0.put(key, bytes)?;
        Ok(Etag::of_bytes(bytes))
    }
    fn capabilities(&self) -> Vec<Capability> {
        vec![Capability::AtomicConditionalWrites]
    }
}

#[test]
fn probe_refuses_a_non_atomic_backend_naming_the_race() {
    let d = tempfile::tempdir().unwrap();
    let e = conditional_writes(&CheckThenAct(LocalDirBackend::new(d.path()))).unwrap_err();
    assert_eq!(e.check, "create-race", "{e}");
    let msg = e.to_string();
    assert!(msg.contains("non-atomically"), "{msg}");
    assert!(msg.contains("Ceph RGW"), "{msg}");
}

/// The five basic calls only (as a 0.1 storage plugin): refused up front.
struct Basic(LocalDirBackend);

impl Backend for Basic {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BackendError> {
        self.0.put(key, bytes)
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.0.get(key)
    }
    fn has(&self, key: &str) -> Result<bool, BackendError> {
        self.0.has(key)
    }
    fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.0.delete(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        self.0.list(prefix)
    }
}

#[test]
fn probe_refuses_a_backend_without_conditional_writes() {
    let d = tempfile::tempdir().unwrap();
    let b = Basic(LocalDirBackend::new(d.path()));
    let e = conditional_writes(&b).unwrap_err();
    assert_eq!(e.check, "declared", "{e}");
    assert!(e.to_string().contains("0.2.0"), "{e}");
    // The trait's defaults: unconditional put_if works, conditional is
    // refused as unsupported.
    b.put_if("a", b"x", Precondition::None).unwrap();
    let e = b.put_if("a", b"x", Precondition::IfAbsent).unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::Unsupported);
    assert_eq!(b.head("a").unwrap().unwrap().etag, Etag::of_bytes(b"x"));
    assert_eq!(b.list_info("", None, 10).unwrap().entries.len(), 1);
}

const CAS_PER_PROC: usize = 50;
const PROCS: usize = 3;

/// Run by `processes_share_one_directory` as a child process: create-only
/// claims on `claims/<i>` and CAS increments of `counter`, in the directory
/// named by `SESSHOST_CAS_DIR`.
#[test]
#[ignore = "run as a child by processes_share_one_directory"]
fn cas_child() {
    let Some(dir) = std::env::var_os("SESSHOST_CAS_DIR") else {
        return;
    };
    let me = std::process::id().to_string();
    let b = LocalDirBackend::new(dir);
    let mut claimed = 0;
    for i in 0..CAS_PER_PROC {
        match b.put_if(
            &format!("claims/{i}"),
            me.as_bytes(),
            Precondition::IfAbsent,
        ) {
            Ok(_) => claimed += 1,
            Err(e) => assert_eq!(e.kind, BackendErrorKind::PreconditionFailed, "{e}"),
        }
        loop {
            let (bytes, etag) = b.get_with_etag("counter").unwrap().unwrap();
            let n: u64 = std::str::from_utf8(&bytes).unwrap().parse().unwrap();
            let next = (n + 1).to_string();
            match b.put_if("counter", next.as_bytes(), Precondition::IfMatch(etag)) {
                Ok(_) => break,
                Err(e) => assert_eq!(e.kind, BackendErrorKind::PreconditionFailed, "{e}"),
            }
        }
    }
    println!("claimed={claimed}");
}

/// Three OS processes on one directory: every claim has exactly one
/// winner and no compare-and-swap increment is lost (flock and link(2)
/// exclude processes, not only threads).
#[test]
fn processes_share_one_directory() {
    let d = tempfile::tempdir().unwrap();
    LocalDirBackend::new(d.path()).put("counter", b"0").unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCS)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["cas_child", "--exact", "--ignored", "--nocapture"])
                .env("SESSHOST_CAS_DIR", d.path())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut claimed = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "a child failed");
        let text = String::from_utf8_lossy(&out.stdout);
        claimed += text
            .lines()
            .find_map(|l| l.strip_prefix("claimed="))
            .unwrap()
            .trim()
            .parse::<usize>()
            .unwrap();
    }
    assert_eq!(claimed, CAS_PER_PROC, "one winner per claim");
    let b = LocalDirBackend::new(d.path());
    let n = b.get("counter").unwrap().unwrap();
    assert_eq!(
        String::from_utf8(n).unwrap(),
        (CAS_PER_PROC * PROCS).to_string(),
        "lost updates"
    );
}
