//! One partition's next state, as Kafka's `PartitionChangeBuilder` computes it: the
//! caller sets target replicas, ISR and reassignment sets and the kind of election;
//! the builder completes a reassignment the ISR now allows, elects a leader, and
//! writes a PartitionChangeRecord holding only what changed (none when nothing did).
//!
//! Eligible leader replicas (KIP-966) are off: the feature that enables them is never
//! finalized, so an ISR is never written empty and the ELR fields stay untouched.

use gregor_protocol::messages::partition_change_record::PartitionChangeRecord;
use gregor_protocol::Uuid;

use crate::image::{MetadataImage, PartitionImage, DIRECTORY_UNASSIGNED, NO_LEADER, NO_LEADER_CHANGE};
use crate::record::MetadataRecord;

/// `leader_recovery_state` of a leader elected uncleanly, until it has recovered.
pub const LEADER_RECOVERY_RECOVERING: i8 = 1;

/// Which leaders an election may pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// The first replica when it may lead, else keep the partition online from the ISR.
    Preferred,
    /// Keep the partition online from the ISR.
    Online,
    /// As `Online`, then any live replica outside the ISR, accepting data loss.
    Unclean,
}

/// The builder over one partition of one topic.
pub struct PartitionChange<'p> {
    partition: &'p PartitionImage,
    topic_id: Uuid,
    partition_id: i32,
    is_acceptable_leader: &'p dyn Fn(i32) -> bool,
    election: Election,
    target_isr: Vec<i32>,
    target_replicas: Vec<i32>,
    target_removing: Vec<i32>,
    target_adding: Vec<i32>,
}

impl<'p> PartitionChange<'p> {
    pub fn new(
        partition: &'p PartitionImage,
        topic_id: Uuid,
        partition_id: i32,
        is_acceptable_leader: &'p dyn Fn(i32) -> bool,
    ) -> Self {
        Self {
            partition,
            topic_id,
            partition_id,
            is_acceptable_leader,
            election: Election::Online,
            target_isr: partition.isr.clone(),
            target_replicas: partition.replicas.clone(),
            target_removing: partition.removing_replicas.clone(),
            target_adding: partition.adding_replicas.clone(),
        }
    }

    pub fn election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    pub fn target_isr(mut self, isr: Vec<i32>) -> Self {
        self.target_isr = isr;
        self
    }

    pub fn target_replicas(mut self, replicas: Vec<i32>) -> Self {
        self.target_replicas = replicas;
        self
    }

    pub fn target_removing(mut self, removing: Vec<i32>) -> Self {
        self.target_removing = removing;
        self
    }

    pub fn target_adding(mut self, adding: Vec<i32>) -> Self {
        self.target_adding = adding;
        self
    }

    fn is_valid_new_leader(&self, replica: i32) -> bool {
        self.target_isr.contains(&replica) && (self.is_acceptable_leader)(replica)
    }

    /// The leader and whether it was elected uncleanly.
    fn elect(&self) -> (i32, bool) {
        if self.election == Election::Preferred {
            if let Some(preferred) = self.target_replicas.first().copied() {
                if self.is_valid_new_leader(preferred) {
                    return (preferred, false);
                }
            }
        }
        if self.is_valid_new_leader(self.partition.leader) {
            return (self.partition.leader, false);
        }
        let skip = usize::from(self.election == Election::Preferred);
        if let Some(leader) = self.target_replicas.iter().skip(skip).copied().find(|r| self.is_valid_new_leader(*r)) {
            return (leader, false);
        }
        if self.election == Election::Unclean {
            if let Some(leader) = self.target_replicas.iter().copied().find(|r| (self.is_acceptable_leader)(*r)) {
                return (leader, true);
            }
        }
        (NO_LEADER, false)
    }

    /// Once the ISR holds every replica the reassignment keeps, the removed replicas
    /// leave the replica list and ISR and the reassignment sets empty.
    fn complete_reassignment_if_needed(&mut self) {
        if self.target_removing.is_empty() && self.target_adding.is_empty() {
            return;
        }
        let removing = &self.target_removing;
        let isr: Vec<i32> = self.target_isr.iter().copied().filter(|r| !removing.contains(r)).collect();
        let replicas: Vec<i32> = self.target_replicas.iter().copied().filter(|r| !removing.contains(r)).collect();
        if isr.is_empty() || replicas.is_empty() || !replicas.iter().all(|r| isr.contains(r)) {
            return;
        }
        self.target_isr = isr;
        self.target_replicas = replicas;
        self.target_removing.clear();
        self.target_adding.clear();
    }

