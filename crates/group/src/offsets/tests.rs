//! Offset commit, fetch, delete and expiry, driven like the broker does.

use crate::classic::testkit::{config, protocols, subscription, Harness};
use crate::classic::ClassicGroupState;
use crate::config::GroupConfig;
use crate::record::CoordinatorRecord;
use crate::shard::TopicsView;
use gregor_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::messages::offset_commit_response::OffsetCommitResponse;
use gregor_protocol::messages::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use gregor_protocol::messages::offset_delete_response::OffsetDeleteResponse;
use gregor_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};
use gregor_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use gregor_protocol::{ErrorCode, ResponseBody, Uuid};

const G: &str = "g";

fn partition(index: i32, offset: i64, epoch: i32, metadata: Option<&str>) -> OffsetCommitRequestPartition {
    OffsetCommitRequestPartition {
        partition_index: index,
        committed_offset: offset,
        committed_leader_epoch: epoch,
        committed_metadata: metadata.map(str::to_string),
        ..Default::default()
    }
}

fn commit_request(
    generation: i32,
    member_id: &str,
    topics: Vec<(&str, Vec<OffsetCommitRequestPartition>)>,
) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: G.to_string(),
        generation_id_or_member_epoch: generation,
        member_id: member_id.to_string(),
        topics: topics
            .into_iter()
            .map(|(name, partitions)| OffsetCommitRequestTopic {
                name: name.to_string(),
                partitions,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn commit(h: &mut Harness, version: i16, request: OffsetCommitRequest) -> Vec<Vec<i16>> {
    let ctx = h.ctx(version, "client");
    let effects = h.shard.offset_commit(&ctx, request, &h.topics);
    h.apply(effects);
    match h.take(ctx.reply) {
        ResponseBody::OffsetCommit(OffsetCommitResponse { topics, .. }) => topics
            .into_iter()
            .map(|topic| topic.partitions.into_iter().map(|partition| partition.error_code).collect())
            .collect(),
        other => panic!("not an OffsetCommit answer: {other:?}"),
    }
}

fn fetch(h: &mut Harness, group: &str, topics: Option<Vec<(&str, Vec<i32>)>>) -> OffsetFetchResponseGroup {
    let ctx = h.ctx(8, "client");
    let request = OffsetFetchRequestGroup {
        group_id: group.to_string(),
        topics: topics.map(|topics| {
            topics
                .into_iter()
                .map(|(name, partitions)| OffsetFetchRequestTopics {
                    name: name.to_string(),
                    partition_indexes: partitions,
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    };
    h.shard.offset_fetch_group(&ctx, request, false, &h.topics)
}

/// (topic, partition, offset, leader epoch, metadata, error) rows of a fetch.
fn rows(group: &OffsetFetchResponseGroup) -> Vec<(String, i32, i64, i32, String, i16)> {
    group
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|partition| {
                (
                    topic.name.clone(),
                    partition.partition_index,
                    partition.committed_offset,
                    partition.committed_leader_epoch,
                    partition.metadata.clone().unwrap_or_default(),
                    partition.error_code,
                )
            })
        })
        .collect()
}

fn row(topic: &str, partition: i32, offset: i64, epoch: i32, metadata: &str) -> (String, i32, i64, i32, String, i16) {
    (topic.to_string(), partition, offset, epoch, metadata.to_string(), 0)
}

#[test]
fn simple_commits_round_trip_at_several_versions() {
    let mut h = Harness::new(config());
    // v0: no timestamps, no epoch; v2: retention; v6/v8: leader epochs.
    assert_eq!(
        commit(&mut h, 0, commit_request(-1, "", vec![("t1", vec![partition(0, 10, 5, Some("v0"))])])),
        vec![vec![0]]
    );
    let mut v2 = commit_request(-1, "", vec![("t1", vec![partition(1, 11, -1, None)])]);
    v2.retention_time_ms = 60_000;
    assert_eq!(commit(&mut h, 2, v2), vec![vec![0]]);
    assert_eq!(
        commit(
            &mut h,
            8,
            commit_request(
                -1,
                "",
                vec![("t2", vec![partition(0, 20, 7, Some("meta")), partition(1, 21, 8, Some(""))])]
            )
        ),
        vec![vec![0, 0]]
    );
    let committed = h.shard.offsets.get(G, "t1", 1).expect("committed");
    assert_eq!(committed.expire_timestamp_ms, Some(h.now + 60_000));
    assert_eq!(committed.commit_timestamp_ms, h.now);
    // The group exists now: empty, classic, without a protocol type.
    assert_eq!(h.classic(G).state(), ClassicGroupState::Empty);
    assert_eq!(h.classic(G).protocol_type(), None);

    let all = fetch(&mut h, G, None);
    assert_eq!(
        rows(&all),
        vec![
            row("t1", 0, 10, -1, "v0"),
            row("t1", 1, 11, -1, ""),
            row("t2", 0, 20, 7, "meta"),
            row("t2", 1, 21, 8, "")
        ]
    );
    assert_eq!(all.topics[0].topic_id, h.topics.topic_id("t1").unwrap());
    let some = fetch(&mut h, G, Some(vec![("t2", vec![0, 5]), ("t3", vec![0])]));
    assert_eq!(rows(&some), vec![row("t2", 0, 20, 7, "meta"), row("t2", 5, -1, -1, ""), row("t3", 0, -1, -1, "")]);
    // An unknown group: nothing committed, no error.
    assert!(fetch(&mut h, "nope", None).topics.is_empty());
    assert_eq!(rows(&fetch(&mut h, "nope", Some(vec![("t1", vec![0])]))), vec![row("t1", 0, -1, -1, "")]);
}

#[test]
fn commit_errors_per_partition() {
    let mut h = Harness::new(GroupConfig { offset_metadata_max_bytes: 4, ..config() });
    let errors = commit(
        &mut h,
        8,
        commit_request(
            -1,
            "",
            vec![
                (
                    "t1",
                    vec![
                        partition(0, 1, -1, Some("long metadata")),
                        partition(1, 1, -1, Some("ok")),
                        partition(9, 1, -1, None),
                    ],
                ),
                ("missing", vec![partition(0, 1, -1, None)]),
            ],
        ),
    );
    assert_eq!(
        errors,
        vec![
            vec![ErrorCode::OffsetMetadataTooLarge.code(), 0, ErrorCode::UnknownTopicOrPartition.code()],
            vec![ErrorCode::UnknownTopicOrPartition.code()],
        ]
    );
    // v10 addresses topics by id.
    let mut request =
        commit_request(-1, "", vec![("", vec![partition(0, 3, -1, None)]), ("", vec![partition(0, 4, -1, None)])]);
    request.topics[0].topic_id = h.topics.topic_id("t2").unwrap();
    request.topics[1].topic_id = Uuid::from_u128(999);
    assert_eq!(commit(&mut h, 10, request), vec![vec![0], vec![ErrorCode::UnknownTopicId.code()]]);
    assert_eq!(h.shard.offsets.get(G, "t2", 0).map(|offset| offset.offset), Some(3));
    // An unknown group with a generation.
    let mut h = Harness::new(config());
    let request = || commit_request(3, "m", vec![("t1", vec![partition(0, 1, -1, None)])]);
    assert_eq!(commit(&mut h, 8, request()), vec![vec![ErrorCode::IllegalGeneration.code()]]);
    assert_eq!(commit(&mut h, 9, request()), vec![vec![ErrorCode::GroupIdNotFound.code()]]);
    let mut empty_id = request();
    empty_id.group_id.clear();
    assert_eq!(commit(&mut h, 8, empty_id), vec![vec![ErrorCode::InvalidGroupId.code()]]);
}

#[test]
fn commits_of_group_members_are_validated() {
    let mut h = Harness::new(config());
    let (members, generation) = h.stable_group(G, 2, &["t1"]);
    let with = |generation: i32, member: &str| {
        commit_request(generation, member, vec![("t1", vec![partition(0, 5, 2, Some("x"))])])
    };
    assert_eq!(commit(&mut h, 8, with(generation, &members[1])), vec![vec![0]]);
    assert_eq!(commit(&mut h, 8, with(generation + 1, &members[1])), vec![vec![ErrorCode::IllegalGeneration.code()]]);
    assert_eq!(commit(&mut h, 8, with(generation, "stranger")), vec![vec![ErrorCode::UnknownMemberId.code()]]);
    // A simple commit to a group with members.
    assert_eq!(commit(&mut h, 8, with(-1, "")), vec![vec![ErrorCode::UnknownMemberId.code()]]);
    let mut fenced = with(generation, "old-incarnation");
    fenced.group_instance_id = Some("instance".into());
    assert_eq!(commit(&mut h, 8, fenced), vec![vec![ErrorCode::UnknownMemberId.code()]]);
    // CompletingRebalance: members must finish the rebalance first.
    let metadata = subscription(&["t1"]);
    let r0 = h.join(5, G, &members[0], protocols(&[("range", &metadata)]));
    let r1 = h.join(5, G, &members[1], protocols(&[("range", &metadata)]));
    let next = h.join_response(r0).generation_id;
    h.join_response(r1);
    assert_eq!(h.classic(G).state(), ClassicGroupState::CompletingRebalance);
    assert_eq!(commit(&mut h, 8, with(next, &members[1])), vec![vec![ErrorCode::RebalanceInProgress.code()]]);
    assert_eq!(h.shard.offsets.get(G, "t1", 0).map(|offset| (offset.offset, offset.leader_epoch)), Some((5, 2)));
}

#[test]
fn static_member_commits_are_fenced() {
    let mut h = Harness::new(config());
    let mut join = crate::classic::testkit::join_request(G, "", protocols(&[("range", &subscription(&["t1"]))]));
    join.group_instance_id = Some("instance".into());
    let reply = h.send_join(5, "client", join);
    h.advance(0);
    let response = h.join_response(reply);
    let sync = h.sync(5, G, &response.member_id, response.generation_id, &[]);
    h.sync_response(sync);
    let mut request =
        commit_request(response.generation_id, "someone-else", vec![("t1", vec![partition(0, 1, -1, None)])]);
    request.group_instance_id = Some("instance".into());
    assert_eq!(commit(&mut h, 8, request), vec![vec![ErrorCode::FencedInstanceId.code()]]);
}

fn delete(h: &mut Harness, group: &str, topics: &[(&str, &[i32])]) -> OffsetDeleteResponse {
    let ctx = h.ctx(0, "admin");
    let request = OffsetDeleteRequest {
        group_id: group.to_string(),
        topics: topics
            .iter()
            .map(|(name, partitions)| OffsetDeleteRequestTopic {
                name: name.to_string(),
                partitions: partitions
                    .iter()
                    .map(|index| OffsetDeleteRequestPartition { partition_index: *index, ..Default::default() })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let effects = h.shard.offset_delete(&ctx, request);
    h.apply(effects);
    match h.take(ctx.reply) {
        ResponseBody::OffsetDelete(response) => response,
        other => panic!("not an OffsetDelete answer: {other:?}"),
    }
}

#[test]
fn offset_delete_respects_subscriptions() {
    let mut h = Harness::new(config());
    assert_eq!(delete(&mut h, "nope", &[("t1", &[0])]).error_code, ErrorCode::GroupIdNotFound.code());
    let (members, generation) = h.stable_group(G, 1, &["t1"]);
    let both = vec![("t1", vec![partition(0, 1, -1, None)]), ("t2", vec![partition(0, 2, -1, None)])];
    assert_eq!(commit(&mut h, 8, commit_request(generation, &members[0], both)), vec![vec![0], vec![0]]);
    let response = delete(&mut h, G, &[("t1", &[0]), ("t2", &[0, 1])]);
    assert_eq!(response.error_code, 0);
    let errors: Vec<Vec<i16>> = response
        .topics
        .iter()
        .map(|topic| topic.partitions.iter().map(|partition| partition.error_code).collect())
        .collect();
    assert_eq!(errors, vec![vec![ErrorCode::GroupSubscribedToTopic.code()], vec![0, 0]]);
    assert!(h.shard.offsets.get(G, "t1", 0).is_some());
    assert!(h.shard.offsets.get(G, "t2", 0).is_none());

    // A non-empty group of another protocol type cannot delete offsets.
    let mut join = crate::classic::testkit::join_request("connect", "", protocols(&[("v1", b"x")]));
    join.protocol_type = "connect".into();
    h.send_join(1, "client", join);
    assert_eq!(delete(&mut h, "connect", &[("t1", &[0])]).error_code, ErrorCode::NonEmptyGroup.code());
}

#[test]
fn offsets_expire_after_the_retention() {
    let retention = 24 * 60 * 60 * 1000;
    let mut h = Harness::new(GroupConfig { offsets_retention_ms: retention, ..config() });
    commit(&mut h, 8, commit_request(-1, "", vec![("t1", vec![partition(0, 1, -1, None)])]));
    h.advance(1_000);
    let mut explicit = commit_request(-1, "", vec![("t2", vec![partition(0, 2, -1, None)])]);
    explicit.retention_time_ms = 5_000;
    commit(&mut h, 2, explicit);
    let effects = h.shard.expire_offsets(h.now);
    assert!(effects.records.is_empty());
    h.advance(5_000);
    let effects = h.shard.expire_offsets(h.now);
    assert_eq!(effects.records.len(), 1, "the explicit expiry passed");
    h.apply(effects);
    assert!(h.shard.offsets.get(G, "t2", 0).is_none());
    h.advance(retention);
    let effects = h.shard.expire_offsets(h.now);
    // The last offset, then the group itself.
    assert!(matches!(effects.records.last(), Some(CoordinatorRecord::GroupMetadata { value: None, .. })));
    assert_eq!(effects.records.len(), 2);
    h.apply(effects);
    assert!(h.shard.group(G).is_none());
}

#[test]
fn a_stable_group_keeps_the_offsets_of_subscribed_topics() {
    let retention = 60_000;
    let mut h = Harness::new(GroupConfig { offsets_retention_ms: retention, ..config() });
    let (members, generation) = h.stable_group(G, 1, &["t1"]);
    let both = vec![("t1", vec![partition(0, 1, -1, None)]), ("t2", vec![partition(0, 2, -1, None)])];
    commit(&mut h, 8, commit_request(generation, &members[0], both));
    for _ in 0..12 {
        h.advance(5_000);
        h.heartbeat(G, &members[0], generation);
    }
    let effects = h.shard.expire_offsets(h.now);
    assert_eq!(effects.records.len(), 1);
    h.apply(effects);
    assert!(h.shard.offsets.get(G, "t1", 0).is_some());
    assert!(h.shard.offsets.get(G, "t2", 0).is_none());
    // Once empty, the retention counts from when the group became empty.
    h.leave(
        3,
        G,
        &members[0],
        vec![gregor_protocol::messages::leave_group_request::MemberIdentity {
            member_id: members[0].clone(),
            ..Default::default()
        }],
    );
    assert_eq!(h.classic(G).state(), ClassicGroupState::Empty);
    h.advance(retention - 1);
    assert!(h.shard.expire_offsets(h.now).records.is_empty());
    h.advance(1);
    let effects = h.shard.expire_offsets(h.now);
    assert_eq!(effects.records.len(), 2);
    h.apply(effects);
    assert!(h.shard.group(G).is_none());
}

#[test]
fn replaying_the_log_restores_offsets_and_the_group() {
    let mut h = Harness::new(config());
    let (members, generation) = h.stable_group(G, 2, &["t1"]);
    commit(&mut h, 8, commit_request(generation, &members[1], vec![("t1", vec![partition(2, 99, 4, Some("m"))])]));
    commit(&mut h, 8, commit_request(-1, "", vec![]));
    let ctx = h.ctx(0, "c");
    let effects = h.shard.offset_commit(
        &ctx,
        OffsetCommitRequest {
            group_id: "simple".into(),
            topics: vec![OffsetCommitRequestTopic {
                name: "t3".into(),
                partitions: vec![partition(0, 7, -1, None)],
                ..Default::default()
            }],
            ..Default::default()
        },
        &h.topics,
    );
    h.apply(effects);
    let mut fresh = Harness::new(config());
    for record in h.log.clone() {
        fresh.shard.replay(record);
    }
    fresh.shard.finish_load(fresh.now);
    assert_eq!(rows(&fetch(&mut fresh, G, None)), vec![row("t1", 2, 99, 4, "m")]);
    assert_eq!(rows(&fetch(&mut fresh, "simple", None)), vec![row("t3", 0, 7, -1, "")]);
    assert_eq!(fresh.classic(G).state(), ClassicGroupState::Stable);
    assert_eq!(fresh.classic(G).generation_id(), generation);
    assert_eq!(fresh.classic("simple").state(), ClassicGroupState::Empty);
    assert_eq!(fresh.shard.group_count(), 2);
}
