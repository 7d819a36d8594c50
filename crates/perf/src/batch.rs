//! Record batches built once and Produce frames encoded once, then sent again
//! and again: a send patches the correlation id, the two batch timestamps and
//! the CRC in place, so the cost per record is a share of one CRC pass.
//!
//! Batches come in a few sizes ("classes": 1, 2, 3, 4, 6, 8, 12, ... records up
//! to a full batch). A full batch is what an unthrottled producer sends; the
//! smaller ones serve a throttled producer whose batches close early (linger)
//! and the last records of a `--num-records` run. Rounding a request down to a
//! class keeps the number of distinct frames logarithmic in the batch size.

use std::sync::Arc;

use bytes::Bytes;
use gregor_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::messages::ProduceRequest;
use gregor_protocol::records::{recompute_crc, Record, RecordBatchBuilder, BATCH_HEADER_BYTES};
use gregor_protocol::{Compression, Uuid};

use crate::conn::request_frame;
use crate::error::PerfError;

/// Where the v2 batch header keeps the base and max timestamps.
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
/// A request frame starts with its size, the API key and the API version.
const CORRELATION_ID_AT: usize = 8;
/// Produce v9 is the first flexible version (compact lengths, tagged fields).
const FIRST_FLEXIBLE_PRODUCE_VERSION: i16 = 9;
/// Above this many records per batch the quadratic search below would be slow,
/// and no broker accepts such a batch anyway.
const RECORDS_PER_BATCH_MAX: usize = 1 << 20;
/// Filler for the part of a value that is not random: compressible, as real data often is.
const PATTERN: &[u8] = b"gregor perf record value; ";

/// What the records of a run look like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PayloadSpec {
    pub record_size_bytes: usize,
    /// The share of each value that is random bytes; the rest repeats [`PATTERN`].
    pub random_ratio: f64,
    pub batch_size_bytes: usize,
    pub compression: Compression,
}

/// A small, fast generator for the random part of values (splitmix64); the
/// values need to defeat compression, not to be unpredictable.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A seed that differs between runs and processes.
    pub fn seed_from_clock() -> u64 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or_default();
        nanos ^ (u64::from(std::process::id()) << 32)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// One value: `random_ratio` of it random, the rest the pattern.
fn record_value(size_bytes: usize, random_ratio: f64, random: &mut SplitMix64) -> Bytes {
    let random_bytes = ((size_bytes as f64) * random_ratio.clamp(0.0, 1.0)).round() as usize;
    let mut value = vec![0u8; size_bytes];
    let (random_part, pattern_part) = value.split_at_mut(random_bytes.min(size_bytes));
    random.fill(random_part);
    for (byte, pattern) in pattern_part.iter_mut().zip(PATTERN.iter().cycle()) {
        *byte = *pattern;
    }
    Bytes::from(value)
}

/// How many records of `record_size_bytes` fit an uncompressed batch of
/// `batch_size_bytes`, at least one. Compressed batches hold as many records as
/// uncompressed ones, so runs with different codecs send the same records per request.
pub fn records_per_batch(record_size_bytes: usize, batch_size_bytes: usize) -> Result<usize, PerfError> {
    let mut used_bytes = BATCH_HEADER_BYTES;
    let value = Bytes::from(vec![0u8; record_size_bytes]);
    let mut count = 0usize;
    while count < RECORDS_PER_BATCH_MAX {
        let offset_delta = i32::try_from(count).unwrap_or(i32::MAX);
        let record = Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta,
            key: None,
            value: Some(value.clone()),
            headers: Vec::new(),
        };
        let record_bytes = record.encoded_len_bytes()?;
        if count > 0 && used_bytes + record_bytes > batch_size_bytes {
            break;
        }
        used_bytes += record_bytes;
        count += 1;
    }
    Ok(count)
}

/// 1, 2, 3, 4, 6, 8, 12, 16, ... (two per power of two) below `max`, then `max`.
pub fn size_classes(max: usize) -> Vec<usize> {
    let mut classes = Vec::new();
    let mut power = 1usize;
    while power < max {
        classes.push(power);
        let between = power + power / 2;
        if power >= 2 && between < max {
            classes.push(between);
        }
        power *= 2;
    }
    classes.push(max.max(1));
    classes.dedup();
    classes
}

