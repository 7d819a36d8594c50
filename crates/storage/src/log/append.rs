//! The produce path: validate each batch by its header and CRC only, check
//! producer state, assign offsets in place, roll when due, write, index, flush.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{
    entry_magic, validate_batch, RecordBatch, RecordBatchHeader, RecordsError, TimestampType, ValidatedBatchMut,
    LOG_OVERHEAD_BYTES, MAGIC_POSITION, MAGIC_V2,
};

use super::{Appender, Log, View};
use crate::config::LogConfig;
use crate::error::{AppendError, RecordErrors, StorageError};
use crate::index::write_lock;
use crate::producer::{SequenceCheck, StagedProducers};
use crate::segment::{AppendedBatch, Segment};

/// What a produce learns about its append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker's timestamp for log-append-time topics, else -1.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    pub records_count: u64,
    /// `Some(end_offset)` when the flush policy wants this append synced before it
    /// is acknowledged and the caller chose to do it (`defer_sync`): it must call
    /// [`Log::flush_through`] with it first. Always `None` otherwise.
    pub sync_through: Option<i64>,
}

/// Decompressed records of one batch are bounded by this, for the
/// compacted-topic key check, so a compression bomb cannot exhaust memory.
const DECOMPRESSED_BYTES_MAX: usize = 256 * 1024 * 1024;

pub(super) fn corrupt(error: RecordsError) -> AppendError {
    AppendError::Corrupt(error)
}

pub(super) fn invalid(message: impl Into<String>) -> AppendError {
    AppendError::InvalidRecord { message: message.into(), record_errors: Vec::new() }
}

/// The size of the entry at the front of `rest`, checked against what is there
/// and `batch_bytes_max` (max.message.bytes for a produce).
pub(super) fn entry_size(rest: &[u8], batch_bytes_max: usize) -> Result<usize, AppendError> {
    if rest.len() > MAGIC_POSITION {
        let magic = entry_magic(rest).map_err(corrupt)?;
        if magic != MAGIC_V2 {
            return Err(AppendError::UnsupportedMagic { magic });
        }
    }
    let length = rest
        .get(8..LOG_OVERHEAD_BYTES)
        .and_then(|b| b.first_chunk::<4>())
        .map(|b| i32::from_be_bytes(*b))
        .ok_or_else(|| invalid(format!("record set ends with {} bytes, less than an entry header", rest.len())))?;
    let size = usize::try_from(length)
        .ok()
        .and_then(|l| l.checked_add(LOG_OVERHEAD_BYTES))
        .ok_or_else(|| corrupt(RecordsError::LengthTooSmall { length, length_min: 0 }))?;
    if size > batch_bytes_max {
        return Err(AppendError::MessageTooLarge { size_bytes: size, max_bytes: batch_bytes_max });
    }
    if size > rest.len() {
        return Err(corrupt(RecordsError::SizeMismatch { declared_bytes: size, actual_bytes: rest.len() }));
    }
    Ok(size)
}

/// Header checks Kafka's LogValidator makes on every client batch.
fn check_header(header: &RecordBatchHeader) -> Result<(), AppendError> {
    if header.records_count <= 0 || i64::from(header.last_offset_delta) + 1 != i64::from(header.records_count) {
        return Err(invalid(format!(
            "inconsistent batch: last offset delta {} with {} records",
            header.last_offset_delta, header.records_count
        )));
    }
    if header.is_control() {
        return Err(invalid("clients may not write control batches"));
    }
    if header.is_transactional() && header.producer_id < 0 {
        return Err(invalid("transactional batch without a producer id"));
    }
    Ok(())
}

/// Create-time bounds. The header's base and max timestamps bound the
/// records in every batch a real producer writes, so records are decoded only
/// to name the offenders once the header shows a violation.
fn check_timestamps(
    batch: &[u8],
    header: &RecordBatchHeader,
    config: &LogConfig,
    now_ms: i64,
) -> Result<(), AppendError> {
    if config.message_timestamp_type != TimestampType::CreateTime {
        return Ok(());
    }
    let earliest_ms = now_ms.saturating_sub(config.message_timestamp_before_max_ms);
    let latest_ms = now_ms.saturating_add(config.message_timestamp_after_max_ms);
    let in_bounds = |ts: i64| ts >= earliest_ms && ts <= latest_ms;
    if in_bounds(header.base_timestamp) && in_bounds(header.max_timestamp) {
        return Ok(());
    }
    let message = format!("timestamp outside [{earliest_ms}, {latest_ms}] (now {now_ms})");
    let mut record_errors: RecordErrors = Vec::new();
    if let Ok(decoded) = RecordBatch::new(Bytes::copy_from_slice(batch)) {
        if let Ok(records) = decoded.records(DECOMPRESSED_BYTES_MAX) {
            for (i, record) in records.iter().enumerate() {
                let ts = header.record_timestamp(record);
                if !in_bounds(ts) {
                    record_errors
                        .push((i32::try_from(i).unwrap_or(i32::MAX), Some(format!("timestamp {ts}: {message}"))));
                }
            }
        }
    }
    Err(AppendError::InvalidTimestamp { message, record_errors })
}

