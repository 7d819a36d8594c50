//! Classic groups (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), after Kafka's
//! `GroupMetadataManager` and `ClassicGroup`.
//!
//! As in Kafka, the transient state of a classic group (who waits in JoinGroup or
//! SyncGroup, pending member ids, session deadlines) and its rebalance state are
//! changed by the handlers directly; what must survive a restart is written as a
//! `GroupMetadata` record (the generation, its members and their assignments when the
//! leader syncs; an empty generation when the last member leaves). Replaying such a
//! record into the group that produced it changes nothing (Kafka does not replay
//! them either); replaying it while loading rebuilds the group: Stable with the
//! recorded members and assignments, or Empty.

mod group;
mod heartbeat;
mod join;
mod rebalance;
mod sync;

#[cfg(test)]
mod sim;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

pub use group::{ClassicGroup, ClassicGroupState, ClassicMember, ParkedReply, CONSUMER_PROTOCOL_TYPE};

use crate::shard::{Effects, Group, GroupCoordinatorShard};
use crate::timer::TimerKey;
use gregor_protocol::messages::group_metadata_key::GroupMetadataKey;
use gregor_protocol::messages::group_metadata_value::GroupMetadataValue;
use rebalance::Ops;

impl GroupCoordinatorShard {
    pub(crate) fn classic_timer(&mut self, key: TimerKey, now_ms: i64, effects: &mut Effects) {
        let Some(Group::Classic(group)) = self.groups.get_mut(key.group()) else { return };
        let mut ops =
            Ops { timers: &mut self.timers, config: &self.config, effects, now_ms, partition: self.partition };
        match &key {
            TimerKey::ClassicJoin { .. } => group.on_join_timer(&mut ops),
            TimerKey::ClassicSync { .. } => group.on_sync_timer(&mut ops),
            TimerKey::ClassicSession { member, .. } => group.on_session_expired(member, &mut ops),
            TimerKey::ClassicPendingMember { member, .. } => group.on_pending_member_expired(member, &mut ops),
            _ => {}
        }
    }

    pub(crate) fn replay_group_metadata(&mut self, key: GroupMetadataKey, value: Option<GroupMetadataValue>) {
        match value {
            None => {
                // A tombstone removes the classic group, unless members joined it
                // since the tombstone was decided (an empty group was expired or
                // deleted while a JoinGroup raced it).
                let remove = match self.groups.get(&key.group) {
                    Some(Group::Classic(group)) => !group.live || group.members.is_empty(),
                    _ => false,
                };
                if remove {
                    self.groups.remove(&key.group);
                    self.timers.cancel_group(&key.group);
                }
            }
            Some(value) => {
                if let Some(Group::Classic(group)) = self.groups.get(&key.group) {
                    if group.live {
                        return;
                    }
                }
                self.timers.cancel_group(&key.group);
                self.groups.insert(key.group.clone(), Group::Classic(ClassicGroup::from_record(&key.group, &value)));
            }
        }
    }

    pub(crate) fn classic_finish_load(&mut self, now_ms: i64) {
        for group in self.groups.values_mut() {
            let Group::Classic(group) = group else { continue };
            group.live = true;
            for member in &group.members {
                self.timers.schedule(
                    TimerKey::ClassicSession { group: group.group_id.clone(), member: member.member_id.clone() },
                    now_ms + member.session_timeout_ms as i64,
                );
            }
        }
    }
}
