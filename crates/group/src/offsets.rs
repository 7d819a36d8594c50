//! Committed offsets: OffsetCommit (v0-10), OffsetFetch (v0-10, one group at a time),
//! OffsetDelete (v0) and expiry (`offsets.retention.minutes`), after Kafka's
//! `OffsetMetadataManager`. The store changes only when records are replayed.

use crate::classic::{ClassicGroup, ClassicGroupState};
use crate::record::CoordinatorRecord;
use crate::shard::{Effects, Group, GroupCoordinatorShard, RequestContext, TopicsView};
use gregor_protocol::messages::consumer_group_metadata_key::ConsumerGroupMetadataKey;
use gregor_protocol::messages::consumer_group_partition_metadata_key::ConsumerGroupPartitionMetadataKey;
use gregor_protocol::messages::consumer_group_target_assignment_metadata_key::ConsumerGroupTargetAssignmentMetadataKey;
use gregor_protocol::messages::group_metadata_key::GroupMetadataKey;
use gregor_protocol::messages::offset_commit_key::OffsetCommitKey;
use gregor_protocol::messages::offset_commit_request::OffsetCommitRequest;
use gregor_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use gregor_protocol::messages::offset_commit_value::OffsetCommitValue;
use gregor_protocol::messages::offset_delete_request::OffsetDeleteRequest;
use gregor_protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use gregor_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use gregor_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use gregor_protocol::{ErrorCode, Uuid};
use std::collections::{BTreeMap, HashMap};

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    /// -1 when unknown.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Set by OffsetCommit v2-v4 with a retention time: the old per-commit expiry.
    pub expire_timestamp_ms: Option<i64>,
}

/// Committed offsets by group, topic and partition.
#[derive(Debug, Default)]
pub struct OffsetStore {
    by_group: HashMap<String, BTreeMap<String, BTreeMap<i32, CommittedOffset>>>,
}

impl OffsetStore {
    pub fn get(&self, group_id: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.by_group.get(group_id)?.get(topic)?.get(&partition)
    }

    /// Every committed offset of a group, by topic and partition.
    pub fn group(&self, group_id: &str) -> Option<&BTreeMap<String, BTreeMap<i32, CommittedOffset>>> {
        self.by_group.get(group_id)
    }

    pub fn has_offsets(&self, group_id: &str) -> bool {
        self.by_group.contains_key(group_id)
    }

    /// The groups that have committed offsets.
    pub fn group_ids(&self) -> impl Iterator<Item = &str> {
        self.by_group.keys().map(String::as_str)
    }

    fn put(&mut self, group_id: &str, topic: &str, partition: i32, offset: CommittedOffset) {
        self.by_group
            .entry(group_id.to_string())
            .or_default()
            .entry(topic.to_string())
            .or_default()
            .insert(partition, offset);
    }

    fn remove(&mut self, group_id: &str, topic: &str, partition: i32) {
        let Some(topics) = self.by_group.get_mut(group_id) else { return };
        if let Some(partitions) = topics.get_mut(topic) {
            partitions.remove(&partition);
            if partitions.is_empty() {
                topics.remove(topic);
            }
        }
        if topics.is_empty() {
            self.by_group.remove(group_id);
        }
    }

    /// Tombstones for every offset of a group.
    pub(crate) fn tombstones(&self, group_id: &str) -> Vec<CoordinatorRecord> {
        let Some(topics) = self.by_group.get(group_id) else { return Vec::new() };
        topics
            .iter()
            .flat_map(|(topic, partitions)| {
                partitions.keys().map(move |partition| offset_tombstone(group_id, topic, *partition))
            })
            .collect()
    }
}

pub(crate) fn offset_tombstone(group_id: &str, topic: &str, partition: i32) -> CoordinatorRecord {
    CoordinatorRecord::OffsetCommit {
        key: OffsetCommitKey { group: group_id.to_string(), topic: topic.to_string(), partition, ..Default::default() },
        value: None,
    }
}

/// The tombstones that delete a group's own records (its offsets aside): the
/// `GroupMetadata` of a classic group; the epoch, target-assignment epoch and
/// subscription metadata of an empty KIP-848 group.
pub(crate) fn group_tombstones(group_id: &str, group: &Group) -> Vec<CoordinatorRecord> {
    match group {
        Group::Classic(_) => vec![CoordinatorRecord::GroupMetadata {
            key: GroupMetadataKey { group: group_id.to_string(), ..Default::default() },
            value: None,
        }],
        Group::Consumer(_) => vec![
            CoordinatorRecord::ConsumerGroupTargetAssignmentMetadata {
                key: ConsumerGroupTargetAssignmentMetadataKey { group_id: group_id.to_string(), ..Default::default() },
                value: None,
            },
            CoordinatorRecord::ConsumerGroupPartitionMetadata {
                key: ConsumerGroupPartitionMetadataKey { group_id: group_id.to_string(), ..Default::default() },
                value: None,
            },
            CoordinatorRecord::ConsumerGroupMetadata {
                key: ConsumerGroupMetadataKey { group_id: group_id.to_string(), ..Default::default() },
                value: None,
            },
        ],
    }
}

