//! One segment: `<20-digit base offset>.log` with its `.index`, `.timeindex`
//! and, once it holds an abort marker, `.txnindex`.
//! Appends come from the log's single appender; readers use positional reads
//! bounded by the committed size, so they never see a half-written batch.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use gregor_protocol::records::{validate_batch, RecordBatchHeader, BATCH_HEADER_BYTES};

use crate::error::StorageError;
use crate::index::{Index, OffsetEntry, TimeEntry};
use crate::io::{read_fully_at, DataFile, FileIo, FileRegion};
use crate::txn_index::{TxnIndex, TXN_INDEX_SUFFIX};

pub(crate) const LOG_SUFFIX: &str = ".log";
pub(crate) const INDEX_SUFFIX: &str = ".index";
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// `<20-digit zero-padded offset><suffix>`, Kafka's file naming.
pub(crate) fn file_name(offset: i64, suffix: &str) -> String {
    format!("{offset:020}{suffix}")
}

/// The base offset a segment file name carries, if it is one.
pub(crate) fn parse_file_name(name: &str, suffix: &str) -> Option<i64> {
    let stem = name.strip_suffix(suffix)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// What the appender knows about one batch it is writing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppendedBatch {
    pub last_offset: i64,
    pub max_timestamp_ms: i64,
    pub size_bytes: u64,
}

/// A batch header found by a scan, with where it starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchAt {
    pub position: u64,
    pub header: RecordBatchHeader,
}

#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    log: Arc<dyn DataFile>,
    /// Bytes of whole batches; readers never look past it.
    size_bytes: AtomicU64,
    pub(crate) offset_index: Index<OffsetEntry>,
    pub(crate) time_index: Index<TimeEntry>,
    /// Aborted transactions whose abort marker lies in this segment.
    pub(crate) txn_index: TxnIndex,
    /// Set by `open` when the txn index was reset (recovery, or an unusable
    /// file): the log rebuilds it by replaying producer state.
    pub(crate) txn_index_needs_rebuild: bool,
    max_timestamp_ms: AtomicI64,
    /// Last offset of the batch that carried `max_timestamp_ms`.
    offset_of_max_timestamp: AtomicI64,
    bytes_since_last_index_entry: AtomicU64,
    /// Max timestamp of the first batch, or -1: segment.ms counts from it.
    first_batch_timestamp_ms: AtomicI64,
    created_ms: i64,
}

impl Segment {
    fn open_files(
        io: &dyn FileIo,
        dir: &Path,
        base_offset: i64,
        segment_index_bytes: u64,
        created_ms: i64,
    ) -> Result<Self, StorageError> {
        Self::open_files_with_suffix(io, dir, base_offset, "", segment_index_bytes, created_ms)
    }

    /// Opens the files `<base>.log<extra>`, `<base>.index<extra>` and
    /// `<base>.timeindex<extra>` (an empty `extra` for a live segment).
    fn open_files_with_suffix(
        io: &dyn FileIo,
        dir: &Path,
        base_offset: i64,
        extra: &str,
        segment_index_bytes: u64,
        created_ms: i64,
    ) -> Result<Self, StorageError> {
        let name = |suffix: &str| dir.join(format!("{}{extra}", file_name(base_offset, suffix)));
        let log_path = name(LOG_SUFFIX);
        let log = io.open(&log_path, true).map_err(|e| StorageError::io(&log_path, e))?;
        let size_bytes = log.len_bytes().map_err(|e| StorageError::io(&log_path, e))?;
        let offset_index = Index::open(io, &name(INDEX_SUFFIX), segment_index_bytes)?;
        let time_index = Index::open(io, &name(TIME_INDEX_SUFFIX), segment_index_bytes)?;
        let txn_index = TxnIndex::new(name(TXN_INDEX_SUFFIX));
        Ok(Self {
            base_offset,
            log_path,
            log,
            size_bytes: AtomicU64::new(size_bytes),
            offset_index,
            time_index,
            txn_index,
            txn_index_needs_rebuild: false,
            max_timestamp_ms: AtomicI64::new(-1),
            offset_of_max_timestamp: AtomicI64::new(-1),
            bytes_since_last_index_entry: AtomicU64::new(0),
            first_batch_timestamp_ms: AtomicI64::new(-1),
            created_ms,
        })
    }

