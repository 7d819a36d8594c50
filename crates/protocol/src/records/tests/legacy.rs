use bytes::Bytes;
use proptest::prelude::*;

use super::*;

fn message(offset: i64, magic: i8, timestamp_ms: i64, value: &'static [u8]) -> LegacyMessage {
    LegacyMessage {
        offset,
        magic,
        timestamp_type: TimestampType::CreateTime,
        timestamp_ms: if magic == MAGIC_V0 { NO_TIMESTAMP } else { timestamp_ms },
        key: Some(Bytes::from_static(b"key")),
        value: Some(Bytes::from_static(value)),
    }
}

#[test]
fn known_v0_and_v1_messages_lay_out_as_documented() {
    let v0 = encode_message_set(&[LegacyMessage { key: None, ..message(7, MAGIC_V0, 0, b"ab") }], Compression::None)
        .unwrap();
    let mut expected = Vec::new();
    expected.extend_from_slice(&7i64.to_be_bytes());
    expected.extend_from_slice(&16i32.to_be_bytes()); // crc 4 + magic + attrs + key 4 + value 4+2
    expected.extend_from_slice(&[0; 4]);
    expected.extend_from_slice(&[0, 0]); // magic 0, attributes
    expected.extend_from_slice(&(-1i32).to_be_bytes());
    expected.extend_from_slice(&2i32.to_be_bytes());
    expected.extend_from_slice(b"ab");
    let crc = crc32fast::hash(&expected[16..]);
    expected[12..16].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(v0, expected);

    let v1 = encode_message_set(
        &[LegacyMessage { timestamp_type: TimestampType::LogAppendTime, ..message(8, MAGIC_V1, 99, b"") }],
        Compression::None,
    )
    .unwrap();
    assert_eq!(v1.len(), 12 + 4 + 1 + 1 + 8 + 4 + 3 + 4);
    assert_eq!(v1[16..18], [1, 0x08]);
    assert_eq!(v1[18..26], 99i64.to_be_bytes());
    let entry = parse_legacy_entry(&Bytes::from(v1)).unwrap();
    assert_eq!(entry.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(entry.timestamp_ms, Some(99));
    assert_eq!(entry.value.as_deref(), Some(&b""[..]));
}

#[test]
fn v1_wrapper_holds_the_last_offset_and_inner_offsets_are_relative() {
    let messages = [message(40, MAGIC_V1, 1, b"a"), message(41, MAGIC_V1, 5, b"b"), message(42, MAGIC_V1, 3, b"c")];
    let encoded = Bytes::from(encode_message_set(&messages, Compression::Gzip).unwrap());
    let wrapper = parse_legacy_entry(&encoded).unwrap();
    assert_eq!((wrapper.offset, wrapper.timestamp_ms, wrapper.key.clone()), (42, Some(5), None));
    assert_eq!(wrapper.compression().unwrap(), Compression::Gzip);
    let inner = crate::compression::decompress(Compression::Gzip, &wrapper.value.unwrap(), LIMIT_BYTES).unwrap();
    let inner_offsets: Vec<i64> =
        split_record_set(Bytes::from(inner)).map(|entry| parse_legacy_entry(&entry.unwrap()).unwrap().offset).collect();
    assert_eq!(inner_offsets, [0, 1, 2]);
    assert_eq!(decode_message_set(&encoded, LIMIT_BYTES).unwrap(), messages);
}

#[test]
fn v1_inner_offsets_are_rebased_on_the_wrapper() {
    let messages = [message(0, MAGIC_V1, 1, b"a"), message(1, MAGIC_V1, 2, b"b")];
    let mut encoded = encode_message_set(&messages, Compression::Snappy).unwrap();
    // The broker assigns only the wrapper offset.
    encoded[..8].copy_from_slice(&1_001i64.to_be_bytes());
    let decoded = decode_message_set(&Bytes::from(encoded), LIMIT_BYTES).unwrap();
    assert_eq!(decoded.iter().map(|message| message.offset).collect::<Vec<_>>(), [1_000, 1_001]);
}

#[test]
fn v0_inner_offsets_are_absolute() {
    let messages = [message(10, MAGIC_V0, 0, b"a"), message(11, MAGIC_V0, 0, b"b")];
    let encoded = Bytes::from(encode_message_set(&messages, Compression::Snappy).unwrap());
    assert_eq!(parse_legacy_entry(&encoded).unwrap().offset, 11);
    assert_eq!(decode_message_set(&encoded, LIMIT_BYTES).unwrap(), messages);
}

#[test]
fn log_append_time_wrapper_overrides_inner_timestamps() {
    let messages = [message(0, MAGIC_V1, 1, b"a"), message(1, MAGIC_V1, 2, b"b")];
    let mut encoded = encode_message_set(&messages, Compression::Lz4).unwrap();
    encoded[17] |= 0x08;
    encoded[18..26].copy_from_slice(&777i64.to_be_bytes());
    let crc = crc32fast::hash(&encoded[16..]);
    encoded[12..16].copy_from_slice(&crc.to_be_bytes());
    let decoded = decode_legacy_entry(&Bytes::from(encoded), LIMIT_BYTES).unwrap();
    for message in decoded {
        assert_eq!((message.timestamp_type, message.timestamp_ms), (TimestampType::LogAppendTime, 777));
    }
}

#[test]
fn codecs_outside_a_magic_are_refused() {
    let v0 = [message(0, MAGIC_V0, 0, b"a")];
    let v1 = [message(0, MAGIC_V1, 0, b"a")];
    for (messages, codec, magic) in
        [(&v0, Compression::Lz4, MAGIC_V0), (&v0, Compression::Zstd, MAGIC_V0), (&v1, Compression::Zstd, MAGIC_V1)]
    {
        assert_eq!(encode_message_set(messages, codec), Err(RecordsError::CompressionNotAllowed { codec, magic }));
    }
    let mut forged = encode_message_set(&v1, Compression::None).unwrap();
    forged[17] = 4;
    let crc = crc32fast::hash(&forged[16..]);
    forged[12..16].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        decode_message_set(&Bytes::from(forged), LIMIT_BYTES),
        Err(RecordsError::CompressionNotAllowed { codec: Compression::Zstd, magic: 1 })
    ));
}

