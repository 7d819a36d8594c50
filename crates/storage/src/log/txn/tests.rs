use std::fs;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{
    split_record_set, validate_batch, ControlRecordKey, ControlRecordType, EndTxnMarker, RecordBatch,
    RecordBatchBuilder, NO_SEQUENCE,
};
use gregor_protocol::ErrorCode;

use super::*;
use crate::config::{LogConfig, TopicPartition};
use crate::io::OsFileIo;
use crate::log::OpenOptions;
use crate::segment::file_name;
use crate::txn_index::TXN_INDEX_SUFFIX;

const NOW: i64 = 1_700_000_000_000;

fn open_at(dir: &Path, config: LogConfig, clean: bool, recovery_point: i64) -> Log {
    let options = OpenOptions { recovery_point, log_start_offset: None, clean_shutdown: clean, now_ms: NOW };
    Log::open(Arc::new(OsFileIo), &dir.join("t-0"), TopicPartition::new("t", 0), config, options).unwrap()
}

fn open(dir: &Path) -> Log {
    open_at(dir, LogConfig::default(), true, 0)
}

/// `n` records from producer `pid`, transactional or not, keyed `k<i>`.
fn records(pid: i64, epoch: i16, seq: i32, n: usize, transactional: bool) -> BytesMut {
    let mut b = RecordBatchBuilder::new(0).producer(pid, epoch, seq).transactional(transactional);
    for i in 0..n {
        b.append(NOW, Some(Bytes::from(format!("k{i}"))), Some(Bytes::from(vec![b'v'; 50])), vec![]).unwrap();
    }
    BytesMut::from(&b.build().unwrap()[..])
}

fn txn(log: &Log, pid: i64, epoch: i16, seq: i32, n: usize) -> (i64, i64) {
    let info = log.append_as_leader(records(pid, epoch, seq, n, true), 0, NOW).unwrap();
    (info.base_offset, info.last_offset)
}

fn plain(log: &Log, n: usize) -> i64 {
    let info = log.append_as_leader(records(-1, -1, NO_SEQUENCE, n, false), 0, NOW).unwrap();
    info.base_offset
}

fn marker(pid: i64, epoch: i16, coordinator_epoch: i32, commit: bool) -> TxnMarker {
    TxnMarker { producer_id: pid, producer_epoch: epoch, coordinator_epoch, commit }
}

fn end(log: &Log, pid: i64, epoch: i16, commit: bool) -> i64 {
    log.append_transaction_marker(marker(pid, epoch, 0, commit), 0, NOW).unwrap().base_offset
}

fn aborted(pid: i64, first_offset: i64) -> AbortedTxn {
    AbortedTxn { producer_id: pid, first_offset }
}

fn txn_index_path(log: &Log, base: i64) -> std::path::PathBuf {
    log.dir().join(file_name(base, TXN_INDEX_SUFFIX))
}

fn txn_index_files(log: &Log) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(log.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(TXN_INDEX_SUFFIX))
        .collect();
    names.sort();
    names
}

fn batch_at(log: &Log, offset: i64) -> RecordBatch {
    let info = log.read(offset, 1 << 20, true, i64::MAX).unwrap();
    RecordBatch::new(split_record_set(info.records).next().unwrap().unwrap()).unwrap()
}

