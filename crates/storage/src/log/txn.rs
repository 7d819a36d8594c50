//! The partition side of transactions (KIP-98): commit and abort markers
//! written for the transaction coordinator, the aborted-transaction index and
//! its reads for read_committed fetches, and its rebuild on recovery.
//!
//! A transactional batch opens its producer's transaction (its first offset is
//! remembered in producer state); the LSO stays at the oldest open
//! transaction's first offset until its marker is written. An abort marker that
//! completes a transaction adds an entry to the `.txnindex` of the segment the
//! marker went to. A marker for a producer without an open transaction is
//! written anyway (the coordinator retries markers) but indexes nothing.

use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{
    build_transaction_marker_batch, decode_transaction_marker, RecordBatch, TimestampType, TransactionMarker,
    TransactionResult, ValidatedBatchMut,
};

use super::append::{corrupt, invalid};
use super::{AppendInfo, Log};
use crate::error::{AppendError, StorageError};
use crate::io::FileIo;
use crate::producer::{CompletedTxn, Marker, ProducerStateManager, StagedProducers};
use crate::segment::{AppendedBatch, BatchAt, Segment};
use crate::txn_index::AbortedTxnEntry;

/// A commit or abort marker the transaction coordinator asks for (one
/// partition of WriteTxnMarkers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    /// COMMIT when true, ABORT when false.
    pub commit: bool,
}

/// An aborted transaction as Fetch's `aborted_transactions` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
}

/// Reads the marker of the control batch at `batch`.
fn read_marker(segment: &Segment, batch: &BatchAt) -> Result<Marker, StorageError> {
    let bytes = segment.read_bytes(batch.position, batch.header.size_bytes())?;
    let path = segment.txn_index.path().with_extension("log");
    let decoded = RecordBatch::new(Bytes::from(bytes))
        .map_err(|e| StorageError::corrupt(&path, format!("control batch at {}: {e}", batch.header.base_offset)))?;
    let marker = decode_transaction_marker(&decoded)
        .map_err(|e| StorageError::corrupt(&path, format!("control batch at {}: {e}", batch.header.base_offset)))?;
    Ok(Marker { commit: marker.result == TransactionResult::Commit, coordinator_epoch: marker.coordinator_epoch })
}

pub(super) fn index_entry(completed: &CompletedTxn, last_stable_offset: i64) -> AbortedTxnEntry {
    AbortedTxnEntry {
        producer_id: completed.producer_id,
        first_offset: completed.first_offset,
        last_offset: completed.last_offset,
        last_stable_offset,
    }
}

/// Replays the batches of `segment` from `replay_from` into `producers`
/// (markers included). With `rebuild_txn_index` (the segment's txn index was
/// reset on open, and `replay_from` is then at or below its base), its aborted
/// transactions are indexed again as they complete, and the index is fsynced.
pub(super) fn replay_segment(
    io: &dyn FileIo,
    segment: &Segment,
    replay_from: i64,
    producers: &mut ProducerStateManager,
    rebuild_txn_index: bool,
) -> Result<(), StorageError> {
    let rebuild = rebuild_txn_index;
    if let Some(found) = segment.find_batch(replay_from)? {
        for batch in segment.headers_from(found.position)? {
            let header = batch.header;
            if header.base_offset < replay_from {
                continue;
            }
            let marker =
                if header.is_control() && header.producer_id >= 0 { Some(read_marker(segment, &batch)?) } else { None };
            let completed = producers.replay(&header, marker);
            if let (true, Some(completed)) = (rebuild, completed.filter(|c| c.aborted)) {
                let last_stable_offset = producers.stable_offset_after(&completed);
                segment.txn_index.append(io, index_entry(&completed, last_stable_offset))?;
            }
        }
    }
    if rebuild {
        segment.txn_index.flush()?;
    }
    Ok(())
}

