//! The metadata records in Kafka's framing, and the record batches that carry them.
//!
//! A record value is: unsigned varint frame version (always 1), unsigned varint record
//! type (the record's API key), unsigned varint record version, then the record body in
//! its flexible encoding. Records carry no key. Each controller operation becomes one
//! batch so that the log applies it all or not at all.

use bytes::{Bytes, BytesMut};
use gregor_protocol::messages::{
    access_control_entry_record::AccessControlEntryRecord,
    broker_registration_change_record::BrokerRegistrationChangeRecord, config_record::ConfigRecord,
    feature_level_record::FeatureLevelRecord, fence_broker_record::FenceBrokerRecord, no_op_record::NoOpRecord,
    partition_change_record::PartitionChangeRecord, partition_record::PartitionRecord,
    producer_ids_record::ProducerIdsRecord, register_broker_record::RegisterBrokerRecord,
    remove_access_control_entry_record::RemoveAccessControlEntryRecord, remove_topic_record::RemoveTopicRecord,
    remove_user_scram_credential_record::RemoveUserScramCredentialRecord, topic_record::TopicRecord,
    unfence_broker_record::UnfenceBrokerRecord, unregister_broker_record::UnregisterBrokerRecord,
    user_scram_credential_record::UserScramCredentialRecord,
};
use gregor_protocol::records::{RecordBatch, RecordBatchBuilder};
use gregor_protocol::{codec, varint, Message, WriteBuf};

use crate::error::MetadataError;

/// The only frame version Kafka writes; 0 was the unsupported 2.8 preview.
pub const FRAME_VERSION: u32 = 1;

/// Decompression bound when reading a metadata batch: far above any batch one controller
/// operation writes, low enough that a forged batch cannot exhaust memory.
pub const BATCH_DECOMPRESSED_BYTES_MAX: usize = 64 * 1024 * 1024;

