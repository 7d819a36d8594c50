//! Building complete v2 batches, header and CRC included.

use bytes::{BufMut, Bytes};

use super::batch::{
    ATTRIBUTE_CONTROL, ATTRIBUTE_DELETE_HORIZON, ATTRIBUTE_TIMESTAMP_TYPE, ATTRIBUTE_TRANSACTIONAL, BATCH_HEADER_BYTES,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
};
use super::record::{Record, RecordHeader};
use super::{recompute_crc, RecordsError, LOG_OVERHEAD_BYTES, MAGIC_V2, NO_TIMESTAMP};
use crate::compression::{compress, Compression};

/// Collects records and writes them as one v2 batch.
///
/// Defaults match a non-idempotent producer: no producer id, epoch or
/// sequence, no leader epoch, create-time timestamps, no compression.
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    base_offset: i64,
    partition_leader_epoch: i32,
    compression: Compression,
    transactional: bool,
    control: bool,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    base_timestamp: Option<i64>,
    delete_horizon: bool,
    log_append_time: Option<i64>,
    last_offset_delta: Option<i32>,
    records: Vec<Record>,
}

impl RecordBatchBuilder {
    pub fn new(base_offset: i64) -> Self {
        Self {
            base_offset,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            compression: Compression::None,
            transactional: false,
            control: false,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            base_timestamp: None,
            delete_horizon: false,
            log_append_time: None,
            last_offset_delta: None,
            records: Vec::new(),
        }
    }

    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn transactional(mut self, transactional: bool) -> Self {
        self.transactional = transactional;
        self
    }

    pub fn control(mut self, control: bool) -> Self {
        self.control = control;
        self
    }

    /// Marks the batch log-append-time stamped with `timestamp_ms` as its max
    /// timestamp, which consumers then see on every record.
    pub fn log_append_time(mut self, timestamp_ms: i64) -> Self {
        self.log_append_time = Some(timestamp_ms);
        self
    }

    /// Fixes the base timestamp that record deltas count from. Without it the
    /// first appended record's timestamp is used. Call before appending.
    pub fn base_timestamp(mut self, timestamp_ms: i64) -> Self {
        self.base_timestamp = Some(timestamp_ms);
        self
    }

    /// Stores a compaction delete horizon in the base timestamp and sets the
    /// attribute bit that says so. Call before appending.
    pub fn delete_horizon(mut self, horizon_ms: i64) -> Self {
        self.base_timestamp = Some(horizon_ms);
        self.delete_horizon = true;
        self
    }

    /// Overrides the last offset delta, which otherwise is the last record's
    /// offset delta. Compaction keeps it when records are removed, and a
    /// batch without records needs it.
    pub fn last_offset_delta(mut self, last_offset_delta: i32) -> Self {
        self.last_offset_delta = Some(last_offset_delta);
        self
    }

    /// Appends a record at the next offset delta with an absolute timestamp.
    pub fn append(
        &mut self,
        timestamp_ms: i64,
        key: Option<Bytes>,
        value: Option<Bytes>,
        headers: Vec<RecordHeader>,
    ) -> Result<&mut Self, RecordsError> {
        let offset_delta =
            i32::try_from(self.records.len()).map_err(|_| RecordsError::Overflow { what: "record offset delta" })?;
        let base_timestamp = *self.base_timestamp.get_or_insert(timestamp_ms);
        let timestamp_delta = timestamp_ms
            .checked_sub(base_timestamp)
            .ok_or(RecordsError::Overflow { what: "record timestamp delta" })?;
        self.records.push(Record { attributes: 0, timestamp_delta, offset_delta, key, value, headers });
        Ok(self)
    }

    /// Appends a record with its deltas exactly as given, for batches whose
    /// offsets have gaps (compacted) or whose layout a test pins down.
    pub fn push_record(&mut self, record: Record) -> &mut Self {
        self.records.push(record);
        self
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Writes the batch with a valid CRC.
    pub fn build(&self) -> Result<Vec<u8>, RecordsError> {
        let last_offset_delta = match (self.last_offset_delta, self.records.last()) {
            (Some(delta), _) => delta,
            (None, Some(last)) => last.offset_delta,
            (None, None) => return Err(RecordsError::EmptyBatch),
        };
        let base_timestamp = self.base_timestamp.unwrap_or(NO_TIMESTAMP);
        let max_timestamp = match self.log_append_time {
            Some(timestamp_ms) => timestamp_ms,
            None => self.max_create_time(base_timestamp)?,
        };
        let records_count = i32::try_from(self.records.len())
            .map_err(|_| RecordsError::TooLarge { what: "record count", length: self.records.len() })?;

        let mut encoded = Vec::new();
        for record in &self.records {
            record.encode(&mut encoded)?;
        }
        let payload = match self.compression {
            Compression::None => encoded,
            codec => compress(codec, &encoded)?,
        };
        let size_bytes = BATCH_HEADER_BYTES + payload.len();
        let batch_length = i32::try_from(size_bytes - LOG_OVERHEAD_BYTES)
            .map_err(|_| RecordsError::TooLarge { what: "record batch", length: size_bytes })?;

        let mut batch = Vec::with_capacity(size_bytes);
        batch.put_i64(self.base_offset);
        batch.put_i32(batch_length);
        batch.put_i32(self.partition_leader_epoch);
        batch.put_i8(MAGIC_V2);
        // Filled in once the bytes it covers exist.
        batch.put_u32(0);
        batch.put_i16(self.attributes());
        batch.put_i32(last_offset_delta);
        batch.put_i64(base_timestamp);
        batch.put_i64(max_timestamp);
        batch.put_i64(self.producer_id);
        batch.put_i16(self.producer_epoch);
        batch.put_i32(self.base_sequence);
        batch.put_i32(records_count);
        batch.put_slice(&payload);
        recompute_crc(&mut batch)?;
        Ok(batch)
    }

    fn attributes(&self) -> i16 {
        let mut attributes = i16::from(self.compression.id());
        if self.log_append_time.is_some() {
            attributes |= ATTRIBUTE_TIMESTAMP_TYPE;
        }
        if self.transactional {
            attributes |= ATTRIBUTE_TRANSACTIONAL;
        }
        if self.control {
            attributes |= ATTRIBUTE_CONTROL;
        }
        if self.delete_horizon {
            attributes |= ATTRIBUTE_DELETE_HORIZON;
        }
        attributes
    }

    fn max_create_time(&self, base_timestamp: i64) -> Result<i64, RecordsError> {
        let mut max_timestamp = NO_TIMESTAMP;
        for record in &self.records {
            let timestamp = base_timestamp
                .checked_add(record.timestamp_delta)
                .ok_or(RecordsError::Overflow { what: "record timestamp" })?;
            max_timestamp = max_timestamp.max(timestamp);
        }
        Ok(max_timestamp)
    }
}
