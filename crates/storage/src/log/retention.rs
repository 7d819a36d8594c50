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
        self.delete_segments_locked(&mut appender, |_, _| false)?;
        Ok(self.log_start_offset())
    }

    /// Deletes whole segments past retention.ms or retention.bytes (only for
    /// cleanup.policy=delete) or wholly below the log start, never the active
    /// one. Returns how many were deleted.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<u64, StorageError> {
        self.check_online()?;
        let config = self.config();
        let mut appender = self.lock_appender();
        let mut deleted = 0;
        if config.cleanup_policy_delete && config.retention_ms >= 0 {
            deleted += self.delete_segments_locked(&mut appender, |segment, _| {
                now_ms.saturating_sub(segment.largest_timestamp_ms()) > config.retention_ms
            })?;
        }
        if config.cleanup_policy_delete && config.retention_bytes >= 0 {
            let total = self.size_bytes();
            let mut excess_bytes = i128::from(total) - i128::from(config.retention_bytes);
            deleted += self.delete_segments_locked(&mut appender, |segment, _| {
                let size = i128::from(segment.size_bytes());
                if excess_bytes - size >= 0 {
                    excess_bytes -= size;
                    true
                } else {
                    false
                }
            })?;
        }
        deleted += self.delete_segments_locked(&mut appender, |_, _| false)?;
        Ok(deleted)
    }

    /// Deletes the longest prefix of non-active segments that `predicate`
    /// accepts or that lies wholly below the log start, and only below the
    /// high watermark; then moves the log start to the first segment kept.
    fn delete_segments_locked(
        &self,
        _appender: &mut Appender,
        mut predicate: impl FnMut(&Segment, i64) -> bool,
    ) -> Result<u64, StorageError> {
        let view = self.view();
        let mut count = 0usize;
        for pair in view.segments.windows(2) {
            let [segment, next] = pair else { break };
            let next_base = next.base_offset();
            let below_start = next_base <= view.log_start_offset;
            if next_base > view.high_watermark || !(below_start || predicate(segment, next_base)) {
                break;
            }
            count += 1;
        }
        if count == 0 {
            return Ok(0);
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
