//! The log directories and every partition log in them: discovery, locking,
//! checkpoints, the clean-shutdown marker, periodic flush and retention.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::checkpoint::{
    read_offsets, write_offsets, CLEANER_OFFSET_CHECKPOINT, LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
};
use crate::config::{LogConfig, TopicPartition};
use crate::error::StorageError;
use crate::handles::{open_files_max_for_process, BudgetedFileIo, HandleBudget};
use crate::index::{read_lock, write_lock};
use crate::io::{sync_dir, write_atomically, FileIo, OsFileIo};
use crate::log::{CompactionStats, Log, OpenOptions};

const CLEAN_SHUTDOWN_MARKER: &str = ".kafka_cleanshutdown";
const LOCK_FILE: &str = ".lock";
const DELETE_DIR_SUFFIX: &str = "-delete";
/// A partition directory set aside at start because the metadata no longer places it
/// (Kafka's name for it too); never opened, never deleted by the broker.
pub const STRAY_DIR_SUFFIX: &str = "-stray";

/// A log directory as DescribeLogDirs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirInfo {
    pub path: PathBuf,
    pub total_bytes: u64,
    pub usable_bytes: u64,
    pub partitions: Vec<PartitionSize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSize {
    pub topic_partition: TopicPartition,
    pub size_bytes: u64,
}

#[derive(Debug)]
struct LogDir {
    path: PathBuf,
    /// Held (flock) for the manager's lifetime.
    _lock: File,
    clean_shutdown: bool,
    recovery_points: HashMap<TopicPartition, i64>,
    log_start_offsets: HashMap<TopicPartition, i64>,
    cleaner_offsets: HashMap<TopicPartition, i64>,
}

#[derive(Debug)]
pub struct LogManager {
    /// Every log's files, opened lazily and closed when cold (see `handles.rs`).
    io: Arc<dyn FileIo>,
    budget: Arc<HandleBudget>,
    dirs: Vec<LogDir>,
    logs: RwLock<HashMap<TopicPartition, Arc<Log>>>,
    /// Partition directories found on disk and not opened yet, by log dir.
    found: Mutex<HashMap<TopicPartition, usize>>,
    /// Serializes opening and creating, so a partition is opened once.
    create_lock: Mutex<()>,
    delete_counter: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section is a single map update, never left half-done.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read_checkpoint_or_empty(path: &Path) -> HashMap<TopicPartition, i64> {
    read_offsets(path).unwrap_or_else(|e| {
        // Losing a checkpoint only costs a longer recovery from offset 0.
        tracing::warn!(error = %e, "ignoring unreadable checkpoint");
        HashMap::new()
    })
}

impl LogManager {
    pub fn open(log_dirs: &[PathBuf]) -> Result<Self, StorageError> {
        Self::open_with_io(log_dirs, Arc::new(OsFileIo))
    }

    /// As `open`, over a given file layer (tests inject faults through it).
    pub fn open_with_io(log_dirs: &[PathBuf], io: Arc<dyn FileIo>) -> Result<Self, StorageError> {
        Self::open_with_budget(log_dirs, io, open_files_max_for_process())
    }

