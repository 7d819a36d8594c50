//! The replica side of a log (Kafka's UnifiedLog.appendAsFollower, truncateTo
//! and truncateFullyAndStartAt): appending batches exactly as a leader wrote
//! them, and cutting the log back when it diverged from the leader's.
//!
//! A truncation works from the end of the log toward its start, so that a crash
//! at any step leaves a log that is a prefix of the one before it, never one
//! with a hole: the later segments go first (newest first) and the directory is
//! synced before the segment that keeps a part is cut, and the cut is fsynced.
//! The leader-epoch checkpoint and the producer snapshots are caches a reopen
//! corrects against the log end (`Log::open` truncates both to it).

use std::fs;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gregor_protocol::records::{
    decode_transaction_marker, validate_batch, RecordBatch, RecordBatchHeader, TransactionResult,
};

use super::append::{corrupt, entry_size, invalid, should_roll};
use super::txn::{index_entry, replay_segment};
use super::{AppendInfo, Appender, Log, View};
use crate::error::{AppendError, StorageError};
use crate::index::write_lock;
use crate::io::sync_dir;
use crate::producer::{list_snapshots, Marker, ProducerStateManager};
use crate::segment::{AppendedBatch, Segment};

/// One batch of a replica append, checked.
struct ReplicaBatch {
    header: RecordBatchHeader,
    /// The decoded commit or abort marker of a producer's control batch.
    marker: Option<Marker>,
}

/// The marker a transactional control batch carries.
fn decode_marker(batch: &[u8]) -> Result<Marker, AppendError> {
    let decoded = RecordBatch::new(Bytes::copy_from_slice(batch)).map_err(corrupt)?;
    let marker = decode_transaction_marker(&decoded).map_err(corrupt)?;
    Ok(Marker { commit: marker.result == TransactionResult::Commit, coordinator_epoch: marker.coordinator_epoch })
}

