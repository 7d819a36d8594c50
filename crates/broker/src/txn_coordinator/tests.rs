//! The transaction coordinator runtime driven through the handlers against a broker
//! in a temporary directory: InitProducerId → AddPartitionsToTxn → a transactional
//! batch → EndTxn commit, whose marker the runtime writes and completes.

use super::*;
use crate::coordinator_runtime::visit_active;
use crate::handlers;
use crate::partitions::Partition;
use bytes::Bytes;
use gregor_metadata::controller::create_topics;
use gregor_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use gregor_protocol::messages::add_partitions_to_txn_request::{AddPartitionsToTxnRequest, AddPartitionsToTxnTopic};
use gregor_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use gregor_protocol::messages::end_txn_request::EndTxnRequest;
use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::messages::list_transactions_request::ListTransactionsRequest;
use gregor_protocol::messages::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use gregor_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::records::RecordBatchBuilder;

/// A PLAINTEXT client's context, for calling handlers directly.
fn test_session() -> crate::request_context::RequestContext {
    crate::request_context::RequestContext::plaintext(std::net::SocketAddr::from(([127, 0, 0, 1], 9)))
}

fn header(api_key: i16, version: i16) -> RequestHeader {
    RequestHeader {
        request_api_key: api_key,
        request_api_version: version,
        correlation_id: 1,
        client_id: Some("test".into()),
        ..RequestHeader::default()
    }
}

