//! The sparse offset and time indexes of a segment: kept in memory for lookups
//! and mirrored to `.index` / `.timeindex` files of exactly their entries
//! (big-endian, Kafka's entry layouts), appended to on flush and roll.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::StorageError;
use crate::io::{read_fully_at, DataFile, FileIo};

pub(crate) fn read_lock<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // A panic elsewhere cannot leave an index half-updated (every update is
    // a single push or truncate), so a poisoned lock is still usable.
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn write_lock<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One fixed-size index entry.
pub(crate) trait IndexEntry: Copy + Send + Sync + std::fmt::Debug {
    const BYTES: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(bytes: &[u8]) -> Option<Self>;
}

/// Offset relative to the segment's base offset, and the byte position of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

impl IndexEntry for OffsetEntry {
    const BYTES: usize = 8;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let relative_offset = u32::from_be_bytes(*bytes.first_chunk::<4>()?);
        let position = u32::from_be_bytes(*bytes.get(4..)?.first_chunk::<4>()?);
        Some(Self { relative_offset, position })
    }
}

/// The largest timestamp seen so far in the segment and the relative offset
/// of the batch that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp_ms: i64,
    pub relative_offset: u32,
}

impl IndexEntry for TimeEntry {
    const BYTES: usize = 12;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let timestamp_ms = i64::from_be_bytes(*bytes.first_chunk::<8>()?);
        let relative_offset = u32::from_be_bytes(*bytes.get(8..)?.first_chunk::<4>()?);
        Some(Self { timestamp_ms, relative_offset })
    }
}

#[derive(Debug)]
pub(crate) struct Index<E> {
    path: PathBuf,
    file: Arc<dyn DataFile>,
    entries: RwLock<Vec<E>>,
    /// Entries already written to the file; only the appender changes it.
    persisted: AtomicUsize,
    max_entries: usize,
}

impl<E: IndexEntry> Index<E> {
    /// Opens (creating) the file without reading it.
    pub fn open(io: &dyn FileIo, path: &Path, max_index_bytes: u64) -> Result<Self, StorageError> {
        let file = io.open(path, true).map_err(|e| StorageError::io(path, e))?;
        let max_entries = usize::try_from(max_index_bytes / E::BYTES as u64).unwrap_or(usize::MAX).max(1);
        Ok(Self {
            path: path.to_path_buf(),
            file,
            entries: RwLock::new(Vec::new()),
            persisted: AtomicUsize::new(0),
            max_entries,
        })
    }

    /// Reads the file's entries. `None` when its size is not a whole number of entries.
    pub fn read_file(&self) -> Result<Option<Vec<E>>, StorageError> {
        let len = self.file.len_bytes().map_err(|e| StorageError::io(&self.path, e))?;
        if len % E::BYTES as u64 != 0 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| StorageError::corrupt(&self.path, "index too large"))?;
        let mut buf = vec![0u8; len];
        let read = read_fully_at(self.file.as_ref(), &mut buf, 0).map_err(|e| StorageError::io(&self.path, e))?;
        if read != len {
            return Ok(None);
        }
        Ok(buf.chunks_exact(E::BYTES).map(E::decode).collect())
    }

    /// Installs entries already on disk (from `read_file`).
    pub fn install_loaded(&self, entries: Vec<E>) {
        self.persisted.store(entries.len(), Ordering::Release);
        *write_lock(&self.entries) = entries;
    }

    /// Installs rebuilt entries; the file is rewritten on the next persist.
    pub fn install_rebuilt(&self, entries: Vec<E>) -> Result<(), StorageError> {
        self.file.set_len_bytes(0).map_err(|e| StorageError::io(&self.path, e))?;
        self.persisted.store(0, Ordering::Release);
        *write_lock(&self.entries) = entries;
        Ok(())
    }

    pub fn push(&self, entry: E) {
        write_lock(&self.entries).push(entry);
    }

    pub fn len(&self) -> usize {
        read_lock(&self.entries).len()
    }

    pub fn is_full(&self) -> bool {
        self.len() >= self.max_entries
    }

    pub fn last(&self) -> Option<E> {
        read_lock(&self.entries).last().copied()
    }

    /// Runs `f` over the entries under a short read lock (no I/O inside).
    pub fn with_entries<R>(&self, f: impl FnOnce(&[E]) -> R) -> R {
        f(&read_lock(&self.entries))
    }

    /// Writes entries not yet in the file, then optionally fsyncs it.
    pub fn persist(&self, sync: bool) -> Result<(), StorageError> {
        let from = self.persisted.load(Ordering::Acquire);
        let (buf, to) = {
            let entries = read_lock(&self.entries);
            let mut buf = Vec::with_capacity(entries.len().saturating_sub(from) * E::BYTES);
            for e in entries.get(from..).unwrap_or_default() {
                e.encode(&mut buf);
            }
            (buf, entries.len())
        };
        if !buf.is_empty() {
            self.file.write_all_at(&buf, (from * E::BYTES) as u64).map_err(|e| StorageError::io(&self.path, e))?;
            self.persisted.store(to, Ordering::Release);
        }
        if sync {
            self.file.sync_data().map_err(|e| StorageError::io(&self.path, e))?;
        }
        Ok(())
    }

    /// Keeps the entries `keep` accepts, a prefix since both offsets and
    /// positions grow, and cuts the file to those of them already written.
    pub fn truncate_while(&self, keep: impl Fn(&E) -> bool) -> Result<(), StorageError> {
        let kept = {
            let mut entries = write_lock(&self.entries);
            let kept = entries.partition_point(|e| keep(e));
            entries.truncate(kept);
            kept
        };
        let persisted = self.persisted.load(Ordering::Acquire).min(kept);
        self.file.set_len_bytes((persisted * E::BYTES) as u64).map_err(|e| StorageError::io(&self.path, e))?;
        self.persisted.store(persisted, Ordering::Release);
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the file open until the index is dropped (see [`DataFile::keep_open`]).
    pub fn keep_open(&self) -> Result<(), StorageError> {
        self.file.keep_open().map_err(|e| StorageError::io(&self.path, e))
    }
}

