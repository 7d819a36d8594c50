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

/// A one-node server with one `__consumer_offsets` partition and a long initial
/// rebalance delay (a JoinGroup waits in the shard).
async fn start(dir: &std::path::Path) -> crate::server::RunningServer {
    let log_dir = dir.to_string_lossy().to_string();
    let config = gregor_config::BrokerConfig::from_pairs(&[
        ("log.dirs", log_dir.as_str()),
        ("listeners", "PLAINTEXT://127.0.0.1:0"),
        ("offsets.topic.num.partitions", "1"),
        ("group.initial.rebalance.delay.ms", "60000"),
    ])
    .expect("config")
    .config;
    crate::server::run(config).await.expect("server starts")
}

/// What the broker's controller writes when partition 0 of `__consumer_offsets`
/// gets leader `leader` (-1: none, as when its leader is fenced).
async fn move_leader(broker: &Arc<Broker>, leader: i32) {
    use gregor_metadata::MetadataRecord;
    use gregor_protocol::messages::partition_change_record::PartitionChangeRecord;
    let topic_id = broker.image().topic(OFFSETS_TOPIC).expect("topic").id;
    let change = PartitionChangeRecord { partition_id: 0, topic_id, leader, ..PartitionChangeRecord::default() };
    broker.decide(move |_, _| (vec![MetadataRecord::PartitionChange(change)], ())).await.expect("decided");
}

/// The committed offset of g/t-0, once the shard answers something other than
/// COORDINATOR_LOAD_IN_PROGRESS.
async fn committed_offset(broker: &Arc<Broker>) -> Result<Option<i64>, ErrorCode> {
    let source = RequestContextSource { api_version: 5, client_id: "c", client_host: "/127.0.0.1" };
    for _ in 0..500 {
        match broker.groups.read(broker, &source, "g", |shard, _, _| committed(shard, "t", 0)).await {
            Err(ErrorCode::CoordinatorLoadInProgress) => tokio::time::sleep(Duration::from_millis(10)).await,
            answer => return answer,
        }
    }
    panic!("the shard never loaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_coordinator_follows_leadership_of_its_partition() {
    use gregor_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let broker = Arc::clone(&server.broker);
    assert_eq!(broker.groups.ensure_topic(&broker).await, Ok(1));
    assert_eq!(committed_offset(&broker).await, Ok(None));
    let source = RequestContextSource { api_version: 8, client_id: "c", client_host: "/127.0.0.1" };
    let commit_written = broker.groups.decide_value(&broker, &source, "g", |_, _| (vec![commit("t", 0, 10)], ()));
    commit_written.await.expect("committed");
    assert_eq!(committed_offset(&broker).await, Ok(Some(10)));

    // A JoinGroup (v3: no member id round trip) waits out the initial rebalance delay.
    let join = {
        let broker = Arc::clone(&broker);
        let header = gregor_protocol::messages::RequestHeader {
            request_api_key: 11,
            request_api_version: 3,
            client_id: Some("c".into()),
            ..Default::default()
        };
        let request = JoinGroupRequest {
            group_id: "g".into(),
            session_timeout_ms: 30_000,
            rebalance_timeout_ms: 60_000,
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupRequestProtocol { name: "range".into(), ..Default::default() }],
            ..Default::default()
        };
        let peer: std::net::SocketAddr = "127.0.0.1:9".parse().expect("address");
        tokio::spawn(async move {
            let context = crate::request_context::RequestContext::plaintext(peer);
            crate::handlers::join_group::handle(&broker, &header, &context, request).await
        })
    };
    let source = RequestContextSource { api_version: 5, client_id: "c", client_host: "/127.0.0.1" };
    let mut joining = false;
    for _ in 0..500 {
        let state = broker
            .groups
            .read(&broker, &source, "g", |shard, context, _| shard.describe_group(context, "g").group_state);
        if state.await == Ok("PreparingRebalance".to_string()) {
            joining = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(joining, "the join is waiting in the shard");

    // The controller takes leadership away: the parked join and new requests answer
    // NOT_COORDINATOR, and the shard is gone.
    move_leader(&broker, -1).await;
    let joined = tokio::time::timeout(Duration::from_secs(10), join).await.expect("answered").expect("task");
    let ResponseBody::JoinGroup(joined) = joined else { panic!("{joined:?}") };
    assert_eq!(joined.error_code, ErrorCode::NotCoordinator.code());
    assert_eq!(committed_offset(&broker).await, Err(ErrorCode::NotCoordinator));
    assert!(broker.groups.runtime.context(0).is_none());

    // Leadership comes back at a new epoch: the shard is loaded again from its log.
    move_leader(&broker, broker.node_id).await;
    assert_eq!(committed_offset(&broker).await, Ok(Some(10)));
    let context = broker.groups.runtime.context(0).expect("hosted");
    assert_eq!(context.leader_epoch(), broker.image().topic(OFFSETS_TOPIC).expect("topic").partitions[&0].leader_epoch);
    assert_eq!(context.leader_epoch(), 2);
    server.shutdown().await.expect("shuts down");
}
