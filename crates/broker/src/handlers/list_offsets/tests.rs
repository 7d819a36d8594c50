//! ListOffsets' lookups against a real log, per isolation level.

use super::*;
use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{RecordBatchBuilder, NO_SEQUENCE};
use gregor_storage::io::OsFileIo;
use gregor_storage::{LogConfig, OpenOptions, TopicPartition, TxnMarker};
use std::path::Path;

const NOW: i64 = 1_700_000_000_000;
const READ_UNCOMMITTED: i8 = 0;

fn open(dir: &Path) -> Log {
    let options = OpenOptions { recovery_point: 0, log_start_offset: None, clean_shutdown: true, now_ms: NOW };
    Log::open(Arc::new(OsFileIo), &dir.join("t-0"), TopicPartition::new("t", 0), LogConfig::default(), options)
        .expect("open log")
}

/// One record at `timestamp`, transactional for a producer id >= 0.
fn append(log: &Log, producer_id: i64, sequence: i32, timestamp: i64) -> i64 {
    let transactional = producer_id >= 0;
    let mut builder = RecordBatchBuilder::new(0)
        .producer(producer_id, if transactional { 0 } else { -1 }, if transactional { sequence } else { NO_SEQUENCE })
        .transactional(transactional);
    builder.append(timestamp, None, Some(Bytes::from_static(b"value")), vec![]).expect("record");
    let records = BytesMut::from(&builder.build().expect("batch")[..]);
    log.append_as_leader(records, 0, NOW).expect("append").base_offset
}

fn end_txn(log: &Log, producer_id: i64, commit: bool, now_ms: i64) -> i64 {
    let marker = TxnMarker { producer_id, producer_epoch: 0, coordinator_epoch: 0, commit };
    log.append_transaction_marker(marker, 0, now_ms).expect("marker").base_offset
}

fn offset(log: &Log, timestamp: i64, isolation: i8) -> Option<(i64, i64)> {
    lookup(log, timestamp, isolation).expect("lookup").map(|found| (found.offset, found.timestamp))
}

#[test]
fn lookups_stop_at_the_lso_for_read_committed_and_the_high_watermark_otherwise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    assert_eq!(append(&log, -1, 0, NOW - 300), 0);
    assert_eq!(append(&log, 7, 0, NOW - 200), 1);
    assert_eq!(append(&log, 7, 1, NOW - 100), 2);
    assert_eq!((log.high_watermark(), log.last_stable_offset()), (3, 1));

    assert_eq!(offset(&log, LATEST, READ_UNCOMMITTED), Some((3, -1)));
    assert_eq!(offset(&log, LATEST, READ_COMMITTED), Some((1, -1)));
    assert_eq!(offset(&log, EARLIEST, READ_COMMITTED), Some((0, -1)));
    // A record found at or past the LSO is not returned to read_committed.
    assert_eq!(offset(&log, NOW - 250, READ_UNCOMMITTED), Some((1, NOW - 200)));
    assert_eq!(offset(&log, NOW - 250, READ_COMMITTED), None);
    assert_eq!(offset(&log, NOW - 350, READ_COMMITTED), Some((0, NOW - 300)));
    assert_eq!(offset(&log, MAX_TIMESTAMP, READ_UNCOMMITTED), Some((2, NOW - 100)));
    assert_eq!(offset(&log, MAX_TIMESTAMP, READ_COMMITTED), None, "the newest record is not stable yet");

    // The abort marker (stamped earlier than the records, so the max timestamp
    // stays on a data record) makes everything stable.
    assert_eq!(end_txn(&log, 7, false, NOW - 400), 3);
    assert_eq!(offset(&log, LATEST, READ_COMMITTED), Some((4, -1)));
    assert_eq!(offset(&log, LATEST, READ_UNCOMMITTED), Some((4, -1)));
    assert_eq!(offset(&log, NOW - 250, READ_COMMITTED), Some((1, NOW - 200)));
    assert_eq!(offset(&log, MAX_TIMESTAMP, READ_COMMITTED), Some((2, NOW - 100)));
    assert_eq!(offset(&log, NOW, READ_COMMITTED), None, "nothing at or after it");
}

#[test]
fn a_commit_moves_latest_for_read_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    append(&log, 3, 0, NOW);
    append(&log, -1, 0, NOW);
    assert_eq!(offset(&log, LATEST, READ_COMMITTED), Some((0, -1)));
    assert_eq!(offset(&log, LATEST, READ_UNCOMMITTED), Some((2, -1)));
    end_txn(&log, 3, true, NOW);
    assert_eq!(offset(&log, LATEST, READ_COMMITTED), Some((3, -1)));
}

#[test]
fn negative_timestamps_other_than_the_special_ones_are_invalid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    assert_eq!(lookup(&log, -7, READ_COMMITTED), Err(ErrorCode::InvalidRequest));
    assert_eq!(lookup(&log, LATEST_TIERED, READ_COMMITTED), Ok(None));
}
