//! Encoding a Fetch response carrying 1 MiB of records with
//! `frame::encode_response_frame`. The record sets go into the output as
//! shared chunks, not copies: the bench asserts that before timing anything.

mod common;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use gregor_protocol::codec::Uuid;
use gregor_protocol::frame;
use gregor_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use gregor_protocol::messages::FetchResponse;
use gregor_protocol::ResponseBody;

/// Header and per-partition fields copied into the frame must stay below
/// this; everything else must be shared.
const COPIED_BYTES_MAX: usize = 512;

/// Two topics of two partitions, each partition four batches.
fn fetch_response(sets: &[Bytes]) -> ResponseBody {
    let responses = sets
        .chunks(2)
        .enumerate()
        .map(|(topic, sets)| FetchableTopicResponse {
            topic: format!("bench-topic-{topic}"),
            topic_id: Uuid::from_u128(0x5eed_0000 + topic as u128),
            partitions: sets
                .iter()
                .enumerate()
                .map(|(index, set)| PartitionData {
                    partition_index: index as i32,
                    high_watermark: 1 << 20,
                    last_stable_offset: 1 << 20,
                    log_start_offset: 0,
                    aborted_transactions: Some(Vec::new()),
                    records: Some(set.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    ResponseBody::Fetch(FetchResponse { session_id: 99, responses, ..Default::default() })
}

/// Zero copy: each record set is one chunk of the output, the very same
/// memory, and only a few header bytes were copied.
fn assert_records_shared(version: i16, body: &ResponseBody, sets: &[Bytes]) {
    let frame = frame::encode_response_frame(5, version, body).expect("encode");
    let total = frame.len();
    let chunks = frame.into_chunks();
    assert_eq!(chunks.iter().map(Bytes::len).sum::<usize>(), total);
    for set in sets {
        assert!(
            chunks.iter().any(|chunk| chunk.as_ptr() == set.as_ptr() && chunk.len() == set.len()),
            "v{version}: a record set was copied instead of shared"
        );
    }
    let shared = |chunk: &Bytes| sets.iter().any(|set| set.as_ptr() == chunk.as_ptr());
    let copied: usize = chunks.iter().filter(|chunk| !shared(chunk)).map(Bytes::len).sum();
    assert!(copied <= COPIED_BYTES_MAX, "v{version}: {copied} bytes copied besides the records");
    assert_eq!(copied + sets.iter().map(Bytes::len).sum::<usize>(), total);
}

fn bench(c: &mut Criterion) {
    let sets = common::partition_record_sets();
    let mut group = c.benchmark_group("fetch_encode");
    for version in [12, 16] {
        let body = fetch_response(&sets);
        assert_records_shared(version, &body, &sets);
        let frame_bytes = frame::encode_response_frame(5, version, &body).expect("encode").len();
        group.throughput(Throughput::Bytes(frame_bytes as u64));
        group.bench_function(format!("v{version}_1MiB_chunks"), |b| {
            b.iter(|| frame::encode_response_frame(5, version, black_box(&body)).expect("encode").into_chunks())
        });
        // For comparison: the same frame flattened into one buffer, which copies the records.
        group.bench_function(format!("v{version}_1MiB_contiguous_copy"), |b| {
            b.iter(|| frame::encode_response_frame(5, version, black_box(&body)).expect("encode").freeze())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
