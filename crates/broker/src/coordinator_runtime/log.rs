//! How a shard meets its partition's log: a decision's records encoded as one batch,
//! appended and replayed (`apply`), and the whole log replayed on load.

use super::{CoordinatorShard, LoadState, ShardContext, ShardState, Writes};
use crate::partitions::Partition;
use crate::time::now_ms;
use bytes::BytesMut;
use gregor_protocol::records::{
    decode_transaction_marker, split_record_set, RecordBatch, RecordBatchBuilder, TransactionResult, NO_SEQUENCE,
};
use gregor_protocol::ErrorCode;

/// Bytes read per step while loading a shard.
const LOAD_READ_BYTES: usize = 4 << 20;
/// Records decompressed per batch at most while loading (a bound on bad input).
const LOAD_BATCH_BYTES_MAX: usize = 64 << 20;

/// Encodes `records` as one batch, transactional for `(producer id, epoch)`. Like
/// Kafka's coordinator writes it carries no sequence: storage checks the producer
/// epoch and opens its transaction (holding the LSO) without idempotence checks.
pub(super) fn encode_records<S: CoordinatorShard>(
    records: &[S::Record],
    now: i64,
    transactional: Option<(i64, i16)>,
) -> Result<BytesMut, String> {
    let mut builder = RecordBatchBuilder::new(0);
    if let Some((producer_id, producer_epoch)) = transactional {
        builder = builder.producer(producer_id, producer_epoch, NO_SEQUENCE).transactional(true);
    }
    for record in records {
        let (key, value) = S::encode(record)?;
        builder.append(now, Some(key), value, Vec::new()).map_err(|error| error.to_string())?;
    }
    let bytes = builder.build().map_err(|error| error.to_string())?;
    Ok(BytesMut::from(&bytes[..]))
}

/// Appends the effects' records as one batch, replays them, releases the answers and
/// returns the follow-ups, under the shard's lock (decisions apply in log order). A
/// failed append drops the answers and follow-ups; the error is the shard's.
pub(super) fn apply<S: CoordinatorShard>(
    state: &mut ShardState<S>,
    partition: &Partition,
    effects: S::Effects,
) -> Result<Vec<S::FollowUp>, ErrorCode> {
    let Writes { records, replies, transactional, follow_ups } = S::into_writes(effects);
    if !records.is_empty() {
        let now = now_ms();
        let appended = encode_records::<S>(&records, now, transactional)
            .map_err(|error| (error, S::write_error(None, transactional.is_some())))
            .and_then(|batch| {
                partition.log.append_as_leader(batch, partition.leader_epoch(), now).map_err(|error| {
                    let code = S::write_error(Some(&error), transactional.is_some());
                    (error.to_string(), code)
                })
            });
        match appended {
            Ok(_) => {
                partition.waiters.wake_all();
                let producer_id = transactional.map(|(producer_id, _)| producer_id);
                for record in records {
                    state.shard.replay(producer_id, record);
                }
            }
            Err((error, code)) => {
                tracing::warn!(
                    topic = %partition.topic,
                    partition = partition.index,
                    "{} coordinator append failed, answers dropped: {error}",
                    S::KIND
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
    Ok(follow_ups)
}

#[derive(Debug)]
pub(super) enum LoadError {
    /// The context was unloaded during the load; what was read is discarded.
    Unloaded,
    /// The log could not be read.
    Read(String),
}

impl From<String> for LoadError {
    fn from(error: String) -> Self {
        LoadError::Read(error)
    }
}

/// Replays the log into a fresh shard without the context's lock, then swaps it in
/// and activates it; returns the records replayed and `finish_load`'s follow-ups.
/// Blocking. The lock is taken to check that nothing was appended meanwhile (markers
/// are appended to `__consumer_offsets` during a load, under the lock, and replayed
/// before the swap). `on_step` runs before each read of the log (tests hold it).
pub(super) fn load<S: CoordinatorShard>(
    context: &ShardContext<S>,
    mut on_step: impl FnMut(),
) -> Result<(usize, Vec<S::FollowUp>), LoadError> {
    let config = context.lock().shard.config().clone();
    let mut fresh = S::new(context.index(), context.leader_epoch, config);
    let partition = &context.partition;
    let log = &partition.log;
    let mut from = log.log_start_offset();
    let mut replayed = 0;
    loop {
        let end = log.log_end_offset();
        let mut step = || {
            on_step();
            !context.is_unloaded()
        };
        replayed += replay_log(partition, &mut fresh, from, end, &mut step)?;
        from = end;
        let mut state = context.lock();
        if state.load != LoadState::Loading {
            return Err(LoadError::Unloaded);
        }
        if log.log_end_offset() > end {
            continue;
        }
        // A config change during the load went to the placeholder.
        fresh.set_config(state.shard.config().clone());
        let effects = fresh.finish_load(now_ms());
        state.shard = fresh;
        state.load = LoadState::Active;
        // A failed append is logged by `apply`; a timer or a request retries.
        return Ok((replayed, apply(&mut state, partition, effects).unwrap_or_default()));
    }
}

/// Replays the records of the partition log in `[from, end)` into `shard`; returns
/// how many. Blocking. `on_step` runs before each read; when it answers false the
/// replay stops with [`LoadError::Unloaded`].
pub(super) fn replay_log<S: CoordinatorShard>(
    partition: &Partition,
    shard: &mut S,
    from: i64,
    end: i64,
    on_step: &mut impl FnMut() -> bool,
) -> Result<usize, LoadError> {
    let log = &partition.log;
    let mut offset = from;
    let mut replayed = 0;
    while offset < end {
        if !on_step() {
            return Err(LoadError::Unloaded);
        }
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
                // A COMMIT or ABORT marker ends the producer's pending records.
                if header.producer_id >= 0 {
                    match decode_transaction_marker(&batch) {
                        Ok(marker) => {
                            shard.replay_end_transaction(header.producer_id, marker.result == TransactionResult::Commit)
                        }
                        Err(error) => {
                            tracing::warn!(partition = partition.index, "skipping an unreadable control batch: {error}")
                        }
                    }
                }
                continue;
            }
            // Records in a transactional batch are pending until the producer's marker.
            let producer = (header.is_transactional() && header.producer_id >= 0).then_some(header.producer_id);
            let base = header.base_offset;
            for record in batch.records(LOAD_BATCH_BYTES_MAX).map_err(|error| error.to_string())? {
                if base + i64::from(record.offset_delta) < offset {
                    continue;
                }
                let Some(key) = record.key else { continue };
                match S::decode(key, record.value) {
                    Ok(Some(record)) => {
                        shard.replay(producer, record);
                        replayed += 1;
                    }
                    Ok(None) => {}
                    Err(error) => tracing::warn!(
                        topic = %partition.topic,
                        partition = partition.index,
                        "skipping an unreadable {} record: {error}",
                        S::KIND
                    ),
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
