//! The v2 record batch header, whole-batch validation, and the in-place
//! header rewrites the broker applies on append.

use bytes::Bytes;

use super::record::{decode_records, Record};
use super::{RecordsError, TimestampType, LOG_OVERHEAD_BYTES, MAGIC_V2};
use crate::compression::{decompress, Compression};
use crate::error::DecodeError;

const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const PARTITION_LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
/// The CRC covers everything from the attributes to the end of the batch.
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORDS_COUNT_AT: usize = 57;

/// Bytes from the base offset up to the first record.
pub const BATCH_HEADER_BYTES: usize = 61;
/// The smallest legal batch length field: a header with no records.
const BATCH_LENGTH_MIN: i32 = (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;

pub const ATTRIBUTE_TIMESTAMP_TYPE: i16 = 1 << 3;
pub const ATTRIBUTE_TRANSACTIONAL: i16 = 1 << 4;
pub const ATTRIBUTE_CONTROL: i16 = 1 << 5;
pub const ATTRIBUTE_DELETE_HORIZON: i16 = 1 << 6;

pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;
pub const NO_SEQUENCE: i32 = -1;

/// Every field of a v2 batch header, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBatchHeader {
    pub base_offset: i64,
    /// Bytes after this field to the end of the batch.
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn array_at<const N: usize>(input: &[u8], at: usize) -> Result<[u8; N], DecodeError> {
    input
        .get(at..)
        .and_then(|rest| rest.first_chunk::<N>())
        .copied()
        .ok_or(DecodeError::UnexpectedEof { needed: at + N, remaining: input.len() })
}

fn write_at<const N: usize>(batch: &mut [u8], at: usize, bytes: [u8; N]) -> Result<(), DecodeError> {
    let remaining = batch.len();
    let target = batch.get_mut(at..at + N).ok_or(DecodeError::UnexpectedEof { needed: at + N, remaining })?;
    target.copy_from_slice(&bytes);
    Ok(())
}

impl RecordBatchHeader {
    /// Reads the header from the front of `input`, which need not hold the
    /// records. Checks the magic and that the length field covers a header;
    /// checks neither the size of `input` beyond the header nor the CRC.
    pub fn parse(input: &[u8]) -> Result<Self, RecordsError> {
        if input.len() < BATCH_HEADER_BYTES {
            // The magic decides the header's shape, so report it when present.
            if let Some(&magic) = input.get(MAGIC_AT) {
                let magic = i8::from_be_bytes([magic]);
                if magic != MAGIC_V2 {
                    return Err(RecordsError::UnsupportedMagic { magic });
                }
            }
            return Err(DecodeError::UnexpectedEof { needed: BATCH_HEADER_BYTES, remaining: input.len() }.into());
        }
        let magic = i8::from_be_bytes(array_at(input, MAGIC_AT)?);
        if magic != MAGIC_V2 {
            return Err(RecordsError::UnsupportedMagic { magic });
        }
        let batch_length = i32::from_be_bytes(array_at(input, BATCH_LENGTH_AT)?);
        if batch_length < BATCH_LENGTH_MIN {
            return Err(RecordsError::LengthTooSmall { length: batch_length, length_min: BATCH_LENGTH_MIN });
        }
        Ok(Self {
            base_offset: i64::from_be_bytes(array_at(input, BASE_OFFSET_AT)?),
            batch_length,
            partition_leader_epoch: i32::from_be_bytes(array_at(input, PARTITION_LEADER_EPOCH_AT)?),
            magic,
            crc: u32::from_be_bytes(array_at(input, CRC_AT)?),
            attributes: i16::from_be_bytes(array_at(input, ATTRIBUTES_AT)?),
            last_offset_delta: i32::from_be_bytes(array_at(input, LAST_OFFSET_DELTA_AT)?),
            base_timestamp: i64::from_be_bytes(array_at(input, BASE_TIMESTAMP_AT)?),
            max_timestamp: i64::from_be_bytes(array_at(input, MAX_TIMESTAMP_AT)?),
            producer_id: i64::from_be_bytes(array_at(input, PRODUCER_ID_AT)?),
            producer_epoch: i16::from_be_bytes(array_at(input, PRODUCER_EPOCH_AT)?),
            base_sequence: i32::from_be_bytes(array_at(input, BASE_SEQUENCE_AT)?),
            records_count: i32::from_be_bytes(array_at(input, RECORDS_COUNT_AT)?),
        })
    }

    /// The whole batch's size on the wire, offset and length fields included.
    pub fn size_bytes(&self) -> usize {
        // parse() guarantees a positive length, so the conversion is lossless.
        LOG_OVERHEAD_BYTES + usize::try_from(self.batch_length).unwrap_or_default()
    }

    pub fn compression(&self) -> Result<Compression, RecordsError> {
        Ok(Compression::from_attributes(self.attributes)?)
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & ATTRIBUTE_TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTRIBUTE_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTRIBUTE_CONTROL != 0
    }

    /// Whether compaction stored a delete horizon in the base timestamp.
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & ATTRIBUTE_DELETE_HORIZON != 0
    }

    /// Saturates rather than wrapping on absurd input so it cannot panic.
    pub fn last_offset(&self) -> i64 {
        self.base_offset.saturating_add(i64::from(self.last_offset_delta))
    }

    /// The absolute offset of a record of this batch.
    pub fn record_offset(&self, record: &Record) -> i64 {
        self.base_offset.saturating_add(i64::from(record.offset_delta))
    }

    /// The timestamp a consumer sees for a record of this batch: with
    /// log-append time every record takes the batch's max timestamp.
    pub fn record_timestamp(&self, record: &Record) -> i64 {
        match self.timestamp_type() {
            TimestampType::LogAppendTime => self.max_timestamp,
            TimestampType::CreateTime => self.base_timestamp.saturating_add(record.timestamp_delta),
        }
    }
}

