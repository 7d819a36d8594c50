//! Transactions end to end with librdkafka (KIP-98, KIP-447).
//!
//! - An exactly-once copier (a read_committed consumer in a group plus a
//!   transactional producer that sends the consumer's offsets to every
//!   transaction) copies 10,000 records while the broker is SIGKILLed four
//!   times, at different points of a transaction, once staying down longer than
//!   the transaction timeout. It recovers as applications do: abort on an
//!   abortable error, recreate both clients on a fatal one, and rewind to the
//!   committed offsets. The committed output holds every input record exactly
//!   once.
//! - Committed and aborted transactions interleaved on the same partitions:
//!   read_committed sees exactly the committed records, in order, and its
//!   position moves past the aborted ones and the markers; read_uncommitted
//!   sees all of them; while a transaction is open the read_committed end
//!   offset (the LSO) is its first offset, the read_uncommitted one the high
//!   watermark.
//! - Zombie fencing: a second producer with the same `transactional.id` aborts
//!   the first one's transaction and fences it.
//! - The coordinator aborts a transaction left open past its timeout.
//! - A committed transaction, its offsets included, survives a `kill -9` right
//!   after `commit_transaction`; the next producer of the id gets a bumped epoch.

use anyhow::{anyhow, bail, ensure, Context, Result};
use gregor_integration_tests::raw::RawConn;
use gregor_integration_tests::rdk::{self, LoggedProducer, TestRecord};
use gregor_integration_tests::{wait_until, BrokerProcess};
use gregor_protocol::messages::describe_transactions_response::TransactionState;
use gregor_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use gregor_protocol::messages::{DescribeTransactionsRequest, ListOffsetsRequest};
use gregor_protocol::{ErrorCode, ResponseBody};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Broker settings: small internal topics (they load faster) and no delay
/// before a group's first rebalance.
const TXN_OVERRIDES: [(&str, &str); 3] = [
    ("transaction.state.log.num.partitions", "4"),
    ("offsets.topic.num.partitions", "4"),
    ("group.initial.rebalance.delay.ms", "0"),
];

/// Reconnect quickly once a killed broker is back.
const FAST_RECONNECT: [(&str, &str); 2] = [("reconnect.backoff.ms", "50"), ("reconnect.backoff.max.ms", "500")];

/// The timeout of every blocking transactional call.
const OP_TIMEOUT: Duration = Duration::from_secs(30);

fn start_broker(extra: &[(&str, &str)]) -> Result<BrokerProcess> {
    let mut overrides = TXN_OVERRIDES.to_vec();
    overrides.extend_from_slice(extra);
    BrokerProcess::start(&overrides)
}

