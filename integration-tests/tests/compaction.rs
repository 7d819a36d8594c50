//! The log cleaner through a real client: a topic with cleanup.policy=compact
//! gets many updates per key, the cleaner shrinks it to about the latest value
//! of each key (offsets kept, gaps skipped by the consumer), and a restart
//! reads back the same.

use anyhow::{bail, ensure, Context, Result};
use gregor_integration_tests::rdk::{self, Consumed, TestRecord};
use gregor_integration_tests::{wait_until, BrokerProcess};
use rdkafka::consumer::BaseConsumer;
use rdkafka::Offset;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TOPIC: &str = "compacted";
const KEYS: usize = 50;
const ROUNDS: usize = 50;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn record(round: usize, key: usize, timestamp: i64) -> TestRecord {
    let mut value = format!("round {round} key {key} ").into_bytes();
    value.resize(1000, b'a' + (round % 26) as u8);
    TestRecord { key: format!("key-{key}").into_bytes(), value, headers: Vec::new(), timestamp }
}

/// Everything from offset 0 up to the high watermark.
fn read_all(bootstrap: &str) -> Result<Vec<Consumed>> {
    let (_, high) = rdk::watermarks(bootstrap, TOPIC, 0)?;
    let consumer: BaseConsumer = rdk::consumer(bootstrap, &[])?;
    rdk::assign(&consumer, TOPIC, 0, Offset::Offset(0))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out: Vec<Consumed> = Vec::new();
    while !out.last().is_some_and(|c| c.offset >= high - 1) {
        if Instant::now() > deadline {
            bail!("read {} records up to offset {:?} of {high}", out.len(), out.last().map(|c| c.offset));
        }
        out.extend(rdk::poll_records(&consumer, 1, Duration::from_secs(30))?);
    }
    Ok(out)
}

/// Offsets only increase, every record is one that was produced at its
/// offset, and each key's last record is its newest value.
fn check(consumed: &[Consumed], produced: &BTreeMap<i64, TestRecord>) -> Result<()> {
    for pair in consumed.windows(2) {
        ensure!(pair[0].offset < pair[1].offset, "offsets {} then {}", pair[0].offset, pair[1].offset);
    }
    for c in consumed {
        let want = produced.get(&c.offset).with_context(|| format!("offset {} was never produced", c.offset))?;
        ensure!(c.record == *want, "offset {} holds something else", c.offset);
    }
    let mut newest: BTreeMap<&[u8], &TestRecord> = BTreeMap::new();
    for r in produced.values() {
        newest.insert(&r.key, r);
    }
    let mut last: BTreeMap<&[u8], &TestRecord> = BTreeMap::new();
    for c in consumed {
        last.insert(&c.record.key, &c.record);
    }
    ensure!(last == newest, "the last value read for some key is not its newest");
    Ok(())
}

#[test]
fn compacted_topic_keeps_the_latest_value_of_each_key_across_restarts() -> Result<()> {
    let mut broker = BrokerProcess::start(&[("log.cleaner.backoff.ms", "200")])?;
    let bootstrap = broker.bootstrap();
    broker.with_diag(rdk::create_topic(
        &bootstrap,
        TOPIC,
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "1048576"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "1000"),
        ],
    ))?;

    let total = KEYS * ROUNDS;
    let (producer, log) = rdk::producer(&bootstrap, &[("acks", "all"), ("enable.idempotence", "true")], total)?;
    let mut records = Vec::with_capacity(total);
    let timestamp = now_ms();
    for round in 0..ROUNDS {
        for key in 0..KEYS {
            let r = record(round, key, timestamp + round as i64);
            rdk::send(&producer, TOPIC, 0, records.len(), &r)?;
            records.push(r);
        }
    }
    let positions = broker.with_diag(rdk::flush_all_acked(&producer, &log, total))?;
    let produced: BTreeMap<i64, TestRecord> =
        positions.iter().zip(&records).map(|(&(_, offset), r)| (offset, r.clone())).collect();
    ensure!(produced.len() == total, "{} distinct offsets for {total} records", produced.len());

    // The cleaner runs every 200 ms; wait until most of the updates are gone.
    let mut consumed = Vec::new();
    let shrunk = wait_until(Duration::from_secs(60), || match read_all(&bootstrap) {
        Ok(all) => {
            consumed = all;
            consumed.len() < total / 2
        }
        Err(_) => false,
    });
    ensure!(shrunk, "the log still has {} of {total} records\n{}", consumed.len(), broker.diag());
    broker.with_diag(check(&consumed, &produced))?;
    // Segments of 1 MiB hold about 1000 records: what is left is each key's
    // latest value below the active segment plus the active segment itself.
    let active_at_most = 1100;
    ensure!(consumed.len() <= KEYS + active_at_most, "{} records left", consumed.len());
    let (low, high) = rdk::watermarks(&bootstrap, TOPIC, 0)?;
    ensure!((low, high) == (0, total as i64), "watermarks ({low}, {high}) changed");

    ensure!(broker.stderr_tail(500).contains("log cleaner: compacted-0"), "no cleaner summary line\n{}", broker.diag());

    // A clean restart, then a crash: both read back exactly the cleaned log.
    for crash in [false, true] {
        if crash {
            broker.kill9()?;
            broker.start_again()?;
        } else {
            broker.restart()?;
        }
        let bootstrap = broker.bootstrap();
        let after = broker.with_diag(read_all(&bootstrap))?;
        let offsets = |cs: &[Consumed]| cs.iter().map(|c| c.offset).collect::<Vec<_>>();
        ensure!(offsets(&after) == offsets(&consumed), "restart (crash={crash}) changed what is read");
        broker.with_diag(check(&after, &produced))?;
        let (low, high) = rdk::watermarks(&bootstrap, TOPIC, 0)?;
        ensure!((low, high) == (0, total as i64), "watermarks ({low}, {high}) after a restart (crash={crash})");
    }
    Ok(())
}
