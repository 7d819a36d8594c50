//! CreateTopics, DeleteTopics and CreatePartitions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use gregor_protocol::messages::{
    config_record::ConfigRecord, partition_record::PartitionRecord, remove_topic_record::RemoveTopicRecord,
    topic_record::TopicRecord,
};
use gregor_protocol::{ErrorCode, Uuid};

use super::placement::{place_replicas, usable_brokers, UsableBroker};
use super::{ApiError, ControllerContext};
use crate::image::{resource_type, MetadataImage, DIRECTORY_UNASSIGNED};
use crate::record::MetadataRecord;

/// Kafka's longest topic name: the log directory `<topic>-<partition>` must fit 255 bytes.
pub const TOPIC_NAME_LENGTH_MAX: usize = 249;
/// The metadata log's own name, which no user topic may take.
pub const CLUSTER_METADATA_TOPIC: &str = "__cluster_metadata";
/// Ids Kafka never hands out: zero means "none", one is the metadata topic's id.
const RESERVED_TOPIC_ID_MAX: u128 = 1;
/// Fresh ids are random, so a handful of draws always finds an unused one; the bound
/// only keeps a broken generator from looping forever.
const TOPIC_ID_DRAWS_MAX: usize = 64;
/// The most partitions one CreateTopics request may ask for, counted before anything is
/// planned, as Kafka's controller counts them: a request of 2^31 partitions must be refused
/// before a replica list is allocated for any of them.
pub const PARTITIONS_PER_REQUEST_MAX: i64 = 10_000;
/// The most records one client operation may write to the metadata log (Kafka's
/// `MAX_RECORDS_PER_USER_OP`); more is refused whole with POLICY_VIOLATION.
pub const RECORDS_PER_OPERATION_MAX: usize = 10_000;
/// Kafka's message for an operation refused by [`RECORDS_PER_OPERATION_MAX`].
pub const EXCESSIVE_BATCH_MESSAGE: &str = "Unable to perform excessively large batch operation.";
/// Kafka's message for a CreateTopics refused by [`PARTITIONS_PER_REQUEST_MAX`].
const EXCESSIVE_PARTITIONS_MESSAGE: &str = "Excessively large number of partitions per request.";

/// The coordinators' internal topics. Their partition counts decide which partition
/// holds each group and transactional id, and their records are the only copy of
/// committed offsets and transaction state: no client may delete them, trim them,
/// add partitions to them or make them anything but compacted.
pub const INTERNAL_TOPICS: [&str; 3] = ["__consumer_offsets", "__transaction_state", "__share_group_state"];

/// Whether `name` is one of the coordinators' internal topics.
pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// The partitions a CreateTopics request asks for at most, as Kafka counts them: the
/// default for -1, the number of assignments where there are some, nothing for an
/// invalid count (that topic fails on its own).
fn requested_partitions(topics: &[NewTopic], default_num_partitions: i32) -> i64 {
    topics
        .iter()
        .map(|topic| match (topic.assignments.len(), topic.num_partitions) {
            (0, -1) => i64::from(default_num_partitions.max(0)),
            (0, count) => i64::from(count.max(0)),
            (assigned, _) => i64::try_from(assigned).unwrap_or(i64::MAX),
        })
        .fold(0_i64, i64::saturating_add)
}

/// One topic of a CreateTopics request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// -1 for the default; must be -1 with manual assignments.
    pub num_partitions: i32,
    /// -1 for the default; must be -1 with manual assignments.
    pub replication_factor: i16,
    /// Manual assignment: (partition index, replica broker ids).
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: Vec<(String, Option<String>)>,
}

/// The result for one requested topic. On failure the id is zero and the counts are -1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopicOutcome {
    pub name: String,
    pub error: ErrorCode,
    pub message: Option<String>,
    pub topic_id: Uuid,
    pub num_partitions: i32,
    pub replication_factor: i16,
    /// The config overrides the topic was created with.
    pub configs: BTreeMap<String, String>,
}

