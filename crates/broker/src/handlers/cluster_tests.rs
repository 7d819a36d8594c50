//! The request path of a cluster member, in one process: a broker with two listeners
//! (PLAINTEXT and EXTERNAL) whose published image then registers a second broker and
//! hands it leaderships, as the controller of a cluster would.

use crate::broker::Broker;
use crate::dispatch::Outcome;
use crate::handlers;
use crate::request_context::{ConnectionContext, RequestContext};
use bytes::Bytes;
use gregor_metadata::controller::{create_topics, NewTopic};
use gregor_metadata::MetadataRecord;
use gregor_protocol::frame::encode_response_frame;
use gregor_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
};
use gregor_protocol::messages::describe_producers_request::{DescribeProducersRequest, TopicRequest};
use gregor_protocol::messages::fence_broker_record::FenceBrokerRecord;
use gregor_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::find_coordinator_response::FindCoordinatorResponse;
use gregor_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic};
use gregor_protocol::messages::metadata_request::MetadataRequest;
use gregor_protocol::messages::metadata_response::MetadataResponse;
use gregor_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderEpochRequest, OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use gregor_protocol::messages::partition_change_record::PartitionChangeRecord;
use gregor_protocol::messages::partition_record::PartitionRecord;
use gregor_protocol::messages::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use gregor_protocol::messages::produce_response::ProduceResponse;
use gregor_protocol::messages::register_broker_record::{BrokerEndpoint, RegisterBrokerRecord};
use gregor_protocol::messages::topic_record::TopicRecord;
use gregor_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::records::RecordBatchBuilder;
use gregor_protocol::{ErrorCode, ResponseBody, Uuid};
use std::sync::Arc;

const NOT_LEADER: i16 = ErrorCode::NotLeaderOrFollower.code();
/// Broker 2's registration epoch.
const NODE_2_EPOCH: i64 = 77;

async fn start(dir: &std::path::Path) -> crate::server::RunningServer {
    let log_dir = dir.to_string_lossy().to_string();
    let config = gregor_config::BrokerConfig::from_pairs(&[
        ("log.dirs", log_dir.as_str()),
        ("listeners", "PLAINTEXT://127.0.0.1:0,EXTERNAL://127.0.0.1:0"),
        ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"),
        ("offsets.topic.num.partitions", "1"),
    ])
    .expect("config")
    .config;
    crate::server::run(config).await.expect("server starts")
}

fn header(api_key: i16, version: i16) -> RequestHeader {
    RequestHeader {
        request_api_key: api_key,
        request_api_version: version,
        correlation_id: 1,
        client_id: Some("cluster-test".into()),
        ..RequestHeader::default()
    }
}

fn context(listener: &str, api_key: i16, version: i16) -> RequestContext {
    let connection = ConnectionContext::new(listener, "PLAINTEXT", "127.0.0.1:5000".parse().expect("address"));
    RequestContext::new(Arc::new(connection), &header(api_key, version))
}

/// The port this node advertises on `listener`.
fn port_of(broker: &Broker, listener: &str) -> i32 {
    let endpoint = broker.endpoints.iter().find(|endpoint| endpoint.listener_name == listener).expect("listener");
    i32::from(endpoint.port)
}

async fn create_topic(broker: &Arc<Broker>, name: &str, partitions: i32) {
    let topic = NewTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: 1,
        assignments: Vec::new(),
        configs: Vec::new(),
    };
    broker.decide(move |image, context| create_topics(image, context, &[topic], false)).await.expect("create");
}

/// Publishes the current image with `records` replayed on it, as the metadata log of
/// a cluster would deliver them.
fn publish_with(broker: &Broker, records: &[MetadataRecord]) {
    let mut image = (*broker.image()).clone();
    for record in records {
        image.replay(record).unwrap_or_else(|error| panic!("replay of {record:?}: {error}"));
    }
    broker.publish(image).expect("publish");
}

/// Broker 2, reachable on PLAINTEXT only, rack r2.
fn register_node_2() -> MetadataRecord {
    MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id: 2,
        broker_epoch: NODE_2_EPOCH,
        incarnation_id: Uuid::from_u128(2),
        end_points: vec![BrokerEndpoint {
            name: "PLAINTEXT".into(),
            host: "b2".into(),
            port: 9092,
            ..BrokerEndpoint::default()
        }],
        rack: Some("r2".into()),
        fenced: false,
        ..RegisterBrokerRecord::default()
    })
}

