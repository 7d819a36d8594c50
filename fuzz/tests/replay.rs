//! Runs every fuzz target's body on stable over seed inputs (the golden request
//! frames, freshly built batches and message sets) and pseudo-random mutations
//! of them. Not a substitute for fuzzing, but it proves the targets run and
//! their invariants hold on valid input.
//!
//! With `GREGOR_FUZZ_WRITE_SEEDS=1` the seeds are also written to
//! `corpus/<target>/`, the directory `cargo fuzz run <target>` starts from.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use gregor_protocol::compression::Compression;
use gregor_protocol::frame;
use gregor_protocol::records::{
    encode_message_set, LegacyMessage, RecordBatchBuilder, TimestampType, MAGIC_V0, MAGIC_V1,
};
use gregor_protocol::{ApiKey, ResponseBody};
use gregor_protocol_fuzz as targets;

const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];
const MUTATIONS_PER_SEED: usize = 300;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// A few byte flips, a truncation or a duplicated span, as a fuzzer would try.
fn mutate(rng: &mut XorShift, seed: &[u8], keep_prefix: usize) -> Vec<u8> {
    let mut out = seed.to_vec();
    if out.len() <= keep_prefix {
        return out;
    }
    match rng.below(4) {
        0 | 1 => {
            for _ in 0..1 + rng.below(4) {
                let at = keep_prefix + rng.below(out.len() - keep_prefix);
                out[at] ^= 1 << rng.below(8);
            }
        }
        2 => out.truncate(keep_prefix + rng.below(out.len() - keep_prefix)),
        _ => {
            let at = keep_prefix + rng.below(out.len() - keep_prefix);
            let span = out[at..].iter().take(1 + rng.below(16)).copied().collect::<Vec<_>>();
            let to = keep_prefix + rng.below(out.len() - keep_prefix);
            out.splice(to..to, span);
        }
    }
    out
}

fn run(target: &str, body: fn(&[u8]), seeds: &[Vec<u8>], keep_prefix: usize) {
    if std::env::var_os("GREGOR_FUZZ_WRITE_SEEDS").is_some() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        for (index, seed) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{index:04}")), seed).expect("write seed");
        }
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for seed in seeds {
        body(seed);
        for _ in 0..MUTATIONS_PER_SEED {
            body(&mutate(&mut rng, seed, keep_prefix));
        }
    }
    for length in [0, 1, 2, 3, 8, 17, 61, 100, 400] {
        for _ in 0..50 {
            let noise = (0..length).map(|_| rng.next() as u8).collect::<Vec<_>>();
            body(&noise);
        }
    }
}

fn golden_frames() -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/protocol/tests/golden");
    let mut frames = Vec::new();
    for client in ["librdkafka", "kafka-python"] {
        let mut paths = std::fs::read_dir(root.join(client))
            .expect("golden frames")
            .map(|entry| entry.expect("dir entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "bin"))
            .collect::<Vec<_>>();
        paths.sort();
        for path in paths {
            let bytes = std::fs::read(&path).expect("read golden frame");
            frames.push((path, bytes));
        }
    }
    assert!(frames.len() > 20, "golden frames missing");
    frames
}

fn sample_batch(codec: Compression, records: usize) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(100).compression(codec).producer(9, 1, 0);
    for index in 0..records {
        let key = Bytes::from(format!("key-{index}"));
        let value = Bytes::from(format!("value {index} ").repeat(1 + index % 5));
        builder.append(1_700_000_000_000 + index as i64, Some(key), Some(value), Vec::new()).expect("append");
    }
    builder.build().expect("build")
}

fn sample_legacy(magic: i8, codec: Compression) -> Vec<u8> {
    let messages = (0..3)
        .map(|offset| LegacyMessage {
            offset: 10 + offset,
            magic,
            timestamp_type: TimestampType::CreateTime,
            timestamp_ms: if magic == MAGIC_V0 { -1 } else { 1_000 + offset },
            key: (offset != 1).then(|| Bytes::from_static(b"key")),
            value: Some(Bytes::from_static(b"some value bytes")),
        })
        .collect::<Vec<_>>();
    encode_message_set(&messages, codec).expect("encode legacy")
}

#[test]
fn request_frame() {
    let frames = golden_frames();
    for (path, frame) in &frames {
        frame::decode_request(Bytes::copy_from_slice(frame))
            .unwrap_or_else(|error| panic!("{} does not decode: {error}", path.display()));
    }
    let seeds = frames.into_iter().map(|(_, frame)| frame).collect::<Vec<_>>();
    // Mutate only past the API key and version so most mutants reach a body decoder.
    run("request_frame", targets::request_frame, &seeds, 4);
}

