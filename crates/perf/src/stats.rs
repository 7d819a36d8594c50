//! Counting what a run did: records, bytes, errors and a latency histogram,
//! the progress line printed every second, and the final summary (human and JSON).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Latencies are kept in microseconds, up to an hour, to three significant digits.
const LATENCY_US_MAX: u64 = 3_600_000_000;
const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;
const PROGRESS_INTERVAL_MS: u64 = 1000;
/// MB in the reports is 10^6 bytes, as kafka-producer-perf-test counts.
const BYTES_PER_MB: f64 = 1_000_000.0;

fn new_histogram() -> Histogram<u64> {
    // Constant bounds, which the assertion checks once for every run: no input reaches it.
    Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_SIGNIFICANT_DIGITS)
        .expect("the latency histogram's constant bounds are valid")
}

/// What a run has done so far, shared by its connections.
#[derive(Debug)]
pub struct Meter {
    started: Instant,
    records: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    pub elapsed: Duration,
    pub records: u64,
    pub bytes: u64,
    pub errors: u64,
    pub p99_ms: f64,
}

impl Meter {
    pub fn new() -> Arc<Meter> {
        Arc::new(Meter {
            started: Instant::now(),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency_us: Mutex::new(new_histogram()),
        })
    }

    pub fn add(&self, records: u64, bytes: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// One latency observation standing for `count` records.
    pub fn latency_us(&self, latency_us: u64, count: u64) {
        if count > 0 {
            self.histogram().saturating_record_n(latency_us, count);
        }
    }

    fn histogram(&self) -> std::sync::MutexGuard<'_, Histogram<u64>> {
        // A panic while recording cannot leave the histogram half-updated in a way
        // that matters for a report, so a poisoned lock is still usable.
        self.latency_us.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn snapshot(&self) -> Snapshot {
        let p99_ms = us_to_ms(self.histogram().value_at_quantile(0.99));
        Snapshot {
            elapsed: self.started.elapsed(),
            records: self.records.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            p99_ms,
        }
    }

    pub fn latency(&self) -> Latency {
        let histogram = self.histogram();
        if histogram.is_empty() {
            return Latency::default();
        }
        Latency {
            p50_ms: us_to_ms(histogram.value_at_quantile(0.50)),
            p99_ms: us_to_ms(histogram.value_at_quantile(0.99)),
            p999_ms: us_to_ms(histogram.value_at_quantile(0.999)),
            max_ms: us_to_ms(histogram.max()),
        }
    }

    /// The summary of a run that took `elapsed`.
    pub fn summary(&self, mode: Mode, elapsed: Duration) -> Summary {
        let snapshot = self.snapshot();
        Summary {
            mode,
            records: snapshot.records,
            bytes: snapshot.bytes,
            seconds: elapsed.as_secs_f64(),
            errors: snapshot.errors,
            latency: self.latency(),
        }
    }
}

fn us_to_ms(latency_us: u64) -> f64 {
    latency_us as f64 / 1000.0
}

/// Percentiles of a latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Produce,
    Consume,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Produce => "produce",
            Mode::Consume => "consume",
        }
    }
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub mode: Mode,
    pub records: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub errors: u64,
    pub latency: Latency,
}

/// A number JSON can carry (it has no NaN or infinity), to microsecond precision.
pub fn json_number(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.3}")
    } else {
        "0.000".to_owned()
    }
}

fn per_second(amount: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        amount / seconds
    } else {
        0.0
    }
}

impl Summary {
    pub fn records_per_s(&self) -> f64 {
        per_second(self.records as f64, self.seconds)
    }

    pub fn mb_per_s(&self) -> f64 {
        per_second(self.bytes as f64 / BYTES_PER_MB, self.seconds)
    }

    /// One line of JSON; scripts read it as the last line of stdout.
    pub fn to_json(&self) -> String {
        format!(
            concat!(
                r#"{{"mode":"{}","records":{},"bytes":{},"seconds":{},"records_per_s":{},"mb_per_s":{},"errors":{},"#,
                r#""latency_ms":{{"p50":{},"p99":{},"p999":{},"max":{}}}}}"#
            ),
            self.mode.name(),
            self.records,
            self.bytes,
            json_number(self.seconds),
            json_number(self.records_per_s()),
            json_number(self.mb_per_s()),
            self.errors,
            json_number(self.latency.p50_ms),
            json_number(self.latency.p99_ms),
            json_number(self.latency.p999_ms),
            json_number(self.latency.max_ms),
        )
    }

