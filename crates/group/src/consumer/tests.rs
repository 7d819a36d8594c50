//! The consumer-group path driven like the broker drives it: a fake clock, a fake
//! topic catalogue, every record encoded, decoded and replayed before the replies are
//! read.

use super::group::ConsumerGroup;
use crate::config::GroupConfig;
use crate::record::CoordinatorRecord;
use crate::shard::{Effects, Group, GroupCoordinatorShard, ReplyId, RequestContext, TopicsView};
use gregor_protocol::messages::consumer_group_describe_response::DescribedGroup;
use gregor_protocol::messages::consumer_group_heartbeat_request::{ConsumerGroupHeartbeatRequest, TopicPartitions};
use gregor_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use gregor_protocol::{ErrorCode, ResponseBody, Uuid};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Default)]
struct FakeTopics {
    topics: BTreeMap<String, (Uuid, i32)>,
}

impl FakeTopics {
    fn with(topics: &[(&str, i32)]) -> Self {
        let mut out = FakeTopics::default();
        for (name, partitions) in topics {
            out.create(name, *partitions);
        }
        out
    }

    fn create(&mut self, name: &str, partitions: i32) {
        let id = Uuid::from_u128(1000 + self.topics.len() as u128);
        self.topics.insert(name.to_string(), (id, partitions));
    }

    fn id(&self, name: &str) -> Uuid {
        self.topics[name].0
    }
}

impl TopicsView for FakeTopics {
    fn topic_id(&self, name: &str) -> Option<Uuid> {
        self.topics.get(name).map(|(id, _)| *id)
    }
    fn topic_name(&self, id: Uuid) -> Option<String> {
        self.topics.iter().find(|(_, (topic, _))| *topic == id).map(|(name, _)| name.clone())
    }
    fn partition_count(&self, name: &str) -> Option<i32> {
        self.topics.get(name).map(|(_, partitions)| *partitions)
    }
    fn topic_names(&self) -> Vec<String> {
        self.topics.keys().cloned().collect()
    }
}

struct Harness {
    shard: GroupCoordinatorShard,
    topics: FakeTopics,
    now: i64,
    next_reply: ReplyId,
    log: Vec<CoordinatorRecord>,
}

impl Harness {
    fn new(topics: &[(&str, i32)]) -> Self {
        Harness::with_config(topics, GroupConfig::default())
    }

    fn with_config(topics: &[(&str, i32)], config: GroupConfig) -> Self {
        Harness {
            shard: GroupCoordinatorShard::new(0, config),
            topics: FakeTopics::with(topics),
            now: 1_000,
            next_reply: 1,
            log: Vec::new(),
        }
    }

    fn ctx(&mut self, api_version: i16) -> RequestContext {
        self.next_reply += 1;
        RequestContext {
            api_version,
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            now_ms: self.now,
            reply: self.next_reply,
        }
    }

    /// What the broker does: append (here: encode and decode), replay, then answer.
    fn apply(&mut self, effects: Effects) -> HashMap<ReplyId, ResponseBody> {
        for record in effects.records {
            let (key, value) = record.encode().expect("encodes");
            let decoded = CoordinatorRecord::decode(key, value).expect("decodes").expect("known kind");
            assert_eq!(decoded, record);
            self.log.push(record.clone());
            self.shard.replay(record);
        }
        effects.replies.into_iter().collect()
    }

