//! Durability across restarts: a clean SIGTERM restart in the middle of a
//! stream keeps topics, per-topic configs and data, and the producer goes on;
//! a `kill -9` during an acks=all stream loses no acknowledged record and
//! leaves no corrupt batch behind.

use anyhow::{bail, ensure, Context, Result};
use gregor_integration_tests::rdk::{self, TestRecord};
use gregor_integration_tests::{wait_until, BrokerProcess};
use rdkafka::admin::{ConfigSource, ResourceSpecifier};
use rdkafka::consumer::Consumer;
use rdkafka::producer::Producer;
use rdkafka::Offset;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const KEPT_CONFIGS: [(&str, &str); 3] =
    [("retention.ms", "987654321"), ("max.message.bytes", "2000000"), ("segment.bytes", "2097152")];

fn check_topic_survived(bootstrap: &str, topic: &str, partitions: usize) -> Result<()> {
    let consumer = rdk::consumer(bootstrap, &[])?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(15)).context("Metadata")?;
    let found = metadata.topics().iter().find(|t| t.name() == topic).context("topic missing from Metadata")?;
    ensure!(found.error().is_none(), "topic {topic} in Metadata with error {:?}", found.error());
    ensure!(
        found.partitions().len() == partitions,
        "{topic} has {} partitions, expected {partitions}",
        found.partitions().len()
    );

    let admin = rdk::admin(bootstrap)?;
    let results = rdk::block_on(admin.describe_configs([&ResourceSpecifier::Topic(topic)], &rdk::admin_options()))
        .context("DescribeConfigs")?;
    let resource = match results.into_iter().next() {
        Some(Ok(resource)) => resource,
        other => bail!("DescribeConfigs of {topic}: {other:?}"),
    };
    for (key, value) in KEPT_CONFIGS {
        let entry =
            resource.get(key).with_context(|| format!("config {key} missing from DescribeConfigs of {topic}"))?;
        ensure!(entry.value.as_deref() == Some(value), "{topic} {key} = {:?}, expected {value}", entry.value);
        ensure!(
            entry.source == ConfigSource::DynamicTopic,
            "{topic} {key} has source {:?}, expected DynamicTopic",
            entry.source
        );
        ensure!(!entry.is_default, "{topic} {key} is reported as a default");
    }
    Ok(())
}

fn read_exact(bootstrap: &str, topic: &str, partition: i32, records: &[TestRecord]) -> Result<()> {
    let consumer = rdk::consumer(bootstrap, &[])?;
    rdk::assign(&consumer, topic, partition, Offset::Offset(0))?;
    let consumed = rdk::poll_records(&consumer, records.len(), Duration::from_secs(120))?;
    rdk::check_exact(&consumed, records, 0).with_context(|| format!("reading {topic}/{partition}"))
}

#[test]
fn sigterm_restart_mid_stream_keeps_topics_configs_and_data() -> Result<()> {
    let mut broker = BrokerProcess::start(&[("log.segment.bytes", "1048576")])?;
    let result = restart_mid_stream(&mut broker);
    broker.with_diag(result)
}