    /// As `open_with_io`, keeping at most `open_files_max` segment and index
    /// files open at once (more only while reads in flight hold closed ones).
    pub fn open_with_budget(
        log_dirs: &[PathBuf],
        io: Arc<dyn FileIo>,
        open_files_max: usize,
    ) -> Result<Self, StorageError> {
        let budget = Arc::new(HandleBudget::new(open_files_max));
        let io: Arc<dyn FileIo> = Arc::new(BudgetedFileIo::new(io, Arc::clone(&budget)));
        if log_dirs.is_empty() {
            return Err(StorageError::NoLogDirs);
        }
        let mut dirs = Vec::with_capacity(log_dirs.len());
        let mut found = HashMap::new();
        for (index, path) in log_dirs.iter().enumerate() {
            fs::create_dir_all(path).map_err(|e| StorageError::io(path, e))?;
            let lock_path = path.join(LOCK_FILE);
            let lock_file = File::create(&lock_path).map_err(|e| StorageError::io(&lock_path, e))?;
            lock_file.try_lock().map_err(|_| StorageError::DirLocked { path: path.clone() })?;
            let marker = path.join(CLEAN_SHUTDOWN_MARKER);
            let clean_shutdown = marker.exists();
            if clean_shutdown {
                fs::remove_file(&marker).map_err(|e| StorageError::io(&marker, e))?;
                sync_dir(path)?;
            }
            for entry in fs::read_dir(path).map_err(|e| StorageError::io(path, e))? {
                let entry = entry.map_err(|e| StorageError::io(path, e))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if !entry.file_type().map_err(|e| StorageError::io(entry.path(), e))?.is_dir() {
                    continue;
                }
                if name.ends_with(DELETE_DIR_SUFFIX) {
                    fs::remove_dir_all(entry.path()).map_err(|e| StorageError::io(entry.path(), e))?;
                } else if let Some(tp) = TopicPartition::parse_dir_name(name) {
                    found.insert(tp, index);
                }
            }
            dirs.push(LogDir {
                path: path.clone(),
                _lock: lock_file,
                clean_shutdown,
                recovery_points: read_checkpoint_or_empty(&path.join(RECOVERY_POINT_CHECKPOINT)),
                log_start_offsets: read_checkpoint_or_empty(&path.join(LOG_START_OFFSET_CHECKPOINT)),
                cleaner_offsets: read_checkpoint_or_empty(&path.join(CLEANER_OFFSET_CHECKPOINT)),
            });
        }
        tracing::debug!(open_files_max = budget.open_files_max(), "log file budget");
        Ok(Self {
            io,
            budget,
            dirs,
            logs: RwLock::new(HashMap::new()),
            found: Mutex::new(found),
            create_lock: Mutex::new(()),
            delete_counter: AtomicU64::new(0),
        })
    }

    /// Segment and index files holding a descriptor now, and the most that may.
    pub fn open_files(&self) -> (usize, usize) {
        (self.budget.open_files(), self.budget.open_files_max())
    }

    /// Partitions on disk or open, sorted.
    pub fn existing_partitions(&self) -> Vec<TopicPartition> {
        let mut out: Vec<_> = lock(&self.found).keys().cloned().collect();
        out.extend(read_lock(&self.logs).keys().cloned());
        out.sort();
        out.dedup();
        out
    }

    /// Whether the log directory holding new or found partition dirs had a clean shutdown.
    pub fn had_clean_shutdown(&self) -> bool {
        self.dirs.iter().all(|d| d.clean_shutdown)
    }

    pub fn get_or_create(&self, tp: &TopicPartition, config: LogConfig, now_ms: i64) -> Result<Arc<Log>, StorageError> {
        if let Some(log) = self.get(tp) {
            return Ok(log);
        }
        let _creating = lock(&self.create_lock);
        if let Some(log) = self.get(tp) {
            return Ok(log);
        }
        let existing = lock(&self.found).get(tp).copied();
        let dir_index = match existing {
            Some(i) => i,
            None => self.least_loaded_dir(),
        };
        let Some(dir) = self.dirs.get(dir_index) else { return Err(StorageError::NoLogDirs) };
        let options = OpenOptions {
            recovery_point: dir.recovery_points.get(tp).copied().unwrap_or(0),
            log_start_offset: dir.log_start_offsets.get(tp).copied(),
            // A partition created now has nothing to recover.
            clean_shutdown: existing.is_none() || dir.clean_shutdown,
            now_ms,
        };
        let path = dir.path.join(tp.to_string());
        let log = Arc::new(Log::open(Arc::clone(&self.io), &path, tp.clone(), config, options)?);
        // Only a partition found on disk continues where its cleaner stopped.
        if let (Some(_), Some(&offset)) = (existing, dir.cleaner_offsets.get(tp)) {
            log.set_cleaner_checkpoint(offset);
        }
        if existing.is_none() {
            // The new directory and its first segment's files survive a crash.
            sync_dir(&path)?;
            sync_dir(&dir.path)?;
        }
        write_lock(&self.logs).insert(tp.clone(), Arc::clone(&log));
        lock(&self.found).remove(tp);
        Ok(log)
    }

