//! The bodies of the fuzz targets under `fuzz_targets/`, kept in a library so
//! the same checks can be replayed on stable (`cargo test` in this directory
//! runs them over the golden frames and pseudo-random mutations of them).
//!
//! Every target feeds untrusted bytes to a decoder. A typed error is always
//! fine; a panic, an abort, a hang or an allocation beyond the limits is a bug,
//! and so is a broken invariant asserted below (a decoded value that does not
//! survive re-encoding, output beyond a decompression bound, ...).

mod controller;

pub use controller::controller_decisions;

use bytes::Bytes;
use gregor_protocol::codec::{self, WriteBuf};
use gregor_protocol::compression::{self, Compression};
use gregor_protocol::frame;
use gregor_protocol::records::{
    decode_legacy_entry, decode_message_set, decode_transaction_marker, encode_message_set, entry_magic,
    parse_legacy_entry, recompute_crc, set_base_offset, set_max_timestamp, set_partition_leader_epoch,
    split_record_set, validate_batch, Record, RecordBatch, RecordBatchBuilder, RecordBatchHeader, TimestampType,
    BATCH_HEADER_BYTES, MAGIC_POSITION, MAGIC_V2,
};
use gregor_protocol::varint;
use gregor_protocol::{ApiKey, ResponseBody};

/// The decompression bound every target passes: what a broker would allow.
pub const OUTPUT_BYTES_MAX: usize = 1 << 20;
/// Record sets are split into at most this many entries per input, so one
/// input cannot spend its time on thousands of tiny entries.
const ENTRIES_MAX: usize = 64;

/// Asserts that a value survived a re-encode and decode unchanged.
///
/// `==` is tried first; when it fails the `Debug` forms are compared, which
/// treats a NaN `f64` (quota values) as equal to itself. The values differ
/// legitimately in one way: unknown tagged fields are re-encoded sorted by
/// tag, so a struct that arrived with several of them out of order comes back
/// reordered. Values holding unknown tagged fields therefore only have to
/// reach a fixpoint, which the callers check on the encoded bytes.
fn assert_round_trip<T: PartialEq + std::fmt::Debug>(what: &str, first: &T, second: &T) {
    if first == second {
        return;
    }
    let first_debug = format!("{first:?}");
    let second_debug = format!("{second:?}");
    if first_debug == second_debug || first_debug.contains("RawTaggedField") {
        return;
    }
    panic!("{what} changed across re-encoding:\n first: {first_debug}\nsecond: {second_debug}");
}

/// Target `request_frame`: a request frame without its size prefix, through
/// `frame::decode_request`. A frame that decodes must re-encode (size prefix
/// included), decode again to the same value, and its re-encoding must be a
/// fixpoint.
pub fn request_frame(data: &[u8]) {
    let Ok(decoded) = frame::decode_request(Bytes::copy_from_slice(data)) else {
        return;
    };
    assert_eq!(decoded.header.request_api_key, decoded.api_key.key());
    assert_eq!(decoded.body.api_key(), decoded.api_key);
    let encoded = frame::encode_request_frame(&decoded.header, &decoded.body)
        .unwrap_or_else(|error| panic!("decoded {:?} request does not re-encode: {error}", decoded.api_key))
        .freeze();
    let size_prefix = encoded.get(..4).expect("a frame has a size prefix");
    let size = i32::from_be_bytes(size_prefix.try_into().expect("four bytes"));
    assert_eq!(usize::try_from(size).ok(), Some(encoded.len() - 4), "size prefix");
    let again = frame::decode_request(encoded.slice(4..))
        .unwrap_or_else(|error| panic!("re-encoded {:?} request does not decode: {error}", decoded.api_key));
    assert_round_trip("request", &decoded, &again);
    let encoded_again = frame::encode_request_frame(&again.header, &again.body).expect("re-encode").freeze();
    assert_eq!(encoded, encoded_again, "re-encoding is not a fixpoint");
}

