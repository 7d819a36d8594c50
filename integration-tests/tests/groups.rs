//! Consumer groups end to end with librdkafka (issue 4, "How we know it works").
//!
//! - Three consumers share a 6-partition topic while a producer writes numbered
//!   records; one is SIGKILLed mid-stream (a crash: no LeaveGroup, no final
//!   commit), later one is added. After each rebalance every partition is owned
//!   by exactly one live member (as the consumers report it and as the broker
//!   describes the group), and at the end every record was processed at least
//!   once and the committed offsets reach the end of every partition. Once with
//!   the classic protocol, once with KIP-848 (`group.protocol=consumer`).
//!   The consumers are child processes: this test binary re-executed with
//!   `GREGOR_ITEST_GROUP_CHILD` set runs [`child_consumer_process`].
//!
//! Static membership and restarts are in `groups_static.rs`.

use anyhow::{anyhow, bail, ensure, Context, Result};
use bytes::{Buf, Bytes};
use gregor_integration_tests::groups::{member_id, partitions_of, start_broker, REBALANCE_TIMEOUT};
use gregor_integration_tests::raw::RawConn;
use gregor_integration_tests::rdk::{self, LoggedProducer};
use gregor_integration_tests::{wait_until, BrokerProcess};
use gregor_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use gregor_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use gregor_protocol::messages::metadata_request::MetadataRequestTopic;
use gregor_protocol::messages::MetadataRequest;
use gregor_protocol::{Message as _, ResponseBody, Uuid};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Set in the environment of a re-executed test binary acting as a consumer.
const CHILD_ENV: &str = "GREGOR_ITEST_GROUP_CHILD";
/// Every line a child reports starts with this (libtest prints its own lines too).
const MARK: &str = "@@";
const PARTITIONS: i32 = 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Classic,
    Consumer,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Classic => "classic",
            Protocol::Consumer => "consumer",
        }
    }

    /// Client settings: librdkafka rejects session/heartbeat/assignor settings
    /// with `group.protocol=consumer` (the broker owns them there).
    fn client_settings(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Protocol::Classic => {
                vec![("group.protocol", "classic"), ("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "1000")]
            }
            Protocol::Consumer => vec![("group.protocol", "consumer")],
        }
    }
}

fn join(partitions: &[i32]) -> String {
    partitions.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",")
}

// ---------------------------------------------------------------------------
// The child consumer process.
// ---------------------------------------------------------------------------

/// Not a test of its own: the body of a consumer child process. Without
/// `GREGOR_ITEST_GROUP_CHILD` it returns at once.
///
/// It subscribes to `$CHILD_TOPIC` in group `$CHILD_GROUP` and prints, on
/// stdout, `@@ REC <partition> <offset> <key>` for every record it processes,
/// `@@ ASSIGNMENT <member id> <partitions>` whenever asked to by its clock,
/// and `@@ COMMIT ...`/`@@ ERROR ...`. It commits (synchronously) the offsets
/// of what it processed, after processing. It stops, closing the consumer
/// (LeaveGroup), when its stdin reaches EOF.
#[test]
fn child_consumer_process() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    if let Err(error) = run_child() {
        println!("{MARK} ERROR child failed: {error:#}");
        std::process::exit(3);
    }
    std::process::exit(0);
}

