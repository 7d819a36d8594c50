//! The classic protocol driven like the broker drives it, with a fake clock.

use super::testkit::{config, join_request, protocols, subscription, Harness};
use super::ClassicGroupState;
use crate::record::CoordinatorRecord;
use gregor_protocol::messages::heartbeat_request::HeartbeatRequest;
use gregor_protocol::messages::leave_group_request::MemberIdentity;
use gregor_protocol::ErrorCode;

const G: &str = "g";

fn code(error: ErrorCode) -> i16 {
    error.code()
}

fn last_group_record(harness: &Harness) -> gregor_protocol::messages::group_metadata_value::GroupMetadataValue {
    harness
        .log
        .iter()
        .rev()
        .find_map(|record| match record {
            CoordinatorRecord::GroupMetadata { value: Some(value), .. } => Some(value.clone()),
            _ => None,
        })
        .expect("a GroupMetadata record")
}

#[test]
fn v0_join_waits_for_the_initial_delay_then_the_leader_gets_the_members() {
    let mut h = Harness::new(crate::config::GroupConfig { initial_rebalance_delay_ms: 3_000, ..config() });
    let reply = h.join(0, G, "", protocols(&[("range", b"m1")]));
    assert!(!h.answered(reply), "parked during the initial delay");
    assert_eq!(h.classic(G).state(), ClassicGroupState::PreparingRebalance);
    h.advance(2_999);
    assert!(!h.answered(reply));
    h.advance(1);
    let response = h.join_response(reply);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.generation_id, 1);
    assert_eq!(response.leader, response.member_id);
    assert!(response.member_id.starts_with("client-"));
    assert_eq!(response.protocol_name.as_deref(), Some("range"));
    assert_eq!(response.members.len(), 1);
    assert_eq!(&response.members[0].metadata[..], b"m1");
    assert_eq!(h.classic(G).state(), ClassicGroupState::CompletingRebalance);

    let sync = h.sync(0, G, &response.member_id, 1, &[(&response.member_id, b"a1")]);
    let sync = h.sync_response(sync);
    assert_eq!(sync.error_code, 0);
    assert_eq!(&sync.assignment[..], b"a1");
    assert_eq!(h.classic(G).state(), ClassicGroupState::Stable);
    let record = last_group_record(&h);
    assert_eq!(record.generation, 1);
    assert_eq!(record.protocol.as_deref(), Some("range"));
    assert_eq!(record.leader.as_deref(), Some(response.member_id.as_str()));
    assert_eq!(&record.members[0].assignment[..], b"a1");
    assert_eq!(&record.members[0].subscription[..], b"m1");
}

#[test]
fn v4_join_requires_a_member_id_first() {
    let mut h = Harness::new(config());
    let first = h.join(4, G, "", protocols(&[("range", b"m")]));
    let response = h.join_response(first);
    assert_eq!(response.error_code, code(ErrorCode::MemberIdRequired));
    let member_id = response.member_id;
    assert!(h.classic(G).is_pending_member(&member_id));
    let second = h.join(4, G, &member_id, protocols(&[("range", b"m")]));
    h.advance(0);
    let response = h.join_response(second);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.member_id, member_id);
    assert_eq!(response.generation_id, 1);
    // Every join version answers in a shape its encoder accepts (checked by the harness).
    for version in [1, 2, 3, 5, 6, 7, 8, 9] {
        let reply = h.join(version, "other", "", protocols(&[("range", b"m")]));
        assert!(h.answered(reply) || version <= 3);
    }
}

#[test]
fn an_unused_pending_member_id_expires() {
    let mut h = Harness::new(config());
    let first = h.join(4, G, "", protocols(&[("range", b"m")]));
    let member_id = h.join_response(first).member_id;
    h.advance(10_000);
    assert!(!h.classic(G).is_pending_member(&member_id));
}

#[test]
fn initial_delay_is_extended_while_members_keep_arriving() {
    let mut h = Harness::new(crate::config::GroupConfig { initial_rebalance_delay_ms: 3_000, ..config() });
    let a = h.join(1, G, "", protocols(&[("range", b"a")]));
    h.advance(2_000);
    let b = h.join(1, G, "", protocols(&[("range", b"b")]));
    h.advance(1_000); // the first delay ends with a new member: extended
    assert!(!h.answered(a) && !h.answered(b));
    h.advance(2_999);
    assert!(!h.answered(a));
    h.advance(1);
    let (a, b) = (h.join_response(a), h.join_response(b));
    assert_eq!((a.generation_id, b.generation_id), (1, 1));
    assert_eq!(a.members.len(), 2);
    assert!(b.members.is_empty());
    assert_eq!(b.leader, a.member_id);
}

