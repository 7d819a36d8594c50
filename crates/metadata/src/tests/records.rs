use gregor_protocol::messages::{
    broker_registration_change_record::BrokerRegistrationChangeRecord, config_record::ConfigRecord,
    feature_level_record::FeatureLevelRecord, fence_broker_record::FenceBrokerRecord, no_op_record::NoOpRecord,
    partition_change_record::PartitionChangeRecord, partition_record::PartitionRecord,
    producer_ids_record::ProducerIdsRecord, remove_topic_record::RemoveTopicRecord, topic_record::TopicRecord,
    unfence_broker_record::UnfenceBrokerRecord, unregister_broker_record::UnregisterBrokerRecord,
};
use gregor_protocol::records::RecordBatch;
use gregor_protocol::Uuid;

use crate::controller::bootstrap;
use crate::error::MetadataError;
use crate::record::{decode_batch, encode_batch, MetadataRecord};

fn every_kind() -> Vec<MetadataRecord> {
    let id = Uuid::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
    let mut records = bootstrap(3, &[("SSL".into(), "host".into(), 9093)], 77);
    records.extend([
        MetadataRecord::UnregisterBroker(UnregisterBrokerRecord {
            broker_id: 3,
            broker_epoch: 9,
            ..Default::default()
        }),
        MetadataRecord::Topic(TopicRecord { name: "t".into(), topic_id: id, ..Default::default() }),
        MetadataRecord::Partition(PartitionRecord {
            partition_id: 2,
            topic_id: id,
            replicas: vec![1, 2],
            isr: vec![1],
            leader: 1,
            leader_epoch: 4,
            partition_epoch: 5,
            directories: vec![Uuid::ZERO, Uuid::from_u128(9)],
            eligible_leader_replicas: Some(vec![2]),
            last_known_elr: Some(vec![]),
            leader_recovery_state: 1,
            ..Default::default()
        }),
        MetadataRecord::Config(ConfigRecord {
            resource_type: 2,
            resource_name: "t".into(),
            name: "retention.ms".into(),
            value: None,
            ..Default::default()
        }),
        MetadataRecord::PartitionChange(PartitionChangeRecord {
            partition_id: 2,
            topic_id: id,
            isr: Some(vec![1, 2]),
            leader: 2,
            replicas: Some(vec![2, 1]),
            eligible_leader_replicas: Some(vec![]),
            ..Default::default()
        }),
        MetadataRecord::FenceBroker(FenceBrokerRecord { id: 1, epoch: 2, ..Default::default() }),
        MetadataRecord::UnfenceBroker(UnfenceBrokerRecord { id: 1, epoch: 2, ..Default::default() }),
        MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id: id, ..Default::default() }),
        MetadataRecord::FeatureLevel(FeatureLevelRecord {
            name: "group.version".into(),
            feature_level: 1,
            ..Default::default()
        }),
        MetadataRecord::ProducerIds(ProducerIdsRecord {
            broker_id: 1,
            broker_epoch: 3,
            next_producer_id: 2000,
            ..Default::default()
        }),
        MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
            broker_id: 1,
            broker_epoch: 3,
            fenced: -1,
            in_controlled_shutdown: 1,
            log_dirs: vec![Uuid::from_u128(5)],
            ..Default::default()
        }),
        MetadataRecord::NoOp(NoOpRecord::default()),
    ]);
    records
}

#[test]
fn every_record_kind_round_trips() {
    let records = every_kind();
    let mut types: Vec<i16> = records.iter().map(MetadataRecord::record_type).collect();
    types.sort_unstable();
    types.dedup();
    assert_eq!(types, vec![0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 17, 20], "one of each record type");
    for record in records {
        let encoded = record.encode().unwrap();
        assert_eq!(MetadataRecord::decode(&encoded).unwrap(), record);
    }
}

#[test]
fn framing_matches_a_hand_computed_topic_record() {
    let record =
        MetadataRecord::Topic(TopicRecord { name: "ab".into(), topic_id: Uuid::from_u128(0x0f), ..Default::default() });
    let mut expected = vec![
        0x01, // frame version 1
        0x02, // record type 2: TopicRecord
        0x00, // record version 0
        0x03, b'a', b'b', // compact string: length + 1, then the bytes
    ];
    expected.extend([0u8; 15]);
    expected.push(0x0f); // the topic id, big-endian
    expected.push(0x00); // no tagged fields
    assert_eq!(record.encode().unwrap().as_ref(), expected.as_slice());
}

