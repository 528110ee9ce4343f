//! The warm pool: Chromium processes launched ahead of need with empty
//! profiles and no emulation, so an acquire never waits for a launch.
//!
//! A pooled browser is handed to exactly one session and discarded with
//! it (never returned: no state can bleed from one session to another);
//! the pool refills in the background, one launch at a time (a launch is
//! the CPU-heaviest phase of a browser's life: 0.3-0.45 CPU s to a ready
//! DevTools endpoint and 0.33 s more for its first window, the capture
//! tab, on the 2-core VM (`host/browser/benches/first_window_cpu.sh`), so
//! launching several at once only slows the acquires running meanwhile).
//! Emulation (UA, locale, time zone, viewport) is applied over CDP when a
//! session takes the browser (`BrowserSession::set_emulation`).
//! Pooled browsers do not count against `max_live_browsers`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sesshost_browser::{BrowserSession, LaunchOptions};
use tokio::sync::Notify;

pub struct Pool {
    size: usize,
    profile_root: PathBuf,
    ready: Mutex<VecDeque<BrowserSession>>,
    want: Notify,
    closed: AtomicBool,
    /// Launches that failed in a row (readiness: the pool is usable while
    /// this is 0 or a browser is ready).
    failures: AtomicU64,
    launched: AtomicU64,
}

impl Pool {
    pub fn new(size: usize, profile_root: PathBuf) -> Arc<Pool> {
        Arc::new(Pool {
            size,
            profile_root,
            ready: Mutex::new(VecDeque::new()),
            want: Notify::new(),
            closed: AtomicBool::new(false),
            failures: AtomicU64::new(0),
            launched: AtomicU64::new(0),
        })
    }

    fn options(&self) -> LaunchOptions {
        LaunchOptions {
            profile_root: Some(self.profile_root.clone()),
            ..Default::default()
        }
    }

    fn ready(&self) -> std::sync::MutexGuard<'_, VecDeque<BrowserSession>> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Browsers waiting in the pool.
    pub fn available(&self) -> usize {
        self.ready().len()
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn launched(&self) -> u64 {
        self.launched.load(Ordering::Relaxed)
    }

    /// Whether the pool can give out browsers: one is ready, or the last
    /// launch did not fail.
    pub fn usable(&self) -> bool {
        self.available() > 0 || self.failures.load(Ordering::Relaxed) == 0
    }

    /// A browser for one session: a pooled one if there is one (checked
    /// alive), else a fresh launch. The pool refills behind.
    pub async fn take(&self) -> sesshost_browser::Result<BrowserSession> {
        loop {
            let b = self.ready().pop_front();
            self.want.notify_one();
            match b {
                Some(b) => {
                    if futures::FutureExt::now_or_never(b.wait_closed()).is_some() {
                        tracing::info!("a pooled browser died while waiting; discarded");
                        drop(b);
                        continue;
                    }
                    return Ok(b);
                }
                None => {
                    let b = BrowserSession::launch(self.options()).await?;
                    self.launched.fetch_add(1, Ordering::Relaxed);
                    return Ok(b);
                }
            }
        }
    }

    /// Keep the pool full until [`Pool::close`].
    pub async fn refill(self: Arc<Pool>) {
        let mut backoff = Duration::from_millis(500);
        loop {
            if self.closed.load(Ordering::Relaxed) {
                return;
            }
            if self.available() >= self.size {
                self.want.notified().await;
                continue;
            }
            match BrowserSession::launch(self.options()).await {
                Ok(b) => {
                    self.launched.fetch_add(1, Ordering::Relaxed);
                    self.failures.store(0, Ordering::Relaxed);
                    // Its first capture (the first release or autosave)
                    // then needs no new tab.
                    if let Err(e) = b.prepare_capture_tab().await {
                        tracing::debug!("warm pool: no spare capture tab: {e}");
                    }
                    backoff = Duration::from_millis(500);
                    if self.closed.load(Ordering::Relaxed) {
                        b.shutdown().await;
                        return;
                    }
                    self.ready().push_back(b);
                }
                Err(e) => {
                    let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::warn!(
                        "warm pool: launching Chromium failed ({n} in a row), retrying in {} ms: {e}",
                        backoff.as_millis()
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Stop refilling and close every pooled browser.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.want.notify_waiters();
        let all: Vec<BrowserSession> = self.ready().drain(..).collect();
        for b in all {
            b.shutdown().await;
        }
    }
}
