//! The log cleaner for `cleanup.policy=compact`, after Kafka's LogCleaner.
//!
//! A cleaning covers the non-active segments below the first segment that is
//! still too young (`min.compaction.lag.ms`). It maps every key of the dirty
//! part (from the cleaner checkpoint on) to its latest offset, then rewrites
//! every segment from the log start keeping a record only when no later
//! record has its key; tombstones go once their segment is older than
//! `delete.retention.ms`. Offsets never change: a rebuilt batch keeps its base
//! offset, offset deltas, last offset delta, producer fields, timestamps and
//! codec, so reads see gaps and the read path returns the next batch after one.
//! Control and transactional batches are copied unchanged.
//!
//! Aborted-transaction indexes: since offsets never change and every
//! transactional and control batch is kept, the sources' `.txnindex` entries
//! stay exactly true for the merged output, so they are concatenated (in
//! segment order) into `<base>.txnindex.cleaned` and travel with the other
//! files through `.swap` to the final name. An open completing an interrupted
//! swap drops that segment's txn index and rebuilds it by replay, like any
//! recovered segment.
//!
//! Consecutive small segments are merged while the output stays under
//! `segment.bytes`. Each output is written as `<base>.log.cleaned` (with its
//! indexes), fsynced, renamed to `.swap`, then the old segments are deleted and
//! the swap files renamed to their final names, all under the appender lock.
//! An open finding `<base>.log.swap` deletes the segments it covers and
//! completes the rename (see [`complete_swaps`]); `.cleaned` files are discarded.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use gregor_protocol::records::{
    set_max_timestamp, Record, RecordBatch, RecordBatchBuilder, RecordBatchHeader, RecordsError, TimestampType,
    BATCH_HEADER_BYTES,
};
use gregor_protocol::Compression;

use super::{Log, View};
use crate::config::LogConfig;
use crate::error::StorageError;
use crate::index::write_lock;
use crate::io::sync_dir;
use crate::segment::{file_name, parse_file_name, BatchAt, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::txn_index::{write_index_file, TXN_INDEX_SUFFIX};

const CLEANED: &str = ".cleaned";
const SWAP: &str = ".swap";

/// Decoding a batch is bounded like any decompression.
const DECOMPRESSED_BYTES_MAX: usize = 256 * 1024 * 1024;

/// What one cleaning did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionStats {
    /// Old segments replaced.
    pub segments_rewritten: u64,
    /// New segments that replaced them.
    pub segments_written: u64,
    /// Size of the replaced segments.
    pub bytes_before: u64,
    /// Size of their replacements.
    pub bytes_after: u64,
    pub records_removed: u64,
}

impl CompactionStats {
    /// Whether anything was rewritten.
    pub fn is_empty(&self) -> bool {
        self.segments_rewritten == 0
    }

    pub fn add(&mut self, other: &CompactionStats) {
        self.segments_rewritten += other.segments_rewritten;
        self.segments_written += other.segments_written;
        self.bytes_before += other.bytes_before;
        self.bytes_after += other.bytes_after;
        self.records_removed += other.records_removed;
    }
}

/// What the cleaner will cover: segments `[0, end)` of the view, the dirty part
/// starting at `first_dirty`.
#[derive(Debug, Clone, Copy)]
struct Plan {
    first_dirty: i64,
    end: usize,
    end_offset: i64,
}

/// A group of source segments written as one cleaned segment.
#[derive(Debug)]
struct Written {
    sources: Range<usize>,
    base_offset: i64,
    size_bytes: u64,
}

/// The fate of one batch.
enum Filtered {
    Keep,
    Rebuilt { bytes: Vec<u8>, removed: u64 },
    Dropped { removed: u64 },
}

fn corrupt(segment: &Segment, error: RecordsError) -> StorageError {
    StorageError::corrupt(
        PathBuf::from(file_name(segment.base_offset(), LOG_SUFFIX)),
        format!("cleaner could not decode a batch: {error}"),
    )
}

