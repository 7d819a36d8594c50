//! The primitives of the wire format and the traits the generated messages
//! implement.
//!
//! Decoding reads from a [`Bytes`] cursor, so `bytes` and `records` fields come out
//! as slices of the input frame without a copy. Encoding writes into a
//! [`WriteBuf`], which keeps large `Bytes` values (record batches) as separate
//! chunks instead of copying them, ready for a vectored write.

use crate::error::{DecodeError, EncodeError};
use crate::varint;
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Byte strings at least this long are appended to a [`WriteBuf`] by reference.
pub const SHARED_CHUNK_BYTES_MIN: usize = 1024;

/// An inclusive range of message versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionRange {
    pub min: i16,
    pub max: i16,
}

impl VersionRange {
    pub const fn new(min: i16, max: i16) -> Self {
        Self { min, max }
    }

    pub const fn contains(&self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }

    pub const fn is_empty(&self) -> bool {
        self.min > self.max
    }
}

/// A 128-bit UUID as Kafka sends it: 16 bytes, most significant first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// Kafka's "no id" value.
    pub const ZERO: Uuid = Uuid([0; 16]);

    pub fn from_u128(value: u128) -> Self {
        Uuid(value.to_be_bytes())
    }

    pub fn as_u128(&self) -> u128 {
        u128::from_be_bytes(self.0)
    }
}

impl std::fmt::Display for Uuid {
    /// Kafka prints topic ids in URL-safe base64 without padding.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bits = self.as_u128();
        // 22 characters of 6 bits cover 132 bits: the value shifted left by 4.
        for index in 0..22 {
            let shift = 122 - 6 * index;
            let sextet = if shift >= 0 { (bits >> shift) & 0x3f } else { (bits << -shift) & 0x3f };
            f.write_str(std::str::from_utf8(&[ALPHABET[sextet as usize]]).map_err(|_| std::fmt::Error)?)?;
        }
        Ok(())
    }
}

/// A tagged field this code does not know, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTaggedField {
    pub tag: u32,
    pub data: Bytes,
}

/// An output buffer that shares large byte strings instead of copying them.
#[derive(Debug, Default)]
pub struct WriteBuf {
    chunks: Vec<Bytes>,
    current: BytesMut,
    len: usize,
}

impl WriteBuf {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(bytes: usize) -> Self {
        Self { chunks: Vec::new(), current: BytesMut::with_capacity(bytes), len: 0 }
    }

    /// Total bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn put_slice(&mut self, bytes: &[u8]) {
        self.current.extend_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Appends `bytes`, by reference when it is large enough to be worth a chunk.
    pub fn put_shared(&mut self, bytes: &Bytes) {
        if bytes.len() < SHARED_CHUNK_BYTES_MIN {
            self.put_slice(bytes);
            return;
        }
        self.flush_current();
        self.len += bytes.len();
        self.chunks.push(bytes.clone());
    }

    /// Moves everything of `other` to the end of this buffer without copying its chunks.
    pub fn append(&mut self, other: WriteBuf) {
        let WriteBuf { chunks, current, len } = other;
        if chunks.is_empty() {
            self.current.extend_from_slice(&current);
        } else {
            self.flush_current();
            self.chunks.extend(chunks);
            if !current.is_empty() {
                self.chunks.push(current.freeze());
            }
        }
        self.len += len;
    }

    fn flush_current(&mut self) {
        if !self.current.is_empty() {
            let full = std::mem::take(&mut self.current);
            self.chunks.push(full.freeze());
        }
    }

    /// The written bytes as a list of chunks, for a vectored write.
    pub fn into_chunks(mut self) -> Vec<Bytes> {
        self.flush_current();
        self.chunks
    }

    /// The written bytes as one contiguous buffer (copies when there are several chunks).
    pub fn freeze(mut self) -> Bytes {
        if self.chunks.is_empty() {
            return self.current.freeze();
        }
        self.flush_current();
        if self.chunks.len() == 1 {
            return self.chunks.pop().unwrap_or_default();
        }
        let mut joined = BytesMut::with_capacity(self.len);
        for chunk in &self.chunks {
            joined.extend_from_slice(chunk);
        }
        joined.freeze()
    }

    pub fn to_vec(self) -> Vec<u8> {
        self.freeze().to_vec()
    }
}

// WriteBuf is a BufMut so the varint writers and record code can use it directly.
unsafe impl BufMut for WriteBuf {
    fn remaining_mut(&self) -> usize {
        usize::MAX - self.len
    }

    unsafe fn advance_mut(&mut self, count: usize) {
        // SAFETY: forwarded to BytesMut, whose contract the caller upholds.
        unsafe { self.current.advance_mut(count) };
        self.len += count;
    }

