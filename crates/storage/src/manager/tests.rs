use std::fs::{self, OpenOptions as FsOpenOptions};
use std::io::Write;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{split_record_set, RecordBatch, RecordBatchBuilder};

use super::*;
use crate::io::FaultyFileIo;
use crate::segment::file_name;

const NOW: i64 = 1_700_000_000_000;

fn batch(n: usize) -> BytesMut {
    let mut b = RecordBatchBuilder::new(0);
    for i in 0..n {
        b.append(NOW, Some(Bytes::from(format!("k{i}"))), Some(Bytes::from(vec![b'v'; 200])), vec![]).unwrap();
    }
    BytesMut::from(&b.build().unwrap()[..])
}

fn config() -> LogConfig {
    LogConfig { segment_bytes: 4096, index_interval_bytes: 512, ..LogConfig::default() }
}

fn tp(name: &str) -> TopicPartition {
    TopicPartition::new(name, 0)
}

fn fill(manager: &LogManager, name: &str, batches: usize) -> Arc<Log> {
    let log = manager.get_or_create(&tp(name), config(), NOW).unwrap();
    for _ in 0..batches {
        log.append_as_leader(batch(2), 0, NOW).unwrap();
    }
    log
}

fn active_log_file(dir: &Path, log: &Log) -> std::path::PathBuf {
    let base = *log.segment_base_offsets().last().unwrap();
    dir.join("t-0").join(file_name(base, ".log"))
}

/// Every batch from the start, checking offsets are contiguous and CRCs valid.
fn all_batches(log: &Log) -> usize {
    let mut offset = log.log_start_offset();
    let mut count = 0;
    while offset < log.log_end_offset() {
        let info = log.read(offset, 1 << 20, true, i64::MAX).unwrap();
        for b in split_record_set(info.records) {
            let b = RecordBatch::new(b.unwrap()).unwrap();
            // The first batch may start before the log start offset.
            assert!(b.header().base_offset == offset || (count == 0 && b.header().base_offset < offset));
            offset = b.header().last_offset() + 1;
            count += 1;
        }
    }
    count
}

#[test]
fn clean_shutdown_writes_checkpoints_and_marker_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    let manager = LogManager::open(&dirs).unwrap();
    assert!(manager.existing_partitions().is_empty());
    let log = fill(&manager, "t", 20);
    log.delete_records_before(3).unwrap();
    manager.shutdown().unwrap();
    assert!(dir.path().join(".kafka_cleanshutdown").exists());
    let recovery = fs::read_to_string(dir.path().join("recovery-point-offset-checkpoint")).unwrap();
    assert_eq!(recovery, "0\n1\nt 0 40\n");
    let starts = fs::read_to_string(dir.path().join("log-start-offset-checkpoint")).unwrap();
    assert_eq!(starts, "0\n1\nt 0 3\n");
    drop(log);
    drop(manager);

    let manager = LogManager::open(&dirs).unwrap();
    assert!(manager.had_clean_shutdown());
    assert!(!dir.path().join(".kafka_cleanshutdown").exists(), "the marker is consumed on open");
    assert_eq!(manager.existing_partitions(), vec![tp("t")]);
    let log = manager.get_or_create(&tp("t"), config(), NOW).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (3, 40));
    assert_eq!(all_batches(&log), 19);
    assert!(Arc::ptr_eq(&log, &manager.get(&tp("t")).unwrap()));
    assert_eq!(manager.all().len(), 1);
}

#[test]
fn a_locked_directory_cannot_be_opened_twice() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    let _first = LogManager::open(&dirs).unwrap();
    assert!(matches!(LogManager::open(&dirs), Err(StorageError::DirLocked { .. })));
    assert!(matches!(LogManager::open(&[]), Err(StorageError::NoLogDirs)));
}

fn crash_and_damage(damage: impl Fn(&Path)) -> (tempfile::TempDir, usize) {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    let manager = LogManager::open(&dirs).unwrap();
    let log = fill(&manager, "t", 30);
    let segments = log.segment_count();
    let active = active_log_file(dir.path(), &log);
    drop(log);
    drop(manager); // no shutdown: the next open recovers
    damage(&active);
    (dir, segments)
}

fn reopen(dir: &Path) -> (LogManager, Arc<Log>) {
    let manager = LogManager::open(&[dir.to_path_buf()]).unwrap();
    assert!(!manager.had_clean_shutdown());
    let log = manager.get_or_create(&tp("t"), config(), NOW).unwrap();
    (manager, log)
}

#[test]
fn recovery_truncates_a_torn_tail() {
    let (dir, _) = crash_and_damage(|active| {
        let len = fs::metadata(active).unwrap().len();
        FsOpenOptions::new().write(true).open(active).unwrap().set_len(len - 100).unwrap();
    });
    let (_m, log) = reopen(dir.path());
    assert_eq!(log.log_end_offset(), 58, "the torn last batch is gone");
    assert_eq!(all_batches(&log), 29);
    assert_eq!(log.append_as_leader(batch(2), 0, NOW).unwrap().base_offset, 58);
    assert_eq!(all_batches(&log), 30);
}

#[test]
fn recovery_drops_trailing_garbage() {
    let (dir, _) = crash_and_damage(|active| {
        let mut f = FsOpenOptions::new().append(true).open(active).unwrap();
        f.write_all(&[0xAB; 333]).unwrap();
    });
    let (_m, log) = reopen(dir.path());
    assert_eq!(log.log_end_offset(), 60);
    assert_eq!(all_batches(&log), 30);
}

