use crate::record::CoordinatorRecord;
use crate::shard::partition_for_group;
use gregor_protocol::messages::offset_commit_key::OffsetCommitKey;
use gregor_protocol::messages::offset_commit_value::OffsetCommitValue;

#[test]
fn partition_for_group_matches_java_string_hash_code() {
    // Java: "my-group".hashCode() == -1906497762, "test-consumer-group" -> -1793216381;
    // Kafka's Utils.abs makes them positive before the modulo.
    assert_eq!(partition_for_group("", 50), 0);
    assert_eq!(partition_for_group("my-group", 50), 1_906_497_762 % 50);
    assert_eq!(partition_for_group("test-consumer-group", 50), 1_793_216_381 % 50);
}

#[test]
fn offset_commit_record_round_trips_with_kafka_framing() {
    let record = CoordinatorRecord::OffsetCommit {
        key: OffsetCommitKey { group: "g".into(), topic: "t".into(), partition: 3, ..Default::default() },
        value: Some(OffsetCommitValue {
            offset: 42,
            leader_epoch: 7,
            metadata: "m".into(),
            commit_timestamp: 1000,
            expire_timestamp: -1,
            ..Default::default()
        }),
    };
    let (key, value) = record.encode().expect("encodes");
    // key version 1, then group "g", topic "t", partition 3
    assert_eq!(&key[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3]);
    let value = value.expect("not a tombstone");
    assert_eq!(&value[..2], &[0, 3]);
    assert_eq!(CoordinatorRecord::decode(key, Some(value)).expect("decodes"), Some(record));
}