/// A transactional producer after `init_transactions`, with the log of its
/// delivery reports (where each record landed).
fn logged_txn_producer(
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
fn txn_producer(bootstrap: &str, transactional_id: &str, settings: &[(&str, &str)]) -> Result<LoggedProducer> {
    logged_txn_producer(bootstrap, transactional_id, settings).map(|(producer, _)| producer)
}

/// A plain key/value record (no headers) for `rdk::send`.
fn kv(key: String, value: String) -> TestRecord {
    TestRecord { key: key.into_bytes(), value: value.into_bytes(), headers: Vec::new(), timestamp: rdk::day_ago_ms() }
}

/// The (partition, offset) of every one of `indexes` in `log`; fails unless each was delivered.
fn delivered(log: &rdk::DeliveryLog, indexes: std::ops::Range<usize>) -> Result<Vec<(i32, i64)>> {
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
struct Got {
    partition: i32,
    offset: i64,
    key: Vec<u8>,
    value: Vec<u8>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: i64,
}

impl Got {
    fn record(&self) -> TestRecord {
        TestRecord {
            key: self.key.clone(),
            value: self.value.clone(),
            headers: self.headers.clone(),
            timestamp: self.timestamp,
        }
    }

    fn key_str(&self) -> String {
        String::from_utf8_lossy(&self.key).into_owned()
    }
}

fn got(message: &rdkafka::message::BorrowedMessage<'_>) -> Got {
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
fn read_all(bootstrap: &str, topic: &str, partitions: i32, isolation: &str) -> Result<(Vec<Got>, Vec<i64>)> {
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
fn positions<C: ConsumerContext>(consumer: &BaseConsumer<C>, topic: &str, partitions: i32) -> Result<Vec<i64>> {
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
fn list_latest(bootstrap: &str, topic: &str, partition: i32, isolation_level: i8) -> Result<i64> {
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
fn lso_and_hw(bootstrap: &str, topic: &str, partition: i32) -> Result<(i64, i64)> {
    Ok((list_latest(bootstrap, topic, partition, 1)?, list_latest(bootstrap, topic, partition, 0)?))
}

/// Waits (bounded) until no transaction holds back partitions `0..partitions` of
/// `topic` (LSO = high watermark) and returns their high watermarks.
/// `commit_transaction` returns once the coordinator has decided; the markers
/// are written after that, as in Kafka.
fn settled(bootstrap: &str, topic: &str, partitions: i32) -> Result<Vec<i64>> {
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
fn describe_txn(bootstrap: &str, transactional_id: &str) -> Result<TransactionState> {
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
fn wait_txn_state(bootstrap: &str, transactional_id: &str, wanted: &str) -> Result<TransactionState> {
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
fn committed_offsets<C: ConsumerContext>(
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
fn offsets_reader(bootstrap: &str, group: &str) -> Result<BaseConsumer> {
    rdk::consumer(bootstrap, &[("group.id", group), ("isolation.level", "read_committed")])
}

fn transaction_error(error: &KafkaError) -> Option<&rdkafka::error::RDKafkaError> {
    match error {
        KafkaError::Transaction(error) => Some(error),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// 1. The exactly-once copier across kill -9.
// ---------------------------------------------------------------------------

const EOS_INPUT: &str = "eos-input";
const EOS_OUTPUT: &str = "eos-output";
const EOS_GROUP: &str = "eos-copier";
const EOS_TXN_ID: &str = "eos-copier-txn";
const EOS_PARTITIONS: i32 = 4;
const EOS_RECORDS: usize = 10_000;
/// Records per transaction.
const EOS_BATCH: usize = 200;
/// The copier's `transaction.timeout.ms` (and `message.timeout.ms`).
const EOS_TXN_TIMEOUT: Duration = Duration::from_secs(5);

fn eos_input_value(n: usize) -> String {
    format!("input-{n}")
}

/// What the copier writes for input record `n`.
fn eos_transformed(n: usize) -> String {
    format!("copied-{n}-{}", (n as u64 * 7919) % 10_007)
}

const PHASE_IDLE: u8 = 0;
const PHASE_PRODUCING: u8 = 1;
const PHASE_SENDING_OFFSETS: u8 = 2;
const PHASE_COMMITTING: u8 = 3;

fn phase_name(phase: u8) -> &'static str {
    match phase {
        PHASE_PRODUCING => "producing (a transaction open, records sent, nothing committed)",
        PHASE_SENDING_OFFSETS => "in send_offsets_to_transaction",
        PHASE_COMMITTING => "in commit_transaction",
        _ => "between transactions",
    }
}

/// What the copier thread shares with the test.
#[derive(Default)]
struct CopierShared {
    stop: AtomicBool,
    phase: AtomicU8,
    /// Records of transactions whose commit_transaction returned Ok.
    committed_records: AtomicUsize,
    commits: AtomicUsize,
    aborts: AtomicUsize,
    /// New producer + consumer pairs after the first.
    recreations: AtomicUsize,
    /// Retriable errors retried in place.
    retries: AtomicUsize,
    rebalances: AtomicUsize,
}

impl CopierShared {
    /// Reports what the copier ran into (on the test's output).
    fn event(&self, text: String) {
        eprintln!("copier: {text}");
    }
}

/// Counts rebalances: a transaction open across one must be aborted, since the
/// positions went back to the committed offsets.
struct CopierContext(Arc<CopierShared>);

impl ClientContext for CopierContext {}

impl ConsumerContext for CopierContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, _rebalance: &Rebalance<'_>) {
        self.0.rebalances.fetch_add(1, Ordering::SeqCst);
    }
}

type CopierConsumer = BaseConsumer<CopierContext>;
type CopierProducer = ThreadedProducer<DefaultProducerContext>;

/// Why an incarnation of the copier ended.
enum Ended {
    Stopped,
    /// A fatal (or unrecoverable) error: start over with new clients.
    Recreate(String),
}

/// Runs the copier until `shared.stop`, recreating its clients after fatal errors.
fn run_copier(bootstrap: String, shared: Arc<CopierShared>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut incarnation = 0;
    loop {
        ensure!(Instant::now() < deadline, "copier still running after 240 s");
        ensure!(incarnation < 30, "copier recreated its clients {incarnation} times");
        let clients = copier_clients(&bootstrap, &shared, incarnation);
        let ended = match clients {
            Ok((consumer, producer)) => copy(&consumer, &producer, &shared),
            Err(error) => Ended::Recreate(format!("creating the clients: {error:#}")),
        };
        match ended {
            Ended::Stopped => return Ok(()),
            Ended::Recreate(reason) => {
                shared.event(format!("incarnation {incarnation}: {reason}; recreating producer and consumer"));
                shared.recreations.fetch_add(1, Ordering::SeqCst);
                shared.phase.store(PHASE_IDLE, Ordering::SeqCst);
                if shared.stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
                incarnation += 1;
            }
        }
    }
}

/// A consumer subscribed to the input in the copier's group, and a producer
/// with the copier's transactional id after `init_transactions` (which fences
/// any earlier producer of the id and aborts its open transaction).
fn copier_clients(
    bootstrap: &str,
    shared: &Arc<CopierShared>,
    incarnation: usize,
) -> Result<(CopierConsumer, CopierProducer)> {
    let mut config = rdk::config(bootstrap);
    config
        .set("client.id", format!("copier-{incarnation}"))
        .set("group.id", EOS_GROUP)
        .set("group.protocol", "classic")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("max.poll.interval.ms", "45000")
        .set("check.crcs", "true");
    for (key, value) in FAST_RECONNECT {
        config.set(key, value);
    }
    let consumer: CopierConsumer =
        config.create_with_context(CopierContext(shared.clone())).context("creating the copier's consumer")?;
    consumer.subscribe(&[EOS_INPUT]).context("subscribe")?;

    let mut config = rdk::config(bootstrap);
    config
        .set("client.id", format!("copier-{incarnation}"))
        .set("transactional.id", EOS_TXN_ID)
        .set("transaction.timeout.ms", EOS_TXN_TIMEOUT.as_millis().to_string())
        .set("message.timeout.ms", EOS_TXN_TIMEOUT.as_millis().to_string())
        .set("linger.ms", "5");
    for (key, value) in FAST_RECONNECT {
        config.set(key, value);
    }
    let producer: CopierProducer = config.create().context("creating the copier's producer")?;
    retry(shared, "init_transactions", || producer.init_transactions(OP_TIMEOUT))
        .map_err(|error| anyhow!("init_transactions: {error}"))?;
    Ok((consumer, producer))
}

/// Calls `op` again while it fails with a retriable error (at most 10 times).
fn retry(shared: &CopierShared, what: &str, mut op: impl FnMut() -> Result<(), KafkaError>) -> Result<(), KafkaError> {
    let mut attempt = 0;
    loop {
        match op() {
            Ok(()) => return Ok(()),
            Err(error) if transaction_error(&error).is_some_and(|e| e.is_retriable()) && attempt < 10 => {
                attempt += 1;
                shared.retries.fetch_add(1, Ordering::SeqCst);
                shared.event(format!("{what}: retriable error, calling it again: {error}"));
            }
            Err(error) => return Err(error),
        }
    }
}

/// The transaction being built.
#[derive(Default)]
struct OpenTxn {
    open: bool,
    /// Next offset to consume per input partition, for what this transaction processed.
    offsets: BTreeMap<i32, i64>,
    records: usize,
}

/// One incarnation's consume-transform-produce loop.
fn copy(consumer: &CopierConsumer, producer: &CopierProducer, shared: &CopierShared) -> Ended {
    let mut txn = OpenTxn::default();
    let mut rebalances_seen = shared.rebalances.load(Ordering::SeqCst);
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            if txn.open {
                let _ = producer.abort_transaction(OP_TIMEOUT);
            }
            return Ended::Stopped;
        }
        let polled = consumer.poll(Duration::from_millis(100));
        let rebalances = shared.rebalances.load(Ordering::SeqCst);
        if rebalances != rebalances_seen {
            rebalances_seen = rebalances;
            if txn.open {
                // The positions went back to the committed offsets: what this
                // transaction holds would be copied again. Drop the message just
                // polled too; it is read again after the rewind.
                shared.event(format!("rebalance with {} records in the open transaction: aborting", txn.records));
                if let Err(reason) = abort_and_rewind(consumer, producer, shared, &mut txn) {
                    return Ended::Recreate(reason);
                }
                continue;
            }
        }
        match polled {
            None => {
                // Idle: commit the tail of the input.
                if txn.open && txn.records > 0 {
                    if let Err(ended) = commit(consumer, producer, shared, &mut txn) {
                        return ended;
                    }
                }
            }
            Some(Err(KafkaError::MessageConsumptionFatal(code))) => {
                return Ended::Recreate(format!("fatal consumer error {code}"));
            }
            // Transport errors while the broker is down, and the like: librdkafka recovers.
            Some(Err(_)) => {}
            Some(Ok(message)) => {
                let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
                let Ok(n) = key.parse::<usize>() else {
                    return Ended::Recreate(format!("input record with key {key:?}"));
                };
                if !txn.open {
                    if let Err(error) = producer.begin_transaction() {
                        return Ended::Recreate(format!("begin_transaction: {error}"));
                    }
                    txn.open = true;
                }
                shared.phase.store(PHASE_PRODUCING, Ordering::SeqCst);
                let value = eos_transformed(n);
                let mut record = BaseRecord::to(EOS_OUTPUT).partition((n % 4) as i32).key(&key).payload(&value);
                let sent = loop {
                    match producer.send(record) {
                        Ok(()) => break Ok(()),
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                            record = returned;
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err((error, _)) => break Err(error),
                    }
                };
                if let Err(error) = sent {
                    shared.event(format!("send failed: {error}"));
                    if let Err(reason) = abort_and_rewind(consumer, producer, shared, &mut txn) {
                        return Ended::Recreate(reason);
                    }
                    continue;
                }
                txn.offsets.insert(message.partition(), message.offset() + 1);
                txn.records += 1;
                if txn.records % 10 == 0 {
                    // Paced, so that a crash can land while records are being produced.
                    std::thread::sleep(Duration::from_millis(1));
                }
                if txn.records >= EOS_BATCH {
                    if let Err(ended) = commit(consumer, producer, shared, &mut txn) {
                        return ended;
                    }
                }
            }
        }
    }
}

/// Sends the consumed offsets to the transaction and commits it. An abortable
/// error aborts and rewinds (Ok: go on); anything else ends the incarnation.
fn commit(
    consumer: &CopierConsumer,
    producer: &CopierProducer,
    shared: &CopierShared,
    txn: &mut OpenTxn,
) -> Result<(), Ended> {
    let mut offsets = TopicPartitionList::new();
    for (partition, offset) in &txn.offsets {
        offsets
            .add_partition_offset(EOS_INPUT, *partition, Offset::Offset(*offset))
            .map_err(|e| Ended::Recreate(format!("offset list: {e}")))?;
    }
    let Some(group) = consumer.group_metadata() else {
        return Err(Ended::Recreate("the consumer has no group metadata".into()));
    };
    shared.phase.store(PHASE_SENDING_OFFSETS, Ordering::SeqCst);
    let result = retry(shared, "send_offsets_to_transaction", || {
        producer.send_offsets_to_transaction(&offsets, &group, OP_TIMEOUT)
    })
    .and_then(|()| {
        shared.phase.store(PHASE_COMMITTING, Ordering::SeqCst);
        retry(shared, "commit_transaction", || producer.commit_transaction(OP_TIMEOUT))
    });
    shared.phase.store(PHASE_IDLE, Ordering::SeqCst);
    match result {
        Ok(()) => {
            shared.commits.fetch_add(1, Ordering::SeqCst);
            shared.committed_records.fetch_add(txn.records, Ordering::SeqCst);
            *txn = OpenTxn::default();
            Ok(())
        }
        Err(error) => {
            shared.event(format!("committing {} records failed: {error}", txn.records));
            abort_and_rewind(consumer, producer, shared, txn).map_err(Ended::Recreate)
        }
    }
}

/// Aborts the open transaction and seeks every assigned partition back to its
/// committed offset. Err: the transaction could not be aborted (a fatal error):
/// recreate the clients.
fn abort_and_rewind(
    consumer: &CopierConsumer,
    producer: &CopierProducer,
    shared: &CopierShared,
    txn: &mut OpenTxn,
) -> Result<(), String> {
    shared.phase.store(PHASE_IDLE, Ordering::SeqCst);
    if txn.open {
        if let Some(fatal) = producer.client().fatal_error() {
            return Err(format!("the producer has a fatal error: {fatal:?}"));
        }
        retry(shared, "abort_transaction", || producer.abort_transaction(OP_TIMEOUT))
            .map_err(|error| format!("abort_transaction: {error}"))?;
        shared.aborts.fetch_add(1, Ordering::SeqCst);
        shared.event(format!("aborted a transaction of {} records", txn.records));
    }
    *txn = OpenTxn::default();
    let assignment = consumer.assignment().map_err(|e| format!("assignment: {e}"))?;
    if assignment.count() == 0 {
        return Ok(());
    }
    let committed =
        consumer.committed_offsets(assignment, OP_TIMEOUT).map_err(|e| format!("fetching committed offsets: {e}"))?;
    let mut seek = TopicPartitionList::new();
    for element in committed.elements() {
        let offset = match element.offset() {
            Offset::Offset(offset) => Offset::Offset(offset),
            _ => Offset::Beginning,
        };
        seek.add_partition_offset(element.topic(), element.partition(), offset).map_err(|e| e.to_string())?;
    }
    let sought = consumer.seek_partitions(seek, OP_TIMEOUT).map_err(|e| format!("seek: {e}"))?;
    for element in sought.elements() {
        if let Err(error) = element.error() {
            return Err(format!("seek of {}/{}: {error}", element.topic(), element.partition()));
        }
    }
    let mut rewound: Vec<String> =
        committed.elements().iter().map(|e| format!("{}/{}: {:?}", e.topic(), e.partition(), e.offset())).collect();
    rewound.sort();
    shared.event(format!("rewound to the committed offsets {}", rewound.join(", ")));
    Ok(())
}

/// Sets `stop` when dropped, so an early return does not leave the copier running.
struct StopOnDrop(Arc<CopierShared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn exactly_once_copier_survives_kill9() -> Result<()> {
    let mut broker = start_broker(&[("transaction.abort.timed.out.transaction.cleanup.interval.ms", "500")])?;
    let result = exactly_once_copier(&mut broker);
    broker.with_diag(result)
}

fn exactly_once_copier(broker: &mut BrokerProcess) -> Result<()> {
    let started = Instant::now();
    let bootstrap = broker.bootstrap();
    rdk::create_topic(&bootstrap, EOS_INPUT, EOS_PARTITIONS, &[])?;
    rdk::create_topic(&bootstrap, EOS_OUTPUT, EOS_PARTITIONS, &[])?;
    {
        let (producer, log) = rdk::producer(&bootstrap, &[("acks", "all")], EOS_RECORDS)?;
        for n in 0..EOS_RECORDS {
            let record = kv(n.to_string(), eos_input_value(n));
            rdk::send(&producer, EOS_INPUT, (n % 4) as i32, n, &record)?;
        }
        rdk::flush_all_acked(&producer, &log, EOS_RECORDS)?;
    }
    let mut input_end = Vec::new();
    for partition in 0..EOS_PARTITIONS {
        input_end.push(rdk::watermarks(&bootstrap, EOS_INPUT, partition)?.1);
    }
    ensure!(input_end.iter().sum::<i64>() == EOS_RECORDS as i64, "input high watermarks {input_end:?}");

    let shared = Arc::new(CopierShared::default());
    let _stop = StopOnDrop(shared.clone());
    let copier = {
        let (bootstrap, shared) = (bootstrap.clone(), shared.clone());
        std::thread::spawn(move || run_copier(bootstrap, shared))
    };

    // Three crashes, each at a committed-record threshold and, if the copier gets
    // there within 10 s, in a given phase of a transaction.
    // Four crashes, each once a number of records is committed and, if the copier
    // gets there within 10 s, in a given phase of a transaction. After the third
    // the broker stays down longer than the copier's transaction timeout: the
    // restarted coordinator aborts the open transaction and fences the producer,
    // and the copier has to recover from that.
    let kills = [
        (1500, PHASE_PRODUCING, Duration::ZERO),
        (3500, PHASE_COMMITTING, Duration::ZERO),
        (5500, PHASE_PRODUCING, EOS_TXN_TIMEOUT + Duration::from_secs(1)),
        (7500, PHASE_SENDING_OFFSETS, Duration::ZERO),
    ];
    let mut kill_report = Vec::new();
    for (round, (threshold, wanted, down_for)) in kills.into_iter().enumerate() {
        ensure!(
            wait_until(Duration::from_secs(90), || {
                shared.committed_records.load(Ordering::SeqCst) >= threshold || copier.is_finished()
            }),
            "kill {round}: the copier did not commit {threshold} records within 90 s (committed {})",
            shared.committed_records.load(Ordering::SeqCst)
        );
        ensure!(!copier.is_finished(), "the copier stopped before kill {round}");
        let phase_deadline = Instant::now() + Duration::from_secs(10);
        while shared.phase.load(Ordering::SeqCst) != wanted && Instant::now() < phase_deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
        let committed = shared.committed_records.load(Ordering::SeqCst);
        let old_port = broker.port();
        let before = shared.phase.load(Ordering::SeqCst);
        broker.kill9()?;
        let after = shared.phase.load(Ordering::SeqCst);
        let then = if after == before { String::new() } else { format!(" (then {})", phase_name(after)) };
        kill_report.push(format!(
            "kill {round} after {committed} committed records, copier {}{then}, down for {down_for:?}",
            phase_name(before)
        ));
        eprintln!("test: {}", kill_report.last().expect("just pushed"));
        // The length of the outage is the scenario here, not a synchronisation.
        std::thread::sleep(down_for);
        broker.start_again().with_context(|| format!("starting after kill {round}"))?;
        ensure!(broker.port() == old_port, "the broker came back on port {}, not {old_port}", broker.port());
    }
    ensure!(
        shared.committed_records.load(Ordering::SeqCst) < EOS_RECORDS,
        "the copier had committed everything before the last kill"
    );

    // Done when the group's committed offsets (as the broker answers them) reach the input's end.
    let reader = offsets_reader(&bootstrap, EOS_GROUP)?;
    let mut last = Vec::new();
    let done = wait_until(Duration::from_secs(120), || {
        if copier.is_finished() {
            return true;
        }
        if let Ok(offsets) = committed_offsets(&reader, EOS_GROUP, EOS_INPUT, EOS_PARTITIONS) {
            last = offsets;
        }
        if last == input_end {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
        false
    });
    shared.stop.store(true, Ordering::SeqCst);
    let copier_result = copier.join().map_err(|_| anyhow!("the copier thread panicked"))?;
    copier_result.context("copier")?;
    ensure!(done && last == input_end, "committed offsets {last:?} did not reach the input's end {input_end:?}");
    drop(reader);

    // No transaction is left open on the output (once the last markers are written).
    settled(&bootstrap, EOS_OUTPUT, EOS_PARTITIONS)?;

    let (committed, _) = read_all(&bootstrap, EOS_OUTPUT, EOS_PARTITIONS, "read_committed")?;
    let mut seen = vec![0usize; EOS_RECORDS];
    for record in &committed {
        let key = record.key_str();
        let n: usize = key.parse().with_context(|| format!("output key {key:?}"))?;
        ensure!(n < EOS_RECORDS, "output key {n} was never an input");
        ensure!(
            record.value == eos_transformed(n).as_bytes(),
            "output {n} at {}/{} has value {:?}",
            record.partition,
            record.offset,
            String::from_utf8_lossy(&record.value)
        );
        ensure!(record.partition == (n % 4) as i32, "output {n} in partition {}", record.partition);
        seen[n] += 1;
    }
    let missing: Vec<usize> = (0..EOS_RECORDS).filter(|n| seen[*n] == 0).collect();
    let duplicated: Vec<usize> = (0..EOS_RECORDS).filter(|n| seen[*n] > 1).collect();
    ensure!(
        missing.is_empty() && duplicated.is_empty(),
        "read_committed output: {} missing (first {:?}), {} duplicated (first {:?})",
        missing.len(),
        &missing[..missing.len().min(10)],
        duplicated.len(),
        &duplicated[..duplicated.len().min(10)]
    );
    ensure!(committed.len() == EOS_RECORDS, "{} committed output records", committed.len());

    let (everything, _) = read_all(&bootstrap, EOS_OUTPUT, EOS_PARTITIONS, "read_uncommitted")?;
    for record in &everything {
        let n: usize = record.key_str().parse().context("output key")?;
        ensure!(n < EOS_RECORDS && record.value == eos_transformed(n).as_bytes(), "bad output record {record:?}");
    }
    ensure!(everything.len() >= EOS_RECORDS, "read_uncommitted saw {} records", everything.len());
    eprintln!(
        "test: exactly-once copy of {EOS_RECORDS} records in {:?}: {}; {} commits, {} aborts, {} recreations, {} \
         retries, {} rebalances; read_uncommitted sees {} records ({} aborted duplicates)",
        started.elapsed(),
        kill_report.join("; "),
        shared.commits.load(Ordering::SeqCst),
        shared.aborts.load(Ordering::SeqCst),
        shared.recreations.load(Ordering::SeqCst),
        shared.retries.load(Ordering::SeqCst),
        shared.rebalances.load(Ordering::SeqCst),
        everything.len(),
        everything.len() - EOS_RECORDS
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// 2. Committed and aborted transactions interleaved.
// ---------------------------------------------------------------------------

#[test]
fn aborted_and_committed_transactions_interleave() -> Result<()> {
    let broker = start_broker(&[])?;
    let result = interleaved(&broker);
    broker.with_diag(result)
}

fn interleaved(broker: &BrokerProcess) -> Result<()> {
    let bootstrap = broker.bootstrap();
    let topic = "interleaved";
    let partitions = 2;
    rdk::create_topic(&bootstrap, topic, partitions, &[])?;
    let base_timestamp = rdk::day_ago_ms();
    let (producer, log) = logged_txn_producer(&bootstrap, "interleaved-txn", &[])?;

    // Seven transactions over both partitions: commit, abort, commit, abort, abort, commit, commit.
    let outcomes = [true, false, true, false, false, true, true];
    let per_txn = 60;
    // (partition, offset, committed, record) of everything written.
    let mut written: Vec<(i32, i64, bool, TestRecord)> = Vec::new();
    let mut index = 0;
    for (t, commit) in outcomes.iter().enumerate() {
        producer.begin_transaction().context("begin_transaction")?;
        let first = index;
        let mut records = Vec::new();
        for i in 0..per_txn {
            let record = rdk::test_record(&format!("{topic}-{t}"), i as u64, base_timestamp);
            rdk::send(&producer, topic, (i % 2) as i32, index, &record)?;
            records.push(record);
            index += 1;
        }
        // Everything is in the log before the outcome is decided.
        producer.flush(OP_TIMEOUT).context("flush")?;
        for ((partition, offset), record) in delivered(&log, first..index)?.into_iter().zip(records) {
            written.push((partition, offset, *commit, record));
        }
        if *commit {
            producer.commit_transaction(OP_TIMEOUT).with_context(|| format!("commit of transaction {t}"))?;
        } else {
            producer.abort_transaction(OP_TIMEOUT).with_context(|| format!("abort of transaction {t}"))?;
        }
    }
    // Every transaction ends with one marker in each partition.
    let high = settled(&bootstrap, topic, partitions)?;
    let expected = (outcomes.len() * (per_txn / 2 + 1)) as i64;
    ensure!(high == vec![expected; 2], "high watermarks {high:?} after all transactions ended, expected {expected}");

    let check = |isolation: &str, committed_only: bool| -> Result<()> {
        let (records, positions) = read_all(&bootstrap, topic, partitions, isolation)?;
        for partition in 0..partitions {
            let got: Vec<&Got> = records.iter().filter(|r| r.partition == partition).collect();
            let want: Vec<&(i32, i64, bool, TestRecord)> =
                written.iter().filter(|w| w.0 == partition && (w.2 || !committed_only)).collect();
            ensure!(
                got.len() == want.len(),
                "{isolation}: {} records in {topic}/{partition}, expected {}",
                got.len(),
                want.len()
            );
            for (got, want) in got.iter().zip(&want) {
                ensure!(
                    got.offset == want.1 && got.record() == want.3,
                    "{isolation}: {topic}/{partition} offset {} holds {:?}, expected offset {} with {:?}",
                    got.offset,
                    got.record(),
                    want.1,
                    want.3
                );
            }
            ensure!(
                positions[partition as usize] == high[partition as usize],
                "{isolation}: position {} in {topic}/{partition} after reading to the end, expected the high \
                 watermark {} (past the aborted records and the markers)",
                positions[partition as usize],
                high[partition as usize]
            );
        }
        Ok(())
    };
    check("read_committed", true)?;
    check("read_uncommitted", false)?;
    let committed_count = written.iter().filter(|w| w.2).count();
    ensure!(committed_count == 4 * per_txn && written.len() == 7 * per_txn, "bookkeeping");

    // An open transaction: the read_committed end offset stays at its first offset.
    producer.begin_transaction().context("begin_transaction")?;
    let first = index;
    for i in 0..10 {
        let record = rdk::test_record(&format!("{topic}-open"), i, base_timestamp);
        rdk::send(&producer, topic, 0, index, &record)?;
        index += 1;
    }
    producer.flush(OP_TIMEOUT).context("flush")?;
    let open = delivered(&log, first..index)?;
    ensure!(open[0] == (0, high[0]), "the open transaction starts at {:?}, expected (0, {})", open[0], high[0]);
    let (lso, hw) = lso_and_hw(&bootstrap, topic, 0)?;
    ensure!(
        (lso, hw) == (high[0], high[0] + 10),
        "ListOffsets with an open transaction: (LSO, HW) ({lso}, {hw}), expected ({}, {})",
        high[0],
        high[0] + 10
    );
    let committed_reader = rdk::consumer(&bootstrap, &[("isolation.level", "read_committed")])?;
    let uncommitted_reader = rdk::consumer(&bootstrap, &[("isolation.level", "read_uncommitted")])?;
    let timeout = Duration::from_secs(15);
    let committed_marks = committed_reader.fetch_watermarks(topic, 0, timeout).context("watermarks")?;
    let uncommitted_marks = uncommitted_reader.fetch_watermarks(topic, 0, timeout).context("watermarks")?;
    ensure!(
        committed_marks == (0, high[0]) && uncommitted_marks == (0, high[0] + 10),
        "librdkafka watermarks with an open transaction: read_committed {committed_marks:?}, read_uncommitted \
         {uncommitted_marks:?}; expected (0, {}) and (0, {})",
        high[0],
        high[0] + 10
    );
    // Partition 1 is not in the transaction: nothing holds it back.
    let (lso1, hw1) = lso_and_hw(&bootstrap, topic, 1)?;
    ensure!((lso1, hw1) == (high[1], high[1]), "{topic}/1 outside the open transaction: ({lso1}, {hw1})");
    // A read_committed consumer stops at the LSO.
    let (records, positions) = read_all(&bootstrap, topic, 1, "read_committed")?;
    ensure!(
        records.len() == committed_count / 2 && positions[0] == high[0],
        "read_committed with an open transaction: {} records, position {}; expected {} records, position {}",
        records.len(),
        positions[0],
        committed_count / 2,
        high[0]
    );
    producer.commit_transaction(OP_TIMEOUT).context("commit of the open transaction")?;
    let now = settled(&bootstrap, topic, 1)?;
    ensure!(now[0] == high[0] + 11, "after the commit: high watermark {}, expected {}", now[0], high[0] + 11);
    let (records, _) = read_all(&bootstrap, topic, 1, "read_committed")?;
    ensure!(
        records.len() == committed_count / 2 + 10,
        "read_committed after the last commit: {} records, expected {}",
        records.len(),
        committed_count / 2 + 10
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// 3. Zombie fencing.
// ---------------------------------------------------------------------------

#[test]
fn a_new_producer_fences_the_zombie() -> Result<()> {
    let broker = start_broker(&[])?;
    let result = zombie_fencing(&broker);
    broker.with_diag(result)
}

fn zombie_fencing(broker: &BrokerProcess) -> Result<()> {
    let bootstrap = broker.bootstrap();
    let topic = "fencing";
    let id = "fencing-txn";
    rdk::create_topic(&bootstrap, topic, 1, &[])?;

    let (zombie, zombie_log) = logged_txn_producer(&bootstrap, id, &[])?;
    zombie.begin_transaction().context("A: begin_transaction")?;
    for i in 0..20 {
        rdk::send(&zombie, topic, 0, i, &kv(format!("a-{i}"), format!("zombie-{i}")))?;
    }
    zombie.flush(OP_TIMEOUT).context("A: flush")?;
    let zombie_offsets = delivered(&zombie_log, 0..20)?;
    let before = describe_txn(&bootstrap, id)?;
    ensure!(before.transaction_state == "Ongoing", "A's transaction is {}", before.transaction_state);

    // B takes over the id: A's transaction is aborted, A is fenced.
    let (successor, successor_log) = logged_txn_producer(&bootstrap, id, &[])?;
    let after = describe_txn(&bootstrap, id)?;
    ensure!(
        after.producer_id == before.producer_id && after.producer_epoch > before.producer_epoch,
        "B's init_transactions left producer {}/epoch {} (A had {}/{})",
        after.producer_id,
        after.producer_epoch,
        before.producer_id,
        before.producer_epoch
    );
    successor.begin_transaction().context("B: begin_transaction")?;
    for i in 0..20 {
        rdk::send(&successor, topic, 0, i, &kv(format!("b-{i}"), format!("successor-{i}")))?;
    }
    successor.commit_transaction(OP_TIMEOUT).context("B: commit_transaction")?;
    let successor_offsets = delivered(&successor_log, 0..20)?;

    // A finds out when it tries to commit: a fatal, fenced error.
    let error = match zombie.commit_transaction(OP_TIMEOUT) {
        Ok(()) => bail!("the fenced producer A committed its transaction"),
        Err(error) => error,
    };
    let txn_error = transaction_error(&error).with_context(|| format!("A's commit failed with {error:?}"))?;
    ensure!(
        txn_error.is_fatal()
            && matches!(
                txn_error.code(),
                RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch
            ),
        "A's commit failed with {error} (fatal: {}), expected a fatal fenced error",
        txn_error.is_fatal()
    );
    // And it cannot write any more.
    ensure!(
        zombie.begin_transaction().is_err(),
        "the fenced producer A could begin another transaction after its fatal error"
    );
    drop(zombie);

    settled(&bootstrap, topic, 1)?;
    let (committed, _) = read_all(&bootstrap, topic, 1, "read_committed")?;
    let keys: Vec<String> = committed.iter().map(Got::key_str).collect();
    let expected: Vec<String> = (0..20).map(|i| format!("b-{i}")).collect();
    ensure!(keys == expected, "read_committed sees {keys:?}, expected B's records only");
    let offsets: Vec<i64> = committed.iter().map(|r| r.offset).collect();
    ensure!(offsets == successor_offsets.iter().map(|p| p.1).collect::<Vec<_>>(), "B's records at {offsets:?}");
    let (everything, _) = read_all(&bootstrap, topic, 1, "read_uncommitted")?;
    let zombie_seen: Vec<i64> = everything.iter().filter(|r| r.key.starts_with(b"a-")).map(|r| r.offset).collect();
    ensure!(
        zombie_seen == zombie_offsets.iter().map(|p| p.1).collect::<Vec<_>>(),
        "read_uncommitted sees A's records at {zombie_seen:?}, written at {zombie_offsets:?}"
    );
    // The coordinator completes B's transaction.
    wait_txn_state(&bootstrap, id, "CompleteCommit")?;
    Ok(())
}

// ---------------------------------------------------------------------------
// 4. Transaction timeout.
// ---------------------------------------------------------------------------

#[test]
fn the_coordinator_aborts_a_timed_out_transaction() -> Result<()> {
    let broker = start_broker(&[("transaction.abort.timed.out.transaction.cleanup.interval.ms", "500")])?;
    let result = timed_out_transaction(&broker);
    broker.with_diag(result)
}

fn timed_out_transaction(broker: &BrokerProcess) -> Result<()> {
    let bootstrap = broker.bootstrap();
    let topic = "abandoned";
    let id = "abandoned-txn";
    rdk::create_topic(&bootstrap, topic, 1, &[])?;
    // Five plain records first, so the transaction does not start at offset 0.
    {
        let (producer, log) = rdk::producer(&bootstrap, &[("acks", "all")], 5)?;
        for i in 0..5 {
            rdk::send(&producer, topic, 0, i, &kv(format!("plain-{i}"), format!("plain-{i}")))?;
        }
        rdk::flush_all_acked(&producer, &log, 5)?;
    }

    let (abandoned, log) =
        logged_txn_producer(&bootstrap, id, &[("transaction.timeout.ms", "2000"), ("message.timeout.ms", "2000")])?;
    abandoned.begin_transaction().context("begin_transaction")?;
    let began = Instant::now();
    for i in 0..10 {
        rdk::send(&abandoned, topic, 0, i, &kv(format!("abandoned-{i}"), format!("abandoned-{i}")))?;
    }
    abandoned.flush(OP_TIMEOUT).context("flush")?;
    let offsets = delivered(&log, 0..10)?;
    ensure!(offsets[0] == (0, 5) && offsets[9] == (0, 14), "transactional records at {offsets:?}");
    // The producer stays alive and silent from here on: only the broker can end the transaction.

    let (lso, hw) = lso_and_hw(&bootstrap, topic, 0)?;
    let open = describe_txn(&bootstrap, id)?;
    let checked_after = began.elapsed();
    ensure!(
        (lso, hw) == (5, 15),
        "(LSO, HW) ({lso}, {hw}) with the transaction open, expected (5, 15) (checked {checked_after:?} after it \
         began; its timeout is 2 s)"
    );
    ensure!(
        open.transaction_state == "Ongoing" && open.transaction_timeout_ms == 2000,
        "DescribeTransactions {checked_after:?} after the transaction began: {open:?}"
    );

    // A read_committed consumer gets the plain records and stops at the LSO.
    let consumer = rdk::consumer(&bootstrap, &[("isolation.level", "read_committed")])?;
    rdk::assign(&consumer, topic, 0, Offset::Offset(0))?;
    let plain = rdk::poll_records(&consumer, 5, Duration::from_secs(30))?;
    let plain_offsets: Vec<i64> = plain.iter().map(|c| c.offset).collect();
    ensure!(plain_offsets == vec![0, 1, 2, 3, 4], "read_committed before the timeout: offsets {plain_offsets:?}");

    // The coordinator aborts it: the LSO moves to the log end, past the abort marker.
    let mut last = (lso, hw);
    ensure!(
        wait_until(Duration::from_secs(20), || {
            if let Ok(now) = lso_and_hw(&bootstrap, topic, 0) {
                last = now;
            }
            last.0 == last.1 && last.1 > 15
        }),
        "(LSO, HW) still {last:?} {:?} after the transaction began (timeout 2 s, scans every 500 ms)",
        began.elapsed()
    );
    let aborted_after = began.elapsed();
    ensure!(last == (16, 16), "(LSO, HW) {last:?} after the timeout, expected (16, 16): one abort marker");
    ensure!(
        aborted_after >= Duration::from_millis(2000),
        "the transaction was aborted {aborted_after:?} after it began, before its 2 s timeout"
    );
    let aborted = wait_txn_state(&bootstrap, id, "CompleteAbort")?;
    ensure!(
        aborted.producer_id == open.producer_id && aborted.producer_epoch == open.producer_epoch + 1,
        "the timeout abort left producer {}/epoch {}, expected {}/{} (a bumped epoch fences the producer)",
        aborted.producer_id,
        aborted.producer_epoch,
        open.producer_id,
        open.producer_epoch + 1
    );

    // The abandoned producer cannot commit it any more.
    match abandoned.commit_transaction(Duration::from_secs(10)) {
        Ok(()) => bail!("the abandoned producer committed its timed-out transaction"),
        Err(error) => ensure!(
            transaction_error(&error).is_some_and(|e| e.is_fatal()),
            "the abandoned producer's late commit failed with {error}, expected a fatal (fenced) error"
        ),
    }
    drop(abandoned);

    // A new producer of the id commits three records; the consumer gets exactly
    // those after the plain ones, nothing of the abandoned transaction.
    let (successor, successor_log) = logged_txn_producer(&bootstrap, id, &[])?;
    successor.begin_transaction()?;
    for i in 0..3 {
        rdk::send(&successor, topic, 0, i, &kv(format!("after-{i}"), format!("after-{i}")))?;
    }
    successor.commit_transaction(OP_TIMEOUT).context("the successor's commit")?;
    let successor_offsets = delivered(&successor_log, 0..3)?;
    ensure!(successor_offsets == vec![(0, 16), (0, 17), (0, 18)], "the successor's records at {successor_offsets:?}");
    let after = rdk::poll_records(&consumer, 3, Duration::from_secs(30))?;
    let seen: Vec<(i64, String)> =
        after.iter().map(|c| (c.offset, String::from_utf8_lossy(&c.record.key).into_owned())).collect();
    ensure!(
        seen == vec![(16, "after-0".into()), (17, "after-1".into()), (18, "after-2".into())],
        "read_committed after the timeout abort: {seen:?}"
    );
    ensure!(settled(&bootstrap, topic, 1)? == vec![20], "high watermark after the successor's commit");
    let (everything, positions) = read_all(&bootstrap, topic, 1, "read_committed")?;
    let keys: Vec<String> = everything.iter().map(Got::key_str).collect();
    ensure!(
        keys.iter().all(|k| !k.starts_with("abandoned")) && keys.len() == 8 && positions[0] == 20,
        "read_committed from the start: {keys:?}, position {}",
        positions[0]
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// 5. Transaction state across kill -9.
// ---------------------------------------------------------------------------

#[test]
fn a_committed_transaction_survives_kill9() -> Result<()> {
    let mut broker = start_broker(&[])?;
    let result = durable_transaction(&mut broker);
    broker.with_diag(result)
}

/// Consumes `count` records of `topic`/0 from `from` and returns the transformed
/// records to write.
fn consume_input(consumer: &BaseConsumer, topic: &str, from: i64, count: usize) -> Result<Vec<TestRecord>> {
    rdk::assign(consumer, topic, 0, Offset::Offset(from))?;
    let records = rdk::poll_records(consumer, count, Duration::from_secs(30))?;
    Ok(records
        .iter()
        .map(|c| kv(String::from_utf8_lossy(&c.record.key).into_owned(), format!("out-{}", c.offset)))
        .collect())
}

fn durable_transaction(broker: &mut BrokerProcess) -> Result<()> {
    let bootstrap = broker.bootstrap();
    let (input, output, group, id) = ("durable-in", "durable-out", "durable-group", "durable-txn");
    rdk::create_topic(&bootstrap, input, 1, &[])?;
    rdk::create_topic(&bootstrap, output, 2, &[])?;
    {
        let (producer, log) = rdk::producer(&bootstrap, &[("acks", "all")], 25)?;
        for i in 0..25 {
            rdk::send(&producer, input, 0, i, &kv(format!("in-{i}"), format!("in-{i}")))?;
        }
        rdk::flush_all_acked(&producer, &log, 25)?;
    }

    // Consume 20, write them transformed, send the offsets, commit, crash.
    let consumer = rdk::consumer(&bootstrap, &[("group.id", group), ("isolation.level", "read_committed")])?;
    let out = consume_input(&consumer, input, 0, 20)?;
    let producer = txn_producer(&bootstrap, id, &[])?;
    producer.begin_transaction()?;
    for (i, record) in out.iter().enumerate() {
        rdk::send(&producer, output, (i % 2) as i32, i, record)?;
    }
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset(input, 0, Offset::Offset(20))?;
    let metadata = consumer.group_metadata().context("the consumer has no group metadata")?;
    producer.send_offsets_to_transaction(&offsets, &metadata, OP_TIMEOUT).context("send_offsets_to_transaction")?;
    producer.commit_transaction(OP_TIMEOUT).context("commit_transaction")?;
    broker.kill9()?;
    drop(producer);
    drop(consumer);
    broker.start_again().context("starting after kill -9")?;
    let bootstrap = broker.bootstrap();

    // The transaction completes (its markers are written if the crash came first).
    let completed = wait_txn_state(&bootstrap, id, "CompleteCommit")?;
    for partition in 0..2 {
        let mut last = (0, 0);
        ensure!(
            wait_until(Duration::from_secs(30), || {
                if let Ok(now) = lso_and_hw(&bootstrap, output, partition) {
                    last = now;
                }
                last.0 == last.1 && last.1 > 10
            }),
            "{output}/{partition}: (LSO, HW) {last:?} 30 s after the restart: the transaction did not complete"
        );
    }
    let reader = offsets_reader(&bootstrap, group)?;
    let committed = committed_offsets(&reader, group, input, 1)?;
    ensure!(committed == vec![20], "committed offsets {committed:?} after the crash, expected [20]");
    let (records, _) = read_all(&bootstrap, output, 2, "read_committed")?;
    let mut keys: Vec<String> = records.iter().map(Got::key_str).collect();
    keys.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("in-{i}")).collect();
    expected.sort();
    ensure!(keys == expected, "read_committed after the crash sees {keys:?}");

    // The next producer of the id: the same producer id, the epoch bumped, and it commits.
    let producer = txn_producer(&bootstrap, id, &[])?;
    let bumped = describe_txn(&bootstrap, id)?;
    ensure!(
        bumped.producer_id == completed.producer_id
            && bumped.producer_epoch == completed.producer_epoch + 1
            && bumped.transaction_state == "Empty",
        "after init_transactions: {} producer {}/epoch {}, expected Empty {}/{}",
        bumped.transaction_state,
        bumped.producer_id,
        bumped.producer_epoch,
        completed.producer_id,
        completed.producer_epoch + 1
    );
    let consumer = rdk::consumer(&bootstrap, &[("group.id", group), ("isolation.level", "read_committed")])?;
    let out = consume_input(&consumer, input, committed[0], 5)?;
    producer.begin_transaction()?;
    for (i, record) in out.iter().enumerate() {
        rdk::send(&producer, output, (i % 2) as i32, i, record)?;
    }
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset(input, 0, Offset::Offset(25))?;
    let metadata = consumer.group_metadata().context("the consumer has no group metadata")?;
    producer.send_offsets_to_transaction(&offsets, &metadata, OP_TIMEOUT).context("send_offsets_to_transaction")?;
    producer.commit_transaction(OP_TIMEOUT).context("second commit_transaction")?;
    let committed = committed_offsets(&reader, group, input, 1)?;
    ensure!(committed == vec![25], "committed offsets {committed:?} after the second commit, expected [25]");
    settled(&bootstrap, output, 2)?;
    let (records, _) = read_all(&bootstrap, output, 2, "read_committed")?;
    ensure!(records.len() == 25, "read_committed sees {} records after the second commit, expected 25", records.len());
    Ok(())
}
