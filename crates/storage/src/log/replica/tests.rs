use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{
    build_transaction_marker_batch, split_record_set, RecordBatch, RecordBatchBuilder, RecordBatchHeader,
    TransactionMarker, TransactionResult,
};

use super::super::{Log, OpenOptions, TxnMarker};
use crate::config::{LogConfig, TopicPartition};
use crate::error::AppendError;
use crate::io::{FaultyFileIo, FileIo, OsFileIo};

const NOW: i64 = 1_700_000_000_000;

/// A batch as a leader wrote it: `count` records from `base`, in `epoch`.
fn leader_batch(base: i64, count: usize, epoch: i32, producer: Option<(i64, i16, i32)>) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(base).partition_leader_epoch(epoch);
    if let Some((pid, producer_epoch, seq)) = producer {
        b = b.producer(pid, producer_epoch, seq);
    }
    for i in 0..count {
        b.append(
            NOW + base + i as i64,
            Some(Bytes::from(format!("k{base}-{i}"))),
            Some(Bytes::from(vec![b'v'; 90])),
            vec![],
        )
        .unwrap();
    }
    b.build().unwrap().to_vec()
}

fn txn_batch(base: i64, count: usize, epoch: i32, pid: i64) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(base).partition_leader_epoch(epoch).producer(pid, 0, 0).transactional(true);
    for i in 0..count {
        b.append(NOW, Some(Bytes::from(format!("t{i}"))), Some(Bytes::from_static(b"x")), vec![]).unwrap();
    }
    b.build().unwrap().to_vec()
}

fn marker_batch(offset: i64, epoch: i32, pid: i64, commit: bool) -> Vec<u8> {
    let result = if commit { TransactionResult::Commit } else { TransactionResult::Abort };
    let mut bytes = BytesMut::from(
        &build_transaction_marker_batch(offset, pid, 0, NOW, TransactionMarker { result, coordinator_epoch: 0 })
            .unwrap()[..],
    );
    let mut batch = gregor_protocol::records::ValidatedBatchMut::new(&mut bytes).unwrap();
    batch.set_partition_leader_epoch(epoch).unwrap();
    bytes.to_vec()
}

fn open_with(dir: &Path, config: LogConfig, clean: bool, io: Arc<dyn FileIo>, log_start: Option<i64>) -> Log {
    let options = OpenOptions { recovery_point: 0, log_start_offset: log_start, clean_shutdown: clean, now_ms: NOW };
    Log::open(io, &dir.join("r-0"), TopicPartition::new("r", 0), config, options).unwrap()
}

fn open(dir: &Path, config: LogConfig) -> Log {
    open_with(dir, config, true, Arc::new(OsFileIo), None)
}

fn small_segments() -> LogConfig {
    LogConfig { segment_bytes: 1024, index_interval_bytes: 128, ..LogConfig::default() }
}

/// (base, last, epoch) of every batch from `from` to the log end, read batch by batch.
fn read_all(log: &Log, from: i64) -> Vec<(i64, i64, i32)> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let records = log.read(offset, 1 << 20, true, i64::MAX).unwrap().records;
        let headers: Vec<RecordBatchHeader> =
            split_record_set(records).map(|b| *RecordBatch::new(b.unwrap()).unwrap().header()).collect();
        let Some(last) = headers.last() else { break };
        offset = last.last_offset() + 1;
        out.extend(headers.iter().map(|h| (h.base_offset, h.last_offset(), h.partition_leader_epoch)));
    }
    out
}

/// Appends `count` one-record batches from the log end, in `epoch` (the metadata quorum's use).
fn append_entries(log: &Log, count: usize, epoch: i32) {
    for _ in 0..count {
        let base = log.log_end_offset();
        log.append_as_follower(&leader_batch(base, 1, epoch, None), NOW).unwrap();
    }
}