fn with_suffix(dir: &Path, base_offset: i64, suffix: &str, extra: &str) -> PathBuf {
    dir.join(format!("{}{extra}", file_name(base_offset, suffix)))
}

fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

fn rename(from: &Path, to: &Path) -> Result<(), StorageError> {
    fs::rename(from, to).map_err(|e| StorageError::io(from, e))
}

/// Renames the files of one cleaner output from `<name><from>` to
/// `<name><to>`, the log last (so a `.log.swap` means its indexes are
/// complete). Only outputs with aborted transactions have a txn index; the
/// other files always exist, so their absence is an error.
fn rename_output(dir: &Path, base_offset: i64, from: &str, to: &str) -> Result<(), StorageError> {
    for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX, LOG_SUFFIX] {
        let source = with_suffix(dir, base_offset, suffix, from);
        match fs::rename(&source, with_suffix(dir, base_offset, suffix, to)) {
            Err(e) if suffix == TXN_INDEX_SUFFIX && e.kind() == std::io::ErrorKind::NotFound => {}
            other => other.map_err(|e| StorageError::io(&source, e))?,
        }
    }
    Ok(())
}

/// Decides whether the log is due and what it covers (Kafka's cleanable
/// range and dirty ratio, at segment granularity).
fn plan(segments: &[Arc<Segment>], checkpoint: i64, config: &LogConfig, now_ms: i64) -> Option<Plan> {
    let (active, older) = segments.split_last()?;
    let first = older.first()?;
    let first_dirty = checkpoint.clamp(first.base_offset(), active.base_offset());
    let next_base = |i: usize| segments.get(i + 1).map_or(i64::MAX, |s| s.base_offset());
    let mut end = older.len();
    if config.min_compaction_lag_ms > 0 {
        for (i, segment) in older.iter().enumerate() {
            let dirty = next_base(i) > first_dirty;
            if dirty && now_ms.saturating_sub(segment.largest_timestamp_ms()) < config.min_compaction_lag_ms {
                end = i;
                break;
            }
        }
    }
    let cleanable = older.get(..end)?;
    let (mut dirty_bytes, mut total_bytes) = (0u64, 0u64);
    let mut first_dirty_segment = None;
    for (i, segment) in cleanable.iter().enumerate() {
        total_bytes += segment.size_bytes();
        if next_base(i) > first_dirty {
            dirty_bytes += segment.size_bytes();
            first_dirty_segment.get_or_insert(segment);
        }
    }
    let first_dirty_segment = first_dirty_segment?;
    if dirty_bytes == 0 {
        return None;
    }
    let ratio = dirty_bytes as f64 / total_bytes.max(1) as f64;
    let forced = config.max_compaction_lag_ms < i64::MAX
        && now_ms.saturating_sub(first_dirty_segment.rolling_base_ms()) > config.max_compaction_lag_ms;
    if ratio < config.min_cleanable_dirty_ratio && !forced {
        return None;
    }
    let end_offset = segments.get(end)?.base_offset();
    Some(Plan { first_dirty, end, end_offset })
}

/// Consecutive sources merged while the output fits a segment: its size,
/// relative offsets and index capacity.
fn groups(segments: &[Arc<Segment>], end: usize, config: &LogConfig) -> Vec<Range<usize>> {
    let max_index_entries = config.segment_index_bytes / 12;
    let interval = config.index_interval_bytes.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    while start < end {
        let Some(first) = segments.get(start) else { break };
        let mut size = first.size_bytes();
        let mut stop = start + 1;
        while stop < end {
            let (Some(next), Some(after)) = (segments.get(stop), segments.get(stop + 1)) else { break };
            let merged = size + next.size_bytes();
            let fits = merged <= config.segment_bytes
                && after.base_offset() - 1 - first.base_offset() <= i64::from(i32::MAX)
                && merged / interval + 2 < max_index_entries;
            if !fits {
                break;
            }
            size = merged;
            stop += 1;
        }
        out.push(start..stop);
        start = stop;
    }
    out
}

