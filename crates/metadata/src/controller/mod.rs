//! The controller's decisions. Each operation reads an image and returns the records to
//! append plus one outcome per requested item; nothing here changes the image. The
//! broker appends an operation's records as one batch and then replays them.

mod acls;
pub mod brokers;
mod configs;
pub mod features;
pub mod partition_change;
pub mod placement;
pub mod reassignment;
mod scram;
mod topics;

use gregor_protocol::messages::{
    feature_level_record::FeatureLevelRecord,
    partition_change_record::PartitionChangeRecord,
    producer_ids_record::ProducerIdsRecord,
    register_broker_record::{BrokerEndpoint, BrokerFeature, RegisterBrokerRecord},
};
use gregor_protocol::{ErrorCode, Uuid};

use crate::image::{MetadataImage, NO_LEADER};
use crate::record::MetadataRecord;
use partition_change::{Election, PartitionChange};

pub use acls::{create_acls, delete_acls};
pub use configs::{
    alter_configs, incremental_alter_configs, AlterOp, ConfigChange, ConfigOutcome, ConfigResource, LegacyConfigs,
};
pub use scram::{alter_scram_credentials, ScramOutcome, ScramUpsertion};
pub use topics::{
    create_partitions, create_topics, delete_topics, is_internal_topic, unsafe_internal_config,
    CreatePartitionsOutcome, CreateTopicOutcome, DeleteTopicOutcome, NewPartitions, NewTopic, TopicRef,
    EXCESSIVE_BATCH_MESSAGE, INTERNAL_TOPICS, PARTITIONS_PER_REQUEST_MAX, RECORDS_PER_OPERATION_MAX,
};

/// The feature whose level fixes which record versions the log holds.
pub const METADATA_VERSION_FEATURE: &str = "metadata.version";
/// metadata.version 4.0-IV3, Kafka 4.0's newest production level: partition records at
/// version 2 (eligible leader replicas), broker registrations at 3 (log directories).
pub const METADATA_VERSION: i16 = 25;

/// A feature this node supports, with the range of levels it can run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportedFeature {
    pub name: &'static str,
    pub min_level: i16,
    pub max_level: i16,
}

/// `group.version`: level 1 enables the KIP-848 consumer group protocol.
pub const GROUP_VERSION_FEATURE: &str = "group.version";
pub const GROUP_VERSION: i16 = 1;

/// `transaction.version`: level 1 writes flexible `__transaction_state` values, level
/// 2 is KIP-890 part 2 (partitions added implicitly by Produce v12 and TxnOffsetCommit
/// v5, the producer epoch bumped at the end of every transaction by EndTxn v5).
pub const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";
pub const TRANSACTION_VERSION: i16 = 2;

/// The features ApiVersions advertises.
pub fn supported_features() -> &'static [SupportedFeature] {
    const FEATURES: &[SupportedFeature] = &[
        SupportedFeature {
            name: METADATA_VERSION_FEATURE,
            min_level: METADATA_VERSION_MIN,
            max_level: METADATA_VERSION,
        },
        SupportedFeature { name: GROUP_VERSION_FEATURE, min_level: 0, max_level: GROUP_VERSION },
        SupportedFeature { name: TRANSACTION_VERSION_FEATURE, min_level: 0, max_level: TRANSACTION_VERSION },
    ];
    FEATURES
}

/// The level a feature is finalized at on a new cluster (or when an older cluster
/// first starts with a version of Gregor that supports it).
fn default_feature_level(feature: &SupportedFeature) -> i16 {
    feature.max_level
}