async fn wait_for<T>(mut attempt: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..500 {
        if let Some(value) = attempt().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out");
}

async fn start(dir: &std::path::Path) -> crate::server::RunningServer {
    let log_dir = dir.to_string_lossy().to_string();
    let config = gregor_config::BrokerConfig::from_pairs(&[
        ("log.dirs", log_dir.as_str()),
        ("listeners", "PLAINTEXT://127.0.0.1:0"),
        ("transaction.state.log.num.partitions", "2"),
        ("offsets.topic.num.partitions", "1"),
    ])
    .expect("config")
    .config;
    crate::server::run(config).await.expect("server starts")
}

async fn init_producer_id(
    broker: &Arc<Broker>,
) -> gregor_protocol::messages::init_producer_id_response::InitProducerIdResponse {
    wait_for(async || {
        let request = InitProducerIdRequest {
            transactional_id: Some("tx".into()),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..InitProducerIdRequest::default()
        };
        let response = handlers::init_producer_id::handle(broker, &header(22, 4), &test_session(), request).await;
        (response.error_code != ErrorCode::CoordinatorLoadInProgress.code()).then_some(response)
    })
    .await
}

/// Produces one transactional record (sequence 0) through the Produce handler;
/// returns the partition's error code.
async fn produce(broker: &Arc<Broker>, topic: &str, index: i32, producer_id: i64, producer_epoch: i16) -> i16 {
    produce_at(broker, 9, topic, index, (producer_id, producer_epoch, 0)).await
}

/// [`produce`] at a Produce `version`, with (producer id, epoch, base sequence).
async fn produce_at(broker: &Arc<Broker>, version: i16, topic: &str, index: i32, producer: (i64, i16, i32)) -> i16 {
    let (producer_id, producer_epoch, sequence) = producer;
    let mut builder = RecordBatchBuilder::new(0).producer(producer_id, producer_epoch, sequence).transactional(true);
    builder.append(now_ms(), None, Some(Bytes::from_static(b"value")), Vec::new()).expect("record");
    let request = ProduceRequest {
        transactional_id: Some("tx".into()),
        acks: -1,
        timeout_ms: 5_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index,
                records: Some(Bytes::from(builder.build().expect("batch"))),
                ..PartitionProduceData::default()
            }],
            ..TopicProduceData::default()
        }],
        ..ProduceRequest::default()
    };
    match handlers::produce::handle(broker, &header(0, version), &test_session(), request).await {
        crate::dispatch::Outcome::Respond(ResponseBody::Produce(response)) => {
            response.responses[0].partition_responses[0].error_code
        }
        _ => panic!("no produce response"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_commits_through_the_handlers_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let broker = Arc::clone(&server.broker);

    let find = FindCoordinatorRequest {
        key_type: 1,
        coordinator_keys: vec!["tx".into()],
        ..FindCoordinatorRequest::default()
    };
    let found = handlers::find_coordinator::handle(&broker, &header(10, 4), &test_session(), find).await;
    assert_eq!(found.coordinators[0].error_code, 0);
    assert_eq!(found.coordinators[0].node_id, broker.node_id);
    assert!(broker.image().topic(TXN_TOPIC).is_some());

    let topic = NewTopic {
        name: "t".into(),
        num_partitions: 2,
        replication_factor: 1,
        assignments: Vec::new(),
        configs: Vec::new(),
    };
    broker.decide(move |image, context| create_topics(image, context, &[topic], false)).await.expect("create t");
    let partition = broker.replicas.get("t", 0).expect("t-0 hosted");

    let init = init_producer_id(&broker).await;
    assert_eq!(init.error_code, 0, "{init:?}");
    assert!(init.producer_id >= 0);
    assert_eq!(init.producer_epoch, 0);

    let add = AddPartitionsToTxnRequest {
        v3_and_below_transactional_id: "tx".into(),
        v3_and_below_producer_id: init.producer_id,
        v3_and_below_producer_epoch: init.producer_epoch,
        v3_and_below_topics: vec![AddPartitionsToTxnTopic {
            name: "t".into(),
            partitions: vec![0],
            ..AddPartitionsToTxnTopic::default()
        }],
        ..AddPartitionsToTxnRequest::default()
    };
    let added = handlers::add_partitions_to_txn::handle(&broker, &header(24, 3), &test_session(), add).await;
    let codes: Vec<i16> = added
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|topic| topic.results_by_partition.iter().map(|p| p.partition_error_code))
        .collect();
    assert_eq!(codes, vec![0], "{added:?}");

    let commit = TxnOffsetCommitRequest {
        transactional_id: "tx".into(),
        group_id: "g".into(),
        producer_id: init.producer_id,
        producer_epoch: init.producer_epoch,
        generation_id: -1,
        topics: vec![TxnOffsetCommitRequestTopic {
            name: "t".into(),
            partitions: vec![TxnOffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: 1,
                committed_leader_epoch: -1,
                ..TxnOffsetCommitRequestPartition::default()
            }],
            ..TxnOffsetCommitRequestTopic::default()
        }],
        ..TxnOffsetCommitRequest::default()
    };
    let txn_offset_commit = async |request: &TxnOffsetCommitRequest| {
        wait_for(async || {
            let response =
                handlers::txn_offset_commit::handle(&broker, &header(28, 3), &test_session(), request.clone()).await;
            let ResponseBody::TxnOffsetCommit(response) = response else { panic!("{response:?}") };
            let code = response.topics[0].partitions[0].error_code;
            (code != ErrorCode::CoordinatorLoadInProgress.code()).then_some(code)
        })
        .await
    };
    // KIP-890 verification: offsets of a group whose partition is not in the
    // transaction yet are refused.
    let find_group =
        FindCoordinatorRequest { key_type: 0, coordinator_keys: vec!["g".into()], ..FindCoordinatorRequest::default() };
    let found = handlers::find_coordinator::handle(&broker, &header(10, 4), &test_session(), find_group).await;
    assert_eq!(found.coordinators[0].error_code, 0);
    assert_eq!(txn_offset_commit(&commit).await, ErrorCode::InvalidTxnState.code());

    // The group's offsets join the transaction and are committed with it.
    let add_offsets = AddOffsetsToTxnRequest {
        transactional_id: "tx".into(),
        producer_id: init.producer_id,
        producer_epoch: init.producer_epoch,
        group_id: "g".into(),
        ..AddOffsetsToTxnRequest::default()
    };
    let added = handlers::add_offsets_to_txn::handle(&broker, &header(25, 3), &test_session(), add_offsets).await;
    assert_eq!(added.error_code, 0, "{added:?}");
    assert_eq!(txn_offset_commit(&commit).await, 0);
    let offsets = broker.replicas.get(OFFSETS_TOPIC, 0).expect("__consumer_offsets-0 hosted");
    assert!(offsets.log.last_stable_offset() < offsets.log.log_end_offset(), "pending offsets hold the LSO");

    let code = produce(&broker, "t", 0, init.producer_id, init.producer_epoch).await;
    assert_eq!(code, 0, "a partition of the transaction takes the batch");
    assert_eq!(partition.log.last_stable_offset(), 0, "the open transaction holds the LSO");
    // KIP-890 verification: a partition never added to the transaction is refused
    // before anything is written, and clients never write to the internal topics.
    let code = produce(&broker, "t", 1, init.producer_id, init.producer_epoch).await;
    assert_eq!(code, ErrorCode::InvalidTxnState.code());
    let stray = broker.replicas.get("t", 1).expect("t-1 hosted");
    assert_eq!((stray.log.log_end_offset(), stray.log.last_stable_offset()), (0, 0));
    let code = produce(&broker, TXN_TOPIC, 0, init.producer_id, init.producer_epoch).await;
    assert_eq!(code, ErrorCode::InvalidTopicException.code());

    let listed = handlers::list_transactions::handle(
        &broker,
        &header(66, 0),
        &test_session(),
        ListTransactionsRequest::default(),
    )
    .await;
    assert_eq!(listed.error_code, 0);
    assert_eq!(listed.transaction_states.len(), 1);
    assert_eq!(listed.transaction_states[0].transaction_state, "Ongoing");

    let end = EndTxnRequest {
        transactional_id: "tx".into(),
        producer_id: init.producer_id,
        producer_epoch: init.producer_epoch,
        committed: true,
        ..EndTxnRequest::default()
    };
    let ended = handlers::end_txn::handle(&broker, &header(26, 3), &test_session(), end).await;
    assert_eq!(ended.error_code, 0, "{ended:?}");

    // The runtime writes the COMMIT marker and completes the transaction.
    wait_for(async || {
        let request = DescribeTransactionsRequest { transactional_ids: vec!["tx".into()], ..Default::default() };
        let described =
            handlers::describe_transactions::handle(&broker, &header(65, 0), &test_session(), request).await;
        (described.transaction_states[0].transaction_state == "CompleteCommit").then_some(())
    })
    .await;
    assert_eq!(partition.log.last_stable_offset(), partition.log.log_end_offset());
    assert_eq!(partition.log.log_end_offset(), 2, "the record and the COMMIT marker");
    assert_eq!(offsets.log.last_stable_offset(), offsets.log.log_end_offset(), "the group's marker too");

    server.shutdown().await.expect("shutdown");
    drop(partition);
    drop(offsets);
    drop(broker);

    // After a restart the shard is loaded from `__transaction_state`: the same
    // producer id, its epoch bumped by the next InitProducerId.
    let server = start(dir.path()).await;
    let broker = Arc::clone(&server.broker);
    let again = init_producer_id(&broker).await;
    assert_eq!(again.error_code, 0, "{again:?}");
    assert_eq!(again.producer_id, init.producer_id);
    assert_eq!(again.producer_epoch, init.producer_epoch + 1);
    server.shutdown().await.expect("shutdown");
}