    fn chunk_mut(&mut self) -> &mut bytes::buf::UninitSlice {
        if self.current.capacity() == self.current.len() {
            self.current.reserve(64);
        }
        self.current.chunk_mut()
    }
}

fn eof(needed: usize, buf: &Bytes) -> DecodeError {
    DecodeError::UnexpectedEof { needed, remaining: buf.remaining() }
}

/// Takes exactly `len` bytes off the front of `buf`, without copying.
pub fn take_bytes(buf: &mut Bytes, len: usize) -> Result<Bytes, DecodeError> {
    if buf.len() < len {
        return Err(eof(len, buf));
    }
    Ok(buf.split_to(len))
}

pub fn read_uvarint(buf: &mut Bytes) -> Result<u32, DecodeError> {
    let (value, len) = varint::read_uvarint(buf)?;
    buf.advance(len);
    Ok(value)
}

pub fn read_varint(buf: &mut Bytes) -> Result<i32, DecodeError> {
    let (value, len) = varint::read_varint(buf)?;
    buf.advance(len);
    Ok(value)
}

pub fn read_varlong(buf: &mut Bytes) -> Result<i64, DecodeError> {
    let (value, len) = varint::read_varlong(buf)?;
    buf.advance(len);
    Ok(value)
}

/// Reads one tagged field's tag and data.
pub fn read_tagged_field(buf: &mut Bytes) -> Result<(u32, Bytes), DecodeError> {
    let tag = read_uvarint(buf)?;
    let size = read_uvarint(buf)? as usize;
    Ok((tag, take_bytes(buf, size)?))
}

/// Reads a length prefix: i16/i32 when `wide`, or compact (uvarint of length + 1).
/// `None` means null. The length is checked against the remaining input so a
/// forged length cannot make the decoder allocate.
fn read_length(buf: &mut Bytes, flexible: bool, wide: bool, what: &'static str) -> Result<Option<usize>, DecodeError> {
    let length: i64 = if flexible {
        i64::from(read_uvarint(buf)?) - 1
    } else if wide {
        i64::from(i32::decode_wire(buf, 0, false)?)
    } else {
        i64::from(i16::decode_wire(buf, 0, false)?)
    };
    if length < -1 {
        return Err(DecodeError::InvalidLength { what, length });
    }
    if length == -1 {
        return Ok(None);
    }
    let length = length as usize;
    if length > buf.remaining() {
        return Err(DecodeError::UnexpectedEof { needed: length, remaining: buf.remaining() });
    }
    Ok(Some(length))
}

fn write_length(
    buf: &mut WriteBuf,
    length: Option<usize>,
    flexible: bool,
    wide: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    let too_long = |length| EncodeError::TooLong { what, length };
    match (length, flexible) {
        (None, true) => buf.put_u8(0),
        (Some(len), true) => {
            let value = u32::try_from(len).ok().and_then(|v| v.checked_add(1)).ok_or_else(|| too_long(len))?;
            varint::put_uvarint(buf, value);
        }
        (None, false) if wide => buf.put_i32(-1),
        (None, false) => buf.put_i16(-1),
        (Some(len), false) if wide => buf.put_i32(i32::try_from(len).map_err(|_| too_long(len))?),
        (Some(len), false) => buf.put_i16(i16::try_from(len).map_err(|_| too_long(len))?),
    }
    Ok(())
}

/// A value with a wire encoding at a given message version.
pub trait Wire: Sized {
    fn encode_wire(&self, buf: &mut WriteBuf, version: i16, flexible: bool) -> Result<(), EncodeError>;
    fn decode_wire(buf: &mut Bytes, version: i16, flexible: bool) -> Result<Self, DecodeError>;
}

/// A value that can also be null on the wire. The default methods are those of
/// structs, which carry a one-byte presence marker (-1 null, 1 present).
pub trait NullableWire: Wire {
    fn encode_null(buf: &mut WriteBuf, _flexible: bool) -> Result<(), EncodeError> {
        buf.put_i8(-1);
        Ok(())
    }

    fn encode_present(&self, buf: &mut WriteBuf, version: i16, flexible: bool) -> Result<(), EncodeError> {
        buf.put_i8(1);
        self.encode_wire(buf, version, flexible)
    }

    fn decode_nullable(buf: &mut Bytes, version: i16, flexible: bool) -> Result<Option<Self>, DecodeError> {
        if i8::decode_wire(buf, version, false)? < 0 {
            return Ok(None);
        }
        Ok(Some(Self::decode_wire(buf, version, flexible)?))
    }
}

/// Encodes an optional value in a version where the field is nullable.
pub fn encode_nullable<T: NullableWire>(
    value: &Option<T>,
    buf: &mut WriteBuf,
    version: i16,
    flexible: bool,
) -> Result<(), EncodeError> {
    match value {
        Some(value) => value.encode_present(buf, version, flexible),
        None => T::encode_null(buf, flexible),
    }
}