/// A wrapper around arbitrary inner bytes, for feeding decoders bad inner sets.
fn wrapper_around(inner: &[u8], magic: i8) -> Bytes {
    let compressed = crate::compression::compress(Compression::Gzip, inner).unwrap();
    let mut wrapper = encode_message_set(
        &[LegacyMessage { key: None, value: Some(Bytes::from(compressed)), ..message(5, magic, 0, b"") }],
        Compression::None,
    )
    .unwrap();
    wrapper[17] = 1;
    let crc = crc32fast::hash(&wrapper[16..]);
    wrapper[12..16].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(wrapper)
}

#[test]
fn malformed_wrappers_are_refused() {
    let nested = encode_message_set(&[message(0, MAGIC_V1, 0, b"a")], Compression::Gzip).unwrap();
    assert_eq!(
        decode_message_set(&wrapper_around(&nested, MAGIC_V1), LIMIT_BYTES),
        Err(RecordsError::NestedCompression)
    );
    let v0_inner = encode_message_set(&[message(0, MAGIC_V0, 0, b"a")], Compression::None).unwrap();
    assert_eq!(
        decode_message_set(&wrapper_around(&v0_inner, MAGIC_V1), LIMIT_BYTES),
        Err(RecordsError::InnerMagicMismatch { wrapper: 1, inner: 0 })
    );
    assert_eq!(decode_message_set(&wrapper_around(&[], MAGIC_V1), LIMIT_BYTES), Err(RecordsError::EmptyWrapper));
    let truncated_inner = &v0_inner[..v0_inner.len() - 1];
    assert!(matches!(
        decode_message_set(&wrapper_around(truncated_inner, MAGIC_V0), LIMIT_BYTES),
        Err(RecordsError::Decode(DecodeError::TrailingBytes { .. }))
    ));
    assert_eq!(
        encode_message_set(&[message(0, MAGIC_V0, 0, b"a"), message(1, MAGIC_V1, 0, b"b")], Compression::Gzip),
        Err(RecordsError::MixedWrapperContents { first: 0, other: 1 })
    );
    assert_eq!(encode_message_set(&[], Compression::Gzip), Err(RecordsError::EmptyWrapper));
}

