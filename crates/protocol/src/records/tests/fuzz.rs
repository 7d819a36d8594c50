//! Arbitrary and mutated bytes through every parser: errors are fine,
//! panics are not.

use bytes::Bytes;
use proptest::prelude::*;

use super::*;

fn exercise_everything(input: &[u8]) {
    let bytes = Bytes::copy_from_slice(input);
    let _ = RecordBatchHeader::parse(input);
    let _ = validate_batch(input);
    if let Ok(batch) = RecordBatch::new(bytes.clone()) {
        let _ = batch.records(LIMIT_BYTES);
        let _ = decode_transaction_marker(&batch);
    }
    for entry in split_record_set(bytes.clone()).flatten() {
        let _ = entry_magic(&entry);
        let _ = decode_legacy_entry(&entry, LIMIT_BYTES);
    }
    let _ = decode_message_set(&bytes, LIMIT_BYTES);
    let _ = ControlRecordKey::decode(input);
    let _ = EndTxnMarker::decode(input);
    let mut copy = input.to_vec();
    let _ = set_base_offset(&mut copy, 1);
    let _ = set_partition_leader_epoch(&mut copy, 1);
    let _ = set_max_timestamp(&mut copy, TimestampType::LogAppendTime, 1);
    let _ = recompute_crc(&mut copy);
}

/// Mutates bytes, then repairs the CRC so the damage reaches the decoders
/// behind the CRC check.
fn mutate_and_repair(mut batch: Vec<u8>, flips: &[(prop::sample::Index, u8)]) -> Vec<u8> {
    for (index, byte) in flips {
        let position = index.index(batch.len() - 21) + 21;
        batch[position] ^= byte;
    }
    let _ = recompute_crc(&mut batch);
    batch
}

fn sample_legacy(codec: Compression) -> Vec<u8> {
    let messages: Vec<LegacyMessage> = (0..3)
        .map(|offset| LegacyMessage {
            offset,
            magic: MAGIC_V1,
            timestamp_type: TimestampType::CreateTime,
            timestamp_ms: offset,
            key: Some(Bytes::from_static(b"key")),
            value: Some(Bytes::from_static(b"some value bytes")),
        })
        .collect();
    encode_message_set(&messages, codec).unwrap()
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..300)) {
        exercise_everything(&input);
    }

    #[test]
    fn arbitrary_bytes_behind_a_plausible_header_never_panic(
        tail in prop::collection::vec(any::<u8>(), 0..200),
        magic in 0i8..=2,
    ) {
        let mut input = vec![0u8; 17];
        let length = i32::try_from(5 + tail.len()).unwrap();
        input[8..12].copy_from_slice(&length.to_be_bytes());
        input[16] = magic.to_be_bytes()[0];
        input.extend_from_slice(&tail);
        exercise_everything(&input);
    }

    #[test]
    fn mutated_batches_with_repaired_crcs_never_panic(
        codec in codec_strategy(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        exercise_everything(&mutate_and_repair(sample_batch(codec), &flips));
    }

    #[test]
    fn mutated_legacy_sets_with_repaired_crcs_never_panic(
        codec in prop::sample::select(vec![Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4]),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut set = sample_legacy(codec);
        for (index, byte) in &flips {
            let position = index.index(set.len() - 16) + 16;
            set[position] ^= byte;
        }
        if set.len() >= 16 {
            let crc = crc32fast::hash(&set[16..]);
            set[12..16].copy_from_slice(&crc.to_be_bytes());
        }
        exercise_everything(&set);
    }
}
