//! One partition's log: its segments, offsets, producer state and epochs.
//!
//! Appends serialize on `appender`; readers take a short read lock on `view`
//! to copy the segment list and offsets, then read files without any lock.

mod append;
mod compact;
mod read;
mod replica;
mod retention;
mod txn;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::checkpoint::LEADER_EPOCH_CHECKPOINT;
use crate::config::{LogConfig, TopicPartition};
use crate::epoch::LeaderEpochCache;
use crate::error::StorageError;
use crate::index::{read_lock, write_lock};
use crate::io::FileIo;
use crate::producer::{self, ProducerStateEntry, ProducerStateManager};
use crate::segment::{parse_file_name, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::txn_index::TXN_INDEX_SUFFIX;

pub use append::{AppendInfo, TxnVerifier};
pub use compact::CompactionStats;
pub use read::{ReadInfo, RegionRead, TimestampOffset};
pub use txn::{AbortedTxn, TxnMarker};

/// What readers copy under the view lock.
#[derive(Debug, Clone)]
struct View {
    segments: Arc<Vec<Arc<Segment>>>,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
    /// First offset of the oldest open transaction.
    first_unstable_offset: Option<i64>,
    last_stable_offset: i64,
}

impl View {
    /// Kafka's LSO: the oldest open transaction's first offset (never below
    /// the log start), bounded by the high watermark.
    fn update_last_stable_offset(&mut self) {
        self.last_stable_offset = self
            .first_unstable_offset
            .map_or(self.high_watermark, |first| first.max(self.log_start_offset).min(self.high_watermark));
    }
}

/// State only the appender touches.
#[derive(Debug)]
struct Appender {
    producers: ProducerStateManager,
    unflushed_messages: i64,
    last_flush_ms: i64,
    /// Everything below it is on disk and checked.
    recovery_point: i64,
}

/// How a partition is opened.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    /// From `recovery-point-offset-checkpoint`; 0 when unknown.
    pub recovery_point: i64,
    /// From `log-start-offset-checkpoint`.
    pub log_start_offset: Option<i64>,
    /// Whether the last shutdown wrote the clean-shutdown marker.
    pub clean_shutdown: bool,
    pub now_ms: i64,
}

#[derive(Debug)]
pub struct Log {
    tp: TopicPartition,
    dir: PathBuf,
    io: Arc<dyn FileIo>,
    config: RwLock<LogConfig>,
    appender: Mutex<Appender>,
    view: RwLock<View>,
    epochs: RwLock<LeaderEpochCache>,
    offline: AtomicBool,
    /// The last write failed for lack of space (see [`Log::is_write_blocked`]).
    write_blocked: AtomicBool,
    /// Only [`Log::set_high_watermark`] moves the high watermark (see
    /// [`Log::set_high_watermark_external`]).
    high_watermark_external: AtomicBool,
    /// The cleaner's first dirty offset (everything below it was cleaned), -1 when unknown.
    cleaner_checkpoint: AtomicI64,
    /// Serializes cleanings of this log.
    cleaner: Mutex<()>,
    /// Group commit: the offset below which an fdatasync has covered everything,
    /// behind a lock of its own so that appends go on while one thread syncs and
    /// one sync acknowledges every append that landed before it started.
    flushed: Mutex<i64>,
    /// Segments that stopped being active and are not fsynced yet, each with the
    /// base offset of the segment that followed it. A roll must not sync a whole
    /// segment under the append lock (a GiB of page cache takes seconds), so, as
    /// Kafka does, the sync runs later ([`Log::sync_rolled`]) and only then does
    /// the recovery point move past the segment.
    rolled_unsynced: Mutex<Vec<(Arc<Segment>, i64)>>,
    /// Producer snapshots taken at rolls (offset, file bytes), written and fsynced
    /// with the rolled segments rather than under the append lock. They are a
    /// cache: a crash before they are written only lengthens the replay at open.
    pending_snapshots: Mutex<Vec<(i64, Vec<u8>)>>,
}