impl CreateTopicOutcome {
    fn failed(name: &str, error: ApiError) -> Self {
        Self {
            name: name.to_string(),
            error: error.code,
            message: error.message,
            topic_id: Uuid::ZERO,
            num_partitions: -1,
            replication_factor: -1,
            configs: BTreeMap::new(),
        }
    }
}

/// Why a topic name is illegal, in Kafka's terms, or `None` when it is legal.
pub fn invalid_topic_name(name: &str) -> Option<String> {
    let reason = if name.is_empty() {
        "the empty string is not allowed".to_string()
    } else if name == "." || name == ".." {
        format!("'{name}' is not allowed")
    } else if name.len() > TOPIC_NAME_LENGTH_MAX {
        format!("the length of '{name}' is longer than the max allowed length {TOPIC_NAME_LENGTH_MAX}")
    } else if !name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-')) {
        format!("'{name}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'")
    } else {
        return None;
    };
    Some(format!("Topic name is invalid: {reason}"))
}

/// Metric names turn '.' into '_', so two names equal after that would share metrics.
fn collision_key(name: &str) -> Option<String> {
    (name.contains('.') || name.contains('_')).then(|| name.replace('.', "_"))
}

/// Names that appear more than once in one request: Kafka rejects every copy.
fn duplicates<'a>(names: impl Iterator<Item = &'a str>) -> HashSet<&'a str> {
    let mut seen = HashSet::new();
    let mut duplicated = HashSet::new();
    for name in names {
        if !seen.insert(name) {
            duplicated.insert(name);
        }
    }
    duplicated
}

/// Draws an id no topic has and Kafka does not reserve; Kafka also skips ids whose
/// base64 form starts with '-', which command-line tools would take for an option.
fn fresh_topic_id(image: &MetadataImage, taken: &HashSet<Uuid>, new_uuid: &mut dyn FnMut() -> Uuid) -> Option<Uuid> {
    (0..TOPIC_ID_DRAWS_MAX).map(|_| new_uuid()).find(|id| {
        id.as_u128() > RESERVED_TOPIC_ID_MAX
            && !id.to_string().starts_with('-')
            && image.topic_by_id(*id).is_none()
            && !taken.contains(id)
    })
}

/// Registered brokers (may appear in a manual assignment), active ones (may lead and
/// be in the ISR) and usable ones (may receive placed replicas), from the image.
struct Brokers {
    registered: BTreeSet<i32>,
    active: BTreeSet<i32>,
    usable: Vec<UsableBroker>,
}

impl Brokers {
    fn new(image: &MetadataImage) -> Self {
        Self {
            registered: image.brokers().map(|broker| broker.id).collect(),
            active: image.brokers().filter(|broker| broker.is_active()).map(|broker| broker.id).collect(),
            usable: usable_brokers(image),
        }
    }

    fn isr_of(&self, replicas: &[i32]) -> Vec<i32> {
        replicas.iter().copied().filter(|replica| self.active.contains(replica)).collect()
    }

    /// Striped placement of `count` partitions; errors carry the placer's message.
    fn place(
        &self,
        count: i32,
        replication_factor: i16,
        random: &mut dyn FnMut() -> u64,
    ) -> Result<Vec<Vec<i32>>, ApiError> {
        place_replicas(&self.usable, count, replication_factor, random)
    }

    /// Placed partitions must each have an active replica to lead.
    fn check_leaders(&self, plans: Vec<Vec<i32>>, replication_factor: i16) -> Result<Vec<Vec<i32>>, ApiError> {
        if plans.iter().any(|replicas| self.isr_of(replicas).is_empty()) {
            return Err(ApiError::new(
                ErrorCode::InvalidReplicationFactor,
                format!(
                    "Unable to replicate the partition {replication_factor} time(s): All brokers are currently fenced \
                     or in controlled shutdown."
                ),
            ));
        }
        Ok(plans)
    }

