//! A member's next current assignment on its way to the target assignment (the
//! semantics of Kafka's CurrentAssignmentBuilder).
//!
//! - STABLE at an older epoch: compute the next assignment.
//! - UNREVOKED_PARTITIONS: wait until the member no longer reports any partition
//!   pending revocation among its owned partitions, then move to epoch + 1 and compute
//!   the next assignment.
//! - UNRELEASED_PARTITIONS: compute again; partitions freed by others are added.
//!
//! The next assignment keeps `current ∩ target`, asks the member to revoke
//! `current - target` (staying at its epoch) if it still owns any of them, and
//! otherwise moves it to the target epoch with the target partitions that nobody else
//! holds (the rest stay withheld: UNRELEASED_PARTITIONS).

use super::group::ConsumerMember;
use super::MemberState;
use crate::assignor::Assignment;
use gregor_protocol::Uuid;

/// What the member is still fenced for, when it must be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UnknownState;

pub(crate) struct Reconciler<'a> {
    pub member: &'a ConsumerMember,
    pub target_epoch: i32,
    pub target: &'a Assignment,
    /// The epoch of the member holding a partition, -1 when free.
    pub partition_epoch: &'a dyn Fn(Uuid, i32) -> i32,
    /// The partitions the member reported it owns (`None` when not sent).
    pub owned: Option<&'a [(Uuid, Vec<i32>)]>,
}

impl Reconciler<'_> {
    /// The member's next state, or `Err` when it must be fenced (UNKNOWN state and it
    /// still owns partitions).
    pub(crate) fn build(&self) -> Result<ConsumerMember, UnknownState> {
        let member = self.member;
        match member.state {
            MemberState::Stable => {
                if member.member_epoch != self.target_epoch {
                    Ok(self.next_assignment(member.member_epoch))
                } else {
                    Ok(member.clone())
                }
            }
            MemberState::UnrevokedPartitions => {
                if self.owns_any(&member.pending_revocation) {
                    Ok(member.clone())
                } else {
                    Ok(self.next_assignment(member.member_epoch + 1))
                }
            }
            MemberState::UnreleasedPartitions => Ok(self.next_assignment(member.member_epoch)),
            MemberState::Unknown => {
                if self.owned.is_none_or_nonempty() {
                    Err(UnknownState)
                } else {
                    Ok(self.next_assignment(self.target_epoch))
                }
            }
        }
    }

    /// Whether the member still reports one of `partitions` as owned. Without a report
    /// the coordinator cannot know, so it assumes so.
    fn owns_any(&self, partitions: &Assignment) -> bool {
        let Some(owned) = self.owned else { return true };
        owned.iter().any(|(topic, owned_partitions)| {
            partitions.get(topic).is_some_and(|pending| owned_partitions.iter().any(|p| pending.contains(p)))
        })
    }

    fn next_assignment(&self, member_epoch: i32) -> ConsumerMember {
        let member = self.member;
        let mut assigned = Assignment::new();
        let mut revoke = Assignment::new();
        let mut to_assign = Assignment::new();
        let mut unreleased = false;
        let topics: std::collections::BTreeSet<Uuid> =
            self.target.keys().chain(member.assigned.keys()).copied().collect();
        for topic in topics {
            let target = self.target.get(&topic).cloned().unwrap_or_default();
            let current = member.assigned.get(&topic).cloned().unwrap_or_default();
            let keep: std::collections::BTreeSet<i32> = current.intersection(&target).copied().collect();
            let pending_revocation: std::collections::BTreeSet<i32> = current.difference(&keep).copied().collect();
            let mut pending_assignment: std::collections::BTreeSet<i32> = target.difference(&keep).copied().collect();
            let before = pending_assignment.len();
            pending_assignment.retain(|partition| (self.partition_epoch)(topic, *partition) == -1);
            unreleased |= pending_assignment.len() != before;
            if !keep.is_empty() {
                assigned.insert(topic, keep);
            }
            if !pending_revocation.is_empty() {
                revoke.insert(topic, pending_revocation);
            }
            if !pending_assignment.is_empty() {
                to_assign.insert(topic, pending_assignment);
            }
        }

        let mut next = member.clone();
        if !revoke.is_empty() && self.owns_any(&revoke) {
            next.state = MemberState::UnrevokedPartitions;
            update_epoch(&mut next, member_epoch);
            next.assigned = assigned;
            next.pending_revocation = revoke;
        } else {
            for (topic, partitions) in to_assign {
                assigned.entry(topic).or_default().extend(partitions);
            }
            next.state = if unreleased { MemberState::UnreleasedPartitions } else { MemberState::Stable };
            update_epoch(&mut next, self.target_epoch);
            next.assigned = assigned;
            next.pending_revocation = Assignment::new();
        }
        next
    }
}

