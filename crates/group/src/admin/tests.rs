//! DescribeGroups, ListGroups and DeleteGroups.

use crate::classic::testkit::{config, protocols, Harness};
use crate::classic::ClassicGroupState;
use crate::record::CoordinatorRecord;
use gregor_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::ErrorCode;

fn simple_commit(h: &mut Harness, group: &str) {
    let ctx = h.ctx(8, "c");
    let request = OffsetCommitRequest {
        group_id: group.into(),
        topics: vec![OffsetCommitRequestTopic {
            name: "t1".into(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: 3,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let effects = h.shard.offset_commit(&ctx, request, &h.topics);
    h.apply(effects);
}

#[test]
fn describe_shows_members_and_their_assignments_when_stable() {
    let mut h = Harness::new(config());
    let (members, _) = h.stable_group("g", 2, &["t1"]);
    let ctx = h.ctx(5, "admin");
    let described = h.shard.describe_group(&ctx, "g");
    assert_eq!(described.error_code, 0);
    assert_eq!(described.group_state, "Stable");
    assert_eq!(described.protocol_type, "consumer");
    assert_eq!(described.protocol_data, "range");
    assert_eq!(described.members.len(), 2);
    assert_eq!(described.members[1].member_id, members[1]);
    assert_eq!(described.members[1].client_id, "client");
    assert_eq!(described.members[1].client_host, "/127.0.0.1");
    assert_eq!(described.members[1].member_assignment, format!("assignment-of-{}", members[1]).into_bytes());
    assert!(!described.members[1].member_metadata.is_empty());
    assert_eq!(described.authorized_operations, i32::MIN);

    // While rebalancing: no protocol, no metadata or assignments.
    h.join(5, "g", &members[0], protocols(&[("range", b"x")]));
    let described = h.shard.describe_group(&ctx, "g");
    assert_eq!(described.group_state, "PreparingRebalance");
    assert_eq!(described.protocol_data, "");
    assert!(described.members.iter().all(|member| member.member_assignment.is_empty()));

    let old = h.ctx(5, "admin");
    let unknown = h.shard.describe_group(&old, "nope");
    assert_eq!((unknown.error_code, unknown.group_state.as_str(), unknown.error_message), (0, "Dead", None));
    let new = h.ctx(6, "admin");
    let unknown = h.shard.describe_group(&new, "nope");
    assert_eq!(unknown.error_code, ErrorCode::GroupIdNotFound.code());
    assert_eq!(unknown.error_message.as_deref(), Some("Group nope not found."));
}

#[test]
fn list_groups_filters_by_state_and_type_case_insensitively() {
    let mut h = Harness::new(config());
    h.stable_group("stable", 1, &["t1"]);
    simple_commit(&mut h, "simple");
    let all = h.shard.list_groups(&[], &[]);
    let listed: Vec<(&str, &str, &str, &str)> = all
        .iter()
        .map(|group| {
            (
                group.group_id.as_str(),
                group.protocol_type.as_str(),
                group.group_state.as_str(),
                group.group_type.as_str(),
            )
        })
        .collect();
    assert_eq!(listed, vec![("simple", "", "Empty", "classic"), ("stable", "consumer", "Stable", "classic")]);
    let stable = h.shard.list_groups(&["STABLE".into()], &[]);
    assert_eq!(stable.len(), 1);
    assert_eq!(stable[0].group_id, "stable");
    assert_eq!(h.shard.list_groups(&[], &["Classic".into()]).len(), 2);
    assert!(h.shard.list_groups(&[], &["consumer".into()]).is_empty());
    assert!(h.shard.list_groups(&["preparingrebalance".into()], &[]).is_empty());
}

#[test]
fn delete_group_writes_tombstones_for_the_offsets_and_the_group() {
    let mut h = Harness::new(config());
    let ctx = h.ctx(2, "admin");
    assert_eq!(h.shard.delete_group(&ctx, "nope").1, ErrorCode::GroupIdNotFound);
    let (members, _) = h.stable_group("busy", 1, &["t1"]);
    assert_eq!(h.shard.delete_group(&ctx, "busy").1, ErrorCode::NonEmptyGroup);
    simple_commit(&mut h, "simple");
    let (records, error) = h.shard.delete_group(&ctx, "simple");
    assert_eq!(error, ErrorCode::None);
    assert_eq!(records.len(), 2);
    assert!(matches!(records[0], CoordinatorRecord::OffsetCommit { value: None, .. }));
    assert!(matches!(records[1], CoordinatorRecord::GroupMetadata { value: None, .. }));
    h.apply(crate::shard::Effects { records, ..Default::default() });
    assert!(h.shard.group("simple").is_none());
    assert!(h.shard.offsets.group("simple").is_none());

    // A group whose last member left can be deleted too.
    h.leave(1, "busy", &members[0], vec![]);
    assert_eq!(h.classic("busy").state(), ClassicGroupState::Empty);
    let (records, error) = h.shard.delete_group(&ctx, "busy");
    assert_eq!(error, ErrorCode::None);
    h.apply(crate::shard::Effects { records, ..Default::default() });
    assert!(h.shard.group("busy").is_none());
}