fn decode(segment: &Segment, batch: &BatchAt) -> Result<RecordBatch, StorageError> {
    let bytes = segment.read_bytes(batch.position, batch.header.size_bytes())?;
    RecordBatch::new(Bytes::from(bytes)).map_err(|e| corrupt(segment, e))
}

/// A builder for a batch like `header`, before its records.
fn builder_like(header: &RecordBatchHeader, compression: Compression) -> RecordBatchBuilder {
    let mut builder = RecordBatchBuilder::new(header.base_offset)
        .partition_leader_epoch(header.partition_leader_epoch)
        .compression(compression)
        .producer(header.producer_id, header.producer_epoch, header.base_sequence)
        .last_offset_delta(header.last_offset_delta);
    builder = if header.has_delete_horizon() {
        builder.delete_horizon(header.base_timestamp)
    } else {
        builder.base_timestamp(header.base_timestamp)
    };
    if header.timestamp_type() == TimestampType::LogAppendTime {
        builder = builder.log_append_time(header.max_timestamp);
    }
    builder
}

struct Filter<'a> {
    latest: &'a HashMap<Bytes, i64>,
    /// Last offset of each producer's last batch in the whole log.
    producer_last: &'a HashMap<i64, i64>,
}

impl Filter<'_> {
    fn keep(&self, header: &RecordBatchHeader, record: &Record, tombstones_expired: bool) -> bool {
        let Some(key) = &record.key else { return true };
        let offset = header.record_offset(record);
        if self.latest.get(key.as_ref()).is_some_and(|&latest| offset < latest) {
            return false;
        }
        !(record.value.is_none() && tombstones_expired)
    }

    fn batch(&self, segment: &Segment, batch: &BatchAt, tombstones_expired: bool) -> Result<Filtered, StorageError> {
        let header = &batch.header;
        if header.is_control() || header.is_transactional() {
            return Ok(Filtered::Keep);
        }
        let last_of_producer =
            header.producer_id >= 0 && self.producer_last.get(&header.producer_id) == Some(&header.last_offset());
        if header.records_count == 0 {
            // An empty batch kept for its producer's sequence goes once a later one exists.
            return Ok(if last_of_producer { Filtered::Keep } else { Filtered::Dropped { removed: 0 } });
        }
        let decoded = decode(segment, batch)?;
        let records = decoded.records(DECOMPRESSED_BYTES_MAX).map_err(|e| corrupt(segment, e))?;
        let total = records.len();
        let kept: Vec<Record> = records.into_iter().filter(|r| self.keep(header, r, tombstones_expired)).collect();
        if kept.len() == total {
            return Ok(Filtered::Keep);
        }
        let removed = (total - kept.len()) as u64;
        if kept.is_empty() {
            if !last_of_producer {
                return Ok(Filtered::Dropped { removed });
            }
            // Kafka keeps an empty batch so the producer's last sequence survives.
            let mut bytes = builder_like(header, Compression::None).build().map_err(|e| corrupt(segment, e))?;
            if header.timestamp_type() == TimestampType::CreateTime {
                set_max_timestamp(&mut bytes, TimestampType::CreateTime, header.max_timestamp)
                    .map_err(|e| corrupt(segment, e))?;
            }
            return Ok(Filtered::Rebuilt { bytes, removed });
        }
        let compression = header.compression().map_err(|e| corrupt(segment, e))?;
        let mut builder = builder_like(header, compression);
        for record in kept {
            builder.push_record(record);
        }
        let bytes = builder.build().map_err(|e| corrupt(segment, e))?;
        Ok(Filtered::Rebuilt { bytes, removed })
    }
}

