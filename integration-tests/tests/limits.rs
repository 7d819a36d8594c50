//! The broker's bounds against the real binary: memory held by queued requests
//! (`queued.max.request.bytes`), connections per address and their overrides, idle
//! connections, the connection creation rate, running out of file descriptors, and
//! listeners whose security protocol Gregor does not implement.

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use gregor_integration_tests::raw::{RawConn, ReadOutcome};
use gregor_integration_tests::{gregor_binary, peak_rss_bytes, rdk, BrokerProcess};
use gregor_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use gregor_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use gregor_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::messages::{ApiVersionsRequest, FetchRequest, IncrementalAlterConfigsRequest, ProduceRequest};
use gregor_protocol::records::RecordBatchBuilder;
use gregor_protocol::{ApiKey, ResponseBody};
use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);
const MIB: usize = 1024 * 1024;

fn api_versions() -> ApiVersionsRequest {
    ApiVersionsRequest {
        client_software_name: "gregor-itest".into(),
        client_software_version: "1.0".into(),
        ..Default::default()
    }
}

/// Whether the connection answers ApiVersions (false: the broker closed it).
fn answers(conn: &mut RawConn, correlation_id: i32) -> Result<bool> {
    if conn.send(api_versions(), 3, correlation_id).is_err() {
        // The broker closed it before the write.
        return Ok(false);
    }
    match conn.read_frame(WAIT)? {
        ReadOutcome::Frame(frame) => {
            ensure!(frame.len() >= 4, "a {}-byte response", frame.len());
            let got = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
            ensure!(got == correlation_id, "response to {got}, expected {correlation_id}");
            Ok(true)
        }
        ReadOutcome::Closed => Ok(false),
        ReadOutcome::TimedOut => bail!("neither an answer nor a close within {WAIT:?}"),
    }
}

fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// One Produce frame (size prefix included) carrying a single record of `value_bytes`.
fn big_produce_frame(topic: &str, value_bytes: usize, correlation_id: i32) -> Result<Vec<u8>> {
    let mut builder = RecordBatchBuilder::new(0);
    builder
        .append(0, None, Some(Bytes::from(vec![7u8; value_bytes])), Vec::new())
        .map_err(|e| anyhow::anyhow!("building a batch: {e}"))?;
    let batch = builder.build().map_err(|e| anyhow::anyhow!("building a batch: {e}"))?;
    let request = ProduceRequest {
        acks: 1,
        timeout_ms: 30_000,
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
    };
    RawConn::frame(request, 8, correlation_id)
}

/// A Fetch that waits `max_wait_ms` for more bytes than will ever come.
fn parked_fetch(topic: &str, max_wait_ms: i32) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms,
        min_bytes: i32::MAX,
        max_bytes: 1024,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch: -1,
                fetch_offset: 0,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: 1024,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Writes `bytes` on a thread (the broker may not read them for a while), all but the
/// last byte at once and the last one when `release` fires.
fn write_in_background(
    stream: TcpStream,
    bytes: std::sync::Arc<Vec<u8>>,
    hold_last_byte: bool,
) -> (mpsc::Sender<()>, std::thread::JoinHandle<std::io::Result<()>>) {
    let (release, released) = mpsc::channel::<()>();
    let handle = std::thread::spawn(move || {
        let mut stream = stream;
        let split = if hold_last_byte { bytes.len() - 1 } else { bytes.len() };
        stream.write_all(&bytes[..split])?;
        let _ = released.recv();
        stream.write_all(&bytes[split..])?;
        stream.flush()
    });
    (release, handle)
}

fn expect_produce_answer(conn: &mut RawConn, correlation_id: i32, what: &str) -> Result<()> {
    let (header, body) =
        conn.read_response(ApiKey::Produce, 8, Duration::from_secs(60)).with_context(|| format!("{what}'s Produce"))?;
    ensure!(header.correlation_id == correlation_id, "{what}: answer to {}", header.correlation_id);
    ensure!(matches!(body, ResponseBody::Produce(_)), "{what}: {body:?}");
    Ok(())
}

