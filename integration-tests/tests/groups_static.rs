//! Consumer groups with librdkafka: static membership and committed offsets
//! across broker restarts (issue 4, "How we know it works").
//!
//! - A static member that restarts gets its partitions back without a
//!   rebalance; a second live instance with the same `group.instance.id`
//!   fences the older one (FENCED_INSTANCE_ID, fatal).
//! - Committed offsets survive a SIGTERM restart and a `kill -9` of the broker.

use anyhow::{bail, ensure, Context, Result};
use gregor_integration_tests::groups::{member_id, partitions_of, start_broker, REBALANCE_TIMEOUT};
use gregor_integration_tests::rdk::{self, DeliveryLog, LoggedProducer};
use gregor_integration_tests::{wait_until, BrokerProcess};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Static membership.
// ---------------------------------------------------------------------------

/// Counts rebalance callbacks.
#[derive(Default)]
struct CountingContext {
    rebalances: AtomicUsize,
}

impl ClientContext for CountingContext {}

impl ConsumerContext for CountingContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if !matches!(rebalance, Rebalance::Error(_)) {
            self.rebalances.fetch_add(1, Ordering::SeqCst);
        }
    }
}

type CountingConsumer = BaseConsumer<CountingContext>;

fn static_consumer(bootstrap: &str, group: &str, topic: &str, instance: &str) -> Result<CountingConsumer> {
    let mut config: ClientConfig = rdk::config(bootstrap);
    config
        .set("group.id", group)
        .set("group.instance.id", instance)
        .set("group.protocol", "classic")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    let consumer: CountingConsumer = config.create_with_context(CountingContext::default())?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

/// Polls each consumer in turn (BaseConsumer needs polling to heartbeat) until
/// `condition` holds; fails on a fatal error of any of them.
fn poll_until(
    consumers: &[&CountingConsumer],
    timeout: Duration,
    what: &str,
    mut condition: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        for consumer in consumers {
            match consumer.poll(Duration::from_millis(20)) {
                Some(Err(KafkaError::MessageConsumptionFatal(code))) => bail!("fatal error while {what}: {code}"),
                Some(Err(error)) => eprintln!("consumer error while {what}: {error}"),
                _ => {}
            }
        }
        if condition() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
    }
}

fn assigned(consumer: &CountingConsumer, topic: &str) -> Vec<i32> {
    consumer.assignment().map(|a| partitions_of(&a, topic)).unwrap_or_default()
}

#[test]
fn static_member_rejoins_without_rebalance_and_duplicate_is_fenced() -> Result<()> {
    let started = Instant::now();
    let broker = start_broker()?;
    let result = static_membership(&broker);
    eprintln!("static membership took {:?}", started.elapsed());
    broker.with_diag(result)
}

