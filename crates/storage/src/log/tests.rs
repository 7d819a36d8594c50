use std::fs;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{split_record_set, RecordBatch, RecordBatchBuilder, RecordBatchHeader, TimestampType};
use gregor_protocol::ErrorCode;

use super::*;
use crate::error::{AppendError, ReadError};
use crate::io::{FaultyFileIo, OsFileIo};
use crate::segment::file_name;

const NOW: i64 = 1_700_000_000_000;

fn batch_with(n: usize, ts: i64, value_bytes: usize, producer: Option<(i64, i16, i32)>) -> BytesMut {
    let mut b = RecordBatchBuilder::new(0);
    if let Some((pid, epoch, seq)) = producer {
        b = b.producer(pid, epoch, seq);
    }
    for i in 0..n {
        b.append(ts + i as i64, Some(Bytes::from(format!("k{i}"))), Some(Bytes::from(vec![b'v'; value_bytes])), vec![])
            .unwrap();
    }
    BytesMut::from(&b.build().unwrap()[..])
}

fn batch(n: usize, ts: i64) -> BytesMut {
    batch_with(n, ts, 100, None)
}

fn open_with(dir: &Path, config: LogConfig, clean: bool, io: Arc<dyn FileIo>) -> Log {
    let options = OpenOptions { recovery_point: 0, log_start_offset: None, clean_shutdown: clean, now_ms: NOW };
    Log::open(io, &dir.join("t-0"), TopicPartition::new("t", 0), config, options).unwrap()
}

fn open(dir: &Path, config: LogConfig) -> Log {
    open_with(dir, config, true, Arc::new(OsFileIo))
}

fn headers(records: &Bytes) -> Vec<RecordBatchHeader> {
    split_record_set(records.clone()).map(|b| *RecordBatch::new(b.unwrap()).unwrap().header()).collect()
}

fn read_all(log: &Log, from: i64) -> Vec<RecordBatchHeader> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let info = log.read(offset, 1 << 20, true, i64::MAX).unwrap();
        let hs = headers(&info.records);
        let Some(last) = hs.last() else { break };
        offset = last.last_offset() + 1;
        out.extend(hs);
    }
    out
}

fn small_segments() -> LogConfig {
    LogConfig { segment_bytes: 2048, index_interval_bytes: 256, ..LogConfig::default() }
}

#[test]
fn append_assigns_offsets_and_reads_return_stored_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    let a = log.append_as_leader(batch(3, NOW), 5, NOW).unwrap();
    assert_eq!((a.base_offset, a.last_offset, a.records_count, a.log_append_time_ms), (0, 2, 3, -1));
    let b = log.append_as_leader(batch(2, NOW), 5, NOW).unwrap();
    assert_eq!((b.base_offset, b.last_offset), (3, 4));
    assert_eq!((log.log_end_offset(), log.high_watermark()), (5, 5));

    // From the middle of the first batch: the whole batch comes back, CRC valid.
    let info = log.read(1, 1 << 20, false, i64::MAX).unwrap();
    let hs = headers(&info.records);
    assert_eq!(hs.iter().map(|h| (h.base_offset, h.last_offset())).collect::<Vec<_>>(), vec![(0, 2), (3, 4)]);
    assert!(hs.iter().all(|h| h.partition_leader_epoch == 5));
    assert_eq!(info.high_watermark, 5);
    assert_eq!(log.latest_epoch(), Some(5));
    // At the log end: nothing, no error.
    assert!(log.read(5, 100, true, i64::MAX).unwrap().records.is_empty());
}

#[test]
fn read_bounds_by_bytes_min_one_batch_and_max_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    for _ in 0..3 {
        log.append_as_leader(batch(2, NOW), 0, NOW).unwrap();
    }
    let one = log.read(0, 1, false, i64::MAX).unwrap().records.len();
    assert_eq!(one, 0, "a batch larger than max_bytes is not returned without min_one_batch");
    let forced = log.read(0, 1, true, i64::MAX).unwrap();
    assert_eq!(headers(&forced.records).len(), 1);
    let size = forced.records.len();
    let two = log.read(0, size * 2 + size / 2, false, i64::MAX).unwrap();
    assert_eq!(headers(&two.records).len(), 2, "only whole batches");
    assert_eq!(two.records.len(), size * 2);
    let bounded = log.read(0, 1 << 20, true, 4).unwrap();
    assert_eq!(headers(&bounded.records).iter().map(|h| h.base_offset).collect::<Vec<_>>(), vec![0, 2]);
    assert!(log.read(4, 1 << 20, true, 4).unwrap().records.is_empty());
}

