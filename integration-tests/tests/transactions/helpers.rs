//! Shared helpers of the transaction tests: brokers, transactional producers,
//! read-back, the last stable offset and the coordinator's view of a transaction.

use anyhow::{bail, ensure, Context, Result};
use gregor_integration_tests::raw::RawConn;
use gregor_integration_tests::rdk::{self, LoggedProducer, TestRecord};
use gregor_integration_tests::{wait_until, BrokerProcess};
use gregor_protocol::messages::describe_transactions_response::TransactionState;
use gregor_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use gregor_protocol::messages::{DescribeTransactionsRequest, ListOffsetsRequest};
use gregor_protocol::{ErrorCode, ResponseBody};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use rdkafka::{Message, Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Broker settings: small internal topics (they load faster) and no delay
/// before a group's first rebalance.
pub(crate) const TXN_OVERRIDES: [(&str, &str); 3] = [
    ("transaction.state.log.num.partitions", "4"),
    ("offsets.topic.num.partitions", "4"),
    ("group.initial.rebalance.delay.ms", "0"),
];

/// Reconnect quickly once a killed broker is back.
pub(crate) const FAST_RECONNECT: [(&str, &str); 2] =
    [("reconnect.backoff.ms", "50"), ("reconnect.backoff.max.ms", "500")];

/// The timeout of every blocking transactional call.
pub(crate) const OP_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn start_broker(extra: &[(&str, &str)]) -> Result<BrokerProcess> {
    let mut overrides = TXN_OVERRIDES.to_vec();
    overrides.extend_from_slice(extra);
    BrokerProcess::start(&overrides)
}

/// A transactional producer after `init_transactions`, with the log of its
/// delivery reports (where each record landed).
pub(crate) fn logged_txn_producer(
    bootstrap: &str,
    transactional_id: &str,
    settings: &[(&str, &str)],
) -> Result<(LoggedProducer, Arc<rdk::DeliveryLog>)> {
    let mut all = vec![("transactional.id", transactional_id)];
    all.extend(FAST_RECONNECT);
    all.extend_from_slice(settings);
    let (producer, log) = rdk::producer(bootstrap, &all, 0)?;
    producer.init_transactions(OP_TIMEOUT).with_context(|| format!("init_transactions of {transactional_id}"))?;
    Ok((producer, log))
}

/// A transactional producer after `init_transactions`.
pub(crate) fn txn_producer(
    bootstrap: &str,
    transactional_id: &str,
    settings: &[(&str, &str)],
) -> Result<LoggedProducer> {
    logged_txn_producer(bootstrap, transactional_id, settings).map(|(producer, _)| producer)
}

/// A plain key/value record (no headers) for `rdk::send`.
pub(crate) fn kv(key: String, value: String) -> TestRecord {
    TestRecord { key: key.into_bytes(), value: value.into_bytes(), headers: Vec::new(), timestamp: rdk::day_ago_ms() }
}

/// The (partition, offset) of every one of `indexes` in `log`; fails unless each was delivered.
pub(crate) fn delivered(log: &rdk::DeliveryLog, indexes: std::ops::Range<usize>) -> Result<Vec<(i32, i64)>> {
    let reports = log.snapshot();
    indexes
        .map(|index| match reports.get(index).cloned().flatten() {
            Some(Ok(position)) => Ok(position),
            Some(Err(error)) => bail!("record {index} failed: {error}"),
            None => bail!("record {index} has no delivery report"),
        })
        .collect()
}

/// A record as read back.
#[derive(Debug, Clone)]
pub(crate) struct Got {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
    pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
    pub(crate) timestamp: i64,
}

impl Got {
    pub(crate) fn record(&self) -> TestRecord {
        TestRecord {
            key: self.key.clone(),
            value: self.value.clone(),
            headers: self.headers.clone(),
            timestamp: self.timestamp,
        }
    }

    pub(crate) fn key_str(&self) -> String {
        String::from_utf8_lossy(&self.key).into_owned()
    }
}

pub(crate) fn got(message: &rdkafka::message::BorrowedMessage<'_>) -> Got {
    use rdkafka::message::Headers;
    let headers = match message.headers() {
        Some(headers) => headers.iter().map(|h| (h.key.to_string(), h.value.map(|v| v.to_vec()))).collect(),
        None => Vec::new(),
    };
    Got {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().unwrap_or_default().to_vec(),
        value: message.payload().unwrap_or_default().to_vec(),
        headers,
        timestamp: message.timestamp().to_millis().unwrap_or(-1),
    }
}

/// Reads partitions `0..partitions` of `topic` from the beginning at `isolation`
/// (`read_committed` or `read_uncommitted`) until every partition reported its
/// end (the LSO or the high watermark); returns the records in the order they
/// came and the consumer's final position in each partition.
pub(crate) fn read_all(bootstrap: &str, topic: &str, partitions: i32, isolation: &str) -> Result<(Vec<Got>, Vec<i64>)> {
    let consumer = rdk::consumer(bootstrap, &[("isolation.level", isolation), ("enable.partition.eof", "true")])?;
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&list).context("assign")?;
    let timeout = Duration::from_secs(60);
    let deadline = Instant::now() + timeout;
    let mut at_end = vec![false; partitions as usize];
    let mut out = Vec::new();
    while at_end.iter().any(|done| !done) {
        ensure!(
            Instant::now() < deadline,
            "{isolation} read of {topic}: no end of partitions {:?} within {timeout:?} ({} records read)",
            (0..partitions).filter(|p| !at_end[*p as usize]).collect::<Vec<_>>(),
            out.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => at_end[partition as usize] = true,
            Some(Err(error)) => {
                bail!("{isolation} read of {topic}: consumer error after {} records: {error}", out.len())
            }
            Some(Ok(message)) => {
                at_end[message.partition() as usize] = false;
                out.push(got(&message));
            }
        }
    }
    let positions = positions(&consumer, topic, partitions)?;
    Ok((out, positions))
}

