//! Per-tenant token buckets for session creation: `burst` tokens at most,
//! refilled at `per_minute` tokens a minute, on the monotonic clock (a
//! wall-clock jump neither frees nor blocks anyone). Memory: one small
//! entry per tenant that ever created a session (tenants are few).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by tenant name.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    burst: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `per_minute` tokens a minute, `burst` at most (both at least 1; a 0
    /// is taken as 1 so the limiter can never lock a tenant out forever).
    pub fn new(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_minute: per_minute.max(1),
            burst: burst.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `tenant` now; `Err(retry_after)` when none left.
    pub fn check(&self, tenant: &str) -> Result<(), Duration> {
        self.check_at(tenant, Instant::now())
    }

    /// [`RateLimiter::check`] at a given instant (for deterministic tests).
    /// An instant earlier than the bucket's last one counts as no time.
    pub fn check_at(&self, tenant: &str, now: Instant) -> Result<(), Duration> {
        let rate = f64::from(self.per_minute) / 60.0; // tokens per second
        let burst = f64::from(self.burst);
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = map.entry(tenant.to_string()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        if now > b.last {
            b.last = now;
        }
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - b.tokens) / rate).max(0.001);
            Err(Duration::from_secs_f64(wait.min(86_400.0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let r = RateLimiter::new(6, 3); // one token per 10 s
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(r.check_at("a", t0).is_ok());
        }
        let wait = r.check_at("a", t0).unwrap_err();
        assert!((9.9..=10.1).contains(&wait.as_secs_f64()), "{wait:?}");
        // Other tenants are independent.
        assert!(r.check_at("b", t0).is_ok());
        // Half-way: still refused, with about 5 s to go.
        let wait = r.check_at("a", t0 + Duration::from_secs(5)).unwrap_err();
        assert!((4.9..=5.1).contains(&wait.as_secs_f64()), "{wait:?}");
        assert!(r.check_at("a", t0 + Duration::from_secs(10)).is_ok());
        assert!(r.check_at("a", t0 + Duration::from_secs(10)).is_err());
        // A long pause refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(r.check_at("a", later).is_ok());
        }
        assert!(r.check_at("a", later).is_err());
    }

    #[test]
    fn time_going_backwards_is_harmless() {
        let r = RateLimiter::new(60, 1);
        let t0 = Instant::now() + Duration::from_secs(100);
        assert!(r.check_at("a", t0).is_ok());
        assert!(r.check_at("a", t0 - Duration::from_secs(50)).is_err());
        assert!(r.check_at("a", t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn zero_settings_do_not_lock_out() {
        let r = RateLimiter::new(0, 0);
        assert!(r.check("x").is_ok());
        let wait = r.check("x").unwrap_err();
        assert!(wait <= Duration::from_secs(61), "{wait:?}");
    }
}
