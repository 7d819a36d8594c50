//! The `uniform` assignor: every partition of a subscribed topic goes to one of the
//! members subscribed to it, the load is spread as evenly as the subscriptions allow,
//! and partitions stay where they are (the current target) whenever that keeps the
//! balance.
//!
//! 1. Keep each member's current partitions that are still valid (topic subscribed,
//!    partition exists, not claimed by another member first).
//! 2. Give every unassigned partition to the least loaded member subscribed to its
//!    topic (topics with the fewest subscribers first, so constrained topics are
//!    placed before flexible ones).
//! 3. Rebalance: while some member holds a partition whose topic another subscriber
//!    could take with at least two partitions less, move it. With homogeneous
//!    subscriptions this ends with `max - min <= 1`; each move lowers the sum of
//!    squared loads, so it terminates.

use super::{Assignment, GroupSpec};
use gregor_protocol::Uuid;
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn assign(spec: &GroupSpec) -> BTreeMap<String, Assignment> {
    let members: Vec<&String> = spec.members.keys().collect();
    let mut owned: Vec<Assignment> = vec![Assignment::new(); members.len()];
    let mut load: Vec<usize> = vec![0; members.len()];
    // Subscribers of every topic that exists, by member index.
    let mut subscribers: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    for (i, id) in members.iter().enumerate() {
        for topic in &spec.members[*id].subscribed_topics {
            if spec.partition_count(topic) > 0 {
                subscribers.entry(*topic).or_default().push(i);
            }
        }
    }
    // Homogeneous groups: a member keeps at most its quota, so the extra partitions of
    // over-loaded members go to the under-loaded ones without a long rebalance phase.
    let total: usize = subscribers.keys().map(|topic| spec.partition_count(topic) as usize).sum();
    let quota = if spec.is_homogeneous() && !members.is_empty() { Some(total.div_ceil(members.len())) } else { None };

    // 1. Stickiness.
    let mut assigned: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    for (i, id) in members.iter().enumerate() {
        let member = &spec.members[*id];
        for (topic, partitions) in &member.current {
            if !member.subscribed_topics.contains(topic) {
                continue;
            }
            let count = spec.partition_count(topic);
            for &partition in partitions {
                if quota.is_some_and(|quota| load[i] >= quota) {
                    break;
                }
                if partition < count && assigned.insert((*topic, partition)) {
                    owned[i].entry(*topic).or_default().insert(partition);
                    load[i] += 1;
                }
            }
        }
    }

    // 2. Unassigned partitions, most constrained topics first.
    let mut topics: Vec<(&Uuid, &Vec<usize>)> = subscribers.iter().collect();
    topics.sort_by_key(|(topic, subs)| (subs.len(), **topic));
    for (topic, subs) in &topics {
        for partition in 0..spec.partition_count(topic) {
            if assigned.contains(&(**topic, partition)) {
                continue;
            }
            let Some(&target) = subs.iter().min_by_key(|&&i| (load[i], i)) else { continue };
            owned[target].entry(**topic).or_default().insert(partition);
            load[target] += 1;
            assigned.insert((**topic, partition));
        }
    }

    // 3. Balance.
    loop {
        let mut moved = false;
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(load[i]), i));
        'owners: for &from in &order {
            // Highest partitions first, so low partition numbers stay put.
            let candidates: Vec<(Uuid, i32)> = owned[from]
                .iter()
                .rev()
                .flat_map(|(topic, partitions)| partitions.iter().rev().map(move |p| (*topic, *p)))
                .collect();
            for (topic, partition) in candidates {
                let Some(subs) = subscribers.get(&topic) else { continue };
                let Some(&to) = subs.iter().filter(|&&i| i != from).min_by_key(|&&i| (load[i], i)) else {
                    continue;
                };
                if load[to] + 1 < load[from] {
                    if let Some(partitions) = owned[from].get_mut(&topic) {
                        partitions.remove(&partition);
                        if partitions.is_empty() {
                            owned[from].remove(&topic);
                        }
                    }
                    owned[to].entry(topic).or_default().insert(partition);
                    load[from] -= 1;
                    load[to] += 1;
                    moved = true;
                    break 'owners;
                }
            }
        }
        if !moved {
            break;
        }
    }

    members.into_iter().cloned().zip(owned).collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{partition_count, AssignorKind};

    #[test]
    fn homogeneous_is_balanced_and_complete() {
        let (a, b) = (topic(1), topic(2));
        let spec =
            spec(vec![("m1", member(&[a, b])), ("m2", member(&[a, b])), ("m3", member(&[a, b]))], &[(a, 5), (b, 3)]);
        let result = AssignorKind::Uniform.assign(&spec);
        assert_valid(&spec, &result);
        assert!(spread(&result) <= 1);
    }

    #[test]
    fn zero_partitions_and_no_topics() {
        let a = topic(1);
        let spec = spec(vec![("m1", member(&[a])), ("m2", member(&[]))], &[(a, 0)]);
        let result = AssignorKind::Uniform.assign(&spec);
        assert_eq!(result.len(), 2);
        assert!(result.values().all(|assignment| assignment.is_empty()));
    }

    #[test]
    fn more_members_than_partitions() {
        let a = topic(1);
        let members = (0..5).map(|i| (["m0", "m1", "m2", "m3", "m4"][i], member(&[a]))).collect();
        let spec = spec(members, &[(a, 3)]);
        let result = AssignorKind::Uniform.assign(&spec);
        assert_valid(&spec, &result);
        assert_eq!(counts(&result).iter().filter(|&&c| c == 1).count(), 3);
        assert!(spread(&result) <= 1);
    }

    #[test]
    fn sticky_when_a_member_joins() {
        let a = topic(1);
        let first = spec(vec![("m1", member(&[a])), ("m2", member(&[a]))], &[(a, 6)]);
        let before = AssignorKind::Uniform.assign(&first);
        let mut second = first.clone();
        for (id, spec) in second.members.iter_mut() {
            spec.current = before[id].clone();
        }
        second.members.insert("m3".into(), member(&[a]));
        let after = AssignorKind::Uniform.assign(&second);
        assert_valid(&second, &after);
        assert!(spread(&after) <= 1);
        // m1 and m2 each give up exactly one partition and keep the rest.
        for id in ["m1", "m2"] {
            let kept = after[id][&a].intersection(&before[id][&a]).count();
            assert_eq!(kept, 2, "{id} kept {kept}");
        }
    }

    #[test]
    fn sticky_when_a_member_leaves() {
        let a = topic(1);
        let first = spec(vec![("m1", member(&[a])), ("m2", member(&[a])), ("m3", member(&[a]))], &[(a, 7)]);
        let before = AssignorKind::Uniform.assign(&first);
        let mut second = first.clone();
        second.members.remove("m3");
        for (id, spec) in second.members.iter_mut() {
            spec.current = before[id].clone();
        }
        let after = AssignorKind::Uniform.assign(&second);
        assert_valid(&second, &after);
        assert!(spread(&after) <= 1);
        for id in ["m1", "m2"] {
            assert!(before[id][&a].is_subset(&after[id][&a]), "{id} lost a partition");
        }
    }

    #[test]
    fn heterogeneous_subscriptions() {
        let (a, b, c) = (topic(1), topic(2), topic(3));
        let spec = spec(
            vec![("m1", member(&[a])), ("m2", member(&[a, b])), ("m3", member(&[b, c])), ("m4", member(&[c]))],
            &[(a, 4), (b, 4), (c, 2)],
        );
        let result = AssignorKind::Uniform.assign(&spec);
        assert_valid(&spec, &result);
        // 10 partitions over 4 members: the subscriptions allow 3/3/2/2 or better.
        assert!(spread(&result) <= 1, "{:?}", counts(&result));
        let total: usize = result.values().map(partition_count).sum();
        assert_eq!(total, 10);
    }

    #[test]
    fn heterogeneous_only_subscriber_gets_everything() {
        let (a, b) = (topic(1), topic(2));
        let spec = spec(vec![("m1", member(&[a, b])), ("m2", member(&[b]))], &[(a, 6), (b, 2)]);
        let result = AssignorKind::Uniform.assign(&spec);
        assert_valid(&spec, &result);
        assert_eq!(result["m1"][&a].len(), 6);
        assert_eq!(result["m2"][&b].len(), 2);
    }

    #[test]
    fn drops_partitions_of_unsubscribed_topics() {
        let (a, b) = (topic(1), topic(2));
        let mut m1 = member(&[a]);
        m1.current.insert(b, [0, 1].into_iter().collect());
        let spec = spec(vec![("m1", m1), ("m2", member(&[a, b]))], &[(a, 2), (b, 2)]);
        let result = AssignorKind::Uniform.assign(&spec);
        assert_valid(&spec, &result);
        assert!(!result["m1"].contains_key(&b));
    }

    #[test]
    fn deterministic() {
        let (a, b) = (topic(1), topic(2));
        let spec = spec(vec![("x", member(&[a, b])), ("y", member(&[a])), ("z", member(&[b]))], &[(a, 5), (b, 7)]);
        assert_eq!(AssignorKind::Uniform.assign(&spec), AssignorKind::Uniform.assign(&spec));
    }
}
