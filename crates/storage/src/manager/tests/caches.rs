//! Every checkpoint, snapshot and index file is a cache of what the segments
//! hold: damaged (garbage, cut short, or of another version) it is rebuilt at
//! open, with a warning, and the log answers exactly as before.

use gregor_protocol::records::RecordBatchBuilder;

use super::*;
use crate::checkpoint::LEADER_EPOCH_CHECKPOINT;
use crate::producer::SNAPSHOT_SUFFIX;
use crate::segment::{INDEX_SUFFIX, TIME_INDEX_SUFFIX};

#[derive(Debug, Clone, Copy)]
enum Damage {
    Garbage,
    Truncated,
    WrongVersion,
}

const DAMAGES: [Damage; 3] = [Damage::Garbage, Damage::Truncated, Damage::WrongVersion];

fn damage(path: &Path, how: Damage) {
    let bytes = fs::read(path).unwrap();
    let damaged = match how {
        Damage::Garbage => b"\xff\xfenot what was written\n".to_vec(),
        // Cut inside an entry, as a torn write leaves it (an index cut at an
        // entry boundary is a valid shorter index, for Kafka too).
        Damage::Truncated if path.to_string_lossy().contains("index") => bytes[..bytes.len() - 5].to_vec(),
        Damage::Truncated => bytes[..bytes.len() / 2].to_vec(),
        // Text checkpoints start with their version line, snapshots with a u16
        // version, index entries are checked for order: 0x7f breaks each.
        Damage::WrongVersion => {
            let mut b = bytes.clone();
            b[0] = if b[0] == b'0' { b'7' } else { 0x7f };
            b
        }
    };
    fs::write(path, damaged).unwrap();
}

/// Batches at leader epochs 1 then 4, from an idempotent producer, with
/// increasing timestamps, over several segments.
fn write_log(dirs: &[std::path::PathBuf]) {
    let manager = LogManager::open(dirs).unwrap();
    let log = manager.get_or_create(&tp("t"), config(), NOW).unwrap();
    for i in 0..24 {
        let mut b = RecordBatchBuilder::new(0).producer(9, 0, i * 2);
        for r in 0..2 {
            b.append(NOW + i64::from(i) * 10 + r, Some(Bytes::from("k")), Some(Bytes::from(vec![b'v'; 200])), vec![])
                .unwrap();
        }
        let epoch = if i < 10 { 1 } else { 4 };
        log.append_as_leader(BytesMut::from(&b.build().unwrap()[..]), epoch, NOW).unwrap();
        if i % 6 == 5 {
            log.sync_rolled().unwrap();
        }
    }
    log.set_cleaner_checkpoint(10);
    assert!(log.segment_count() > 2);
    manager.shutdown().unwrap();
}

/// What a reopened log must answer.
#[derive(Debug, PartialEq)]
struct Answers {
    batches: usize,
    log_end_offset: i64,
    epochs: Vec<Option<(i32, i64)>>,
    producers: Vec<crate::ProducerStateEntry>,
    by_timestamp: Option<i64>,
    max_timestamp: Option<i64>,
}

fn answers(log: &Log) -> Answers {
    Answers {
        batches: all_batches(log),
        log_end_offset: log.log_end_offset(),
        epochs: (0..6).map(|e| log.end_offset_for_epoch(e)).collect(),
        producers: log.producer_states(),
        by_timestamp: log.find_offset_by_timestamp(NOW + 125).unwrap().map(|t| t.offset),
        max_timestamp: log.max_timestamp_offset().unwrap().map(|t| t.offset),
    }
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

#[test]
fn every_damaged_cache_file_is_rebuilt_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    write_log(&dirs);
    let partition = dir.path().join("t-0");
    let expected = {
        let manager = LogManager::open(&dirs).unwrap();
        let log = manager.get_or_create(&tp("t"), config(), NOW).unwrap();
        let answers = answers(&log);
        assert_eq!(answers.epochs[1], Some((1, 20)));
        assert_eq!(answers.epochs[4], Some((4, 48)));
        assert_eq!(answers.producers.len(), 1);
        assert_eq!(answers.producers[0].last_sequence, 47);
        manager.shutdown().unwrap();
        answers
    };
    let pristine = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), pristine.path());

    let targets: Vec<(&str, Vec<std::path::PathBuf>)> = vec![
        ("leader-epoch-checkpoint", vec![partition.join(LEADER_EPOCH_CHECKPOINT)]),
        ("producer snapshots", files_ending(&partition, SNAPSHOT_SUFFIX)),
        ("recovery-point-offset-checkpoint", vec![dir.path().join(RECOVERY_POINT_CHECKPOINT)]),
        ("log-start-offset-checkpoint", vec![dir.path().join(LOG_START_OFFSET_CHECKPOINT)]),
        ("cleaner-offset-checkpoint", vec![dir.path().join(CLEANER_OFFSET_CHECKPOINT)]),
        ("offset indexes", files_ending(&partition, INDEX_SUFFIX)),
        ("time indexes", files_ending(&partition, TIME_INDEX_SUFFIX)),
    ];
    for (what, paths) in &targets {
        assert!(!paths.is_empty(), "{what}: nothing to damage");
        for how in DAMAGES {
            copy_dir(pristine.path(), dir.path());
            for path in paths {
                damage(path, how);
            }
            let manager = LogManager::open(&dirs).unwrap_or_else(|e| panic!("{what} {how:?}: {e}"));
            let log = manager.get_or_create(&tp("t"), config(), NOW).unwrap_or_else(|e| panic!("{what} {how:?}: {e}"));
            assert_eq!(answers(&log), expected, "{what} {how:?}");
            // The rebuilt state goes on: the producer's next batch is in sequence.
            let mut b = RecordBatchBuilder::new(0).producer(9, 0, 48);
            b.append(NOW, Some(Bytes::from("k")), Some(Bytes::from("v")), vec![]).unwrap();
            log.append_as_leader(BytesMut::from(&b.build().unwrap()[..]), 4, NOW).unwrap();
            manager.shutdown().unwrap();
        }
    }
    // A rebuilt epoch cache is written back in Kafka's format.
    copy_dir(pristine.path(), dir.path());
    damage(&partition.join(LEADER_EPOCH_CHECKPOINT), Damage::Garbage);
    drop(LogManager::open(&dirs).unwrap().get_or_create(&tp("t"), config(), NOW).unwrap());
    assert_eq!(fs::read_to_string(partition.join(LEADER_EPOCH_CHECKPOINT)).unwrap(), "0\n2\n1 0\n4 20\n");
}

/// Replaces `to`'s files (one level of directories) with `from`'s.
fn copy_dir(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            let _ = fs::remove_dir_all(&target);
            copy_dir(&entry.path(), &target_dir(&target));
        } else if entry.file_name() != ".lock" {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn target_dir(path: &Path) -> std::path::PathBuf {
    fs::create_dir_all(path).unwrap();
    path.to_path_buf()
}
