//! The three error types of the crate and their one mapping to Kafka error codes.

use std::io;
use std::path::PathBuf;

use gregor_protocol::records::RecordsError;
use gregor_protocol::ErrorCode;

/// A per-record rejection reported back in the produce response: the record's
/// index inside its batch and an optional message.
pub type RecordErrors = Vec<(i32, Option<String>)>;

/// Disk trouble and unreadable on-disk state. Every variant answers
/// KAFKA_STORAGE_ERROR: the client retries elsewhere or later.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is corrupt: {detail}")]
    Corrupt { path: PathBuf, detail: String },
    #[error("log {partition} is offline after an earlier I/O error")]
    Offline { partition: String },
    #[error("log directory {path} is locked by another process")]
    DirLocked { path: PathBuf },
    #[error("no log directory was configured")]
    NoLogDirs,
}

impl StorageError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Self::Corrupt { path: path.into(), detail: detail.into() }
    }

    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::KafkaStorageError
    }

    /// The disk or the quota is full (ENOSPC, EDQUOT): writes fail until space
    /// is freed, while what is on disk stays readable.
    pub fn is_no_space(&self) -> bool {
        match self {
            Self::Io { source, .. } => matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)),
            _ => false,
        }
    }
}

/// Why a produce was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("corrupt record batch: {0}")]
    Corrupt(#[source] RecordsError),
    #[error("invalid record batch: {message}")]
    InvalidRecord { message: String, record_errors: RecordErrors },
    #[error("batch of {size_bytes} bytes exceeds max.message.bytes {max_bytes}")]
    MessageTooLarge { size_bytes: usize, max_bytes: usize },
    #[error("record set of {size_bytes} bytes exceeds segment.bytes {segment_bytes}")]
    RecordListTooLarge { size_bytes: usize, segment_bytes: u64 },
    #[error("invalid timestamp: {message}")]
    InvalidTimestamp { message: String, record_errors: RecordErrors },
    #[error("out of order sequence for producer {producer_id}: {message}")]
    OutOfOrderSequence { producer_id: i64, message: String },
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current_epoch}")]
    InvalidProducerEpoch { producer_id: i64, epoch: i16, current_epoch: i16 },
    #[error("unknown producer id {producer_id}")]
    UnknownProducerId { producer_id: i64 },
    #[error("invalid transaction state for producer {producer_id}: {message}")]
    InvalidTxnState { producer_id: i64, message: String },
    #[error(
        "marker for producer {producer_id} from coordinator epoch {coordinator_epoch}, older than {current_coordinator_epoch}"
    )]
    TransactionCoordinatorFenced { producer_id: i64, coordinator_epoch: i32, current_coordinator_epoch: i32 },
    /// The transaction coordinator did not confirm that this partition is part of
    /// the producer's transaction (KIP-890 verification); `error` is the code the
    /// produce answer carries.
    #[error("transaction verification failed for producer {producer_id}: {message}")]
    TransactionVerification { producer_id: i64, error: ErrorCode, message: String },
    #[error("magic {magic} is not supported for appends")]
    UnsupportedMagic { magic: i8 },
    #[error("offset {offset} is outside [{log_start_offset}, {high_watermark}]")]
    OffsetOutOfRange { offset: i64, log_start_offset: i64, high_watermark: i64 },
    /// A replica append whose first batch starts below the log end (Kafka's
    /// UnexpectedAppendOffsetException): the caller did not truncate first.
    #[error("unexpected offset in append: first offset {first_offset} is less than the next offset {log_end_offset} (last offset in append: {last_offset})")]
    UnexpectedAppendOffset { first_offset: i64, last_offset: i64, log_end_offset: i64 },
    /// A replica append whose batches do not follow each other (Kafka's
    /// OffsetsOutOfOrderException).
    #[error("out of order offsets in append: batch at {base_offset} follows offset {previous_last_offset}")]
    OffsetsOutOfOrder { base_offset: i64, previous_last_offset: i64 },
    /// Truncation to an offset below zero.
    #[error("cannot truncate to the negative offset {offset}")]
    NegativeTruncationOffset { offset: i64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl AppendError {
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::Corrupt(_) => ErrorCode::CorruptMessage,
            Self::InvalidRecord { .. } => ErrorCode::InvalidRecord,
            Self::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
            Self::RecordListTooLarge { .. } => ErrorCode::RecordListTooLarge,
            Self::InvalidTimestamp { .. } => ErrorCode::InvalidTimestamp,
            Self::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
            Self::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
            Self::UnknownProducerId { .. } => ErrorCode::UnknownProducerId,
            Self::InvalidTxnState { .. } => ErrorCode::InvalidTxnState,
            Self::TransactionCoordinatorFenced { .. } => ErrorCode::TransactionCoordinatorFenced,
            Self::TransactionVerification { error, .. } => *error,
            Self::UnsupportedMagic { .. } => ErrorCode::UnsupportedForMessageFormat,
            Self::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            // Kafka has no code for these: the replica's own bug, not the client's.
            Self::UnexpectedAppendOffset { .. }
            | Self::OffsetsOutOfOrder { .. }
            | Self::NegativeTruncationOffset { .. } => ErrorCode::UnknownServerError,
            Self::Storage(e) => e.error_code(),
        }
    }

    /// See [`StorageError::is_no_space`].
    pub fn is_no_space(&self) -> bool {
        matches!(self, Self::Storage(e) if e.is_no_space())
    }

    /// The per-record errors the produce response carries, when there are any.
    pub fn record_errors(&self) -> &[(i32, Option<String>)] {
        match self {
            Self::InvalidRecord { record_errors, .. } | Self::InvalidTimestamp { record_errors, .. } => record_errors,
            _ => &[],
        }
    }
}

