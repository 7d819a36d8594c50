//! The aborted-transaction index of a segment, `<base>.txnindex`, in Kafka's
//! format (TransactionIndex / AbortedTxn): 34-byte big-endian entries of
//! version i16 (0), producer id i64, first offset i64, last offset i64 (the
//! abort marker's offset) and last stable offset i64 (the LSO right after the
//! abort). One entry per aborted transaction whose marker lies in the segment,
//! in marker order. Like Kafka, the file exists only once it has an entry.
//!
//! Entries are written straight to the file (page cache) when an abort is
//! appended and fsynced with the segment; everything is kept in memory too,
//! since aborts are rare, so fetches never read the file.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use crate::error::StorageError;
use crate::index::{read_lock, write_lock};
use crate::io::{read_fully_at, DataFile, FileIo};

pub(crate) const TXN_INDEX_SUFFIX: &str = ".txnindex";
pub(crate) const ABORTED_TXN_BYTES: usize = 34;
const ABORTED_TXN_VERSION: i16 = 0;

/// One entry of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortedTxnEntry {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxnEntry {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&ABORTED_TXN_VERSION.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.first_offset.to_be_bytes());
        out.extend_from_slice(&self.last_offset.to_be_bytes());
        out.extend_from_slice(&self.last_stable_offset.to_be_bytes());
    }

    /// `None` for a short entry or one of an unknown version.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (version, rest) = bytes.split_first_chunk::<2>()?;
        if i16::from_be_bytes(*version) != ABORTED_TXN_VERSION {
            return None;
        }
        let (producer_id, rest) = rest.split_first_chunk::<8>()?;
        let (first_offset, rest) = rest.split_first_chunk::<8>()?;
        let (last_offset, rest) = rest.split_first_chunk::<8>()?;
        let last_stable_offset = rest.first_chunk::<8>()?;
        Some(Self {
            producer_id: i64::from_be_bytes(*producer_id),
            first_offset: i64::from_be_bytes(*first_offset),
            last_offset: i64::from_be_bytes(*last_offset),
            last_stable_offset: i64::from_be_bytes(*last_stable_offset),
        })
    }
}

#[derive(Debug)]
pub(crate) struct TxnIndex {
    path: PathBuf,
    /// Opened on the first append (or when the file exists at load).
    file: Mutex<Option<Arc<dyn DataFile>>>,
    entries: RwLock<Vec<AbortedTxnEntry>>,
}