    /// A new, empty segment; leftovers of an earlier one at this offset are cleared.
    pub fn create(
        io: &dyn FileIo,
        dir: &Path,
        base_offset: i64,
        segment_index_bytes: u64,
        now_ms: i64,
    ) -> Result<Self, StorageError> {
        let segment = Self::open_files(io, dir, base_offset, segment_index_bytes, now_ms)?;
        segment.log.set_len_bytes(0).map_err(|e| StorageError::io(&segment.log_path, e))?;
        segment.size_bytes.store(0, Ordering::Release);
        segment.offset_index.install_rebuilt(Vec::new())?;
        segment.time_index.install_rebuilt(Vec::new())?;
        segment.txn_index.reset()?;
        Ok(segment)
    }

    /// Opens a segment from disk. With `recover`, every batch is checked and a
    /// bad tail cut off, and the indexes are rebuilt; otherwise the index files
    /// are trusted when they look sane. Returns the segment and the bytes cut.
    pub fn open(
        io: &dyn FileIo,
        dir: &Path,
        base_offset: i64,
        segment_index_bytes: u64,
        index_interval_bytes: u64,
        recover: bool,
        now_ms: i64,
    ) -> Result<(Self, u64), StorageError> {
        let mut segment = Self::open_files(io, dir, base_offset, segment_index_bytes, now_ms)?;
        if recover || !segment.txn_index.load(io)? {
            if !recover {
                tracing::warn!(segment = %segment.log_path.display(), "rebuilding invalid transaction index");
            }
            segment.txn_index.reset()?;
            segment.txn_index_needs_rebuild = true;
        }
        if recover {
            let truncated = segment.recover(index_interval_bytes)?;
            return Ok((segment, truncated));
        }
        let offsets = segment.offset_index.read_file()?;
        let times = segment.time_index.read_file()?;
        let size = segment.size_bytes();
        match (offsets, times) {
            (Some(offsets), Some(times))
                if Index::<OffsetEntry>::is_sane(&offsets, size) && Index::<TimeEntry>::is_sane(&times) =>
            {
                if let Some(last) = times.last() {
                    segment.max_timestamp_ms.store(last.timestamp_ms, Ordering::Release);
                    segment.offset_of_max_timestamp.store(segment.absolute(last.relative_offset), Ordering::Release);
                }
                segment.offset_index.install_loaded(offsets);
                segment.time_index.install_loaded(times);
                // The first batch's timestamp only matters for the active segment's roll.
                if let Some(first) = segment.read_header_at(0)? {
                    segment.first_batch_timestamp_ms.store(first.max_timestamp, Ordering::Release);
                }
                Ok((segment, 0))
            }
            _ => {
                tracing::warn!(segment = %segment.log_path.display(), "rebuilding invalid index");
                let truncated = segment.recover(index_interval_bytes)?;
                if truncated > 0 && !segment.txn_index_needs_rebuild {
                    // Entries may name markers that were cut off.
                    segment.txn_index.reset()?;
                    segment.txn_index_needs_rebuild = true;
                }
                Ok((segment, truncated))
            }
        }
    }

    /// Indexes a segment the cleaner wrote as `<base>.log<extra>`: every batch
    /// is checked and both index files (`<base>.index<extra>`,
    /// `<base>.timeindex<extra>`) are built and fsynced. Fails when any byte
    /// of the written log does not check out.
    pub fn index_written(
        io: &dyn FileIo,
        dir: &Path,
        base_offset: i64,
        extra: &str,
        segment_index_bytes: u64,
        index_interval_bytes: u64,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let segment = Self::open_files_with_suffix(io, dir, base_offset, extra, segment_index_bytes, now_ms)?;
        let truncated = segment.recover(index_interval_bytes)?;
        if truncated > 0 {
            return Err(StorageError::corrupt(&segment.log_path, format!("cleaned segment lost {truncated} bytes")));
        }
        segment.flush()
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes.load(Ordering::Acquire)
    }

