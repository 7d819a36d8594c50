//! Decoded values as JSON, in the shape of the manifests.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use gregor_protocol::compression::decompress;
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::consumer_protocol_assignment::{self, ConsumerProtocolAssignment};
use gregor_protocol::messages::consumer_protocol_subscription::{self, ConsumerProtocolSubscription};
use gregor_protocol::messages::fetch_request::{
    FetchPartition, FetchRequest, FetchTopic, ForgottenTopic, ReplicaState,
};
use gregor_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use gregor_protocol::messages::heartbeat_request::HeartbeatRequest;
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use gregor_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use gregor_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic};
use gregor_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use gregor_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use gregor_protocol::messages::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use gregor_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use gregor_protocol::records::{split_record_set, RecordBatch, RecordBatchHeader, RecordsError};
use gregor_protocol::{Compression, Message, RequestBody, Uuid};

use crate::fixtures::hex;
use crate::DECOMPRESSED_BYTES_MAX;

trait ToJson {
    fn to_json(&self) -> Value;
}

macro_rules! to_json_via_from {
    ($($ty:ty),*) => {$(
        impl ToJson for $ty {
            fn to_json(&self) -> Value {
                Value::from(*self)
            }
        }
    )*};
}

to_json_via_from!(bool, i8, i16, i32, i64);

impl ToJson for String {
    fn to_json(&self) -> Value {
        Value::from(self.as_str())
    }
}

/// kafka-python shows bytes fields as `{"hex": ...}`.
impl ToJson for Bytes {
    fn to_json(&self) -> Value {
        json!({ "hex": hex(self) })
    }
}

/// kafka-python shows the all-zero ("no id") UUID as null.
impl ToJson for Uuid {
    fn to_json(&self) -> Value {
        if *self == Uuid::ZERO {
            return Value::Null;
        }
        let digits = format!("{:032x}", self.as_u128());
        Value::from(format!(
            "{}-{}-{}-{}-{}",
            &digits[..8],
            &digits[8..12],
            &digits[12..16],
            &digits[16..20],
            &digits[20..]
        ))
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToJson::to_json)
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(ToJson::to_json).collect())
    }
}

/// Renders the listed fields under their own (snake_case) names, which are
/// the names kafka-python's decoding uses in the manifests.
macro_rules! to_json_struct {
    ($($ty:ty { $($field:ident),* $(,)? })*) => {$(
        impl ToJson for $ty {
            fn to_json(&self) -> Value {
                let mut map = Map::new();
                $(map.insert(stringify!($field).to_owned(), self.$field.to_json());)*
                Value::Object(map)
            }
        }
    )*};
}

to_json_struct! {
    ApiVersionsRequest { client_software_name, client_software_version }
    MetadataRequest {
        topics, allow_auto_topic_creation, include_cluster_authorized_operations, include_topic_authorized_operations,
    }
    MetadataRequestTopic { topic_id, name }
    InitProducerIdRequest {
        transactional_id, transaction_timeout_ms, producer_id, producer_epoch, enable2_pc, keep_prepared_txn,
    }
    ProduceRequest { transactional_id, acks, timeout_ms, topic_data }
    TopicProduceData { name, topic_id, partition_data }
    ListOffsetsRequest { replica_id, isolation_level, topics, timeout_ms }
    ListOffsetsTopic { name, partitions }
    ListOffsetsPartition { partition_index, current_leader_epoch, timestamp, max_num_offsets }
    FetchRequest {
        cluster_id, replica_id, replica_state, max_wait_ms, min_bytes, max_bytes, isolation_level, session_id,
        session_epoch, topics, forgotten_topics_data, rack_id,
    }
    FetchTopic { topic, topic_id, partitions }
    FetchPartition {
        partition, current_leader_epoch, fetch_offset, last_fetched_epoch, log_start_offset, partition_max_bytes,
        replica_directory_id, high_watermark,
    }
    ForgottenTopic { topic, topic_id, partitions }
    FindCoordinatorRequest { key, key_type, coordinator_keys }
    JoinGroupRequest {
        group_id, session_timeout_ms, rebalance_timeout_ms, member_id, group_instance_id, protocol_type, protocols,
        reason,
    }
    SyncGroupRequest {
        group_id, generation_id, member_id, group_instance_id, protocol_type, protocol_name, assignments,
    }
    OffsetFetchRequest { group_id, topics, groups, require_stable }
    OffsetFetchRequestTopic { name, partition_indexes }
    OffsetFetchRequestGroup { group_id, member_id, member_epoch, topics }
    OffsetFetchRequestTopics { name, topic_id, partition_indexes }
    OffsetCommitRequest {
        group_id, generation_id_or_member_epoch, member_id, group_instance_id, retention_time_ms, topics,
    }
    OffsetCommitRequestTopic { name, topic_id, partitions }
    OffsetCommitRequestPartition {
        partition_index, committed_offset, committed_leader_epoch, commit_timestamp, committed_metadata,
    }
    HeartbeatRequest { group_id, generation_id, member_id, group_instance_id }
    LeaveGroupRequest { group_id, member_id, members }
    MemberIdentity { member_id, group_instance_id, reason }
    ConsumerProtocolSubscription { topics, user_data, owned_partitions, generation_id, rack_id }
    consumer_protocol_subscription::TopicPartition { topic, partitions }
    ConsumerProtocolAssignment { assigned_partitions, user_data }
    consumer_protocol_assignment::TopicPartition { topic, partitions }
}