impl Index<OffsetEntry> {
    /// Position of the last indexed batch whose last offset is at most
    /// `relative_offset`, or the segment start.
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        self.with_entries(|entries| {
            let n = entries.partition_point(|e| e.relative_offset <= relative_offset);
            n.checked_sub(1).and_then(|i| entries.get(i)).map_or(0, |e| e.position)
        })
    }

    /// Position of the last indexed batch that starts at or before `position`, or
    /// the segment start.
    pub fn position_at_or_before(&self, position: u32) -> u32 {
        self.with_entries(|entries| {
            let n = entries.partition_point(|e| e.position <= position);
            n.checked_sub(1).and_then(|i| entries.get(i)).map_or(0, |e| e.position)
        })
    }

    /// Offsets and positions must both grow and stay inside the log.
    pub fn is_sane(entries: &[OffsetEntry], log_size_bytes: u64) -> bool {
        entries
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.relative_offset < b.relative_offset && a.position < b.position))
            && entries.last().is_none_or(|e| u64::from(e.position) < log_size_bytes)
    }
}

impl Index<TimeEntry> {
    /// Relative offset of the last entry whose timestamp is below
    /// `timestamp_ms`: every record before it is older than the target.
    pub fn lookup_before(&self, timestamp_ms: i64) -> Option<u32> {
        self.with_entries(|entries| {
            let n = entries.partition_point(|e| e.timestamp_ms < timestamp_ms);
            n.checked_sub(1).and_then(|i| entries.get(i)).map(|e| e.relative_offset)
        })
    }

    /// Appends only when the timestamp grows, as Kafka does.
    pub fn maybe_push(&self, entry: TimeEntry) {
        let mut entries = write_lock(&self.entries);
        if entries.last().is_none_or(|last| entry.timestamp_ms > last.timestamp_ms) {
            entries.push(entry);
        }
    }

    pub fn is_sane(entries: &[TimeEntry]) -> bool {
        entries
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.timestamp_ms < b.timestamp_ms && a.relative_offset <= b.relative_offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::OsFileIo;

    fn offset_index(dir: &Path) -> Index<OffsetEntry> {
        Index::open(&OsFileIo, &dir.join("0.index"), 1024).unwrap()
    }

    #[test]
    fn offset_lookup_finds_the_floor_entry() {
        let dir = tempfile::tempdir().unwrap();
        let index = offset_index(dir.path());
        assert_eq!(index.lookup(5), 0);
        for (relative_offset, position) in [(9, 100), (19, 200), (29, 300)] {
            index.push(OffsetEntry { relative_offset, position });
        }
        assert_eq!(index.lookup(0), 0);
        assert_eq!(index.lookup(9), 100);
        assert_eq!(index.lookup(18), 100);
        assert_eq!(index.lookup(19), 200);
        assert_eq!(index.lookup(1000), 300);
    }

    #[test]
    fn persist_appends_and_reload_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let index = offset_index(dir.path());
        index.push(OffsetEntry { relative_offset: 1, position: 10 });
        index.persist(true).unwrap();
        index.push(OffsetEntry { relative_offset: 2, position: 20 });
        index.persist(false).unwrap();
        let again = offset_index(dir.path());
        let loaded = again.read_file().unwrap().unwrap();
        assert_eq!(
            loaded,
            vec![OffsetEntry { relative_offset: 1, position: 10 }, OffsetEntry { relative_offset: 2, position: 20 }]
        );
        assert!(Index::<OffsetEntry>::is_sane(&loaded, 21));
        assert!(!Index::<OffsetEntry>::is_sane(&loaded, 20));
        std::fs::write(dir.path().join("0.index"), [0u8; 7]).unwrap();
        assert!(again.read_file().unwrap().is_none());
    }

    #[test]
    fn index_is_full_at_its_configured_size() {
        let dir = tempfile::tempdir().unwrap();
        let index: Index<OffsetEntry> = Index::open(&OsFileIo, &dir.path().join("x.index"), 16).unwrap();
        index.push(OffsetEntry { relative_offset: 1, position: 1 });
        assert!(!index.is_full());
        index.push(OffsetEntry { relative_offset: 2, position: 2 });
        assert!(index.is_full());
    }

    #[test]
    fn time_index_only_grows_and_looks_up_strictly_below() {
        let dir = tempfile::tempdir().unwrap();
        let index: Index<TimeEntry> = Index::open(&OsFileIo, &dir.path().join("x.timeindex"), 1024).unwrap();
        index.maybe_push(TimeEntry { timestamp_ms: 100, relative_offset: 0 });
        index.maybe_push(TimeEntry { timestamp_ms: 90, relative_offset: 3 });
        index.maybe_push(TimeEntry { timestamp_ms: 200, relative_offset: 5 });
        assert_eq!(index.len(), 2);
        assert_eq!(index.lookup_before(100), None);
        assert_eq!(index.lookup_before(101), Some(0));
        assert_eq!(index.lookup_before(500), Some(5));
        index.with_entries(|e| assert!(Index::<TimeEntry>::is_sane(e)));
    }
}
