//! The runtime against a real partition log in a temporary directory.

use super::*;
use crate::coordinator_runtime::visit_active;
use crate::partitions::Partition;
use gregor_protocol::messages::offset_commit_key::OffsetCommitKey;
use gregor_protocol::messages::offset_commit_value::OffsetCommitValue;
use gregor_storage::io::OsFileIo;
use gregor_storage::{Log, LogConfig, OpenOptions, TopicPartition};
use std::time::Duration;

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

/// A coordinator hosting `partition` at leader epoch 0, loaded from its log.
fn coordinator_with(partition: &Arc<Partition>) -> (GroupCoordinator, Context) {
    let coordinator = GroupCoordinator::default();
    let context = coordinator.runtime.host_for_test(Arc::clone(partition), 0, GroupConfig::default());
    context.load_for_test(|| {}).expect("loads");
    (coordinator, context)
}

/// Applies `effects` to the context's shard (appended, then replayed).
fn apply(context: &Context, effects: Effects) -> Result<(), ErrorCode> {
    context.write(|_| (effects, ())).map(|_| ())
}

/// The whole log replayed into a new shard.
fn reload(partition: &Arc<Partition>) -> Context {
    coordinator_with(partition).1
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
    apply(&shard, effects(vec![commit("t", 0, 10)], Some((5, 0)))).expect("txn append");
    apply(&shard, effects(vec![commit("t", 1, 20)], None)).expect("plain append");
    {
        let state = shard.lock();
        assert!(state.shard.offsets().has_pending("g", "t", 0));
        assert_eq!(committed(&state.shard, "t", 0), None);
        assert_eq!(committed(&state.shard, "t", 1), Some(20));
    }
    // The open transaction holds the partition's LSO at its first offset.
    assert_eq!(partition.log.last_stable_offset(), 0);
    coordinator.write_marker_and_complete(0, txn_marker(5, true)).expect("commit marker");
    assert_eq!(partition.log.last_stable_offset(), partition.log.log_end_offset());
    assert_eq!(committed(&shard.lock().shard, "t", 0), Some(10));

    apply(&shard, effects(vec![commit("t", 0, 30)], Some((6, 0)))).expect("txn append");
    coordinator.write_marker_and_complete(0, txn_marker(6, false)).expect("abort marker");
    assert_eq!(committed(&shard.lock().shard, "t", 0), Some(10));
    apply(&shard, effects(vec![commit("t", 2, 40)], Some((7, 2)))).expect("txn append");
    // A fenced producer epoch: the append fails with the storage's error and
    // nothing is replayed.
    let fenced = apply(&shard, effects(vec![commit("t", 2, 41)], Some((7, 1))));
    assert_eq!(fenced, Err(ErrorCode::InvalidProducerEpoch));
    assert_eq!(shard.lock().shard.offsets().pending(7, "g", "t", 2).map(|offset| offset.offset), Some(40));
    // A marker for a partition this node does not host.
    assert_eq!(coordinator.write_marker_and_complete(3, txn_marker(7, true)), Err(ErrorCode::NotCoordinator));

    // Loading the log rebuilds the same committed and pending offsets.
    let fresh = reload(&partition);
    let fresh = fresh.lock();
    let fresh = &fresh.shard;
    assert_eq!(committed(fresh, "t", 0), Some(10));
    assert_eq!(committed(fresh, "t", 1), Some(20));
    assert_eq!(committed(fresh, "t", 2), None);
    assert_eq!(fresh.offsets().pending_producers(), vec![7]);
    assert_eq!(fresh.offsets().pending(7, "g", "t", 2).map(|offset| offset.offset), Some(40));

    let marker = TxnMarker { producer_epoch: 2, ..txn_marker(7, true) };
    coordinator.write_marker_and_complete(0, marker).expect("commit marker");
    assert_eq!(committed(&shard.lock().shard, "t", 2), Some(40));
    let fresh = reload(&partition);
    let fresh = fresh.lock();
    let fresh = &fresh.shard;
    assert_eq!(committed(fresh, "t", 2), Some(40));
    assert!(fresh.offsets().pending_producers().is_empty());
}

