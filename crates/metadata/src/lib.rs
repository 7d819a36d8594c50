//! # gregor-metadata
//!
//! What the cluster metadata log means.
//!
//! **Owns:** the KRaft metadata records (topics, partitions, configs, producer-id blocks,
//! features, broker registrations, ACLs, SCRAM credentials) in Kafka's framing, the in-memory image they build,
//! and the controller's decisions: each operation reads the image and returns the records
//! to append plus a per-item result; the image changes only in `replay`. Also the
//! authorization decision over the image's ACLs ([`acl::authorize`]), and snapshots: the
//! image written as the records that rebuild it, in KRaft's snapshot framing ([`snapshot`]).
//!
//! **Never:** I/O, async runtimes, clocks (time is an argument), or how the log is stored
//! and replicated (the broker appends the records; a later quorum replicates them).
//!
//! The log holds records in Kafka's own framing (see [`record`]) at the record versions
//! of metadata.version 4.0-IV3 ([`controller::METADATA_VERSION`]), so a Kafka tool can
//! read Gregor's metadata log and Gregor replays any version the generated code knows.

pub mod acl;
pub mod controller;
pub mod error;
pub mod image;
pub mod record;
pub mod scram;
pub mod snapshot;

#[cfg(test)]
mod tests;

pub use controller::{
    allocate_producer_ids, alter_configs, bootstrap, create_partitions, create_topics, delete_topics, elect_leaders,
    finalize_missing_features, incremental_alter_configs, register_broker, supported_features, AlterOp, ApiError,
    ConfigChange, ConfigOutcome, ConfigResource, ControllerContext, CreatePartitionsOutcome, CreateTopicOutcome,
    DeleteTopicOutcome, ElectLeadersOutcome, ElectionOutcome, NewPartitions, NewTopic, ProducerIdBlock,
    SupportedFeature, TopicRef,
};
pub use error::{MetadataError, ReplayError};
pub use image::{BrokerEndpoint, BrokerRegistration, MetadataImage, PartitionImage, TopicImage};
pub use record::{decode_batch, encode_batch, MetadataRecord};
pub use snapshot::{
    decode_snapshot, encode_snapshot, read_snapshot, snapshot_file_name, DecodedSnapshot, SnapshotError,
};
