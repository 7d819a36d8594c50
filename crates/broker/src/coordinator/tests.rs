//! The runtime against a real partition log in a temporary directory.

use super::*;
use gregor_protocol::messages::offset_commit_key::OffsetCommitKey;
use gregor_protocol::messages::offset_commit_value::OffsetCommitValue;
use gregor_storage::io::OsFileIo;
use gregor_storage::{Log, LogConfig, OpenOptions, TopicPartition};

fn open_partition(dir: &std::path::Path) -> Arc<Partition> {
    let config = LogConfig { cleanup_policy_compact: true, ..LogConfig::default() };
    let options = OpenOptions { recovery_point: 0, log_start_offset: None, clean_shutdown: true, now_ms: now_ms() };
    let log = Log::open(
        Arc::new(OsFileIo),
        &dir.join("__consumer_offsets-0"),
        TopicPartition::new(OFFSETS_TOPIC, 0),
        config,
        options,
    )
    .expect("log opens");
    Arc::new(Partition::new(OFFSETS_TOPIC.into(), 0, Uuid::ZERO, Arc::new(log), 0))
}

fn commit(topic: &str, partition: i32, offset: i64) -> CoordinatorRecord {
    CoordinatorRecord::OffsetCommit {
        key: OffsetCommitKey { group: "g".into(), topic: topic.into(), partition, ..Default::default() },
        value: Some(OffsetCommitValue {
            offset,
            leader_epoch: -1,
            commit_timestamp: now_ms(),
            expire_timestamp: -1,
            ..Default::default()
        }),
    }
}

fn effects(records: Vec<CoordinatorRecord>, transactional: Option<(i64, i16)>) -> Effects {
    Effects { records, transactional, ..Effects::default() }
}

fn coordinator_with(partition: &Arc<Partition>) -> (GroupCoordinator, Arc<Shard>) {
    let shard = Arc::new(Shard {
        partition: Arc::clone(partition),
        state: Mutex::new(ShardState {
            shard: GroupCoordinatorShard::new(0, GroupConfig::default()),
            load: LoadState::Loaded,
            waiting: HashMap::new(),
        }),
        timers_changed: Notify::new(),
    });
    let coordinator = GroupCoordinator::default();
    coordinator.shards.write().expect("lock").insert(0, Arc::clone(&shard));
    (coordinator, shard)
}

fn committed(shard: &GroupCoordinatorShard, topic: &str, partition: i32) -> Option<i64> {
    shard.offsets().get("g", topic, partition).map(|offset| offset.offset)
}

#[test]
fn transactional_offsets_are_appended_completed_and_reloaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = open_partition(dir.path());
    let (coordinator, shard) = coordinator_with(&partition);
    let txn_marker =
        |producer_id: i64, commit: bool| TxnMarker { producer_id, producer_epoch: 0, coordinator_epoch: 0, commit };
    {
        let mut state = shard.lock();
        apply(&mut state, &partition, effects(vec![commit("t", 0, 10)], Some((5, 0)))).expect("txn append");
        apply(&mut state, &partition, effects(vec![commit("t", 1, 20)], None)).expect("plain append");
        assert!(state.shard.offsets().has_pending("g", "t", 0));
        assert_eq!(committed(&state.shard, "t", 0), None);
        assert_eq!(committed(&state.shard, "t", 1), Some(20));
    }
    // The open transaction holds the partition's LSO at its first offset.
    assert_eq!(partition.log.last_stable_offset(), 0);
    coordinator.write_marker_and_complete(0, txn_marker(5, true)).expect("commit marker");
    assert_eq!(partition.log.last_stable_offset(), partition.log.log_end_offset());
    assert_eq!(committed(&shard.lock().shard, "t", 0), Some(10));

    {
        let mut state = shard.lock();
        apply(&mut state, &partition, effects(vec![commit("t", 0, 30)], Some((6, 0)))).expect("txn append");
    }
    coordinator.write_marker_and_complete(0, txn_marker(6, false)).expect("abort marker");
    {
        let mut state = shard.lock();
        assert_eq!(committed(&state.shard, "t", 0), Some(10));
        apply(&mut state, &partition, effects(vec![commit("t", 2, 40)], Some((7, 2)))).expect("txn append");
        // A fenced producer epoch: the append fails with the storage's error and
        // nothing is replayed.
        let fenced = apply(&mut state, &partition, effects(vec![commit("t", 2, 41)], Some((7, 1))));
        assert_eq!(fenced, Err(ErrorCode::InvalidProducerEpoch));
        assert_eq!(state.shard.offsets().pending(7, "g", "t", 2).map(|offset| offset.offset), Some(40));
    }
    // Another producer's marker for a partition this node does not host.
    assert_eq!(coordinator.complete_transaction(3, 7, true), Err(ErrorCode::NotCoordinator));

    // Loading the log rebuilds the same committed and pending offsets.
    let mut fresh = GroupCoordinatorShard::new(0, GroupConfig::default());
    load_shard(&partition, &mut fresh).expect("loads");
    assert_eq!(committed(&fresh, "t", 0), Some(10));
    assert_eq!(committed(&fresh, "t", 1), Some(20));
    assert_eq!(committed(&fresh, "t", 2), None);
    assert_eq!(fresh.offsets().pending_producers(), vec![7]);
    assert_eq!(fresh.offsets().pending(7, "g", "t", 2).map(|offset| offset.offset), Some(40));

    // The marker written by someone else, then told to the shard.
    let marker = TxnMarker { producer_epoch: 2, ..txn_marker(7, true) };
    partition.log.append_transaction_marker(marker, 0, now_ms()).expect("marker");
    coordinator.complete_transaction(0, 7, true).expect("completes");
    assert_eq!(committed(&shard.lock().shard, "t", 2), Some(40));
    let mut fresh = GroupCoordinatorShard::new(0, GroupConfig::default());
    load_shard(&partition, &mut fresh).expect("loads");
    assert_eq!(committed(&fresh, "t", 2), Some(40));
    assert!(fresh.offsets().pending_producers().is_empty());
}
