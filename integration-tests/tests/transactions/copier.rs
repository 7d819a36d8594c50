//! The exactly-once copier under broker `kill -9`s (see the crate docs in `main.rs`).

use super::helpers::*;
use anyhow::{anyhow, ensure, Context, Result};
use gregor_integration_tests::rdk::{self};
use gregor_integration_tests::{wait_until, BrokerProcess};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
