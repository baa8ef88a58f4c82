//! A token bucket per `/ws` connection: `per_s` messages a second sustained, bursts up
//! to `burst`. A message without a token is refused; `strikes` refusals in a row mean
//! the client is not listening, and it is disconnected (close 1008). Plain Rust, so the
//! arithmetic is unit-tested without a clock.

use std::time::Instant;

#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_s: f64,
    burst: f64,
    tokens: f64,
    last_refill: Instant,
    strikes: u32,
    max_strikes: u32,
}

/// What to do with one incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Answer `rate_limited` and drop the message.
    Refuse,
    /// Close the connection with 1008.
    Disconnect,
}

impl RateLimiter {
    /// `None` when `per_s` is 0: no limit.
    pub fn new(per_s: u32, burst: u32, max_strikes: u32, now: Instant) -> Option<Self> {
        (per_s > 0).then(|| Self {
            per_s: f64::from(per_s),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last_refill: now,
            strikes: 0,
            max_strikes: max_strikes.max(1),
        })
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_s).min(self.burst);
        self.last_refill = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.strikes = 0;
            return Verdict::Allow;
        }
        self.strikes += 1;
        if self.strikes >= self.max_strikes {
            Verdict::Disconnect
        } else {
            Verdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn zero_rate_means_no_limiter() {
        assert!(RateLimiter::new(0, 10, 3, Instant::now()).is_none());
    }

    #[test]
    fn allows_a_burst_then_refuses_then_disconnects() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10, 3, 2, start).unwrap();
        for _ in 0..3 {
            assert_eq!(limiter.check(start), Verdict::Allow);
        }
        assert_eq!(limiter.check(start), Verdict::Refuse);
        assert_eq!(limiter.check(start), Verdict::Disconnect);
    }

    #[test]
    fn refills_at_the_sustained_rate_and_forgives_strikes() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10, 1, 3, start).unwrap();
        assert_eq!(limiter.check(start), Verdict::Allow);
        assert_eq!(limiter.check(start), Verdict::Refuse);
        let later = start + Duration::from_millis(100);
        assert_eq!(limiter.check(later), Verdict::Allow);
        assert_eq!(limiter.check(later), Verdict::Refuse);
        assert_eq!(limiter.check(later), Verdict::Refuse);
        assert_eq!(limiter.check(later), Verdict::Disconnect);
    }
}