    /// Kafka's checks of one manually assigned replica list.
    fn check_manual(&self, replicas: &[i32], factor: Option<usize>) -> Result<(), ApiError> {
        let invalid = |message: String| Err(ApiError::new(ErrorCode::InvalidReplicaAssignment, message));
        if replicas.is_empty() {
            return invalid("The manual partition assignment includes an empty replica list.".to_string());
        }
        let mut sorted = replicas.to_vec();
        sorted.sort_unstable();
        for (index, broker) in sorted.iter().enumerate() {
            if !self.registered.contains(broker) {
                return invalid(format!(
                    "The manual partition assignment includes broker {broker}, but no such broker is registered."
                ));
            }
            if index > 0 && sorted[index - 1] == *broker {
                return invalid(format!(
                    "The manual partition assignment includes the broker {broker} more than once."
                ));
            }
        }
        match factor {
            Some(factor) if factor != replicas.len() => invalid(format!(
                "The manual partition assignment includes a partition with {} replica(s), but this is not \
                 consistent with previous partitions, which have {factor} replica(s).",
                replicas.len()
            )),
            _ => Ok(()),
        }
    }
}

fn partition_record(topic_id: Uuid, partition_id: i32, replicas: Vec<i32>, isr: Vec<i32>) -> MetadataRecord {
    let leader = isr.first().copied().unwrap_or(crate::image::NO_LEADER);
    MetadataRecord::Partition(PartitionRecord {
        partition_id,
        topic_id,
        directories: vec![DIRECTORY_UNASSIGNED; replicas.len()],
        replicas,
        isr,
        leader,
        leader_recovery_state: 0,
        leader_epoch: 0,
        partition_epoch: 0,
        ..Default::default()
    })
}

/// The replica lists of a new topic, by partition index.
fn plan_partitions(
    topic: &NewTopic,
    brokers: &Brokers,
    ctx: &mut ControllerContext<'_>,
) -> Result<Vec<Vec<i32>>, ApiError> {
    if !topic.assignments.is_empty() {
        if topic.replication_factor != -1 {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "A manual partition assignment was specified, but replication factor was not set to -1.",
            ));
        }
        if topic.num_partitions != -1 {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "A manual partition assignment was specified, but numPartitions was not set to -1.",
            ));
        }
        let mut by_index: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        let mut factor = None;
        for (index, replicas) in &topic.assignments {
            if by_index.contains_key(index) {
                return Err(ApiError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    format!("Found multiple manual partition assignments for partition {index}"),
                ));
            }
            brokers.check_manual(replicas, factor)?;
            factor = Some(replicas.len());
            if brokers.isr_of(replicas).is_empty() {
                return Err(ApiError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "All brokers specified in the manual partition assignment for partition {index} are fenced \
                         or in controlled shutdown."
                    ),
                ));
            }
            by_index.insert(*index, replicas.clone());
        }
        // Indexes must be exactly 0..n: the map is sorted, so compare each key to its rank.
        if by_index.keys().zip(0..).any(|(index, expected)| *index != expected) {
            return Err(ApiError::new(
                ErrorCode::InvalidReplicaAssignment,
                "partitions should be a consecutive 0-based integer sequence",
            ));
        }
        return Ok(by_index.into_values().collect());
    }
    if topic.replication_factor < -1 || topic.replication_factor == 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidReplicationFactor,
            "Replication factor must be larger than 0, or -1 to use the default value.",
        ));
    }
    if topic.num_partitions < -1 || topic.num_partitions == 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidPartitions,
            "Number of partitions was set to an invalid non-positive value.",
        ));
    }
    let count = if topic.num_partitions == -1 { ctx.default_num_partitions } else { topic.num_partitions };
    let factor = if topic.replication_factor == -1 { ctx.default_replication_factor } else { topic.replication_factor };
    if count <= 0 || factor <= 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "The broker's default partition count or replication factor is not positive.",
        ));
    }
    let plans = brokers.place(count, factor, &mut *ctx.random).map_err(|error| {
        let reason = error.message.unwrap_or_default();
        ApiError::new(error.code, format!("Unable to replicate the partition {factor} time(s): {reason}"))
    })?;
    brokers.check_leaders(plans, factor)
}