/// For the creation time of a segment made by an operation that takes no clock.
fn wall_clock_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Log {
    /// Kafka's appendAsFollower: appends whole batches keeping the offsets,
    /// partition leader epochs and timestamps the leader gave them. Each batch's
    /// CRC is checked; the first must not start below the log end
    /// ([`AppendError::UnexpectedAppendOffset`]; it may start past it, as after
    /// a compacted leader's gap) and each must start past the one before
    /// ([`AppendError::OffsetsOutOfOrder`]). Nothing is refused for its size
    /// (other than `segment.bytes` for the whole set), sequence or producer epoch:
    /// the leader checked them; producer state is updated as a replay does, so
    /// that sequence checks hold after a leader change. Each batch's leader epoch
    /// enters the epoch cache at its base offset. Rolls and the flush policy are
    /// those of a leader append; the high watermark moves as for one unless it
    /// is set from outside (see [`Log::set_high_watermark_external`]).
    pub fn append_as_follower(&self, records: &[u8], now_ms: i64) -> Result<AppendInfo, AppendError> {
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

        let mut batches: Vec<ReplicaBatch> = Vec::new();
        let mut appended: Vec<AppendedBatch> = Vec::new();
        let mut records_count = 0u64;
        let mut position = 0usize;
        while position < records.len() {
            let rest = records.get(position..).unwrap_or_default();
            let size = entry_size(rest, usize::MAX)?;
            let slice = rest.get(..size).unwrap_or_default();
            let header = validate_batch(slice).map_err(corrupt)?;
            if header.last_offset_delta < 0 {
                return Err(invalid(format!("batch at {} has a negative last offset delta", header.base_offset)));
            }
            match batches.last() {
                None if header.base_offset < view.log_end_offset => {
                    return Err(AppendError::UnexpectedAppendOffset {
                        first_offset: header.base_offset,
                        last_offset: header.last_offset(),
                        log_end_offset: view.log_end_offset,
                    });
                }
                Some(previous) if header.base_offset <= previous.header.last_offset() => {
                    return Err(AppendError::OffsetsOutOfOrder {
                        base_offset: header.base_offset,
                        previous_last_offset: previous.header.last_offset(),
                    });
                }
                _ => {}
            }
            let marker =
                if header.is_control() && header.producer_id >= 0 { Some(decode_marker(slice)?) } else { None };
            appended.push(AppendedBatch {
                last_offset: header.last_offset(),
                max_timestamp_ms: header.max_timestamp,
                size_bytes: size as u64,
            });
            records_count += u64::try_from(header.records_count).unwrap_or_default();
            batches.push(ReplicaBatch { header, marker });
            position += size;
        }
        let (Some(first), Some(last)) = (batches.first(), batches.last()) else {
            return Ok(AppendInfo {
                base_offset: -1,
                last_offset: -1,
                log_append_time_ms: -1,
                log_start_offset: view.log_start_offset,
                records_count: 0,
                sync_through: None,
            });
        };
        let base_offset = first.header.base_offset;
        let last_offset = last.header.last_offset();

        let result = self.write_replica_locked(&mut appender, &view, records, &batches, &appended, now_ms);
        let segment = self.on_write_error(result)?;
        self.write_succeeded();
        for batch in &batches {
            let completed = appender.producers.replay(&batch.header, batch.marker);
            if let Some(completed) = completed.filter(|c| c.aborted) {
                let last_stable_offset = appender.producers.stable_offset_after(&completed);
                let result = segment.txn_index.append(self.io.as_ref(), index_entry(&completed, last_stable_offset));
                // Written but not published: only a reopen (which rebuilds the index) mends it.
                self.offline_on_error(result)?;
            }
        }
        let next_offset = last_offset + 1;
        let records = i64::try_from(records_count).unwrap_or(i64::MAX);
        let (log_start_offset, flush_due) = self.publish_append(&mut appender, next_offset, records, &config);
        drop(appender);
        if flush_due {
            // Outside the append lock: group commit (see `flush_through`).
            self.flush_through(next_offset, now_ms)?;
        }
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_append_time_ms: -1,
            log_start_offset,
            records_count,
            sync_through: None,
        })
    }

    /// Records the batches' epochs (before any data of an epoch is on disk),
    /// rolls when due (the new segment starts at the first batch's offset, as
    /// Kafka's maybeRoll does) and writes the bytes. Returns the segment written.
    fn write_replica_locked(
        &self,
        appender: &mut Appender,
        view: &View,
        bytes: &[u8],
        batches: &[ReplicaBatch],
        appended: &[AppendedBatch],
        now_ms: i64,
    ) -> Result<Arc<Segment>, StorageError> {
        let config = self.config();
        let (Some(first), Some(last)) = (batches.first(), appended.last()) else {
            return Err(StorageError::corrupt(&self.dir, "a replica append without batches"));
        };
        for batch in batches {
            write_lock(&self.epochs).assign(batch.header.partition_leader_epoch, batch.header.base_offset)?;
        }
        let active = match view.segments.last() {
            Some(segment)
                if !should_roll(segment, bytes.len() as u64, last.last_offset, &config, now_ms)
                    && segment.can_hold_offset(last.last_offset) =>
            {
                Arc::clone(segment)
            }
            _ => self.roll_locked(appender, first.header.base_offset, now_ms)?,
        };
        if let Err(e) = active.append(bytes, appended, config.index_interval_bytes) {
            // As on the leader path: the file must end with the last whole batch.
            active.truncate_to_committed()?;
            return Err(e);
        }
        Ok(active)
    }

    /// Kafka's truncateTo: removes every batch at and after `offset`, so that the
    /// log ends with the greatest offset below it. A batch that straddles
    /// `offset` goes whole; the log end is then where the last batch left ends
    /// (below `offset` also when `offset` lies in a gap a compacted leader left;
    /// Kafka would say `offset` until a restart, this says what a reopen finds,
    /// the start of an emptied segment when it is the last). Removed are the
    /// segments past it with their files, their index, time index and txn index
    /// entries, the leader epochs that start at or past the new end and the
    /// producer snapshots past it; producer state is rebuilt from the newest
    /// snapshot left. The high watermark, recovery point and log start come
    /// down to the new end when they are past it. When `offset` lies below the
    /// first segment this is [`Log::truncate_fully_and_start_at`]. Returns
    /// whether anything was removed (`false` when `offset` is at or past the
    /// log end; the epoch cache still loses any epoch starting at the log end,
    /// as in Kafka). A failure midway takes the log offline; a reopen then
    /// finds a prefix of the log as it was, with no hole (see the module docs).
    pub fn truncate_to(&self, offset: i64) -> Result<bool, AppendError> {
        if offset < 0 {
            return Err(AppendError::NegativeTruncationOffset { offset });
        }
        self.check_online()?;
        // The cleaner swaps segments by identity: one it cleaned before the cut
        // must not come back after it.
        let _cleaning = self.cleaner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut appender = self.lock_appender();
        let mut flushed = self.lock_flushed();
        let view = self.view();
        if offset >= view.log_end_offset {
            write_lock(&self.epochs).truncate_from_end(view.log_end_offset);
            return Ok(false);
        }
        let result = if view.segments.first().is_none_or(|s| s.base_offset() > offset) {
            self.truncate_fully_locked(&mut appender, &view, offset, wall_clock_ms())
        } else {
            self.truncate_locked(&mut appender, &view, offset)
        };
        let new_end = self.offline_on_error(result)?;
        *flushed = (*flushed).min(new_end);
        Ok(true)
    }

    /// Kafka's truncateFullyAndStartAt: deletes every segment, snapshot and epoch
    /// and starts the log over, empty, at `offset` (log start, log end, high
    /// watermark and recovery point all there), as a replica does when the
    /// leader's log starts past its own end, or after installing a snapshot.
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), AppendError> {
        if offset < 0 {
            return Err(AppendError::NegativeTruncationOffset { offset });
        }
        self.check_online()?;
        let _cleaning = self.cleaner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut appender = self.lock_appender();
        let mut flushed = self.lock_flushed();
        let view = self.view();
        let result = self.truncate_fully_locked(&mut appender, &view, offset, wall_clock_ms());
        *flushed = self.offline_on_error(result)?;
        Ok(())
    }

    /// See [`Log::truncate_to`]; returns the new log end.
    fn truncate_locked(&self, appender: &mut Appender, view: &View, offset: i64) -> Result<i64, StorageError> {
        let keep = view.segments.partition_point(|s| s.base_offset() <= offset);
        let kept: Vec<Arc<Segment>> = view.segments.get(..keep).unwrap_or_default().to_vec();
        let doomed: Vec<Arc<Segment>> = view.segments.get(keep..).unwrap_or_default().to_vec();
        let Some(active) = kept.last().cloned() else {
            return Err(StorageError::corrupt(&self.dir, format!("no segment at or below offset {offset}")));
        };
        // The new end is where the last batch left ends (the segment's base when
        // none is left in it), which is what a reopen finds: below `offset` when
        // a batch straddles it or it lies in a gap.
        let new_end = match active.find_batch(offset)? {
            Some(first_cut) => active.end_before(first_cut.position)?,
            None => active.last_batch()?.map_or(active.base_offset(), |h| h.last_offset() + 1),
        };
        {
            let mut shared = write_lock(&self.view);
            shared.segments = Arc::new(kept.clone());
            shared.log_end_offset = new_end;
            shared.log_start_offset = shared.log_start_offset.min(new_end);
            shared.high_watermark = shared.high_watermark.min(new_end);
            shared.update_last_stable_offset();
        }
        // The segment keeping the head is active again: its sync is the active one's.
        self.lock_rolled_unsynced().retain(|(s, _)| !Arc::ptr_eq(s, &active) && kept.iter().any(|k| Arc::ptr_eq(k, s)));
        self.lock_pending_snapshots().retain(|(snapshot_offset, _)| *snapshot_offset <= new_end);
        for segment in doomed.iter().rev() {
            segment.delete_files()?;
        }
        // Drops the snapshots past the new end, which describe removed batches.
        let (mut producers, snapshot_offset) = ProducerStateManager::load_latest(&self.dir, new_end)?;
        sync_dir(&self.dir)?;
        active.truncate_to(new_end)?;
        write_lock(&self.epochs).truncate_from_end(new_end);

        let replay_from = snapshot_offset.unwrap_or_else(|| kept.first().map_or(new_end, |s| s.base_offset()));
        for segment in &kept {
            replay_segment(self.io.as_ref(), segment, replay_from, &mut producers, false)?;
        }
        appender.producers = producers;
        appender.recovery_point = appender.recovery_point.min(new_end);
        self.cleaner_checkpoint.fetch_min(new_end, Ordering::AcqRel);
        let mut shared = write_lock(&self.view);
        shared.first_unstable_offset = appender.producers.first_unstable_offset();
        shared.update_last_stable_offset();
        tracing::info!(partition = %self.tp, offset, new_end, deleted_segments = doomed.len(), "truncated");
        Ok(new_end)
    }

    /// See [`Log::truncate_fully_and_start_at`]; returns `offset`.
    fn truncate_fully_locked(
        &self,
        appender: &mut Appender,
        view: &View,
        offset: i64,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        let config = self.config();
        self.lock_rolled_unsynced().clear();
        self.lock_pending_snapshots().clear();
        for segment in view.segments.iter().rev() {
            segment.delete_files()?;
        }
        for (_, path) in list_snapshots(&self.dir)? {
            fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
        }
        let segment =
            Arc::new(Segment::create(self.io.as_ref(), &self.dir, offset, config.segment_index_bytes, now_ms)?);
        sync_dir(&self.dir)?;
        {
            let mut shared = write_lock(&self.view);
            shared.segments = Arc::new(vec![segment]);
            shared.log_start_offset = offset;
            shared.log_end_offset = offset;
            shared.high_watermark = offset;
            shared.first_unstable_offset = None;
            shared.update_last_stable_offset();
        }
        write_lock(&self.epochs).clear();
        appender.producers = ProducerStateManager::default();
        appender.recovery_point = offset;
        appender.unflushed_messages = 0;
        self.cleaner_checkpoint.store(-1, Ordering::Release);
        tracing::info!(partition = %self.tp, offset, deleted_segments = view.segments.len(), "truncated fully");
        Ok(offset)
    }
}

#[cfg(test)]
mod tests;
