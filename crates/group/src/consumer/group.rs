//! The state of a KIP-848 consumer group as rebuilt from its records, the replay of
//! those records, and the queries the other APIs (offsets, admin) ask of it.

use super::{to_assignment, MemberState, LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH};
use crate::assignor::{Assignment, AssignorKind};
use crate::record::CoordinatorRecord;
use crate::shard::{Group, GroupCoordinatorShard};
use crate::timer::TimerKey;
use gregor_protocol::messages::consumer_group_current_member_assignment_key::ConsumerGroupCurrentMemberAssignmentKey;
use gregor_protocol::messages::consumer_group_current_member_assignment_value::ConsumerGroupCurrentMemberAssignmentValue;
use gregor_protocol::messages::consumer_group_member_metadata_key::ConsumerGroupMemberMetadataKey;
use gregor_protocol::messages::consumer_group_member_metadata_value::ConsumerGroupMemberMetadataValue;
use gregor_protocol::messages::consumer_group_metadata_key::ConsumerGroupMetadataKey;
use gregor_protocol::messages::consumer_group_metadata_value::ConsumerGroupMetadataValue;
use gregor_protocol::messages::consumer_group_partition_metadata_key::ConsumerGroupPartitionMetadataKey;
use gregor_protocol::messages::consumer_group_partition_metadata_value::ConsumerGroupPartitionMetadataValue;
use gregor_protocol::messages::consumer_group_target_assignment_member_key::ConsumerGroupTargetAssignmentMemberKey;
use gregor_protocol::messages::consumer_group_target_assignment_member_value::ConsumerGroupTargetAssignmentMemberValue;
use gregor_protocol::messages::consumer_group_target_assignment_metadata_key::ConsumerGroupTargetAssignmentMetadataKey;
use gregor_protocol::messages::consumer_group_target_assignment_metadata_value::ConsumerGroupTargetAssignmentMetadataValue;
use gregor_protocol::{ErrorCode, Uuid};
use regex::Regex;
use std::collections::{BTreeMap, HashMap};

/// A subscribed topic as recorded in ConsumerGroupPartitionMetadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicMetadata {
    pub id: Uuid,
    pub name: String,
    pub partitions: i32,
}

/// Subscribed topics by name.
pub(crate) type SubscriptionMetadata = BTreeMap<String, TopicMetadata>;

/// One member: its subscription (ConsumerGroupMemberMetadata) and its current
/// assignment (ConsumerGroupCurrentMemberAssignment).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
}

impl ConsumerMember {
    pub fn new(member_id: &str) -> Self {
        ConsumerMember {
            member_id: member_id.to_string(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            rebalance_timeout_ms: -1,
            server_assignor: None,
            member_epoch: 0,
            previous_member_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
        }
    }

    /// Whether the member has converged to the target assignment of `epoch`.
    pub fn is_reconciled_to(&self, epoch: i32) -> bool {
        self.state == MemberState::Stable && self.member_epoch == epoch
    }

    /// Whether the subscription part (what ConsumerGroupMemberMetadata holds) differs.
    pub fn metadata_differs(&self, other: &ConsumerMember) -> bool {
        self.instance_id != other.instance_id
            || self.rack_id != other.rack_id
            || self.client_id != other.client_id
            || self.client_host != other.client_host
            || self.subscribed_topic_names != other.subscribed_topic_names
            || self.subscribed_topic_regex != other.subscribed_topic_regex
            || self.rebalance_timeout_ms != other.rebalance_timeout_ms
            || self.server_assignor != other.server_assignor
    }

    /// Whether the assignment part (ConsumerGroupCurrentMemberAssignment) differs.
    pub fn assignment_differs(&self, other: &ConsumerMember) -> bool {
        self.member_epoch != other.member_epoch
            || self.previous_member_epoch != other.previous_member_epoch
            || self.state != other.state
            || self.assigned != other.assigned
            || self.pending_revocation != other.pending_revocation
    }
}

/// A KIP-848 consumer group.
#[derive(Debug, Default)]
pub struct ConsumerGroup {
    pub(crate) group_id: String,
    pub(crate) group_epoch: i32,
    pub(crate) assignment_epoch: i32,
    pub(crate) members: BTreeMap<String, ConsumerMember>,
    /// Instance id -> member id of static members.
    pub(crate) static_members: HashMap<String, String>,
    /// Target assignment by member id.
    pub(crate) target: BTreeMap<String, Assignment>,
    pub(crate) subscription_metadata: SubscriptionMetadata,
    /// Epoch of the member that currently holds each partition (assigned or pending
    /// revocation); absent means free.
    pub(crate) partition_epochs: HashMap<(Uuid, i32), i32>,
}

/// Names Kafka treats as internal topics: never matched by a regex subscription.
pub(crate) const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state", "__share_group_state"];

/// Compiles a subscription regex the way Kafka (RE2/J `matches`) applies it: the
/// whole topic name must match.
pub(crate) fn compile_regex(regex: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{regex})$"))
}

