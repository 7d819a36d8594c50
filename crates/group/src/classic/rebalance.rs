//! The rebalance state machine of a classic group (Kafka's `prepareRebalance`,
//! `completeClassicGroupJoin`, `expirePendingSync`, member removal), shared by the
//! request handlers and the timers.

use super::group::{join_error, reply_join, reply_sync, sync_error, ClassicGroup, ClassicGroupState, ParkedReply};
use crate::config::GroupConfig;
use crate::record::CoordinatorRecord;
use crate::shard::Effects;
use crate::timer::{TimerKey, Timers};
use bytes::Bytes;
use gregor_protocol::messages::group_metadata_key::GroupMetadataKey;
use gregor_protocol::messages::join_group_response::JoinGroupResponse;
use gregor_protocol::messages::sync_group_response::SyncGroupResponse;
use gregor_protocol::ErrorCode;

/// What a group operation may touch besides the group: timers, settings, the
/// effects being built, and the time.
pub(crate) struct Ops<'a> {
    pub timers: &'a mut Timers,
    pub config: &'a GroupConfig,
    pub effects: &'a mut Effects,
    pub now_ms: i64,
    pub partition: i32,
}

impl Ops<'_> {
    pub(crate) fn join_key(group: &ClassicGroup) -> TimerKey {
        TimerKey::ClassicJoin { group: group.group_id.clone() }
    }

    pub(crate) fn sync_key(group: &ClassicGroup) -> TimerKey {
        TimerKey::ClassicSync { group: group.group_id.clone() }
    }

    pub(crate) fn session_key(group: &ClassicGroup, member_id: &str) -> TimerKey {
        TimerKey::ClassicSession { group: group.group_id.clone(), member: member_id.to_string() }
    }

    pub(crate) fn pending_key(group: &ClassicGroup, member_id: &str) -> TimerKey {
        TimerKey::ClassicPendingMember { group: group.group_id.clone(), member: member_id.to_string() }
    }
}

/// A `GroupMetadata` record of the group as it is now.
pub(crate) fn group_metadata_record(group: &ClassicGroup) -> CoordinatorRecord {
    CoordinatorRecord::GroupMetadata {
        key: GroupMetadataKey { group: group.group_id.clone(), ..Default::default() },
        value: Some(group.metadata_value()),
    }
}

impl ClassicGroup {
    /// Restarts the member's session deadline (`session timeout` from now, or
    /// `timeout_ms` when given).
    pub(crate) fn reschedule_session(&self, member_id: &str, timeout_ms: Option<i64>, ops: &mut Ops) {
        let Some(member) = self.member(member_id) else { return };
        let timeout = timeout_ms.unwrap_or(member.session_timeout_ms as i64);
        ops.timers.schedule(Ops::session_key(self, member_id), ops.now_ms + timeout);
    }

    /// Removes a member and its timers, answering its parked requests (Kafka answers
    /// a parked JoinGroup with UNKNOWN_MEMBER_ID so that a live client rejoins).
    pub(crate) fn drop_member(&mut self, member_id: &str, ops: &mut Ops) {
        if let Some(mut member) = self.remove_member(member_id) {
            if let Some(parked) = member.awaiting_join.take() {
                reply_join(ops.effects, parked, join_error(ErrorCode::UnknownMemberId, ""));
            }
            if let Some(parked) = member.awaiting_sync.take() {
                reply_sync(ops.effects, parked, sync_error(ErrorCode::UnknownMemberId));
            }
        }
        ops.timers.cancel(&Ops::session_key(self, member_id));
        ops.timers.cancel(&Ops::pending_key(self, member_id));
    }

    /// Kafka's `maybePrepareRebalanceOrCompleteJoin`.
    pub(crate) fn maybe_prepare_rebalance_or_complete_join(&mut self, ops: &mut Ops) {
        if self.can_rebalance() {
            self.prepare_rebalance(ops);
        } else {
            self.maybe_complete_join_phase(ops);
        }
    }

