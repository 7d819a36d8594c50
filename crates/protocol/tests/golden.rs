//! Golden request frames captured from real clients (kafka-python and
//! librdkafka, see `tests/golden/README.md`): every fixture must decode, carry
//! the header and body values its `manifest.json` entry records, and re-encode
//! to exactly the bytes the client sent.
//!
//! The manifests hold kafka-python's decoding of each body under Kafka's field
//! names in snake_case, which are also the names of the generated Rust fields.
//! [`ToJson`] renders a decoded body in the same shape (record batches parsed
//! and decompressed, consumer-protocol bytes decoded) and [`compare`] checks
//! every value the manifest lists, so a field that decodes wrongly is reported
//! by its path. The `scenario_*` tests then assert what the clients were asked
//! to send, with typed access, so a regression reads as a broken scenario.
//!
//! Expected values come from the manifests and the README, never from hashes
//! or compressed bytes: the fixtures are regenerated from time to time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::{json, Map, Value};

use gregor_protocol::compression::decompress;
use gregor_protocol::frame::{decode_request, encode_request_frame, request_header_version, DecodedRequest};
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
use gregor_protocol::records::{split_record_set, RecordBatch, RecordBatchHeader, RecordsError, BATCH_HEADER_BYTES};
use gregor_protocol::{ApiKey, Compression, Message, RequestBody, Uuid};

const CLIENTS: [&str; 2] = ["kafka-python", "librdkafka"];
const TOPIC: &str = "golden-topic";
const GROUP: &str = "golden-group";
/// librdkafka's `rdk-fetch` consumer needs a group id to `assign`.
const FETCH_GROUP: &str = "golden-fetch-group";
const RECORD_COUNT: usize = 10;
const BASE_TIMESTAMP: i64 = 1_700_000_000_000;
/// Far above the 462 bytes the golden batches decompress to.
const DECOMPRESSED_BYTES_MAX: usize = 1 << 20;

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("golden")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("parsing {}: {error}", path.display()))
}

fn manifest(client: &str) -> Value {
    read_json(&golden_dir().join(client).join("manifest.json"))
}

/// One manifest entry and the frame bytes of its file, not yet decoded.
struct RawFixture {
    client: &'static str,
    entry: Value,
    frame: Bytes,
}

impl RawFixture {
    fn name(&self) -> String {
        format!("{}/{}", self.client, str_field(&self.entry, "file"))
    }
}

fn raw_fixtures() -> Vec<RawFixture> {
    let mut fixtures = Vec::new();
    for client in CLIENTS {
        let manifest = manifest(client);
        let entries = manifest["fixtures"].as_array().unwrap_or_else(|| panic!("{client}: manifest has no fixtures"));
        for entry in entries {
            let file = str_field(entry, "file");
            let path = golden_dir().join(client).join(file);
            let frame = std::fs::read(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
            fixtures.push(RawFixture { client, entry: entry.clone(), frame: Bytes::from(frame) });
        }
    }
    fixtures
}

/// A fixture whose frame decoded.
struct Fixture {
    client: &'static str,
    entry: Value,
    decoded: DecodedRequest,
}

impl Fixture {
    fn name(&self) -> String {
        format!("{}/{}", self.client, str_field(&self.entry, "file"))
    }

    fn version(&self) -> i16 {
        self.decoded.header.request_api_version
    }

    fn client_id(&self) -> &str {
        self.decoded.header.client_id.as_deref().unwrap_or_default()
    }

    fn profile(&self) -> &str {
        str_field(&self.entry, "broker_profile")
    }

    fn correlation_id(&self) -> i32 {
        self.decoded.header.correlation_id
    }

    fn body_json(&self) -> &Value {
        &self.entry["body"]
    }

    fn is_kafka_python(&self) -> bool {
        self.client == "kafka-python"
    }
}

/// Every fixture, decoded; panics naming the first that does not decode (the
/// `every_fixture_*` tests report all of them).
fn fixtures() -> Vec<Fixture> {
    raw_fixtures()
        .into_iter()
        .map(|raw| {
            let decoded = decode_request(raw.frame.clone())
                .unwrap_or_else(|error| panic!("{}: does not decode: {error}", raw.name()));
            Fixture { client: raw.client, entry: raw.entry, decoded }
        })
        .collect()
}

fn fixtures_of(api_key: ApiKey) -> Vec<Fixture> {
    let selected: Vec<Fixture> = fixtures().into_iter().filter(|fixture| fixture.decoded.api_key == api_key).collect();
    assert!(!selected.is_empty(), "no {} fixtures", api_key.name());
    selected
}

fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_else(|| panic!("manifest: {key} is not a string in {value}"))
}

fn int_field(value: &Value, key: &str) -> i64 {
    value[key].as_i64().unwrap_or_else(|| panic!("manifest: {key} is not an integer in {value}"))
}

/// `ApiVersions` -> `api_versions`, as in the fixture file names.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (index, character) in name.chars().enumerate() {
        if character.is_ascii_uppercase() && index > 0 {
            out.push('_');
        }
        out.push(character.to_ascii_lowercase());
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .filter(|pair| pair.len() == 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .unwrap_or_else(|| panic!("bad hex {text:?}"))
        })
        .collect()
}