/// The length Kafka checks `offset.metadata.max.bytes` against (Java's
/// `String.length()`).
fn metadata_length(metadata: &str) -> usize {
    metadata.encode_utf16().count()
}

/// What the expiry of one group's offsets counts from (Kafka's
/// `offsetExpirationCondition`); `None`: the group's offsets do not expire now.
enum ExpiryBase {
    /// The time the group became Empty, else the commit time.
    StateOrCommit(Option<i64>),
    /// The commit time.
    Commit,
}

impl GroupCoordinatorShard {
    pub fn offset_commit(
        &mut self,
        ctx: &RequestContext,
        request: OffsetCommitRequest,
        topics: &dyn TopicsView,
    ) -> Effects {
        let mut effects = Effects::default();
        let version = ctx.api_version;
        let group_error = if request.group_id.is_empty() {
            Err(ErrorCode::InvalidGroupId)
        } else {
            self.validate_offset_commit(ctx, &request)
        };
        if group_error.is_ok() {
            // Commits keep the session of a classic member alive (Stable or
            // PreparingRebalance), as heartbeats do.
            if let Some(Group::Classic(group)) = self.groups.get(&request.group_id) {
                if matches!(group.state(), ClassicGroupState::Stable | ClassicGroupState::PreparingRebalance) {
                    if let Some(member) = group.member(&request.member_id) {
                        self.timers.schedule(
                            crate::timer::TimerKey::ClassicSession {
                                group: request.group_id.clone(),
                                member: member.member_id.clone(),
                            },
                            ctx.now_ms + member.session_timeout_ms as i64,
                        );
                    }
                }
            }
        }
        let expire_timestamp_ms = ((2..=4).contains(&version) && request.retention_time_ms != -1)
            .then(|| ctx.now_ms + request.retention_time_ms);

        let mut response = OffsetCommitResponse::default();
        for topic in request.topics {
            let resolved = if version >= 10 && topic.topic_id != Uuid::ZERO {
                topics.topic_name(topic.topic_id)
            } else if version >= 10 && topic.name.is_empty() {
                None
            } else {
                Some(topic.name.clone())
            };
            let partition_count = resolved.as_deref().and_then(|name| topics.partition_count(name));
            let mut topic_response = OffsetCommitResponseTopic {
                name: resolved.clone().unwrap_or_else(|| topic.name.clone()),
                topic_id: topic.topic_id,
                ..Default::default()
            };
            for partition in topic.partitions {
                let error = match (&resolved, partition_count) {
                    (None, _) => ErrorCode::UnknownTopicId,
                    (Some(_), None) => ErrorCode::UnknownTopicOrPartition,
                    (Some(_), Some(count)) if partition.partition_index < 0 || partition.partition_index >= count => {
                        ErrorCode::UnknownTopicOrPartition
                    }
                    (Some(name), Some(_)) => match group_error {
                        Err(error) => error,
                        Ok(()) => {
                            let metadata = partition.committed_metadata.unwrap_or_default();
                            if metadata_length(&metadata) > self.config.offset_metadata_max_bytes {
                                ErrorCode::OffsetMetadataTooLarge
                            } else {
                                effects.record(CoordinatorRecord::OffsetCommit {
                                    key: OffsetCommitKey {
                                        group: request.group_id.clone(),
                                        topic: name.clone(),
                                        partition: partition.partition_index,
                                        ..Default::default()
                                    },
                                    value: Some(OffsetCommitValue {
                                        offset: partition.committed_offset,
                                        leader_epoch: if version >= 6 { partition.committed_leader_epoch } else { -1 },
                                        metadata,
                                        commit_timestamp: if partition.commit_timestamp == -1 {
                                            ctx.now_ms
                                        } else {
                                            partition.commit_timestamp
                                        },
                                        expire_timestamp: expire_timestamp_ms.unwrap_or(-1),
                                        ..Default::default()
                                    }),
                                });
                                ErrorCode::None
                            }
                        }
                    },
                };
                topic_response.partitions.push(OffsetCommitResponsePartition {
                    partition_index: partition.partition_index,
                    error_code: error.code(),
                    ..Default::default()
                });
            }
            response.topics.push(topic_response);
        }
        effects.reply(ctx.reply, response);
        effects
    }

