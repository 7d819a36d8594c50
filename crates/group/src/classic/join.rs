//! JoinGroup (v0-9), after Kafka's `classicGroupJoinToClassicGroup`.

use super::group::NEW_MEMBER_JOIN_TIMEOUT_MS;
use super::group::{join_error, reply_join, ClassicGroup, ClassicGroupState, ClassicMember, ParkedReply};
use super::rebalance::{group_metadata_record, Ops};
use crate::record::CoordinatorRecord;
use crate::shard::{Effects, Group, GroupCoordinatorShard, RequestContext};
use bytes::Bytes;
use gregor_protocol::messages::group_metadata_key::GroupMetadataKey;
use gregor_protocol::messages::join_group_request::JoinGroupRequest;
use gregor_protocol::messages::join_group_response::JoinGroupResponse;
use gregor_protocol::ErrorCode;

/// The parts of a JoinGroup request the group keeps.
struct JoinRequest<'a> {
    client_id: &'a str,
    client_host: &'a str,
    api_version: i16,
    member_id: String,
    instance_id: Option<String>,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    parked: ParkedReply,
}

impl GroupCoordinatorShard {
    pub fn join_group(&mut self, ctx: &RequestContext, request: JoinGroupRequest) -> Effects {
        let mut effects = Effects::default();
        let parked = ParkedReply { reply: ctx.reply, api_version: ctx.api_version };
        if request.group_id.is_empty() {
            reply_join(&mut effects, parked, join_error(ErrorCode::InvalidGroupId, &request.member_id));
            return effects;
        }
        if request.session_timeout_ms < self.config.min_session_timeout_ms
            || request.session_timeout_ms > self.config.max_session_timeout_ms
        {
            reply_join(&mut effects, parked, join_error(ErrorCode::InvalidSessionTimeout, &request.member_id));
            return effects;
        }
        if let Some(Group::Consumer(group)) = self.groups.get(&request.group_id) {
            if !group.is_empty() {
                // Classic members do not join a live KIP-848 group (no online migration).
                reply_join(&mut effects, parked, join_error(ErrorCode::InconsistentGroupProtocol, ""));
                return effects;
            }
            // An empty consumer group becomes a classic one, as Kafka converts it: its
            // records are tombstoned (their replay finds a classic group and leaves it
            // alone) and the join goes on as the first join of a new group. Committed
            // offsets belong to the group id and stay.
            effects.records.extend(group.tombstone_records());
            self.groups.remove(&request.group_id);
            self.timers.cancel_group(&request.group_id);
        }
        let is_unknown_member = request.member_id.is_empty();
        let is_new_group = !self.groups.contains_key(&request.group_id);
        if is_new_group {
            if !is_unknown_member {
                reply_join(&mut effects, parked, join_error(ErrorCode::UnknownMemberId, &request.member_id));
                return effects;
            }
            self.groups
                .insert(request.group_id.clone(), Group::Classic(ClassicGroup::new(&request.group_id, ctx.now_ms)));
        }
        let Some(Group::Classic(group)) = self.groups.get_mut(&request.group_id) else { return effects };
        group.live = true;
        let join = JoinRequest {
            client_id: &ctx.client_id,
            client_host: &ctx.client_host,
            api_version: ctx.api_version,
            member_id: request.member_id,
            instance_id: request.group_instance_id,
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: if ctx.api_version == 0 {
                request.session_timeout_ms
            } else {
                request.rebalance_timeout_ms
            },
            protocol_type: request.protocol_type,
            protocols: request.protocols.into_iter().map(|protocol| (protocol.name, protocol.metadata)).collect(),
            parked,
        };
        let mut ops = Ops {
            timers: &mut self.timers,
            config: &self.config,
            effects: &mut effects,
            now_ms: ctx.now_ms,
            partition: self.partition,
        };
        group.join(join, &mut ops);
        if is_new_group && effects.records.is_empty() {
            // Kafka commits a new group with an empty GroupMetadata record.
            let mut value = group.metadata_value();
            value.members.clear();
            value.generation = 0;
            value.protocol = None;
            value.leader = None;
            effects.record(CoordinatorRecord::GroupMetadata {
                key: GroupMetadataKey { group: group.group_id.clone(), ..Default::default() },
                value: Some(value),
            });
        }
        effects
    }
}

