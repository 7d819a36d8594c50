//! KIP-848 consumer groups: ConsumerGroupHeartbeat and ConsumerGroupDescribe.
//!
//! As in Kafka's GroupMetadataManager, handlers never change a group: they compute the
//! records that describe the change (member subscription, subscribed topic metadata,
//! group epoch, target assignment, each member's current assignment) and the answer;
//! the group changes when the records are replayed (`group.rs`). Timers (session and
//! rebalance deadlines) are in-memory and set by the handlers.
//!
//! - `group.rs`: the group state, record replay, queries for offsets/admin code.
//! - `heartbeat.rs`: ConsumerGroupHeartbeat (join, heartbeat, leave) and timers.
//! - `target.rs`: subscription metadata and the target assignment (assignor run).
//! - `reconcile.rs`: a member's next current assignment (Kafka's CurrentAssignmentBuilder).
//! - `describe.rs`: ConsumerGroupDescribe.
//! - `records.rs`: the records the handlers write.

mod describe;
mod group;
mod heartbeat;
mod reconcile;
pub(crate) mod records;
#[cfg(test)]
mod sim;
mod target;
#[cfg(test)]
mod tests;

pub use group::ConsumerGroup;

use crate::assignor::Assignment;
use gregor_protocol::Uuid;

/// The member epoch of a member leaving the group.
pub(crate) const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// The member epoch of a static member leaving temporarily (it may come back with the
/// same instance id within the session timeout and keep its partitions).
pub(crate) const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

/// A member's reconciliation state, stored as the `State` of
/// ConsumerGroupCurrentMemberAssignmentValue with Kafka's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberState {
    /// The member has its target assignment (or everything of it that is free).
    Stable,
    /// The member must revoke partitions before it gets its next epoch.
    UnrevokedPartitions,
    /// The member waits for partitions that others still have to release.
    UnreleasedPartitions,
    /// A state written by a newer coordinator.
    Unknown,
}

impl MemberState {
    pub(crate) fn value(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
            MemberState::Unknown => 127,
        }
    }

    pub(crate) fn from_i8(value: i8) -> MemberState {
        match value {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Unknown,
        }
    }
}

/// Builds an assignment from (topic id, partitions) pairs, dropping empty topics.
pub(crate) fn to_assignment(pairs: impl IntoIterator<Item = (Uuid, Vec<i32>)>) -> Assignment {
    let mut out = Assignment::new();
    for (topic, partitions) in pairs {
        if partitions.is_empty() {
            continue;
        }
        out.entry(topic).or_default().extend(partitions);
    }
    out
}