#[test]
fn transactional_appends_hold_the_lso_until_the_commit_marker() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    assert_eq!(plain(&log, 2), 0);
    assert_eq!(log.last_stable_offset(), 2);
    assert_eq!(txn(&log, 7, 0, 0, 3), (2, 4));
    assert_eq!((log.high_watermark(), log.last_stable_offset()), (5, 2));
    assert_eq!(txn(&log, 7, 0, 3, 2), (5, 6));
    plain(&log, 1);
    assert_eq!((log.log_end_offset(), log.last_stable_offset()), (8, 2), "later data does not move the LSO");
    let state = log.producer_states();
    assert_eq!(state[0].current_txn_start_offset, 2);
    // A read_committed fetch bounded by the LSO stops before the transaction.
    let info = log.read(0, 1 << 20, true, log.last_stable_offset()).unwrap();
    assert_eq!(split_record_set(info.records).count(), 1);
    assert_eq!(info.last_stable_offset, 2);

    let commit = log.append_transaction_marker(marker(7, 0, 3, true), 0, NOW).unwrap();
    assert_eq!((commit.base_offset, commit.last_offset, commit.records_count), (8, 8, 1));
    assert_eq!((log.log_end_offset(), log.last_stable_offset()), (9, 9));
    let state = log.producer_states();
    assert_eq!((state[0].current_txn_start_offset, state[0].coordinator_epoch), (-1, 3));
    assert_eq!(state[0].last_sequence, 4, "the marker keeps the sequence");
    assert!(log.aborted_transactions(0, i64::MAX).is_empty());
    assert!(txn_index_files(&log).is_empty(), "commits index nothing");
    // The producer goes on with its next transaction.
    assert_eq!(txn(&log, 7, 0, 5, 1), (9, 9));
    assert_eq!(log.last_stable_offset(), 9);
    // The LSO follows a lowered high watermark and comes back with it.
    log.append_transaction_marker(marker(7, 0, 3, true), 0, NOW).unwrap();
    log.set_high_watermark(5);
    assert_eq!(log.last_stable_offset(), 5);
    log.set_high_watermark(11);
    assert_eq!(log.last_stable_offset(), 11);
}

#[test]
fn an_abort_adds_exactly_one_entry_in_kafkas_layout() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    txn(&log, 0x0102_0304_0506_0708, 2, 0, 3);
    assert_eq!(log.last_stable_offset(), 0);
    assert_eq!(end(&log, 0x0102_0304_0506_0708, 2, false), 3);
    assert_eq!(log.last_stable_offset(), 4);
    let bytes = fs::read(txn_index_path(&log, 0)).unwrap();
    let mut expected = vec![0u8, 0];
    expected.extend_from_slice(&0x0102_0304_0506_0708i64.to_be_bytes());
    expected.extend_from_slice(&0i64.to_be_bytes()); // first offset
    expected.extend_from_slice(&3i64.to_be_bytes()); // last offset: the marker
    expected.extend_from_slice(&4i64.to_be_bytes()); // LSO after the abort
    assert_eq!(bytes, expected);
    assert_eq!(log.aborted_transactions(0, 4), vec![aborted(0x0102_0304_0506_0708, 0)]);

    // A retried marker (no open transaction) is written but indexes nothing.
    assert_eq!(end(&log, 0x0102_0304_0506_0708, 2, false), 4);
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(fs::read(txn_index_path(&log, 0)).unwrap().len(), 34);
    assert_eq!(log.aborted_transactions(0, i64::MAX).len(), 1);
    // So is a marker for a producer the partition never saw.
    assert_eq!(end(&log, 99, 0, false), 5);
    assert_eq!(log.aborted_transactions(0, i64::MAX).len(), 1);
}

#[test]
fn interleaved_producers_and_the_overlap_rules() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    assert_eq!(txn(&log, 1, 0, 0, 2), (0, 1));
    assert_eq!(txn(&log, 2, 0, 0, 2), (2, 3));
    assert_eq!(txn(&log, 1, 0, 2, 1), (4, 4));
    assert_eq!(log.last_stable_offset(), 0);
    assert_eq!(end(&log, 1, 0, false), 5);
    assert_eq!(log.last_stable_offset(), 2, "producer 2's transaction is still open");
    let entries = log.dir().join(file_name(0, TXN_INDEX_SUFFIX));
    let bytes = fs::read(entries).unwrap();
    assert_eq!(bytes[26..34], 2i64.to_be_bytes(), "the entry records the LSO after the abort");
    assert_eq!(end(&log, 2, 0, true), 6);
    assert_eq!(log.last_stable_offset(), 7);
    assert_eq!(txn(&log, 2, 0, 2, 2), (7, 8));
    assert_eq!(end(&log, 2, 0, false), 9);

    assert_eq!(log.aborted_transactions(0, 10), vec![aborted(1, 0), aborted(2, 7)]);
    assert_eq!(log.aborted_transactions(5, 7), vec![aborted(1, 0)], "the marker offset still overlaps");
    assert!(log.aborted_transactions(6, 7).is_empty(), "ended before the fetch offset, starts at the bound");
    assert_eq!(log.aborted_transactions(6, 8), vec![aborted(2, 7)]);
    assert!(log.aborted_transactions(0, 0).is_empty());
}