#[test]
fn framing_of_a_partition_record_uses_version_two_with_tagged_fields() {
    let record = MetadataRecord::Partition(PartitionRecord {
        partition_id: 0,
        topic_id: Uuid::ZERO,
        replicas: vec![1],
        isr: vec![1],
        leader: 1,
        leader_epoch: 0,
        partition_epoch: 0,
        ..Default::default()
    });
    let encoded = record.encode().unwrap();
    let mut expected = vec![0x01, 0x03, 0x02];
    expected.extend([0, 0, 0, 0]); // partition id
    expected.extend([0u8; 16]); // topic id
    expected.extend([0x02, 0, 0, 0, 1]); // replicas [1]
    expected.extend([0x02, 0, 0, 0, 1]); // isr [1]
    expected.extend([0x01, 0x01]); // no removing, no adding replicas
    expected.extend([0, 0, 0, 1]); // leader
    expected.extend([0, 0, 0, 0, 0, 0, 0, 0]); // leader epoch, partition epoch
    expected.push(0x01); // no directories
    expected.push(0x00); // no tagged fields: ELR null, recovery state default
    assert_eq!(encoded.as_ref(), expected.as_slice());
}

#[test]
fn decode_rejects_bad_frames() {
    let good = MetadataRecord::NoOp(NoOpRecord::default()).encode().unwrap();
    assert_eq!(good.as_ref(), &[0x01, 20, 0x00, 0x00]);
    assert_eq!(MetadataRecord::decode(&[0x00, 20, 0, 0]), Err(MetadataError::UnsupportedFrameVersion { version: 0 }));
    assert_eq!(MetadataRecord::decode(&[0x01, 99, 0, 0]), Err(MetadataError::UnknownRecordType { record_type: 99 }));
    assert_eq!(
        MetadataRecord::decode(&[0x01, 20, 0, 0, 7]),
        Err(MetadataError::TrailingBytes { record_type: 20, remaining: 1 })
    );
    assert!(matches!(MetadataRecord::decode(&[0x01, 20, 5, 0]), Err(MetadataError::Decode(_))));
    assert!(matches!(
        MetadataRecord::decode(&[0x01, 0x80, 0x80, 0x04, 0]),
        Err(MetadataError::FrameFieldTooLarge { .. })
    ));
    assert!(MetadataRecord::decode(&[]).is_err());
    assert!(MetadataRecord::decode(&[0x01, 2, 0, 0x10]).is_err(), "truncated body");
}

#[test]
fn older_record_versions_still_decode() {
    // PartitionRecord v0 has no directories field.
    let mut value = vec![0x01, 0x03, 0x00];
    value.extend([0, 0, 0, 7]);
    value.extend([0u8; 16]);
    value.extend([0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 1, 0x01, 0x01]);
    value.extend([0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 4, 0x00]);
    let MetadataRecord::Partition(record) = MetadataRecord::decode(&value).unwrap() else { panic!("not a partition") };
    assert_eq!((record.partition_id, record.leader_epoch, record.partition_epoch), (7, 3, 4));
    assert!(record.directories.is_empty());
}

#[test]
fn batch_round_trips_with_relative_offsets_and_no_keys() {
    let records = every_kind();
    let batch = encode_batch(&records, 1_700_000_000_000).unwrap();
    let batch = RecordBatch::new(batch.freeze()).unwrap();
    let header = batch.header();
    assert_eq!(header.base_offset, 0);
    assert_eq!(header.magic, 2);
    assert_eq!(header.records_count as usize, records.len());
    assert_eq!(header.max_timestamp, 1_700_000_000_000);
    assert!(batch.records(1 << 20).unwrap().iter().all(|record| record.key.is_none()));
    assert_eq!(decode_batch(&batch).unwrap(), records);
}

#[test]
fn empty_batches_are_refused() {
    assert_eq!(encode_batch(&[], 0).unwrap_err(), MetadataError::EmptyBatch);
}