#[test]
fn protocol_selection_takes_the_most_voted_common_protocol() {
    let mut h = Harness::new(config());
    let (_, a) = h.join_new(5, G, protocols(&[("range", b"a1"), ("roundrobin", b"a2")]));
    let (_, b) = h.join_new(5, G, protocols(&[("roundrobin", b"b2"), ("range", b"b1"), ("sticky", b"b3")]));
    let (_, c) = h.join_new(5, G, protocols(&[("roundrobin", b"c2"), ("range", b"c1")]));
    // No protocol in common with the group: refused.
    let d = h.join(5, G, "", protocols(&[("sticky", b"d")]));
    assert_eq!(h.join_response(d).error_code, code(ErrorCode::InconsistentGroupProtocol));
    let mut other_type = join_request(G, "", protocols(&[("range", b"x")]));
    other_type.protocol_type = "connect".into();
    let e = h.send_join(5, "client", other_type);
    assert_eq!(h.join_response(e).error_code, code(ErrorCode::InconsistentGroupProtocol));
    h.advance(0);
    let leader = h.join_response(a);
    assert_eq!(leader.protocol_name.as_deref(), Some("roundrobin"));
    let metadata: Vec<&[u8]> = leader.members.iter().map(|member| &member.metadata[..]).collect();
    assert_eq!(metadata, vec![&b"a2"[..], b"b2", b"c2"]);
    assert_eq!(h.join_response(b).protocol_name.as_deref(), Some("roundrobin"));
    let c = h.join_response(c);
    assert_eq!(c.protocol_name.as_deref(), Some("roundrobin"));
    assert_eq!(c.protocol_type.as_deref(), Some("consumer"));
}

#[test]
fn join_validation_errors() {
    let mut h = Harness::new(config());
    let reply = h.send_join(5, "client", join_request("", "", protocols(&[("range", b"m")])));
    assert_eq!(h.join_response(reply).error_code, code(ErrorCode::InvalidGroupId));
    let mut short = join_request(G, "", protocols(&[("range", b"m")]));
    short.session_timeout_ms = 10;
    let reply = h.send_join(5, "client", short);
    assert_eq!(h.join_response(reply).error_code, code(ErrorCode::InvalidSessionTimeout));
    let reply = h.join(5, G, "", vec![]);
    assert_eq!(h.join_response(reply).error_code, code(ErrorCode::InconsistentGroupProtocol));
    let reply = h.join(5, "nope", "unknown-member", protocols(&[("range", b"m")]));
    assert_eq!(h.join_response(reply).error_code, code(ErrorCode::UnknownMemberId));

    let mut h = Harness::new(crate::config::GroupConfig { max_size: 1, ..config() });
    h.stable_group(G, 1, &["t1"]);
    // Kafka checks the size before handing out a member id.
    let reply = h.join(5, G, "", protocols(&[("range", &subscription(&["t1"]))]));
    let response = h.join_response(reply);
    assert_eq!(response.error_code, code(ErrorCode::GroupMaxSizeReached));
    assert_eq!(response.member_id, "");
}

