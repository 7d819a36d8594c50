//! Errors of the group crate that are not answers to a client (those are error codes in
//! the responses): records that cannot be encoded or decoded.

use gregor_protocol::{DecodeError, EncodeError};

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("record key too short: {bytes} bytes")]
    KeyTooShort { bytes: usize },
    #[error("record value too short: {bytes} bytes")]
    ValueTooShort { bytes: usize },
    #[error("decoding a __consumer_offsets record: {0}")]
    Decode(#[from] DecodeError),
    #[error("encoding a __consumer_offsets record: {0}")]
    Encode(#[from] EncodeError),
}
