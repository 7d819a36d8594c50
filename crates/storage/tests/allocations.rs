//! The produce and fetch paths allocate per batch, never per record: appending and
//! reading a batch of 1,000 records allocates no more than a batch of 10. A counting
//! global allocator (this test binary only) measures it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gregor_protocol::records::RecordBatchBuilder;
use gregor_storage::io::OsFileIo;
use gregor_storage::{Log, LogConfig, OpenOptions, TopicPartition};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`; `ptr` came from this allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const NOW: i64 = 1_700_000_000_000;

fn batch(records: usize) -> BytesMut {
    let mut builder = RecordBatchBuilder::new(0);
    for i in 0..records {
        builder.append(NOW, Some(Bytes::from(format!("key-{i}"))), Some(Bytes::from(vec![7u8; 100])), vec![]).unwrap();
    }
    BytesMut::from(&builder.build().unwrap()[..])
}

/// Allocations made by `work`.
fn allocations(work: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    work();
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn append_and_read_allocate_per_batch_not_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let options = OpenOptions { recovery_point: 0, log_start_offset: None, clean_shutdown: true, now_ms: NOW };
    let log = Log::open(
        Arc::new(OsFileIo),
        &dir.path().join("a-0"),
        TopicPartition::new("a", 0),
        LogConfig::default(),
        options,
    )
    .unwrap();
    // Warm up: the first append creates the segment, its indexes and buffers.
    log.append_as_leader(batch(10), 0, NOW).unwrap();

    let (small, large) = (batch(10), batch(1_000));
    let small_bytes = small.len();
    let append_small = allocations(|| {
        log.append_as_leader(small, 0, NOW).unwrap();
    });
    let append_large = allocations(|| {
        log.append_as_leader(large, 0, NOW).unwrap();
    });
    assert!(
        append_large <= append_small,
        "appending 1,000 records allocated {append_large} times, 10 records {append_small} times"
    );

    let read_small = allocations(|| {
        let read = log.read(10, small_bytes, true, i64::MAX).unwrap();
        assert_eq!(read.records.len(), small_bytes, "exactly the 10-record batch");
    });
    let read_large = allocations(|| {
        let read = log.read(20, 1 << 20, true, i64::MAX).unwrap();
        assert!(read.records.len() > 100_000);
    });
    eprintln!("allocations: append {append_small} / {append_large}, read {read_small} / {read_large}");
    assert!(
        read_large <= read_small,
        "reading 1,000 records allocated {read_large} times, 10 records {read_small} times"
    );
}