fn static_membership(broker: &BrokerProcess) -> Result<()> {
    let bootstrap = broker.bootstrap();
    let (topic, group) = ("static-topic", "static-group");
    rdk::create_topic(&bootstrap, topic, 4, &[])?;

    let first = static_consumer(&bootstrap, group, topic, "static-a")?;
    let other = static_consumer(&bootstrap, group, topic, "static-b")?;
    poll_until(&[&first, &other], REBALANCE_TIMEOUT, "two static members sharing 4 partitions", || {
        assigned(&first, topic).len() == 2 && assigned(&other, topic).len() == 2
    })?;
    let (a_partitions, b_partitions) = (assigned(&first, topic), assigned(&other, topic));
    let (a_member, b_member) = (member_id(&first), member_id(&other));
    // Settle: no rebalance is pending (poll both a little, counters must not move).
    let settled = other.context().rebalances.load(Ordering::SeqCst);
    poll_until(&[&first, &other], Duration::from_secs(3), "nothing", || false).ok();
    ensure!(other.context().rebalances.load(Ordering::SeqCst) == settled, "the group kept rebalancing");
    let b_rebalances = other.context().rebalances.load(Ordering::SeqCst);

    // Restart static-a: librdkafka's static members do not send LeaveGroup on close.
    drop(first);
    let restarted = static_consumer(&bootstrap, group, topic, "static-a")?;
    poll_until(&[&restarted, &other], Duration::from_secs(30), "static-a to get its partitions back", || {
        assigned(&restarted, topic) == a_partitions
    })?;
    // The other member keeps polling for a few heartbeats: no rebalance reaches it.
    poll_until(&[&restarted, &other], Duration::from_secs(4), "nothing", || false).ok();
    ensure!(
        other.context().rebalances.load(Ordering::SeqCst) == b_rebalances,
        "static-b went through a rebalance when static-a restarted ({} callbacks before, {} after)",
        b_rebalances,
        other.context().rebalances.load(Ordering::SeqCst)
    );
    ensure!(assigned(&other, topic) == b_partitions, "static-b's assignment changed");
    let restarted_member = member_id(&restarted);
    ensure!(restarted_member != a_member, "the restarted static member kept member id {a_member}");
    // The broker sees static-a under its new member id, static-b unchanged.
    let client = rdk::consumer(&bootstrap, &[])?;
    let groups = client.fetch_group_list(Some(group), Duration::from_secs(10))?;
    let info = groups.groups().first().context("group not described")?;
    let mut members: Vec<&str> = info.members().iter().map(|m| m.id()).collect();
    members.sort_unstable();
    let mut expected = vec![restarted_member.as_str(), b_member.as_str()];
    expected.sort_unstable();
    ensure!(members == expected, "DescribeGroups members {members:?}, expected {expected:?}");
    ensure!(info.state() == "Stable", "group state {}", info.state());

    // A second live instance of static-a: it takes the identity over, the older
    // one is fenced with FENCED_INSTANCE_ID (fatal in librdkafka).
    let duplicate = static_consumer(&bootstrap, group, topic, "static-a")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for consumer in [&restarted, &duplicate, &other] {
            let _ = consumer.poll(Duration::from_millis(20));
        }
        if let Some((code, reason)) = restarted.client().fatal_error() {
            ensure!(code == RDKafkaErrorCode::FencedInstanceId, "the older static-a failed with {code:?}: {reason}");
            break;
        }
        ensure!(
            duplicate.client().fatal_error().is_none(),
            "the newer static-a got a fatal error: {:?}",
            duplicate.client().fatal_error()
        );
        ensure!(Instant::now() < deadline, "the older static-a was not fenced within 30 s");
    }
    poll_until(
        &[&duplicate, &other],
        Duration::from_secs(30),
        "the newer static-a to own static-a's partitions",
        || assigned(&duplicate, topic) == a_partitions,
    )?;
    ensure!(other.client().fatal_error().is_none(), "static-b got a fatal error");
    Ok(())
}

// ---------------------------------------------------------------------------
// Committed offsets across broker restarts.
// ---------------------------------------------------------------------------

fn group_consumer(bootstrap: &str, group: &str) -> Result<BaseConsumer> {
    let mut config = rdk::config(bootstrap);
    config
        .set("group.id", group)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "1000")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    Ok(config.create()?)
}

/// What `committed()` (OffsetFetch) returns for partitions 0..n of `topic`,
/// retried while the coordinator may still be loading right after a start.
fn wait_committed(consumer: &BaseConsumer, topic: &str, expected: &[Offset]) -> Result<()> {
    let mut list = TopicPartitionList::new();
    for partition in 0..expected.len() as i32 {
        list.add_partition(topic, partition);
    }
    let mut committed = Vec::new();
    let ok = wait_until(Duration::from_secs(30), || {
        committed = match consumer.committed_offsets(list.clone(), Duration::from_secs(10)) {
            Ok(got) => got.elements().iter().map(|e| e.offset()).collect(),
            Err(error) => {
                eprintln!("committed(): {error}");
                Vec::new()
            }
        };
        committed == expected
    });
    ensure!(ok, "committed offsets {committed:?}, expected {expected:?}");
    Ok(())
}

/// Subscribes and returns the offset of the first record of every partition.
fn first_offsets(consumer: &BaseConsumer, topic: &str, partitions: usize) -> Result<Vec<i64>> {
    consumer.subscribe(&[topic])?;
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    let deadline = Instant::now() + REBALANCE_TIMEOUT;
    while first.len() < partitions {
        ensure!(Instant::now() < deadline, "records from only {first:?} within {REBALANCE_TIMEOUT:?}");
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                first.entry(message.partition()).or_insert(message.offset());
            }
            Some(Err(error)) => bail!("consumer error: {error}"),
            None => {}
        }
    }
    Ok(first.values().copied().collect())
}

