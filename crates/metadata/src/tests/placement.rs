//! Replica placement, checked against the lists Kafka's own `StripedReplicaPlacerTest`
//! expects from the same seeded generator.

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::ErrorCode;

use super::{apply, mock_random, register, set_broker_state, with_ctx};
use crate::controller::placement::{place_replicas, usable_brokers, UsableBroker};
use crate::controller::*;
use crate::image::MetadataImage;

fn broker(id: i32, rack: Option<&str>, fenced: bool) -> UsableBroker {
    UsableBroker { id, rack: rack.map(str::to_string), fenced }
}

fn place(brokers: &[UsableBroker], partitions: i32, factor: i16) -> Result<Vec<Vec<i32>>, ApiError> {
    place_replicas(brokers, partitions, factor, &mut mock_random())
}

#[test]
fn placement_stripes_leaders_as_kafka_does() {
    let brokers = [broker(0, None, false), broker(3, None, false), broker(2, None, false), broker(1, None, false)];
    assert_eq!(
        place(&brokers, 5, 3).unwrap(),
        vec![vec![2, 3, 0], vec![3, 0, 1], vec![0, 1, 2], vec![1, 2, 3], vec![1, 0, 2]]
    );
}

#[test]
fn placement_distributes_pairs_with_kafkas_counts() {
    let brokers: Vec<UsableBroker> = (0..4).map(|id| broker(id, None, false)).collect();
    let mut counts: BTreeMap<Vec<i32>, usize> = BTreeMap::new();
    for replicas in place(&brokers, 200, 2).unwrap() {
        *counts.entry(replicas).or_default() += 1;
    }
    let expected: BTreeMap<Vec<i32>, usize> = [
        (vec![0, 1], 14),
        (vec![0, 2], 22),
        (vec![0, 3], 14),
        (vec![1, 0], 17),
        (vec![1, 2], 17),
        (vec![1, 3], 16),
        (vec![2, 0], 13),
        (vec![2, 1], 17),
        (vec![2, 3], 20),
        (vec![3, 0], 20),
        (vec![3, 1], 19),
        (vec![3, 2], 11),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, expected);
}

#[test]
fn placement_spreads_replicas_over_racks() {
    let brokers = [
        broker(11, Some("1"), false),
        broker(10, Some("1"), false),
        broker(30, Some("3"), false),
        broker(31, Some("3"), false),
        broker(21, Some("2"), false),
        broker(20, Some("2"), true),
    ];
    assert_eq!(place(&brokers, 3, 4).unwrap(), vec![vec![11, 21, 31, 10], vec![21, 30, 10, 20], vec![31, 11, 21, 30]]);
    // Racks whose brokers are all fenced hold followers, never leaders.
    let brokers = [
        broker(11, Some("1"), false),
        broker(10, Some("1"), false),
        broker(30, Some("3"), true),
        broker(31, Some("3"), true),
        broker(20, Some("2"), true),
        broker(21, Some("2"), true),
        broker(41, Some("4"), false),
        broker(40, Some("4"), true),
    ];
    assert_eq!(place(&brokers, 3, 4).unwrap(), vec![vec![41, 11, 21, 30], vec![10, 20, 31, 41], vec![41, 21, 30, 11]]);
}

#[test]
fn placement_uses_fenced_brokers_only_when_it_must() {
    let brokers = [
        broker(3, None, false),
        broker(1, None, true),
        broker(0, None, false),
        broker(4, None, false),
        broker(2, None, false),
    ];
    assert_eq!(
        place(&brokers, 5, 4).unwrap(),
        vec![vec![3, 4, 0, 2], vec![4, 0, 2, 3], vec![0, 2, 3, 4], vec![2, 3, 4, 0], vec![0, 4, 3, 2]]
    );
    let brokers = [broker(3, None, false), broker(1, None, true), broker(2, None, false)];
    assert_eq!(place(&brokers, 4, 3).unwrap(), vec![vec![3, 2, 1], vec![2, 3, 1], vec![3, 2, 1], vec![2, 3, 1]]);
    let brokers = [broker(0, None, false), broker(1, None, true)];
    assert_eq!(place(&brokers, 3, 1).unwrap(), vec![vec![0], vec![0], vec![0]]);
}

