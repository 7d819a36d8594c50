//! Metadata snapshots as KRaft takes them: the whole image written as the records
//! that rebuild it, framed as a KRaft snapshot file.
//!
//! [`MetadataImage::snapshot_records`] follows the order of Kafka's image writers
//! (`MetadataImage.write`): feature levels (`metadata.version` first), broker
//! registrations, each topic followed by its partitions, config overrides, the next
//! producer id, ACLs, then SCRAM credentials. The cluster id is not among them: KRaft
//! keeps it in `meta.properties`, not in the log, so whoever loads a snapshot sets it
//! on the image from there, as at start-up.
//!
//! The bytes ([`encode_snapshot`]) are what Kafka's `RecordsSnapshotWriter` writes
//! to a `.checkpoint` file: a control batch holding a `SnapshotHeaderRecord`, data
//! batches of metadata records, then a control batch holding a `SnapshotFooterRecord`.
//! Offsets count from 0 inside the snapshot and every batch carries the snapshot's
//! epoch; the snapshot's own end offset is not in the bytes, Kafka keeps it in the
//! file name ([`snapshot_file_name`]).

use bytes::Bytes;
use gregor_protocol::messages::{
    config_record::ConfigRecord,
    feature_level_record::FeatureLevelRecord,
    partition_record::PartitionRecord,
    producer_ids_record::ProducerIdsRecord,
    register_broker_record::{self, BrokerFeature, RegisterBrokerRecord},
    snapshot_footer_record::SnapshotFooterRecord,
    snapshot_header_record::SnapshotHeaderRecord,
    topic_record::TopicRecord,
    user_scram_credential_record::UserScramCredentialRecord,
};
use gregor_protocol::records::{
    split_record_set, ControlRecordKey, ControlRecordType, RecordBatch, RecordBatchBuilder,
};
use gregor_protocol::Message;

use crate::controller::METADATA_VERSION_FEATURE;
use crate::error::MetadataError;
use crate::image::{BrokerRegistration, MetadataImage, PartitionImage};
use crate::record::{MetadataRecord, BATCH_DECOMPRESSED_BYTES_MAX};

/// Control record types as Kafka's `ControlRecordType` numbers them.
pub mod control_type {
    pub const LEADER_CHANGE: i16 = 2;
    pub const SNAPSHOT_HEADER: i16 = 3;
    pub const SNAPSHOT_FOOTER: i16 = 4;
    pub const KRAFT_VERSION: i16 = 5;
    pub const KRAFT_VOTERS: i16 = 6;
}

/// The version Kafka writes both the header and the footer at (`ControlRecordUtils`).
const SNAPSHOT_MARKER_VERSION: i16 = 0;
/// The version of a control record key.
const CONTROL_KEY_VERSION: i16 = 0;
/// Kafka's `KafkaRaftClient.MAX_BATCH_SIZE_BYTES`, the batch bound of its snapshot writer.
pub const SNAPSHOT_BATCH_BYTES_MAX: usize = 8 * 1024 * 1024;
/// The most a record's framing in a v2 batch adds to its value: length, attributes,
/// timestamp delta, offset delta, null key, value length and header count varints.
const RECORD_FRAMING_BYTES_MAX: usize = 5 + 1 + 10 + 5 + 1 + 5 + 1;
/// The batch header every batch starts with.
const BATCH_HEADER_BYTES: usize = gregor_protocol::records::BATCH_HEADER_BYTES;
/// Kafka's snapshot file suffix.
pub const SNAPSHOT_SUFFIX: &str = ".checkpoint";

