//! Legacy message sets, magic 0 and 1: each message carries its own offset,
//! size and CRC-32, and compression wraps a whole inner message set inside
//! the value of one outer message.

use bytes::{BufMut, Bytes};

use super::cursor::Cursor;
use super::set::{entry_magic, split_record_set};
use super::{RecordsError, TimestampType, LOG_OVERHEAD_BYTES, MAGIC_POSITION, MAGIC_V0, MAGIC_V1, NO_TIMESTAMP};
use crate::compression::{compress, decompress, Compression};
use crate::error::DecodeError;

/// CRC, magic, attributes and the key and value length fields.
const MESSAGE_LENGTH_MIN_V0: i32 = 14;
/// Magic 1 adds an i64 timestamp.
const MESSAGE_LENGTH_MIN_V1: i32 = 22;
const CRC_AT: usize = 12;
const ATTRIBUTE_CODEC_MASK: i8 = 0x07;
const ATTRIBUTE_TIMESTAMP_TYPE: i8 = 1 << 3;

/// One message exactly as stored, before any wrapper is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyEntry {
    pub offset: i64,
    pub crc: u32,
    pub magic: i8,
    pub attributes: i8,
    /// Present for magic 1 only.
    pub timestamp_ms: Option<i64>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
}

/// A logical message: an uncompressed message, or one opened out of a
/// compressed wrapper with its absolute offset and effective timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyMessage {
    pub offset: i64,
    pub magic: i8,
    /// Always create time for magic 0, which has no timestamps.
    pub timestamp_type: TimestampType,
    /// [`NO_TIMESTAMP`] for magic 0.
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
}

fn length_min(magic: i8) -> Result<i32, RecordsError> {
    match magic {
        MAGIC_V0 => Ok(MESSAGE_LENGTH_MIN_V0),
        MAGIC_V1 => Ok(MESSAGE_LENGTH_MIN_V1),
        _ => Err(RecordsError::UnsupportedMagic { magic }),
    }
}

/// Magic 0 knew gzip and snappy; magic 1 added lz4. Zstd needs magic 2.
fn check_codec_allowed(codec: Compression, magic: i8) -> Result<(), RecordsError> {
    let allowed = match codec {
        Compression::None | Compression::Gzip | Compression::Snappy => true,
        Compression::Lz4 => magic == MAGIC_V1,
        Compression::Zstd => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(RecordsError::CompressionNotAllowed { codec, magic })
    }
}

impl LegacyEntry {
    pub fn compression(&self) -> Result<Compression, RecordsError> {
        let codec = Compression::from_attributes(i16::from(self.attributes & ATTRIBUTE_CODEC_MASK))?;
        check_codec_allowed(codec, self.magic)?;
        Ok(codec)
    }

    /// The timestamp type bit exists from magic 1 on.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.magic >= MAGIC_V1 && self.attributes & ATTRIBUTE_TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
}

/// Parses exactly one legacy message, offset and size fields included, and
/// checks its size and CRC. A compressed wrapper's value is left compressed.
pub fn parse_legacy_entry(entry: &Bytes) -> Result<LegacyEntry, RecordsError> {
    let magic = entry_magic(entry)?;
    let length_min = length_min(magic)?;
    let mut cursor = Cursor::new(entry);
    let offset = cursor.read_i64()?;
    let length = cursor.read_i32()?;
    if length < length_min {
        return Err(RecordsError::LengthTooSmall { length, length_min });
    }
    let declared_bytes = usize::try_from(length)
        .ok()
        .and_then(|length| length.checked_add(LOG_OVERHEAD_BYTES))
        .ok_or(RecordsError::LengthTooSmall { length, length_min })?;
    if declared_bytes != entry.len() {
        return Err(RecordsError::SizeMismatch { declared_bytes, actual_bytes: entry.len() });
    }
    let crc = cursor.read_u32()?;
    let computed = crc32fast::hash(entry.get(MAGIC_POSITION..).unwrap_or_default());
    if computed != crc {
        return Err(RecordsError::CrcMismatch { stored: crc, computed });
    }
    let magic = cursor.read_i8()?;
    let attributes = cursor.read_i8()?;
    let timestamp_ms = if magic == MAGIC_V1 { Some(cursor.read_i64()?) } else { None };
    let key_length = cursor.read_i32()?;
    let key = cursor.take_nullable(key_length, "message key")?;
    let value_length = cursor.read_i32()?;
    let value = cursor.take_nullable(value_length, "message value")?;
    cursor.expect_end("legacy message")?;
    Ok(LegacyEntry { offset, crc, magic, attributes, timestamp_ms, key, value })
}

