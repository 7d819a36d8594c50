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
use gregor_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use gregor_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use gregor_protocol::{ErrorCode, Uuid};
use std::collections::{BTreeMap, BTreeSet, HashMap};

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
    /// Where its record stands in the partition's log (the order records are replayed
    /// in); Kafka's `recordOffset`. A transaction's offset is materialized at commit
    /// only over an offset whose record came before it.
    pub(crate) record_order: u64,
}

/// One group's offsets by topic and partition.
pub type GroupOffsets = BTreeMap<String, BTreeMap<i32, CommittedOffset>>;

/// Committed offsets by group, topic and partition, and the pending offsets of open
/// transactions (TxnOffsetCommit, KIP-98) by producer id.
#[derive(Debug, Default)]
pub struct OffsetStore {
    by_group: HashMap<String, GroupOffsets>,
    /// Offsets of open transactions: producer id → group → topic → partition. Moved to
    /// `by_group` when the producer's COMMIT marker is replayed, dropped on ABORT.
    pending: HashMap<i64, HashMap<String, GroupOffsets>>,
    /// The producers with an open transaction that committed offsets of each group
    /// (Kafka's `openTransactionsByGroup`); cleared only by the producer's marker.
    open_by_group: HashMap<String, BTreeSet<i64>>,
    /// Offset-commit records replayed so far: the log order of the next one.
    replayed: u64,
}

impl OffsetStore {
    pub fn get(&self, group_id: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.by_group.get(group_id)?.get(topic)?.get(&partition)
    }

    /// Every committed offset of a group, by topic and partition.
    pub fn group(&self, group_id: &str) -> Option<&GroupOffsets> {
        self.by_group.get(group_id)
    }

    pub fn has_offsets(&self, group_id: &str) -> bool {
        self.by_group.contains_key(group_id)
    }

    /// The groups that have committed offsets.
    pub fn group_ids(&self) -> impl Iterator<Item = &str> {
        self.by_group.keys().map(String::as_str)
    }

    /// The pending (uncommitted transactional) offset of `producer_id` for a partition.
    pub fn pending(&self, producer_id: i64, group_id: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.pending.get(&producer_id)?.get(group_id)?.get(topic)?.get(&partition)
    }

    /// Whether any open transaction has a pending offset for the partition (Kafka's
    /// `hasPendingTransactionalOffsets`).
    pub fn has_pending(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.open_by_group.get(group_id).is_some_and(|producers| {
            producers.iter().any(|producer| self.pending(*producer, group_id, topic, partition).is_some())
        })
    }

    /// Whether producers with open transactions have committed offsets of the group.
    pub fn has_open_transactions(&self, group_id: &str) -> bool {
        self.open_by_group.contains_key(group_id)
    }

    /// The producers with pending offsets, in increasing order.
    pub fn pending_producers(&self) -> Vec<i64> {
        let mut producers: Vec<i64> = self.pending.keys().copied().collect();
        producers.sort_unstable();
        producers
    }

    fn next_order(&mut self) -> u64 {
        self.replayed += 1;
        self.replayed
    }

    fn put(&mut self, group_id: &str, topic: &str, partition: i32, offset: CommittedOffset) {
        self.by_group
            .entry(group_id.to_string())
            .or_default()
            .entry(topic.to_string())
            .or_default()
            .insert(partition, offset);
    }

    fn put_pending(&mut self, producer_id: i64, group_id: &str, topic: &str, partition: i32, offset: CommittedOffset) {
        self.pending
            .entry(producer_id)
            .or_default()
            .entry(group_id.to_string())
            .or_default()
            .entry(topic.to_string())
            .or_default()
            .insert(partition, offset);
        self.open_by_group.entry(group_id.to_string()).or_default().insert(producer_id);
    }

