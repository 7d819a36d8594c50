//! Classic groups (JoinGroup, SyncGroup, Heartbeat, LeaveGroup). STUB: replaced by the
//! real implementation before this crate is used.

use crate::shard::{Effects, GroupCoordinatorShard, RequestContext};
use crate::timer::TimerKey;
use gregor_protocol::messages::group_metadata_key::GroupMetadataKey;
use gregor_protocol::messages::group_metadata_value::GroupMetadataValue;
use gregor_protocol::messages::heartbeat_request::HeartbeatRequest;
use gregor_protocol::messages::join_group_request::JoinGroupRequest;
use gregor_protocol::messages::leave_group_request::LeaveGroupRequest;
use gregor_protocol::messages::sync_group_request::SyncGroupRequest;

#[derive(Debug, Default)]
pub struct ClassicGroup {}

impl GroupCoordinatorShard {
    pub fn join_group(&mut self, _ctx: &RequestContext, _request: JoinGroupRequest) -> Effects {
        todo!()
    }
    pub fn sync_group(&mut self, _ctx: &RequestContext, _request: SyncGroupRequest) -> Effects {
        todo!()
    }
    pub fn heartbeat(&mut self, _ctx: &RequestContext, _request: HeartbeatRequest) -> Effects {
        todo!()
    }
    pub fn leave_group(&mut self, _ctx: &RequestContext, _request: LeaveGroupRequest) -> Effects {
        todo!()
    }
    pub(crate) fn classic_timer(&mut self, _key: TimerKey, _now_ms: i64, _effects: &mut Effects) {
        todo!()
    }
    pub(crate) fn replay_group_metadata(&mut self, _key: GroupMetadataKey, _value: Option<GroupMetadataValue>) {
        todo!()
    }
    pub(crate) fn classic_finish_load(&mut self, _now_ms: i64) {}
}
