//! The controller's bounds on what one request may make it write, and its guard of
//! the coordinators' internal topics.

use gregor_protocol::{ErrorCode, Uuid};

use super::{apply, cluster, is_list, validate};
use crate::controller::*;
use crate::image::MetadataImage;

fn new_topic(name: &str, partitions: i32) -> NewTopic {
    NewTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: 1,
        assignments: vec![],
        configs: vec![],
    }
}

/// Runs `f` with a one-broker context whose topic default for `cleanup.policy` is
/// `delete`, as the broker's is.
fn with_context<T>(f: impl FnOnce(&mut ControllerContext<'_>) -> T) -> T {
    let mut next = 0_u128;
    let mut new_uuid = || {
        next += 1;
        Uuid::from_u128(next + 1000)
    };
    let default_value = |_: &ConfigResource, name: &str| (name == "cleanup.policy").then(|| "delete".to_string());
    let mut ctx = ControllerContext {
        node_id: 1,
        default_num_partitions: 1,
        default_replication_factor: 1,
        validate_topic_config: &validate,
        validate_broker_config: &validate,
        validate_group_configs: &|_| Ok(()),
        is_list_config: &is_list,
        default_value: &default_value,
        new_uuid: &mut new_uuid,
        random: &mut super::mock_random(),
    };
    f(&mut ctx)
}

fn create(image: &mut MetadataImage, topics: &[NewTopic]) -> Vec<CreateTopicOutcome> {
    let (records, outcomes) = with_context(|ctx| create_topics(image, ctx, topics, false));
    apply(image, &records);
    outcomes
}

#[test]
fn create_topics_refuses_more_partitions_than_one_request_may_hold() {
    let mut image = cluster(1);
    for count in [i32::MAX, 100_000_000, 10_001] {
        let (records, outcomes) = with_context(|ctx| create_topics(&image, ctx, &[new_topic("huge", count)], false));
        assert!(records.is_empty());
        assert_eq!(outcomes[0].error, ErrorCode::PolicyViolation, "{count}");
        assert_eq!(outcomes[0].message.as_deref(), Some("Excessively large number of partitions per request."));
    }
    // The whole request counts: two halves over the bound fail together, with a
    // topic that would have been fine on its own.
    let topics = [new_topic("a", 5_000), new_topic("b", 5_001), new_topic("small", 1)];
    let (records, outcomes) = with_context(|ctx| create_topics(&image, ctx, &topics, false));
    assert!(records.is_empty());
    assert!(outcomes.iter().all(|outcome| outcome.error == ErrorCode::PolicyViolation));
    // 10,000 partitions is the limit of partitions, but with its TopicRecord the topic
    // is one record over the limit of one operation, which fails as a whole.
    let outcomes = create(&mut image, &[new_topic("neg", -5), new_topic("ok", 10_000)]);
    assert_eq!(errors(&outcomes), [ErrorCode::PolicyViolation, ErrorCode::PolicyViolation]);
    assert_eq!(outcomes[1].message.as_deref(), Some(EXCESSIVE_BATCH_MESSAGE));
    assert!(image.topic("ok").is_none());
    // Invalid counts count for nothing, as in Kafka, and fail on their own.
    let outcomes = create(&mut image, &[new_topic("neg", -5), new_topic("ok", 9_999)]);
    assert_eq!(errors(&outcomes), [ErrorCode::InvalidPartitions, ErrorCode::None]);
    assert_eq!(image.topic("ok").map(|topic| topic.partitions.len()), Some(9_999));
}

fn errors(outcomes: &[CreateTopicOutcome]) -> Vec<ErrorCode> {
    outcomes.iter().map(|outcome| outcome.error).collect()
}

#[test]
fn create_partitions_refuses_an_operation_of_too_many_records() {
    let mut image = cluster(1);
    create(&mut image, &[new_topic("t", 1), new_topic("u", 1)]);
    for count in [i32::MAX, 10_002] {
        let request = [
            NewPartitions { name: "u".into(), count: 2, assignments: None },
            NewPartitions { name: "t".into(), count, assignments: None },
        ];
        let (records, outcomes) = with_context(|ctx| create_partitions(&image, ctx, &request, false));
        assert!(records.is_empty(), "{count}");
        assert!(outcomes.iter().all(|outcome| outcome.error == ErrorCode::PolicyViolation), "{outcomes:?}");
        assert_eq!(outcomes[1].message.as_deref(), Some(EXCESSIVE_BATCH_MESSAGE));
    }
    let request = [NewPartitions { name: "t".into(), count: 10_001, assignments: None }];
    let (records, outcomes) = with_context(|ctx| create_partitions(&image, ctx, &request, false));
    assert_eq!(outcomes[0].error, ErrorCode::None);
    assert_eq!(records.len(), RECORDS_PER_OPERATION_MAX);
}

#[test]
fn internal_topics_cannot_be_deleted_grown_or_made_unsafe() {
    let mut image = cluster(1);
    let mut offsets = new_topic("__consumer_offsets", 3);
    offsets.configs = vec![("cleanup.policy".into(), Some("compact".into()))];
    let mut unsafe_txn = new_topic("__transaction_state", 3);
    unsafe_txn.configs = vec![("cleanup.policy".into(), Some("compact,delete".into()))];
    let outcomes = create(&mut image, &[offsets, unsafe_txn]);
    assert_eq!(outcomes[0].error, ErrorCode::None);
    assert_eq!(outcomes[1].error, ErrorCode::InvalidConfig);

    let (records, outcomes) = delete_topics(&image, &[TopicRef::Name("__consumer_offsets".into())]);
    assert!(records.is_empty());
    assert_eq!(outcomes[0].error, ErrorCode::InvalidTopicException);
    let id = image.topic("__consumer_offsets").map(|topic| topic.id).unwrap_or(Uuid::ZERO);
    let (records, outcomes) = delete_topics(&image, &[TopicRef::Id(id)]);
    assert!(records.is_empty());
    assert_eq!(outcomes[0].error, ErrorCode::InvalidTopicException);

    let request = [NewPartitions { name: "__consumer_offsets".into(), count: 50, assignments: None }];
    let (records, outcomes) = with_context(|ctx| create_partitions(&image, ctx, &request, false));
    assert!(records.is_empty());
    assert_eq!(outcomes[0].error, ErrorCode::InvalidRequest);

    let topic = ConfigResource::Topic("__consumer_offsets".into());
    let change = |name: &str, op: AlterOp, value: Option<&str>| ConfigChange {
        resource: topic.clone(),
        ops: vec![(name.to_string(), op, value.map(str::to_string))],
    };
    for refused in [
        change("cleanup.policy", AlterOp::Set, Some("delete")),
        change("cleanup.policy", AlterOp::Set, Some("compact,delete")),
        change("cleanup.policy", AlterOp::Append, Some("delete")),
        // Without the override the broker's default, delete, would apply.
        change("cleanup.policy", AlterOp::Delete, None),
    ] {
        let (records, outcomes) =
            with_context(|ctx| incremental_alter_configs(&image, ctx, std::slice::from_ref(&refused), false));
        assert!(records.is_empty(), "{refused:?}");
        assert_eq!(outcomes[0].error, ErrorCode::InvalidConfig, "{refused:?}");
    }
    // The legacy AlterConfigs replaces the whole set: leaving cleanup.policy out drops it.
    let legacy: LegacyConfigs = (topic.clone(), vec![("segment.bytes".into(), Some("1048576".into()))]);
    let (records, outcomes) = with_context(|ctx| alter_configs(&image, ctx, &[legacy], false));
    assert!(records.is_empty());
    assert_eq!(outcomes[0].error, ErrorCode::InvalidConfig);
    // Anything else stays allowed.
    let allowed = change("segment.bytes", AlterOp::Set, Some("1048576"));
    let (records, outcomes) = with_context(|ctx| incremental_alter_configs(&image, ctx, &[allowed], false));
    assert_eq!(outcomes[0].error, ErrorCode::None);
    assert_eq!(records.len(), 1);
}