/// Makes broker 2 the leader of `topic`'s partition `index`, replicas [1, 2].
fn lead_by_node_2(broker: &Broker, topic: &str, index: i32) -> MetadataRecord {
    let topic_id = broker.image().topic(topic).expect("topic").id;
    MetadataRecord::PartitionChange(PartitionChangeRecord {
        partition_id: index,
        topic_id,
        leader: 2,
        replicas: Some(vec![1, 2]),
        isr: Some(vec![1, 2]),
        leader_recovery_state: -1,
        ..PartitionChangeRecord::default()
    })
}

async fn metadata(broker: &Arc<Broker>, listener: &str) -> MetadataResponse {
    let request = MetadataRequest { topics: None, ..MetadataRequest::default() };
    handlers::metadata::handle(broker, &header(3, 12), &context(listener, 3, 12), request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_answers_every_live_broker_on_the_requests_listener() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path()).await;
    let broker = Arc::clone(&server.broker);
    create_topic(&broker, "t", 2).await;
    let external_port = port_of(&broker, "EXTERNAL");
    assert_ne!(external_port, port_of(&broker, "PLAINTEXT"));

    let over_external = metadata(&broker, "EXTERNAL").await;
    let brokers: Vec<_> = over_external.brokers.iter().map(|node| (node.node_id, node.port)).collect();
    assert_eq!(brokers, vec![(1, external_port)]);
    assert_eq!(over_external.controller_id, 1);

    publish_with(&broker, &[register_node_2(), lead_by_node_2(&broker, "t", 0)]);
    let over_plaintext = metadata(&broker, "PLAINTEXT").await;
    let brokers: Vec<_> =
        over_plaintext.brokers.iter().map(|node| (node.node_id, node.host.clone(), node.rack.clone())).collect();
    assert_eq!(brokers[1], (2, "b2".to_owned(), Some("r2".to_owned())));
    assert_eq!(brokers.len(), 2);
    let t = over_plaintext.topics.iter().find(|topic| topic.name.as_deref() == Some("t")).expect("t");
    assert_eq!((t.partitions[0].leader_id, t.partitions[0].error_code), (2, 0));
    assert_eq!(t.partitions[0].replica_nodes, vec![1, 2]);
    assert_eq!(t.partitions[1].leader_id, 1);

    // Broker 2 has no EXTERNAL endpoint: left out, and its partition's leader unreachable.
    let over_external = metadata(&broker, "EXTERNAL").await;
    assert_eq!(over_external.brokers.len(), 1);
    let t = over_external.topics.iter().find(|topic| topic.name.as_deref() == Some("t")).expect("t");
    assert_eq!((t.partitions[0].leader_id, t.partitions[0].error_code), (-1, ErrorCode::ListenerNotFound.code()));
    assert_eq!(t.partitions[0].offline_replicas, vec![2]);

    // A fenced broker is not listed and its replicas are offline.
    let fence = FenceBrokerRecord { id: 2, epoch: NODE_2_EPOCH, ..FenceBrokerRecord::default() };
    publish_with(&broker, &[MetadataRecord::FenceBroker(fence)]);
    let fenced = metadata(&broker, "PLAINTEXT").await;
    assert_eq!(fenced.brokers.iter().map(|node| node.node_id).collect::<Vec<_>>(), vec![1]);
    let t = fenced.topics.iter().find(|topic| topic.name.as_deref() == Some("t")).expect("t");
    assert_eq!(t.partitions[0].offline_replicas, vec![2]);
    server.shutdown().await.expect("shutdown");
}

fn produce_request(topic: &str, index: i32) -> ProduceRequest {
    let mut builder = RecordBatchBuilder::new(0);
    builder.append(0, None, Some(Bytes::from_static(b"value")), Vec::new()).expect("record");
    ProduceRequest {
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
    }
}