/// A tagged field left at its default is absent from the wire, which
/// kafka-python shows as null.
impl ToJson for ReplicaState {
    fn to_json(&self) -> Value {
        if *self == ReplicaState::default() {
            return Value::Null;
        }
        json!({ "replica_id": self.replica_id, "replica_epoch": self.replica_epoch })
    }
}

/// The manifests show the record batches of a partition parsed, not the raw bytes.
impl ToJson for PartitionProduceData {
    fn to_json(&self) -> Value {
        let batches = match &self.records {
            None => Value::Null,
            Some(records) => Value::Array(
                split_record_set(records.clone())
                    .map(|entry| entry.map_or_else(|error| json!({ "error": error.to_string() }), |e| batch_json(&e)))
                    .collect(),
            ),
        };
        json!({ "index": self.index, "record_batches": batches })
    }
}

/// The metadata of the "consumer" protocol type is a versioned
/// ConsumerProtocolSubscription; the manifests show it decoded too.
impl ToJson for JoinGroupRequestProtocol {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "metadata": self.metadata.to_json(),
            "metadata_decoded": consumer_protocol_json::<ConsumerProtocolSubscription>(&self.metadata),
        })
    }
}

impl ToJson for SyncGroupRequestAssignment {
    fn to_json(&self) -> Value {
        json!({
            "member_id": self.member_id,
            "assignment": self.assignment.to_json(),
            "assignment_decoded": consumer_protocol_json::<ConsumerProtocolAssignment>(&self.assignment),
        })
    }
}

/// Decodes consumer-protocol bytes: an i16 version, then the message at that version.
pub fn decode_consumer_protocol<M: Message>(bytes: &Bytes) -> Result<(i16, M, usize), String> {
    let version = bytes.get(..2).ok_or("shorter than its version field")?;
    let version = i16::from_be_bytes([version[0], version[1]]);
    let mut rest = bytes.slice(2..);
    let message = M::decode(&mut rest, version).map_err(|error| error.to_string())?;
    Ok((version, message, rest.len()))
}

fn consumer_protocol_json<M: Message + ToJson>(bytes: &Bytes) -> Value {
    match decode_consumer_protocol::<M>(bytes) {
        Ok((version, message, trailing_bytes)) => {
            let mut value = message.to_json();
            value["version"] = json!(version);
            value["trailing_bytes"] = json!(trailing_bytes);
            value
        }
        Err(error) => json!({ "error": error }),
    }
}

fn codec_name(codec: Compression) -> String {
    format!("{codec:?}").to_lowercase()
}

/// How the compressed payload is framed, in the words of `select_fixtures.py`.
fn compression_framing(codec: Compression, payload: &[u8]) -> Value {
    let framing = match codec {
        Compression::None => return Value::Null,
        Compression::Gzip if payload.starts_with(&[0x1f, 0x8b]) => "gzip member (RFC 1952)",
        Compression::Snappy if payload.starts_with(b"\x82SNAPPY\x00") => {
            "xerial snappy framing (16-byte header, then [int32 len][raw snappy block]...)"
        }
        Compression::Snappy => "raw snappy block (no framing)",
        Compression::Lz4 if payload.starts_with(&[0x04, 0x22, 0x4d, 0x18]) => "LZ4 frame format",
        Compression::Zstd if payload.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) => "zstd frame",
        _ => "unknown framing",
    };
    Value::from(framing)
}

