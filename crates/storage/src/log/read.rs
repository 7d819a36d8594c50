//! The fetch and ListOffsets paths: stored bytes straight from the segment
//! files, located through the indexes and batch headers.

use std::sync::Arc;

use bytes::Bytes;
use gregor_protocol::records::{RecordBatch, RecordBatchHeader};

use super::Log;
use crate::error::{ReadError, StorageError};
use crate::io::FileRegion;
use crate::segment::{BatchAt, Segment};

/// A fetch result: whole stored batches plus the offsets the response reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadInfo {
    pub records: Bytes,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub last_stable_offset: i64,
}

/// A fetch result as a range of a segment file (see [`Log::read_region`]).
#[derive(Debug, Clone)]
pub struct RegionRead {
    /// Whole batches; `None` when nothing is to be returned.
    pub region: Option<FileRegion>,
    /// The offset after the last batch in `region`.
    pub next_offset: i64,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub last_stable_offset: i64,
}

/// A ListOffsets answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp_ms: i64,
    pub offset: i64,
    pub leader_epoch: Option<i32>,
}

/// Decoding one batch to find a record is bounded like any decompression.
const DECOMPRESSED_BYTES_MAX: usize = 256 * 1024 * 1024;

fn epoch_of(header: &RecordBatchHeader) -> Option<i32> {
    (header.partition_leader_epoch >= 0).then_some(header.partition_leader_epoch)
}

