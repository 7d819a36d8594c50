use gregor_protocol::messages::{
    broker_registration_change_record::BrokerRegistrationChangeRecord, config_record::ConfigRecord,
    feature_level_record::FeatureLevelRecord, partition_change_record::PartitionChangeRecord,
    partition_record::PartitionRecord, producer_ids_record::ProducerIdsRecord, remove_topic_record::RemoveTopicRecord,
    topic_record::TopicRecord,
};
use gregor_protocol::Uuid;

use super::{apply, cluster};
use crate::controller::METADATA_VERSION;
use crate::error::ReplayError;
use crate::image::{MetadataImage, PartitionImage, NO_LEADER_CHANGE};
use crate::record::MetadataRecord;

const ID: Uuid = Uuid([7; 16]);

fn topic(name: &str, id: Uuid) -> MetadataRecord {
    MetadataRecord::Topic(TopicRecord { name: name.into(), topic_id: id, ..Default::default() })
}

fn partition(id: Uuid, index: i32, replicas: Vec<i32>) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRecord {
        partition_id: index,
        topic_id: id,
        isr: replicas.clone(),
        leader: replicas[0],
        leader_epoch: 0,
        partition_epoch: 0,
        replicas,
        ..Default::default()
    })
}

fn config(kind: i8, resource: &str, name: &str, value: Option<&str>) -> MetadataRecord {
    MetadataRecord::Config(ConfigRecord {
        resource_type: kind,
        resource_name: resource.into(),
        name: name.into(),
        value: value.map(str::to_string),
        ..Default::default()
    })
}

#[test]
fn replay_builds_the_expected_image() {
    let mut image = cluster(2);
    assert_eq!(image.metadata_version(), Some(METADATA_VERSION));
    assert_eq!(image.brokers().map(|broker| broker.id).collect::<Vec<_>>(), vec![1, 2]);
    let broker = image.broker(1).unwrap();
    assert_eq!((broker.epoch, broker.fenced), (5, false));
    assert_eq!(broker.endpoints[0].port, 9092);
    apply(
        &mut image,
        &[
            topic("orders", ID),
            config(2, "orders", "cleanup.policy", Some("compact")),
            partition(ID, 0, vec![1, 2]),
            partition(ID, 1, vec![2, 1]),
            config(4, "", "log.retention.ms", Some("5")),
            config(4, "2", "log.retention.ms", Some("6")),
            MetadataRecord::PartitionChange(PartitionChangeRecord {
                partition_id: 1,
                topic_id: ID,
                leader: 1,
                isr: Some(vec![1]),
                ..Default::default()
            }),
            MetadataRecord::PartitionChange(PartitionChangeRecord {
                partition_id: 0,
                topic_id: ID,
                leader: NO_LEADER_CHANGE,
                replicas: Some(vec![1, 2, 3]),
                ..Default::default()
            }),
            MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id: 1,
                broker_epoch: 5,
                next_producer_id: 1000,
                ..Default::default()
            }),
        ],
    );
    let orders = image.topic("orders").unwrap();
    assert_eq!(orders.id, ID);
    assert_eq!(image.topic_by_id(ID).unwrap().name, "orders");
    let p1 = &orders.partitions[&1];
    assert_eq!((p1.leader, p1.leader_epoch, p1.partition_epoch, p1.isr.clone()), (1, 1, 1, vec![1]));
    let p0 = &orders.partitions[&0];
    assert_eq!((p0.leader, p0.leader_epoch, p0.partition_epoch), (1, 0, 1));
    assert_eq!(p0.replicas, vec![1, 2, 3]);
    assert_eq!(p0.directories.len(), 3);
    assert_eq!(image.topic_configs("orders").get("cleanup.policy").map(String::as_str), Some("compact"));
    assert_eq!(image.broker_configs(None).get("log.retention.ms").map(String::as_str), Some("5"));
    assert_eq!(image.broker_configs(Some(2)).get("log.retention.ms").map(String::as_str), Some("6"));
    assert!(image.broker_configs(Some(1)).is_empty());
    assert_eq!(image.next_producer_id(), 1000);

    apply(&mut image, &[config(2, "orders", "cleanup.policy", None)]);
    assert!(image.topic_configs("orders").is_empty());
}

#[test]
fn removing_a_topic_drops_its_configs_and_frees_its_name() {
    let mut image = cluster(1);
    apply(&mut image, &[topic("a", ID), config(2, "a", "x", Some("1")), partition(ID, 0, vec![1])]);
    apply(&mut image, &[MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id: ID, ..Default::default() })]);
    assert!(image.topic("a").is_none() && image.topic_by_id(ID).is_none());
    assert!(image.topic_configs("a").is_empty());
    let other = Uuid::from_u128(99);
    apply(&mut image, &[topic("a", other)]);
    assert_eq!(image.topic("a").unwrap().id, other);
    assert_eq!(image.topic_count(), 1);
}

