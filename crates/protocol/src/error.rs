//! Typed errors of decoding and encoding. Every failure on bad input is one of
//! these; no decoder panics.

/// Why bytes could not be decoded into a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unexpected end of input: needed {needed} bytes, {remaining} remaining")]
    UnexpectedEof { needed: usize, remaining: usize },
    #[error("varint longer than {bytes_max} bytes")]
    VarintTooLong { bytes_max: usize },
    #[error("invalid length {length} for {what}")]
    InvalidLength { what: &'static str, length: i64 },
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("null for field {field} of {message}, not nullable at version {version}")]
    UnexpectedNull {
        message: &'static str,
        field: &'static str,
        version: i16,
    },
    #[error("{message} has no version {version}")]
    UnsupportedVersion { message: &'static str, version: i16 },
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("{remaining} bytes left over after {message}")]
    TrailingBytes {
        message: &'static str,
        remaining: usize,
    },
}

/// Why a value could not be encoded at the requested version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{message} has no version {version}")]
    UnsupportedVersion { message: &'static str, version: i16 },
    #[error("field {field} of {message} does not exist at version {version} but has a non-default value")]
    FieldNotInVersion {
        message: &'static str,
        field: &'static str,
        version: i16,
    },
    #[error("field {field} of {message} is null but not nullable at version {version}")]
    NullNotAllowed {
        message: &'static str,
        field: &'static str,
        version: i16,
    },
    #[error("{what} of length {length} does not fit its length prefix")]
    TooLong { what: &'static str, length: usize },
}