async fn produce(broker: &Arc<Broker>, version: i16, index: i32) -> ProduceResponse {
    let request = produce_request("t", index);
    let outcome =
        handlers::produce::handle(broker, &header(0, version), &context("PLAINTEXT", 0, version), request).await;
    let response = match outcome {
        Outcome::Respond(response) => response,
        Outcome::Deferred(task) => match task.await.expect("produce task") {
            Outcome::Respond(response) => response,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    // The answer must encode at the request's version.
    encode_response_frame(1, version, &response).expect("encodes");
    let ResponseBody::Produce(response) = response else { panic!("{response:?}") };
    response
}

/// A consumer's fetch of `t`-`index`, naming the topic by name and id (v13+ read the id).
fn fetch_request(broker: &Broker, index: i32) -> FetchRequest {
    let topic_id = broker.image().topic("t").expect("t").id;
    FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            topic: "t".into(),
            topic_id,
            partitions: vec![FetchPartition {
                partition: index,
                current_leader_epoch: -1,
                last_fetched_epoch: -1,
                partition_max_bytes: 1 << 20,
                ..FetchPartition::default()
            }],
            ..FetchTopic::default()
        }],
        ..FetchRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_led_elsewhere_is_not_leader_or_follower_with_its_leader() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path()).await;
    let broker = Arc::clone(&server.broker);
    create_topic(&broker, "t", 2).await;
    publish_with(&broker, &[register_node_2(), lead_by_node_2(&broker, "t", 0)]);
    let epoch = broker.image().topic("t").expect("t").partitions[&0].leader_epoch;

    let answered = produce(&broker, 10, 0).await;
    let partition = &answered.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, NOT_LEADER);
    assert_eq!((partition.current_leader.leader_id, partition.current_leader.leader_epoch), (2, epoch));
    let endpoints: Vec<_> =
        answered.node_endpoints.iter().map(|node| (node.node_id, node.host.as_str(), node.port)).collect();
    assert_eq!(endpoints, vec![(2, "b2", 9092)]);
    // Before v10 the answer has no room for the leader; the partition led here appends.
    let old = produce(&broker, 9, 0).await;
    assert_eq!(old.responses[0].partition_responses[0].error_code, NOT_LEADER);
    assert!(old.node_endpoints.is_empty());
    assert_eq!(produce(&broker, 10, 1).await.responses[0].partition_responses[0].error_code, 0);

    let ctx = context("PLAINTEXT", 1, 16);
    let fetched = handlers::fetch::handle(&broker, &header(1, 16), &ctx, fetch_request(&broker, 0)).await;
    encode_response_frame(1, 16, &ResponseBody::Fetch(fetched.clone())).expect("encodes");
    let partition = &fetched.responses[0].partitions[0];
    assert_eq!(partition.error_code, NOT_LEADER);
    assert_eq!(partition.current_leader.leader_id, 2);
    assert_eq!(fetched.node_endpoints.iter().map(|node| node.node_id).collect::<Vec<_>>(), vec![2]);
    let ctx = context("PLAINTEXT", 1, 12);
    let fetched = handlers::fetch::handle(&broker, &header(1, 12), &ctx, fetch_request(&broker, 0)).await;
    encode_response_frame(1, 12, &ResponseBody::Fetch(fetched.clone())).expect("encodes");
    assert_eq!(fetched.responses[0].partitions[0].current_leader.leader_id, 2);
    assert!(fetched.node_endpoints.is_empty());
    let fetched = handlers::fetch::handle(&broker, &header(1, 12), &ctx, fetch_request(&broker, 1)).await;
    assert_eq!(fetched.responses[0].partitions[0].error_code, 0);

    let list = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                current_leader_epoch: -1,
                timestamp: -1,
                ..Default::default()
            }],
            ..ListOffsetsTopic::default()
        }],
        ..ListOffsetsRequest::default()
    };
    let listed = handlers::list_offsets::handle(&broker, &header(2, 7), &context("PLAINTEXT", 2, 7), list).await;
    assert_eq!(listed.topics[0].partitions[0].error_code, NOT_LEADER);

    let epochs = OffsetForLeaderEpochRequest {
        replica_id: -1,
        topics: vec![OffsetForLeaderTopic {
            topic: "t".into(),
            partitions: vec![OffsetForLeaderPartition {
                partition: 0,
                current_leader_epoch: -1,
                leader_epoch: 0,
                ..Default::default()
            }],
            ..OffsetForLeaderTopic::default()
        }],
        ..OffsetForLeaderEpochRequest::default()
    };
    let ctx = context("PLAINTEXT", 23, 4);
    let answered = handlers::offset_for_leader_epoch::handle(&broker, &header(23, 4), &ctx, epochs).await;
    assert_eq!(answered.topics[0].partitions[0].error_code, NOT_LEADER);

    let delete = DeleteRecordsRequest {
        topics: vec![DeleteRecordsTopic {
            name: "t".into(),
            partitions: vec![DeleteRecordsPartition { partition_index: 0, offset: 0, ..Default::default() }],
            ..DeleteRecordsTopic::default()
        }],
        timeout_ms: 1_000,
        ..DeleteRecordsRequest::default()
    };
    let deleted = handlers::delete_records::handle(&broker, &header(21, 2), &context("PLAINTEXT", 21, 2), delete).await;
    assert_eq!(deleted.topics[0].partitions[0].error_code, NOT_LEADER);

    let describe = DescribeProducersRequest {
        topics: vec![TopicRequest { name: "t".into(), partition_indexes: vec![0, 1], ..TopicRequest::default() }],
        ..DescribeProducersRequest::default()
    };
    let ctx = context("PLAINTEXT", 61, 0);
    let described = handlers::describe_producers::handle(&broker, &header(61, 0), &ctx, describe).await;
    let codes: Vec<i16> = described.topics[0].partitions.iter().map(|partition| partition.error_code).collect();
    assert_eq!(codes, vec![NOT_LEADER, 0]);

    let markers = WriteTxnMarkersRequest {
        markers: vec![WritableTxnMarker {
            producer_id: 7,
            producer_epoch: 0,
            transaction_result: false,
            topics: vec![WritableTxnMarkerTopic {
                name: "t".into(),
                partition_indexes: vec![0],
                ..WritableTxnMarkerTopic::default()
            }],
            ..WritableTxnMarker::default()
        }],
        ..WriteTxnMarkersRequest::default()
    };
    let ctx = context("PLAINTEXT", 27, 1);
    let written = handlers::write_txn_markers::handle(&broker, &header(27, 1), &ctx, markers).await;
    assert_eq!(written.markers[0].topics[0].partitions[0].error_code, NOT_LEADER);

    // A topic with no replica here, named by id (v13): known from the image all the same.
    let far = Uuid::from_u128(0xfa);
    publish_with(
        &broker,
        &[
            MetadataRecord::Topic(TopicRecord { name: "far".into(), topic_id: far, ..TopicRecord::default() }),
            MetadataRecord::Partition(PartitionRecord {
                partition_id: 0,
                topic_id: far,
                replicas: vec![2],
                isr: vec![2],
                leader: 2,
                ..PartitionRecord::default()
            }),
        ],
    );
    let mut by_id = fetch_request(&broker, 0);
    by_id.topics[0].topic_id = far;
    let fetched = handlers::fetch::handle(&broker, &header(1, 13), &context("PLAINTEXT", 1, 13), by_id).await;
    assert_eq!(fetched.responses[0].partitions[0].error_code, NOT_LEADER);
    let mut by_id = produce_request("", 0);
    by_id.topic_data[0].topic_id = far;
    let ctx = context("PLAINTEXT", 0, 13);
    let Outcome::Respond(ResponseBody::Produce(answered)) =
        handlers::produce::handle(&broker, &header(0, 13), &ctx, by_id).await
    else {
        panic!("produce answered otherwise")
    };
    assert_eq!(answered.responses[0].partition_responses[0].error_code, NOT_LEADER);
    assert_eq!(answered.responses[0].partition_responses[0].current_leader.leader_id, 2);
    server.shutdown().await.expect("shutdown");
}