#[test]
fn out_of_range_fetches_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(batch(2, NOW), 0, NOW).unwrap();
    let e = log.read(3, 100, true, i64::MAX).unwrap_err();
    assert_eq!(e.error_code(), ErrorCode::OffsetOutOfRange);
    assert!(matches!(log.read(-1, 100, true, i64::MAX), Err(ReadError::OffsetOutOfRange { .. })));
}

#[test]
fn segments_roll_by_size_and_reads_cross_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_segments());
    for i in 0..40 {
        log.append_as_leader(batch(2, NOW + i), 0, NOW).unwrap();
    }
    assert!(log.segment_count() > 5, "{} segments", log.segment_count());
    let all = read_all(&log, 0);
    assert_eq!(all.len(), 40);
    assert!(all.windows(2).all(|w| w[1].base_offset == w[0].last_offset() + 1));
    for offset in [0, 17, 33, 79] {
        let h = headers(&log.read(offset, 1, true, i64::MAX).unwrap().records);
        assert!(h[0].base_offset <= offset && offset <= h[0].last_offset());
    }
    let names: Vec<String> =
        fs::read_dir(dir.path().join("t-0")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.contains(&file_name(0, ".log")) && names.contains(&file_name(0, ".index")));
    // Producer snapshots of the rolls are written with the rolled segments' sync.
    assert!(!names.iter().any(|n| n.ends_with(".snapshot")));
    log.sync_rolled().unwrap();
    let names: Vec<String> =
        fs::read_dir(dir.path().join("t-0")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().any(|n| n.ends_with(".snapshot")));
}

#[test]
fn segments_roll_by_age_and_full_index() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_ms: 1000, ..LogConfig::default() };
    let log = open(dir.path(), config);
    log.append_as_leader(batch(1, NOW), 0, NOW).unwrap();
    log.append_as_leader(batch(1, NOW), 0, NOW + 500).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append_as_leader(batch(1, NOW), 0, NOW + 1001).unwrap();
    assert_eq!(log.segment_count(), 2);

    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_index_bytes: 16, index_interval_bytes: 1, ..LogConfig::default() };
    let log = open(dir.path(), config);
    for _ in 0..6 {
        log.append_as_leader(batch(1, NOW), 0, NOW).unwrap();
    }
    assert!(log.segment_count() >= 2);
    assert_eq!(read_all(&log, 0).len(), 6);
}

#[test]
fn invalid_batches_are_rejected_with_kafkas_codes() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { max_message_bytes: 1000, ..LogConfig::default() };
    let log = open(dir.path(), config);
    let big = batch(20, NOW);
    assert_eq!(log.append_as_leader(big, 0, NOW).unwrap_err().error_code(), ErrorCode::MessageTooLarge);

    let mut bad = batch(2, NOW);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert_eq!(log.append_as_leader(bad, 0, NOW).unwrap_err().error_code(), ErrorCode::CorruptMessage);

    let mut v1 = batch(1, NOW);
    v1[16] = 1;
    assert_eq!(log.append_as_leader(v1, 0, NOW).unwrap_err().error_code(), ErrorCode::UnsupportedForMessageFormat);

    let mut truncated = batch(1, NOW);
    truncated.truncate(truncated.len() - 3);
    assert_eq!(log.append_as_leader(truncated, 0, NOW).unwrap_err().error_code(), ErrorCode::CorruptMessage);

    let future = batch(1, NOW + 2 * 3_600_000);
    let e = log.append_as_leader(future, 0, NOW).unwrap_err();
    assert_eq!(e.error_code(), ErrorCode::InvalidTimestamp);
    assert_eq!(e.record_errors().len(), 1);

    let mut b = RecordBatchBuilder::new(0).last_offset_delta(5);
    b.append(NOW, None, Some(Bytes::from_static(b"x")), vec![]).unwrap();
    let inconsistent = BytesMut::from(&b.build().unwrap()[..]);
    assert_eq!(log.append_as_leader(inconsistent, 0, NOW).unwrap_err().error_code(), ErrorCode::InvalidRecord);

    let small = LogConfig { segment_bytes: 100, ..LogConfig::default() };
    log.update_config(small);
    assert_eq!(log.append_as_leader(batch(2, NOW), 0, NOW).unwrap_err().error_code(), ErrorCode::RecordListTooLarge);
    assert_eq!(log.log_end_offset(), 0, "nothing was appended");
}

