use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::BytesMut;
use gregor_protocol::records::split_record_set;

use super::*;
use crate::config::TopicPartition;
use crate::error::ReadError;
use crate::io::{FileIo, OsFileIo};
use crate::log::OpenOptions;
use crate::manager::LogManager;

const NOW: i64 = 1_700_000_000_000;

/// One decoded record as a consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    offset: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        cleanup_policy_compact: true,
        cleanup_policy_delete: false,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    }
}

fn open_with(dir: &Path, config: LogConfig, clean: bool) -> Log {
    let options = OpenOptions { recovery_point: 0, log_start_offset: None, clean_shutdown: clean, now_ms: NOW };
    let io: Arc<dyn FileIo> = Arc::new(OsFileIo);
    Log::open(io, &dir.join("t-0"), TopicPartition::new("t", 0), config, options).unwrap()
}

fn open(dir: &Path) -> Log {
    open_with(dir, config(), true)
}

/// A batch of `(key, value)` records at `ts`.
fn batch_of(
    records: &[(&str, Option<&str>)],
    ts: i64,
    codec: Compression,
    producer: Option<(i64, i16, i32)>,
) -> BytesMut {
    let mut b = RecordBatchBuilder::new(0).compression(codec);
    if let Some((pid, epoch, seq)) = producer {
        b = b.producer(pid, epoch, seq);
    }
    for (k, v) in records {
        b.append(ts, Some(Bytes::from(k.to_string())), v.map(|v| Bytes::from(v.to_string())), vec![]).unwrap();
    }
    BytesMut::from(&b.build().unwrap()[..])
}

fn put(log: &Log, key: &str, value: Option<&str>) -> i64 {
    log.append_as_leader(batch_of(&[(key, value)], NOW, Compression::None, None), 0, NOW).unwrap().base_offset
}

fn batches(records: &Bytes) -> Vec<RecordBatch> {
    split_record_set(records.clone()).map(|b| RecordBatch::new(b.unwrap()).unwrap()).collect()
}

/// Every batch from `from` to the log end, reading as a consumer does.
fn read_batches(log: &Log, from: i64) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < log.log_end_offset() {
        let info = log.read(offset, 1 << 20, true, i64::MAX).unwrap();
        let bs = batches(&info.records);
        let Some(last) = bs.last() else { break };
        offset = last.header().last_offset() + 1;
        out.extend(bs);
    }
    out
}

fn read_records(log: &Log) -> Vec<Seen> {
    let mut out = Vec::new();
    for batch in read_batches(log, log.log_start_offset()) {
        for r in batch.records(1 << 24).unwrap() {
            out.push(Seen { offset: batch.header().record_offset(&r), key: r.key.clone(), value: r.value.clone() });
        }
    }
    out
}

fn active_base(log: &Log) -> i64 {
    *log.segment_base_offsets().last().unwrap()
}

/// What compaction must leave: below `active`, only each key's last record.
fn expected(before: &[Seen], active: i64) -> Vec<Seen> {
    let mut last: BTreeMap<Option<Bytes>, i64> = BTreeMap::new();
    for s in before.iter().filter(|s| s.offset < active) {
        last.insert(s.key.clone(), s.offset);
    }
    before.iter().filter(|s| s.offset >= active || last.get(&s.key) == Some(&s.offset)).cloned().collect()
}

fn fill_overwrites(log: &Log, updates: usize, keys: usize) {
    for i in 0..updates {
        let offset = put(log, &format!("key{}", i % keys), Some(&format!("value-{i}-{}", "x".repeat(40))));
        assert_eq!(offset, i as i64);
    }
}

