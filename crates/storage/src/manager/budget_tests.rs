//! The file budget: a manager with many more segment files than it may keep
//! open still appends, reads and recovers every partition.

use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{split_record_set, RecordBatch, RecordBatchBuilder};

use super::*;

const NOW: i64 = 1_700_000_000_000;
const OPEN_FILES_MAX: usize = 16;
const PARTITIONS: i32 = 60;
const BATCHES: usize = 25;

fn batch(partition: i32, n: usize) -> BytesMut {
    let mut b = RecordBatchBuilder::new(0);
    for i in 0..n {
        let key = Bytes::from(format!("p{partition}-k{i}"));
        b.append(NOW, Some(key), Some(Bytes::from(vec![b'v'; 200])), vec![]).unwrap();
    }
    BytesMut::from(&b.build().unwrap()[..])
}

fn config() -> LogConfig {
    // About ten batches a segment, so each partition has three segments (nine files).
    LogConfig { segment_bytes: 4096, index_interval_bytes: 512, ..LogConfig::default() }
}

fn tp(partition: i32) -> TopicPartition {
    TopicPartition::new("many", partition)
}

fn open(dir: &Path) -> LogManager {
    LogManager::open_with_budget(&[dir.to_path_buf()], Arc::new(OsFileIo), OPEN_FILES_MAX).unwrap()
}

fn assert_within_budget(manager: &LogManager) {
    let (open, max) = manager.open_files();
    assert_eq!(max, OPEN_FILES_MAX);
    assert!(open <= OPEN_FILES_MAX, "{open} files open, budget {OPEN_FILES_MAX}");
}

/// Every batch of the partition, checking it is the partition's own.
fn read_all(log: &Log, partition: i32) -> usize {
    let mut offset = log.log_start_offset();
    let mut count = 0;
    while offset < log.log_end_offset() {
        let info = log.read(offset, 1 << 20, true, i64::MAX).unwrap();
        for b in split_record_set(info.records) {
            let b = RecordBatch::new(b.unwrap()).unwrap();
            assert_eq!(b.header().base_offset, offset);
            let records = b.records(1 << 20).unwrap();
            let key = records.first().and_then(|r| r.key.clone()).unwrap();
            assert!(key.starts_with(format!("p{partition}-").as_bytes()));
            offset = b.header().last_offset() + 1;
            count += 1;
        }
    }
    count
}

fn fill_all(manager: &LogManager) {
    for round in 0..BATCHES {
        for partition in 0..PARTITIONS {
            let log = manager.get_or_create(&tp(partition), config(), NOW).unwrap();
            log.append_as_leader(batch(partition, 2), 0, NOW).unwrap();
            if round % 5 == 0 {
                assert_within_budget(manager);
            }
        }
    }
}

fn check_all(manager: &LogManager) {
    for partition in 0..PARTITIONS {
        let log = manager.get_or_create(&tp(partition), config(), NOW).unwrap();
        assert!(log.segment_base_offsets().len() >= 3, "partition {partition} did not roll");
        assert_eq!(read_all(&log, partition), BATCHES, "partition {partition}");
        assert_eq!(log.log_end_offset(), 2 * BATCHES as i64);
        assert_within_budget(manager);
    }
}

#[test]
fn more_partitions_than_the_file_budget_append_read_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path());
    fill_all(&manager);
    check_all(&manager);
    manager.shutdown().unwrap();
    assert_within_budget(&manager);
    drop(manager);

    // A clean start opens every partition without holding all of its files.
    let manager = open(dir.path());
    assert!(manager.had_clean_shutdown());
    check_all(&manager);
    for partition in 0..PARTITIONS {
        let log = manager.get(&tp(partition)).unwrap();
        log.append_as_leader(batch(partition, 2), 0, NOW).unwrap();
    }
    assert_within_budget(&manager);
    // No shutdown: the next open recovers every segment after the recovery point.
    drop(manager);

    let manager = open(dir.path());
    assert!(!manager.had_clean_shutdown());
    for partition in 0..PARTITIONS {
        let log = manager.get_or_create(&tp(partition), config(), NOW).unwrap();
        assert_eq!(read_all(&log, partition), BATCHES + 1, "partition {partition} after recovery");
        assert_within_budget(&manager);
    }
}