#[test]
fn follower_appends_keep_the_leaders_offsets_epochs_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    let mut set = leader_batch(0, 3, 2, None);
    set.extend(leader_batch(3, 2, 4, None));
    let info = log.append_as_follower(&set, NOW).unwrap();
    assert_eq!((info.base_offset, info.last_offset, info.records_count), (0, 4, 5));
    assert_eq!(log.log_end_offset(), 5);
    // Exactly the leader's bytes: offsets, epochs, timestamps and CRCs untouched.
    assert_eq!(&log.read(0, 1 << 20, true, i64::MAX).unwrap().records[..], &set[..]);
    assert_eq!(log.latest_epoch(), Some(4));
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 3)));
    assert_eq!(log.end_offset_for_epoch(3), Some((2, 3)));
    assert_eq!(log.end_offset_for_epoch(4), Some((4, 5)));
    // A gap past the log end is accepted, as after a compacted leader.
    log.append_as_follower(&leader_batch(9, 1, 4, None), NOW).unwrap();
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(read_all(&log, 0), vec![(0, 2, 2), (3, 4, 4), (9, 9, 4)]);
}

#[test]
fn follower_appends_refuse_offsets_below_the_end_overlaps_and_bad_crcs() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    append_entries(&log, 3, 1);
    let below = log.append_as_follower(&leader_batch(2, 1, 1, None), NOW);
    assert!(matches!(
        below,
        Err(AppendError::UnexpectedAppendOffset { first_offset: 2, last_offset: 2, log_end_offset: 3 })
    ));
    let mut overlapping = leader_batch(3, 2, 1, None);
    overlapping.extend(leader_batch(4, 1, 1, None));
    assert!(matches!(
        log.append_as_follower(&overlapping, NOW),
        Err(AppendError::OffsetsOutOfOrder { base_offset: 4, previous_last_offset: 4 })
    ));
    let mut damaged = leader_batch(3, 1, 1, None);
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    assert!(matches!(log.append_as_follower(&damaged, NOW), Err(AppendError::Corrupt(_))));
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(read_all(&log, 0).len(), 3);
    assert!(!log.is_offline());
}

#[test]
fn follower_appends_roll_segments_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_segments());
    append_entries(&log, 40, 1);
    assert!(log.segment_count() > 3);
    let before = read_all(&log, 0);
    assert_eq!(before.len(), 40);
    log.close().unwrap();
    drop(log);
    for clean in [true, false] {
        let log = open_with(dir.path(), small_segments(), clean, Arc::new(OsFileIo), None);
        assert_eq!(read_all(&log, 0), before);
        assert_eq!(log.end_offset_for_epoch(1), Some((1, 40)));
    }
}

#[test]
fn follower_appends_carry_producer_state_across_a_leader_change() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    log.append_as_follower(&leader_batch(0, 3, 1, Some((7, 0, 0))), NOW).unwrap();
    // This replica becomes the leader: the producer's next sequence is 3.
    let next = BytesMut::from(&leader_batch(0, 1, 2, Some((7, 0, 3)))[..]);
    assert_eq!(log.append_as_leader(next, 2, NOW).unwrap().base_offset, 3);
    // A retry of the batch the old leader wrote is a duplicate, answered with its offsets.
    let retry = BytesMut::from(&leader_batch(0, 3, 2, Some((7, 0, 0)))[..]);
    let duplicate = log.append_as_leader(retry, 2, NOW).unwrap();
    assert_eq!((duplicate.base_offset, duplicate.last_offset, duplicate.records_count), (0, 2, 0));
    let gap = BytesMut::from(&leader_batch(0, 1, 2, Some((7, 0, 9)))[..]);
    assert!(matches!(log.append_as_leader(gap, 2, NOW), Err(AppendError::OutOfOrderSequence { .. })));
}

