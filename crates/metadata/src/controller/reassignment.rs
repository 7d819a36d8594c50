//! Partition reassignments (KIP-455), as Kafka's `ReplicationControlManager` runs them.
//!
//! A reassignment first widens the replica list to the target plus the replicas being
//! removed, with `adding_replicas`/`removing_replicas` naming the difference; once the
//! ISR holds every target replica, one more change drops the removed replicas and
//! clears both sets. A reassignment that only reorders or shrinks the replica list can
//! complete at once. A null replica list cancels the reassignment in progress.

use std::collections::BTreeSet;

use gregor_protocol::ErrorCode;

use super::partition_change::{is_active, unclean_election_enabled, Election, PartitionChange};
use super::{ApiError, RECORDS_PER_OPERATION_MAX};
use crate::image::{MetadataImage, PartitionImage, TopicImage};
use crate::record::MetadataRecord;

/// One partition of an AlterPartitionReassignments request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentRequest {
    pub topic: String,
    pub partition: i32,
    /// The target replicas; `None` cancels the reassignment in progress.
    pub replicas: Option<Vec<i32>>,
}

/// The result for one requested partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignmentOutcome {
    pub topic: String,
    pub partition: i32,
    pub error: ErrorCode,
    pub message: Option<String>,
}

/// One partition being reassigned, as ListPartitionReassignments shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub removing_replicas: Vec<i32>,
}

fn in_progress(partition: &PartitionImage) -> bool {
    !partition.adding_replicas.is_empty() || !partition.removing_replicas.is_empty()
}

/// Kafka's checks of a target replica list: non-empty, registered brokers, no repeats.
fn check_target(image: &MetadataImage, replicas: &[i32]) -> Result<(), ApiError> {
    let invalid = |message: String| Err(ApiError::new(ErrorCode::InvalidReplicaAssignment, message));
    if replicas.is_empty() {
        return invalid("The manual partition assignment includes an empty replica list.".to_string());
    }
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    for (index, broker) in sorted.iter().enumerate() {
        if image.broker(*broker).is_none() {
            return invalid(format!(
                "The manual partition assignment includes broker {broker}, but no such broker is registered."
            ));
        }
        if index > 0 && sorted[index - 1] == *broker {
            return invalid(format!("The manual partition assignment includes the broker {broker} more than once."));
        }
    }
    Ok(())
}

fn find<'i>(
    image: &'i MetadataImage,
    request: &ReassignmentRequest,
) -> Result<(&'i TopicImage, &'i PartitionImage), ApiError> {
    let unknown = |message: String| ApiError::new(ErrorCode::UnknownTopicOrPartition, message);
    let topic = image
        .topic(&request.topic)
        .ok_or_else(|| unknown(format!("Unable to find a topic named {}.", request.topic)))?;
    let partition = topic
        .partitions
        .get(&request.partition)
        .ok_or_else(|| unknown(format!("Unable to find partition {}:{}.", request.topic, request.partition)))?;
    Ok((topic, partition))
}

/// The change a reassignment request makes to one partition, if any.
fn reassign_one(image: &MetadataImage, request: &ReassignmentRequest) -> Result<Option<MetadataRecord>, ApiError> {
    let (topic, partition) = find(image, request)?;
    let acceptable = |replica: i32| is_active(image, replica);
    let builder = PartitionChange::new(partition, topic.id, request.partition, &acceptable);
    let change = match &request.replicas {
        None => {
            if !in_progress(partition) {
                return Err(ApiError::new(
                    ErrorCode::NoReassignmentInProgress,
                    ErrorCode::NoReassignmentInProgress.message(),
                ));
            }
            // Back to the original replicas: the adding ones leave, the removing ones stay.
            let replicas: Vec<i32> =
                partition.replicas.iter().copied().filter(|r| !partition.adding_replicas.contains(r)).collect();
            let mut isr: Vec<i32> =
                partition.isr.iter().copied().filter(|r| !partition.adding_replicas.contains(r)).collect();
            let unclean = isr.is_empty();
            if unclean {
                let Some(first) = replicas.first().copied() else {
                    return Err(ApiError::new(
                        ErrorCode::InvalidReplicaAssignment,
                        "Invalid replica assignment: addingReplicas contains all replicas.",
                    ));
                };
                isr.push(first);
            }
            let unclean_allowed = unclean_election_enabled(image, &topic.name);
            if unclean && !unclean_allowed {
                return Err(ApiError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "Unable to revert partition assignment for {}:{} because it would require an unclean leader \
                         election.",
                        topic.name, request.partition
                    ),
                ));
            }
            let election = if unclean_allowed { Election::Unclean } else { Election::Online };
            builder
                .election(election)
                .target_isr(isr)
                .target_replicas(replicas)
                .target_removing(Vec::new())
                .target_adding(Vec::new())
                .build()
        }
        Some(target) => {
            check_target(image, target)?;
            let current: BTreeSet<i32> = partition.replicas.iter().copied().collect();
            let wanted: BTreeSet<i32> = target.iter().copied().collect();
            let removing: Vec<i32> = current.difference(&wanted).copied().collect();
            let adding: Vec<i32> = wanted.difference(&current).copied().collect();
            // The target first, then the replicas on their way out.
            let replicas: Vec<i32> = target.iter().copied().chain(removing.iter().copied()).collect();
            let mut builder = builder;
            if replicas != partition.replicas {
                builder = builder.target_replicas(replicas);
            }
            if !removing.is_empty() {
                builder = builder.target_removing(removing);
            }
            if !adding.is_empty() {
                builder = builder.target_adding(adding);
            }
            builder.build()
        }
    };
    Ok(change.map(MetadataRecord::PartitionChange))
}