impl Log {
    /// The cleaner's first dirty offset, if a cleaning or checkpoint set it.
    pub fn cleaner_checkpoint(&self) -> Option<i64> {
        let offset = self.cleaner_checkpoint.load(Ordering::Acquire);
        (offset >= 0).then_some(offset)
    }

    /// Restores the first dirty offset from `cleaner-offset-checkpoint`; one
    /// beyond the log end (a stale entry) is ignored, so everything is dirty.
    pub fn set_cleaner_checkpoint(&self, offset: i64) {
        if offset <= self.log_end_offset() {
            self.cleaner_checkpoint.store(offset, Ordering::Release);
        }
    }

    /// Cleans the log when its policy is compact and it is due (dirty ratio,
    /// compaction lags); otherwise does nothing.
    pub fn compact(&self, now_ms: i64) -> Result<CompactionStats, StorageError> {
        self.check_online()?;
        let config = self.config();
        if !config.cleanup_policy_compact {
            return Ok(CompactionStats::default());
        }
        let _cleaning = self.cleaner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let view = self.view();
        let checkpoint = self.cleaner_checkpoint.load(Ordering::Acquire);
        let Some(plan) = plan(&view.segments, checkpoint, &config, now_ms) else {
            return Ok(CompactionStats::default());
        };
        let mut written = Vec::new();
        let mut stats = CompactionStats::default();
        let result = self.write_cleaned(&view, plan, &config, now_ms, &mut written, &mut stats);
        let swapped = result.and_then(|()| self.swap(&view, &written, &config, now_ms));
        match swapped {
            Ok(true) => {
                self.cleaner_checkpoint.store(plan.end_offset, Ordering::Release);
                if !stats.is_empty() {
                    tracing::debug!(
                        partition = %self.tp,
                        segments = stats.segments_rewritten,
                        bytes_before = stats.bytes_before,
                        bytes_after = stats.bytes_after,
                        records_removed = stats.records_removed,
                        "cleaned log"
                    );
                }
                Ok(stats)
            }
            Ok(false) => {
                self.discard(&written, CLEANED);
                Ok(CompactionStats::default())
            }
            Err(e) => {
                self.discard(&written, CLEANED);
                Err(e)
            }
        }
    }

