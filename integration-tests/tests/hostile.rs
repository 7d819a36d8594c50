//! Hostile input on a raw socket: each case gets the protocol's error response
//! or a closed connection, and afterwards the broker still serves an rdkafka
//! client and a connection that was open all along.

use anyhow::{bail, ensure, Context, Result};
use bytes::BufMut;
use gregor_integration_tests::raw::{RawConn, ReadOutcome, CLIENT_ID};
use gregor_integration_tests::rdk;
use gregor_integration_tests::{peak_rss_bytes, BrokerProcess};
use gregor_protocol::messages::{ApiVersionsRequest, MetadataRequest};
use gregor_protocol::{ApiKey, ErrorCode, ResponseBody};
use rdkafka::consumer::Consumer;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);
const HEALTH_TOPIC: &str = "health";

/// The broker plus a connection opened before any hostile input.
struct Fixture {
    broker: BrokerProcess,
    bystander: RawConn,
    correlation: i32,
    health_record: u64,
}

impl Fixture {
    fn new() -> Result<Fixture> {
        let broker = BrokerProcess::start(&[])?;
        broker.with_diag(rdk::create_topic(&broker.bootstrap(), HEALTH_TOPIC, 1, &[]))?;
        let bystander = RawConn::connect(&broker.bootstrap())?;
        let mut fixture = Fixture { broker, bystander, correlation: 0, health_record: 0 };
        fixture.check_healthy("before any hostile input")?;
        Ok(fixture)
    }

    /// The broker is alive, the bystander connection answers ApiVersions and
    /// Metadata, and a fresh rdkafka client gets metadata and an acks=all produce through.
    fn check_healthy(&mut self, after: &str) -> Result<()> {
        let result = self.healthy();
        self.broker.with_diag(result.with_context(|| format!("broker unhealthy {after}")))
    }

    fn healthy(&mut self) -> Result<()> {
        ensure!(self.broker.is_running(), "the broker process exited");
        self.correlation += 1;
        let request = ApiVersionsRequest {
            client_software_name: "gregor-itest".into(),
            client_software_version: "1.0".into(),
            ..Default::default()
        };
        match self.bystander.round_trip(request, 3, self.correlation).context("bystander ApiVersions v3")? {
            ResponseBody::ApiVersions(r) => ensure!(r.error_code == 0, "bystander ApiVersions error {}", r.error_code),
            other => bail!("unexpected {other:?}"),
        }
        self.correlation += 1;
        match self
            .bystander
            .round_trip(MetadataRequest { topics: None, ..Default::default() }, 12, self.correlation)
            .context("bystander Metadata v12")?
        {
            ResponseBody::Metadata(r) => {
                ensure!(
                    r.topics.iter().any(|t| t.name.as_deref() == Some(HEALTH_TOPIC)),
                    "bystander Metadata lacks {HEALTH_TOPIC}: {r:?}"
                )
            }
            other => bail!("unexpected {other:?}"),
        }

        let bootstrap = self.broker.bootstrap();
        let consumer = rdk::consumer(&bootstrap, &[])?;
        let metadata =
            consumer.fetch_metadata(Some(HEALTH_TOPIC), Duration::from_secs(10)).context("rdkafka Metadata")?;
        ensure!(
            metadata.topics().len() == 1 && metadata.topics()[0].partitions().len() == 1,
            "rdkafka Metadata: {} topics",
            metadata.topics().len()
        );
        let (producer, log) = rdk::producer(&bootstrap, &[("acks", "all")], 0)?;
        let index = self.health_record as usize;
        rdk::send(
            &producer,
            HEALTH_TOPIC,
            0,
            index,
            &rdk::test_record(HEALTH_TOPIC, self.health_record, rdk::day_ago_ms()),
        )?;
        use rdkafka::producer::Producer;
        producer.flush(Duration::from_secs(15)).context("rdkafka produce")?;
        match log.snapshot().get(index).cloned().flatten() {
            Some(Ok((0, offset))) => {
                ensure!(offset == self.health_record as i64, "health record {index} at offset {offset}")
            }
            other => bail!("rdkafka produce of health record {index}: {other:?}"),
        }
        self.health_record += 1;
        Ok(())
    }
}

fn size_prefixed(body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(body);
    frame
}

/// A request header (v1) with an arbitrary key and version, and `rest` after it.
fn raw_request(api_key: i16, api_version: i16, correlation_id: i32, rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.put_i16(api_key);
    body.put_i16(api_version);
    body.put_i32(correlation_id);
    body.put_i16(CLIENT_ID.len() as i16);
    body.extend_from_slice(CLIENT_ID.as_bytes());
    body.extend_from_slice(rest);
    size_prefixed(&body)
}

