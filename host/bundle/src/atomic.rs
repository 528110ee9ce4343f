//! Atomic file creation: write to a temp file beside the target, fsync,
//! rename, fsync the directory. Dropping an uncommitted [`AtomicFile`], or a
//! commit that fails before its rename, removes the temp file, so a failed
//! command leaves nothing behind. The workspace's one atomic-write helper:
//! [`write_atomic`] for whole buffers, [`AtomicFile`] for streams.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub struct AtomicFile {
    file: Option<File>,
    tmp: PathBuf,
    target: PathBuf,
    /// The temp file is still on disk (not yet renamed over the target).
    pending: bool,
}

/// Write `bytes` to `path` atomically (created with `mode`, e.g. 0o600 for
/// secrets): temp file beside it, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = AtomicFile::create(path, mode)?;
    f.write_all(bytes)
        .map_err(Error::io(format!("cannot write {}", path.display())))?;
    f.commit()
}

/// The directory a path's entry lives in: its parent, or `.` for a bare name.
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// fsync a directory so a rename in it is durable. Filesystems that cannot
/// fsync a directory (EINVAL) are accepted.
fn sync_dir(dir: &Path) -> Result<()> {
    let what = || format!("cannot sync directory {}", dir.display());
    let d = File::open(dir).map_err(Error::io(what()))?;
    match d.sync_all() {
        Err(e) if e.kind() != io::ErrorKind::InvalidInput && e.raw_os_error() != Some(22) => {
            Err(Error::Io {
                what: what(),
                source: e,
            })
        }
        _ => Ok(()),
    }
}

impl AtomicFile {
    /// Start writing `target` (created with `mode`, e.g. 0o600 for secrets).
    pub fn create(target: &Path, mode: u32) -> Result<AtomicFile> {
        if target.is_dir() {
            return Err(Error::Usage(format!(
                "{} is a directory: pass a file path for the output, e.g. {}",
                target.display(),
                target.join("NAME").display()
            )));
        }
        let dir = parent_dir(target);
        let name = target
            .file_name()
            .ok_or_else(|| Error::Usage(format!("{} is not a file path", target.display())))?;
        let mut rnd = [0u8; 6];
        crate::keys::Randomness::fill(&mut crate::keys::OsRandom, &mut rnd);
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            crate::keys::hex(&rnd)
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(Error::io(format!(
                "cannot create a file in {}",
                dir.display()
            )))?;
        Ok(AtomicFile {
            file: Some(file),
            tmp,
            target: target.to_path_buf(),
            pending: true,
        })
    }

    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("not committed")
    }

    /// fsync, rename over the target, fsync the directory (`.` for a bare
    /// name). On failure before the rename the temp file is removed.
    pub fn commit(mut self) -> Result<()> {
        let f = self.file.take().expect("not committed");
        let what = format!("cannot write {}", self.target.display());
        f.sync_all().map_err(Error::io(what.clone()))?;
        drop(f);
        if self.target.is_dir() {
            return Err(Error::Usage(format!(
                "{} became a directory while it was written: nothing was written",
                self.target.display()
            )));
        }
        std::fs::rename(&self.tmp, &self.target).map_err(Error::io(what))?;
        self.pending = false;
        sync_dir(&parent_dir(&self.target))
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.pending {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Read for AtomicFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file().read(buf)
    }
}

impl Seek for AtomicFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file().seek(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temps(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect()
    }

    #[test]
    fn drop_without_commit_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("out");
        let mut f = AtomicFile::create(&t, 0o600).unwrap();
        f.write_all(b"x").unwrap();
        assert_eq!(temps(d.path()).len(), 1);
        drop(f);
        assert!(temps(d.path()).is_empty());
        assert!(!t.exists());
    }

    #[test]
    fn a_failed_commit_removes_its_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("out");
        let mut f = AtomicFile::create(&t, 0o600).unwrap();
        f.write_all(b"x").unwrap();
        // The target turns into a non-empty directory: the rename must fail.
        std::fs::create_dir(&t).unwrap();
        std::fs::write(t.join("inside"), b"").unwrap();
        assert!(f.commit().is_err());
        assert!(temps(d.path()).is_empty(), "{:?}", temps(d.path()));
    }

    #[test]
    fn a_directory_target_is_refused_up_front() {
        let d = tempfile::tempdir().unwrap();
        let e = AtomicFile::create(d.path(), 0o600)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("is a directory"), "{e}");
        let parent = d.path().parent().unwrap();
        let name = d.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            temps(parent).iter().all(|t| !t.contains(&name)),
            "a temp file was left beside the directory"
        );
    }

    #[test]
    fn write_atomic_writes_with_mode_and_bare_names_sync_dot() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("secret");
        write_atomic(&t, b"hello", 0o600).unwrap();
        assert_eq!(std::fs::read(&t).unwrap(), b"hello");
        let mode = std::fs::metadata(&t).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        write_atomic(&t, b"again", 0o600).unwrap();
        assert_eq!(std::fs::read(&t).unwrap(), b"again");
        assert_eq!(parent_dir(Path::new("bare")), PathBuf::from("."));
        assert_eq!(parent_dir(Path::new("a/b")), PathBuf::from("a"));
        sync_dir(&parent_dir(Path::new("bare"))).unwrap();
        assert!(temps(d.path()).is_empty());
    }
}
