//! The state of one classic group and its members, and the group-local helpers the
//! handlers share (protocol selection, member validation, building the group's
//! `GroupMetadata` record, answering parked requests).

use crate::shard::{Effects, ReplyId};
use bytes::{Buf, Bytes};
use gregor_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use gregor_protocol::messages::group_metadata_value::{GroupMetadataValue, MemberMetadata};
use gregor_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use gregor_protocol::messages::sync_group_response::SyncGroupResponse;
use gregor_protocol::{ErrorCode, Message, Uuid};
use std::collections::BTreeSet;

/// The protocol type of Kafka consumers (the only one whose member metadata this
/// coordinator reads: for subscriptions).
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// How long a new member may wait in JoinGroup before it is dropped (Kafka's
/// `group.classic.new.member.join.timeout.ms`, not configurable there either).
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// Kafka's `ClassicGroupState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClassicGroupState {
    #[default]
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl ClassicGroupState {
    /// The name Kafka shows (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            ClassicGroupState::Empty => "Empty",
            ClassicGroupState::PreparingRebalance => "PreparingRebalance",
            ClassicGroupState::CompletingRebalance => "CompletingRebalance",
            ClassicGroupState::Stable => "Stable",
            ClassicGroupState::Dead => "Dead",
        }
    }
}

/// A request parked until the group can answer it: where the answer goes, and the
/// version that shapes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParkedReply {
    pub reply: ReplyId,
    pub api_version: i16,
}

/// One member of a classic group.
#[derive(Debug, Clone, Default)]
pub struct ClassicMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// Supported protocols in the member's order of preference: name and metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// The assignment of the current generation (empty until the leader synced).
    pub assignment: Bytes,
    pub(crate) awaiting_join: Option<ParkedReply>,
    pub(crate) awaiting_sync: Option<ParkedReply>,
    /// Joined in the current rebalance and not yet answered: such a member's join may
    /// time out (its session does not protect it).
    pub(crate) is_new: bool,
}

impl ClassicMember {
    pub fn metadata(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols.iter().find(|(name, _)| name == protocol).map(|(_, metadata)| metadata)
    }

    pub fn is_static(&self) -> bool {
        self.group_instance_id.is_some()
    }

    pub fn is_awaiting_join(&self) -> bool {
        self.awaiting_join.is_some()
    }

    pub fn is_awaiting_sync(&self) -> bool {
        self.awaiting_sync.is_some()
    }

    /// Kafka's `ClassicGroupMember.matches`: same protocols, same metadata, same order.
    pub(crate) fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    /// The member's most preferred protocol among `candidates`.
    fn vote<'a>(&'a self, candidates: &BTreeSet<&str>) -> Option<&'a str> {
        self.protocols.iter().map(|(name, _)| name.as_str()).find(|name| candidates.contains(name))
    }

    /// Kafka's `hasSatisfiedHeartbeat`: a member parked in JoinGroup or SyncGroup is
    /// alive by definition, unless it is new (then its join itself may time out).
    pub(crate) fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.is_awaiting_join() || self.is_awaiting_sync())
    }
}

/// The bookkeeping of rebalances in progress.
#[derive(Debug, Default)]
pub struct RebalanceState {
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet back.
    pub(crate) pending_members: BTreeSet<String>,
    /// Members of the current generation whose SyncGroup has not arrived yet.
    pub(crate) pending_sync: BTreeSet<String>,
    /// The initial rebalance of an empty group: a member joined during the delay.
    pub(crate) new_member_added: bool,
    /// The initial rebalance delay in progress: (this delay, remaining budget).
    pub(crate) initial_delay: Option<(i64, i64)>,
    /// The generation the pending-sync timer was armed for.
    pub(crate) sync_generation: i32,
}

/// A classic (JoinGroup/SyncGroup) group.
#[derive(Debug, Default)]
pub struct ClassicGroup {
    pub(crate) group_id: String,
    pub(crate) state: ClassicGroupState,
    pub(crate) previous_state: ClassicGroupState,
    pub(crate) state_timestamp_ms: Option<i64>,
    pub(crate) generation_id: i32,
    pub(crate) protocol_type: Option<String>,
    pub(crate) protocol_name: Option<String>,
    pub(crate) leader_id: Option<String>,
    /// Members in the order they joined.
    pub(crate) members: Vec<ClassicMember>,
    /// Rebalance bookkeeping (boxed: most groups are stable most of the time).
    pub(crate) rebalance: Box<RebalanceState>,
    /// Set once handlers own the group (after loading, or created by a request):
    /// from then on its `GroupMetadata` records only echo what the handlers did, and
    /// replaying them changes nothing. A group that is not live (being loaded) is
    /// rebuilt from each record.
    pub(crate) live: bool,
    /// Member-id generation counter.
    pub(crate) id_counter: u64,
}

