//! # gregor-protocol
//!
//! The Kafka wire protocol as plain data: every request and response message at
//! every version Gregor knows, the request and response headers, record batches
//! (magic 2) and legacy message sets (magic 0 and 1), compression codecs, and the
//! table of Kafka error codes.
//!
//! **Owns:** bytes in, typed values out, and back again; the per-API version
//! ranges and header versions; the error-code table.
//!
//! **Never:** I/O of any kind, tokio or any async runtime, logging set-up, clocks.
//! Every decoder returns a typed error on bad input and never panics.
//!
//! The message types under [`messages`] are generated from `protocol-specs/` by
//! `gregor-protocol-codegen` and checked in; do not edit them by hand.

pub mod codec;
pub mod compression;
pub mod error;
pub mod error_code;
pub mod frame;
pub mod generated;
pub mod records;
pub mod varint;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use codec::{Message, Request, Uuid, VersionRange, WriteBuf};
pub use compression::{Compression, CompressionError};
pub use error::{DecodeError, EncodeError};
pub use error_code::ErrorCode;
pub use generated::{ApiKey, RequestBody, ResponseBody};

/// The generated message types, by module (`messages::produce_request::...`) and by name.
pub use generated as messages;