impl ClassicGroup {
    fn join(&mut self, request: JoinRequest, ops: &mut Ops) {
        if !self.accept_joining_member(&request.member_id, ops.config.max_size) {
            let member_id = request.member_id.clone();
            if !member_id.is_empty() {
                self.drop_member(&member_id, ops);
            }
            reply_join(ops.effects, request.parked, join_error(ErrorCode::GroupMaxSizeReached, ""));
        } else if request.member_id.is_empty() {
            self.join_new_member(request, ops);
        } else {
            self.join_existing_member(request, ops);
        }
    }

    /// Kafka's `acceptJoiningMember` (group.max.size).
    fn accept_joining_member(&self, member_id: &str, max_size: i32) -> bool {
        let max_size = max_size.max(0) as usize;
        match self.state {
            ClassicGroupState::Empty | ClassicGroupState::Dead => true,
            ClassicGroupState::PreparingRebalance => {
                self.member(member_id).is_some_and(ClassicMember::is_awaiting_join)
                    || self.num_awaiting_join() < max_size
            }
            ClassicGroupState::CompletingRebalance | ClassicGroupState::Stable => {
                self.has_member(member_id) || self.members.len() < max_size
            }
        }
    }

    fn join_new_member(&mut self, request: JoinRequest, ops: &mut Ops) {
        if !self.supports_protocols(&request.protocol_type, &request.protocols) {
            reply_join(ops.effects, request.parked, join_error(ErrorCode::InconsistentGroupProtocol, ""));
            return;
        }
        let prefix = request.instance_id.clone().unwrap_or_else(|| request.client_id.to_string());
        let new_member_id = self.generate_member_id(&prefix, ops.partition, ops.now_ms);
        match request.instance_id.clone() {
            Some(instance_id) => match self.static_member_id(&instance_id).map(str::to_string) {
                Some(old_member_id) => self.update_static_member(request, &old_member_id, &new_member_id, ops),
                None => self.add_member_then_rebalance(request, new_member_id, ops),
            },
            None if request.api_version >= 4 => {
                // KIP-394: the member must come back with the id it is given.
                self.rebalance.pending_members.insert(new_member_id.clone());
                ops.timers
                    .schedule(Ops::pending_key(self, &new_member_id), ops.now_ms + request.session_timeout_ms as i64);
                reply_join(ops.effects, request.parked, join_error(ErrorCode::MemberIdRequired, &new_member_id));
            }
            None => self.add_member_then_rebalance(request, new_member_id, ops),
        }
    }

    fn join_existing_member(&mut self, request: JoinRequest, ops: &mut Ops) {
        let member_id = request.member_id.clone();
        if !self.supports_protocols(&request.protocol_type, &request.protocols) {
            reply_join(ops.effects, request.parked, join_error(ErrorCode::InconsistentGroupProtocol, &member_id));
            return;
        }
        if self.is_pending_member(&member_id) {
            if request.instance_id.is_some() {
                // Pending ids are only handed to dynamic members.
                reply_join(ops.effects, request.parked, join_error(ErrorCode::UnknownServerError, &member_id));
                return;
            }
            self.add_member_then_rebalance(request, member_id, ops);
            return;
        }
        if let Err(error) = self.validate_member(&member_id, request.instance_id.as_deref()) {
            let mut response = join_error(error, &member_id);
            response.protocol_name = None;
            reply_join(ops.effects, request.parked, response);
            return;
        }
        let matches = self.member(&member_id).is_some_and(|member| member.matches(&request.protocols));
        match self.state {
            ClassicGroupState::PreparingRebalance => self.update_member_then_rebalance(request, ops),
            ClassicGroupState::CompletingRebalance if matches => {
                // The member lost our answer: send the current generation again.
                let response = self.current_join_response(&member_id, self.is_leader(&member_id));
                reply_join(ops.effects, request.parked, response);
            }
            ClassicGroupState::CompletingRebalance => self.update_member_then_rebalance(request, ops),
            ClassicGroupState::Stable if self.is_leader(&member_id) || !matches => {
                // A leader's JoinGroup always rebalances (metadata changes it saw).
                self.update_member_then_rebalance(request, ops)
            }
            ClassicGroupState::Stable => {
                let response = self.current_join_response(&member_id, false);
                reply_join(ops.effects, request.parked, response);
            }
            ClassicGroupState::Empty | ClassicGroupState::Dead => {
                reply_join(ops.effects, request.parked, join_error(ErrorCode::UnknownMemberId, &member_id));
            }
        }
    }

    fn current_join_response(&self, member_id: &str, with_members: bool) -> JoinGroupResponse {
        JoinGroupResponse {
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if with_members { self.join_members() } else { Vec::new() },
            ..Default::default()
        }
    }