    fn least_loaded_dir(&self) -> usize {
        // Counting is linear in the partitions, so creating a topic with many
        // of them in one directory must not count them for every one.
        if self.dirs.len() <= 1 {
            return 0;
        }
        let mut counts = vec![0usize; self.dirs.len()];
        for &i in lock(&self.found).values() {
            if let Some(c) = counts.get_mut(i) {
                *c += 1;
            }
        }
        for log in read_lock(&self.logs).values() {
            if let Some(i) = self.dir_index_of(log) {
                if let Some(c) = counts.get_mut(i) {
                    *c += 1;
                }
            }
        }
        counts.iter().enumerate().min_by_key(|&(_, c)| *c).map_or(0, |(i, _)| i)
    }

    fn dir_index_of(&self, log: &Log) -> Option<usize> {
        let parent = log.dir().parent()?;
        self.dirs.iter().position(|d| d.path == parent)
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<Log>> {
        read_lock(&self.logs).get(tp).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Log>> {
        let mut logs: Vec<_> = read_lock(&self.logs).values().cloned().collect();
        logs.sort_by(|a, b| a.topic_partition().cmp(b.topic_partition()));
        logs
    }

    /// The directory of a partition that is open or was found on disk.
    pub fn partition_dir(&self, tp: &TopicPartition) -> Option<PathBuf> {
        if let Some(log) = self.get(tp) {
            return Some(log.dir().to_path_buf());
        }
        let found = lock(&self.found).get(tp).copied()?;
        self.dirs.get(found).map(|dir| dir.path.join(tp.to_string()))
    }

    /// A name no other renamed directory has: `<tp>.<unique><suffix>`.
    fn unique_dir_name(&self, tp: &TopicPartition, suffix: &str) -> String {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let unique = format!("{nanos:x}{:x}", self.delete_counter.fetch_add(1, Ordering::Relaxed));
        format!("{tp}.{unique}{suffix}")
    }

    /// Moves the directory of a partition found on disk (and not opened) aside as
    /// `<tp>.<unique>-stray`, keeping every byte, as Kafka keeps a log it cannot place:
    /// the broker no longer sees it, and an operator can move it back. Returns the new path.
    pub fn set_aside(&self, tp: &TopicPartition) -> Result<Option<PathBuf>, StorageError> {
        let _creating = lock(&self.create_lock);
        let Some(index) = lock(&self.found).remove(tp) else { return Ok(None) };
        let Some(dir) = self.dirs.get(index) else { return Ok(None) };
        let path = dir.path.join(tp.to_string());
        let aside = dir.path.join(self.unique_dir_name(tp, STRAY_DIR_SUFFIX));
        fs::rename(&path, &aside).map_err(|e| StorageError::io(&path, e))?;
        sync_dir(&dir.path)?;
        Ok(Some(aside))
    }

    /// Renames the partition directory to `<tp>.<unique>-delete` (so a crash
    /// mid-way cannot resurrect it) and removes it.
    pub fn delete(&self, tp: &TopicPartition) -> Result<(), StorageError> {
        let _creating = lock(&self.create_lock);
        let removed = write_lock(&self.logs).remove(tp);
        let found = lock(&self.found).remove(tp);
        let path = match (&removed, found) {
            (Some(log), _) => {
                log.mark_deleted();
                log.dir().to_path_buf()
            }
            (None, Some(i)) => match self.dirs.get(i) {
                Some(d) => d.path.join(tp.to_string()),
                None => return Ok(()),
            },
            (None, None) => return Ok(()),
        };
        let Some(parent) = path.parent() else { return Ok(()) };
        let doomed = parent.join(self.unique_dir_name(tp, DELETE_DIR_SUFFIX));
        fs::rename(&path, &doomed).map_err(|e| StorageError::io(&path, e))?;
        sync_dir(parent)?;
        fs::remove_dir_all(&doomed).map_err(|e| StorageError::io(&doomed, e))
    }

    /// Writes both checkpoint files of every log directory.
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        let logs = self.all();
        let found = lock(&self.found).clone();
        for (index, dir) in self.dirs.iter().enumerate() {
            let mut recovery = Vec::new();
            let mut starts = Vec::new();
            for log in logs.iter().filter(|l| self.dir_index_of(l) == Some(index)) {
                if log.is_offline() {
                    continue;
                }
                recovery.push((log.topic_partition().clone(), log.recovery_point()));
                starts.push((log.topic_partition().clone(), log.log_start_offset()));
            }
            // Partitions not opened this run keep what they had.
            for tp in found.iter().filter(|&(_, &i)| i == index).map(|(tp, _)| tp) {
                if let Some(&o) = dir.recovery_points.get(tp) {
                    recovery.push((tp.clone(), o));
                }
                if let Some(&o) = dir.log_start_offsets.get(tp) {
                    starts.push((tp.clone(), o));
                }
            }
            recovery.sort();
            starts.sort();
            write_offsets(&dir.path.join(RECOVERY_POINT_CHECKPOINT), &recovery)?;
            write_offsets(&dir.path.join(LOG_START_OFFSET_CHECKPOINT), &starts)?;
        }
        self.write_cleaner_checkpoints()
    }

    /// Writes `cleaner-offset-checkpoint` in every log directory.
    fn write_cleaner_checkpoints(&self) -> Result<(), StorageError> {
        let logs = self.all();
        let found = lock(&self.found).clone();
        for (index, dir) in self.dirs.iter().enumerate() {
            let mut cleaned: Vec<(TopicPartition, i64)> = logs
                .iter()
                .filter(|l| self.dir_index_of(l) == Some(index) && !l.is_offline())
                .filter_map(|l| l.cleaner_checkpoint().map(|o| (l.topic_partition().clone(), o)))
                .collect();
            for tp in found.iter().filter(|&(_, &i)| i == index).map(|(tp, _)| tp) {
                if let Some(&o) = dir.cleaner_offsets.get(tp) {
                    cleaned.push((tp.clone(), o));
                }
            }
            cleaned.sort();
            write_offsets(&dir.path.join(CLEANER_OFFSET_CHECKPOINT), &cleaned)?;
        }
        Ok(())
    }

    /// Runs the log cleaner over every online log with cleanup.policy=compact
    /// that is due, and checkpoints the cleaner offsets when anything was
    /// cleaned. Returns what each cleaned log's cleaning did.
    pub fn compact_due(&self, now_ms: i64) -> Vec<(TopicPartition, CompactionStats)> {
        let mut cleaned = Vec::new();
        for log in self.all().iter().filter(|l| !l.is_offline()) {
            match log.compact(now_ms) {
                Ok(stats) if !stats.is_empty() => cleaned.push((log.topic_partition().clone(), stats)),
                Ok(_) => {}
                Err(e) => tracing::error!(partition = %log.topic_partition(), error = %e, "log cleaning failed"),
            }
        }
        if !cleaned.is_empty() {
            if let Err(e) = self.write_cleaner_checkpoints() {
                tracing::warn!(error = %e, "writing the cleaner checkpoint failed");
            }
        }
        cleaned
    }

    /// fsyncs the segments that rolled since the last call, in every online log,
    /// so that their recovery points can move on (see [`Log::sync_rolled`]).
    pub fn sync_rolled(&self) {
        for log in self.all().iter().filter(|l| !l.is_offline() && l.has_rolled_unsynced()) {
            match log.sync_rolled() {
                // Retried every round; the log said once that its disk is full.
                Err(e) if e.is_no_space() => {
                    tracing::debug!(partition = %log.topic_partition(), error = %e, "syncing a rolled segment failed")
                }
                Err(e) => {
                    tracing::error!(partition = %log.topic_partition(), error = %e, "syncing a rolled segment failed")
                }
                Ok(()) => {}
            }
        }
    }

    /// Flushes logs whose flush.ms has elapsed. An offline log is skipped;
    /// the first error is returned after every log was tried.
    pub fn flush_due(&self, now_ms: i64) -> Result<(), StorageError> {
        let mut first_error = None;
        for log in self.all().iter().filter(|l| !l.is_offline()) {
            if let Err(e) = log.flush_if_due(now_ms) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Retention on every online log, and producer expiration. Returns the
    /// number of segments deleted.
    pub fn enforce_retention(&self, now_ms: i64) -> u64 {
        let mut deleted = 0;
        for log in self.all().iter().filter(|l| !l.is_offline()) {
            log.expire_producers(now_ms);
            match log.enforce_retention(now_ms) {
                Ok(n) => deleted += n,
                Err(e) => tracing::error!(partition = %log.topic_partition(), error = %e, "retention failed"),
            }
        }
        deleted
    }

    /// Closes every log (flush, producer snapshot), writes the checkpoints and,
    /// in each directory whose logs all closed, the clean-shutdown marker.
    pub fn shutdown(&self) -> Result<(), StorageError> {
        let mut first_error = None;
        let mut dirty = vec![false; self.dirs.len()];
        for log in self.all() {
            let closed = if log.is_offline() {
                Err(StorageError::Offline { partition: log.topic_partition().to_string() })
            } else {
                log.close()
            };
            if let Err(e) = closed {
                if let Some(d) = self.dir_index_of(&log).and_then(|i| dirty.get_mut(i)) {
                    *d = true;
                }
                first_error.get_or_insert(e);
            }
        }
        if let Err(e) = self.checkpoint() {
            first_error.get_or_insert(e);
        }
        for (dir, dirty) in self.dirs.iter().zip(dirty) {
            if !dirty {
                if let Err(e) = write_atomically(&dir.path.join(CLEAN_SHUTDOWN_MARKER), b"") {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    pub fn describe_log_dirs(&self) -> Vec<LogDirInfo> {
        let logs = self.all();
        let found = lock(&self.found).clone();
        self.dirs
            .iter()
            .enumerate()
            .map(|(index, dir)| {
                let (total_bytes, usable_bytes) = disk_space(&dir.path).unwrap_or((0, 0));
                let mut partitions: Vec<PartitionSize> = logs
                    .iter()
                    .filter(|l| self.dir_index_of(l) == Some(index))
                    .map(|l| PartitionSize { topic_partition: l.topic_partition().clone(), size_bytes: l.size_bytes() })
                    .collect();
                for tp in found.iter().filter(|&(_, &i)| i == index).map(|(tp, _)| tp) {
                    let size_bytes = dir_size_bytes(&dir.path.join(tp.to_string()));
                    partitions.push(PartitionSize { topic_partition: tp.clone(), size_bytes });
                }
                partitions.sort_by(|a, b| a.topic_partition.cmp(&b.topic_partition));
                LogDirInfo { path: dir.path.clone(), total_bytes, usable_bytes, partitions }
            })
            .collect()
    }
}

/// Bytes of the `.log` files of a partition directory.
fn dir_size_bytes(path: &Path) -> u64 {
    fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".log")))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Total and available bytes of the file system holding `path`.
fn disk_space(path: &Path) -> Option<(u64, u64)> {
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain old data, so all-zero bytes are a valid value.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and stat a valid,
    // exclusively borrowed statvfs for the call to fill in.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    if rc != 0 {
        return None;
    }
    let fragment_bytes = u64::from(stat.f_frsize as u32).max(1);
    #[allow(clippy::unnecessary_cast)]
    let (blocks, available) = (stat.f_blocks as u64, stat.f_bavail as u64);
    Some((blocks.saturating_mul(fragment_bytes), available.saturating_mul(fragment_bytes)))
}

#[cfg(test)]
mod budget_tests;
#[cfg(test)]
mod tests;
