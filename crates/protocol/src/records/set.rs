//! Splitting a record set, the concatenated batches or legacy messages of a
//! produce or fetch payload, into its entries without copying.

use bytes::Bytes;

use super::{RecordsError, LOG_OVERHEAD_BYTES, MAGIC_POSITION};
use crate::error::DecodeError;

/// The smallest length field any entry can have: a magic 0 message with null
/// key and value (CRC, magic, attributes and two length fields).
const ENTRY_LENGTH_MIN: i32 = 14;

/// Iterates over the entries of a record set as `Bytes` slices, each exactly
/// one batch or legacy message, offset and length fields included.
///
/// A fetch response may end with a batch cut short by the size limit, so an
/// incomplete trailing entry ends the iteration without error; it is left in
/// [`RecordSetIter::remainder`]. A length field too small for any entry is an
/// error, after which the iterator yields nothing more.
#[derive(Debug, Clone)]
pub struct RecordSetIter {
    rest: Bytes,
    failed: bool,
}

pub fn split_record_set(record_set: Bytes) -> RecordSetIter {
    RecordSetIter { rest: record_set, failed: false }
}

impl RecordSetIter {
    /// The bytes not yet returned: after iteration ends cleanly, the
    /// incomplete trailing entry, if any.
    pub fn remainder(&self) -> &Bytes {
        &self.rest
    }
}

impl Iterator for RecordSetIter {
    type Item = Result<Bytes, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let length_field = self.rest.get(8..LOG_OVERHEAD_BYTES)?.first_chunk::<4>()?;
        let length = i32::from_be_bytes(*length_field);
        if length < ENTRY_LENGTH_MIN {
            self.failed = true;
            return Some(Err(RecordsError::LengthTooSmall { length, length_min: ENTRY_LENGTH_MIN }));
        }
        let size_bytes = usize::try_from(length).ok()?.checked_add(LOG_OVERHEAD_BYTES)?;
        if size_bytes > self.rest.len() {
            return None;
        }
        Some(Ok(self.rest.split_to(size_bytes)))
    }
}

/// The magic of a record set entry, which decides how to read the rest.
pub fn entry_magic(entry: &[u8]) -> Result<i8, RecordsError> {
    match entry.get(MAGIC_POSITION) {
        Some(&magic) => Ok(i8::from_be_bytes([magic])),
        None => Err(DecodeError::UnexpectedEof { needed: MAGIC_POSITION + 1, remaining: entry.len() }.into()),
    }
}