impl TxnIndex {
    /// An index at `path`, without touching the disk.
    pub fn new(path: PathBuf) -> Self {
        Self { path, file: Mutex::new(None), entries: RwLock::new(Vec::new()) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock_file(&self) -> std::sync::MutexGuard<'_, Option<Arc<dyn DataFile>>> {
        self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the file if there is one. `Ok(false)` when it is unusable (not a
    /// whole number of entries, an unknown version, or last offsets that do
    /// not grow): the caller rebuilds it.
    pub fn load(&self, io: &dyn FileIo) -> Result<bool, StorageError> {
        if !self.path.exists() {
            return Ok(true);
        }
        let file = io.open(&self.path, false).map_err(|e| StorageError::io(&self.path, e))?;
        let len = file.len_bytes().map_err(|e| StorageError::io(&self.path, e))?;
        let len = usize::try_from(len).map_err(|_| StorageError::corrupt(&self.path, "txn index too large"))?;
        if len % ABORTED_TXN_BYTES != 0 {
            return Ok(false);
        }
        let mut buf = vec![0u8; len];
        let read = read_fully_at(file.as_ref(), &mut buf, 0).map_err(|e| StorageError::io(&self.path, e))?;
        if read != len {
            return Ok(false);
        }
        let Some(entries) =
            buf.chunks_exact(ABORTED_TXN_BYTES).map(AbortedTxnEntry::decode).collect::<Option<Vec<_>>>()
        else {
            return Ok(false);
        };
        let ordered = entries.windows(2).all(|w| matches!(w, [a, b] if a.last_offset < b.last_offset))
            && entries.iter().all(|e| e.first_offset <= e.last_offset);
        if !ordered {
            return Ok(false);
        }
        *write_lock(&self.entries) = entries;
        *self.lock_file() = Some(file);
        Ok(true)
    }

    /// Forgets every entry and removes the file (before a rebuild).
    pub fn reset(&self) -> Result<(), StorageError> {
        let mut file = self.lock_file();
        *file = None;
        write_lock(&self.entries).clear();
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(&self.path, e)),
        }
    }

    /// Appends one entry to the file, then to memory.
    pub fn append(&self, io: &dyn FileIo, entry: AbortedTxnEntry) -> Result<(), StorageError> {
        let mut file = self.lock_file();
        let handle = match file.as_ref() {
            Some(f) => Arc::clone(f),
            None => {
                let f = io.open(&self.path, true).map_err(|e| StorageError::io(&self.path, e))?;
                *file = Some(Arc::clone(&f));
                f
            }
        };
        let count = read_lock(&self.entries).len();
        let mut buf = Vec::with_capacity(ABORTED_TXN_BYTES);
        entry.encode(&mut buf);
        handle.write_all_at(&buf, (count * ABORTED_TXN_BYTES) as u64).map_err(|e| StorageError::io(&self.path, e))?;
        write_lock(&self.entries).push(entry);
        Ok(())
    }

    /// Drops the entries whose marker is at or past `offset` (a truncated log),
    /// from memory and from the file.
    pub fn truncate_to(&self, offset: i64) -> Result<(), StorageError> {
        let file = self.lock_file();
        let kept = {
            let mut entries = write_lock(&self.entries);
            let kept = entries.partition_point(|e| e.last_offset < offset);
            entries.truncate(kept);
            kept
        };
        match file.as_ref() {
            Some(f) => f.set_len_bytes((kept * ABORTED_TXN_BYTES) as u64).map_err(|e| StorageError::io(&self.path, e)),
            None => Ok(()),
        }
    }

    /// Keeps the file, when there is one, open until the index is dropped
    /// (see [`DataFile::keep_open`]).
    pub fn keep_open(&self) -> Result<(), StorageError> {
        match self.lock_file().as_ref() {
            Some(f) => f.keep_open().map_err(|e| StorageError::io(&self.path, e)),
            None => Ok(()),
        }
    }

    /// fsyncs the file when there is one.
    pub fn flush(&self) -> Result<(), StorageError> {
        let file = self.lock_file().clone();
        match file {
            Some(f) => f.sync_data().map_err(|e| StorageError::io(&self.path, e)),
            None => Ok(()),
        }
    }

    pub fn entries(&self) -> Vec<AbortedTxnEntry> {
        read_lock(&self.entries).clone()
    }

    /// Kafka's collectAbortedTxns: entries overlapping `[fetch_offset,
    /// upper_bound_offset)`, and whether the search is complete (an entry's
    /// LSO reached the upper bound, so later segments cannot matter).
    pub fn collect(&self, fetch_offset: i64, upper_bound_offset: i64, out: &mut Vec<AbortedTxnEntry>) -> bool {
        for entry in read_lock(&self.entries).iter() {
            if entry.last_offset >= fetch_offset && entry.first_offset < upper_bound_offset {
                out.push(*entry);
            }
            if entry.last_stable_offset >= upper_bound_offset {
                return true;
            }
        }
        false
    }
}

/// Writes `entries` as a complete index file at `path` and fsyncs it.
pub(crate) fn write_index_file(io: &dyn FileIo, path: &Path, entries: &[AbortedTxnEntry]) -> Result<(), StorageError> {
    let file = io.open(path, true).map_err(|e| StorageError::io(path, e))?;
    let mut buf = Vec::with_capacity(entries.len() * ABORTED_TXN_BYTES);
    for e in entries {
        e.encode(&mut buf);
    }
    file.set_len_bytes(0).map_err(|e| StorageError::io(path, e))?;
    file.write_all_at(&buf, 0).map_err(|e| StorageError::io(path, e))?;
    file.sync_data().map_err(|e| StorageError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::OsFileIo;

    fn entry(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxnEntry {
        AbortedTxnEntry { producer_id: pid, first_offset: first, last_offset: last, last_stable_offset: lso }
    }

    #[test]
    fn entries_use_kafkas_34_byte_layout() {
        let mut buf = Vec::new();
        entry(0x0102_0304_0506_0708, 5, 9, 10).encode(&mut buf);
        assert_eq!(buf.len(), ABORTED_TXN_BYTES);
        let mut expected = vec![0, 0];
        expected.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        expected.extend_from_slice(&5i64.to_be_bytes());
        expected.extend_from_slice(&9i64.to_be_bytes());
        expected.extend_from_slice(&10i64.to_be_bytes());
        assert_eq!(buf, expected);
        assert_eq!(AbortedTxnEntry::decode(&buf), Some(entry(0x0102_0304_0506_0708, 5, 9, 10)));
        let mut bad_version = buf.clone();
        bad_version[1] = 1;
        assert_eq!(AbortedTxnEntry::decode(&bad_version), None);
    }

    #[test]
    fn appends_persist_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.txnindex");
        let index = TxnIndex::new(path.clone());
        assert!(index.load(&OsFileIo).unwrap());
        assert!(!path.exists(), "no file until the first entry");
        index.append(&OsFileIo, entry(1, 0, 4, 5)).unwrap();
        index.append(&OsFileIo, entry(2, 3, 7, 8)).unwrap();
        index.flush().unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 68);
        let again = TxnIndex::new(path.clone());
        assert!(again.load(&OsFileIo).unwrap());
        assert_eq!(again.entries(), index.entries());

        let mut bytes = fs::read(&path).unwrap();
        bytes.pop();
        fs::write(&path, &bytes).unwrap();
        assert!(!TxnIndex::new(path.clone()).load(&OsFileIo).unwrap());
        again.reset().unwrap();
        assert!(!path.exists() && again.entries().is_empty());
    }

    #[test]
    fn collect_follows_kafkas_overlap_and_completion_rules() {
        let dir = tempfile::tempdir().unwrap();
        let index = TxnIndex::new(dir.path().join("x.txnindex"));
        index.append(&OsFileIo, entry(1, 0, 4, 5)).unwrap();
        index.append(&OsFileIo, entry(2, 6, 10, 11)).unwrap();
        index.append(&OsFileIo, entry(3, 12, 20, 21)).unwrap();
        let mut out = Vec::new();
        // Ends before the fetch offset: skipped; starts at the upper bound: skipped.
        assert!(index.collect(5, 12, &mut out));
        assert_eq!(out.iter().map(|e| e.producer_id).collect::<Vec<_>>(), vec![2]);
        out.clear();
        assert!(!index.collect(4, 100, &mut out), "no entry's LSO reached 100");
        assert_eq!(out.iter().map(|e| e.producer_id).collect::<Vec<_>>(), vec![1, 2, 3]);
    }
}
