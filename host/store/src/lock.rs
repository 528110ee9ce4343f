//! Local locks: `flock` on files under a lock directory, taken with a
//! timeout, naming their holder when they cannot be had.
//!
//! ```text
//! LOCKS/store.lock            shared by every writer of snapshots (save, create,
//!                             import, rollback); exclusive for a GC sweep
//! LOCKS/store.gate            turnstile in front of store.lock, so a waiting
//!                             sweep is not starved by overlapping saves
//! LOCKS/gc.lock               one garbage collection at a time (saves never wait on it)
//! LOCKS/sessions/<name>.lock  exclusive for changes of one session, shared for reads
//! ```
//!
//! Each acquisition opens its own file description, so two threads of one
//! process exclude each other exactly as two processes do (flock locks
//! belong to the open file description). An exclusive holder writes
//! `pid=<pid> cmd=<command> since=<ms>` into the file after locking; a
//! waiter that times out reads it back for its error. Lock files are never
//! deleted (deleting a lock file races with a process that has it open).
//! The kernel drops a lock when its holder dies, so a crash never leaves a
//! session locked.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Result, StoreError};
use crate::layout::now_ms;

/// How long a store operation waits for a lock before it fails with
/// [`StoreError::LockTimeout`]. Cost: a longer timeout only lengthens the
/// wait behind a stuck holder; a save holds its session lock for the save's
/// own time (small session, release, tmpfs: p50 0.15-0.27 ms, p99 1-6 ms
/// with 10 to 10,000 sessions in the store, benches/scale.rs; add ~2
/// fsyncs per object on a disk).
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a store's locks live and how long to wait for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockConfig {
    pub dir: PathBuf,
    pub timeout: Duration,
}

impl LockConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LockConfig {
            dir: dir.into(),
            timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }

    pub(crate) fn session(&self, name: &str, mode: Mode) -> Result<LockGuard> {
        let what = format!("session {name:?}");
        acquire(
            &self.dir.join("sessions").join(format!("{name}.lock")),
            &what,
            mode,
            self.timeout,
        )
    }

    /// The store lock, shared, through the turnstile.
    pub(crate) fn store_shared(&self) -> Result<LockGuard> {
        self.store(Mode::Shared)
    }

    /// The store lock, exclusive (waits for running saves to finish and
    /// keeps new ones out while it is held).
    pub(crate) fn store_exclusive(&self) -> Result<LockGuard> {
        self.store(Mode::Exclusive)
    }

    /// The store lock in `mode`, taken through the turnstile (`store.gate`,
    /// held only while queueing) so a waiting exclusive taker is never
    /// starved by a stream of shared ones.
    fn store(&self, mode: Mode) -> Result<LockGuard> {
        let gate = acquire(
            &self.dir.join("store.gate"),
            "the store",
            Mode::Exclusive,
            self.timeout,
        )?;
        let g = acquire(
            &self.dir.join("store.lock"),
            "the store",
            mode,
            self.timeout,
        );
        drop(gate);
        g
    }

    pub(crate) fn gc(&self) -> Result<LockGuard> {
        acquire(
            &self.dir.join("gc.lock"),
            "garbage collection",
            Mode::Exclusive,
            self.timeout,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Shared,
    Exclusive,
}

/// A held lock; released on drop (or when the process dies).
#[derive(Debug)]
pub(crate) struct LockGuard {
    file: File,
    mode: Mode,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.mode == Mode::Exclusive {
            let _ = self.file.set_len(0);
        }
        let _ = self.file.unlock();
    }
}

/// Who holds a lock, as its holder wrote it.
fn holder_text(f: &mut File, wanted: Mode) -> String {
    let mut s = String::new();
    let _ = f.rewind().and_then(|_| f.take(512).read_to_string(&mut s));
    let field = |k: &str| {
        s.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .map(str::to_owned)
    };
    match (field("pid="), field("cmd="), field("since=")) {
        (Some(pid), cmd, since) => {
            let cmd = cmd.map(|c| c.replace('+', " ")).unwrap_or_default();
            let age = since
                .and_then(|s| s.parse::<i64>().ok())
                .map(|s| format!(", for {:.1} s", (now_ms() - s).max(0) as f64 / 1000.0))
                .unwrap_or_default();
            format!("held by pid {pid} ({cmd}){age}")
        }
        _ if wanted == Mode::Exclusive => {
            "held shared by readers or saves in progress (they do not record their pid)".into()
        }
        _ => "held by a process that did not record its pid".into(),
    }
}