/// The topic's config overrides, checked; nulls are rejected as Kafka does at creation.
fn topic_overrides(topic: &NewTopic, ctx: &ControllerContext<'_>) -> Result<BTreeMap<String, String>, ApiError> {
    let nulls: Vec<&str> =
        topic.configs.iter().filter(|(_, value)| value.is_none()).map(|(name, _)| name.as_str()).collect();
    if !nulls.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidConfig,
            format!("Null value not supported for topic configs: {}", nulls.join(",")),
        ));
    }
    // A repeated name keeps its last value, as Kafka's map-building does.
    let overrides: BTreeMap<String, String> =
        topic.configs.iter().filter_map(|(name, value)| value.clone().map(|value| (name.clone(), value))).collect();
    for (name, value) in &overrides {
        (ctx.validate_topic_config)(name, value).map_err(|message| ApiError::new(ErrorCode::InvalidConfig, message))?;
    }
    Ok(overrides)
}

type TopicPlan = (BTreeMap<String, String>, Vec<Vec<i32>>, Uuid);

/// Every check of one new topic; on success its overrides, replica lists and id.
fn plan_topic(
    image: &MetadataImage,
    ctx: &mut ControllerContext<'_>,
    brokers: &Brokers,
    collisions: &HashMap<String, String>,
    taken_ids: &HashSet<Uuid>,
    duplicated: &HashSet<&str>,
    topic: &NewTopic,
) -> Result<TopicPlan, ApiError> {
    let name = topic.name.as_str();
    if duplicated.contains(name) {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "Duplicate topic name."));
    }
    if name == CLUSTER_METADATA_TOPIC {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("Creation of internal topic {CLUSTER_METADATA_TOPIC} is prohibited."),
        ));
    }
    if let Some(message) = invalid_topic_name(name) {
        return Err(ApiError::new(ErrorCode::InvalidTopicException, message));
    }
    if image.topic(name).is_some() {
        return Err(ApiError::new(ErrorCode::TopicAlreadyExists, format!("Topic '{name}' already exists.")));
    }
    // Also checked against topics created earlier in this request, so that one request
    // cannot create both "a.b" and "a_b".
    if let Some(existing) = collision_key(name).and_then(|key| collisions.get(&key)) {
        return Err(ApiError::new(
            ErrorCode::InvalidTopicException,
            format!("Topic '{name}' collides with existing topic: {existing}"),
        ));
    }
    let overrides = topic_overrides(topic, ctx)?;
    if let Some((config, value)) = overrides.iter().find(|(config, value)| unsafe_internal_config(name, config, value))
    {
        return Err(unsafe_internal_config_error(name, config, value));
    }
    let partitions = plan_partitions(topic, brokers, ctx)?;
    let topic_id = fresh_topic_id(image, taken_ids, &mut *ctx.new_uuid)
        .ok_or_else(|| ApiError::new(ErrorCode::UnknownServerError, "Unable to draw an unused topic id."))?;
    Ok((overrides, partitions, topic_id))
}

