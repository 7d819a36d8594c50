//! Produce v0-v2 carry legacy message sets (magic 0 and 1). We store only v2
//! batches, so such a set is converted once on the way in: one v2 batch per legacy
//! entry (a compressed wrapper becomes one batch with the same codec). This is the
//! cold path of clients older than Kafka 0.11; the v2 path never decodes records.

use bytes::BytesMut;
use gregor_protocol::records::{decode_legacy_entry, parse_legacy_entry, split_record_set, RecordBatchBuilder};
use gregor_protocol::ErrorCode;

/// Converts a legacy message set to v2 batches, keeping keys, values, timestamps
/// (magic 1) and compression. Timestamps of magic 0 messages do not exist and
/// become -1, as Kafka's up-conversion does.
pub fn upconvert_message_set(message_set: &bytes::Bytes, output_bytes_max: usize) -> Result<BytesMut, ErrorCode> {
    let mut converted = BytesMut::new();
    for entry in split_record_set(message_set.clone()) {
        let entry = entry.map_err(|_| ErrorCode::CorruptMessage)?;
        let magic = entry.get(16).copied().ok_or(ErrorCode::CorruptMessage)? as i8;
        if magic > 1 {
            return Err(ErrorCode::InvalidRecord);
        }
        let compression = parse_legacy_entry(&entry)
            .and_then(|parsed| parsed.compression())
            .map_err(|_| ErrorCode::CorruptMessage)?;
        let messages = decode_legacy_entry(&entry, output_bytes_max).map_err(|_| ErrorCode::CorruptMessage)?;
        if messages.is_empty() {
            continue;
        }
        // The topic's timestamp type decides on append whether the broker's time
        // replaces these timestamps, as for v2 batches.
        let mut builder = RecordBatchBuilder::new(0).compression(compression);
        for message in messages {
            let timestamp_ms = if message.magic == 0 { -1 } else { message.timestamp_ms };
            builder
                .append(timestamp_ms, message.key, message.value, Vec::new())
                .map_err(|_| ErrorCode::CorruptMessage)?;
        }
        let batch = builder.build().map_err(|_| ErrorCode::CorruptMessage)?;
        converted.extend_from_slice(&batch);
    }
    if converted.is_empty() {
        return Err(ErrorCode::InvalidRecord);
    }
    Ok(converted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use gregor_protocol::records::{encode_message_set, LegacyMessage, RecordBatch, TimestampType};
    use gregor_protocol::Compression;

    fn message(magic: i8, offset: i64, value: &'static [u8]) -> LegacyMessage {
        LegacyMessage {
            offset,
            magic,
            timestamp_type: TimestampType::CreateTime,
            timestamp_ms: if magic == 1 { 1_700_000_000_000 + offset } else { -1 },
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(value)),
        }
    }

    #[test]
    fn magic_1_set_becomes_v2_batches_with_the_same_records() {
        for compression in [Compression::None, Compression::Gzip] {
            let set = encode_message_set(&[message(1, 0, b"one"), message(1, 1, b"two")], compression).expect("encode");
            let converted = upconvert_message_set(&Bytes::from(set), 1 << 20).expect("convert");
            let mut values = Vec::new();
            for batch in split_record_set(converted.freeze()) {
                let batch = RecordBatch::new(batch.expect("entry")).expect("batch");
                for record in batch.records(1 << 20).expect("records") {
                    values.push(record.value.expect("value"));
                    assert_eq!(record.key.as_deref(), Some(&b"k"[..]));
                }
            }
            assert_eq!(values, vec![Bytes::from_static(b"one"), Bytes::from_static(b"two")]);
        }
    }

    #[test]
    fn garbage_is_corrupt() {
        let garbage = Bytes::from_static(&[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        assert!(upconvert_message_set(&garbage, 1 << 20).is_err());
    }
}