/// Why a snapshot could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot term {term} does not fit a KRaft epoch (i32)")]
    TermTooLarge { term: u64 },
    #[error("snapshot index {index} does not fit a KRaft offset (i64) once past its end")]
    IndexTooLarge { index: u64 },
    #[error("metadata record of {bytes} bytes exceeds the snapshot batch bound of {bytes_max} bytes")]
    RecordTooLarge { bytes: usize, bytes_max: usize },
    #[error("snapshot is empty")]
    Empty,
    #[error("the first batch of a snapshot must be a control batch starting with a snapshot header")]
    MissingHeader,
    #[error("snapshot is incomplete: no snapshot footer ({partial_batch_bytes} bytes of a cut batch at the end)")]
    Incomplete { partial_batch_bytes: usize },
    #[error("{bytes} bytes follow the snapshot footer")]
    DataAfterFooter { bytes: usize },
    #[error("{records} records follow the snapshot footer in its batch")]
    RecordsAfterFooter { records: usize },
    #[error("control record type {record_type} cannot appear where it is in a snapshot")]
    UnexpectedControlRecord { record_type: i16 },
    #[error("control record has no {what}")]
    ControlRecordMissing { what: &'static str },
    #[error("snapshot batch at offset {base_offset} has epoch {epoch}, the snapshot's is {snapshot_epoch}")]
    EpochMismatch { base_offset: i64, epoch: i32, snapshot_epoch: i32 },
    #[error("snapshot batch starts at offset {base_offset}, expected {expected}")]
    OffsetGap { base_offset: i64, expected: i64 },
}

/// What a snapshot's bytes hold.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedSnapshot {
    /// The epoch (Raft term) every batch carries.
    pub epoch: i32,
    /// `SnapshotHeaderRecord.last_contained_log_timestamp`.
    pub last_contained_log_time_ms: i64,
    /// The metadata records, in order.
    pub records: Vec<MetadataRecord>,
}

impl MetadataImage {
    /// The whole image as the records that rebuild it from an empty image, in the
    /// order KRaft's image writers emit them. Replaying them into
    /// [`MetadataImage::empty`] gives an image equal to this one, the cluster id aside
    /// (it is not a record; see the module documentation).
    pub fn snapshot_records(&self) -> Vec<MetadataRecord> {
        let mut records = Vec::new();
        // metadata.version first: it decides how the records after it are read.
        if let Some(level) = self.metadata_version() {
            records.push(feature_level(METADATA_VERSION_FEATURE, level));
        }
        for (name, level) in self.features() {
            if name != METADATA_VERSION_FEATURE {
                records.push(feature_level(name, *level));
            }
        }
        records.extend(self.brokers().map(|broker| MetadataRecord::RegisterBroker(register_broker(broker))));
        for topic in self.topics() {
            records.push(MetadataRecord::Topic(TopicRecord {
                name: topic.name.clone(),
                topic_id: topic.id,
                ..Default::default()
            }));
            for (partition_id, partition) in &topic.partitions {
                records.push(MetadataRecord::Partition(partition_record(topic.id, *partition_id, partition)));
            }
        }
        for (resource_type, resource_name, configs) in self.config_resources() {
            for (name, value) in configs {
                records.push(MetadataRecord::Config(ConfigRecord {
                    resource_type,
                    resource_name: resource_name.to_string(),
                    name: name.clone(),
                    value: Some(value.clone()),
                    ..Default::default()
                }));
            }
        }
        // 0 is where an image starts; no ProducerIdsRecord can have left it there.
        if self.next_producer_id() > 0 {
            records.push(MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id: -1,
                broker_epoch: -1,
                next_producer_id: self.next_producer_id(),
                ..Default::default()
            }));
        }
        records.extend(self.acls().iter().map(|(id, acl)| MetadataRecord::AccessControlEntry(acl.to_record(*id))));
        // Kafka's SCRAM image is keyed by mechanism, then user.
        let mut scram: Vec<_> = self.scram_credentials().iter().collect();
        scram.sort_by(|((user_a, mechanism_a), _), ((user_b, mechanism_b), _)| {
            (mechanism_a, user_a).cmp(&(mechanism_b, user_b))
        });
        records.extend(scram.into_iter().map(|((user, mechanism), credential)| {
            MetadataRecord::UserScramCredential(UserScramCredentialRecord {
                name: user.clone(),
                mechanism: *mechanism,
                salt: Bytes::from(credential.salt.clone()),
                stored_key: Bytes::from(credential.stored_key.clone()),
                server_key: Bytes::from(credential.server_key.clone()),
                iterations: credential.iterations,
                ..Default::default()
            })
        }));
        records
    }
}