#[test]
fn compacted_topics_need_keys_on_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { cleanup_policy_compact: true, cleanup_policy_delete: false, ..LogConfig::default() };
    let log = open(dir.path(), config);
    let mut b = RecordBatchBuilder::new(0);
    b.append(NOW, Some(Bytes::from_static(b"k")), None, vec![]).unwrap();
    b.append(NOW, None, Some(Bytes::from_static(b"v")), vec![]).unwrap();
    b.append(NOW, None, Some(Bytes::from_static(b"v")), vec![]).unwrap();
    let e = log.append_as_leader(BytesMut::from(&b.build().unwrap()[..]), 0, NOW).unwrap_err();
    assert_eq!(e.error_code(), ErrorCode::InvalidRecord);
    assert_eq!(e.record_errors().iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![1, 2]);
    assert!(log.append_as_leader(batch(2, NOW), 0, NOW).is_ok());
}

#[test]
fn log_append_time_stamps_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { message_timestamp_type: TimestampType::LogAppendTime, ..LogConfig::default() };
    let log = open(dir.path(), config);
    let info = log.append_as_leader(batch(2, 5), 0, NOW).unwrap();
    assert_eq!(info.log_append_time_ms, NOW);
    let h = headers(&log.read(0, 1 << 20, true, i64::MAX).unwrap().records);
    assert_eq!(h[0].timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(h[0].max_timestamp, NOW);
}

#[test]
fn idempotent_producer_duplicates_gaps_and_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    let first = log.append_as_leader(batch_with(3, NOW, 10, Some((42, 0, 0))), 0, NOW).unwrap();
    log.append_as_leader(batch(1, NOW), 0, NOW).unwrap();
    let dup = log.append_as_leader(batch_with(3, NOW, 10, Some((42, 0, 0))), 0, NOW).unwrap();
    assert_eq!((dup.base_offset, dup.last_offset), (first.base_offset, first.last_offset));
    assert_eq!(log.log_end_offset(), 4, "a duplicate is not appended");
    let gap = log.append_as_leader(batch_with(1, NOW, 10, Some((42, 0, 7))), 0, NOW).unwrap_err();
    assert_eq!(gap.error_code(), ErrorCode::OutOfOrderSequenceNumber);
    log.append_as_leader(batch_with(1, NOW, 10, Some((42, 1, 0))), 0, NOW).unwrap();
    let old = log.append_as_leader(batch_with(1, NOW, 10, Some((42, 0, 3))), 0, NOW).unwrap_err();
    assert_eq!(old.error_code(), ErrorCode::InvalidProducerEpoch);
    let states = log.producer_states();
    assert_eq!(states.len(), 1);
    assert_eq!((states[0].producer_id, states[0].producer_epoch, states[0].last_sequence), (42, 1, 0));
    assert_eq!(states[0].current_txn_start_offset, -1);
}

#[test]
fn producer_state_survives_reopen_clean_and_unclean() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), small_segments());
        for seq in 0..10 {
            log.append_as_leader(batch_with(2, NOW, 100, Some((7, 2, seq * 2))), 0, NOW).unwrap();
        }
        if clean {
            log.close().unwrap();
        }
        let before = log.producer_states();
        drop(log);
        let log = open_with(dir.path(), small_segments(), clean, Arc::new(OsFileIo));
        assert_eq!(log.producer_states(), before, "clean={clean}");
        let dup = log.append_as_leader(batch_with(2, NOW, 100, Some((7, 2, 18))), 0, NOW).unwrap();
        assert_eq!(dup.base_offset, 18);
        assert!(log.append_as_leader(batch_with(2, NOW, 100, Some((7, 2, 20))), 0, NOW).is_ok());
    }
}