/// Either the connection is closed, or a response with `correlation_id` arrives.
fn expect_error_or_close(conn: &mut RawConn, correlation_id: i32, what: &str) -> Result<()> {
    match conn.read_frame(WAIT).with_context(|| what.to_string())? {
        ReadOutcome::Closed => Ok(()),
        ReadOutcome::Frame(frame) => {
            ensure!(frame.len() >= 4, "{what}: a {}-byte response", frame.len());
            let got = i32::from_be_bytes(frame[..4].try_into().expect("4 bytes"));
            ensure!(got == correlation_id, "{what}: response with correlation id {got}, expected {correlation_id}");
            Ok(())
        }
        ReadOutcome::TimedOut => bail!("{what}: neither a response nor a closed connection within {WAIT:?}"),
    }
}

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn two_gigabyte_size_prefix_closes_the_connection_without_allocating() -> Result<()> {
    let mut f = Fixture::new()?;
    let mut conn = RawConn::connect(&f.broker.bootstrap())?;
    let mut frame = Vec::new();
    frame.put_i32(i32::MAX); // 2 GiB - 1
    frame.extend_from_slice(&raw_request(ApiKey::ApiVersions.key(), 0, 1, &[])[4..]);
    let _ = conn.write_raw(&frame);
    f.broker.with_diag(conn.expect_closed(WAIT).context("after a 2 GB size prefix"))?;
    if let Some(peak) = peak_rss_bytes(f.broker.pid()) {
        ensure!(peak < 512 * 1024 * 1024, "broker peak RSS {} MiB after a 2 GB size prefix", peak >> 20);
    }
    f.check_healthy("after a 2 GB size prefix")
}

#[test]
fn negative_size_prefix_closes_the_connection() -> Result<()> {
    let mut f = Fixture::new()?;
    for size in [-1i32, i32::MIN, -4] {
        let mut conn = RawConn::connect(&f.broker.bootstrap())?;
        let mut frame = Vec::new();
        frame.put_i32(size);
        frame.extend_from_slice(&raw_request(ApiKey::ApiVersions.key(), 0, 1, &[])[4..]);
        let _ = conn.write_raw(&frame);
        f.broker.with_diag(conn.expect_closed(WAIT).with_context(|| format!("after size prefix {size}")))?;
        f.check_healthy(&format!("after size prefix {size}"))?;
    }
    Ok(())
}

#[test]
fn garbage_frames_get_an_error_or_a_close() -> Result<()> {
    let mut f = Fixture::new()?;
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    for round in 0..30 {
        let len = 8 + (rng.next() % 300) as usize;
        let mut body = rng.bytes(len);
        // Not Produce: an acks=0 produce would rightly get no answer at all.
        if body[0] == 0 && body[1] == 0 {
            body[1] = 3;
        }
        let correlation_id = i32::from_be_bytes(body[4..8].try_into().expect("4 bytes"));
        let mut conn = RawConn::connect(&f.broker.bootstrap())?;
        let _ = conn.write_raw(&size_prefixed(&body));
        let what = format!(
            "garbage frame #{round} ({len} bytes, key {}, version {})",
            i16::from_be_bytes([body[0], body[1]]),
            i16::from_be_bytes([body[2], body[3]])
        );
        f.broker.with_diag(expect_error_or_close(&mut conn, correlation_id, &what))?;
        if round % 10 == 9 {
            f.check_healthy(&what)?;
        }
    }
    // A stream of garbage, then end of input: the broker must hang up.
    for round in 0..5 {
        let mut conn = RawConn::connect(&f.broker.bootstrap())?;
        let _ = conn.write_raw(&rng.bytes(64 * 1024));
        conn.shutdown_write();
        match conn.read_frame(WAIT) {
            Ok(ReadOutcome::Closed) | Ok(ReadOutcome::Frame(_)) | Err(_) => {}
            Ok(ReadOutcome::TimedOut) => f.broker.with_diag(Err(anyhow::anyhow!(
                "garbage stream #{round}: connection still open {WAIT:?} after the client half-closed"
            )))?,
        }
        f.check_healthy(&format!("garbage stream #{round}"))?;
    }
    Ok(())
}

#[test]
fn unknown_api_key_gets_an_error_or_a_close() -> Result<()> {
    let mut f = Fixture::new()?;
    let mut conn = RawConn::connect(&f.broker.bootstrap())?;
    let _ = conn.write_raw(&raw_request(9999, 0, 4242, &[0, 0, 0, 0]));
    f.broker.with_diag(expect_error_or_close(&mut conn, 4242, "API key 9999"))?;
    f.check_healthy("after API key 9999")
}