#[test]
fn the_leader_sync_gives_every_member_exactly_its_assignment() {
    let mut h = Harness::new(config());
    let (a, ra) = h.join_new(5, G, protocols(&[("range", b"a")]));
    let (b, rb) = h.join_new(5, G, protocols(&[("range", b"b")]));
    let (c, rc) = h.join_new(5, G, protocols(&[("range", b"c")]));
    h.advance(0);
    let generation = h.join_response(ra).generation_id;
    h.join_response(rb);
    h.join_response(rc);
    // Followers sync first and wait for the leader.
    let sb = h.sync(5, G, &b, generation, &[]);
    let sc = h.sync(3, G, &c, generation, &[]);
    assert!(!h.answered(sb) && !h.answered(sc));
    let records_before = h.log.len();
    let sa = h.sync(5, G, &a, generation, &[(&a, &[1, 2, 3]), (&b, &[0, 0, 0, 9])]);
    assert_eq!(h.log.len(), records_before + 1, "one GroupMetadata record");
    assert_eq!(&h.sync_response(sa).assignment[..], &[1, 2, 3]);
    let sb = h.sync_response(sb);
    assert_eq!(&sb.assignment[..], &[0, 0, 0, 9]);
    assert_eq!(sb.protocol_name.as_deref(), Some("range"));
    assert_eq!(sb.protocol_type.as_deref(), Some("consumer"));
    assert!(h.sync_response(sc).assignment.is_empty(), "omitted by the leader: empty");
    let record = last_group_record(&h);
    let assignments: Vec<(&str, &[u8])> =
        record.members.iter().map(|member| (member.member_id.as_str(), &member.assignment[..])).collect();
    assert_eq!(
        assignments,
        vec![(a.as_str(), &[1u8, 2, 3][..]), (b.as_str(), &[0, 0, 0, 9][..]), (c.as_str(), &[][..])]
    );
    // Stable: a SyncGroup is answered with the member's assignment right away.
    let again = h.sync(5, G, &b, generation, &[]);
    assert_eq!(&h.sync_response(again).assignment[..], &[0, 0, 0, 9]);
}

#[test]
fn sync_validation_errors() {
    let mut h = Harness::new(config());
    let (members, generation) = h.stable_group(G, 2, &["t1"]);
    let reply = h.sync(5, G, &members[1], generation + 1, &[]);
    assert_eq!(h.sync_response(reply).error_code, code(ErrorCode::IllegalGeneration));
    let reply = h.sync(5, G, "stranger", generation, &[]);
    assert_eq!(h.sync_response(reply).error_code, code(ErrorCode::UnknownMemberId));
    let reply = h.sync(5, "nope", "stranger", generation, &[]);
    assert_eq!(h.sync_response(reply).error_code, code(ErrorCode::UnknownMemberId));
    let ctx = h.ctx(5, "client");
    let request = gregor_protocol::messages::sync_group_request::SyncGroupRequest {
        group_id: G.into(),
        generation_id: generation,
        member_id: members[1].clone(),
        protocol_name: Some("roundrobin".into()),
        ..Default::default()
    };
    let effects = h.shard.sync_group(&ctx, request);
    h.apply(effects);
    assert_eq!(h.sync_response(ctx.reply).error_code, code(ErrorCode::InconsistentGroupProtocol));
    // During PreparingRebalance: rejoin first.
    let reply = h.join(5, G, &members[0], protocols(&[("range", &subscription(&["t1"]))]));
    assert!(!h.answered(reply));
    let sync = h.sync(5, G, &members[1], generation, &[]);
    assert_eq!(h.sync_response(sync).error_code, code(ErrorCode::RebalanceInProgress));
}

#[test]
fn heartbeats_keep_members_alive_and_report_errors() {
    let mut h = Harness::new(config());
    let (members, generation) = h.stable_group(G, 2, &["t1"]);
    for _ in 0..5 {
        h.advance(6_000);
        assert_eq!(h.heartbeat(G, &members[0], generation), 0);
        assert_eq!(h.heartbeat(G, &members[1], generation), 0);
    }
    assert_eq!(h.classic(G).members().len(), 2);
    assert_eq!(h.heartbeat(G, &members[0], generation + 1), code(ErrorCode::IllegalGeneration));
    assert_eq!(h.heartbeat(G, "stranger", generation), code(ErrorCode::UnknownMemberId));
    assert_eq!(h.heartbeat("nope", &members[0], generation), code(ErrorCode::UnknownMemberId));
    assert_eq!(h.heartbeat("", &members[0], generation), code(ErrorCode::InvalidGroupId));
}