/// Connections that send large frames, some stalled one byte short, others pipelined
/// behind a parked long-poll Fetch, hold no more than the configured budget; the
/// rest wait in their sockets and are all answered once the budget comes back.
#[test]
fn queued_request_bytes_are_bounded_by_the_budget() -> Result<()> {
    let budget = 48 * MIB;
    let budget_text = budget.to_string();
    let broker = BrokerProcess::start(&[
        ("socket.request.max.bytes", &budget_text),
        ("queued.max.request.bytes", &budget_text),
    ])?;
    let topic = "big";
    broker.with_diag(rdk::create_topic(&broker.bootstrap(), topic, 1, &[]))?;
    let mut bystander = RawConn::connect(&broker.bootstrap())?;
    ensure!(answers(&mut bystander, 1)?, "bystander before the load");
    let pid = broker.pid();
    let baseline = resident_bytes(pid).context("VmRSS")?;

    let frame = std::sync::Arc::new(big_produce_frame(topic, 40 * MIB, 7)?);
    // Pipelined behind a Fetch parked for 6 s: read ahead, these would stay in memory.
    let mut parked = RawConn::connect(&broker.bootstrap())?;
    parked.send(parked_fetch(topic, 6_000), 11, 6)?;
    let (parked_release, parked_writer) = write_in_background(
        parked.stream().try_clone()?,
        std::sync::Arc::new([&frame[..], &frame[..]].concat()),
        false,
    );
    // Five connections one byte short of a whole frame each.
    let mut stalled = Vec::new();
    for _ in 0..5 {
        let conn = RawConn::connect(&broker.bootstrap())?;
        let (release, writer) = write_in_background(conn.stream().try_clone()?, std::sync::Arc::clone(&frame), true);
        stalled.push((conn, release, writer));
    }
    // Let every byte the broker is willing to read arrive.
    std::thread::sleep(Duration::from_secs(3));
    let mut resident_max = 0;
    for _ in 0..5 {
        resident_max = resident_max.max(resident_bytes(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(100));
    }
    let margin = 24 * MIB as u64;
    let held = resident_max.saturating_sub(baseline);
    eprintln!("baseline {baseline} B, resident while stalled +{held} B (budget {budget} B)");
    ensure!(
        held < budget as u64 + margin,
        "the broker holds {held} bytes of requests over its {baseline}-byte baseline, more than the {budget}-byte budget{}",
        broker.diag()
    );

    let _ = parked_release.send(());
    for (_, release, _) in &stalled {
        let _ = release.send(());
    }
    for (index, (conn, _, _)) in stalled.iter_mut().enumerate() {
        broker.with_diag(expect_produce_answer(conn, 7, &format!("stalled connection {index}")))?;
    }
    for (_, _, writer) in stalled {
        writer.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
    }
    match parked.read_response(ApiKey::Fetch, 11, Duration::from_secs(30))? {
        (header, ResponseBody::Fetch(_)) => {
            ensure!(header.correlation_id == 6, "fetch answer {}", header.correlation_id)
        }
        (_, other) => bail!("expected the parked Fetch's answer, got {other:?}"),
    }
    broker.with_diag(expect_produce_answer(&mut parked, 7, "the first pipelined produce"))?;
    broker.with_diag(expect_produce_answer(&mut parked, 7, "the second pipelined produce"))?;
    parked_writer.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;

    let peak = peak_rss_bytes(pid).context("VmHWM")?;
    eprintln!("peak resident {peak} B, {} B over the baseline", peak.saturating_sub(baseline));
    ensure!(
        peak.saturating_sub(baseline) < budget as u64 + margin,
        "peak resident {peak} B is more than the budget over the {baseline}-byte baseline{}",
        broker.diag()
    );
    ensure!(answers(&mut bystander, 2)?, "bystander after the load{}", broker.diag());
    ensure!(answers(&mut RawConn::connect(&broker.bootstrap())?, 1)?, "new connection after the load");
    Ok(())
}

/// `queued.max.requests` bounds the requests read broker-wide whose handling has not
/// begun: two requests waiting behind a parked Fetch fill a queue of two, and another
/// connection's request is read only once they are handled.
#[test]
fn queued_max_requests_bounds_requests_waiting_to_be_handled() -> Result<()> {
    let broker = BrokerProcess::start(&[("queued.max.requests", "2")])?;
    let topic = "queue";
    broker.with_diag(rdk::create_topic(&broker.bootstrap(), topic, 1, &[]))?;
    let mut parked = RawConn::connect(&broker.bootstrap())?;
    let mut other = RawConn::connect(&broker.bootstrap())?;
    let parked_at = Instant::now();
    parked.send(parked_fetch(topic, 6_000), 11, 1)?;
    parked.send(api_versions(), 3, 2)?;
    parked.send(api_versions(), 3, 3)?;
    // Time for the broker to read both into its queue, even on a loaded machine.
    std::thread::sleep(Duration::from_millis(1_500));
    other.send(api_versions(), 3, 9)?;
    ensure!(
        matches!(other.read_frame(Duration::from_millis(1_500))?, ReadOutcome::TimedOut),
        "a request was read while queued.max.requests were waiting{}",
        broker.diag()
    );
    let (header, _) = other.read_response(ApiKey::ApiVersions, 3, WAIT).context("once the queue drained")?;
    ensure!(header.correlation_id == 9, "answer {}", header.correlation_id);
    ensure!(parked_at.elapsed() >= Duration::from_millis(5_500), "answered before the parked Fetch ended");
    let (header, _) = parked.read_response(ApiKey::Fetch, 11, WAIT)?;
    ensure!(header.correlation_id == 1, "answer {}", header.correlation_id);
    for correlation_id in [2, 3] {
        let (header, _) = parked.read_response(ApiKey::ApiVersions, 3, WAIT)?;
        ensure!(header.correlation_id == correlation_id, "answer {}", header.correlation_id);
    }
    Ok(())
}

/// Opens `count` connections and returns whether each answers ApiVersions.
fn open_and_probe(bootstrap: &str, count: usize) -> Result<(Vec<RawConn>, Vec<bool>)> {
    let mut conns = Vec::new();
    for _ in 0..count {
        conns.push(RawConn::connect(bootstrap)?);
    }
    let mut answered = Vec::new();
    for (index, conn) in conns.iter_mut().enumerate() {
        answered.push(answers(conn, index as i32)?);
    }
    Ok((conns, answered))
}

#[test]
fn connections_beyond_the_per_address_limit_are_closed() -> Result<()> {
    let broker = BrokerProcess::start(&[("max.connections.per.ip", "3")])?;
    let (mut conns, answered) = open_and_probe(&broker.bootstrap(), 7)?;
    ensure!(
        answered == [true, true, true, false, false, false, false],
        "with max.connections.per.ip=3: {answered:?}{}",
        broker.diag()
    );
    // The ones kept still work, and closing one frees its place.
    ensure!(answers(&mut conns[0], 100)?, "a kept connection stopped answering");
    drop(conns.remove(1));
    let admitted = gregor_integration_tests::wait_until(WAIT, || {
        RawConn::connect(&broker.bootstrap()).and_then(|mut conn| answers(&mut conn, 1)).unwrap_or(false)
    });
    ensure!(admitted, "no place freed after a connection closed{}", broker.diag());
    ensure!(broker.stderr_tail(200).contains("maximum of 3 connections"), "no log line for the rejections");
    Ok(())
}

/// `max.connections` is dynamic, as in Kafka: a connection waiting for a slot is
/// served once the limit is raised through IncrementalAlterConfigs.
#[test]
fn max_connections_follows_its_dynamic_config() -> Result<()> {
    let broker = BrokerProcess::start(&[("max.connections", "1")])?;
    let mut first = RawConn::connect(&broker.bootstrap())?;
    ensure!(answers(&mut first, 1)?, "the first connection");
    // The kernel completes the handshake; the broker does not accept it yet.
    let mut waiting = RawConn::connect(&broker.bootstrap())?;
    waiting.send(api_versions(), 3, 2)?;
    ensure!(
        matches!(waiting.read_frame(Duration::from_millis(1_500))?, ReadOutcome::TimedOut),
        "a second connection was served at max.connections=1{}",
        broker.diag()
    );
    let raise = IncrementalAlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type: 4,
            resource_name: String::new(),
            configs: vec![AlterableConfig {
                name: "max.connections".into(),
                config_operation: 0,
                value: Some("2".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    match first.round_trip(raise, 1, 3)? {
        ResponseBody::IncrementalAlterConfigs(response) => {
            ensure!(response.responses.iter().all(|r| r.error_code == 0), "{response:?}")
        }
        other => bail!("expected IncrementalAlterConfigs, got {other:?}"),
    }
    match waiting.read_frame(WAIT)? {
        ReadOutcome::Frame(frame) => {
            ensure!(frame.get(..4) == Some(&2_i32.to_be_bytes()[..]), "an answer to another request")
        }
        other => bail!("the waiting connection was not served after the limit was raised: {other:?}{}", broker.diag()),
    }
    Ok(())
}

#[test]
fn per_address_overrides_raise_the_limit_by_address_or_name() -> Result<()> {
    for overrides in ["127.0.0.1:4", "localhost:4,10.1.2.3:1"] {
        let broker =
            BrokerProcess::start(&[("max.connections.per.ip", "1"), ("max.connections.per.ip.overrides", overrides)])?;
        let (_conns, answered) = open_and_probe(&broker.bootstrap(), 6)?;
        let kept = answered.iter().filter(|a| **a).count();
        ensure!(answered[..4].iter().all(|a| *a) && kept == 4, "overrides {overrides}: {answered:?}{}", broker.diag());
    }
    Ok(())
}

#[test]
fn idle_connections_are_closed_but_busy_ones_are_not() -> Result<()> {
    let broker = BrokerProcess::start(&[("connections.max.idle.ms", "1000")])?;
    let topic = "idle";
    broker.with_diag(rdk::create_topic(&broker.bootstrap(), topic, 1, &[]))?;
    let mut idle = RawConn::connect(&broker.bootstrap())?;
    ensure!(answers(&mut idle, 1)?, "idle connection's first request");
    let mut busy = RawConn::connect(&broker.bootstrap())?;
    // A request in flight longer than the idle time does not make a connection idle.
    let mut fetching = RawConn::connect(&broker.bootstrap())?;
    fetching.send(parked_fetch(topic, 2_500), 11, 9)?;
    let started = Instant::now();
    let mut correlation = 0;
    while started.elapsed() < Duration::from_secs(3) {
        correlation += 1;
        ensure!(answers(&mut busy, correlation)?, "a connection sending every 300 ms was closed{}", broker.diag());
        std::thread::sleep(Duration::from_millis(300));
    }
    match fetching.read_response(ApiKey::Fetch, 11, WAIT)? {
        (header, ResponseBody::Fetch(_)) => {
            ensure!(header.correlation_id == 9, "fetch answer {}", header.correlation_id)
        }
        (_, other) => bail!("expected the Fetch answer, got {other:?}"),
    }
    broker.with_diag(idle.expect_closed(Duration::from_millis(100)).context("the idle connection"))?;
    // Idle from its answer on, the fetching connection goes too. (When exactly is not
    // checked: the test reads the answer late on a loaded machine.)
    broker.with_diag(fetching.expect_closed(Duration::from_secs(5)).context("the fetching connection, once idle"))?;
    ensure!(answers(&mut busy, 1000)?, "the busy connection at the end");
    Ok(())
}

#[test]
fn connection_creation_rate_throttles_accepting() -> Result<()> {
    let rate = 5;
    let count = 15;
    let broker = BrokerProcess::start(&[("max.connection.creation.rate", "5")])?;
    let started = Instant::now();
    let (_conns, answered) = open_and_probe(&broker.bootstrap(), count)?;
    let elapsed = started.elapsed();
    ensure!(answered.iter().all(|a| *a), "throttled connections must still be served: {answered:?}");
    let expected = Duration::from_secs_f64((count - rate) as f64 / rate as f64);
    ensure!(
        elapsed >= expected.mul_f64(0.8) && elapsed < expected + Duration::from_secs(8),
        "{count} connections at {rate}/s took {elapsed:?}, expected about {expected:?}"
    );
    Ok(())
}

fn open_files_soft_limit(pid: u32) -> Result<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    let line = limits.lines().find(|l| l.starts_with("Max open files")).context("no Max open files line")?;
    let soft = line.split_whitespace().nth(3).context("no soft limit")?;
    soft.parse().with_context(|| format!("soft limit {soft:?}"))
}

fn set_open_files_soft_limit(pid: u32, soft: u64) -> Result<()> {
    let status = Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--nofile={soft}:"))
        .status()
        .context("running prlimit")?;
    ensure!(status.success(), "prlimit failed: {status}");
    Ok(())
}

#[test]
fn running_out_of_file_descriptors_backs_off_and_recovers() -> Result<()> {
    let broker = BrokerProcess::start(&[])?;
    let pid = broker.pid();
    let original = open_files_soft_limit(pid)?;
    let open_now = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64;
    set_open_files_soft_limit(pid, open_now + 2)?;
    let result = (|| -> Result<()> {
        // A few fit; the others wait in the listen backlog while accept fails with EMFILE.
        let mut conns = Vec::new();
        for index in 0..12 {
            let mut conn = RawConn::connect(&broker.bootstrap())?;
            conn.send(api_versions(), 3, index)?;
            conns.push((index, conn));
        }
        std::thread::sleep(Duration::from_secs(4));
        let mut waiting = Vec::new();
        let mut accepted = 0;
        for (index, mut conn) in conns {
            match conn.read_frame(Duration::from_millis(200))? {
                ReadOutcome::Frame(_) => accepted += 1,
                ReadOutcome::TimedOut => waiting.push((index, conn)),
                ReadOutcome::Closed => bail!("connection {index} was closed"),
            }
        }
        ensure!(!waiting.is_empty(), "all 12 connections were served under a limit of {} files", open_now + 2);
        ensure!(accepted > 0, "no connection was served under a limit of {} files", open_now + 2);
        // The served connections were dropped above: their descriptors let the first
        // waiting one in under the same limit, and raising the limit the rest.
        let mut waiting = waiting.into_iter();
        if let Some((index, mut conn)) = waiting.next() {
            let (header, _) = conn.read_response(ApiKey::ApiVersions, 3, WAIT).context("once descriptors are free")?;
            ensure!(header.correlation_id == index, "answer {}", header.correlation_id);
        }
        set_open_files_soft_limit(pid, original)?;
        for (index, mut conn) in waiting {
            let (header, _) = conn.read_response(ApiKey::ApiVersions, 3, WAIT).context("after raising the limit")?;
            ensure!(header.correlation_id == index, "answer {}", header.correlation_id);
        }
        Ok(())
    })();
    let _ = set_open_files_soft_limit(pid, original);
    broker.with_diag(result)?;
    let log = broker.stderr_tail(100_000);
    let warnings = log.lines().filter(|l| l.contains("accept failed")).count();
    ensure!(
        (1..=3).contains(&warnings),
        "{warnings} accept warnings in about 5 s of failing accepts (expected 1 to 3){}",
        broker.diag()
    );
    ensure!(answers(&mut RawConn::connect(&broker.bootstrap())?, 1)?, "a new connection after recovery");
    Ok(())
}

/// `gregor serve` with `overrides` must exit non-zero before listening, saying why.
fn refuses_to_start(overrides: &[(&str, &str)], expected: &[&str]) -> Result<()> {
    let data = tempfile::tempdir()?;
    let mut command = Command::new(gregor_binary()?);
    command.arg("serve").arg("--override").arg(format!("log.dirs={}", data.path().display()));
    for (key, value) in overrides {
        command.arg("--override").arg(format!("{key}={value}"));
    }
    let stdout_path = data.path().join("stdout");
    let stderr_path = data.path().join("stderr");
    command.stdout(std::fs::File::create(&stdout_path)?).stderr(std::fs::File::create(&stderr_path)?);
    let mut child = command.spawn().context("running gregor")?;
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&stdout_path)?;
    let stderr = std::fs::read_to_string(&stderr_path)?;
    let Some(status) = status else {
        bail!("gregor was still running {WAIT:?} after starting with {overrides:?}: {stdout}");
    };
    ensure!(!status.success(), "gregor started with {overrides:?}: {stdout}");
    ensure!(!stdout.contains("gregor ready"), "gregor got ready with {overrides:?}: {stdout}");
    for needle in expected {
        ensure!(stderr.contains(needle), "with {overrides:?} the error lacks {needle:?}: {stderr}");
    }
    Ok(())
}

#[test]
fn listeners_with_unimplemented_security_refuse_to_start() -> Result<()> {
    refuses_to_start(
        &[("listeners", "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0")],
        &["SASL_PLAINTEXT://127.0.0.1:0", "security protocol SASL_PLAINTEXT", "only PLAINTEXT"],
    )?;
    refuses_to_start(&[("listeners", "SSL://127.0.0.1:0")], &["SSL://127.0.0.1:0", "security protocol SSL"])?;
    refuses_to_start(
        &[
            ("listeners", "PLAINTEXT://127.0.0.1:0,CLIENTS://127.0.0.1:0"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CLIENTS:SASL_SSL"),
        ],
        &["CLIENTS://127.0.0.1:0", "SASL_SSL", "listener.security.protocol.map"],
    )?;
    refuses_to_start(&[("security.inter.broker.protocol", "SASL_SSL")], &["security.inter.broker.protocol"])?;
    // A listener named otherwise but mapped to PLAINTEXT is served.
    let mut broker = BrokerProcess::start(&[
        ("listeners", "CLIENTS://127.0.0.1:0"),
        ("listener.security.protocol.map", "CLIENTS:PLAINTEXT"),
        ("inter.broker.listener.name", "CLIENTS"),
    ])?;
    ensure!(answers(&mut RawConn::connect(&broker.bootstrap())?, 1)?, "the PLAINTEXT-mapped listener");
    broker.stop()?;
    Ok(())
}
