//! A full disk (ENOSPC from the file layer) blocks appends, not the log:
//! reads, flushes of what is there, retention and DeleteRecords go on, nothing
//! torn stays in the files, and appends resume where they stopped.

use gregor_protocol::records::validate_batch;

use super::*;

#[test]
fn a_full_disk_refuses_appends_until_space_returns_and_keeps_the_rest_working() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyFileIo::new();
    let log = open_with(dir.path(), small_segments(), true, Arc::new(io.clone()));
    while log.segment_count() < 5 {
        log.append_as_leader(batch(2, NOW), 3, NOW).unwrap();
    }
    log.sync_rolled().unwrap();
    let end = log.log_end_offset();

    io.fill_disk_for("t-0");
    // A write that lands half its bytes, then one that needs a new segment.
    let big = batch_with(1, NOW, 1900, None);
    for records in [batch(2, NOW), big.clone(), batch(1, NOW)] {
        let e = log.append_as_leader(records, 3, NOW).unwrap_err();
        assert_eq!(e.error_code(), ErrorCode::KafkaStorageError, "{e}");
        assert!(e.is_no_space(), "{e}");
    }
    assert!(log.is_write_blocked());
    assert!(!log.is_offline(), "a full disk does not take the log offline");
    assert_eq!(log.log_end_offset(), end);
    let on_disk = batches_on_disk(&dir.path().join("t-0"));
    assert!(on_disk.iter().all(|(_, _, bytes)| validate_batch(bytes).is_ok()));
    assert_eq!(on_disk.last().map(|(_, h, _)| h.last_offset() + 1), Some(end), "no torn bytes after the last batch");

    // Reads, offset lookups and epochs answer from what is there.
    assert_eq!(read_all(&log, 0).iter().map(|h| i64::from(h.records_count)).sum::<i64>(), end);
    assert_eq!(log.end_offset_for_epoch(3), Some((3, end)));
    assert!(log.find_offset_by_timestamp(NOW).unwrap().is_some());

    // DeleteRecords and retention free space on it.
    let bases = log.segment_base_offsets();
    assert_eq!(log.delete_records_before(bases[2]).unwrap(), bases[2]);
    assert_eq!(log.segment_base_offsets(), bases[2..].to_vec());
    log.update_config(LogConfig { retention_bytes: 0, ..small_segments() });
    assert!(log.enforce_retention(NOW).unwrap() > 0);
    assert_eq!(log.segment_count(), 1, "only the active segment is left");
    log.update_config(small_segments());
    assert!(!log.is_offline());

    // Space is back: the next append lands right after the last one.
    io.heal();
    let info = log.append_as_leader(batch(2, NOW), 3, NOW).unwrap();
    assert_eq!(info.base_offset, end, "no gap");
    assert!(!log.is_write_blocked());
    let info = log.append_as_leader(big, 3, NOW).unwrap();
    assert_eq!(info.base_offset, end + 2);
    assert!(log.segment_count() >= 2, "the roll that failed happens now");
    let headers = read_all(&log, log.log_start_offset());
    let mut next = headers[0].base_offset;
    for h in &headers {
        assert_eq!(h.base_offset, next, "offsets are contiguous");
        next = h.last_offset() + 1;
    }
    assert_eq!(next, end + 3);
    log.flush().unwrap();

    // An unclean reopen finds nothing to cut.
    let last_log_end = log.log_end_offset();
    drop(log);
    let log = open_with(dir.path(), small_segments(), false, Arc::new(OsFileIo));
    assert_eq!(log.log_end_offset(), last_log_end);
}

#[test]
fn a_full_disk_during_a_flush_blocks_writes_without_going_offline() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyFileIo::new();
    let config = LogConfig { index_interval_bytes: 1, ..LogConfig::default() };
    let log = open_with(dir.path(), config, true, Arc::new(io.clone()));
    for _ in 0..4 {
        log.append_as_leader(batch(1, NOW), 0, NOW).unwrap();
    }
    io.fill_disk_for("t-0");
    // The index entries cannot be written: the flush fails and is retried.
    let e = log.flush().unwrap_err();
    assert!(e.is_no_space(), "{e}");
    assert!(!log.is_offline());
    assert!(log.is_write_blocked());
    assert_eq!(read_all(&log, 0).len(), 4);
    io.heal();
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 4);
    log.append_as_leader(batch(1, NOW), 0, NOW).unwrap();
    assert!(!log.is_write_blocked());
}

#[test]
fn another_write_error_still_takes_the_log_offline() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyFileIo::new();
    let log = open_with(dir.path(), LogConfig::default(), true, Arc::new(io.clone()));
    log.append_as_leader(batch(1, NOW), 0, NOW).unwrap();
    io.fail_writes_to("t-0");
    let e = log.append_as_leader(batch(1, NOW), 0, NOW).unwrap_err();
    assert!(!e.is_no_space());
    assert!(log.is_offline());
    assert!(!log.is_write_blocked());
}

/// A segment that is gone needs no sync, and the sync list's handle on its open
/// file would keep its space allocated: on a full disk, the space being freed.
#[test]
fn deleted_and_cleaned_segments_leave_the_sync_list() {
    let rolled_bases = |log: &Log| log.lock_rolled_unsynced().iter().map(|(s, _)| s.base_offset()).collect::<Vec<_>>();
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_segments());
    while log.segment_count() < 5 {
        log.append_as_leader(batch(2, NOW), 0, NOW).unwrap();
    }
    assert!(rolled_bases(&log).len() >= 4);
    let bases = log.segment_base_offsets();
    log.delete_records_before(bases[2]).unwrap();
    assert!(rolled_bases(&log).iter().all(|&b| b >= bases[2]), "{:?}", rolled_bases(&log));

    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup_policy_compact: true,
        cleanup_policy_delete: false,
        min_cleanable_dirty_ratio: 0.0,
        ..small_segments()
    };
    let log = open(dir.path(), config);
    while log.segment_count() < 5 {
        log.append_as_leader(batch(2, NOW), 0, NOW).unwrap();
    }
    let before = log.lock_rolled_unsynced().len();
    assert!(before >= 4);
    assert!(!log.compact(NOW).unwrap().is_empty());
    let live = log.segment_base_offsets();
    let rolled = log.lock_rolled_unsynced();
    assert!(rolled.len() < before);
    assert!(
        rolled.iter().all(
            |(s, _)| live.contains(&s.base_offset()) && log.view().segments.iter().any(|kept| Arc::ptr_eq(kept, s))
        ),
        "a replaced segment is still listed"
    );
}
