//! A test driver that plays the broker: it sends requests with a fake clock, appends
//! the records (checking they encode and decode), replays them, fires timers as time
//! passes, and collects the answers by reply id (checking they encode at the version
//! of the request they answer).

use crate::config::GroupConfig;
use crate::record::CoordinatorRecord;
use crate::shard::{Effects, GroupCoordinatorShard, ReplyId, RequestContext, TopicsView};
use bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use gregor_protocol::messages::heartbeat_request::HeartbeatRequest;
use gregor_protocol::messages::heartbeat_response::HeartbeatResponse;
use gregor_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use gregor_protocol::messages::join_group_response::JoinGroupResponse;
use gregor_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use gregor_protocol::messages::leave_group_response::LeaveGroupResponse;
use gregor_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use gregor_protocol::messages::sync_group_response::SyncGroupResponse;
use gregor_protocol::{ErrorCode, Message, ResponseBody, Uuid, WriteBuf};
use std::collections::HashMap;

/// Topics that exist: name → (id, partition count).
#[derive(Debug, Default)]
pub(crate) struct FakeTopics {
    pub topics: HashMap<String, (Uuid, i32)>,
}

impl FakeTopics {
    pub fn with(names: &[(&str, i32)]) -> Self {
        let topics = names
            .iter()
            .enumerate()
            .map(|(index, (name, partitions))| (name.to_string(), (Uuid::from_u128(index as u128 + 1), *partitions)))
            .collect();
        FakeTopics { topics }
    }
}

impl TopicsView for FakeTopics {
    fn topic_id(&self, name: &str) -> Option<Uuid> {
        self.topics.get(name).map(|(id, _)| *id)
    }
    fn topic_name(&self, id: Uuid) -> Option<String> {
        self.topics.iter().find(|(_, (topic_id, _))| *topic_id == id).map(|(name, _)| name.clone())
    }
    fn partition_count(&self, name: &str) -> Option<i32> {
        self.topics.get(name).map(|(_, count)| *count)
    }
    fn topic_names(&self) -> Vec<String> {
        self.topics.keys().cloned().collect()
    }
}

/// One entry of the partition's log as the harness keeps it: a record (with the
/// producer id of its batch when transactional) or a transaction marker.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LogEntry {
    Record { producer_id: Option<i64>, record: Box<CoordinatorRecord> },
    Marker { producer_id: i64, commit: bool },
}

pub(crate) struct Harness {
    pub shard: GroupCoordinatorShard,
    pub now: i64,
    /// Every record appended, in order (the partition's log).
    pub log: Vec<CoordinatorRecord>,
    /// The partition's log with transactional batches and markers, in order.
    pub entries: Vec<LogEntry>,
    pub topics: FakeTopics,
    replies: HashMap<ReplyId, ResponseBody>,
    versions: HashMap<ReplyId, i16>,
    next_reply: ReplyId,
}

/// Consumer-protocol member metadata subscribing to `topics`.
pub(crate) fn subscription(topics: &[&str]) -> Bytes {
    let subscription = ConsumerProtocolSubscription {
        topics: topics.iter().map(|topic| topic.to_string()).collect(),
        ..Default::default()
    };
    let body = subscription.encode_to_bytes(1).expect("subscription encodes");
    let mut out = BytesMut::new();
    out.put_i16(1);
    out.put_slice(&body);
    out.freeze()
}

pub(crate) fn protocols(list: &[(&str, &[u8])]) -> Vec<JoinGroupRequestProtocol> {
    list.iter()
        .map(|(name, metadata)| JoinGroupRequestProtocol {
            name: name.to_string(),
            metadata: Bytes::copy_from_slice(metadata),
            ..Default::default()
        })
        .collect()
}

pub(crate) fn config() -> GroupConfig {
    GroupConfig { initial_rebalance_delay_ms: 0, ..GroupConfig::default() }
}

/// A JoinGroup request with a 10 s session and 30 s rebalance timeout.
pub(crate) fn join_request(group: &str, member_id: &str, protocols: Vec<JoinGroupRequestProtocol>) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.to_string(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        member_id: member_id.to_string(),
        protocol_type: "consumer".to_string(),
        protocols,
        ..Default::default()
    }
}

impl Harness {
    pub fn new(config: GroupConfig) -> Self {
        Harness {
            shard: GroupCoordinatorShard::new(7, config),
            now: 1_000_000,
            log: Vec::new(),
            entries: Vec::new(),
            topics: FakeTopics::with(&[("t1", 3), ("t2", 2), ("t3", 1)]),
            replies: HashMap::new(),
            versions: HashMap::new(),
            next_reply: 1,
        }
    }

