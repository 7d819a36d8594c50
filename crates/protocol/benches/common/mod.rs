//! Record batches shaped like a producer's: shared by the protocol benches.

// Each bench uses a different part of this module.
#![allow(dead_code)]

use bytes::Bytes;
use gregor_protocol::records::RecordBatchBuilder;

pub const MIB: usize = 1 << 20;
/// Value bytes of one record.
pub const RECORD_VALUE_BYTES: usize = 1024;
/// 1 MiB of record values in all: 16 batches of 64 records of 1 KiB.
pub const BATCHES: usize = 16;
pub const RECORDS_PER_BATCH: usize = 64;
/// The batches are spread over this many partitions, four batches each.
pub const PARTITIONS: usize = 4;

/// Deterministic, incompressible-looking filler.
fn filler(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// One uncompressed batch of `records` records with 16-byte keys and 1 KiB
/// values, as an idempotent producer writes it.
pub fn batch(base_offset: i64, records: usize, seed: u64) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(base_offset).producer(4_000 + seed as i64, 0, base_offset as i32);
    for index in 0..records {
        let key = Bytes::from(format!("key-{seed:04}-{index:07}"));
        let value = Bytes::from(filler(seed * 1_000_003 + index as u64, RECORD_VALUE_BYTES));
        builder.append(1_700_000_000_000 + index as i64, Some(key), Some(value), Vec::new()).expect("append");
    }
    builder.build().expect("build batch")
}

/// The record set of each partition: `BATCHES / PARTITIONS` batches back to back.
pub fn partition_record_sets() -> Vec<Bytes> {
    let per_partition = BATCHES / PARTITIONS;
    (0..PARTITIONS)
        .map(|partition| {
            let mut set = Vec::new();
            for index in 0..per_partition {
                let base_offset = (index * RECORDS_PER_BATCH) as i64;
                set.extend(batch(base_offset, RECORDS_PER_BATCH, (partition * per_partition + index) as u64));
            }
            Bytes::from(set)
        })
        .collect()
}

/// Whether `inner` lies entirely inside `outer`'s memory.
pub fn points_into(outer: &[u8], inner: &[u8]) -> bool {
    let outer = outer.as_ptr_range();
    let inner = inner.as_ptr_range();
    outer.start <= inner.start && inner.end <= outer.end
}
