//! Control records: the single record of a control batch. Its key names the
//! control type; for transaction markers the value carries the coordinator
//! epoch.

use bytes::{BufMut, Bytes};

use super::batch::RecordBatch;
use super::builder::RecordBatchBuilder;
use super::record::Record;
use super::RecordsError;

/// Control records carry no compressed payload worth bounding, but decoding
/// goes through the common path, which wants a limit.
const MARKER_OUTPUT_BYTES_MAX: usize = 64 * 1024;
const CONTROL_KEY_VERSION: i16 = 0;
const END_TXN_MARKER_VERSION: i16 = 0;
const CONTROL_KEY_BYTES: usize = 4;
const END_TXN_MARKER_BYTES: usize = 6;

/// The type field of a control record key. Types other than the two
/// transaction markers exist (KRaft uses several) and are kept as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    Abort,
    Commit,
    Unknown(i16),
}

impl ControlRecordType {
    pub fn from_i16(value: i16) -> Self {
        match value {
            0 => Self::Abort,
            1 => Self::Commit,
            other => Self::Unknown(other),
        }
    }

    pub fn as_i16(self) -> i16 {
        match self {
            Self::Abort => 0,
            Self::Commit => 1,
            Self::Unknown(other) => other,
        }
    }
}

/// The key of a control record: version, then type, both i16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRecordKey {
    pub version: i16,
    pub record_type: ControlRecordType,
}

impl ControlRecordKey {
    /// Later key versions may append fields, so bytes past the type are
    /// allowed and ignored.
    pub fn decode(key: &[u8]) -> Result<Self, RecordsError> {
        let Some((version, rest)) = key.split_first_chunk::<2>() else {
            return Err(RecordsError::InvalidControlRecord { detail: "key shorter than 4 bytes" });
        };
        let Some(record_type) = rest.first_chunk::<2>() else {
            return Err(RecordsError::InvalidControlRecord { detail: "key shorter than 4 bytes" });
        };
        let version = i16::from_be_bytes(*version);
        if version < 0 {
            return Err(RecordsError::InvalidControlRecord { detail: "negative key version" });
        }
        Ok(Self { version, record_type: ControlRecordType::from_i16(i16::from_be_bytes(*record_type)) })
    }

    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(CONTROL_KEY_BYTES);
        out.put_i16(self.version);
        out.put_i16(self.record_type.as_i16());
        Bytes::from(out)
    }
}

/// The value of a transaction marker: version i16, coordinator epoch i32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnMarker {
    pub version: i16,
    pub coordinator_epoch: i32,
}

impl EndTxnMarker {
    /// Later value versions may append fields, so bytes past the epoch are
    /// allowed and ignored.
    pub fn decode(value: &[u8]) -> Result<Self, RecordsError> {
        let Some((version, rest)) = value.split_first_chunk::<2>() else {
            return Err(RecordsError::InvalidControlRecord { detail: "marker value shorter than 6 bytes" });
        };
        let Some(epoch) = rest.first_chunk::<4>() else {
            return Err(RecordsError::InvalidControlRecord { detail: "marker value shorter than 6 bytes" });
        };
        let version = i16::from_be_bytes(*version);
        if version < 0 {
            return Err(RecordsError::InvalidControlRecord { detail: "negative marker version" });
        }
        Ok(Self { version, coordinator_epoch: i32::from_be_bytes(*epoch) })
    }

    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(END_TXN_MARKER_BYTES);
        out.put_i16(self.version);
        out.put_i32(self.coordinator_epoch);
        Bytes::from(out)
    }
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionResult {
    Abort,
    Commit,
}

/// The content of a commit or abort marker batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionMarker {
    pub result: TransactionResult,
    pub coordinator_epoch: i32,
}

/// Builds the control batch that ends a transaction: control and
/// transactional bits set, one record at offset delta 0 stamped
/// `timestamp_ms`, no sequence.
pub fn build_transaction_marker_batch(
    base_offset: i64,
    producer_id: i64,
    producer_epoch: i16,
    timestamp_ms: i64,
    marker: TransactionMarker,
) -> Result<Vec<u8>, RecordsError> {
    let record_type = match marker.result {
        TransactionResult::Abort => ControlRecordType::Abort,
        TransactionResult::Commit => ControlRecordType::Commit,
    };
    let key = ControlRecordKey { version: CONTROL_KEY_VERSION, record_type };
    let value = EndTxnMarker { version: END_TXN_MARKER_VERSION, coordinator_epoch: marker.coordinator_epoch };
    let mut builder = RecordBatchBuilder::new(base_offset)
        .producer(producer_id, producer_epoch, super::NO_SEQUENCE)
        .transactional(true)
        .control(true);
    builder.append(timestamp_ms, Some(key.encode()), Some(value.encode()), Vec::new())?;
    builder.build()
}

/// Reads the marker of a commit or abort batch.
pub fn decode_transaction_marker(batch: &RecordBatch) -> Result<TransactionMarker, RecordsError> {
    if !batch.header().is_control() {
        return Err(RecordsError::InvalidControlRecord { detail: "batch lacks the control bit" });
    }
    let records = batch.records(MARKER_OUTPUT_BYTES_MAX)?;
    let [record] = records.as_slice() else {
        return Err(RecordsError::InvalidControlRecord { detail: "control batch does not hold exactly one record" });
    };
    decode_marker_record(record)
}

fn decode_marker_record(record: &Record) -> Result<TransactionMarker, RecordsError> {
    let key =
        record.key.as_deref().ok_or(RecordsError::InvalidControlRecord { detail: "control record has a null key" })?;
    let result = match ControlRecordKey::decode(key)?.record_type {
        ControlRecordType::Abort => TransactionResult::Abort,
        ControlRecordType::Commit => TransactionResult::Commit,
        ControlRecordType::Unknown(_) => {
            return Err(RecordsError::InvalidControlRecord { detail: "control record is not a transaction marker" })
        }
    };
    let value =
        record.value.as_deref().ok_or(RecordsError::InvalidControlRecord { detail: "marker has a null value" })?;
    let value = EndTxnMarker::decode(value)?;
    Ok(TransactionMarker { result, coordinator_epoch: value.coordinator_epoch })
}