/// Target `response_bodies`: the first byte picks the API, the second its
/// version, the rest is a response body for `ResponseBody::decode`. A body
/// that decodes must re-encode (also as a whole frame) and decode to itself.
pub fn response_bodies(data: &[u8]) {
    let [key_byte, version_byte, rest @ ..] = data else {
        return;
    };
    let api_key = ApiKey::ALL[usize::from(*key_byte) % ApiKey::ALL.len()];
    let versions = api_key.versions();
    let span = i32::from(versions.max) - i32::from(versions.min) + 1;
    let version = i16::try_from(i32::from(versions.min) + i32::from(*version_byte) % span).expect("version in range");
    let mut input = Bytes::copy_from_slice(rest);
    let Ok(decoded) = ResponseBody::decode(api_key, version, &mut input) else {
        return;
    };
    assert_eq!(decoded.api_key(), api_key);
    let mut buf = WriteBuf::new();
    decoded
        .encode(&mut buf, version)
        .unwrap_or_else(|error| panic!("decoded {api_key:?} v{version} response does not re-encode: {error}"));
    let encoded = buf.freeze();
    let mut cursor = encoded.clone();
    let again = ResponseBody::decode(api_key, version, &mut cursor)
        .unwrap_or_else(|error| panic!("re-encoded {api_key:?} v{version} response does not decode: {error}"));
    assert!(cursor.is_empty(), "{api_key:?} v{version}: {} bytes left after the re-encoded body", cursor.len());
    assert_round_trip("response", &decoded, &again);
    let mut buf = WriteBuf::new();
    again.encode(&mut buf, version).expect("re-encode");
    assert_eq!(encoded, buf.freeze(), "re-encoding is not a fixpoint");

    let frame = frame::encode_response_frame(7, version, &decoded).expect("a body that encodes also frames").freeze();
    let (header, from_frame) =
        frame::decode_response(frame.slice(4..), api_key, version).expect("an encoded response frame decodes");
    assert_eq!(header.correlation_id, 7);
    assert_round_trip("framed response", &decoded, &from_frame);
}

/// Target `record_batch`: the first byte holds flags (bit 0: repair each
/// entry's CRC first, so mutations reach the record decoder), the rest is a
/// record set. Each entry is validated and, when it is a valid v2 batch, its
/// records decoded with a 1 MiB bound; the in-place header rewrites must keep
/// a valid batch valid.
pub fn record_batch(data: &[u8]) {
    let [flags, rest @ ..] = data else {
        return;
    };
    let repair_crc = flags & 1 != 0;
    let mut entries = split_record_set(Bytes::copy_from_slice(rest));
    for entry in entries.by_ref().take(ENTRIES_MAX) {
        let Ok(entry) = entry else { break };
        let entry = if repair_crc && entry.get(MAGIC_POSITION) == Some(&MAGIC_V2.to_be_bytes()[0]) {
            let mut owned = entry.to_vec();
            let _ = recompute_crc(&mut owned);
            Bytes::from(owned)
        } else {
            entry
        };
        let _ = RecordBatchHeader::parse(&entry);
        let Ok(header) = validate_batch(&entry) else { continue };
        assert_eq!(header.size_bytes(), entry.len());
        let _ = header.compression();
        let _ = header.last_offset();
        check_header_rewrites(&entry);

        let batch = RecordBatch::new(entry.clone()).expect("validate_batch accepted it");
        assert_eq!(batch.header(), &header);
        let _ = decode_transaction_marker(&batch);
        let Ok(records) = batch.records(OUTPUT_BYTES_MAX) else { continue };
        assert_eq!(records.len(), usize::try_from(header.records_count).unwrap_or(usize::MAX));
        let mut encoded_bytes = 0usize;
        for record in &records {
            let _ = header.record_offset(record);
            let _ = header.record_timestamp(record);
            encoded_bytes += record.encoded_len_bytes().expect("a decoded record has an encoded length");
        }
        if header.compression() == Ok(Compression::None) {
            // Varints may arrive longer than needed, never shorter.
            assert!(encoded_bytes <= entry.len() - BATCH_HEADER_BYTES, "records grew on re-encoding");
            check_records_borrow(&entry, &records);
        }
        check_batch_rebuild(&header, &records);
    }
}

/// Rewrites of the fields outside the CRC keep it valid; the max timestamp
/// rewrite recomputes it.
fn check_header_rewrites(entry: &Bytes) {
    let mut copy = entry.to_vec();
    set_base_offset(&mut copy, 1 << 40).expect("a valid batch takes a new base offset");
    set_partition_leader_epoch(&mut copy, 7).expect("a valid batch takes a leader epoch");
    let header = validate_batch(&copy).expect("rewrites outside the CRC keep it valid");
    assert_eq!((header.base_offset, header.partition_leader_epoch), (1 << 40, 7));
    set_max_timestamp(&mut copy, TimestampType::LogAppendTime, 1_700_000_000_000).expect("max timestamp");
    let header = validate_batch(&copy).expect("the max timestamp rewrite recomputes the CRC");
    assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(header.max_timestamp, 1_700_000_000_000);
}