    /// A tombstone: the committed offset goes, and so do the pending ones of every open
    /// transaction of the group (as Kafka's replay does).
    fn remove(&mut self, group_id: &str, topic: &str, partition: i32) {
        if let Some(topics) = self.by_group.get_mut(group_id) {
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
        let Some(producers) = self.open_by_group.get(group_id) else { return };
        for producer in producers {
            let Some(topics) = self.pending.get_mut(producer).and_then(|groups| groups.get_mut(group_id)) else {
                continue;
            };
            if let Some(partitions) = topics.get_mut(topic) {
                partitions.remove(&partition);
                if partitions.is_empty() {
                    topics.remove(topic);
                }
            }
        }
    }

    /// Ends `producer_id`'s transaction: its pending offsets, which the caller
    /// materializes on commit. The producer is no longer open in any group.
    fn end_transaction(&mut self, producer_id: i64) -> HashMap<String, GroupOffsets> {
        let pending = self.pending.remove(&producer_id).unwrap_or_default();
        self.open_by_group.retain(|_, producers| {
            producers.remove(&producer_id);
            !producers.is_empty()
        });
        pending
    }

    /// Tombstones for every offset of a group: the committed ones, then the partitions
    /// that only open transactions have offsets for (Kafka's `deleteAllOffsets`), so
    /// those cannot be committed into a deleted group later.
    pub(crate) fn tombstones(&self, group_id: &str) -> Vec<CoordinatorRecord> {
        let mut records: Vec<CoordinatorRecord> = self
            .by_group
            .get(group_id)
            .into_iter()
            .flatten()
            .flat_map(|(topic, partitions)| {
                partitions.keys().map(move |partition| offset_tombstone(group_id, topic, *partition))
            })
            .collect();
        let mut pending_only = BTreeSet::new();
        for producer in self.open_by_group.get(group_id).into_iter().flatten() {
            let Some(topics) = self.pending.get(producer).and_then(|groups| groups.get(group_id)) else { continue };
            for (topic, partitions) in topics {
                for partition in partitions.keys() {
                    if self.get(group_id, topic, *partition).is_none() {
                        pending_only.insert((topic.as_str(), *partition));
                    }
                }
            }
        }
        records.extend(pending_only.into_iter().map(|(topic, partition)| offset_tombstone(group_id, topic, partition)));
        records
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

    /// TxnOffsetCommit (v0-v5): the offsets a transactional producer commits for a
    /// group, as OffsetCommit records the caller appends as one transactional batch of
    /// `request.producer_id`/`producer_epoch` ([`Effects::transactional`]). Once
    /// replayed they are pending until the producer's COMMIT or ABORT marker reaches this
    /// partition. Errors as Kafka's `commitTransactionalOffset`: per partition an
    /// unknown topic or partition, else the group's error (INVALID_GROUP_ID; for v3+
    /// fencing of KIP-447, ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID),
    /// else OFFSET_METADATA_TOO_LARGE.
    pub fn txn_offset_commit(
        &mut self,
        ctx: &RequestContext,
        request: TxnOffsetCommitRequest,
        topics: &dyn TopicsView,
    ) -> Effects {
        let mut effects =
            Effects { transactional: Some((request.producer_id, request.producer_epoch)), ..Effects::default() };
        let group_error = if request.group_id.is_empty() {
            Err(ErrorCode::InvalidGroupId)
        } else {
            self.validate_txn_offset_commit(&request)
        };
        let mut response = TxnOffsetCommitResponse::default();
        for topic in request.topics {
            let partition_count = topics.partition_count(&topic.name);
            let mut topic_response = TxnOffsetCommitResponseTopic { name: topic.name.clone(), ..Default::default() };
            for partition in topic.partitions {
                let index = partition.partition_index;
                let error = match (partition_count, group_error) {
                    (None, _) => ErrorCode::UnknownTopicOrPartition,
                    (Some(count), _) if index < 0 || index >= count => ErrorCode::UnknownTopicOrPartition,
                    (Some(_), Err(error)) => error,
                    (Some(_), Ok(())) => {
                        let metadata = partition.committed_metadata.unwrap_or_default();
                        if metadata_length(&metadata) > self.config.offset_metadata_max_bytes {
                            ErrorCode::OffsetMetadataTooLarge
                        } else {
                            effects.record(CoordinatorRecord::OffsetCommit {
                                key: OffsetCommitKey {
                                    group: request.group_id.clone(),
                                    topic: topic.name.clone(),
                                    partition: index,
                                    ..Default::default()
                                },
                                value: Some(OffsetCommitValue {
                                    offset: partition.committed_offset,
                                    leader_epoch: partition.committed_leader_epoch,
                                    metadata,
                                    commit_timestamp: ctx.now_ms,
                                    expire_timestamp: -1,
                                    ..Default::default()
                                }),
                            });
                            ErrorCode::None
                        }
                    }
                };
                topic_response.partitions.push(TxnOffsetCommitResponsePartition {
                    partition_index: index,
                    error_code: error.code(),
                    ..Default::default()
                });
            }
            response.topics.push(topic_response);
        }
        effects.reply(ctx.reply, response);
        effects
    }

    /// Kafka's `OffsetMetadataManager.validateTransactionalOffsetCommit`.
    fn validate_txn_offset_commit(&self, request: &TxnOffsetCommitRequest) -> Result<(), ErrorCode> {
        let generation = request.generation_id;
        let instance_id = request.group_instance_id.as_deref();
        match self.groups.get(&request.group_id) {
            // Offsets for a group that does not exist yet: it is created, as a simple
            // group, when the first of them is replayed.
            None if generation < 0 => Ok(()),
            None => Err(ErrorCode::IllegalGeneration),
            Some(Group::Classic(group)) => {
                group.validate_txn_offset_commit(&request.member_id, instance_id, generation)
            }
            Some(Group::Consumer(group)) => {
                match group.validate_txn_offset_commit(&request.member_id, instance_id, generation) {
                    Err(ErrorCode::StaleMemberEpoch) => Err(ErrorCode::IllegalGeneration),
                    other => other,
                }
            }
        }
    }

    pub fn offset_fetch_group(
        &self,
        _ctx: &RequestContext,
        group: OffsetFetchRequestGroup,
        require_stable: bool,
        topics: &dyn TopicsView,
    ) -> OffsetFetchResponseGroup {
        // With require_stable (v7+), a partition some open transaction has an offset for
        // answers UNSTABLE_OFFSET_COMMIT (on the partition, as Kafka does in every
        // version) until the transaction's marker; the client retries.
        let group_id = group.group_id;
        let unstable =
            |topic: &str, partition: i32| require_stable && self.offsets.has_pending(&group_id, topic, partition);
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
                            .map(|(partition, offset)| {
                                if unstable(topic, *partition) {
                                    unstable_partition(*partition)
                                } else {
                                    fetched(*partition, Some(offset))
                                }
                            })
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
                                if unstable(&topic.name, *partition) {
                                    unstable_partition(*partition)
                                } else {
                                    fetched(*partition, partitions.and_then(|partitions| partitions.get(partition)))
                                }
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
                } else if self.offsets.get(&request.group_id, &topic.name, partition.partition_index).is_some()
                    || self.offsets.has_pending(&request.group_id, &topic.name, partition.partition_index)
                {
                    // Pending transactional offsets go too (the tombstone drops them).
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
    /// expired offsets, and for empty groups that have no offsets left. Partitions with
    /// pending transactional offsets and groups with open transactions are kept.
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
                                    // Not while an open transaction has an offset for
                                    // the partition.
                                    if expired && !self.offsets.has_pending(group_id, topic, *partition) {
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
            // A group with open transactions stays (Kafka keeps it when it has committed
            // offsets; so do we when it has none, so a later COMMIT marker never
            // materializes offsets into a deleted group).
            if all_expired && group_is_empty && !self.offsets.has_open_transactions(group_id) {
                effects.records.extend(group_tombstones(group_id, group));
            }
        }
        effects
    }

    pub(crate) fn replay_offset_commit(&mut self, key: OffsetCommitKey, value: Option<OffsetCommitValue>) {
        match value {
            Some(value) => {
                self.ensure_simple_group(&key.group);
                let offset = self.committed_offset_from(value);
                self.offsets.put(&key.group, &key.topic, key.partition, offset);
            }
            None => self.offsets.remove(&key.group, &key.topic, key.partition),
        }
    }

    /// An offset commit in a transactional batch of `producer_id`: pending until the
    /// producer's marker. Its group is created as Kafka does for any commit.
    pub(crate) fn replay_transactional_offset_commit(
        &mut self,
        producer_id: i64,
        key: OffsetCommitKey,
        value: Option<OffsetCommitValue>,
    ) {
        match value {
            Some(value) => {
                self.ensure_simple_group(&key.group);
                let offset = self.committed_offset_from(value);
                self.offsets.put_pending(producer_id, &key.group, &key.topic, key.partition, offset);
            }
            None => self.offsets.remove(&key.group, &key.topic, key.partition),
        }
    }

    /// Kafka's `replayEndTransactionMarker`: a commit materializes each pending offset
    /// unless the committed one's record came later in the log (a plain commit after
    /// the transactional one wins, whatever order compaction leaves them in).
    pub(crate) fn replay_offsets_end_transaction(&mut self, producer_id: i64, commit: bool) {
        let pending = self.offsets.end_transaction(producer_id);
        if !commit {
            return;
        }
        for (group_id, topics) in pending {
            for (topic, partitions) in topics {
                for (partition, offset) in partitions {
                    let newer = match self.offsets.get(&group_id, &topic, partition) {
                        Some(existing) => offset.record_order > existing.record_order,
                        None => true,
                    };
                    if newer {
                        // The group exists (the pending record created it, and deleting
                        // it tombstones pending offsets); made sure of all the same.
                        self.ensure_simple_group(&group_id);
                        self.offsets.put(&group_id, &topic, partition, offset);
                    }
                }
            }
        }
    }

    /// Offsets of a group that does not use group management: Kafka keeps them in an
    /// empty classic group with no protocol type.
    fn ensure_simple_group(&mut self, group_id: &str) {
        if !self.groups.contains_key(group_id) {
            self.groups.insert(group_id.to_string(), Group::Classic(ClassicGroup::new_simple(group_id)));
        }
    }

    fn committed_offset_from(&mut self, value: OffsetCommitValue) -> CommittedOffset {
        CommittedOffset {
            offset: value.offset,
            leader_epoch: value.leader_epoch,
            metadata: value.metadata,
            commit_timestamp_ms: value.commit_timestamp,
            expire_timestamp_ms: (value.expire_timestamp >= 0).then_some(value.expire_timestamp),
            record_order: self.offsets.next_order(),
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

/// A partition an open transaction has an offset for, asked with require_stable.
fn unstable_partition(partition: i32) -> OffsetFetchResponsePartitions {
    OffsetFetchResponsePartitions { error_code: ErrorCode::UnstableOffsetCommit.code(), ..fetched(partition, None) }
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
#[cfg(test)]
mod txn_tests;