/// Decodes one legacy message into its logical messages: itself when
/// uncompressed, else the inner messages of the wrapper, decompressed into at
/// most `output_bytes_max` bytes.
pub fn decode_legacy_entry(entry: &Bytes, output_bytes_max: usize) -> Result<Vec<LegacyMessage>, RecordsError> {
    let mut budget_bytes = output_bytes_max;
    let mut messages = Vec::new();
    expand_entry(parse_legacy_entry(entry)?, &mut budget_bytes, &mut messages)?;
    Ok(messages)
}

/// Decodes a whole message set, which must end on a message boundary; trim a
/// fetch payload's partial tail with [`split_record_set`] first. All wrappers
/// together decompress into at most `output_bytes_max` bytes.
pub fn decode_message_set(message_set: &Bytes, output_bytes_max: usize) -> Result<Vec<LegacyMessage>, RecordsError> {
    let mut budget_bytes = output_bytes_max;
    let mut messages = Vec::new();
    for entry in split_whole(message_set.clone(), "legacy message set")? {
        expand_entry(parse_legacy_entry(&entry)?, &mut budget_bytes, &mut messages)?;
    }
    Ok(messages)
}

fn split_whole(message_set: Bytes, what: &'static str) -> Result<Vec<Bytes>, RecordsError> {
    let mut entries = split_record_set(message_set);
    let collected = entries.by_ref().collect::<Result<Vec<_>, _>>()?;
    match entries.remainder().len() {
        0 => Ok(collected),
        remaining => Err(DecodeError::TrailingBytes { message: what, remaining }.into()),
    }
}

fn expand_entry(
    entry: LegacyEntry,
    budget_bytes: &mut usize,
    messages: &mut Vec<LegacyMessage>,
) -> Result<(), RecordsError> {
    let codec = entry.compression()?;
    if codec == Compression::None {
        messages.push(LegacyMessage {
            offset: entry.offset,
            magic: entry.magic,
            timestamp_type: entry.timestamp_type(),
            timestamp_ms: entry.timestamp_ms.unwrap_or(NO_TIMESTAMP),
            key: entry.key,
            value: entry.value,
        });
        return Ok(());
    }
    let compressed = entry.value.as_ref().ok_or(RecordsError::NullWrapperValue)?;
    let inner_set = Bytes::from(decompress(codec, compressed, *budget_bytes)?);
    *budget_bytes = budget_bytes.saturating_sub(inner_set.len());
    let inner_entries =
        split_whole(inner_set, "inner message set")?.iter().map(parse_legacy_entry).collect::<Result<Vec<_>, _>>()?;
    let last_inner_offset = inner_entries.last().ok_or(RecordsError::EmptyWrapper)?.offset;
    // Magic 1 inner offsets count from the wrapper's, which is the last
    // inner message's absolute offset; magic 0 inner offsets are absolute.
    let base_offset = if entry.magic == MAGIC_V1 {
        entry.offset.checked_sub(last_inner_offset).ok_or(RecordsError::Overflow { what: "inner message offset" })?
    } else {
        0
    };
    let wrapper_timestamp_type = entry.timestamp_type();
    for inner in inner_entries {
        if inner.compression()? != Compression::None {
            return Err(RecordsError::NestedCompression);
        }
        if inner.magic != entry.magic {
            return Err(RecordsError::InnerMagicMismatch { wrapper: entry.magic, inner: inner.magic });
        }
        let offset =
            base_offset.checked_add(inner.offset).ok_or(RecordsError::Overflow { what: "inner message offset" })?;
        let timestamp_ms = match wrapper_timestamp_type {
            TimestampType::LogAppendTime => entry.timestamp_ms,
            TimestampType::CreateTime => inner.timestamp_ms,
        };
        messages.push(LegacyMessage {
            offset,
            magic: inner.magic,
            timestamp_type: wrapper_timestamp_type,
            timestamp_ms: timestamp_ms.unwrap_or(NO_TIMESTAMP),
            key: inner.key,
            value: inner.value,
        });
    }
    Ok(())
}