macro_rules! fixed_width {
    ($($ty:ty, $put:ident, $get:ident;)*) => {$(
        impl Wire for $ty {
            fn encode_wire(&self, buf: &mut WriteBuf, _version: i16, _flexible: bool) -> Result<(), EncodeError> {
                buf.$put(*self);
                Ok(())
            }

            fn decode_wire(buf: &mut Bytes, _version: i16, _flexible: bool) -> Result<Self, DecodeError> {
                const WIDTH: usize = std::mem::size_of::<$ty>();
                if buf.remaining() < WIDTH {
                    return Err(eof(WIDTH, buf));
                }
                Ok(buf.$get())
            }
        }
    )*};
}

fixed_width! {
    i8, put_i8, get_i8;
    i16, put_i16, get_i16;
    u16, put_u16, get_u16;
    i32, put_i32, get_i32;
    u32, put_u32, get_u32;
    i64, put_i64, get_i64;
    f64, put_f64, get_f64;
}

impl Wire for bool {
    fn encode_wire(&self, buf: &mut WriteBuf, _version: i16, _flexible: bool) -> Result<(), EncodeError> {
        buf.put_u8(u8::from(*self));
        Ok(())
    }

    fn decode_wire(buf: &mut Bytes, version: i16, flexible: bool) -> Result<Self, DecodeError> {
        // Kafka reads any non-zero byte as true.
        Ok(i8::decode_wire(buf, version, flexible)? != 0)
    }
}

impl Wire for Uuid {
    fn encode_wire(&self, buf: &mut WriteBuf, _version: i16, _flexible: bool) -> Result<(), EncodeError> {
        buf.put_slice(&self.0);
        Ok(())
    }

    fn decode_wire(buf: &mut Bytes, _version: i16, _flexible: bool) -> Result<Self, DecodeError> {
        let mut raw = [0u8; 16];
        if buf.remaining() < raw.len() {
            return Err(eof(raw.len(), buf));
        }
        buf.copy_to_slice(&mut raw);
        Ok(Uuid(raw))
    }
}

impl Wire for String {
    fn encode_wire(&self, buf: &mut WriteBuf, _version: i16, flexible: bool) -> Result<(), EncodeError> {
        write_length(buf, Some(self.len()), flexible, false, "string")?;
        buf.put_slice(self.as_bytes());
        Ok(())
    }

    fn decode_wire(buf: &mut Bytes, version: i16, flexible: bool) -> Result<Self, DecodeError> {
        Self::decode_nullable(buf, version, flexible)?
            .ok_or(DecodeError::InvalidLength { what: "non-nullable string", length: -1 })
    }
}

impl NullableWire for String {
    fn encode_null(buf: &mut WriteBuf, flexible: bool) -> Result<(), EncodeError> {
        write_length(buf, None, flexible, false, "string")
    }

    fn encode_present(&self, buf: &mut WriteBuf, version: i16, flexible: bool) -> Result<(), EncodeError> {
        self.encode_wire(buf, version, flexible)
    }

    fn decode_nullable(buf: &mut Bytes, _version: i16, flexible: bool) -> Result<Option<Self>, DecodeError> {
        let Some(len) = read_length(buf, flexible, false, "string")? else {
            return Ok(None);
        };
        let raw = buf.split_to(len);
        String::from_utf8(raw.to_vec()).map(Some).map_err(|_| DecodeError::InvalidUtf8)
    }
}

impl Wire for Bytes {
    fn encode_wire(&self, buf: &mut WriteBuf, _version: i16, flexible: bool) -> Result<(), EncodeError> {
        write_length(buf, Some(self.len()), flexible, true, "bytes")?;
        buf.put_shared(self);
        Ok(())
    }

    fn decode_wire(buf: &mut Bytes, version: i16, flexible: bool) -> Result<Self, DecodeError> {
        Self::decode_nullable(buf, version, flexible)?
            .ok_or(DecodeError::InvalidLength { what: "non-nullable bytes", length: -1 })
    }
}

impl NullableWire for Bytes {
    fn encode_null(buf: &mut WriteBuf, flexible: bool) -> Result<(), EncodeError> {
        write_length(buf, None, flexible, true, "bytes")
    }

    fn encode_present(&self, buf: &mut WriteBuf, version: i16, flexible: bool) -> Result<(), EncodeError> {
        self.encode_wire(buf, version, flexible)
    }

    fn decode_nullable(buf: &mut Bytes, _version: i16, flexible: bool) -> Result<Option<Self>, DecodeError> {
        match read_length(buf, flexible, true, "bytes")? {
            Some(len) => Ok(Some(buf.split_to(len))),
            None => Ok(None),
        }
    }
}

