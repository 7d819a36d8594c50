//! A replicated log's operations (leader and follower appends, truncation,
//! truncation to a new start, rolls, DeleteRecords, leader changes and reopens,
//! clean and after a crash) in random order against a model: the batches with
//! their leader epochs, the log start and end, and the leader-epoch cache with
//! Kafka's OffsetForLeaderEpoch answers. Every step checks every read, the
//! offsets, each batch found through the indexes and the epoch cache.

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
    LeaderAppend {
        records: usize,
    },
    FollowerAppend {
        batches: usize,
        records: usize,
        gap: i64,
    },
    /// A new leader elsewhere: later follower appends carry its epoch.
    NewEpoch,
    /// This replica becomes the leader of a new epoch.
    BecomeLeader,
    TruncateTo {
        at: f64,
    },
    TruncateFully {
        past_end: i64,
    },
    Roll,
    DeleteRecords {
        at: f64,
    },
    Read {
        at: f64,
        max_bytes: usize,
    },
    Reopen {
        clean: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..4).prop_map(|records| Op::LeaderAppend { records }),
        6 => (1usize..4, 1usize..4, prop_oneof![6 => Just(0i64), 1 => 1i64..4])
            .prop_map(|(batches, records, gap)| Op::FollowerAppend { batches, records, gap }),
        1 => Just(Op::NewEpoch),
        1 => Just(Op::BecomeLeader),
        3 => (0.0f64..1.2).prop_map(|at| Op::TruncateTo { at }),
        1 => (-2i64..5).prop_map(|past_end| Op::TruncateFully { past_end }),
        1 => Just(Op::Roll),
        1 => (0.0f64..1.0).prop_map(|at| Op::DeleteRecords { at }),
        2 => (0.0f64..1.0, 1usize..2000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1500,
        index_interval_bytes: 150,
        message_timestamp_after_max_ms: i64::MAX,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, log_start_offset: i64, clean: bool) -> Log {
    let options =
        OpenOptions { recovery_point: 0, log_start_offset: Some(log_start_offset), clean_shutdown: clean, now_ms: NOW };
    Log::open(Arc::new(OsFileIo), &dir.join("m-0"), TopicPartition::new("m", 0), config(), options).unwrap()
}