#[test]
fn placement_errors_carry_kafkas_messages() {
    let message = |result: Result<Vec<Vec<i32>>, ApiError>| {
        let error = result.unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidReplicationFactor);
        error.message.unwrap()
    };
    let fenced = [broker(11, Some("1"), true), broker(10, Some("1"), true)];
    assert_eq!(message(place(&fenced, 1, 1)), "All brokers are currently fenced.");
    let two = [broker(11, Some("1"), false), broker(10, Some("1"), false)];
    assert_eq!(
        message(place(&two, 1, 3)),
        "The target replication factor of 3 cannot be reached because only 2 broker(s) are registered."
    );
    assert_eq!(message(place(&two, 1, 0)), "Invalid replication factor 0: the replication factor must be positive.");
}

/// Brokers 1..=6 over racks a, b, c (two each), unfenced.
fn racked_cluster() -> MetadataImage {
    let mut image = MetadataImage::empty();
    let features = finalize_missing_features(&image);
    apply(&mut image, &features);
    for id in 1..=6 {
        let rack = ["a", "b", "c"][(id as usize - 1) / 2];
        register(&mut image, id, Some(rack));
        set_broker_state(&mut image, id, false, false);
    }
    image
}

#[test]
fn create_topics_places_from_the_image_across_racks() {
    let mut image = racked_cluster();
    let topic =
        NewTopic { name: "t".into(), num_partitions: 6, replication_factor: 3, assignments: vec![], configs: vec![] };
    let mut ids = 0;
    let (records, outcomes) = with_ctx(&mut ids, |ctx| create_topics(&image, ctx, &[topic], false));
    assert_eq!(outcomes[0].error, ErrorCode::None, "{:?}", outcomes[0].message);
    apply(&mut image, &records);
    let rack_of = |id: i32| image.broker(id).and_then(|broker| broker.rack.clone());
    let partitions = &image.topic("t").unwrap().partitions;
    for partition in partitions.values() {
        let racks: BTreeSet<_> = partition.replicas.iter().map(|id| rack_of(*id)).collect();
        assert_eq!(racks.len(), 3, "one replica per rack: {:?}", partition.replicas);
        assert_eq!(partition.leader, partition.replicas[0]);
        assert_eq!(partition.isr, partition.replicas);
    }
    let leaders: BTreeSet<i32> = partitions.values().map(|partition| partition.leader).collect();
    assert_eq!(leaders.len(), 6, "every broker leads one of the six partitions");

    // Shutting-down brokers get nothing; fenced ones only follow, outside the ISR.
    set_broker_state(&mut image, 1, false, true);
    set_broker_state(&mut image, 3, true, false);
    assert_eq!(usable_brokers(&image).len(), 5);
    let mut ctx_holder = 0;
    let request = [NewPartitions { name: "t".into(), count: 30, assignments: None }];
    let (records, outcomes) = with_ctx(&mut ctx_holder, |ctx| create_partitions(&image, ctx, &request, false));
    assert_eq!(outcomes[0].error, ErrorCode::None, "{:?}", outcomes[0].message);
    apply(&mut image, &records);
    for partition in image.topic("t").unwrap().partitions.range(6..).map(|(_, partition)| partition) {
        assert!(!partition.replicas.contains(&1));
        assert_ne!(partition.leader, 3);
        assert!(!partition.isr.contains(&3));
    }
    // Too few brokers: CreateTopics wraps the placer's message, as Kafka does.
    let topic =
        NewTopic { name: "big".into(), num_partitions: 1, replication_factor: 6, assignments: vec![], configs: vec![] };
    let (_, outcomes) = with_ctx(&mut ids, |ctx| create_topics(&image, ctx, &[topic], false));
    assert_eq!(outcomes[0].error, ErrorCode::InvalidReplicationFactor);
    assert_eq!(
        outcomes[0].message.as_deref(),
        Some(
            "Unable to replicate the partition 6 time(s): The target replication factor of 6 cannot be reached \
             because only 5 broker(s) are registered."
        )
    );
}

