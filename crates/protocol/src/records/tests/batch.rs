use bytes::Bytes;
use proptest::prelude::*;

use super::*;

/// One record at base offset 5 with key "k", value "v" and header h=x, laid
/// out by hand from the format description.
fn known_batch_bytes() -> Vec<u8> {
    let record: [u8; 13] = [
        0x18, // length 12 (zigzag varint)
        0x00, // attributes
        0x14, // timestamp delta 10
        0x00, // offset delta 0
        0x02, b'k', // key length 1, key
        0x02, b'v', // value length 1, value
        0x02, // one header
        0x02, b'h', // header key length 1, key
        0x02, b'x', // header value length 1, value
    ];
    let mut batch = Vec::new();
    batch.extend_from_slice(&5i64.to_be_bytes()); // base offset
    batch.extend_from_slice(&62i32.to_be_bytes()); // batch length: 74 - 12
    batch.extend_from_slice(&7i32.to_be_bytes()); // partition leader epoch
    batch.push(2); // magic
    batch.extend_from_slice(&[0; 4]); // crc, filled below
    batch.extend_from_slice(&0x0012i16.to_be_bytes()); // attributes: transactional, gzip
    batch.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    batch.extend_from_slice(&1_600_000_000_000i64.to_be_bytes()); // base timestamp
    batch.extend_from_slice(&1_600_000_000_010i64.to_be_bytes()); // max timestamp
    batch.extend_from_slice(&1000i64.to_be_bytes()); // producer id
    batch.extend_from_slice(&3i16.to_be_bytes()); // producer epoch
    batch.extend_from_slice(&42i32.to_be_bytes()); // base sequence
    batch.extend_from_slice(&1i32.to_be_bytes()); // records count
    batch.extend_from_slice(&record);
    let crc = reference_crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

#[test]
fn known_batch_parses_field_by_field() {
    let mut known = known_batch_bytes();
    // Attributes 0x0012 would claim gzip; use transactional only.
    known[21..23].copy_from_slice(&0x0010i16.to_be_bytes());
    let crc = reference_crc32c(&known[21..]);
    known[17..21].copy_from_slice(&crc.to_be_bytes());

    assert_eq!(known.len(), 74);
    let header = validate_batch(&known).unwrap();
    assert_eq!(
        header,
        RecordBatchHeader {
            base_offset: 5,
            batch_length: 62,
            partition_leader_epoch: 7,
            magic: 2,
            crc,
            attributes: 0x0010,
            last_offset_delta: 0,
            base_timestamp: 1_600_000_000_000,
            max_timestamp: 1_600_000_000_010,
            producer_id: 1000,
            producer_epoch: 3,
            base_sequence: 42,
            records_count: 1,
        }
    );
    assert!(header.is_transactional());
    assert!(!header.is_control());
    assert_eq!(header.compression().unwrap(), Compression::None);
    assert_eq!(header.timestamp_type(), TimestampType::CreateTime);
    assert_eq!(header.size_bytes(), 74);

    let batch = RecordBatch::new(Bytes::from(known.clone())).unwrap();
    let records = batch.records(LIMIT_BYTES).unwrap();
    let expected = Record {
        attributes: 0,
        timestamp_delta: 10,
        offset_delta: 0,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"v")),
        headers: vec![RecordHeader { key: "h".to_owned(), value: Some(Bytes::from_static(b"x")) }],
    };
    assert_eq!(records, std::slice::from_ref(&expected));
    assert_eq!(header.record_offset(&records[0]), 5);
    assert_eq!(header.record_timestamp(&records[0]), 1_600_000_000_010);

    // The builder must produce the same bytes from the same inputs.
    let built = RecordBatchBuilder::new(5)
        .partition_leader_epoch(7)
        .producer(1000, 3, 42)
        .transactional(true)
        .base_timestamp(1_600_000_000_000)
        .push_record(expected)
        .build()
        .unwrap();
    assert_eq!(built, known);
}

#[test]
fn gzip_attribute_on_uncompressed_records_fails_to_decode() {
    // The 0x0012 attributes claim gzip over plain records.
    let batch = RecordBatch::new(Bytes::from(known_batch_bytes())).unwrap();
    assert!(matches!(batch.records(LIMIT_BYTES), Err(RecordsError::Compression(_))));
}

