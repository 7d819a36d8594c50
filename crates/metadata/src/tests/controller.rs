use gregor_protocol::{ErrorCode, Uuid};

use super::{apply, cluster, set_broker_state, with_ctx};
use crate::controller::*;
use crate::image::MetadataImage;
use crate::record::MetadataRecord;

fn new_topic(name: &str, partitions: i32, factor: i16) -> NewTopic {
    NewTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: factor,
        assignments: vec![],
        configs: vec![],
    }
}

fn create(image: &mut MetadataImage, topics: &[NewTopic]) -> Vec<CreateTopicOutcome> {
    let mut ids = 0;
    let (records, outcomes) = with_ctx(&mut ids, |ctx| create_topics(image, ctx, topics, false));
    apply(image, &records);
    outcomes
}

fn errors(outcomes: &[CreateTopicOutcome]) -> Vec<ErrorCode> {
    outcomes.iter().map(|outcome| outcome.error).collect()
}

#[test]
fn create_topics_writes_topic_config_and_partition_records() {
    let image = cluster(3);
    let mut topic = new_topic("orders", 3, 2);
    topic.configs = vec![("cleanup.policy".into(), Some("compact".into()))];
    let mut ids = 0;
    let (records, outcomes) = with_ctx(&mut ids, |ctx| create_topics(&image, ctx, &[topic], false));
    let kinds: Vec<i16> = records.iter().map(MetadataRecord::record_type).collect();
    assert_eq!(kinds, vec![2, 4, 3, 3, 3], "TopicRecord, ConfigRecord, then the partitions");
    let outcome = &outcomes[0];
    assert_eq!(outcome.error, ErrorCode::None);
    assert_eq!((outcome.num_partitions, outcome.replication_factor), (3, 2));
    assert_eq!(outcome.configs["cleanup.policy"], "compact");
    let mut image = image;
    apply(&mut image, &records);
    let topic = image.topic("orders").unwrap();
    assert_eq!(topic.id, outcome.topic_id);
    assert_eq!(topic.partitions.len(), 3);
    for (index, partition) in &topic.partitions {
        assert_eq!(partition.replicas.len(), 2);
        assert_eq!(partition.isr, partition.replicas);
        assert_eq!(partition.leader, partition.replicas[0]);
        assert_eq!((partition.leader_epoch, partition.partition_epoch), (0, 0));
        assert_ne!(partition.replicas[0], partition.replicas[1], "partition {index}");
    }
    let leaders: std::collections::BTreeSet<i32> = topic.partitions.values().map(|p| p.leader).collect();
    assert_eq!(leaders.len(), 3, "leadership spreads over the brokers");
    assert_eq!(image.topic_configs("orders")["cleanup.policy"], "compact");
}

#[test]
fn create_topics_uses_defaults_and_manual_assignments() {
    let mut image = cluster(2);
    let mut manual = new_topic("manual", -1, -1);
    manual.assignments = vec![(1, vec![2, 1]), (0, vec![1, 2])];
    let outcomes = create(&mut image, &[new_topic("defaults", -1, -1), manual]);
    assert_eq!(errors(&outcomes), vec![ErrorCode::None, ErrorCode::None]);
    assert_eq!((outcomes[0].num_partitions, outcomes[0].replication_factor), (1, 1));
    let manual = image.topic("manual").unwrap();
    assert_eq!(manual.partitions[&1].replicas, vec![2, 1]);
    assert_eq!(manual.partitions[&1].leader, 2);
    // A replica on a fenced broker stays out of the ISR.
    set_broker_state(&mut image, 2, true, false);
    let mut down = new_topic("down", -1, -1);
    down.assignments = vec![(0, vec![2, 1])];
    let outcomes = create(&mut image, &[down]);
    assert_eq!(outcomes[0].error, ErrorCode::None);
    let partition = &image.topic("down").unwrap().partitions[&0];
    assert_eq!((partition.leader, partition.isr.clone()), (1, vec![1]));
}

