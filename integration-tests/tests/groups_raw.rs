//! The group coordinator's error semantics on the wire, with exact error codes,
//! as Kafka clients depend on them: the JoinGroup member-id handshake (v4+) and
//! its absence (v0-3), ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
//! REBALANCE_IN_PROGRESS, OffsetCommit/OffsetFetch at every version,
//! OffsetFetch of several groups at once, ListGroups filters, FindCoordinator
//! single and batched, and KIP-848's ConsumerGroupHeartbeat join and leave.

use anyhow::{bail, ensure, Context, Result};
use gregor_integration_tests::expect_response;
use gregor_integration_tests::group_wire::*;
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::consumer_group_heartbeat_request::{
    ConsumerGroupHeartbeatRequest, TopicPartitions as HeartbeatTopicPartitions,
};
use gregor_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::list_groups_request::ListGroupsRequest;
use gregor_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use gregor_protocol::{ApiKey, ErrorCode, Uuid};
use std::time::{Duration, Instant};

#[test]
fn join_sync_heartbeat_leave_at_every_version() -> Result<()> {
    Fixture::start()?.run("join/sync/heartbeat/leave", |f| {
        let groups: Vec<String> = (0..=9).map(|v| format!("join-v{v}")).collect();
        ready(&mut f.conn, &groups.iter().map(String::as_str).collect::<Vec<_>>())?;
        for version in 0..=9i16 {
            let group = format!("join-v{version}");
            let (member, generation) =
                join_alone(&mut f.conn, &group, version).with_context(|| format!("JoinGroup v{version}"))?;
            let (_, heartbeat_version, leave_version) = companions(version);
            let beat =
                expect_response!(f.conn.call(heartbeat(&group, generation, &member), heartbeat_version)?, Heartbeat);
            check_code(beat.error_code, ErrorCode::None, &format!("Heartbeat v{heartbeat_version}"))?;
            let left = expect_response!(f.conn.call(leave(&group, &member, leave_version), leave_version)?, LeaveGroup);
            check_code(left.error_code, ErrorCode::None, &format!("LeaveGroup v{leave_version}"))?;
            if leave_version >= 3 {
                ensure!(left.members.len() == 1, "LeaveGroup v{leave_version}: {} members", left.members.len());
                check_code(left.members[0].error_code, ErrorCode::None, "LeaveGroup member")?;
            }
            // Gone: its heartbeat is now refused.
            let beat =
                expect_response!(f.conn.call(heartbeat(&group, generation, &member), heartbeat_version)?, Heartbeat);
            check_code(beat.error_code, ErrorCode::UnknownMemberId, "Heartbeat after LeaveGroup")?;
        }
        Ok(())
    })
}