#[test]
fn aborted_transactions_are_found_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    txn(&log, 1, 0, 0, 2); // 0-1
    log.roll(NOW).unwrap(); // segment at 2
    txn(&log, 1, 0, 2, 2); // 2-3
    end(&log, 1, 0, false); // 4: the entry goes to segment 2
    txn(&log, 2, 0, 0, 1); // 5
    log.roll(NOW).unwrap(); // segment at 6
    end(&log, 2, 0, false); // 6
    plain(&log, 2); // 7-8
    log.roll(NOW).unwrap(); // segment at 9
    txn(&log, 3, 0, 0, 1); // 9
    end(&log, 3, 0, true); // 10
    txn(&log, 3, 0, 1, 1); // 11
    end(&log, 3, 0, false); // 12
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 6, 9]);
    assert_eq!(
        txn_index_files(&log),
        vec![file_name(2, TXN_INDEX_SUFFIX), file_name(6, TXN_INDEX_SUFFIX), file_name(9, TXN_INDEX_SUFFIX)]
    );

    // From segment 0, which has no index of its own, the scan goes on.
    assert_eq!(log.aborted_transactions(0, 13), vec![aborted(1, 0), aborted(2, 5), aborted(3, 11)]);
    assert_eq!(log.aborted_transactions(7, 13), vec![aborted(3, 11)]);
    assert_eq!(log.aborted_transactions(5, 7), vec![aborted(2, 5)]);
    // The scan stops once an entry's LSO reaches the bound.
    assert_eq!(
        log.aborted_transactions(0, 5),
        vec![aborted(1, 0), aborted(2, 5)].into_iter().take(1).collect::<Vec<_>>()
    );
    assert_eq!(log.aborted_transactions(12, 13), vec![aborted(3, 11)]);
    assert!(log.aborted_transactions(13, 13).is_empty());
}

#[test]
fn stale_epochs_and_coordinators_are_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    txn(&log, 1, 0, 0, 2);
    // The coordinator fences the producer: abort with the bumped epoch.
    let abort = log.append_transaction_marker(marker(1, 1, 4, false), 0, NOW).unwrap();
    assert_eq!(abort.base_offset, 2);
    assert_eq!(log.aborted_transactions(0, 3), vec![aborted(1, 0)]);
    assert_eq!(log.last_stable_offset(), 3);
    // The zombie's next transactional batch is fenced.
    let e = log.append_as_leader(records(1, 0, 2, 1, true), 0, NOW).unwrap_err();
    assert!(matches!(e, AppendError::InvalidProducerEpoch { producer_id: 1, epoch: 0, current_epoch: 1 }), "{e}");
    assert_eq!(e.error_code(), ErrorCode::InvalidProducerEpoch);
    // So is a marker with the old epoch.
    let e = log.append_transaction_marker(marker(1, 0, 4, true), 0, NOW).unwrap_err();
    assert_eq!(e.error_code(), ErrorCode::InvalidProducerEpoch);
    // A marker from an older coordinator.
    let e = log.append_transaction_marker(marker(1, 1, 3, true), 0, NOW).unwrap_err();
    assert_eq!(e.error_code(), ErrorCode::TransactionCoordinatorFenced);
    assert_eq!(log.log_end_offset(), 3, "refused markers write nothing");
    // The new epoch starts at sequence 0; a plain write inside its transaction is refused.
    assert_eq!(txn(&log, 1, 1, 0, 1), (3, 3));
    let e = log.append_as_leader(records(1, 1, 1, 1, false), 0, NOW).unwrap_err();
    assert_eq!(e.error_code(), ErrorCode::InvalidTxnState);
    assert_eq!(log.last_stable_offset(), 3);
    let state = log.producer_states();
    assert_eq!((state[0].producer_epoch, state[0].coordinator_epoch, state[0].current_txn_start_offset), (1, 4, 3));
}

