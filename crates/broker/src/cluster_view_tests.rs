//! The cluster answers over a three-broker image built by replaying records: broker 1
//! (racks r1, listeners PLAINTEXT and EXTERNAL), broker 2 (rack r2, PLAINTEXT only)
//! and broker 3 (no rack, both listeners, fenced).

use super::*;
use gregor_metadata::MetadataRecord;
use gregor_protocol::messages::fence_broker_record::FenceBrokerRecord;
use gregor_protocol::messages::partition_record::PartitionRecord;
use gregor_protocol::messages::register_broker_record::{BrokerEndpoint, RegisterBrokerRecord};
use gregor_protocol::messages::topic_record::TopicRecord;
use gregor_protocol::Uuid;

const TOPIC: &str = "orders";
const OFFSETS: &str = "__consumer_offsets";

fn register(id: i32, listeners: &[(&str, &str, u16)], rack: Option<&str>) -> MetadataRecord {
    MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id: id,
        broker_epoch: 10 + i64::from(id),
        incarnation_id: Uuid::from_u128(id as u128),
        end_points: listeners
            .iter()
            .map(|(name, host, port)| BrokerEndpoint {
                name: (*name).to_owned(),
                host: (*host).to_owned(),
                port: *port,
                ..BrokerEndpoint::default()
            })
            .collect(),
        rack: rack.map(str::to_owned),
        fenced: false,
        ..RegisterBrokerRecord::default()
    })
}

fn partition(topic_id: Uuid, index: i32, leader: i32, replicas: &[i32], isr: &[i32]) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        partition_id: index,
        topic_id,
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        leader,
        leader_epoch: 5 + index,
        ..PartitionRecord::default()
    })
}

/// `orders`: 0 led by 1 (replica 3 fenced), 1 led by 2 (no EXTERNAL listener), 2
/// without a leader, 3 led by an unknown broker 4, 4 led by fenced broker 3.
/// `__consumer_offsets`: 0 led by 1, 1 led by 2, 2 without a leader.
fn image() -> MetadataImage {
    let orders = Uuid::from_u128(100);
    let offsets = Uuid::from_u128(200);
    let records = vec![
        register(1, &[("PLAINTEXT", "b1", 9092), ("EXTERNAL", "ext1", 19092)], Some("r1")),
        register(2, &[("PLAINTEXT", "b2", 9092)], Some("r2")),
        register(3, &[("PLAINTEXT", "b3", 9092), ("EXTERNAL", "ext3", 19092)], None),
        MetadataRecord::FenceBroker(FenceBrokerRecord { id: 3, epoch: 13, ..FenceBrokerRecord::default() }),
        MetadataRecord::Topic(TopicRecord { name: TOPIC.to_owned(), topic_id: orders, ..TopicRecord::default() }),
        partition(orders, 0, 1, &[1, 2, 3], &[1, 2]),
        partition(orders, 1, 2, &[2, 3, 1], &[2, 3, 1]),
        partition(orders, 2, -1, &[3], &[]),
        partition(orders, 3, 4, &[4, 1], &[4, 1]),
        partition(orders, 4, 3, &[3, 1], &[3, 1]),
        MetadataRecord::Topic(TopicRecord { name: OFFSETS.to_owned(), topic_id: offsets, ..TopicRecord::default() }),
        partition(offsets, 0, 1, &[1, 2], &[1, 2]),
        partition(offsets, 1, 2, &[2, 1], &[2, 1]),
        partition(offsets, 2, -1, &[3], &[]),
    ];
    let mut image = MetadataImage::empty();
    for record in &records {
        image.replay(record).unwrap_or_else(|error| panic!("replay of {record:?} failed: {error}"));
    }
    image
}

fn node(id: i32, host: &str, port: i32, rack: Option<&str>, fenced: bool) -> BrokerNode {
    BrokerNode { id, host: host.to_owned(), port, rack: rack.map(str::to_owned), fenced }
}

fn view(index: i32, listener: &str, version: i16) -> PartitionView {
    let image = image();
    let topic = image.topic(TOPIC).expect("topic replayed");
    partition_view(&image, &topic.partitions[&index], listener, PartitionRules::for_metadata_version(version))
}

#[test]
fn brokers_are_the_unfenced_ones_with_the_requests_listener() {
    let image = image();
    assert_eq!(
        brokers_on_listener(&image, "PLAINTEXT", false),
        vec![node(1, "b1", 9092, Some("r1"), false), node(2, "b2", 9092, Some("r2"), false)]
    );
    // Broker 2 has no EXTERNAL endpoint and broker 3 is fenced.
    assert_eq!(brokers_on_listener(&image, "EXTERNAL", false), vec![node(1, "ext1", 19092, Some("r1"), false)]);
    assert_eq!(
        brokers_on_listener(&image, "EXTERNAL", true),
        vec![node(1, "ext1", 19092, Some("r1"), false), node(3, "ext3", 19092, None, true)]
    );
    assert!(brokers_on_listener(&image, "INTERNAL", true).is_empty());
}

#[test]
fn a_led_partition_names_its_leader_and_its_fenced_replica_offline() {
    let described = view(0, "PLAINTEXT", 12);
    assert_eq!(
        described,
        PartitionView {
            error: ErrorCode::None,
            leader_id: 1,
            leader_epoch: 5,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2],
            offline_replicas: vec![3],
        }
    );
}

#[test]
fn metadata_v0_lists_only_live_replicas() {
    let described = view(0, "PLAINTEXT", 0);
    assert_eq!(described.error, ErrorCode::ReplicaNotAvailable);
    assert_eq!((described.leader_id, described.replicas, described.isr), (1, vec![1, 2], vec![1, 2]));
    assert_eq!(described.offline_replicas, vec![3]);
}