fn run_child() -> Result<()> {
    let var = |name: &str| std::env::var(name).with_context(|| format!("{name} unset"));
    let bootstrap = var("CHILD_BOOTSTRAP")?;
    let group = var("CHILD_GROUP")?;
    let topic = var("CHILD_TOPIC")?;
    let settings = var("CHILD_SETTINGS")?;
    let mut config = rdk::config(&bootstrap);
    config
        .set("group.id", &group)
        .set("client.id", var("CHILD_NAME")?)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    for pair in settings.split(';').filter(|s| !s.is_empty()) {
        let (key, value) = pair.split_once('=').context("CHILD_SETTINGS entry without =")?;
        config.set(key, value);
    }
    let consumer: BaseConsumer = config.create().context("creating the consumer")?;
    consumer.subscribe(&[&topic]).context("subscribe")?;

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            stop.store(true, Ordering::SeqCst);
        });
    }
    let out = std::io::stdout();
    let mut pending: BTreeMap<i32, i64> = BTreeMap::new();
    let mut last_commit = Instant::now();
    let mut last_report = Instant::now() - Duration::from_secs(1);
    let mut reported = String::new();
    while !stop.load(Ordering::SeqCst) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => {
                let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
                writeln!(out.lock(), "{MARK} REC {} {} {key}", message.partition(), message.offset())?;
                pending.insert(message.partition(), message.offset() + 1);
            }
            Some(Err(error)) => writeln!(out.lock(), "{MARK} ERROR poll: {error}")?,
        }
        if !pending.is_empty() && (pending.len() >= 3 || last_commit.elapsed() > Duration::from_millis(200)) {
            let mut list = TopicPartitionList::new();
            for (partition, offset) in &pending {
                list.add_partition_offset(&topic, *partition, Offset::Offset(*offset))?;
            }
            // Records whose commit fails (during a rebalance) are processed
            // again by the next owner: at least once.
            match consumer.commit(&list, CommitMode::Sync) {
                Ok(()) => writeln!(out.lock(), "{MARK} COMMIT {pending:?}")?,
                Err(error) => writeln!(out.lock(), "{MARK} COMMITFAIL {pending:?}: {error}")?,
            }
            pending.clear();
            last_commit = Instant::now();
        }
        if last_report.elapsed() > Duration::from_millis(200) {
            let assignment = consumer.assignment().map(|a| join(&partitions_of(&a, &topic))).unwrap_or_default();
            let line = format!("ASSIGNMENT {} [{assignment}]", member_id(&consumer));
            if line != reported || last_report.elapsed() > Duration::from_secs(1) {
                writeln!(out.lock(), "{MARK} {line}")?;
                reported = line;
                last_report = Instant::now();
            }
        }
        out.lock().flush()?;
    }
    drop(consumer); // closes: revoke, LeaveGroup
    writeln!(out.lock(), "{MARK} CLOSED")?;
    out.lock().flush()?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The parent's view of its children.
// ---------------------------------------------------------------------------

#[derive(Default)]
struct ChildView {
    member_id: String,
    /// `None` until the first report.
    assignment: Option<Vec<i32>>,
    errors: Vec<String>,
    commits: usize,
    closed: bool,
}

/// Record index -> the (partition, offset) of every time it was processed.
type Processed = Arc<Mutex<HashMap<u64, Vec<(i32, i64)>>>>;

