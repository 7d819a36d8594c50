//! Snapshots: the image as records rebuilds the image, through KRaft's snapshot bytes
//! too, and damaged snapshot bytes are refused with a typed error, never a panic.

use bytes::{BufMut, Bytes};
use gregor_protocol::messages::{
    config_record::ConfigRecord, partition_change_record::PartitionChangeRecord, partition_record::PartitionRecord,
    snapshot_header_record::SnapshotHeaderRecord, topic_record::TopicRecord,
};
use gregor_protocol::records::{
    split_record_set, ControlRecordKey, ControlRecordType, RecordBatch, RecordBatchBuilder,
};
use gregor_protocol::{Message, Uuid};
use proptest::prelude::*;

use super::snapshot_gen::{op_words, random_image, WORDS_PER_OP};
use super::{apply, cluster};
use crate::error::MetadataError;
use crate::image::{resource_type, MetadataImage, NO_LEADER_CHANGE};
use crate::record::{encode_batch, MetadataRecord};
use crate::snapshot::{
    control_type, decode_snapshot, encode_snapshot, read_snapshot, snapshot_file_name, SnapshotError,
    SNAPSHOT_BATCH_BYTES_MAX,
};

fn rebuilt(records: &[MetadataRecord]) -> MetadataImage {
    let mut image = MetadataImage::empty();
    apply(&mut image, records);
    image
}

/// The position of a record's kind in KRaft's writing order.
fn writer_rank(record: &MetadataRecord) -> u8 {
    match record {
        MetadataRecord::FeatureLevel(_) => 0,
        MetadataRecord::RegisterBroker(_) => 1,
        MetadataRecord::Topic(_) | MetadataRecord::Partition(_) => 2,
        MetadataRecord::Config(_) => 3,
        MetadataRecord::ProducerIds(_) => 4,
        MetadataRecord::AccessControlEntry(_) => 5,
        MetadataRecord::UserScramCredential(_) => 6,
        other => panic!("a snapshot holds no {other:?}"),
    }
}

fn batches(bytes: &Bytes) -> Vec<RecordBatch> {
    split_record_set(bytes.clone()).map(|entry| RecordBatch::new(entry.unwrap()).unwrap()).collect()
}

fn control_types(batch: &RecordBatch) -> Vec<i16> {
    batch
        .records(1 << 20)
        .unwrap()
        .iter()
        .map(|record| ControlRecordKey::decode(record.key.as_ref().unwrap()).unwrap().record_type.as_i16())
        .collect()
}

fn snapshot_error(result: Result<Vec<MetadataRecord>, MetadataError>) -> SnapshotError {
    match result {
        Err(MetadataError::Snapshot(error)) => error,
        other => panic!("expected a snapshot error, got {other:?}"),
    }
}

fn control_batch(base_offset: i64, epoch: i32, records: &[(i16, Bytes)]) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(base_offset).control(true).partition_leader_epoch(epoch);
    for (record_type, value) in records {
        let key = ControlRecordKey { version: 0, record_type: ControlRecordType::from_i16(*record_type) };
        builder.append(5, Some(key.encode()), Some(value.clone()), Vec::new()).unwrap();
    }
    builder.build().unwrap()
}

fn header_value(time_ms: i64) -> Bytes {
    SnapshotHeaderRecord { last_contained_log_timestamp: time_ms, ..Default::default() }.encode_to_bytes(0).unwrap()
}

