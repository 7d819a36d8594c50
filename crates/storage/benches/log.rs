//! Segment append of 1 MiB in batches of 1 KiB records, fetch reads (bytes, and
//! file regions), and the offset lookup (index + header scan).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gregor_protocol::records::RecordBatchBuilder;
use gregor_storage::io::OsFileIo;
use gregor_storage::{Log, LogConfig, OpenOptions, TopicPartition};

const NOW: i64 = 1_700_000_000_000;
const RECORD_BYTES: usize = 1024;
const RECORDS_PER_BATCH: usize = 16;
const APPEND_BYTES: usize = 1024 * 1024;

fn batch() -> BytesMut {
    let mut b = RecordBatchBuilder::new(0);
    for i in 0..RECORDS_PER_BATCH {
        b.append(NOW, Some(Bytes::from(format!("key-{i}"))), Some(Bytes::from(vec![7u8; RECORD_BYTES])), vec![])
            .unwrap_or_else(|e| panic!("building the batch: {e}"));
    }
    BytesMut::from(&b.build().unwrap_or_else(|e| panic!("building the batch: {e}"))[..])
}

fn open(dir: &std::path::Path) -> Log {
    let options = OpenOptions { recovery_point: 0, log_start_offset: None, clean_shutdown: true, now_ms: NOW };
    Log::open(Arc::new(OsFileIo), &dir.join("bench-0"), TopicPartition::new("bench", 0), LogConfig::default(), options)
        .unwrap_or_else(|e| panic!("opening the log: {e}"))
}

fn benches(c: &mut Criterion) {
    let template = batch();
    let batches_per_mib = APPEND_BYTES / template.len();

    let mut group = c.benchmark_group("log");
    group.throughput(Throughput::Bytes((batches_per_mib * template.len()) as u64));
    // One long-lived log, as in the broker: the one-off leader-epoch
    // checkpoint of a fresh log's first append is not part of the steady state.
    let append_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let append_log = open(append_dir.path());
    group.bench_function("append_1mib_of_1kib_records", |b| {
        b.iter_batched(
            || (0..batches_per_mib).map(|_| template.clone()).collect::<Vec<BytesMut>>(),
            |inputs| {
                let log = &append_log;
                for input in inputs {
                    black_box(log.append_as_leader(input, 0, NOW).unwrap_or_else(|e| panic!("append: {e}")));
                }
            },
            BatchSize::PerIteration,
        );
    });

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let log = open(dir.path());
    for _ in 0..batches_per_mib * 8 {
        log.append_as_leader(template.clone(), 0, NOW).unwrap_or_else(|e| panic!("append: {e}"));
    }
    let end = log.log_end_offset();
    group.bench_function("read_1mib", |b| {
        let mut offset = 0;
        b.iter(|| {
            let info = log.read(offset, APPEND_BYTES, true, i64::MAX).unwrap_or_else(|e| panic!("read: {e}"));
            offset = (offset + 997) % (end - 2048);
            black_box(info.records.len())
        });
    });
    // The fetch path: whole batches located as a file region through the index
    // and a few headers, nothing read (the broker sends it with sendfile).
    group.bench_function("read_region_1mib", |b| {
        let mut offset = 0;
        b.iter(|| {
            let read = log.read_region(offset, APPEND_BYTES, true, i64::MAX).unwrap_or_else(|e| panic!("read: {e}"));
            offset = (offset + 997) % (end - 2048);
            black_box(read.region.map(|r| r.len_bytes()))
        });
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("offset_lookup_one_batch", |b| {
        let mut offset = 0;
        b.iter(|| {
            let info = log.read(offset, 1, true, i64::MAX).unwrap_or_else(|e| panic!("read: {e}"));
            offset = (offset + 7919) % end;
            black_box(info.records.len())
        });
    });
    group.finish();
}

criterion_group!(log_benches, benches);
criterion_main!(log_benches);