impl ClassicGroup {
    pub(crate) fn new(group_id: &str, now_ms: i64) -> Self {
        ClassicGroup { group_id: group_id.to_string(), state_timestamp_ms: Some(now_ms), ..Default::default() }
    }

    /// The group Kafka keeps for offsets committed without group management: empty,
    /// no protocol type.
    pub(crate) fn new_simple(group_id: &str) -> Self {
        ClassicGroup { group_id: group_id.to_string(), ..Default::default() }
    }

    pub fn state_timestamp_ms(&self) -> Option<i64> {
        self.state_timestamp_ms
    }

    /// Rebuilds a group from its last `GroupMetadata` record (loading).
    pub(crate) fn from_record(group_id: &str, value: &GroupMetadataValue) -> Self {
        let protocol = value.protocol.clone().filter(|protocol| !protocol.is_empty());
        let members: Vec<ClassicMember> = value
            .members
            .iter()
            .map(|member| ClassicMember {
                member_id: member.member_id.clone(),
                group_instance_id: member.group_instance_id.clone(),
                client_id: member.client_id.clone(),
                client_host: member.client_host.clone(),
                rebalance_timeout_ms: if member.rebalance_timeout < 0 {
                    member.session_timeout
                } else {
                    member.rebalance_timeout
                },
                session_timeout_ms: member.session_timeout,
                protocol_type: value.protocol_type.clone(),
                protocols: vec![(protocol.clone().unwrap_or_default(), member.subscription.clone())],
                assignment: member.assignment.clone(),
                ..Default::default()
            })
            .collect();
        let state = if members.is_empty() { ClassicGroupState::Empty } else { ClassicGroupState::Stable };
        let leader_id = value
            .leader
            .clone()
            .filter(|leader| members.iter().any(|member| &member.member_id == leader))
            .or_else(|| members.first().map(|member| member.member_id.clone()));
        ClassicGroup {
            group_id: group_id.to_string(),
            state,
            previous_state: state,
            state_timestamp_ms: (value.current_state_timestamp >= 0).then_some(value.current_state_timestamp),
            generation_id: value.generation,
            protocol_type: Some(value.protocol_type.clone()).filter(|protocol_type| !protocol_type.is_empty()),
            protocol_name: if members.is_empty() { None } else { protocol },
            leader_id: if members.is_empty() { None } else { leader_id },
            members,
            ..Default::default()
        }
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    pub fn state(&self) -> ClassicGroupState {
        self.state
    }

    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    pub fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    pub fn members(&self) -> &[ClassicMember] {
        &self.members
    }

    pub fn member(&self, member_id: &str) -> Option<&ClassicMember> {
        self.members.iter().find(|member| member.member_id == member_id)
    }

    pub(crate) fn member_mut(&mut self, member_id: &str) -> Option<&mut ClassicMember> {
        self.members.iter_mut().find(|member| member.member_id == member_id)
    }

    pub fn has_member(&self, member_id: &str) -> bool {
        self.member(member_id).is_some()
    }

    pub fn is_pending_member(&self, member_id: &str) -> bool {
        self.rebalance.pending_members.contains(member_id)
    }

    pub fn static_member_id(&self, instance_id: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|member| member.group_instance_id.as_deref() == Some(instance_id))
            .map(|member| member.member_id.as_str())
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    /// Kafka's `ClassicGroup.isEmpty`: in state Empty.
    pub fn is_empty(&self) -> bool {
        self.state == ClassicGroupState::Empty
    }

    pub(crate) fn num_awaiting_join(&self) -> usize {
        self.members.iter().filter(|member| member.is_awaiting_join()).count()
    }

    pub(crate) fn has_all_members_joined(&self) -> bool {
        self.members.iter().all(ClassicMember::is_awaiting_join) && self.rebalance.pending_members.is_empty()
    }

    /// The group's rebalance timeout: the largest of its members'.
    pub(crate) fn rebalance_timeout_ms(&self) -> i64 {
        self.members.iter().map(|member| member.rebalance_timeout_ms as i64).max().unwrap_or(0)
    }

    pub(crate) fn transition_to(&mut self, state: ClassicGroupState, now_ms: i64) {
        self.previous_state = self.state;
        self.state = state;
        self.state_timestamp_ms = Some(now_ms);
    }

    /// Whether PreparingRebalance may be entered from the current state.
    pub(crate) fn can_rebalance(&self) -> bool {
        matches!(
            self.state,
            ClassicGroupState::Stable | ClassicGroupState::CompletingRebalance | ClassicGroupState::Empty
        )
    }

    pub(crate) fn add_member(&mut self, member: ClassicMember) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        self.rebalance.pending_members.remove(&member.member_id);
        self.members.push(member);
    }