/// Creates topics: per topic a TopicRecord, its ConfigRecords, then one PartitionRecord
/// per partition. Checks run in Kafka's order: name, existence, configs, layout.
pub fn create_topics(
    image: &MetadataImage,
    ctx: &mut ControllerContext<'_>,
    topics: &[NewTopic],
    validate_only: bool,
) -> (Vec<MetadataRecord>, Vec<CreateTopicOutcome>) {
    if requested_partitions(topics, ctx.default_num_partitions) > PARTITIONS_PER_REQUEST_MAX {
        let error = ApiError::new(ErrorCode::PolicyViolation, EXCESSIVE_PARTITIONS_MESSAGE);
        return (
            Vec::new(),
            topics.iter().map(|topic| CreateTopicOutcome::failed(&topic.name, error.clone())).collect(),
        );
    }
    let duplicated = duplicates(topics.iter().map(|topic| topic.name.as_str()));
    let brokers = Brokers::new(image);
    let mut collisions: HashMap<String, String> =
        image.topics().filter_map(|topic| collision_key(&topic.name).map(|key| (key, topic.name.clone()))).collect();
    let mut taken_ids = HashSet::new();
    let mut records = Vec::new();
    let mut outcomes = Vec::with_capacity(topics.len());
    for topic in topics {
        let name = topic.name.as_str();
        let result = plan_topic(image, ctx, &brokers, &collisions, &taken_ids, &duplicated, topic);
        let (overrides, partitions, topic_id) = match result {
            Ok(planned) => planned,
            Err(error) => {
                outcomes.push(CreateTopicOutcome::failed(name, error));
                continue;
            }
        };
        taken_ids.insert(topic_id);
        if let Some(key) = collision_key(name) {
            collisions.insert(key, name.to_string());
        }
        let replication_factor = partitions.first().map_or(0, |replicas| replicas.len());
        records.push(MetadataRecord::Topic(TopicRecord { name: name.to_string(), topic_id, ..Default::default() }));
        for (config, value) in &overrides {
            records.push(MetadataRecord::Config(ConfigRecord {
                resource_type: resource_type::TOPIC,
                resource_name: name.to_string(),
                name: config.clone(),
                value: Some(value.clone()),
                ..Default::default()
            }));
        }
        let num_partitions = partitions.len();
        for (index, replicas) in (0..).zip(partitions) {
            let isr = brokers.isr_of(&replicas);
            records.push(partition_record(topic_id, index, replicas, isr));
        }
        if records.len() > RECORDS_PER_OPERATION_MAX {
            let error = ApiError::new(ErrorCode::PolicyViolation, EXCESSIVE_BATCH_MESSAGE);
            return (
                Vec::new(),
                topics.iter().map(|topic| CreateTopicOutcome::failed(&topic.name, error.clone())).collect(),
            );
        }
        outcomes.push(CreateTopicOutcome {
            name: name.to_string(),
            error: ErrorCode::None,
            message: None,
            topic_id,
            num_partitions: i32::try_from(num_partitions).unwrap_or(i32::MAX),
            replication_factor: i16::try_from(replication_factor).unwrap_or(i16::MAX),
            configs: overrides,
        });
    }
    if validate_only {
        records.clear();
    }
    (records, outcomes)
}

/// A topic named in a DeleteTopics request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopicRef {
    Name(String),
    Id(Uuid),
}

/// The result for one requested topic; name and id are filled in when the topic exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTopicOutcome {
    pub topic: TopicRef,
    pub name: Option<String>,
    pub topic_id: Uuid,
    pub error: ErrorCode,
    pub message: Option<String>,
}

