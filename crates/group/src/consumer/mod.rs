//! KIP-848 consumer groups. STUB: replaced by the real implementation.

use crate::shard::{Effects, GroupCoordinatorShard, RequestContext, TopicsView};
use crate::timer::TimerKey;
use gregor_protocol::messages::consumer_group_current_member_assignment_key::ConsumerGroupCurrentMemberAssignmentKey;
use gregor_protocol::messages::consumer_group_current_member_assignment_value::ConsumerGroupCurrentMemberAssignmentValue;
use gregor_protocol::messages::consumer_group_describe_response::DescribedGroup;
use gregor_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use gregor_protocol::messages::consumer_group_member_metadata_key::ConsumerGroupMemberMetadataKey;
use gregor_protocol::messages::consumer_group_member_metadata_value::ConsumerGroupMemberMetadataValue;
use gregor_protocol::messages::consumer_group_metadata_key::ConsumerGroupMetadataKey;
use gregor_protocol::messages::consumer_group_metadata_value::ConsumerGroupMetadataValue;
use gregor_protocol::messages::consumer_group_partition_metadata_key::ConsumerGroupPartitionMetadataKey;
use gregor_protocol::messages::consumer_group_partition_metadata_value::ConsumerGroupPartitionMetadataValue;
use gregor_protocol::messages::consumer_group_target_assignment_member_key::ConsumerGroupTargetAssignmentMemberKey;
use gregor_protocol::messages::consumer_group_target_assignment_member_value::ConsumerGroupTargetAssignmentMemberValue;
use gregor_protocol::messages::consumer_group_target_assignment_metadata_key::ConsumerGroupTargetAssignmentMetadataKey;
use gregor_protocol::messages::consumer_group_target_assignment_metadata_value::ConsumerGroupTargetAssignmentMetadataValue;
use gregor_protocol::ErrorCode;

#[derive(Debug, Default)]
pub struct ConsumerGroup {}

impl ConsumerGroup {
    pub(crate) fn validate_offset_commit(
        &self,
        _member_id: &str,
        _member_epoch: i32,
        _api_version: i16,
    ) -> Result<(), ErrorCode> {
        todo!()
    }
    pub(crate) fn validate_offset_fetch(&self, _member_id: &str, _member_epoch: i32) -> Result<(), ErrorCode> {
        todo!()
    }
    pub(crate) fn state_name(&self) -> &'static str {
        todo!()
    }
    pub(crate) fn is_empty(&self) -> bool {
        todo!()
    }
    pub(crate) fn is_subscribed_to_topic(&self, _topic: &str) -> bool {
        todo!()
    }
}

impl GroupCoordinatorShard {
    pub fn consumer_group_heartbeat(
        &mut self,
        _ctx: &RequestContext,
        _request: ConsumerGroupHeartbeatRequest,
        _topics: &dyn TopicsView,
    ) -> Effects {
        todo!()
    }
    pub fn consumer_group_describe(
        &self,
        _ctx: &RequestContext,
        _group_id: &str,
        _topics: &dyn TopicsView,
    ) -> DescribedGroup {
        todo!()
    }
    pub(crate) fn consumer_timer(&mut self, _key: TimerKey, _now_ms: i64, _effects: &mut Effects) {
        todo!()
    }
    pub(crate) fn consumer_finish_load(&mut self, _now_ms: i64) {}
    pub(crate) fn replay_consumer_group_metadata(
        &mut self,
        _key: ConsumerGroupMetadataKey,
        _value: Option<ConsumerGroupMetadataValue>,
    ) {
        todo!()
    }
    pub(crate) fn replay_consumer_group_partition_metadata(
        &mut self,
        _key: ConsumerGroupPartitionMetadataKey,
        _value: Option<ConsumerGroupPartitionMetadataValue>,
    ) {
        todo!()
    }
    pub(crate) fn replay_consumer_group_member_metadata(
        &mut self,
        _key: ConsumerGroupMemberMetadataKey,
        _value: Option<ConsumerGroupMemberMetadataValue>,
    ) {
        todo!()
    }
    pub(crate) fn replay_consumer_group_target_assignment_metadata(
        &mut self,
        _key: ConsumerGroupTargetAssignmentMetadataKey,
        _value: Option<ConsumerGroupTargetAssignmentMetadataValue>,
    ) {
        todo!()
    }
    pub(crate) fn replay_consumer_group_target_assignment_member(
        &mut self,
        _key: ConsumerGroupTargetAssignmentMemberKey,
        _value: Option<ConsumerGroupTargetAssignmentMemberValue>,
    ) {
        todo!()
    }
    pub(crate) fn replay_consumer_group_current_member_assignment(
        &mut self,
        _key: ConsumerGroupCurrentMemberAssignmentKey,
        _value: Option<ConsumerGroupCurrentMemberAssignmentValue>,
    ) {
        todo!()
    }
}