#[test]
fn overwritten_keys_compact_to_the_latest_value_with_offsets_kept() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    fill_overwrites(&log, 400, 10);
    let segments_before = log.segment_count();
    assert!(segments_before > 10, "{segments_before} segments");
    let before = read_records(&log);
    let (start, end, hw, size) = (log.log_start_offset(), log.log_end_offset(), log.high_watermark(), log.size_bytes());
    let active = active_base(&log);

    let stats = log.compact(NOW).unwrap();
    assert_eq!(stats.segments_rewritten as usize, segments_before - 1);
    assert!(stats.records_removed > 300, "{stats:?}");
    assert!(stats.bytes_after < stats.bytes_before);
    assert_eq!((log.log_start_offset(), log.log_end_offset(), log.high_watermark()), (start, end, hw));
    assert!(log.size_bytes() < size);
    assert_eq!(active_base(&log), active, "the active segment stays");

    let after = read_records(&log);
    assert_eq!(after, expected(&before, active));
    // Every key's newest value is still the last one read.
    let latest = |records: &[Seen]| -> BTreeMap<Option<Bytes>, Option<Bytes>> {
        records.iter().map(|s| (s.key.clone(), s.value.clone())).collect()
    };
    assert_eq!(latest(&after), latest(&before));
    // Nothing left to clean.
    assert!(log.compact(NOW).unwrap().is_empty());
    assert_eq!(read_records(&log), after);

    // Another round: the small cleaned segments are merged.
    let cleaned_segments = log.segment_count();
    for i in 400..600 {
        put(&log, &format!("key{}", i % 10), Some(&format!("value-{i}-{}", "x".repeat(40))));
    }
    let before = read_records(&log);
    let active = active_base(&log);
    let stats = log.compact(NOW).unwrap();
    assert!(stats.segments_written < stats.segments_rewritten, "{stats:?}");
    assert!(log.segment_count() <= cleaned_segments, "{} > {cleaned_segments}", log.segment_count());
    assert_eq!(read_records(&log), expected(&before, active));
    assert_eq!(log.log_end_offset(), 600);
}

#[test]
fn reads_inside_a_gap_return_the_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    fill_overwrites(&log, 300, 7);
    log.compact(NOW).unwrap();
    let all = read_batches(&log, 0);
    for offset in 0..log.log_end_offset() {
        let info = log.read(offset, 1, true, i64::MAX).unwrap();
        let first = batches(&info.records).into_iter().next().expect("a batch at or after every offset");
        let want = all.iter().find(|b| b.header().last_offset() >= offset).unwrap();
        assert_eq!(first.as_bytes(), want.as_bytes(), "fetch at {offset}");
    }
}

#[test]
fn tombstones_stay_until_delete_retention_passes() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_with(dir.path(), LogConfig { delete_retention_ms: 10_000, ..config() }, true);
    for i in 0..60 {
        put(&log, &format!("k{}", i % 6), Some(&format!("v{i}-{}", "y".repeat(50))));
    }
    for k in 0..3 {
        put(&log, &format!("k{k}"), None);
    }
    log.roll(NOW).unwrap();
    put(&log, "other", Some("x"));
    log.compact(NOW + 1).unwrap();
    let records = read_records(&log);
    let tombstones: Vec<_> = records.iter().filter(|s| s.value.is_none()).map(|s| s.key.clone().unwrap()).collect();
    assert_eq!(tombstones, vec![Bytes::from("k0"), Bytes::from("k1"), Bytes::from("k2")]);
    for k in 0..3 {
        let key = Bytes::from(format!("k{k}"));
        assert_eq!(records.iter().filter(|s| s.key.as_ref() == Some(&key)).count(), 1, "only the tombstone of {key:?}");
    }

    // Later: more dirty data, and the tombstones' segment is past delete.retention.ms.
    for i in 0..20 {
        put(&log, "k5", Some(&format!("late{i}-{}", "z".repeat(50))));
    }
    log.roll(NOW).unwrap();
    put(&log, "other", Some("y"));
    log.compact(NOW + 20_000).unwrap();
    let records = read_records(&log);
    assert!(records.iter().all(|s| s.value.is_some()), "{records:?}");
    let keys: Vec<_> = records.iter().map(|s| String::from_utf8(s.key.clone().unwrap().to_vec()).unwrap()).collect();
    assert_eq!(keys, vec!["k3", "k4", "other", "k5", "other"]);
}

#[test]
fn the_active_segment_is_never_touched() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    fill_overwrites(&log, 200, 3);
    let active = active_base(&log);
    let path = dir.path().join("t-0").join(file_name(active, LOG_SUFFIX));
    let bytes = fs::read(&path).unwrap();
    assert!(!bytes.is_empty());
    log.compact(NOW).unwrap();
    assert_eq!(fs::read(&path).unwrap(), bytes);
    // A log with only its active segment has nothing to clean.
    let dir2 = tempfile::tempdir().unwrap();
    let single = open_with(dir2.path(), LogConfig { segment_bytes: 1 << 20, ..config() }, true);
    fill_overwrites(&single, 50, 3);
    assert!(single.compact(NOW).unwrap().is_empty());
    assert_eq!(read_records(&single).len(), 50);
}