/// Every size class of batch, built once per run and shared by all connections.
/// Base offset 0, producer id -1 (not idempotent), timestamps 0 until stamped.
#[derive(Debug)]
pub struct BatchTemplates {
    classes: Vec<usize>,
    batches: Vec<Bytes>,
    record_size_bytes: usize,
}

impl BatchTemplates {
    pub fn new(spec: &PayloadSpec, seed: u64) -> Result<Self, PerfError> {
        let full = records_per_batch(spec.record_size_bytes, spec.batch_size_bytes)?;
        let mut random = SplitMix64::new(seed);
        let values: Vec<Bytes> =
            (0..full).map(|_| record_value(spec.record_size_bytes, spec.random_ratio, &mut random)).collect();
        let classes = size_classes(full);
        let mut batches = Vec::with_capacity(classes.len());
        for &count in &classes {
            let mut builder = RecordBatchBuilder::new(0).compression(spec.compression).base_timestamp(0);
            for value in values.iter().take(count) {
                builder.append(0, None, Some(value.clone()), Vec::new())?;
            }
            batches.push(Bytes::from(builder.build()?));
        }
        Ok(Self { classes, batches, record_size_bytes: spec.record_size_bytes })
    }

    pub fn records_per_batch_max(&self) -> usize {
        self.classes.last().copied().unwrap_or(1)
    }

    pub fn record_size_bytes(&self) -> usize {
        self.record_size_bytes
    }

    pub fn class_count(&self) -> usize {
        self.classes.len()
    }

    /// The largest class of at most `records` records; `None` for zero.
    pub fn class_for(&self, records: u64) -> Option<usize> {
        self.classes.iter().rposition(|&count| count as u64 <= records)
    }

    pub fn class_records(&self, class: usize) -> usize {
        self.classes.get(class).copied().unwrap_or(0)
    }

    pub fn batch(&self, class: usize) -> Option<&Bytes> {
        self.batches.get(class)
    }
}

/// One Produce request frame (size prefix included) holding one batch.
#[derive(Debug, Clone)]
pub struct ProduceFrame {
    bytes: Vec<u8>,
    batch_at: usize,
    batch_len: usize,
    partition_at: usize,
    records: usize,
}

/// What every Produce request of a connection shares.
#[derive(Debug, Clone)]
pub struct ProduceTarget {
    pub topic: String,
    pub topic_id: Uuid,
    pub acks: i16,
    pub timeout_ms: i32,
    pub version: i16,
}