async fn find_group_coordinator(broker: &Arc<Broker>, listener: &str) -> FindCoordinatorResponse {
    let request = FindCoordinatorRequest { key: "g".into(), key_type: 0, ..FindCoordinatorRequest::default() };
    handlers::find_coordinator::handle(broker, &header(10, 3), &context(listener, 10, 3), request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_coordinator_answers_the_leader_of_the_groups_partition_on_the_listener() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path()).await;
    let broker = Arc::clone(&server.broker);
    // The first lookup creates __consumer_offsets (one partition, led here).
    let here = find_group_coordinator(&broker, "EXTERNAL").await;
    assert_eq!((here.error_code, here.node_id, here.port), (0, 1, port_of(&broker, "EXTERNAL")));
    let here = find_group_coordinator(&broker, "PLAINTEXT").await;
    assert_eq!((here.node_id, here.port), (1, port_of(&broker, "PLAINTEXT")));

    publish_with(&broker, &[register_node_2(), lead_by_node_2(&broker, "__consumer_offsets", 0)]);
    let moved = find_group_coordinator(&broker, "PLAINTEXT").await;
    assert_eq!((moved.error_code, moved.node_id, moved.host.as_str(), moved.port), (0, 2, "b2", 9092));
    let unreachable = find_group_coordinator(&broker, "EXTERNAL").await;
    assert_eq!((unreachable.error_code, unreachable.node_id), (ErrorCode::CoordinatorNotAvailable.code(), -1));

    let fence = FenceBrokerRecord { id: 2, epoch: NODE_2_EPOCH, ..FenceBrokerRecord::default() };
    publish_with(&broker, &[MetadataRecord::FenceBroker(fence)]);
    let fenced = find_group_coordinator(&broker, "PLAINTEXT").await;
    assert_eq!(fenced.error_code, ErrorCode::CoordinatorNotAvailable.code());
    server.shutdown().await.expect("shutdown");
}