fn crc_of(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES_AT..).unwrap_or_default())
}

/// Parses the header and checks that `batch` is exactly one batch whose CRC
/// matches; the records are not decoded.
fn check_whole_batch(batch: &[u8]) -> Result<RecordBatchHeader, RecordsError> {
    let header = RecordBatchHeader::parse(batch)?;
    if batch.len() != header.size_bytes() {
        return Err(RecordsError::SizeMismatch { declared_bytes: header.size_bytes(), actual_bytes: batch.len() });
    }
    let computed = crc_of(batch);
    if computed != header.crc {
        return Err(RecordsError::CrcMismatch { stored: header.crc, computed });
    }
    Ok(header)
}

/// Checks that `batch` is exactly one v2 batch: magic, length field against
/// the bytes given, and CRC. Records are not decoded.
pub fn validate_batch(batch: &[u8]) -> Result<RecordBatchHeader, RecordsError> {
    check_whole_batch(batch)
}

/// Sets the base offset. It lies outside the CRC, so the CRC stays valid.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), RecordsError> {
    RecordBatchHeader::parse(batch)?;
    Ok(write_at(batch, BASE_OFFSET_AT, base_offset.to_be_bytes())?)
}

/// Sets the partition leader epoch. Kafka left it outside the CRC so the
/// leader can stamp every batch without recomputing.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), RecordsError> {
    RecordBatchHeader::parse(batch)?;
    Ok(write_at(batch, PARTITION_LEADER_EPOCH_AT, epoch.to_be_bytes())?)
}

/// Sets the timestamp type bit and the max timestamp, as the broker does for
/// topics with log-append time. Both lie inside the CRC, so the existing CRC
/// is verified first (recomputing over corrupt bytes would hide the damage)
/// and then recomputed; nothing is touched when both already match.
pub fn set_max_timestamp(
    batch: &mut [u8],
    timestamp_type: TimestampType,
    max_timestamp: i64,
) -> Result<(), RecordsError> {
    let header = check_whole_batch(batch)?;
    if header.timestamp_type() == timestamp_type && header.max_timestamp == max_timestamp {
        return Ok(());
    }
    let attributes = match timestamp_type {
        TimestampType::CreateTime => header.attributes & !ATTRIBUTE_TIMESTAMP_TYPE,
        TimestampType::LogAppendTime => header.attributes | ATTRIBUTE_TIMESTAMP_TYPE,
    };
    write_at(batch, ATTRIBUTES_AT, attributes.to_be_bytes())?;
    write_at(batch, MAX_TIMESTAMP_AT, max_timestamp.to_be_bytes())?;
    write_at(batch, CRC_AT, crc_of(batch).to_be_bytes())?;
    Ok(())
}

