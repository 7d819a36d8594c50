//! Drives librdkafka (through the `rdkafka` crate) against
//! `scripts/golden-capture/fake_broker.py` so the fake broker can record the
//! request frames librdkafka sends. See `crates/protocol/tests/golden/README.md`.
//!
//! Scenarios (each with its own `client.id`, which the captured request
//! headers carry, so every fixture says which scenario sent it):
//!
//! * `rdk-produce-<codec>`: a producer with `compression.codec=<codec>` sends TEN
//!   records (key-1/value-1 .. key-10/value-10, timestamps TIMESTAMP_MS+0..9, one
//!   header each) to golden-topic partition 0 in one batch (linger.ms=500), codec
//!   in none/gzip/snappy/lz4/zstd. Ten so that compressing actually pays off;
//! * `rdk-fetch`: a consumer assigns golden-topic/0 at `Offset::Beginning` (no
//!   subscribe, so no JoinGroup) and polls until it receives a record; librdkafka
//!   refuses `assign` without a `group.id`, so it has `group.id=golden-fetch-group`;
//! * `rdk-group`: a consumer in group `golden-group` subscribes to golden-topic,
//!   polls until it receives a record, commits synchronously and closes.
//!
//! Usage: `golden-capture --bootstrap 127.0.0.1:PORT [--debug]`

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

const TOPIC: &str = "golden-topic";
const PARTITION: i32 = 0;
const RECORDS: i64 = 10; // key-1/value-1 .. key-10/value-10
const HEADER_KEY: &str = "golden-header";
const HEADER_VALUE: &[u8] = b"header-value";
const TIMESTAMP_MS: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z
const GROUP: &str = "golden-group";
const FETCH_GROUP: &str = "golden-fetch-group";
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

/// Counts successful deliveries.
#[derive(Default)]
struct Deliveries {
    ok: AtomicUsize,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::SeqCst);
            }
            Err((e, _)) => eprintln!("  delivery failed: {e}"),
        }
    }
}

fn base_config(bootstrap: &str, client_id: &str, debug: bool) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap).set("client.id", client_id);
    if debug {
        cfg.set("debug", "broker,protocol,cgrp,fetch,topic");
    }
    cfg
}

fn produce(bootstrap: &str, codec: &str, debug: bool) -> Result<(), String> {
    let client_id = format!("rdk-produce-{codec}");
    let producer: BaseProducer<Deliveries> = base_config(bootstrap, &client_id, debug)
        .set("compression.codec", codec)
        .set("acks", "all")
        .set("linger.ms", "500") // all records in one batch
        .set("message.timeout.ms", "15000")
        .create_with_context(Deliveries::default())
        .map_err(|e| format!("{client_id}: create: {e}"))?;
    for i in 1..=RECORDS {
        let key = format!("key-{i}");
        let value = format!("value-{i}");
        let headers = OwnedHeaders::new().insert(Header { key: HEADER_KEY, value: Some(HEADER_VALUE) });
        producer
            .send(
                BaseRecord::to(TOPIC)
                    .partition(PARTITION)
                    .key(key.as_bytes())
                    .payload(value.as_bytes())
                    .timestamp(TIMESTAMP_MS + i - 1)
                    .headers(headers),
            )
            .map_err(|(e, _)| format!("{client_id}: send: {e}"))?;
    }
    producer.flush(Duration::from_secs(20)).map_err(|e| format!("{client_id}: flush: {e}"))?;
    let delivered = producer.context().ok.load(Ordering::SeqCst);
    if delivered != RECORDS as usize {
        return Err(format!("{client_id}: {delivered} of {RECORDS} records delivered"));
    }
    println!("produced codec={codec}");
    Ok(())
}

fn poll_one(consumer: &BaseConsumer, who: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                println!(
                    "{who}: got offset {} key={:?} value={:?}",
                    m.offset(),
                    m.key().map(String::from_utf8_lossy),
                    m.payload().map(String::from_utf8_lossy)
                );
                return Ok(());
            }
            Some(Err(e)) => eprintln!("{who}: poll error: {e}"),
            None => {}
        }
    }
    Err(format!("{who}: no record within 30 s"))
}

fn fetch(bootstrap: &str, debug: bool) -> Result<(), String> {
    let consumer: BaseConsumer = base_config(bootstrap, "rdk-fetch", debug)
        .set("group.id", FETCH_GROUP) // librdkafka's assign() needs a group.id
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "200")
        .create()
        .map_err(|e| format!("rdk-fetch: create: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, PARTITION, Offset::Beginning)
        .map_err(|e| format!("rdk-fetch: tpl: {e}"))?;
    consumer.assign(&tpl).map_err(|e| format!("rdk-fetch: assign: {e}"))?;
    poll_one(&consumer, "rdk-fetch")
}

fn group(bootstrap: &str, debug: bool) -> Result<(), String> {
    let consumer: BaseConsumer = base_config(bootstrap, "rdk-group", debug)
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "200")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .create()
        .map_err(|e| format!("rdk-group: create: {e}"))?;
    consumer.subscribe(&[TOPIC]).map_err(|e| format!("rdk-group: subscribe: {e}"))?;
    poll_one(&consumer, "rdk-group")?;
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .map_err(|e| format!("rdk-group: commit: {e}"))?;
    println!("rdk-group: committed; closing");
    drop(consumer); // closes the consumer: LeaveGroup
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let bootstrap = match args.iter().position(|a| a == "--bootstrap") {
        Some(i) if i + 1 < args.len() => args[i + 1].clone(),
        _ => {
            eprintln!("usage: golden-capture --bootstrap HOST:PORT [--debug]");
            return ExitCode::from(2);
        }
    };
    let debug = args.iter().any(|a| a == "--debug");
    let (version_n, version_s) = rdkafka::util::get_rdkafka_version();
    println!("librdkafka {version_s} (0x{version_n:08x})");

    let mut failures = Vec::new();
    for codec in CODECS {
        if let Err(e) = produce(&bootstrap, codec, debug) {
            failures.push(e);
        }
    }
    if let Err(e) = fetch(&bootstrap, debug) {
        failures.push(e);
    }
    if let Err(e) = group(&bootstrap, debug) {
        failures.push(e);
    }
    for f in &failures {
        eprintln!("FAILED: {f}");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