    pub fn max_timestamp_ms(&self) -> i64 {
        self.max_timestamp_ms.load(Ordering::Acquire)
    }

    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp.load(Ordering::Acquire)
    }

    /// When the segment counts as last written, for time retention: its
    /// largest timestamp, or the file's modification time without one.
    pub fn largest_timestamp_ms(&self) -> i64 {
        let max = self.max_timestamp_ms();
        if max >= 0 {
            return max;
        }
        fs::metadata(&self.log_path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_millis()).ok())
            .unwrap_or(self.created_ms)
    }

    /// segment.ms counts from the first batch's timestamp, or creation.
    pub fn rolling_base_ms(&self) -> i64 {
        let first = self.first_batch_timestamp_ms.load(Ordering::Acquire);
        if first >= 0 {
            first
        } else {
            self.created_ms
        }
    }

    fn absolute(&self, relative_offset: u32) -> i64 {
        self.base_offset + i64::from(relative_offset)
    }

    /// Offsets past this one do not fit a u32 relative offset.
    pub fn can_hold_offset(&self, offset: i64) -> bool {
        offset.checked_sub(self.base_offset).is_some_and(|d| (0..=i64::from(i32::MAX)).contains(&d))
    }

    fn relative(&self, offset: i64) -> u32 {
        u32::try_from(offset.saturating_sub(self.base_offset).max(0)).unwrap_or(u32::MAX)
    }

    pub fn indexes_full(&self) -> bool {
        self.offset_index.is_full() || self.time_index.is_full()
    }

    /// Writes `bytes` (whole batches described by `batches`) at the end, then
    /// indexes them and publishes the new size.
    pub fn append(
        &self,
        bytes: &[u8],
        batches: &[AppendedBatch],
        index_interval_bytes: u64,
    ) -> Result<(), StorageError> {
        let start = self.size_bytes();
        self.log.write_all_at(bytes, start).map_err(|e| StorageError::io(&self.log_path, e))?;
        let mut position = start;
        for batch in batches {
            self.index_batch(batch, position, index_interval_bytes);
            position += batch.size_bytes;
        }
        self.size_bytes.store(start + bytes.len() as u64, Ordering::Release);
        Ok(())
    }

    /// Cuts the file back to the committed size after a failed append (shrinking
    /// needs no space, so this works on a full disk).
    pub fn truncate_to_committed(&self) -> Result<(), StorageError> {
        self.log.set_len_bytes(self.size_bytes()).map_err(|e| StorageError::io(&self.log_path, e))
    }

    fn index_batch(&self, batch: &AppendedBatch, position: u64, index_interval_bytes: u64) {
        if self.first_batch_timestamp_ms.load(Ordering::Acquire) < 0 {
            self.first_batch_timestamp_ms.store(batch.max_timestamp_ms.max(0), Ordering::Release);
        }
        if batch.max_timestamp_ms > self.max_timestamp_ms() {
            self.max_timestamp_ms.store(batch.max_timestamp_ms, Ordering::Release);
            self.offset_of_max_timestamp.store(batch.last_offset, Ordering::Release);
        }
        if self.bytes_since_last_index_entry.load(Ordering::Acquire) > index_interval_bytes {
            if let Ok(position) = u32::try_from(position) {
                self.offset_index.push(OffsetEntry { relative_offset: self.relative(batch.last_offset), position });
            }
            self.push_time_entry();
            self.bytes_since_last_index_entry.store(0, Ordering::Release);
        }
        self.bytes_since_last_index_entry.fetch_add(batch.size_bytes, Ordering::AcqRel);
    }

    fn push_time_entry(&self) {
        let max = self.max_timestamp_ms();
        if max >= 0 {
            let relative_offset = self.relative(self.offset_of_max_timestamp());
            self.time_index.maybe_push(TimeEntry { timestamp_ms: max, relative_offset });
        }
    }

    /// Reads the header of the batch at `position`; `None` when no whole
    /// header lies before the committed end.
    pub fn read_header_at(&self, position: u64) -> Result<Option<RecordBatchHeader>, StorageError> {
        let end = self.size_bytes();
        if position + BATCH_HEADER_BYTES as u64 > end {
            return Ok(None);
        }
        let mut buf = [0u8; BATCH_HEADER_BYTES];
        let read =
            read_fully_at(self.log.as_ref(), &mut buf, position).map_err(|e| StorageError::io(&self.log_path, e))?;
        if read < BATCH_HEADER_BYTES {
            return Ok(None);
        }
        match RecordBatchHeader::parse(&buf) {
            Ok(header) if position + header.size_bytes() as u64 <= end => Ok(Some(header)),
            Ok(_) => Ok(None),
            Err(e) => Err(StorageError::corrupt(&self.log_path, format!("batch at {position}: {e}"))),
        }
    }

    /// The first batch whose last offset is at least `offset`, found from the
    /// offset index and then by reading headers only.
    pub fn find_batch(&self, offset: i64) -> Result<Option<BatchAt>, StorageError> {
        let mut position = u64::from(self.offset_index.lookup(self.relative(offset)));
        while let Some(header) = self.read_header_at(position)? {
            if header.last_offset() >= offset {
                return Ok(Some(BatchAt { position, header }));
            }
            position += header.size_bytes() as u64;
        }
        Ok(None)
    }

    /// Where the whole batches that start at `start` (a batch boundary) and end by
    /// `limit` end, and the offset after the last of them (`first_base_offset` when
    /// none fits). Jumps through the offset index to near `limit`, so only the
    /// headers of the last index interval are read.
    pub fn whole_batches_end(
        &self,
        start: u64,
        limit: u64,
        first_base_offset: i64,
    ) -> Result<(u64, i64), StorageError> {
        let limit = limit.min(self.size_bytes());
        let indexed = u64::from(self.offset_index.position_at_or_before(u32::try_from(limit).unwrap_or(u32::MAX)));
        let mut position = if indexed > start { indexed } else { start };
        let mut next_offset = first_base_offset;
        while let Some(header) = self.read_header_at(position)? {
            if position + header.size_bytes() as u64 > limit {
                next_offset = if position > start { header.base_offset } else { first_base_offset };
                return Ok((position, next_offset));
            }
            position += header.size_bytes() as u64;
            next_offset = header.last_offset() + 1;
        }
        Ok((position, next_offset))
    }

    /// The file and a range of it (see [`FileRegion`]).
    /// The region holds the open file itself, so closing a cold file in the
    /// meantime cannot break a send in flight.
    pub fn region(&self, position: u64, len_bytes: usize) -> Result<FileRegion, StorageError> {
        let file = self.log.open_handle().map_err(|e| StorageError::io(&self.log_path, e))?;
        Ok(FileRegion::new(file.unwrap_or_else(|| Arc::clone(&self.log)), position, len_bytes))
    }

    /// Batch headers from `position` on, up to the committed end.
    pub fn headers_from(&self, mut position: u64) -> Result<Vec<BatchAt>, StorageError> {
        let mut out = Vec::new();
        while let Some(header) = self.read_header_at(position)? {
            out.push(BatchAt { position, header });
            position += header.size_bytes() as u64;
        }
        Ok(out)
    }

    /// The last batch's header, scanning from the last index entry.
    pub fn last_batch(&self) -> Result<Option<RecordBatchHeader>, StorageError> {
        let start = self.offset_index.last().map_or(0, |e| u64::from(e.position));
        Ok(self.headers_from(start)?.last().map(|b| b.header))
    }

    /// Reads `len` bytes at `position`, clamped to the committed end.
    pub fn read_bytes(&self, position: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        let end = self.size_bytes();
        let len = usize::try_from(end.saturating_sub(position)).unwrap_or(usize::MAX).min(len);
        let mut buf = vec![0u8; len];
        let read =
            read_fully_at(self.log.as_ref(), &mut buf, position).map_err(|e| StorageError::io(&self.log_path, e))?;
        buf.truncate(read);
        Ok(buf)
    }

    /// Checks every batch (length, CRC, offsets inside this segment and
    /// increasing), cuts the log after the last good one and rebuilds both
    /// indexes. Returns the bytes cut.
    pub fn recover(&self, index_interval_bytes: u64) -> Result<u64, StorageError> {
        let file_len = self.log.len_bytes().map_err(|e| StorageError::io(&self.log_path, e))?;
        self.size_bytes.store(file_len, Ordering::Release);
        self.max_timestamp_ms.store(-1, Ordering::Release);
        self.offset_of_max_timestamp.store(-1, Ordering::Release);
        self.first_batch_timestamp_ms.store(-1, Ordering::Release);
        self.bytes_since_last_index_entry.store(0, Ordering::Release);
        self.offset_index.install_rebuilt(Vec::new())?;
        self.time_index.install_rebuilt(Vec::new())?;
        let mut position = 0u64;
        let mut next_offset = self.base_offset;
        let mut buf = Vec::new();
        loop {
            let header = match self.read_header_at(position) {
                Ok(Some(h)) => h,
                Ok(None) | Err(StorageError::Corrupt { .. }) => break,
                Err(e) => return Err(e),
            };
            let size = header.size_bytes();
            if header.base_offset < next_offset || !self.can_hold_offset(header.last_offset()) {
                break;
            }
            buf.resize(size, 0);
            let read = read_fully_at(self.log.as_ref(), &mut buf, position)
                .map_err(|e| StorageError::io(&self.log_path, e))?;
            if read < size || validate_batch(&buf).is_err() {
                break;
            }
            let batch = AppendedBatch {
                last_offset: header.last_offset(),
                max_timestamp_ms: header.max_timestamp,
                size_bytes: size as u64,
            };
            self.index_batch(&batch, position, index_interval_bytes);
            next_offset = header.last_offset() + 1;
            position += size as u64;
        }
        let truncated = file_len - position;
        if truncated > 0 {
            tracing::warn!(segment = %self.log_path.display(), position, truncated, "truncating invalid tail");
            self.log.set_len_bytes(position).map_err(|e| StorageError::io(&self.log_path, e))?;
        }
        self.size_bytes.store(position, Ordering::Release);
        // The segment's max timestamp must survive a later clean open, which
        // reads it from the last time index entry.
        self.push_time_entry();
        for persisted in [self.offset_index.persist(true), self.time_index.persist(true)] {
            match persisted {
                // The rebuilt entries serve from memory; the next flush writes them.
                Err(e) if e.is_no_space() => {
                    tracing::warn!(segment = %self.log_path.display(), error = %e, "disk full: index kept in memory")
                }
                other => other?,
            }
        }
        Ok(truncated)
    }

    /// The offset after the last batch that ends by `position` (a batch
    /// boundary), or the base offset when none does.
    pub fn end_before(&self, position: u64) -> Result<i64, StorageError> {
        let Some(before) = position.checked_sub(1) else { return Ok(self.base_offset) };
        let mut at = u64::from(self.offset_index.position_at_or_before(u32::try_from(before).unwrap_or(u32::MAX)));
        let mut end = self.base_offset;
        while at < position {
            let Some(header) = self.read_header_at(at)? else { break };
            end = header.last_offset() + 1;
            at += header.size_bytes() as u64;
        }
        Ok(end)
    }

    /// Kafka's LogSegment.truncateTo: removes the batches from the first one
    /// whose last offset is at or past `offset` on, with their index, time
    /// index and txn index entries, and fsyncs the cut log (a truncation that
    /// could come undone would bring back records the caller dropped for good).
    /// `offset` must not fall inside a batch. Returns the bytes cut.
    pub fn truncate_to(&self, offset: i64) -> Result<u64, StorageError> {
        let Some(cut) = self.find_batch(offset)? else { return Ok(0) };
        let position = cut.position;
        let relative = |o: i64| o.checked_sub(self.base_offset).and_then(|d| u32::try_from(d).ok());
        let end_relative = relative(offset).unwrap_or(0);
        self.offset_index.truncate_while(|e| u64::from(e.position) < position)?;
        self.time_index.truncate_while(|e| e.relative_offset < end_relative)?;
        self.txn_index.truncate_to(offset)?;
        let before = self.size_bytes();
        self.size_bytes.store(position, Ordering::Release);
        self.log.set_len_bytes(position).map_err(|e| StorageError::io(&self.log_path, e))?;
        self.log.sync_data().map_err(|e| StorageError::io(&self.log_path, e))?;
        // The largest timestamp left: the last time index entry covers every batch
        // up to the last offset index entry, the headers after it are read.
        let (mut max_timestamp_ms, mut offset_of_max) =
            self.time_index.last().map_or((-1, -1), |e| (e.timestamp_ms, self.absolute(e.relative_offset)));
        let scan_from = self.offset_index.last().map_or(0, |e| u64::from(e.position));
        for batch in self.headers_from(scan_from)? {
            if batch.header.max_timestamp > max_timestamp_ms {
                max_timestamp_ms = batch.header.max_timestamp;
                offset_of_max = batch.header.last_offset();
            }
        }
        self.max_timestamp_ms.store(max_timestamp_ms, Ordering::Release);
        self.offset_of_max_timestamp.store(offset_of_max, Ordering::Release);
        self.bytes_since_last_index_entry.store(0, Ordering::Release);
        if position == 0 {
            self.first_batch_timestamp_ms.store(-1, Ordering::Release);
        }
        Ok(before - position)
    }

    /// fsyncs the log and writes and fsyncs new index entries.
    pub fn flush(&self) -> Result<(), StorageError> {
        self.log.sync_data().map_err(|e| StorageError::io(&self.log_path, e))?;
        self.offset_index.persist(true)?;
        self.time_index.persist(true)?;
        self.txn_index.flush()
    }

    /// Called when the segment stops being active or the log closes: the
    /// time index gets its final max-timestamp entry, then everything is flushed.
    pub fn seal(&self) -> Result<(), StorageError> {
        self.finish();
        self.flush()
    }

    /// The segment takes no more appends: the time index gets its final
    /// max-timestamp entry (written to disk by the next [`Segment::flush`]).
    pub fn finish(&self) {
        self.push_time_entry();
    }

    /// Renames the files to `.deleted` and removes them; open readers keep
    /// their descriptors, so in-flight reads of this segment still succeed.
    pub fn delete_files(&self) -> Result<(), StorageError> {
        // After the rename a reopen by path would find nothing, or the
        // cleaner's replacement under the same name: every file stays open
        // for the readers (and a pending flush) that still hold this segment.
        self.log.keep_open().map_err(|e| StorageError::io(&self.log_path, e))?;
        self.offset_index.keep_open()?;
        self.time_index.keep_open()?;
        self.txn_index.keep_open()?;
        let paths = [
            self.log_path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
            self.txn_index.path().to_path_buf(),
        ];
        for path in &paths {
            let mut deleted = path.as_os_str().to_owned();
            deleted.push(".deleted");
            let deleted = PathBuf::from(deleted);
            match fs::rename(path, &deleted) {
                Ok(()) => fs::remove_file(&deleted).map_err(|e| StorageError::io(&deleted, e))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StorageError::io(path, e)),
            }
        }
        Ok(())
    }
}