/// Kafka's `kafka-transactions.sh abort` for a hanging transaction the coordinator
/// does not know (here: a batch appended straight to the log, as a zombie's late
/// write would have been before KIP-890): DescribeProducers shows the open
/// transaction and its coordinator epoch, WriteTxnMarkers aborts it, and the last
/// stable offset moves past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_txn_markers_aborts_a_hanging_transaction_found_with_describe_producers() {
    use gregor_protocol::messages::describe_producers_request::{DescribeProducersRequest, TopicRequest};
    use gregor_protocol::messages::write_txn_markers_request::{
        WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let broker = Arc::clone(&server.broker);
    let topic = NewTopic {
        name: "h".into(),
        num_partitions: 1,
        replication_factor: 1,
        assignments: Vec::new(),
        configs: Vec::new(),
    };
    broker.decide(move |image, context| create_topics(image, context, &[topic], false)).await.expect("create h");
    let partition = broker.replicas.get("h", 0).expect("h-0 hosted");
    let mut builder = RecordBatchBuilder::new(0).producer(4242, 3, 0).transactional(true);
    builder.append(now_ms(), None, Some(Bytes::from_static(b"hanging")), Vec::new()).expect("record");
    let batch = bytes::BytesMut::from(&builder.build().expect("batch")[..]);
    partition.log.append_as_leader(batch, partition.leader_epoch(), now_ms()).expect("append");
    assert_eq!((partition.log.last_stable_offset(), partition.log.log_end_offset()), (0, 1));

    let describe = || DescribeProducersRequest {
        topics: vec![TopicRequest { name: "h".into(), partition_indexes: vec![0], ..TopicRequest::default() }],
        ..DescribeProducersRequest::default()
    };
    let described = handlers::describe_producers::handle(&broker, &header(61, 0), &test_session(), describe()).await;
    let producers = &described.topics[0].partitions[0].active_producers;
    assert_eq!(producers.len(), 1, "{described:?}");
    assert_eq!((producers[0].producer_id, producers[0].producer_epoch), (4242, 3));
    assert_eq!(producers[0].current_txn_start_offset, 0);
    let coordinator_epoch = producers[0].coordinator_epoch;

    let abort = WriteTxnMarkersRequest {
        markers: vec![WritableTxnMarker {
            producer_id: 4242,
            producer_epoch: 3,
            transaction_result: false,
            coordinator_epoch: coordinator_epoch.max(0),
            topics: vec![WritableTxnMarkerTopic {
                name: "h".into(),
                partition_indexes: vec![0],
                ..WritableTxnMarkerTopic::default()
            }],
            ..WritableTxnMarker::default()
        }],
        ..WriteTxnMarkersRequest::default()
    };
    let written = handlers::write_txn_markers::handle(&broker, &header(27, 1), &test_session(), abort.clone()).await;
    assert_eq!(written.markers[0].topics[0].partitions[0].error_code, 0, "{written:?}");
    assert_eq!(partition.log.last_stable_offset(), 2, "the ABORT marker closed the transaction");
    assert_eq!(partition.log.aborted_transactions(0, 2).len(), 1);
    let described = handlers::describe_producers::handle(&broker, &header(61, 0), &test_session(), describe()).await;
    assert_eq!(described.topics[0].partitions[0].active_producers[0].current_txn_start_offset, -1);

    // A stale producer epoch is refused per partition, and an unknown partition too.
    let mut stale = abort;
    stale.markers[0].producer_epoch = 2;
    stale.markers[0].topics[0].partition_indexes = vec![0, 9];
    let refused = handlers::write_txn_markers::handle(&broker, &header(27, 1), &test_session(), stale).await;
    let codes: Vec<i16> = refused.markers[0].topics[0].partitions.iter().map(|p| p.error_code).collect();
    assert_eq!(codes, vec![ErrorCode::InvalidProducerEpoch.code(), ErrorCode::UnknownTopicOrPartition.code()]);
    server.shutdown().await.expect("shutdown");
}