    pub fn ctx(&mut self, api_version: i16, client_id: &str) -> RequestContext {
        let reply = self.next_reply;
        self.next_reply += 1;
        self.versions.insert(reply, api_version);
        RequestContext {
            api_version,
            client_id: client_id.to_string(),
            client_host: "/127.0.0.1".to_string(),
            now_ms: self.now,
            reply,
        }
    }

    /// What the broker does with a call's effects.
    pub fn apply(&mut self, effects: Effects) {
        for record in effects.records {
            let (key, value) = record.encode().expect("record encodes");
            let decoded = CoordinatorRecord::decode(key, value).expect("record decodes").expect("known record");
            assert_eq!(decoded, record, "record round-trips");
            self.log.push(record.clone());
            let producer_id = effects.transactional.map(|(producer_id, _)| producer_id);
            self.entries.push(LogEntry::Record { producer_id, record: Box::new(record.clone()) });
            match producer_id {
                Some(producer_id) => self.shard.replay_transactional(producer_id, record),
                None => self.shard.replay(record),
            }
        }
        for (reply, body) in effects.replies {
            let version = *self.versions.get(&reply).expect("reply to a request we sent");
            let mut buf = WriteBuf::new();
            body.encode(&mut buf, version).unwrap_or_else(|error| panic!("{body:?} encodes at v{version}: {error}"));
            assert!(self.replies.insert(reply, body).is_none(), "request {reply} answered twice");
        }
    }

    /// A COMMIT or ABORT marker of `producer_id` written to the partition.
    pub fn end_txn(&mut self, producer_id: i64, commit: bool) {
        self.entries.push(LogEntry::Marker { producer_id, commit });
        self.shard.replay_end_transaction_marker(producer_id, commit);
    }

    /// A fresh shard loaded from the log (records and markers in log order), as the
    /// broker loads one on start.
    pub fn reload(&self) -> GroupCoordinatorShard {
        let mut shard = GroupCoordinatorShard::new(self.shard.partition(), self.shard.config().clone());
        for entry in self.entries.clone() {
            match entry {
                LogEntry::Record { producer_id: Some(producer_id), record } => {
                    shard.replay_transactional(producer_id, *record)
                }
                LogEntry::Record { producer_id: None, record } => shard.replay(*record),
                LogEntry::Marker { producer_id, commit } => shard.replay_end_transaction_marker(producer_id, commit),
            }
        }
        shard.finish_load(self.now);
        shard
    }

    /// Moves the clock, firing every timer due on the way at its deadline.
    pub fn advance(&mut self, ms: i64) {
        let target = self.now + ms;
        while let Some(deadline) = self.shard.next_deadline_ms() {
            if deadline > target {
                break;
            }
            self.now = self.now.max(deadline);
            let effects = self.shard.poll_timers(self.now);
            self.apply(effects);
        }
        self.now = target;
    }

    pub fn answered(&self, reply: ReplyId) -> bool {
        self.replies.contains_key(&reply)
    }

    pub fn take(&mut self, reply: ReplyId) -> ResponseBody {
        self.replies.remove(&reply).unwrap_or_else(|| panic!("request {reply} not answered"))
    }

    pub fn join_response(&mut self, reply: ReplyId) -> JoinGroupResponse {
        match self.take(reply) {
            ResponseBody::JoinGroup(response) => response,
            other => panic!("not a JoinGroup answer: {other:?}"),
        }
    }

    pub fn sync_response(&mut self, reply: ReplyId) -> SyncGroupResponse {
        match self.take(reply) {
            ResponseBody::SyncGroup(response) => response,
            other => panic!("not a SyncGroup answer: {other:?}"),
        }
    }

    pub fn send_join(&mut self, version: i16, client_id: &str, request: JoinGroupRequest) -> ReplyId {
        let ctx = self.ctx(version, client_id);
        let effects = self.shard.join_group(&ctx, request);
        self.apply(effects);
        ctx.reply
    }

    /// A v5 join of a dynamic member that knows its id (or v0-3 without one).
    pub fn join(
        &mut self,
        version: i16,
        group: &str,
        member_id: &str,
        protocols: Vec<JoinGroupRequestProtocol>,
    ) -> ReplyId {
        self.send_join(version, "client", join_request(group, member_id, protocols))
    }

