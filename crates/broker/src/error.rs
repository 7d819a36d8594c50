//! The broker's own errors, and the one place where subsystem errors become wire
//! error codes.

use gregor_protocol::ErrorCode;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("configuration: {0}")]
    Config(#[from] gregor_config::ConfigError),
    #[error("storage: {0}")]
    Storage(#[from] gregor_storage::StorageError),
    #[error("append: {0}")]
    Append(#[from] gregor_storage::AppendError),
    #[error("read: {0}")]
    Read(#[from] gregor_storage::ReadError),
    #[error("metadata: {0}")]
    Metadata(#[from] gregor_metadata::MetadataError),
    #[error("metadata replay: {0}")]
    Replay(#[from] gregor_metadata::ReplayError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot listen on {address}: {source}")]
    Bind { address: String, source: std::io::Error },
    #[error("{path}: {reason}")]
    MetaProperties { path: PathBuf, reason: String },
    #[error("the metadata log is offline")]
    MetadataLogOffline,
    #[error(
        "the metadata log {path} is damaged at offset {offset} ({reason}); it is the only record of the \
         cluster's topics, so it is neither truncated nor rebuilt: restore the directory from a copy, or move it \
         aside to start with no topics (their partition directories are then kept aside as -stray)"
    )]
    MetadataLogCorrupt { path: PathBuf, offset: i64, reason: String },
    #[error("{}", message.clone().unwrap_or_else(|| code.message().to_string()))]
    Controller { code: ErrorCode, message: Option<String> },
    #[error("a background task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// A decision reached a node that is not the active controller.
    #[error("this node is not the active controller (the active controller is {leader:?})")]
    NotController { leader: Option<i32> },
    #[error("metadata quorum: {0}")]
    Quorum(String),
    #[error("{0}")]
    Cluster(String),
}

impl BrokerError {
    /// The wire error code a client sees when a request fails with this error.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            BrokerError::Storage(error) => error.error_code(),
            BrokerError::Append(error) => error.error_code(),
            BrokerError::Read(error) => error.error_code(),
            BrokerError::Metadata(_)
            | BrokerError::Replay(_)
            | BrokerError::MetadataLogOffline
            | BrokerError::MetadataLogCorrupt { .. } => ErrorCode::KafkaStorageError,
            BrokerError::Config(_) => ErrorCode::InvalidConfig,
            BrokerError::Io { .. } | BrokerError::Bind { .. } | BrokerError::MetaProperties { .. } => {
                ErrorCode::UnknownServerError
            }
            BrokerError::Join(_) => ErrorCode::UnknownServerError,
            BrokerError::Controller { code, .. } => *code,
            BrokerError::NotController { .. } => ErrorCode::NotController,
            BrokerError::Quorum(_) => ErrorCode::RequestTimedOut,
            BrokerError::Cluster(_) => ErrorCode::UnknownServerError,
        }
    }

    /// A write failed because the disk or the quota is full.
    pub fn is_no_space(&self) -> bool {
        match self {
            BrokerError::Storage(error) => error.is_no_space(),
            BrokerError::Append(error) => error.is_no_space(),
            _ => false,
        }
    }
}
