//! A broker whose partitions need more files than its process may open (issue
//! 15: a 10,000-partition topic hit RLIMIT_NOFILE at partition 6,661, was
//! committed anyway and left a broker that could not start again). Under a low
//! RLIMIT_NOFILE the broker keeps cold segment files closed and still creates,
//! serves and restarts a topic with more partitions than the limit; and a topic
//! whose logs cannot be created is not created at all.

use anyhow::{bail, ensure, Context, Result};
use gregor_integration_tests::raw::RawConn;
use gregor_integration_tests::rdk::{
    admin, admin_options, assign, block_on, check_exact, consumer, create_topic, day_ago_ms, flush_all_acked,
    poll_records, producer, send, test_record, TestRecord,
};
use gregor_integration_tests::BrokerProcess;
use gregor_protocol::messages::metadata_request::MetadataRequestTopic;
use gregor_protocol::messages::MetadataRequest;
use gregor_protocol::{ErrorCode, ResponseBody};
use rdkafka::admin::{NewPartitions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::Offset;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// Both the soft and the hard limit, so the broker cannot raise it.
const OPEN_FILES_LIMIT: u64 = 256;
/// Three files a partition: without a budget, 1000 partitions need 3000.
const PARTITIONS: i32 = 1000;
const SAMPLED: [i32; 5] = [0, 1, 333, 500, 999];
const RECORDS_PER_ROUND: usize = 10;
const WIDE: &str = "wide";

/// Timestamps a day old: recent enough for retention, the same in every round.
fn base_timestamp_ms() -> i64 {
    static BASE: OnceLock<i64> = OnceLock::new();
    *BASE.get_or_init(day_ago_ms)
}

fn records(partition: i32, rounds: usize) -> Vec<TestRecord> {
    (0..rounds * RECORDS_PER_ROUND)
        .map(|i| test_record(&format!("{WIDE}-{partition}"), i as u64, base_timestamp_ms()))
        .collect()
}

/// Produces round `round` to the sampled partitions, then reads every round so
/// far back from offset 0 of each.
fn produce_and_read_back(bootstrap: &str, round: usize) -> Result<()> {
    let (producer, log) = producer(bootstrap, &[("acks", "all")], SAMPLED.len() * RECORDS_PER_ROUND)?;
    let mut index = 0;
    for partition in SAMPLED {
        let all = records(partition, round + 1);
        for record in &all[round * RECORDS_PER_ROUND..] {
            send(&producer, WIDE, partition, index, record)?;
            index += 1;
        }
    }
    flush_all_acked(&producer, &log, index).context("producing")?;
    for partition in SAMPLED {
        let consumer = consumer(bootstrap, &[])?;
        assign(&consumer, WIDE, partition, Offset::Offset(0))?;
        let expected = records(partition, round + 1);
        let consumed = poll_records(&consumer, expected.len(), Duration::from_secs(30))
            .with_context(|| format!("consuming {WIDE}/{partition}"))?;
        check_exact(&consumed, &expected, 0).with_context(|| format!("{WIDE}/{partition}"))?;
    }
    Ok(())
}

/// The topic's error and partition count in a Metadata answer that may not create it.
fn describe(bootstrap: &str, topic: &str) -> Result<(i16, usize)> {
    let mut conn = RawConn::connect(bootstrap)?;
    let request = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic { name: Some(topic.into()), ..Default::default() }]),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    let ResponseBody::Metadata(response) = conn.round_trip(request, 12, 1)? else { bail!("not a Metadata response") };
    let found = response.topics.iter().find(|t| t.name.as_deref() == Some(topic)).context("topic not in Metadata")?;
    Ok((found.error_code, found.partitions.len()))
}

fn open_descriptors(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd")).context("listing /proc/<pid>/fd")?.count())
}

fn check_wide(broker: &BrokerProcess, round: usize) -> Result<()> {
    let bootstrap = broker.bootstrap();
    let (error, partitions) = describe(&bootstrap, WIDE)?;
    ensure!(
        error == ErrorCode::None.code() && partitions == PARTITIONS as usize,
        "{WIDE}: error {error}, {partitions} partitions"
    );
    produce_and_read_back(&bootstrap, round)?;
    let open = open_descriptors(broker.pid())?;
    ensure!(open < OPEN_FILES_LIMIT as usize, "{open} descriptors open under a limit of {OPEN_FILES_LIMIT}");
    Ok(())
}

