//! One record inside a v2 batch: a varint length, then attributes, deltas
//! against the batch's base offset and timestamp, key, value and headers.

use bytes::{BufMut, Bytes};

use super::cursor::Cursor;
use super::RecordsError;
use crate::error::DecodeError;
use crate::varint::{put_varint, put_varlong, varint_len, varlong_len};

/// The smallest possible record: a one-byte length, then attributes, both
/// deltas, both null lengths and the header count at one byte each.
pub(crate) const RECORD_BYTES_MIN: usize = 7;
/// A header with an empty key and a null value.
const HEADER_BYTES_MIN: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Unused by Kafka so far; kept so a batch round-trips byte for byte.
    pub attributes: i8,
    /// Milliseconds after the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Offsets after the batch's base offset.
    pub offset_delta: i32,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub key: String,
    pub value: Option<Bytes>,
}

impl Record {
    /// Reads one record from the front of `cursor`, slicing key, value and
    /// header values out of the cursor's buffer without copying.
    pub(crate) fn decode_from(cursor: &mut Cursor<'_>) -> Result<Self, RecordsError> {
        let length = cursor.read_varint()?;
        let body_bytes = usize::try_from(length)
            .map_err(|_| DecodeError::InvalidLength { what: "record", length: i64::from(length) })?;
        let body = cursor.take(body_bytes)?;
        let mut body_cursor = Cursor::new(&body);
        let record = Self::decode_body(&mut body_cursor)?;
        if body_cursor.remaining() != 0 {
            return Err(RecordsError::RecordSizeMismatch {
                declared_bytes: body_bytes,
                used_bytes: body_cursor.position(),
            });
        }
        Ok(record)
    }

    fn decode_body(cursor: &mut Cursor<'_>) -> Result<Self, RecordsError> {
        let attributes = cursor.read_i8()?;
        let timestamp_delta = cursor.read_varlong()?;
        let offset_delta = cursor.read_varint()?;
        let key_length = cursor.read_varint()?;
        let key = cursor.take_nullable(key_length, "record key")?;
        let value_length = cursor.read_varint()?;
        let value = cursor.take_nullable(value_length, "record value")?;
        let header_count = cursor.read_varint()?;
        let header_count = usize::try_from(header_count)
            .map_err(|_| DecodeError::InvalidLength { what: "record header count", length: i64::from(header_count) })?;
        // The count is untrusted; the bytes left bound how many can exist.
        let mut headers = Vec::with_capacity(header_count.min(cursor.remaining() / HEADER_BYTES_MIN));
        for _ in 0..header_count {
            headers.push(RecordHeader::decode_from(cursor)?);
        }
        Ok(Self { attributes, timestamp_delta, offset_delta, key, value, headers })
    }

    /// The length of the record after its own length prefix.
    pub fn body_len_bytes(&self) -> Result<usize, RecordsError> {
        let mut total = 1 + varlong_len(self.timestamp_delta) + varint_len(self.offset_delta);
        total += nullable_len_bytes(self.key.as_deref(), "record key")?;
        total += nullable_len_bytes(self.value.as_deref(), "record value")?;
        total += varint_len(length_as_i32(self.headers.len(), "record header count")?);
        for header in &self.headers {
            total += length_prefixed_len_bytes(header.key.len(), "record header key")?;
            total += nullable_len_bytes(header.value.as_deref(), "record header value")?;
        }
        Ok(total)
    }

    /// The full encoded length, length prefix included.
    pub fn encoded_len_bytes(&self) -> Result<usize, RecordsError> {
        let body_bytes = self.body_len_bytes()?;
        Ok(varint_len(length_as_i32(body_bytes, "record")?) + body_bytes)
    }

    pub fn encode(&self, out: &mut impl BufMut) -> Result<(), RecordsError> {
        let body_bytes = self.body_len_bytes()?;
        put_varint(out, length_as_i32(body_bytes, "record")?);
        out.put_i8(self.attributes);
        put_varlong(out, self.timestamp_delta);
        put_varint(out, self.offset_delta);
        put_nullable(out, self.key.as_deref(), "record key")?;
        put_nullable(out, self.value.as_deref(), "record value")?;
        put_varint(out, length_as_i32(self.headers.len(), "record header count")?);
        for header in &self.headers {
            put_varint(out, length_as_i32(header.key.len(), "record header key")?);
            out.put_slice(header.key.as_bytes());
            put_nullable(out, header.value.as_deref(), "record header value")?;
        }
        Ok(())
    }
}

impl RecordHeader {
    fn decode_from(cursor: &mut Cursor<'_>) -> Result<Self, RecordsError> {
        let key_length = cursor.read_varint()?;
        // Header keys are strings and may not be null.
        let key_bytes = usize::try_from(key_length)
            .map_err(|_| DecodeError::InvalidLength { what: "record header key", length: i64::from(key_length) })?;
        let key = String::from_utf8(cursor.take(key_bytes)?.to_vec()).map_err(|_| DecodeError::InvalidUtf8)?;
        let value_length = cursor.read_varint()?;
        let value = cursor.take_nullable(value_length, "record header value")?;
        Ok(Self { key, value })
    }
}

fn length_as_i32(length: usize, what: &'static str) -> Result<i32, RecordsError> {
    i32::try_from(length).map_err(|_| RecordsError::TooLarge { what, length })
}

fn length_prefixed_len_bytes(length: usize, what: &'static str) -> Result<usize, RecordsError> {
    Ok(varint_len(length_as_i32(length, what)?) + length)
}

fn nullable_len_bytes(bytes: Option<&[u8]>, what: &'static str) -> Result<usize, RecordsError> {
    match bytes {
        None => Ok(varint_len(-1)),
        Some(bytes) => length_prefixed_len_bytes(bytes.len(), what),
    }
}

fn put_nullable(out: &mut impl BufMut, bytes: Option<&[u8]>, what: &'static str) -> Result<(), RecordsError> {
    match bytes {
        None => put_varint(out, -1),
        Some(bytes) => {
            put_varint(out, length_as_i32(bytes.len(), what)?);
            out.put_slice(bytes);
        }
    }
    Ok(())
}

/// Decodes exactly `count` records that must fill `payload` completely.
pub(crate) fn decode_records(payload: &Bytes, count: usize) -> Result<Vec<Record>, RecordsError> {
    let mut cursor = Cursor::new(payload);
    // The count is untrusted; the bytes present bound how many can exist.
    let mut records = Vec::with_capacity(count.min(payload.len() / RECORD_BYTES_MIN));
    for _ in 0..count {
        records.push(Record::decode_from(&mut cursor)?);
    }
    cursor.expect_end("records of a batch")?;
    Ok(records)
}