#[test]
fn recovery_drops_a_batch_with_a_flipped_byte() {
    let (dir, _) = crash_and_damage(|active| {
        let mut bytes = fs::read(active).unwrap();
        let at = bytes.len() - 10;
        bytes[at] ^= 0x40;
        fs::write(active, bytes).unwrap();
    });
    let (_m, log) = reopen(dir.path());
    assert_eq!(log.log_end_offset(), 58);
    assert_eq!(all_batches(&log), 29);
}

#[test]
fn recovery_in_an_earlier_segment_drops_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    let manager = LogManager::open(&dirs).unwrap();
    let log = fill(&manager, "t", 30);
    let segments = log.segment_count();
    assert!(segments >= 3);
    let second = log.segment_base_offsets()[1];
    drop(log);
    drop(manager);
    let path = dir.path().join("t-0").join(file_name(second, ".log"));
    let mut bytes = fs::read(&path).unwrap();
    bytes[30] ^= 1; // inside the first batch's CRC range
    fs::write(&path, bytes).unwrap();
    let (_m, log) = reopen(dir.path());
    assert_eq!(log.log_end_offset(), second);
    assert_eq!(log.segment_count(), 2);
    assert!(!dir.path().join("t-0").join(file_name(log.log_end_offset() + 4, ".log")).exists());
    assert_eq!(log.append_as_leader(batch(1), 0, NOW).unwrap().base_offset, second);
}

#[test]
fn a_bad_index_is_rebuilt_even_after_a_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    let manager = LogManager::open(&dirs).unwrap();
    let log = fill(&manager, "t", 30);
    manager.shutdown().unwrap();
    drop(log);
    drop(manager);
    let index = dir.path().join("t-0").join(file_name(0, ".index"));
    let good = fs::read(&index).unwrap();
    assert!(!good.is_empty());
    fs::write(&index, [0xFFu8; 13]).unwrap();
    let manager = LogManager::open(&dirs).unwrap();
    let log = manager.get_or_create(&tp("t"), config(), NOW).unwrap();
    assert_eq!(all_batches(&log), 30);
    log.flush().unwrap();
    assert_eq!(fs::read(&index).unwrap(), good, "rebuilt to the same entries");
}

#[test]
fn delete_renames_then_removes_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open(&[dir.path().to_path_buf()]).unwrap();
    let doomed = fill(&manager, "gone", 2);
    let kept = fill(&manager, "kept", 2);
    manager.delete(&tp("gone")).unwrap();
    assert!(manager.get(&tp("gone")).is_none());
    assert!(doomed.is_offline());
    assert!(!dir.path().join("gone-0").exists());
    assert!(fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with("-delete")));
    assert_eq!(kept.log_end_offset(), 4);
    assert_eq!(manager.existing_partitions(), vec![tp("kept")]);
}

#[test]
fn an_io_error_takes_only_that_log_offline() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyFileIo::new();
    let manager = LogManager::open_with_io(&[dir.path().to_path_buf()], Arc::new(io.clone())).unwrap();
    let a = fill(&manager, "a", 1);
    let b = fill(&manager, "b", 1);
    io.fail_writes_to("a-0");
    assert!(a.append_as_leader(batch(1), 0, NOW).is_err());
    assert!(a.is_offline());
    assert!(b.append_as_leader(batch(1), 0, NOW).is_ok());
    assert!(!b.is_offline());
    assert!(manager.shutdown().is_err());
    assert!(!dir.path().join(".kafka_cleanshutdown").exists(), "a dirty dir gets no clean marker");
    let recovery = fs::read_to_string(dir.path().join("recovery-point-offset-checkpoint")).unwrap();
    assert_eq!(recovery, "0\n1\nb 0 3\n");
}

#[test]
fn periodic_flush_and_retention_run_over_every_log() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyFileIo::new();
    let manager = LogManager::open_with_io(&[dir.path().to_path_buf()], Arc::new(io.clone())).unwrap();
    let flushed = LogConfig { flush_interval_ms: 100, retention_bytes: 4096, ..config() };
    let log = manager.get_or_create(&tp("f"), flushed, NOW).unwrap();
    for _ in 0..40 {
        log.append_as_leader(batch(2), 0, NOW).unwrap();
    }
    let syncs = io.sync_count();
    manager.flush_due(NOW + 100).unwrap();
    assert!(io.sync_count() > syncs);
    assert!(manager.enforce_retention(NOW) > 0);
    assert!(log.log_start_offset() > 0);
}

#[test]
fn describe_log_dirs_reports_space_and_sizes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let manager = LogManager::open(&[a.path().to_path_buf(), b.path().to_path_buf()]).unwrap();
    let one = fill(&manager, "x", 3);
    let two = fill(&manager, "y", 1);
    assert_ne!(one.dir().parent(), two.dir().parent(), "new partitions go to the emptier dir");
    let infos = manager.describe_log_dirs();
    assert_eq!(infos.len(), 2);
    for info in &infos {
        assert!(info.total_bytes > 0 && info.usable_bytes <= info.total_bytes);
        assert_eq!(info.partitions.len(), 1);
    }
    let total: u64 = infos.iter().flat_map(|i| &i.partitions).map(|p| p.size_bytes).sum();
    assert_eq!(total, one.size_bytes() + two.size_bytes());
}

mod caches;
mod full_disk;
