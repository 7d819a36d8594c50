//! Record batches (magic 2), the records inside them, control records, and
//! legacy message sets (magic 0 and 1).
//!
//! Batches stay as bytes for as long as possible: the broker validates them,
//! rewrites a few header fields in place and passes them on without decoding
//! records. Decoding into [`Record`] values is for tests, compaction and
//! down-conversion. Every parser returns [`RecordsError`] on bad input; none
//! panics, and decompression is always bounded by a caller-supplied limit.

mod batch;
mod builder;
mod control;
mod cursor;
mod legacy;
mod record;
mod set;

pub use batch::{
    recompute_crc, set_base_offset, set_max_timestamp, set_partition_leader_epoch, validate_batch, RecordBatch,
    RecordBatchHeader, ValidatedBatchMut, ATTRIBUTE_CONTROL, ATTRIBUTE_DELETE_HORIZON, ATTRIBUTE_TIMESTAMP_TYPE,
    ATTRIBUTE_TRANSACTIONAL, BATCH_HEADER_BYTES, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
    NO_SEQUENCE,
};
pub use builder::RecordBatchBuilder;
pub use control::{
    build_transaction_marker_batch, decode_transaction_marker, ControlRecordKey, ControlRecordType, EndTxnMarker,
    TransactionMarker, TransactionResult,
};
pub use legacy::{
    decode_legacy_entry, decode_message_set, encode_message_set, parse_legacy_entry, LegacyEntry, LegacyMessage,
};
pub use record::{Record, RecordHeader};
pub use set::{entry_magic, split_record_set, RecordSetIter};

use crate::compression::{Compression, CompressionError};
use crate::error::DecodeError;

/// The batch format of Kafka 0.11 and later.
pub const MAGIC_V2: i8 = 2;
/// The legacy message format with timestamps (Kafka 0.10).
pub const MAGIC_V1: i8 = 1;
/// The original legacy message format.
pub const MAGIC_V0: i8 = 0;
/// Every entry of a record set, batch or legacy message, starts with an i64
/// offset and an i32 length that counts the bytes after it.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// Both formats put the magic byte at the same position so a reader can pick
/// the format before interpreting anything else.
pub const MAGIC_POSITION: usize = 16;
/// The timestamp of records and batches that carry none.
pub const NO_TIMESTAMP: i64 = -1;

/// Whose clock a timestamp comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Set by the producer.
    CreateTime,
    /// Set by the broker when it appended the batch.
    LogAppendTime,
}

/// Why a record set, batch, record or legacy message is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Compression(#[from] CompressionError),
    #[error("unsupported magic {magic}")]
    UnsupportedMagic { magic: i8 },
    #[error("length field {length} is below the minimum of {length_min} for this entry")]
    LengthTooSmall { length: i32, length_min: i32 },
    #[error("entry declares {declared_bytes} bytes but {actual_bytes} were given")]
    SizeMismatch { declared_bytes: usize, actual_bytes: usize },
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("invalid record count {count}")]
    InvalidRecordCount { count: i32 },
    #[error("record declares a body of {declared_bytes} bytes but its fields take {used_bytes}")]
    RecordSizeMismatch { declared_bytes: usize, used_bytes: usize },
    #[error("{what} of {length} bytes does not fit its length field")]
    TooLarge { what: &'static str, length: usize },
    #[error("{codec:?} compression is not allowed with magic {magic}")]
    CompressionNotAllowed { codec: Compression, magic: i8 },
    #[error("a compressed wrapper message holds a compressed inner message")]
    NestedCompression,
    #[error("a compressed wrapper message has a null value")]
    NullWrapperValue,
    #[error("a compressed wrapper message holds no inner messages")]
    EmptyWrapper,
    #[error("inner message magic {inner} differs from wrapper magic {wrapper}")]
    InnerMagicMismatch { wrapper: i8, inner: i8 },
    #[error("messages of magic {first} and {other} cannot share one compressed wrapper")]
    MixedWrapperContents { first: i8, other: i8 },
    #[error("{what} overflows")]
    Overflow { what: &'static str },
    #[error("a batch without records needs an explicit last offset delta")]
    EmptyBatch,
    #[error("invalid control record: {detail}")]
    InvalidControlRecord { detail: &'static str },
}

#[cfg(test)]
mod tests;