/// One batch whose size and CRC were checked when the view was made, open for
/// the broker's in-place stamping on the produce path. Because the CRC is known
/// to be good, changing a field inside it needs one CRC pass, not a check and a
/// recompute as [`set_max_timestamp`] does.
#[derive(Debug)]
pub struct ValidatedBatchMut<'a> {
    batch: &'a mut [u8],
    header: RecordBatchHeader,
}

impl<'a> ValidatedBatchMut<'a> {
    /// Validates `batch` as exactly one v2 batch (see [`validate_batch`]).
    pub fn new(batch: &'a mut [u8]) -> Result<Self, RecordsError> {
        let header = check_whole_batch(batch)?;
        Ok(Self { batch, header })
    }

    /// The header as it is now, including stamps made through this view.
    pub fn header(&self) -> &RecordBatchHeader {
        &self.header
    }

    pub fn set_base_offset(&mut self, base_offset: i64) -> Result<(), RecordsError> {
        write_at(self.batch, BASE_OFFSET_AT, base_offset.to_be_bytes())?;
        self.header.base_offset = base_offset;
        Ok(())
    }

    pub fn set_partition_leader_epoch(&mut self, epoch: i32) -> Result<(), RecordsError> {
        write_at(self.batch, PARTITION_LEADER_EPOCH_AT, epoch.to_be_bytes())?;
        self.header.partition_leader_epoch = epoch;
        Ok(())
    }

    /// Sets the timestamp type and max timestamp and recomputes the CRC, once.
    pub fn set_max_timestamp(&mut self, timestamp_type: TimestampType, max_timestamp: i64) -> Result<(), RecordsError> {
        if self.header.timestamp_type() == timestamp_type && self.header.max_timestamp == max_timestamp {
            return Ok(());
        }
        let attributes = match timestamp_type {
            TimestampType::CreateTime => self.header.attributes & !ATTRIBUTE_TIMESTAMP_TYPE,
            TimestampType::LogAppendTime => self.header.attributes | ATTRIBUTE_TIMESTAMP_TYPE,
        };
        write_at(self.batch, ATTRIBUTES_AT, attributes.to_be_bytes())?;
        write_at(self.batch, MAX_TIMESTAMP_AT, max_timestamp.to_be_bytes())?;
        let crc = crc_of(self.batch);
        write_at(self.batch, CRC_AT, crc.to_be_bytes())?;
        self.header.attributes = attributes;
        self.header.max_timestamp = max_timestamp;
        self.header.crc = crc;
        Ok(())
    }
}

/// Recomputes and stores the CRC of exactly one batch; returns the new CRC.
/// For callers that changed bytes inside the CRC range themselves.
pub fn recompute_crc(batch: &mut [u8]) -> Result<u32, RecordsError> {
    let header = RecordBatchHeader::parse(batch)?;
    if batch.len() != header.size_bytes() {
        return Err(RecordsError::SizeMismatch { declared_bytes: header.size_bytes(), actual_bytes: batch.len() });
    }
    let crc = crc_of(batch);
    write_at(batch, CRC_AT, crc.to_be_bytes())?;
    Ok(crc)
}

/// A validated v2 batch kept as the bytes it arrived in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    header: RecordBatchHeader,
    bytes: Bytes,
}

impl RecordBatch {
    /// Validates `bytes` as exactly one batch (see [`validate_batch`]).
    pub fn new(bytes: Bytes) -> Result<Self, RecordsError> {
        let header = validate_batch(&bytes)?;
        Ok(Self { header, bytes })
    }

    pub fn header(&self) -> &RecordBatchHeader {
        &self.header
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The bytes after the header: the records, compressed or not.
    pub fn records_payload(&self) -> Bytes {
        self.bytes.slice(BATCH_HEADER_BYTES.min(self.bytes.len())..)
    }

    /// Decodes every record. Uncompressed records borrow from the batch's
    /// buffer; compressed ones are decompressed into at most
    /// `output_bytes_max` bytes first.
    pub fn records(&self, output_bytes_max: usize) -> Result<Vec<Record>, RecordsError> {
        let count = usize::try_from(self.header.records_count)
            .map_err(|_| RecordsError::InvalidRecordCount { count: self.header.records_count })?;
        let payload = self.records_payload();
        match self.header.compression()? {
            Compression::None => decode_records(&payload, count),
            codec => {
                let decompressed = Bytes::from(decompress(codec, &payload, output_bytes_max)?);
                decode_records(&decompressed, count)
            }
        }
    }
}