#[test]
fn create_topics_rejects_what_kafka_rejects() {
    let mut image = cluster(2);
    create(&mut image, &[new_topic("exists", 1, 1), new_topic("a.b", 1, 1)]);
    let assigned = |assignments: Vec<(i32, Vec<i32>)>, partitions: i32, factor: i16| NewTopic {
        assignments,
        ..new_topic("m", partitions, factor)
    };
    let cases: Vec<(NewTopic, ErrorCode)> = vec![
        (new_topic("", 1, 1), ErrorCode::InvalidTopicException),
        (new_topic(".", 1, 1), ErrorCode::InvalidTopicException),
        (new_topic("..", 1, 1), ErrorCode::InvalidTopicException),
        (new_topic(&"x".repeat(250), 1, 1), ErrorCode::InvalidTopicException),
        (new_topic("bad name", 1, 1), ErrorCode::InvalidTopicException),
        (new_topic("é", 1, 1), ErrorCode::InvalidTopicException),
        (new_topic("a_b", 1, 1), ErrorCode::InvalidTopicException),
        (new_topic("__cluster_metadata", 1, 1), ErrorCode::InvalidRequest),
        (new_topic("exists", 1, 1), ErrorCode::TopicAlreadyExists),
        (new_topic("p", 0, 1), ErrorCode::InvalidPartitions),
        (new_topic("p", -2, 1), ErrorCode::InvalidPartitions),
        (new_topic("r", 1, 0), ErrorCode::InvalidReplicationFactor),
        (new_topic("r", 1, -5), ErrorCode::InvalidReplicationFactor),
        (new_topic("r", 1, 3), ErrorCode::InvalidReplicationFactor),
        (assigned(vec![(0, vec![1])], 1, -1), ErrorCode::InvalidRequest),
        (assigned(vec![(0, vec![1])], -1, 1), ErrorCode::InvalidRequest),
        (assigned(vec![(0, vec![])], -1, -1), ErrorCode::InvalidReplicaAssignment),
        (assigned(vec![(0, vec![1, 1])], -1, -1), ErrorCode::InvalidReplicaAssignment),
        (assigned(vec![(0, vec![9])], -1, -1), ErrorCode::InvalidReplicaAssignment),
        (assigned(vec![(0, vec![1]), (0, vec![2])], -1, -1), ErrorCode::InvalidReplicaAssignment),
        (assigned(vec![(0, vec![1]), (2, vec![2])], -1, -1), ErrorCode::InvalidReplicaAssignment),
        (assigned(vec![(0, vec![1]), (1, vec![1, 2])], -1, -1), ErrorCode::InvalidReplicaAssignment),
        (
            NewTopic { configs: vec![("retention.ms".into(), Some("bad".into()))], ..new_topic("c", 1, 1) },
            ErrorCode::InvalidConfig,
        ),
        (NewTopic { configs: vec![("retention.ms".into(), None)], ..new_topic("c", 1, 1) }, ErrorCode::InvalidConfig),
    ];
    for (topic, expected) in cases {
        let name = topic.name.clone();
        let mut ids = 0;
        let (records, outcomes) = with_ctx(&mut ids, |ctx| create_topics(&image, ctx, &[topic], false));
        assert_eq!(outcomes[0].error, expected, "{name}: {:?}", outcomes[0].message);
        assert!(outcomes[0].message.is_some(), "{name}");
        assert_eq!((outcomes[0].topic_id, outcomes[0].num_partitions), (Uuid::ZERO, -1));
        assert!(records.is_empty(), "{name}");
    }
    // Manual assignments may not name only brokers that are down.
    set_broker_state(&mut image, 2, true, false);
    let topic = assigned(vec![(0, vec![2])], -1, -1);
    let mut ids = 0;
    let (_, outcomes) = with_ctx(&mut ids, |ctx| create_topics(&image, ctx, &[topic], false));
    assert_eq!(outcomes[0].error, ErrorCode::InvalidReplicaAssignment);
}

