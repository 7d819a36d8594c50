//! `gregor perf produce`: every producer opens one connection to each leader of
//! the topic and sends one batch per Produce request, its partitions in turn,
//! with up to `--max-in-flight` requests unanswered. Latency is from the write
//! of a request to its response and stands for every record in it.
//!
//! A failed request is counted as an error and its records are not sent again:
//! the tool measures, it does not deliver. Errors that sending again cannot fix
//! stop the run, and so does a partition that has moved away or vanished when
//! the broker says it is unknown or led elsewhere.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gregor_protocol::{ApiKey, ErrorCode, ResponseBody, Uuid};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use crate::batch::{BatchTemplates, PayloadSpec, ProduceFrames, ProduceTarget, SplitMix64};
use crate::cli::ProduceArgs;
use crate::cluster::{self, TopicInfo};
use crate::conn::{response_body, Connection};
use crate::error::PerfError;
use crate::rate::{Grant, TokenBucket};
use crate::stats::{self, Meter, Mode, Summary};

/// How long a run lasts when neither a record count nor a duration is given.
const DURATION_S_DEFAULT: f64 = 10.0;
/// The pause before sending again after the broker said a partition was unknown or led elsewhere.
const RETRY_BACKOFF_MS: u64 = 100;

/// The current wall clock in milliseconds, as Kafka timestamps count.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|since| since.as_millis() as i64).unwrap_or_default()
}

fn validate(args: &ProduceArgs) -> Result<(), PerfError> {
    let usage = |message: &str| Err(PerfError::Usage(message.to_owned()));
    if args.batch_size_bytes == 0 || args.producers == 0 || args.max_in_flight == 0 {
        return usage("--batch-size-bytes, --producers and --max-in-flight must be at least 1");
    }
    if !(0.0..=1.0).contains(&args.random_ratio) {
        return usage("--random-ratio must lie between 0 and 1");
    }
    if !args.throughput.is_finite() || args.throughput < 0.0 {
        return usage("--throughput must be a number of records per second, 0 for unlimited");
    }
    if args.duration_s.is_some_and(|seconds| !seconds.is_finite() || seconds <= 0.0) {
        return usage("--duration-s must be positive");
    }
    if args.partitions.is_some_and(|partitions| partitions < 1) {
        return usage("--partitions must be at least 1");
    }
    if i32::try_from(args.batch_size_bytes).is_err() || i32::try_from(args.record_size_bytes).is_err() {
        return usage("--batch-size-bytes and --record-size-bytes must fit a Kafka batch (below 2 GiB)");
    }
    Ok(())
}

/// What one connection does: which partitions, how many records, how fast.
#[derive(Debug, Clone)]
struct Plan {
    node_id: i32,
    partitions: Vec<i32>,
    quota: Option<u64>,
    rate_per_s: f64,
    first_slot: usize,
}

/// Splits `total` over weights so the parts add up to it exactly.
fn split_exactly(total: u64, weights: &[u64]) -> Vec<u64> {
    let weight_sum: u64 = weights.iter().sum::<u64>().max(1);
    let mut parts: Vec<u64> = weights
        .iter()
        .map(|&weight| (u128::from(total) * u128::from(weight) / u128::from(weight_sum)) as u64)
        .collect();
    let mut left = total - parts.iter().sum::<u64>();
    for part in parts.iter_mut() {
        if left == 0 {
            break;
        }
        *part += 1;
        left -= 1;
    }
    parts
}

fn plans(args: &ProduceArgs, topic: &TopicInfo) -> Vec<Plan> {
    let leaders = topic.by_leader();
    let mut plans = Vec::new();
    for producer in 0..args.producers {
        for (&node_id, partitions) in &leaders {
            plans.push(Plan {
                node_id,
                partitions: partitions.clone(),
                quota: None,
                rate_per_s: 0.0,
                first_slot: producer,
            });
        }
    }
    let weights: Vec<u64> = plans.iter().map(|plan| plan.partitions.len() as u64).collect();
    let weight_sum = weights.iter().sum::<u64>().max(1) as f64;
    let quotas = args.num_records.map(|total| split_exactly(total, &weights));
    for (index, plan) in plans.iter_mut().enumerate() {
        plan.quota = quotas.as_ref().and_then(|quotas| quotas.get(index).copied());
        plan.rate_per_s = args.throughput * weights[index] as f64 / weight_sum;
    }
    plans
}