fn footer_value() -> Bytes {
    // SnapshotFooterRecord v0: version 0, no tagged fields.
    Bytes::from_static(&[0, 0, 0])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn a_snapshot_rebuilds_the_image(ops in prop::collection::vec(op_words(), 1..160)) {
        let (image, _) = random_image(&ops);
        let records = image.snapshot_records();
        prop_assert_eq!(&rebuilt(&records), &image);
        // KRaft's order: features (metadata.version first), brokers, topics each followed
        // by its partitions, configs, producer ids, ACLs, SCRAM.
        prop_assert!(records.windows(2).all(|pair| writer_rank(&pair[0]) <= writer_rank(&pair[1])));
        if let Some(level) = image.metadata_version() {
            let first = records.first().cloned();
            let is_version = matches!(first, Some(MetadataRecord::FeatureLevel(ref record))
                if record.name == "metadata.version" && record.feature_level == level);
            prop_assert!(is_version);
        }
        let mut current_topic = None;
        for record in &records {
            match record {
                MetadataRecord::Topic(topic) => current_topic = Some(topic.topic_id),
                MetadataRecord::Partition(partition) => prop_assert_eq!(Some(partition.topic_id), current_topic),
                _ => {}
            }
        }

        let bytes = encode_snapshot(&image, 41, 3, 1_700_000_000_000, 1_700_000_000_500).unwrap();
        let decoded = read_snapshot(bytes.clone()).unwrap();
        prop_assert_eq!(decoded.epoch, 3);
        prop_assert_eq!(decoded.last_contained_log_time_ms, 1_700_000_000_000);
        prop_assert_eq!(&decoded.records, &records);
        prop_assert_eq!(&rebuilt(&decode_snapshot(bytes).unwrap()), &image);
    }

    #[test]
    fn damaged_snapshot_bytes_are_refused(
        ops in prop::collection::vec(op_words(), 1..40),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0..8u8,
    ) {
        let (image, _) = random_image(&ops);
        let bytes = encode_snapshot(&image, 9, 1, 0, 0).unwrap();
        let truncated = bytes.slice(..cut.index(bytes.len()));
        prop_assert!(decode_snapshot(truncated).is_err());
        // Every bit is under a CRC or checked against its neighbours (offsets, epochs,
        // lengths), so any single flipped bit is refused.
        let mut corrupted = bytes.to_vec();
        corrupted[flip.index(bytes.len())] ^= 1 << bit;
        prop_assert!(decode_snapshot(Bytes::from(corrupted)).is_err());
    }
}

/// The generator reaches every part of the image, so the round trip above covers it.
#[test]
fn random_images_hold_every_kind_of_metadata() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut word = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as u32
    };
    let mut seen = [false; 10];
    for _ in 0..20 {
        let ops: Vec<Vec<u32>> = (0..150).map(|_| (0..WORDS_PER_OP).map(|_| word()).collect()).collect();
        let (image, applied) = random_image(&ops);
        assert!(applied > 100, "only {applied} of 150 records replayed");
        let partitions = || image.topics().flat_map(|topic| topic.partitions.values());
        let found = [
            partitions().next().is_some(),
            partitions().any(|partition| partition.leader_epoch > 0 && !partition.elr.is_empty()),
            partitions().any(|partition| !partition.directories.is_empty()),
            image.brokers().any(|broker| broker.fenced),
            image.brokers().any(|broker| !broker.fenced && !broker.endpoints.is_empty()),
            image.brokers().any(|broker| broker.in_controlled_shutdown),
            image.config_resources().next().is_some(),
            !image.acls().is_empty(),
            !image.scram_credentials().is_empty(),
            image.next_producer_id() > 0 && image.metadata_version().is_some(),
        ];
        for (seen, found) in seen.iter_mut().zip(found) {
            *seen |= found;
        }
    }
    assert_eq!(seen, [true; 10]);
}

