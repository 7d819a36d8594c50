//! The `range` assignor: per topic, the subscribers (sorted by member id) get
//! contiguous ranges of partitions, the first `partitions % members` one partition
//! more. Members with the same subscriptions therefore get the same partition numbers
//! of every topic (co-partitioned joins), as with Kafka's server-side RangeAssignor.
//!
//! It is sticky only in the sense that the ranges depend on nothing but the member ids
//! and partition counts: a member keeps its range until membership or partitions change.

use super::{Assignment, GroupSpec};
use gregor_protocol::Uuid;
use std::collections::BTreeMap;

pub(super) fn assign(spec: &GroupSpec) -> BTreeMap<String, Assignment> {
    let mut result: BTreeMap<String, Assignment> =
        spec.members.keys().map(|id| (id.clone(), Assignment::new())).collect();
    let mut subscribers: BTreeMap<Uuid, Vec<&String>> = BTreeMap::new();
    for (id, member) in &spec.members {
        for topic in &member.subscribed_topics {
            subscribers.entry(*topic).or_default().push(id);
        }
    }
    for (topic, members) in subscribers {
        let partitions = spec.partition_count(&topic);
        if partitions == 0 || members.is_empty() {
            continue;
        }
        let count = members.len() as i32;
        let (quota, extra) = (partitions / count, partitions % count);
        let mut start = 0;
        for (i, member) in members.iter().enumerate() {
            let length = quota + i32::from((i as i32) < extra);
            if length > 0 {
                result.entry((*member).clone()).or_default().insert(topic, (start..start + length).collect());
            }
            start += length;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::AssignorKind;

    #[test]
    fn co_partitioned_ranges() {
        let (a, b) = (topic(1), topic(2));
        let spec = spec(vec![("m1", member(&[a, b])), ("m2", member(&[a, b]))], &[(a, 3), (b, 3)]);
        let result = AssignorKind::Range.assign(&spec);
        assert_valid(&spec, &result);
        assert_eq!(result["m1"][&a], [0, 1].into_iter().collect());
        assert_eq!(result["m1"][&b], [0, 1].into_iter().collect());
        assert_eq!(result["m2"][&a], [2].into_iter().collect());
        assert_eq!(result["m2"][&b], [2].into_iter().collect());
    }

    #[test]
    fn more_members_than_partitions_and_heterogeneous() {
        let (a, b) = (topic(1), topic(2));
        let spec = spec(vec![("m1", member(&[a])), ("m2", member(&[a, b])), ("m3", member(&[a]))], &[(a, 2), (b, 4)]);
        let result = AssignorKind::Range.assign(&spec);
        assert_valid(&spec, &result);
        assert!(result["m3"].is_empty());
        assert_eq!(result["m2"][&b].len(), 4);
    }

    #[test]
    fn zero_partitions() {
        let a = topic(1);
        let spec = spec(vec![("m1", member(&[a]))], &[(a, 0)]);
        assert!(AssignorKind::Range.assign(&spec)["m1"].is_empty());
    }

    #[test]
    fn stable_when_nothing_changes() {
        let a = topic(1);
        let mut spec = spec(vec![("m1", member(&[a])), ("m2", member(&[a]))], &[(a, 5)]);
        let first = AssignorKind::Range.assign(&spec);
        for (id, member) in spec.members.iter_mut() {
            member.current = first[id].clone();
        }
        assert_eq!(AssignorKind::Range.assign(&spec), first);
    }
}