    /// Best-effort removal of cleaner output that will not be used.
    fn discard(&self, written: &[Written], extra: &str) {
        for w in written {
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX] {
                let _ = remove_if_exists(&with_suffix(&self.dir, w.base_offset, suffix, extra));
            }
        }
    }

    /// Writes and indexes a `.cleaned` segment for every group that changes.
    fn write_cleaned(
        &self,
        view: &View,
        plan: Plan,
        config: &LogConfig,
        now_ms: i64,
        written: &mut Vec<Written>,
        stats: &mut CompactionStats,
    ) -> Result<(), StorageError> {
        let segments = view.segments.as_slice();
        let sources = segments.get(..plan.end).unwrap_or_default();

        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        for (i, segment) in sources.iter().enumerate() {
            let next_base = segments.get(i + 1).map_or(i64::MAX, |s| s.base_offset());
            if next_base <= plan.first_dirty {
                continue;
            }
            for batch in segment.headers_from(0)? {
                let header = batch.header;
                // Transactional records may yet be aborted: they shadow nothing.
                if header.is_control() || header.is_transactional() || header.last_offset() < plan.first_dirty {
                    continue;
                }
                let decoded = decode(segment, &batch)?;
                for record in decoded.records(DECOMPRESSED_BYTES_MAX).map_err(|e| corrupt(segment, e))? {
                    let offset = header.record_offset(&record);
                    if let (Some(key), true) = (&record.key, offset >= plan.first_dirty) {
                        latest.insert(Bytes::copy_from_slice(key), offset);
                    }
                }
            }
        }
        let mut producer_last: HashMap<i64, i64> = HashMap::new();
        for segment in segments {
            for batch in segment.headers_from(0)? {
                if batch.header.producer_id >= 0 {
                    producer_last.insert(batch.header.producer_id, batch.header.last_offset());
                }
            }
        }
        let filter = Filter { latest: &latest, producer_last: &producer_last };
        let tombstone_horizon_ms = now_ms.saturating_sub(config.delete_retention_ms);

        for group in groups(segments, plan.end, config) {
            let Some(first) = segments.get(group.start) else { continue };
            let base_offset = first.base_offset();
            let path = with_suffix(&self.dir, base_offset, LOG_SUFFIX, CLEANED);
            let file = self.io.open(&path, true).map_err(|e| StorageError::io(&path, e))?;
            written.push(Written { sources: group.clone(), base_offset, size_bytes: 0 });
            file.set_len_bytes(0).map_err(|e| StorageError::io(&path, e))?;
            let mut position = 0u64;
            let mut changed = group.len() > 1;
            let mut removed = 0u64;
            let mut bytes_before = 0u64;
            for segment in segments.get(group.clone()).unwrap_or_default() {
                bytes_before += segment.size_bytes();
                let tombstones_expired = segment.largest_timestamp_ms() < tombstone_horizon_ms;
                for batch in segment.headers_from(0)? {
                    let bytes = match filter.batch(segment, &batch, tombstones_expired)? {
                        Filtered::Keep => segment.read_bytes(batch.position, batch.header.size_bytes())?,
                        Filtered::Rebuilt { bytes, removed: r } => {
                            changed = true;
                            removed += r;
                            bytes
                        }
                        Filtered::Dropped { removed: r } => {
                            changed = true;
                            removed += r;
                            continue;
                        }
                    };
                    file.write_all_at(&bytes, position).map_err(|e| StorageError::io(&path, e))?;
                    position += bytes.len() as u64;
                }
            }
            if !changed {
                drop(file);
                self.discard(written.get(written.len() - 1..).unwrap_or_default(), CLEANED);
                written.pop();
                continue;
            }
            file.sync_data().map_err(|e| StorageError::io(&path, e))?;
            drop(file);
            Segment::index_written(
                self.io.as_ref(),
                &self.dir,
                base_offset,
                CLEANED,
                config.segment_index_bytes,
                config.index_interval_bytes,
                now_ms,
            )?;
            let aborted: Vec<_> = segments
                .get(group.clone())
                .unwrap_or_default()
                .iter()
                .flat_map(|segment| segment.txn_index.entries())
                .collect();
            if !aborted.is_empty() {
                let txn_path = with_suffix(&self.dir, base_offset, TXN_INDEX_SUFFIX, CLEANED);
                write_index_file(self.io.as_ref(), &txn_path, &aborted)?;
            }
            if let Some(w) = written.last_mut() {
                w.size_bytes = position;
            }
            stats.segments_rewritten += group.len() as u64;
            stats.segments_written += 1;
            stats.bytes_before += bytes_before;
            stats.bytes_after += position;
            stats.records_removed += removed;
        }
        Ok(())
    }

    /// Replaces the sources of every written group with it, under the
    /// appender lock. `false` when retention removed a source meanwhile.
    fn swap(&self, view: &View, written: &[Written], config: &LogConfig, now_ms: i64) -> Result<bool, StorageError> {
        let _appender = self.lock_appender();
        let current = self.view();
        let present: HashSet<*const Segment> = current.segments.iter().map(Arc::as_ptr).collect();
        let sources: Vec<&Arc<Segment>> =
            written.iter().flat_map(|w| view.segments.get(w.sources.clone()).unwrap_or_default()).collect();
        if sources.iter().any(|s| !present.contains(&Arc::as_ptr(s))) {
            return Ok(false);
        }
        if written.is_empty() {
            return Ok(true);
        }
        // From here on a failure leaves files a reopen sorts out, so the log goes offline.
        let result = (|| {
            for w in written {
                rename_output(&self.dir, w.base_offset, CLEANED, SWAP)?;
            }
            sync_dir(&self.dir)?;
            let mut replacements: HashMap<*const Segment, Option<Arc<Segment>>> = HashMap::new();
            for w in written {
                let old = view.segments.get(w.sources.clone()).unwrap_or_default();
                for segment in old {
                    segment.delete_files()?;
                }
                rename_output(&self.dir, w.base_offset, SWAP, "")?;
                let (segment, _) = Segment::open(
                    self.io.as_ref(),
                    &self.dir,
                    w.base_offset,
                    config.segment_index_bytes,
                    config.index_interval_bytes,
                    false,
                    now_ms,
                )?;
                let mut new = Some(Arc::new(segment));
                for segment in old {
                    replacements.insert(Arc::as_ptr(segment), new.take());
                }
            }
            sync_dir(&self.dir)?;
            let mut segments = Vec::with_capacity(current.segments.len());
            for segment in current.segments.iter() {
                match replacements.get_mut(&Arc::as_ptr(segment)) {
                    Some(replacement) => segments.extend(replacement.take()),
                    None => segments.push(Arc::clone(segment)),
                }
            }
            // Replaced segments need no sync, and their open files would keep
            // their space allocated.
            self.lock_rolled_unsynced().retain(|(s, _)| segments.iter().any(|kept| Arc::ptr_eq(kept, s)));
            write_lock(&self.view).segments = Arc::new(segments);
            Ok(true)
        })();
        self.offline_on_error(result)
    }
}

