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
//!
//! Rules every message follows:
//! - `decode` reads from a `bytes::Bytes` cursor: `bytes` and `records` fields are
//!   slices of the frame, never copies. `encode` writes into a [`WriteBuf`], which
//!   keeps large byte strings (record batches) as shared chunks for a vectored write.
//! - Encoding a field at a version that lacks it is an [`EncodeError`] when the value
//!   is not the default, except for fields the spec marks `ignorable`, which Kafka
//!   defines as safe to drop (throttle times, error messages of older versions).
//! - Tagged fields the code does not know are kept and written back unchanged.
//! - Length prefixes are checked against the remaining input before anything is
//!   allocated, and decompression takes an output bound, so forged lengths and
//!   compression bombs cannot make the caller allocate without limit.

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
