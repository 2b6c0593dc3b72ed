//! Rate limits for the messenger: a token bucket per visitor and per network address, so
//! one browser (or one script) cannot flood the store, the agent or the org. Refusals happen
//! before anything is stored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// How many keys the limiter remembers before it forgets the full buckets (which would
/// allow a whole minute's worth anyway).
const MAX_KEYS: usize = 100_000;

/// Buckets of `per_minute` tokens, refilled continuously.
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter { per_minute: per_minute.max(1), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token of `key`'s bucket; `false` when it is empty.
    pub fn allow(&self, key: &str) -> bool {
        self.allow_at(key, Instant::now())
    }

    fn allow_at(&self, key: &str, now: Instant) -> bool {
        let capacity = self.per_minute as f64;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_KEYS {
            buckets
                .retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * capacity / 60.0 < capacity);
        }
        let (tokens, at) = buckets.entry(key.to_string()).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * capacity / 60.0).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_empties_and_refills_over_a_minute() {
        let limiter = RateLimiter::new(3);
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.allow_at("a", t0)));
        assert!(!limiter.allow_at("a", t0), "the fourth in the same instant");
        assert!(limiter.allow_at("b", t0), "another key has its own bucket");
        assert!(!limiter.allow_at("a", t0 + Duration::from_secs(10)));
        assert!(limiter.allow_at("a", t0 + Duration::from_secs(21)), "one token back after 20 s");
    }
}