#[test]
fn generation_member_and_rebalance_errors() -> Result<()> {
    Fixture::start()?.run("generation/member/rebalance errors", |f| {
        let group = "errors";
        ready(&mut f.conn, &[group])?;
        let (a, generation) = join_alone(&mut f.conn, group, 9)?;
        let wrong = generation + 1;

        let beat = expect_response!(f.conn.call(heartbeat(group, wrong, &a), 4)?, Heartbeat);
        check_code(beat.error_code, ErrorCode::IllegalGeneration, "Heartbeat with a wrong generation")?;
        let request = sync_at(sync_request(group, wrong, &a, &[(&a, assignment(&[0, 1, 2])?)]), 5);
        let synced = expect_response!(f.conn.call(request, 5)?, SyncGroup);
        check_code(synced.error_code, ErrorCode::IllegalGeneration, "SyncGroup with a wrong generation")?;
        let committed = expect_response!(f.conn.call(commit_request(group, wrong, &a, 5, None), 8)?, OffsetCommit);
        check_code(
            committed.topics[0].partitions[0].error_code,
            ErrorCode::IllegalGeneration,
            "OffsetCommit with a wrong generation",
        )?;

        let beat = expect_response!(f.conn.call(heartbeat(group, generation, "no-such-member"), 4)?, Heartbeat);
        check_code(beat.error_code, ErrorCode::UnknownMemberId, "Heartbeat of an unknown member")?;
        let synced = expect_response!(
            f.conn.call(sync_at(sync_request(group, generation, "no-such-member", &[]), 5), 5)?,
            SyncGroup
        );
        check_code(synced.error_code, ErrorCode::UnknownMemberId, "SyncGroup of an unknown member")?;
        let committed = expect_response!(
            f.conn.call(commit_request(group, generation, "no-such-member", 5, None), 8)?,
            OffsetCommit
        );
        check_code(
            committed.topics[0].partitions[0].error_code,
            ErrorCode::UnknownMemberId,
            "OffsetCommit of an unknown member",
        )?;
        let left = expect_response!(f.conn.call(leave(group, "no-such-member", 0), 0)?, LeaveGroup);
        check_code(left.error_code, ErrorCode::UnknownMemberId, "LeaveGroup v0 of an unknown member")?;
        let left = expect_response!(f.conn.call(leave(group, "no-such-member", 5), 5)?, LeaveGroup);
        check_code(left.error_code, ErrorCode::None, "LeaveGroup v5 (errors are per member)")?;
        check_code(left.members[0].error_code, ErrorCode::UnknownMemberId, "LeaveGroup v5 of an unknown member")?;
        // The right generation and member still work.
        let committed = expect_response!(f.conn.call(commit_request(group, generation, &a, 5, None), 8)?, OffsetCommit);
        check_code(committed.topics[0].partitions[0].error_code, ErrorCode::None, "OffsetCommit of the member")?;

        // A second member joins: the group rebalances, and the first member's
        // heartbeat says so until it rejoins.
        let mut b_conn = Conn::new(&f.broker.bootstrap())?;
        let first = expect_response!(b_conn.call(join_request(group, "")?, 9)?, JoinGroup);
        check_code(first.error_code, ErrorCode::MemberIdRequired, "second member's first JoinGroup")?;
        let b = first.member_id;
        b_conn.send(join_request(group, &b)?, 9)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let beat = expect_response!(f.conn.call(heartbeat(group, generation, &a), 4)?, Heartbeat);
            if beat.error_code == ErrorCode::RebalanceInProgress.code() {
                break;
            }
            check_code(beat.error_code, ErrorCode::None, "Heartbeat before the rebalance starts")?;
            ensure!(Instant::now() < deadline, "no REBALANCE_IN_PROGRESS within 10 s of a second member joining");
            std::thread::sleep(Duration::from_millis(50));
        }
        let rejoined = expect_response!(f.conn.call(join_request(group, &a)?, 9)?, JoinGroup);
        check_code(rejoined.error_code, ErrorCode::None, "the first member's rejoin")?;
        let b_joined = expect_response!(b_conn.receive(ApiKey::JoinGroup, 9, Duration::from_secs(15))?, JoinGroup);
        check_code(b_joined.error_code, ErrorCode::None, "the second member's JoinGroup")?;
        let next = rejoined.generation_id;
        ensure!(next == generation + 1, "generation {next} after the rebalance, expected {}", generation + 1);
        ensure!(b_joined.generation_id == next, "the members see generations {next} and {}", b_joined.generation_id);
        ensure!(
            rejoined.leader == a && b_joined.leader == a,
            "leader {:?}, expected the first member",
            rejoined.leader
        );
        ensure!(rejoined.members.len() == 2, "the leader sees {} members", rejoined.members.len());
        ensure!(b_joined.members.is_empty(), "a follower got the member list");

        let beat = expect_response!(f.conn.call(heartbeat(group, generation, &a), 4)?, Heartbeat);
        check_code(beat.error_code, ErrorCode::IllegalGeneration, "Heartbeat with the previous generation")?;

        // The follower's SyncGroup waits for the leader's.
        b_conn.send(sync_at(sync_request(group, next, &b, &[]), 5), 5)?;
        let plan = [(a.as_str(), assignment(&[0, 1])?), (b.as_str(), assignment(&[2])?)];
        let synced = expect_response!(f.conn.call(sync_at(sync_request(group, next, &a, &plan), 5), 5)?, SyncGroup);
        check_code(synced.error_code, ErrorCode::None, "the leader's SyncGroup")?;
        ensure!(synced.assignment == plan[0].1, "the leader got {:?}", synced.assignment);
        let b_synced = expect_response!(b_conn.receive(ApiKey::SyncGroup, 5, Duration::from_secs(15))?, SyncGroup);
        check_code(b_synced.error_code, ErrorCode::None, "the follower's SyncGroup")?;
        ensure!(b_synced.assignment == plan[1].1, "the follower got {:?}", b_synced.assignment);
        for (conn, member) in [(&mut f.conn, &a), (&mut b_conn, &b)] {
            let beat = expect_response!(conn.call(heartbeat(group, next, member), 4)?, Heartbeat);
            check_code(beat.error_code, ErrorCode::None, "Heartbeat after the rebalance")?;
        }
        Ok(())
    })
}