/// AlterPartitionReassignments: one outcome per requested partition, in order. The
/// records of the partitions that succeeded are written together.
pub fn alter_partition_reassignments(
    image: &MetadataImage,
    requests: &[ReassignmentRequest],
) -> (Vec<MetadataRecord>, Vec<ReassignmentOutcome>) {
    let mut records = Vec::new();
    let mut outcomes = Vec::with_capacity(requests.len());
    for request in requests {
        let result = if records.len() >= RECORDS_PER_OPERATION_MAX {
            Err(ApiError::new(ErrorCode::PolicyViolation, super::EXCESSIVE_BATCH_MESSAGE))
        } else {
            reassign_one(image, request)
        };
        let (error, message) = match result {
            Ok(change) => {
                records.extend(change);
                (ErrorCode::None, None)
            }
            Err(error) => (error.code, error.message),
        };
        outcomes.push(ReassignmentOutcome {
            topic: request.topic.clone(),
            partition: request.partition,
            error,
            message,
        });
    }
    (records, outcomes)
}

/// ListPartitionReassignments: the reassignments in progress, of every partition or of
/// the named ones (unknown topics and partitions, and those not being reassigned, are
/// left out, as Kafka does), by topic name then partition.
pub fn list_partition_reassignments(
    image: &MetadataImage,
    filter: Option<&[(String, Vec<i32>)]>,
) -> Vec<OngoingReassignment> {
    let ongoing = |topic: &TopicImage, partition_id: i32| {
        topic.partitions.get(&partition_id).filter(|partition| in_progress(partition)).map(|partition| {
            OngoingReassignment {
                topic: topic.name.clone(),
                partition: partition_id,
                replicas: partition.replicas.clone(),
                adding_replicas: partition.adding_replicas.clone(),
                removing_replicas: partition.removing_replicas.clone(),
            }
        })
    };
    match filter {
        Some(wanted) => wanted
            .iter()
            .filter_map(|(name, partitions)| image.topic(name).map(|topic| (topic, partitions)))
            .flat_map(|(topic, partitions)| partitions.iter().filter_map(move |id| ongoing(topic, *id)))
            .collect(),
        None => {
            let mut topics: Vec<&TopicImage> = image.topics().collect();
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            topics
                .into_iter()
                .flat_map(|topic| topic.partitions.keys().filter_map(move |id| ongoing(topic, *id)))
                .collect()
        }
    }
}

/// The changes that finish reassignments whose target replicas have all joined the
/// ISR (Kafka does this when the leader's AlterPartition grows the ISR; here the caller
/// runs it after ISR changes). Leaders leaving the replica list are replaced.
pub fn complete_reassignments(image: &MetadataImage) -> Vec<MetadataRecord> {
    let acceptable = |replica: i32| is_active(image, replica);
    let mut records = Vec::new();
    for topic in image.topics() {
        for (partition_id, partition) in &topic.partitions {
            if !in_progress(partition) {
                continue;
            }
            let change = PartitionChange::new(partition, topic.id, *partition_id, &acceptable).build();
            records.extend(change.map(MetadataRecord::PartitionChange));
        }
    }
    records
}
