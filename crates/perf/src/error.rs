//! The one error type of the load tool.

use gregor_protocol::records::RecordsError;
use gregor_protocol::{ApiKey, DecodeError, EncodeError, ErrorCode};

/// Why a load run, the sink or a ceiling measurement stopped.
#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    #[error("invalid arguments: {0}")]
    Usage(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("encoding {api:?} v{version}: {source}")]
    Encode {
        api: ApiKey,
        version: i16,
        #[source]
        source: EncodeError,
    },
    #[error("decoding a {api:?} v{version} response: {source}")]
    Decode {
        api: ApiKey,
        version: i16,
        #[source]
        source: DecodeError,
    },
    #[error("record batch: {0}")]
    Records(#[from] RecordsError),
    #[error("{address} serves {api:?} only in versions {broker_min}-{broker_max}, this tool speaks {client_min}-{client_max}")]
    UnsupportedVersion {
        address: String,
        api: ApiKey,
        broker_min: i16,
        broker_max: i16,
        client_min: i16,
        client_max: i16,
    },
    #[error("{address} does not serve {api:?}")]
    UnsupportedApi { address: String, api: ApiKey },
    #[error("{what}: {}", error_name(*.code))]
    Broker { what: String, code: i16 },
    #[error("{address} broke the protocol: {detail}")]
    Protocol { address: String, detail: String },
    #[error("internal error: {0}")]
    Internal(String),
    #[error("{what} took longer than {timeout_ms} ms")]
    Timeout { what: String, timeout_ms: u64 },
}

impl PerfError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        PerfError::Io { context: context.into(), source }
    }

    pub(crate) fn protocol(address: &str, detail: impl Into<String>) -> Self {
        PerfError::Protocol { address: address.to_owned(), detail: detail.into() }
    }

    pub(crate) fn broker(what: impl Into<String>, code: i16) -> Self {
        PerfError::Broker { what: what.into(), code }
    }
}

/// Kafka's name of a wire error code, or the number when the table lacks it.
pub fn error_name(code: i16) -> String {
    match ErrorCode::from_code(code) {
        Some(known) => format!("{} ({code})", known.name()),
        None => format!("error code {code}"),
    }
}