/// Kafka's `updateMemberEpoch`: the previous epoch becomes the current one.
fn update_epoch(member: &mut ConsumerMember, epoch: i32) {
    let current = member.member_epoch;
    member.member_epoch = epoch;
    member.previous_member_epoch = current;
}

trait OwnedExt {
    fn is_none_or_nonempty(&self) -> bool;
}

impl OwnedExt for Option<&[(Uuid, Vec<i32>)]> {
    fn is_none_or_nonempty(&self) -> bool {
        match self {
            None => true,
            Some(owned) => owned.iter().any(|(_, partitions)| !partitions.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: u128, partitions: &[i32]) -> Assignment {
        let mut a = Assignment::new();
        a.insert(Uuid::from_u128(topic), partitions.iter().copied().collect());
        a
    }

    fn member(epoch: i32, state: MemberState, assigned: Assignment, pending: Assignment) -> ConsumerMember {
        let mut m = ConsumerMember::new("m");
        m.member_epoch = epoch;
        m.previous_member_epoch = epoch - 1;
        m.state = state;
        m.assigned = assigned;
        m.pending_revocation = pending;
        m
    }

    #[test]
    fn stable_member_revokes_first() {
        let m = member(1, MemberState::Stable, tp(1, &[0, 1, 2]), Assignment::new());
        let target = tp(1, &[0, 1]);
        let owned = vec![(Uuid::from_u128(1), vec![0, 1, 2])];
        let free = |_: Uuid, _: i32| -1;
        let next =
            Reconciler { member: &m, target_epoch: 2, target: &target, partition_epoch: &free, owned: Some(&owned) }
                .build()
                .unwrap();
        assert_eq!(next.state, MemberState::UnrevokedPartitions);
        assert_eq!(next.member_epoch, 1);
        assert_eq!(next.assigned, tp(1, &[0, 1]));
        assert_eq!(next.pending_revocation, tp(1, &[2]));

        // Once the member stops reporting partition 2 it moves on to epoch 2.
        let owned = vec![(Uuid::from_u128(1), vec![0, 1])];
        let done =
            Reconciler { member: &next, target_epoch: 2, target: &target, partition_epoch: &free, owned: Some(&owned) }
                .build()
                .unwrap();
        assert_eq!(done.state, MemberState::Stable);
        assert_eq!((done.member_epoch, done.previous_member_epoch), (2, 1));
        assert!(done.pending_revocation.is_empty());
    }

    #[test]
    fn unreleased_partitions_are_withheld() {
        let m = member(1, MemberState::Stable, Assignment::new(), Assignment::new());
        let target = tp(1, &[0, 1]);
        let held = |_: Uuid, p: i32| if p == 1 { 1 } else { -1 };
        let next =
            Reconciler { member: &m, target_epoch: 2, target: &target, partition_epoch: &held, owned: Some(&[]) }
                .build()
                .unwrap();
        assert_eq!(next.state, MemberState::UnreleasedPartitions);
        assert_eq!(next.member_epoch, 2);
        assert_eq!(next.assigned, tp(1, &[0]));

        let free = |_: Uuid, _: i32| -1;
        let done =
            Reconciler { member: &next, target_epoch: 2, target: &target, partition_epoch: &free, owned: Some(&[]) }
                .build()
                .unwrap();
        assert_eq!(done.state, MemberState::Stable);
        assert_eq!(done.assigned, tp(1, &[0, 1]));
    }

    #[test]
    fn unknown_state_fences_a_member_with_partitions() {
        let m = member(1, MemberState::Unknown, tp(1, &[0]), Assignment::new());
        let target = tp(1, &[0]);
        let free = |_: Uuid, _: i32| -1;
        let owned = vec![(Uuid::from_u128(1), vec![0])];
        let r =
            Reconciler { member: &m, target_epoch: 2, target: &target, partition_epoch: &free, owned: Some(&owned) };
        assert_eq!(r.build(), Err(UnknownState));
    }
}