#[test]
fn a_crashed_member_is_removed_after_its_session_and_the_group_rebalances() {
    let mut h = Harness::new(config());
    let (members, generation) = h.stable_group(G, 2, &["t1"]);
    h.advance(6_000);
    assert_eq!(h.heartbeat(G, &members[0], generation), 0);
    h.advance(4_000); // members[1]'s session (10 s) ends
    assert!(!h.classic(G).has_member(&members[1]));
    assert_eq!(h.classic(G).state(), ClassicGroupState::PreparingRebalance);
    assert_eq!(h.heartbeat(G, &members[0], generation), code(ErrorCode::RebalanceInProgress));
    let reply = h.join(5, G, &members[0], protocols(&[("range", &subscription(&["t1"]))]));
    let response = h.join_response(reply);
    assert_eq!(response.generation_id, generation + 1);
    assert_eq!(response.members.len(), 1);
    assert_eq!(response.leader, members[0]);

    // The last member crashing empties the group, durably.
    h.advance(10_000);
    assert_eq!(h.classic(G).state(), ClassicGroupState::Empty);
    let record = last_group_record(&h);
    assert!(record.members.is_empty());
    assert_eq!(record.generation, generation + 2);
}

#[test]
fn leave_group_single_and_batched() {
    let mut h = Harness::new(config());
    let (members, generation) = h.stable_group(G, 3, &["t1"]);
    // v1: one member id, error at the top level.
    let response = h.leave(1, G, &members[2], vec![]);
    assert_eq!(response.error_code, 0);
    assert_eq!(h.classic(G).state(), ClassicGroupState::PreparingRebalance);
    let response = h.leave(1, G, "stranger", vec![]);
    assert_eq!(response.error_code, code(ErrorCode::UnknownMemberId));
    // The others rejoin.
    let metadata = subscription(&["t1"]);
    let r0 = h.join(5, G, &members[0], protocols(&[("range", &metadata)]));
    let r1 = h.join(5, G, &members[1], protocols(&[("range", &metadata)]));
    assert_eq!(h.join_response(r0).generation_id, generation + 1);
    assert_eq!(h.join_response(r1).generation_id, generation + 1);
    // v3+: a batch, with per-member errors.
    let response = h.leave(
        5,
        G,
        "",
        vec![
            MemberIdentity { member_id: members[0].clone(), reason: Some("bye".into()), ..Default::default() },
            MemberIdentity { member_id: "stranger".into(), ..Default::default() },
            MemberIdentity { member_id: members[1].clone(), ..Default::default() },
        ],
    );
    assert_eq!(response.error_code, 0);
    let errors: Vec<i16> = response.members.iter().map(|member| member.error_code).collect();
    assert_eq!(errors, vec![0, code(ErrorCode::UnknownMemberId), 0]);
    assert_eq!(h.classic(G).state(), ClassicGroupState::Empty);
    let record = last_group_record(&h);
    assert!(record.members.is_empty());
    assert_eq!(record.generation, generation + 2);
    let response = h.leave(3, "nope", "", vec![MemberIdentity { member_id: "x".into(), ..Default::default() }]);
    assert_eq!(response.error_code, code(ErrorCode::UnknownMemberId));
}

fn static_join(h: &mut Harness, member_id: &str, instance: &str, metadata: &[u8]) -> u64 {
    let mut request = join_request(G, member_id, protocols(&[("range", metadata)]));
    request.group_instance_id = Some(instance.to_string());
    h.send_join(5, "client", request)
}