#[test]
fn markers_are_kafka_control_batches_clients_may_not_send() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    txn(&log, 5, 3, 0, 1);
    log.append_transaction_marker(marker(5, 3, 17, true), 9, NOW + 1).unwrap();
    log.append_transaction_marker(marker(5, 3, 17, false), 9, NOW + 2).unwrap();
    for (offset, record_type) in [(1, ControlRecordType::Commit), (2, ControlRecordType::Abort)] {
        let batch = batch_at(&log, offset);
        validate_batch(batch.as_bytes()).unwrap();
        let h = *batch.header();
        assert!(h.is_control() && h.is_transactional());
        assert_eq!((h.base_offset, h.records_count, h.last_offset_delta), (offset, 1, 0));
        assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (5, 3, NO_SEQUENCE));
        assert_eq!(h.partition_leader_epoch, 9);
        assert_eq!(h.max_timestamp, NOW + offset);
        let records = batch.records(1 << 20).unwrap();
        let [record] = records.as_slice() else { panic!("one record") };
        let key = record.key.as_deref().unwrap();
        assert_eq!(key.len(), 4);
        assert_eq!(ControlRecordKey::decode(key).unwrap(), ControlRecordKey { version: 0, record_type });
        let value = record.value.as_deref().unwrap();
        assert_eq!(value, [0, 0, 0, 0, 0, 17]);
        assert_eq!(EndTxnMarker::decode(value).unwrap(), EndTxnMarker { version: 0, coordinator_epoch: 17 });
        let decoded = gregor_protocol::records::decode_transaction_marker(&batch).unwrap();
        assert_eq!(decoded.coordinator_epoch, 17);

        // The same bytes from a client are refused.
        let e = log.append_as_leader(BytesMut::from(&batch.as_bytes()[..]), 0, NOW).unwrap_err();
        assert_eq!(e.error_code(), ErrorCode::InvalidRecord);
    }
    assert_eq!(log.latest_epoch(), Some(9));
    assert!(log.append_transaction_marker(marker(-1, 0, 0, true), 0, NOW).is_err());
}

#[test]
fn retention_and_delete_records_remove_txn_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_ms: 1000, ..LogConfig::default() };
    let log = open_at(dir.path(), config, true, 0);
    txn(&log, 1, 0, 0, 1); // 0
    end(&log, 1, 0, false); // 1
    log.roll(NOW).unwrap();
    txn(&log, 2, 0, 0, 1); // 2
    end(&log, 2, 0, false); // 3
    log.roll(NOW).unwrap();
    txn(&log, 3, 0, 0, 1); // 4
    end(&log, 3, 0, false); // 5
    log.roll(NOW).unwrap();
    plain(&log, 1); // 6
    assert_eq!(txn_index_files(&log).len(), 3);

    assert_eq!(log.delete_records_before(2).unwrap(), 2);
    assert_eq!(txn_index_files(&log), vec![file_name(2, TXN_INDEX_SUFFIX), file_name(4, TXN_INDEX_SUFFIX)]);
    assert_eq!(log.aborted_transactions(2, 7), vec![aborted(2, 2), aborted(3, 4)]);

    // Time retention (the records are stamped NOW) takes the rest, the expired active
    // segment too, after rolling an empty one at the log end.
    assert_eq!(log.enforce_retention(NOW + 10_000).unwrap(), 3);
    assert!(txn_index_files(&log).is_empty());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (7, 7));
    assert!(log.aborted_transactions(7, 7).is_empty());
}

/// Everything transactional a log exposes, for comparisons across reopen.
#[derive(Debug, PartialEq)]
struct TxnState {
    log_end_offset: i64,
    last_stable_offset: i64,
    producers: Vec<crate::ProducerStateEntry>,
    aborted: Vec<AbortedTxn>,
    index_files: Vec<(String, Vec<u8>)>,
}

fn txn_state(log: &Log) -> TxnState {
    TxnState {
        log_end_offset: log.log_end_offset(),
        last_stable_offset: log.last_stable_offset(),
        producers: log.producer_states(),
        aborted: log.aborted_transactions(0, i64::MAX),
        index_files: txn_index_files(log)
            .into_iter()
            .map(|n| (n.clone(), fs::read(log.dir().join(&n)).unwrap()))
            .collect(),
    }
}

/// Several segments, aborts and commits, and two transactions left open.
fn fill(log: &Log) {
    txn(log, 1, 0, 0, 2); // 0-1
    plain(log, 1); // 2
    txn(log, 2, 0, 0, 1); // 3
    log.roll(NOW).unwrap();
    end(log, 1, 0, false); // 4
    txn(log, 1, 0, 2, 1); // 5
    end(log, 2, 0, true); // 6
    log.roll(NOW).unwrap();
    end(log, 1, 0, false); // 7
    txn(log, 3, 0, 0, 2); // 8-9
    txn(log, 2, 0, 1, 1); // 10
    log.roll(NOW).unwrap();
    end(log, 3, 0, false); // 11
    txn(log, 4, 0, 0, 1); // 12
    plain(log, 1); // 13
}