#[test]
fn other_policies_and_clean_logs_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_with(dir.path(), LogConfig { cleanup_policy_compact: false, ..config() }, true);
    fill_overwrites(&log, 200, 3);
    assert!(log.compact(NOW).unwrap().is_empty());
    assert_eq!(read_records(&log).len(), 200);

    // Below the dirty ratio nothing happens; young data waits for min.compaction.lag.ms.
    let dir = tempfile::tempdir().unwrap();
    let log = open_with(dir.path(), LogConfig { min_compaction_lag_ms: 60_000, ..config() }, true);
    fill_overwrites(&log, 200, 3);
    assert!(log.compact(NOW).unwrap().is_empty());
    assert!(!log.compact(NOW + 61_000).unwrap().is_empty());

    // Unique keys: cleaning removes nothing, and the cleaned part stays large.
    let dir = tempfile::tempdir().unwrap();
    let log = open_with(dir.path(), LogConfig { min_cleanable_dirty_ratio: 0.5, ..config() }, true);
    fill_overwrites(&log, 200, 200);
    assert!(log.compact(NOW).unwrap().is_empty(), "nothing to remove");
    let checkpoint = log.cleaner_checkpoint().unwrap();
    assert_eq!(checkpoint, active_base(&log));
    fill_overwrites_from(&log, 200, 10, 3);
    log.roll(NOW).unwrap();
    log.compact(NOW).unwrap();
    assert_eq!(log.cleaner_checkpoint(), Some(checkpoint), "a little dirty data is below the ratio");
    // max.compaction.lag.ms forces it once the dirty data is old enough.
    log.update_config(LogConfig { min_cleanable_dirty_ratio: 0.5, max_compaction_lag_ms: 1_000, ..config() });
    log.compact(NOW + 500).unwrap();
    assert_eq!(log.cleaner_checkpoint(), Some(checkpoint));
    log.compact(NOW + 5_000).unwrap();
    assert_eq!(log.cleaner_checkpoint(), Some(active_base(&log)));
    assert!(active_base(&log) > checkpoint);
}

fn fill_overwrites_from(log: &Log, first: usize, count: usize, keys: usize) {
    for i in first..first + count {
        put(log, &format!("key{}", i % keys), Some(&format!("value-{i}")));
    }
}

#[test]
fn compressed_batches_keep_their_codec_and_whole_batches_their_bytes() {
    for codec in [Compression::Gzip, Compression::Lz4, Compression::Zstd, Compression::Snappy] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        let value = "c".repeat(30);
        for round in 0..20 {
            let records: Vec<(String, Option<&str>)> =
                (0..5).map(|k| (format!("r{}-k{k}", round % 4), Some(value.as_str()))).collect();
            let refs: Vec<(&str, Option<&str>)> = records.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            log.append_as_leader(batch_of(&refs, NOW + round, codec, None), 0, NOW).unwrap();
        }
        // A batch whose keys nobody overwrites.
        let unique =
            log.append_as_leader(batch_of(&[("u1", Some("a")), ("u2", Some("b"))], NOW, codec, None), 0, NOW).unwrap();
        let original = read_batches(&log, unique.base_offset).into_iter().next().unwrap();
        // Half of a batch overwritten by the next one.
        log.append_as_leader(batch_of(&[("half1", Some("a")), ("half2", Some("b"))], NOW, codec, None), 0, NOW)
            .unwrap();
        log.append_as_leader(batch_of(&[("half2", Some("c"))], NOW, codec, None), 0, NOW).unwrap();
        log.roll(NOW).unwrap();
        put(&log, "tail", Some("t"));
        let before = read_records(&log);
        let active = active_base(&log);
        log.compact(NOW).unwrap();

        let all = read_batches(&log, 0);
        assert!(all.iter().all(|b| b.header().compression().unwrap() == codec || b.header().base_offset >= active));
        let kept = all.iter().find(|b| b.header().base_offset == unique.base_offset).unwrap();
        assert_eq!(kept.as_bytes(), original.as_bytes(), "{codec:?}: a fully kept batch is copied byte for byte");
        let half = all.iter().find(|b| b.header().base_offset == unique.base_offset + 2).unwrap();
        assert_eq!((half.header().records_count, half.header().last_offset_delta), (1, 1), "{codec:?}");
        assert_eq!(half.header().compression().unwrap(), codec);
        assert_eq!(read_records(&log), expected(&before, active), "{codec:?}");
    }
}