    /// The two-step join of v4+: returns the member id and the parked second join.
    pub fn join_new(
        &mut self,
        version: i16,
        group: &str,
        protocols: Vec<JoinGroupRequestProtocol>,
    ) -> (String, ReplyId) {
        let first = self.join(version, group, "", protocols.clone());
        let response = self.join_response(first);
        assert_eq!(response.error_code, ErrorCode::MemberIdRequired.code());
        assert!(response.member_id.starts_with("client-"), "{}", response.member_id);
        let second = self.join(version, group, &response.member_id, protocols);
        (response.member_id, second)
    }

    pub fn sync(
        &mut self,
        version: i16,
        group: &str,
        member_id: &str,
        generation: i32,
        assignments: &[(&str, &[u8])],
    ) -> ReplyId {
        let ctx = self.ctx(version, "client");
        let request = SyncGroupRequest {
            group_id: group.to_string(),
            generation_id: generation,
            member_id: member_id.to_string(),
            assignments: assignments
                .iter()
                .map(|(member, bytes)| SyncGroupRequestAssignment {
                    member_id: member.to_string(),
                    assignment: Bytes::copy_from_slice(bytes),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let effects = self.shard.sync_group(&ctx, request);
        self.apply(effects);
        ctx.reply
    }

    pub fn heartbeat_with(&mut self, version: i16, request: HeartbeatRequest) -> i16 {
        let ctx = self.ctx(version, "client");
        let effects = self.shard.heartbeat(&ctx, request);
        self.apply(effects);
        match self.take(ctx.reply) {
            ResponseBody::Heartbeat(HeartbeatResponse { error_code, .. }) => error_code,
            other => panic!("not a Heartbeat answer: {other:?}"),
        }
    }

    pub fn heartbeat(&mut self, group: &str, member_id: &str, generation: i32) -> i16 {
        self.heartbeat_with(
            4,
            HeartbeatRequest {
                group_id: group.to_string(),
                generation_id: generation,
                member_id: member_id.to_string(),
                ..Default::default()
            },
        )
    }

    pub fn leave(
        &mut self,
        version: i16,
        group: &str,
        member_id: &str,
        members: Vec<MemberIdentity>,
    ) -> LeaveGroupResponse {
        let ctx = self.ctx(version, "client");
        let request = LeaveGroupRequest {
            group_id: group.to_string(),
            member_id: member_id.to_string(),
            members,
            ..Default::default()
        };
        let effects = self.shard.leave_group(&ctx, request);
        self.apply(effects);
        match self.take(ctx.reply) {
            ResponseBody::LeaveGroup(response) => response,
            other => panic!("not a LeaveGroup answer: {other:?}"),
        }
    }

    pub fn classic(&self, group: &str) -> &crate::classic::ClassicGroup {
        match self.shard.group(group) {
            Some(crate::shard::Group::Classic(group)) => group,
            other => panic!("no classic group {group}: {other:?}"),
        }
    }

    /// A stable group of dynamic members (v5 joins, range protocol); returns the
    /// member ids (the first is the leader) and the generation.
    pub fn stable_group(&mut self, group: &str, count: usize, topics: &[&str]) -> (Vec<String>, i32) {
        let metadata = subscription(topics);
        let mut members = Vec::new();
        let mut parked = Vec::new();
        for _ in 0..count {
            let (member_id, reply) = self.join_new(5, group, protocols(&[("range", &metadata)]));
            members.push(member_id);
            parked.push(reply);
        }
        self.advance(0);
        let mut generation = -1;
        let mut leader = String::new();
        for reply in parked {
            let response = self.join_response(reply);
            assert_eq!(response.error_code, 0, "{response:?}");
            generation = response.generation_id;
            leader = response.leader.clone();
        }
        assert_eq!(leader, members[0]);
        let assignments: Vec<(String, Vec<u8>)> =
            members.iter().map(|member| (member.clone(), format!("assignment-of-{member}").into_bytes())).collect();
        let borrowed: Vec<(&str, &[u8])> =
            assignments.iter().map(|(member, bytes)| (member.as_str(), bytes.as_slice())).collect();
        let mut syncs = vec![self.sync(5, group, &members[0], generation, &borrowed)];
        for member in &members[1..] {
            syncs.push(self.sync(5, group, member, generation, &[]));
        }
        for reply in syncs {
            assert_eq!(self.sync_response(reply).error_code, 0);
        }
        assert_eq!(self.classic(group).state(), crate::classic::ClassicGroupState::Stable);
        (members, generation)
    }
}