    /// The change record, or `None` when the partition would stay as it is.
    pub fn build(mut self) -> Option<PartitionChangeRecord> {
        let partition = self.partition;
        // The record's defaults mean "no change" for every field.
        let mut record =
            PartitionChangeRecord { topic_id: self.topic_id, partition_id: self.partition_id, ..Default::default() };
        self.complete_reassignment_if_needed();
        let (leader, unclean) = self.elect();
        if leader != partition.leader {
            record.leader = leader;
            if unclean {
                record.isr = Some(vec![leader]);
                if partition.leader_recovery_state != LEADER_RECOVERY_RECOVERING {
                    record.leader_recovery_state = LEADER_RECOVERY_RECOVERING;
                }
            }
        }
        // A replica list that drops a replica bumps the leader epoch.
        if record.leader == NO_LEADER_CHANGE && !partition.replicas.iter().all(|r| self.target_replicas.contains(r)) {
            record.leader = partition.leader;
        }
        // Without eligible leader replicas an ISR is never written empty: the last
        // member stays in it, so it is the one that may lead again.
        if record.isr.is_none() && !self.target_isr.is_empty() && self.target_isr != partition.isr {
            record.isr = Some(self.target_isr.clone());
        }
        if !self.target_replicas.is_empty() {
            let directories: Vec<Uuid> = self
                .target_replicas
                .iter()
                .map(|replica| {
                    partition
                        .replicas
                        .iter()
                        .position(|old| old == replica)
                        .and_then(|index| partition.directories.get(index).copied())
                        .unwrap_or(DIRECTORY_UNASSIGNED)
                })
                .collect();
            // Records from before directories existed have none; unassigned ones match that.
            let untracked = partition.directories.is_empty() && directories.iter().all(|d| *d == DIRECTORY_UNASSIGNED);
            if directories != partition.directories && !untracked {
                record.directories = Some(directories);
            }
            if self.target_replicas != partition.replicas {
                record.replicas = Some(self.target_replicas.clone());
            }
        }
        if self.target_removing != partition.removing_replicas {
            record.removing_replicas = Some(self.target_removing.clone());
        }
        if self.target_adding != partition.adding_replicas {
            record.adding_replicas = Some(self.target_adding.clone());
        }
        let unchanged = record.isr.is_none()
            && record.leader == NO_LEADER_CHANGE
            && record.replicas.is_none()
            && record.removing_replicas.is_none()
            && record.adding_replicas.is_none()
            && record.leader_recovery_state == -1
            && record.directories.is_none();
        (!unchanged).then_some(record)
    }
}

/// Whether a broker may lead and join ISRs now: registered, unfenced, not shutting down.
pub fn is_active(image: &MetadataImage, broker_id: i32) -> bool {
    image.broker(broker_id).is_some_and(|broker| broker.is_active())
}

/// The topic config that lets a partition elect a leader from outside its ISR.
pub const UNCLEAN_LEADER_ELECTION_CONFIG: &str = "unclean.leader.election.enable";

/// `unclean.leader.election.enable` for a topic: its override, else the cluster-wide
/// dynamic default, else Kafka's default (false).
pub fn unclean_election_enabled(image: &MetadataImage, topic: &str) -> bool {
    let value =
        |configs: std::collections::BTreeMap<String, String>| configs.get(UNCLEAN_LEADER_ELECTION_CONFIG).cloned();
    value(image.topic_configs(topic))
        .or_else(|| value(image.broker_configs(None)))
        .is_some_and(|value| value.eq_ignore_ascii_case("true"))
}

/// Which partitions [`leader_and_isr_updates`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionsWith {
    /// Partitions whose ISR holds this broker.
    BrokerInIsr(i32),
    /// Partitions without a leader.
    NoLeader,
}

/// Kafka's `generateLeaderAndIsrUpdates`: for each selected partition, the change that
/// takes `remove` out of its ISR and leadership (never the last ISR member: it stays,
/// leaderless) and elects a leader among the active brokers, `add` counted as active
/// (it is being unfenced by the same batch). Topics with unclean election enabled may
/// elect outside the ISR.
pub fn leader_and_isr_updates(
    image: &MetadataImage,
    remove: Option<i32>,
    add: Option<i32>,
    partitions: PartitionsWith,
) -> Vec<MetadataRecord> {
    let acceptable = |replica: i32| Some(replica) != remove && (Some(replica) == add || is_active(image, replica));
    let mut records = Vec::new();
    for topic in image.topics() {
        let unclean = unclean_election_enabled(image, &topic.name);
        for (partition_id, partition) in &topic.partitions {
            let selected = match partitions {
                PartitionsWith::BrokerInIsr(broker) => partition.isr.contains(&broker),
                PartitionsWith::NoLeader => partition.leader == NO_LEADER,
            };
            if !selected {
                continue;
            }
            let isr: Vec<i32> = partition.isr.iter().copied().filter(|replica| Some(*replica) != remove).collect();
            let election = if unclean { Election::Unclean } else { Election::Online };
            let change = PartitionChange::new(partition, topic.id, *partition_id, &acceptable)
                .election(election)
                .target_isr(isr)
                .build();
            records.extend(change.map(MetadataRecord::PartitionChange));
        }
    }
    records
}