/// KIP-890 part 2 as a Java 4.x producer uses it once `transaction.version` is 2:
/// Produce v12 and TxnOffsetCommit v5 add their partitions to the transaction
/// themselves, and EndTxn v5 ends every transaction with an epoch bump that the
/// markers carry; older request versions keep the old behaviour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_version_2_adds_partitions_implicitly_and_bumps_the_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let broker = Arc::clone(&server.broker);
    assert_eq!(broker.txns.transaction_version(&broker), 2, "new clusters finalize transaction.version 2");
    for key_type in [0, 1] {
        let key = if key_type == 0 { "g" } else { "tx" };
        let find = FindCoordinatorRequest {
            key_type,
            coordinator_keys: vec![key.into()],
            ..FindCoordinatorRequest::default()
        };
        let found = handlers::find_coordinator::handle(&broker, &header(10, 4), &test_session(), find).await;
        assert_eq!(found.coordinators[0].error_code, 0);
    }
    let topic = NewTopic {
        name: "t".into(),
        num_partitions: 2,
        replication_factor: 1,
        assignments: Vec::new(),
        configs: Vec::new(),
    };
    broker.decide(move |image, context| create_topics(image, context, &[topic], false)).await.expect("create t");
    let partition = broker.replicas.get("t", 0).expect("t-0 hosted");
    let init = init_producer_id(&broker).await;
    assert_eq!(init.error_code, 0, "{init:?}");
    let (producer_id, epoch) = (init.producer_id, init.producer_epoch);

    // Produce v12 without AddPartitionsToTxn: the partition joins the transaction.
    assert_eq!(produce_at(&broker, 12, "t", 0, (producer_id, epoch, 0)).await, 0);
    let describe = async || {
        let request = DescribeTransactionsRequest { transactional_ids: vec!["tx".into()], ..Default::default() };
        handlers::describe_transactions::handle(&broker, &header(65, 0), &test_session(), request)
            .await
            .transaction_states
            .remove(0)
    };
    let state = describe().await;
    assert_eq!(state.transaction_state, "Ongoing");
    assert_eq!(state.topics[0].topic, "t");
    assert_eq!(state.topics[0].partitions, vec![0]);
    // An older Produce version is only verified: t-1 was never added.
    assert_eq!(produce_at(&broker, 11, "t", 1, (producer_id, epoch, 0)).await, ErrorCode::InvalidTxnState.code());

    // TxnOffsetCommit v5 without AddOffsetsToTxn.
    let commit = TxnOffsetCommitRequest {
        transactional_id: "tx".into(),
        group_id: "g".into(),
        producer_id,
        producer_epoch: epoch,
        generation_id: -1,
        topics: vec![TxnOffsetCommitRequestTopic {
            name: "t".into(),
            partitions: vec![TxnOffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: 1,
                committed_leader_epoch: -1,
                ..TxnOffsetCommitRequestPartition::default()
            }],
            ..TxnOffsetCommitRequestTopic::default()
        }],
        ..TxnOffsetCommitRequest::default()
    };
    let committed = wait_for(async || {
        let response =
            handlers::txn_offset_commit::handle(&broker, &header(28, 5), &test_session(), commit.clone()).await;
        let ResponseBody::TxnOffsetCommit(response) = response else { panic!("{response:?}") };
        let code = response.topics[0].partitions[0].error_code;
        (code != ErrorCode::CoordinatorLoadInProgress.code()).then_some(code)
    })
    .await;
    assert_eq!(committed, 0);
    assert_eq!(describe().await.topics.len(), 2, "t and __consumer_offsets are in the transaction");

    // EndTxn v5 commits with an epoch bump; the markers carry the new epoch.
    let end = |producer_epoch: i16, committed: bool| EndTxnRequest {
        transactional_id: "tx".into(),
        producer_id,
        producer_epoch,
        committed,
        ..EndTxnRequest::default()
    };
    let ended = handlers::end_txn::handle(&broker, &header(26, 5), &test_session(), end(epoch, true)).await;
    assert_eq!((ended.error_code, ended.producer_id, ended.producer_epoch), (0, producer_id, epoch + 1));
    wait_for(async || (describe().await.transaction_state == "CompleteCommit").then_some(())).await;
    assert_eq!(partition.log.last_stable_offset(), partition.log.log_end_offset());
    let producers = partition.log.producer_states();
    assert_eq!(producers[0].producer_epoch, epoch + 1, "the COMMIT marker carries the bumped epoch");
    // The group's offset committed with the transaction, stable.
    let fetch = gregor_protocol::messages::offset_fetch_request::OffsetFetchRequest {
        group_id: "g".into(),
        topics: None,
        require_stable: true,
        ..Default::default()
    };
    let fetched = handlers::offset_fetch::handle(&broker, &header(9, 7), &test_session(), fetch).await;
    assert_eq!(fetched.error_code, 0, "{fetched:?}");
    let offsets: Vec<(i32, i64, i16)> =
        fetched.topics[0].partitions.iter().map(|p| (p.partition_index, p.committed_offset, p.error_code)).collect();
    assert_eq!(offsets, vec![(0, 1, 0)]);

    // A retry of that EndTxn with the old epoch is answered as done.
    let retried = handlers::end_txn::handle(&broker, &header(26, 5), &test_session(), end(epoch, true)).await;
    assert_eq!(retried.error_code, 0, "{retried:?}");

    // The next transaction runs at the new epoch from sequence 0; the old epoch is fenced.
    assert_eq!(produce_at(&broker, 12, "t", 0, (producer_id, epoch, 1)).await, ErrorCode::InvalidProducerEpoch.code());
    assert_eq!(produce_at(&broker, 12, "t", 0, (producer_id, epoch + 1, 0)).await, 0);
    let aborted = handlers::end_txn::handle(&broker, &header(26, 5), &test_session(), end(epoch + 1, false)).await;
    assert_eq!((aborted.error_code, aborted.producer_epoch), (0, epoch + 2));
    wait_for(async || (describe().await.transaction_state == "CompleteAbort").then_some(())).await;
    assert_eq!(partition.log.last_stable_offset(), partition.log.log_end_offset());

    // EndTxn below v5 keeps the epoch (transaction version 1 for that client).
    assert_eq!(produce_at(&broker, 12, "t", 0, (producer_id, epoch + 2, 0)).await, 0);
    let ended = handlers::end_txn::handle(&broker, &header(26, 4), &test_session(), end(epoch + 2, true)).await;
    assert_eq!(ended.error_code, 0, "{ended:?}");
    wait_for(async || (describe().await.transaction_state == "CompleteCommit").then_some(())).await;
    assert_eq!(describe().await.producer_epoch, epoch + 2);
    server.shutdown().await.expect("shutdown");
}