/// OffsetCommit of partition 0 of [`TOPIC`]; `topic_id` for v10.
fn commit_request(
    group: &str,
    generation: i32,
    member_id: &str,
    offset: i64,
    metadata: Option<(&str, i32)>,
) -> OffsetCommitRequest {
    let (text, epoch) = metadata.unwrap_or(("", -1));
    OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: generation,
        member_id: member_id.into(),
        topics: vec![OffsetCommitRequestTopic {
            name: TOPIC.into(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: offset,
                committed_leader_epoch: epoch,
                committed_metadata: Some(text.into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The broker's advertised version range of `key`.
fn advertised(conn: &mut Conn, key: ApiKey) -> Result<(i16, i16)> {
    let request = ApiVersionsRequest {
        client_software_name: "gregor-itest".into(),
        client_software_version: "1.0".into(),
        ..Default::default()
    };
    let response = expect_response!(conn.call(request, 3)?, ApiVersions);
    let found =
        response.api_keys.iter().find(|k| k.api_key == key.key()).with_context(|| format!("{key:?} not advertised"))?;
    Ok((found.min_version, found.max_version))
}

/// One committed partition as OffsetFetch returns it: (offset, leader epoch, metadata, error).
type Fetched = (i64, i32, Option<String>, i16);

/// OffsetFetch of partition 0 of [`TOPIC`] in `groups` at `version` (v0-7 take one group).
fn fetch_offsets(
    conn: &mut Conn,
    version: i16,
    groups: &[&str],
    topic_id: Uuid,
) -> Result<Vec<(String, i16, Vec<Fetched>)>> {
    if version < 8 {
        let [group] = groups else { bail!("OffsetFetch v{version} takes one group") };
        let request = OffsetFetchRequest {
            group_id: group.to_string(),
            topics: Some(vec![OffsetFetchRequestTopic {
                name: TOPIC.into(),
                partition_indexes: vec![0],
                ..Default::default()
            }]),
            ..Default::default()
        };
        let response = expect_response!(conn.call(request, version)?, OffsetFetch);
        let partitions = response
            .topics
            .iter()
            .filter(|t| t.name == TOPIC)
            .flat_map(|t| t.partitions.iter())
            .map(|p| (p.committed_offset, p.committed_leader_epoch, p.metadata.clone(), p.error_code))
            .collect();
        return Ok(vec![(group.to_string(), response.error_code, partitions)]);
    }
    let request = OffsetFetchRequest {
        groups: groups
            .iter()
            .map(|group| OffsetFetchRequestGroup {
                group_id: group.to_string(),
                topics: Some(vec![OffsetFetchRequestTopics {
                    name: if version < 10 { TOPIC.into() } else { String::new() },
                    topic_id: if version >= 10 { topic_id } else { Uuid::ZERO },
                    partition_indexes: vec![0],
                    ..Default::default()
                }]),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let response = expect_response!(conn.call(request, version)?, OffsetFetch);
    Ok(response
        .groups
        .iter()
        .map(|g| {
            let partitions = g
                .topics
                .iter()
                .filter(|t| if version >= 10 { t.topic_id == topic_id } else { t.name == TOPIC })
                .flat_map(|t| t.partitions.iter())
                .map(|p| (p.committed_offset, p.committed_leader_epoch, p.metadata.clone(), p.error_code))
                .collect();
            (g.group_id.clone(), g.error_code, partitions)
        })
        .collect())
}

#[test]
fn offset_commit_and_fetch_round_trip_at_every_version() -> Result<()> {
    Fixture::start()?.run("offset commit/fetch versions", |f| {
        let commit_range = advertised(&mut f.conn, ApiKey::OffsetCommit)?;
        let fetch_range = advertised(&mut f.conn, ApiKey::OffsetFetch)?;
        eprintln!(
            "OffsetCommit v{}-{}, OffsetFetch v{}-{}",
            commit_range.0, commit_range.1, fetch_range.0, fetch_range.1
        );
        ensure!(
            commit_range.1 >= 9 && fetch_range.1 >= 9,
            "OffsetCommit/OffsetFetch max versions {commit_range:?}/{fetch_range:?}"
        );
        let topic_id = f.topic_id;
        let groups: Vec<String> = (0..=10).map(|v| format!("offsets-v{v}")).collect();
        ready(&mut f.conn, &groups.iter().map(String::as_str).collect::<Vec<_>>())?;
        for version in 0..=10i16 {
            let commit_version = version.clamp(commit_range.0, commit_range.1);
            let fetch_version = version.clamp(fetch_range.0, fetch_range.1);
            let group = format!("offsets-v{version}");
            let offset = 1000 + version as i64;
            let metadata = format!("meta-v{version} ✓");
            // Leader epochs exist from OffsetCommit v6 and OffsetFetch v5.
            let epoch = if commit_version >= 6 { 7 + version as i32 } else { -1 };
            // A commit outside any generation: the "simple consumer" commit.
            let mut request = commit_request(&group, -1, "", offset, Some((&metadata, epoch)));
            if commit_version >= 10 {
                request.topics[0].name = String::new();
                request.topics[0].topic_id = topic_id;
            }
            let response = expect_response!(f.conn.call(request, commit_version)?, OffsetCommit);
            let [topic] = response.topics.as_slice() else { bail!("OffsetCommit v{commit_version}: {response:?}") };
            let [partition] = topic.partitions.as_slice() else {
                bail!("OffsetCommit v{commit_version}: {response:?}")
            };
            check_code(partition.error_code, ErrorCode::None, &format!("OffsetCommit v{commit_version}"))?;
            if commit_version >= 10 {
                ensure!(topic.topic_id == topic_id, "OffsetCommit v10 answered for topic id {}", topic.topic_id);
            } else {
                ensure!(topic.name == TOPIC, "OffsetCommit v{commit_version} answered for topic {:?}", topic.name);
            }

            let fetched = fetch_offsets(&mut f.conn, fetch_version, &[&group], topic_id)?;
            let expected_epoch = if fetch_version >= 5 { epoch } else { -1 };
            let want: Vec<Fetched> = vec![(offset, expected_epoch, Some(metadata.clone()), 0)];
            ensure!(
                fetched == vec![(group.clone(), 0, want.clone())],
                "OffsetCommit v{commit_version} then OffsetFetch v{fetch_version}: got {fetched:?}, expected {want:?}"
            );
        }
        Ok(())
    })
}

#[test]
fn offset_fetch_of_several_groups_at_once() -> Result<()> {
    Fixture::start()?.run("offset fetch of several groups", |f| {
        ready(&mut f.conn, &["multi-a", "multi-b", "multi-none"])?;
        for (group, offset) in [("multi-a", 11), ("multi-b", 22)] {
            let response =
                expect_response!(f.conn.call(commit_request(group, -1, "", offset, Some(("m", 3))), 9)?, OffsetCommit);
            check_code(response.topics[0].partitions[0].error_code, ErrorCode::None, "OffsetCommit")?;
        }
        for version in 8..=10i16 {
            let mut fetched = fetch_offsets(&mut f.conn, version, &["multi-a", "multi-b", "multi-none"], f.topic_id)?;
            fetched.sort_by(|a, b| a.0.cmp(&b.0));
            // A group without commits: offset -1, no metadata (Kafka gives "" or null), no error.
            let none = fetched.iter().find(|g| g.0 == "multi-none").context("multi-none missing")?;
            ensure!(
                none.1 == 0 && none.2.len() == 1 && none.2[0].0 == -1 && none.2[0].3 == 0,
                "OffsetFetch v{version} of a group without commits: {none:?}"
            );
            let rest: Vec<_> = fetched.iter().filter(|g| g.0 != "multi-none").cloned().collect();
            let want = vec![
                ("multi-a".to_string(), 0, vec![(11, 3, Some("m".to_string()), 0)]),
                ("multi-b".to_string(), 0, vec![(22, 3, Some("m".to_string()), 0)]),
            ];
            ensure!(rest == want, "OffsetFetch v{version} of three groups: {fetched:?}");
        }
        Ok(())
    })
}

fn list_groups(
    conn: &mut Conn,
    version: i16,
    states: &[&str],
    types: &[&str],
) -> Result<Vec<(String, String, String, String)>> {
    let request = ListGroupsRequest {
        states_filter: states.iter().map(|s| s.to_string()).collect(),
        types_filter: types.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let response = expect_response!(conn.call(request, version)?, ListGroups);
    check_code(response.error_code, ErrorCode::None, &format!("ListGroups v{version}"))?;
    let mut groups: Vec<_> =
        response.groups.into_iter().map(|g| (g.group_id, g.protocol_type, g.group_state, g.group_type)).collect();
    groups.sort();
    Ok(groups)
}

/// Joins a KIP-848 group (member epoch 0) and heartbeats until the member owns
/// an assignment; returns the response that carried it.
fn consumer_group_join(
    conn: &mut Conn,
    group: &str,
    member_id: &str,
    version: i16,
) -> Result<ConsumerGroupHeartbeatResponse> {
    let request = ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: member_id.into(),
        member_epoch: 0,
        rebalance_timeout_ms: REBALANCE_MS,
        subscribed_topic_names: Some(vec![TOPIC.into()]),
        topic_partitions: Some(Vec::new()),
        ..Default::default()
    };
    let mut response = expect_response!(conn.call(request, version)?, ConsumerGroupHeartbeat);
    check_code(response.error_code, ErrorCode::None, &format!("ConsumerGroupHeartbeat v{version} join"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while response.assignment.is_none() {
        ensure!(Instant::now() < deadline, "no assignment within 15 s: {response:?}");
        std::thread::sleep(Duration::from_millis(200));
        let request = ConsumerGroupHeartbeatRequest {
            group_id: group.into(),
            member_id: response.member_id.clone().unwrap_or_default(),
            member_epoch: response.member_epoch,
            ..Default::default()
        };
        let next = expect_response!(conn.call(request, version)?, ConsumerGroupHeartbeat);
        check_code(next.error_code, ErrorCode::None, &format!("ConsumerGroupHeartbeat v{version}"))?;
        response = ConsumerGroupHeartbeatResponse { member_id: next.member_id.or(response.member_id), ..next };
    }
    Ok(response)
}

fn consumer_group_leave(conn: &mut Conn, group: &str, member_id: &str, version: i16) -> Result<()> {
    let request = ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: member_id.into(),
        member_epoch: -1,
        ..Default::default()
    };
    let response = expect_response!(conn.call(request, version)?, ConsumerGroupHeartbeat);
    check_code(response.error_code, ErrorCode::None, &format!("ConsumerGroupHeartbeat v{version} leave"))?;
    ensure!(response.member_epoch == -1, "leaving answered member epoch {}, expected -1", response.member_epoch);
    Ok(())
}

#[test]
fn consumer_group_heartbeat_join_and_leave() -> Result<()> {
    Fixture::start()?.run("ConsumerGroupHeartbeat", |f| {
        ready(&mut f.conn, &["kip848-v0", "kip848-v1"])?;
        for version in 0..=1i16 {
            let group = format!("kip848-v{version}");
            // v0: the broker assigns the member id; v1 (KIP-1082): the client generates it.
            let given = if version == 0 { String::new() } else { "kYBEIJWXR0mHS5nLSQV3Ow".to_string() };
            let joined = consumer_group_join(&mut f.conn, &group, &given, version)?;
            let member_id = joined.member_id.clone().unwrap_or_default();
            ensure!(!member_id.is_empty(), "v{version}: no member id");
            if version == 1 {
                ensure!(member_id == given, "v1 member id {member_id:?}, the client sent {given:?}");
            }
            ensure!(joined.member_epoch > 0, "v{version}: member epoch {}", joined.member_epoch);
            ensure!(
                joined.heartbeat_interval_ms == 1000,
                "v{version}: heartbeat interval {}",
                joined.heartbeat_interval_ms
            );
            let assignment = joined.assignment.as_ref().context("no assignment")?;
            let mut owned: Vec<(Uuid, i32)> = assignment
                .topic_partitions
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
                .collect();
            owned.sort();
            let all: Vec<(Uuid, i32)> = (0..TOPIC_PARTITIONS).map(|p| (f.topic_id, p)).collect();
            ensure!(owned == all, "v{version}: the only member owns {owned:?}, expected {all:?}");

            // A steady-state heartbeat (full request after a join is also fine)
            // keeps the epoch.
            let request = ConsumerGroupHeartbeatRequest {
                group_id: group.clone(),
                member_id: member_id.clone(),
                member_epoch: joined.member_epoch,
                topic_partitions: Some(vec![HeartbeatTopicPartitions {
                    topic_id: f.topic_id,
                    partitions: (0..TOPIC_PARTITIONS).collect(),
                    ..Default::default()
                }]),
                ..Default::default()
            };
            let beat = expect_response!(f.conn.call(request, version)?, ConsumerGroupHeartbeat);
            check_code(beat.error_code, ErrorCode::None, "steady heartbeat")?;
            ensure!(beat.member_epoch == joined.member_epoch, "epoch moved to {} without a change", beat.member_epoch);
            // A stale epoch is fenced.
            let request = ConsumerGroupHeartbeatRequest {
                group_id: group.clone(),
                member_id: member_id.clone(),
                member_epoch: joined.member_epoch + 5,
                ..Default::default()
            };
            let fenced = expect_response!(f.conn.call(request, version)?, ConsumerGroupHeartbeat);
            check_code(fenced.error_code, ErrorCode::FencedMemberEpoch, "heartbeat with a wrong member epoch")?;

            consumer_group_join(&mut f.conn, &group, &member_id, version)?;
            consumer_group_leave(&mut f.conn, &group, &member_id, version)?;
        }
        Ok(())
    })
}

#[test]
fn list_groups_with_state_and_type_filters() -> Result<()> {
    Fixture::start()?.run("ListGroups filters", |f| {
        ready(&mut f.conn, &["listed-classic", "listed-empty", "listed-consumer"])?;
        // A classic group with a member (Stable), one with only offsets (Empty),
        // and a KIP-848 group with a member (Stable).
        join_alone(&mut f.conn, "listed-classic", 9)?;
        let response = expect_response!(f.conn.call(commit_request("listed-empty", -1, "", 1, None), 9)?, OffsetCommit);
        check_code(response.topics[0].partitions[0].error_code, ErrorCode::None, "OffsetCommit")?;
        let joined = consumer_group_join(&mut f.conn, "listed-consumer", "", 0)?;

        let classic =
            |id: &str, state: &str| (id.to_string(), "consumer".to_string(), state.to_string(), "classic".to_string());
        let consumer =
            ("listed-consumer".to_string(), "consumer".to_string(), "Stable".to_string(), "consumer".to_string());
        // A group that only has committed offsets has no protocol type.
        let offsets_only = ("listed-empty".to_string(), String::new(), "Empty".to_string(), "classic".to_string());
        let all = vec![classic("listed-classic", "Stable"), consumer.clone(), offsets_only];

        let got = list_groups(&mut f.conn, 5, &[], &[])?;
        ensure!(got == all, "ListGroups v5: {got:?}");
        let got = list_groups(&mut f.conn, 5, &["Stable"], &[])?;
        ensure!(got == vec![all[0].clone(), consumer.clone()], "ListGroups v5 states [Stable]: {got:?}");
        // Kafka matches states and types case-insensitively.
        let got = list_groups(&mut f.conn, 5, &["empty"], &[])?;
        ensure!(got == vec![all[2].clone()], "ListGroups v5 states [empty]: {got:?}");
        let got = list_groups(&mut f.conn, 5, &[], &["consumer"])?;
        ensure!(got == vec![consumer.clone()], "ListGroups v5 types [consumer]: {got:?}");
        let got = list_groups(&mut f.conn, 5, &["Stable"], &["Classic"])?;
        ensure!(got == vec![all[0].clone()], "ListGroups v5 states [Stable] types [Classic]: {got:?}");
        let got = list_groups(&mut f.conn, 5, &["Dead"], &[])?;
        ensure!(got.is_empty(), "ListGroups v5 states [Dead]: {got:?}");
        let got = list_groups(&mut f.conn, 4, &["Stable"], &[])?;
        let ids: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
        ensure!(ids == ["listed-classic", "listed-consumer"], "ListGroups v4 states [Stable]: {got:?}");
        // Older versions list everything (no state before v4, no type before v5).
        for version in 0..=3 {
            let got = list_groups(&mut f.conn, version, &[], &[])?;
            let ids: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
            ensure!(ids == ["listed-classic", "listed-consumer", "listed-empty"], "ListGroups v{version}: {got:?}");
            let types: Vec<&str> = got.iter().map(|g| g.1.as_str()).collect();
            ensure!(types == ["consumer", "consumer", ""], "ListGroups v{version} protocol types: {got:?}");
        }
        let member_id = joined.member_id.clone().unwrap_or_default();
        consumer_group_leave(&mut f.conn, "listed-consumer", &member_id, 0)?;
        Ok(())
    })
}

#[test]
fn find_coordinator_single_and_batched() -> Result<()> {
    Fixture::start()?.run("FindCoordinator", |f| {
        let port = f.broker.port() as i32;
        for version in 0..=6i16 {
            if version < 4 {
                let request = FindCoordinatorRequest { key: format!("fc-v{version}"), ..Default::default() };
                let response = expect_response!(f.conn.call(request, version)?, FindCoordinator);
                check_code(response.error_code, ErrorCode::None, &format!("FindCoordinator v{version}"))?;
                ensure!(
                    (response.node_id, response.host.as_str(), response.port) == (1, "127.0.0.1", port),
                    "FindCoordinator v{version}: node {} at {}:{}",
                    response.node_id,
                    response.host,
                    response.port
                );
            } else {
                let keys: Vec<String> = (0..3).map(|i| format!("fc-v{version}-{i}")).collect();
                let request =
                    FindCoordinatorRequest { key_type: 0, coordinator_keys: keys.clone(), ..Default::default() };
                let response = expect_response!(f.conn.call(request, version)?, FindCoordinator);
                let mut got: Vec<_> = response
                    .coordinators
                    .iter()
                    .map(|c| (c.key.clone(), c.node_id, c.host.clone(), c.port, c.error_code))
                    .collect();
                got.sort();
                let want: Vec<_> = keys.iter().map(|k| (k.clone(), 1, "127.0.0.1".to_string(), port, 0)).collect();
                ensure!(got == want, "FindCoordinator v{version}: {got:?}");
            }
        }
        Ok(())
    })
}

#[test]
fn offset_delete_and_delete_groups() -> Result<()> {
    Fixture::start()?.run("OffsetDelete and DeleteGroups", |f| {
        ready(
            &mut f.conn,
            &["od-empty", "od-active", "od-unknown", "dg-empty-v0", "dg-empty-v1", "dg-empty-v2", "dg-unknown"],
        )?;
        // An empty group's committed offset goes.
        let response = expect_response!(f.conn.call(commit_request("od-empty", -1, "", 9, None), 9)?, OffsetCommit);
        check_code(response.topics[0].partitions[0].error_code, ErrorCode::None, "OffsetCommit")?;
        let deleted = expect_response!(f.conn.call(offset_delete("od-empty"), 0)?, OffsetDelete);
        check_code(deleted.error_code, ErrorCode::None, "OffsetDelete of an empty group")?;
        check_code(deleted.topics[0].partitions[0].error_code, ErrorCode::None, "OffsetDelete partition")?;
        let fetched = fetch_offsets(&mut f.conn, 8, &["od-empty"], f.topic_id)?;
        ensure!(
            fetched.len() == 1 && fetched[0].2.len() == 1 && fetched[0].2[0].0 == -1,
            "after OffsetDelete: {fetched:?}"
        );

        // A group whose member subscribes to the topic keeps it.
        let (member, generation) = join_alone(&mut f.conn, "od-active", 9)?;
        let response =
            expect_response!(f.conn.call(commit_request("od-active", generation, &member, 9, None), 9)?, OffsetCommit);
        check_code(response.topics[0].partitions[0].error_code, ErrorCode::None, "OffsetCommit of the member")?;
        let refused = expect_response!(f.conn.call(offset_delete("od-active"), 0)?, OffsetDelete);
        check_code(refused.error_code, ErrorCode::None, "OffsetDelete of a subscribed group (top level)")?;
        check_code(
            refused.topics[0].partitions[0].error_code,
            ErrorCode::GroupSubscribedToTopic,
            "OffsetDelete of a topic the group subscribes to",
        )?;
        let unknown = expect_response!(f.conn.call(offset_delete("od-unknown"), 0)?, OffsetDelete);
        check_code(unknown.error_code, ErrorCode::GroupIdNotFound, "OffsetDelete of an unknown group")?;

        // DeleteGroups: per-group results at every version.
        for version in 0..=2i16 {
            let empty = format!("dg-empty-v{version}");
            let response = expect_response!(f.conn.call(commit_request(&empty, -1, "", 1, None), 9)?, OffsetCommit);
            check_code(response.topics[0].partitions[0].error_code, ErrorCode::None, "OffsetCommit")?;
            let request = gregor_protocol::messages::DeleteGroupsRequest {
                groups_names: vec![empty.clone(), "od-active".into(), "dg-unknown".into()],
                ..Default::default()
            };
            let response = expect_response!(f.conn.call(request, version)?, DeleteGroups);
            let mut got: Vec<(String, i16)> =
                response.results.iter().map(|r| (r.group_id.clone(), r.error_code)).collect();
            got.sort();
            let mut want = vec![
                (empty.clone(), ErrorCode::None.code()),
                ("od-active".to_string(), ErrorCode::NonEmptyGroup.code()),
                ("dg-unknown".to_string(), ErrorCode::GroupIdNotFound.code()),
            ];
            want.sort();
            ensure!(got == want, "DeleteGroups v{version}: {got:?}, expected {want:?}");
            let fetched = fetch_offsets(&mut f.conn, 8, &[&empty], f.topic_id)?;
            ensure!(fetched[0].2.iter().all(|p| p.0 == -1), "offsets of a deleted group: {fetched:?}");
        }
        // The member is still there.
        let beat = expect_response!(f.conn.call(heartbeat("od-active", generation, &member), 4)?, Heartbeat);
        check_code(beat.error_code, ErrorCode::None, "Heartbeat of the member of a group DeleteGroups refused")?;
        Ok(())
    })
}

fn offset_delete(group: &str) -> gregor_protocol::messages::OffsetDeleteRequest {
    use gregor_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
    gregor_protocol::messages::OffsetDeleteRequest {
        group_id: group.into(),
        topics: vec![OffsetDeleteRequestTopic {
            name: TOPIC.into(),
            partitions: vec![OffsetDeleteRequestPartition { partition_index: 0, ..Default::default() }],
            ..Default::default()
        }],
        ..Default::default()
    }
}
