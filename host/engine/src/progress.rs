//! Byte counters for long bundle work. The engine only adds to a
//! [`Counter`]; whoever shows progress (the CLI's bar, a service metric)
//! reads it from another thread.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes done so far; cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn new() -> Counter {
        Counter::default()
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    /// `inner` with every byte read or written counted here.
    pub fn wrap<T>(&self, inner: T) -> Counted<T> {
        Counted {
            inner,
            counter: self.clone(),
        }
    }
}

/// A reader or writer whose bytes are counted into a [`Counter`]. Seeking
/// backwards is not subtracted: the count is work done, not position.
pub struct Counted<T> {
    inner: T,
    counter: Counter,
}

impl<T> Counted<T> {
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.add(n as u64);
        Ok(n)
    }
}

impl<S: Seek> Seek for Counted<S> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.counter.add(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