#[test]
fn rebuilt_batches_keep_header_fields() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let records = [("a", Some("1")), ("b", Some("2")), ("c", Some("3"))];
    log.append_as_leader(batch_of(&records, NOW - 5, Compression::None, Some((9, 3, 0))), 4, NOW).unwrap();
    log.append_as_leader(batch_of(&[("b", Some("new"))], NOW, Compression::None, None), 4, NOW).unwrap();
    log.roll(NOW).unwrap();
    put(&log, "z", Some("z"));
    let original = *read_batches(&log, 0)[0].header();
    log.compact(NOW).unwrap();
    let rebuilt = read_batches(&log, 0).remove(0);
    let h = rebuilt.header();
    assert_eq!(
        (h.base_offset, h.last_offset_delta, h.partition_leader_epoch, h.producer_id, h.producer_epoch),
        (original.base_offset, original.last_offset_delta, 4, 9, 3)
    );
    assert_eq!(
        (h.base_sequence, h.base_timestamp, h.timestamp_type()),
        (0, original.base_timestamp, original.timestamp_type())
    );
    let offsets: Vec<i64> = rebuilt.records(1 << 20).unwrap().iter().map(|r| h.record_offset(r)).collect();
    assert_eq!(offsets, vec![0, 2]);
}

#[test]
fn producer_state_and_duplicate_detection_survive_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    // The producer's batches are all overwritten later, its last one included.
    for seq in 0..10 {
        let key = format!("p{}", seq % 2);
        let b = batch_of(
            &[(key.as_str(), Some("v")), ("shared", Some("p"))],
            NOW,
            Compression::None,
            Some((7, 1, seq * 2)),
        );
        log.append_as_leader(b, 0, NOW).unwrap();
    }
    for i in 0..30 {
        put(&log, ["p0", "p1", "shared"][i % 3], Some(&format!("later{i}-{}", "q".repeat(60))));
    }
    log.roll(NOW).unwrap();
    put(&log, "tail", Some("t"));
    let states = log.producer_states();
    let stats = log.compact(NOW).unwrap();
    assert!(stats.records_removed >= 20, "{stats:?}");
    assert_eq!(log.producer_states(), states);
    // The last batch of producer 7 remains as an empty batch.
    let empty: Vec<_> = read_batches(&log, 0).into_iter().filter(|b| b.header().producer_id == 7).collect();
    assert_eq!(empty.len(), 1);
    assert_eq!(
        (empty[0].header().records_count, empty[0].header().base_sequence, empty[0].header().last_offset_delta),
        (0, 18, 1)
    );
    // A retry of the last batch is still a duplicate.
    let retry = batch_of(&[("p1", Some("v")), ("shared", Some("p"))], NOW, Compression::None, Some((7, 1, 18)));
    let dup = log.append_as_leader(retry.clone(), 0, NOW).unwrap();
    assert_eq!((dup.base_offset, dup.records_count), (18, 0));

    // A reopen that replays the whole log (no snapshots) rebuilds the same state.
    drop(log);
    for entry in fs::read_dir(dir.path().join("t-0")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "snapshot") {
            fs::remove_file(path).unwrap();
        }
    }
    let log = open_with(dir.path(), config(), false);
    assert_eq!(log.producer_states(), states);
    let dup = log.append_as_leader(retry, 0, NOW).unwrap();
    assert_eq!((dup.base_offset, dup.records_count), (18, 0));

    // Once the producer writes again, its old empty batch goes and the new last one stays.
    let next = batch_of(&[("p0", Some("again"))], NOW, Compression::None, Some((7, 1, 20)));
    let next_offset = log.append_as_leader(next, 0, NOW).unwrap().base_offset;
    for i in 0..20 {
        put(&log, "p0", Some(&format!("final{i}-{}", "w".repeat(60))));
    }
    log.roll(NOW).unwrap();
    put(&log, "tail", Some("t"));
    let states = log.producer_states();
    log.compact(NOW).unwrap();
    let mine: Vec<_> = read_batches(&log, 0).into_iter().filter(|b| b.header().producer_id == 7).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!((mine[0].header().base_offset, mine[0].header().records_count), (next_offset, 0));
    assert_eq!(log.producer_states(), states);
}