    /// A few lines for a person.
    pub fn human(&self) -> String {
        let (bytes_meaning, latency_meaning) = match self.mode {
            Mode::Produce => ("record values", "send to response"),
            Mode::Consume => ("record batches as fetched", "end to end, from the batch's max timestamp"),
        };
        let mut text = String::new();
        let _ = writeln!(
            text,
            "{}: {} records, {} bytes ({bytes_meaning}) in {:.3} s: {:.1} records/s, {:.2} MB/s, {} errors",
            self.mode.name(),
            self.records,
            self.bytes,
            self.seconds,
            self.records_per_s(),
            self.mb_per_s(),
            self.errors
        );
        let _ = write!(
            text,
            "latency ({latency_meaning}): p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
            self.latency.p50_ms, self.latency.p99_ms, self.latency.p999_ms, self.latency.max_ms
        );
        text
    }
}

/// The once-a-second line: the rates over the last interval, the p99 so far.
pub fn progress_line(mode: Mode, previous: &Snapshot, now: &Snapshot) -> String {
    let seconds = now.elapsed.saturating_sub(previous.elapsed).as_secs_f64();
    let records = now.records.saturating_sub(previous.records) as f64;
    let bytes = now.bytes.saturating_sub(previous.bytes) as f64;
    format!(
        "{} {:>6.1} s: {:.0} records/s, {:.2} MB/s, p99 {:.3} ms, {} records, {} errors",
        mode.name(),
        now.elapsed.as_secs_f64(),
        per_second(records, seconds),
        per_second(bytes / BYTES_PER_MB, seconds),
        now.p99_ms,
        now.records,
        now.errors
    )
}

/// Prints [`progress_line`] to stderr every second until the task is aborted.
pub async fn report_progress(meter: Arc<Meter>, mode: Mode) {
    let mut previous = meter.snapshot();
    let mut ticks = tokio::time::interval(Duration::from_millis(PROGRESS_INTERVAL_MS));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let now = meter.snapshot();
        eprintln!("{}", progress_line(mode, &previous, &now));
        previous = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            mode: Mode::Produce,
            records: 10_000,
            bytes: 10_240_000,
            seconds: 2.0,
            errors: 1,
            latency: Latency { p50_ms: 1.5, p99_ms: 4.25, p999_ms: 9.0, max_ms: 12.125 },
        }
    }

    #[test]
    fn json_has_every_key_in_one_line() {
        assert_eq!(
            summary().to_json(),
            r#"{"mode":"produce","records":10000,"bytes":10240000,"seconds":2.000,"records_per_s":5000.000,"mb_per_s":5.120,"errors":1,"latency_ms":{"p50":1.500,"p99":4.250,"p999":9.000,"max":12.125}}"#
        );
        let empty = Summary { seconds: 0.0, ..summary() };
        assert!(empty.to_json().contains(r#""records_per_s":0.000"#));
        assert_eq!(json_number(f64::NAN), "0.000");
    }

    #[test]
    fn human_summary_names_rates_and_percentiles() {
        let text = summary().human();
        assert!(text.contains("10000 records"), "{text}");
        assert!(text.contains("5000.0 records/s, 5.12 MB/s, 1 errors"), "{text}");
        assert!(text.contains("p50 1.500 ms, p99 4.250 ms, p99.9 9.000 ms, max 12.125 ms"), "{text}");
    }

    #[test]
    fn percentiles_weigh_observations_by_their_records() {
        let meter = Meter::new();
        meter.latency_us(1_000, 98);
        meter.latency_us(50_000, 2);
        meter.latency_us(7, 0);
        let latency = meter.latency();
        assert!((latency.p50_ms - 1.0).abs() < 0.01, "{latency:?}");
        assert!((latency.p99_ms - 50.0).abs() < 0.1, "{latency:?}");
        assert!((latency.max_ms - 50.0).abs() < 0.1, "{latency:?}");
        assert_eq!(Meter::new().latency(), Latency::default());
    }

    #[test]
    fn progress_reports_the_interval_rate() {
        let previous =
            Snapshot { elapsed: Duration::from_secs(1), records: 1000, bytes: 1_000_000, errors: 0, p99_ms: 0.0 };
        let now =
            Snapshot { elapsed: Duration::from_secs(2), records: 3000, bytes: 3_000_000, errors: 2, p99_ms: 1.25 };
        let line = progress_line(Mode::Consume, &previous, &now);
        assert!(line.contains("2000 records/s, 2.00 MB/s, p99 1.250 ms, 3000 records, 2 errors"), "{line}");
    }
}