/// Uncompressed records are slices of the batch, not copies.
fn check_records_borrow(entry: &Bytes, records: &[Record]) {
    let range = entry.as_ptr_range();
    let inside = |bytes: &Bytes| bytes.is_empty() || range.contains(&bytes.as_ptr());
    for record in records {
        assert!(record.key.as_ref().is_none_or(inside), "record key was copied");
        assert!(record.value.as_ref().is_none_or(inside), "record value was copied");
    }
}

/// The decoded records, rebuilt into a batch with the same codec, decode to
/// the same records.
fn check_batch_rebuild(header: &RecordBatchHeader, records: &[Record]) {
    let Ok(codec) = header.compression() else { return };
    let mut builder = RecordBatchBuilder::new(header.base_offset).compression(codec).last_offset_delta(0);
    for record in records {
        builder.push_record(record.clone());
    }
    let Ok(rebuilt) = builder.build() else { return };
    let batch = RecordBatch::new(Bytes::from(rebuilt)).expect("a built batch validates");
    let decoded = batch.records(usize::MAX).expect("a built batch decodes");
    assert_eq!(decoded, records, "records changed across a rebuild");
}

/// Target `compressed_batch`: the first byte picks the codec, the rest is
/// decompressed with a 1 MiB bound; then the rest is split into records,
/// built into a batch with that codec, and decoded back.
pub fn compressed_batch(data: &[u8]) {
    let [codec_byte, rest @ ..] = data else {
        return;
    };
    let codec = Compression::from_id(codec_byte % 5).expect("ids 0..=4 are codecs");
    if let Ok(output) = compression::decompress(codec, rest, OUTPUT_BYTES_MAX) {
        assert!(output.len() <= OUTPUT_BYTES_MAX, "{codec:?} produced {} bytes past the bound", output.len());
    }
    // Tiny bounds must hold as well.
    if let Ok(output) = compression::decompress(codec, rest, 64) {
        assert!(output.len() <= 64, "{codec:?} produced {} bytes past a 64-byte bound", output.len());
    }

    let compressed = compression::compress(codec, rest).expect("compression of any input succeeds");
    let restored = compression::decompress(codec, &compressed, rest.len()).expect("own output decompresses");
    assert_eq!(restored, rest, "{codec:?} round trip");

    let input = Bytes::copy_from_slice(rest);
    let mut builder = RecordBatchBuilder::new(42).compression(codec).base_timestamp(1_000);
    // Records of up to 255 bytes: a length byte, then half key and half value.
    let mut at = 0;
    let mut index = 0i64;
    while at < input.len() {
        let length = usize::from(input[at]).min(input.len() - at - 1);
        let body = input.slice(at + 1..at + 1 + length);
        // Keys are null when empty; every third value is null.
        let key = (length >= 2).then(|| body.slice(..length / 2));
        let value = (index % 3 != 2).then(|| body.slice(length / 2..));
        builder.append(1_000 + index, key, value, Vec::new()).expect("append");
        at += 1 + length;
        index += 1;
    }
    let Ok(built) = builder.build() else {
        assert!(builder.records().is_empty(), "a batch with records must build");
        return;
    };
    let batch = RecordBatch::new(Bytes::from(built)).expect("a built batch validates");
    assert_eq!(batch.header().compression(), Ok(codec));
    let decoded = batch.records(usize::MAX).expect("a built batch decodes");
    assert_eq!(decoded, builder.records(), "records changed through {codec:?}");
}

