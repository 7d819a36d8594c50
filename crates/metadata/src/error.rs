//! Errors of framing, batching and replaying metadata records.

use gregor_protocol::records::RecordsError;
use gregor_protocol::{DecodeError, EncodeError, Uuid};

/// Why metadata records could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata record frame version {version} is not supported (only 1 is)")]
    UnsupportedFrameVersion { version: u32 },
    #[error("metadata record {what} {value} does not fit an i16")]
    FrameFieldTooLarge { what: &'static str, value: u32 },
    #[error("unknown metadata record type {record_type}")]
    UnknownRecordType { record_type: i16 },
    #[error("{remaining} bytes left over after metadata record type {record_type}")]
    TrailingBytes { record_type: i16, remaining: usize },
    #[error("metadata record has no value")]
    MissingValue,
    #[error("a metadata batch needs at least one record")]
    EmptyBatch,
    #[error("metadata batch is a control batch")]
    ControlBatch,
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Records(#[from] RecordsError),
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
}

/// Why a record could not be applied to the image. The log is the source of truth, so
/// any of these means the log holds records no valid controller would have written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("topic {name} already exists with id {existing}")]
    TopicNameExists { name: String, existing: Uuid },
    #[error("topic id {id} is already used by topic {existing}")]
    TopicIdExists { id: Uuid, existing: String },
    #[error("no topic with id {id}")]
    UnknownTopicId { id: Uuid },
    #[error("topic id {topic_id} has no partition {partition}")]
    UnknownPartition { topic_id: Uuid, partition: i32 },
    #[error("partition {partition} of topic id {topic_id} is invalid: {reason}")]
    InvalidPartition { topic_id: Uuid, partition: i32, reason: &'static str },
    #[error("unknown config resource type {resource_type}")]
    UnknownConfigResourceType { resource_type: i8 },
    #[error("next producer id {next} does not advance past {current}")]
    ProducerIdNotIncreasing { next: i64, current: i64 },
    #[error("broker {broker_id} is not registered")]
    UnknownBroker { broker_id: i32 },
    #[error("broker {broker_id} has epoch {current}, record names epoch {record}")]
    BrokerEpochMismatch { broker_id: i32, current: i64, record: i64 },
    #[error("an ACL with id {id} already exists")]
    AclIdExists { id: Uuid },
    #[error("user {user} has no SCRAM credential for mechanism {mechanism}")]
    UnknownScramCredential { user: String, mechanism: i8 },
    #[error("no ACL with id {id}")]
    UnknownAclId { id: Uuid },
    #[error("invalid {field} value {value} in BrokerRegistrationChangeRecord")]
    InvalidRegistrationChange { field: &'static str, value: i8 },
}