/// Deletes topics with one RemoveTopicRecord each; replay drops their configs.
pub fn delete_topics(image: &MetadataImage, topics: &[TopicRef]) -> (Vec<MetadataRecord>, Vec<DeleteTopicOutcome>) {
    // A topic named twice (by name, by id, or both) would be removed twice, which the
    // log cannot replay; Kafka rejects every such reference.
    let resolved: Vec<Option<Uuid>> = topics
        .iter()
        .map(|topic| match topic {
            TopicRef::Name(name) => image.topic(name).map(|topic| topic.id),
            TopicRef::Id(id) => image.topic_by_id(*id).map(|topic| topic.id),
        })
        .collect();
    let mut counts: HashMap<Uuid, usize> = HashMap::new();
    for id in resolved.iter().flatten() {
        *counts.entry(*id).or_default() += 1;
    }
    let duplicated_names = duplicates(topics.iter().filter_map(|topic| match topic {
        TopicRef::Name(name) => Some(name.as_str()),
        TopicRef::Id(_) => None,
    }));
    let mut records = Vec::new();
    let mut outcomes = Vec::with_capacity(topics.len());
    for (topic, id) in topics.iter().zip(resolved) {
        let existing = id.and_then(|id| image.topic_by_id(id));
        let mut outcome = DeleteTopicOutcome {
            topic: topic.clone(),
            name: existing.map(|topic| topic.name.clone()),
            topic_id: existing.map_or(Uuid::ZERO, |topic| topic.id),
            error: ErrorCode::None,
            message: None,
        };
        let error = match (topic, existing) {
            (TopicRef::Id(id), _) if *id == Uuid::ZERO => {
                Some(ApiError::new(ErrorCode::InvalidRequest, "Neither topic name nor id were specified."))
            }
            (TopicRef::Name(name), _) if duplicated_names.contains(name.as_str()) => {
                Some(ApiError::new(ErrorCode::InvalidRequest, "Duplicate topic name."))
            }
            (TopicRef::Name(_), None) => Some(ApiError::bare(ErrorCode::UnknownTopicOrPartition)),
            (TopicRef::Id(_), None) => Some(ApiError::bare(ErrorCode::UnknownTopicId)),
            (_, Some(found)) if counts.get(&found.id).copied().unwrap_or(0) > 1 => {
                Some(ApiError::new(ErrorCode::InvalidRequest, "Duplicate topic reference."))
            }
            (_, Some(found)) if is_internal_topic(&found.name) => Some(ApiError::new(
                ErrorCode::InvalidTopicException,
                format!("Topic {} is an internal topic and cannot be deleted.", found.name),
            )),
            (_, Some(found)) => {
                records
                    .push(MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id: found.id, ..Default::default() }));
                None
            }
        };
        if let Some(error) = error {
            outcome.error = error.code;
            outcome.message = error.message;
        }
        outcomes.push(outcome);
    }
    (records, outcomes)
}

/// One topic of a CreatePartitions request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPartitions {
    pub name: String,
    /// The total partition count wanted.
    pub count: i32,
    /// Replica lists of the new partitions only, in order.
    pub assignments: Option<Vec<Vec<i32>>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePartitionsOutcome {
    pub name: String,
    pub error: ErrorCode,
    pub message: Option<String>,
}

/// Adds partitions at the end of existing topics, with the topic's replication factor.
pub fn create_partitions(
    image: &MetadataImage,
    ctx: &mut ControllerContext<'_>,
    topics: &[NewPartitions],
    validate_only: bool,
) -> (Vec<MetadataRecord>, Vec<CreatePartitionsOutcome>) {
    let duplicated = duplicates(topics.iter().map(|topic| topic.name.as_str()));
    let brokers = Brokers::new(image);
    let mut records = Vec::new();
    let mut outcomes = Vec::with_capacity(topics.len());
    for request in topics {
        let result = if duplicated.contains(request.name.as_str()) {
            Err(ApiError::new(ErrorCode::InvalidRequest, "Duplicate topic name."))
        } else {
            add_partitions(
                image,
                &brokers,
                &mut *ctx.random,
                request,
                RECORDS_PER_OPERATION_MAX - records.len().min(RECORDS_PER_OPERATION_MAX),
            )
        };
        if result.as_ref().is_err_and(|error| error.code == ErrorCode::PolicyViolation) {
            // Like Kafka's bounded record list, an operation that would write too many
            // records fails as a whole, not topic by topic.
            let error = ApiError::new(ErrorCode::PolicyViolation, EXCESSIVE_BATCH_MESSAGE);
            let outcomes = topics
                .iter()
                .map(|topic| CreatePartitionsOutcome {
                    name: topic.name.clone(),
                    error: error.code,
                    message: error.message.clone(),
                })
                .collect();
            return (Vec::new(), outcomes);
        }
        let (error, message) = match result {
            Ok(mut added) => {
                records.append(&mut added);
                (ErrorCode::None, None)
            }
            Err(error) => (error.code, error.message),
        };
        outcomes.push(CreatePartitionsOutcome { name: request.name.clone(), error, message });
    }
    if validate_only {
        records.clear();
    }
    (records, outcomes)
}

