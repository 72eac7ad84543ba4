//! MaxTransferRate on the native plane: a token bucket per direction, with the same sizes and
//! rules as the JavaScript plane's (ts/net/rate-limit.ts), so that a connection handed over
//! keeps the bound the setting promises: over any span of T seconds at most burst + rate × T
//! bytes pass each way. Outbound the bucket gates what is written to the SSH socket (and so
//! what is read from local sockets); inbound it gates the window credit given to the peer,
//! so the peer sends channel data no faster than the rate while its control messages are
//! never held behind that data.
//!
//! Time is an input (`Instant`s the caller passes), so the buckets run on made-up clocks in
//! tests. Written here rather than taken from a crate: the plane needs "how many bytes may
//! pass now" and "how long until n may" without the bucket holding or scheduling the bytes.

use std::time::{Duration, Instant};

/// The smallest burst: a couple of full-size TCP segments.
pub const MIN_BURST: u64 = 4096;
/// The burst is this many milliseconds of the rate.
pub const BURST_MS: u64 = 50;
/// The most a bucket may owe (bytes), unless the burst is larger.
pub const MAX_DEBT: u64 = 64 * 1024;

/// The burst a rate allows (bytes).
pub fn burst_for(rate: u64) -> u64 {
    MIN_BURST.max((rate.saturating_mul(BURST_MS)).div_ceil(1000))
}

/// One direction's tokens. A rate of 0 is no limit.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: u64,
    burst: u64,
    tokens: f64,
    stamp: Instant,
}

impl Bucket {
    pub fn new(now: Instant) -> Bucket {
        Bucket {
            rate: 0,
            burst: MIN_BURST,
            tokens: 0.0,
            stamp: now,
        }
    }

    pub fn limited(&self) -> bool {
        self.rate > 0
    }

    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// Changes the rate at once: coming from no limit the bucket starts full, otherwise it
    /// keeps what it had saved up (at most the new burst).
    pub fn set_rate(&mut self, rate: u64, now: Instant) {
        self.refill(now);
        let was_limited = self.limited();
        self.rate = rate;
        self.burst = burst_for(rate);
        let burst = self.burst as f64;
        self.tokens = if was_limited {
            self.tokens.min(burst)
        } else {
            burst
        };
    }

    /// Whole bytes that may pass at `now` (u64::MAX with no limit).
    pub fn available(&self, now: Instant) -> u64 {
        if !self.limited() {
            return u64::MAX;
        }
        self.tokens_at(now).max(0.0).floor() as u64
    }

    /// `bytes` passed at `now`. They may exceed what was available (the debt is paid off
    /// before anything else passes), down to one burst or MAX_DEBT owed, whichever is more.
    pub fn take(&mut self, bytes: u64, now: Instant) {
        if !self.limited() || bytes == 0 {
            return;
        }
        self.refill(now);
        let floor = -(self.burst.max(MAX_DEBT) as f64);
        self.tokens = (self.tokens - bytes as f64).max(floor);
    }

    /// How long from `now` until `bytes` (at most the burst) may pass; zero when they may.
    pub fn wait_for(&self, bytes: u64, now: Instant) -> Duration {
        if !self.limited() {
            return Duration::ZERO;
        }
        let needed = bytes.clamp(1, self.burst) as f64;
        let tokens = self.tokens_at(now);
        if tokens >= needed {
            return Duration::ZERO;
        }
        // At least a millisecond: no timer is armed for less.
        Duration::from_secs_f64((needed - tokens) / self.rate as f64).max(Duration::from_millis(1))
    }

    fn tokens_at(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.stamp).as_secs_f64();
        (self.tokens + self.rate as f64 * elapsed).min(self.burst as f64)
    }

    fn refill(&mut self, now: Instant) {
        if now > self.stamp {
            if self.limited() {
                self.tokens = self.tokens_at(now);
            }
            self.stamp = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_more_than_burst_plus_rate_times_time_passes() {
        let start = Instant::now();
        let mut bucket = Bucket::new(start);
        bucket.set_rate(100_000, start);
        assert_eq!(bucket.burst(), 5000);
        let mut passed = 0u64;
        let mut now = start;
        for _ in 0..1000 {
            let n = bucket.available(now);
            bucket.take(n, now);
            passed += n;
            now += Duration::from_millis(7);
        }
        let elapsed = now.duration_since(start).as_secs_f64();
        assert!(passed as f64 <= 5000.0 + 100_000.0 * elapsed);
        assert!(passed as f64 >= 100_000.0 * (elapsed - 0.05), "{passed}");
    }

    #[test]
    fn a_debt_is_paid_off_before_more_passes_and_is_capped() {
        let start = Instant::now();
        let mut bucket = Bucket::new(start);
        bucket.set_rate(10_000, start);
        bucket.take(1_000_000, start);
        assert_eq!(bucket.available(start), 0);
        // Owed at most MAX_DEBT: 64 KiB at 10 kB/s are paid off after 6.55 s.
        assert_eq!(
            bucket.wait_for(1, start),
            Duration::from_secs_f64((MAX_DEBT as f64 + 1.0) / 10_000.0)
        );
        assert!(bucket.available(start + Duration::from_secs(7)) > 0);
    }

    #[test]
    fn lifting_the_limit_lets_everything_pass_and_a_new_one_starts_full() {
        let start = Instant::now();
        let mut bucket = Bucket::new(start);
        assert_eq!(bucket.available(start), u64::MAX);
        bucket.set_rate(1_000_000, start);
        assert_eq!(bucket.available(start), 50_000);
        bucket.take(50_000, start);
        bucket.set_rate(0, start);
        assert_eq!(bucket.available(start), u64::MAX);
        assert_eq!(bucket.wait_for(1 << 20, start), Duration::ZERO);
        bucket.set_rate(8_192_000, start);
        assert_eq!(bucket.available(start), burst_for(8_192_000));
    }
}