#[test]
fn a_restarted_static_member_takes_its_place_without_a_rebalance() {
    let mut h = Harness::new(config());
    let a = static_join(&mut h, "", "instance-a", b"ma");
    let b = static_join(&mut h, "", "instance-b", b"mb");
    h.advance(0);
    let (a, b) = (h.join_response(a), h.join_response(b));
    assert!(a.member_id.starts_with("instance-a-"));
    assert_eq!(a.members[1].group_instance_id.as_deref(), Some("instance-b"));
    let generation = a.generation_id;
    let sa = h.sync(5, G, &a.member_id, generation, &[(&a.member_id, b"A"), (&b.member_id, b"B")]);
    let sb = h.sync(5, G, &b.member_id, generation, &[]);
    h.sync_response(sa);
    h.sync_response(sb);

    // instance-b restarts: a new member id, same generation, no rebalance.
    let records_before = h.log.len();
    let rejoin = static_join(&mut h, "", "instance-b", b"mb");
    let rejoined = h.join_response(rejoin);
    assert_eq!(rejoined.error_code, 0);
    assert_ne!(rejoined.member_id, b.member_id);
    assert_eq!(rejoined.generation_id, generation);
    assert_eq!(rejoined.leader, a.member_id);
    assert!(rejoined.members.is_empty());
    assert_eq!(h.classic(G).state(), ClassicGroupState::Stable);
    assert_eq!(h.log.len(), records_before + 1, "the new member id is persisted");
    assert_eq!(last_group_record(&h).members[1].member_id, rejoined.member_id);
    let sync = h.sync(5, G, &rejoined.member_id, generation, &[]);
    assert_eq!(&h.sync_response(sync).assignment[..], b"B");

    // The old incarnation is fenced.
    let heartbeat = HeartbeatRequest {
        group_id: G.into(),
        generation_id: generation,
        member_id: b.member_id.clone(),
        group_instance_id: Some("instance-b".into()),
        ..Default::default()
    };
    assert_eq!(h.heartbeat_with(4, heartbeat), code(ErrorCode::FencedInstanceId));
    let duplicate = static_join(&mut h, &b.member_id, "instance-b", b"mb");
    assert_eq!(h.join_response(duplicate).error_code, code(ErrorCode::FencedInstanceId));
    assert_eq!(h.heartbeat(G, &a.member_id, generation), 0);

    // An administrative leave by instance id removes the static member.
    let response =
        h.leave(5, G, "", vec![MemberIdentity { group_instance_id: Some("instance-b".into()), ..Default::default() }]);
    assert_eq!(response.members[0].error_code, 0);
    assert!(!h.classic(G).has_member(&rejoined.member_id));
}

#[test]
fn a_static_member_replaced_while_parked_in_join_is_fenced() {
    let mut h = Harness::new(config());
    let a = static_join(&mut h, "", "instance-a", b"ma");
    let b = static_join(&mut h, "", "instance-b", b"mb");
    h.advance(0);
    let (a, b) = (h.join_response(a), h.join_response(b));
    let generation = a.generation_id;
    let sa = h.sync(5, G, &a.member_id, generation, &[(&a.member_id, b"A"), (&b.member_id, b"B")]);
    let sb = h.sync(5, G, &b.member_id, generation, &[]);
    h.sync_response(sa);
    h.sync_response(sb);
    // The leader rejoins (a rebalance: parked until b rejoins), then a new
    // incarnation of instance-a replaces it.
    let parked = static_join(&mut h, &a.member_id, "instance-a", b"ma");
    assert!(!h.answered(parked));
    let replacement = static_join(&mut h, "", "instance-a", b"ma");
    assert_eq!(h.join_response(parked).error_code, code(ErrorCode::FencedInstanceId));
    assert!(!h.answered(replacement));
    let rb = static_join(&mut h, &b.member_id, "instance-b", b"mb");
    let replacement = h.join_response(replacement);
    assert_eq!(replacement.error_code, 0);
    assert_eq!(replacement.generation_id, generation + 1);
    assert_eq!(replacement.leader, replacement.member_id);
    assert_eq!(replacement.members.len(), 2);
    assert_eq!(h.join_response(rb).generation_id, generation + 1);
}

#[test]
fn a_second_consumer_joining_during_a_rebalance_gets_no_unknown_member_id() {
    let mut h = Harness::new(config());
    let (members, generation) = h.stable_group(G, 1, &["t1"]);
    let metadata = subscription(&["t1"]);
    let (b, rb) = h.join_new(5, G, protocols(&[("range", &metadata)]));
    assert_eq!(h.classic(G).state(), ClassicGroupState::PreparingRebalance);
    // A third consumer arrives while the first has not rejoined yet.
    let (c, rc) = h.join_new(5, G, protocols(&[("range", &metadata)]));
    assert_eq!(h.heartbeat(G, &members[0], generation), code(ErrorCode::RebalanceInProgress));
    let ra = h.join(5, G, &members[0], protocols(&[("range", &metadata)]));
    let (a, b_response, c_response) = (h.join_response(ra), h.join_response(rb), h.join_response(rc));
    for response in [&a, &b_response, &c_response] {
        assert_eq!(response.error_code, 0);
        assert_eq!(response.generation_id, generation + 1);
    }
    assert_eq!(b_response.member_id, b);
    assert_eq!(c_response.member_id, c);
    assert_eq!(a.members.len(), 3);
}