#[test]
fn create_topics_rejects_duplicates_and_collisions_within_one_request() {
    let mut image = cluster(1);
    let outcomes = create(
        &mut image,
        &[new_topic("dup", 1, 1), new_topic("x.y", 1, 1), new_topic("dup", 1, 1), new_topic("x_y", 1, 1)],
    );
    assert_eq!(
        errors(&outcomes),
        vec![ErrorCode::InvalidRequest, ErrorCode::None, ErrorCode::InvalidRequest, ErrorCode::InvalidTopicException]
    );
    assert!(image.topic("dup").is_none() && image.topic("x.y").is_some());
}

#[test]
fn validate_only_writes_nothing_but_reports_fully() {
    let image = cluster(1);
    let mut ids = 0;
    let topics = [new_topic("v", 4, 1), new_topic("v2", 1, 2)];
    let (records, outcomes) = with_ctx(&mut ids, |ctx| create_topics(&image, ctx, &topics, true));
    assert!(records.is_empty());
    assert_eq!(errors(&outcomes), vec![ErrorCode::None, ErrorCode::InvalidReplicationFactor]);
    assert_eq!(outcomes[0].num_partitions, 4);
    let (records, outcomes) = create_partitions(
        &image,
        &mut ctx_for().ctx(),
        &[NewPartitions { name: "missing".into(), count: 2, assignments: None }],
        true,
    );
    assert!(records.is_empty());
    assert_eq!(outcomes[0].error, ErrorCode::UnknownTopicOrPartition);
}

/// A context that outlives a closure, for the operations that take `&ControllerContext`.
struct ContextCopy;

impl ContextCopy {
    fn ctx(&self) -> ControllerContext<'_> {
        ControllerContext {
            node_id: 1,
            default_num_partitions: 1,
            default_replication_factor: 1,
            validate_topic_config: &super::validate,
            validate_broker_config: &super::validate,
            validate_group_configs: &|_| Ok(()),
            is_list_config: &super::is_list,
            default_value: &|_, _| None,
            new_uuid: Box::leak(Box::new(|| Uuid::from_u128(42))),
            random: Box::leak(Box::new(super::mock_random())),
        }
    }
}

fn ctx_for() -> ContextCopy {
    ContextCopy
}

#[test]
fn delete_topics_removes_topics_by_name_or_id() {
    let mut image = cluster(1);
    let outcomes = create(&mut image, &[new_topic("a", 2, 1), new_topic("b", 1, 1), new_topic("c", 1, 1)]);
    let b_id = outcomes[1].topic_id;
    let refs = [
        TopicRef::Name("a".into()),
        TopicRef::Id(b_id),
        TopicRef::Name("missing".into()),
        TopicRef::Id(Uuid::from_u128(12345)),
        TopicRef::Id(Uuid::ZERO),
        TopicRef::Name("c".into()),
        TopicRef::Name("c".into()),
    ];
    let (records, outcomes) = delete_topics(&image, &refs);
    let codes: Vec<ErrorCode> = outcomes.iter().map(|outcome| outcome.error).collect();
    assert_eq!(
        codes,
        vec![
            ErrorCode::None,
            ErrorCode::None,
            ErrorCode::UnknownTopicOrPartition,
            ErrorCode::UnknownTopicId,
            ErrorCode::InvalidRequest,
            ErrorCode::InvalidRequest,
            ErrorCode::InvalidRequest
        ]
    );
    assert_eq!(outcomes[1].name.as_deref(), Some("b"));
    assert_eq!(records.len(), 2);
    apply(&mut image, &records);
    assert!(image.topic("a").is_none() && image.topic("b").is_none() && image.topic("c").is_some());
    // The same topic by name and by id must not produce two removals.
    let c_id = image.topic("c").unwrap().id;
    let (records, outcomes) = delete_topics(&image, &[TopicRef::Name("c".into()), TopicRef::Id(c_id)]);
    assert!(records.is_empty());
    assert!(outcomes.iter().all(|outcome| outcome.error == ErrorCode::InvalidRequest));
}