/// What every connection of a run shares.
struct Shared {
    meter: Arc<Meter>,
    stop: AtomicBool,
    started: Instant,
    deadline: Option<Instant>,
    args: ProduceArgs,
    topic_id: Uuid,
}

/// One request waiting for its response.
#[derive(Debug)]
struct InFlight {
    correlation_id: i32,
    sent_at: Instant,
    records: u64,
}

pub async fn run(args: ProduceArgs) -> Result<Summary, PerfError> {
    validate(&args)?;
    let mut control = Connection::connect(&args.bootstrap).await?;
    let topic = cluster::ensure_topic(&mut control, &args.topic, args.partitions).await?;
    let spec = PayloadSpec {
        record_size_bytes: args.record_size_bytes,
        random_ratio: args.random_ratio,
        batch_size_bytes: args.batch_size_bytes,
        compression: args.compression.into(),
    };
    let templates = Arc::new(BatchTemplates::new(&spec, SplitMix64::seed_from_clock())?);
    let mut connections = Vec::new();
    for plan in plans(&args, &topic) {
        let address = topic.address_of(plan.node_id)?.to_owned();
        connections.push((Connection::connect(&address).await?, plan));
    }
    let duration_s = match (args.num_records, args.duration_s) {
        (Some(_), _) => None,
        (None, duration_s) => Some(duration_s.unwrap_or(DURATION_S_DEFAULT)),
    };
    let started = Instant::now();
    let shared = Arc::new(Shared {
        meter: Meter::new(),
        stop: AtomicBool::new(false),
        started,
        deadline: duration_s.map(|seconds| started + Duration::from_secs_f64(seconds)),
        args: args.clone(),
        topic_id: topic.id,
    });
    let progress = tokio::spawn(stats::report_progress(Arc::clone(&shared.meter), Mode::Produce));
    let mut tasks = JoinSet::new();
    for (connection, plan) in connections {
        tasks.spawn(drive(connection, plan, Arc::clone(&templates), Arc::clone(&shared)));
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.map_err(|error| PerfError::Internal(format!("a producer task failed: {error}")))?;
        if let Err(error) = result {
            shared.stop.store(true, Ordering::Relaxed);
            first_error.get_or_insert(error);
        }
    }
    let elapsed = started.elapsed();
    progress.abort();
    match first_error {
        Some(error) => Err(error),
        None => Ok(shared.meter.summary(Mode::Produce, elapsed)),
    }
}

/// How many records the next request carries, after waiting for the rate limit;
/// `None` when the run is over first.
async fn next_batch_records(bucket: &mut Option<TokenBucket>, want: u64, shared: &Shared) -> Option<u64> {
    let Some(bucket) = bucket else { return Some(want) };
    let linger = Duration::from_millis(shared.args.linger_ms);
    loop {
        if shared.stop.load(Ordering::Relaxed) || shared.deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return None;
        }
        match bucket.poll(shared.started.elapsed(), want, linger) {
            Grant::Send(records) => return Some(records),
            Grant::Wait(wait) => {
                let wake = Instant::now() + wait;
                let wake = shared.deadline.map_or(wake, |deadline| wake.min(deadline));
                tokio::time::sleep_until(wake.into()).await;
            }
        }
    }
}