    fn send(&mut self, api_version: i16, request: ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
        let ctx = self.ctx(api_version);
        let effects = self.shard.consumer_group_heartbeat(&ctx, request, &self.topics);
        let mut replies = self.apply(effects);
        match replies.remove(&ctx.reply) {
            Some(ResponseBody::ConsumerGroupHeartbeat(response)) => response,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    fn join(&mut self, member: &str, topics: &[&str]) -> ConsumerGroupHeartbeatResponse {
        self.send(1, join_request(member, topics))
    }

    fn heartbeat(&mut self, member: &str, epoch: i32, owned: &[(&str, &[i32])]) -> ConsumerGroupHeartbeatResponse {
        let owned = owned
            .iter()
            .map(|(topic, partitions)| TopicPartitions {
                topic_id: self.topics.id(topic),
                partitions: partitions.to_vec(),
                ..Default::default()
            })
            .collect();
        self.send(
            1,
            ConsumerGroupHeartbeatRequest {
                group_id: "g".into(),
                member_id: member.into(),
                member_epoch: epoch,
                topic_partitions: Some(owned),
                ..Default::default()
            },
        )
    }

    fn advance(&mut self, ms: i64) {
        self.now += ms;
        let effects = self.shard.poll_timers(self.now);
        self.apply(effects);
    }

    fn group(&self) -> &ConsumerGroup {
        match self.shard.group("g") {
            Some(Group::Consumer(group)) => group,
            other => panic!("no consumer group: {other:?}"),
        }
    }

    fn describe(&mut self, group: &str) -> DescribedGroup {
        let ctx = self.ctx(1);
        self.shard.consumer_group_describe(&ctx, group, &self.topics)
    }

    /// The partitions of `topic` in a response's assignment.
    fn assigned(&self, response: &ConsumerGroupHeartbeatResponse, topic: &str) -> Vec<i32> {
        let assignment = response.assignment.as_ref().expect("assignment in the response");
        let id = self.topics.id(topic);
        let mut partitions: Vec<i32> = assignment
            .topic_partitions
            .iter()
            .filter(|tp| tp.topic_id == id)
            .flat_map(|tp| tp.partitions.iter().copied())
            .collect();
        partitions.sort();
        partitions
    }
}

fn join_request(member: &str, topics: &[&str]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: "g".into(),
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 60_000,
        subscribed_topic_names: Some(topics.iter().map(|t| t.to_string()).collect()),
        topic_partitions: Some(Vec::new()),
        ..Default::default()
    }
}

fn error(response: &ConsumerGroupHeartbeatResponse) -> ErrorCode {
    ErrorCode::from_code(response.error_code).expect("known code")
}

/// A comparable picture of a group's durable state.
fn snapshot(group: &ConsumerGroup) -> String {
    let epochs: BTreeMap<_, _> = group.partition_epochs.iter().collect();
    let statics: BTreeMap<_, _> = group.static_members.iter().collect();
    format!(
        "{} {} {:?} {:?} {:?} {:?} {:?}",
        group.group_epoch,
        group.assignment_epoch,
        group.members,
        group.target,
        group.subscription_metadata,
        epochs,
        statics
    )
}

#[test]
fn first_member_gets_every_partition_at_epoch_one() {
    let mut h = Harness::new(&[("foo", 3)]);
    let response = h.join("m1", &["foo"]);
    assert_eq!(error(&response), ErrorCode::None);
    assert_eq!(response.member_id.as_deref(), Some("m1"));
    assert_eq!(response.member_epoch, 1);
    assert_eq!(response.heartbeat_interval_ms, 5_000);
    assert_eq!(h.assigned(&response, "foo"), vec![0, 1, 2]);
    assert_eq!(h.group().state_name(), "Stable");
    assert_eq!((h.group().group_epoch, h.group().assignment_epoch), (1, 1));

    // A plain heartbeat changes nothing and carries no assignment.
    let response = h.heartbeat("m1", 1, &[("foo", &[0, 1, 2])]);
    assert_eq!(response.member_epoch, 1);
    assert!(response.assignment.is_none());

    // A rejoin under the same id (after a client-side error) gets the assignment again.
    let response = h.join("m1", &["foo"]);
    assert_eq!(error(&response), ErrorCode::None);
    assert_eq!(response.member_epoch, 1);
    assert_eq!(h.assigned(&response, "foo"), vec![0, 1, 2]);
    assert_eq!(h.group().group_epoch, 1);
}

#[test]
fn second_member_waits_for_revocation_then_both_converge() {
    let mut h = Harness::new(&[("foo", 4)]);
    h.join("m1", &["foo"]);

    let m2 = h.join("m2", &["foo"]);
    assert_eq!(m2.member_epoch, 2);
    // Its target partitions are still owned by m1.
    assert!(h.assigned(&m2, "foo").is_empty());
    assert_eq!(h.group().state_name(), "Reconciling");

    // m1 is asked to revoke two partitions and stays at epoch 1.
    let m1 = h.heartbeat("m1", 1, &[("foo", &[0, 1, 2, 3])]);
    assert_eq!(m1.member_epoch, 1);
    let kept = h.assigned(&m1, "foo");
    assert_eq!(kept.len(), 2);

    // Until m1 revokes, m2 gets nothing.
    let m2 = h.heartbeat("m2", 2, &[]);
    assert!(m2.assignment.is_none());

    // Still reporting the revoked partitions keeps m1 where it is.
    let m1 = h.heartbeat("m1", 1, &[("foo", &[0, 1, 2, 3])]);
    assert_eq!(m1.member_epoch, 1);

    let owned: Vec<i32> = kept.clone();
    let m1 = h.heartbeat("m1", 1, &[("foo", &owned)]);
    assert_eq!(m1.member_epoch, 2);

    let m2 = h.heartbeat("m2", 2, &[]);
    let got = h.assigned(&m2, "foo");
    assert_eq!(got.len(), 2);
    let all: BTreeSet<i32> = kept.iter().chain(got.iter()).copied().collect();
    assert_eq!(all, (0..4).collect());
    assert_eq!(h.group().state_name(), "Stable");
}

#[test]
fn leave_returns_partitions_to_the_others() {
    let mut h = Harness::new(&[("foo", 2)]);
    h.join("m1", &["foo"]);
    h.join("m2", &["foo"]);
    let m1 = h.heartbeat("m1", 1, &[("foo", &[0, 1])]);
    let kept = h.assigned(&m1, "foo");
    h.heartbeat("m1", 1, &[("foo", &kept)]);
    h.heartbeat("m2", 2, &[]);

    let left = h.send(
        1,
        ConsumerGroupHeartbeatRequest {
            group_id: "g".into(),
            member_id: "m2".into(),
            member_epoch: -1,
            ..Default::default()
        },
    );
    assert_eq!(error(&left), ErrorCode::None);
    assert_eq!(left.member_epoch, -1);
    assert!(!h.group().has_member("m2"));
    assert_eq!(h.group().group_epoch, 3);

    let m1 = h.heartbeat("m1", 2, &[("foo", &kept)]);
    assert_eq!(m1.member_epoch, 3);
    assert_eq!(h.assigned(&m1, "foo"), vec![0, 1]);
    assert_eq!(h.group().state_name(), "Stable");

    // The last member leaves: the group is empty but still exists.
    h.send(
        1,
        ConsumerGroupHeartbeatRequest {
            group_id: "g".into(),
            member_id: "m1".into(),
            member_epoch: -1,
            ..Default::default()
        },
    );
    assert!(h.group().is_empty());
    assert_eq!(h.group().state_name(), "Empty");
}

#[test]
fn session_expiry_fences_the_member() {
    let mut h = Harness::new(&[("foo", 2)]);
    h.join("m1", &["foo"]);
    h.join("m2", &["foo"]);
    let epoch = h.group().group_epoch;
    h.advance(30_000);
    let m1 = h.heartbeat("m1", 1, &[("foo", &[0, 1])]);
    let kept = h.assigned(&m1, "foo");
    h.advance(16_000);
    assert!(!h.group().has_member("m2"), "m2 missed its session timeout");
    assert!(h.group().has_member("m1"));
    assert_eq!(h.group().group_epoch, epoch + 1);
    assert!(!h.group().target.contains_key("m2"));

    // m1 revokes and moves to the new epoch (the target moved on); the partition it
    // just revoked is its own again on the next heartbeat, once the revocation is durable.
    let m1 = h.heartbeat("m1", 1, &[("foo", &kept)]);
    assert_eq!(m1.member_epoch, 3);
    let m1 = h.heartbeat("m1", 3, &[("foo", &kept)]);
    assert_eq!(h.assigned(&m1, "foo"), vec![0, 1]);
    assert_eq!(h.group().state_name(), "Stable");

    // m2 comes back with its old epoch: unknown now.
    let m2 = h.heartbeat("m2", 2, &[]);
    assert_eq!(error(&m2), ErrorCode::UnknownMemberId);
}

#[test]
fn a_groups_own_timing_overrides_the_brokers() {
    let timing = crate::config::ConsumerTiming { session_timeout_ms: 50_000, heartbeat_interval_ms: 3_000 };
    let config = GroupConfig {
        consumer_group_timing: std::sync::Arc::new([("g".to_string(), timing)].into_iter().collect()),
        ..GroupConfig::default()
    };
    let mut h = Harness::with_config(&[("foo", 1)], config);
    let response = h.join("m1", &["foo"]);
    assert_eq!(response.heartbeat_interval_ms, 3_000);
    let session = crate::timer::TimerKey::ConsumerSession { group: "g".into(), member: "m1".into() };
    let deadline = h.shard.timers.deadline_of(&session).expect("a session deadline");
    h.advance(45_001);
    assert_eq!(h.shard.timers.deadline_of(&session), Some(deadline), "the broker's 45 s do not apply");
    h.advance(5_000);
    assert!(h.group().members.is_empty(), "50 s without a heartbeat end the session");
}

#[test]
fn rebalance_timeout_fences_a_member_that_does_not_revoke() {
    // A session long enough that only the rebalance timeout (60 s) can fence m1.
    let config = GroupConfig { consumer_session_timeout_ms: 300_000, ..GroupConfig::default() };
    let mut h = Harness::with_config(&[("foo", 2)], config);
    h.join("m1", &["foo"]);
    h.join("m2", &["foo"]);
    h.heartbeat("m1", 1, &[("foo", &[0, 1])]);
    assert!(h
        .shard
        .timers
        .deadline_of(&crate::timer::TimerKey::ConsumerRebalance { group: "g".into(), member: "m1".into() })
        .is_some());
    // m2 keeps heartbeating, m1 never answers again.
    for _ in 0..11 {
        h.advance(5_000);
        h.heartbeat("m2", 2, &[]);
    }
    assert!(h.group().has_member("m1"));
    h.advance(5_000);
    assert!(!h.group().has_member("m1"));
    let m2 = h.heartbeat("m2", 2, &[]);
    assert_eq!(m2.member_epoch, 3);
    assert_eq!(h.assigned(&m2, "foo"), vec![0, 1]);
}

#[test]
fn static_member_rejoins_with_its_assignment() {
    let mut h = Harness::new(&[("foo", 3)]);
    let mut join = join_request("s1", &["foo"]);
    join.instance_id = Some("instance-1".into());
    let first = h.send(1, join.clone());
    assert_eq!(h.assigned(&first, "foo"), vec![0, 1, 2]);

    // Another process with the same instance id while s1 is active.
    let mut other = join.clone();
    other.member_id = "s2".into();
    assert_eq!(error(&h.send(1, other.clone())), ErrorCode::UnreleasedInstanceId);
    assert_eq!(error(&h.send(1, join.clone())), ErrorCode::UnreleasedInstanceId);

    // s1 leaves temporarily: it keeps its partitions.
    let leave = h.send(
        1,
        ConsumerGroupHeartbeatRequest {
            group_id: "g".into(),
            member_id: "s1".into(),
            member_epoch: -2,
            instance_id: Some("instance-1".into()),
            ..Default::default()
        },
    );
    assert_eq!(leave.member_epoch, -2);
    assert_eq!(h.group().members["s1"].member_epoch, -2);
    let epoch = h.group().group_epoch;

    // The restarted process takes over under a new member id, without a rebalance.
    let back = h.send(1, other);
    assert_eq!(error(&back), ErrorCode::None);
    assert_eq!(back.member_epoch, epoch);
    assert_eq!(h.assigned(&back, "foo"), vec![0, 1, 2]);
    assert!(!h.group().has_member("s1"));
    assert_eq!(h.group().group_epoch, epoch);
    assert_eq!(h.group().static_member("instance-1").map(|m| m.member_id.as_str()), Some("s2"));

    // The old member id is fenced.
    let mut old = ConsumerGroupHeartbeatRequest {
        group_id: "g".into(),
        member_id: "s1".into(),
        member_epoch: 1,
        instance_id: Some("instance-1".into()),
        ..Default::default()
    };
    assert_eq!(error(&h.send(1, old.clone())), ErrorCode::FencedInstanceId);
    old.instance_id = Some("other".into());
    assert_eq!(error(&h.send(1, old)), ErrorCode::UnknownMemberId);
}

#[test]
fn static_member_temporary_leave_expires_with_the_session() {
    let mut h = Harness::new(&[("foo", 1)]);
    let mut join = join_request("s1", &["foo"]);
    join.instance_id = Some("i".into());
    h.send(1, join);
    h.send(
        1,
        ConsumerGroupHeartbeatRequest {
            group_id: "g".into(),
            member_id: "s1".into(),
            member_epoch: -2,
            instance_id: Some("i".into()),
            ..Default::default()
        },
    );
    h.advance(46_000);
    assert!(h.group().is_empty());
}

#[test]
fn regex_subscription_picks_up_a_new_topic() {
    let mut h = Harness::new(&[("orders-eu", 2), ("payments", 2), ("__consumer_offsets", 50)]);
    let mut join = join_request("m1", &[]);
    join.subscribed_topic_names = None;
    join.subscribed_topic_regex = Some("orders-.*".into());
    let joined = h.send(1, join);
    // The regex is resolved asynchronously: its topics come with the next heartbeat.
    assert!(joined.assignment.as_ref().is_none_or(|assignment| assignment.topic_partitions.is_empty()));
    let first = h.heartbeat("m1", joined.member_epoch, &[]);
    assert_eq!(h.assigned(&first, "orders-eu"), vec![0, 1]);
    assert_eq!(first.assignment.as_ref().unwrap().topic_partitions.len(), 1);
    let epoch = h.group().group_epoch;

    h.topics.create("orders-us", 3);
    let next = h.heartbeat("m1", epoch, &[("orders-eu", &[0, 1])]);
    assert_eq!(next.member_epoch, epoch + 1);
    assert_eq!(h.assigned(&next, "orders-us"), vec![0, 1, 2]);
    assert_eq!(h.assigned(&next, "orders-eu"), vec![0, 1]);
    assert!(h.group().is_subscribed_to_topic("orders-us"));
    assert!(!h.group().is_subscribed_to_topic("payments"));

    // `.*` never matches internal topics.
    let mut all = join_request("m2", &[]);
    all.subscribed_topic_names = None;
    all.subscribed_topic_regex = Some(".*".into());
    let joined = h.send(1, all);
    h.heartbeat("m2", joined.member_epoch, &[]);
    assert!(!h.group().subscription_metadata.contains_key("__consumer_offsets"));
    assert!(h.group().subscription_metadata.contains_key("payments"));

    let mut bad = join_request("m3", &[]);
    bad.subscribed_topic_regex = Some("(unclosed".into());
    assert_eq!(error(&h.send(1, bad)), ErrorCode::InvalidRegularExpression);
}

#[test]
fn a_new_regex_is_resolved_after_the_literal_topics() {
    let mut h = Harness::new(&[("orders-eu", 2), ("payments", 1)]);
    let mut join = join_request("m1", &["payments"]);
    join.subscribed_topic_regex = Some("orders-.*".into());
    let joined = h.send(1, join);
    assert_eq!(h.assigned(&joined, "payments"), vec![0]);
    assert!(h.assigned(&joined, "orders-eu").is_empty());
    assert!(!h.group().subscription_metadata.contains_key("orders-eu"));

    let next = h.heartbeat("m1", joined.member_epoch, &[("payments", &[0])]);
    assert_eq!(next.member_epoch, joined.member_epoch + 1);
    assert_eq!(h.assigned(&next, "orders-eu"), vec![0, 1]);
    assert_eq!(h.assigned(&next, "payments"), vec![0]);

    // A regex the group has already resolved applies at once to a member that joins with it.
    let mut second = join_request("m2", &[]);
    second.subscribed_topic_names = None;
    second.subscribed_topic_regex = Some("orders-.*".into());
    h.send(1, second);
    assert!(h.group().is_subscribed_to_topic("orders-eu"));
    let targets: usize = h.group().target.values().map(|target| target.values().map(|p| p.len()).sum::<usize>()).sum();
    assert_eq!(targets, 3, "orders-eu's two partitions and payments' one are all in the target");
}

#[test]
fn partition_count_increase_is_assigned() {
    let mut h = Harness::new(&[("foo", 2)]);
    h.join("m1", &["foo"]);
    h.topics.topics.get_mut("foo").unwrap().1 = 4;
    let response = h.heartbeat("m1", 1, &[("foo", &[0, 1])]);
    assert_eq!(response.member_epoch, 2);
    assert_eq!(h.assigned(&response, "foo"), vec![0, 1, 2, 3]);
    assert_eq!(h.group().subscription_metadata["foo"].partitions, 4);
}

#[test]
fn describe_shows_members_and_assignments() {
    let mut h = Harness::new(&[("foo", 2), ("bar", 1)]);
    let mut join = join_request("m1", &["foo", "bar"]);
    join.rack_id = Some("rack-a".into());
    join.server_assignor = Some("org.apache.kafka.coordinator.group.assignor.RangeAssignor".into());
    h.send(1, join);
    let described = h.describe("g");
    assert_eq!(described.error_code, 0);
    assert_eq!(described.group_state, "Stable");
    assert_eq!((described.group_epoch, described.assignment_epoch), (1, 1));
    assert_eq!(described.assignor_name, "range");
    assert_eq!(described.authorized_operations, i32::MIN);
    let member = &described.members[0];
    assert_eq!(member.member_id, "m1");
    assert_eq!(member.rack_id.as_deref(), Some("rack-a"));
    assert_eq!(member.client_host, "/127.0.0.1");
    assert_eq!(member.member_type, 1);
    assert_eq!(member.subscribed_topic_names, vec!["foo".to_string(), "bar".to_string()]);
    let names: Vec<&str> = member.assignment.topic_partitions.iter().map(|tp| tp.topic_name.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"foo") && names.contains(&"bar"));
    assert_eq!(member.assignment, member.target_assignment);