#[test]
fn an_unclean_reopen_rebuilds_open_transactions_the_lso_and_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let log = open(dir.path());
        fill(&log);
        log.flush().unwrap();
        let state = txn_state(&log);
        assert_eq!(state.last_stable_offset, 10);
        assert_eq!(state.aborted, vec![aborted(1, 0), aborted(1, 5), aborted(3, 8)]);
        assert_eq!(state.index_files.len(), 3);
        state
        // Dropped without close: no snapshot at the log end.
    };
    // Everything recovered, from the first segment.
    let log = open_at(dir.path(), LogConfig::default(), false, 0);
    assert_eq!(txn_state(&log), before);
    drop(log);
    // Recovery from the middle: earlier indexes are trusted, later ones rebuilt.
    let log = open_at(dir.path(), LogConfig::default(), false, 7);
    assert_eq!(txn_state(&log), before);
    drop(log);
    // A damaged or missing index of a segment below the recovery point is rebuilt too.
    let path = dir.path().join("t-0").join(file_name(4, TXN_INDEX_SUFFIX));
    let mut bytes = fs::read(&path).unwrap();
    bytes.truncate(20);
    fs::write(&path, bytes).unwrap();
    let log = open_at(dir.path(), LogConfig::default(), true, 0);
    assert_eq!(txn_state(&log), before);
    // The rebuilt state goes on: commit both open transactions.
    end(&log, 2, 0, true);
    assert_eq!(log.last_stable_offset(), 12);
    end(&log, 4, 0, true);
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
}

#[test]
fn a_clean_reopen_restores_open_transactions_from_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let log = open(dir.path());
        fill(&log);
        log.close().unwrap();
        txn_state(&log)
    };
    let log = open(dir.path());
    assert_eq!(txn_state(&log), before);
    let p2 = log.producer_states().into_iter().find(|p| p.producer_id == 2).unwrap();
    assert_eq!(p2.current_txn_start_offset, 10);
    end(&log, 2, 0, false);
    assert_eq!(log.aborted_transactions(10, 16), vec![aborted(3, 8), aborted(2, 10)]);
    assert_eq!(log.last_stable_offset(), 12);
}