/// `__transaction_state` partition 0 in `dir`, for runtime tests without a broker.
fn open_txn_partition(dir: &std::path::Path) -> Arc<Partition> {
    use gregor_storage::io::OsFileIo;
    use gregor_storage::{Log, LogConfig, OpenOptions, TopicPartition};
    let config = LogConfig { cleanup_policy_compact: true, ..LogConfig::default() };
    let options = OpenOptions { recovery_point: 0, log_start_offset: None, clean_shutdown: true, now_ms: now_ms() };
    let log = Log::open(
        Arc::new(OsFileIo),
        &dir.join("__transaction_state-0"),
        TopicPartition::new(TXN_TOPIC, 0),
        config,
        options,
    )
    .expect("log opens");
    Arc::new(Partition::new(TXN_TOPIC.into(), 0, gregor_protocol::Uuid::ZERO, Arc::new(log), 0))
}

/// `partition` hosted by `coordinator` at leader epoch 0, loaded when `loaded`.
fn txn_shard(coordinator: &TxnCoordinator, partition: &Arc<Partition>, loaded: bool) -> Context {
    let context = coordinator.runtime.host_for_test(Arc::clone(partition), 0, TxnConfig::default());
    if loaded {
        context.load_for_test(|| {}).expect("loads");
    }
    context
}