#[test]
fn retention_by_time_and_size_deletes_the_active_segment_only_when_it_expired() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_ms: 10_000, ..small_segments() };
    let log = open(dir.path(), config);
    for i in 0..30 {
        let ts = if i < 15 { NOW - 100_000 } else { NOW };
        log.append_as_leader(batch(2, ts), 0, NOW).unwrap();
    }
    let segments = log.segment_count();
    let deleted = log.enforce_retention(NOW).unwrap();
    assert!(deleted > 0 && (deleted as usize) < segments);
    assert!(log.log_start_offset() > 0 && log.log_start_offset() <= 30);
    assert_eq!(log.segment_count(), segments - deleted as usize);
    assert!(log.read(0, 100, true, i64::MAX).is_err());
    // Everything expired: as in Kafka, a new empty segment is rolled at the log end
    // and the expired active segment goes too; offsets continue where they were.
    let active_before = log.segment_base_offsets().last().copied();
    assert!(log.enforce_retention(NOW + 1_000_000).unwrap() > 0);
    assert_eq!(log.segment_base_offsets(), vec![60]);
    assert_ne!(active_before, Some(60));
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (60, 60));
    assert_eq!(log.size_bytes(), 0);
    // An empty active segment is never deleted, however old the clock says it is.
    assert_eq!(log.enforce_retention(NOW + 100_000_000).unwrap(), 0);
    assert_eq!(log.append_as_leader(batch(2, NOW), 0, NOW).unwrap().base_offset, 60);
    assert_eq!(read_all(&log, 60).len(), 1);

    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { retention_bytes: 3000, retention_ms: -1, ..small_segments() };
    let log = open(dir.path(), config);
    for _ in 0..30 {
        log.append_as_leader(batch(2, NOW), 0, NOW).unwrap();
    }
    log.enforce_retention(NOW).unwrap();
    assert!(log.size_bytes() <= 3000 + 2048, "{}", log.size_bytes());
    assert!(log.size_bytes() > 3000 - 2048);
    assert_eq!(read_all(&log, log.log_start_offset()).last().map(|h| h.last_offset()), Some(59));
}

#[test]
fn delete_records_moves_the_start_and_drops_whole_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_segments());
    for _ in 0..30 {
        log.append_as_leader(batch(2, NOW), 3, NOW).unwrap();
    }
    let segments = log.segment_count();
    assert_eq!(log.delete_records_before(25).unwrap(), 25);
    assert_eq!(log.log_start_offset(), 25);
    assert!(log.segment_count() < segments);
    let info = log.read(25, 1, true, i64::MAX).unwrap();
    assert_eq!(info.log_start_offset, 25);
    assert!(headers(&info.records)[0].last_offset() >= 25);
    assert!(log.read(24, 1, true, i64::MAX).is_err());
    assert_eq!(log.delete_records_before(10).unwrap(), 25, "never moves back");
    let e = log.delete_records_before(61).unwrap_err();
    assert_eq!(e.error_code(), ErrorCode::OffsetOutOfRange);
    assert_eq!(log.delete_records_before(-1).unwrap(), 60);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 60)));
}

#[test]
fn timestamps_are_found_through_the_time_index() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_segments());
    // Batch i holds timestamps 1000*i and 1000*i + 1.
    for i in 0..30 {
        log.append_as_leader(batch(2, NOW + 1000 * i), 0, NOW).unwrap();
    }
    let hit = log.find_offset_by_timestamp(NOW + 5001).unwrap().unwrap();
    assert_eq!((hit.offset, hit.timestamp_ms, hit.leader_epoch), (11, NOW + 5001, Some(0)));
    let hit = log.find_offset_by_timestamp(NOW + 5002).unwrap().unwrap();
    assert_eq!((hit.offset, hit.timestamp_ms), (12, NOW + 6000));
    assert_eq!(log.find_offset_by_timestamp(0).unwrap().unwrap().offset, 0);
    assert_eq!(log.find_offset_by_timestamp(NOW + 1_000_000).unwrap(), None);
    let max = log.max_timestamp_offset().unwrap().unwrap();
    assert_eq!((max.offset, max.timestamp_ms), (59, NOW + 29_001));
    // After a clean reopen the time index comes from disk.
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), small_segments());
    assert_eq!(log.find_offset_by_timestamp(NOW + 20_000).unwrap().unwrap().offset, 40);
    assert_eq!(log.max_timestamp_offset().unwrap().unwrap().offset, 59);
}