#[test]
fn a_fetched_region_outlives_the_closing_of_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path());
    let first = manager.get_or_create(&tp(0), config(), NOW).unwrap();
    first.append_as_leader(batch(0, 2), 0, NOW).unwrap();
    let region = first.read_region(0, 1 << 20, true, i64::MAX).unwrap().region.unwrap();
    // Enough other files are opened and used to close every file of partition 0.
    for partition in 1..PARTITIONS {
        let log = manager.get_or_create(&tp(partition), config(), NOW).unwrap();
        log.append_as_leader(batch(partition, 2), 0, NOW).unwrap();
    }
    assert_within_budget(&manager);
    assert!(region.os_file().is_some(), "a region of an OS file can be sent with sendfile");
    let bytes = region.read().unwrap();
    let b = RecordBatch::new(bytes).unwrap();
    assert_eq!(b.header().base_offset, 0);
    // The closed file reopens for the next read.
    assert_eq!(read_all(&first, 0), 1);
}

fn keyed_batch(partition: i32, round: usize) -> BytesMut {
    let mut b = RecordBatchBuilder::new(0);
    for key in 0..2 {
        let value = Bytes::from(format!("p{partition}-r{round}-{}", "v".repeat(200)));
        b.append(NOW, Some(Bytes::from(format!("p{partition}-k{key}"))), Some(value), vec![]).unwrap();
    }
    BytesMut::from(&b.build().unwrap()[..])
}

#[test]
fn compaction_under_the_budget_keeps_old_readers_on_the_old_files() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path());
    let config = LogConfig {
        cleanup_policy_compact: true,
        cleanup_policy_delete: false,
        min_cleanable_dirty_ratio: 0.0,
        ..config()
    };
    let partitions = 8;
    for round in 0..BATCHES {
        for partition in 0..partitions {
            let log = manager.get_or_create(&tp(partition), config.clone(), NOW).unwrap();
            log.append_as_leader(keyed_batch(partition, round), 0, NOW).unwrap();
        }
    }
    // A fetch of the first segment taken before the cleaner replaces it under the same name.
    let first = manager.get(&tp(0)).unwrap();
    let before = first.read_region(0, 1 << 20, true, i64::MAX).unwrap().region.unwrap();
    let before_bytes = before.read().unwrap();
    // As the broker does every half second: rolled segments are synced and let go.
    manager.sync_rolled();
    let cleaned = manager.compact_due(NOW);
    assert_eq!(cleaned.len(), partitions as usize, "every partition had old values to clean");
    assert_within_budget(&manager);
    // Touch every other file so that the first partition's get closed.
    for partition in 1..partitions {
        let log = manager.get(&tp(partition)).unwrap();
        log.read(0, 1 << 20, true, i64::MAX).unwrap();
    }
    assert_eq!(before.read().unwrap(), before_bytes, "a region keeps reading the file it was cut from");
    for partition in 0..partitions {
        let log = manager.get(&tp(partition)).unwrap();
        let mut latest = std::collections::HashMap::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let info = log.read(offset, 1 << 20, true, i64::MAX).unwrap();
            for b in split_record_set(info.records) {
                let b = RecordBatch::new(b.unwrap()).unwrap();
                for record in b.records(1 << 20).unwrap() {
                    latest.insert(record.key.clone().unwrap(), record.value.clone().unwrap());
                }
                offset = b.header().last_offset() + 1;
            }
        }
        assert_eq!(latest.len(), 2);
        for value in latest.values() {
            assert!(value.starts_with(format!("p{partition}-r{}-", BATCHES - 1).as_bytes()));
        }
        assert_within_budget(&manager);
    }
}
