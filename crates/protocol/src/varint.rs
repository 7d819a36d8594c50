//! Variable-length integers: unsigned LEB128 varints (`uvarint`) and the
//! zigzag-encoded signed forms (`varint` for i32, `varlong` for i64) used by
//! flexible message versions and by records inside a v2 batch.
//!
//! Readers work on a byte slice and return the value with the number of bytes
//! consumed, so both `Bytes` cursors and in-place batch scans can use them.

use crate::error::DecodeError;

/// The longest encoding of a 32-bit varint.
pub const VARINT_BYTES_MAX: usize = 5;
/// The longest encoding of a 64-bit varlong.
pub const VARLONG_BYTES_MAX: usize = 10;

/// Reads an unsigned 32-bit varint; returns the value and its encoded length.
pub fn read_uvarint(input: &[u8]) -> Result<(u32, usize), DecodeError> {
    let mut value: u32 = 0;
    for (index, byte) in input.iter().take(VARINT_BYTES_MAX).enumerate() {
        let bits = u32::from(byte & 0x7f);
        if index == VARINT_BYTES_MAX - 1 && bits > 0x0f {
            return Err(DecodeError::VarintTooLong {
                bytes_max: VARINT_BYTES_MAX,
            });
        }
        value |= bits << (7 * index);
        if byte & 0x80 == 0 {
            return Ok((value, index + 1));
        }
    }
    if input.len() >= VARINT_BYTES_MAX {
        Err(DecodeError::VarintTooLong {
            bytes_max: VARINT_BYTES_MAX,
        })
    } else {
        Err(DecodeError::UnexpectedEof {
            needed: input.len() + 1,
            remaining: input.len(),
        })
    }
}

/// Reads an unsigned 64-bit varlong; returns the value and its encoded length.
pub fn read_uvarlong(input: &[u8]) -> Result<(u64, usize), DecodeError> {
    let mut value: u64 = 0;
    for (index, byte) in input.iter().take(VARLONG_BYTES_MAX).enumerate() {
        let bits = u64::from(byte & 0x7f);
        if index == VARLONG_BYTES_MAX - 1 && bits > 0x01 {
            return Err(DecodeError::VarintTooLong {
                bytes_max: VARLONG_BYTES_MAX,
            });
        }
        value |= bits << (7 * index);
        if byte & 0x80 == 0 {
            return Ok((value, index + 1));
        }
    }
    if input.len() >= VARLONG_BYTES_MAX {
        Err(DecodeError::VarintTooLong {
            bytes_max: VARLONG_BYTES_MAX,
        })
    } else {
        Err(DecodeError::UnexpectedEof {
            needed: input.len() + 1,
            remaining: input.len(),
        })
    }
}

/// Reads a zigzag-encoded signed 32-bit varint.
pub fn read_varint(input: &[u8]) -> Result<(i32, usize), DecodeError> {
    let (raw, len) = read_uvarint(input)?;
    Ok((((raw >> 1) as i32) ^ -((raw & 1) as i32), len))
}

/// Reads a zigzag-encoded signed 64-bit varlong.
pub fn read_varlong(input: &[u8]) -> Result<(i64, usize), DecodeError> {
    let (raw, len) = read_uvarlong(input)?;
    Ok((((raw >> 1) as i64) ^ -((raw & 1) as i64), len))
}

/// Appends an unsigned 32-bit varint.
pub fn put_uvarint(out: &mut impl bytes::BufMut, mut value: u32) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// Appends an unsigned 64-bit varlong.
pub fn put_uvarlong(out: &mut impl bytes::BufMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// Appends a zigzag-encoded signed 32-bit varint.
pub fn put_varint(out: &mut impl bytes::BufMut, value: i32) {
    put_uvarint(out, ((value << 1) ^ (value >> 31)) as u32);
}

/// Appends a zigzag-encoded signed 64-bit varlong.
pub fn put_varlong(out: &mut impl bytes::BufMut, value: i64) {
    put_uvarlong(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// The encoded length of an unsigned 32-bit varint.
pub fn uvarint_len(value: u32) -> usize {
    match value {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0x0fff_ffff => 4,
        _ => 5,
    }
}

/// The encoded length of a zigzag-encoded signed 32-bit varint.
pub fn varint_len(value: i32) -> usize {
    uvarint_len(((value << 1) ^ (value >> 31)) as u32)
}

/// The encoded length of a zigzag-encoded signed 64-bit varlong.
pub fn varlong_len(value: i64) -> usize {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    let mut len = 1;
    while raw >= 0x80 {
        raw >>= 7;
        len += 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varint_round_trips(value in any::<i32>()) {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            prop_assert_eq!(out.len(), varint_len(value));
            prop_assert_eq!(read_varint(&out).unwrap(), (value, out.len()));
        }

        #[test]
        fn varlong_round_trips(value in any::<i64>()) {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            prop_assert_eq!(out.len(), varlong_len(value));
            prop_assert_eq!(read_varlong(&out).unwrap(), (value, out.len()));
        }

        #[test]
        fn uvarint_round_trips(value in any::<u32>()) {
            let mut out = Vec::new();
            put_uvarint(&mut out, value);
            prop_assert_eq!(out.len(), uvarint_len(value));
            prop_assert_eq!(read_uvarint(&out).unwrap(), (value, out.len()));
        }

        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..12)) {
            let _ = read_uvarint(&input);
            let _ = read_varlong(&input);
        }
    }

    #[test]
    fn known_encodings() {
        let mut out = Vec::new();
        put_varint(&mut out, -1);
        assert_eq!(out, [0x01]);
        out.clear();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xd8, 0x04]);
        assert!(read_uvarint(&[0x80, 0x80]).is_err());
        assert!(read_uvarint(&[0xff, 0xff, 0xff, 0xff, 0x7f]).is_err());
    }
}