    let unknown = h.describe("nope");
    assert_eq!(unknown.error_code, ErrorCode::GroupIdNotFound.code());
}

#[test]
fn offset_commit_and_fetch_validation() {
    let mut h = Harness::new(&[("foo", 1)]);
    h.join("m1", &["foo"]);
    let group = h.group();
    assert_eq!(group.validate_offset_commit("m1", 1, 9), Ok(()));
    assert_eq!(group.validate_offset_commit("m1", 0, 9), Err(ErrorCode::StaleMemberEpoch));
    assert_eq!(group.validate_offset_commit("m1", 2, 9), Err(ErrorCode::StaleMemberEpoch));
    assert_eq!(group.validate_offset_commit("zz", 1, 9), Err(ErrorCode::UnknownMemberId));
    assert_eq!(group.validate_offset_commit("m1", 1, 8), Err(ErrorCode::UnsupportedVersion));
    // An admin commit is refused while the group has members.
    assert_eq!(group.validate_offset_commit("", -1, 9), Err(ErrorCode::UnknownMemberId));
    assert_eq!(group.validate_offset_fetch("", -1), Ok(()));
    assert_eq!(group.validate_offset_fetch("m1", 1), Ok(()));
    assert_eq!(group.validate_offset_fetch("m1", 3), Err(ErrorCode::StaleMemberEpoch));
    assert_eq!(group.validate_offset_fetch("x", 1), Err(ErrorCode::UnknownMemberId));

    h.send(
        1,
        ConsumerGroupHeartbeatRequest {
            group_id: "g".into(),
            member_id: "m1".into(),
            member_epoch: -1,
            ..Default::default()
        },
    );
    assert_eq!(h.group().validate_offset_commit("", -1, 2), Ok(()));
    assert!(h.group().is_subscribed_to_topic("foo") || h.group().subscription_metadata.is_empty());
}