    /// Kafka's `addMemberThenRebalanceOrCompleteJoin`.
    fn add_member_then_rebalance(&mut self, request: JoinRequest, member_id: String, ops: &mut Ops) {
        let member = ClassicMember {
            member_id: member_id.clone(),
            group_instance_id: request.instance_id,
            client_id: request.client_id.to_string(),
            client_host: request.client_host.to_string(),
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            session_timeout_ms: request.session_timeout_ms,
            protocol_type: request.protocol_type,
            protocols: request.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(request.parked),
            awaiting_sync: None,
            is_new: true,
        };
        if self.state == ClassicGroupState::PreparingRebalance && self.previous_state == ClassicGroupState::Empty {
            self.rebalance.new_member_added = true;
        }
        self.add_member(member);
        ops.timers.cancel(&Ops::pending_key(self, &member_id));
        // A new member cannot heartbeat while parked; its join times out instead.
        self.reschedule_session(&member_id, Some(NEW_MEMBER_JOIN_TIMEOUT_MS), ops);
        self.maybe_prepare_rebalance_or_complete_join(ops);
    }

    /// Kafka's `updateMemberThenRebalanceOrCompleteJoin`.
    fn update_member_then_rebalance(&mut self, request: JoinRequest, ops: &mut Ops) {
        let Some(member) = self.member_mut(&request.member_id) else { return };
        member.protocols = request.protocols;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.session_timeout_ms = request.session_timeout_ms;
        let superseded = member.awaiting_join.replace(request.parked);
        ClassicGroup::answer_superseded_join(superseded, ops);
        self.maybe_prepare_rebalance_or_complete_join(ops);
    }

    /// Kafka's `updateStaticMemberThenRebalanceOrCompleteJoin`: a known instance id
    /// joins with an unknown member id (a restarted static member). It takes over the
    /// old member's place under a new id; the old id is fenced. A stable group does not
    /// rebalance unless the selected protocol would change.
    fn update_static_member(&mut self, request: JoinRequest, old_member_id: &str, new_member_id: &str, ops: &mut Ops) {
        let current_leader = self.leader_id.clone().unwrap_or_default();
        self.replace_static_member(old_member_id, new_member_id, ops);
        self.reschedule_session(new_member_id, None, ops);
        let Some(member) = self.member_mut(new_member_id) else { return };
        member.protocols = request.protocols;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.session_timeout_ms = request.session_timeout_ms;
        member.awaiting_join = Some(request.parked);

        match self.state {
            ClassicGroupState::Stable => {
                if self.protocol_name == self.select_protocol() {
                    // Persist the new member id; the answer is sent once it is durable.
                    ops.effects.record(group_metadata_record(self));
                    let is_leader = self.is_leader(new_member_id);
                    let skip_assignment = is_leader && request.api_version >= 9;
                    let mut response = self.current_join_response(new_member_id, skip_assignment);
                    response.leader = current_leader;
                    response.skip_assignment = skip_assignment;
                    if let Some(parked) = self.member_mut(new_member_id).and_then(|member| member.awaiting_join.take())
                    {
                        reply_join(ops.effects, parked, response);
                    }
                } else {
                    self.maybe_prepare_rebalance_or_complete_join(ops);
                }
            }
            // The leader may already have computed an assignment for the old id.
            ClassicGroupState::CompletingRebalance => self.prepare_rebalance(ops),
            _ => self.maybe_prepare_rebalance_or_complete_join(ops),
        }
    }

    /// Kafka's `replaceStaticMember`: the old member's parked requests are answered
    /// with FENCED_INSTANCE_ID and its place (assignment, leadership) moves to the new
    /// member id.
    fn replace_static_member(&mut self, old_member_id: &str, new_member_id: &str, ops: &mut Ops) {
        let Some(member) = self.member_mut(old_member_id) else { return };
        let parked_join = member.awaiting_join.take();
        let parked_sync = member.awaiting_sync.take();
        member.member_id = new_member_id.to_string();
        member.is_new = false;
        if let Some(parked) = parked_join {
            let mut response = join_error(ErrorCode::FencedInstanceId, old_member_id);
            response.protocol_name = None;
            reply_join(ops.effects, parked, response);
        }
        if let Some(parked) = parked_sync {
            super::group::reply_sync(ops.effects, parked, super::group::sync_error(ErrorCode::FencedInstanceId));
        }
        if self.is_leader(old_member_id) {
            self.leader_id = Some(new_member_id.to_string());
        }
        if self.rebalance.pending_sync.remove(old_member_id) {
            self.rebalance.pending_sync.insert(new_member_id.to_string());
        }
        ops.timers.cancel(&Ops::session_key(self, old_member_id));
    }
}