fn restart_mid_stream(broker: &mut BrokerProcess) -> Result<()> {
    let bootstrap = broker.bootstrap();
    let base_timestamp = rdk::day_ago_ms();

    // A topic with per-topic configs and data in three partitions.
    let kept = "kept";
    rdk::create_topic(&bootstrap, kept, 3, &KEPT_CONFIGS)?;
    let per_partition = 3000;
    let kept_records: Vec<Vec<TestRecord>> = (0..3)
        .map(|p| (0..per_partition).map(|i| rdk::test_record(&format!("kept-{p}"), i, base_timestamp)).collect())
        .collect();
    {
        let (producer, log) = rdk::producer(&bootstrap, &[("acks", "all"), ("enable.idempotence", "true")], 0)?;
        for (partition, records) in kept_records.iter().enumerate() {
            for (i, record) in records.iter().enumerate() {
                rdk::send(&producer, kept, partition as i32, partition * per_partition as usize + i, record)?;
            }
        }
        rdk::flush_all_acked(&producer, &log, 3 * per_partition as usize)?;
    }

    // A stream produced by one idempotent producer across the restart.
    let stream = "stream";
    rdk::create_topic(&bootstrap, stream, 1, &[])?;
    let total = 20_000usize;
    let records: Arc<Vec<TestRecord>> =
        Arc::new((0..total as u64).map(|i| rdk::test_record(stream, i, base_timestamp)).collect());
    let (producer, log) = rdk::producer(
        &bootstrap,
        &[("acks", "all"), ("enable.idempotence", "true"), ("linger.ms", "20"), ("batch.num.messages", "200")],
        total,
    )?;
    let producer = Arc::new(producer);
    let sender = {
        let (producer, records) = (producer.clone(), records.clone());
        std::thread::spawn(move || -> Result<()> {
            for (index, record) in records.iter().enumerate() {
                rdk::send(&producer, stream, 0, index, record)?;
                if index % 20 == 19 {
                    // Keep the stream going for a while rather than queueing it all at once.
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            Ok(())
        })
    };
    ensure!(
        wait_until(Duration::from_secs(120), || log.acked() >= 3000),
        "fewer than 3000 records acknowledged before the restart"
    );
    let before = log.acked();
    let old_port = broker.port();
    broker.restart().context("SIGTERM restart")?;
    ensure!(
        broker.port() == old_port,
        "the broker came back on port {}, not {old_port}: the producer cannot follow",
        broker.port()
    );
    sender.join().expect("sender thread")?;
    let acked = rdk::flush_all_acked(&producer, &log, total)?;
    ensure!(before < total, "the whole stream was acknowledged before the restart: nothing produced across it");
    for (index, (partition, offset)) in acked.iter().enumerate() {
        ensure!(
            (*partition, *offset) == (0, index as i64),
            "stream record {index} acknowledged at {partition}/{offset}"
        );
    }
    drop(producer);

    check_topic_survived(&bootstrap, kept, 3)?;
    for (partition, records) in kept_records.iter().enumerate() {
        read_exact(&bootstrap, kept, partition as i32, records)?;
    }
    read_exact(&bootstrap, stream, 0, &records)?;

    // And once more, now with nothing in flight: still all there.
    broker.restart().context("second SIGTERM restart")?;
    let bootstrap = broker.bootstrap();
    check_topic_survived(&bootstrap, kept, 3)?;
    read_exact(&bootstrap, stream, 0, &records)?;
    let (low, high) = rdk::watermarks(&bootstrap, stream, 0)?;
    ensure!(
        (low, high) == (0, total as i64),
        "stream watermarks ({low}, {high}) after restarts, expected (0, {total})"
    );
    Ok(())
}

#[test]
fn kill9_during_acks_all_produce_loses_no_acknowledged_record() -> Result<()> {
    let mut broker = BrokerProcess::start(&[("log.segment.bytes", "1048576")])?;
    let result = kill9_rounds(&mut broker);
    broker.with_diag(result)
}

/// The same with the durable flush policy (an fdatasync before every
/// acknowledgement, shared by pipelined requests: group commit).
#[test]
fn kill9_with_flush_per_message_loses_no_acknowledged_record() -> Result<()> {
    let mut broker = BrokerProcess::start(&[("log.segment.bytes", "1048576"), ("log.flush.interval.messages", "1")])?;
    let result = kill9_rounds(&mut broker);
    broker.with_diag(result)
}

fn kill9_rounds(broker: &mut BrokerProcess) -> Result<()> {
    let topic = "crash";
    rdk::create_topic(&broker.bootstrap(), topic, 1, &[])?;
    let base_timestamp = rdk::day_ago_ms();
    // Record `index` of the stream, recomputed when needed; its key names the index.
    let record = move |index: usize| rdk::test_record(topic, index as u64, base_timestamp);
    let mut next_index = 0usize;
    // Offsets known to hold a given record: (offset, index).
    let mut acknowledged: Vec<(i64, usize)> = Vec::new();

    for round in 0..2 {
        let bootstrap = broker.bootstrap();
        let (producer, log) = rdk::producer(
            &bootstrap,
            &[
                ("acks", "all"),
                ("enable.idempotence", "false"),
                ("compression.type", if round == 0 { "none" } else { "lz4" }),
                ("message.timeout.ms", "5000"),
                ("retries", "0"),
            ],
            0,
        )?;
        let producer = Arc::new(producer);
        let stop = Arc::new(AtomicBool::new(false));
        let first = next_index;
        let sender = {
            let (producer, stop) = (producer.clone(), stop.clone());
            std::thread::spawn(move || -> usize {
                let mut index = first;
                while !stop.load(Ordering::Relaxed) && index < first + 250_000 {
                    if rdk::send(&producer, topic, 0, index, &record(index)).is_err() {
                        break;
                    }
                    index += 1;
                }
                index
            })
        };
        ensure!(
            wait_until(Duration::from_secs(120), || log.acked() >= 30_000),
            "round {round}: fewer than 30000 records acknowledged in 120 s"
        );
        broker.kill9()?;
        stop.store(true, Ordering::Relaxed);
        next_index = sender.join().expect("sender thread");
        // Every outstanding record fails within message.timeout.ms.
        let _ = producer.flush(Duration::from_secs(60));
        let reports = log.snapshot();
        drop(producer);
        let mut acked_this_round = 0;
        for (index, report) in reports.iter().enumerate().take(next_index).skip(first) {
            match report {
                Some(Ok((partition, offset))) => {
                    ensure!(*partition == 0, "record {index} acknowledged on partition {partition}");
                    acknowledged.push((*offset, index));
                    acked_this_round += 1;
                }
                Some(Err(_)) => {}
                None => bail!("round {round}: record {index} has no delivery report 60 s after the crash"),
            }
        }
        ensure!(acked_this_round >= 30_000, "round {round}: only {acked_this_round} acknowledged");

        broker.start_again().context("starting after kill -9")?;
        let bootstrap = broker.bootstrap();
        let (low, high) = rdk::watermarks(&bootstrap, topic, 0)?;
        let max_acked = acknowledged.iter().map(|(offset, _)| *offset).max().unwrap_or(-1);
        ensure!(low == 0, "round {round}: log start offset {low} after recovery");
        ensure!(
            high > max_acked,
            "round {round}: high watermark {high} after recovery, but offset {max_acked} was acknowledged"
        );

        // The whole log, CRCs checked by librdkafka: consecutive offsets, every
        // record one that was produced, every acknowledged one where it was acknowledged.
        let consumer = rdk::consumer(&bootstrap, &[])?;
        rdk::assign(&consumer, topic, 0, Offset::Offset(0))?;
        let consumed = rdk::poll_records(&consumer, high as usize, Duration::from_secs(300))
            .with_context(|| format!("round {round}: reading the recovered log of {high} records"))?;
        let mut at_offset: Vec<usize> = Vec::with_capacity(consumed.len());
        for (position, got) in consumed.iter().enumerate() {
            ensure!(got.offset == position as i64, "round {round}: offset {} at position {position}", got.offset);
            let key = String::from_utf8_lossy(&got.record.key);
            let index: usize = key
                .strip_prefix("key-")
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("round {round}: offset {position} has a key we never produced: {key:?}"))?;
            ensure!(
                index < next_index && got.record == record(index),
                "round {round}: offset {position} holds a record that differs from record {index} as produced"
            );
            at_offset.push(index);
        }
        for (offset, index) in &acknowledged {
            ensure!(
                at_offset.get(*offset as usize) == Some(index),
                "round {round}: record {index} was acknowledged at offset {offset}, the recovered log has {:?} there",
                at_offset.get(*offset as usize)
            );
        }
        // The recovered log takes new appends right after its end.
        let (producer, log) = rdk::producer(&bootstrap, &[("acks", "all")], 0)?;
        rdk::send(&producer, topic, 0, next_index, &record(next_index))?;
        let reports = {
            producer.flush(Duration::from_secs(30)).context("flush after recovery")?;
            log.snapshot()
        };
        match reports.get(next_index).cloned().flatten() {
            Some(Ok((0, offset))) => {
                ensure!(
                    offset == high,
                    "round {round}: first append after recovery at offset {offset}, expected {high}"
                )
            }
            other => bail!("round {round}: append after recovery: {other:?}"),
        }
        acknowledged.push((high, next_index));
        next_index += 1;
    }
    Ok(())
}