struct ChildConsumer {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    view: Arc<Mutex<ChildView>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ChildConsumer {
    fn spawn(
        name: &str,
        bootstrap: &str,
        group: &str,
        topic: &str,
        settings: &[(&str, &str)],
        processed: Processed,
    ) -> Result<ChildConsumer> {
        let exe = std::env::current_exe().context("current_exe")?;
        let settings: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut child = Command::new(exe)
            .args(["--exact", "child_consumer_process", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .env("CHILD_BOOTSTRAP", bootstrap)
            .env("CHILD_GROUP", group)
            .env("CHILD_TOPIC", topic)
            .env("CHILD_NAME", name)
            .env("CHILD_SETTINGS", settings.join(";"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning a consumer child")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped");
        let view = Arc::new(Mutex::new(ChildView::default()));
        let reader = {
            let view = view.clone();
            let name = name.to_string();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let Some(rest) = line.strip_prefix(MARK).map(str::trim) else { continue };
                    let (kind, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                    let mut view = view.lock().unwrap_or_else(|e| e.into_inner());
                    match kind {
                        "REC" => {
                            let fields: Vec<&str> = rest.split(' ').collect();
                            let parsed = (|| -> Option<(u64, i32, i64)> {
                                let index = fields.get(2)?.strip_prefix("key-")?.parse().ok()?;
                                Some((index, fields.first()?.parse().ok()?, fields.get(1)?.parse().ok()?))
                            })();
                            match parsed {
                                Some((index, partition, offset)) => processed
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .entry(index)
                                    .or_default()
                                    .push((partition, offset)),
                                None => view.errors.push(format!("bad REC line {line:?}")),
                            }
                        }
                        "ASSIGNMENT" => {
                            let (member, list) = rest.split_once(' ').unwrap_or(("", rest));
                            view.member_id = member.to_string();
                            let list = list.trim_start_matches('[').trim_end_matches(']');
                            view.assignment = Some(list.split(',').filter_map(|p| p.parse().ok()).collect());
                        }
                        "COMMIT" => view.commits += 1,
                        "COMMITFAIL" => {}
                        "CLOSED" => view.closed = true,
                        _ => {
                            eprintln!("{name}: {line}");
                            view.errors.push(line.clone());
                        }
                    }
                }
            })
        };
        Ok(ChildConsumer { name: name.to_string(), child, stdin, view, reader: Some(reader) })
    }

    fn view<T>(&self, f: impl FnOnce(&ChildView) -> T) -> T {
        f(&self.view.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A crash: SIGKILL, no close, no LeaveGroup.
    fn kill9(mut self) -> Result<()> {
        self.child.kill().context("SIGKILL of a consumer child")?;
        self.child.wait()?;
        Ok(())
    }

    /// A clean stop: EOF on stdin, the consumer closes (LeaveGroup) and exits 0.
    fn close(mut self) -> Result<()> {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                ensure!(status.success(), "consumer {} exited with {status}", self.name);
                ensure!(self.view(|v| v.closed), "consumer {} exited without closing", self.name);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("consumer {} did not close within 30 s", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildConsumer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Every partition of the topic is owned by exactly one of `live`, each
/// owning an equal share, as the consumers report it. Returns member id ->
/// partitions, or why not.
fn client_ownership(live: &[&ChildConsumer]) -> std::result::Result<BTreeMap<String, Vec<i32>>, String> {
    let mut owners: BTreeMap<i32, Vec<&str>> = BTreeMap::new();
    let mut by_member = BTreeMap::new();
    let share = PARTITIONS as usize / live.len();
    for consumer in live {
        let (member, assignment) = consumer.view(|v| (v.member_id.clone(), v.assignment.clone()));
        let assignment = assignment.ok_or_else(|| format!("{} has not reported yet", consumer.name))?;
        if assignment.len() != share {
            return Err(format!("{} owns {assignment:?}, expected {share} partitions", consumer.name));
        }
        for partition in &assignment {
            owners.entry(*partition).or_default().push(&consumer.name);
        }
        if member.is_empty() {
            return Err(format!("{} has no member id", consumer.name));
        }
        by_member.insert(member, assignment);
    }
    for partition in 0..PARTITIONS {
        match owners.get(&partition).map(Vec::as_slice) {
            Some([_]) => {}
            other => return Err(format!("partition {partition} owned by {other:?}")),
        }
    }
    Ok(by_member)
}

/// member id -> partitions of `topic`, as the broker describes the group
/// (DescribeGroups for classic groups, ConsumerGroupDescribe for KIP-848).
fn broker_ownership(
    bootstrap: &str,
    group: &str,
    topic: &str,
    protocol: Protocol,
) -> Result<BTreeMap<String, Vec<i32>>> {
    let mut out = BTreeMap::new();
    match protocol {
        Protocol::Classic => {
            let client = rdk::consumer(bootstrap, &[])?;
            let list = client.fetch_group_list(Some(group), Duration::from_secs(10)).context("DescribeGroups")?;
            let [info] = list.groups() else { bail!("DescribeGroups of {group}: {} groups", list.groups().len()) };
            ensure!(info.state() == "Stable", "group state {:?}, expected Stable", info.state());
            ensure!(info.protocol_type() == "consumer", "protocol type {:?}", info.protocol_type());
            for member in info.members() {
                let mut bytes = Bytes::copy_from_slice(member.assignment().unwrap_or_default());
                ensure!(bytes.len() >= 2, "member {} has a {}-byte assignment", member.id(), bytes.len());
                let version = bytes.get_i16();
                let assignment = ConsumerProtocolAssignment::decode(&mut bytes, version.min(3))
                    .map_err(|e| anyhow!("decoding the assignment of {}: {e}", member.id()))?;
                let mut partitions: Vec<i32> = assignment
                    .assigned_partitions
                    .iter()
                    .filter(|t| t.topic == topic)
                    .flat_map(|t| t.partitions.iter().copied())
                    .collect();
                partitions.sort_unstable();
                out.insert(member.id().to_string(), partitions);
            }
        }
        Protocol::Consumer => {
            let topic_id = topic_id(bootstrap, topic)?;
            let mut conn = RawConn::connect(bootstrap)?;
            let request = ConsumerGroupDescribeRequest { group_ids: vec![group.into()], ..Default::default() };
            let ResponseBody::ConsumerGroupDescribe(response) = conn.round_trip(request, 0, 1)? else {
                bail!("not a ConsumerGroupDescribe response")
            };
            let [described] = response.groups.as_slice() else { bail!("{} groups described", response.groups.len()) };
            ensure!(described.error_code == 0, "ConsumerGroupDescribe error {}", described.error_code);
            ensure!(described.group_state == "Stable", "group state {:?}, expected Stable", described.group_state);
            for member in &described.members {
                ensure!(
                    member.member_epoch == described.group_epoch,
                    "member {} at epoch {} while the group is at {}",
                    member.member_id,
                    member.member_epoch,
                    described.group_epoch
                );
                let mut partitions: Vec<i32> = member
                    .assignment
                    .topic_partitions
                    .iter()
                    .filter(|t| t.topic_id == topic_id)
                    .flat_map(|t| t.partitions.iter().copied())
                    .collect();
                partitions.sort_unstable();
                out.insert(member.member_id.clone(), partitions);
            }
        }
    }
    Ok(out)
}

/// The topic id of `topic`, from Metadata v12.
fn topic_id(bootstrap: &str, topic: &str) -> Result<Uuid> {
    let mut conn = RawConn::connect(bootstrap)?;
    let request = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic { name: Some(topic.into()), ..Default::default() }]),
        ..Default::default()
    };
    let ResponseBody::Metadata(response) = conn.round_trip(request, 12, 1)? else { bail!("not a Metadata response") };
    let found = response.topics.iter().find(|t| t.name.as_deref() == Some(topic)).context("topic not in Metadata")?;
    Ok(found.topic_id)
}

/// Waits until the live consumers' reported assignments cover every partition
/// exactly once, in equal shares, and the broker describes the same members
/// with the same partitions.
fn wait_for_balanced(
    bootstrap: &str,
    group: &str,
    topic: &str,
    protocol: Protocol,
    live: &[&ChildConsumer],
    after: &str,
) -> Result<BTreeMap<String, Vec<i32>>> {
    let started = Instant::now();
    let mut last = String::from("nothing checked");
    while started.elapsed() < REBALANCE_TIMEOUT {
        match client_ownership(live) {
            Err(why) => last = format!("clients: {why}"),
            Ok(clients) => match broker_ownership(bootstrap, group, topic, protocol) {
                Err(why) => last = format!("broker: {why:#}"),
                Ok(broker) if broker != clients => {
                    last = format!("the broker describes {broker:?}, the clients report {clients:?}")
                }
                Ok(_) => {
                    eprintln!("{after}: balanced after {:?}: {clients:?}", started.elapsed());
                    return Ok(clients);
                }
            },
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("{after}: no balanced assignment within {REBALANCE_TIMEOUT:?}; last: {last}")
}

/// Produces numbered records (key `key-<index>`) round-robin over the
/// partitions, about 300 a second, until `stop`.
fn spawn_producer(
    producer: Arc<LoggedProducer>,
    topic: String,
    stop: Arc<AtomicBool>,
    produced: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<Result<()>> {
    std::thread::spawn(move || {
        let base = rdk::day_ago_ms();
        let mut index = 0usize;
        while !stop.load(Ordering::SeqCst) {
            for _ in 0..3 {
                let record = rdk::test_record("groups", index as u64, base);
                rdk::send(&producer, &topic, (index % PARTITIONS as usize) as i32, index, &record)?;
                index += 1;
                produced.store(index, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    })
}

fn membership_changes(protocol: Protocol) -> Result<()> {
    let started = Instant::now();
    let broker = start_broker()?;
    let result = membership_changes_on(&broker, protocol);
    eprintln!("membership changes ({}) took {:?}", protocol.name(), started.elapsed());
    broker.with_diag(result)
}

fn membership_changes_on(broker: &BrokerProcess, protocol: Protocol) -> Result<()> {
    let bootstrap = broker.bootstrap();
    let topic = format!("numbered-{}", protocol.name());
    let group = format!("group-{}", protocol.name());
    rdk::create_topic(&bootstrap, &topic, PARTITIONS, &[])?;
    let settings = protocol.client_settings();
    let processed: Processed = Arc::default();
    let spawn = |name: &str| ChildConsumer::spawn(name, &bootstrap, &group, &topic, &settings, processed.clone());

    let (producer, log) = rdk::producer(&bootstrap, &[("acks", "all")], 0)?;
    let producer = Arc::new(producer);
    let stop = Arc::new(AtomicBool::new(false));
    let produced = Arc::new(AtomicUsize::new(0));
    let producing = spawn_producer(producer.clone(), topic.clone(), stop.clone(), produced.clone());

    let a = spawn("a")?;
    let b = spawn("b")?;
    let c = spawn("c")?;
    let first = wait_for_balanced(&bootstrap, &group, &topic, protocol, &[&a, &b, &c], "three members")?;

    // Let every member process and commit for a while, then crash one.
    let before = processed.lock().unwrap().len();
    ensure!(
        wait_until(Duration::from_secs(30), || processed.lock().unwrap().len() >= before + 600),
        "the three members processed fewer than 600 new records in 30 s"
    );
    let b_member = b.view(|v| v.member_id.clone());
    b.kill9()?;
    let second = wait_for_balanced(&bootstrap, &group, &topic, protocol, &[&a, &c], "after b crashed")?;
    ensure!(!second.contains_key(&b_member), "the crashed member {b_member} still owns partitions: {second:?}");
    eprintln!("first {first:?}, then {second:?}");

    let before = processed.lock().unwrap().len();
    ensure!(
        wait_until(Duration::from_secs(30), || processed.lock().unwrap().len() >= before + 600),
        "the two members processed fewer than 600 new records in 30 s"
    );
    let d = spawn("d")?;
    wait_for_balanced(&bootstrap, &group, &topic, protocol, &[&a, &c, &d], "after d joined")?;
    let before = processed.lock().unwrap().len();
    ensure!(
        wait_until(Duration::from_secs(30), || processed.lock().unwrap().len() >= before + 300),
        "the three members processed fewer than 300 new records in 30 s"
    );

    stop.store(true, Ordering::SeqCst);
    producing.join().map_err(|_| anyhow!("producer thread panicked"))??;
    let total = produced.load(Ordering::SeqCst);
    let positions = rdk::flush_all_acked(&producer, &log, total)?;
    check_all_processed(&processed, &positions)?;
    check_committed_at_end(&bootstrap, &group, &topic)?;

    for consumer in [&a, &c, &d] {
        let errors = consumer.view(|v| v.errors.clone());
        ensure!(errors.is_empty(), "consumer {} reported errors: {errors:?}", consumer.name);
        ensure!(consumer.view(|v| v.commits) > 0, "consumer {} never committed", consumer.name);
    }
    for consumer in [a, c, d] {
        consumer.close()?;
    }
    eprintln!("{total} records, {} distinct processed", processed.lock().unwrap().len());
    Ok(())
}

/// Every acknowledged record was processed at least once, and always read
/// from the partition and offset it was acknowledged at.
fn check_all_processed(processed: &Processed, positions: &[(i32, i64)]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let missing: Vec<usize> = {
            let processed = processed.lock().unwrap();
            (0..positions.len()).filter(|i| !processed.contains_key(&(*i as u64))).collect()
        };
        if missing.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {} records never processed, first {:?} at {:?}",
                missing.len(),
                positions.len(),
                &missing[..missing.len().min(10)],
                missing.iter().take(10).map(|i| positions[*i]).collect::<Vec<_>>()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let processed = processed.lock().unwrap();
    let mut duplicates = 0;
    for (index, seen) in processed.iter() {
        let expected = *positions.get(*index as usize).context("a record that was never produced")?;
        for at in seen {
            ensure!(*at == expected, "record {index} processed at {at:?}, acknowledged at {expected:?}");
        }
        duplicates += seen.len() - 1;
    }
    eprintln!("{} records processed, {duplicates} duplicate deliveries", positions.len());
    Ok(())
}

/// The group's committed offsets (OffsetFetch) reach the end of every partition.
fn check_committed_at_end(bootstrap: &str, group: &str, topic: &str) -> Result<()> {
    let ends: Vec<i64> =
        (0..PARTITIONS).map(|p| rdk::watermarks(bootstrap, topic, p).map(|w| w.1)).collect::<Result<_>>()?;
    let reader = rdk::consumer(bootstrap, &[("group.id", group)])?;
    let mut list = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        list.add_partition(topic, partition);
    }
    let mut last = Vec::new();
    let ok = wait_until(Duration::from_secs(30), || {
        last = match reader.committed_offsets(list.clone(), Duration::from_secs(10)) {
            Ok(committed) => committed.elements().iter().map(|e| e.offset()).collect(),
            Err(error) => {
                eprintln!("committed(): {error}");
                Vec::new()
            }
        };
        last == ends.iter().map(|o| Offset::Offset(*o)).collect::<Vec<_>>()
    });
    ensure!(ok, "committed offsets {last:?}, expected the ends {ends:?}");
    Ok(())
}

#[test]
fn classic_group_survives_a_crash_and_a_join() -> Result<()> {
    membership_changes(Protocol::Classic)
}

#[test]
fn consumer_protocol_group_survives_a_crash_and_a_join() -> Result<()> {
    membership_changes(Protocol::Consumer)
}