async fn drive(
    connection: Connection,
    plan: Plan,
    templates: Arc<BatchTemplates>,
    shared: Arc<Shared>,
) -> Result<(), PerfError> {
    let args = &shared.args;
    let client_max = if shared.topic_id == Uuid::ZERO { 12 } else { 13 };
    // v3 is the first with record batches (magic 2).
    let version = connection.versions().pick(ApiKey::Produce, 3, client_max)?;
    let target = ProduceTarget {
        topic: args.topic.clone(),
        topic_id: shared.topic_id,
        acks: args.acks,
        timeout_ms: i32::try_from(args.request_timeout_ms).unwrap_or(i32::MAX),
        version,
    };
    let mut frames = ProduceFrames::new(templates, target, plan.partitions.clone());
    let parts = connection.into_parts();
    let address = parts.address;
    let mut writer = parts.writer;
    let mut reader = parts.reader;
    let acks = args.acks;
    let record_size_bytes = frames.templates().record_size_bytes() as u64;
    let permits = Semaphore::new(args.max_in_flight);
    let (sent_tx, mut sent_rx) = mpsc::channel::<InFlight>(args.max_in_flight);
    let refresh = AtomicBool::new(false);
    let meter = &shared.meter;

    let write_side = async {
        let full = frames.templates().records_per_batch_max() as u64;
        let mut bucket =
            (plan.rate_per_s > 0.0).then(|| TokenBucket::new(plan.rate_per_s, full, shared.started.elapsed()));
        let mut remaining = plan.quota;
        let mut slot = plan.first_slot % plan.partitions.len().max(1);
        let mut correlation_id = parts.next_correlation_id;
        let mut control: Option<Connection> = None;
        loop {
            let over = shared.stop.load(Ordering::Relaxed)
                || shared.deadline.is_some_and(|deadline| Instant::now() >= deadline)
                || remaining == Some(0);
            if over {
                break;
            }
            if refresh.swap(false, Ordering::Relaxed) {
                check_leadership(&mut control, &shared, plan.node_id, &plan.partitions).await?;
                tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
            }
            if acks != 0 {
                // Taken before the rate limit so records pile up into bigger batches
                // while every slot is busy, as they do in a Kafka producer.
                permits.acquire().await.map_err(|_| PerfError::Internal("in-flight permits closed".into()))?.forget();
            }
            let want = full.min(remaining.unwrap_or(u64::MAX));
            let Some(records) = next_batch_records(&mut bucket, want, &shared).await else {
                permits.add_permits(1);
                break;
            };
            let class =
                frames.templates().class_for(records).ok_or_else(|| PerfError::Internal("no batch class".into()))?;
            let records = frames.templates().class_records(class) as u64;
            if let Some(bucket) = bucket.as_mut() {
                bucket.take(records);
            }
            let frame = frames.frame(slot, class)?;
            slot = (slot + 1) % plan.partitions.len();
            correlation_id = correlation_id.wrapping_add(1) & i32::MAX;
            frame.stamp(correlation_id, now_ms())?;
            if acks != 0 {
                let sent = InFlight { correlation_id, sent_at: Instant::now(), records };
                sent_tx.send(sent).await.map_err(|_| PerfError::Internal("the response reader stopped".into()))?;
            }
            writer
                .write_all(frame.bytes())
                .await
                .map_err(|error| PerfError::io(format!("sending Produce to {address}"), error))?;
            if acks == 0 {
                meter.add(records, records * record_size_bytes);
            }
            remaining = remaining.map(|left| left.saturating_sub(records));
        }
        // The reader ends once it has the answer to everything sent.
        drop(sent_tx);
        writer.shutdown().await.ok();
        Ok::<(), PerfError>(())
    };

    let read_side = async {
        let timeout = Duration::from_millis(args.request_timeout_ms);
        while let Some(sent) = sent_rx.recv().await {
            let frame = tokio::time::timeout(timeout, reader.frame()).await.map_err(|_| PerfError::Timeout {
                what: format!("a Produce response from {address}"),
                timeout_ms: args.request_timeout_ms,
            })??;
            let latency = sent.sent_at.elapsed();
            permits.add_permits(1);
            let ResponseBody::Produce(answer) =
                response_body(&address, frame, ApiKey::Produce, version, sent.correlation_id)?
            else {
                return Err(PerfError::protocol(&address, "Produce answered with another API"));
            };
            let mut failure = None;
            let mut answered = false;
            for topic in &answer.responses {
                for partition in &topic.partition_responses {
                    answered = true;
                    if partition.error_code != ErrorCode::None.code() {
                        failure = Some((partition.index, partition.error_code));
                    }
                }
            }
            if !answered {
                return Err(PerfError::protocol(&address, "a Produce response without the partition"));
            }
            match failure {
                None => {
                    meter.add(sent.records, sent.records * record_size_bytes);
                    meter.latency_us(latency.as_micros() as u64, sent.records);
                }
                Some((partition, code)) => {
                    meter.error();
                    let known = ErrorCode::from_code(code);
                    if !known.is_some_and(ErrorCode::is_retriable) {
                        return Err(PerfError::broker(format!("Produce to {}-{partition}", args.topic), code));
                    }
                    let moved =
                        [ErrorCode::UnknownTopicOrPartition, ErrorCode::NotLeaderOrFollower, ErrorCode::UnknownTopicId];
                    if known.is_some_and(|known| moved.contains(&known)) {
                        refresh.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
        Ok::<(), PerfError>(())
    };

    if acks == 0 {
        drop(read_side);
        write_side.await
    } else {
        tokio::try_join!(write_side, read_side).map(|_| ())
    }
}

/// After the broker said a partition is unknown or led elsewhere: carry on if
/// Metadata still puts every partition of this connection on its node, else stop.
async fn check_leadership(
    control: &mut Option<Connection>,
    shared: &Shared,
    node_id: i32,
    partitions: &[i32],
) -> Result<(), PerfError> {
    let connection = match control {
        Some(connection) => connection,
        None => control.insert(Connection::connect(&shared.args.bootstrap).await?),
    };
    let topic = &shared.args.topic;
    let Some(info) = cluster::describe_topic(connection, topic).await? else {
        return Err(PerfError::broker(
            format!("topic {topic} no longer exists"),
            ErrorCode::UnknownTopicOrPartition.code(),
        ));
    };
    for &partition in partitions {
        let leader = info.leader_of(partition);
        if leader != Some(node_id) {
            return Err(PerfError::broker(
                format!(
                    "partition {topic}-{partition} is now led by {leader:?}, not node {node_id} (this tool does not follow leaders)"
                ),
                ErrorCode::NotLeaderOrFollower.code(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::PartitionInfo;
    use clap::Parser;
    use std::collections::HashMap;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ProduceArgs,
    }

    fn args(extra: &[&str]) -> ProduceArgs {
        let mut all = vec!["produce", "--bootstrap", "b:1", "--topic", "t"];
        all.extend_from_slice(extra);
        Cli::parse_from(all).args
    }

    #[test]
    fn records_split_exactly() {
        assert_eq!(split_exactly(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(split_exactly(10_000, &[1, 3]), vec![2500, 7500]);
        assert_eq!(split_exactly(1, &[2, 2]), vec![1, 0]);
        assert_eq!(split_exactly(0, &[1]), vec![0]);
    }

    #[test]
    fn every_producer_gets_a_connection_per_leader_and_a_share() {
        let topic = TopicInfo {
            name: "t".into(),
            id: Uuid::ZERO,
            partitions: (0..3).map(|index| PartitionInfo { index, leader: if index == 1 { 2 } else { 1 } }).collect(),
            brokers: HashMap::from([(1, "a:1".into()), (2, "b:2".into())]),
        };
        let plans = plans(&args(&["--producers", "2", "--num-records", "601", "--throughput", "300"]), &topic);
        assert_eq!(plans.len(), 4);
        assert_eq!(plans.iter().map(|plan| plan.quota.unwrap()).sum::<u64>(), 601);
        assert_eq!(plans[0].partitions, vec![0, 2]);
        assert!((plans[0].rate_per_s - 100.0).abs() < 1e-9 && (plans[1].rate_per_s - 50.0).abs() < 1e-9);
        assert_eq!((plans[0].first_slot, plans[2].first_slot), (0, 1));
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(validate(&args(&[])).is_ok());
        assert!(validate(&args(&["--random-ratio", "1.5"])).is_err());
        assert!(validate(&args(&["--producers", "0"])).is_err());
        assert!(validate(&args(&["--duration-s", "0"])).is_err());
        assert!(validate(&args(&["--partitions", "0"])).is_err());
    }
}