/// Target `legacy_message_set`: the first byte holds flags (bit 0: repair
/// each entry's CRC-32 first), the rest is a magic 0/1 message set. Whole-set
/// and per-entry decoding with a 1 MiB budget; messages that decode must
/// survive re-encoding uncompressed, and compressed when they can share one
/// wrapper.
pub fn legacy_message_set(data: &[u8]) {
    let [flags, rest @ ..] = data else {
        return;
    };
    let mut set = rest.to_vec();
    if flags & 1 != 0 {
        repair_legacy_crcs(&mut set);
    }
    let set = Bytes::from(set);
    for entry in split_record_set(set.clone()).take(ENTRIES_MAX) {
        let Ok(entry) = entry else { break };
        let _ = entry_magic(&entry);
        if let Ok(parsed) = parse_legacy_entry(&entry) {
            let _ = parsed.compression();
            let _ = parsed.timestamp_type();
        }
        let _ = decode_legacy_entry(&entry, OUTPUT_BYTES_MAX);
    }
    let Ok(messages) = decode_message_set(&set, OUTPUT_BYTES_MAX) else { return };
    if messages.is_empty() {
        return;
    }
    let encoded = Bytes::from(encode_message_set(&messages, Compression::None).expect("decoded messages re-encode"));
    let decoded = decode_message_set(&encoded, usize::MAX).expect("re-encoded messages decode");
    assert_eq!(decoded, messages, "messages changed across an uncompressed re-encode");

    let magic = messages[0].magic;
    let shareable =
        messages.iter().all(|message| message.magic == magic && message.timestamp_type == TimestampType::CreateTime);
    if shareable {
        if let Ok(wrapped) = encode_message_set(&messages, Compression::Snappy) {
            let decoded = decode_message_set(&Bytes::from(wrapped), usize::MAX).expect("a built wrapper decodes");
            assert_eq!(decoded, messages, "messages changed across a compressed re-encode");
        }
    }
}