fn lossy(bytes: &Option<Bytes>) -> Value {
    bytes.as_ref().map_or(Value::Null, |bytes| Value::from(String::from_utf8_lossy(bytes).into_owned()))
}

/// One record batch as the manifests show it; errors of Gregor's parser
/// appear as `error` members, which no manifest value matches.
fn batch_json(entry: &Bytes) -> Value {
    let header = match RecordBatchHeader::parse(entry) {
        Ok(header) => header,
        Err(error) => return json!({ "error": error.to_string() }),
    };
    let mut value = json!({
        "base_offset": header.base_offset,
        "batch_length": header.batch_length,
        "partition_leader_epoch": header.partition_leader_epoch,
        "magic": header.magic,
        "crc": header.crc,
        "attributes": header.attributes,
        "timestamp_type": format!("{:?}", header.timestamp_type()),
        "is_transactional": header.is_transactional(),
        "is_control": header.is_control(),
        "last_offset_delta": header.last_offset_delta,
        "base_timestamp": header.base_timestamp,
        "max_timestamp": header.max_timestamp,
        "producer_id": header.producer_id,
        "producer_epoch": header.producer_epoch,
        "base_sequence": header.base_sequence,
        "record_count": header.records_count,
    });
    let batch = match RecordBatch::new(entry.clone()) {
        Ok(batch) => {
            value["crc_ok"] = json!(true);
            batch
        }
        Err(RecordsError::CrcMismatch { .. }) => {
            value["crc_ok"] = json!(false);
            return value;
        }
        Err(error) => {
            value["error"] = json!(error.to_string());
            return value;
        }
    };
    let codec = match header.compression() {
        Ok(codec) => codec,
        Err(error) => {
            value["compression"] = json!(error.to_string());
            return value;
        }
    };
    let payload = batch.records_payload();
    value["compression"] = json!(codec_name(codec));
    value["compression_framing"] = compression_framing(codec, &payload);
    match codec {
        Compression::None => {
            value["compressed_size"] = Value::Null;
            value["uncompressed_size"] = json!(payload.len());
        }
        codec => {
            value["compressed_size"] = json!(payload.len());
            value["uncompressed_size"] = match decompress(codec, &payload, DECOMPRESSED_BYTES_MAX) {
                Ok(records) => json!(records.len()),
                Err(error) => json!(error.to_string()),
            };
        }
    }
    value["records"] = match batch.records(DECOMPRESSED_BYTES_MAX) {
        Ok(records) => records
            .iter()
            .map(|record| {
                json!({
                    "length": record.body_len_bytes().map_err(|error| error.to_string()).ok(),
                    "attributes": record.attributes,
                    "timestamp_delta": record.timestamp_delta,
                    "offset_delta": record.offset_delta,
                    "key": lossy(&record.key),
                    "value": lossy(&record.value),
                    "headers": record
                        .headers
                        .iter()
                        .map(|header| json!([header.key, lossy(&header.value)]))
                        .collect::<Vec<_>>(),
                })
            })
            .collect(),
        Err(error) => json!(error.to_string()),
    };
    value
}

pub fn body_json(body: &RequestBody) -> Result<Value, String> {
    Ok(match body {
        RequestBody::ApiVersions(body) => body.to_json(),
        RequestBody::Metadata(body) => body.to_json(),
        RequestBody::InitProducerId(body) => body.to_json(),
        RequestBody::Produce(body) => body.to_json(),
        RequestBody::ListOffsets(body) => body.to_json(),
        RequestBody::Fetch(body) => body.to_json(),
        RequestBody::FindCoordinator(body) => body.to_json(),
        RequestBody::JoinGroup(body) => body.to_json(),
        RequestBody::SyncGroup(body) => body.to_json(),
        RequestBody::OffsetFetch(body) => body.to_json(),
        RequestBody::OffsetCommit(body) => body.to_json(),
        RequestBody::Heartbeat(body) => body.to_json(),
        RequestBody::LeaveGroup(body) => body.to_json(),
        other => return Err(format!("no JSON rendering for {} in this test; add one", other.api_key().name())),
    })
}