fn parse_uuid(text: &str) -> Uuid {
    let digits: String = text.chars().filter(|character| *character != '-').collect();
    Uuid::from_u128(u128::from_str_radix(&digits, 16).unwrap_or_else(|_| panic!("bad uuid {text:?}")))
}

fn golden_topic_id(client: &str) -> Uuid {
    parse_uuid(str_field(&manifest(client)["topic_ids"], TOPIC))
}

// ---------------------------------------------------------------------------
// Decoded values as JSON, in the shape of the manifests
// ---------------------------------------------------------------------------

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
fn decode_consumer_protocol<M: Message>(bytes: &Bytes) -> Result<(i16, M, usize), String> {
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

fn body_json(body: &RequestBody) -> Result<Value, String> {
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

/// Checks every value of `expected` (a manifest body) against `actual` (the
/// decoded body as JSON), by field name; fields only the decoded side has
/// (those of other versions, or at their defaults) are not checked.
fn compare(path: &str, expected: &Value, actual: &Value, mismatches: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(expected), Value::Object(actual)) => {
            for (key, expected_value) in expected {
                let field_path = format!("{path}.{key}");
                match actual.get(key) {
                    Some(actual_value) => compare(&field_path, expected_value, actual_value, mismatches),
                    None => {
                        mismatches.push(format!("{field_path}: in the manifest ({expected_value}) but not decoded"))
                    }
                }
            }
            if let Some(error) = actual.get("error") {
                mismatches.push(format!("{path}: {error}"));
            }
        }
        (Value::Array(expected), Value::Array(actual)) if expected.len() == actual.len() => {
            for (index, (expected, actual)) in expected.iter().zip(actual).enumerate() {
                compare(&format!("{path}[{index}]"), expected, actual, mismatches);
            }
        }
        (Value::Array(expected), Value::Array(actual)) => mismatches.push(format!(
            "{path}: manifest has {} elements, decoded {}: expected {}, decoded {}",
            expected.len(),
            actual.len(),
            Value::Array(expected.clone()),
            Value::Array(actual.clone())
        )),
        (expected, actual) if expected == actual => {}
        (expected, actual) => mismatches.push(format!("{path}: expected {expected}, decoded {actual}")),
    }
}

// ---------------------------------------------------------------------------
// Every fixture
// ---------------------------------------------------------------------------

