//! rdkafka helpers: clients pointed at a broker, deterministic test records,
//! producing with a delivery log, and reading back by offset with exact checks.

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, Timestamp, TopicPartitionList};
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// Runs a future to completion on this thread (rdkafka's admin futures are
/// completed by its own background thread, so no runtime is needed).
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = TaskContext::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// A client config pointed at `bootstrap`, with librdkafka's logs quiet.
pub fn config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap).set("client.id", "gregor-itest").set("log_level", "3");
    config
}

pub fn admin(bootstrap: &str) -> Result<AdminClient<DefaultClientContext>> {
    config(bootstrap).create().context("creating an AdminClient")
}

pub fn admin_options() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(Duration::from_secs(30))).operation_timeout(Some(Duration::from_secs(30)))
}

/// Creates a topic and fails unless the broker reports success for it.
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) -> Result<()> {
    let admin = admin(bootstrap)?;
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let results = block_on(admin.create_topics([&topic], &admin_options())).context("CreateTopics")?;
    match results.as_slice() {
        [Ok(created)] if created == name => Ok(()),
        other => bail!("CreateTopics {name}: {other:?}"),
    }
}

/// One record as produced, to compare with what comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: i64,
}

/// Record `index` of a stream named `salt`: a key, 1-256 bytes of value that
/// depend on both, 0-3 headers (one with a null value every fifth record, binary
/// bytes in others) and a timestamp `base_timestamp + index` (plus a jump every
/// 1000 records so timestamps are not just offsets).
pub fn test_record(salt: &str, index: u64, base_timestamp: i64) -> TestRecord {
    let mut state = index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ fnv(salt.as_bytes());
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let value_len = (next() % 256 + 1) as usize;
    let mut value = Vec::with_capacity(value_len + 32);
    value.extend_from_slice(format!("{salt}#{index}:").as_bytes());
    while value.len() < value_len + 16 {
        value.extend_from_slice(&next().to_le_bytes());
    }
    value.truncate(value_len + 16);
    let mut headers = Vec::new();
    for h in 0..(index % 4) {
        let header_value =
            if h == 1 && index % 5 == 0 { None } else { Some(next().to_be_bytes()[..(h as usize * 3 + 1)].to_vec()) };
        headers.push((format!("h{h}-{}", index % 7), header_value));
    }
    TestRecord {
        key: format!("key-{index:08}").into_bytes(),
        value,
        headers,
        timestamp: base_timestamp + index as i64 + (index as i64 / 1000) * 10_000,
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x100_0000_01b3))
}

/// A timestamp one day ago, in milliseconds: old enough for any
/// `message.timestamp.*.max.ms` default and new enough for default retention.
pub fn day_ago_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
    now.as_millis() as i64 - 24 * 3600 * 1000
}

/// One record's delivery report: `None` until reported, then its
/// (partition, offset) or the error.
pub type Report = Option<std::result::Result<(i32, i64), String>>;

/// Delivery reports by record index: `None` until reported, then the offset
/// or the error.
#[derive(Default)]
pub struct DeliveryLog {
    pub reports: Mutex<Vec<Report>>,
}

impl DeliveryLog {
    pub fn with_capacity(records: usize) -> Self {
        DeliveryLog { reports: Mutex::new(vec![None; records]) }
    }

    pub fn snapshot(&self) -> Vec<Report> {
        self.reports.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn reported(&self) -> usize {
        self.reports.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|r| r.is_some()).count()
    }

    pub fn acked(&self) -> usize {
        self.reports.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|r| matches!(r, Some(Ok(_)))).count()
    }
}

/// The producer context that fills a [`DeliveryLog`].
pub struct DeliveryContext(pub Arc<DeliveryLog>);

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let report = match result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((error, _)) => Err(error.to_string()),
        };
        let mut reports = self.0.reports.lock().unwrap_or_else(|e| e.into_inner());
        if index >= reports.len() {
            reports.resize(index + 1, None);
        }
        reports[index] = Some(report);
    }
}

pub type LoggedProducer = ThreadedProducer<DeliveryContext>;

/// A producer whose delivery reports land in the returned log. `settings` are
/// librdkafka properties (e.g. `acks`, `compression.type`).
pub fn producer(
    bootstrap: &str,
    settings: &[(&str, &str)],
    records: usize,
) -> Result<(LoggedProducer, Arc<DeliveryLog>)> {
    let mut config = config(bootstrap);
    config.set("linger.ms", "5").set("message.timeout.ms", "60000");
    for (key, value) in settings {
        config.set(*key, *value);
    }
    let log = Arc::new(DeliveryLog::with_capacity(records));
    let producer = config.create_with_context(DeliveryContext(log.clone())).context("creating a producer")?;
    Ok((producer, log))
}

