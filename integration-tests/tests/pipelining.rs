//! Requests written back to back on one connection are answered in order, and
//! an acks=0 Produce gets no response at all.

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use gregor_integration_tests::raw::{RawConn, ReadOutcome};
use gregor_integration_tests::rdk::{self, TestRecord};
use gregor_integration_tests::BrokerProcess;
use gregor_protocol::frame::decode_response;
use gregor_protocol::messages::metadata_request::MetadataRequestTopic;
use gregor_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::messages::{ApiVersionsRequest, MetadataRequest, ProduceRequest};
use gregor_protocol::records::{RecordBatchBuilder, RecordHeader};
use gregor_protocol::{ApiKey, RequestBody, ResponseBody};
use rdkafka::Offset;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn api_versions(version: i16) -> RequestBody {
    let mut request = ApiVersionsRequest::default();
    if version >= 3 {
        request.client_software_name = "gregor-itest".into();
        request.client_software_version = "1.0".into();
    }
    request.into()
}

fn metadata(topic: Option<&str>) -> RequestBody {
    MetadataRequest {
        // None asks for every topic (v1+).
        topics: topic.map(|t| vec![MetadataRequestTopic { name: Some(t.into()), ..Default::default() }]),
        ..Default::default()
    }
    .into()
}

/// A Produce request of one batch holding `record`.
fn produce(topic: &str, acks: i16, record: &TestRecord) -> Result<RequestBody> {
    let mut builder = RecordBatchBuilder::new(0);
    let headers = record
        .headers
        .iter()
        .map(|(key, value)| RecordHeader { key: key.clone(), value: value.clone().map(Bytes::from) })
        .collect();
    builder
        .append(
            record.timestamp,
            Some(Bytes::from(record.key.clone())),
            Some(Bytes::from(record.value.clone())),
            headers,
        )
        .map_err(|e| anyhow::anyhow!("building a batch: {e}"))?;
    let batch = builder.build().map_err(|e| anyhow::anyhow!("building a batch: {e}"))?;
    Ok(ProduceRequest {
        acks,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(Bytes::from(batch)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
    .into())
}

/// Reads the next response and checks its correlation id; returns the body.
fn next_response(conn: &mut RawConn, api_key: ApiKey, version: i16, correlation_id: i32) -> Result<ResponseBody> {
    let frame = match conn.read_frame(WAIT)? {
        ReadOutcome::Frame(frame) => frame,
        ReadOutcome::Closed => bail!("connection closed; expected the response to {correlation_id}"),
        ReadOutcome::TimedOut => bail!("no response within {WAIT:?}; expected the response to {correlation_id}"),
    };
    ensure!(frame.len() >= 4, "a {}-byte response", frame.len());
    let got = i32::from_be_bytes(frame[..4].try_into().expect("4 bytes"));
    ensure!(
        got == correlation_id,
        "next response has correlation id {got}, expected {correlation_id} ({api_key:?} v{version})"
    );
    let (_, body) =
        decode_response(frame, api_key, version).with_context(|| format!("decoding {api_key:?} v{version}"))?;
    Ok(body)
}

#[test]
fn pipelined_requests_are_answered_in_order() -> Result<()> {
    let broker = BrokerProcess::start(&[])?;
    broker.with_diag(pipelined(&broker.bootstrap()))
}

fn pipelined(bootstrap: &str) -> Result<()> {
    rdk::create_topic(bootstrap, "pipe", 1, &[])?;
    let requests: Vec<(RequestBody, i16)> = vec![
        (api_versions(3), 3),
        (metadata(None), 12),
        (api_versions(0), 0),
        (metadata(Some("pipe")), 1),
        (metadata(Some("pipe")), 9),
        (api_versions(2), 2),
        (metadata(Some("pipe")), 4),
        (api_versions(4), 4),
        (metadata(Some("pipe")), 0),
        (metadata(Some("pipe")), 13),
    ];
    let mut conn = RawConn::connect(bootstrap)?;
    // Everything in a single write, so the broker sees the requests together.
    let mut bytes = Vec::new();
    for (index, (body, version)) in requests.iter().enumerate() {
        bytes.extend(RawConn::frame(body.clone(), *version, 1000 + index as i32)?);
    }
    conn.write_raw(&bytes)?;
    for (index, (body, version)) in requests.iter().enumerate() {
        let correlation_id = 1000 + index as i32;
        let response = next_response(&mut conn, body.api_key(), *version, correlation_id)?;
        match response {
            ResponseBody::ApiVersions(r) => {
                ensure!(r.error_code == 0, "ApiVersions v{version}: error {}", r.error_code)
            }
            ResponseBody::Metadata(r) => {
                ensure!(
                    r.topics.iter().any(|t| t.name.as_deref() == Some("pipe")),
                    "Metadata v{version} lacks topic pipe"
                )
            }
            other => bail!("unexpected {other:?}"),
        }
    }
    Ok(())
}

#[test]
fn acks_0_produce_gets_no_response() -> Result<()> {
    let broker = BrokerProcess::start(&[])?;
    broker.with_diag(acks_0(&broker.bootstrap()))
}

fn acks_0(bootstrap: &str) -> Result<()> {
    let topic = "quiet";
    rdk::create_topic(bootstrap, topic, 1, &[])?;
    let base_timestamp = rdk::day_ago_ms();
    let records: Vec<TestRecord> = (0..6).map(|i| rdk::test_record(topic, i, base_timestamp)).collect();
    let mut conn = RawConn::connect(bootstrap)?;

    // acks=0 produce, then Metadata: the next response must be Metadata's.
    conn.send(produce(topic, 0, &records[0])?, 9, 1)?;
    conn.send(metadata(Some(topic)), 12, 2)?;
    match next_response(&mut conn, ApiKey::Metadata, 12, 2).context("the response after an acks=0 Produce")? {
        ResponseBody::Metadata(r) => {
            ensure!(r.topics.iter().any(|t| t.name.as_deref() == Some(topic)), "Metadata lacks {topic}")
        }
        other => bail!("unexpected {other:?}"),
    }

    // Several acks=0 produces between answered requests, all in one write.
    let mut bytes = Vec::new();
    bytes.extend(RawConn::frame(produce(topic, 0, &records[1])?, 9, 3)?);
    bytes.extend(RawConn::frame(api_versions(3), 3, 4)?);
    bytes.extend(RawConn::frame(produce(topic, 0, &records[2])?, 9, 5)?);
    bytes.extend(RawConn::frame(produce(topic, 0, &records[3])?, 3, 6)?);
    bytes.extend(RawConn::frame(metadata(Some(topic)), 4, 7)?);
    bytes.extend(RawConn::frame(produce(topic, 1, &records[4])?, 9, 8)?);
    conn.write_raw(&bytes)?;
    next_response(&mut conn, ApiKey::ApiVersions, 3, 4)?;
    next_response(&mut conn, ApiKey::Metadata, 4, 7)?;
    match next_response(&mut conn, ApiKey::Produce, 9, 8)? {
        ResponseBody::Produce(r) => {
            let partition = r
                .responses
                .first()
                .and_then(|t| t.partition_responses.first())
                .context("Produce response without a partition")?;
            ensure!(partition.error_code == 0, "acks=1 Produce: error {}", partition.error_code);
            ensure!(
                partition.base_offset == 4,
                "acks=1 Produce after four acks=0 records: base offset {}",
                partition.base_offset
            );
        }
        other => bail!("unexpected {other:?}"),
    }
    // Nothing else is owed on this connection.
    match conn.read_frame(Duration::from_millis(500))? {
        ReadOutcome::TimedOut => {}
        ReadOutcome::Frame(frame) => bail!("an unexpected {}-byte response (to an acks=0 Produce?)", frame.len()),
        ReadOutcome::Closed => bail!("the broker closed the connection"),
    }

    // The acks=0 records are in the log, in order, byte for byte.
    let consumer = rdk::consumer(bootstrap, &[])?;
    rdk::assign(&consumer, topic, 0, Offset::Offset(0))?;
    let consumed = rdk::poll_records(&consumer, 5, Duration::from_secs(30))?;
    rdk::check_exact(&consumed, &records[..5], 0)
}