/// Encodes messages as a legacy message set.
///
/// Uncompressed, each message is written with its own magic, offset and
/// timestamp. Compressed, all must share one magic; they go into a single
/// wrapper at the last message's offset whose timestamp type is the first
/// message's and whose timestamp is the largest. As readers do, a
/// log-append-time wrapper gives every inner message the wrapper's timestamp.
pub fn encode_message_set(messages: &[LegacyMessage], compression: Compression) -> Result<Vec<u8>, RecordsError> {
    let mut out = Vec::new();
    if compression == Compression::None {
        for message in messages {
            let attributes = timestamp_type_bit(message.magic, message.timestamp_type);
            write_message(
                &mut out,
                message.offset,
                message.magic,
                attributes,
                message.timestamp_ms,
                message.key.as_deref(),
                message.value.as_deref(),
            )?;
        }
        return Ok(out);
    }
    let (first, last) = match messages {
        [first, .., last] => (first, last),
        [only] => (only, only),
        [] => return Err(RecordsError::EmptyWrapper),
    };
    let magic = first.magic;
    length_min(magic)?;
    check_codec_allowed(compression, magic)?;
    let mut inner_set = Vec::new();
    // As Kafka's builder does: no timestamp unless some message has a later one.
    let mut max_timestamp_ms = NO_TIMESTAMP;
    for message in messages {
        if message.magic != magic {
            return Err(RecordsError::MixedWrapperContents { first: magic, other: message.magic });
        }
        let inner_offset = if magic == MAGIC_V1 {
            message.offset.checked_sub(first.offset).ok_or(RecordsError::Overflow { what: "inner message offset" })?
        } else {
            message.offset
        };
        max_timestamp_ms = max_timestamp_ms.max(message.timestamp_ms);
        // The wrapper alone carries the timestamp type.
        write_message(
            &mut inner_set,
            inner_offset,
            magic,
            0,
            message.timestamp_ms,
            message.key.as_deref(),
            message.value.as_deref(),
        )?;
    }
    let compressed = compress(compression, &inner_set)?;
    let attributes = compression_bits(compression) | timestamp_type_bit(magic, first.timestamp_type);
    write_message(&mut out, last.offset, magic, attributes, max_timestamp_ms, None, Some(&compressed))?;
    Ok(out)
}

fn compression_bits(codec: Compression) -> i8 {
    // Codec ids are 0..=4, well inside an i8.
    i8::try_from(codec.id()).unwrap_or_default()
}

fn timestamp_type_bit(magic: i8, timestamp_type: TimestampType) -> i8 {
    match (magic, timestamp_type) {
        (MAGIC_V1, TimestampType::LogAppendTime) => ATTRIBUTE_TIMESTAMP_TYPE,
        _ => 0,
    }
}

fn write_message(
    out: &mut Vec<u8>,
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp_ms: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<(), RecordsError> {
    let length_min = length_min(magic)?;
    let payload_bytes = key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len);
    let length = usize::try_from(length_min)
        .ok()
        .and_then(|length_min| length_min.checked_add(payload_bytes))
        .and_then(|length| i32::try_from(length).ok())
        .ok_or(RecordsError::TooLarge { what: "legacy message", length: payload_bytes })?;
    let start = out.len();
    out.put_i64(offset);
    out.put_i32(length);
    // Filled in once the bytes it covers exist.
    out.put_u32(0);
    out.put_i8(magic);
    out.put_i8(attributes);
    if magic == MAGIC_V1 {
        out.put_i64(timestamp_ms);
    }
    put_nullable_i32(out, key, "message key")?;
    put_nullable_i32(out, value, "message value")?;
    let crc = crc32fast::hash(out.get(start + MAGIC_POSITION..).unwrap_or_default());
    if let Some(target) = out.get_mut(start + CRC_AT..start + CRC_AT + 4) {
        target.copy_from_slice(&crc.to_be_bytes());
    }
    Ok(())
}

fn put_nullable_i32(out: &mut Vec<u8>, bytes: Option<&[u8]>, what: &'static str) -> Result<(), RecordsError> {
    match bytes {
        None => out.put_i32(-1),
        Some(bytes) => {
            let length =
                i32::try_from(bytes.len()).map_err(|_| RecordsError::TooLarge { what, length: bytes.len() })?;
            out.put_i32(length);
            out.put_slice(bytes);
        }
    }
    Ok(())
}