#[test]
fn follower_markers_complete_transactions_and_index_aborts() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    let mut set = txn_batch(0, 2, 1, 5);
    set.extend(txn_batch(2, 1, 1, 6));
    log.append_as_follower(&set, NOW).unwrap();
    assert_eq!(log.last_stable_offset(), 0);
    log.append_as_follower(&marker_batch(3, 1, 5, false), NOW).unwrap();
    assert_eq!(log.last_stable_offset(), 2, "producer 6's transaction is still open");
    log.append_as_follower(&marker_batch(4, 1, 6, true), NOW).unwrap();
    assert_eq!(log.last_stable_offset(), 5);
    let aborted = log.aborted_transactions(0, 5);
    assert_eq!(aborted.iter().map(|a| (a.producer_id, a.first_offset)).collect::<Vec<_>>(), vec![(5, 0)]);
    // Truncating the abort marker away drops its index entry and reopens the transaction.
    assert!(log.truncate_to(3).unwrap());
    assert!(log.aborted_transactions(0, 5).is_empty());
    assert_eq!(log.last_stable_offset(), 0);
    let entries = log.producer_states();
    assert_eq!(
        entries.iter().map(|e| (e.producer_id, e.current_txn_start_offset)).collect::<Vec<_>>(),
        [(5, 0), (6, 2)]
    );
    // The leader's marker comes again.
    log.append_as_follower(&marker_batch(3, 2, 5, false), NOW).unwrap();
    assert_eq!(log.aborted_transactions(0, 4).len(), 1);
    // A coordinator marker on this replica, now the leader, completes producer 6.
    log.append_transaction_marker(
        TxnMarker { producer_id: 6, producer_epoch: 0, coordinator_epoch: 0, commit: true },
        3,
        NOW,
    )
    .unwrap();
    assert_eq!(log.last_stable_offset(), 5);
}

#[test]
fn truncate_to_cuts_segments_indexes_and_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_segments());
    append_entries(&log, 20, 1);
    append_entries(&log, 20, 3);
    append_entries(&log, 20, 5);
    let all = read_all(&log, 0);
    let segments_before = log.segment_base_offsets();
    assert!(segments_before.len() > 5);

    assert!(log.truncate_to(25).unwrap());
    assert_eq!((log.log_end_offset(), log.high_watermark()), (25, 25));
    assert_eq!(read_all(&log, 0), all[..25].to_vec());
    assert!(log.read(26, 1 << 20, true, i64::MAX).is_err(), "past the new end");
    assert!(log.read(25, 1 << 20, true, i64::MAX).unwrap().records.is_empty());
    assert!(log.segment_base_offsets().iter().all(|&b| b <= 25));
    assert_eq!(log.latest_epoch(), Some(3));
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 25)));
    assert_eq!(log.end_offset_for_epoch(5), None);
    // Every offset left is found through the indexes.
    for offset in 0..25 {
        let records = log.read(offset, 1, true, i64::MAX).unwrap().records;
        let header = *RecordBatch::new(split_record_set(records).next().unwrap().unwrap()).unwrap().header();
        assert_eq!(header.base_offset, offset);
    }
    // Nothing happens at or past the end.
    assert!(!log.truncate_to(25).unwrap());
    assert!(!log.truncate_to(100).unwrap());
    // The new leader's entries continue from the new end.
    append_entries(&log, 5, 6);
    assert_eq!(log.end_offset_for_epoch(5), Some((3, 25)));
    let expected = read_all(&log, 0);
    log.close().unwrap();
    drop(log);
    for clean in [true, false] {
        let log = open_with(dir.path(), small_segments(), clean, Arc::new(OsFileIo), None);
        assert_eq!(read_all(&log, 0), expected);
        assert_eq!(log.end_offset_for_epoch(3), Some((3, 25)));
        assert_eq!(log.end_offset_for_epoch(6), Some((6, 30)));
    }
}

#[test]
fn truncate_inside_a_batch_removes_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    log.append_as_follower(&leader_batch(0, 4, 1, None), NOW).unwrap();
    log.append_as_follower(&leader_batch(4, 4, 1, None), NOW).unwrap();
    assert!(log.truncate_to(6).unwrap());
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(read_all(&log, 0), vec![(0, 3, 1)]);
    // In a gap (a compacted leader's): the log ends after the last batch left,
    // as a reopen finds it.
    log.append_as_follower(&leader_batch(8, 2, 1, None), NOW).unwrap();
    assert!(log.truncate_to(6).unwrap());
    assert_eq!(log.log_end_offset(), 4);
    log.close().unwrap();
    drop(log);
    let log = open_with(dir.path(), LogConfig::default(), false, Arc::new(OsFileIo), None);
    assert_eq!(log.log_end_offset(), 4);
}