#[test]
fn response_bodies() {
    // Seeds: for each API at its lowest and highest version, whatever decodes
    // out of runs of 0x00 (the default of non-flexible versions) or 0x01
    // (empty compact arrays and strings of flexible ones), re-encoded.
    let mut seeds = Vec::new();
    for (index, api_key) in ApiKey::ALL.iter().enumerate() {
        let versions = api_key.versions();
        for version in [versions.min, versions.max] {
            for fill in [0u8, 1] {
                let mut input = Bytes::from(vec![fill; 512]);
                let Ok(body) = ResponseBody::decode(*api_key, version, &mut input) else { continue };
                let mut buf = gregor_protocol::WriteBuf::new();
                if body.encode(&mut buf, version).is_err() {
                    continue;
                }
                let mut seed = vec![index as u8, (version - versions.min) as u8];
                seed.extend_from_slice(&buf.to_vec());
                seeds.push(seed);
            }
        }
    }
    assert!(seeds.len() > ApiKey::ALL.len(), "only {} response seeds", seeds.len());
    run("response_bodies", targets::response_bodies, &seeds, 2);
}

#[test]
fn record_batch() {
    let mut seeds = Vec::new();
    for codec in CODECS {
        for flags in [0u8, 1] {
            let mut seed = vec![flags];
            seed.extend(sample_batch(codec, 5));
            seed.extend(sample_batch(codec, 1));
            seeds.push(seed);
        }
    }
    run("record_batch", targets::record_batch, &seeds, 1);
}

#[test]
fn compressed_batch() {
    let mut seeds = Vec::new();
    for codec in CODECS {
        let mut seed = vec![codec.id()];
        seed.extend(gregor_protocol::compression::compress(codec, &sample_batch(Compression::None, 4)).unwrap());
        seeds.push(seed);
    }
    run("compressed_batch", targets::compressed_batch, &seeds, 1);
}

#[test]
fn legacy_message_set() {
    let mut seeds = Vec::new();
    for (magic, codecs) in [(MAGIC_V0, &CODECS[..3]), (MAGIC_V1, &CODECS[..4])] {
        for codec in codecs {
            for flags in [0u8, 1] {
                let mut seed = vec![flags];
                seed.extend(sample_legacy(magic, *codec));
                seeds.push(seed);
            }
        }
    }
    run("legacy_message_set", targets::legacy_message_set, &seeds, 1);
}

#[test]
fn varint() {
    let seeds = vec![
        vec![0],
        vec![0x7f],
        vec![0x80, 0x01],
        vec![0xff, 0xff, 0xff, 0xff, 0x0f],
        vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        vec![0x80, 0x80, 0x80, 0x00],
    ];
    run("varint", targets::varint, &seeds, 0);
}

/// A key and value as the record targets read them (see `key_and_value` in the library).
fn framed_record((key, value): (Bytes, Option<Bytes>)) -> Vec<u8> {
    let mut out = (key.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&key);
    if let Some(value) = value {
        out.extend_from_slice(&value);
    }
    out
}

