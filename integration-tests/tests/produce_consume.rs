//! 100,000 records with keys, headers and timestamps under each codec and each
//! acks setting, produced with librdkafka and read back by offset, byte for byte.

use anyhow::{ensure, Context, Result};
use gregor_integration_tests::rdk::{self, TestRecord};
use gregor_integration_tests::BrokerProcess;
use rdkafka::consumer::Consumer;
use rdkafka::Offset;
use std::time::Duration;

const RECORDS: usize = 100_000;

fn produce_and_read_back(compression: &str, acks: &str) -> Result<()> {
    let broker = BrokerProcess::start(&[])?;
    let bootstrap = broker.bootstrap();
    broker.with_diag(run(&bootstrap, compression, acks))
}

fn run(bootstrap: &str, compression: &str, acks: &str) -> Result<()> {
    let acks_name = if acks == "-1" { "all" } else { acks };
    let topic = format!("codec-{compression}-acks-{acks_name}");
    rdk::create_topic(bootstrap, &topic, 1, &[])?;

    let base_timestamp = rdk::day_ago_ms();
    let records: Vec<TestRecord> = (0..RECORDS as u64).map(|i| rdk::test_record(&topic, i, base_timestamp)).collect();
    let (producer, log) = rdk::producer(
        bootstrap,
        &[("acks", acks), ("compression.type", compression), ("enable.idempotence", "false")],
        RECORDS,
    )?;
    for (index, record) in records.iter().enumerate() {
        rdk::send(&producer, &topic, 0, index, record)?;
    }
    let acked = rdk::flush_all_acked(&producer, &log, RECORDS)?;
    if acks != "0" {
        // With acks 1 and all the broker reports each record's offset: the
        // records went in in order, one partition, so record i is at offset i.
        for (index, (partition, offset)) in acked.iter().enumerate() {
            ensure!(
                (*partition, *offset) == (0, index as i64),
                "record {index} acknowledged at {partition}/{offset}, expected 0/{index}"
            );
        }
    }
    drop(producer);

    // With acks 0 a flushed producer has only handed its requests to the socket; the
    // broker may still be appending the last ones when ListOffsets arrives on another
    // connection, so wait (bounded) for the high watermark to reach the end.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (low, high) = loop {
        let (low, high) = rdk::watermarks(bootstrap, &topic, 0)?;
        if high >= RECORDS as i64 || acks != "0" || std::time::Instant::now() >= deadline {
            break (low, high);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    ensure!((low, high) == (0, RECORDS as i64), "watermarks ({low}, {high}), expected (0, {RECORDS})");

    // Read everything from offset 0.
    let consumer = rdk::consumer(bootstrap, &[])?;
    rdk::assign(&consumer, &topic, 0, Offset::Offset(0))?;
    let consumed = rdk::poll_records(&consumer, RECORDS, Duration::from_secs(300))?;
    rdk::check_exact(&consumed, &records, 0).context("reading back from offset 0")?;

    // Seek into the middle of a batch and backwards: the broker must return the
    // batch that contains the offset, the client skips the records before it.
    for target in [54_321usize, 777, RECORDS - 1] {
        consumer
            .seek(&topic, 0, Offset::Offset(target as i64), Duration::from_secs(10))
            .with_context(|| format!("seek to {target}"))?;
        let count = (RECORDS - target).min(500);
        let consumed = rdk::poll_records(&consumer, count, Duration::from_secs(60))?;
        rdk::check_exact(&consumed, &records[target..target + count], target as i64)
            .with_context(|| format!("reading after a seek to {target}"))?;
    }
    Ok(())
}

macro_rules! case {
    ($name:ident, $compression:expr, $acks:expr) => {
        #[test]
        fn $name() -> Result<()> {
            produce_and_read_back($compression, $acks)
        }
    };
}

case!(none_acks_0, "none", "0");
case!(none_acks_1, "none", "1");
case!(none_acks_all, "none", "-1");
case!(gzip_acks_0, "gzip", "0");
case!(gzip_acks_1, "gzip", "1");
case!(gzip_acks_all, "gzip", "-1");
case!(snappy_acks_0, "snappy", "0");
case!(snappy_acks_1, "snappy", "1");
case!(snappy_acks_all, "snappy", "-1");
case!(lz4_acks_0, "lz4", "0");
case!(lz4_acks_1, "lz4", "1");
case!(lz4_acks_all, "lz4", "-1");
case!(zstd_acks_0, "zstd", "0");
case!(zstd_acks_1, "zstd", "1");
case!(zstd_acks_all, "zstd", "-1");