impl ProduceFrame {
    pub fn encode(target: &ProduceTarget, partition: i32, batch: &Bytes, records: usize) -> Result<Self, PerfError> {
        let request = ProduceRequest {
            transactional_id: None,
            acks: target.acks,
            timeout_ms: target.timeout_ms,
            topic_data: vec![TopicProduceData {
                // The encoder writes whichever of the two the version has.
                name: target.topic.clone(),
                topic_id: target.topic_id,
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(batch.clone()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let bytes = request_frame(&request.into(), target.version, 0)?;
        // The batch is the last field but for up to three empty tagged-field
        // sections (partition, topic, request) of flexible versions.
        let batch_at = (0..=3)
            .filter_map(|trailer_bytes| bytes.len().checked_sub(trailer_bytes + batch.len()))
            .find(|&at| bytes.get(at..at + batch.len()) == Some(&batch[..]))
            .ok_or_else(|| {
                PerfError::Internal(format!("the batch is not at the end of its Produce v{} frame", target.version))
            })?;
        // The partition index comes right before the records' length: an INT32 up to
        // v8, an unsigned varint of length + 1 from v9 (flexible versions).
        let length_prefix_bytes = if target.version >= FIRST_FLEXIBLE_PRODUCE_VERSION {
            let mut value = batch.len() as u64 + 1;
            let mut bytes_needed = 1;
            while value >= 0x80 {
                value >>= 7;
                bytes_needed += 1;
            }
            bytes_needed
        } else {
            4
        };
        let partition_at = batch_at
            .checked_sub(length_prefix_bytes + 4)
            .filter(|&at| bytes.get(at..at + 4) == Some(&partition.to_be_bytes()[..]))
            .ok_or_else(|| {
                PerfError::Internal(format!(
                    "no partition index before the batch of a Produce v{} frame",
                    target.version
                ))
            })?;
        Ok(Self { bytes, batch_at, batch_len: batch.len(), partition_at, records })
    }

    /// Points the frame at another partition of the same topic: the frame is
    /// otherwise the same, so one frame per batch class serves every partition.
    pub fn set_partition(&mut self, partition: i32) {
        if let Some(at) = self.bytes.get_mut(self.partition_at..self.partition_at + 4) {
            at.copy_from_slice(&partition.to_be_bytes());
        }
    }

    /// Makes the frame ready to send as request `correlation_id` with records
    /// stamped `timestamp_ms`: the timestamps lie inside the CRC, so it is redone.
    pub fn stamp(&mut self, correlation_id: i32, timestamp_ms: i64) -> Result<(), PerfError> {
        let timestamp = timestamp_ms.to_be_bytes();
        if let Some(at) = self.bytes.get_mut(CORRELATION_ID_AT..CORRELATION_ID_AT + 4) {
            at.copy_from_slice(&correlation_id.to_be_bytes());
        }
        let batch = self
            .bytes
            .get_mut(self.batch_at..self.batch_at + self.batch_len)
            .ok_or_else(|| PerfError::Internal("the batch lies outside its frame".to_owned()))?;
        for at in [BASE_TIMESTAMP_AT, MAX_TIMESTAMP_AT] {
            if let Some(field) = batch.get_mut(at..at + 8) {
                field.copy_from_slice(&timestamp);
            }
        }
        recompute_crc(batch)?;
        Ok(())
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn batch(&self) -> &[u8] {
        &self.bytes[self.batch_at..self.batch_at + self.batch_len]
    }

    pub fn records(&self) -> usize {
        self.records
    }
}

/// The frames of one connection, one per batch class, encoded when first used and
/// pointed at a partition before each send: with many partitions, a frame per
/// partition would cost the load tool a fresh encode and page faults per partition.
#[derive(Debug)]
pub struct ProduceFrames {
    templates: Arc<BatchTemplates>,
    target: ProduceTarget,
    partitions: Vec<i32>,
    frames: Vec<Option<ProduceFrame>>,
}

impl ProduceFrames {
    pub fn new(templates: Arc<BatchTemplates>, target: ProduceTarget, partitions: Vec<i32>) -> Self {
        let frames = vec![None; templates.class_count()];
        Self { templates, target, partitions, frames }
    }

    pub fn partitions(&self) -> &[i32] {
        &self.partitions
    }

    pub fn templates(&self) -> &BatchTemplates {
        &self.templates
    }

    /// The frame for the partition at `slot` (an index into [`ProduceFrames::partitions`]).
    pub fn frame(&mut self, slot: usize, class: usize) -> Result<&mut ProduceFrame, PerfError> {
        let out_of_range = || PerfError::Internal(format!("no frame for partition slot {slot}, class {class}"));
        let partition = *self.partitions.get(slot).ok_or_else(out_of_range)?;
        let entry = self.frames.get_mut(class).ok_or_else(out_of_range)?;
        if entry.is_none() {
            let batch = self.templates.batch(class).ok_or_else(out_of_range)?;
            *entry = Some(ProduceFrame::encode(&self.target, partition, batch, self.templates.class_records(class))?);
        }
        let frame = entry.as_mut().ok_or_else(out_of_range)?;
        frame.set_partition(partition);
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::frame::decode_request;
    use gregor_protocol::records::{validate_batch, RecordBatch};
    use gregor_protocol::RequestBody;

    fn spec(compression: Compression) -> PayloadSpec {
        PayloadSpec { record_size_bytes: 1024, random_ratio: 0.5, batch_size_bytes: 16384, compression }
    }

    #[test]
    fn classes_grow_geometrically_and_end_at_the_full_batch() {
        assert_eq!(size_classes(1), vec![1]);
        assert_eq!(size_classes(15), vec![1, 2, 3, 4, 6, 8, 12, 15]);
        assert_eq!(size_classes(16), vec![1, 2, 3, 4, 6, 8, 12, 16]);
        assert_eq!(size_classes(1000).len(), 20);
    }

    #[test]
    fn a_batch_fills_up_to_its_size() {
        // 1 KiB values take 1024 + 7 bytes of record framing.
        assert_eq!(records_per_batch(1024, 16384).unwrap(), 15);
        assert_eq!(records_per_batch(100_000, 16384).unwrap(), 1);
        assert_eq!(records_per_batch(10, 100).unwrap(), 2);
    }

    #[test]
    fn values_mix_random_bytes_and_the_pattern() {
        let value = record_value(100, 0.3, &mut SplitMix64::new(7));
        assert_eq!(value.len(), 100);
        assert_eq!(&value[30..30 + PATTERN.len()], PATTERN);
        assert_ne!(&value[..30], &[0u8; 30][..]);
    }

    #[test]
    fn templates_pick_the_largest_class_that_fits() {
        let templates = BatchTemplates::new(&spec(Compression::None), 1).unwrap();
        assert_eq!(templates.records_per_batch_max(), 15);
        assert_eq!(templates.class_for(0), None);
        assert_eq!(templates.class_records(templates.class_for(10).unwrap()), 8);
        assert_eq!(templates.class_records(templates.class_for(1000).unwrap()), 15);
        for class in 0..templates.class_count() {
            let header = validate_batch(templates.batch(class).unwrap()).unwrap();
            assert_eq!(header.records_count as usize, templates.class_records(class));
            assert_eq!(header.producer_id, -1);
            assert_eq!(header.base_offset, 0);
        }
    }

    #[test]
    fn stamped_frames_carry_a_valid_batch_with_the_new_timestamps() {
        for compression in [Compression::None, Compression::Zstd, Compression::Lz4] {
            let templates = Arc::new(BatchTemplates::new(&spec(compression), 2).unwrap());
            for version in [3, 8, 9, 12, 13] {
                let target = ProduceTarget {
                    topic: "perf".into(),
                    topic_id: Uuid::from_u128(42),
                    acks: -1,
                    timeout_ms: 30_000,
                    version,
                };
                let mut frames = ProduceFrames::new(Arc::clone(&templates), target, vec![3, 5]);
                let full = templates.class_count() - 1;
                let frame = frames.frame(1, full).unwrap();
                frame.stamp(77, 1_700_000_000_123).unwrap();
                let header = validate_batch(frame.batch()).unwrap();
                assert_eq!((header.base_timestamp, header.max_timestamp), (1_700_000_000_123, 1_700_000_000_123));
                assert_eq!(header.records_count, 15);

                let size = i32::from_be_bytes(frame.bytes()[..4].try_into().unwrap()) as usize;
                assert_eq!(size + 4, frame.bytes().len());
                let decoded = decode_request(Bytes::copy_from_slice(&frame.bytes()[4..])).unwrap();
                assert_eq!(decoded.header.correlation_id, 77);
                let RequestBody::Produce(request) = decoded.body else { panic!("not a produce request") };
                assert_eq!(request.acks, -1);
                let partition = &request.topic_data[0].partition_data[0];
                assert_eq!(partition.index, 5);
                let batch = RecordBatch::new(partition.records.clone().unwrap()).unwrap();
                let records = batch.records(1 << 20).unwrap();
                assert_eq!(records.len(), 15);
                assert!(records.iter().all(|record| record.value.as_ref().unwrap().len() == 1024));
                assert_eq!(batch.header().record_timestamp(&records[14]), 1_700_000_000_123);

                // Restamping the same bytes keeps them valid.
                frame.stamp(78, 1_700_000_000_999).unwrap();
                assert_eq!(validate_batch(frame.batch()).unwrap().max_timestamp, 1_700_000_000_999);

                // One frame per class serves every partition: each class, smallest (a
                // one-byte length prefix) to full, goes to the slot it is asked for.
                for class in 0..templates.class_count() {
                    for (slot, expected) in [(0, 3), (1, 5), (0, 3)] {
                        let frame = frames.frame(slot, class).unwrap();
                        frame.stamp(79, 1_700_000_001_000).unwrap();
                        let decoded = decode_request(Bytes::copy_from_slice(&frame.bytes()[4..])).unwrap();
                        let RequestBody::Produce(request) = decoded.body else { panic!("not a produce request") };
                        let partition = &request.topic_data[0].partition_data[0];
                        assert_eq!(partition.index, expected, "v{version}, class {class}, slot {slot}");
                        let records = partition.records.clone().unwrap();
                        assert_eq!(
                            validate_batch(&records).unwrap().records_count as usize,
                            templates.class_records(class)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn random_values_keep_compression_honest() {
        let zstd = BatchTemplates::new(&spec(Compression::Zstd), 3).unwrap();
        let none = BatchTemplates::new(&spec(Compression::None), 3).unwrap();
        let full = none.class_count() - 1;
        let ratio = zstd.batch(full).unwrap().len() as f64 / none.batch(full).unwrap().len() as f64;
        assert!(ratio > 0.45 && ratio < 0.7, "compressed to {ratio}");
    }
}