// The queries below are the API of the offsets and admin code.
#[allow(dead_code)]
impl ConsumerGroup {
    pub(crate) fn new(group_id: &str) -> Self {
        ConsumerGroup { group_id: group_id.to_string(), ..Default::default() }
    }

    pub(crate) fn group_id(&self) -> &str {
        &self.group_id
    }

    pub(crate) fn group_epoch(&self) -> i32 {
        self.group_epoch
    }

    pub(crate) fn assignment_epoch(&self) -> i32 {
        self.assignment_epoch
    }

    pub(crate) fn member_count(&self) -> usize {
        self.members.len()
    }

    pub(crate) fn has_member(&self, member_id: &str) -> bool {
        self.members.contains_key(member_id)
    }

    pub(crate) fn static_member(&self, instance_id: &str) -> Option<&ConsumerMember> {
        self.static_members.get(instance_id).and_then(|id| self.members.get(id))
    }

    /// The epoch of the member holding `topic`-`partition`, or -1 when free.
    pub(crate) fn current_partition_epoch(&self, topic: Uuid, partition: i32) -> i32 {
        self.partition_epochs.get(&(topic, partition)).copied().unwrap_or(-1)
    }

    /// Kafka's ConsumerGroupState: `Empty`, `Assigning`, `Reconciling` or `Stable`.
    pub(crate) fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self.members.values().any(|member| !member.is_reconciled_to(self.assignment_epoch)) {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The assignor the members prefer (the most requested one), else the default.
    pub(crate) fn preferred_assignor(&self, default: &str) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(name) = &member.server_assignor {
                *counts.entry(name.as_str()).or_default() += 1;
            }
        }
        // Most requested; ties go to the smallest name, so the choice is deterministic.
        let mut best: Option<(&str, usize)> = None;
        for (name, count) in counts {
            if !matches!(best, Some((_, best_count)) if best_count >= count) {
                best = Some((name, count));
            }
        }
        let name = best.map(|(name, _)| name).unwrap_or(default);
        AssignorKind::from_name(name).map(|kind| kind.name().to_string()).unwrap_or_else(|| name.to_string())
    }

    /// Whether offsets of `topic` are in use by the group (OffsetDelete refuses them).
    pub(crate) fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        if self.subscription_metadata.contains_key(topic) {
            return true;
        }
        self.members.values().any(|member| {
            member.subscribed_topic_names.iter().any(|name| name == topic)
                || member
                    .subscribed_topic_regex
                    .as_deref()
                    .and_then(|regex| compile_regex(regex).ok())
                    .is_some_and(|regex| !INTERNAL_TOPICS.contains(&topic) && regex.is_match(topic))
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The group state as ListGroups and DescribeGroups show it.
    pub(crate) fn state_name(&self) -> &'static str {
        self.state().name()
    }

    /// OffsetCommit of a consumer group (Kafka's ConsumerGroup.validateOffsetCommit).
    pub(crate) fn validate_offset_commit(
        &self,
        member_id: &str,
        member_epoch: i32,
        api_version: i16,
    ) -> Result<(), ErrorCode> {
        // An admin client or a consumer without group management commits with epoch -1;
        // allowed while the group has no members.
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let member = self.members.get(member_id).ok_or(ErrorCode::UnknownMemberId)?;
        // Members of the consumer protocol must use OffsetCommit v9+.
        if api_version < 9 {
            return Err(ErrorCode::UnsupportedVersion);
        }
        if member_epoch != member.member_epoch {
            return Err(ErrorCode::StaleMemberEpoch);
        }
        Ok(())
    }

    /// Kafka's `ConsumerGroup.validateOffsetCommit` for a TxnOffsetCommit: an empty
    /// group takes commits with epoch -1, and a request without member id, epoch and
    /// instance id (v0-v2, or a producer outside the group) is not checked; otherwise
    /// the member must exist and the epoch be its current one (STALE_MEMBER_EPOCH,
    /// which TxnOffsetCommit answers as ILLEGAL_GENERATION).
    pub(crate) fn validate_txn_offset_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), ErrorCode> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        if member_epoch == -1 && member_id.is_empty() && instance_id.is_none() {
            return Ok(());
        }
        let member = self.members.get(member_id).ok_or(ErrorCode::UnknownMemberId)?;
        if member_epoch != member.member_epoch {
            return Err(ErrorCode::StaleMemberEpoch);
        }
        Ok(())
    }

    /// OffsetFetch with a member id and epoch (v9+).
    pub(crate) fn validate_offset_fetch(&self, member_id: &str, member_epoch: i32) -> Result<(), ErrorCode> {
        // No member id and epoch -1: an admin or a client outside the group.
        if member_id.is_empty() && member_epoch < 0 {
            return Ok(());
        }
        let member = self.members.get(member_id).ok_or(ErrorCode::UnknownMemberId)?;
        if member_epoch != member.member_epoch {
            return Err(ErrorCode::StaleMemberEpoch);
        }
        Ok(())
    }

    /// The tombstones that delete the whole group (DeleteGroups), in Kafka's order.
    pub(crate) fn tombstone_records(&self) -> Vec<CoordinatorRecord> {
        let mut records = Vec::new();
        for member_id in self.members.keys() {
            records.push(super::records::current_assignment_tombstone(&self.group_id, member_id));
        }
        for member_id in self.target.keys() {
            records.push(super::records::target_member_tombstone(&self.group_id, member_id));
        }
        records.push(super::records::target_metadata_tombstone(&self.group_id));
        for member_id in self.members.keys() {
            records.push(super::records::member_metadata_tombstone(&self.group_id, member_id));
        }
        records.push(super::records::partition_metadata_tombstone(&self.group_id));
        records.push(super::records::group_metadata_tombstone(&self.group_id));
        records
    }

    fn add_partition_epochs(&mut self, assignment: &Assignment, epoch: i32) {
        for (topic, partitions) in assignment {
            for partition in partitions {
                self.partition_epochs.insert((*topic, *partition), epoch);
            }
        }
    }

    fn remove_partition_epochs(&mut self, assignment: &Assignment, epoch: i32) {
        for (topic, partitions) in assignment {
            for partition in partitions {
                if self.partition_epochs.get(&(*topic, *partition)) == Some(&epoch) {
                    self.partition_epochs.remove(&(*topic, *partition));
                }
            }
        }
    }

    /// Replaces a member's assignment, keeping the partition epochs consistent.
    fn set_member_assignment(&mut self, member_id: &str, update: impl FnOnce(&mut ConsumerMember)) {
        let Some(mut member) = self.members.remove(member_id) else { return };
        self.remove_partition_epochs(&member.assigned.clone(), member.member_epoch);
        self.remove_partition_epochs(&member.pending_revocation.clone(), member.member_epoch);
        update(&mut member);
        self.add_partition_epochs(&member.assigned, member.member_epoch);
        self.add_partition_epochs(&member.pending_revocation, member.member_epoch);
        self.members.insert(member_id.to_string(), member);
    }
}