#[test]
fn every_fixture_file_has_a_manifest_entry_and_back() {
    let mut total = 0;
    for client in CLIENTS {
        let listed: BTreeSet<String> = manifest(client)["fixtures"]
            .as_array()
            .expect("fixtures array")
            .iter()
            .map(|entry| str_field(entry, "file").to_owned())
            .collect();
        let on_disk: BTreeSet<String> = std::fs::read_dir(golden_dir().join(client))
            .expect("fixture directory")
            .map(|entry| entry.expect("directory entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".bin"))
            .collect();
        assert_eq!(listed, on_disk, "{client}: manifest entries and .bin files differ");
        assert!(on_disk.len() >= 30, "{client}: only {} fixtures", on_disk.len());
        total += on_disk.len();

        // The APIs the capture covers (see the README tables).
        let mut apis: BTreeSet<&str> = BTreeSet::new();
        for entry in manifest(client)["fixtures"].as_array().expect("fixtures array") {
            let key = ApiKey::from_i16(int_field(entry, "api_key") as i16).expect("known api key");
            apis.insert(key.name());
        }
        let mut expected: BTreeSet<&str> = [
            ApiKey::ApiVersions,
            ApiKey::Metadata,
            ApiKey::Produce,
            ApiKey::ListOffsets,
            ApiKey::Fetch,
            ApiKey::FindCoordinator,
            ApiKey::JoinGroup,
            ApiKey::SyncGroup,
            ApiKey::Heartbeat,
            ApiKey::OffsetFetch,
            ApiKey::OffsetCommit,
            ApiKey::LeaveGroup,
        ]
        .iter()
        .map(|key| key.name())
        .collect();
        if client == "kafka-python" {
            // Only kafka-python's producer is idempotent.
            expected.insert(ApiKey::InitProducerId.name());
        }
        assert_eq!(apis, expected, "{client}: APIs covered");
    }
    assert!(total >= 60, "only {total} fixtures in all");
}

/// Header fields, manifest bookkeeping and decoding, for every fixture at once.
#[test]
fn every_fixture_decodes_with_the_manifest_header() {
    let mut failures = Vec::new();
    let fixtures = raw_fixtures();
    for raw in &fixtures {
        let entry = &raw.entry;
        let name = raw.name();
        let file = str_field(entry, "file");
        let mut fail = |what: String| failures.push(format!("{name}: {what}"));

        let api_key_raw = int_field(entry, "api_key");
        let version = int_field(entry, "api_version");
        if int_field(entry, "request_api_key") != api_key_raw || int_field(entry, "request_api_version") != version {
            fail("manifest api_key/api_version disagree with request_api_key/request_api_version".into());
        }
        if int_field(entry, "size") != raw.frame.len() as i64 {
            fail(format!("manifest size {} but the file has {} bytes", entry["size"], raw.frame.len()));
        }
        let Some(api_key) = ApiKey::from_i16(api_key_raw as i16) else {
            fail(format!("unknown api key {api_key_raw}"));
            continue;
        };
        let version = version as i16;
        if str_field(entry, "api") != api_key.name() {
            fail(format!("manifest api {} but key {api_key_raw} is {}", entry["api"], api_key.name()));
        }
        let file_prefix = format!("{}_v{version}_", snake_case(api_key.name()));
        if !file.starts_with(&file_prefix) {
            fail(format!("file name does not start with {file_prefix}"));
        }
        let header_version = request_header_version(api_key, version);
        if int_field(entry, "request_header_version") != i64::from(header_version) {
            fail(format!(
                "the client used request header v{} but Gregor expects v{header_version} for {} v{version}",
                entry["request_header_version"],
                api_key.name()
            ));
        }

        let decoded = match decode_request(raw.frame.clone()) {
            Ok(decoded) => decoded,
            Err(error) => {
                fail(format!("does not decode: {error}"));
                continue;
            }
        };
        let header = &decoded.header;
        if decoded.api_key != api_key || decoded.body.api_key() != api_key {
            fail(format!("decoded as {} / {}", decoded.api_key.name(), decoded.body.api_key().name()));
        }
        if header.request_api_key != api_key.key() || header.request_api_version != version {
            fail(format!("header key/version {}/{}", header.request_api_key, header.request_api_version));
        }
        if i64::from(header.correlation_id) != int_field(entry, "correlation_id") {
            fail(format!("correlation id {} but manifest {}", header.correlation_id, entry["correlation_id"]));
        }
        if header.client_id.as_deref() != entry["client_id"].as_str() {
            fail(format!("client id {:?} but manifest {}", header.client_id, entry["client_id"]));
        }
        if header.client_id.as_deref() != Some(str_field(entry, "scenario")) {
            fail(format!("client id {:?} is not the scenario {}", header.client_id, entry["scenario"]));
        }
        if !header.unknown_tagged_fields.is_empty() {
            fail(format!("header has unknown tagged fields {:?}", header.unknown_tagged_fields));
        }
        // The clients set no tagged field Gregor does not know.
        if format!("{:?}", decoded.body).contains("RawTaggedField") {
            fail(format!("body kept unknown tagged fields: {:?}", decoded.body));
        }
    }
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
    eprintln!("{} golden fixtures decoded", fixtures.len());
}

/// The decoded body holds every value of the manifest's decoding, by field
/// name, record batches and consumer-protocol bytes included.
#[test]
fn every_fixture_body_matches_the_manifest() {
    let mut failures = Vec::new();
    let mut values_checked = 0;
    for raw in raw_fixtures() {
        let name = raw.name();
        let decoded = match decode_request(raw.frame.clone()) {
            Ok(decoded) => decoded,
            Err(error) => {
                failures.push(format!("{name}: does not decode: {error}"));
                continue;
            }
        };
        let actual = match body_json(&decoded.body) {
            Ok(actual) => actual,
            Err(error) => {
                failures.push(format!("{name}: {error}"));
                continue;
            }
        };
        let expected = &raw.entry["body"];
        values_checked += count_leaves(expected);
        let mut mismatches = Vec::new();
        compare("body", expected, &actual, &mut mismatches);
        failures.extend(mismatches.into_iter().map(|mismatch| format!("{name}: {mismatch}")));
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    assert!(values_checked > 1000, "only {values_checked} manifest values checked");
    eprintln!("{values_checked} manifest values matched");
}

fn count_leaves(value: &Value) -> usize {
    match value {
        Value::Object(map) => map.values().map(count_leaves).sum(),
        Value::Array(items) => items.iter().map(count_leaves).sum::<usize>().max(1),
        _ => 1,
    }
}

/// Re-encoding the decoded header and body gives back the client's bytes.
#[test]
fn every_fixture_re_encodes_byte_for_byte() {
    let mut failures = Vec::new();
    for raw in raw_fixtures() {
        let name = raw.name();
        let decoded = match decode_request(raw.frame.clone()) {
            Ok(decoded) => decoded,
            Err(error) => {
                failures.push(format!("{name}: does not decode: {error}"));
                continue;
            }
        };
        let encoded = match encode_request_frame(&decoded.header, &decoded.body) {
            Ok(encoded) => encoded.freeze(),
            Err(error) => {
                failures.push(format!("{name}: does not encode: {error}"));
                continue;
            }
        };
        let Some((size, reencoded)) = encoded.split_first_chunk::<4>() else {
            failures.push(format!("{name}: encoded frame has no size prefix"));
            continue;
        };
        if i32::from_be_bytes(*size) as usize != reencoded.len() {
            failures.push(format!("{name}: size prefix {} for {} bytes", i32::from_be_bytes(*size), reencoded.len()));
        }
        if let Some(difference) = first_difference(&raw.frame, reencoded) {
            failures.push(format!("{name}: re-encoding differs: {difference}"));
        }
    }
    assert!(failures.is_empty(), "{} fixtures do not round-trip:\n{}", failures.len(), failures.join("\n"));
}

fn first_difference(expected: &[u8], actual: &[u8]) -> Option<String> {
    if expected == actual {
        return None;
    }
    let at = expected.iter().zip(actual).take_while(|(a, b)| a == b).count();
    let window = |bytes: &[u8]| hex(&bytes[at.saturating_sub(8)..(at + 16).min(bytes.len())]);
    Some(format!(
        "{} bytes expected, {} encoded; first difference at offset {at}: expected ..{}.. encoded ..{}.. \
         (windows start at offset {})",
        expected.len(),
        actual.len(),
        window(expected),
        window(actual),
        at.saturating_sub(8)
    ))
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

macro_rules! body {
    ($fixture:expr, $variant:ident) => {
        match &$fixture.decoded.body {
            RequestBody::$variant(body) => body,
            other => panic!("{}: expected {}, decoded {:?}", $fixture.name(), stringify!($variant), other.api_key()),
        }
    };
}

#[test]
fn scenario_api_versions_names_the_client_software() {
    let versions = read_json(&golden_dir().join("versions.json"));
    let mut flexible = 0;
    for fixture in fixtures_of(ApiKey::ApiVersions) {
        let body = body!(fixture, ApiVersions);
        let name = fixture.name();
        if fixture.version() >= 3 {
            flexible += 1;
            // versions.json: "<version> (<where from>), ..."
            let software_version = str_field(&versions, fixture.client).split_whitespace().next().expect("version");
            assert_eq!(body.client_software_name, fixture.client, "{name}: client_software_name");
            assert_eq!(body.client_software_version, software_version, "{name}: client_software_version");
        } else {
            assert_eq!(body, &ApiVersionsRequest::default(), "{name}: v0-2 bodies are empty");
        }
    }
    assert_eq!(flexible, CLIENTS.len(), "one flexible ApiVersions per client");
}

#[test]
fn scenario_metadata_asks_for_the_golden_topic() {
    for fixture in fixtures_of(ApiKey::Metadata) {
        let body = body!(fixture, Metadata);
        let name = fixture.name();
        let manifest_topics = fixture.body_json()["topics"].as_array().expect("topics");
        let topics = body.topics.as_ref().expect("a topic list, not null (all topics)");
        assert_eq!(topics.len(), manifest_topics.len(), "{name}: topic count");
        for topic in topics {
            assert_eq!(topic.name.as_deref(), Some(TOPIC), "{name}: topic name");
            assert_eq!(topic.topic_id, Uuid::ZERO, "{name}: clients ask by name");
        }
        assert_eq!(
            body.allow_auto_topic_creation,
            fixture.body_json()["allow_auto_topic_creation"].as_bool().expect("bool"),
            "{name}: allow_auto_topic_creation"
        );
        // librdkafka's consumers set allow.auto.create.topics=false by default.
        let auto_create = fixture.is_kafka_python() || fixture.client_id().starts_with("rdk-produce-");
        assert_eq!(body.allow_auto_topic_creation, auto_create, "{name}: allow_auto_topic_creation");
        assert!(!body.include_topic_authorized_operations, "{name}");
    }
}

/// The codec a `*-produce-<codec>` scenario asked for.
fn scenario_codec(client_id: &str) -> Compression {
    match client_id.rsplit('-').next() {
        Some("none") => Compression::None,
        Some("gzip") => Compression::Gzip,
        Some("snappy") => Compression::Snappy,
        Some("lz4") => Compression::Lz4,
        Some("zstd") => Compression::Zstd,
        _ => panic!("{client_id} is not a produce scenario"),
    }
}

#[test]
fn scenario_produce_batches_hold_the_ten_golden_records_in_every_codec() {
    let mut codecs_seen: BTreeMap<(&str, i16), BTreeSet<u8>> = BTreeMap::new();
    for fixture in fixtures_of(ApiKey::Produce) {
        let body = body!(fixture, Produce);
        let name = fixture.name();
        let codec = scenario_codec(fixture.client_id());
        codecs_seen.entry((fixture.client, fixture.version())).or_default().insert(codec.id());

        assert_eq!(body.acks, -1, "{name}: acks=all");
        assert_eq!(body.acks, int_field(fixture.body_json(), "acks") as i16, "{name}: acks");
        let timeout_ms = if fixture.is_kafka_python() { 10_000 } else { 30_000 };
        assert_eq!(body.timeout_ms, timeout_ms, "{name}: timeout_ms");
        assert_eq!(i64::from(body.timeout_ms), int_field(fixture.body_json(), "timeout_ms"), "{name}: timeout_ms");
        assert_eq!(body.transactional_id, None, "{name}: transactional_id");
        let [topic] = body.topic_data.as_slice() else { panic!("{name}: {} topics", body.topic_data.len()) };
        assert_eq!(topic.name, TOPIC, "{name}: topic");
        let [partition] = topic.partition_data.as_slice() else {
            panic!("{name}: {} partitions", topic.partition_data.len())
        };
        assert_eq!(partition.index, 0, "{name}: partition");
        let manifest_batch = &fixture.body_json()["topic_data"][0]["partition_data"][0]["record_batches"][0];

        let records = partition.records.clone().unwrap_or_else(|| panic!("{name}: null records"));
        let mut entries = split_record_set(records);
        let entry = entries
            .next()
            .unwrap_or_else(|| panic!("{name}: no record batch"))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert!(entries.next().is_none() && entries.remainder().is_empty(), "{name}: more than one batch");
        let batch = RecordBatch::new(entry).unwrap_or_else(|error| panic!("{name}: invalid batch (CRC?): {error}"));
        let header = batch.header();
        assert_eq!(header.compression().expect("known codec"), codec, "{name}: codec");
        assert_eq!(i64::from(header.crc), int_field(manifest_batch, "crc"), "{name}: crc");
        assert_eq!(header.magic, 2, "{name}: magic");
        assert_eq!(header.base_offset, 0, "{name}: base_offset");
        assert_eq!(header.records_count, RECORD_COUNT as i32, "{name}: record count");
        assert_eq!(header.last_offset_delta, RECORD_COUNT as i32 - 1, "{name}: last_offset_delta");
        assert_eq!(header.base_timestamp, BASE_TIMESTAMP, "{name}: base_timestamp");
        assert_eq!(header.max_timestamp, BASE_TIMESTAMP + RECORD_COUNT as i64 - 1, "{name}: max_timestamp");
        assert!(!header.is_transactional() && !header.is_control(), "{name}: plain data batch");
        assert_eq!(header.producer_id, int_field(manifest_batch, "producer_id"), "{name}: producer_id");
        assert_eq!(
            i64::from(header.producer_epoch),
            int_field(manifest_batch, "producer_epoch"),
            "{name}: producer_epoch"
        );
        assert_eq!(
            i64::from(header.base_sequence),
            int_field(manifest_batch, "base_sequence"),
            "{name}: base_sequence"
        );
        if fixture.is_kafka_python() {
            // Idempotent by default: an id from InitProducerId, epoch 0, sequence 0.
            assert!(header.producer_id >= 1000, "{name}: producer_id {}", header.producer_id);
            assert_eq!((header.producer_epoch, header.base_sequence), (0, 0), "{name}: epoch, sequence");
        } else {
            assert_eq!(
                (header.producer_id, header.producer_epoch, header.base_sequence),
                (-1, -1, -1),
                "{name}: librdkafka is not idempotent by default"
            );
        }
        if codec != Compression::None {
            let payload_bytes = batch.as_bytes().len() - BATCH_HEADER_BYTES;
            let uncompressed = decompress(codec, &batch.records_payload(), DECOMPRESSED_BYTES_MAX)
                .unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(uncompressed.len() as i64, int_field(manifest_batch, "uncompressed_size"), "{name}");
            assert!(payload_bytes < uncompressed.len(), "{name}: compression made it smaller");
        }

        let records = batch.records(DECOMPRESSED_BYTES_MAX).unwrap_or_else(|error| panic!("{name}: records: {error}"));
        assert_eq!(records.len(), RECORD_COUNT, "{name}: records");
        for (index, record) in records.iter().enumerate() {
            let i = index + 1;
            assert_eq!(record.key.as_deref(), Some(format!("key-{i}").as_bytes()), "{name}: key of record {i}");
            assert_eq!(record.value.as_deref(), Some(format!("value-{i}").as_bytes()), "{name}: value of record {i}");
            assert_eq!(record.offset_delta, index as i32, "{name}: offset_delta of record {i}");
            assert_eq!(record.timestamp_delta, index as i64, "{name}: timestamp_delta of record {i}");
            assert_eq!(header.record_timestamp(record), BASE_TIMESTAMP + index as i64, "{name}: timestamp {i}");
            assert_eq!(record.attributes, 0, "{name}: attributes of record {i}");
            let headers: Vec<(&str, Option<&[u8]>)> =
                record.headers.iter().map(|header| (header.key.as_str(), header.value.as_deref())).collect();
            assert_eq!(headers, [("golden-header", Some(b"header-value".as_slice()))], "{name}: headers of record {i}");
        }
    }
    let all_codecs: BTreeSet<u8> =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd]
            .iter()
            .map(|codec| codec.id())
            .collect();
    assert_eq!(codecs_seen.len(), 4, "two Produce versions per client: {codecs_seen:?}");
    for ((client, version), codecs) in &codecs_seen {
        assert_eq!(codecs, &all_codecs, "{client} Produce v{version}: codecs");
    }
}

#[test]
fn scenario_list_offsets_asks_for_the_earliest_offset() {
    for fixture in fixtures_of(ApiKey::ListOffsets) {
        let body = body!(fixture, ListOffsets);
        let name = fixture.name();
        assert_eq!(body.replica_id, -1, "{name}: replica_id (a consumer)");
        let isolation_level = if fixture.is_kafka_python() { 0 } else { 1 };
        assert_eq!(body.isolation_level, isolation_level, "{name}: isolation_level");
        let [topic] = body.topics.as_slice() else { panic!("{name}: {} topics", body.topics.len()) };
        assert_eq!(topic.name, TOPIC, "{name}: topic");
        let [partition] = topic.partitions.as_slice() else { panic!("{name}: {} partitions", topic.partitions.len()) };
        assert_eq!(partition.partition_index, 0, "{name}: partition");
        assert_eq!(partition.timestamp, -2, "{name}: timestamp EARLIEST (auto.offset.reset=earliest)");
    }
}

#[test]
fn scenario_fetch_names_the_golden_partition() {
    let mut offsets = BTreeSet::new();
    for fixture in fixtures_of(ApiKey::Fetch) {
        let body = body!(fixture, Fetch);
        let name = fixture.name();
        let expected = fixture.body_json();
        let manifest_partition = &expected["topics"][0]["partitions"][0];
        assert_eq!(body.replica_id, -1, "{name}: replica_id (a consumer)");
        assert_eq!(body.replica_state, ReplicaState::default(), "{name}: replica_state");
        assert_eq!(body.max_wait_ms, 200, "{name}: max_wait_ms (fetch.wait.max.ms)");
        assert_eq!(body.min_bytes, 1, "{name}: min_bytes");
        assert_eq!(i64::from(body.max_bytes), int_field(expected, "max_bytes"), "{name}: max_bytes");
        assert_eq!(body.max_bytes, 52_428_800, "{name}: max_bytes (fetch.max.bytes default)");
        let (isolation_level, session_epoch) = if fixture.is_kafka_python() { (0, 0) } else { (1, -1) };
        assert_eq!(body.isolation_level, isolation_level, "{name}: isolation_level");
        assert_eq!(body.session_id, 0, "{name}: session_id");
        assert_eq!(body.session_epoch, session_epoch, "{name}: session_epoch");
        assert!(body.forgotten_topics_data.is_empty(), "{name}: forgotten topics");
        let [topic] = body.topics.as_slice() else { panic!("{name}: {} topics", body.topics.len()) };
        if fixture.version() >= 13 {
            assert_eq!(topic.topic_id, golden_topic_id(fixture.client), "{name}: topic id of {TOPIC}");
            assert_eq!(topic.topic, "", "{name}: no topic name from v13");
        } else {
            assert_eq!(topic.topic, TOPIC, "{name}: topic");
            assert_eq!(topic.topic_id, Uuid::ZERO, "{name}: no topic id before v13");
        }
        let [partition] = topic.partitions.as_slice() else { panic!("{name}: {} partitions", topic.partitions.len()) };
        assert_eq!(partition.partition, 0, "{name}: partition");
        assert_eq!(partition.fetch_offset, int_field(manifest_partition, "fetch_offset"), "{name}: fetch_offset");
        assert_eq!(
            i64::from(partition.partition_max_bytes),
            int_field(manifest_partition, "partition_max_bytes"),
            "{name}: partition_max_bytes"
        );
        assert_eq!(partition.partition_max_bytes, 1_048_576, "{name}: partition_max_bytes");
        offsets.insert(partition.fetch_offset);
    }
    // From the start, then after the 50 records the producers wrote.
    assert_eq!(offsets, BTreeSet::from([0, 50]), "fetch offsets");
}

#[test]
fn scenario_find_coordinator_asks_for_the_group() {
    for fixture in fixtures_of(ApiKey::FindCoordinator) {
        let body = body!(fixture, FindCoordinator);
        let name = fixture.name();
        let group = if fixture.client_id() == "rdk-fetch" { FETCH_GROUP } else { GROUP };
        assert_eq!(body.key_type, 0, "{name}: key_type GROUP");
        if fixture.version() >= 4 {
            assert_eq!(body.coordinator_keys, [group], "{name}: coordinator_keys");
        } else {
            assert_eq!(body.key, group, "{name}: key");
        }
    }
}

/// `<client_id>-<8 digits>-0000-0000-0000-000000000000`, as the fake broker assigns.
fn is_assigned_member_id(member_id: &str, client_id: &str) -> bool {
    let Some(rest) = member_id.strip_prefix(client_id).and_then(|rest| rest.strip_prefix('-')) else {
        return false;
    };
    let Some((digits, suffix)) = rest.split_once('-') else {
        return false;
    };
    digits.len() == 8 && digits.bytes().all(|byte| byte.is_ascii_digit()) && suffix == "0000-0000-0000-000000000000"
}

/// The member ids the JoinGroup fixtures of each client carry after the
/// MEMBER_ID_REQUIRED step.
fn assigned_member_ids() -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut ids: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for fixture in fixtures_of(ApiKey::JoinGroup) {
        let body = body!(fixture, JoinGroup);
        if !body.member_id.is_empty() {
            ids.entry(fixture.client).or_default().insert(body.member_id.clone());
        }
    }
    ids
}

#[test]
fn scenario_join_group_subscribes_and_follows_the_member_id_two_step() {
    let mut joins: BTreeMap<(&str, String), Vec<(i32, String)>> = BTreeMap::new();
    for fixture in fixtures_of(ApiKey::JoinGroup) {
        let body = body!(fixture, JoinGroup);
        let name = fixture.name();
        assert_eq!(body.group_id, GROUP, "{name}: group_id");
        assert_eq!(body.protocol_type, "consumer", "{name}: protocol_type");
        assert_eq!(body.session_timeout_ms, 10_000, "{name}: session_timeout_ms");
        assert_eq!(body.rebalance_timeout_ms, 300_000, "{name}: rebalance_timeout_ms (max.poll.interval.ms)");
        assert_eq!(body.group_instance_id, None, "{name}: group_instance_id (dynamic member)");
        let names: Vec<&str> = body.protocols.iter().map(|protocol| protocol.name.as_str()).collect();
        assert_eq!(names, ["range", "roundrobin"], "{name}: protocol names");
        for (index, protocol) in body.protocols.iter().enumerate() {
            let manifest_protocol = &fixture.body_json()["protocols"][index];
            let metadata_hex = str_field(&manifest_protocol["metadata"], "hex");
            assert_eq!(protocol.metadata.as_ref(), unhex(metadata_hex), "{name}: {} metadata bytes", protocol.name);
            let (version, subscription, trailing_bytes) =
                decode_consumer_protocol::<ConsumerProtocolSubscription>(&protocol.metadata)
                    .unwrap_or_else(|error| panic!("{name}: {} subscription: {error}", protocol.name));
            assert_eq!(
                i64::from(version),
                int_field(&manifest_protocol["metadata_decoded"], "version"),
                "{name}: subscription version"
            );
            assert_eq!(subscription.topics, [TOPIC], "{name}: subscribed topics");
            assert_eq!(trailing_bytes, 0, "{name}: subscription trailing bytes");
        }
        assert_eq!(body.member_id, str_field(fixture.body_json(), "member_id"), "{name}: member_id");
        joins
            .entry((fixture.client, fixture.profile().to_owned()))
            .or_default()
            .push((fixture.correlation_id(), body.member_id.clone()));
        if !body.member_id.is_empty() {
            assert!(
                is_assigned_member_id(&body.member_id, fixture.client_id()),
                "{name}: member_id {}",
                body.member_id
            );
        }
    }
    for ((client, profile), mut member_ids) in joins {
        member_ids.sort();
        // KIP-394: the first JoinGroup has no member id; the broker answers
        // MEMBER_ID_REQUIRED with one, which every later JoinGroup carries.
        assert_eq!(member_ids[0].1, "", "{client} ({profile}): first JoinGroup's member_id");
    }
    let assigned = assigned_member_ids();
    for client in CLIENTS {
        assert_eq!(assigned.get(client).map(BTreeSet::len), Some(1), "{client}: one assigned member id: {assigned:?}");
    }
}

#[test]
fn scenario_sync_group_carries_the_assignment() {
    let assigned = assigned_member_ids();
    let mut assigns_golden_partition: BTreeMap<(&str, String), bool> = BTreeMap::new();
    for fixture in fixtures_of(ApiKey::SyncGroup) {
        let body = body!(fixture, SyncGroup);
        let name = fixture.name();
        let expected = fixture.body_json();
        assert_eq!(body.group_id, GROUP, "{name}: group_id");
        assert_eq!(i64::from(body.generation_id), int_field(expected, "generation_id"), "{name}: generation_id");
        assert_eq!(body.member_id, str_field(expected, "member_id"), "{name}: member_id");
        assert!(assigned[fixture.client].contains(&body.member_id), "{name}: member_id from JoinGroup");
        if fixture.version() >= 5 {
            assert_eq!(body.protocol_type.as_deref(), Some("consumer"), "{name}: protocol_type");
            assert_eq!(body.protocol_name.as_deref(), Some("range"), "{name}: protocol_name");
        }
        // The single member is the leader and assigns to itself.
        let [assignment] = body.assignments.as_slice() else {
            panic!("{name}: {} assignments", body.assignments.len())
        };
        assert_eq!(assignment.member_id, body.member_id, "{name}: assignment member");
        let manifest_assignment = &expected["assignments"][0];
        assert_eq!(
            assignment.assignment.as_ref(),
            unhex(str_field(&manifest_assignment["assignment"], "hex")),
            "{name}: assignment bytes"
        );
        let (version, decoded, trailing_bytes) =
            decode_consumer_protocol::<ConsumerProtocolAssignment>(&assignment.assignment)
                .unwrap_or_else(|error| panic!("{name}: assignment: {error}"));
        assert_eq!(version, 0, "{name}: assignment version");
        assert_eq!(trailing_bytes, 0, "{name}: assignment trailing bytes");
        let partitions: Vec<(&str, &[i32])> = decoded
            .assigned_partitions
            .iter()
            .map(|topic| (topic.topic.as_str(), topic.partitions.as_slice()))
            .collect();
        let golden = partitions == [(TOPIC, [0].as_slice())];
        assert!(golden || partitions.is_empty(), "{name}: assigned partitions {partitions:?}");
        *assigns_golden_partition.entry((fixture.client, fixture.profile().to_owned())).or_default() |= golden;
    }
    for ((client, profile), golden) in assigns_golden_partition {
        assert!(golden, "{client} ({profile}): no SyncGroup assigns {TOPIC}/0");
    }
}

#[test]
fn scenario_heartbeat_and_leave_group_name_the_member() {
    let assigned = assigned_member_ids();
    for fixture in fixtures_of(ApiKey::Heartbeat) {
        let body = body!(fixture, Heartbeat);
        let name = fixture.name();
        assert_eq!(body.group_id, GROUP, "{name}: group_id");
        assert_eq!(
            i64::from(body.generation_id),
            int_field(fixture.body_json(), "generation_id"),
            "{name}: generation_id"
        );
        assert!(assigned[fixture.client].contains(&body.member_id), "{name}: member_id {}", body.member_id);
        assert_eq!(body.group_instance_id, None, "{name}: group_instance_id");
    }
    for fixture in fixtures_of(ApiKey::LeaveGroup) {
        let body = body!(fixture, LeaveGroup);
        let name = fixture.name();
        assert_eq!(body.group_id, GROUP, "{name}: group_id");
        if fixture.version() >= 3 {
            let [member] = body.members.as_slice() else { panic!("{name}: {} members", body.members.len()) };
            assert!(assigned[fixture.client].contains(&member.member_id), "{name}: member_id {}", member.member_id);
            assert_eq!(member.group_instance_id, None, "{name}: group_instance_id");
        } else {
            assert!(assigned[fixture.client].contains(&body.member_id), "{name}: member_id {}", body.member_id);
        }
    }
}

#[test]
fn scenario_offset_commit_and_fetch_name_the_golden_partition() {
    let assigned = assigned_member_ids();
    for fixture in fixtures_of(ApiKey::OffsetCommit) {
        let body = body!(fixture, OffsetCommit);
        let name = fixture.name();
        assert_eq!(body.group_id, GROUP, "{name}: group_id");
        assert_eq!(
            i64::from(body.generation_id_or_member_epoch),
            int_field(fixture.body_json(), "generation_id_or_member_epoch"),
            "{name}: generation"
        );
        assert!(assigned[fixture.client].contains(&body.member_id), "{name}: member_id {}", body.member_id);
        let [topic] = body.topics.as_slice() else { panic!("{name}: {} topics", body.topics.len()) };
        assert_eq!(topic.name, TOPIC, "{name}: topic");
        let [partition] = topic.partitions.as_slice() else { panic!("{name}: {} partitions", topic.partitions.len()) };
        assert_eq!(partition.partition_index, 0, "{name}: partition");
        // kafka-python consumed all 50 records, librdkafka stopped after one.
        let committed = if fixture.is_kafka_python() { 50 } else { 1 };
        assert_eq!(partition.committed_offset, committed, "{name}: committed_offset");
        assert_eq!(partition.committed_metadata.as_deref(), Some(""), "{name}: committed_metadata");
    }
    for fixture in fixtures_of(ApiKey::OffsetFetch) {
        let body = body!(fixture, OffsetFetch);
        let name = fixture.name();
        let topics: Vec<(&str, &[i32])> = if fixture.version() >= 8 {
            let [group] = body.groups.as_slice() else { panic!("{name}: {} groups", body.groups.len()) };
            assert_eq!(group.group_id, GROUP, "{name}: group_id");
            let topics = group.topics.as_ref().unwrap_or_else(|| panic!("{name}: null topics (all)"));
            topics.iter().map(|topic| (topic.name.as_str(), topic.partition_indexes.as_slice())).collect()
        } else {
            assert_eq!(body.group_id, GROUP, "{name}: group_id");
            let topics = body.topics.as_ref().unwrap_or_else(|| panic!("{name}: null topics (all)"));
            topics.iter().map(|topic| (topic.name.as_str(), topic.partition_indexes.as_slice())).collect()
        };
        assert_eq!(topics, [(TOPIC, [0].as_slice())], "{name}: topics");
        assert_eq!(
            body.require_stable,
            fixture.body_json()["require_stable"].as_bool().unwrap_or(false),
            "{name}: require_stable"
        );
    }
}

#[test]
fn scenario_init_producer_id_is_non_transactional() {
    for fixture in fixtures_of(ApiKey::InitProducerId) {
        let body = body!(fixture, InitProducerId);
        let name = fixture.name();
        assert!(fixture.client_id().starts_with("kp-produce-"), "{name}: from an idempotent producer");
        assert_eq!(body.transactional_id, None, "{name}: transactional_id");
        assert_eq!(body.transaction_timeout_ms, 0, "{name}: transaction_timeout_ms");
        assert_eq!((body.producer_id, body.producer_epoch), (-1, -1), "{name}: no existing producer id");
    }
}
