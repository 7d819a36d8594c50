//! How a shard meets its partition log: encoding a decision's records as one batch,
//! appending and replaying them (`apply`), and replaying the whole log on load.

use super::{ShardState, LOAD_BATCH_BYTES_MAX, LOAD_READ_BYTES};
use crate::partitions::Partition;
use crate::time::now_ms;
use bytes::BytesMut;
use gregor_group::{CoordinatorRecord, Effects, GroupCoordinatorShard};
use gregor_protocol::records::{
    decode_transaction_marker, split_record_set, RecordBatch, RecordBatchBuilder, TransactionResult, NO_SEQUENCE,
};
use gregor_protocol::ErrorCode;
use gregor_storage::AppendError;

pub(super) fn encode_records(
    records: &[CoordinatorRecord],
    now: i64,
    transactional: Option<(i64, i16)>,
) -> Result<BytesMut, String> {
    let mut builder = RecordBatchBuilder::new(0);
    if let Some((producer_id, producer_epoch)) = transactional {
        builder = builder.producer(producer_id, producer_epoch, NO_SEQUENCE).transactional(true);
    }
    for record in records {
        let (key, value) = record.encode().map_err(|error| error.to_string())?;
        builder.append(now, Some(key), value, Vec::new()).map_err(|error| error.to_string())?;
    }
    let bytes = builder.build().map_err(|error| error.to_string())?;
    Ok(BytesMut::from(&bytes[..]))
}

/// What a failed coordinator append answers (Kafka's `handleOperationException`
/// normalisation), for the transactional writes that report it; other decisions
/// answer NOT_COORDINATOR, as before.
pub(super) fn append_error_code(error: &AppendError) -> ErrorCode {
    match error.error_code() {
        ErrorCode::UnknownTopicOrPartition | ErrorCode::NotEnoughReplicas | ErrorCode::RequestTimedOut => {
            ErrorCode::CoordinatorNotAvailable
        }
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
        ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge | ErrorCode::InvalidFetchSize => {
            ErrorCode::UnknownServerError
        }
        other => other,
    }
}

/// Appends the effects' records, replays them, and releases the answers. Runs with
/// the shard's lock held, so decisions of one shard are applied in order. On a failed
/// append the decision's answers are dropped (their requests answer NOT_COORDINATOR)
/// and the error is returned: for a transactional decision the storage's error (an
/// INVALID_PRODUCER_EPOCH for a fenced producer), else NOT_COORDINATOR.
pub(super) fn apply(state: &mut ShardState, partition: &Partition, effects: Effects) -> Result<(), ErrorCode> {
    let Effects { records, replies, transactional } = effects;
    if !records.is_empty() {
        let now = now_ms();
        let appended = encode_records(&records, now, transactional)
            .map_err(|error| (error, ErrorCode::NotCoordinator))
            .and_then(|batch| {
                partition.log.append_as_leader(batch, partition.leader_epoch(), now).map_err(|error| {
                    let code =
                        if transactional.is_some() { append_error_code(&error) } else { ErrorCode::NotCoordinator };
                    (error.to_string(), code)
                })
            });
        match appended {
            Ok(_) => {
                partition.waiters.wake_all();
                for record in records {
                    match transactional {
                        Some((producer_id, _)) => state.shard.replay_transactional(producer_id, record),
                        None => state.shard.replay(record),
                    }
                }
            }
            Err((error, code)) => {
                tracing::warn!(
                    partition = partition.index,
                    "group coordinator append failed, answers dropped: {error}"
                );
                for (reply, _) in replies {
                    state.waiting.remove(&reply);
                }
                return Err(code);
            }
        }
    }
    for (reply, response) in replies {
        if let Some(waiter) = state.waiting.remove(&reply) {
            // The client may have gone; its answer has nowhere to go.
            let _ = waiter.send(response);
        }
    }
    Ok(())
}

/// Replays the records of the partition log in `[from, end)` into `shard`; returns
/// how many. Blocking. `on_step` runs before each read.
pub(super) fn replay_log(
    partition: &Partition,
    shard: &mut GroupCoordinatorShard,
    from: i64,
    end: i64,
    on_step: &mut impl FnMut(),
) -> Result<usize, String> {
    let log = &partition.log;
    let mut offset = from;
    let mut replayed = 0;
    while offset < end {
        on_step();
        let read = log.read(offset, LOAD_READ_BYTES, true, end).map_err(|error| error.to_string())?;
        if read.records.is_empty() {
            break;
        }
        let mut next = offset;
        for batch in split_record_set(read.records) {
            let batch = batch.map_err(|error| error.to_string())?;
            let batch = RecordBatch::new(batch).map_err(|error| error.to_string())?;
            let header = batch.header();
            next = header.last_offset() + 1;
            if header.last_offset() < offset {
                continue;
            }
            if header.is_control() {
                // A COMMIT or ABORT marker ends the producer's pending offsets.
                if header.producer_id >= 0 {
                    match decode_transaction_marker(&batch) {
                        Ok(marker) => shard.replay_end_transaction_marker(
                            header.producer_id,
                            marker.result == TransactionResult::Commit,
                        ),
                        Err(error) => {
                            tracing::warn!(partition = partition.index, "skipping an unreadable control batch: {error}")
                        }
                    }
                }
                continue;
            }
            // Offsets in a transactional batch are pending until the producer's marker.
            let producer = (header.is_transactional() && header.producer_id >= 0).then_some(header.producer_id);
            let base = header.base_offset;
            for record in batch.records(LOAD_BATCH_BYTES_MAX).map_err(|error| error.to_string())? {
                if base + i64::from(record.offset_delta) < offset {
                    continue;
                }
                let Some(key) = record.key else { continue };
                match CoordinatorRecord::decode(key, record.value) {
                    Ok(Some(record)) => {
                        match producer {
                            Some(producer_id) => shard.replay_transactional(producer_id, record),
                            None => shard.replay(record),
                        }
                        replayed += 1;
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(partition = partition.index, "skipping an unreadable group record: {error}")
                    }
                }
            }
        }
        if next <= offset {
            break;
        }
        offset = next;
    }
    Ok(replayed)
}