#[test]
fn truncate_rebuilds_producer_state_without_the_snapshots_past_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_segments());
    for seq in 0..30 {
        let base = log.log_end_offset();
        log.append_as_follower(&leader_batch(base, 1, 1, Some((9, 0, seq))), NOW).unwrap();
    }
    // Snapshots were taken at the rolls; those past the cut must go.
    log.sync_rolled().unwrap();
    let before = crate::producer::list_snapshots(log.dir()).unwrap();
    assert!(before.iter().any(|(offset, _)| *offset > 12), "{before:?}");
    assert!(log.truncate_to(12).unwrap());
    let snapshots = crate::producer::list_snapshots(log.dir()).unwrap();
    assert!(snapshots.iter().all(|(offset, _)| *offset <= 12), "{snapshots:?}");
    assert_eq!(log.producer_states()[0].last_sequence, 11);
    let next = BytesMut::from(&leader_batch(0, 1, 2, Some((9, 0, 12)))[..]);
    assert_eq!(log.append_as_leader(next, 2, NOW).unwrap().base_offset, 12);
}

#[test]
fn truncating_below_the_first_segment_starts_over_there() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_segments());
    append_entries(&log, 30, 1);
    log.delete_records_before(20).unwrap();
    let first = log.segment_base_offsets()[0];
    assert!(first > 0);
    assert!(log.truncate_to(first - 1).unwrap());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (first - 1, first - 1));
    assert_eq!(log.segment_base_offsets(), vec![first - 1]);
    assert_eq!(log.latest_epoch(), None);
}

#[test]
fn truncate_fully_starts_an_empty_log_at_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_segments());
    append_entries(&log, 30, 1);
    log.append_as_follower(&leader_batch(30, 2, 1, Some((4, 0, 0))), NOW).unwrap();
    log.sync_rolled().unwrap();
    log.truncate_fully_and_start_at(100).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset(), log.high_watermark()), (100, 100, 100));
    assert_eq!(log.segment_base_offsets(), vec![100]);
    assert!(log.read(100, 1 << 20, true, i64::MAX).unwrap().records.is_empty());
    assert!(log.read(99, 1 << 20, true, i64::MAX).is_err());
    assert_eq!(log.latest_epoch(), None);
    assert!(log.producer_states().is_empty());
    assert!(crate::producer::list_snapshots(log.dir()).unwrap().is_empty());
    assert!(matches!(
        log.append_as_follower(&leader_batch(99, 1, 2, None), NOW),
        Err(AppendError::UnexpectedAppendOffset { .. })
    ));
    append_entries(&log, 3, 2);
    assert!(matches!(log.truncate_fully_and_start_at(-1), Err(AppendError::NegativeTruncationOffset { offset: -1 })));
    drop(log);
    // Unclean, with no log start checkpoint: the first segment says where the log starts.
    let log = open_with(dir.path(), small_segments(), false, Arc::new(OsFileIo), None);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 103));
    assert_eq!(read_all(&log, 100), vec![(100, 100, 2), (101, 101, 2), (102, 102, 2)]);
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 103)));
}

#[test]
fn delete_records_trims_a_follower_log_behind_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_segments());
    append_entries(&log, 30, 1);
    append_entries(&log, 30, 2);
    assert_eq!(log.delete_records_before(35).unwrap(), 35);
    assert!(log.segment_base_offsets()[0] <= 35 && log.segment_base_offsets()[0] > 0);
    assert_eq!(read_all(&log, 35).first(), Some(&(35, 35, 2)));
    assert!(log.read(34, 1 << 20, true, i64::MAX).is_err());
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 35)), "epoch 1 now starts at the log start and ends at 30");
    // Truncation and further appends after the trim.
    assert!(log.truncate_to(50).unwrap());
    append_entries(&log, 4, 3);
    assert_eq!(log.log_end_offset(), 54);
    let expected = read_all(&log, 35);
    log.close().unwrap();
    drop(log);
    let log = open_with(dir.path(), small_segments(), false, Arc::new(OsFileIo), Some(35));
    assert_eq!(log.log_start_offset(), 35);
    assert_eq!(read_all(&log, 35), expected);
    // With an external high watermark, DeleteRecords stops at it.
    log.set_high_watermark_external(true);
    append_entries(&log, 2, 3);
    assert_eq!(log.high_watermark(), 54);
    assert!(log.delete_records_before(55).is_err());
    log.set_high_watermark(56);
    assert_eq!(log.delete_records_before(55).unwrap(), 55);
}

