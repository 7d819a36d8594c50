use crate::record::{partition_for_transactional_id, TxnRecord, TxnValue};
use crate::state::TxnState;
use bytes::Bytes;
use proptest::prelude::*;

fn value(version: i16, state: TxnState, partitions: &[(&str, i32)]) -> TxnValue {
    TxnValue {
        version,
        producer_id: 4000,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch: 3,
        timeout_ms: 60_000,
        state,
        partitions: partitions.iter().map(|(t, p)| (t.to_string(), *p)).collect(),
        last_update_timestamp_ms: 1_700_000_000_123,
        start_timestamp_ms: 1_700_000_000_000,
        client_transaction_version: 0,
    }
}

#[test]
fn partition_for_transactional_id_matches_java_string_hash_code() {
    assert_eq!(partition_for_transactional_id("", 50), 0);
    // "my-group".hashCode() == -1906497762 in Java.
    assert_eq!(partition_for_transactional_id("my-group", 50), 1_906_497_762 % 50);
    assert_eq!(partition_for_transactional_id("test-consumer-group", 50), 1_793_216_381 % 50);
}

#[test]
fn key_has_kafka_framing() {
    let record = TxnRecord { transactional_id: "tx".into(), value: None };
    let (key, value) = record.encode().expect("encodes");
    assert_eq!(&key[..], &[0, 0, 0, 2, b't', b'x']);
    assert!(value.is_none());
    assert_eq!(TxnRecord::decode(key, None).expect("decodes"), record);
}

#[test]
fn version_0_value_matches_kafka_layout() {
    let record =
        TxnRecord { transactional_id: "tx".into(), value: Some(value(0, TxnState::Ongoing, &[("t", 1), ("t", 0)])) };
    let (key, bytes) = record.encode().expect("encodes");
    let bytes = bytes.expect("value");
    let mut expected = vec![0u8, 0]; // value version 0
    expected.extend_from_slice(&4000i64.to_be_bytes());
    expected.extend_from_slice(&3i16.to_be_bytes());
    expected.extend_from_slice(&60_000i32.to_be_bytes());
    expected.push(1); // Ongoing
    expected.extend_from_slice(&1i32.to_be_bytes()); // one topic
    expected.extend_from_slice(&[0, 1, b't']);
    expected.extend_from_slice(&2i32.to_be_bytes());
    expected.extend_from_slice(&0i32.to_be_bytes());
    expected.extend_from_slice(&1i32.to_be_bytes());
    expected.extend_from_slice(&1_700_000_000_123i64.to_be_bytes());
    expected.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    assert_eq!(&bytes[..], &expected[..]);
    assert_eq!(TxnRecord::decode(key, Some(bytes)).expect("decodes"), record);
}

#[test]
fn empty_state_writes_null_partitions() {
    let record = TxnRecord { transactional_id: "tx".into(), value: Some(value(0, TxnState::Empty, &[])) };
    let (_, bytes) = record.encode().expect("encodes");
    let bytes = bytes.expect("value");
    // version, producer id, epoch, timeout, state, then the null array (-1).
    assert_eq!(&bytes[2 + 8 + 2 + 4 + 1..2 + 8 + 2 + 4 + 1 + 4], &(-1i32).to_be_bytes());
}

#[test]
fn version_1_value_round_trips_tagged_fields() {
    let mut v = value(1, TxnState::PrepareCommit, &[("a", 0), ("b", 3)]);
    v.previous_producer_id = 17;
    v.next_producer_id = 18;
    v.client_transaction_version = 2;
    let record = TxnRecord { transactional_id: "tx".into(), value: Some(v) };
    let (key, bytes) = record.encode().expect("encodes");
    let bytes = bytes.expect("value");
    assert_eq!(&bytes[..2], &[0, 1]);
    assert_eq!(TxnRecord::decode(key, Some(bytes)).expect("decodes"), record);
}

#[test]
fn version_0_drops_fields_it_cannot_carry() {
    let mut v = value(0, TxnState::CompleteCommit, &[]);
    v.previous_producer_id = 17;
    v.client_transaction_version = 2;
    let record = TxnRecord { transactional_id: "tx".into(), value: Some(v) };
    let (key, bytes) = record.encode().expect("encodes");
    let decoded = TxnRecord::decode(key, bytes).expect("decodes");
    let decoded = decoded.value.expect("value");
    assert_eq!(decoded.previous_producer_id, -1);
    assert_eq!(decoded.client_transaction_version, 0);
}

#[test]
fn bad_input_is_an_error() {
    assert!(TxnRecord::decode(Bytes::from_static(&[0]), None).is_err());
    assert!(TxnRecord::decode(Bytes::from_static(&[0, 1, 0, 0]), None).is_err());
    let (key, _) = TxnRecord { transactional_id: "x".into(), value: None }.encode().expect("encodes");
    assert!(TxnRecord::decode(key.clone(), Some(Bytes::from_static(&[0]))).is_err());
    let mut v = value(0, TxnState::Empty, &[]).clone();
    v.state = TxnState::Empty;
    let (_, bytes) = TxnRecord { transactional_id: "x".into(), value: Some(v) }.encode().expect("encodes");
    let mut bytes = bytes.expect("value").to_vec();
    bytes[2 + 8 + 2 + 4] = 9; // no such state
    assert!(TxnRecord::decode(key, Some(Bytes::from(bytes))).is_err());
}

fn any_state() -> impl Strategy<Value = TxnState> {
    (0usize..8).prop_map(|index| TxnState::ALL[index])
}

proptest! {
    #[test]
    fn records_round_trip(
        id in "[a-z0-9._-]{0,20}",
        version in 0i16..=1,
        producer_id in any::<i64>(),
        epoch in any::<i16>(),
        timeout in any::<i32>(),
        state in any_state(),
        partitions in proptest::collection::btree_set(("[a-z]{1,5}", 0i32..100), 0..10),
        update in any::<i64>(),
        start in any::<i64>(),
        extra in (any::<i64>(), any::<i64>(), any::<i16>()),
    ) {
        let partitions = if state == TxnState::Empty { Default::default() } else { partitions };
        let (previous, next, tv) = if version == 1 { extra } else { (-1, -1, 0) };
        let record = TxnRecord {
            transactional_id: id,
            value: Some(TxnValue {
                version, producer_id, previous_producer_id: previous, next_producer_id: next,
                producer_epoch: epoch, timeout_ms: timeout, state, partitions,
                last_update_timestamp_ms: update, start_timestamp_ms: start, client_transaction_version: tv,
            }),
        };
        let (key, value) = record.encode().expect("encodes");
        prop_assert_eq!(TxnRecord::decode(key, value).expect("decodes"), record);
    }
}