fn build(base: i64, records: usize, epoch: i32, seed: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new(base).partition_leader_epoch(epoch);
    for i in 0..records {
        let value = vec![(seed as u8).wrapping_add(i as u8); 40 + seed % 80];
        b.append(NOW + seed as i64, Some(Bytes::from(format!("{seed}-{i}"))), Some(Bytes::from(value)), vec![])
            .unwrap();
    }
    Bytes::from(b.build().unwrap())
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Batch {
    base: i64,
    last: i64,
    epoch: i32,
    /// The bytes of a follower append, which the log must keep exactly.
    bytes: Option<Bytes>,
}

#[derive(Debug, Default)]
struct Model {
    batches: Vec<Batch>,
    log_start: i64,
    log_end: i64,
    /// (epoch, start offset), ascending.
    epochs: Vec<(i32, i64)>,
    /// The epoch of the next appends.
    epoch: i32,
}

impl Model {
    fn assign(&mut self, epoch: i32, start: i64) {
        if self.epochs.last().is_none_or(|&(latest, _)| epoch > latest) {
            // As Kafka's assign: an epoch that never wrote is superseded.
            self.epochs.retain(|&(_, s)| s < start);
            self.epochs.push((epoch, start));
        }
    }

    fn truncate_epochs_from_end(&mut self, end: i64) {
        self.epochs.retain(|&(_, start)| start < end);
    }

    fn truncate_epochs_from_start(&mut self, start: i64) {
        let Some(keep_from) = self.epochs.iter().rposition(|&(_, s)| s <= start) else { return };
        self.epochs.drain(..keep_from);
        if let Some(first) = self.epochs.first_mut() {
            first.1 = start;
        }
    }

    /// Kafka's endOffsetFor.
    fn end_offset_for(&self, requested: i32) -> Option<(i32, i64)> {
        if requested < 0 {
            return None;
        }
        if self.epochs.last().is_some_and(|&(e, _)| e == requested) {
            return Some((requested, self.log_end));
        }
        let higher = self.epochs.iter().find(|&&(e, _)| e > requested)?;
        match self.epochs.iter().rev().find(|&&(e, _)| e <= requested) {
            Some(&(floor, _)) => Some((floor, higher.1)),
            None => Some((requested, higher.1)),
        }
    }

    fn visible(&self) -> Vec<&Batch> {
        self.batches.iter().filter(|b| b.last >= self.log_start).collect()
    }

    /// `segment_bases`: the log's segments before the truncation.
    fn truncate_to(&mut self, offset: i64, segment_bases: &[i64]) -> bool {
        if offset >= self.log_end {
            let end = self.log_end;
            self.truncate_epochs_from_end(end);
            return false;
        }
        // The log ends where the last batch left ends, or at the start of the
        // segment that held `offset` when nothing is left in it.
        let head_base = segment_bases.iter().copied().filter(|&b| b <= offset).max().unwrap_or(0);
        let new_end = self
            .batches
            .iter()
            .filter(|b| b.last < offset && b.base >= head_base)
            .map(|b| b.last + 1)
            .max()
            .unwrap_or(head_base);
        self.batches.retain(|b| b.base < new_end);
        self.log_end = new_end;
        self.log_start = self.log_start.min(new_end);
        self.truncate_epochs_from_end(new_end);
        true
    }
}

fn offset_at(start: i64, end: i64, at: f64) -> i64 {
    start + ((end - start) as f64 * at) as i64
}

/// The batches `read` returns: (base, last, epoch) and their bytes, CRCs checked.
fn batches_read(records: Bytes) -> Vec<(i64, i64, i32, Bytes)> {
    split_record_set(records)
        .map(|b| {
            let bytes = b.unwrap();
            let batch = RecordBatch::new(bytes.clone()).unwrap();
            let h = batch.header();
            (h.base_offset, h.last_offset(), h.partition_leader_epoch, bytes)
        })
        .collect()
}

fn check(log: &Log, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(log.log_end_offset(), model.log_end);
    prop_assert_eq!(log.high_watermark(), model.log_end);
    prop_assert_eq!(log.log_start_offset(), model.log_start);
    let visible = model.visible();
    // Everything, read in large reads from the log start.
    let mut seen = Vec::new();
    let mut offset = model.log_start;
    while offset < model.log_end {
        let got = batches_read(log.read(offset, 1 << 20, true, i64::MAX).unwrap().records);
        // Only a gap (from a follower append past the end) ends the log without a batch.
        let Some(last) = got.last() else { break };
        offset = last.1 + 1;
        seen.extend(got);
    }
    prop_assert_eq!(seen.len(), visible.len());
    for (got, want) in seen.iter().zip(&visible) {
        prop_assert_eq!((got.0, got.1, got.2), (want.base, want.last, want.epoch));
        if let Some(bytes) = &want.bytes {
            prop_assert_eq!(&got.3, bytes);
        }
    }
    // Each batch through the offset index: a one-byte read from its first visible offset.
    for want in &visible {
        let from = want.base.max(model.log_start);
        let got = batches_read(log.read(from, 1, true, i64::MAX).unwrap().records);
        prop_assert_eq!(got.len(), 1);
        prop_assert_eq!((got[0].0, got[0].1), (want.base, want.last));
    }
    prop_assert!(log.read(model.log_end + 1, 100, true, i64::MAX).is_err());
    prop_assert!(log.read(model.log_end, 100, true, i64::MAX).unwrap().records.is_empty());
    prop_assert_eq!(log.latest_epoch(), model.epochs.last().map(|&(e, _)| e));
    for epoch in -1..=model.epoch + 1 {
        prop_assert_eq!(log.end_offset_for_epoch(epoch), model.end_offset_for(epoch), "epoch {}", epoch);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn replicated_log_matches_model(ops in proptest::collection::vec(op(), 1..70)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), 0, true);
        let mut model = Model::default();
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::LeaderAppend { records } => {
                    let bytes = BytesMut::from(&build(0, records, -1, step)[..]);
                    let info = log.append_as_leader(bytes, model.epoch, NOW).unwrap();
                    prop_assert_eq!(info.base_offset, model.log_end);
                    let (epoch, base) = (model.epoch, info.base_offset);
                    model.assign(epoch, base);
                    model.batches.push(Batch { base, last: info.last_offset, epoch, bytes: None });
                    model.log_end = info.last_offset + 1;
                }
                Op::FollowerAppend { batches, records, gap } => {
                    let mut set = Vec::new();
                    let mut next = model.log_end + gap;
                    let mut appended = Vec::new();
                    for i in 0..batches {
                        let bytes = build(next, records, model.epoch, step * 8 + i);
                        set.extend_from_slice(&bytes);
                        let last = next + records as i64 - 1;
                        appended.push(Batch { base: next, last, epoch: model.epoch, bytes: Some(bytes) });
                        next = last + 1;
                    }
                    let info = log.append_as_follower(&set, NOW).unwrap();
                    prop_assert_eq!((info.base_offset, info.last_offset), (model.log_end + gap, next - 1));
                    for batch in appended {
                        let (epoch, base) = (batch.epoch, batch.base);
                        model.assign(epoch, base);
                        model.batches.push(batch);
                    }
                    model.log_end = next;
                    // A stale retry is refused and changes nothing.
                    if let Some(&Batch { base, .. }) = model.batches.last() {
                        let stale = build(base, 1, model.epoch, step);
                        prop_assert!(log.append_as_follower(&stale, NOW).is_err());
                    }
                }
                Op::NewEpoch => model.epoch += 1,
                Op::BecomeLeader => {
                    model.epoch += 1;
                    log.assign_leader_epoch(model.epoch).unwrap();
                    let (epoch, end) = (model.epoch, model.log_end);
                    model.assign(epoch, end);
                }
                Op::TruncateTo { at } => {
                    let offset = offset_at(model.log_start, model.log_end, at);
                    let segment_bases = log.segment_base_offsets();
                    let truncated = log.truncate_to(offset).unwrap();
                    prop_assert_eq!(truncated, model.truncate_to(offset, &segment_bases));
                }
                Op::TruncateFully { past_end } => {
                    let offset = (model.log_end + past_end).max(0);
                    log.truncate_fully_and_start_at(offset).unwrap();
                    model.batches.clear();
                    model.epochs.clear();
                    model.log_start = offset;
                    model.log_end = offset;
                }
                Op::Roll => log.roll(NOW).unwrap(),
                Op::DeleteRecords { at } => {
                    let target = offset_at(model.log_start, model.log_end, at);
                    let start = log.delete_records_before(target).unwrap();
                    prop_assert_eq!(start, target.max(model.log_start));
                    if start > model.log_start {
                        model.log_start = start;
                        model.truncate_epochs_from_start(start);
                    }
                }
                Op::Read { at, max_bytes } => {
                    let offset = offset_at(model.log_start, model.log_end, at);
                    let got = batches_read(log.read(offset, max_bytes, true, i64::MAX).unwrap().records);
                    match model.visible().into_iter().find(|b| b.last >= offset) {
                        Some(want) => prop_assert_eq!(got.first().map(|g| (g.0, g.1)), Some((want.base, want.last))),
                        None => prop_assert!(got.is_empty()),
                    }
                }
                Op::Reopen { clean } => {
                    if clean {
                        log.close().unwrap();
                    }
                    drop(log);
                    log = open(dir.path(), model.log_start, clean);
                    // The cache is cut back to the log end at open: an epoch
                    // assigned at leadership without a batch in it is gone.
                    let end = model.log_end;
                    model.truncate_epochs_from_end(end);
                }
            }
            check(&log, &model)?;
        }
    }
}