    /// Kafka's `prepareRebalance`: members waiting in SyncGroup are told to rejoin;
    /// an empty group waits `initial_rebalance_delay_ms` for more members first.
    pub(crate) fn prepare_rebalance(&mut self, ops: &mut Ops) {
        if self.state == ClassicGroupState::CompletingRebalance {
            self.reset_and_propagate_assignment_with_error(ErrorCode::RebalanceInProgress, ops);
        }
        ops.timers.cancel(&Ops::sync_key(self));
        let initial = self.state == ClassicGroupState::Empty;
        if initial {
            let delay = ops.config.initial_rebalance_delay_ms.max(0);
            let remaining = (self.rebalance_timeout_ms() - delay).max(0);
            self.rebalance.initial_delay = Some((delay, remaining));
            self.rebalance.new_member_added = false;
            ops.timers.schedule(Ops::join_key(self), ops.now_ms + delay);
        }
        self.transition_to(ClassicGroupState::PreparingRebalance, ops.now_ms);
        if !initial {
            self.maybe_complete_join_else_schedule(ops);
        }
    }

    fn maybe_complete_join_else_schedule(&mut self, ops: &mut Ops) {
        if self.has_all_members_joined() {
            self.complete_join(ops);
        } else {
            self.rebalance.initial_delay = None;
            ops.timers.schedule(Ops::join_key(self), ops.now_ms + self.rebalance_timeout_ms());
        }
    }

    /// Kafka's `maybeCompleteJoinPhase`: everyone is back (and the initial delay is not
    /// running), so the join phase ends now.
    pub(crate) fn maybe_complete_join_phase(&mut self, ops: &mut Ops) {
        if self.state == ClassicGroupState::PreparingRebalance
            && self.has_all_members_joined()
            && self.previous_state != ClassicGroupState::Empty
        {
            self.complete_join(ops);
        }
    }

    /// The join timer fired: the initial delay is extended while members keep
    /// arriving (Kafka's `tryCompleteInitialRebalanceElseSchedule`), otherwise the join
    /// phase ends.
    pub(crate) fn on_join_timer(&mut self, ops: &mut Ops) {
        if self.state != ClassicGroupState::PreparingRebalance {
            return;
        }
        if let Some((delay, remaining)) = self.rebalance.initial_delay {
            if self.rebalance.new_member_added && remaining != 0 {
                self.rebalance.new_member_added = false;
                let next_delay = ops.config.initial_rebalance_delay_ms.max(0).min(remaining);
                let next_remaining = (remaining - delay).max(0);
                self.rebalance.initial_delay = Some((next_delay, next_remaining));
                ops.timers.schedule(Ops::join_key(self), ops.now_ms + next_delay);
                return;
            }
        }
        self.complete_join(ops);
    }

    /// Kafka's `completeClassicGroupJoin`: dynamic members that did not rejoin are
    /// removed, the next generation starts, and every waiting member gets its
    /// JoinGroup answer (the leader with the member list).
    pub(crate) fn complete_join(&mut self, ops: &mut Ops) {
        ops.timers.cancel(&Ops::join_key(self));
        self.rebalance.initial_delay = None;
        let not_rejoined: Vec<String> = self
            .members
            .iter()
            .filter(|member| !member.is_awaiting_join() && !member.is_static())
            .map(|member| member.member_id.clone())
            .collect();
        for member_id in not_rejoined {
            self.drop_member(&member_id, ops);
        }

        if !self.maybe_elect_new_joined_leader() && !self.members.is_empty() {
            // Nobody rejoined (only static members that did not come back are left):
            // wait another rebalance timeout for their sessions to expire.
            ops.timers.schedule(Ops::join_key(self), ops.now_ms + self.rebalance_timeout_ms());
            return;
        }

        self.init_next_generation(ops.now_ms);
        if self.state == ClassicGroupState::Empty {
            ops.effects.record(group_metadata_record(self));
            return;
        }
        let leader_members = self.join_members();
        let member_ids: Vec<String> = self.members.iter().map(|member| member.member_id.clone()).collect();
        for member_id in member_ids {
            let is_leader = self.is_leader(&member_id);
            let response = JoinGroupResponse {
                generation_id: self.generation_id,
                protocol_type: self.protocol_type.clone(),
                protocol_name: self.protocol_name.clone(),
                leader: self.leader_id.clone().unwrap_or_default(),
                member_id: member_id.clone(),
                members: if is_leader { leader_members.clone() } else { Vec::new() },
                ..Default::default()
            };
            if let Some(member) = self.member_mut(&member_id) {
                member.is_new = false;
                if let Some(parked) = member.awaiting_join.take() {
                    reply_join(ops.effects, parked, response);
                }
            }
            self.reschedule_session(&member_id, None, ops);
            self.rebalance.pending_sync.insert(member_id);
        }
        self.rebalance.sync_generation = self.generation_id;
        ops.timers.schedule(Ops::sync_key(self), ops.now_ms + self.rebalance_timeout_ms());
    }

