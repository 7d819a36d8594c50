//! Server-side assignors of KIP-848 (`uniform`, `range`).
//!
//! An assignor is a pure function from the group's members (their subscriptions and
//! their current *target* assignment, for stickiness) and the subscribed topics
//! (partition counts) to a new target assignment. Output is deterministic: members and
//! topics are visited in sorted order.

mod range;
mod uniform;

use gregor_protocol::Uuid;
use std::collections::{BTreeMap, BTreeSet};

/// Partitions per topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// One member as an assignor sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberSpec {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// The topics the member subscribes to that exist.
    pub subscribed_topics: BTreeSet<Uuid>,
    /// The member's current target assignment.
    pub current: Assignment,
}

/// The input of an assignor: members by id and partition counts by topic id.
#[derive(Debug, Clone, Default)]
pub struct GroupSpec {
    pub members: BTreeMap<String, MemberSpec>,
    pub topics: BTreeMap<Uuid, i32>,
}

impl GroupSpec {
    /// Whether every member subscribes to the same topics.
    pub fn is_homogeneous(&self) -> bool {
        let mut subscriptions = self.members.values().map(|member| &member.subscribed_topics);
        match subscriptions.next() {
            None => true,
            Some(first) => subscriptions.all(|other| other == first),
        }
    }

    pub(crate) fn partition_count(&self, topic: &Uuid) -> i32 {
        self.topics.get(topic).copied().unwrap_or(0).max(0)
    }
}

/// The server-side assignors this broker implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignorKind {
    Uniform,
    Range,
}

impl AssignorKind {
    /// Resolves an assignor name as a client or the config may spell it: the short
    /// names of Kafka 4 or the class names of Kafka 3.x.
    pub fn from_name(name: &str) -> Option<AssignorKind> {
        match name.trim() {
            "uniform" | "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => Some(AssignorKind::Uniform),
            "range" | "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => Some(AssignorKind::Range),
            _ => None,
        }
    }

    /// Kafka's name of the assignor (what ConsumerGroupDescribe reports).
    pub fn name(self) -> &'static str {
        match self {
            AssignorKind::Uniform => "uniform",
            AssignorKind::Range => "range",
        }
    }

    /// Computes the target assignment of every member of `spec`.
    pub fn assign(self, spec: &GroupSpec) -> BTreeMap<String, Assignment> {
        let mut result = match self {
            AssignorKind::Uniform => uniform::assign(spec),
            AssignorKind::Range => range::assign(spec),
        };
        for member in spec.members.keys() {
            result.entry(member.clone()).or_default();
        }
        for assignment in result.values_mut() {
            assignment.retain(|_, partitions| !partitions.is_empty());
        }
        result
    }
}

/// Number of partitions in an assignment.
pub fn partition_count(assignment: &Assignment) -> usize {
    assignment.values().map(BTreeSet::len).sum()
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub fn topic(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    pub fn member(topics: &[Uuid]) -> MemberSpec {
        MemberSpec { subscribed_topics: topics.iter().copied().collect(), ..Default::default() }
    }

    pub fn spec(members: Vec<(&str, MemberSpec)>, topics: &[(Uuid, i32)]) -> GroupSpec {
        GroupSpec {
            members: members.into_iter().map(|(id, spec)| (id.to_string(), spec)).collect(),
            topics: topics.iter().copied().collect(),
        }
    }

    /// Every partition of every subscribed topic is assigned exactly once, and only to
    /// a member subscribed to its topic.
    pub fn assert_valid(spec: &GroupSpec, result: &BTreeMap<String, Assignment>) {
        let mut seen = BTreeSet::new();
        for (member, assignment) in result {
            let subscribed = &spec.members[member].subscribed_topics;
            for (topic, partitions) in assignment {
                assert!(subscribed.contains(topic), "{member} got unsubscribed topic {topic:?}");
                for partition in partitions {
                    assert!(*partition >= 0 && *partition < spec.partition_count(topic));
                    assert!(seen.insert((*topic, *partition)), "{topic:?}-{partition} assigned twice");
                }
            }
        }
        let subscribed: BTreeSet<Uuid> =
            spec.members.values().flat_map(|member| member.subscribed_topics.iter().copied()).collect();
        for topic in subscribed {
            for partition in 0..spec.partition_count(&topic) {
                assert!(seen.contains(&(topic, partition)), "{topic:?}-{partition} unassigned");
            }
        }
    }

    pub fn counts(result: &BTreeMap<String, Assignment>) -> Vec<usize> {
        result.values().map(partition_count).collect()
    }

    pub fn spread(result: &BTreeMap<String, Assignment>) -> usize {
        let counts = counts(result);
        counts.iter().max().unwrap_or(&0) - counts.iter().min().unwrap_or(&0)
    }
}