#[test]
fn invalid_requests_are_refused() {
    let mut h = Harness::new(&[("foo", 1)]);
    // v1: the client picks its member id.
    let response = h.send(1, join_request("", &["foo"]));
    assert_eq!(error(&response), ErrorCode::InvalidRequest);
    assert_eq!(response.error_message.as_deref(), Some("MemberId can't be empty."));
    // v0: the server generates it.
    let response = h.send(0, join_request("", &["foo"]));
    assert_eq!(error(&response), ErrorCode::None);
    assert_eq!(response.member_id.as_ref().map(String::len), Some(22));

    let mut no_subscription = join_request("m9", &[]);
    no_subscription.subscribed_topic_names = None;
    assert_eq!(error(&h.send(1, no_subscription)), ErrorCode::InvalidRequest);
    let mut no_timeout = join_request("m9", &["foo"]);
    no_timeout.rebalance_timeout_ms = -1;
    assert_eq!(error(&h.send(1, no_timeout)), ErrorCode::InvalidRequest);
    let mut owned = join_request("m9", &["foo"]);
    owned.topic_partitions = None;
    assert_eq!(error(&h.send(1, owned)), ErrorCode::InvalidRequest);
    let mut assignor = join_request("m9", &["foo"]);
    assignor.server_assignor = Some("sticky".into());
    assert_eq!(error(&h.send(1, assignor)), ErrorCode::UnsupportedAssignor);
    let mut bad_epoch = join_request("m9", &["foo"]);
    bad_epoch.member_epoch = -3;
    assert_eq!(error(&h.send(1, bad_epoch)), ErrorCode::InvalidRequest);

    assert_eq!(error(&h.heartbeat("ghost", 1, &[])), ErrorCode::UnknownMemberId);
    h.join("m1", &["foo"]);
    let epoch = h.group().members["m1"].member_epoch;
    assert_eq!(error(&h.heartbeat("m1", epoch + 5, &[])), ErrorCode::FencedMemberEpoch);

    let mut other = h.send(
        1,
        ConsumerGroupHeartbeatRequest {
            group_id: "other".into(),
            member_id: "m".into(),
            member_epoch: 3,
            ..Default::default()
        },
    );
    assert_eq!(error(&other), ErrorCode::GroupIdNotFound);
    other.error_code = 0;
}

