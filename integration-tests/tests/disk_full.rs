//! Storage trouble seen from outside: a full disk (a small tmpfs, which needs
//! root to mount; skipped with a message otherwise) refuses produce with
//! KAFKA_STORAGE_ERROR while reads go on, and space freed by DeleteRecords or by
//! an operator makes produce work again without a restart; a start on a full
//! disk comes up and serves reads. Damaged cache files (the leader-epoch
//! checkpoint, producer snapshots) are rebuilt at start instead of stopping it.

use anyhow::{bail, ensure, Context, Result};
use gregor_integration_tests::raw::RawConn;
use gregor_integration_tests::rdk::{self, TestRecord};
use gregor_integration_tests::BrokerProcess;
use gregor_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use gregor_protocol::messages::OffsetForLeaderEpochRequest;
use gregor_protocol::ResponseBody;
use rdkafka::{Offset, TopicPartitionList};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with the reason printed) where a tmpfs cannot be mounted.
    fn mount(size: &str) -> Result<Option<Tmpfs>> {
        let dir = tempfile::Builder::new().prefix("gregor-tmpfs-").tempdir()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Ok(Some(Tmpfs { dir })),
            Ok(out) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs (root needed): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                Ok(None)
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                Ok(None)
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Writes `path` until the file system has no block left.
fn fill(path: &Path) -> Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    for chunk_bytes in [1 << 16, 4096, 512, 1] {
        let chunk = vec![0u8; chunk_bytes];
        loop {
            match file.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => bail!("filling {}: {e}", path.display()),
            }
        }
    }
    Ok(())
}

/// A record bigger than a page, so that it needs new blocks wherever it lands.
fn big_record(index: u64) -> TestRecord {
    // A fixed day-old timestamp (as a multiple of a day), so that two calls agree.
    let day_ms = 24 * 3600 * 1000;
    TestRecord {
        key: format!("big-{index}").into_bytes(),
        value: vec![b'b'; 60_000],
        headers: Vec::new(),
        timestamp: rdk::day_ago_ms() / day_ms * day_ms,
    }
}

/// Produces one record with no retries: its offset, or the error librdkafka reports.
fn produce_one(bootstrap: &str, topic: &str, record: &TestRecord) -> Result<std::result::Result<i64, String>> {
    let settings =
        [("acks", "all"), ("retries", "0"), ("enable.idempotence", "false"), ("message.timeout.ms", "30000")];
    let (producer, log) = rdk::producer(bootstrap, &settings, 1)?;
    rdk::send(&producer, topic, 0, 0, record)?;
    use rdkafka::producer::Producer as _;
    producer.flush(Duration::from_secs(60)).context("flush")?;
    match log.snapshot().first().cloned().flatten() {
        Some(Ok((_, offset))) => Ok(Ok(offset)),
        Some(Err(error)) => Ok(Err(error)),
        None => bail!("no delivery report"),
    }
}

fn expect_storage_error(bootstrap: &str, topic: &str, record: &TestRecord) -> Result<()> {
    match produce_one(bootstrap, topic, record)? {
        Err(error) if error.contains("KafkaStorageError") => Ok(()),
        other => bail!("produce on a full disk: {other:?}, expected KafkaStorageError"),
    }
}

fn read_range(bootstrap: &str, topic: &str, from: i64, expected: &[TestRecord]) -> Result<()> {
    let consumer = rdk::consumer(bootstrap, &[])?;
    rdk::assign(&consumer, topic, 0, Offset::Offset(from))?;
    let consumed = rdk::poll_records(&consumer, expected.len(), Duration::from_secs(60))?;
    rdk::check_exact(&consumed, expected, from)
}

fn delete_records_before(bootstrap: &str, topic: &str, offset: i64) -> Result<()> {
    let admin = rdk::admin(bootstrap)?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Offset(offset))?;
    let result = rdk::block_on(admin.delete_records(&list, &rdk::admin_options())).context("DeleteRecords")?;
    for element in result.elements() {
        if let Err(error) = element.error() {
            bail!("DeleteRecords {topic}/{}: {error}", element.partition());
        }
    }
    Ok(())
}

#[test]
fn a_full_disk_refuses_produce_serves_reads_and_recovers_without_a_restart() -> Result<()> {
    let Some(tmpfs) = Tmpfs::mount("24m")? else { return Ok(()) };
    let data = tmpfs.path().join("data");
    let mut broker = BrokerProcess::start(&[("log.dirs", &data.display().to_string())])?;
    let result = full_disk(&mut broker, tmpfs.path());
    broker.with_diag(result)
}