    /// Kafka's `OffsetMetadataManager.validateOffsetCommit`.
    fn validate_offset_commit(&self, ctx: &RequestContext, request: &OffsetCommitRequest) -> Result<(), ErrorCode> {
        let generation = request.generation_id_or_member_epoch;
        match self.groups.get(&request.group_id) {
            // A "simple" commit (no group management) creates the group, as an
            // empty classic group, when its first offset is replayed.
            None if generation < 0 => Ok(()),
            None if ctx.api_version >= 9 => Err(ErrorCode::GroupIdNotFound),
            None => Err(ErrorCode::IllegalGeneration),
            Some(Group::Classic(group)) => {
                group.validate_offset_commit(&request.member_id, request.group_instance_id.as_deref(), generation)
            }
            Some(Group::Consumer(group)) => {
                match group.validate_offset_commit(&request.member_id, generation, ctx.api_version) {
                    Err(ErrorCode::StaleMemberEpoch) if ctx.api_version < 9 => Err(ErrorCode::UnsupportedVersion),
                    other => other,
                }
            }
        }
    }

    pub fn offset_fetch_group(
        &self,
        _ctx: &RequestContext,
        group: OffsetFetchRequestGroup,
        _require_stable: bool,
        topics: &dyn TopicsView,
    ) -> OffsetFetchResponseGroup {
        // No transactional offsets are pending yet, so require_stable changes nothing.
        let group_id = group.group_id;
        let mut response = OffsetFetchResponseGroup { group_id: group_id.clone(), ..Default::default() };
        let exists = match self.groups.get(&group_id) {
            None => false,
            Some(Group::Classic(_)) => true,
            Some(Group::Consumer(consumer)) => {
                if group.member_id.is_some() || group.member_epoch >= 0 {
                    let member_id = group.member_id.as_deref().unwrap_or_default();
                    if let Err(error) = consumer.validate_offset_fetch(member_id, group.member_epoch) {
                        response.error_code = error.code();
                        return response;
                    }
                }
                true
            }
        };
        let committed = if exists { self.offsets.group(&group_id) } else { None };
        let topic_id = |name: &str| topics.topic_id(name).unwrap_or(Uuid::ZERO);
        match group.topics {
            None => {
                for (topic, partitions) in committed.into_iter().flatten() {
                    response.topics.push(OffsetFetchResponseTopics {
                        name: topic.clone(),
                        topic_id: topic_id(topic),
                        partitions: partitions
                            .iter()
                            .map(|(partition, offset)| fetched(*partition, Some(offset)))
                            .collect(),
                        ..Default::default()
                    });
                }
            }
            Some(requested) => {
                for topic in requested {
                    let partitions = committed.and_then(|committed| committed.get(&topic.name));
                    response.topics.push(OffsetFetchResponseTopics {
                        topic_id: if topic.topic_id != Uuid::ZERO { topic.topic_id } else { topic_id(&topic.name) },
                        partitions: topic
                            .partition_indexes
                            .iter()
                            .map(|partition| {
                                fetched(*partition, partitions.and_then(|partitions| partitions.get(partition)))
                            })
                            .collect(),
                        name: topic.name,
                        ..Default::default()
                    });
                }
            }
        }
        response
    }

    pub fn offset_delete(&mut self, ctx: &RequestContext, request: OffsetDeleteRequest) -> Effects {
        let mut effects = Effects::default();
        let group_error = |error: ErrorCode| OffsetDeleteResponse { error_code: error.code(), ..Default::default() };
        if request.group_id.is_empty() {
            effects.reply(ctx.reply, group_error(ErrorCode::InvalidGroupId));
            return effects;
        }
        match self.groups.get(&request.group_id) {
            None => {
                effects.reply(ctx.reply, group_error(ErrorCode::GroupIdNotFound));
                return effects;
            }
            Some(Group::Classic(group)) => {
                if group.state() == ClassicGroupState::Dead {
                    effects.reply(ctx.reply, group_error(ErrorCode::GroupIdNotFound));
                    return effects;
                }
                if group.state() != ClassicGroupState::Empty && !group.uses_consumer_protocol() {
                    effects.reply(ctx.reply, group_error(ErrorCode::NonEmptyGroup));
                    return effects;
                }
            }
            Some(Group::Consumer(_)) => {}
        }
        let mut response = OffsetDeleteResponse::default();
        for topic in request.topics {
            let subscribed = match self.groups.get(&request.group_id) {
                Some(Group::Classic(classic)) => classic.is_subscribed_to_topic(&topic.name),
                Some(Group::Consumer(consumer)) => consumer.is_subscribed_to_topic(&topic.name),
                None => false,
            };
            let mut topic_response = OffsetDeleteResponseTopic { name: topic.name.clone(), ..Default::default() };
            for partition in topic.partitions {
                let mut error = ErrorCode::None;
                if subscribed {
                    error = ErrorCode::GroupSubscribedToTopic;
                } else if self.offsets.get(&request.group_id, &topic.name, partition.partition_index).is_some() {
                    effects.record(offset_tombstone(&request.group_id, &topic.name, partition.partition_index));
                }
                topic_response.partitions.push(OffsetDeleteResponsePartition {
                    partition_index: partition.partition_index,
                    error_code: error.code(),
                    ..Default::default()
                });
            }
            response.topics.push(topic_response);
        }
        effects.reply(ctx.reply, response);
        effects
    }

