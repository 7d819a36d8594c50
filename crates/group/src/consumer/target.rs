//! Subscription metadata (which subscribed topics exist and how many partitions they
//! have) and the target assignment (Kafka's TargetAssignmentBuilder).

use super::group::{
    compile_regex, ConsumerGroup, ConsumerMember, SubscriptionMetadata, TopicMetadata, INTERNAL_TOPICS,
};
use super::records;
use crate::assignor::{Assignment, AssignorKind, GroupSpec, MemberSpec};
use crate::record::CoordinatorRecord;
use crate::shard::TopicsView;
use std::collections::{BTreeMap, BTreeSet};

/// The topics a member subscribes to: its names plus the non-internal topics its
/// regex matches.
pub(crate) fn member_topic_names(member: &ConsumerMember, all_topics: &[String]) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = member.subscribed_topic_names.iter().cloned().collect();
    if let Some(regex) = member.subscribed_topic_regex.as_deref().and_then(|regex| compile_regex(regex).ok()) {
        for topic in all_topics {
            if !INTERNAL_TOPICS.contains(&topic.as_str()) && regex.is_match(topic) {
                names.insert(topic.clone());
            }
        }
    }
    names
}

/// The members of the group once `updated` replaced (or joined) and `removed` left.
pub(crate) fn members_after<'a>(
    group: &'a ConsumerGroup,
    updated: Option<&'a ConsumerMember>,
    removed: Option<&str>,
) -> BTreeMap<&'a str, &'a ConsumerMember> {
    let mut members: BTreeMap<&str, &ConsumerMember> =
        group.members.iter().map(|(id, member)| (id.as_str(), member)).collect();
    if let Some(removed) = removed {
        members.remove(removed);
    }
    if let Some(updated) = updated {
        members.insert(updated.member_id.as_str(), updated);
    }
    members
}

/// The subscription metadata of a set of members: every subscribed topic that exists.
pub(crate) fn compute_subscription_metadata<'a>(
    members: impl Iterator<Item = &'a ConsumerMember>,
    topics: &dyn TopicsView,
) -> SubscriptionMetadata {
    let all_topics = topics.topic_names();
    let mut names = BTreeSet::new();
    for member in members {
        names.extend(member_topic_names(member, &all_topics));
    }
    let mut metadata = SubscriptionMetadata::new();
    for name in names {
        let (Some(id), Some(partitions)) = (topics.topic_id(&name), topics.partition_count(&name)) else { continue };
        metadata.insert(name.clone(), TopicMetadata { id, name, partitions });
    }
    metadata
}

/// Runs the assignor over `members` and returns the new target of every member and the
/// records for the targets that changed plus the assignment epoch.
#[allow(clippy::too_many_arguments)]
pub(crate) fn compute_target_assignment(
    group: &ConsumerGroup,
    epoch: i32,
    members: &BTreeMap<&str, &ConsumerMember>,
    metadata: &SubscriptionMetadata,
    assignor: AssignorKind,
    // A static member replacing another takes over its target: (new id, old id).
    replaced: Option<(&str, &str)>,
    topics: &dyn TopicsView,
    out: &mut Vec<CoordinatorRecord>,
) -> BTreeMap<String, Assignment> {
    let all_topics = topics.topic_names();
    let mut spec = GroupSpec {
        topics: metadata.values().map(|topic| (topic.id, topic.partitions)).collect(),
        ..Default::default()
    };
    for (id, member) in members {
        let subscribed = member_topic_names(member, &all_topics)
            .into_iter()
            .filter_map(|name| metadata.get(&name).map(|topic| topic.id))
            .collect();
        let mut current = group.target.get(*id).cloned();
        if current.is_none() {
            if let Some((new_id, old_id)) = replaced {
                if new_id == *id {
                    current = group.target.get(old_id).cloned();
                }
            }
        }
        spec.members.insert(
            id.to_string(),
            MemberSpec {
                instance_id: member.instance_id.clone(),
                rack_id: member.rack_id.clone(),
                subscribed_topics: subscribed,
                current: current.unwrap_or_default(),
            },
        );
    }
    let result = assignor.assign(&spec);
    for (id, assignment) in &result {
        let old = group.target.get(id);
        if old != Some(assignment) {
            out.push(records::target_member(&group.group_id, id, assignment));
        }
    }
    out.push(records::target_metadata(&group.group_id, epoch));
    result
}
