//! fsyncs on the flush paths run without the append lock: an append goes
//! through while a sync is blocked, and a roll writes no producer snapshot.

use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::producer::SNAPSHOT_SUFFIX;

const WAIT: Duration = Duration::from_secs(10);

/// Runs `sync` on a thread with fsyncs of the log's files held at the gate,
/// and checks that an append completes meanwhile.
fn append_while_sync_blocks(io: &FaultyFileIo, log: &Arc<Log>, sync: impl FnOnce(&Log) + Send + 'static) {
    io.block_syncs_of("t-0");
    let syncing = {
        let log = Arc::clone(log);
        std::thread::spawn(move || sync(&log))
    };
    assert!(io.wait_for_blocked_sync(WAIT), "the sync never started");
    let (done_tx, done_rx) = mpsc::channel();
    let appending = {
        let log = Arc::clone(log);
        std::thread::spawn(move || {
            let appended = log.append_as_leader(batch(1, NOW), 0, NOW).map(|info| info.base_offset);
            let _ = done_tx.send(appended);
        })
    };
    let appended = done_rx.recv_timeout(WAIT);
    io.release_syncs();
    appending.join().unwrap();
    syncing.join().unwrap();
    assert!(matches!(appended, Ok(Ok(_))), "the append waited for the fsync: {appended:?}");
}

#[test]
fn flush_if_due_syncs_without_the_append_lock() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyFileIo::new();
    let config = LogConfig { flush_interval_ms: 1000, ..LogConfig::default() };
    let log = Arc::new(open_with(dir.path(), config, true, Arc::new(io.clone())));
    log.append_as_leader(batch(2, NOW), 0, NOW).unwrap();
    append_while_sync_blocks(&io, &log, |log| log.flush_if_due(NOW + 1000).unwrap());
    // What the sync covered is durable; the append made during it is not yet.
    assert_eq!(log.recovery_point(), 2);
    assert_eq!(log.log_end_offset(), 3);
    log.flush_if_due(NOW + 2000).unwrap();
    assert_eq!(log.recovery_point(), 3);
}

#[test]
fn flush_syncs_without_the_append_lock() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyFileIo::new();
    let log = Arc::new(open_with(dir.path(), LogConfig::default(), true, Arc::new(io.clone())));
    log.append_as_leader(batch(2, NOW), 0, NOW).unwrap();
    append_while_sync_blocks(&io, &log, |log| log.flush().unwrap());
    assert_eq!(log.recovery_point(), 2);
}

#[test]
fn a_roll_leaves_the_producer_snapshot_to_sync_rolled() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyFileIo::new();
    let log = Arc::new(open_with(dir.path(), small_segments(), true, Arc::new(io.clone())));
    let snapshots = |dir: &Path| {
        fs::read_dir(dir.join("t-0"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(SNAPSHOT_SUFFIX))
            .count()
    };
    let mut sequence = 0;
    while log.segment_count() < 2 {
        log.append_as_leader(batch_with(2, NOW, 100, Some((7, 0, sequence))), 0, NOW).unwrap();
        sequence += 2;
    }
    assert_eq!(snapshots(dir.path()), 0, "a roll writes no file under the append lock");
    assert!(log.has_rolled_unsynced());

    // The background sync writes it while appends go on.
    append_while_sync_blocks(&io, &log, |log| log.sync_rolled().unwrap());
    assert_eq!(snapshots(dir.path()), 1);
    assert!(!log.has_rolled_unsynced());

    // The snapshot is the state at the roll: a reopen that starts from it and
    // replays the rest knows the producer's last sequence.
    let end = log.log_end_offset();
    drop(log);
    let base = *open(dir.path(), small_segments()).segment_base_offsets().last().unwrap();
    assert!(dir.path().join("t-0").join(file_name(base, SNAPSHOT_SUFFIX)).exists());
    let options = OpenOptions { recovery_point: 0, log_start_offset: None, clean_shutdown: false, now_ms: NOW };
    let log =
        Log::open(Arc::new(OsFileIo), &dir.path().join("t-0"), TopicPartition::new("t", 0), small_segments(), options)
            .unwrap();
    assert_eq!(log.log_end_offset(), end);
    let states = log.producer_states();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].last_sequence, sequence - 1);
}