#[test]
fn wrappers_share_one_decompression_budget() {
    let big: &'static [u8] = &[0u8; 4096];
    let messages = [message(0, MAGIC_V1, 0, big)];
    let one = encode_message_set(&messages, Compression::Gzip).unwrap();
    let inner_bytes = encode_message_set(&messages, Compression::None).unwrap().len();
    let two = Bytes::from([one.clone(), one].concat());
    assert_eq!(decode_message_set(&two, 2 * inner_bytes).unwrap().len(), 2);
    assert!(matches!(
        decode_message_set(&two, 2 * inner_bytes - 1),
        Err(RecordsError::Compression(CompressionError::OutputTooLarge { .. }))
    ));
}

#[test]
fn crc_mismatch_and_truncation_are_detected() {
    let encoded = encode_message_set(&[message(0, MAGIC_V1, 3, b"value")], Compression::None).unwrap();
    for position in 16..encoded.len() {
        let mut corrupted = encoded.clone();
        corrupted[position] ^= 0x10;
        assert!(decode_message_set(&Bytes::from(corrupted), LIMIT_BYTES).is_err(), "byte {position}");
    }
    for cut in 0..encoded.len() {
        let prefix = Bytes::copy_from_slice(&encoded[..cut]);
        assert!(parse_legacy_entry(&prefix).is_err());
        if cut > 0 {
            assert!(decode_message_set(&prefix, LIMIT_BYTES).is_err());
        }
    }
}

fn legacy_message_strategy(magic: i8) -> impl Strategy<Value = LegacyMessage> {
    // Kafka treats negative timestamps other than "none" (-1) as invalid.
    (-1i64..i64::MAX, any::<bool>(), bytes_strategy(), bytes_strategy()).prop_map(
        move |(timestamp_ms, log_append_time, key, value)| LegacyMessage {
            offset: 0,
            magic,
            timestamp_type: if magic == MAGIC_V1 && log_append_time {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            timestamp_ms: if magic == MAGIC_V1 { timestamp_ms } else { NO_TIMESTAMP },
            key,
            value,
        },
    )
}

proptest! {
    #[test]
    fn uncompressed_message_sets_round_trip(
        messages in prop::collection::vec(prop_oneof![legacy_message_strategy(0), legacy_message_strategy(1)], 0..6),
        first_offset in any::<i32>(),
    ) {
        let messages: Vec<LegacyMessage> = messages
            .into_iter()
            .enumerate()
            .map(|(index, message)| LegacyMessage { offset: i64::from(first_offset) + index as i64, ..message })
            .collect();
        let encoded = Bytes::from(encode_message_set(&messages, Compression::None).unwrap());
        prop_assert_eq!(decode_message_set(&encoded, LIMIT_BYTES).unwrap(), messages);
    }

    #[test]
    fn compressed_message_sets_round_trip(
        magic in 0i8..=1,
        codec in prop::sample::select(vec![Compression::Gzip, Compression::Snappy, Compression::Lz4]),
        messages in prop::collection::vec(legacy_message_strategy(1), 1..6),
        first_offset in any::<i32>(),
        log_append_time in any::<bool>(),
    ) {
        prop_assume!(magic == MAGIC_V1 || codec != Compression::Lz4);
        let timestamp_type = if magic == MAGIC_V1 && log_append_time {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        };
        let shared_timestamp_ms = messages[0].timestamp_ms;
        let messages: Vec<LegacyMessage> = messages
            .into_iter()
            .enumerate()
            .map(|(index, message)| LegacyMessage {
                offset: i64::from(first_offset) + index as i64,
                magic,
                timestamp_type,
                // Log-append time gives every inner message the wrapper's time.
                timestamp_ms: match (magic, timestamp_type) {
                    (MAGIC_V0, _) => NO_TIMESTAMP,
                    (_, TimestampType::LogAppendTime) => shared_timestamp_ms,
                    _ => message.timestamp_ms,
                },
                ..message
            })
            .collect();
        let encoded = Bytes::from(encode_message_set(&messages, codec).unwrap());
        prop_assert_eq!(decode_message_set(&encoded, LIMIT_BYTES).unwrap(), messages);
    }
}