#[test]
fn group_max_size_is_enforced() {
    let config = GroupConfig { consumer_max_size: 1, ..GroupConfig::default() };
    let mut h = Harness::with_config(&[("foo", 1)], config);
    h.join("m1", &["foo"]);
    assert_eq!(error(&h.join("m2", &["foo"])), ErrorCode::GroupMaxSizeReached);
    assert_eq!(error(&h.heartbeat("m1", 1, &[])), ErrorCode::None);
}

#[test]
fn reload_rebuilds_the_same_group() {
    let mut h = Harness::new(&[("foo", 4), ("bar", 2)]);
    h.join("m1", &["foo", "bar"]);
    h.join("m2", &["foo"]);
    let m1 = h.heartbeat("m1", 1, &[("foo", &[0, 1, 2, 3]), ("bar", &[0, 1])]);
    let foo = h.assigned(&m1, "foo");
    let bar = h.assigned(&m1, "bar");
    h.heartbeat("m1", 1, &[("foo", &foo), ("bar", &bar)]);
    let mut join = join_request("s1", &["bar"]);
    join.instance_id = Some("i".into());
    h.send(1, join);
    let before = snapshot(h.group());

    let mut fresh = GroupCoordinatorShard::new(0, GroupConfig::default());
    for record in h.log.clone() {
        fresh.replay(record);
    }
    fresh.finish_load(h.now);
    let Some(Group::Consumer(reloaded)) = fresh.group("g") else { panic!("group not reloaded") };
    assert_eq!(snapshot(reloaded), before);
    // Every loaded member has a session deadline.
    assert!(fresh.next_deadline_ms().is_some());
}