#[test]
fn a_member_that_does_not_rejoin_within_the_rebalance_timeout_is_expelled() {
    let mut h = Harness::new(config());
    let (members, generation) = h.stable_group(G, 2, &["t1"]);
    let metadata = subscription(&["t1"]);
    let (_, rc) = h.join_new(5, G, protocols(&[("range", &metadata)]));
    let ra = h.join(5, G, &members[0], protocols(&[("range", &metadata)]));
    // members[1] keeps heartbeating but never rejoins.
    for _ in 0..5 {
        h.advance(5_000);
        assert_eq!(h.heartbeat(G, &members[1], generation), code(ErrorCode::RebalanceInProgress));
    }
    assert!(!h.answered(ra));
    h.advance(5_000); // 30 s rebalance timeout
    let a = h.join_response(ra);
    assert_eq!(a.generation_id, generation + 1);
    assert_eq!(a.members.len(), 2);
    assert!(h.join_response(rc).error_code == 0);
    assert!(!h.classic(G).has_member(&members[1]));
    assert_eq!(h.heartbeat(G, &members[1], generation), code(ErrorCode::UnknownMemberId));
}

#[test]
fn members_that_never_sync_are_removed_after_the_rebalance_timeout() {
    let mut h = Harness::new(config());
    let metadata = subscription(&["t1"]);
    let (a, ra) = h.join_new(5, G, protocols(&[("range", &metadata)]));
    let (b, rb) = h.join_new(5, G, protocols(&[("range", &metadata)]));
    h.advance(0);
    let generation = h.join_response(ra).generation_id;
    h.join_response(rb);
    let sb = h.sync(5, G, &b, generation, &[]);
    // The leader heartbeats but never syncs; b's session is kept by its parked sync.
    for _ in 0..6 {
        assert!(!h.answered(sb));
        h.advance(5_000);
        h.heartbeat(G, &a, generation);
    }
    assert_eq!(h.sync_response(sb).error_code, code(ErrorCode::RebalanceInProgress));
    assert!(!h.classic(G).has_member(&a));
    assert_eq!(h.classic(G).state(), ClassicGroupState::PreparingRebalance);
    let rb = h.join(5, G, &b, protocols(&[("range", &metadata)]));
    let response = h.join_response(rb);
    assert_eq!(response.generation_id, generation + 1);
    assert_eq!(response.leader, b);
}

#[test]
fn a_new_member_that_times_out_in_join_is_answered() {
    let mut h = Harness::new(config());
    let (members, generation) = h.stable_group(G, 1, &["t1"]);
    let metadata = subscription(&["t1"]);
    let (_, rb) = h.join_new(5, G, protocols(&[("range", &metadata)]));
    // members[0] keeps its session but never rejoins: the join phase ends after the
    // rebalance timeout with only the new member.
    for _ in 0..6 {
        h.advance(5_000);
        h.heartbeat(G, &members[0], generation);
    }
    let response = h.join_response(rb);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.members.len(), 1);
}

#[test]
fn join_of_a_known_member_in_stable_returns_the_current_generation() {
    let mut h = Harness::new(config());
    let (members, generation) = h.stable_group(G, 2, &["t1"]);
    let reply = h.join(5, G, &members[1], protocols(&[("range", &subscription(&["t1"]))]));
    let response = h.join_response(reply);
    assert_eq!(response.generation_id, generation);
    assert_eq!(h.classic(G).state(), ClassicGroupState::Stable);
    // Changed metadata rebalances.
    let reply = h.join(5, G, &members[1], protocols(&[("range", &subscription(&["t1", "t2"]))]));
    assert!(!h.answered(reply));
    assert_eq!(h.classic(G).state(), ClassicGroupState::PreparingRebalance);
}

#[test]
fn replaying_the_log_rebuilds_the_stable_group() {
    let mut h = Harness::new(config());
    let (members, generation) = h.stable_group(G, 2, &["t1"]);
    let mut fresh = Harness::new(config());
    for record in h.log.clone() {
        fresh.shard.replay(record);
    }
    fresh.shard.finish_load(fresh.now);
    let group = fresh.classic(G);
    assert_eq!(group.state(), ClassicGroupState::Stable);
    assert_eq!(group.generation_id(), generation);
    assert_eq!(group.leader_id(), Some(members[0].as_str()));
    assert_eq!(group.protocol_name(), Some("range"));
    assert_eq!(group.members().len(), 2);
    assert_eq!(fresh.heartbeat(G, &members[1], generation), 0);
    let sync = fresh.sync(5, G, &members[1], generation, &[]);
    assert_eq!(fresh.sync_response(sync).assignment, format!("assignment-of-{}", members[1]).into_bytes());
    // Loaded members must heartbeat to this broker in time.
    fresh.advance(5_000);
    assert_eq!(fresh.heartbeat(G, &members[0], generation), 0);
    fresh.advance(5_000);
    assert!(!fresh.classic(G).has_member(&members[1]));
    assert_eq!(fresh.classic(G).state(), ClassicGroupState::PreparingRebalance);
}

