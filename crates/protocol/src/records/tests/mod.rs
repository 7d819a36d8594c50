//! Tests across the records module; shared strategies and helpers live here.

mod batch;
mod control;
mod fuzz;
mod legacy;
mod set;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;

pub(super) const LIMIT_BYTES: usize = 1024 * 1024;

/// A bitwise CRC-32C, independent of the crate under test, to check stored
/// CRCs against.
pub(super) fn reference_crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn reference_crc32c_matches_the_standard_check_value() {
    assert_eq!(reference_crc32c(b"123456789"), 0xE306_9283);
}

pub(super) fn bytes_strategy() -> impl Strategy<Value = Option<Bytes>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..48).prop_map(Bytes::from))
}

pub(super) fn record_strategy() -> impl Strategy<Value = Record> {
    let header = ("\\PC{0,8}", bytes_strategy()).prop_map(|(key, value)| RecordHeader { key, value });
    (
        any::<i8>(),
        -(1i64 << 40)..(1i64 << 40),
        any::<i32>(),
        bytes_strategy(),
        bytes_strategy(),
        prop::collection::vec(header, 0..4),
    )
        .prop_map(|(attributes, timestamp_delta, offset_delta, key, value, headers)| Record {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers,
        })
}

pub(super) fn codec_strategy() -> impl Strategy<Value = Compression> {
    prop::sample::select(vec![
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ])
}

/// A small batch of three records built the ordinary way.
pub(super) fn sample_batch(compression: Compression) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(100).compression(compression);
    for index in 0..3u8 {
        builder
            .append(
                1_700_000_000_000 + i64::from(index),
                Some(Bytes::from(vec![b'k', index])),
                Some(Bytes::from(vec![index; 40])),
                vec![RecordHeader { key: "trace".to_owned(), value: None }],
            )
            .unwrap();
    }
    builder.build().unwrap()
}