/// Kafka's ConsumerGroup.ConsumerGroupState.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    /// `toString()` of Kafka's enum: what ListGroups, DescribeGroups and
    /// ConsumerGroupDescribe report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

impl GroupCoordinatorShard {
    /// The consumer group `group_id`, created for a record being replayed. A classic
    /// group of the same id is replaced: the handlers only write consumer records for
    /// an id whose classic group is empty (and tombstoned first).
    fn consumer_group_for_replay(&mut self, group_id: &str) -> &mut ConsumerGroup {
        let replace = !matches!(self.groups.get(group_id), Some(Group::Consumer(_)));
        if replace {
            self.groups.insert(group_id.to_string(), Group::Consumer(ConsumerGroup::new(group_id)));
        }
        match self.groups.get_mut(group_id) {
            Some(Group::Consumer(group)) => group,
            _ => unreachable!("inserted above"), // ok: the slot was made a consumer group two lines up
        }
    }

    fn existing_consumer_group(&mut self, group_id: &str) -> Option<&mut ConsumerGroup> {
        match self.groups.get_mut(group_id) {
            Some(Group::Consumer(group)) => Some(group),
            _ => None,
        }
    }

    pub(crate) fn replay_consumer_group_metadata(
        &mut self,
        key: ConsumerGroupMetadataKey,
        value: Option<ConsumerGroupMetadataValue>,
    ) {
        match value {
            Some(value) => self.consumer_group_for_replay(&key.group_id).group_epoch = value.epoch,
            None => {
                // The group is deleted (its members were tombstoned before).
                if matches!(self.groups.get(&key.group_id), Some(Group::Consumer(_))) {
                    self.groups.remove(&key.group_id);
                    self.timers.cancel_group(&key.group_id);
                }
            }
        }
    }