#[test]
fn max_timestamp_points_at_the_record_not_the_batch_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    let mut b = RecordBatchBuilder::new(0);
    for ts in [NOW, NOW + 50, NOW + 10] {
        b.append(ts, Some(Bytes::from_static(b"k")), None, vec![]).unwrap();
    }
    log.append_as_leader(BytesMut::from(&b.build().unwrap()[..]), 0, NOW).unwrap();
    let max = log.max_timestamp_offset().unwrap().unwrap();
    assert_eq!((max.offset, max.timestamp_ms), (1, NOW + 50));
}

#[test]
fn leader_epochs_are_cached_and_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(batch(2, NOW), 1, NOW).unwrap();
    log.append_as_leader(batch(2, NOW), 1, NOW).unwrap();
    log.append_as_leader(batch(2, NOW), 4, NOW).unwrap();
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 4)));
    assert_eq!(log.end_offset_for_epoch(3), Some((1, 4)));
    assert_eq!(log.end_offset_for_epoch(4), Some((4, 6)));
    assert_eq!(log.end_offset_for_epoch(5), None);
    drop(log);
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.latest_epoch(), Some(4));
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 4)));
    let text = fs::read_to_string(dir.path().join("t-0/leader-epoch-checkpoint")).unwrap();
    assert_eq!(text, "0\n2\n1 0\n4 4\n");
}

#[test]
fn flush_messages_one_fsyncs_every_append() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyFileIo::new();
    let config = LogConfig { flush_interval_messages: 1, ..LogConfig::default() };
    let log = open_with(dir.path(), config, true, Arc::new(io.clone()));
    let before = io.sync_count();
    log.append_as_leader(batch(1, NOW), 0, NOW).unwrap();
    let after_one = io.sync_count();
    assert!(after_one > before);
    log.append_as_leader(batch(1, NOW), 0, NOW).unwrap();
    assert!(io.sync_count() > after_one);
    assert_eq!(log.recovery_point(), 2);

    let dir = tempfile::tempdir().unwrap();
    let io = FaultyFileIo::new();
    let log = open_with(dir.path(), LogConfig::default(), true, Arc::new(io.clone()));
    let before = io.sync_count();
    log.append_as_leader(batch(1, NOW), 0, NOW).unwrap();
    assert_eq!(io.sync_count(), before, "default policy leaves fsync to the OS");
    let config = LogConfig { flush_interval_ms: 1000, ..LogConfig::default() };
    log.update_config(config);
    log.flush_if_due(NOW + 10).unwrap();
    assert_eq!(io.sync_count(), before);
    log.flush_if_due(NOW + 1000).unwrap();
    assert!(io.sync_count() > before);
}

#[test]
fn group_commit_syncs_once_for_every_append_it_covers() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyFileIo::new();
    let log = open_with(dir.path(), LogConfig::default(), true, Arc::new(io.clone()));
    for _ in 0..3 {
        log.append_as_leader(batch(1, NOW), 0, NOW).unwrap();
    }
    let before = io.sync_count();
    log.flush_through(3, NOW).unwrap();
    let one_flush = io.sync_count() - before;
    assert!(one_flush > 0);
    assert_eq!(log.recovery_point(), 3);
    // Appends the sync already covered wait for nothing more.
    log.flush_through(1, NOW).unwrap();
    log.flush_through(3, NOW).unwrap();
    assert_eq!(io.sync_count() - before, one_flush);

    // Concurrent durable appends all return synced; they may share syncs.
    let config = LogConfig { flush_interval_messages: 1, ..LogConfig::default() };
    log.update_config(config);
    let appends_per_thread = 25;
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..appends_per_thread {
                    log.append_as_leader(batch(1, NOW), 0, NOW).unwrap();
                }
            });
        }
    });
    assert_eq!(log.log_end_offset(), 3 + 4 * appends_per_thread);
    assert_eq!(log.recovery_point(), log.log_end_offset());

    // Deferred: the append hands the sync to the caller.
    let before = io.sync_count();
    let info = log.append_as_leader_verified(batch(1, NOW), 0, NOW, None, true).unwrap();
    assert_eq!(info.sync_through, Some(log.log_end_offset()));
    assert_eq!(io.sync_count(), before, "nothing synced yet");
    assert_eq!(log.high_watermark(), log.log_end_offset() - 1, "unsynced data is not visible yet");
    log.flush_through(info.sync_through.unwrap(), NOW).unwrap();
    assert!(io.sync_count() > before);
    assert_eq!(log.high_watermark(), log.log_end_offset());
    assert_eq!(log.recovery_point(), log.log_end_offset());
}

