//! The service's recent past for the console's health charts: an
//! in-process sampler that every [`INTERVAL`] records live browsers,
//! leased sessions, queued acquires, the warm pool, the acquire latency
//! p50 of that interval and memory, into a ring buffer of [`CAPACITY`]
//! samples (one hour), served by `GET /v1/metrics/history`.
//!
//! Decisions:
//! - The samples come from the same sources as `/metrics` and
//!   `/v1/pressure` (the gauges, the acquire histogram, `/proc`), so a
//!   chart and a Prometheus scrape agree.
//! - Acquire p50 is of the acquires *in each interval* (the difference of
//!   two histogram snapshots, interpolated inside the bucket), `null` when
//!   there were none; a cumulative p50 would hide a recent slowdown.
//! - Memory is the machine's fraction in use (what `/v1/pressure` reports)
//!   and the service process's own RSS; browsers are separate processes,
//!   counted in the machine figure.
//! - Nothing is stored on disk: a restart starts an empty hour.
//! - One host: the service has no cluster membership yet, so `hosts`
//!   lists this one only.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use sesshost_store::now_ms;

use crate::app::App;
use crate::metrics::Histogram;

/// Time between samples.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Samples kept (360 × 10 s = 1 h).
pub const CAPACITY: usize = 360;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sample {
    /// Unix milliseconds.
    pub at_ms: i64,
    pub live_browsers: u64,
    pub leased: u64,
    pub queued: u64,
    /// Warm browsers ready in the pool.
    pub pool_available: u64,
    pub pool_size: u64,
    /// Acquires that completed in this interval.
    pub acquires: u64,
    /// Median acquire latency of this interval's acquires (ms).
    pub acquire_p50_ms: Option<f64>,
    /// Machine memory in use, 0..1.
    pub memory_fraction: Option<f64>,
    /// The service process's resident set (bytes).
    pub rss_bytes: Option<u64>,
}

/// The ring buffer and the last histogram snapshot.
#[derive(Debug, Default)]
pub struct History {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    samples: VecDeque<Sample>,
    last_acquire: Vec<u64>,
}

impl History {
    /// Add a sample, dropping the oldest past [`CAPACITY`].
    pub fn push(&self, s: Sample) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.samples.len() == CAPACITY {
            g.samples.pop_front();
        }
        g.samples.push_back(s);
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.samples.iter().cloned().collect()
    }

    /// Acquires since the previous call and their p50 (ms).
    fn acquire_delta(&self, h: &Histogram) -> (u64, Option<f64>) {
        let now = h.bucket_counts();
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let delta: Vec<u64> = now
            .iter()
            .enumerate()
            .map(|(i, c)| c.saturating_sub(g.last_acquire.get(i).copied().unwrap_or(0)))
            .collect();
        g.last_acquire = now;
        let n = delta.iter().sum();
        (n, quantile(h.bounds(), &delta, 0.5).map(|s| s * 1000.0))
    }
}

/// The `q` quantile of per-bucket `counts` with upper `bounds` (the last
/// count is `+Inf`, reported as the largest bound), interpolated linearly
/// inside the bucket as Prometheus' `histogram_quantile` does.
pub fn quantile(bounds: &[f64], counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut cum = 0u64;
    for (i, &c) in counts.iter().enumerate() {
        if c > 0 && (cum + c) as f64 >= rank {
            let Some(&hi) = bounds.get(i) else {
                return bounds.last().copied();
            };
            let lo = if i == 0 { 0.0 } else { bounds[i - 1] };
            let within = ((rank - cum as f64) / c as f64).clamp(0.0, 1.0);
            return Some(lo + (hi - lo) * within);
        }
        cum += c;
    }
    bounds.last().copied()
}

/// The machine's memory in use, 0..1 (from /proc/meminfo).
pub fn memory_fraction() -> Option<f64> {
    let t = std::fs::read_to_string("/proc/meminfo").ok()?;
    let get = |k: &str| -> Option<f64> {
        t.lines()
            .find(|l| l.starts_with(k))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let (total, avail) = (get("MemTotal:")?, get("MemAvailable:")?);
    (total > 0.0).then(|| 1.0 - avail / total)
}

/// This process's resident set in bytes (from /proc/self/status).
pub fn rss_bytes() -> Option<u64> {
    let t = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = t
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Take one sample of `app` now.
pub fn sample(app: &App) -> Sample {
    app.refresh_live_gauge();
    let leased = app.leased_count();
    let (acquires, p50) = app.history.acquire_delta(&app.metrics.acquire_seconds);
    Sample {
        at_ms: now_ms(),
        live_browsers: app.metrics.live_browsers.get() as u64,
        leased: leased as u64,
        queued: app.queued.load(Ordering::Relaxed) as u64,
        pool_available: app.pool.available() as u64,
        pool_size: app.config.pool.size as u64,
        acquires,
        acquire_p50_ms: p50.map(|v| (v * 10.0).round() / 10.0),
        memory_fraction: memory_fraction().map(|m| (m * 1000.0).round() / 1000.0),
        rss_bytes: rss_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at: i64) -> Sample {
        Sample {
            at_ms: at,
            live_browsers: 0,
            leased: 0,
            queued: 0,
            pool_available: 0,
            pool_size: 0,
            acquires: 0,
            acquire_p50_ms: None,
            memory_fraction: None,
            rss_bytes: None,
        }
    }

    #[test]
    fn ring_keeps_the_last_hour() {
        let h = History::default();
        for i in 0..(CAPACITY as i64 + 5) {
            h.push(s(i));
        }
        let v = h.samples();
        assert_eq!(v.len(), CAPACITY);
        assert_eq!(v[0].at_ms, 5);
        assert_eq!(v[CAPACITY - 1].at_ms, CAPACITY as i64 + 4);
    }

    #[test]
    fn p50_is_of_the_interval_and_interpolated() {
        let hist = Histogram::new(&[0.1, 0.2, 0.4]);
        let h = History::default();
        assert_eq!(h.acquire_delta(&hist), (0, None));
        for _ in 0..4 {
            hist.observe(0.15);
        }
        let (n, p) = h.acquire_delta(&hist);
        assert_eq!(n, 4);
        // Rank 2 of 4 in (0.1, 0.2]: half way, 150 ms.
        assert!((p.unwrap() - 150.0).abs() < 1e-6, "{p:?}");
        // The next interval only sees its own (slow) acquires.
        hist.observe(0.3);
        let (n, p) = h.acquire_delta(&hist);
        assert_eq!(n, 1);
        assert!(p.unwrap() > 200.0, "{p:?}");
        assert_eq!(h.acquire_delta(&hist), (0, None));
        // Past the last bound: the largest bound.
        assert_eq!(quantile(&[1.0], &[0, 3], 0.5), Some(1.0));
    }

    #[test]
    fn proc_readings_are_plausible() {
        assert!(rss_bytes().unwrap() > 1024 * 1024);
        let m = memory_fraction().unwrap();
        assert!((0.0..=1.0).contains(&m), "{m}");
    }
}
