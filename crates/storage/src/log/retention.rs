//! Moving the log start: retention by time and size, DeleteRecords, and the
//! deletion of whole segments below the log start.

use std::sync::Arc;

use super::{Appender, Log};
use crate::error::{AppendError, StorageError};
use crate::index::write_lock;
use crate::segment::Segment;

impl Log {
    /// DeleteRecords: moves the log start to `offset` (-1 means the high
    /// watermark) and deletes segments wholly below it. Returns the new log start.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, AppendError> {
        self.check_online()?;
        let mut appender = self.lock_appender();
        let view = self.view();
        let target = if offset == -1 { view.high_watermark } else { offset };
        if target < 0 || target > view.high_watermark {
            return Err(AppendError::OffsetOutOfRange {
                offset,
                log_start_offset: view.log_start_offset,
                high_watermark: view.high_watermark,
            });
        }
        if target > view.log_start_offset {
            {
                let mut shared = write_lock(&self.view);
                shared.log_start_offset = target;
                shared.update_last_stable_offset();
            }
            write_lock(&self.epochs).truncate_from_start(target);
        }
        // Never the active segment: Kafka's DeleteRecords leaves it too.
        self.delete_segments_locked(&mut appender, 0, |_, _| false)?;
        Ok(self.log_start_offset())
    }

    /// Deletes whole segments past retention.ms or retention.bytes (only for
    /// cleanup.policy=delete) or wholly below the log start. As in Kafka, the
    /// active segment goes too when it is past retention and every record in it
    /// is below the high watermark: a new empty segment is rolled first, so a
    /// quiet topic does not keep expired records until segment.ms rolls it.
    /// Returns how many were deleted.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<u64, StorageError> {
        self.check_online()?;
        let config = self.config();
        let mut appender = self.lock_appender();
        let mut deleted = 0;
        if config.cleanup_policy_delete && config.retention_ms >= 0 {
            deleted += self.delete_segments_locked(&mut appender, now_ms, |segment, _| {
                now_ms.saturating_sub(segment.largest_timestamp_ms()) > config.retention_ms
            })?;
        }
        if config.cleanup_policy_delete && config.retention_bytes >= 0 {
            let total = self.size_bytes();
            let mut excess_bytes = i128::from(total) - i128::from(config.retention_bytes);
            deleted += self.delete_segments_locked(&mut appender, now_ms, |segment, _| {
                let size = i128::from(segment.size_bytes());
                if excess_bytes - size >= 0 {
                    excess_bytes -= size;
                    true
                } else {
                    false
                }
            })?;
        }
        deleted += self.delete_segments_locked(&mut appender, now_ms, |_, _| false)?;
        Ok(deleted)
    }

    /// Deletes the longest prefix of segments that `predicate` accepts or that
    /// lies wholly below the log start, and only below the high watermark; then
    /// moves the log start to the first segment kept. The active segment is
    /// taken only by `predicate` and only when it holds records: a new segment is
    /// rolled at the log end first, since a log always keeps one.
    fn delete_segments_locked(
        &self,
        appender: &mut Appender,
        now_ms: i64,
        mut predicate: impl FnMut(&Segment, i64) -> bool,
    ) -> Result<u64, StorageError> {
        let mut view = self.view();
        let mut count = 0usize;
        for (index, segment) in view.segments.iter().enumerate() {
            let next_base = view.segments.get(index + 1).map(|next| next.base_offset());
            let upper_bound = next_base.unwrap_or(view.log_end_offset);
            if upper_bound > view.high_watermark {
                break;
            }
            let deletable = match next_base {
                Some(next_base) => next_base <= view.log_start_offset || predicate(segment, next_base),
                None => segment.size_bytes() > 0 && predicate(segment, upper_bound),
            };
            if !deletable {
                break;
            }
            count += 1;
        }
        if count == 0 {
            return Ok(0);
        }
        if count == view.segments.len() {
            match self.roll_locked(appender, view.log_end_offset, now_ms) {
                Ok(_) => view = self.view(),
                Err(error) => {
                    // On a full disk the roll cannot create its files: keep the active segment.
                    tracing::warn!(partition = %self.tp, "cannot roll to delete the active segment: {error}");
                    count -= 1;
                    if count == 0 {
                        return Ok(0);
                    }
                }
            }
        }
        let doomed: Vec<Arc<Segment>> = view.segments.iter().take(count).cloned().collect();
        let kept: Vec<Arc<Segment>> = view.segments.iter().skip(count).cloned().collect();
        let new_start = kept.first().map_or(view.log_start_offset, |s| s.base_offset()).max(view.log_start_offset);
        {
            let mut shared = write_lock(&self.view);
            shared.segments = Arc::new(kept);
            shared.log_start_offset = new_start;
            shared.update_last_stable_offset();
        }
        write_lock(&self.epochs).truncate_from_start(new_start);
        // A deleted segment needs no sync, and its open files would keep its
        // space allocated (on a full disk, the space being freed).
        self.lock_rolled_unsynced().retain(|(s, _)| !doomed.iter().any(|d| Arc::ptr_eq(d, s)));
        let result = doomed.iter().try_for_each(|s| s.delete_files());
        self.on_write_error(result)?;
        tracing::info!(partition = %self.tp, count, new_start, "deleted segments");
        Ok(count as u64)
    }
}