#[test]
fn every_corrupted_byte_inside_the_crc_range_is_detected() {
    let batch = sample_batch(Compression::None);
    for position in 21..batch.len() {
        let mut corrupted = batch.clone();
        corrupted[position] ^= 0x01;
        assert!(matches!(validate_batch(&corrupted), Err(RecordsError::CrcMismatch { .. })), "byte {position}");
    }
    let mut corrupted = batch.clone();
    corrupted[17] ^= 0x80;
    assert!(matches!(validate_batch(&corrupted), Err(RecordsError::CrcMismatch { .. })));
}

#[test]
fn offset_and_leader_epoch_rewrites_leave_the_crc_valid_and_unchanged() {
    let mut batch = sample_batch(Compression::Lz4);
    let crc_before = batch[17..21].to_vec();
    set_base_offset(&mut batch, 9_000_000_000).unwrap();
    set_partition_leader_epoch(&mut batch, 12).unwrap();
    assert_eq!(batch[17..21], crc_before);
    let header = validate_batch(&batch).unwrap();
    assert_eq!(header.base_offset, 9_000_000_000);
    assert_eq!(header.partition_leader_epoch, 12);
    assert_eq!(header.last_offset(), 9_000_000_002);
}

#[test]
fn log_append_time_rewrite_recomputes_the_crc() {
    let mut batch = sample_batch(Compression::Zstd);
    set_max_timestamp(&mut batch, TimestampType::LogAppendTime, 1_800_000_000_000).unwrap();
    let header = validate_batch(&batch).unwrap();
    assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(header.max_timestamp, 1_800_000_000_000);
    assert_eq!(header.compression().unwrap(), Compression::Zstd);
    assert_eq!(header.crc, reference_crc32c(&batch[21..]));
    let decoded = RecordBatch::new(Bytes::from(batch.clone())).unwrap();
    for record in decoded.records(LIMIT_BYTES).unwrap() {
        assert_eq!(header.record_timestamp(&record), 1_800_000_000_000);
    }

    set_max_timestamp(&mut batch, TimestampType::CreateTime, 1_700_000_000_002).unwrap();
    assert_eq!(batch, sample_batch(Compression::Zstd));
}

#[test]
fn validated_view_stamps_offset_epoch_and_log_append_time() {
    let mut expected = sample_batch(Compression::Lz4);
    set_base_offset(&mut expected, 4_000).unwrap();
    set_partition_leader_epoch(&mut expected, 7).unwrap();
    set_max_timestamp(&mut expected, TimestampType::LogAppendTime, 1_800_000_000_000).unwrap();

    let mut batch = sample_batch(Compression::Lz4);
    let mut view = ValidatedBatchMut::new(&mut batch).unwrap();
    view.set_base_offset(4_000).unwrap();
    view.set_partition_leader_epoch(7).unwrap();
    view.set_max_timestamp(TimestampType::LogAppendTime, 1_800_000_000_000).unwrap();
    let stamped = *view.header();
    assert_eq!(batch, expected);
    assert_eq!(validate_batch(&batch).unwrap(), stamped);
}

#[test]
fn validated_view_refuses_a_corrupt_batch() {
    let mut batch = sample_batch(Compression::None);
    let last = batch.len() - 1;
    batch[last] ^= 0xff;
    assert!(matches!(ValidatedBatchMut::new(&mut batch), Err(RecordsError::CrcMismatch { .. })));
}

#[test]
fn unchanged_max_timestamp_leaves_the_batch_untouched() {
    let original = sample_batch(Compression::None);
    let mut batch = original.clone();
    set_max_timestamp(&mut batch, TimestampType::CreateTime, 1_700_000_000_002).unwrap();
    assert_eq!(batch, original);
}

#[test]
fn max_timestamp_rewrite_refuses_to_launder_a_corrupt_batch() {
    let mut batch = sample_batch(Compression::None);
    let last = batch.len() - 1;
    batch[last] ^= 0xff;
    assert!(matches!(
        set_max_timestamp(&mut batch, TimestampType::LogAppendTime, 1),
        Err(RecordsError::CrcMismatch { .. })
    ));
}