impl Log {
    /// Whole batches from the one containing `fetch_offset`, at most
    /// `max_bytes` (but the first batch regardless when `min_one_batch`), none
    /// with offsets at or beyond `max_offset`. Reads stay within one segment.
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        max_offset: i64,
    ) -> Result<ReadInfo, ReadError> {
        let read = self.read_region(fetch_offset, max_bytes, min_one_batch, max_offset)?;
        let records = match &read.region {
            Some(region) => region.read().map_err(|e| StorageError::io(&self.dir, e))?,
            None => Bytes::new(),
        };
        Ok(ReadInfo {
            records,
            high_watermark: read.high_watermark,
            log_start_offset: read.log_start_offset,
            last_stable_offset: read.last_stable_offset,
        })
    }

    /// What [`Log::read`] returns, as a range of the segment file rather than bytes
    /// in memory, so that a fetch can have the kernel send it (sendfile): the
    /// batches are found from the indexes and a few headers, not read.
    pub fn read_region(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        max_offset: i64,
    ) -> Result<RegionRead, ReadError> {
        self.check_online()?;
        let view = self.view();
        let result = |region: Option<FileRegion>, next_offset: i64| RegionRead {
            region,
            next_offset,
            high_watermark: view.high_watermark,
            log_start_offset: view.log_start_offset,
            last_stable_offset: view.last_stable_offset,
        };
        if fetch_offset < view.log_start_offset || fetch_offset > view.log_end_offset {
            return Err(ReadError::OffsetOutOfRange {
                offset: fetch_offset,
                log_start_offset: view.log_start_offset,
                log_end_offset: view.log_end_offset,
            });
        }
        let max_offset = max_offset.min(view.log_end_offset);
        if fetch_offset >= max_offset {
            return Ok(result(None, fetch_offset));
        }
        let Some((segment, first)) = find_batch(&view.segments, fetch_offset)? else {
            return Ok(result(None, fetch_offset));
        };
        if first.header.last_offset() >= max_offset {
            return Ok(result(None, fetch_offset));
        }
        let first_size = first.header.size_bytes();
        if first_size > max_bytes && !min_one_batch {
            return Ok(result(None, fetch_offset));
        }
        let want = max_bytes.max(if min_one_batch { first_size } else { 0 });
        let mut limit = first.position.saturating_add(want as u64);
        let is_active = view.segments.last().is_some_and(|last| Arc::ptr_eq(last, &segment));
        if !(is_active && max_offset >= view.log_end_offset) {
            // Batches from the one holding `max_offset` on are not to be read.
            if let Some(stop) = segment.find_batch(max_offset)? {
                limit = limit.min(stop.position);
            }
        }
        let (end, next_offset) = segment.whole_batches_end(first.position, limit, first.header.base_offset)?;
        if end <= first.position {
            return Ok(result(None, fetch_offset));
        }
        let len = usize::try_from(end - first.position).unwrap_or(usize::MAX);
        Ok(result(Some(segment.region(first.position, len)?), next_offset))
    }

    /// ListOffsets by timestamp: the first record at or after `timestamp_ms`.
    pub fn find_offset_by_timestamp(&self, timestamp_ms: i64) -> Result<Option<TimestampOffset>, ReadError> {
        self.check_online()?;
        let view = self.view();
        for segment in view.segments.iter().filter(|s| s.max_timestamp_ms() >= timestamp_ms) {
            let start_offset = view.log_start_offset.max(segment.base_offset());
            let from_offset = segment
                .time_index
                .lookup_before(timestamp_ms)
                .map_or(start_offset, |relative| (segment.base_offset() + i64::from(relative)).max(start_offset));
            let Some(found) = segment.find_batch(from_offset)? else { continue };
            for batch in segment.headers_from(found.position)? {
                if batch.header.last_offset() < start_offset || batch.header.max_timestamp < timestamp_ms {
                    continue;
                }
                let decoded = decode(segment, &batch)?;
                let records = decoded.records(DECOMPRESSED_BYTES_MAX).map_err(ReadError::Corrupt)?;
                let hit = records.iter().find(|r| {
                    decoded.header().record_offset(r) >= start_offset
                        && decoded.header().record_timestamp(r) >= timestamp_ms
                });
                if let Some(record) = hit {
                    return Ok(Some(TimestampOffset {
                        timestamp_ms: decoded.header().record_timestamp(record),
                        offset: decoded.header().record_offset(record),
                        leader_epoch: epoch_of(decoded.header()),
                    }));
                }
            }
        }
        Ok(None)
    }

    /// ListOffsets -3: the record with the largest timestamp (the first such).
    pub fn max_timestamp_offset(&self) -> Result<Option<TimestampOffset>, ReadError> {
        self.check_online()?;
        let view = self.view();
        let mut best: Option<&Arc<Segment>> = None;
        for segment in view.segments.iter() {
            if segment.max_timestamp_ms() >= 0 && best.is_none_or(|b| segment.max_timestamp_ms() > b.max_timestamp_ms())
            {
                best = Some(segment);
            }
        }
        let Some(segment) = best else { return Ok(None) };
        let max_timestamp_ms = segment.max_timestamp_ms();
        let Some(batch) = segment.find_batch(segment.offset_of_max_timestamp())? else { return Ok(None) };
        let decoded = decode(segment, &batch)?;
        let records = decoded.records(DECOMPRESSED_BYTES_MAX).map_err(ReadError::Corrupt)?;
        let offset = records
            .iter()
            .find(|r| decoded.header().record_timestamp(r) == max_timestamp_ms)
            .map_or(batch.header.last_offset(), |r| decoded.header().record_offset(r));
        Ok(Some(TimestampOffset { timestamp_ms: max_timestamp_ms, offset, leader_epoch: epoch_of(&batch.header) }))
    }
}

/// The segment and batch holding `offset`: the last segment starting at or
/// before it, or the next one when that segment holds nothing at or past it.
fn find_batch(segments: &[Arc<Segment>], offset: i64) -> Result<Option<(Arc<Segment>, BatchAt)>, ReadError> {
    let from = segments.partition_point(|s| s.base_offset() <= offset).saturating_sub(1);
    for segment in segments.get(from..).unwrap_or_default() {
        if let Some(batch) = segment.find_batch(offset)? {
            return Ok(Some((Arc::clone(segment), batch)));
        }
    }
    Ok(None)
}

fn decode(segment: &Segment, batch: &BatchAt) -> Result<RecordBatch, ReadError> {
    let bytes = segment.read_bytes(batch.position, batch.header.size_bytes())?;
    RecordBatch::new(Bytes::from(bytes)).map_err(ReadError::Corrupt)
}