#[test]
fn explicit_assignments_are_checked_as_kafka_checks_them() {
    let mut image = racked_cluster();
    set_broker_state(&mut image, 5, true, false);
    set_broker_state(&mut image, 6, false, true);
    let assigned = |assignments: Vec<(i32, Vec<i32>)>| NewTopic {
        name: "m".into(),
        num_partitions: -1,
        replication_factor: -1,
        assignments,
        configs: vec![],
    };
    let cases = [
        (assigned(vec![(0, vec![1, 1])]), "The manual partition assignment includes the broker 1 more than once."),
        (
            assigned(vec![(0, vec![1, 9])]),
            "The manual partition assignment includes broker 9, but no such broker is registered.",
        ),
        (
            assigned(vec![(0, vec![1, 2]), (1, vec![3])]),
            "The manual partition assignment includes a partition with 1 replica(s), but this is not consistent with \
             previous partitions, which have 2 replica(s).",
        ),
        (
            assigned(vec![(0, vec![5, 6])]),
            "All brokers specified in the manual partition assignment for partition 0 are fenced or in controlled \
             shutdown.",
        ),
        (assigned(vec![(1, vec![1])]), "partitions should be a consecutive 0-based integer sequence"),
    ];
    for (topic, message) in cases {
        let mut ids = 0;
        let (records, outcomes) = with_ctx(&mut ids, |ctx| create_topics(&image, ctx, &[topic], false));
        assert!(records.is_empty());
        assert_eq!(outcomes[0].error, ErrorCode::InvalidReplicaAssignment);
        assert_eq!(outcomes[0].message.as_deref(), Some(message));
    }
    let mut both = assigned(vec![(0, vec![1])]);
    both.num_partitions = 1;
    let mut ids = 0;
    let (_, outcomes) = with_ctx(&mut ids, |ctx| create_topics(&image, ctx, &[both], false));
    assert_eq!(outcomes[0].error, ErrorCode::InvalidRequest);

    // Leader: the first active replica; ISR: the active ones.
    let mut ids = 0;
    let topic = assigned(vec![(0, vec![5, 2, 6, 4]), (1, vec![6, 5, 3, 1])]);
    let (records, outcomes) = with_ctx(&mut ids, |ctx| create_topics(&image, ctx, &[topic], false));
    assert_eq!(outcomes[0].error, ErrorCode::None);
    apply(&mut image, &records);
    let partitions = &image.topic("m").unwrap().partitions;
    assert_eq!((partitions[&0].leader, partitions[&0].isr.clone()), (2, vec![2, 4]));
    assert_eq!((partitions[&1].leader, partitions[&1].isr.clone()), (3, vec![3, 1]));
    // CreatePartitions takes the same checks with the topic's replication factor.
    let request = [NewPartitions { name: "m".into(), count: 3, assignments: Some(vec![vec![1, 2, 3]]) }];
    let (_, outcomes) = with_ctx(&mut ids, |ctx| create_partitions(&image, ctx, &request, false));
    assert_eq!(outcomes[0].error, ErrorCode::InvalidReplicaAssignment);
    let request = [NewPartitions { name: "m".into(), count: 3, assignments: Some(vec![vec![6, 1, 5, 2]]) }];
    let (records, outcomes) = with_ctx(&mut ids, |ctx| create_partitions(&image, ctx, &request, false));
    assert_eq!(outcomes[0].error, ErrorCode::None);
    apply(&mut image, &records);
    let partition = &image.topic("m").unwrap().partitions[&2];
    assert_eq!((partition.leader, partition.isr.clone()), (1, vec![1, 2]));
}