    /// Kafka's `maybeElectNewJoinedLeader`.
    fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.clone() else { return false };
        if self.member(&leader).is_some_and(|member| member.is_awaiting_join()) {
            return true;
        }
        match self.members.iter().find(|member| member.is_awaiting_join()) {
            Some(member) => {
                self.leader_id = Some(member.member_id.clone());
                true
            }
            None => false,
        }
    }

    /// Kafka's `initNextGeneration`.
    fn init_next_generation(&mut self, now_ms: i64) {
        self.generation_id += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.transition_to(ClassicGroupState::Empty, now_ms);
        } else {
            self.protocol_name = self.select_protocol();
            self.transition_to(ClassicGroupState::CompletingRebalance, now_ms);
        }
        self.rebalance.pending_sync.clear();
    }

    /// Answers every member parked in SyncGroup with its assignment (or the error).
    pub(crate) fn propagate_assignment(&mut self, error: ErrorCode, ops: &mut Ops) {
        let (protocol_type, protocol_name) =
            if error.is_none() { (self.protocol_type.clone(), self.protocol_name.clone()) } else { (None, None) };
        let mut answered = Vec::new();
        for member in &mut self.members {
            if let Some(parked) = member.awaiting_sync.take() {
                let response = SyncGroupResponse {
                    error_code: error.code(),
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol_name.clone(),
                    assignment: member.assignment.clone(),
                    ..Default::default()
                };
                reply_sync(ops.effects, parked, response);
                answered.push(member.member_id.clone());
            }
        }
        for member_id in answered {
            self.reschedule_session(&member_id, None, ops);
        }
    }

    fn reset_and_propagate_assignment_with_error(&mut self, error: ErrorCode, ops: &mut Ops) {
        for member in &mut self.members {
            member.assignment = Bytes::new();
        }
        self.propagate_assignment(error, ops);
    }

    /// Kafka's `removeMemberAndUpdateClassicGroup`: after a member left or expired.
    pub(crate) fn remove_member_and_update(&mut self, member_id: &str, ops: &mut Ops) {
        self.drop_member(member_id, ops);
        self.update_after_removal(ops);
    }

    pub(crate) fn update_after_removal(&mut self, ops: &mut Ops) {
        match self.state {
            ClassicGroupState::Stable | ClassicGroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance_or_complete_join(ops)
            }
            ClassicGroupState::PreparingRebalance if self.has_all_members_joined() => self.complete_join(ops),
            _ => {}
        }
    }

    /// A member's session deadline passed (Kafka's `expireClassicGroupMemberHeartbeat`).
    pub(crate) fn on_session_expired(&mut self, member_id: &str, ops: &mut Ops) {
        if self.rebalance.pending_members.contains(member_id) {
            self.on_pending_member_expired(member_id, ops);
            return;
        }
        let Some(member) = self.member(member_id) else { return };
        if !member.has_satisfied_heartbeat() {
            self.remove_member_and_update(member_id, ops);
        }
    }

    /// A member id handed out with MEMBER_ID_REQUIRED was never used.
    pub(crate) fn on_pending_member_expired(&mut self, member_id: &str, ops: &mut Ops) {
        if !self.rebalance.pending_members.remove(member_id) {
            return;
        }
        if self.state == ClassicGroupState::PreparingRebalance && self.has_all_members_joined() {
            self.complete_join(ops);
        }
    }

    /// The leader (or a follower) did not sync within the rebalance timeout after the
    /// join phase (Kafka's `expirePendingSync`): the members that did not sync are
    /// removed and the group rebalances.
    pub(crate) fn on_sync_timer(&mut self, ops: &mut Ops) {
        if self.rebalance.sync_generation != self.generation_id {
            return;
        }
        if !matches!(self.state, ClassicGroupState::CompletingRebalance | ClassicGroupState::Stable) {
            return;
        }
        if self.rebalance.pending_sync.is_empty() {
            return;
        }
        let pending: Vec<String> = self.rebalance.pending_sync.iter().cloned().collect();
        for member_id in pending {
            self.drop_member(&member_id, ops);
        }
        self.prepare_rebalance(ops);
    }

    /// Answers a parked request that a newer one of the same member replaces (the
    /// client gave up on it; Kafka drops it, we answer so nothing stays parked).
    pub(crate) fn answer_superseded_join(parked: Option<ParkedReply>, ops: &mut Ops) {
        if let Some(parked) = parked {
            reply_join(ops.effects, parked, join_error(ErrorCode::RebalanceInProgress, ""));
        }
    }
}
