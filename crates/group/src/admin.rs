//! DescribeGroups, ListGroups, DeleteGroups, after Kafka's `GroupMetadataManager`
//! (`describeGroups`, `listGroups`) and `GroupCoordinatorShard.deleteGroups`.

use crate::classic::ClassicGroupState;
use crate::offsets::group_tombstones;
use crate::record::CoordinatorRecord;
use crate::shard::{Group, GroupCoordinatorShard, RequestContext};
use gregor_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use gregor_protocol::messages::list_groups_response::ListedGroup;
use gregor_protocol::ErrorCode;

impl GroupCoordinatorShard {
    /// One group of a DescribeGroups answer. Only classic groups are described here
    /// (KIP-848 groups answer ConsumerGroupDescribe); members' metadata and
    /// assignments are shown only while the group is Stable, as Kafka does.
    pub fn describe_group(&self, ctx: &RequestContext, group_id: &str) -> DescribedGroup {
        let not_found = |message: String| {
            let mut described = DescribedGroup {
                group_id: group_id.to_string(),
                group_state: ClassicGroupState::Dead.name().to_string(),
                ..Default::default()
            };
            if ctx.api_version >= 6 {
                described.error_code = ErrorCode::GroupIdNotFound.code();
                described.error_message = Some(message);
            }
            described
        };
        let group = match self.groups.get(group_id) {
            None => return not_found(format!("Group {group_id} not found.")),
            Some(Group::Consumer(_)) => return not_found(format!("Group {group_id} is not a classic group.")),
            Some(Group::Classic(group)) => group,
        };
        let stable = group.state() == ClassicGroupState::Stable;
        let protocol = group.protocol_name().unwrap_or_default();
        DescribedGroup {
            group_id: group_id.to_string(),
            group_state: group.state().name().to_string(),
            protocol_type: group.protocol_type().unwrap_or_default().to_string(),
            protocol_data: if stable { protocol.to_string() } else { String::new() },
            members: group
                .members()
                .iter()
                .map(|member| DescribedGroupMember {
                    member_id: member.member_id.clone(),
                    group_instance_id: member.group_instance_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    member_metadata: if stable {
                        member.metadata(protocol).cloned().unwrap_or_default()
                    } else {
                        Default::default()
                    },
                    member_assignment: if stable { member.assignment.clone() } else { Default::default() },
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Every group of this shard that passes the filters (both case-insensitive; an
    /// empty filter passes everything).
    pub fn list_groups(&self, states_filter: &[String], types_filter: &[String]) -> Vec<ListedGroup> {
        let states: Vec<String> = states_filter.iter().map(|state| state.trim().to_lowercase()).collect();
        let types: Vec<String> = types_filter.iter().map(|kind| kind.trim().to_lowercase()).collect();
        let mut group_ids: Vec<&String> = self.groups.keys().collect();
        group_ids.sort();
        group_ids
            .into_iter()
            .filter_map(|group_id| {
                let listed = match &self.groups[group_id] {
                    Group::Classic(group) => ListedGroup {
                        group_id: group_id.clone(),
                        protocol_type: group.protocol_type().unwrap_or_default().to_string(),
                        group_state: group.state().name().to_string(),
                        group_type: "classic".to_string(),
                        ..Default::default()
                    },
                    Group::Consumer(group) => ListedGroup {
                        group_id: group_id.clone(),
                        protocol_type: crate::classic::CONSUMER_PROTOCOL_TYPE.to_string(),
                        group_state: group.state_name().to_string(),
                        group_type: "consumer".to_string(),
                        ..Default::default()
                    },
                };
                let state_ok = states.is_empty() || states.contains(&listed.group_state.to_lowercase());
                let type_ok = types.is_empty() || types.contains(&listed.group_type);
                (state_ok && type_ok).then_some(listed)
            })
            .collect()
    }

    /// DeleteGroups for one group: the records that delete it (its offsets, then the
    /// group), or why it cannot be deleted. The group goes away when they are
    /// replayed.
    pub fn delete_group(&mut self, _ctx: &RequestContext, group_id: &str) -> (Vec<CoordinatorRecord>, ErrorCode) {
        let Some(group) = self.groups.get(group_id) else { return (Vec::new(), ErrorCode::GroupIdNotFound) };
        let error = match group {
            Group::Classic(group) => match group.state() {
                ClassicGroupState::Dead => ErrorCode::GroupIdNotFound,
                ClassicGroupState::Empty => ErrorCode::None,
                _ => ErrorCode::NonEmptyGroup,
            },
            Group::Consumer(group) if group.is_empty() => ErrorCode::None,
            Group::Consumer(_) => ErrorCode::NonEmptyGroup,
        };
        if !error.is_none() {
            return (Vec::new(), error);
        }
        let mut records = self.offsets.tombstones(group_id);
        records.extend(group_tombstones(group_id, group));
        (records, ErrorCode::None)
    }
}

#[cfg(test)]
mod tests;
