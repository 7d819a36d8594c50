//! The consumer-group records the handlers write (Kafka's GroupCoordinatorRecordHelpers).
#![allow(dead_code)] // the group tombstones serve DeleteGroups (admin code)

use super::group::{ConsumerMember, SubscriptionMetadata};
use crate::assignor::Assignment;
use crate::record::CoordinatorRecord;
use gregor_protocol::messages::consumer_group_current_member_assignment_key::ConsumerGroupCurrentMemberAssignmentKey;
use gregor_protocol::messages::consumer_group_current_member_assignment_value::{
    ConsumerGroupCurrentMemberAssignmentValue, TopicPartitions as CurrentTopicPartitions,
};
use gregor_protocol::messages::consumer_group_member_metadata_key::ConsumerGroupMemberMetadataKey;
use gregor_protocol::messages::consumer_group_member_metadata_value::ConsumerGroupMemberMetadataValue;
use gregor_protocol::messages::consumer_group_metadata_key::ConsumerGroupMetadataKey;
use gregor_protocol::messages::consumer_group_metadata_value::ConsumerGroupMetadataValue;
use gregor_protocol::messages::consumer_group_partition_metadata_key::ConsumerGroupPartitionMetadataKey;
use gregor_protocol::messages::consumer_group_partition_metadata_value::{
    ConsumerGroupPartitionMetadataValue, TopicMetadata as RecordTopicMetadata,
};
use gregor_protocol::messages::consumer_group_target_assignment_member_key::ConsumerGroupTargetAssignmentMemberKey;
use gregor_protocol::messages::consumer_group_target_assignment_member_value::{
    ConsumerGroupTargetAssignmentMemberValue, TopicPartition as TargetTopicPartition,
};
use gregor_protocol::messages::consumer_group_target_assignment_metadata_key::ConsumerGroupTargetAssignmentMetadataKey;
use gregor_protocol::messages::consumer_group_target_assignment_metadata_value::ConsumerGroupTargetAssignmentMetadataValue;

pub(crate) fn group_epoch(group_id: &str, epoch: i32) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupMetadata {
        key: ConsumerGroupMetadataKey { group_id: group_id.to_string(), ..Default::default() },
        value: Some(ConsumerGroupMetadataValue { epoch, ..Default::default() }),
    }
}

pub(crate) fn group_metadata_tombstone(group_id: &str) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupMetadata {
        key: ConsumerGroupMetadataKey { group_id: group_id.to_string(), ..Default::default() },
        value: None,
    }
}

pub(crate) fn partition_metadata(group_id: &str, metadata: &SubscriptionMetadata) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupPartitionMetadata {
        key: ConsumerGroupPartitionMetadataKey { group_id: group_id.to_string(), ..Default::default() },
        value: Some(ConsumerGroupPartitionMetadataValue {
            topics: metadata
                .values()
                .map(|topic| RecordTopicMetadata {
                    topic_id: topic.id,
                    topic_name: topic.name.clone(),
                    num_partitions: topic.partitions,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
    }
}

pub(crate) fn partition_metadata_tombstone(group_id: &str) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupPartitionMetadata {
        key: ConsumerGroupPartitionMetadataKey { group_id: group_id.to_string(), ..Default::default() },
        value: None,
    }
}

fn member_key(group_id: &str, member_id: &str) -> ConsumerGroupMemberMetadataKey {
    ConsumerGroupMemberMetadataKey {
        group_id: group_id.to_string(),
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

pub(crate) fn member_metadata(group_id: &str, member: &ConsumerMember) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupMemberMetadata {
        key: member_key(group_id, &member.member_id),
        value: Some(ConsumerGroupMemberMetadataValue {
            instance_id: member.instance_id.clone(),
            rack_id: member.rack_id.clone(),
            client_id: member.client_id.clone(),
            client_host: member.client_host.clone(),
            subscribed_topic_names: member.subscribed_topic_names.clone(),
            subscribed_topic_regex: member.subscribed_topic_regex.clone(),
            rebalance_timeout_ms: member.rebalance_timeout_ms,
            server_assignor: member.server_assignor.clone(),
            classic_member_metadata: None,
            ..Default::default()
        }),
    }
}

pub(crate) fn member_metadata_tombstone(group_id: &str, member_id: &str) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupMemberMetadata { key: member_key(group_id, member_id), value: None }
}

fn target_key(group_id: &str, member_id: &str) -> ConsumerGroupTargetAssignmentMemberKey {
    ConsumerGroupTargetAssignmentMemberKey {
        group_id: group_id.to_string(),
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

pub(crate) fn target_member(group_id: &str, member_id: &str, assignment: &Assignment) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupTargetAssignmentMember {
        key: target_key(group_id, member_id),
        value: Some(ConsumerGroupTargetAssignmentMemberValue {
            topic_partitions: assignment
                .iter()
                .map(|(topic, partitions)| TargetTopicPartition {
                    topic_id: *topic,
                    partitions: partitions.iter().copied().collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
    }
}

pub(crate) fn target_member_tombstone(group_id: &str, member_id: &str) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupTargetAssignmentMember { key: target_key(group_id, member_id), value: None }
}

pub(crate) fn target_metadata(group_id: &str, assignment_epoch: i32) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupTargetAssignmentMetadata {
        key: ConsumerGroupTargetAssignmentMetadataKey { group_id: group_id.to_string(), ..Default::default() },
        value: Some(ConsumerGroupTargetAssignmentMetadataValue { assignment_epoch, ..Default::default() }),
    }
}

pub(crate) fn target_metadata_tombstone(group_id: &str) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupTargetAssignmentMetadata {
        key: ConsumerGroupTargetAssignmentMetadataKey { group_id: group_id.to_string(), ..Default::default() },
        value: None,
    }
}

fn current_key(group_id: &str, member_id: &str) -> ConsumerGroupCurrentMemberAssignmentKey {
    ConsumerGroupCurrentMemberAssignmentKey {
        group_id: group_id.to_string(),
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

fn current_partitions(assignment: &Assignment) -> Vec<CurrentTopicPartitions> {
    assignment
        .iter()
        .map(|(topic, partitions)| CurrentTopicPartitions {
            topic_id: *topic,
            partitions: partitions.iter().copied().collect(),
            ..Default::default()
        })
        .collect()
}

pub(crate) fn current_assignment(group_id: &str, member: &ConsumerMember) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupCurrentMemberAssignment {
        key: current_key(group_id, &member.member_id),
        value: Some(ConsumerGroupCurrentMemberAssignmentValue {
            member_epoch: member.member_epoch,
            previous_member_epoch: member.previous_member_epoch,
            state: member.state.value(),
            assigned_partitions: current_partitions(&member.assigned),
            partitions_pending_revocation: current_partitions(&member.pending_revocation),
            ..Default::default()
        }),
    }
}

pub(crate) fn current_assignment_tombstone(group_id: &str, member_id: &str) -> CoordinatorRecord {
    CoordinatorRecord::ConsumerGroupCurrentMemberAssignment { key: current_key(group_id, member_id), value: None }
}