    pub(crate) fn replay_consumer_group_partition_metadata(
        &mut self,
        key: ConsumerGroupPartitionMetadataKey,
        value: Option<ConsumerGroupPartitionMetadataValue>,
    ) {
        match value {
            Some(value) => {
                let group = self.consumer_group_for_replay(&key.group_id);
                group.subscription_metadata = value
                    .topics
                    .into_iter()
                    .map(|topic| {
                        let metadata = TopicMetadata {
                            id: topic.topic_id,
                            name: topic.topic_name.clone(),
                            partitions: topic.num_partitions,
                        };
                        (topic.topic_name, metadata)
                    })
                    .collect();
            }
            None => {
                if let Some(group) = self.existing_consumer_group(&key.group_id) {
                    group.subscription_metadata.clear();
                }
            }
        }
    }

    pub(crate) fn replay_consumer_group_member_metadata(
        &mut self,
        key: ConsumerGroupMemberMetadataKey,
        value: Option<ConsumerGroupMemberMetadataValue>,
    ) {
        match value {
            Some(value) => {
                let group = self.consumer_group_for_replay(&key.group_id);
                let member =
                    group.members.entry(key.member_id.clone()).or_insert_with(|| ConsumerMember::new(&key.member_id));
                let old_instance = member.instance_id.clone();
                member.instance_id = value.instance_id;
                member.rack_id = value.rack_id;
                member.client_id = value.client_id;
                member.client_host = value.client_host;
                member.subscribed_topic_names = value.subscribed_topic_names;
                member.subscribed_topic_regex = value.subscribed_topic_regex;
                member.rebalance_timeout_ms = value.rebalance_timeout_ms;
                member.server_assignor = value.server_assignor;
                let new_instance = member.instance_id.clone();
                if let Some(old) = old_instance {
                    if group.static_members.get(&old) == Some(&key.member_id) {
                        group.static_members.remove(&old);
                    }
                }
                if let Some(instance) = new_instance {
                    group.static_members.insert(instance, key.member_id.clone());
                }
            }
            None => {
                let Some(group) = self.existing_consumer_group(&key.group_id) else { return };
                group.set_member_assignment(&key.member_id, |member| {
                    member.assigned.clear();
                    member.pending_revocation.clear();
                });
                if let Some(member) = group.members.remove(&key.member_id) {
                    if let Some(instance) = member.instance_id {
                        if group.static_members.get(&instance) == Some(&key.member_id) {
                            group.static_members.remove(&instance);
                        }
                    }
                }
                let group_id = key.group_id.clone();
                for timer in [
                    TimerKey::ConsumerSession { group: group_id.clone(), member: key.member_id.clone() },
                    TimerKey::ConsumerRebalance { group: group_id, member: key.member_id },
                ] {
                    self.timers.cancel(&timer);
                }
            }
        }
    }

