//! A progress bar on stderr for long bundle work (seal, unseal, export,
//! import), drawn only when stderr is a terminal and the work is still
//! going after [`DELAY`]: short commands and scripts see nothing.
//!
//! Work is measured in bytes through [`Progress::reader`] /
//! [`Progress::writer`]; with a known total (a file being read) it is a bar
//! with a percentage, otherwise a running byte count. A background thread
//! redraws every 100 ms, so the hot path only adds to an atomic counter.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use sesshost_engine::progress::Counter;
use std::time::{Duration, Instant};

/// Work shorter than this shows no bar. `SESSHOST_PROGRESS_DELAY_MS`
/// overrides it (tests use 0, which always draws once).
pub const DELAY: Duration = Duration::from_millis(500);

struct Inner {
    what: String,
    total: Option<u64>,
    done: Counter,
    stop: AtomicBool,
}

/// A running progress display; [`Progress::finish`] (or drop) clears it.
pub struct Progress {
    inner: Arc<Inner>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Start measuring `what`; draws only on a terminal.
    pub fn start(what: &str, total: Option<u64>) -> Progress {
        let inner = Arc::new(Inner {
            what: what.to_string(),
            total,
            done: Counter::new(),
            stop: AtomicBool::new(false),
        });
        let thread = std::io::stderr().is_terminal().then(|| {
            let delay = std::env::var("SESSHOST_PROGRESS_DELAY_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map_or(DELAY, Duration::from_millis);
            let inner = inner.clone();
            std::thread::spawn(move || draw_loop(&inner, delay))
        });
        Progress { inner, thread }
    }

    /// The counter the work adds to (hand it to an engine call).
    pub fn counter(&self) -> Counter {
        self.inner.done.clone()
    }

    /// Stop drawing and clear the line.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}

fn draw_loop(inner: &Inner, delay: Duration) {
    let start = Instant::now();
    std::thread::park_timeout(delay);
    let mut drawn = false;
    // A zero delay (tests) draws at least once, however short the work.
    let mut first = delay.is_zero();
    while std::mem::take(&mut first) || !inner.stop.load(Ordering::Relaxed) {
        let line = render(&inner.what, inner.done.get(), inner.total, start.elapsed());
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r\x1b[2K{line}");
        let _ = e.flush();
        drawn = true;
        drop(e);
        std::thread::park_timeout(Duration::from_millis(100));
    }
    if drawn {
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r\x1b[2K");
        let _ = e.flush();
    }
}

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

/// One line of progress: a 30-cell bar when the total is known.
pub fn render(what: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    match total.filter(|t| *t > 0) {
        Some(t) => {
            let d = done.min(t);
            let cells = (d as u128 * 30 / t as u128) as usize;
            format!(
                "{what} [{}{}] {:3}% {} / {} {secs:.1} s",
                "#".repeat(cells),
                " ".repeat(30 - cells),
                d as u128 * 100 / t as u128,
                mb(d),
                mb(t)
            )
        }
        None => format!("{what} {} {secs:.1} s", mb(done)),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn renders_a_bar_or_a_count() {
        assert_eq!(
            render(
                "importing x",
                50_000_000,
                Some(200_000_000),
                Duration::from_millis(1500)
            ),
            "importing x [#######                       ]  25% 50.0 MB / 200.0 MB 1.5 s"
        );
        // Reading past the total (seeks re-read parts) stays at 100 %.
        assert!(render("r", 300, Some(200), Duration::ZERO).contains("100% "));
        assert_eq!(
            render("sealing s", 1_234_567, None, Duration::from_secs(2)),
            "sealing s 1.2 MB 2.0 s"
        );
    }

    #[test]
    fn counts_bytes_both_ways_without_a_terminal() {
        let p = Progress::start("t", None);
        let mut w = p.counter().wrap(Vec::new());
        w.write_all(b"hello").unwrap();
        let mut r = p.counter().wrap(&b"abc"[..]);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(p.inner.done.get(), 8);
        p.finish();
    }
}