impl Log {
    /// Writes a COMMIT or ABORT marker for `marker.producer_id`: a one-record
    /// control batch in Kafka's format (transactional and control bits, key
    /// ControlRecordType v0, value EndTransactionMarker v0 with the coordinator
    /// epoch, base sequence -1). Completes the producer's open transaction,
    /// moving the LSO; an abort that completes one is added to the
    /// aborted-transaction index. An epoch older than the producer's is
    /// INVALID_PRODUCER_EPOCH, a coordinator epoch older than its last
    /// marker's TRANSACTION_COORDINATOR_FENCED.
    pub fn append_transaction_marker(
        &self,
        marker: TxnMarker,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        self.check_online()?;
        if marker.producer_id < 0 {
            return Err(invalid("a transaction marker needs a producer id"));
        }
        let config = self.config();
        let mut appender = self.lock_appender();
        let view = self.view();
        let offset = view.log_end_offset;
        let result = if marker.commit { TransactionResult::Commit } else { TransactionResult::Abort };
        let bytes = build_transaction_marker_batch(
            offset,
            marker.producer_id,
            marker.producer_epoch,
            now_ms,
            TransactionMarker { result, coordinator_epoch: marker.coordinator_epoch },
        )
        .map_err(corrupt)?;
        let mut bytes = BytesMut::from(&bytes[..]);
        let mut batch = ValidatedBatchMut::new(&mut bytes).map_err(corrupt)?;
        batch.set_partition_leader_epoch(leader_epoch).map_err(corrupt)?;
        let log_append_time_ms = if config.message_timestamp_type == TimestampType::LogAppendTime {
            batch.set_max_timestamp(TimestampType::LogAppendTime, now_ms).map_err(corrupt)?;
            now_ms
        } else {
            -1
        };
        let header = *batch.header();
        let mut staged = StagedProducers::default();
        let completed = appender.producers.check_marker(
            &header,
            Marker { commit: marker.commit, coordinator_epoch: marker.coordinator_epoch },
            &mut staged,
        )?;
        let batches = [AppendedBatch {
            last_offset: offset,
            max_timestamp_ms: header.max_timestamp,
            size_bytes: bytes.len() as u64,
        }];
        let result = self.write_locked(&mut appender, &view, &bytes, &batches, leader_epoch, offset, &config, now_ms);
        let segment = self.on_write_error(result)?;
        self.write_succeeded();
        appender.producers.commit(staged);
        if let Some(completed) = completed.filter(|c| c.aborted) {
            let last_stable_offset = appender.producers.stable_offset_after(&completed);
            let result = segment.txn_index.append(self.io.as_ref(), index_entry(&completed, last_stable_offset));
            // The marker is written but not published: nothing short of a reopen
            // (which rebuilds the index) makes the log consistent again.
            self.offline_on_error(result)?;
        }
        let next_offset = offset + 1;
        let (log_start_offset, flush_due) = self.publish_append(&mut appender, next_offset, 1, &config);
        drop(appender);
        if flush_due {
            self.flush_through(next_offset, now_ms)?;
        }
        Ok(AppendInfo {
            base_offset: offset,
            last_offset: offset,
            log_append_time_ms,
            log_start_offset,
            records_count: 1,
            sync_through: None,
        })
    }

    /// Kafka's collectAbortedTransactions: the aborted transactions whose
    /// range overlaps `[fetch_offset, upper_bound_offset)` (last offset at or
    /// past `fetch_offset`, first offset below the bound), scanning the txn
    /// indexes from the segment holding `fetch_offset` until an entry's LSO
    /// reaches the bound. A read_committed fetch reads up to the LSO and
    /// passes the end of what it returns as the bound.
    pub fn aborted_transactions(&self, fetch_offset: i64, upper_bound_offset: i64) -> Vec<AbortedTxn> {
        let view = self.view();
        let start = view.segments.partition_point(|s| s.base_offset() <= fetch_offset).saturating_sub(1);
        let mut entries = Vec::new();
        for segment in view.segments.get(start..).unwrap_or_default() {
            if segment.txn_index.collect(fetch_offset, upper_bound_offset, &mut entries) {
                break;
            }
        }
        entries.into_iter().map(|e| AbortedTxn { producer_id: e.producer_id, first_offset: e.first_offset }).collect()
    }
}

#[cfg(test)]
mod tests;
