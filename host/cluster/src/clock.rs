//! The clock the protocol reads: monotonic time as a [`Duration`] since an
//! arbitrary origin. Safety never depends on it; liveness compares
//! durations measured on one host's clock only.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub trait Clock: Send + Sync {
    fn now(&self) -> Duration;
}

/// The process's monotonic clock.
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock tests move by hand.
#[derive(Default)]
pub struct FakeClock {
    t: Mutex<Duration>,
}

impl FakeClock {
    pub fn advance(&self, d: Duration) {
        *self.t.lock().unwrap_or_else(|p| p.into_inner()) += d;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Duration {
        *self.t.lock().unwrap_or_else(|p| p.into_inner())
    }
}
