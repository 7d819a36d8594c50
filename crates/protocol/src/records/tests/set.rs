use bytes::Bytes;
use proptest::prelude::*;

use super::*;

fn legacy_sample() -> Vec<u8> {
    let message = LegacyMessage {
        offset: 3,
        magic: MAGIC_V1,
        timestamp_type: TimestampType::CreateTime,
        timestamp_ms: 12,
        key: None,
        value: Some(Bytes::from_static(b"old")),
    };
    encode_message_set(&[message], Compression::None).unwrap()
}

#[test]
fn splits_mixed_formats_without_copying() {
    let parts = [sample_batch(Compression::None), legacy_sample(), sample_batch(Compression::Gzip)];
    let joined = Bytes::from(parts.concat());
    let range = joined.as_ptr_range();
    let mut entries = split_record_set(joined.clone());
    let collected: Vec<Bytes> = entries.by_ref().map(Result::unwrap).collect();
    assert_eq!(collected.len(), 3);
    for (entry, part) in collected.iter().zip(&parts) {
        assert_eq!(entry[..], part[..]);
        assert!(range.contains(&entry.as_ptr()));
    }
    assert_eq!(collected.iter().map(|entry| entry_magic(entry).unwrap()).collect::<Vec<_>>(), [2, 1, 2]);
    assert!(entries.remainder().is_empty());
    assert!(entries.next().is_none());
}

#[test]
fn a_truncated_trailing_batch_ends_iteration_cleanly() {
    let whole = sample_batch(Compression::None);
    for cut in 1..whole.len() {
        let mut joined = whole.clone();
        joined.extend_from_slice(&whole[..cut]);
        let mut entries = split_record_set(Bytes::from(joined));
        assert_eq!(entries.next().unwrap().unwrap()[..], whole[..]);
        assert!(entries.next().is_none(), "cut at {cut}");
        assert_eq!(entries.remainder()[..], whole[..cut]);
    }
}

#[test]
fn a_length_too_small_for_any_entry_is_an_error_once() {
    let mut bad = sample_batch(Compression::None);
    bad[8..12].copy_from_slice(&13i32.to_be_bytes());
    let mut entries = split_record_set(Bytes::from(bad));
    assert_eq!(entries.next(), Some(Err(RecordsError::LengthTooSmall { length: 13, length_min: 14 })));
    assert!(entries.next().is_none());
    let mut negative = vec![0u8; 12];
    negative[8..12].copy_from_slice(&(-1i32).to_be_bytes());
    assert!(split_record_set(Bytes::from(negative)).next().unwrap().is_err());
}

#[test]
fn empty_input_yields_nothing() {
    assert!(split_record_set(Bytes::new()).next().is_none());
    assert!(entry_magic(&[0; 16]).is_err());
}

proptest! {
    #[test]
    fn concatenated_batches_split_back(count in 0usize..5, cut in 0usize..200) {
        let batches: Vec<Vec<u8>> = (0..count)
            .map(|index| sample_batch(if index % 2 == 0 { Compression::None } else { Compression::Lz4 }))
            .collect();
        let mut joined = batches.concat();
        let tail = sample_batch(Compression::None);
        joined.extend_from_slice(&tail[..cut.min(tail.len() - 1)]);
        let entries: Vec<Bytes> = split_record_set(Bytes::from(joined)).map(Result::unwrap).collect();
        prop_assert_eq!(entries.len(), count);
        for (entry, batch) in entries.iter().zip(&batches) {
            prop_assert_eq!(&entry[..], &batch[..]);
        }
    }
}
