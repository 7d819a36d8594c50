//! Decoding a Produce request carrying 1 MiB of record batches with
//! `frame::decode_request`. The records come out as slices of the request
//! buffer: the bench asserts that before timing anything.

mod common;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use gregor_protocol::frame::{self, DecodedRequest};
use gregor_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::messages::{ProduceRequest, RequestHeader};
use gregor_protocol::{ApiKey, RequestBody};

/// A Produce request frame, without its size prefix, as a client sends it:
/// two topics of two partitions, each partition four batches.
fn produce_frame(version: i16) -> Bytes {
    let sets = common::partition_record_sets();
    let topic_data = sets
        .chunks(2)
        .enumerate()
        .map(|(topic, sets)| TopicProduceData {
            name: format!("bench-topic-{topic}"),
            partition_data: sets
                .iter()
                .enumerate()
                .map(|(index, set)| PartitionProduceData {
                    index: index as i32,
                    records: Some(set.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    let body = ProduceRequest { acks: -1, timeout_ms: 30_000, topic_data, ..Default::default() };
    let header = RequestHeader {
        request_api_key: ApiKey::Produce.key(),
        request_api_version: version,
        correlation_id: 17,
        client_id: Some("bench-producer".into()),
        ..Default::default()
    };
    let frame = frame::encode_request_frame(&header, &RequestBody::Produce(body)).expect("encode").freeze();
    frame.slice(4..)
}

fn record_sets(decoded: &DecodedRequest) -> Vec<Bytes> {
    let RequestBody::Produce(body) = &decoded.body else { panic!("not a produce request") };
    body.topic_data
        .iter()
        .flat_map(|topic| &topic.partition_data)
        .map(|partition| partition.records.clone().expect("records"))
        .collect()
}

/// Zero copy: every decoded record set lies inside the frame's buffer.
fn assert_records_borrowed(frame: &Bytes) {
    let decoded = frame::decode_request(frame.clone()).expect("decode");
    let sets = record_sets(&decoded);
    assert_eq!(sets.len(), common::PARTITIONS);
    let record_bytes: usize = sets.iter().map(Bytes::len).sum();
    assert!(record_bytes >= common::MIB, "only {record_bytes} bytes of records");
    for set in &sets {
        assert!(common::points_into(frame, set), "decoded records were copied out of the frame");
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("produce_decode");
    for version in [9, 3] {
        let frame = produce_frame(version);
        assert_records_borrowed(&frame);
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_function(format!("v{version}_1MiB"), |b| {
            b.iter(|| frame::decode_request(black_box(frame.clone())).expect("decode"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
