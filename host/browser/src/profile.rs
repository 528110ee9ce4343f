//! Private Chromium profiles: where they live, who owns them, and sweeping
//! the ones whose host died.
//!
//! A profile is a directory `sesshost-chromium-XXXXXX` under the launch's
//! `profile_root` (or `$TMPDIR`). It holds a logged-in session, so it must
//! not outlive its host. Dropping the browser deletes it; a host killed by
//! SIGKILL (or stopped before its signal handlers were installed) cannot,
//! so each profile holds an owner lock, [`LOCK_FILE`]: a file with the
//! owning host's pid, `flock`ed exclusively for the browser's life. The
//! kernel releases the lock when the host dies however it dies, and
//! [`sweep_stale_profiles`] (called at every host start) deletes every
//! profile whose lock is free.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{BrowserError, Result};

/// Name prefix of every profile directory.
pub const PROFILE_PREFIX: &str = "sesshost-chromium-";

/// The owner lock inside a profile directory.
pub const LOCK_FILE: &str = "sesshost-owner.lock";

/// A profile directory without an owner lock is only swept once it is this
/// old (the lock is written right after the directory is created; a sweep
/// in between must not take a profile being born).
pub const UNLOCKED_GRACE: Duration = Duration::from_secs(60);

/// A private profile directory and its held owner lock. Not deleted on
/// drop: [`Profile::remove`] does that (after Chromium is gone).
#[derive(Debug)]
pub(crate) struct Profile {
    path: PathBuf,
    /// Held (flock) until the profile is removed. std opens files with
    /// `O_CLOEXEC`, so Chromium does not inherit (and keep) the lock.
    _lock: File,
}

impl Profile {
    /// Create a fresh profile under `root` (created 0700 if missing), or
    /// under the temp dir.
    pub(crate) fn create(root: Option<&Path>) -> Result<Self> {
        let builder = {
            let mut b = tempfile::Builder::new();
            b.prefix(PROFILE_PREFIX);
            b
        };
        let dir = match root {
            Some(root) => {
                ensure_private_dir(root)?;
                builder.tempdir_in(root)
            }
            None => builder.tempdir(),
        }
        .map_err(BrowserError::ProfileDir)?;
        // From here on the directory is ours to delete (by `remove`, or by
        // a later sweep once the lock is free).
        let path = dir.keep();
        match take_lock(&path) {
            Ok(lock) => Ok(Profile { path, _lock: lock }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&path);
                Err(BrowserError::ProfileDir(e))
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Delete the directory (blocking: retries for up to 1 s while
    /// Chromium's helpers finish writing), then release the lock.
    pub(crate) fn remove(self) {
        for _ in 0..20 {
            match std::fs::remove_dir_all(&self.path) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// Create `dir` (and parents) if missing and make it 0700.
fn ensure_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| {
            BrowserError::ProfileDir(std::io::Error::new(
                e.kind(),
                format!("profile root {}: {e}", dir.display()),
            ))
        })
}

fn take_lock(profile: &Path) -> std::io::Result<File> {
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .read(true)
        .open(profile.join(LOCK_FILE))?;
    f.try_lock().map_err(std::io::Error::other)?;
    writeln!(f, "{}", std::process::id())?;
    Ok(f)
}

/// What [`sweep_stale_profiles`] did.
#[derive(Debug, Default)]
pub struct SweepReport {
    /// Profiles deleted: their owner is gone.
    pub removed: Vec<PathBuf>,
    /// Profiles kept: their owner lock is held (a live host's browser).
    pub live: usize,
    /// Stale profiles that could not be deleted, with why.
    pub failed: Vec<(PathBuf, std::io::Error)>,
}

/// Delete every profile under `root` whose owner is gone (its owner lock is
/// free, or it has none and is older than [`UNLOCKED_GRACE`]). Call at
/// every host start with the launch's `profile_root`. A missing `root` is
/// an empty sweep. Cost: one open + flock per profile (~20 µs), plus the
/// deletion of stale ones (a used profile is ~5-20 MB, some ms each).
pub fn sweep_stale_profiles(root: &Path) -> Result<SweepReport> {
    let mut report = SweepReport::default();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => {
            return Err(BrowserError::ProfileDir(std::io::Error::new(
                e.kind(),
                format!(
                    "listing profile root {} for stale profiles: {e}",
                    root.display()
                ),
            )));
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_profile = entry
            .file_name()
            .to_string_lossy()
            .starts_with(PROFILE_PREFIX)
            && entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_profile {
            continue;
        }
        // Held while deleting, so no one else takes it meanwhile.
        let lock = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path.join(LOCK_FILE))
        {
            Ok(f) => match f.try_lock() {
                Ok(()) => Some(f),
                Err(std::fs::TryLockError::WouldBlock) => {
                    report.live += 1;
                    continue;
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    report.failed.push((path, e));
                    continue;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let young = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_none_or(|age| age < UNLOCKED_GRACE);
                if young {
                    report.live += 1;
                    continue;
                }
                None
            }
            Err(e) => {
                report.failed.push((path, e));
                continue;
            }
        };
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::debug!("swept stale Chromium profile {}", path.display());
                report.removed.push(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => report.failed.push((path, e)),
        }
        drop(lock);
    }
    Ok(report)
}