#[test]
fn reopen_after_compaction_reads_the_same_clean_or_not() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        fill_overwrites(&log, 300, 12);
        log.compact(NOW).unwrap();
        let records = read_records(&log);
        let raw: Vec<Bytes> = read_batches(&log, 0).into_iter().map(RecordBatch::into_bytes).collect();
        let bases = log.segment_base_offsets();
        if clean {
            log.close().unwrap();
        }
        drop(log);
        let log = open_with(dir.path(), config(), clean);
        assert_eq!(read_records(&log), records, "clean={clean}");
        let again: Vec<Bytes> = read_batches(&log, 0).into_iter().map(RecordBatch::into_bytes).collect();
        assert_eq!(again, raw);
        assert_eq!(log.segment_base_offsets(), bases);
        assert_eq!(log.log_end_offset(), 300);
        put(&log, "after", Some("reopen"));
        assert_eq!(log.log_end_offset(), 301);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn leftover_cleaned_files_are_discarded_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    fill_overwrites(&log, 200, 5);
    let records = read_records(&log);
    log.flush().unwrap();
    drop(log);
    let part = dir.path().join("t-0");
    for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        fs::write(with_suffix(&part, 0, suffix, CLEANED), b"half written garbage").unwrap();
    }
    // An index swap without its log swap is an incomplete swap too.
    fs::write(with_suffix(&part, 0, INDEX_SUFFIX, SWAP), b"junk").unwrap();
    let log = open_with(dir.path(), config(), false);
    assert_eq!(read_records(&log), records);
    let names: Vec<String> =
        fs::read_dir(&part).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.ends_with(CLEANED) && !n.ends_with(SWAP)), "{names:?}");
}

/// A crash after the cleaned segments became `.swap` files, with none, some or
/// all of the old segments deleted: the open completes the swap.
#[test]
fn a_crash_mid_swap_completes_on_open() {
    for deleted_old in [0usize, 1, usize::MAX] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        fill_overwrites(&log, 300, 8);
        log.compact(NOW).unwrap();
        fill_overwrites_from(&log, 300, 200, 8);
        log.flush().unwrap();
        let part = dir.path().join("t-0");
        let before_dir = dir.path().join("before");
        copy_dir(&part, &before_dir);
        let old_bases = log.segment_base_offsets();
        log.compact(NOW).unwrap();
        let records = read_records(&log);
        let new_bases = log.segment_base_offsets();
        assert!(new_bases.len() < old_bases.len());
        drop(log);

        // Rebuild the crash state: the old segments plus the new ones as swap files.
        let after_dir = dir.path().join("after");
        fs::rename(&part, &after_dir).unwrap();
        fs::rename(&before_dir, &part).unwrap();
        let active = *new_bases.last().unwrap();
        for &base in new_bases.iter().filter(|&&b| b != active) {
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                fs::copy(with_suffix(&after_dir, base, suffix, ""), with_suffix(&part, base, suffix, SWAP)).unwrap();
            }
        }
        let old_below_active: Vec<i64> = old_bases.iter().copied().filter(|&b| b < active).collect();
        for &base in old_below_active.iter().take(deleted_old) {
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                fs::remove_file(with_suffix(&part, base, suffix, "")).unwrap();
            }
        }
        let log = open_with(dir.path(), config(), false);
        let recovered = read_records(&log);
        // Like Kafka, a swap replaces the old segments its own offsets reach;
        // old segments after its last batch (all of whose records the
        // cleaning removed) may survive: less compacted, nothing lost.
        assert!(records.iter().all(|r| recovered.contains(r)), "deleted_old={deleted_old}");
        let latest = |rs: &[Seen]| -> BTreeMap<Option<Bytes>, Option<Bytes>> {
            rs.iter().map(|s| (s.key.clone(), s.value.clone())).collect()
        };
        assert_eq!(latest(&recovered), latest(&records));
        if deleted_old == usize::MAX {
            assert_eq!(recovered, records);
            assert_eq!(log.segment_base_offsets(), new_bases);
        }
        let names: Vec<String> =
            fs::read_dir(&part).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(names.iter().all(|n| !n.ends_with(SWAP)), "{names:?}");
        // The next cleaning removes what survived.
        log.compact(NOW).unwrap();
        assert_eq!(read_records(&log), records);
        drop(log);
        // And a clean reopen after that agrees.
        let log = open_with(dir.path(), config(), true);
        assert_eq!(read_records(&log), records);
    }
}