#[test]
fn deleting_the_group_with_its_tombstones() {
    let mut h = Harness::new(&[("foo", 1)]);
    h.join("m1", &["foo"]);
    h.send(
        1,
        ConsumerGroupHeartbeatRequest {
            group_id: "g".into(),
            member_id: "m1".into(),
            member_epoch: -1,
            ..Default::default()
        },
    );
    let tombstones = h.group().tombstone_records();
    h.apply(Effects { records: tombstones, ..Default::default() });
    assert!(h.shard.group("g").is_none());
}

#[test]
fn txn_offset_commit_checks_member_epochs() {
    use gregor_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    let mut h = Harness::new(&[("foo", 1)]);
    h.join("m1", &["foo"]);
    let group = h.group();
    // v0-v2 (no member fields): not checked.
    assert_eq!(group.validate_txn_offset_commit("", None, -1), Ok(()));
    assert_eq!(group.validate_txn_offset_commit("m1", None, 1), Ok(()));
    assert_eq!(group.validate_txn_offset_commit("zz", None, 1), Err(ErrorCode::UnknownMemberId));
    assert_eq!(group.validate_txn_offset_commit("", Some("i"), -1), Err(ErrorCode::UnknownMemberId));
    assert_eq!(group.validate_txn_offset_commit("m1", None, 0), Err(ErrorCode::StaleMemberEpoch));
    let mut send = |epoch: i32, member: &str| {
        let ctx = h.ctx(3);
        let request = TxnOffsetCommitRequest {
            group_id: "g".into(),
            producer_id: 9,
            producer_epoch: 1,
            generation_id: epoch,
            member_id: member.into(),
            topics: vec![TxnOffsetCommitRequestTopic {
                name: "foo".into(),
                partitions: vec![TxnOffsetCommitRequestPartition { partition_index: 0, ..Default::default() }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let effects = h.shard.txn_offset_commit(&ctx, request, &h.topics);
        assert_eq!(effects.transactional, Some((9, 1)));
        let records = effects.records.len();
        match effects.replies.into_iter().next() {
            Some((_, ResponseBody::TxnOffsetCommit(response))) => {
                (response.topics[0].partitions[0].error_code, records)
            }
            other => panic!("unexpected reply {other:?}"),
        }
    };
    // A stale epoch is ILLEGAL_GENERATION for TxnOffsetCommit.
    assert_eq!(send(0, "m1"), (ErrorCode::IllegalGeneration.code(), 0));
    assert_eq!(send(1, "zz"), (ErrorCode::UnknownMemberId.code(), 0));
    assert_eq!(send(1, "m1"), (0, 1));
    assert_eq!(send(-1, ""), (0, 1));
}