    pub(crate) fn replay_consumer_group_target_assignment_metadata(
        &mut self,
        key: ConsumerGroupTargetAssignmentMetadataKey,
        value: Option<ConsumerGroupTargetAssignmentMetadataValue>,
    ) {
        match value {
            Some(value) => self.consumer_group_for_replay(&key.group_id).assignment_epoch = value.assignment_epoch,
            None => {
                if let Some(group) = self.existing_consumer_group(&key.group_id) {
                    group.assignment_epoch = 0;
                }
            }
        }
    }

    pub(crate) fn replay_consumer_group_target_assignment_member(
        &mut self,
        key: ConsumerGroupTargetAssignmentMemberKey,
        value: Option<ConsumerGroupTargetAssignmentMemberValue>,
    ) {
        match value {
            Some(value) => {
                let assignment =
                    to_assignment(value.topic_partitions.into_iter().map(|tp| (tp.topic_id, tp.partitions)));
                self.consumer_group_for_replay(&key.group_id).target.insert(key.member_id, assignment);
            }
            None => {
                if let Some(group) = self.existing_consumer_group(&key.group_id) {
                    group.target.remove(&key.member_id);
                }
            }
        }
    }

    pub(crate) fn replay_consumer_group_current_member_assignment(
        &mut self,
        key: ConsumerGroupCurrentMemberAssignmentKey,
        value: Option<ConsumerGroupCurrentMemberAssignmentValue>,
    ) {
        match value {
            Some(value) => {
                let group = self.consumer_group_for_replay(&key.group_id);
                if !group.members.contains_key(&key.member_id) {
                    group.members.insert(key.member_id.clone(), ConsumerMember::new(&key.member_id));
                }
                group.set_member_assignment(&key.member_id, |member| {
                    member.member_epoch = value.member_epoch;
                    member.previous_member_epoch = value.previous_member_epoch;
                    member.state = MemberState::from_i8(value.state);
                    member.assigned =
                        to_assignment(value.assigned_partitions.into_iter().map(|tp| (tp.topic_id, tp.partitions)));
                    member.pending_revocation = to_assignment(
                        value.partitions_pending_revocation.into_iter().map(|tp| (tp.topic_id, tp.partitions)),
                    );
                });
            }
            None => {
                // The member leaves: it owns nothing any more.
                let Some(group) = self.existing_consumer_group(&key.group_id) else { return };
                group.set_member_assignment(&key.member_id, |member| {
                    member.member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
                    member.previous_member_epoch = LEAVE_GROUP_MEMBER_EPOCH;
                    member.state = MemberState::Stable;
                    member.assigned.clear();
                    member.pending_revocation.clear();
                });
            }
        }
    }

    /// Loaded members get a fresh session (and, mid-revocation, rebalance) deadline.
    pub(crate) fn consumer_finish_load(&mut self, now_ms: i64) {
        let mut schedule = Vec::new();
        for group in self.groups.values() {
            let Group::Consumer(group) = group else { continue };
            let session = i64::from(self.config.consumer_session_timeout_ms_of(&group.group_id));
            for member in group.members.values() {
                schedule.push((
                    TimerKey::ConsumerSession { group: group.group_id.clone(), member: member.member_id.clone() },
                    now_ms + session,
                ));
                if member.state == MemberState::UnrevokedPartitions
                    && member.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH
                {
                    schedule.push((
                        TimerKey::ConsumerRebalance { group: group.group_id.clone(), member: member.member_id.clone() },
                        now_ms + i64::from(member.rebalance_timeout_ms.max(0)),
                    ));
                }
            }
        }
        for (key, deadline) in schedule {
            self.timers.schedule(key, deadline);
        }
    }
}