/// A new member of `group`: `committed()` returns `expected` and consumption
/// starts there.
fn resume_at(bootstrap: &str, group: &str, topic: &str, expected: &[i64]) -> Result<BaseConsumer> {
    let consumer = group_consumer(bootstrap, group)?;
    wait_committed(&consumer, topic, &expected.iter().map(|o| Offset::Offset(*o)).collect::<Vec<_>>())?;
    let first = first_offsets(&consumer, topic, expected.len())?;
    ensure!(first == expected, "consumption resumed at {first:?}, expected the committed {expected:?}");
    Ok(consumer)
}

/// The commit metadata of `partition` at `offset` (non-ASCII on purpose).
fn commit_metadata(partition: usize, offset: i64) -> String {
    format!("p{partition} @ {offset} ✓")
}

/// Commits `offsets` synchronously as a member of the group, with metadata.
fn commit(consumer: &BaseConsumer, topic: &str, offsets: &[i64]) -> Result<()> {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets.iter().enumerate() {
        list.add_partition_offset(topic, partition as i32, Offset::Offset(*offset))?;
        list.find_partition(topic, partition as i32)
            .context("just added")?
            .set_metadata(commit_metadata(partition, *offset));
    }
    consumer.commit(&list, CommitMode::Sync).context("commit")
}

/// `committed()` also returns the metadata of the commit.
fn check_commit_metadata(consumer: &BaseConsumer, topic: &str, offsets: &[i64]) -> Result<()> {
    let mut list = TopicPartitionList::new();
    for partition in 0..offsets.len() as i32 {
        list.add_partition(topic, partition);
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(30))?;
    for (partition, offset) in offsets.iter().enumerate() {
        let element = committed.find_partition(topic, partition as i32).context("partition missing")?;
        ensure!(
            element.metadata() == commit_metadata(partition, *offset),
            "partition {partition}: committed metadata {:?}, expected {:?}",
            element.metadata(),
            commit_metadata(partition, *offset)
        );
    }
    Ok(())
}

#[test]
fn committed_offsets_survive_broker_restarts() -> Result<()> {
    let started = Instant::now();
    let mut broker = start_broker()?;
    let result = offsets_across_restarts(&mut broker);
    eprintln!("offsets across restarts took {:?}", started.elapsed());
    broker.with_diag(result)
}

fn offsets_across_restarts(broker: &mut BrokerProcess) -> Result<()> {
    let bootstrap = broker.bootstrap();
    let (topic, group) = ("resume-topic", "resume-group");
    rdk::create_topic(&bootstrap, topic, 3, &[])?;
    let (producer, log): (LoggedProducer, Arc<DeliveryLog>) = rdk::producer(&bootstrap, &[("acks", "all")], 300)?;
    let base = rdk::day_ago_ms();
    for index in 0..300usize {
        rdk::send(&producer, topic, (index % 3) as i32, index, &rdk::test_record("resume", index as u64, base))?;
    }
    rdk::flush_all_acked(&producer, &log, 300)?;

    // A first member: nothing committed yet (committed() says INVALID, -1001),
    // so it starts at the beginning (auto.offset.reset=earliest); it commits.
    let consumer = group_consumer(&bootstrap, group)?;
    wait_committed(&consumer, topic, &[Offset::Invalid; 3])?;
    let first = first_offsets(&consumer, topic, 3)?;
    ensure!(first == [0, 0, 0], "a group without commits started at {first:?}");
    let first = [37, 50, 11];
    commit(&consumer, topic, &first)?;
    drop(consumer);

    broker.restart().context("SIGTERM restart")?;
    let bootstrap = broker.bootstrap();
    let consumer = resume_at(&bootstrap, group, topic, &first).context("after the SIGTERM restart")?;
    check_commit_metadata(&consumer, topic, &first)?;
    let second = [61, 70, 99];
    commit(&consumer, topic, &second)?;
    drop(consumer);

    broker.kill9()?;
    broker.start_again().context("start after kill -9")?;
    let bootstrap = broker.bootstrap();
    let consumer = resume_at(&bootstrap, group, topic, &second).context("after kill -9")?;
    check_commit_metadata(&consumer, topic, &second)?;
    Ok(())
}
