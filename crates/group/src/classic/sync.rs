//! SyncGroup (v0-5), after Kafka's `classicGroupSyncToClassicGroup`.

use super::group::{reply_sync, sync_error, ClassicGroup, ClassicGroupState, ParkedReply};
use super::rebalance::{group_metadata_record, Ops};
use crate::shard::{Effects, Group, GroupCoordinatorShard, RequestContext};
use bytes::Bytes;
use gregor_protocol::messages::sync_group_request::SyncGroupRequest;
use gregor_protocol::messages::sync_group_response::SyncGroupResponse;
use gregor_protocol::ErrorCode;
use std::collections::HashMap;

impl GroupCoordinatorShard {
    pub fn sync_group(&mut self, ctx: &RequestContext, request: SyncGroupRequest) -> Effects {
        let mut effects = Effects::default();
        let parked = ParkedReply { reply: ctx.reply, api_version: ctx.api_version };
        if request.group_id.is_empty() {
            reply_sync(&mut effects, parked, sync_error(ErrorCode::InvalidGroupId));
            return effects;
        }
        let group = match self.groups.get_mut(&request.group_id) {
            Some(Group::Classic(group)) if !group.members.is_empty() => group,
            // Unknown, empty, or a KIP-848 group (no classic members there).
            _ => {
                reply_sync(&mut effects, parked, sync_error(ErrorCode::UnknownMemberId));
                return effects;
            }
        };
        group.live = true;
        let mut ops = Ops {
            timers: &mut self.timers,
            config: &self.config,
            effects: &mut effects,
            now_ms: ctx.now_ms,
            partition: self.partition,
        };
        group.sync(request, parked, &mut ops);
        effects
    }
}

/// Kafka's `isProtocolInconsistent`: both given and different.
fn inconsistent(requested: Option<&str>, current: Option<&str>) -> bool {
    matches!((requested, current), (Some(requested), Some(current)) if requested != current)
}

impl ClassicGroup {
    fn validate_sync(&self, request: &SyncGroupRequest) -> Result<(), ErrorCode> {
        if self.state == ClassicGroupState::Dead {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        self.validate_member(&request.member_id, request.group_instance_id.as_deref())?;
        if request.generation_id != self.generation_id {
            return Err(ErrorCode::IllegalGeneration);
        }
        if inconsistent(request.protocol_type.as_deref(), self.protocol_type.as_deref())
            || inconsistent(request.protocol_name.as_deref(), self.protocol_name.as_deref())
        {
            return Err(ErrorCode::InconsistentGroupProtocol);
        }
        Ok(())
    }

    fn sync(&mut self, request: SyncGroupRequest, parked: ParkedReply, ops: &mut Ops) {
        if let Err(error) = self.validate_sync(&request) {
            reply_sync(ops.effects, parked, sync_error(error));
            return;
        }
        let member_id = request.member_id.clone();
        match self.state {
            ClassicGroupState::Empty | ClassicGroupState::Dead => {
                reply_sync(ops.effects, parked, sync_error(ErrorCode::UnknownMemberId))
            }
            ClassicGroupState::PreparingRebalance => {
                reply_sync(ops.effects, parked, sync_error(ErrorCode::RebalanceInProgress))
            }
            ClassicGroupState::CompletingRebalance => {
                if let Some(member) = self.member_mut(&member_id) {
                    if let Some(superseded) = member.awaiting_sync.replace(parked) {
                        reply_sync(ops.effects, superseded, sync_error(ErrorCode::RebalanceInProgress));
                    }
                }
                self.rebalance.pending_sync.remove(&member_id);
                if self.is_leader(&member_id) {
                    self.complete_sync(request, ops);
                }
            }
            ClassicGroupState::Stable => {
                self.rebalance.pending_sync.remove(&member_id);
                let assignment = self.member(&member_id).map(|member| member.assignment.clone()).unwrap_or_default();
                let response = SyncGroupResponse {
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    assignment,
                    ..Default::default()
                };
                reply_sync(ops.effects, parked, response);
            }
        }
    }

    /// The leader's assignment arrived: every member gets exactly the bytes the leader
    /// gave it (empty when omitted), the generation is written as a `GroupMetadata`
    /// record, and the parked SyncGroups are answered (after the record is durable,
    /// since the caller sends replies only after appending).
    fn complete_sync(&mut self, request: SyncGroupRequest, ops: &mut Ops) {
        let mut assignments: HashMap<String, Bytes> =
            request.assignments.into_iter().map(|assignment| (assignment.member_id, assignment.assignment)).collect();
        for member in &mut self.members {
            member.assignment = assignments.remove(&member.member_id).unwrap_or_default();
        }
        self.transition_to(ClassicGroupState::Stable, ops.now_ms);
        ops.effects.record(group_metadata_record(self));
        self.propagate_assignment(ErrorCode::None, ops);
    }
}
