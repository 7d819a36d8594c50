//! Fetch's partition reads against a real log: read_committed bounded by the
//! LSO with the aborted transactions it needs, read_uncommitted unchanged, and
//! the response's per-version shape.

use super::*;
use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{split_record_set, RecordBatchBuilder, RecordBatchHeader, NO_SEQUENCE};
use gregor_storage::io::OsFileIo;
use gregor_storage::{LogConfig, OpenOptions, TopicPartition, TxnMarker};
use std::path::Path;

const NOW: i64 = 1_700_000_000_000;
const READ_UNCOMMITTED: i8 = 0;

fn partition(dir: &Path) -> Partition {
    let options = OpenOptions { recovery_point: 0, log_start_offset: None, clean_shutdown: true, now_ms: NOW };
    let log =
        Log::open(Arc::new(OsFileIo), &dir.join("t-0"), TopicPartition::new("t", 0), LogConfig::default(), options)
            .expect("open log");
    Partition::new(Arc::from("t"), 0, Uuid::ZERO, Arc::new(log), 0)
}

fn batch(producer_id: i64, sequence: i32, count: usize, transactional: bool) -> BytesMut {
    let mut builder = RecordBatchBuilder::new(0).producer(producer_id, if producer_id < 0 { -1 } else { 0 }, sequence);
    builder = builder.transactional(transactional);
    for i in 0..count {
        builder
            .append(NOW, Some(Bytes::from(format!("k{i}"))), Some(Bytes::from_static(b"value")), vec![])
            .expect("record");
    }
    BytesMut::from(&builder.build().expect("batch")[..])
}

/// Appends `count` records (transactional for a producer id >= 0) and returns
/// their first and last offsets.
fn append(partition: &Partition, producer_id: i64, sequence: i32, count: usize) -> (i64, i64) {
    let transactional = producer_id >= 0;
    let sequence = if transactional { sequence } else { NO_SEQUENCE };
    let info =
        partition.log.append_as_leader(batch(producer_id, sequence, count, transactional), 0, NOW).expect("append");
    (info.base_offset, info.last_offset)
}

fn end_txn(partition: &Partition, producer_id: i64, commit: bool) -> i64 {
    let marker = TxnMarker { producer_id, producer_epoch: 0, coordinator_epoch: 0, commit };
    partition.append_marker(marker, NOW).expect("marker").base_offset
}

fn wanted(fetch_offset: i64) -> SessionPartition {
    SessionPartition {
        key: SessionPartitionKey { topic: "t".to_owned(), topic_id: Uuid::ZERO, partition: 0 },
        fetch_offset,
        partition_max_bytes: 1 << 20,
        current_leader_epoch: -1,
        last_fetched_epoch: -1,
        sent_high_watermark: -1,
        sent_last_stable_offset: -1,
        sent_log_start_offset: -1,
    }
}

fn limits(isolation: i8, zero_copy: bool) -> ReadLimits {
    ReadLimits {
        response_bytes_max: usize::MAX,
        min_bytes: 0,
        isolation,
        unknown: ErrorCode::UnknownTopicOrPartition,
        zero_copy,
    }
}

/// Reads both ways, records in memory and as a file region (sent by the
/// connection), checks they agree, and returns the read into memory.
fn read_both(partition: &Partition, fetch_offset: i64, bytes_max: usize, isolation: i8) -> PartitionRead {
    let copied = read_partition(&wanted(fetch_offset), partition, bytes_max, true, &limits(isolation, false));
    let mut sent = read_partition(&wanted(fetch_offset), partition, bytes_max, true, &limits(isolation, true));
    assert!(copied.region.is_none());
    if let Some(region) = sent.region.take() {
        sent.records = region.read().expect("the region reads back");
    }
    assert_eq!(sent.records, copied.records);
    assert_eq!(sent.aborted, copied.aborted);
    assert_eq!(
        (sent.error, sent.high_watermark, sent.last_stable_offset, sent.log_start_offset),
        (copied.error, copied.high_watermark, copied.last_stable_offset, copied.log_start_offset)
    );
    copied
}

fn fetch(partition: &Partition, fetch_offset: i64, isolation: i8) -> PartitionRead {
    read_both(partition, fetch_offset, 1 << 20, isolation)
}

/// The base offsets of the batches returned.
fn batches(read: &PartitionRead) -> Vec<i64> {
    split_record_set(read.records.clone())
        .map(|batch| RecordBatchHeader::parse(&batch.expect("batch")).expect("header").base_offset)
        .collect()
}

fn aborted(producer_id: i64, first_offset: i64) -> AbortedTxn {
    AbortedTxn { producer_id, first_offset }
}