#[test]
fn every_field_survives_a_snapshot() {
    let mut image = cluster(3);
    let id = Uuid::from_u128(77);
    let directories = vec![Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3)];
    apply(
        &mut image,
        &[
            MetadataRecord::Topic(TopicRecord { name: "t".into(), topic_id: id, ..Default::default() }),
            MetadataRecord::Partition(PartitionRecord {
                partition_id: 0,
                topic_id: id,
                replicas: vec![1, 2, 3],
                isr: vec![1, 2, 3],
                leader: 1,
                leader_epoch: 4,
                partition_epoch: 9,
                directories: directories.clone(),
                ..Default::default()
            }),
            // A new leader bumps the leader epoch; every change bumps the partition epoch.
            MetadataRecord::PartitionChange(PartitionChangeRecord {
                partition_id: 0,
                topic_id: id,
                leader: 2,
                isr: Some(vec![2]),
                eligible_leader_replicas: Some(vec![3]),
                last_known_elr: Some(vec![1]),
                leader_recovery_state: 1,
                ..Default::default()
            }),
            MetadataRecord::PartitionChange(PartitionChangeRecord {
                partition_id: 0,
                topic_id: id,
                leader: NO_LEADER_CHANGE,
                removing_replicas: Some(vec![3]),
                adding_replicas: Some(vec![4]),
                leader_recovery_state: -1,
                ..Default::default()
            }),
            MetadataRecord::Config(ConfigRecord {
                resource_type: resource_type::TOPIC,
                resource_name: "t".into(),
                name: "retention.ms".into(),
                value: Some("5".into()),
                ..Default::default()
            }),
        ],
    );
    let records = image.snapshot_records();
    let partition = records
        .iter()
        .find_map(|record| match record {
            MetadataRecord::Partition(partition) => Some(partition.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!((partition.leader, partition.leader_epoch, partition.partition_epoch), (2, 5, 11));
    assert_eq!(partition.eligible_leader_replicas, Some(vec![3]));
    assert_eq!(partition.last_known_elr, Some(vec![1]));
    assert_eq!(partition.directories, directories);
    assert_eq!((partition.removing_replicas.clone(), partition.adding_replicas.clone()), (vec![3], vec![4]));
    assert_eq!(partition.leader_recovery_state, 1);
    let again = rebuilt(&decode_snapshot(encode_snapshot(&image, 100, 2, 7, 8).unwrap()).unwrap());
    assert_eq!(again, image);
    assert_eq!(again.topic("t").unwrap().partitions[&0], image.topic("t").unwrap().partitions[&0]);
}

#[test]
fn the_cluster_id_is_not_in_a_snapshot() {
    let mut image = cluster(1);
    image.set_cluster_id("MkU3OEVBNTcwNTJENDM2Qg");
    let mut again = rebuilt(&image.snapshot_records());
    assert_eq!(again.cluster_id(), None);
    assert_ne!(again, image);
    again.set_cluster_id("MkU3OEVBNTcwNTJENDM2Qg");
    assert_eq!(again, image);
}

#[test]
fn an_empty_image_is_a_header_and_a_footer() {
    let bytes = encode_snapshot(&MetadataImage::empty(), 0, 0, 0, 0).unwrap();
    let batches = batches(&bytes);
    assert_eq!(batches.len(), 2);
    assert_eq!(control_types(&batches[0]), vec![control_type::SNAPSHOT_HEADER]);
    assert_eq!(control_types(&batches[1]), vec![control_type::SNAPSHOT_FOOTER]);
    assert_eq!(decode_snapshot(bytes).unwrap(), Vec::new());
}

#[test]
fn the_bytes_are_kraft_snapshot_batches() {
    let image = cluster(3);
    let bytes = encode_snapshot(&image, 1234, 6, 1_000, 2_000).unwrap();
    let batches = batches(&bytes);
    let (first, last) = (&batches[0], &batches[batches.len() - 1]);
    assert!(first.header().is_control() && last.header().is_control());
    assert_eq!(control_types(first), vec![3]);
    assert_eq!(control_types(last), vec![4]);
    // Kafka's control record key: version 0 then the type, two i16s.
    let header_record = &first.records(1 << 20).unwrap()[0];
    assert_eq!(header_record.key.as_deref(), Some(&[0u8, 0, 0, 3][..]));
    let header = SnapshotHeaderRecord::decode(&mut header_record.value.clone().unwrap(), 0).unwrap();
    assert_eq!((header.version, header.last_contained_log_timestamp), (0, 1_000));
    assert_eq!(last.records(1 << 20).unwrap()[0].value.as_deref(), Some(&footer_value()[..]));
    // Offsets count from 0 without gaps; every batch carries the snapshot's epoch.
    let mut next = 0;
    for batch in &batches {
        assert_eq!(batch.header().base_offset, next);
        assert_eq!(batch.header().partition_leader_epoch, 6);
        assert_eq!(batch.header().max_timestamp, 2_000);
        next = batch.header().last_offset() + 1;
    }
    assert_eq!(next as usize, image.snapshot_records().len() + 2);
    assert_eq!(snapshot_file_name(1234, 6).unwrap(), "00000000000000001235-0000000006.checkpoint");
}

#[test]
fn big_images_split_into_bounded_batches() {
    let mut image = MetadataImage::empty();
    let value = "v".repeat(40_000);
    let records: Vec<MetadataRecord> = (0..260)
        .map(|index| {
            MetadataRecord::Config(ConfigRecord {
                resource_type: resource_type::TOPIC,
                resource_name: format!("topic-{index}"),
                name: "x".into(),
                value: Some(value.clone()),
                ..Default::default()
            })
        })
        .collect();
    apply(&mut image, &records);
    let bytes = encode_snapshot(&image, 1, 1, 0, 0).unwrap();
    let batches = batches(&bytes);
    let data: Vec<_> = batches.iter().filter(|batch| !batch.header().is_control()).collect();
    assert!(data.len() >= 2, "{} data batches for {} bytes", data.len(), bytes.len());
    assert!(batches.iter().all(|batch| batch.header().size_bytes() <= SNAPSHOT_BATCH_BYTES_MAX));
    assert_eq!(rebuilt(&decode_snapshot(bytes).unwrap()), image);

    let mut huge = MetadataImage::empty();
    apply(
        &mut huge,
        &[MetadataRecord::Config(ConfigRecord {
            resource_type: resource_type::TOPIC,
            resource_name: "t".into(),
            name: "x".into(),
            value: Some("v".repeat(SNAPSHOT_BATCH_BYTES_MAX)),
            ..Default::default()
        })],
    );
    assert!(matches!(
        encode_snapshot(&huge, 1, 1, 0, 0),
        Err(MetadataError::Snapshot(SnapshotError::RecordTooLarge { .. }))
    ));
}

#[test]
fn snapshot_ids_must_fit_kraft() {
    let image = MetadataImage::empty();
    assert_eq!(
        encode_snapshot(&image, 1, u64::from(u32::MAX), 0, 0),
        Err(MetadataError::Snapshot(SnapshotError::TermTooLarge { term: u64::from(u32::MAX) }))
    );
    assert_eq!(
        encode_snapshot(&image, i64::MAX as u64, 1, 0, 0),
        Err(MetadataError::Snapshot(SnapshotError::IndexTooLarge { index: i64::MAX as u64 }))
    );
    assert!(encode_snapshot(&image, i64::MAX as u64 - 1, i32::MAX as u64, 0, 0).is_ok());
}

#[test]
fn every_cut_of_a_snapshot_is_refused() {
    let bytes = encode_snapshot(&cluster(3), 5, 1, 0, 0).unwrap();
    for length in 0..bytes.len() {
        assert!(decode_snapshot(bytes.slice(..length)).is_err(), "a snapshot cut at {length} bytes was accepted");
    }
    // Cut at the footer batch: whole batches, but no footer.
    let footer_at = bytes.len() - batches(&bytes).last().unwrap().header().size_bytes();
    assert_eq!(
        snapshot_error(decode_snapshot(bytes.slice(..footer_at))),
        SnapshotError::Incomplete { partial_batch_bytes: 0 }
    );
    assert_eq!(
        snapshot_error(decode_snapshot(bytes.slice(..footer_at + 20))),
        SnapshotError::Incomplete { partial_batch_bytes: 20 }
    );
    assert_eq!(snapshot_error(decode_snapshot(Bytes::new())), SnapshotError::Empty);
}

#[test]
fn every_flipped_bit_is_refused() {
    let bytes = encode_snapshot(&cluster(2), 5, 1, 0, 0).unwrap();
    for at in 0..bytes.len() {
        for bit in 0..8 {
            let mut corrupted = bytes.to_vec();
            corrupted[at] ^= 1 << bit;
            assert!(decode_snapshot(Bytes::from(corrupted)).is_err(), "bit {bit} of byte {at} flipped was accepted");
        }
    }
}

#[test]
fn header_first_footer_last() {
    let records = cluster(1).snapshot_records();
    let data = encode_batch(&records, 5).unwrap();
    let data_len = records.len() as i64;
    let with_offset = |mut batch: Vec<u8>, base_offset: i64, epoch: i32| {
        batch[..8].copy_from_slice(&base_offset.to_be_bytes());
        batch[12..16].copy_from_slice(&epoch.to_be_bytes());
        batch
    };
    let header = control_batch(0, 1, &[(control_type::SNAPSHOT_HEADER, header_value(3))]);
    let footer = |at: i64| control_batch(at, 1, &[(control_type::SNAPSHOT_FOOTER, footer_value())]);
    let join = |parts: &[&[u8]]| Bytes::from(parts.concat());

    // Data first: no header.
    let no_header = join(&[&with_offset(data.to_vec(), 0, 1), &footer(data_len)]);
    assert_eq!(snapshot_error(decode_snapshot(no_header)), SnapshotError::MissingHeader);
    // A footer first is not a header either.
    assert_eq!(snapshot_error(decode_snapshot(join(&[&footer(0)]))), SnapshotError::MissingHeader);
    // No footer.
    let body = with_offset(data.to_vec(), 1, 1);
    assert_eq!(
        snapshot_error(decode_snapshot(join(&[&header, &body]))),
        SnapshotError::Incomplete { partial_batch_bytes: 0 }
    );
    // The good one, then with something after its footer.
    let good = join(&[&header, &body, &footer(1 + data_len)]);
    assert_eq!(decode_snapshot(good.clone()).unwrap(), records);
    let after = with_offset(data.to_vec(), 2 + data_len, 1);
    assert!(matches!(snapshot_error(decode_snapshot(join(&[&good, &after]))), SnapshotError::DataAfterFooter { .. }));
    let mut trailing = good.to_vec();
    trailing.put_slice(&[0; 7]);
    assert_eq!(snapshot_error(decode_snapshot(Bytes::from(trailing))), SnapshotError::DataAfterFooter { bytes: 7 });
    let footer_then_data = control_batch(
        1 + data_len,
        1,
        &[
            (control_type::SNAPSHOT_FOOTER, footer_value()),
            (control_type::KRAFT_VERSION, Bytes::from_static(&[0, 0, 0, 1, 0])),
        ],
    );
    assert_eq!(
        snapshot_error(decode_snapshot(join(&[&header, &body, &footer_then_data]))),
        SnapshotError::RecordsAfterFooter { records: 1 }
    );
    // A second header.
    let again = control_batch(1, 1, &[(control_type::SNAPSHOT_HEADER, header_value(3))]);
    assert_eq!(
        snapshot_error(decode_snapshot(join(&[&header, &again, &footer(2)]))),
        SnapshotError::UnexpectedControlRecord { record_type: control_type::SNAPSHOT_HEADER }
    );
    // Batches of another epoch, and offsets that skip.
    assert_eq!(
        snapshot_error(decode_snapshot(join(&[&header, &with_offset(data.to_vec(), 1, 2), &footer(1 + data_len)]))),
        SnapshotError::EpochMismatch { base_offset: 1, epoch: 2, snapshot_epoch: 1 }
    );
    assert_eq!(
        snapshot_error(decode_snapshot(join(&[&header, &with_offset(data.to_vec(), 3, 1), &footer(3 + data_len)]))),
        SnapshotError::OffsetGap { base_offset: 3, expected: 1 }
    );
    // An abort marker has no place in a snapshot.
    let abort = control_batch(1, 1, &[(0, Bytes::from_static(&[0, 0, 0, 0, 0, 0]))]);
    assert_eq!(
        snapshot_error(decode_snapshot(join(&[&header, &abort, &footer(2)]))),
        SnapshotError::UnexpectedControlRecord { record_type: 0 }
    );
}

#[test]
fn kraft_version_and_voters_in_the_header_batch_are_skipped() {
    // Kafka with kraft.version 1 writes them right after the header, in its batch.
    let records = cluster(1).snapshot_records();
    let mut data = encode_batch(&records, 5).unwrap().to_vec();
    data[..8].copy_from_slice(&3i64.to_be_bytes());
    data[12..16].copy_from_slice(&4i32.to_be_bytes());
    let header = control_batch(
        0,
        4,
        &[
            (control_type::SNAPSHOT_HEADER, header_value(9)),
            (control_type::KRAFT_VERSION, Bytes::from_static(&[0, 0, 0, 1, 0])),
            (control_type::KRAFT_VOTERS, Bytes::from_static(&[0, 0, 1, 0])),
        ],
    );
    let footer = control_batch(3 + records.len() as i64, 4, &[(control_type::SNAPSHOT_FOOTER, footer_value())]);
    let snapshot = read_snapshot(Bytes::from([header, data, footer].concat())).unwrap();
    assert_eq!((snapshot.epoch, snapshot.last_contained_log_time_ms), (4, 9));
    assert_eq!(snapshot.records, records);
}