#[test]
fn every_truncation_is_an_error() {
    let batch = sample_batch(Compression::Snappy);
    for cut in 0..batch.len() {
        let prefix = &batch[..cut];
        assert!(validate_batch(prefix).is_err(), "cut at {cut}");
        let mut copy = prefix.to_vec();
        assert!(set_max_timestamp(&mut copy, TimestampType::LogAppendTime, 1).is_err());
        assert!(recompute_crc(&mut copy).is_err());
        if cut < BATCH_HEADER_BYTES {
            assert!(RecordBatchHeader::parse(prefix).is_err());
            assert!(set_base_offset(&mut copy, 1).is_err());
            assert!(set_partition_leader_epoch(&mut copy, 1).is_err());
        }
    }
}

#[test]
fn trailing_bytes_after_the_batch_are_a_size_mismatch() {
    let mut batch = sample_batch(Compression::None);
    let size = batch.len();
    batch.push(0);
    assert_eq!(
        validate_batch(&batch),
        Err(RecordsError::SizeMismatch { declared_bytes: size, actual_bytes: size + 1 })
    );
}

#[test]
fn other_magics_are_refused() {
    let mut batch = sample_batch(Compression::None);
    batch[16] = 1;
    assert_eq!(validate_batch(&batch), Err(RecordsError::UnsupportedMagic { magic: 1 }));
    assert_eq!(RecordBatchHeader::parse(&batch[..20]), Err(RecordsError::UnsupportedMagic { magic: 1 }));
}

#[test]
fn batch_length_below_a_header_is_refused() {
    let mut batch = sample_batch(Compression::None);
    batch[8..12].copy_from_slice(&48i32.to_be_bytes());
    assert_eq!(RecordBatchHeader::parse(&batch), Err(RecordsError::LengthTooSmall { length: 48, length_min: 49 }));
}

fn with_records_count(mut batch: Vec<u8>, count: i32) -> RecordBatch {
    batch[57..61].copy_from_slice(&count.to_be_bytes());
    recompute_crc(&mut batch).unwrap();
    RecordBatch::new(Bytes::from(batch)).unwrap()
}

#[test]
fn records_count_must_match_the_records_present() {
    for codec in [Compression::None, Compression::Gzip] {
        let too_many = with_records_count(sample_batch(codec), 4);
        assert!(matches!(too_many.records(LIMIT_BYTES), Err(RecordsError::Decode(DecodeError::UnexpectedEof { .. }))));
        let too_few = with_records_count(sample_batch(codec), 2);
        assert!(matches!(too_few.records(LIMIT_BYTES), Err(RecordsError::Decode(DecodeError::TrailingBytes { .. }))));
        let negative = with_records_count(sample_batch(codec), -1);
        assert_eq!(negative.records(LIMIT_BYTES), Err(RecordsError::InvalidRecordCount { count: -1 }));
    }
}

#[test]
fn huge_records_count_does_not_preallocate() {
    let batch = with_records_count(sample_batch(Compression::None), i32::MAX);
    assert!(batch.records(LIMIT_BYTES).is_err());
}

#[test]
fn compressed_records_respect_the_output_limit() {
    let mut builder = RecordBatchBuilder::new(0).compression(Compression::Gzip);
    builder.append(0, None, Some(Bytes::from(vec![0u8; 200_000])), Vec::new()).unwrap();
    let batch = RecordBatch::new(Bytes::from(builder.build().unwrap())).unwrap();
    assert!(batch.records_payload().len() < 1_000);
    assert_eq!(
        batch.records(100_000),
        Err(RecordsError::Compression(CompressionError::OutputTooLarge { bytes_max: 100_000 }))
    );
    assert_eq!(batch.records(300_000).unwrap().len(), 1);
}

#[test]
fn uncompressed_records_borrow_from_the_batch_buffer() {
    let bytes = Bytes::from(sample_batch(Compression::None));
    let batch = RecordBatch::new(bytes.clone()).unwrap();
    let range = bytes.as_ptr_range();
    for record in batch.records(LIMIT_BYTES).unwrap() {
        let value = record.value.unwrap();
        assert!(range.contains(&value.as_ptr()));
    }
}

#[test]
fn an_empty_batch_needs_an_explicit_last_offset_delta() {
    assert_eq!(RecordBatchBuilder::new(0).build(), Err(RecordsError::EmptyBatch));
    let batch = RecordBatchBuilder::new(10).last_offset_delta(4).build().unwrap();
    let header = validate_batch(&batch).unwrap();
    assert_eq!((header.records_count, header.last_offset(), header.base_timestamp), (0, 14, -1));
    assert_eq!(RecordBatch::new(Bytes::from(batch)).unwrap().records(LIMIT_BYTES).unwrap(), []);
}