/// The records adding the requested partitions to one topic; at most `records_left`
/// of them, or POLICY_VIOLATION before anything is planned.
fn add_partitions(
    image: &MetadataImage,
    brokers: &Brokers,
    random: &mut dyn FnMut() -> u64,
    request: &NewPartitions,
    records_left: usize,
) -> Result<Vec<MetadataRecord>, ApiError> {
    let Some(topic) = image.topic(&request.name) else {
        return Err(ApiError::new(ErrorCode::UnknownTopicOrPartition, ErrorCode::UnknownTopicOrPartition.message()));
    };
    if is_internal_topic(&request.name) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "The partition count of the internal topic {} cannot be changed: it decides which partition \
                 holds each coordinator's state.",
                request.name
            ),
        ));
    }
    let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    if request.count == current {
        return Err(ApiError::new(ErrorCode::InvalidPartitions, format!("Topic already has {current} partition(s).")));
    }
    if request.count < current {
        return Err(ApiError::new(
            ErrorCode::InvalidPartitions,
            format!(
                "The topic {} currently has {current} partition(s); {} would not be an increase.",
                request.name, request.count
            ),
        ));
    }
    let additional = request.count - current;
    if usize::try_from(additional).map_or(true, |additional| additional > records_left) {
        return Err(ApiError::new(ErrorCode::PolicyViolation, EXCESSIVE_BATCH_MESSAGE));
    }
    let factor = topic.partitions.values().next().map_or(0, |partition| partition.replicas.len());
    if factor == 0 {
        return Err(ApiError::new(
            ErrorCode::UnknownServerError,
            format!("Invalid state: topic {} appears to have no replicas.", request.name),
        ));
    }
    let plans = match &request.assignments {
        Some(assignments) => {
            if usize::try_from(additional).ok() != Some(assignments.len()) {
                return Err(ApiError::new(
                    ErrorCode::InvalidReplicaAssignment,
                    format!(
                        "Attempted to add {additional} additional partition(s), but only {} assignment(s) were \
                         specified.",
                        assignments.len()
                    ),
                ));
            }
            for (offset, replicas) in (0..).zip(assignments) {
                brokers.check_manual(replicas, Some(factor))?;
                if brokers.isr_of(replicas).is_empty() {
                    return Err(ApiError::new(
                        ErrorCode::InvalidReplicaAssignment,
                        format!(
                            "All brokers specified in the manual partition assignment for partition {} are fenced \
                             or in controlled shutdown.",
                            current + offset
                        ),
                    ));
                }
            }
            assignments.clone()
        }
        None => {
            let factor = i16::try_from(factor).unwrap_or(i16::MAX);
            brokers.check_leaders(brokers.place(additional, factor, random)?, factor)?
        }
    };
    // Partition ids are dense, so the new ones start at the current count.
    Ok((current..)
        .zip(plans)
        .map(|(index, replicas)| {
            let isr = brokers.isr_of(&replicas);
            partition_record(topic.id, index, replicas, isr)
        })
        .collect())
}

/// Whether setting `config` to `value` on the internal topic `topic` would let the
/// broker delete its records: anything but plain compaction would drop committed
/// offsets or transaction state to retention.
pub fn unsafe_internal_config(topic: &str, config: &str, value: &str) -> bool {
    is_internal_topic(topic)
        && config == "cleanup.policy"
        && !value.split(',').map(str::trim).all(|policy| policy.eq_ignore_ascii_case("compact"))
}

/// The INVALID_CONFIG answer for [`unsafe_internal_config`].
pub fn unsafe_internal_config_error(topic: &str, config: &str, value: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidConfig,
        format!(
            "{config}={value} is not allowed on the internal topic {topic}: its records must be kept by compaction \
             alone."
        ),
    )
}