#[test]
fn a_roll_leaves_the_old_segments_sync_to_sync_rolled() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyFileIo::new();
    let log = open_with(dir.path(), small_segments(), true, Arc::new(io.clone()));
    let before = io.sync_count();
    while log.segment_count() < 3 {
        log.append_as_leader(batch(2, NOW), 0, NOW).unwrap();
    }
    // The index and log files of the rolled segments are not synced on the append path.
    assert_eq!(io.sync_count(), before, "a roll syncs no segment data under the append lock");
    assert!(log.has_rolled_unsynced());
    assert_eq!(log.recovery_point(), 0, "unsynced segments stay behind the recovery point");

    log.sync_rolled().unwrap();
    let bases = log.segment_base_offsets();
    assert!(io.sync_count() > before);
    assert_eq!(log.recovery_point(), *bases.last().unwrap());
    assert!(!log.has_rolled_unsynced());
    let synced = io.sync_count();
    log.sync_rolled().unwrap();
    assert_eq!(io.sync_count(), synced, "nothing left to sync");

    // A flush covers segments rolled since the last sync as well as the active one.
    while log.segment_count() < 4 {
        log.append_as_leader(batch(2, NOW), 0, NOW).unwrap();
    }
    log.flush_through(log.log_end_offset(), NOW).unwrap();
    assert!(!log.has_rolled_unsynced());
    assert_eq!(log.recovery_point(), log.log_end_offset());

    // After an unclean stop with the recovery point before rolled segments, they
    // are recovered, and every batch reads back.
    while log.segment_count() < 6 {
        log.append_as_leader(batch(2, NOW), 0, NOW).unwrap();
    }
    let end = log.log_end_offset();
    let recovery_point = log.recovery_point();
    assert!(recovery_point < end);
    drop(log);
    let options = OpenOptions { recovery_point, log_start_offset: None, clean_shutdown: false, now_ms: NOW };
    let log =
        Log::open(Arc::new(OsFileIo), &dir.path().join("t-0"), TopicPartition::new("t", 0), small_segments(), options)
            .unwrap();
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(read_all(&log, 0).iter().map(|h| h.records_count).sum::<i32>() as i64, end);
}

#[test]
fn a_write_error_takes_the_log_offline() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyFileIo::new();
    let log = open_with(dir.path(), LogConfig::default(), true, Arc::new(io.clone()));
    log.append_as_leader(batch(1, NOW), 0, NOW).unwrap();
    io.fail_writes_to("t-0");
    let e = log.append_as_leader(batch(1, NOW), 0, NOW).unwrap_err();
    assert_eq!(e.error_code(), ErrorCode::KafkaStorageError);
    assert!(log.is_offline());
    io.heal();
    assert!(matches!(log.append_as_leader(batch(1, NOW), 0, NOW), Err(AppendError::Storage(_))));
    assert_eq!(log.read(0, 100, true, i64::MAX).unwrap_err().error_code(), ErrorCode::KafkaStorageError);
    assert!(log.flush().is_err());
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn empty_record_set_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    let info = log.append_as_leader(BytesMut::new(), 0, NOW).unwrap();
    assert_eq!((info.base_offset, info.records_count), (-1, 0));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn logs_and_the_manager_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
    assert_send_sync::<crate::LogManager>();
}