#[test]
fn read_committed_stops_at_the_lso_and_read_uncommitted_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = partition(dir.path());
    assert_eq!(append(&partition, -1, 0, 2), (0, 1));
    assert_eq!(append(&partition, 7, 0, 3), (2, 4));
    assert_eq!(append(&partition, -1, 0, 1), (5, 5));

    let committed = fetch(&partition, 0, READ_COMMITTED);
    assert_eq!(committed.error, ErrorCode::None);
    assert_eq!(batches(&committed), vec![0], "nothing at or past the LSO");
    assert_eq!((committed.high_watermark, committed.last_stable_offset), (6, 2));
    assert_eq!(committed.aborted, Some(Vec::new()));

    let uncommitted = fetch(&partition, 0, READ_UNCOMMITTED);
    assert_eq!(batches(&uncommitted), vec![0, 2, 5]);
    assert_eq!((uncommitted.high_watermark, uncommitted.last_stable_offset), (6, 2), "the LSO is reported anyway");
    assert_eq!(uncommitted.aborted, None);

    // At the LSO a read_committed fetch gets nothing, and an empty list.
    let at_lso = fetch(&partition, 2, READ_COMMITTED);
    assert!(at_lso.records.is_empty());
    assert_eq!(at_lso.aborted, Some(Vec::new()));
    assert_eq!(at_lso.fetchable_end(READ_COMMITTED), 2);
    assert_eq!(at_lso.fetchable_end(READ_UNCOMMITTED), 6);
}

#[test]
fn an_abort_marker_releases_the_data_with_its_aborted_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = partition(dir.path());
    append(&partition, -1, 0, 2);
    append(&partition, 7, 0, 3);
    append(&partition, -1, 0, 1);
    assert_eq!(end_txn(&partition, 7, false), 6);

    let read = fetch(&partition, 0, READ_COMMITTED);
    assert_eq!(batches(&read), vec![0, 2, 5, 6]);
    assert_eq!((read.high_watermark, read.last_stable_offset), (7, 7));
    assert_eq!(read.aborted, Some(vec![aborted(7, 2)]));
    // From inside the aborted range, and from the marker: still listed.
    assert_eq!(fetch(&partition, 3, READ_COMMITTED).aborted, Some(vec![aborted(7, 2)]));
    assert_eq!(fetch(&partition, 6, READ_COMMITTED).aborted, Some(vec![aborted(7, 2)]));
    // Past it: not listed.
    append(&partition, -1, 0, 1);
    let after = fetch(&partition, 7, READ_COMMITTED);
    assert_eq!(batches(&after), vec![7]);
    assert_eq!(after.aborted, Some(Vec::new()));
    // A read that stops before the aborted transaction does not list it.
    let first_only = read_both(&partition, 0, 1, READ_COMMITTED);
    assert_eq!(batches(&first_only), vec![0]);
    assert_eq!(first_only.aborted, Some(Vec::new()));
}

#[test]
fn a_commit_marker_releases_the_data_without_aborted_transactions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = partition(dir.path());
    append(&partition, 9, 0, 3);
    assert!(fetch(&partition, 0, READ_COMMITTED).records.is_empty());
    assert_eq!(end_txn(&partition, 9, true), 3);
    let read = fetch(&partition, 0, READ_COMMITTED);
    assert_eq!(batches(&read), vec![0, 3]);
    assert_eq!(read.last_stable_offset, 4);
    assert_eq!(read.aborted, Some(Vec::new()));
}

#[test]
fn interleaved_transactions_list_only_the_aborted_ones_below_the_lso() {
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = partition(dir.path());
    append(&partition, 1, 0, 2); // 0-1
    append(&partition, 2, 0, 2); // 2-3
    append(&partition, 3, 0, 1); // 4
    assert_eq!(end_txn(&partition, 2, false), 5);
    // Producer 1's transaction is still open: the LSO stays at 0.
    let read = fetch(&partition, 0, READ_COMMITTED);
    assert!(read.records.is_empty());
    assert_eq!(read.last_stable_offset, 0);
    assert_eq!(end_txn(&partition, 1, true), 6);
    // Producer 3's transaction (from 4) is open now.
    let read = fetch(&partition, 0, READ_COMMITTED);
    assert_eq!(read.last_stable_offset, 4);
    assert_eq!(batches(&read), vec![0, 2]);
    assert_eq!(read.aborted, Some(vec![aborted(2, 2)]));
    assert_eq!(end_txn(&partition, 3, false), 7);
    let read = fetch(&partition, 0, READ_COMMITTED);
    assert_eq!(batches(&read), vec![0, 2, 4, 5, 6, 7]);
    assert_eq!(read.aborted, Some(vec![aborted(2, 2), aborted(3, 4)]));
}

#[tokio::test]
async fn a_marker_wakes_the_waiting_fetches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = partition(dir.path());
    append(&partition, 7, 0, 1);
    let waiter: Waiter = Arc::new(Notify::new());
    partition.waiters.register(&waiter);
    end_txn(&partition, 7, true);
    tokio::time::timeout(Duration::from_secs(1), waiter.notified()).await.expect("woken by the marker");
    assert_eq!(fetchable_end(&partition.log, READ_COMMITTED), 2);
}