/// Sends `record` as record `index` to `topic`/`partition`, waiting while the
/// local queue is full.
pub fn send(producer: &LoggedProducer, topic: &str, partition: i32, index: usize, record: &TestRecord) -> Result<()> {
    let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
    for (key, value) in &record.headers {
        headers = headers.insert(Header { key, value: value.as_ref() });
    }
    let mut base = BaseRecord::with_opaque_to(topic, index)
        .partition(partition)
        .key(&record.key[..])
        .payload(&record.value[..])
        .headers(headers)
        .timestamp(record.timestamp);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match producer.send(base) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                if Instant::now() < deadline =>
            {
                base = returned;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((error, _)) => bail!("producing record {index} to {topic}/{partition}: {error}"),
        }
    }
}

/// Flushes and checks that every one of `count` records got a successful
/// delivery report; returns the reported (partition, offset) of each.
pub fn flush_all_acked(producer: &LoggedProducer, log: &DeliveryLog, count: usize) -> Result<Vec<(i32, i64)>> {
    producer.flush(Duration::from_secs(180)).context("flushing the producer")?;
    let reports = log.snapshot();
    let mut acked = Vec::with_capacity(count);
    for (index, report) in reports.iter().take(count).enumerate() {
        match report {
            Some(Ok(position)) => acked.push(*position),
            Some(Err(error)) => bail!("record {index} failed: {error}"),
            None => bail!("record {index} has no delivery report after flush"),
        }
    }
    Ok(acked)
}

/// A consumer that reads by assignment only: no subscription, no commits, CRCs checked.
pub fn consumer(bootstrap: &str, settings: &[(&str, &str)]) -> Result<BaseConsumer> {
    let mut config = config(bootstrap);
    // librdkafka's assign() needs a group id even when nothing is committed.
    config
        .set("group.id", "gregor-itest-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("check.crcs", "true")
        .set("auto.offset.reset", "error");
    for (key, value) in settings {
        config.set(*key, *value);
    }
    config.create().context("creating a consumer")
}

/// Assigns `topic`/`partition` at `offset`.
pub fn assign(consumer: &BaseConsumer, topic: &str, partition: i32, offset: Offset) -> Result<()> {
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, partition, offset)?;
    consumer.assign(&list).context("assign")
}

/// A record as consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub offset: i64,
    pub record: TestRecord,
}

/// Polls until `count` records of `topic`/`partition` arrived (or `timeout`
/// passes). Any consumer error (a CRC mismatch, a corrupt batch) fails.
pub fn poll_records(consumer: &BaseConsumer, count: usize, timeout: Duration) -> Result<Vec<Consumed>> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        if Instant::now() >= deadline {
            bail!("only {} of {count} records arrived within {timeout:?}", out.len());
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(error)) => bail!("consumer error after {} records: {error}", out.len()),
            Some(Ok(message)) => {
                let timestamp = match message.timestamp() {
                    Timestamp::CreateTime(t) => t,
                    other => {
                        bail!("record at offset {} has timestamp {other:?}, expected CreateTime", message.offset())
                    }
                };
                let headers = match message.headers() {
                    Some(headers) => headers.iter().map(|h| (h.key.to_string(), h.value.map(|v| v.to_vec()))).collect(),
                    None => Vec::new(),
                };
                out.push(Consumed {
                    offset: message.offset(),
                    record: TestRecord {
                        key: message.key().map(|k| k.to_vec()).unwrap_or_default(),
                        value: message.payload().map(|v| v.to_vec()).unwrap_or_default(),
                        headers,
                        timestamp,
                    },
                });
            }
        }
    }
    Ok(out)
}

/// Checks that `consumed` is exactly `expected`, at offsets `first_offset`,
/// `first_offset + 1`, ..., byte for byte.
pub fn check_exact(consumed: &[Consumed], expected: &[TestRecord], first_offset: i64) -> Result<()> {
    for (i, (got, want)) in consumed.iter().zip(expected).enumerate() {
        let offset = first_offset + i as i64;
        if got.offset != offset {
            bail!("record #{i}: offset {} where {offset} was expected (offsets must be consecutive)", got.offset);
        }
        if got.record != *want {
            bail!("record at offset {offset} differs:\n  got  {:?}\n  want {:?}", got.record, want);
        }
    }
    if consumed.len() != expected.len() {
        bail!("{} records consumed, {} expected", consumed.len(), expected.len());
    }
    Ok(())
}

/// Low and high watermarks of a partition.
pub fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> Result<(i64, i64)> {
    let consumer = consumer(bootstrap, &[])?;
    consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(15))
        .map_err(|e| anyhow!("ListOffsets of {topic}/{partition}: {e}"))
}