/// Compacted topics need a key on every record, which takes decoding.
fn check_keys(batch: &[u8], log: &Log) -> Result<(), AppendError> {
    let decoded = RecordBatch::new(Bytes::copy_from_slice(batch)).map_err(corrupt)?;
    let records = decoded.records(DECOMPRESSED_BYTES_MAX).map_err(corrupt)?;
    let message = format!("Compacted topic cannot accept message without key in topic partition {}.", log.tp);
    let record_errors: RecordErrors = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.key.is_none())
        .map(|(i, _)| (i32::try_from(i).unwrap_or(i32::MAX), Some(message.clone())))
        .collect();
    if record_errors.is_empty() {
        Ok(())
    } else {
        Err(AppendError::InvalidRecord { message, record_errors })
    }
}

/// Asked, under the partition's append lock, whether a transactional batch that
/// would open a transaction here (its producer has none open in this partition)
/// belongs to a transaction the coordinator knows includes this partition
/// (KIP-890 part 1). Arguments: producer id and epoch. Holding the append lock
/// keeps a marker from landing between the answer and the append, so a late
/// batch cannot reopen a transaction that was already completed.
pub type TxnVerifier<'a> = &'a dyn Fn(i64, i16) -> Result<(), AppendError>;

impl Log {
    /// Appends a produce request's record set (see the crate docs for every check).
    pub fn append_as_leader(
        &self,
        records: BytesMut,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        self.append_as_leader_verified(records, leader_epoch, now_ms, None, false)
    }