/// This process's command, for holder notes: the program's file name and
/// up to two following words that look like subcommands (never values).
fn command_name() -> String {
    let mut args = std::env::args();
    let prog = args
        .next()
        .as_deref()
        .and_then(|p| Path::new(p).file_name()?.to_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    let subs: Vec<String> = args
        .take(2)
        .take_while(|a| {
            !a.is_empty()
                && a.len() <= 20
                && a.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                && !a.starts_with('-')
        })
        .collect();
    std::iter::once(prog)
        .chain(subs)
        .collect::<Vec<_>>()
        .join("+")
        .replace(char::is_whitespace, "_")
}

pub(crate) fn acquire(path: &Path, what: &str, mode: Mode, timeout: Duration) -> Result<LockGuard> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)
            .map_err(|e| StoreError::io("cannot create the lock directory", dir, e))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::io("cannot open the lock file", path, e))?;
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let r = match mode {
            Mode::Shared => file.try_lock_shared(),
            Mode::Exclusive => file.try_lock(),
        };
        match r {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                let waited = start.elapsed();
                if waited >= timeout {
                    return Err(StoreError::LockTimeout {
                        what: what.to_owned(),
                        path: path.to_owned(),
                        waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                        holder: holder_text(&mut file, mode),
                    });
                }
                std::thread::sleep(pause.min(timeout.saturating_sub(waited)));
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(TryLockError::Error(e)) => return Err(StoreError::io("cannot lock", path, e)),
        }
    }
    if mode == Mode::Exclusive {
        let note = format!(
            "pid={} cmd={} since={}\n",
            std::process::id(),
            command_name(),
            now_ms()
        );
        // The note only improves an error message: failing to write it is
        // not a reason to fail the operation.
        let _ = file
            .set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(note.as_bytes()));
    }
    Ok(LockGuard { file, mode })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_of_one_process_exclude_each_other_and_timeouts_name_the_holder() {
        let d = tempfile::tempdir().unwrap();
        let cfg = LockConfig {
            dir: d.path().into(),
            timeout: Duration::from_millis(100),
        };
        let held = cfg.session("a", Mode::Exclusive).unwrap();
        let e = std::thread::scope(|s| {
            s.spawn(|| cfg.session("a", Mode::Exclusive).unwrap_err())
                .join()
                .unwrap()
        });
        let text = e.to_string();
        assert!(matches!(e, StoreError::LockTimeout { .. }), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("session \"a\""), "{text}");
        // Shared readers coexist, and keep a writer out.
        drop(held);
        let r1 = cfg.session("a", Mode::Shared).unwrap();
        let r2 = cfg.session("a", Mode::Shared).unwrap();
        let e = cfg.session("a", Mode::Exclusive).unwrap_err().to_string();
        assert!(e.contains("held shared"), "{e}");
        drop((r1, r2));
        cfg.session("a", Mode::Exclusive).unwrap();
        // Another session is independent.
        let _a = cfg.session("a", Mode::Exclusive).unwrap();
        cfg.session("b", Mode::Exclusive).unwrap();
    }

    #[test]
    fn a_waiting_sweep_gets_the_store_lock_while_saves_keep_coming() {
        let d = tempfile::tempdir().unwrap();
        let cfg = LockConfig {
            dir: d.path().into(),
            timeout: Duration::from_secs(5),
        };
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let _g = cfg.store_shared().unwrap();
                        std::thread::sleep(Duration::from_millis(3));
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(30));
            let t = Instant::now();
            let g = cfg.store_exclusive().unwrap();
            assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
            drop(g);
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }
}