#[test]
fn more_partitions_than_the_open_files_limit_create_serve_and_restart() -> Result<()> {
    let mut broker = BrokerProcess::start_with_open_files_limit(&[], OPEN_FILES_LIMIT)?;
    broker.with_diag(create_topic(&broker.bootstrap(), WIDE, PARTITIONS, &[]))?;
    broker.with_diag(check_wide(&broker, 0))?;

    broker.restart()?;
    broker.with_diag(check_wide(&broker, 1))?;

    broker.kill9()?;
    broker.start_again()?;
    broker.with_diag(check_wide(&broker, 2))?;
    let dirs = std::fs::read_dir(broker.data_dir())?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&format!("{WIDE}-")))
        .count();
    ensure!(dirs == PARTITIONS as usize, "{dirs} partition directories of {WIDE}");
    Ok(())
}

fn partition_dirs(data_dir: &Path, topic: &str) -> Vec<String> {
    let prefix = format!("{topic}-");
    let mut names: Vec<String> = std::fs::read_dir(data_dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .filter(|entry| entry.path().is_dir())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn check_not_created(broker: &BrokerProcess, topic: &str) -> Result<()> {
    let (error, _) = describe(&broker.bootstrap(), topic)?;
    ensure!(error == ErrorCode::UnknownTopicOrPartition.code(), "{topic} answers error {error} in Metadata");
    let dirs = partition_dirs(broker.data_dir(), topic);
    ensure!(dirs.is_empty(), "partition directories left behind: {dirs:?}");
    Ok(())
}

#[test]
fn a_topic_whose_logs_cannot_be_created_is_not_created() -> Result<()> {
    const DOOMED: &str = "doomed";
    let mut broker = BrokerProcess::start(&[])?;
    // A file where partition 5's directory goes: its log cannot be created.
    let in_the_way = broker.data_dir().join(format!("{DOOMED}-5"));
    std::fs::write(&in_the_way, b"not a directory")?;

    let admin = admin(&broker.bootstrap())?;
    let topic = NewTopic::new(DOOMED, 8, TopicReplication::Fixed(1));
    let results = block_on(admin.create_topics([&topic], &admin_options())).context("CreateTopics")?;
    match results.as_slice() {
        [Err((name, RDKafkaErrorCode::KafkaStorageError))] if name == DOOMED => {}
        other => bail!("CreateTopics {DOOMED}: {other:?}{}", broker.diag()),
    }
    broker.with_diag(check_not_created(&broker, DOOMED))?;

    broker.restart()?;
    broker.with_diag(check_not_created(&broker, DOOMED))?;
    broker.kill9()?;
    broker.start_again()?;
    broker.with_diag(check_not_created(&broker, DOOMED))?;

    // Once the way is clear the same request creates the whole topic.
    std::fs::remove_file(&in_the_way)?;
    broker.with_diag(create_topic(&broker.bootstrap(), DOOMED, 8, &[]))?;
    let (error, partitions) = describe(&broker.bootstrap(), DOOMED)?;
    ensure!(error == 0 && partitions == 8, "{DOOMED}: error {error}, {partitions} partitions");
    ensure!(partition_dirs(broker.data_dir(), DOOMED).len() == 8);

    // CreatePartitions is all or nothing too: nothing of 8..12 when 10 fails.
    let in_the_way = broker.data_dir().join(format!("{DOOMED}-10"));
    std::fs::write(&in_the_way, b"not a directory")?;
    let more = NewPartitions::new(DOOMED, 12);
    let results = block_on(admin.create_partitions([&more], &admin_options())).context("CreatePartitions")?;
    match results.as_slice() {
        [Err((name, RDKafkaErrorCode::KafkaStorageError))] if name == DOOMED => {}
        other => bail!("CreatePartitions {DOOMED}: {other:?}{}", broker.diag()),
    }
    broker.restart()?;
    let (error, partitions) = describe(&broker.bootstrap(), DOOMED)?;
    ensure!(
        error == 0 && partitions == 8,
        "{DOOMED} after a failed CreatePartitions: error {error}, {partitions} partitions"
    );
    let dirs = partition_dirs(broker.data_dir(), DOOMED);
    ensure!(dirs.len() == 8, "partition directories after a failed CreatePartitions: {dirs:?}");
    Ok(())
}
