//! One shard of the group coordinator: the groups and offsets of one
//! `__consumer_offsets` partition, and the entry points the broker calls.
//!
//! The per-API logic lives in `classic/` (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup), `consumer/` (ConsumerGroupHeartbeat, ConsumerGroupDescribe),
//! `offsets.rs` (OffsetCommit, OffsetFetch, OffsetDelete, expiry) and `admin.rs`
//! (DescribeGroups, ListGroups, DeleteGroups) as further `impl` blocks of
//! [`GroupCoordinatorShard`]; this file holds the shared state, record replay and
//! timer dispatch.

use crate::classic::ClassicGroup;
use crate::config::GroupConfig;
use crate::consumer::ConsumerGroup;
use crate::offsets::OffsetStore;
use crate::record::CoordinatorRecord;
use crate::timer::{TimerKey, Timers};
use gregor_protocol::{ResponseBody, Uuid};
use std::collections::HashMap;

/// Identifies one outstanding request; the caller picks it and maps it back to the
/// connection waiting for the answer. A JoinGroup or SyncGroup answer may be produced
/// by a later call (another member's join, a timer), so every answer is addressed.
pub type ReplyId = u64;

/// What the shard knows about the request it is handling.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request's API version (answers are shaped by it).
    pub api_version: i16,
    pub client_id: String,
    /// The client's address, as DescribeGroups shows it (`/127.0.0.1`).
    pub client_host: String,
    pub now_ms: i64,
    /// Where this request's own answer goes.
    pub reply: ReplyId,
}

/// The outcome of one call: records to append (in order) and the answers that are
/// complete once they are durable.
#[derive(Debug, Default)]
pub struct Effects {
    pub records: Vec<CoordinatorRecord>,
    pub replies: Vec<(ReplyId, ResponseBody)>,
    /// `Some((producer id, producer epoch))` when every record belongs to that producer's
    /// transaction (TxnOffsetCommit): the caller appends them as one transactional batch
    /// of that producer and replays each with
    /// [`GroupCoordinatorShard::replay_transactional`]. A transactional decision never
    /// carries non-transactional records.
    pub transactional: Option<(i64, i16)>,
}

impl Effects {
    pub fn reply(&mut self, to: ReplyId, response: impl Into<ResponseBody>) {
        self.replies.push((to, response.into()));
    }

    pub fn record(&mut self, record: CoordinatorRecord) {
        self.records.push(record);
    }

    /// Adds `other`'s records and answers. Transactional and non-transactional records
    /// never meet in one `Effects`: extending across the two is a bug.
    pub fn extend(&mut self, other: Effects) {
        debug_assert!(
            other.records.is_empty() || self.records.is_empty() || self.transactional == other.transactional,
            "transactional and non-transactional records mixed in one Effects"
        );
        if self.records.is_empty() && !other.records.is_empty() {
            self.transactional = other.transactional;
        }
        self.records.extend(other.records);
        self.replies.extend(other.replies);
    }
}

/// The topics that exist, as the coordinator needs them: KIP-848 assignment, regex
/// subscriptions, and topic ids in OffsetCommit/OffsetFetch v10.
pub trait TopicsView {
    fn topic_id(&self, name: &str) -> Option<Uuid>;
    fn topic_name(&self, id: Uuid) -> Option<String>;
    fn partition_count(&self, name: &str) -> Option<i32>;
    /// Every topic name, internal ones included, in no particular order.
    fn topic_names(&self) -> Vec<String>;
}

/// A group is either classic (JoinGroup/SyncGroup) or a KIP-848 consumer group; one
/// group id is one kind at a time.
#[derive(Debug)]
pub enum Group {
    Classic(ClassicGroup),
    Consumer(ConsumerGroup),
}

/// The coordinator state of one `__consumer_offsets` partition.
#[derive(Debug)]
pub struct GroupCoordinatorShard {
    pub(crate) partition: i32,
    pub(crate) config: GroupConfig,
    pub(crate) groups: HashMap<String, Group>,
    pub(crate) offsets: OffsetStore,
    pub(crate) timers: Timers,
}

/// The `__consumer_offsets` partition that coordinates `group_id`: Java's
/// `String.hashCode` of the id, made non-negative the way Kafka's `Utils.abs` does,
/// modulo the partition count, so every Kafka tool agrees on the placement.
pub fn partition_for_group(group_id: &str, partitions: i32) -> i32 {
    let mut hash: i32 = 0;
    for unit in group_id.encode_utf16() {
        hash = hash.wrapping_mul(31).wrapping_add(unit as i32);
    }
    let non_negative = if hash == i32::MIN { 0 } else { hash.abs() };
    non_negative % partitions.max(1)
}