/// FeatureLevel records for every supported feature the image has not finalized:
/// written on the first start and on the first start after an upgrade that added a
/// feature, so a cluster made by an older Gregor gains e.g. `group.version`.
pub fn finalize_missing_features(image: &MetadataImage) -> Vec<MetadataRecord> {
    supported_features()
        .iter()
        .filter(|feature| !image.features().contains_key(feature.name))
        .map(|feature| {
            MetadataRecord::FeatureLevel(FeatureLevelRecord {
                name: feature.name.to_string(),
                feature_level: default_feature_level(feature),
                ..Default::default()
            })
        })
        .collect()
}
/// 3.3-IV3, the oldest level Kafka 4 still reads.
pub const METADATA_VERSION_MIN: i16 = 7;
/// Producer ids handed to a broker per request, as in Kafka.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// What the controller needs besides the image: the defaults, the config rules (owned
/// by the config crate, passed in so this crate does not depend on it) and randomness.
/// Which brokers may host replicas comes from the image's registrations.
pub struct ControllerContext<'a> {
    pub node_id: i32,
    pub default_num_partitions: i32,
    pub default_replication_factor: i16,
    /// Checks one topic config (name, value); `Err` holds the message for the client.
    pub validate_topic_config: &'a dyn Fn(&str, &str) -> Result<(), String>,
    /// Checks one dynamic broker config (name, value).
    pub validate_broker_config: &'a dyn Fn(&str, &str) -> Result<(), String>,
    /// Checks a group's complete set of overrides as it would be after a change.
    pub validate_group_configs: &'a dyn Fn(&ConfigOverrides) -> Result<(), String>,
    /// Whether a config is a comma-separated list (the only kind APPEND and SUBTRACT take).
    pub is_list_config: &'a dyn Fn(&str) -> bool,
    /// The value a config has without an override on `resource` (the broker's
    /// default for a topic key), where APPEND and SUBTRACT start from.
    pub default_value: &'a dyn Fn(&ConfigResource, &str) -> Option<String>,
    /// Fresh random ids, for topics.
    pub new_uuid: &'a mut dyn FnMut() -> Uuid,
    /// Uniform random 64-bit values: where replica placement starts (see [`placement`]).
    pub random: &'a mut dyn FnMut() -> u64,
}

/// One resource's config overrides, name to value.
pub type ConfigOverrides = std::collections::BTreeMap<String, String>;

/// A per-item failure: the code and the message Kafka would send with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: Some(message.into()) }
    }

    pub fn bare(code: ErrorCode) -> Self {
        Self { code, message: None }
    }
}

/// A range of producer ids given to one broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdBlock {
    pub first_producer_id: i64,
    pub size: i32,
}

/// Kafka's security protocol ids, picked from a listener name that is one of them.
fn security_protocol_of(listener: &str) -> i16 {
    match listener.to_ascii_uppercase().as_str() {
        "SSL" => 1,
        "SASL_PLAINTEXT" => 2,
        "SASL_SSL" => 3,
        _ => 0,
    }
}

/// The records of a cluster's first start: the metadata.version and this node's
/// registration. The broker epoch is `now_ms`, which grows across restarts as Kafka's
/// (log-offset based) epochs do. Bootstrap has no random source, so the incarnation id
/// is zero; [`register_broker`] records a real one on later starts.
pub fn bootstrap(node_id: i32, listeners: &[(String, String, u16)], now_ms: i64) -> Vec<MetadataRecord> {
    let mut records = finalize_missing_features(&MetadataImage::empty());
    records.extend(register_broker(node_id, Uuid::ZERO, listeners, now_ms));
    records
}

/// Registers (or re-registers, on restart) a broker, unfenced: a single node has no
/// heartbeat round to wait for before it may lead.
pub fn register_broker(
    node_id: i32,
    incarnation_id: Uuid,
    listeners: &[(String, String, u16)],
    broker_epoch: i64,
) -> Vec<MetadataRecord> {
    let end_points = listeners
        .iter()
        .map(|(name, host, port)| BrokerEndpoint {
            name: name.clone(),
            host: host.clone(),
            port: *port,
            security_protocol: security_protocol_of(name),
            ..Default::default()
        })
        .collect();
    let features = supported_features()
        .iter()
        .map(|feature| BrokerFeature {
            name: feature.name.to_string(),
            min_supported_version: feature.min_level,
            max_supported_version: feature.max_level,
            ..Default::default()
        })
        .collect();
    vec![MetadataRecord::RegisterBroker(RegisterBrokerRecord {
        broker_id: node_id,
        incarnation_id,
        broker_epoch,
        end_points,
        features,
        rack: None,
        fenced: false,
        in_controlled_shutdown: false,
        ..Default::default()
    })]
}

/// Hands the next block of producer ids to a broker whose registration epoch matches.
pub fn allocate_producer_ids(
    image: &MetadataImage,
    broker_id: i32,
    broker_epoch: i64,
) -> (Vec<MetadataRecord>, Result<ProducerIdBlock, ApiError>) {
    match image.broker(broker_id) {
        None => {
            return (
                Vec::new(),
                Err(ApiError::new(
                    ErrorCode::StaleBrokerEpoch,
                    format!("No broker registration found for broker {broker_id}"),
                )),
            )
        }
        Some(broker) if broker.epoch != broker_epoch => {
            return (
                Vec::new(),
                Err(ApiError::new(
                    ErrorCode::StaleBrokerEpoch,
                    format!("Expected broker epoch {}, but got broker epoch {broker_epoch}", broker.epoch),
                )),
            )
        }
        Some(_) => {}
    }
    let first = image.next_producer_id();
    let Some(next) = first.checked_add(PRODUCER_ID_BLOCK_SIZE) else {
        return (
            Vec::new(),
            Err(ApiError::new(ErrorCode::UnknownServerError, "Exhausted all producer ids: the next block overflows")),
        );
    };
    let record = ProducerIdsRecord { broker_id, broker_epoch, next_producer_id: next, ..Default::default() };
    let block = ProducerIdBlock { first_producer_id: first, size: PRODUCER_ID_BLOCK_SIZE as i32 };
    (vec![MetadataRecord::ProducerIds(record)], Ok(block))
}