#[test]
fn coordinator_record() {
    use gregor_group::CoordinatorRecord;
    use gregor_protocol::messages::group_metadata_key::GroupMetadataKey;
    use gregor_protocol::messages::group_metadata_value::{GroupMetadataValue, MemberMetadata};
    use gregor_protocol::messages::offset_commit_key::OffsetCommitKey;
    use gregor_protocol::messages::offset_commit_value::OffsetCommitValue;
    let frame = |record: CoordinatorRecord| framed_record(record.encode().expect("seed records encode"));
    let offset_key =
        OffsetCommitKey { group: "group".into(), topic: "topic".into(), partition: 7, ..Default::default() };
    let seeds = vec![
        frame(CoordinatorRecord::OffsetCommit {
            key: offset_key.clone(),
            value: Some(OffsetCommitValue {
                offset: 42,
                leader_epoch: 3,
                metadata: "meta".into(),
                commit_timestamp: 1_700_000_000_000,
                expire_timestamp: -1,
                ..Default::default()
            }),
        }),
        frame(CoordinatorRecord::OffsetCommit { key: offset_key, value: None }),
        frame(CoordinatorRecord::GroupMetadata {
            key: GroupMetadataKey { group: "group".into(), ..Default::default() },
            value: Some(GroupMetadataValue {
                protocol_type: "consumer".into(),
                generation: 5,
                protocol: Some("range".into()),
                leader: Some("member-1".into()),
                current_state_timestamp: 1_700_000_000_000,
                members: vec![MemberMetadata {
                    member_id: "member-1".into(),
                    group_instance_id: Some("instance".into()),
                    client_id: "client".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout: 300_000,
                    session_timeout: 45_000,
                    subscription: Bytes::from_static(&[0, 1, 0, 0, 0, 1, 0, 1, b't']),
                    assignment: Bytes::from_static(&[0, 1, 0, 0, 0, 0]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }),
    ];
    run("coordinator_record", targets::coordinator_record, &seeds, 2);
}

#[test]
fn txn_record() {
    use gregor_txn::{TxnRecord, TxnState, TxnValue};
    let frame = |record: TxnRecord| framed_record(record.encode().expect("seed records encode"));
    let value = |version: i16, state: TxnState, partitions: &[(&str, i32)]| TxnValue {
        version,
        producer_id: 1000,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch: 3,
        timeout_ms: 60_000,
        state,
        partitions: partitions.iter().map(|(topic, index)| (topic.to_string(), *index)).collect(),
        last_update_timestamp_ms: 1_700_000_000_000,
        start_timestamp_ms: 1_700_000_000_000,
        client_transaction_version: if version >= 1 { 2 } else { 0 },
    };
    let seeds = vec![
        frame(TxnRecord {
            transactional_id: "tx".into(),
            value: Some(value(0, TxnState::Ongoing, &[("orders", 0), ("orders", 3), ("__consumer_offsets", 7)])),
        }),
        frame(TxnRecord { transactional_id: "tx".into(), value: Some(value(1, TxnState::PrepareCommit, &[("t", 1)])) }),
        frame(TxnRecord { transactional_id: "tx".into(), value: Some(value(0, TxnState::Empty, &[])) }),
        frame(TxnRecord { transactional_id: "gone".into(), value: None }),
    ];
    run("txn_record", targets::txn_record, &seeds, 2);
}

#[test]
fn metadata_record() {
    use gregor_metadata::acl::AclBinding;
    use gregor_metadata::MetadataRecord;
    use gregor_protocol::messages::{
        config_record::ConfigRecord, remove_access_control_entry_record::RemoveAccessControlEntryRecord,
        topic_record::TopicRecord, user_scram_credential_record::UserScramCredentialRecord,
    };
    use gregor_protocol::Uuid;
    let acl = AclBinding {
        resource_type: 2,
        resource_name: "orders-".into(),
        pattern_type: 4,
        principal: "User:alice".into(),
        host: "*".into(),
        operation: 3,
        permission: 3,
    };
    let mut records = gregor_metadata::controller::bootstrap(1, &[("PLAINTEXT".into(), "127.0.0.1".into(), 9092)], 7);
    records.extend([
        MetadataRecord::Topic(TopicRecord {
            name: "orders".into(),
            topic_id: Uuid::from_u128(9),
            ..Default::default()
        }),
        MetadataRecord::Config(ConfigRecord {
            resource_type: 32,
            resource_name: "group".into(),
            name: "consumer.session.timeout.ms".into(),
            value: Some("50000".into()),
            ..Default::default()
        }),
        MetadataRecord::AccessControlEntry(acl.to_record(Uuid::from_u128(5))),
        MetadataRecord::RemoveAccessControlEntry(RemoveAccessControlEntryRecord {
            id: Uuid::from_u128(5),
            ..Default::default()
        }),
        MetadataRecord::UserScramCredential(UserScramCredentialRecord {
            name: "alice".into(),
            mechanism: 1,
            salt: Bytes::from_static(b"salt"),
            stored_key: Bytes::from(vec![1; 32]),
            server_key: Bytes::from(vec![2; 32]),
            iterations: 4096,
            ..Default::default()
        }),
    ]);
    let seeds: Vec<Vec<u8>> =
        records.iter().map(|record| record.encode().expect("seed records encode").to_vec()).collect();
    // The frame version and record type are the first two bytes: keep them so most
    // mutations reach the record bodies.
    run("metadata_record", targets::metadata_record, &seeds, 2);
}

#[test]
fn metadata_snapshot() {
    use gregor_metadata::snapshot::encode_snapshot;
    use gregor_metadata::{MetadataImage, MetadataRecord};
    use gregor_protocol::messages::{
        partition_change_record::PartitionChangeRecord, partition_record::PartitionRecord, topic_record::TopicRecord,
        user_scram_credential_record::UserScramCredentialRecord,
    };
    use gregor_protocol::Uuid;
    let topic_id = Uuid::from_u128(9);
    let mut records = gregor_metadata::controller::bootstrap(1, &[("PLAINTEXT".into(), "127.0.0.1".into(), 9092)], 7);
    records.extend([
        MetadataRecord::Topic(TopicRecord { name: "orders".into(), topic_id, ..Default::default() }),
        MetadataRecord::Partition(PartitionRecord {
            partition_id: 0,
            topic_id,
            replicas: vec![1, 2],
            isr: vec![1, 2],
            leader: 1,
            directories: vec![Uuid::from_u128(3), Uuid::from_u128(4)],
            ..Default::default()
        }),
        MetadataRecord::PartitionChange(PartitionChangeRecord {
            partition_id: 0,
            topic_id,
            leader: 2,
            isr: Some(vec![2]),
            eligible_leader_replicas: Some(vec![1]),
            ..Default::default()
        }),
        MetadataRecord::UserScramCredential(UserScramCredentialRecord {
            name: "alice".into(),
            mechanism: 1,
            salt: Bytes::from_static(b"salt"),
            stored_key: Bytes::from(vec![1; 32]),
            server_key: Bytes::from(vec![2; 32]),
            iterations: 4096,
            ..Default::default()
        }),
    ]);
    let mut image = MetadataImage::empty();
    let mut seeds = vec![];
    for (index, record) in records.iter().enumerate() {
        image.replay(record).expect("seed records replay");
        if index % 3 == 0 || index + 1 == records.len() {
            let snapshot = encode_snapshot(&image, 40 + index as u64, 2, 1_700_000_000_000, 0).expect("seed encodes");
            for flags in [0u8, 1] {
                seeds.push([&[flags][..], &snapshot[..]].concat());
            }
        }
    }
    // The flags byte stays; mutations land in the snapshot.
    run("metadata_snapshot", targets::metadata_snapshot, &seeds, 1);
}

#[test]
fn controller_decisions() {
    // Each seed is a request sequence in the target's choice bytes: [validate-only,
    // items, operation, fields...]. They create the offsets topic compacted, then try to
    // delete it, grow it to 2^31 - 1 partitions and make it deletable, and ask for a
    // topic of 2^31 - 1 partitions and one of 9,999.
    let create_offsets = [200, 0, 0, 100, 4, 5, 3, 1, 0, 100, 0];
    let delete_offsets = [200, 0, 1, 1, 4];
    let grow_offsets = [200, 0, 2, 4, 10, 0];
    let unsafe_policy = [200, 0, 3, 4, 1, 0, 0, 100, 1];
    let huge_topic = [200, 0, 0, 100, 0, 10, 3, 0];
    let large_topic = [200, 0, 0, 100, 9, 7, 3, 0];
    let grow_large = [200, 0, 2, 9, 10, 0];
    let seeds: Vec<Vec<u8>> = vec![
        [&create_offsets[..], &delete_offsets, &grow_offsets, &unsafe_policy].concat(),
        [&huge_topic[..], &large_topic, &grow_large].concat(),
        [&create_offsets[..], &huge_topic, &unsafe_policy, &delete_offsets].concat(),
    ];
    run("controller_decisions", targets::controller_decisions, &seeds, 0);
}

#[test]
fn quorum_frames() {
    use gregor_quorum::wire;
    use gregor_quorum::{Entry, Message, MessageType};
    let mut heartbeat = Message::default();
    heartbeat.set_msg_type(MessageType::MsgHeartbeat);
    heartbeat.to = 2;
    heartbeat.from = 1;
    heartbeat.term = 3;
    let mut append = Message::default();
    append.set_msg_type(MessageType::MsgAppend);
    append.entries = vec![Entry { index: 4, term: 3, data: Bytes::from_static(b"batch"), ..Default::default() }].into();
    let frame = wire::RaftFrame { cluster_id: "cluster".into(), from_node: 1, messages: vec![heartbeat, append] };
    let fetch = wire::MetadataFetch { cluster_id: "cluster".into(), node_id: 4, after_index: 9 };
    let answer = wire::MetadataFetchAnswer {
        error_code: 0,
        leader_id: 1,
        commit_index: 12,
        snapshot: Some((10, Bytes::from_static(b"snapshot"))),
        entries: vec![(11, Bytes::from_static(b"entry")), (12, Bytes::new())],
    };
    let entry = Entry { index: 7, term: 2, data: Bytes::from_static(b"records"), ..Default::default() };
    let with_selector = |selector: u8, body: &[u8]| [&[selector][..], body].concat();
    let seeds = vec![
        with_selector(0, &wire::encode_frame(&frame, 5).expect("encodes")[4..]),
        with_selector(1, &wire::encode_metadata_fetch(&fetch, 6).expect("encodes")[4..]),
        with_selector(2, &wire::encode_metadata_fetch_answer(&answer, 7).expect("encodes")[4..]),
        with_selector(3, &gregor_quorum::encode_entry(&entry).expect("encodes")),
    ];
    run("quorum_frames", targets::quorum_frames, &seeds, 1);
}