/// The last offset of the batches in `path`, reading headers only.
fn last_offset_in(path: &Path) -> Result<Option<i64>, StorageError> {
    let file = fs::File::open(path).map_err(|e| StorageError::io(path, e))?;
    let mut last = None;
    let mut position = 0u64;
    let mut buf = [0u8; BATCH_HEADER_BYTES];
    while file.read_exact_at(&mut buf, position).is_ok() {
        let Ok(header) = RecordBatchHeader::parse(&buf) else { break };
        last = Some(header.last_offset());
        position += header.size_bytes() as u64;
    }
    Ok(last)
}

/// Completes cleaner swaps a crash interrupted: each `<base>.log.swap` was
/// fsynced whole before it got that name, so the segments it covers are
/// deleted and it takes its final name. Its indexes are rebuilt on open
/// (the returned bases). Index `.swap` files without their log are leftovers.
pub(super) fn complete_swaps(dir: &Path) -> Result<Vec<i64>, StorageError> {
    let swap_suffix = format!("{LOG_SUFFIX}{SWAP}");
    let mut swaps = Vec::new();
    let mut logs = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
        let entry = entry.map_err(|e| StorageError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(base) = parse_file_name(name, &swap_suffix) {
            swaps.push(base);
        } else if let Some(base) = parse_file_name(name, LOG_SUFFIX) {
            logs.push(base);
        }
    }
    swaps.sort_unstable();
    for &base in &swaps {
        let swap = with_suffix(dir, base, LOG_SUFFIX, SWAP);
        let last = last_offset_in(&swap)?.unwrap_or(base).max(base);
        for &old in logs.iter().filter(|&&b| b >= base && b <= last) {
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX] {
                remove_if_exists(&with_suffix(dir, old, suffix, ""))?;
            }
        }
        // Indexes, the txn index included, are rebuilt when the segment is recovered.
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX] {
            remove_if_exists(&with_suffix(dir, base, suffix, ""))?;
            remove_if_exists(&with_suffix(dir, base, suffix, SWAP))?;
        }
        rename(&swap, &with_suffix(dir, base, LOG_SUFFIX, ""))?;
        tracing::warn!(dir = %dir.display(), base, last, "completed an interrupted cleaner swap");
    }
    if !swaps.is_empty() {
        sync_dir(dir)?;
    }
    Ok(swaps)
}

#[cfg(test)]
mod tests;
