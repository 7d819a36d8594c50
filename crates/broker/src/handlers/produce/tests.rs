//! Transactional produce: what reaches the log and the codes of its refusals.

use super::*;
use crate::error::BrokerError;
use gregor_protocol::records::RecordBatchBuilder;
use gregor_protocol::Uuid;
use gregor_storage::io::OsFileIo;
use gregor_storage::{Log, LogConfig, OpenOptions, TopicPartition, TxnMarker};
use std::path::Path;

const NOW: i64 = 1_700_000_000_000;

fn partition(dir: &Path) -> Partition {
    let options = OpenOptions { recovery_point: 0, log_start_offset: None, clean_shutdown: true, now_ms: NOW };
    let log =
        Log::open(Arc::new(OsFileIo), &dir.join("t-0"), TopicPartition::new("t", 0), LogConfig::default(), options)
            .expect("open log");
    Partition::new(Arc::from("t"), 0, Uuid::ZERO, Arc::new(log), 0)
}

fn batch(producer_id: i64, epoch: i16, sequence: i32, transactional: bool) -> Bytes {
    let mut builder = RecordBatchBuilder::new(0).producer(producer_id, epoch, sequence).transactional(transactional);
    builder.append(NOW, None, Some(Bytes::from_static(b"value")), vec![]).expect("record");
    Bytes::from(builder.build().expect("batch"))
}

fn produce(partition: &Partition, records: Bytes) -> PartitionProduceResponse {
    let records = prepare_records(13, Some(records), 1 << 20, true).expect("valid");
    match partition.log.append_as_leader(records, partition.leader_epoch(), NOW) {
        Ok(info) => PartitionProduceResponse { base_offset: info.base_offset, ..PartitionProduceResponse::default() },
        Err(error) => append_error_response(0, partition, &error),
    }
}

#[test]
fn a_transactional_batch_needs_a_transactional_id_in_the_request() {
    let records = batch(7, 0, 0, true);
    assert_eq!(
        prepare_records(13, Some(records.clone()), 1 << 20, false).err(),
        Some(ErrorCode::TransactionalIdAuthorizationFailed)
    );
    assert!(prepare_records(13, Some(records), 1 << 20, true).is_ok());
    assert!(prepare_records(13, Some(batch(7, 0, 0, false)), 1 << 20, false).is_ok());
}

#[test]
fn transactional_refusals_keep_kafkas_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let partition = partition(dir.path());
    assert_eq!(produce(&partition, batch(7, 1, 0, true)).error_code, ErrorCode::None.code());
    assert_eq!(partition.log.last_stable_offset(), 0, "the transaction holds the LSO");

    let fenced = produce(&partition, batch(7, 0, 1, true));
    assert_eq!(fenced.error_code, ErrorCode::InvalidProducerEpoch.code());
    assert_eq!(fenced.error_code, 47);

    let outside = produce(&partition, batch(7, 1, 1, false));
    assert_eq!(outside.error_code, ErrorCode::InvalidTxnState.code());
    assert_eq!(outside.error_code, 48);

    let marker = |coordinator_epoch| TxnMarker { producer_id: 7, producer_epoch: 1, coordinator_epoch, commit: true };
    partition.append_marker(marker(5), NOW).expect("commit");
    let stale = partition.append_marker(marker(4), NOW).expect_err("an older coordinator");
    assert_eq!(stale.error_code(), ErrorCode::TransactionCoordinatorFenced);
    assert_eq!(BrokerError::from(stale).error_code().code(), 52);
    let old_epoch = TxnMarker { producer_id: 7, producer_epoch: 0, coordinator_epoch: 5, commit: false };
    let error = partition.append_marker(old_epoch, NOW).expect_err("an older producer epoch");
    assert_eq!(BrokerError::from(error).error_code(), ErrorCode::InvalidProducerEpoch);
    assert_eq!(partition.log.last_stable_offset(), partition.log.high_watermark());
}
