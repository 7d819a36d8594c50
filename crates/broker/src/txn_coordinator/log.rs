//! How a transaction coordinator shard meets its `__transaction_state` partition:
//! encoding a decision's records as one batch, appending and replaying them
//! (`apply`), and replaying the log on load.

use super::{ShardState, LOAD_BATCH_BYTES_MAX, LOAD_READ_BYTES};
use crate::partitions::Partition;
use crate::time::now_ms;
use bytes::BytesMut;
use gregor_protocol::records::{split_record_set, RecordBatch, RecordBatchBuilder};
use gregor_protocol::ErrorCode;
use gregor_storage::AppendError;
use gregor_txn::{Effects, MarkerRequest, TxnCoordinatorShard, TxnRecord};

fn encode_records(records: &[TxnRecord], now: i64) -> Result<BytesMut, String> {
    let mut builder = RecordBatchBuilder::new(0);
    for record in records {
        let (key, value) = record.encode().map_err(|error| error.to_string())?;
        builder.append(now, Some(key), value, Vec::new()).map_err(|error| error.to_string())?;
    }
    let bytes = builder.build().map_err(|error| error.to_string())?;
    Ok(BytesMut::from(&bytes[..]))
}

/// What a failed `__transaction_state` append answers, after Kafka's
/// `TransactionStateManager.appendTransactionToLog` normalisation.
fn append_error_code(error: &AppendError) -> ErrorCode {
    match error.error_code() {
        ErrorCode::UnknownTopicOrPartition
        | ErrorCode::NotEnoughReplicas
        | ErrorCode::NotEnoughReplicasAfterAppend
        | ErrorCode::RequestTimedOut => ErrorCode::CoordinatorNotAvailable,
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
        _ => ErrorCode::UnknownServerError,
    }
}

/// Appends the effects' records as one batch, replays them, releases the answers and
/// returns the markers to write. Runs with the shard's lock held, so decisions of one
/// shard are applied in log order. On a failed append the decision's answers and
/// markers are dropped (their requests answer the returned code).
pub(super) fn apply(
    state: &mut ShardState,
    partition: &Partition,
    effects: Effects,
) -> Result<Vec<MarkerRequest>, ErrorCode> {
    let Effects { records, replies, markers } = effects;
    if !records.is_empty() {
        let now = now_ms();
        let appended =
            encode_records(&records, now).map_err(|error| (error, ErrorCode::UnknownServerError)).and_then(|batch| {
                partition
                    .log
                    .append_as_leader(batch, partition.leader_epoch(), now)
                    .map_err(|error| (error.to_string(), append_error_code(&error)))
            });
        match appended {
            Ok(_) => {
                partition.waiters.wake_all();
                for record in records {
                    state.shard.replay(record);
                }
            }
            Err((error, code)) => {
                tracing::warn!(
                    partition = partition.index,
                    "transaction coordinator append failed, answers dropped: {error}"
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
    Ok(markers)
}

/// Replays the records of the partition log in `[from, end)` into `shard`; returns
/// how many. Blocking. `on_step` runs before each read.
pub(super) fn replay_log(
    partition: &Partition,
    shard: &mut TxnCoordinatorShard,
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
            if header.last_offset() < offset || header.is_control() {
                continue;
            }
            let base = header.base_offset;
            for record in batch.records(LOAD_BATCH_BYTES_MAX).map_err(|error| error.to_string())? {
                if base + i64::from(record.offset_delta) < offset {
                    continue;
                }
                let Some(key) = record.key else { continue };
                match TxnRecord::decode(key, record.value) {
                    Ok(record) => {
                        shard.replay(record);
                        replayed += 1;
                    }
                    Err(error) => {
                        tracing::warn!(
                            partition = partition.index,
                            "skipping an unreadable transaction record: {error}"
                        )
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