    /// Kafka's periodic offset cleanup (`offsets.retention.minutes`): tombstones for
    /// expired offsets, and for empty groups that have no offsets left.
    pub fn expire_offsets(&mut self, now_ms: i64) -> Effects {
        let mut effects = Effects::default();
        let retention = self.config.offsets_retention_ms;
        let mut group_ids: Vec<&String> = self.groups.keys().collect();
        group_ids.sort();
        for group_id in group_ids {
            let group = &self.groups[group_id];
            let all_expired = match self.offsets.group(group_id) {
                None => true,
                Some(committed) => {
                    let base = match group {
                        Group::Classic(classic) => classic_expiry_base(classic),
                        Group::Consumer(_) => Some(ExpiryBase::Commit),
                    };
                    match base {
                        None => false,
                        Some(base) => {
                            let mut all_expired = true;
                            for (topic, partitions) in committed {
                                let subscribed = match group {
                                    Group::Classic(classic) => classic.is_subscribed_to_topic(topic),
                                    Group::Consumer(consumer) => consumer.is_subscribed_to_topic(topic),
                                };
                                if subscribed {
                                    all_expired = false;
                                    continue;
                                }
                                for (partition, offset) in partitions {
                                    let expired = match (offset.expire_timestamp_ms, &base) {
                                        (Some(expire), _) => now_ms >= expire,
                                        (None, ExpiryBase::StateOrCommit(state)) => {
                                            now_ms - state.unwrap_or(offset.commit_timestamp_ms) >= retention
                                        }
                                        (None, ExpiryBase::Commit) => now_ms - offset.commit_timestamp_ms >= retention,
                                    };
                                    if expired {
                                        effects.record(offset_tombstone(group_id, topic, *partition));
                                    } else {
                                        all_expired = false;
                                    }
                                }
                            }
                            all_expired
                        }
                    }
                }
            };
            let group_is_empty = match group {
                Group::Classic(classic) => classic.is_empty(),
                Group::Consumer(consumer) => consumer.is_empty(),
            };
            if all_expired && group_is_empty {
                effects.records.extend(group_tombstones(group_id, group));
            }
        }
        effects
    }

    pub(crate) fn replay_offset_commit(&mut self, key: OffsetCommitKey, value: Option<OffsetCommitValue>) {
        match value {
            Some(value) => {
                // Offsets of a group that does not use group management: Kafka keeps
                // them in an empty classic group with no protocol type.
                if !self.groups.contains_key(&key.group) {
                    self.groups.insert(key.group.clone(), Group::Classic(ClassicGroup::new_simple(&key.group)));
                }
                self.offsets.put(
                    &key.group,
                    &key.topic,
                    key.partition,
                    CommittedOffset {
                        offset: value.offset,
                        leader_epoch: value.leader_epoch,
                        metadata: value.metadata,
                        commit_timestamp_ms: value.commit_timestamp,
                        expire_timestamp_ms: (value.expire_timestamp >= 0).then_some(value.expire_timestamp),
                    },
                );
            }
            None => self.offsets.remove(&key.group, &key.topic, key.partition),
        }
    }
}

/// Kafka's `ClassicGroup.offsetExpirationCondition`.
fn classic_expiry_base(group: &ClassicGroup) -> Option<ExpiryBase> {
    match group.protocol_type() {
        None => Some(ExpiryBase::Commit),
        Some(_) if group.is_empty() => Some(ExpiryBase::StateOrCommit(group.state_timestamp_ms)),
        Some(_)
            if group.uses_consumer_protocol()
                && group.state() == ClassicGroupState::Stable
                && group.subscribed_topics().is_some() =>
        {
            Some(ExpiryBase::Commit)
        }
        Some(_) => None,
    }
}

fn fetched(partition: i32, offset: Option<&CommittedOffset>) -> OffsetFetchResponsePartitions {
    match offset {
        Some(offset) => OffsetFetchResponsePartitions {
            partition_index: partition,
            committed_offset: offset.offset,
            committed_leader_epoch: offset.leader_epoch,
            metadata: Some(offset.metadata.clone()),
            ..Default::default()
        },
        None => OffsetFetchResponsePartitions {
            partition_index: partition,
            committed_offset: -1,
            committed_leader_epoch: -1,
            metadata: Some(String::new()),
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests;
