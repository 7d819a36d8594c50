//! The broker's per-batch work on append: checking a 1 MiB batch's CRC-32C
//! with `records::validate_batch`, and assigning offsets by rewriting the base
//! offset in place (outside the CRC, so no recomputation).

mod common;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gregor_protocol::records::{set_base_offset, set_max_timestamp, validate_batch, TimestampType, ValidatedBatchMut};

fn bench(c: &mut Criterion) {
    // One batch of 1024 records of 1 KiB: a little over 1 MiB.
    let batch = common::batch(0, common::BATCHES * common::RECORDS_PER_BATCH, 1);
    assert!(batch.len() >= common::MIB);
    validate_batch(&batch).expect("valid batch");
    let mut rewritten = batch.clone();
    set_base_offset(&mut rewritten, 1 << 40).expect("rewrite");
    assert_eq!(validate_batch(&rewritten).expect("still valid").base_offset, 1 << 40);

    let mut group = c.benchmark_group("batch_validate");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("crc_1MiB", |b| b.iter(|| validate_batch(black_box(&batch)).expect("valid")));

    let mut target = batch.clone();
    let mut offset = 0i64;
    group.bench_function("set_base_offset_1MiB", |b| {
        b.iter(|| {
            offset += 1;
            set_base_offset(black_box(&mut target), offset).expect("rewrite")
        })
    });
    group.bench_function("validate_then_set_base_offset_1MiB", |b| {
        b.iter(|| {
            offset += 1;
            validate_batch(black_box(&target)).expect("valid");
            set_base_offset(black_box(&mut target), offset).expect("rewrite")
        })
    });
    // Log-append time: verify, stamp, recompute the CRC (two passes over the batch).
    group.bench_function("set_max_timestamp_1MiB", |b| {
        b.iter_batched_ref(
            || batch.clone(),
            |copy| set_max_timestamp(copy, TimestampType::LogAppendTime, 1_800_000_000_000).expect("stamp"),
            BatchSize::LargeInput,
        )
    });
    // The produce path for a log-append-time topic: validate once, then stamp
    // offset, leader epoch and timestamp with a single CRC recompute.
    group.bench_function("produce_stamp_log_append_time_1MiB", |b| {
        b.iter_batched_ref(
            || batch.clone(),
            |copy| {
                let mut view = ValidatedBatchMut::new(copy).expect("valid");
                view.set_base_offset(1_000).expect("offset");
                view.set_partition_leader_epoch(3).expect("epoch");
                view.set_max_timestamp(TimestampType::LogAppendTime, 1_800_000_000_000).expect("stamp")
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