impl GroupCoordinatorShard {
    pub fn new(partition: i32, config: GroupConfig) -> Self {
        GroupCoordinatorShard {
            partition,
            config,
            groups: HashMap::new(),
            offsets: OffsetStore::default(),
            timers: Timers::default(),
        }
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Applies one record that is now durable (just appended, or read while loading).
    pub fn replay(&mut self, record: CoordinatorRecord) {
        match record {
            CoordinatorRecord::OffsetCommit { key, value } => self.replay_offset_commit(key, value),
            CoordinatorRecord::GroupMetadata { key, value } => self.replay_group_metadata(key, value),
            CoordinatorRecord::ConsumerGroupMetadata { key, value } => self.replay_consumer_group_metadata(key, value),
            CoordinatorRecord::ConsumerGroupPartitionMetadata { key, value } => {
                self.replay_consumer_group_partition_metadata(key, value)
            }
            CoordinatorRecord::ConsumerGroupMemberMetadata { key, value } => {
                self.replay_consumer_group_member_metadata(key, value)
            }
            CoordinatorRecord::ConsumerGroupTargetAssignmentMetadata { key, value } => {
                self.replay_consumer_group_target_assignment_metadata(key, value)
            }
            CoordinatorRecord::ConsumerGroupTargetAssignmentMember { key, value } => {
                self.replay_consumer_group_target_assignment_member(key, value)
            }
            CoordinatorRecord::ConsumerGroupCurrentMemberAssignment { key, value } => {
                self.replay_consumer_group_current_member_assignment(key, value)
            }
        }
    }

    /// Applies one record of a transactional batch of `producer_id` that is now durable
    /// (Kafka's replay with a producer id): an offset commit becomes *pending* for that
    /// producer, invisible to OffsetFetch until
    /// [`replay_end_transaction_marker`](Self::replay_end_transaction_marker) commits it.
    /// Other records (and offset tombstones) apply as [`replay`](Self::replay) does.
    pub fn replay_transactional(&mut self, producer_id: i64, record: CoordinatorRecord) {
        match record {
            CoordinatorRecord::OffsetCommit { key, value } if producer_id >= 0 => {
                self.replay_transactional_offset_commit(producer_id, key, value)
            }
            other => self.replay(other),
        }
    }

    /// Applies a COMMIT (`commit`) or ABORT marker of `producer_id` written to this
    /// partition: the producer's pending offsets become committed (each unless a commit
    /// later in the log already replaced it) or are dropped. Either way the producer
    /// has no pending offsets afterwards. A marker without pending offsets does nothing.
    pub fn replay_end_transaction_marker(&mut self, producer_id: i64, commit: bool) {
        self.replay_offsets_end_transaction(producer_id, commit);
    }

    /// Called once after the partition's log has been replayed: loaded members get
    /// fresh session deadlines (they have until then to heartbeat to this broker).
    pub fn finish_load(&mut self, now_ms: i64) {
        self.classic_finish_load(now_ms);
        self.consumer_finish_load(now_ms);
    }

    /// When [`poll_timers`](Self::poll_timers) next has something to do.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.timers.next_deadline_ms()
    }

    /// Fires every timer due at `now_ms`.
    pub fn poll_timers(&mut self, now_ms: i64) -> Effects {
        let mut effects = Effects::default();
        for key in self.timers.take_expired(now_ms) {
            match key {
                TimerKey::ClassicJoin { .. }
                | TimerKey::ClassicSync { .. }
                | TimerKey::ClassicSession { .. }
                | TimerKey::ClassicPendingMember { .. } => self.classic_timer(key, now_ms, &mut effects),
                TimerKey::ConsumerSession { .. } | TimerKey::ConsumerRebalance { .. } => {
                    self.consumer_timer(key, now_ms, &mut effects)
                }
            }
        }
        effects
    }

    /// Replaces the settings (a dynamic broker config change); they apply to the next
    /// decision, existing deadlines are kept.
    pub fn set_config(&mut self, config: GroupConfig) {
        self.config = config;
    }

    pub fn group(&self, group_id: &str) -> Option<&Group> {
        self.groups.get(group_id)
    }

    /// The committed offsets and the pending offsets of open transactions.
    pub fn offsets(&self) -> &OffsetStore {
        &self.offsets
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }
}