#[test]
fn concurrent_readers_see_only_whole_published_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path(), small_segments()));
    let reader = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut reads = 0;
            while log.log_end_offset() < 400 {
                let start = log.log_start_offset();
                if let Ok(info) = log.read(start, 1 << 16, true, i64::MAX) {
                    let end = log.log_end_offset();
                    for h in headers(&info.records) {
                        assert!(h.last_offset() < end);
                    }
                    reads += 1;
                }
            }
            reads
        })
    };
    for _ in 0..200 {
        log.append_as_leader(batch(2, NOW), 0, NOW).unwrap();
        log.enforce_retention(NOW + 100_000_000).unwrap();
    }
    assert!(reader.join().unwrap() > 0);
}

/// Every batch of every segment file, read straight from disk: (segment, header, bytes).
fn batches_on_disk(dir: &Path) -> Vec<(usize, RecordBatchHeader, Bytes)> {
    let mut logs: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    let mut out = Vec::new();
    for (segment, path) in logs.iter().enumerate() {
        for batch in split_record_set(Bytes::from(fs::read(path).unwrap())) {
            let batch = batch.unwrap();
            out.push((segment, *RecordBatch::new(batch.clone()).unwrap().header(), batch));
        }
    }
    out
}

#[test]
fn reads_return_whole_batches_of_one_segment_within_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 8192, index_interval_bytes: 512, ..LogConfig::default() };
    let log = open(dir.path(), config);
    for i in 0..60 {
        log.append_as_leader(batch_with(1 + i % 5, NOW, 40 + 30 * (i % 7), None), 0, NOW).unwrap();
    }
    let end = log.log_end_offset();
    assert!(log.segment_count() > 3);
    let on_disk = batches_on_disk(&dir.path().join("t-0"));
    for max_offset in [end, end - 7, end / 2, 1] {
        for max_bytes in [1, 100, 700, 3000, 1 << 20] {
            for min_one_batch in [true, false] {
                for fetch_offset in (0..end).step_by(3) {
                    // What Kafka's read returns, worked out from the files alone.
                    let mut expected = Vec::new();
                    let mut next_offset = fetch_offset;
                    let first = on_disk.iter().position(|(_, h, _)| h.last_offset() >= fetch_offset).unwrap();
                    for (i, (segment, header, bytes)) in on_disk.iter().enumerate().skip(first) {
                        let fits = expected.len() + bytes.len() <= max_bytes || (i == first && min_one_batch);
                        if *segment != on_disk[first].0 || header.last_offset() >= max_offset || !fits {
                            break;
                        }
                        expected.extend_from_slice(bytes);
                        next_offset = header.last_offset() + 1;
                    }
                    let case = format!(
                        "offset {fetch_offset} max_bytes {max_bytes} min_one {min_one_batch} max_offset {max_offset}"
                    );
                    let copied = log.read(fetch_offset, max_bytes, min_one_batch, max_offset).unwrap();
                    assert_eq!(copied.records, Bytes::from(expected), "{case}");
                    let region = log.read_region(fetch_offset, max_bytes, min_one_batch, max_offset).unwrap();
                    assert_eq!(region.next_offset, next_offset, "{case}");
                    assert_eq!(region.high_watermark, copied.high_watermark);
                    assert!(region.region.as_ref().is_none_or(|r| r.os_file().is_some() && r.len_bytes() > 0));
                }
            }
        }
    }
    assert!(matches!(log.read_region(end + 1, 100, true, end), Err(ReadError::OffsetOutOfRange { .. })));
}

#[test]
fn a_leader_epoch_assigned_at_leadership_starts_at_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    log.assign_leader_epoch(3).unwrap();
    assert_eq!(log.latest_epoch(), Some(3));
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 0)));
    log.append_as_leader(batch(2, NOW), 3, NOW).unwrap();
    log.assign_leader_epoch(5).unwrap();
    assert_eq!(log.end_offset_for_epoch(3), Some((3, 2)));
    // An older epoch is ignored, as Kafka's assign ignores one not above the latest.
    log.assign_leader_epoch(4).unwrap();
    assert_eq!(log.latest_epoch(), Some(5));
    let checkpoint = fs::read_to_string(dir.path().join("t-0").join("leader-epoch-checkpoint")).unwrap();
    assert!(checkpoint.contains("5 2"), "{checkpoint}");
}

mod disk_full;
mod sync_off_lock;
