//! ConsumerGroupDescribe (v0 and v1).

use super::group::ConsumerMember;
use crate::assignor::{Assignment, AssignorKind};
use crate::shard::{Group, GroupCoordinatorShard, RequestContext, TopicsView};
use gregor_protocol::messages::consumer_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member, TopicPartitions,
};
use gregor_protocol::ErrorCode;

/// `member_type` of a member that speaks the consumer protocol (0 is classic).
const MEMBER_TYPE_CONSUMER: i8 = 1;

fn described_assignment(assignment: &Assignment, topics: &dyn TopicsView) -> DescribedAssignment {
    DescribedAssignment {
        topic_partitions: assignment
            .iter()
            // Topics deleted since are left out, as Kafka does.
            .filter_map(|(topic, partitions)| {
                topics.topic_name(*topic).map(|name| TopicPartitions {
                    topic_id: *topic,
                    topic_name: name,
                    partitions: partitions.iter().copied().collect(),
                    ..Default::default()
                })
            })
            .collect(),
        ..Default::default()
    }
}

fn described_member(member: &ConsumerMember, target: Option<&Assignment>, topics: &dyn TopicsView) -> Member {
    Member {
        member_id: member.member_id.clone(),
        instance_id: member.instance_id.clone(),
        rack_id: member.rack_id.clone(),
        member_epoch: member.member_epoch,
        client_id: member.client_id.clone(),
        client_host: member.client_host.clone(),
        subscribed_topic_names: member.subscribed_topic_names.clone(),
        subscribed_topic_regex: member.subscribed_topic_regex.clone(),
        assignment: described_assignment(&member.assigned, topics),
        target_assignment: described_assignment(target.unwrap_or(&Assignment::new()), topics),
        member_type: MEMBER_TYPE_CONSUMER,
        ..Default::default()
    }
}

impl GroupCoordinatorShard {
    /// One group of a ConsumerGroupDescribe answer. `authorized_operations` is left
    /// for the broker to fill.
    pub fn consumer_group_describe(
        &self,
        _ctx: &RequestContext,
        group_id: &str,
        topics: &dyn TopicsView,
    ) -> DescribedGroup {
        let not_found = |message: String| DescribedGroup {
            error_code: ErrorCode::GroupIdNotFound.code(),
            error_message: Some(message),
            group_id: group_id.to_string(),
            ..Default::default()
        };
        let group = match self.groups.get(group_id) {
            Some(Group::Consumer(group)) => group,
            Some(Group::Classic(_)) => return not_found(format!("Group {group_id} is not a consumer group.")),
            None => return not_found(format!("Group {group_id} not found.")),
        };
        let default = self
            .config
            .consumer_assignors
            .iter()
            .find_map(|name| AssignorKind::from_name(name))
            .unwrap_or(AssignorKind::Uniform);
        DescribedGroup {
            error_code: ErrorCode::None.code(),
            error_message: None,
            group_id: group_id.to_string(),
            group_state: group.state().name().to_string(),
            group_epoch: group.group_epoch(),
            assignment_epoch: group.assignment_epoch(),
            assignor_name: group.preferred_assignor(default.name()),
            members: group
                .members
                .values()
                .map(|member| described_member(member, group.target.get(&member.member_id), topics))
                .collect(),
            authorized_operations: i32::MIN,
            ..Default::default()
        }
    }
}
