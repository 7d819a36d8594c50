//! A forward reader over a `Bytes` buffer whose byte-string reads return
//! slices of the same allocation rather than copies.

use bytes::Bytes;

use super::RecordsError;
use crate::error::DecodeError;
use crate::varint::{read_varint, read_varlong};

pub(crate) struct Cursor<'a> {
    bytes: &'a Bytes,
    position: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a Bytes) -> Self {
        Self { bytes, position: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.position
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    fn rest(&self) -> &[u8] {
        self.bytes.get(self.position..).unwrap_or_default()
    }

    pub(crate) fn read_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let remaining = self.remaining();
        let array =
            self.rest().first_chunk::<N>().copied().ok_or(DecodeError::UnexpectedEof { needed: N, remaining })?;
        self.position += N;
        Ok(array)
    }

    pub(crate) fn read_i8(&mut self) -> Result<i8, DecodeError> {
        self.read_array().map(i8::from_be_bytes)
    }

    pub(crate) fn read_i32(&mut self) -> Result<i32, DecodeError> {
        self.read_array().map(i32::from_be_bytes)
    }

    pub(crate) fn read_u32(&mut self) -> Result<u32, DecodeError> {
        self.read_array().map(u32::from_be_bytes)
    }

    pub(crate) fn read_i64(&mut self) -> Result<i64, DecodeError> {
        self.read_array().map(i64::from_be_bytes)
    }

    pub(crate) fn read_varint(&mut self) -> Result<i32, DecodeError> {
        let (value, used_bytes) = read_varint(self.rest())?;
        self.position += used_bytes;
        Ok(value)
    }

    pub(crate) fn read_varlong(&mut self) -> Result<i64, DecodeError> {
        let (value, used_bytes) = read_varlong(self.rest())?;
        self.position += used_bytes;
        Ok(value)
    }

    pub(crate) fn take(&mut self, length: usize) -> Result<Bytes, DecodeError> {
        let remaining = self.remaining();
        if length > remaining {
            return Err(DecodeError::UnexpectedEof { needed: length, remaining });
        }
        let slice = self.bytes.slice(self.position..self.position + length);
        self.position += length;
        Ok(slice)
    }

    /// Reads the bytes behind an already-read length where -1 means null.
    pub(crate) fn take_nullable(&mut self, length: i32, what: &'static str) -> Result<Option<Bytes>, RecordsError> {
        if length == -1 {
            return Ok(None);
        }
        let length_bytes =
            usize::try_from(length).map_err(|_| DecodeError::InvalidLength { what, length: i64::from(length) })?;
        Ok(Some(self.take(length_bytes)?))
    }

    pub(crate) fn expect_end(&self, message: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            remaining => Err(DecodeError::TrailingBytes { message, remaining }),
        }
    }
}