    /// Removes a member or a pending member; a removed leader is replaced by the
    /// oldest remaining member.
    pub(crate) fn remove_member(&mut self, member_id: &str) -> Option<ClassicMember> {
        let removed = self
            .members
            .iter()
            .position(|member| member.member_id == member_id)
            .map(|index| self.members.remove(index));
        if self.is_leader(member_id) {
            self.leader_id = self.members.first().map(|member| member.member_id.clone());
        }
        self.rebalance.pending_members.remove(member_id);
        self.rebalance.pending_sync.remove(member_id);
        removed
    }

    /// Kafka's `supportsProtocols`: an empty group takes any non-empty protocol
    /// list; otherwise the protocol type must match and one of the member's protocols
    /// must be supported by every current member.
    pub(crate) fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.state == ClassicGroupState::Empty {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(name, _)| self.members.iter().all(|member| member.metadata(name).is_some()))
    }

    /// The protocols every member supports.
    fn candidate_protocols(&self) -> BTreeSet<&str> {
        let Some(first) = self.members.first() else { return BTreeSet::new() };
        first
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| self.members.iter().all(|member| member.metadata(name).is_some()))
            .collect()
    }

    /// Kafka's `selectProtocol`: every member votes for its most preferred protocol
    /// among those all members support; the most votes win (ties: the first voted).
    pub(crate) fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: Vec<(&str, usize)> = Vec::new();
        for member in &self.members {
            if let Some(vote) = member.vote(&candidates) {
                match votes.iter_mut().find(|(name, _)| *name == vote) {
                    Some((_, count)) => *count += 1,
                    None => votes.push((vote, 1)),
                }
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, count) in votes {
            if best.is_none_or(|(_, best_count)| count > best_count) {
                best = Some((name, count));
            }
        }
        best.map(|(name, _)| name.to_string())
    }

    /// Kafka's `validateMember`: a static member is identified by its instance id and
    /// must present the member id registered for it.
    pub(crate) fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), ErrorCode> {
        match instance_id {
            Some(instance_id) => match self.static_member_id(instance_id) {
                None => Err(ErrorCode::UnknownMemberId),
                Some(existing) if existing != member_id => Err(ErrorCode::FencedInstanceId),
                Some(_) => Ok(()),
            },
            None if self.has_member(member_id) => Ok(()),
            None => Err(ErrorCode::UnknownMemberId),
        }
    }

    /// Kafka's `ClassicGroup.validateOffsetCommit`.
    pub(crate) fn validate_offset_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ErrorCode> {
        // The transactional rules, then what a plain commit adds: a commit without
        // any member identity only to an empty group, and none while the leader's
        // assignment is awaited.
        self.validate_txn_offset_commit(member_id, instance_id, generation_id)?;
        if generation_id < 0 && self.state == ClassicGroupState::Empty {
            return Ok(());
        }
        let identified = generation_id >= 0 || !member_id.is_empty() || instance_id.is_some();
        if !identified && self.state != ClassicGroupState::Empty {
            return Err(ErrorCode::UnknownMemberId);
        }
        if self.state == ClassicGroupState::CompletingRebalance {
            return Err(ErrorCode::RebalanceInProgress);
        }
        Ok(())
    }

    /// Kafka's `ClassicGroup.validateOffsetCommit` for a TxnOffsetCommit: member,
    /// instance id and generation are checked only when the request carries any of them
    /// (v3+, KIP-447), and the group's state does not matter beyond Dead.
    pub(crate) fn validate_txn_offset_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ErrorCode> {
        if self.state == ClassicGroupState::Dead {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        if generation_id < 0 && self.state == ClassicGroupState::Empty {
            return Ok(());
        }
        if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation_id != self.generation_id {
                return Err(ErrorCode::IllegalGeneration);
            }
        }
        Ok(())
    }

    pub(crate) fn uses_consumer_protocol(&self) -> bool {
        self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE)
    }

    /// Kafka's `computeSubscribedTopics`: the topics the members of a consumer-protocol
    /// group subscribe to, when they can be read from the member metadata.
    pub(crate) fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if !self.uses_consumer_protocol() {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in &self.members {
            let subscription = decode_subscription(member.metadata(protocol)?)?;
            topics.extend(subscription.topics);
        }
        Some(topics)
    }

    pub(crate) fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        self.subscribed_topics().is_some_and(|topics| topics.contains(topic))
    }

    /// The leader's member list of a JoinGroup answer.
    pub(crate) fn join_members(&self) -> Vec<JoinGroupResponseMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .iter()
            .map(|member| JoinGroupResponseMember {
                member_id: member.member_id.clone(),
                group_instance_id: member.group_instance_id.clone(),
                metadata: member.metadata(protocol).cloned().unwrap_or_default(),
                ..Default::default()
            })
            .collect()
    }

    /// The group as a `GroupMetadata` record value, with every member's current
    /// assignment (none when the group is empty).
    pub(crate) fn metadata_value(&self) -> GroupMetadataValue {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp: self.state_timestamp_ms.unwrap_or(-1),
            members: self
                .members
                .iter()
                .map(|member| MemberMetadata {
                    member_id: member.member_id.clone(),
                    group_instance_id: member.group_instance_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    rebalance_timeout: member.rebalance_timeout_ms,
                    session_timeout: member.session_timeout_ms,
                    subscription: member.metadata(protocol).cloned().unwrap_or_default(),
                    assignment: member.assignment.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// A fresh member id: `<client id or instance id>-<uuid>`, the uuid derived from
    /// the partition, the group, the time and a counter.
    pub(crate) fn generate_member_id(&mut self, prefix: &str, partition: i32, now_ms: i64) -> String {
        loop {
            self.id_counter += 1;
            let group_hash = self
                .group_id
                .bytes()
                .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3));
            let high = splitmix64(group_hash ^ (partition as u64).rotate_left(32) ^ now_ms as u64);
            let low = splitmix64(high ^ self.id_counter.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let uuid = Uuid::from_u128(((high as u128) << 64) | low as u128);
            let member_id = format!("{prefix}-{uuid}");
            if !self.has_member(&member_id) && !self.rebalance.pending_members.contains(&member_id) {
                return member_id;
            }
        }
    }
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Reads a consumer-protocol subscription (int16 version, then the struct; newer
/// versions are read as the newest we know, as Kafka does).
pub(crate) fn decode_subscription(metadata: &Bytes) -> Option<ConsumerProtocolSubscription> {
    let mut buf = metadata.clone();
    if buf.len() < 2 {
        return None;
    }
    let version = buf.get_i16();
    if version < ConsumerProtocolSubscription::VERSIONS.min {
        return None;
    }
    let version = version.min(ConsumerProtocolSubscription::VERSIONS.max);
    ConsumerProtocolSubscription::decode(&mut buf, version).ok()
}

/// Queues a JoinGroup answer, shaped for the version of the parked request.
pub(crate) fn reply_join(effects: &mut Effects, to: ParkedReply, mut response: JoinGroupResponse) {
    if to.api_version < 7 && response.protocol_name.is_none() {
        response.protocol_name = Some(String::new());
    }
    if to.api_version < 9 {
        response.skip_assignment = false;
    }
    effects.reply(to.reply, response);
}

/// A JoinGroup answer carrying only an error.
pub(crate) fn join_error(error: ErrorCode, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse { error_code: error.code(), member_id: member_id.to_string(), ..Default::default() }
}

pub(crate) fn reply_sync(effects: &mut Effects, to: ParkedReply, response: SyncGroupResponse) {
    effects.reply(to.reply, response);
}

pub(crate) fn sync_error(error: ErrorCode) -> SyncGroupResponse {
    SyncGroupResponse { error_code: error.code(), ..Default::default() }
}