/// Rewrites the CRC-32 of every complete legacy entry of `set` in place.
fn repair_legacy_crcs(set: &mut [u8]) {
    const CRC_AT: usize = 12;
    let mut at = 0;
    for _ in 0..ENTRIES_MAX {
        let Some(length) = set.get(at + 8..at + 12) else { return };
        let length = i32::from_be_bytes(length.try_into().expect("four bytes"));
        let Some(end) = usize::try_from(length).ok().and_then(|length| (at + 12).checked_add(length)) else {
            return;
        };
        let Some(entry) = set.get_mut(at..end) else { return };
        if entry.len() > MAGIC_POSITION {
            let crc = crc32fast::hash(&entry[MAGIC_POSITION..]);
            entry[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        }
        at = end;
    }
}

/// Target `varint`: every varint reader on the input; a value read must
/// re-encode no longer than it arrived and read back the same. The first
/// eight bytes also serve as values to write and read back.
pub fn varint(data: &[u8]) {
    if let Ok((value, length)) = varint::read_uvarint(data) {
        assert!(length <= data.len() && length <= varint::VARINT_BYTES_MAX);
        let mut out = Vec::new();
        varint::put_uvarint(&mut out, value);
        assert_eq!(out.len(), varint::uvarint_len(value));
        assert!(out.len() <= length);
        assert_eq!(varint::read_uvarint(&out), Ok((value, out.len())));
        let mut cursor = Bytes::copy_from_slice(data);
        assert_eq!(codec::read_uvarint(&mut cursor), Ok(value));
        assert_eq!(cursor.len(), data.len() - length);
    }
    if let Ok((value, length)) = varint::read_varint(data) {
        assert!(length <= data.len() && length <= varint::VARINT_BYTES_MAX);
        let mut out = Vec::new();
        varint::put_varint(&mut out, value);
        assert_eq!(out.len(), varint::varint_len(value));
        assert!(out.len() <= length);
        assert_eq!(varint::read_varint(&out), Ok((value, out.len())));
    }
    if let Ok((value, length)) = varint::read_uvarlong(data) {
        assert!(length <= data.len() && length <= varint::VARLONG_BYTES_MAX);
        let mut out = Vec::new();
        varint::put_uvarlong(&mut out, value);
        assert!(out.len() <= length);
        assert_eq!(varint::read_uvarlong(&out), Ok((value, out.len())));
    }
    if let Ok((value, length)) = varint::read_varlong(data) {
        assert!(length <= data.len() && length <= varint::VARLONG_BYTES_MAX);
        let mut out = Vec::new();
        varint::put_varlong(&mut out, value);
        assert_eq!(out.len(), varint::varlong_len(value));
        assert!(out.len() <= length);
        assert_eq!(varint::read_varlong(&out), Ok((value, out.len())));
        let mut cursor = Bytes::copy_from_slice(data);
        assert_eq!(codec::read_varlong(&mut cursor), Ok(value));
    }

    let mut raw = [0u8; 8];
    let prefix = data.len().min(8);
    raw[..prefix].copy_from_slice(&data[..prefix]);
    let wide = i64::from_le_bytes(raw);
    let narrow = i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    let mut out = WriteBuf::new();
    varint::put_varlong(&mut out, wide);
    varint::put_varint(&mut out, narrow);
    varint::put_uvarint(&mut out, narrow as u32);
    let mut written = out.freeze();
    assert_eq!(
        written.len(),
        varint::varlong_len(wide) + varint::varint_len(narrow) + varint::uvarint_len(narrow as u32)
    );
    assert_eq!(codec::read_varlong(&mut written), Ok(wide));
    assert_eq!(codec::read_varint(&mut written), Ok(narrow));
    assert_eq!(codec::read_uvarint(&mut written), Ok(narrow as u32));
    assert!(written.is_empty());
}

/// An internal-topic record framed for the record targets: a 2-byte key length, the
/// key, then the value (none when the input ends right after the key: a tombstone).
fn key_and_value(data: &[u8]) -> Option<(Bytes, Option<Bytes>)> {
    let (length, rest) = data.split_first_chunk::<2>()?;
    let key_len = usize::from(u16::from_be_bytes(*length));
    let key = Bytes::copy_from_slice(rest.get(..key_len)?);
    let value = (rest.len() > key_len).then(|| Bytes::copy_from_slice(&rest[key_len..]));
    Some((key, value))
}

/// Target `coordinator_record`: a `__consumer_offsets` record as the group
/// coordinator reads it while loading. The input is a 2-byte key length, the key,
/// then the value (none when the input ends right after the key: a tombstone).
/// A record that decodes and re-encodes must decode again to the same record.
pub fn coordinator_record(data: &[u8]) {
    use gregor_group::CoordinatorRecord;
    let Some((key, value)) = key_and_value(data) else {
        return;
    };
    let Ok(Some(record)) = CoordinatorRecord::decode(key, value) else {
        return;
    };
    // A value decoded at a newer version than we write may not fit the version we
    // write (unknown tagged fields); that is an encode error, never a panic.
    let Ok((key, value)) = record.encode() else {
        return;
    };
    let again = CoordinatorRecord::decode(key, value)
        .unwrap_or_else(|error| panic!("a re-encoded coordinator record does not decode: {error}"))
        .unwrap_or_else(|| panic!("a re-encoded coordinator record is not recognised"));
    assert_eq!(again.group_id(), record.group_id());
}

/// Target `txn_record`: a `__transaction_state` record as the transaction
/// coordinator reads it while loading, framed as for `coordinator_record`. A record
/// that decodes must re-encode and decode again; the write path normalises (an
/// Empty transaction keeps no partitions), so the second encoding must equal the first.
pub fn txn_record(data: &[u8]) {
    use gregor_txn::TxnRecord;
    let Some((key, value)) = key_and_value(data) else {
        return;
    };
    let Ok(record) = TxnRecord::decode(key, value) else {
        return;
    };
    let Ok((key, value)) = record.encode() else {
        return;
    };
    let again = TxnRecord::decode(key.clone(), value.clone())
        .unwrap_or_else(|error| panic!("a re-encoded transaction record does not decode: {error}"));
    let encoded_again = again.encode().unwrap_or_else(|error| panic!("a decoded record does not encode: {error}"));
    assert_eq!(encoded_again, (key, value), "encoding a transaction record is not a fixed point");
}

/// Target `metadata_record`: a KRaft metadata record value (frame version, type,
/// version, body) as the broker reads it when it replays the metadata log. A record
/// that decodes must re-encode at the version Gregor writes and decode again to the
/// same record.
pub fn metadata_record(data: &[u8]) {
    use gregor_metadata::MetadataRecord;
    let Ok(record) = MetadataRecord::decode(data) else {
        return;
    };
    // A record decoded at another version may not fit the one we write; that is an
    // encode error, never a panic.
    let Ok(encoded) = record.encode() else {
        return;
    };
    let again = MetadataRecord::decode(&encoded)
        .unwrap_or_else(|error| panic!("a re-encoded metadata record does not decode: {error}"));
    assert_eq!(again.record_type(), record.record_type());
}

/// Target `metadata_snapshot`: byte 0 flags (bit 0: repair each batch's CRC-32C
/// first, so mutations get past the checksums), the rest is a KRaft metadata snapshot
/// for `read_snapshot`. A snapshot that reads must have had its header first and its
/// footer last; its records, replayed into an image (refused records skipped), give an
/// image whose own snapshot reads back to the same records and rebuilds it exactly.
pub fn metadata_snapshot(data: &[u8]) {
    use gregor_metadata::snapshot::{encode_snapshot, read_snapshot, SnapshotError};
    use gregor_metadata::{MetadataError, MetadataImage};
    let [flags, rest @ ..] = data else {
        return;
    };
    let mut input = rest.to_vec();
    if flags & 1 != 0 {
        repair_batch_crcs(&mut input);
    }
    let Ok(snapshot) = read_snapshot(Bytes::from(input)) else {
        return;
    };
    let mut image = MetadataImage::empty();
    for record in &snapshot.records {
        let _ = image.replay(record);
    }
    let records = image.snapshot_records();
    let term = u64::try_from(snapshot.epoch).unwrap_or(0);
    let bytes = match encode_snapshot(&image, 0, term, snapshot.last_contained_log_time_ms, 0) {
        Ok(bytes) => bytes,
        // A decompressed batch may hold a record too big for one snapshot batch.
        Err(MetadataError::Snapshot(SnapshotError::RecordTooLarge { .. })) => return,
        Err(error) => panic!("an image rebuilt from a snapshot does not encode: {error}"),
    };
    let again = read_snapshot(bytes).unwrap_or_else(|error| panic!("a written snapshot does not read: {error}"));
    assert_eq!(again.records, records, "a snapshot's records changed across encoding");
    assert_eq!(again.last_contained_log_time_ms, snapshot.last_contained_log_time_ms);
    let mut rebuilt = MetadataImage::empty();
    for record in &again.records {
        rebuilt.replay(record).unwrap_or_else(|error| panic!("a snapshot record does not replay: {error}"));
    }
    assert_eq!(rebuilt, image, "the image rebuilt from its snapshot differs");
}

/// Recomputes the CRC of each whole v2 batch at the front of `set`.
fn repair_batch_crcs(set: &mut [u8]) {
    let mut at = 0;
    for _ in 0..ENTRIES_MAX {
        let Some(length) = set.get(at + 8..at + 12).and_then(|field| field.first_chunk::<4>()) else {
            return;
        };
        let Some(end) = usize::try_from(i32::from_be_bytes(*length))
            .ok()
            .and_then(|length| length.checked_add(at + 12))
            .filter(|end| *end <= set.len())
        else {
            return;
        };
        if let Some(batch) = set.get_mut(at..end) {
            if batch.get(MAGIC_POSITION) == Some(&MAGIC_V2.to_be_bytes()[0]) {
                let _ = recompute_crc(batch);
            }
        }
        at = end;
    }
}

/// The quorum's decoders: voters' Raft frames, observers' metadata fetches and
/// their answers, and the Raft entries the disk keeps. The first byte picks the
/// decoder. Whatever decodes must encode again to the same frame (a refused frame
/// is fine; a panic or an allocation the input did not pay for is not).
pub fn quorum_frames(data: &[u8]) {
    use gregor_quorum::wire;
    let [which, rest @ ..] = data else {
        return;
    };
    let input = Bytes::copy_from_slice(rest);
    match which % 4 {
        0 => {
            if let Ok((correlation_id, frame)) = wire::decode_frame(input) {
                let encoded = wire::encode_frame(&frame, correlation_id).expect("a decoded frame encodes");
                let (again_id, again) = wire::decode_frame(encoded.slice(4..)).expect("an encoded frame decodes");
                assert_eq!(again_id, correlation_id);
                assert_eq!(again.messages.len(), frame.messages.len());
                assert_eq!(again.cluster_id, frame.cluster_id);
            }
        }
        1 => {
            if let Ok((correlation_id, fetch)) = wire::decode_metadata_fetch(input) {
                let encoded = wire::encode_metadata_fetch(&fetch, correlation_id).expect("a fetch encodes");
                assert_eq!(wire::decode_metadata_fetch(encoded.slice(4..)).expect("decodes"), (correlation_id, fetch));
            }
        }
        2 => {
            if let Ok(answer) = wire::decode_metadata_fetch_answer(input) {
                let encoded = wire::encode_metadata_fetch_answer(&answer, 0).expect("an answer encodes");
                assert_eq!(wire::decode_metadata_fetch_answer(encoded.slice(4..)).expect("decodes"), answer);
            }
        }
        _ => {
            if let Ok(entry) = gregor_quorum::decode_entry(rest) {
                let encoded = gregor_quorum::encode_entry(&entry).expect("an entry encodes");
                assert_eq!(gregor_quorum::decode_entry(&encoded).expect("decodes"), entry);
            }
        }
    }
}