/// DescribeTransactions (`read`) and ListTransactions (`visit_all`) as the
/// coordinator answers them, from a thread of its own so that a read stuck on the
/// shard's lock fails the test instead of hanging it.
fn txn_reads_within(
    coordinator: &Arc<TxnCoordinator>,
    shard: &Context,
) -> (Result<usize, ErrorCode>, (Vec<String>, Option<ErrorCode>)) {
    let (sender, receiver) = std::sync::mpsc::channel();
    let (coordinator, shard) = (Arc::clone(coordinator), Arc::clone(shard));
    std::thread::spawn(move || {
        let described = shard.read(|loaded| loaded.transaction_count());
        let listed = visit_active(&coordinator.runtime.contexts(), |loaded| {
            let listed = loaded.list_transactions(&ListTransactionsRequest::default(), now_ms());
            listed.transaction_states.into_iter().map(|state| state.transactional_id).collect()
        });
        let _ = sender.send((described, listed));
    });
    receiver.recv_timeout(Duration::from_secs(5)).expect("the coordinator answered without waiting for the load")
}

#[test]
fn transaction_requests_answer_load_in_progress_while_a_shard_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = open_txn_partition(dir.path());
    {
        let writer = txn_shard(&TxnCoordinator::default(), &partition, true);
        for (index, transactional_id) in ["a", "b", "c"].into_iter().enumerate() {
            let context = RequestContext { api_version: 4, now_ms: now_ms(), reply: 0 };
            let request = InitProducerIdRequest {
                transactional_id: Some(transactional_id.into()),
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
                ..InitProducerIdRequest::default()
            };
            let init =
                |shard: &mut TxnCoordinatorShard| (shard.init_producer_id(&context, request, 1000 + index as i64), ());
            writer.write(init).expect("append");
        }
    }

    let coordinator = Arc::new(TxnCoordinator::default());
    let shard = txn_shard(&coordinator, &partition, false);
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
    let (described, (listed, list_error)) = txn_reads_within(&coordinator, &shard);
    assert_eq!(described, Err(ErrorCode::CoordinatorLoadInProgress));
    assert_eq!((listed, list_error), (Vec::new(), Some(ErrorCode::CoordinatorLoadInProgress)));

    resume.send(()).expect("loader waits");
    let (replayed, markers) = loader.join().expect("load thread").expect("loads");
    assert_eq!(replayed, 3);
    assert!(markers.is_empty());
    let (described, (mut listed, list_error)) = txn_reads_within(&coordinator, &shard);
    listed.sort();
    assert_eq!(described, Ok(3));
    assert_eq!((listed, list_error), (vec!["a".to_string(), "b".to_string(), "c".to_string()], None));
}