fn feature_level(name: &str, level: i16) -> MetadataRecord {
    MetadataRecord::FeatureLevel(FeatureLevelRecord {
        name: name.to_string(),
        feature_level: level,
        ..Default::default()
    })
}

fn register_broker(broker: &BrokerRegistration) -> RegisterBrokerRecord {
    RegisterBrokerRecord {
        broker_id: broker.id,
        incarnation_id: broker.incarnation_id,
        broker_epoch: broker.epoch,
        end_points: broker
            .endpoints
            .iter()
            .map(|endpoint| register_broker_record::BrokerEndpoint {
                name: endpoint.name.clone(),
                host: endpoint.host.clone(),
                port: endpoint.port,
                security_protocol: endpoint.security_protocol,
                ..Default::default()
            })
            .collect(),
        features: broker
            .supported_features
            .iter()
            .map(|(name, (min, max))| BrokerFeature {
                name: name.clone(),
                min_supported_version: *min,
                max_supported_version: *max,
                ..Default::default()
            })
            .collect(),
        rack: broker.rack.clone(),
        fenced: broker.fenced,
        in_controlled_shutdown: broker.in_controlled_shutdown,
        log_dirs: broker.log_dirs.clone(),
        ..Default::default()
    }
}

fn partition_record(topic_id: gregor_protocol::Uuid, partition_id: i32, partition: &PartitionImage) -> PartitionRecord {
    // Kafka sets the ELR tagged fields only when they hold something, to save space.
    let non_empty = |replicas: &Vec<i32>| (!replicas.is_empty()).then(|| replicas.clone());
    PartitionRecord {
        partition_id,
        topic_id,
        replicas: partition.replicas.clone(),
        isr: partition.isr.clone(),
        removing_replicas: partition.removing_replicas.clone(),
        adding_replicas: partition.adding_replicas.clone(),
        leader: partition.leader,
        leader_recovery_state: partition.leader_recovery_state,
        leader_epoch: partition.leader_epoch,
        partition_epoch: partition.partition_epoch,
        directories: partition.directories.clone(),
        eligible_leader_replicas: non_empty(&partition.elr),
        last_known_elr: non_empty(&partition.last_known_elr),
        ..Default::default()
    }
}

/// Kafka's name for a snapshot file: the end offset (the last contained index plus
/// one) in 20 digits, a dash, the epoch in 10 digits, then `.checkpoint`.
pub fn snapshot_file_name(last_contained_index: u64, last_contained_term: u64) -> Result<String, SnapshotError> {
    let end_offset = end_offset(last_contained_index)?;
    let epoch = snapshot_epoch(last_contained_term)?;
    Ok(format!("{end_offset:020}-{epoch:010}{SNAPSHOT_SUFFIX}"))
}

fn end_offset(last_contained_index: u64) -> Result<i64, SnapshotError> {
    i64::try_from(last_contained_index)
        .ok()
        .and_then(|index| index.checked_add(1))
        .ok_or(SnapshotError::IndexTooLarge { index: last_contained_index })
}

fn snapshot_epoch(term: u64) -> Result<i32, SnapshotError> {
    i32::try_from(term).map_err(|_| SnapshotError::TermTooLarge { term })
}