#[test]
fn the_manager_cleans_due_logs_and_checkpoints_the_dirty_offset() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    let tp = TopicPartition::new("c", 0);
    let active;
    {
        let manager = LogManager::open(&dirs).unwrap();
        let log = manager.get_or_create(&tp, config(), NOW).unwrap();
        fill_overwrites(&log, 200, 4);
        let plain = manager
            .get_or_create(&TopicPartition::new("d", 0), LogConfig { cleanup_policy_compact: false, ..config() }, NOW)
            .unwrap();
        fill_overwrites(&plain, 200, 4);
        let cleaned = manager.compact_due(NOW);
        assert_eq!(cleaned.len(), 1);
        assert_eq!(cleaned[0].0, tp);
        active = active_base(&log);
        assert_eq!(log.cleaner_checkpoint(), Some(active));
        assert!(manager.compact_due(NOW).is_empty());
        manager.shutdown().unwrap();
    }
    let text = fs::read_to_string(dir.path().join("cleaner-offset-checkpoint")).unwrap();
    assert_eq!(text, format!("0\n1\nc 0 {active}\n"));
    let manager = LogManager::open(&dirs).unwrap();
    let log = manager.get_or_create(&tp, config(), NOW).unwrap();
    assert_eq!(log.cleaner_checkpoint(), Some(active));
    assert!(manager.compact_due(NOW).is_empty(), "nothing new is dirty after a restart");
}

#[test]
fn compaction_runs_alongside_appends_reads_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let log =
        Arc::new(open_with(dir.path(), LogConfig { cleanup_policy_delete: true, retention_ms: -1, ..config() }, true));
    let writer = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for i in 0..1500 {
                put(&log, &format!("key{}", i % 13), Some(&format!("value-{i}-{}", "x".repeat(40))));
            }
        })
    };
    let reader = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut reads = 0;
            while log.log_end_offset() < 1500 {
                // DeleteRecords may move the start under a read: start over then.
                let mut offset = log.log_start_offset();
                let mut previous = -1;
                while offset < log.log_end_offset() {
                    let info = match log.read(offset, 4096, true, i64::MAX) {
                        Ok(info) => info,
                        Err(ReadError::OffsetOutOfRange { .. }) => break,
                        Err(e) => panic!("read at {offset}: {e}"),
                    };
                    let bs = batches(&info.records);
                    let Some(last) = bs.last() else { break };
                    offset = last.header().last_offset() + 1;
                    for batch in bs {
                        for r in batch.records(1 << 24).unwrap() {
                            let at = batch.header().record_offset(&r);
                            assert!(at > previous);
                            previous = at;
                            let value = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
                            assert!(value.starts_with(&format!("value-{at}-")), "offset {at} holds {value}");
                        }
                    }
                }
                reads += 1;
            }
            reads
        })
    };
    let mut cleanings = 0;
    while !writer.is_finished() {
        if !log.compact(NOW).unwrap().is_empty() {
            cleanings += 1;
        }
        log.enforce_retention(NOW).unwrap();
        let high_watermark = log.high_watermark();
        if high_watermark > 400 {
            log.delete_records_before(high_watermark - 300).unwrap();
        }
    }
    writer.join().unwrap();
    assert!(reader.join().unwrap() > 0);
    assert!(cleanings > 0);
    log.roll(NOW).unwrap();
    log.compact(NOW).unwrap();
    let records = read_records(&log);
    assert_eq!(records.len(), 13, "{records:?}");
    for r in &records {
        assert!(r.offset >= 1500 - 13);
    }
    assert!(!log.is_offline());
}
