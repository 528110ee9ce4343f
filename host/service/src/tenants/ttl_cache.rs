//! The bucket registry's caches: a bounded map whose entries expire after
//! a fixed time, and a per-second budget of lookups. Time is passed in
//! (`now`), so tests move it by hand.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Entries younger than `ttl`, at most `cap` of them.
pub(super) struct TtlMap<V> {
    map: HashMap<String, (Instant, V)>,
    ttl: Duration,
    cap: usize,
}

impl<V: Clone> TtlMap<V> {
    pub fn new(ttl: Duration, cap: usize) -> Self {
        TtlMap {
            map: HashMap::new(),
            ttl,
            cap: cap.max(1),
        }
    }

    /// The value of `key` if it was stored less than `ttl` before `now`.
    pub fn get(&self, key: &str, now: Instant) -> Option<V> {
        let (at, v) = self.map.get(key)?;
        (now.saturating_duration_since(*at) < self.ttl).then(|| v.clone())
    }

    /// Stores `v`; when full, expired entries go first, then everything
    /// (a full map of live entries is rebuilt from the bucket, never grown).
    pub fn insert(&mut self, key: &str, v: V, now: Instant) {
        if self.map.len() >= self.cap && !self.map.contains_key(key) {
            let ttl = self.ttl;
            self.map
                .retain(|_, (at, _)| now.saturating_duration_since(*at) < ttl);
            if self.map.len() >= self.cap {
                self.map.clear();
            }
        }
        self.map.insert(key.to_string(), (now, v));
    }

    /// Whether `key` was ever stored and not removed since (expired or not).
    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn remove(&mut self, key: &str) {
        self.map.remove(key);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

/// At most `per_second` takes in any one-second window.
pub(super) struct Budget {
    per_second: u32,
    window: Option<Instant>,
    used: u32,
}

impl Budget {
    pub fn new(per_second: u32) -> Self {
        Budget {
            per_second,
            window: None,
            used: 0,
        }
    }

    /// Takes one unit; `false` when this second's budget is spent.
    pub fn take(&mut self, now: Instant) -> bool {
        let fresh = self
            .window
            .is_none_or(|w| now.saturating_duration_since(w) >= Duration::from_secs(1));
        if fresh {
            self.window = Some(now);
            self.used = 0;
        }
        if self.used >= self.per_second {
            return false;
        }
        self.used += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_map_stays_bounded() {
        let t0 = Instant::now();
        let mut m = TtlMap::new(Duration::from_secs(5), 3);
        m.insert("a", 1, t0);
        assert_eq!(m.get("a", t0 + Duration::from_millis(4999)), Some(1));
        assert_eq!(m.get("a", t0 + Duration::from_secs(5)), None);
        m.insert("b", 2, t0 + Duration::from_secs(1));
        m.insert("c", 3, t0 + Duration::from_secs(1));
        // Full: the expired "a" goes, the live ones stay.
        m.insert("d", 4, t0 + Duration::from_secs(5));
        assert_eq!(m.len(), 3);
        assert!(!m.contains("a"));
        assert_eq!(m.get("b", t0 + Duration::from_secs(5)), Some(2));
        // Full of live entries: cleared, never over the cap.
        m.insert("e", 5, t0 + Duration::from_secs(5));
        assert_eq!(m.len(), 1);
        assert_eq!(m.get("e", t0 + Duration::from_secs(5)), Some(5));
        m.remove("e");
        assert_eq!(m.get("e", t0 + Duration::from_secs(5)), None);
    }

    #[test]
    fn budget_refills_every_second() {
        let t0 = Instant::now();
        let mut b = Budget::new(2);
        assert!(b.take(t0) && b.take(t0));
        assert!(!b.take(t0 + Duration::from_millis(999)));
        assert!(b.take(t0 + Duration::from_secs(1)));
    }
}
