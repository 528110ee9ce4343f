//! Atomic file creation: write to a temp file beside the target, fsync,
//! rename, fsync the directory. Dropping an uncommitted [`AtomicFile`]
//! removes the temp file, so a failed command leaves nothing behind.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub struct AtomicFile {
    file: Option<File>,
    tmp: PathBuf,
    target: PathBuf,
}

impl AtomicFile {
    /// Start writing `target` (created with `mode`, e.g. 0o600 for secrets).
    pub fn create(target: &Path, mode: u32) -> Result<AtomicFile> {
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .ok_or_else(|| Error::Usage(format!("{} is not a file path", target.display())))?;
        let mut rnd = [0u8; 6];
        getrandom::fill(&mut rnd).expect("the operating system's random source failed");
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
        })
    }

    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("not committed")
    }

    /// fsync, rename over the target, fsync the directory.
    pub fn commit(mut self) -> Result<()> {
        let f = self.file.take().expect("not committed");
        let what = format!("cannot write {}", self.target.display());
        f.sync_all().map_err(Error::io(what.clone()))?;
        drop(f);
        std::fs::rename(&self.tmp, &self.target).map_err(Error::io(what.clone()))?;
        if let Some(dir) = self.target.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
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