/// A committed offset (OffsetFetch), a group's state (DescribeGroups), the group ids
/// (ListGroups).
type Answers = (Result<Option<i64>, ErrorCode>, Result<String, ErrorCode>, Result<Vec<String>, ErrorCode>);

/// What OffsetFetch and DescribeGroups (`read`) and ListGroups (`visit_all`) get from
/// the coordinator (their blocking halves), each on a thread of its own so that a read stuck on the shard's
/// lock fails the test instead of hanging it.
fn reads_within(coordinator: &Arc<GroupCoordinator>, shard: &Context, timeout: Duration) -> Answers {
    let (sender, receiver) = std::sync::mpsc::channel();
    let (coordinator, shard) = (Arc::clone(coordinator), Arc::clone(shard));
    std::thread::spawn(move || {
        let context = RequestContext {
            api_version: 5,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            now_ms: now_ms(),
            reply: 0,
        };
        let offset = shard.read(|loaded| committed(loaded, "t", 0));
        let described = shard.read(|loaded| loaded.describe_group(&context, "g").group_state);
        let listed = match visit_active(&coordinator.runtime.contexts(), |loaded| {
            loaded.list_groups(&[], &[]).into_iter().map(|group| group.group_id).collect::<Vec<_>>()
        }) {
            (_, Some(error)) => Err(error),
            (listed, None) => Ok(listed),
        };
        let _ = sender.send((offset, described, listed));
    });
    receiver.recv_timeout(timeout).expect("the coordinator answered without waiting for the load")
}

#[test]
fn requests_answer_load_in_progress_while_a_shard_loads_then_see_its_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = open_partition(dir.path());
    {
        let (_, writer) = coordinator_with(&partition);
        for index in 0..200 {
            apply(&writer, effects(vec![commit("t", index, i64::from(index) + 1)], None)).expect("append");
        }
        apply(&writer, effects(vec![commit("t", 0, 500)], Some((9, 0)))).expect("txn append");
    }

    // A restarted node: the shard is hosted and loading, and its load is held
    // before its first read of the log.
    let coordinator = Arc::new(GroupCoordinator::default());
    let shard = coordinator.runtime.host_for_test(Arc::clone(&partition), 0, GroupConfig::default());
    let (reading, read_started) = std::sync::mpsc::channel();
    let (resume, resumed) = std::sync::mpsc::channel::<()>();
    let loader = {
        let shard = Arc::clone(&shard);
        std::thread::spawn(move || {
            let mut first = true;
            shard.load_for_test(move || {
                if std::mem::take(&mut first) {
                    let _ = reading.send(());
                    let _ = resumed.recv();
                }
            })
        })
    };
    read_started.recv_timeout(Duration::from_secs(10)).expect("the load started");

    // The load is paused until `resume`: a read that waited for it would never be
    // answered within the timeout, so no wall-clock bound is needed here.
    let (offset, described, listed) = reads_within(&coordinator, &shard, Duration::from_secs(5));
    assert_eq!(offset, Err(ErrorCode::CoordinatorLoadInProgress));
    assert_eq!(described, Err(ErrorCode::CoordinatorLoadInProgress));
    assert_eq!(listed, Err(ErrorCode::CoordinatorLoadInProgress));

    // A transaction's COMMIT marker written while the shard loads: appended under the
    // lock, replayed by the load before it swaps its shard in.
    let marker = TxnMarker { producer_id: 9, producer_epoch: 0, coordinator_epoch: 0, commit: true };
    coordinator.write_marker_and_complete(0, marker).expect("marker appended while loading");

    resume.send(()).expect("loader waits");
    assert_eq!(loader.join().expect("load thread").expect("loads").0, 201);
    let (offset, described, listed) = reads_within(&coordinator, &shard, Duration::from_secs(5));
    assert_eq!(offset, Ok(Some(500)));
    assert_eq!(described, Ok("Empty".to_string()));
    assert_eq!(listed, Ok(vec!["g".to_string()]));
    assert_eq!(committed(&shard.lock().shard, "t", 199), Some(200));
}