#[test]
fn replay_rejects_records_no_controller_writes() {
    let mut image = cluster(1);
    apply(&mut image, &[topic("a", ID), partition(ID, 0, vec![1])]);
    let before = image.clone();
    let other = Uuid::from_u128(99);
    let cases: Vec<(MetadataRecord, ReplayError)> = vec![
        (topic("a", other), ReplayError::TopicNameExists { name: "a".into(), existing: ID }),
        (topic("b", ID), ReplayError::TopicIdExists { id: ID, existing: "a".into() }),
        (partition(other, 0, vec![1]), ReplayError::UnknownTopicId { id: other }),
        (
            MetadataRecord::PartitionChange(PartitionChangeRecord {
                partition_id: 5,
                topic_id: ID,
                ..Default::default()
            }),
            ReplayError::UnknownPartition { topic_id: ID, partition: 5 },
        ),
        (
            MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id: other, ..Default::default() }),
            ReplayError::UnknownTopicId { id: other },
        ),
        (config(3, "x", "y", Some("z")), ReplayError::UnknownConfigResourceType { resource_type: 3 }),
        (
            MetadataRecord::ProducerIds(ProducerIdsRecord { next_producer_id: 0, ..Default::default() }),
            ReplayError::ProducerIdNotIncreasing { next: 0, current: 0 },
        ),
        (
            MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
                broker_id: 9,
                ..Default::default()
            }),
            ReplayError::UnknownBroker { broker_id: 9 },
        ),
        (
            MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
                broker_id: 1,
                broker_epoch: 4,
                ..Default::default()
            }),
            ReplayError::BrokerEpochMismatch { broker_id: 1, current: 5, record: 4 },
        ),
        (
            MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
                broker_id: 1,
                broker_epoch: 5,
                fenced: 3,
                ..Default::default()
            }),
            ReplayError::InvalidRegistrationChange { field: "fenced", value: 3 },
        ),
    ];
    for (record, expected) in cases {
        assert_eq!(image.replay(&record), Err(expected), "{record:?}");
        assert_eq!(image.topic("a"), before.topic("a"));
    }
}

#[test]
fn broker_state_follows_registration_changes_and_features_can_be_removed() {
    let mut image = cluster(1);
    let change = |fenced, shutdown| {
        MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
            broker_id: 1,
            broker_epoch: 5,
            fenced,
            in_controlled_shutdown: shutdown,
            ..Default::default()
        })
    };
    apply(&mut image, &[change(1, 0)]);
    assert!(image.broker(1).unwrap().fenced);
    apply(&mut image, &[change(-1, 1)]);
    let broker = image.broker(1).unwrap();
    assert!(!broker.fenced && broker.in_controlled_shutdown && !broker.is_active());
    let level = |level| {
        MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: "group.version".into(),
            feature_level: level,
            ..Default::default()
        })
    };
    apply(&mut image, &[level(1)]);
    assert_eq!(image.features().get("group.version"), Some(&1));
    apply(&mut image, &[level(0)]);
    assert_eq!(image.features().get("group.version"), None);
}

#[test]
fn clones_are_independent() {
    let mut image = cluster(1);
    image.set_cluster_id("cluster-a");
    apply(&mut image, &[topic("a", ID), partition(ID, 0, vec![1]), config(2, "a", "k", Some("v"))]);
    let snapshot = image.clone();
    apply(
        &mut image,
        &[
            MetadataRecord::PartitionChange(PartitionChangeRecord {
                partition_id: 0,
                topic_id: ID,
                leader: -1,
                ..Default::default()
            }),
            config(2, "a", "k", Some("w")),
            topic("b", Uuid::from_u128(99)),
        ],
    );
    assert_eq!(snapshot.cluster_id(), Some("cluster-a"));
    assert_eq!(snapshot.topic("a").unwrap().partitions[&0].leader, 1);
    assert_eq!(image.topic("a").unwrap().partitions[&0].leader, -1);
    assert_eq!(snapshot.topic_configs("a")["k"], "v");
    assert_eq!(image.topic_configs("a")["k"], "w");
    assert!(snapshot.topic("b").is_none() && image.topic("b").is_some());
    let empty = MetadataImage::empty();
    assert_eq!(empty.topics().count(), 0);
    assert_eq!(empty.cluster_id(), None);
}

#[test]
fn change_records_keep_directories_of_replicas_that_stay() {
    let a = Uuid::from_u128(1000);
    let b = Uuid::from_u128(2000);
    let before = PartitionImage {
        replicas: vec![1, 2],
        isr: vec![1, 2],
        removing_replicas: vec![],
        adding_replicas: vec![],
        leader: 1,
        leader_recovery_state: 0,
        leader_epoch: 3,
        partition_epoch: 4,
        directories: vec![a, b],
        elr: vec![],
        last_known_elr: vec![],
    };
    let mut image = cluster(1);
    let mut record = partition(ID, 0, vec![1, 2]);
    if let MetadataRecord::Partition(partition) = &mut record {
        partition.directories = vec![a, b];
        partition.leader_epoch = 3;
        partition.partition_epoch = 4;
    }
    apply(&mut image, &[topic("a", ID), record]);
    assert_eq!(image.topic("a").unwrap().partitions[&0], before);
    apply(
        &mut image,
        &[MetadataRecord::PartitionChange(PartitionChangeRecord {
            partition_id: 0,
            topic_id: ID,
            leader: NO_LEADER_CHANGE,
            replicas: Some(vec![2, 3]),
            ..Default::default()
        })],
    );
    let after = &image.topic("a").unwrap().partitions[&0];
    assert_eq!(after.directories, vec![b, Uuid::ZERO]);
    assert_eq!((after.leader_epoch, after.partition_epoch), (3, 5));
}
