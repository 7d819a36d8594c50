//! Heartbeat (v0-4) and LeaveGroup (v0-5).

use super::group::{ClassicGroup, ClassicGroupState};
use super::rebalance::Ops;
use crate::shard::{Effects, Group, GroupCoordinatorShard, RequestContext};
use gregor_protocol::messages::heartbeat_request::HeartbeatRequest;
use gregor_protocol::messages::heartbeat_response::HeartbeatResponse;
use gregor_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use gregor_protocol::messages::leave_group_response::{LeaveGroupResponse, MemberResponse};
use gregor_protocol::ErrorCode;

fn heartbeat_response(error: ErrorCode) -> HeartbeatResponse {
    HeartbeatResponse { error_code: error.code(), ..Default::default() }
}

impl GroupCoordinatorShard {
    pub fn heartbeat(&mut self, ctx: &RequestContext, request: HeartbeatRequest) -> Effects {
        let mut effects = Effects::default();
        if request.group_id.is_empty() {
            effects.reply(ctx.reply, heartbeat_response(ErrorCode::InvalidGroupId));
            return effects;
        }
        let Some(Group::Classic(group)) = self.groups.get_mut(&request.group_id) else {
            effects.reply(ctx.reply, heartbeat_response(ErrorCode::UnknownMemberId));
            return effects;
        };
        let mut ops = Ops {
            timers: &mut self.timers,
            config: &self.config,
            effects: &mut effects,
            now_ms: ctx.now_ms,
            partition: self.partition,
        };
        let error = group.heartbeat(&request, &mut ops);
        effects.reply(ctx.reply, heartbeat_response(error));
        effects
    }

    pub fn leave_group(&mut self, ctx: &RequestContext, request: LeaveGroupRequest) -> Effects {
        let mut effects = Effects::default();
        let version = ctx.api_version;
        let respond = |effects: &mut Effects, top_level: ErrorCode, members: Vec<MemberResponse>| {
            let response = if version <= 2 {
                // One member, whose error is the answer's.
                let member_error = members
                    .iter()
                    .map(|member| member.error_code)
                    .find(|code| *code != ErrorCode::None.code())
                    .unwrap_or(ErrorCode::None.code());
                let error_code = if top_level.is_none() { member_error } else { top_level.code() };
                LeaveGroupResponse { error_code, ..Default::default() }
            } else {
                LeaveGroupResponse { error_code: top_level.code(), members, ..Default::default() }
            };
            effects.reply(ctx.reply, response);
        };
        if request.group_id.is_empty() {
            respond(&mut effects, ErrorCode::InvalidGroupId, Vec::new());
            return effects;
        }
        let identities = if version <= 2 {
            vec![MemberIdentity { member_id: request.member_id.clone(), ..Default::default() }]
        } else {
            request.members
        };
        let Some(Group::Classic(group)) = self.groups.get_mut(&request.group_id) else {
            respond(&mut effects, ErrorCode::UnknownMemberId, Vec::new());
            return effects;
        };
        group.live = true;
        let mut ops = Ops {
            timers: &mut self.timers,
            config: &self.config,
            effects: &mut effects,
            now_ms: ctx.now_ms,
            partition: self.partition,
        };
        let members = group.leave(identities, &mut ops);
        respond(&mut effects, ErrorCode::None, members);
        effects
    }
}

impl ClassicGroup {
    fn heartbeat(&mut self, request: &HeartbeatRequest, ops: &mut Ops) -> ErrorCode {
        if self.state == ClassicGroupState::Dead {
            return ErrorCode::CoordinatorNotAvailable;
        }
        if let Err(error) = self.validate_member(&request.member_id, request.group_instance_id.as_deref()) {
            return error;
        }
        if request.generation_id != self.generation_id {
            return ErrorCode::IllegalGeneration;
        }
        match self.state {
            ClassicGroupState::Empty | ClassicGroupState::Dead => ErrorCode::UnknownMemberId,
            ClassicGroupState::PreparingRebalance => {
                self.reschedule_session(&request.member_id, None, ops);
                ErrorCode::RebalanceInProgress
            }
            ClassicGroupState::CompletingRebalance | ClassicGroupState::Stable => {
                self.reschedule_session(&request.member_id, None, ops);
                ErrorCode::None
            }
        }
    }

    /// Kafka's `classicGroupLeaveToClassicGroup`: each identity is a member id, or an
    /// instance id alone (administrative removal of a static member).
    fn leave(&mut self, identities: Vec<MemberIdentity>, ops: &mut Ops) -> Vec<MemberResponse> {
        let mut responses = Vec::with_capacity(identities.len());
        let mut leaving: Vec<String> = Vec::new();
        let mut removed_pending = false;
        for identity in identities {
            let mut response = MemberResponse {
                member_id: identity.member_id.clone(),
                group_instance_id: identity.group_instance_id.clone(),
                ..Default::default()
            };
            if identity.member_id.is_empty() {
                match identity.group_instance_id.as_deref().and_then(|instance| self.static_member_id(instance)) {
                    Some(member_id) => leaving.push(member_id.to_string()),
                    None => response.error_code = ErrorCode::UnknownMemberId.code(),
                }
            } else if self.is_pending_member(&identity.member_id) {
                self.drop_member(&identity.member_id, ops);
                removed_pending = true;
            } else {
                match self.validate_member(&identity.member_id, identity.group_instance_id.as_deref()) {
                    Ok(()) => leaving.push(identity.member_id.clone()),
                    Err(error) => response.error_code = error.code(),
                }
            }
            responses.push(response);
        }
        for member_id in &leaving {
            self.drop_member(member_id, ops);
        }
        if !leaving.is_empty() {
            self.update_after_removal(ops);
        } else if removed_pending
            && self.state == ClassicGroupState::PreparingRebalance
            && self.has_all_members_joined()
        {
            self.complete_join(ops);
        }
        responses
    }
}
