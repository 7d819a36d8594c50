use bytes::Bytes;

use super::*;

fn marker_batch(result: TransactionResult) -> RecordBatch {
    let marker = TransactionMarker { result, coordinator_epoch: 77 };
    let bytes = build_transaction_marker_batch(500, 9, 4, 1_700_000_000_000, marker).unwrap();
    RecordBatch::new(Bytes::from(bytes)).unwrap()
}

#[test]
fn commit_and_abort_markers_round_trip() {
    for result in [TransactionResult::Commit, TransactionResult::Abort] {
        let batch = marker_batch(result);
        let header = batch.header();
        assert!(header.is_control() && header.is_transactional());
        assert_eq!((header.producer_id, header.producer_epoch, header.base_sequence), (9, 4, -1));
        assert_eq!((header.base_offset, header.last_offset_delta, header.records_count), (500, 0, 1));
        assert_eq!(header.max_timestamp, 1_700_000_000_000);
        assert_eq!(decode_transaction_marker(&batch).unwrap(), TransactionMarker { result, coordinator_epoch: 77 });
    }
}

#[test]
fn marker_key_and_value_bytes_follow_the_schema() {
    let records = marker_batch(TransactionResult::Commit).records(LIMIT_BYTES).unwrap();
    let [record] = records.as_slice() else { panic!("expected one record") };
    assert_eq!(record.key.as_deref(), Some(&[0, 0, 0, 1][..]));
    assert_eq!(record.value.as_deref(), Some(&[0, 0, 0, 0, 0, 77][..]));
    let records = marker_batch(TransactionResult::Abort).records(LIMIT_BYTES).unwrap();
    assert_eq!(records[0].key.as_deref(), Some(&[0, 0, 0, 0][..]));
}

#[test]
fn control_keys_decode_unknown_types_and_future_versions() {
    assert_eq!(
        ControlRecordKey::decode(&[0, 1, 0, 3, 0xaa]).unwrap(),
        ControlRecordKey { version: 1, record_type: ControlRecordType::Unknown(3) }
    );
    assert!(ControlRecordKey::decode(&[0, 0, 0]).is_err());
    assert!(ControlRecordKey::decode(&[0xff, 0xff, 0, 0]).is_err());
    assert_eq!(EndTxnMarker::decode(&[0, 0, 0, 0, 1, 0]).unwrap(), EndTxnMarker { version: 0, coordinator_epoch: 256 });
    assert!(EndTxnMarker::decode(&[0, 0, 0, 0, 1]).is_err());
    assert!(EndTxnMarker::decode(&[0x80, 0, 0, 0, 1, 0]).is_err());
    for value in [-5, 0, 1, 2, 7] {
        assert_eq!(ControlRecordType::from_i16(value).as_i16(), value);
    }
}

#[test]
fn non_marker_batches_are_refused() {
    let plain = RecordBatch::new(Bytes::from(sample_batch(Compression::None))).unwrap();
    assert!(matches!(decode_transaction_marker(&plain), Err(RecordsError::InvalidControlRecord { .. })));
    let key = ControlRecordKey { version: 0, record_type: ControlRecordType::Unknown(2) };
    let mut builder = RecordBatchBuilder::new(0).control(true);
    builder.append(0, Some(key.encode()), Some(Bytes::from_static(&[0; 6])), Vec::new()).unwrap();
    let other_control = RecordBatch::new(Bytes::from(builder.build().unwrap())).unwrap();
    assert!(matches!(decode_transaction_marker(&other_control), Err(RecordsError::InvalidControlRecord { .. })));
}
