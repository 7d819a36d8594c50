//! What the clients were asked to send, per API, with typed access.

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::compression::decompress;
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use gregor_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use gregor_protocol::messages::fetch_request::ReplicaState;
use gregor_protocol::records::{split_record_set, RecordBatch, BATCH_HEADER_BYTES};
use gregor_protocol::{ApiKey, Compression, RequestBody, Uuid};

use crate::fixtures::{fixtures_of, golden_dir, golden_topic_id, int_field, read_json, str_field, unhex};
use crate::to_json::decode_consumer_protocol;
use crate::{BASE_TIMESTAMP, CLIENTS, DECOMPRESSED_BYTES_MAX, FETCH_GROUP, GROUP, RECORD_COUNT, TOPIC};

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