/// Files a crash or an interrupted operation can leave behind.
fn is_leftover(name: &str) -> bool {
    [".deleted", ".cleaned", ".swap", ".tmp"].iter().any(|s| name.ends_with(s))
}

impl Log {
    /// Opens the partition directory `dir` (creating it), recovering it when
    /// the last shutdown was unclean.
    pub fn open(
        io: Arc<dyn FileIo>,
        dir: &Path,
        tp: TopicPartition,
        config: LogConfig,
        options: OpenOptions,
    ) -> Result<Self, StorageError> {
        fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
        let swapped = compact::complete_swaps(dir)?;
        let mut bases = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
            let entry = entry.map_err(|e| StorageError::io(dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if is_leftover(name) {
                fs::remove_file(entry.path()).map_err(|e| StorageError::io(entry.path(), e))?;
            } else if let Some(base) = parse_file_name(name, LOG_SUFFIX) {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        remove_orphan_indexes(dir, &bases)?;

        let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(bases.len());
        let mut iter = bases.iter().copied().peekable();
        while let Some(base) = iter.next() {
            let next_base = iter.peek().copied().unwrap_or(i64::MAX);
            let recover = (!options.clean_shutdown && next_base > options.recovery_point) || swapped.contains(&base);
            let (segment, truncated) = Segment::open(
                io.as_ref(),
                dir,
                base,
                config.segment_index_bytes,
                config.index_interval_bytes,
                recover,
                options.now_ms,
            )?;
            segments.push(Arc::new(segment));
            if truncated > 0 {
                // Whatever follows a cut tail was written after it and is suspect.
                for later in iter.by_ref() {
                    let (dead, _) = Segment::open(
                        io.as_ref(),
                        dir,
                        later,
                        config.segment_index_bytes,
                        config.index_interval_bytes,
                        false,
                        options.now_ms,
                    )?;
                    dead.delete_files()?;
                }
            }
        }
        if segments.is_empty() {
            let base = options.log_start_offset.unwrap_or(0).max(0);
            segments.push(Arc::new(Segment::create(
                io.as_ref(),
                dir,
                base,
                config.segment_index_bytes,
                options.now_ms,
            )?));
        }
        let (first_base, log_end_offset) = match (segments.first(), segments.last()) {
            (Some(first), Some(last)) => {
                (first.base_offset(), last.last_batch()?.map_or(last.base_offset(), |h| h.last_offset() + 1))
            }
            _ => (0, 0),
        };
        let log_start_offset = options.log_start_offset.unwrap_or(first_base).clamp(first_base, log_end_offset);

        let mut epochs = load_epochs(dir, &tp, &segments, log_end_offset > first_base)?;
        epochs.truncate_from_end(log_end_offset);
        epochs.truncate_from_start(log_start_offset);

        // Segments whose txn index was reset are rebuilt by replaying producer
        // state from a snapshot taken at or before the first of them.
        let rebuild_from = segments.iter().filter(|s| s.txn_index_needs_rebuild).map(|s| s.base_offset()).min();
        let snapshot_limit = rebuild_from.unwrap_or(log_end_offset).min(log_end_offset);
        let (mut producers, snapshot_offset) = ProducerStateManager::load_latest(dir, snapshot_limit)?;
        let replay_from = snapshot_offset.unwrap_or(first_base);
        for segment in &segments {
            txn::replay_segment(io.as_ref(), segment, replay_from, &mut producers, segment.txn_index_needs_rebuild)?;
        }
        producers.expire(options.now_ms, config.producer_id_expiration_ms);
        let first_unstable_offset = producers.first_unstable_offset();

        Ok(Self {
            tp,
            dir: dir.to_path_buf(),
            io,
            config: RwLock::new(config),
            appender: Mutex::new(Appender {
                producers,
                unflushed_messages: 0,
                last_flush_ms: options.now_ms,
                recovery_point: log_end_offset,
            }),
            view: RwLock::new({
                let mut view = View {
                    segments: Arc::new(segments),
                    log_start_offset,
                    log_end_offset,
                    high_watermark: log_end_offset,
                    first_unstable_offset,
                    last_stable_offset: log_end_offset,
                };
                view.update_last_stable_offset();
                view
            }),
            epochs: RwLock::new(epochs),
            offline: AtomicBool::new(false),
            write_blocked: AtomicBool::new(false),
            high_watermark_external: AtomicBool::new(false),
            cleaner_checkpoint: AtomicI64::new(-1),
            cleaner: Mutex::new(()),
            flushed: Mutex::new(-1),
            rolled_unsynced: Mutex::new(Vec::new()),
            pending_snapshots: Mutex::new(Vec::new()),
        })
    }

    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn view(&self) -> View {
        read_lock(&self.view).clone()
    }

    fn lock_appender(&self) -> MutexGuard<'_, Appender> {
        // The appender's state is only committed after each step succeeds, so
        // it stays consistent even if a holder panicked.
        self.appender.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn config(&self) -> LogConfig {
        read_lock(&self.config).clone()
    }

    pub fn update_config(&self, config: LogConfig) {
        *write_lock(&self.config) = config;
    }

    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
    }

    fn check_online(&self) -> Result<(), StorageError> {
        if self.is_offline() {
            return Err(StorageError::Offline { partition: self.tp.to_string() });
        }
        Ok(())
    }

    /// Whether the last write failed for lack of space (ENOSPC, EDQUOT). Such a
    /// log stays online: reads, retention, DeleteRecords and cleaning go on,
    /// appends are refused with KAFKA_STORAGE_ERROR while the disk is full and
    /// the first one that succeeds ends the state.
    pub fn is_write_blocked(&self) -> bool {
        self.write_blocked.load(Ordering::Acquire)
    }

    /// An I/O error takes the partition offline: its state on disk is no
    /// longer known, so every later call fails until it is reopened.
    fn offline_on_error<T>(&self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if let Err(e) = &result {
            tracing::error!(partition = %self.tp, error = %e, "log going offline");
            self.offline.store(true, Ordering::Release);
        }
        result
    }

    /// For writes that leave nothing half-done behind them when they fail: a
    /// full disk only blocks writes (the caller retries later), any other
    /// error takes the log offline.
    fn on_write_error<T>(&self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        match &result {
            Err(e) if e.is_no_space() => {
                if !self.write_blocked.swap(true, Ordering::AcqRel) {
                    tracing::error!(partition = %self.tp, error = %e, "disk full: refusing appends until one succeeds");
                }
                result
            }
            Err(_) => self.offline_on_error(result),
            Ok(_) => result,
        }
    }

    /// A write succeeded: a full disk has space again.
    fn write_succeeded(&self) {
        // Loaded first so that the common case does not write the shared flag.
        if self.write_blocked.load(Ordering::Acquire) && self.write_blocked.swap(false, Ordering::AcqRel) {
            tracing::info!(partition = %self.tp, "appends succeed again");
        }
    }

    pub fn log_start_offset(&self) -> i64 {
        read_lock(&self.view).log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        read_lock(&self.view).log_end_offset
    }

    pub fn high_watermark(&self) -> i64 {
        read_lock(&self.view).high_watermark
    }

    /// For replication: the high watermark, clamped to the log's range.
    pub fn set_high_watermark(&self, high_watermark: i64) {
        let mut view = write_lock(&self.view);
        view.high_watermark = high_watermark.clamp(view.log_start_offset, view.log_end_offset);
        view.update_last_stable_offset();
    }

    /// With `external`, appends and syncs no longer move the high watermark, only
    /// [`Log::set_high_watermark`] does: a replicated partition's leader sets it
    /// from its followers' progress and a follower from its leader's. Without it
    /// (the default) the high watermark follows the log end as data is appended
    /// and, where the flush policy wants it, synced.
    pub fn set_high_watermark_external(&self, external: bool) {
        self.high_watermark_external.store(external, Ordering::Release);
    }

    /// The last stable offset: read_committed fetches read below it.
    pub fn last_stable_offset(&self) -> i64 {
        read_lock(&self.view).last_stable_offset
    }

    pub(crate) fn recovery_point(&self) -> i64 {
        self.lock_appender().recovery_point
    }

    pub fn size_bytes(&self) -> u64 {
        read_lock(&self.view).segments.iter().map(|s| s.size_bytes()).sum()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        read_lock(&self.view).segments.iter().map(|s| s.base_offset()).collect()
    }

    pub fn segment_count(&self) -> usize {
        read_lock(&self.view).segments.len()
    }

    /// Kafka's maybeAssignEpochStartOffset, for a broker that becomes the leader at
    /// `leader_epoch`: the epoch starts at the log end. Done when leadership is
    /// taken, so that the checkpoint's fsync is not paid by the first produce of
    /// each partition (an append at a new epoch still records it).
    pub fn assign_leader_epoch(&self, leader_epoch: i32) -> Result<(), StorageError> {
        self.check_online()?;
        let _appender = self.lock_appender();
        let log_end_offset = self.view().log_end_offset;
        let result = write_lock(&self.epochs).assign(leader_epoch, log_end_offset).map(|_| ());
        self.on_write_error(result)
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        read_lock(&self.epochs).latest_epoch()
    }

    /// OffsetForLeaderEpoch: `None` is Kafka's undefined epoch and offset.
    pub fn end_offset_for_epoch(&self, leader_epoch: i32) -> Option<(i32, i64)> {
        let log_end_offset = self.log_end_offset();
        read_lock(&self.epochs).end_offset_for(leader_epoch, log_end_offset)
    }

    pub fn producer_states(&self) -> Vec<ProducerStateEntry> {
        self.lock_appender().producers.entries()
    }

    /// fsyncs everything up to the log end and moves the recovery point there.
    /// The append lock is not held across the fsync (see `flush_through`).
    pub fn flush(&self) -> Result<(), StorageError> {
        self.check_online()?;
        let (end_offset, now_ms) = {
            let appender = self.lock_appender();
            (self.log_end_offset(), appender.last_flush_ms)
        };
        self.flush_through(end_offset, now_ms)
    }

    /// Publishes an append made under the append lock: the new log end and the open
    /// transactions' first offset, and the high watermark unless the flush policy
    /// wants the data synced first (then `publish_synced` moves it, so consumers see
    /// data once it is synced, as with Kafka's inline flush). Counts `records`
    /// toward the policy; returns the log start offset and whether a sync is due.
    fn publish_append(
        &self,
        appender: &mut Appender,
        next_offset: i64,
        records: i64,
        config: &LogConfig,
    ) -> (i64, bool) {
        appender.unflushed_messages = appender.unflushed_messages.saturating_add(records);
        let flush_due = appender.unflushed_messages >= config.flush_interval_messages;
        let mut shared = write_lock(&self.view);
        shared.log_end_offset = next_offset;
        if !flush_due && !self.high_watermark_external.load(Ordering::Acquire) {
            shared.high_watermark = next_offset;
        }
        shared.first_unstable_offset = appender.producers.first_unstable_offset();
        shared.update_last_stable_offset();
        (shared.log_start_offset, flush_due)
    }

    /// Synced data becomes visible: the high watermark moves up to `end_offset`.
    fn publish_synced(&self, end_offset: i64) {
        if self.high_watermark_external.load(Ordering::Acquire) {
            return;
        }
        let mut shared = write_lock(&self.view);
        if shared.high_watermark < end_offset {
            shared.high_watermark = end_offset;
            shared.update_last_stable_offset();
        }
    }

    /// Makes everything below `end_offset` durable (fdatasync), sharing the sync with
    /// every concurrent caller: whoever holds the flush lock syncs all that was
    /// appended when it started, and the callers that waited behind it find their
    /// offsets covered and return at once. Appends are not blocked meanwhile.
    /// Segments rolled since the last sync are synced first. Synced data becomes
    /// visible: the high watermark moves up to what was synced.
    pub fn flush_through(&self, end_offset: i64, now_ms: i64) -> Result<(), StorageError> {
        let mut flushed = self.lock_flushed();
        if *flushed >= end_offset {
            return Ok(());
        }
        let view = self.view();
        let result = self.sync_rolled_segments().and_then(|_| view.segments.last().map_or(Ok(()), |s| s.flush()));
        self.on_write_error(result)?;
        *flushed = view.log_end_offset;
        drop(flushed);
        self.publish_synced(view.log_end_offset);
        let mut appender = self.lock_appender();
        appender.recovery_point = appender.recovery_point.max(view.log_end_offset);
        if self.view().log_end_offset == view.log_end_offset {
            appender.unflushed_messages = 0;
        }
        appender.last_flush_ms = now_ms;
        Ok(())
    }

    /// fsyncs the segments rolled since the last sync and moves the recovery point
    /// past them. The broker calls it shortly after a roll, off the request path.
    pub fn sync_rolled(&self) -> Result<(), StorageError> {
        if self.offline.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut flushed = self.lock_flushed();
        let result = self.sync_rolled_segments();
        let Some(synced_below) = self.on_write_error(result)? else { return Ok(()) };
        *flushed = (*flushed).max(synced_below);
        drop(flushed);
        self.publish_synced(synced_below);
        let mut appender = self.lock_appender();
        appender.recovery_point = appender.recovery_point.max(synced_below);
        Ok(())
    }

    /// Whether a rolled segment or a producer snapshot waits for [`Log::sync_rolled`].
    pub fn has_rolled_unsynced(&self) -> bool {
        !self.lock_rolled_unsynced().is_empty() || !self.lock_pending_snapshots().is_empty()
    }

    /// Syncs the rolled segments; the caller holds the `flushed` lock, which keeps
    /// a second caller from returning before the segments it took are synced.
    /// Returns the offset below which they are all synced.
    fn sync_rolled_segments(&self) -> Result<Option<i64>, StorageError> {
        let rolled = std::mem::take(&mut *self.lock_rolled_unsynced());
        let mut synced_below = None;
        for (index, (segment, next_base)) in rolled.iter().enumerate() {
            if let Err(e) = segment.flush() {
                // Kept for the next try; the log goes offline anyway.
                self.lock_rolled_unsynced().splice(0..0, rolled.get(index..).unwrap_or_default().iter().cloned());
                return Err(e);
            }
            synced_below = Some(*next_base);
        }
        self.write_pending_snapshots();
        Ok(synced_below)
    }

    /// Writes (and fsyncs) the producer snapshots taken at rolls. A failure only
    /// costs a longer replay at the next open, so it is logged, not raised.
    fn write_pending_snapshots(&self) {
        let pending = std::mem::take(&mut *self.lock_pending_snapshots());
        for (offset, bytes) in pending {
            if let Err(e) = producer::write_snapshot_bytes(&self.dir, offset, &bytes) {
                tracing::warn!(partition = %self.tp, offset, error = %e, "skipping a producer snapshot");
            }
        }
    }

    fn lock_pending_snapshots(&self) -> MutexGuard<'_, Vec<(i64, Vec<u8>)>> {
        // Pushes and takes are single steps, so the list is valid after a panic.
        self.pending_snapshots.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_flushed(&self) -> MutexGuard<'_, i64> {
        // A plain number, always valid.
        self.flushed.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_rolled_unsynced(&self) -> MutexGuard<'_, Vec<(Arc<Segment>, i64)>> {
        // Pushes and takes are single steps, so the list is valid after a panic.
        self.rolled_unsynced.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Flushes when flush.ms has passed since the last flush. The log end is
    /// taken under the append lock and synced after releasing it, so appends go
    /// on during the fsync (see `flush_through`).
    pub fn flush_if_due(&self, now_ms: i64) -> Result<(), StorageError> {
        self.check_online()?;
        let interval_ms = read_lock(&self.config).flush_interval_ms;
        let due_through = {
            let appender = self.lock_appender();
            (appender.unflushed_messages > 0 && now_ms.saturating_sub(appender.last_flush_ms) >= interval_ms)
                .then(|| self.log_end_offset())
        };
        match due_through {
            Some(end_offset) => self.flush_through(end_offset, now_ms),
            None => Ok(()),
        }
    }

    /// Expires idle producers (producer.id.expiration.ms).
    pub fn expire_producers(&self, now_ms: i64) {
        let expiration_ms = read_lock(&self.config).producer_id_expiration_ms;
        self.lock_appender().producers.expire(now_ms, expiration_ms);
    }

    /// Flushes, seals the active segment's time index and snapshots producer
    /// state, so the next open needs no recovery.
    pub fn close(&self) -> Result<(), StorageError> {
        self.check_online()?;
        let mut appender = self.lock_appender();
        let view = self.view();
        let result = (|| {
            let _flushing = self.lock_flushed();
            self.sync_rolled_segments()?;
            if let Some(active) = view.segments.last() {
                active.seal()?;
            }
            Ok(())
        })();
        self.on_write_error(result)?;
        if let Err(e) = appender.producers.write_snapshot(&self.dir, view.log_end_offset) {
            // A cache: the next open replays from an older snapshot instead.
            tracing::warn!(partition = %self.tp, error = %e, "no producer snapshot at close");
        }
        appender.recovery_point = view.log_end_offset;
        appender.unflushed_messages = 0;
        Ok(())
    }

    /// Marks the log unusable before its directory is deleted.
    pub(crate) fn mark_deleted(&self) {
        self.offline.store(true, Ordering::Release);
    }
}

/// The leader-epoch cache, rebuilt from the batch headers when its checkpoint
/// is unreadable, or missing while the log holds batches (as Kafka's recovery
/// assigns epochs from the batches it reads).
fn load_epochs(
    dir: &Path,
    tp: &TopicPartition,
    segments: &[Arc<Segment>],
    has_batches: bool,
) -> Result<LeaderEpochCache, StorageError> {
    let missing = has_batches && !dir.join(LEADER_EPOCH_CHECKPOINT).exists();
    match LeaderEpochCache::load(dir) {
        Ok(epochs) if !missing => return Ok(epochs),
        Ok(_) => tracing::warn!(partition = %tp, "rebuilding the missing leader-epoch cache from the batch headers"),
        Err(StorageError::Corrupt { path, detail }) => tracing::warn!(
            partition = %tp, path = %path.display(), detail,
            "rebuilding the corrupt leader-epoch cache from the batch headers"
        ),
        Err(e) => return Err(e),
    }
    let mut batches = Vec::new();
    for segment in segments {
        let headers = segment.headers_from(0)?;
        batches.extend(headers.iter().map(|b| (b.header.partition_leader_epoch, b.header.base_offset)));
    }
    Ok(LeaderEpochCache::rebuild(dir, batches))
}

fn remove_orphan_indexes(dir: &Path, bases: &[i64]) -> Result<(), StorageError> {
    for entry in fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))? {
        let entry = entry.map_err(|e| StorageError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let base = parse_file_name(name, INDEX_SUFFIX)
            .or_else(|| parse_file_name(name, TIME_INDEX_SUFFIX))
            .or_else(|| parse_file_name(name, TXN_INDEX_SUFFIX));
        if base.is_some_and(|b| bases.binary_search(&b).is_err()) {
            fs::remove_file(entry.path()).map_err(|e| StorageError::io(entry.path(), e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