fn full_disk(broker: &mut BrokerProcess, root: &Path) -> Result<()> {
    let bootstrap = broker.bootstrap();
    let topic = "full";
    rdk::create_topic(&bootstrap, topic, 1, &[("segment.bytes", "1048576")])?;
    let base_timestamp = rdk::day_ago_ms();
    let count = 16_000u64;
    let mut records: Vec<TestRecord> = (0..count).map(|i| rdk::test_record(topic, i, base_timestamp)).collect();
    {
        let (producer, log) = rdk::producer(&bootstrap, &[("acks", "all")], records.len())?;
        for (i, record) in records.iter().enumerate() {
            rdk::send(&producer, topic, 0, i, record)?;
        }
        rdk::flush_all_acked(&producer, &log, records.len())?;
    }
    let segments = std::fs::read_dir(data_dir(root).join(format!("{topic}-0")))?
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".log")))
        .count();
    ensure!(segments >= 3, "only {segments} segments");

    fill(&root.join("filler"))?;
    expect_storage_error(&bootstrap, topic, &big_record(0))?;
    // The partition stays readable, and stays so after a refused produce.
    read_range(&bootstrap, topic, 0, &records)?;
    expect_storage_error(&bootstrap, topic, &big_record(0))?;

    // DeleteRecords frees every segment but the active one; produce resumes.
    let end = records.len() as i64;
    delete_records_before(&bootstrap, topic, end - 1)?;
    let offset = produce_one(&bootstrap, topic, &big_record(1))?.map_err(anyhow::Error::msg)?;
    ensure!(offset == end, "produced at {offset}, expected {end} (no gap)");
    records.push(big_record(1));
    read_range(&bootstrap, topic, end - 1, &records[records.len() - 2..])?;

    // Full again, then a crash, then a start on the full disk: it comes up and
    // serves what is there; freeing space makes produce work without a restart.
    fill(&root.join("filler-2"))?;
    broker.kill9()?;
    broker.start_again().context("starting on a full disk")?;
    let bootstrap = broker.bootstrap();
    read_range(&bootstrap, topic, end - 1, &records[records.len() - 2..])?;
    expect_storage_error(&bootstrap, topic, &big_record(2))?;
    std::fs::remove_file(root.join("filler"))?;
    let offset = produce_one(&bootstrap, topic, &big_record(2))?.map_err(anyhow::Error::msg)?;
    ensure!(offset == end + 1, "produced at {offset}, expected {}", end + 1);
    records.push(big_record(2));
    read_range(&bootstrap, topic, end - 1, &records[records.len() - 3..])?;
    Ok(())
}

fn data_dir(root: &Path) -> PathBuf {
    root.join("data")
}

#[test]
fn damaged_epoch_checkpoint_and_producer_snapshots_are_rebuilt_at_start() -> Result<()> {
    let mut broker = BrokerProcess::start(&[])?;
    let result = damaged_caches(&mut broker);
    broker.with_diag(result)
}

fn damaged_caches(broker: &mut BrokerProcess) -> Result<()> {
    let bootstrap = broker.bootstrap();
    let topic = "cached";
    rdk::create_topic(&bootstrap, topic, 1, &[])?;
    let base_timestamp = rdk::day_ago_ms();
    let records: Vec<TestRecord> = (0..2000).map(|i| rdk::test_record(topic, i, base_timestamp)).collect();
    {
        let (producer, log) =
            rdk::producer(&bootstrap, &[("acks", "all"), ("enable.idempotence", "true")], records.len())?;
        for (i, record) in records.iter().enumerate() {
            rdk::send(&producer, topic, 0, i, record)?;
        }
        rdk::flush_all_acked(&producer, &log, records.len())?;
    }
    let end = records.len() as i64;
    let before = offset_for_leader_epoch(&bootstrap, topic)?;
    broker.stop()?;

    let partition = broker.data_dir().join(format!("{topic}-0"));
    let checkpoint = partition.join("leader-epoch-checkpoint");
    let pristine = std::fs::read_to_string(&checkpoint).context("reading the epoch checkpoint")?;
    std::fs::write(&checkpoint, b"\xff\x00 not a checkpoint")?;
    let mut snapshots = 0;
    for entry in std::fs::read_dir(&partition)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "snapshot") {
            std::fs::write(&path, b"\x00\x07garbage")?;
            snapshots += 1;
        }
    }
    ensure!(snapshots > 0, "no producer snapshot was written at shutdown");

    broker.start_again().context("starting with damaged caches")?;
    let bootstrap = broker.bootstrap();
    let after = offset_for_leader_epoch(&bootstrap, topic)?;
    ensure!(after == before, "OffsetForLeaderEpoch answers {after:?} after the rebuild, {before:?} before");
    ensure!(after.1 == end, "end offset {} for the latest epoch, expected {end}", after.1);
    let rebuilt = std::fs::read_to_string(&checkpoint)?;
    ensure!(rebuilt == pristine, "rebuilt checkpoint {rebuilt:?}, was {pristine:?}");
    read_range(&bootstrap, topic, 0, &records)?;
    let offset = produce_one(&bootstrap, topic, &big_record(0))?.map_err(anyhow::Error::msg)?;
    ensure!(offset == end, "produced at {offset}, expected {end}");
    Ok(())
}

/// OffsetForLeaderEpoch v4 for partition 0 at the partition's leader epoch, found
/// by asking at a high epoch first: (epoch, end offset).
fn offset_for_leader_epoch(bootstrap: &str, topic: &str) -> Result<(i32, i64)> {
    let mut conn = RawConn::connect(bootstrap)?;
    let mut ask = |leader_epoch: i32, correlation_id: i32| -> Result<(i16, i32, i64)> {
        let request = OffsetForLeaderEpochRequest {
            replica_id: -1,
            topics: vec![OffsetForLeaderTopic {
                topic: topic.into(),
                partitions: vec![OffsetForLeaderPartition {
                    partition: 0,
                    current_leader_epoch: -1,
                    leader_epoch,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let ResponseBody::OffsetForLeaderEpoch(response) = conn.round_trip(request, 4, correlation_id)? else {
            bail!("not an OffsetForLeaderEpoch response")
        };
        let p = response.topics.first().and_then(|t| t.partitions.first()).context("no partition in the answer")?;
        Ok((p.error_code, p.leader_epoch, p.end_offset))
    };
    // Below the first epoch: the first epoch's start; at a huge epoch: undefined.
    let (code, epoch, end_offset) = ask(0, 1)?;
    ensure!(code == 0, "OffsetForLeaderEpoch error {code}");
    let (code, latest, latest_end) = ask(i32::MAX - 1, 2)?;
    ensure!(code == 0, "OffsetForLeaderEpoch error {code}");
    ensure!(latest == -1 && latest_end == -1, "a future epoch answered ({latest}, {latest_end})");
    Ok((epoch, end_offset))
}