/// The consumer's position in each of partitions `0..partitions` (-1 when it has none).
pub(crate) fn positions<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partitions: i32,
) -> Result<Vec<i64>> {
    let list = consumer.position().context("position")?;
    (0..partitions)
        .map(|partition| {
            let element = list
                .find_partition(topic, partition)
                .with_context(|| format!("no position for {topic}/{partition}"))?;
            Ok(match element.offset() {
                Offset::Offset(offset) => offset,
                _ => -1,
            })
        })
        .collect()
}

/// The latest offset of `topic`/`partition` from a raw ListOffsets v7 at
/// `isolation_level` (1: read_committed, the LSO; 0: the high watermark).
pub(crate) fn list_latest(bootstrap: &str, topic: &str, partition: i32, isolation_level: i8) -> Result<i64> {
    let mut conn = RawConn::connect(bootstrap)?;
    let request = ListOffsetsRequest {
        replica_id: -1,
        isolation_level,
        topics: vec![ListOffsetsTopic {
            name: topic.to_string(),
            partitions: vec![ListOffsetsPartition {
                partition_index: partition,
                current_leader_epoch: -1,
                timestamp: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let ResponseBody::ListOffsets(response) = conn.round_trip(request, 7, 1)? else {
        bail!("not a ListOffsets response")
    };
    let answer = response
        .topics
        .iter()
        .find(|t| t.name == topic)
        .and_then(|t| t.partitions.iter().find(|p| p.partition_index == partition))
        .with_context(|| format!("ListOffsets response without {topic}/{partition}: {response:?}"))?;
    ensure!(
        answer.error_code == 0,
        "ListOffsets {topic}/{partition} isolation {isolation_level}: {:?}",
        ErrorCode::from_code(answer.error_code)
    );
    Ok(answer.offset)
}

/// (LSO, high watermark) of `topic`/`partition` as raw ListOffsets reports them.
pub(crate) fn lso_and_hw(bootstrap: &str, topic: &str, partition: i32) -> Result<(i64, i64)> {
    Ok((list_latest(bootstrap, topic, partition, 1)?, list_latest(bootstrap, topic, partition, 0)?))
}

/// Waits (bounded) until no transaction holds back partitions `0..partitions` of
/// `topic` (LSO = high watermark) and returns their high watermarks.
/// `commit_transaction` returns once the coordinator has decided; the markers
/// are written after that, as in Kafka.
pub(crate) fn settled(bootstrap: &str, topic: &str, partitions: i32) -> Result<Vec<i64>> {
    let mut high = Vec::new();
    for partition in 0..partitions {
        let mut last = (-1, -1);
        ensure!(
            wait_until(Duration::from_secs(30), || {
                if let Ok(now) = lso_and_hw(bootstrap, topic, partition) {
                    last = now;
                }
                last.0 == last.1
            }),
            "{topic}/{partition}: (LSO, HW) still {last:?} after 30 s: a transaction stays open"
        );
        high.push(last.1);
    }
    Ok(high)
}

/// DescribeTransactions v0 of one transactional id, waiting (bounded) while the
/// coordinator is still loading after a start.
pub(crate) fn describe_txn(bootstrap: &str, transactional_id: &str) -> Result<TransactionState> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut conn = RawConn::connect(bootstrap)?;
        let request =
            DescribeTransactionsRequest { transactional_ids: vec![transactional_id.to_string()], ..Default::default() };
        let ResponseBody::DescribeTransactions(response) = conn.round_trip(request, 0, 1)? else {
            bail!("not a DescribeTransactions response")
        };
        let state = response
            .transaction_states
            .into_iter()
            .find(|s| s.transactional_id == transactional_id)
            .with_context(|| format!("DescribeTransactions without {transactional_id}"))?;
        match ErrorCode::from_code(state.error_code) {
            Some(ErrorCode::None) => return Ok(state),
            Some(ErrorCode::CoordinatorLoadInProgress) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => bail!("DescribeTransactions {transactional_id}: {other:?}"),
        }
    }
}

/// Polls DescribeTransactions until the state is `wanted` (bounded).
pub(crate) fn wait_txn_state(bootstrap: &str, transactional_id: &str, wanted: &str) -> Result<TransactionState> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = describe_txn(bootstrap, transactional_id)?;
        if state.transaction_state == wanted {
            return Ok(state);
        }
        ensure!(
            Instant::now() < deadline,
            "{transactional_id} still in {} 30 s later, expected {wanted}",
            state.transaction_state
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The offsets `group` committed in partitions `0..partitions` of `topic`, as a
/// read_committed consumer (OffsetFetch with require_stable) sees them; -1 for none.
pub(crate) fn committed_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Result<Vec<i64>> {
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    let committed = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .with_context(|| format!("OffsetFetch of group {group}"))?;
    (0..partitions)
        .map(|partition| {
            let element = committed
                .find_partition(topic, partition)
                .with_context(|| format!("no committed {topic}/{partition}"))?;
            if let Err(error) = element.error() {
                bail!("committed offset of {topic}/{partition}: {error}");
            }
            Ok(match element.offset() {
                Offset::Offset(offset) => offset,
                _ => -1,
            })
        })
        .collect()
}

/// A consumer that only reads `group`'s committed offsets (read_committed, so
/// OffsetFetch asks for stable offsets).
pub(crate) fn offsets_reader(bootstrap: &str, group: &str) -> Result<BaseConsumer> {
    rdk::consumer(bootstrap, &[("group.id", group), ("isolation.level", "read_committed")])
}

pub(crate) fn transaction_error(error: &KafkaError) -> Option<&rdkafka::error::RDKafkaError> {
    match error {
        KafkaError::Transaction(error) => Some(error),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// 1. The exactly-once copier across kill -9.
// ---------------------------------------------------------------------------