/// What the broker's controller writes when `__transaction_state` partition `index`
/// gets leader `leader` (-1: none, as when its leader is fenced).
async fn move_leader(broker: &Arc<Broker>, index: i32, leader: i32) {
    use gregor_metadata::MetadataRecord;
    use gregor_protocol::messages::partition_change_record::PartitionChangeRecord;
    let topic_id = broker.image().topic(TXN_TOPIC).expect("topic").id;
    let change = PartitionChangeRecord { partition_id: index, topic_id, leader, ..PartitionChangeRecord::default() };
    broker.decide(move |_, _| (vec![MetadataRecord::PartitionChange(change)], ())).await.expect("decided");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transaction_coordinator_follows_leadership_of_its_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let broker = Arc::clone(&server.broker);
    assert_eq!(broker.txns.ensure_topic(&broker).await, Ok(2));
    let first = init_producer_id(&broker).await;
    assert_eq!((first.error_code, first.producer_epoch), (0, 0), "{first:?}");
    let index = partition_for_transactional_id("tx", 2);

    // Leadership moves away: the transactional id is not coordinated here any more.
    move_leader(&broker, index, -1).await;
    assert!(broker.txns.runtime.context(index).is_none());
    let refused = init_producer_id(&broker).await;
    assert_eq!(refused.error_code, ErrorCode::NotCoordinator.code());
    let count = broker.txns.read(&broker, "tx", |shard| shard.transaction_count()).await;
    assert_eq!(count, Err(ErrorCode::NotCoordinator));

    // It comes back at leader epoch 2: the shard reloads from its log with that
    // coordinator epoch, and the producer id survives with a bumped epoch.
    move_leader(&broker, index, broker.node_id).await;
    let again = init_producer_id(&broker).await;
    assert_eq!((again.error_code, again.producer_id, again.producer_epoch), (0, first.producer_id, 1), "{again:?}");
    let context = broker.txns.runtime.context(index).expect("hosted");
    assert_eq!(context.read(|shard| shard.coordinator_epoch()), Ok(2));
    server.shutdown().await.expect("shutdown");
}