#[test]
fn unsupported_metadata_version_gets_an_error_or_a_close() -> Result<()> {
    let mut f = Fixture::new()?;
    let mut conn = RawConn::connect(&f.broker.bootstrap())?;
    // Metadata v99 would be flexible: header v2 with an empty tagged-field section.
    let _ = conn.write_raw(&raw_request(ApiKey::Metadata.key(), 99, 4343, &[0, 0]));
    f.broker.with_diag(expect_error_or_close(&mut conn, 4343, "Metadata v99"))?;
    f.check_healthy("after Metadata v99")
}

#[test]
fn api_versions_with_a_bad_client_software_name_is_invalid_request() -> Result<()> {
    let mut f = Fixture::new()?;
    for (name, version) in [("bad name!", "1.0"), ("-leading-dash", "1.0"), ("gregor-itest", "1.0 beta"), ("", "1.0")] {
        let mut conn = RawConn::connect(&f.broker.bootstrap())?;
        let request = ApiVersionsRequest {
            client_software_name: name.into(),
            client_software_version: version.into(),
            ..Default::default()
        };
        let response = f.broker.with_diag(
            conn.round_trip(request, 4, 7).with_context(|| format!("ApiVersions v4 {name:?} {version:?}")),
        )?;
        match response {
            ResponseBody::ApiVersions(r) => ensure!(
                r.error_code == ErrorCode::InvalidRequest.code(),
                "ApiVersions v4 with client software {name:?} {version:?}: error {}, expected 42 INVALID_REQUEST",
                r.error_code
            ),
            other => bail!("unexpected {other:?}"),
        }
    }
    f.check_healthy("after ApiVersions with bad client software names")
}

#[test]
fn api_versions_v99_gets_unsupported_version_with_the_api_versions_range() -> Result<()> {
    let mut f = Fixture::new()?;
    let mut conn = RawConn::connect(&f.broker.bootstrap())?;
    // What a newer client sends: a v2 (flexible) header, then a body we cannot know.
    let _ = conn.write_raw(&raw_request(ApiKey::ApiVersions.key(), 99, 99, &[0, 0, 0]));
    // The answer is framed as v0: header v0, body v0.
    let (header, body) =
        f.broker.with_diag(conn.read_response(ApiKey::ApiVersions, 0, WAIT).context("ApiVersions v99"))?;
    ensure!(header.correlation_id == 99, "correlation id {}", header.correlation_id);
    let ResponseBody::ApiVersions(response) = body else { bail!("unexpected {body:?}") };
    ensure!(
        response.error_code == ErrorCode::UnsupportedVersion.code(),
        "ApiVersions v99: error {}, expected 35 UNSUPPORTED_VERSION",
        response.error_code
    );
    let own = response.api_keys.iter().find(|k| k.api_key == ApiKey::ApiVersions.key());
    match own {
        Some(range) => ensure!(
            range.min_version == 0 && range.max_version >= 3,
            "ApiVersions range {}-{}",
            range.min_version,
            range.max_version
        ),
        None => bail!("the UNSUPPORTED_VERSION answer lacks the ApiVersions range: {:?}", response.api_keys),
    }
    // The client retries at a version it shares, on the same connection.
    let request = ApiVersionsRequest {
        client_software_name: "gregor-itest".into(),
        client_software_version: "1.0".into(),
        ..Default::default()
    };
    match f.broker.with_diag(conn.round_trip(request, 3, 100).context("ApiVersions v3 after v99"))? {
        ResponseBody::ApiVersions(r) => {
            ensure!(r.error_code == 0 && !r.api_keys.is_empty(), "ApiVersions v3 after v99: error {}", r.error_code)
        }
        other => bail!("unexpected {other:?}"),
    }
    f.check_healthy("after ApiVersions v99")
}

#[test]
fn hostile_inputs_in_a_row_leave_the_bystander_working() -> Result<()> {
    // All of the above against one broker, with one bystander connection throughout.
    let mut f = Fixture::new()?;
    let bootstrap = f.broker.bootstrap();
    let mut rng = XorShift(42);
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("2 GB size", {
            let mut v = Vec::new();
            v.put_i32(i32::MAX);
            v.extend_from_slice(&[0; 16]);
            v
        }),
        ("negative size", {
            let mut v = Vec::new();
            v.put_i32(-7);
            v.extend_from_slice(&[0; 16]);
            v
        }),
        ("garbage", rng.bytes(4096)),
        ("API key 9999", raw_request(9999, 0, 1, &[])),
        ("Metadata v99", raw_request(ApiKey::Metadata.key(), 99, 2, &[0, 0])),
        ("truncated Metadata v12", raw_request(ApiKey::Metadata.key(), 12, 3, &[0])),
    ];
    let mut open = Vec::new();
    for (what, bytes) in inputs {
        let mut conn = RawConn::connect(&bootstrap)?;
        let _ = conn.write_raw(&bytes);
        open.push(conn);
        f.check_healthy(&format!("after {what}"))?;
    }
    drop(open);
    f.check_healthy("after closing every hostile connection")
}