#[test]
fn a_leader_without_the_listener_is_listener_not_found_from_v6() {
    let described = view(1, "EXTERNAL", 12);
    assert_eq!((described.error, described.leader_id), (ErrorCode::ListenerNotFound, -1));
    assert_eq!(described.leader_epoch, 6);
    // Replica 2 has no EXTERNAL endpoint and 3 is fenced: both offline on this listener.
    assert_eq!(described.offline_replicas, vec![2, 3]);
    assert_eq!(view(1, "EXTERNAL", 5).error, ErrorCode::LeaderNotAvailable);
    assert_eq!((view(1, "PLAINTEXT", 12).error, view(1, "PLAINTEXT", 12).leader_id), (ErrorCode::None, 2));
}

#[test]
fn no_leader_or_an_unknown_leader_is_leader_not_available() {
    let leaderless = view(2, "PLAINTEXT", 12);
    assert_eq!((leaderless.error, leaderless.leader_id), (ErrorCode::LeaderNotAvailable, -1));
    assert_eq!(leaderless.offline_replicas, vec![3]);
    let unknown = view(3, "PLAINTEXT", 12);
    assert_eq!((unknown.error, unknown.leader_id), (ErrorCode::LeaderNotAvailable, -1));
    assert_eq!(unknown.offline_replicas, vec![4]);
    assert_eq!(unknown.replicas, vec![4, 1]);
}

#[test]
fn a_fenced_leader_is_still_named_as_kafka_does() {
    let described = view(4, "PLAINTEXT", 12);
    assert_eq!((described.error, described.leader_id), (ErrorCode::None, 3));
    assert_eq!(described.offline_replicas, vec![3]);
}

#[test]
fn leadership_sends_clients_to_the_leader_on_their_listener() {
    let image = image();
    assert_eq!(leadership(&image, TOPIC, 0, 1, "PLAINTEXT"), Leadership::Here);
    assert_eq!(
        leadership(&image, TOPIC, 0, 2, "EXTERNAL"),
        Leadership::Elsewhere(CurrentLeader {
            leader_id: 1,
            leader_epoch: 5,
            node: Some(node(1, "ext1", 19092, Some("r1"), false)),
        })
    );
    // A leader without the listener, a fenced leader and no leader: no endpoint to give.
    let elsewhere = |index| match leadership(&image, TOPIC, index, 1, "EXTERNAL") {
        Leadership::Elsewhere(leader) => (leader.leader_id, leader.node),
        other => panic!("{other:?}"),
    };
    assert_eq!(elsewhere(1), (2, None));
    assert_eq!(elsewhere(4), (3, None));
    assert_eq!(elsewhere(2), (-1, None));
    assert_eq!(leadership(&image, TOPIC, 9, 1, "PLAINTEXT"), Leadership::Unknown);
    assert_eq!(leadership(&image, "missing", 0, 1, "PLAINTEXT"), Leadership::Unknown);
}

#[test]
fn find_coordinator_routes_to_the_leader_of_the_keys_partition() {
    let image = image();
    // Group ids whose partition of the 3 is 0, 1 and 2.
    let group_on = |wanted: i32| {
        (0..1000)
            .map(|n| format!("group-{n}"))
            .find(|id| gregor_group::shard::partition_for_group(id, 3) == wanted)
            .expect("some group id hashes to each partition")
    };
    let route = |group: &str, listener: &str| {
        coordinator(&image, OFFSETS, gregor_group::shard::partition_for_group(group, 3), listener)
    };
    assert_eq!(route(&group_on(0), "PLAINTEXT"), Ok(node(1, "b1", 9092, Some("r1"), false)));
    assert_eq!(route(&group_on(0), "EXTERNAL"), Ok(node(1, "ext1", 19092, Some("r1"), false)));
    assert_eq!(route(&group_on(1), "PLAINTEXT"), Ok(node(2, "b2", 9092, Some("r2"), false)));
    // The leader has no endpoint on the listener, or there is no leader.
    assert_eq!(route(&group_on(1), "EXTERNAL"), Err(ErrorCode::CoordinatorNotAvailable));
    assert_eq!(route(&group_on(2), "PLAINTEXT"), Err(ErrorCode::CoordinatorNotAvailable));
    assert_eq!(coordinator(&image, "__transaction_state", 0, "PLAINTEXT"), Err(ErrorCode::CoordinatorNotAvailable));
}

#[test]
fn a_fenced_coordinator_is_not_available() {
    let mut image = image();
    let fence = MetadataRecord::FenceBroker(FenceBrokerRecord { id: 1, epoch: 11, ..FenceBrokerRecord::default() });
    image.replay(&fence).expect("fence broker 1");
    assert_eq!(coordinator(&image, OFFSETS, 0, "PLAINTEXT"), Err(ErrorCode::CoordinatorNotAvailable));
    assert_eq!(brokers_on_listener(&image, "PLAINTEXT", false), vec![node(2, "b2", 9092, Some("r2"), false)]);
}

#[test]
fn this_nodes_rack_comes_from_its_config_when_its_registration_has_none() {
    let nodes = brokers_on_listener(&image(), "EXTERNAL", true);
    let racks: Vec<_> = with_own_rack(nodes, 3, Some("r3")).into_iter().map(|node| node.rack).collect();
    assert_eq!(racks, vec![Some("r1".to_owned()), Some("r3".to_owned())]);
    // A registered rack wins over the config.
    let nodes = brokers_on_listener(&image(), "PLAINTEXT", false);
    let racks: Vec<_> = with_own_rack(nodes, 1, Some("other")).into_iter().map(|node| node.rack).collect();
    assert_eq!(racks, vec![Some("r1".to_owned()), Some("r2".to_owned())]);
}