impl<T: Wire> Wire for Vec<T> {
    fn encode_wire(&self, buf: &mut WriteBuf, version: i16, flexible: bool) -> Result<(), EncodeError> {
        write_length(buf, Some(self.len()), flexible, true, "array")?;
        for element in self {
            element.encode_wire(buf, version, flexible)?;
        }
        Ok(())
    }

    fn decode_wire(buf: &mut Bytes, version: i16, flexible: bool) -> Result<Self, DecodeError> {
        Self::decode_nullable(buf, version, flexible)?
            .ok_or(DecodeError::InvalidLength { what: "non-nullable array", length: -1 })
    }
}

impl<T: Wire> NullableWire for Vec<T> {
    fn encode_null(buf: &mut WriteBuf, flexible: bool) -> Result<(), EncodeError> {
        write_length(buf, None, flexible, true, "array")
    }

    fn encode_present(&self, buf: &mut WriteBuf, version: i16, flexible: bool) -> Result<(), EncodeError> {
        self.encode_wire(buf, version, flexible)
    }

    fn decode_nullable(buf: &mut Bytes, version: i16, flexible: bool) -> Result<Option<Self>, DecodeError> {
        // Every element takes at least one byte, so the count is bounded by the
        // remaining input (read_length checks that) before anything is allocated.
        let Some(count) = read_length(buf, flexible, true, "array")? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(T::decode_wire(buf, version, flexible)?);
        }
        Ok(Some(out))
    }
}

/// Collects the known tagged fields of a struct and writes them, merged in tag
/// order with the unknown ones, as the struct's tagged-field section.
#[derive(Default)]
pub struct TaggedFieldsWriter {
    known: Vec<(u32, WriteBuf)>,
}

impl TaggedFieldsWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, tag: u32, data: WriteBuf) {
        self.known.push((tag, data));
    }

    pub fn finish(self, buf: &mut WriteBuf, unknown: &[RawTaggedField]) -> Result<(), EncodeError> {
        let count = self.known.len() + unknown.len();
        let count = u32::try_from(count).map_err(|_| EncodeError::TooLong { what: "tagged fields", length: count })?;
        varint::put_uvarint(buf, count);
        let mut unknown_sorted: Vec<&RawTaggedField> = unknown.iter().collect();
        unknown_sorted.sort_by_key(|field| field.tag);
        let mut unknown_iter = unknown_sorted.into_iter().peekable();
        for (tag, data) in self.known {
            while let Some(raw) = unknown_iter.next_if(|raw| raw.tag < tag) {
                write_raw(buf, raw)?;
            }
            varint::put_uvarint(buf, tag);
            let len = data.len();
            varint::put_uvarint(
                buf,
                u32::try_from(len).map_err(|_| EncodeError::TooLong { what: "tagged field", length: len })?,
            );
            buf.append(data);
        }
        for raw in unknown_iter {
            write_raw(buf, raw)?;
        }
        Ok(())
    }
}

fn write_raw(buf: &mut WriteBuf, raw: &RawTaggedField) -> Result<(), EncodeError> {
    varint::put_uvarint(buf, raw.tag);
    let len = raw.data.len();
    varint::put_uvarint(
        buf,
        u32::try_from(len).map_err(|_| EncodeError::TooLong { what: "tagged field", length: len })?,
    );
    buf.put_shared(&raw.data);
    Ok(())
}

/// A top-level message: a request, response, header or stored record.
pub trait Message: Wire + Default + Clone + PartialEq + std::fmt::Debug {
    const NAME: &'static str;
    /// The API key of a request or response, the record type of a metadata record.
    const API_KEY: Option<i16>;
    const VERSIONS: VersionRange;
    const FLEXIBLE_VERSIONS: VersionRange;

    /// Encodes the message at `version`, which must be one of its versions.
    fn encode(&self, buf: &mut WriteBuf, version: i16) -> Result<(), EncodeError> {
        if !Self::VERSIONS.contains(version) {
            return Err(EncodeError::UnsupportedVersion { message: Self::NAME, version });
        }
        self.encode_wire(buf, version, Self::FLEXIBLE_VERSIONS.contains(version))
    }

    /// Decodes a message of `version` from the front of `buf`.
    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError> {
        if !Self::VERSIONS.contains(version) {
            return Err(DecodeError::UnsupportedVersion { message: Self::NAME, version });
        }
        Self::decode_wire(buf, version, Self::FLEXIBLE_VERSIONS.contains(version))
    }

    /// Encodes into one contiguous buffer.
    fn encode_to_bytes(&self, version: i16) -> Result<Bytes, EncodeError> {
        let mut buf = WriteBuf::new();
        self.encode(&mut buf, version)?;
        Ok(buf.freeze())
    }
}

/// A request body, tied to its API key and response type.
pub trait Request: Message {
    const KEY: crate::ApiKey;
    type Response: Message;
}