    /// [`Log::append_as_leader`], with `verify` consulted before a transactional
    /// batch opens a transaction in this partition (see [`TxnVerifier`]). With
    /// `defer_sync`, an append the flush policy wants synced returns without the
    /// sync and says so in [`AppendInfo::sync_through`], so that the produce path
    /// can take the next request while the sync runs (one sync then covers several).
    pub fn append_as_leader_verified(
        &self,
        mut records: BytesMut,
        leader_epoch: i32,
        now_ms: i64,
        verify: Option<TxnVerifier<'_>>,
        defer_sync: bool,
    ) -> Result<AppendInfo, AppendError> {
        self.check_online()?;
        let config = self.config();
        if records.len() as u64 > config.segment_bytes {
            return Err(AppendError::RecordListTooLarge {
                size_bytes: records.len(),
                segment_bytes: config.segment_bytes,
            });
        }
        let mut appender = self.lock_appender();
        let view = self.view();
        let log_append_time_ms =
            if config.message_timestamp_type == TimestampType::LogAppendTime { now_ms } else { -1 };

        let mut batches: Vec<AppendedBatch> = Vec::new();
        let mut staged = StagedProducers::default();
        let mut next_offset = view.log_end_offset;
        let mut records_count = 0u64;
        let mut position = 0usize;
        while position < records.len() {
            let rest = records.get_mut(position..).unwrap_or_default();
            let size = entry_size(rest, config.max_message_bytes)?;
            let slice = rest.get_mut(..size).unwrap_or_default();
            let header = RecordBatchHeader::parse(slice).map_err(corrupt)?;
            if let Err(e) = check_header(&header).and_then(|()| check_timestamps(slice, &header, &config, now_ms)) {
                // A damaged batch is reported as corrupt, whatever else it breaks.
                validate_batch(slice).map_err(corrupt)?;
                return Err(e);
            }
            if config.cleanup_policy_compact {
                check_keys(slice, self)?;
            }
            // The one CRC pass of the common path.
            let mut batch = ValidatedBatchMut::new(slice).map_err(corrupt)?;
            batch.set_base_offset(next_offset).map_err(corrupt)?;
            batch.set_partition_leader_epoch(leader_epoch).map_err(corrupt)?;
            if config.message_timestamp_type == TimestampType::LogAppendTime {
                batch.set_max_timestamp(TimestampType::LogAppendTime, now_ms).map_err(corrupt)?;
            }
            let stamped = *batch.header();
            if let Some(verify) = verify {
                if stamped.is_transactional()
                    && stamped.producer_id >= 0
                    && !appender.producers.has_open_txn(stamped.producer_id, &staged)
                {
                    verify(stamped.producer_id, stamped.producer_epoch)?;
                }
            }
            match appender.producers.check(&stamped, &mut staged)? {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate { first_offset, last_offset, timestamp_ms } => {
                    return Ok(AppendInfo {
                        base_offset: first_offset,
                        last_offset,
                        log_append_time_ms: if log_append_time_ms >= 0 { timestamp_ms } else { -1 },
                        log_start_offset: view.log_start_offset,
                        records_count: 0,
                        sync_through: None,
                    });
                }
            }
            batches.push(AppendedBatch {
                last_offset: stamped.last_offset(),
                max_timestamp_ms: stamped.max_timestamp,
                size_bytes: size as u64,
            });
            records_count += u64::try_from(stamped.records_count).unwrap_or_default();
            next_offset = stamped.last_offset() + 1;
            position += size;
        }
        if batches.is_empty() {
            return Ok(AppendInfo {
                base_offset: -1,
                last_offset: -1,
                log_append_time_ms,
                log_start_offset: view.log_start_offset,
                records_count: 0,
                sync_through: None,
            });
        }
        let base_offset = view.log_end_offset;
        let last_offset = next_offset - 1;

        let result =
            self.write_locked(&mut appender, &view, &records, &batches, leader_epoch, last_offset, &config, now_ms);
        self.on_write_error(result.map(|_| ()))?;
        self.write_succeeded();
        appender.producers.commit(staged);
        let records = i64::try_from(records_count).unwrap_or(i64::MAX);
        let (log_start_offset, flush_due) = self.publish_append(&mut appender, next_offset, records, &config);
        drop(appender);
        if flush_due && !defer_sync {
            // Outside the append lock: group commit (see `flush_through`).
            self.flush_through(next_offset, now_ms)?;
        }
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_append_time_ms,
            log_start_offset,
            records_count,
            sync_through: (flush_due && defer_sync).then_some(next_offset),
        })
    }

    /// Rolls if due, records a new leader epoch, writes and indexes the bytes.
    /// Returns the segment written to.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn write_locked(
        &self,
        appender: &mut Appender,
        view: &View,
        bytes: &[u8],
        batches: &[AppendedBatch],
        leader_epoch: i32,
        last_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Arc<Segment>, StorageError> {
        let mut active = view.segments.last().cloned();
        if let Some(segment) = &active {
            if should_roll(segment, bytes.len() as u64, last_offset, config, now_ms) {
                active = Some(self.roll_locked(appender, view.log_end_offset, now_ms)?);
            }
        }
        let active = match active {
            Some(a) => a,
            None => self.roll_locked(appender, view.log_end_offset, now_ms)?,
        };
        write_lock(&self.epochs).assign(leader_epoch, view.log_end_offset)?;
        if let Err(e) = active.append(bytes, batches, config.index_interval_bytes) {
            // A full disk may have taken part of the bytes: cut them off, so that
            // the file ends with the last whole batch and the retry lands there.
            active.truncate_to_committed()?;
            return Err(e);
        }
        Ok(active)
    }

    /// Closes the active segment to appends (its fsync is left to
    /// [`Log::sync_rolled`], as is writing the producer snapshot) and starts a new segment at
    /// `base_offset`, published to readers before it is returned. The recovery
    /// point stays where it is until the old segment is synced.
    pub(super) fn roll_locked(
        &self,
        appender: &mut Appender,
        base_offset: i64,
        now_ms: i64,
    ) -> Result<Arc<Segment>, StorageError> {
        let config = self.config();
        let view = self.view();
        // Created first: on a full disk this fails and the old segment stays active.
        let segment =
            Arc::new(Segment::create(self.io.as_ref(), &self.dir, base_offset, config.segment_index_bytes, now_ms)?);
        if let Some(old) = view.segments.last() {
            old.finish();
            if old.base_offset() < base_offset {
                self.lock_rolled_unsynced().push((Arc::clone(old), base_offset));
            }
        }
        // Only the copy is taken here; the file is written and fsynced with the
        // rolled segment by `sync_rolled`, off the append lock.
        self.lock_pending_snapshots().push((base_offset, appender.producers.snapshot_bytes()));
        let mut segments: Vec<Arc<Segment>> = view.segments.iter().cloned().collect();
        // An empty active segment at the same offset is replaced, not kept twice.
        if segments.last().is_some_and(|s| s.base_offset() == base_offset) {
            segments.pop();
        }
        segments.push(Arc::clone(&segment));
        write_lock(&self.view).segments = Arc::new(segments);
        Ok(segment)
    }

    /// Starts a new segment now (for tests and admin tools).
    pub fn roll(&self, now_ms: i64) -> Result<(), StorageError> {
        self.check_online()?;
        let mut appender = self.lock_appender();
        let view = self.view();
        if view.segments.last().is_some_and(|s| s.size_bytes() == 0) {
            return Ok(());
        }
        let result = self.roll_locked(&mut appender, view.log_end_offset, now_ms).map(|_| ());
        self.on_write_error(result)
    }
}

/// Kafka's shouldRoll: full by size, old by segment.ms, an index full, or an
/// offset that no longer fits a relative offset.
pub(super) fn should_roll(
    segment: &Segment,
    incoming_bytes: u64,
    last_offset: i64,
    config: &LogConfig,
    now_ms: i64,
) -> bool {
    let size = segment.size_bytes();
    size > 0
        && (size.saturating_add(incoming_bytes) > config.segment_bytes
            || now_ms.saturating_sub(segment.rolling_base_ms()) > config.segment_ms
            || segment.indexes_full()
            || !segment.can_hold_offset(last_offset))
}
