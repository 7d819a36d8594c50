//! Broker lifecycle decisions on images built by replaying records.

use gregor_protocol::{ErrorCode, Uuid};

use super::{apply, register, set_broker_state, with_ctx};
use crate::controller::brokers::{register_broker, *};
use crate::controller::*;
use crate::image::{MetadataImage, NO_LEADER};
use crate::record::MetadataRecord;

const TIMEOUT_MS: i64 = 9000;

/// Brokers 1..=n registered and unfenced, and for each `(i, replicas)` a one-partition
/// topic "t{i}" on those replicas (so replication factors may differ).
fn cluster_with(brokers: i32, assignments: Vec<(i32, Vec<i32>)>) -> MetadataImage {
    let mut image = MetadataImage::empty();
    let features = finalize_missing_features(&image);
    apply(&mut image, &features);
    for id in 1..=brokers {
        register(&mut image, id, None);
        set_broker_state(&mut image, id, false, false);
    }
    let topics: Vec<NewTopic> = assignments
        .into_iter()
        .map(|(index, replicas)| NewTopic {
            name: format!("t{index}"),
            num_partitions: -1,
            replication_factor: -1,
            assignments: vec![(0, replicas)],
            configs: vec![],
        })
        .collect();
    let mut ids = 0;
    let (records, outcomes) = with_ctx(&mut ids, |ctx| create_topics(&image, ctx, &topics, false));
    assert!(outcomes.iter().all(|outcome| outcome.error == ErrorCode::None), "{outcomes:?}");
    apply(&mut image, &records);
    image
}

fn partition(image: &MetadataImage, index: i32) -> (i32, Vec<i32>) {
    let partition = &image.topic(&format!("t{index}")).unwrap().partitions[&0];
    (partition.leader, partition.isr.clone())
}