#[test]
fn delete_horizon_sets_its_bit_and_the_base_timestamp() {
    let mut builder = RecordBatchBuilder::new(0).delete_horizon(5_000);
    builder.append(4_000, None, None, Vec::new()).unwrap();
    let header = validate_batch(&builder.build().unwrap()).unwrap();
    assert!(header.has_delete_horizon());
    assert_eq!((header.base_timestamp, header.max_timestamp), (5_000, 4_000));
}

#[test]
fn header_keys_must_be_utf8_and_not_null() {
    let mut record = Vec::new();
    Record {
        attributes: 0,
        timestamp_delta: 0,
        offset_delta: 0,
        key: None,
        value: None,
        headers: vec![RecordHeader { key: "ab".to_owned(), value: None }],
    }
    .encode(&mut record)
    .unwrap();
    // Layout: len, attrs, ts, off, key -1, value -1, count, key len, "ab", -1.
    let mut invalid_utf8 = record.clone();
    invalid_utf8[8] = 0xff;
    let mut null_key = record.clone();
    null_key[7] = 0x01;
    for bad in [invalid_utf8, null_key] {
        let batch = RecordBatch::new(Bytes::from(batch_around_raw_records(&bad, 1))).unwrap();
        assert!(matches!(batch.records(LIMIT_BYTES), Err(RecordsError::Decode(_))));
    }
}

/// A valid batch whose records section is `records` as given.
fn batch_around_raw_records(records: &[u8], count: i32) -> Vec<u8> {
    let mut batch = RecordBatchBuilder::new(0).last_offset_delta(0).build().unwrap();
    batch.extend_from_slice(records);
    let length = i32::try_from(batch.len() - 12).unwrap();
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    batch[57..61].copy_from_slice(&count.to_be_bytes());
    recompute_crc(&mut batch).unwrap();
    batch
}

#[test]
fn record_length_must_match_its_fields() {
    let mut record = Vec::new();
    Record { attributes: 0, timestamp_delta: 0, offset_delta: 0, key: None, value: None, headers: Vec::new() }
        .encode(&mut record)
        .unwrap();
    // Claim one byte more than the fields use and supply a spare byte.
    record[0] += 2;
    record.push(0);
    let batch = RecordBatch::new(Bytes::from(batch_around_raw_records(&record, 1))).unwrap();
    assert_eq!(batch.records(LIMIT_BYTES), Err(RecordsError::RecordSizeMismatch { declared_bytes: 7, used_bytes: 6 }));
}

proptest! {
    #[test]
    fn batches_round_trip(
        records in prop::collection::vec(record_strategy(), 1..6),
        codec in codec_strategy(),
        base_offset in any::<i64>(),
        base_timestamp in -1i64..(1i64 << 42),
        producer in (any::<i64>(), any::<i16>(), any::<i32>()),
        epoch in any::<i32>(),
    ) {
        let mut builder = RecordBatchBuilder::new(base_offset)
            .compression(codec)
            .partition_leader_epoch(epoch)
            .producer(producer.0, producer.1, producer.2)
            .base_timestamp(base_timestamp);
        for record in &records {
            builder.push_record(record.clone());
        }
        let bytes = builder.build().unwrap();
        let batch = RecordBatch::new(Bytes::from(bytes)).unwrap();
        let header = *batch.header();
        prop_assert_eq!(header.compression().unwrap(), codec);
        prop_assert_eq!(header.base_offset, base_offset);
        prop_assert_eq!(header.partition_leader_epoch, epoch);
        prop_assert_eq!((header.producer_id, header.producer_epoch, header.base_sequence), producer);
        prop_assert_eq!(header.last_offset_delta, records.last().unwrap().offset_delta);
        let max_timestamp = records.iter().map(|record| base_timestamp + record.timestamp_delta).max().unwrap().max(-1);
        prop_assert_eq!(header.max_timestamp, max_timestamp);
        prop_assert_eq!(batch.records(LIMIT_BYTES).unwrap(), records);
    }

    #[test]
    fn records_encode_to_their_declared_length(record in record_strategy()) {
        let mut out = Vec::new();
        record.encode(&mut out).unwrap();
        prop_assert_eq!(out.len(), record.encoded_len_bytes().unwrap());
    }
}