#[test]
fn negative_truncation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    assert!(matches!(log.truncate_to(-1), Err(AppendError::NegativeTruncationOffset { offset: -1 })));
}

/// A write failing at each step of a truncation takes the log offline; a
/// reopen then finds a prefix of the old log no shorter than the cut (nothing
/// past a hole), and the truncation done again gives the expected log. The
/// steps: the head segment's offset index, time index, txn index and log are
/// cut in that order, after the segments past it are deleted.
#[test]
fn a_truncation_interrupted_at_any_step_leaves_a_prefix() {
    for failing in [".index", ".timeindex", ".txnindex", ".log"] {
        let dir = tempfile::tempdir().unwrap();
        let io = FaultyFileIo::new();
        let log = open_with(dir.path(), small_segments(), true, Arc::new(io.clone()), None);
        append_entries(&log, 20, 1);
        // An aborted transaction in the head segment, so that it has a txn index.
        let base = log.log_end_offset();
        log.append_as_follower(&txn_batch(base, 1, 1, 8), NOW).unwrap();
        log.append_as_follower(&marker_batch(base + 1, 1, 8, false), NOW).unwrap();
        let cut = base + 2;
        append_entries(&log, 20, 2);
        let all = read_all(&log, 0);
        let head_base = *log.segment_base_offsets().iter().rev().find(|&&b| b <= cut).unwrap();
        assert!(log.segment_base_offsets().iter().any(|&b| b > cut), "segments to delete past the cut");
        assert_eq!(log.aborted_transactions(head_base, cut).len(), 1);
        io.fail_writes_to(&format!("{}{failing}", crate::segment::file_name(head_base, "")));
        assert!(log.truncate_to(cut).is_err(), "{failing}");
        assert!(log.is_offline(), "{failing}");
        drop(log);
        io.heal();
        let log = open_with(dir.path(), small_segments(), false, Arc::new(OsFileIo), None);
        let end = log.log_end_offset();
        let got = read_all(&log, 0);
        let prefix = all.iter().take_while(|b| b.1 < end).cloned().collect::<Vec<_>>();
        assert!(end >= cut && got == prefix, "{failing}: end {end}");
        assert_eq!(log.end_offset_for_epoch(1).map(|(_, e)| e), Some(if end > cut { cut } else { end }), "{failing}");
        assert_eq!(log.aborted_transactions(head_base, cut).len(), 1, "{failing}");
        log.truncate_to(cut).unwrap();
        assert_eq!(read_all(&log, 0), all.iter().take_while(|b| b.1 < cut).cloned().collect::<Vec<_>>(), "{failing}");
        append_entries(&log, 3, 3);
        assert_eq!(log.log_end_offset(), cut + 3);
        assert_eq!(log.latest_epoch(), Some(3));
    }
}

#[test]
fn follower_appends_honour_the_flush_policy_and_an_external_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyFileIo::new();
    let config = LogConfig { flush_interval_messages: 1, ..LogConfig::default() };
    let log = open_with(dir.path(), config, true, Arc::new(io.clone()), None);
    let syncs = io.sync_count();
    append_entries(&log, 1, 1);
    assert!(io.sync_count() > syncs, "flush.messages=1 syncs every append");
    assert_eq!(log.high_watermark(), 1);
    // A follower's high watermark is the leader's: neither appends nor syncs move it.
    log.set_high_watermark_external(true);
    append_entries(&log, 3, 1);
    log.flush().unwrap();
    assert_eq!((log.log_end_offset(), log.high_watermark()), (4, 1));
    log.set_high_watermark(3);
    assert_eq!(log.high_watermark(), 3);
    assert!(log.truncate_to(2).unwrap());
    assert_eq!((log.log_end_offset(), log.high_watermark()), (2, 2));
}
