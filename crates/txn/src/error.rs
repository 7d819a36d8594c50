//! Errors of the txn crate that are not answers to a client (those are error codes in
//! the responses): records that cannot be encoded or decoded.

use gregor_protocol::{DecodeError, EncodeError};

#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    #[error("record key too short: {bytes} bytes")]
    KeyTooShort { bytes: usize },
    #[error("record value too short: {bytes} bytes")]
    ValueTooShort { bytes: usize },
    #[error("unknown __transaction_state key version {version}")]
    UnknownKeyVersion { version: i16 },
    #[error("unknown transaction state byte {state}")]
    UnknownState { state: i8 },
    #[error("decoding a __transaction_state record: {0}")]
    Decode(#[from] DecodeError),
    #[error("encoding a __transaction_state record: {0}")]
    Encode(#[from] EncodeError),
}
