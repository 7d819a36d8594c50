//! `--throughput`: a token bucket on records, and the batching a throttled
//! producer does with it. Time is an argument, so the arithmetic is testable.
//!
//! Records "arrive" at the target rate as tokens. When a request slot is free
//! the producer sends a full batch if that many records have arrived, or,
//! once the oldest waiting record has waited `linger`, whatever has arrived:
//! the same batching a Kafka producer does with `linger.ms`.

use std::time::Duration;

/// How many seconds of tokens the bucket may hold beyond one batch: enough to
/// ride out a scheduling hiccup without a burst that would distort latency.
const BURST_S: f64 = 0.1;

/// What the producer should do now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Grant {
    /// Send this many records (at least 1).
    Send(u64),
    /// Nothing to send yet; ask again after this long.
    Wait(Duration),
}

#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_s: f64,
    capacity: f64,
    tokens: f64,
    updated: Duration,
}

impl TokenBucket {
    /// An empty bucket filling at `rate_per_s` (> 0) from `now`; it holds at
    /// least `batch_records` so a full batch can always be granted.
    pub fn new(rate_per_s: f64, batch_records: u64, now: Duration) -> Self {
        let capacity = (rate_per_s * BURST_S).max(batch_records as f64).max(1.0);
        Self { rate_per_s, capacity, tokens: 0.0, updated: now }
    }

    fn refill(&mut self, now: Duration) {
        let elapsed_s = now.saturating_sub(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed_s * self.rate_per_s).min(self.capacity);
        self.updated = self.updated.max(now);
    }

    /// Whether to send now: `want` records make a full batch (or all that is
    /// left), and a partial batch may go once its first record waited `linger`.
    pub fn poll(&mut self, now: Duration, want: u64, linger: Duration) -> Grant {
        self.refill(now);
        // The bucket never holds more than its capacity: asking for more would wait forever.
        let want = want.clamp(1, self.capacity as u64);
        if self.tokens >= want as f64 {
            return Grant::Send(want);
        }
        let until_full = Duration::from_secs_f64((want as f64 - self.tokens) / self.rate_per_s);
        if self.tokens < 1.0 {
            return Grant::Wait(Duration::from_secs_f64((1.0 - self.tokens) / self.rate_per_s));
        }
        // The first whole token arrived this long ago (the bucket is below
        // capacity here, so no token was thrown away since).
        let waited = Duration::from_secs_f64((self.tokens - 1.0) / self.rate_per_s);
        if waited >= linger {
            return Grant::Send(self.tokens.floor() as u64);
        }
        Grant::Wait((linger - waited).min(until_full))
    }

    /// Spends the tokens of `records` sent records.
    pub fn take(&mut self, records: u64) {
        self.tokens = (self.tokens - records as f64).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }

    #[test]
    fn without_linger_whatever_arrived_goes() {
        let mut bucket = TokenBucket::new(1000.0, 10, ms(0));
        assert_eq!(bucket.poll(ms(0), 10, ms(0)), Grant::Wait(ms(1)));
        assert_eq!(bucket.poll(ms(1), 10, ms(0)), Grant::Send(1));
        bucket.take(1);
        assert_eq!(bucket.poll(ms(5), 10, ms(0)), Grant::Send(4));
        bucket.take(4);
        assert_eq!(bucket.poll(ms(100), 10, ms(0)), Grant::Send(10));
    }

    #[test]
    fn linger_waits_for_a_fuller_batch() {
        let mut bucket = TokenBucket::new(1000.0, 10, ms(0));
        assert_eq!(bucket.poll(ms(1), 10, ms(5)), Grant::Wait(ms(5)));
        assert_eq!(bucket.poll(ms(6), 10, ms(5)), Grant::Send(6));
        bucket.take(6);
        // A full batch does not wait for the linger.
        let mut bucket = TokenBucket::new(1000.0, 10, ms(0));
        assert_eq!(bucket.poll(ms(1), 10, ms(50)), Grant::Wait(ms(9)));
        assert_eq!(bucket.poll(ms(10), 10, ms(50)), Grant::Send(10));
    }

    #[test]
    fn the_long_run_rate_is_the_target() {
        let mut bucket = TokenBucket::new(50_000.0, 15, ms(0));
        let mut now = Duration::ZERO;
        let mut sent = 0u64;
        while now < Duration::from_secs(2) {
            match bucket.poll(now, 15, ms(2)) {
                Grant::Send(records) => {
                    bucket.take(records);
                    sent += records;
                    // Sending takes time too.
                    now += Duration::from_micros(50);
                }
                // A timer fires late, as tokio's millisecond timers do.
                Grant::Wait(wait) => now += wait.max(ms(1)),
            }
        }
        assert!((99_000..=100_000).contains(&sent), "sent {sent}");
    }

    #[test]
    fn an_idle_bucket_does_not_hoard() {
        let mut bucket = TokenBucket::new(100.0, 5, ms(0));
        assert_eq!(bucket.poll(Duration::from_secs(60), 1000, ms(0)), Grant::Send(10));
    }
}