/// Why a fetch, offset lookup or timestamp lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("offset {offset} is outside [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange { offset: i64, log_start_offset: i64, log_end_offset: i64 },
    #[error("stored batch is unreadable: {0}")]
    Corrupt(#[source] RecordsError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl ReadError {
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            Self::Corrupt(_) => ErrorCode::CorruptMessage,
            Self::Storage(e) => e.error_code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_maps_to_its_kafka_code() {
        let storage = || StorageError::Offline { partition: "t-0".into() };
        assert_eq!(storage().error_code(), ErrorCode::KafkaStorageError);
        let cases = [
            (AppendError::Corrupt(RecordsError::EmptyBatch), ErrorCode::CorruptMessage),
            (
                AppendError::InvalidRecord { message: String::new(), record_errors: vec![(1, None)] },
                ErrorCode::InvalidRecord,
            ),
            (AppendError::MessageTooLarge { size_bytes: 2, max_bytes: 1 }, ErrorCode::MessageTooLarge),
            (AppendError::RecordListTooLarge { size_bytes: 2, segment_bytes: 1 }, ErrorCode::RecordListTooLarge),
            (
                AppendError::InvalidTimestamp { message: String::new(), record_errors: vec![] },
                ErrorCode::InvalidTimestamp,
            ),
            (
                AppendError::OutOfOrderSequence { producer_id: 1, message: String::new() },
                ErrorCode::OutOfOrderSequenceNumber,
            ),
            (
                AppendError::InvalidProducerEpoch { producer_id: 1, epoch: 0, current_epoch: 1 },
                ErrorCode::InvalidProducerEpoch,
            ),
            (AppendError::UnknownProducerId { producer_id: 1 }, ErrorCode::UnknownProducerId),
            (AppendError::InvalidTxnState { producer_id: 1, message: String::new() }, ErrorCode::InvalidTxnState),
            (
                AppendError::TransactionCoordinatorFenced {
                    producer_id: 1,
                    coordinator_epoch: 0,
                    current_coordinator_epoch: 1,
                },
                ErrorCode::TransactionCoordinatorFenced,
            ),
            (AppendError::UnsupportedMagic { magic: 1 }, ErrorCode::UnsupportedForMessageFormat),
            (
                AppendError::OffsetOutOfRange { offset: 9, log_start_offset: 0, high_watermark: 1 },
                ErrorCode::OffsetOutOfRange,
            ),
            (
                AppendError::UnexpectedAppendOffset { first_offset: 1, last_offset: 2, log_end_offset: 3 },
                ErrorCode::UnknownServerError,
            ),
            (AppendError::OffsetsOutOfOrder { base_offset: 1, previous_last_offset: 1 }, ErrorCode::UnknownServerError),
            (AppendError::NegativeTruncationOffset { offset: -1 }, ErrorCode::UnknownServerError),
            (AppendError::Storage(storage()), ErrorCode::KafkaStorageError),
        ];
        for (error, code) in cases {
            assert_eq!(error.error_code(), code, "{error}");
        }
        let read = ReadError::OffsetOutOfRange { offset: 1, log_start_offset: 2, log_end_offset: 3 };
        assert_eq!(read.error_code(), ErrorCode::OffsetOutOfRange);
        assert_eq!(ReadError::Storage(storage()).error_code(), ErrorCode::KafkaStorageError);
    }

    #[test]
    fn record_errors_are_exposed_for_the_produce_response() {
        let e = AppendError::InvalidRecord { message: "m".into(), record_errors: vec![(3, Some("no key".into()))] };
        assert_eq!(e.record_errors(), &[(3, Some("no key".to_string()))]);
        assert!(AppendError::UnsupportedMagic { magic: 0 }.record_errors().is_empty());
    }
}
