//! Partition reassignments, from request to completion.

use gregor_protocol::messages::partition_change_record::PartitionChangeRecord;
use gregor_protocol::ErrorCode;

use super::{apply, register, set_broker_state, with_ctx};
use crate::controller::reassignment::*;
use crate::controller::*;
use crate::image::{MetadataImage, PartitionImage};
use crate::record::MetadataRecord;

/// Brokers 1..=4, topic "t" with partitions 0 and 1 on [1, 2, 3].
fn cluster() -> MetadataImage {
    let mut image = MetadataImage::empty();
    let features = finalize_missing_features(&image);
    apply(&mut image, &features);
    for id in 1..=4 {
        register(&mut image, id, None);
        set_broker_state(&mut image, id, false, false);
    }
    let topic = NewTopic {
        name: "t".into(),
        num_partitions: -1,
        replication_factor: -1,
        assignments: vec![(0, vec![1, 2, 3]), (1, vec![1, 2, 3])],
        configs: vec![],
    };
    let mut ids = 0;
    let (records, _) = with_ctx(&mut ids, |ctx| create_topics(&image, ctx, &[topic], false));
    apply(&mut image, &records);
    image
}

fn request(partition: i32, replicas: Option<Vec<i32>>) -> ReassignmentRequest {
    ReassignmentRequest { topic: "t".into(), partition, replicas }
}

fn alter(image: &mut MetadataImage, requests: &[ReassignmentRequest]) -> Vec<(ErrorCode, Option<String>)> {
    let (records, outcomes) = alter_partition_reassignments(image, requests);
    apply(image, &records);
    outcomes.into_iter().map(|outcome| (outcome.error, outcome.message)).collect()
}

fn partition(image: &MetadataImage, id: i32) -> PartitionImage {
    image.topic("t").unwrap().partitions[&id].clone()
}

#[test]
fn invalid_reassignments_are_refused_as_kafka_refuses_them() {
    let mut image = cluster();
    assert!(list_partition_reassignments(&image, None).is_empty());
    let outcomes = alter(
        &mut image,
        &[
            request(0, Some(vec![1, 9])),
            request(0, Some(vec![2, 2])),
            request(0, Some(vec![])),
            request(0, None),
            request(5, Some(vec![1])),
            ReassignmentRequest { topic: "nope".into(), partition: 0, replicas: Some(vec![1]) },
        ],
    );
    let expected = [
        (
            ErrorCode::InvalidReplicaAssignment,
            "The manual partition assignment includes broker 9, but no such broker is registered.",
        ),
        (ErrorCode::InvalidReplicaAssignment, "The manual partition assignment includes the broker 2 more than once."),
        (ErrorCode::InvalidReplicaAssignment, "The manual partition assignment includes an empty replica list."),
        (ErrorCode::NoReassignmentInProgress, ErrorCode::NoReassignmentInProgress.message()),
        (ErrorCode::UnknownTopicOrPartition, "Unable to find partition t:5."),
        (ErrorCode::UnknownTopicOrPartition, "Unable to find a topic named nope."),
    ];
    let expected: Vec<(ErrorCode, Option<String>)> =
        expected.iter().map(|(code, message)| (*code, Some(message.to_string()))).collect();
    assert_eq!(outcomes, expected);
    assert_eq!(partition(&image, 0).partition_epoch, 0, "nothing was written");
}

#[test]
fn a_reassignment_adds_then_completes_once_the_isr_has_the_targets() {
    let mut image = cluster();
    let outcomes = alter(&mut image, &[request(0, Some(vec![2, 3, 4]))]);
    assert_eq!(outcomes, vec![(ErrorCode::None, None)]);
    let moving = partition(&image, 0);
    assert_eq!(moving.replicas, vec![2, 3, 4, 1]);
    assert_eq!((moving.adding_replicas.clone(), moving.removing_replicas.clone()), (vec![4], vec![1]));
    assert_eq!((moving.leader, moving.isr.clone()), (1, vec![1, 2, 3]), "the leader stays until completion");
    let listed = list_partition_reassignments(&image, None);
    assert_eq!(
        listed,
        vec![OngoingReassignment {
            topic: "t".into(),
            partition: 0,
            replicas: vec![2, 3, 4, 1],
            adding_replicas: vec![4],
            removing_replicas: vec![1],
        }]
    );
    let filtered = list_partition_reassignments(&image, Some(&[("t".into(), vec![1, 0]), ("nope".into(), vec![0])]));
    assert_eq!(filtered, listed, "partitions not moving and unknown topics are left out");
    // Broker 4 has not joined the ISR: nothing completes.
    assert!(complete_reassignments(&image).is_empty());
    let topic_id = image.topic("t").unwrap().id;
    let grow = PartitionChangeRecord { topic_id, partition_id: 0, isr: Some(vec![1, 2, 3, 4]), ..Default::default() };
    apply(&mut image, &[MetadataRecord::PartitionChange(grow)]);
    let records = complete_reassignments(&image);
    assert_eq!(records.len(), 1);
    apply(&mut image, &records);
    let done = partition(&image, 0);
    assert_eq!((done.replicas.clone(), done.isr.clone(), done.leader), (vec![2, 3, 4], vec![2, 3, 4], 2));
    assert!(done.adding_replicas.is_empty() && done.removing_replicas.is_empty());
    assert!(list_partition_reassignments(&image, None).is_empty());
}

#[test]
fn reorders_and_shrinks_complete_at_once_and_cancels_revert() {
    let mut image = cluster();
    let outcomes = alter(&mut image, &[request(0, Some(vec![3, 2, 1])), request(1, Some(vec![2, 3]))]);
    assert_eq!(outcomes, vec![(ErrorCode::None, None), (ErrorCode::None, None)]);
    let reordered = partition(&image, 0);
    assert_eq!((reordered.replicas.clone(), reordered.leader), (vec![3, 2, 1], 1));
    let shrunk = partition(&image, 1);
    assert_eq!((shrunk.replicas.clone(), shrunk.isr.clone(), shrunk.leader), (vec![2, 3], vec![2, 3], 2));
    assert!(list_partition_reassignments(&image, None).is_empty());

    // A reassignment in progress, cancelled: back to the original replicas.
    alter(&mut image, &[request(0, Some(vec![4, 3]))]);
    // The target, then the removed replicas in id order (Kafka's sorted set).
    assert_eq!(partition(&image, 0).replicas, vec![4, 3, 1, 2]);
    let outcomes = alter(&mut image, &[request(0, None)]);
    assert_eq!(outcomes, vec![(ErrorCode::None, None)]);
    let reverted = partition(&image, 0);
    assert_eq!((reverted.replicas.clone(), reverted.isr.clone()), (vec![3, 1, 2], vec![1, 2, 3]));
    assert!(reverted.adding_replicas.is_empty() && reverted.removing_replicas.is_empty());
}
