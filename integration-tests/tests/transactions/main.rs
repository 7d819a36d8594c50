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

mod copier;
mod helpers;

use anyhow::{bail, ensure, Context, Result};
use gregor_integration_tests::rdk::{self, TestRecord};
use gregor_integration_tests::{wait_until, BrokerProcess};
use helpers::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

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
