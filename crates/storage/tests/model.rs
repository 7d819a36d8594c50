//! Random appends, reads, rolls, retention, DeleteRecords and reopens (clean
//! and after a crash) against a model that is a list of batch offset ranges.

use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gregor_protocol::records::{split_record_set, RecordBatch, RecordBatchBuilder};
use gregor_storage::io::OsFileIo;
use gregor_storage::{Log, LogConfig, OpenOptions, TopicPartition};
use proptest::prelude::*;

const NOW: i64 = 1_700_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    Append { records: usize, value_bytes: usize },
    Read { at: f64, max_bytes: usize },
    Roll,
    Retention,
    DeleteRecords { at: f64 },
    Reopen { clean: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1usize..6, 0usize..300).prop_map(|(records, value_bytes)| Op::Append { records, value_bytes }),
        3 => (0.0f64..1.0, 1usize..3000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => Just(Op::Roll),
        1 => Just(Op::Retention),
        1 => (0.0f64..1.0).prop_map(|at| Op::DeleteRecords { at }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 3000,
        index_interval_bytes: 200,
        retention_bytes: 8000,
        retention_ms: -1,
        message_timestamp_after_max_ms: i64::MAX,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, log_start_offset: i64, clean: bool) -> Log {
    let options =
        OpenOptions { recovery_point: 0, log_start_offset: Some(log_start_offset), clean_shutdown: clean, now_ms: NOW };
    Log::open(Arc::new(OsFileIo), &dir.join("m-0"), TopicPartition::new("m", 0), config(), options).unwrap()
}

fn batch(records: usize, value_bytes: usize, seed: i64) -> BytesMut {
    let mut b = RecordBatchBuilder::new(0);
    for i in 0..records {
        let value = vec![(seed as u8).wrapping_add(i as u8); value_bytes];
        b.append(NOW + seed, Some(Bytes::from(format!("{seed}-{i}"))), Some(Bytes::from(value)), vec![]).unwrap();
    }
    BytesMut::from(&b.build().unwrap()[..])
}

/// (base offset, last offset) of the batches in `records`, checking each CRC.
fn ranges(records: Bytes) -> Vec<(i64, i64)> {
    split_record_set(records)
        .map(|b| {
            let b = RecordBatch::new(b.unwrap()).unwrap();
            (b.header().base_offset, b.header().last_offset())
        })
        .collect()
}

fn offset_at(start: i64, end: i64, at: f64) -> i64 {
    start + ((end - start) as f64 * at) as i64
}

struct Model {
    batches: Vec<(i64, i64)>,
    log_start: i64,
    log_end: i64,
}

impl Model {
    fn visible(&self) -> Vec<(i64, i64)> {
        self.batches.iter().copied().filter(|&(_, last)| last >= self.log_start).collect()
    }
}

fn check(log: &Log, model: &Model) {
    assert_eq!(log.log_end_offset(), model.log_end);
    assert_eq!(log.high_watermark(), model.log_end);
    assert_eq!(log.log_start_offset(), model.log_start);
    let mut seen = Vec::new();
    let mut offset = model.log_start;
    while offset < model.log_end {
        let got = ranges(log.read(offset, 1 << 20, true, i64::MAX).unwrap().records);
        assert!(!got.is_empty());
        offset = got.last().unwrap().1 + 1;
        seen.extend(got);
    }
    assert_eq!(seen, model.visible());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), 0, true);
        let mut model = Model { batches: Vec::new(), log_start: 0, log_end: 0 };
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Append { records, value_bytes } => {
                    let info = log.append_as_leader(batch(records, value_bytes, step as i64), 0, NOW).unwrap();
                    prop_assert_eq!(info.base_offset, model.log_end);
                    prop_assert_eq!(info.last_offset, model.log_end + records as i64 - 1);
                    model.batches.push((info.base_offset, info.last_offset));
                    model.log_end = info.last_offset + 1;
                }
                Op::Read { at, max_bytes } => {
                    let offset = offset_at(model.log_start, model.log_end, at);
                    let got = ranges(log.read(offset, max_bytes, true, i64::MAX).unwrap().records);
                    if offset < model.log_end {
                        let &(base, last) = got.first().unwrap();
                        prop_assert!(base <= offset && offset <= last);
                        prop_assert!(model.batches.contains(&(base, last)));
                    } else {
                        prop_assert!(got.is_empty());
                    }
                    let too_far = log.read(model.log_end + 1, max_bytes, true, i64::MAX);
                    prop_assert!(too_far.is_err());
                }
                Op::Roll => log.roll(NOW).unwrap(),
                Op::Retention => {
                    let before = log.size_bytes();
                    let deleted = log.enforce_retention(NOW).unwrap();
                    let start = log.log_start_offset();
                    prop_assert!(start >= model.log_start && start <= model.log_end);
                    if deleted > 0 {
                        prop_assert!(log.size_bytes() < before);
                        // Whole segments go, so the start is a batch boundary.
                        prop_assert!(start == model.log_end || model.batches.iter().any(|&(b, _)| b == start));
                    }
                    model.log_start = start;
                }
                Op::DeleteRecords { at } => {
                    let target = offset_at(model.log_start, model.log_end, at);
                    let start = log.delete_records_before(target).unwrap();
                    prop_assert_eq!(start, target.max(model.log_start));
                    model.log_start = start;
                    prop_assert!(log.delete_records_before(model.log_end + 1).is_err());
                }
                Op::Reopen { clean } => {
                    if clean {
                        log.close().unwrap();
                    }
                    drop(log);
                    log = open(dir.path(), model.log_start, clean);
                }
            }
            check(&log, &model);
        }
    }
}