/// Writes `image` as a KRaft snapshot: header control batch, data batches of at most
/// [`SNAPSHOT_BATCH_BYTES_MAX`] bytes, footer control batch. Every batch carries
/// `last_contained_term` as its epoch; `last_contained_log_time_ms` (the append time
/// of the last entry the snapshot covers) goes into the header; records are stamped
/// `now_ms`. `last_contained_index` is checked to fit a KRaft snapshot id (it names
/// the file, see [`snapshot_file_name`]; it is not in the bytes).
pub fn encode_snapshot(
    image: &MetadataImage,
    last_contained_index: u64,
    last_contained_term: u64,
    last_contained_log_time_ms: i64,
    now_ms: i64,
) -> Result<Bytes, MetadataError> {
    end_offset(last_contained_index)?;
    let epoch = snapshot_epoch(last_contained_term)?;
    let header = SnapshotHeaderRecord {
        version: SNAPSHOT_MARKER_VERSION,
        last_contained_log_timestamp: last_contained_log_time_ms,
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut next_offset = 0i64;
    next_offset = append_control(
        &mut out,
        next_offset,
        epoch,
        now_ms,
        control_type::SNAPSHOT_HEADER,
        header.encode_to_bytes(SNAPSHOT_MARKER_VERSION)?,
    )?;

    let mut batch: Vec<Bytes> = Vec::new();
    let mut batch_bytes = BATCH_HEADER_BYTES;
    for record in image.snapshot_records() {
        let value = record.encode()?;
        let framed_bytes = value.len().saturating_add(RECORD_FRAMING_BYTES_MAX);
        if BATCH_HEADER_BYTES.saturating_add(framed_bytes) > SNAPSHOT_BATCH_BYTES_MAX {
            return Err(
                SnapshotError::RecordTooLarge { bytes: value.len(), bytes_max: SNAPSHOT_BATCH_BYTES_MAX }.into()
            );
        }
        if batch_bytes.saturating_add(framed_bytes) > SNAPSHOT_BATCH_BYTES_MAX {
            next_offset = append_data(&mut out, next_offset, epoch, now_ms, &batch)?;
            batch.clear();
            batch_bytes = BATCH_HEADER_BYTES;
        }
        batch_bytes += framed_bytes;
        batch.push(value);
    }
    if !batch.is_empty() {
        next_offset = append_data(&mut out, next_offset, epoch, now_ms, &batch)?;
    }

    let footer = SnapshotFooterRecord { version: SNAPSHOT_MARKER_VERSION, ..Default::default() };
    append_control(
        &mut out,
        next_offset,
        epoch,
        now_ms,
        control_type::SNAPSHOT_FOOTER,
        footer.encode_to_bytes(SNAPSHOT_MARKER_VERSION)?,
    )?;
    Ok(Bytes::from(out))
}

/// Appends a control batch of one record; returns the offset after it.
fn append_control(
    out: &mut Vec<u8>,
    base_offset: i64,
    epoch: i32,
    now_ms: i64,
    record_type: i16,
    value: Bytes,
) -> Result<i64, MetadataError> {
    let key = ControlRecordKey { version: CONTROL_KEY_VERSION, record_type: ControlRecordType::from_i16(record_type) };
    let mut builder = RecordBatchBuilder::new(base_offset).control(true).partition_leader_epoch(epoch);
    builder.append(now_ms, Some(key.encode()), Some(value), Vec::new())?;
    out.extend_from_slice(&builder.build()?);
    Ok(base_offset.saturating_add(1))
}

/// Appends a data batch of framed record values; returns the offset after it.
fn append_data(
    out: &mut Vec<u8>,
    base_offset: i64,
    epoch: i32,
    now_ms: i64,
    values: &[Bytes],
) -> Result<i64, MetadataError> {
    let mut builder = RecordBatchBuilder::new(base_offset).partition_leader_epoch(epoch);
    for value in values {
        builder.append(now_ms, None, Some(value.clone()), Vec::new())?;
    }
    out.extend_from_slice(&builder.build()?);
    let count = i64::try_from(values.len()).unwrap_or(i64::MAX);
    Ok(base_offset.saturating_add(count))
}

/// The metadata records of a snapshot written by [`encode_snapshot`] or by Kafka.
/// See [`read_snapshot`] for what is checked.
pub fn decode_snapshot(bytes: Bytes) -> Result<Vec<MetadataRecord>, MetadataError> {
    read_snapshot(bytes).map(|snapshot| snapshot.records)
}

/// Reads a snapshot, checking every batch's CRC, that the first record is a snapshot
/// header and the last a snapshot footer with nothing after it (a snapshot cut short
/// is [`SnapshotError::Incomplete`]), that batches follow each other without offset
/// gaps and share one epoch (neither field is under the CRC). KRaft's own control
/// records (leader change, kraft.version, voters) are skipped as Kafka's loader does.
/// Memory is bounded by the input: record counts are never trusted for allocation,
/// and a compressed batch decompresses into at most [`BATCH_DECOMPRESSED_BYTES_MAX`].
pub fn read_snapshot(bytes: Bytes) -> Result<DecodedSnapshot, MetadataError> {
    if bytes.is_empty() {
        return Err(SnapshotError::Empty.into());
    }
    let mut batches = split_record_set(bytes);
    let mut header: Option<(i32, i64)> = None;
    let mut records = Vec::new();
    let mut next_offset = 0i64;
    let mut footer_seen = false;
    for entry in batches.by_ref() {
        let batch = RecordBatch::new(entry?)?;
        let batch_header = *batch.header();
        if footer_seen {
            return Err(SnapshotError::DataAfterFooter { bytes: batch_header.size_bytes() }.into());
        }
        if batch_header.base_offset != next_offset {
            return Err(
                SnapshotError::OffsetGap { base_offset: batch_header.base_offset, expected: next_offset }.into()
            );
        }
        next_offset = batch_header.last_offset().saturating_add(1);
        if let Some((snapshot_epoch, _)) = header {
            if batch_header.partition_leader_epoch != snapshot_epoch {
                return Err(SnapshotError::EpochMismatch {
                    base_offset: batch_header.base_offset,
                    epoch: batch_header.partition_leader_epoch,
                    snapshot_epoch,
                }
                .into());
            }
        }
        let batch_records = batch.records(BATCH_DECOMPRESSED_BYTES_MAX)?;
        if !batch_header.is_control() {
            if header.is_none() {
                return Err(SnapshotError::MissingHeader.into());
            }
            for record in batch_records {
                let value = record.value.ok_or(MetadataError::MissingValue)?;
                records.push(MetadataRecord::decode_bytes(value)?);
            }
            continue;
        }
        let count = batch_records.len();
        for (index, record) in batch_records.into_iter().enumerate() {
            let key = record.key.ok_or(SnapshotError::ControlRecordMissing { what: "key" })?;
            let record_type = ControlRecordKey::decode(&key)?.record_type.as_i16();
            let mut value = record.value.ok_or(SnapshotError::ControlRecordMissing { what: "value" })?;
            match (record_type, header) {
                (control_type::SNAPSHOT_HEADER, None) => {
                    let decoded = SnapshotHeaderRecord::decode(&mut value, SNAPSHOT_MARKER_VERSION)?;
                    header = Some((batch_header.partition_leader_epoch, decoded.last_contained_log_timestamp));
                }
                (_, None) => return Err(SnapshotError::MissingHeader.into()),
                (control_type::SNAPSHOT_FOOTER, Some(_)) => {
                    SnapshotFooterRecord::decode(&mut value, SNAPSHOT_MARKER_VERSION)?;
                    footer_seen = true;
                    if index + 1 != count {
                        return Err(SnapshotError::RecordsAfterFooter { records: count - index - 1 }.into());
                    }
                }
                (control_type::LEADER_CHANGE | control_type::KRAFT_VERSION | control_type::KRAFT_VOTERS, Some(_)) => {}
                (record_type, Some(_)) => return Err(SnapshotError::UnexpectedControlRecord { record_type }.into()),
            }
        }
        // Kafka's reader refuses a first batch without a header record, even an empty one.
        if header.is_none() {
            return Err(SnapshotError::MissingHeader.into());
        }
    }
    let partial_batch_bytes = batches.remainder().len();
    if !footer_seen {
        if header.is_none() && partial_batch_bytes == 0 {
            return Err(SnapshotError::MissingHeader.into());
        }
        return Err(SnapshotError::Incomplete { partial_batch_bytes }.into());
    }
    if partial_batch_bytes > 0 {
        return Err(SnapshotError::DataAfterFooter { bytes: partial_batch_bytes }.into());
    }
    let (epoch, last_contained_log_time_ms) = header.ok_or(SnapshotError::MissingHeader)?;
    Ok(DecodedSnapshot { epoch, last_contained_log_time_ms, records })
}