macro_rules! metadata_records {
    ($($(#[$doc:meta])* $variant:ident($ty:ty) = $version:expr),+ $(,)?) => {
        /// One KRaft metadata record of a type Gregor writes or understands.
        #[derive(Debug, Clone, PartialEq)]
        pub enum MetadataRecord {
            $($(#[$doc])* $variant($ty),)+
        }

        impl MetadataRecord {
            /// The record type: the API key of the record's message.
            pub fn record_type(&self) -> i16 {
                match self {
                    $(MetadataRecord::$variant(_) => <$ty as Message>::API_KEY.unwrap_or(-1),)+
                }
            }

            /// The version this record is written at: the one Kafka writes at the
            /// metadata.version Gregor runs (see [`crate::controller::METADATA_VERSION`]).
            pub fn version(&self) -> i16 {
                match self {
                    $(MetadataRecord::$variant(_) => $version,)+
                }
            }

            fn encode_body(&self, buf: &mut WriteBuf) -> Result<(), MetadataError> {
                match self {
                    $(MetadataRecord::$variant(record) => record.encode(buf, $version)?,)+
                }
                Ok(())
            }

            fn decode_body(record_type: i16, version: i16, buf: &mut Bytes) -> Result<Self, MetadataError> {
                $(
                    if <$ty as Message>::API_KEY == Some(record_type) {
                        return Ok(MetadataRecord::$variant(<$ty as Message>::decode(buf, version)?));
                    }
                )+
                Err(MetadataError::UnknownRecordType { record_type })
            }
        }
    };
}

metadata_records! {
    RegisterBroker(RegisterBrokerRecord) = 3,
    UnregisterBroker(UnregisterBrokerRecord) = 0,
    Topic(TopicRecord) = 0,
    Partition(PartitionRecord) = 2,
    Config(ConfigRecord) = 0,
    PartitionChange(PartitionChangeRecord) = 2,
    FenceBroker(FenceBrokerRecord) = 0,
    UnfenceBroker(UnfenceBrokerRecord) = 0,
    RemoveTopic(RemoveTopicRecord) = 0,
    FeatureLevel(FeatureLevelRecord) = 0,
    ProducerIds(ProducerIdsRecord) = 0,
    BrokerRegistrationChange(BrokerRegistrationChangeRecord) = 2,
    NoOp(NoOpRecord) = 0,
    AccessControlEntry(AccessControlEntryRecord) = 0,
    RemoveAccessControlEntry(RemoveAccessControlEntryRecord) = 0,
    UserScramCredential(UserScramCredentialRecord) = 0,
    RemoveUserScramCredential(RemoveUserScramCredentialRecord) = 0,
}

impl MetadataRecord {
    /// Frames the record as a metadata log record value.
    pub fn encode(&self) -> Result<Bytes, MetadataError> {
        let mut header = BytesMut::with_capacity(3);
        varint::put_uvarint(&mut header, FRAME_VERSION);
        // Record types and versions are non-negative i16s by construction of the table.
        varint::put_uvarint(&mut header, u32::from(self.record_type().unsigned_abs()));
        varint::put_uvarint(&mut header, u32::from(self.version().unsigned_abs()));
        let mut buf = WriteBuf::new();
        buf.put_slice(&header);
        self.encode_body(&mut buf)?;
        Ok(buf.freeze())
    }

    /// Reads one framed record value. Any version the generated code knows is accepted,
    /// so logs written by other Kafka versions still replay.
    pub fn decode(value: &[u8]) -> Result<MetadataRecord, MetadataError> {
        Self::decode_bytes(Bytes::copy_from_slice(value))
    }

    /// [`MetadataRecord::decode`] of a shared buffer: byte fields borrow from it.
    pub fn decode_bytes(mut buf: Bytes) -> Result<MetadataRecord, MetadataError> {
        let frame_version = codec::read_uvarint(&mut buf)?;
        if frame_version != FRAME_VERSION {
            return Err(MetadataError::UnsupportedFrameVersion { version: frame_version });
        }
        let record_type = frame_i16(codec::read_uvarint(&mut buf)?, "record type")?;
        let version = frame_i16(codec::read_uvarint(&mut buf)?, "record version")?;
        let record = Self::decode_body(record_type, version, &mut buf)?;
        if !buf.is_empty() {
            return Err(MetadataError::TrailingBytes { record_type, remaining: buf.len() });
        }
        Ok(record)
    }
}

fn frame_i16(value: u32, what: &'static str) -> Result<i16, MetadataError> {
    i16::try_from(value).map_err(|_| MetadataError::FrameFieldTooLarge { what, value })
}

/// Builds the one batch (magic 2, no keys, offsets from 0) holding an operation's records.
/// The log assigns the base offset and leader epoch when it appends the batch.
pub fn encode_batch(records: &[MetadataRecord], now_ms: i64) -> Result<BytesMut, MetadataError> {
    if records.is_empty() {
        return Err(MetadataError::EmptyBatch);
    }
    let mut builder = RecordBatchBuilder::new(0);
    for record in records {
        builder.append(now_ms, None, Some(record.encode()?), Vec::new())?;
    }
    let bytes = builder.build()?;
    Ok(BytesMut::from(&bytes[..]))
}

/// Decodes every record of one metadata batch, in order.
pub fn decode_batch(batch: &RecordBatch) -> Result<Vec<MetadataRecord>, MetadataError> {
    // KRaft control batches (leader change, snapshot markers, voters) live in the same
    // log but are not metadata records; the caller decides what to do with them.
    if batch.header().is_control() {
        return Err(MetadataError::ControlBatch);
    }
    let records = batch.records(BATCH_DECOMPRESSED_BYTES_MAX)?;
    records
        .iter()
        .map(|record| record.value.clone().ok_or(MetadataError::MissingValue).and_then(MetadataRecord::decode_bytes))
        .collect()
}