fn registration_change(records: &[MetadataRecord]) -> Vec<(i32, i8, i8)> {
    records
        .iter()
        .filter_map(|record| match record {
            MetadataRecord::BrokerRegistrationChange(change) => {
                Some((change.broker_id, change.fenced, change.in_controlled_shutdown))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn fencing_moves_leaders_and_keeps_the_last_isr_member() {
    let mut image = cluster_with(3, vec![(0, vec![1, 2, 3]), (1, vec![1]), (2, vec![2, 1])]);
    let (records, result) = fence_broker(&image, 1);
    assert_eq!(result, Ok(()));
    // The fence is a BrokerRegistrationChangeRecord at this metadata.version, last.
    assert_eq!(registration_change(&records), vec![(1, 1, 0)]);
    assert!(matches!(records.last(), Some(MetadataRecord::BrokerRegistrationChange(_))));
    apply(&mut image, &records);
    assert!(image.broker(1).unwrap().fenced);
    assert_eq!(partition(&image, 0), (2, vec![2, 3]));
    assert_eq!(partition(&image, 1), (NO_LEADER, vec![1]), "the last ISR member stays, leaderless");
    assert_eq!(partition(&image, 2), (2, vec![2]));
    assert_eq!(image.topic("t0").unwrap().partitions[&0].leader_epoch, 1);

    // Unfencing elects it where it is in the ISR of a leaderless partition.
    let (records, result) = unfence_broker(&image, 1);
    assert_eq!(result, Ok(()));
    assert_eq!(registration_change(&records), vec![(1, -1, 0)]);
    apply(&mut image, &records);
    assert!(!image.broker(1).unwrap().fenced);
    assert_eq!(partition(&image, 1), (1, vec![1]));
    assert_eq!(partition(&image, 0), (2, vec![2, 3]), "ISR growth waits for the leader");

    let (records, result) = fence_broker(&image, 42);
    assert!(records.is_empty());
    assert_eq!(result.unwrap_err().code, ErrorCode::BrokerIdNotRegistered);
}

#[test]
fn unclean_election_is_used_when_the_topic_allows_it() {
    let mut image = cluster_with(2, vec![(0, vec![1, 2])]);
    // The ISR shrank to broker 1, which then fails: the partition goes offline.
    let topic_id = image.topic("t0").unwrap().id;
    apply(
        &mut image,
        &[MetadataRecord::PartitionChange(gregor_protocol::messages::partition_change_record::PartitionChangeRecord {
            topic_id,
            partition_id: 0,
            isr: Some(vec![1]),
            ..Default::default()
        })],
    );
    let (records, _) = fence_broker(&image, 1);
    apply(&mut image, &records);
    assert_eq!(partition(&image, 0), (NO_LEADER, vec![1]));
    let (records, outcome) = elect_leaders(&image, ELECTION_PREFERRED, Some(&[("t0".into(), vec![0])]));
    assert!(records.is_empty());
    assert_eq!(outcome.partitions[0].error, ErrorCode::PreferredLeaderNotAvailable);
    let (records, outcome) = elect_leaders(&image, ELECTION_UNCLEAN, Some(&[("t0".into(), vec![0])]));
    assert_eq!(outcome.partitions[0].error, ErrorCode::None);
    apply(&mut image, &records);
    let partition = &image.topic("t0").unwrap().partitions[&0];
    assert_eq!((partition.leader, partition.isr.clone(), partition.leader_recovery_state), (2, vec![2], 1));
    let (_, outcome) = elect_leaders(&image, ELECTION_UNCLEAN, Some(&[("t0".into(), vec![0])]));
    assert_eq!(outcome.partitions[0].error, ErrorCode::ElectionNotNeeded);
}

#[test]
fn registration_starts_fenced_and_refuses_a_live_duplicate() {
    let mut image = MetadataImage::empty();
    let features = finalize_missing_features(&image);
    apply(&mut image, &features);
    let mut sessions = BrokerSessions::new();
    let request = BrokerRegistrationRequest {
        broker_id: 4,
        incarnation_id: Uuid::from_u128(900),
        listeners: vec![crate::image::BrokerEndpoint {
            name: "SSL".into(),
            host: "h".into(),
            port: 9093,
            security_protocol: 1,
        }],
        features: vec![(METADATA_VERSION_FEATURE.into(), 7, METADATA_VERSION), ("group.version".into(), 0, 1)],
        rack: Some("r1".into()),
        log_dirs: vec![Uuid::from_u128(1000)],
    };
    // transaction.version is finalized and the request does not name it: unsupported.
    let (records, result) = register_broker(&image, &mut sessions, &request, 50, 0, TIMEOUT_MS);
    assert!(records.is_empty());
    let error = result.unwrap_err();
    assert_eq!(error.code, ErrorCode::UnsupportedVersion);
    assert_eq!(
        error.message.as_deref(),
        Some(
            "Unable to register because the broker does not support finalized version 2 of transaction.version. The \
             broker wants a version between 0 and 0, inclusive."
        )
    );
    let mut request = request;
    request.features.push(("transaction.version".into(), 0, 2));
    let (records, result) = register_broker(&image, &mut sessions, &request, 50, 0, TIMEOUT_MS);
    assert_eq!(result, Ok(50));
    apply(&mut image, &records);
    let broker = image.broker(4).unwrap();
    assert!(broker.fenced && !broker.in_controlled_shutdown);
    assert_eq!((broker.epoch, broker.rack.as_deref()), (50, Some("r1")));
    assert_eq!(broker.endpoints[0].security_protocol, 1);

    // Unfenced and heard from: another incarnation may not take the id.
    let (records, _) = unfence_broker(&image, 4);
    apply(&mut image, &records);
    sessions.register(4, false, 1000);
    let other = BrokerRegistrationRequest { incarnation_id: Uuid::from_u128(901), ..request.clone() };
    let (records, result) = register_broker(&image, &mut sessions, &other, 60, 2000, TIMEOUT_MS);
    assert!(records.is_empty());
    assert_eq!(result.unwrap_err().code, ErrorCode::DuplicateBrokerRegistration);
    // The same incarnation amends its registration: same epoch, still unfenced.
    let (records, result) = register_broker(&image, &mut sessions, &request, 60, 2000, TIMEOUT_MS);
    assert_eq!(result, Ok(50));
    apply(&mut image, &records);
    assert!(!image.broker(4).unwrap().fenced);
    // Once the session has expired, the new incarnation registers, fenced, new epoch.
    assert_eq!(sessions.expired(1000 + TIMEOUT_MS + 1, TIMEOUT_MS), vec![4]);
    let (records, result) = register_broker(&image, &mut sessions, &other, 60, 1000 + TIMEOUT_MS + 1, TIMEOUT_MS);
    assert_eq!(result, Ok(60));
    apply(&mut image, &records);
    assert!(image.broker(4).unwrap().fenced);
    // A directory another broker registered is refused.
    let thief = BrokerRegistrationRequest { broker_id: 5, incarnation_id: Uuid::from_u128(77), ..request };
    let (_, result) = register_broker(&image, &mut sessions, &thief, 70, 0, TIMEOUT_MS);
    let error = result.unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidRegistration);
    assert_eq!(
        error.message.as_deref(),
        Some(format!("Broker 4 is already registered with directory {}", Uuid::from_u128(1000)).as_str())
    );
}

#[test]
fn a_new_incarnation_leaves_the_isrs_of_the_old_one() {
    let mut image = cluster_with(2, vec![(0, vec![1, 2]), (1, vec![2, 1])]);
    let mut sessions = BrokerSessions::new();
    let request = BrokerRegistrationRequest {
        broker_id: 1,
        incarnation_id: Uuid::from_u128(1234),
        listeners: vec![],
        features: supported_features().iter().map(|f| (f.name.to_string(), f.min_level, f.max_level)).collect(),
        rack: None,
        log_dirs: vec![Uuid::from_u128(7001)],
    };
    let (records, result) = register_broker(&image, &mut sessions, &request, 500, 0, TIMEOUT_MS);
    assert_eq!(result, Ok(500));
    assert!(matches!(records.last(), Some(MetadataRecord::RegisterBroker(_))));
    apply(&mut image, &records);
    assert_eq!(partition(&image, 0), (2, vec![2]));
    assert_eq!(partition(&image, 1), (2, vec![2]));
}

#[test]
fn heartbeats_unfence_after_catch_up_and_fence_on_request() {
    let mut image = MetadataImage::empty();
    let features = finalize_missing_features(&image);
    apply(&mut image, &features);
    register(&mut image, 1, None);
    let mut sessions = BrokerSessions::from_image(&image, 0);
    let request = HeartbeatRequest {
        broker_id: 1,
        broker_epoch: 101,
        current_metadata_offset: 5,
        want_fence: false,
        want_shut_down: false,
    };
    let (_, result) = heartbeat(&image, &mut sessions, &request, None, 10);
    assert_eq!(result.unwrap_err().code, ErrorCode::StaleBrokerEpoch);
    let stale = HeartbeatRequest { broker_epoch: 3, ..request };
    let (_, result) = heartbeat(&image, &mut sessions, &stale, Some(8), 10);
    let error = result.unwrap_err();
    assert_eq!(error.code, ErrorCode::StaleBrokerEpoch);
    assert_eq!(error.message.as_deref(), Some("Expected broker epoch 101, but got broker epoch 3"));
    // Behind its registration record (offset 8): stays fenced.
    let (records, result) = heartbeat(&image, &mut sessions, &request, Some(8), 10);
    assert!(records.is_empty());
    let answer = result.unwrap();
    assert!(!answer.is_caught_up && answer.is_fenced && !answer.should_shut_down);
    // Caught up: unfenced.
    let caught_up = HeartbeatRequest { current_metadata_offset: 8, ..request };
    let (records, result) = heartbeat(&image, &mut sessions, &caught_up, Some(8), 20);
    assert_eq!(registration_change(&records), vec![(1, -1, 0)]);
    let answer = result.unwrap();
    assert!(answer.is_caught_up && !answer.is_fenced);
    apply(&mut image, &records);
    assert!(image.broker(1).unwrap().is_active());
    assert_eq!(sessions.get(1).map(|session| session.last_contact_ms), Some(20));
    assert!(sessions.expired(20 + TIMEOUT_MS, TIMEOUT_MS).is_empty());
    assert_eq!(sessions.expired(21 + TIMEOUT_MS, TIMEOUT_MS), vec![1]);
    // Asking to be fenced fences it.
    let fence = HeartbeatRequest { want_fence: true, ..caught_up };
    let (records, result) = heartbeat(&image, &mut sessions, &fence, Some(8), 30);
    assert_eq!(registration_change(&records), vec![(1, 1, 0)]);
    assert!(result.unwrap().is_fenced);
}

#[test]
fn controlled_shutdown_moves_leadership_then_lets_the_broker_go() {
    let mut image = cluster_with(3, vec![(0, vec![1, 2, 3]), (1, vec![2, 1]), (2, vec![3, 2])]);
    let mut sessions = BrokerSessions::from_image(&image, 0);
    let beat = |broker_id: i32, want_shut_down: bool| HeartbeatRequest {
        broker_id,
        broker_epoch: 100 + i64::from(broker_id),
        current_metadata_offset: 40,
        want_fence: false,
        want_shut_down,
    };
    for id in 1..=3 {
        let (records, _) = heartbeat(&image, &mut sessions, &beat(id, false), Some(1), 5);
        assert!(records.is_empty());
    }
    let (records, result) = heartbeat(&image, &mut sessions, &beat(1, true), Some(1), 10);
    let answer = result.unwrap();
    assert!(answer.in_controlled_shutdown && !answer.should_shut_down && !answer.is_fenced);
    assert_eq!(registration_change(&records), vec![(1, 0, 1)]);
    apply(&mut image, &records);
    sessions.enter_controlled_shutdown(1, 50);
    assert!(image.broker(1).unwrap().in_controlled_shutdown);
    assert_eq!(partition(&image, 0), (2, vec![2, 3]));
    assert_eq!(partition(&image, 1), (2, vec![2]));
    assert_eq!(partition(&image, 2), (3, vec![3, 2]));
    // It leads nothing now, but the others have not seen offset 50 yet.
    let (records, result) = heartbeat(&image, &mut sessions, &beat(1, true), Some(1), 20);
    assert!(records.is_empty());
    assert!(!result.unwrap().should_shut_down);
    for id in 2..=3 {
        let caught_up = HeartbeatRequest { current_metadata_offset: 50, ..beat(id, false) };
        let (records, result) = heartbeat(&image, &mut sessions, &caught_up, Some(1), 25);
        assert!(records.is_empty() && result.is_ok());
    }
    let (records, result) = heartbeat(&image, &mut sessions, &beat(1, true), Some(1), 30);
    let answer = result.unwrap();
    assert!(answer.should_shut_down && answer.is_fenced);
    assert_eq!(registration_change(&records), vec![(1, 1, 0)]);
    apply(&mut image, &records);
    assert!(image.broker(1).unwrap().fenced);
}

#[test]
fn a_broker_leading_nothing_shuts_down_at_once() {
    let image = cluster_with(2, vec![(0, vec![2, 1])]);
    let mut sessions = BrokerSessions::from_image(&image, 0);
    let request = HeartbeatRequest {
        broker_id: 1,
        broker_epoch: 101,
        current_metadata_offset: 9,
        want_fence: false,
        want_shut_down: true,
    };
    let (records, result) = heartbeat(&image, &mut sessions, &request, Some(1), 10);
    assert!(result.unwrap().should_shut_down);
    // Kafka fences it, which takes it out of the ISR it is in.
    assert_eq!(registration_change(&records), vec![(1, 1, 0)]);
    assert_eq!(records.len(), 2);
}

#[test]
fn unregistering_removes_the_broker_and_its_isr_places() {
    let mut image = cluster_with(2, vec![(0, vec![1, 2])]);
    let (records, result) = unregister_broker(&image, 7);
    assert!(records.is_empty());
    let error = result.unwrap_err();
    assert_eq!(error.code, ErrorCode::BrokerIdNotRegistered);
    assert_eq!(error.message.as_deref(), Some("Broker ID 7 is not currently registered"));
    let (records, result) = unregister_broker(&image, 1);
    assert_eq!(result, Ok(()));
    assert!(matches!(records.last(), Some(MetadataRecord::UnregisterBroker(record)) if record.broker_epoch == 101));
    apply(&mut image, &records);
    assert!(image.broker(1).is_none());
    assert_eq!(partition(&image, 0), (2, vec![2]));
}

#[test]
fn leader_balance_returns_leadership_to_preferred_replicas() {
    let mut image = cluster_with(3, vec![(0, vec![1, 2]), (1, vec![1, 3]), (2, vec![2, 3])]);
    let (records, _) = fence_broker(&image, 1);
    apply(&mut image, &records);
    assert_eq!(partition(&image, 0).0, 2);
    // Broker 1 back, but not yet in the ISRs: nothing to do.
    let (records, _) = unfence_broker(&image, 1);
    apply(&mut image, &records);
    let (records, more) = balance_partition_leaders(&image);
    assert!(records.is_empty() && !more);
    // Back in partition 0's ISR: only that partition moves.
    let topic_id = image.topic("t0").unwrap().id;
    apply(
        &mut image,
        &[MetadataRecord::PartitionChange(gregor_protocol::messages::partition_change_record::PartitionChangeRecord {
            topic_id,
            partition_id: 0,
            isr: Some(vec![2, 1]),
            ..Default::default()
        })],
    );
    let (records, more) = balance_partition_leaders(&image);
    assert_eq!(records.len(), 1);
    assert!(!more);
    apply(&mut image, &records);
    assert_eq!(partition(&image, 0), (1, vec![2, 1]));
    assert_eq!(partition(&image, 1).0, 3);
}

#[test]
fn fencing_elects_outside_the_isr_where_the_topic_allows_unclean_election() {
    use gregor_protocol::messages::config_record::ConfigRecord;
    let mut image = cluster_with(2, vec![(0, vec![1, 2])]);
    let topic_id = image.topic("t0").unwrap().id;
    let shrink = gregor_protocol::messages::partition_change_record::PartitionChangeRecord {
        topic_id,
        partition_id: 0,
        isr: Some(vec![1]),
        ..Default::default()
    };
    let unclean = ConfigRecord {
        resource_type: crate::image::resource_type::TOPIC,
        resource_name: "t0".into(),
        name: "unclean.leader.election.enable".into(),
        value: Some("true".into()),
        ..Default::default()
    };
    apply(&mut image, &[MetadataRecord::PartitionChange(shrink), MetadataRecord::Config(unclean)]);
    let (records, _) = fence_broker(&image, 1);
    apply(&mut image, &records);
    let partition = &image.topic("t0").unwrap().partitions[&0];
    assert_eq!((partition.leader, partition.isr.clone(), partition.leader_recovery_state), (2, vec![2], 1));
}