fn response_partition(response: &FetchResponse) -> &PartitionData {
    &response.responses[0].partitions[0]
}

#[test]
fn the_response_carries_a_list_for_read_committed_and_null_otherwise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = partition(dir.path());
    append(&partition, 7, 0, 2);
    end_txn(&partition, 7, false);
    let sessions = FetchSessionCache::new(10);
    for version in [4, 11, 12, 18] {
        let committed =
            build_response(version, 0, false, &[wanted(0)], vec![fetch(&partition, 0, READ_COMMITTED)], &sessions).0;
        let data = response_partition(&committed);
        assert_eq!(data.last_stable_offset, 3);
        let list = data.aborted_transactions.as_ref().expect("a list for read_committed");
        assert_eq!(list.iter().map(|t| (t.producer_id, t.first_offset)).collect::<Vec<_>>(), vec![(7, 0)]);

        let uncommitted =
            build_response(version, 0, false, &[wanted(0)], vec![fetch(&partition, 0, READ_UNCOMMITTED)], &sessions).0;
        assert_eq!(response_partition(&uncommitted).aborted_transactions, None);
        assert_eq!(response_partition(&uncommitted).last_stable_offset, 3);

        let failed = build_response(
            version,
            0,
            false,
            &[wanted(0)],
            vec![failed(ErrorCode::UnknownTopicOrPartition, -1)],
            &sessions,
        )
        .0;
        assert_eq!(response_partition(&failed).aborted_transactions, None);
    }
}

#[test]
fn an_incremental_session_sends_a_partition_whose_lso_moved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = partition(dir.path());
    append(&partition, 7, 0, 2);
    let sessions = FetchSessionCache::new(10);
    let read = fetch(&partition, 0, READ_COMMITTED);
    let sent = SessionPartition {
        sent_high_watermark: read.high_watermark,
        sent_last_stable_offset: read.last_stable_offset,
        sent_log_start_offset: read.log_start_offset,
        ..wanted(0)
    };
    let unchanged = build_response(12, 0, true, std::slice::from_ref(&sent), vec![read], &sessions).0;
    assert!(unchanged.responses.is_empty(), "nothing moved: nothing sent");

    end_txn(&partition, 7, true);
    // The marker moves both; a read_committed fetch now also returns data. A
    // partition whose LSO alone moved is sent as well.
    let mut moved = fetch(&partition, 0, READ_COMMITTED);
    assert_eq!(moved.last_stable_offset, 3);
    moved.records = Bytes::new();
    moved.high_watermark = sent.sent_high_watermark;
    let response = build_response(12, 0, true, &[sent], vec![moved], &sessions).0;
    assert_eq!(response_partition(&response).last_stable_offset, 3);
}

fn long_poll(partition: &Arc<Partition>, isolation: i8, wait: Duration) -> tokio::task::JoinHandle<Vec<PartitionRead>> {
    let partition = Arc::clone(partition);
    tokio::spawn(async move {
        let hosted = [Some(partition)];
        let deadline = Instant::now() + wait;
        let limits = ReadLimits { response_bytes_max: 1 << 20, min_bytes: 1, ..limits(isolation, true) };
        read_until_ready(&[wanted(0)], &hosted, &limits, deadline).await
    })
}

#[tokio::test]
async fn uncommitted_data_does_not_satisfy_a_read_committed_long_poll_but_its_marker_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = Arc::new(partition(dir.path()));
    append(&partition, 7, 0, 2);

    let uncommitted = long_poll(&partition, READ_UNCOMMITTED, Duration::from_secs(10)).await.expect("fetch");
    assert_eq!(batches(&uncommitted[0]), vec![0], "read_uncommitted sees it at once");

    let committed = long_poll(&partition, READ_COMMITTED, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // More of the open transaction, appended as produce does (append, then wake):
    // still nothing below the LSO, so the fetch keeps waiting.
    append(&partition, 7, 2, 1);
    partition.waiters.wake_all();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!committed.is_finished(), "bytes above the LSO do not count toward min_bytes");

    let started = std::time::Instant::now();
    end_txn(&partition, 7, true);
    let reads = tokio::time::timeout(Duration::from_secs(5), committed).await.expect("woken").expect("fetch");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(batches(&reads[0]), vec![0, 2, 3]);
    assert_eq!(reads[0].last_stable_offset, 4);
    assert_eq!(reads[0].aborted, Some(Vec::new()));
}

#[tokio::test]
async fn a_read_committed_long_poll_times_out_empty_while_the_transaction_is_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = Arc::new(partition(dir.path()));
    append(&partition, 7, 0, 2);
    let reads = long_poll(&partition, READ_COMMITTED, Duration::from_millis(200)).await.expect("fetch");
    assert!(reads[0].records.is_empty());
    assert_eq!((reads[0].high_watermark, reads[0].last_stable_offset), (2, 0));
    assert_eq!(reads[0].aborted, Some(Vec::new()));
}