#[test]
fn compaction_keeps_transactional_data_and_moves_txn_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 256,
        cleanup_policy_compact: true,
        cleanup_policy_delete: false,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    };
    let log = open_at(dir.path(), config.clone(), true, 0);
    let put = |log: &Log, key: &str| {
        let mut b = RecordBatchBuilder::new(0);
        b.append(NOW, Some(Bytes::from(key.to_string())), Some(Bytes::from(vec![b'x'; 200])), vec![]).unwrap();
        log.append_as_leader(BytesMut::from(&b.build().unwrap()[..]), 0, NOW).unwrap();
    };
    for round in 0..6i32 {
        put(&log, "a");
        put(&log, "b");
        txn(&log, 1, 0, round, 1);
        end(&log, 1, 0, round % 2 == 0);
    }
    put(&log, "a");
    log.roll(NOW).unwrap();
    put(&log, "c");
    let before = txn_state(&log);
    assert_eq!(before.aborted.len(), 3);
    let stats = log.compact(NOW).unwrap();
    assert!(stats.records_removed > 0 && stats.segments_rewritten > 0, "{stats:?}");
    let after = txn_state(&log);
    assert_eq!(after.aborted, before.aborted);
    assert_eq!((after.last_stable_offset, &after.producers), (before.last_stable_offset, &before.producers));
    let merged: Vec<u8> = before.index_files.iter().flat_map(|(_, b)| b.clone()).collect();
    let merged_after: Vec<u8> = after.index_files.iter().flat_map(|(_, b)| b.clone()).collect();
    assert_eq!(merged_after, merged, "entries are carried over unchanged");
    // Every txn index file belongs to a live segment.
    let bases = log.segment_base_offsets();
    for (name, _) in &after.index_files {
        assert!(bases.iter().any(|&b| file_name(b, TXN_INDEX_SUFFIX) == *name), "{name} is orphaned");
    }
    // Transactional batches and markers are all still there.
    let mut offset = 0;
    let mut transactional = 0;
    while offset < log.log_end_offset() {
        let batch = batch_at(&log, offset);
        transactional += usize::from(batch.header().is_transactional());
        offset = batch.header().last_offset() + 1;
    }
    assert_eq!(transactional, 12);

    // A second cleaning merges the now small segments: their entries are concatenated.
    put(&log, "a");
    log.roll(NOW).unwrap();
    put(&log, "d");
    log.compact(NOW).unwrap();
    let merged_state = txn_state(&log);
    assert!(merged_state.index_files.len() < after.index_files.len(), "{:?}", log.segment_base_offsets());
    assert_eq!(merged_state.aborted, before.aborted);
    let bytes: Vec<u8> = merged_state.index_files.iter().flat_map(|(_, b)| b.clone()).collect();
    assert_eq!(bytes, merged);
    let after = merged_state;
    let names: Vec<String> =
        fs::read_dir(log.dir()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(
        names.iter().all(|n| !n.contains(".cleaned") && !n.contains(".swap") && !n.contains(".deleted")),
        "{names:?}"
    );
    drop(log);
    for (clean, recovery_point) in [(true, 0), (false, 0)] {
        let log = open_at(dir.path(), config.clone(), clean, recovery_point);
        assert_eq!(txn_state(&log).aborted, before.aborted, "clean {clean}");
        assert_eq!(txn_state(&log).index_files, after.index_files, "clean {clean}");
    }

    // A crash mid-swap: the output is still `.log.swap` and its txn index is
    // not in place. The open completes the swap and rebuilds the index.
    let (name, _) = after.index_files.iter().find(|(_, b)| b.len() > 34).unwrap();
    let base: i64 = name.trim_end_matches(TXN_INDEX_SUFFIX).parse().unwrap();
    let part = dir.path().join("t-0");
    fs::rename(part.join(file_name(base, ".log")), part.join(format!("{}.swap", file_name(base, ".log")))).unwrap();
    fs::rename(part.join(name), part.join(format!("{name}.swap"))).unwrap();
    let log = open_at(dir.path(), config.clone(), true, 0);
    let reopened = txn_state(&log);
    assert_eq!(reopened.aborted, before.aborted);
    assert_eq!(reopened.index_files, after.index_files);
}

#[test]
fn only_a_batch_that_opens_a_transaction_is_verified_and_a_refusal_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let asked = std::cell::RefCell::new(Vec::new());
    let allow = std::cell::Cell::new(false);
    let verify = |pid: i64, epoch: i16| {
        asked.borrow_mut().push((pid, epoch));
        if allow.get() {
            Ok(())
        } else {
            Err(AppendError::TransactionVerification {
                producer_id: pid,
                error: ErrorCode::InvalidTxnState,
                message: "not in the transaction".into(),
            })
        }
    };
    let append = |seq: i32, transactional: bool| {
        log.append_as_leader_verified(records(7, 0, seq, 2, transactional), 0, NOW, Some(&verify), false)
    };

    // Refused: nothing is written and no transaction is opened.
    let refused = append(0, true).unwrap_err();
    assert_eq!(refused.error_code(), ErrorCode::InvalidTxnState);
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.last_stable_offset(), 0);

    // Confirmed once; later batches of the open transaction are not asked about.
    allow.set(true);
    append(0, true).unwrap();
    append(2, true).unwrap();
    assert_eq!(*asked.borrow(), vec![(7, 0), (7, 0)]);

    // The marker closes it: the next transaction is verified again, and a
    // late batch the coordinator does not know about cannot reopen one.
    end(&log, 7, 0, false);
    allow.set(false);
    let end_offset = log.log_end_offset();
    assert!(append(4, true).is_err());
    assert_eq!(log.log_end_offset(), end_offset);
    assert_eq!(asked.borrow().len(), 3);

    // Idempotent, non-transactional batches are never verified.
    log.append_as_leader_verified(records(8, 0, 0, 1, false), 0, NOW, Some(&verify), false).unwrap();
    assert_eq!(asked.borrow().len(), 3);
}