#[test]
fn create_partitions_extends_topics() {
    let mut image = cluster(2);
    create(&mut image, &[new_topic("t", 1, 2), new_topic("u", 1, 1)]);
    let holder = ctx_for();
    let mut ctx = holder.ctx();
    let requests = [
        NewPartitions { name: "t".into(), count: 3, assignments: None },
        NewPartitions { name: "u".into(), count: 2, assignments: Some(vec![vec![2]]) },
    ];
    let (records, outcomes) = create_partitions(&image, &mut ctx, &requests, false);
    assert!(outcomes.iter().all(|outcome| outcome.error == ErrorCode::None), "{outcomes:?}");
    apply(&mut image, &records);
    let t = image.topic("t").unwrap();
    assert_eq!(t.partitions.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!(t.partitions.values().all(|partition| partition.replicas.len() == 2));
    assert_eq!(image.topic("u").unwrap().partitions[&1].replicas, vec![2]);

    let bad = [
        (NewPartitions { name: "t".into(), count: 3, assignments: None }, ErrorCode::InvalidPartitions),
        (NewPartitions { name: "t".into(), count: 1, assignments: None }, ErrorCode::InvalidPartitions),
        (NewPartitions { name: "nope".into(), count: 5, assignments: None }, ErrorCode::UnknownTopicOrPartition),
        (
            NewPartitions { name: "t".into(), count: 5, assignments: Some(vec![vec![1, 2]]) },
            ErrorCode::InvalidReplicaAssignment,
        ),
        (
            NewPartitions { name: "t".into(), count: 4, assignments: Some(vec![vec![1]]) },
            ErrorCode::InvalidReplicaAssignment,
        ),
        (
            NewPartitions { name: "t".into(), count: 4, assignments: Some(vec![vec![1, 7]]) },
            ErrorCode::InvalidReplicaAssignment,
        ),
        (
            NewPartitions { name: "t".into(), count: 4, assignments: Some(vec![vec![2, 2]]) },
            ErrorCode::InvalidReplicaAssignment,
        ),
    ];
    for (request, expected) in bad {
        let (records, outcomes) = create_partitions(&image, &mut ctx, std::slice::from_ref(&request), false);
        assert_eq!(outcomes[0].error, expected, "{request:?}");
        assert!(records.is_empty());
    }
    // A broker in controlled shutdown receives no new replicas.
    set_broker_state(&mut image, 2, false, true);
    let (_, outcomes) = create_partitions(
        &image,
        &mut ctx_for().ctx(),
        &[NewPartitions { name: "t".into(), count: 4, assignments: None }],
        false,
    );
    assert_eq!(outcomes[0].error, ErrorCode::InvalidReplicationFactor);
}

#[test]
fn incremental_alter_configs_applies_each_operation() {
    let mut image = cluster(1);
    create(&mut image, &[new_topic("t", 1, 1)]);
    let holder = ctx_for();
    let ctx = holder.ctx();
    let topic = ConfigResource::Topic("t".into());
    let change = |ops: Vec<(&str, AlterOp, Option<&str>)>| ConfigChange {
        resource: topic.clone(),
        ops: ops.into_iter().map(|(name, op, value)| (name.to_string(), op, value.map(str::to_string))).collect(),
    };
    let (records, outcomes) = incremental_alter_configs(
        &image,
        &ctx,
        &[change(vec![
            ("retention.ms", AlterOp::Set, Some("10")),
            ("a.list", AlterOp::Append, Some("x,y")),
            ("gone", AlterOp::Delete, None),
        ])],
        false,
    );
    assert_eq!(outcomes[0].error, ErrorCode::None);
    assert_eq!(records.len(), 2, "deleting an absent key changes nothing for a topic");
    apply(&mut image, &records);
    let (records, _) = incremental_alter_configs(
        &image,
        &ctx,
        &[change(vec![("a.list", AlterOp::Append, Some("y,z")), ("retention.ms", AlterOp::Delete, None)])],
        false,
    );
    apply(&mut image, &records);
    let (records, _) =
        incremental_alter_configs(&image, &ctx, &[change(vec![("a.list", AlterOp::Subtract, Some("x"))])], false);
    apply(&mut image, &records);
    let configs = image.topic_configs("t");
    assert_eq!(configs.len(), 1);
    assert_eq!(configs["a.list"], "y,z");

    // Broker resources always get a record, even for an unchanged value.
    let broker = ConfigChange {
        resource: ConfigResource::Broker(None),
        ops: vec![("log.retention.ms".into(), AlterOp::Set, Some("5".into()))],
    };
    let (records, _) = incremental_alter_configs(&image, &ctx, std::slice::from_ref(&broker), false);
    apply(&mut image, &records);
    let (records, _) = incremental_alter_configs(&image, &ctx, &[broker], false);
    assert_eq!(records.len(), 1);
    assert_eq!(image.broker_configs(None)["log.retention.ms"], "5");

    let bad: Vec<(ConfigChange, ErrorCode)> = vec![
        (change(vec![("retention.ms", AlterOp::Append, Some("1"))]), ErrorCode::InvalidConfig),
        (change(vec![("retention.ms", AlterOp::Set, Some("bad"))]), ErrorCode::InvalidConfig),
        (change(vec![("retention.ms", AlterOp::Set, None)]), ErrorCode::InvalidRequest),
        (change(vec![("k", AlterOp::Set, Some("1")), ("k", AlterOp::Delete, None)]), ErrorCode::InvalidRequest),
        (
            ConfigChange { resource: ConfigResource::Topic("nope".into()), ops: vec![] },
            ErrorCode::UnknownTopicOrPartition,
        ),
        (ConfigChange { resource: ConfigResource::Topic(String::new()), ops: vec![] }, ErrorCode::InvalidRequest),
        (ConfigChange { resource: ConfigResource::Broker(Some(-3)), ops: vec![] }, ErrorCode::InvalidRequest),
    ];
    for (change, expected) in bad {
        let (records, outcomes) = incremental_alter_configs(&image, &ctx, std::slice::from_ref(&change), false);
        assert_eq!(outcomes[0].error, expected, "{change:?}");
        assert!(records.is_empty());
    }
    // A resource named twice fails in both places; validate-only writes nothing.
    let twice = [change(vec![]), change(vec![])];
    let (_, outcomes) = incremental_alter_configs(&image, &ctx, &twice, false);
    assert!(outcomes.iter().all(|outcome| outcome.error == ErrorCode::InvalidRequest));
    let (records, outcomes) =
        incremental_alter_configs(&image, &ctx, &[change(vec![("k", AlterOp::Set, Some("1"))])], true);
    assert!(records.is_empty() && outcomes[0].error == ErrorCode::None);
}

#[test]
fn legacy_alter_configs_replaces_the_whole_set() {
    let mut image = cluster(1);
    create(
        &mut image,
        &[NewTopic {
            configs: vec![("a".into(), Some("1".into())), ("b".into(), Some("2".into()))],
            ..new_topic("t", 1, 1)
        }],
    );
    let holder = ctx_for();
    let ctx = holder.ctx();
    let resource = ConfigResource::Topic("t".into());
    let (records, outcomes) = alter_configs(
        &image,
        &ctx,
        &[(resource.clone(), vec![("b".into(), Some("2".into())), ("c".into(), Some("3".into()))])],
        false,
    );
    assert_eq!(outcomes[0].error, ErrorCode::None);
    assert_eq!(records.len(), 2, "delete a, set c; b is unchanged");
    apply(&mut image, &records);
    let configs = image.topic_configs("t");
    assert_eq!(configs.keys().map(String::as_str).collect::<Vec<_>>(), vec!["b", "c"]);
    let (records, outcomes) = alter_configs(&image, &ctx, &[(resource.clone(), vec![("b".into(), None)])], false);
    assert_eq!(outcomes[0].error, ErrorCode::InvalidRequest);
    assert!(records.is_empty());
    let (records, outcomes) = alter_configs(&image, &ctx, &[(resource, vec![("b".into(), Some("bad".into()))])], false);
    assert_eq!(outcomes[0].error, ErrorCode::InvalidConfig);
    assert!(records.is_empty());
}

#[test]
fn producer_id_blocks_follow_each_other() {
    let mut image = cluster(1);
    let (records, block) = allocate_producer_ids(&image, 1, 5);
    assert_eq!(block, Ok(ProducerIdBlock { first_producer_id: 0, size: 1000 }));
    apply(&mut image, &records);
    let (records, block) = allocate_producer_ids(&image, 1, 5);
    assert_eq!(block.map(|block| block.first_producer_id), Ok(1000));
    apply(&mut image, &records);
    assert_eq!(image.next_producer_id(), 2000);
    let (records, block) = allocate_producer_ids(&image, 1, 4);
    assert!(records.is_empty());
    assert_eq!(block.map_err(|error| error.code), Err(ErrorCode::StaleBrokerEpoch));
    let (_, block) = allocate_producer_ids(&image, 8, 4);
    assert_eq!(block.map_err(|error| error.code), Err(ErrorCode::StaleBrokerEpoch));
}

#[test]
fn elect_leaders_moves_leadership_to_the_preferred_replica() {
    let mut image = cluster(2);
    let mut topic = new_topic("t", -1, -1);
    topic.assignments = vec![(0, vec![1, 2]), (1, vec![2, 1])];
    set_broker_state(&mut image, 2, true, false);
    create(&mut image, &[topic]);
    set_broker_state(&mut image, 2, false, false);
    // Broker 2 was down at creation: partition 1 is led by 1, its ISR is [1].
    assert_eq!(image.topic("t").unwrap().partitions[&1].leader, 1);
    let request = [("t".to_string(), vec![0, 1, 7]), ("nope".to_string(), vec![0])];
    let (records, outcome) = elect_leaders(&image, ELECTION_PREFERRED, Some(&request));
    let codes: Vec<ErrorCode> = outcome.partitions.iter().map(|partition| partition.error).collect();
    assert_eq!(
        codes,
        vec![
            ErrorCode::ElectionNotNeeded,
            ErrorCode::PreferredLeaderNotAvailable,
            ErrorCode::UnknownTopicOrPartition,
            ErrorCode::UnknownTopicOrPartition
        ]
    );
    assert!(records.is_empty());

    // Once broker 2 is back in the ISR, the election moves leadership to it.
    let topic_id = image.topic("t").unwrap().id;
    apply(
        &mut image,
        &[MetadataRecord::PartitionChange(gregor_protocol::messages::partition_change_record::PartitionChangeRecord {
            partition_id: 1,
            topic_id,
            isr: Some(vec![1, 2]),
            ..Default::default()
        })],
    );
    let (records, outcome) = elect_leaders(&image, ELECTION_PREFERRED, None);
    assert_eq!(outcome.partitions.len(), 1, "partitions needing no election are left out");
    assert_eq!(outcome.partitions[0].error, ErrorCode::None);
    apply(&mut image, &records);
    let partition = &image.topic("t").unwrap().partitions[&1];
    assert_eq!((partition.leader, partition.leader_epoch, partition.partition_epoch), (2, 1, 2));

    let (records, outcome) = elect_leaders(&image, 5, None);
    assert!(records.is_empty());
    assert_eq!(outcome.error, ErrorCode::InvalidRequest);
    let (_, outcome) = elect_leaders(&image, ELECTION_UNCLEAN, Some(&[("t".to_string(), vec![0])]));
    assert_eq!(outcome.partitions[0].error, ErrorCode::ElectionNotNeeded);
}

#[test]
fn bootstrap_registers_the_node_at_the_chosen_metadata_version() {
    let records = bootstrap(4, &[("PLAINTEXT".into(), "h".into(), 1), ("SSL".into(), "h".into(), 2)], 99);
    let mut image = MetadataImage::empty();
    apply(&mut image, &records);
    assert_eq!(image.metadata_version(), Some(METADATA_VERSION));
    let broker = image.broker(4).unwrap();
    assert_eq!(broker.epoch, 99);
    assert!(broker.is_active());
    assert_eq!(broker.endpoints.iter().map(|e| e.security_protocol).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(broker.supported_features["metadata.version"], (METADATA_VERSION_MIN, METADATA_VERSION));
}