#[test]
fn an_empty_consumer_group_becomes_classic_and_a_live_one_refuses_classic_members() {
    use gregor_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
    let mut h = Harness::new(crate::config::GroupConfig { initial_rebalance_delay_ms: 0, ..config() });
    let heartbeat = |member_epoch: i32| ConsumerGroupHeartbeatRequest {
        group_id: G.into(),
        member_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        member_epoch,
        rebalance_timeout_ms: 60_000,
        subscribed_topic_names: (member_epoch == 0).then(|| vec!["t1".to_string()]),
        topic_partitions: (member_epoch == 0).then(Vec::new),
        ..Default::default()
    };
    let ctx = h.ctx(1, "client");
    let effects = h.shard.consumer_group_heartbeat(&ctx, heartbeat(0), &h.topics);
    h.apply(effects);
    assert!(matches!(h.shard.group(G), Some(crate::shard::Group::Consumer(_))));

    // A classic member may not join while the consumer group has members.
    let refused = h.join(5, G, "", protocols(&[("range", b"m1")]));
    assert_eq!(h.join_response(refused).error_code, code(ErrorCode::InconsistentGroupProtocol));

    let ctx = h.ctx(1, "client");
    let effects = h.shard.consumer_group_heartbeat(&ctx, heartbeat(-1), &h.topics);
    h.apply(effects);

    // Empty now: the classic join converts the group and proceeds as a first join.
    let (member, parked) = h.join_new(5, G, protocols(&[("range", b"m1")]));
    h.advance(1);
    let response = h.join_response(parked);
    assert_eq!(response.error_code, 0);
    assert_eq!(response.member_id, member);
    assert_eq!(h.classic(G).state(), ClassicGroupState::CompletingRebalance);
    assert!(h.log.iter().any(|record| matches!(record, CoordinatorRecord::ConsumerGroupMetadata { value: None, .. })));
}

#[test]
fn an_empty_classic_group_becomes_a_consumer_group() {
    use gregor_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
    use gregor_protocol::ResponseBody;
    let mut h = Harness::new(crate::config::GroupConfig { initial_rebalance_delay_ms: 0, ..config() });
    let (members, _) = h.stable_group(G, 1, &["t1"]);
    let join = ConsumerGroupHeartbeatRequest {
        group_id: G.into(),
        member_id: "BBBBBBBBBBBBBBBBBBBBBB".into(),
        member_epoch: 0,
        rebalance_timeout_ms: 60_000,
        subscribed_topic_names: Some(vec!["t1".to_string()]),
        topic_partitions: Some(Vec::new()),
        ..Default::default()
    };
    let ctx = h.ctx(1, "client");
    let effects = h.shard.consumer_group_heartbeat(&ctx, join.clone(), &h.topics);
    h.apply(effects);
    let ResponseBody::ConsumerGroupHeartbeat(refused) = h.take(ctx.reply) else { panic!("not a heartbeat answer") };
    assert_eq!(refused.error_code, code(ErrorCode::GroupIdNotFound), "a classic group with members is in use");

    h.leave(2, G, &members[0], Vec::new());
    assert_eq!(h.classic(G).state(), ClassicGroupState::Empty);
    let ctx = h.ctx(1, "client");
    let effects = h.shard.consumer_group_heartbeat(&ctx, join, &h.topics);
    h.apply(effects);
    let ResponseBody::ConsumerGroupHeartbeat(joined) = h.take(ctx.reply) else { panic!("not a heartbeat answer") };
    assert_eq!(joined.error_code, 0, "{joined:?}");
    assert_eq!(joined.member_epoch, 1);
    assert!(matches!(h.shard.group(G), Some(crate::shard::Group::Consumer(_))));
}