/// ElectLeaders election types.
pub const ELECTION_PREFERRED: i8 = 0;
pub const ELECTION_UNCLEAN: i8 = 1;

/// The result of one partition's election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionOutcome {
    pub topic: String,
    pub partition: i32,
    pub error: ErrorCode,
    pub message: Option<String>,
}

/// The result of an ElectLeaders request: a request-level error, or one outcome per
/// partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectLeadersOutcome {
    pub error: ErrorCode,
    pub message: Option<String>,
    pub partitions: Vec<ElectionOutcome>,
}

/// Moves leadership to the preferred replica (or, unclean, to any live replica of a
/// leaderless partition). `None` means every partition; then, as in Kafka, partitions
/// that need no election are left out of the outcomes.
pub fn elect_leaders(
    image: &MetadataImage,
    election_type: i8,
    partitions: Option<&[(String, Vec<i32>)]>,
) -> (Vec<MetadataRecord>, ElectLeadersOutcome) {
    if election_type != ELECTION_PREFERRED && election_type != ELECTION_UNCLEAN {
        return (
            Vec::new(),
            ElectLeadersOutcome {
                error: ErrorCode::InvalidRequest,
                message: Some(format!("Unknown election type {election_type}")),
                partitions: Vec::new(),
            },
        );
    }
    let mut records = Vec::new();
    let mut outcomes = Vec::new();
    let elect = |topic: &str, partition: i32, records: &mut Vec<MetadataRecord>| {
        let result = elect_one(image, election_type, topic, partition);
        let (error, message) = match result {
            Ok(Some(record)) => {
                records.push(MetadataRecord::PartitionChange(record));
                (ErrorCode::None, None)
            }
            Ok(None) => (ErrorCode::ElectionNotNeeded, None),
            Err(error) => (error.code, error.message),
        };
        ElectionOutcome { topic: topic.to_string(), partition, error, message }
    };
    match partitions {
        Some(requested) => {
            for (topic, ids) in requested {
                for partition in ids {
                    outcomes.push(elect(topic, *partition, &mut records));
                }
            }
        }
        None => {
            let mut topics: Vec<_> = image.topics().collect();
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            for topic in topics {
                for partition in topic.partitions.keys() {
                    let outcome = elect(&topic.name, *partition, &mut records);
                    if outcome.error != ErrorCode::ElectionNotNeeded {
                        outcomes.push(outcome);
                    }
                }
            }
        }
    }
    (records, ElectLeadersOutcome { error: ErrorCode::None, message: None, partitions: outcomes })
}

/// `Ok(None)` when the partition already has the leader the election would pick.
fn elect_one(
    image: &MetadataImage,
    election_type: i8,
    topic_name: &str,
    partition_id: i32,
) -> Result<Option<PartitionChangeRecord>, ApiError> {
    let Some(topic) = image.topic(topic_name) else {
        return Err(ApiError::new(ErrorCode::UnknownTopicOrPartition, format!("No such topic as {topic_name}")));
    };
    let Some(partition) = topic.partitions.get(&partition_id) else {
        return Err(ApiError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("No such partition as {topic_name}-{partition_id}"),
        ));
    };
    let preferred = election_type == ELECTION_PREFERRED;
    if (preferred && partition.preferred_leader() == Some(partition.leader))
        || (!preferred && partition.leader != NO_LEADER)
    {
        return Ok(None);
    }
    // Only active brokers may lead: the preferred replica when it is in the ISR (else
    // the partition is kept online from the ISR); unclean, any live replica when no
    // ISR member is, with the ISR reset to it and the partition marked recovering.
    let acceptable = |replica: i32| partition_change::is_active(image, replica);
    let election = if preferred { Election::Preferred } else { Election::Unclean };
    match PartitionChange::new(partition, topic.id, partition_id, &acceptable).election(election).build() {
        Some(change) => Ok(Some(change)),
        None if preferred => Err(ApiError::bare(ErrorCode::PreferredLeaderNotAvailable)),
        None => Err(ApiError::bare(ErrorCode::EligibleLeadersNotAvailable)),
    }
}
