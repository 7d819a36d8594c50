//! `gregor perf consume`: consumers fetch their partitions from the leaders and
//! count records from batch headers alone (records count, last offset delta);
//! records are never decoded, compressed batches never decompressed. End-to-end
//! latency is now minus a batch's max timestamp, weighted by its records.
//!
//! Positions live in one table shared by the run's consumers, each partition
//! with its owner. A consumer counts a fetched partition only while it still
//! owns it at the offset it asked for, so a partition that a group moves from
//! one consumer to another mid-fetch is never counted twice, and the new owner
//! continues where the old one stopped although nothing is committed.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use gregor_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use gregor_protocol::messages::FetchRequest;
use gregor_protocol::records::{RecordBatchHeader, BATCH_HEADER_BYTES};
use gregor_protocol::{ApiKey, ErrorCode, ResponseBody, Uuid};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cli::ConsumeArgs;
use crate::cluster::{self, TopicInfo};
use crate::conn::{Connection, CALL_TIMEOUT_MS};
use crate::error::PerfError;
use crate::group;
use crate::produce::now_ms;
use crate::stats::{self, Meter, Mode, Summary};

/// How long a consumer without partitions waits before looking again.
const IDLE_POLL_MS: u64 = 100;
/// The pause after a failed fetch or an error in a partition.
const RETRY_BACKOFF_MS: u64 = 100;
/// Failed fetches in a row after which a consumer gives up.
const CONSECUTIVE_FAILURES_MAX: u32 = 100;
/// Room above --fetch-max-bytes for a response's framing and a first batch
/// larger than the limit, which brokers return anyway (KIP-74).
const FETCH_FRAME_SLACK_BYTES: usize = 64 * 1024 * 1024;

/// What the records of one fetched partition add up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchTally {
    pub records: u64,
    pub bytes: u64,
    /// Where the next fetch of the partition starts.
    pub next_offset: i64,
    /// Bytes that are not a v2 batch (legacy message sets), left uncounted.
    pub unreadable: bool,
}

/// Counts the complete batches of `records` from `fetch_offset` on, calling
/// `on_batch` with each batch's header and the records it contributed. A
/// trailing partial batch (cut by the fetch size) is left for the next fetch;
/// control batches advance the position but hold no records.
pub fn tally_batches(
    records: &[u8],
    fetch_offset: i64,
    mut on_batch: impl FnMut(&RecordBatchHeader, u64),
) -> BatchTally {
    let mut tally = BatchTally { next_offset: fetch_offset, ..BatchTally::default() };
    let mut at = 0usize;
    while let Some(rest) = records.get(at..).filter(|rest| rest.len() >= BATCH_HEADER_BYTES) {
        let Ok(header) = RecordBatchHeader::parse(rest) else {
            tally.unreadable = true;
            break;
        };
        let size_bytes = header.size_bytes();
        if size_bytes > rest.len() {
            break;
        }
        let last_offset = header.last_offset();
        if last_offset >= tally.next_offset {
            let counted = if header.is_control() {
                0
            } else if header.base_offset >= tally.next_offset {
                u64::try_from(header.records_count).unwrap_or_default()
            } else {
                // A batch the fetch starts inside: only the offsets from the fetch on.
                u64::try_from(last_offset - tally.next_offset + 1).unwrap_or_default()
            };
            tally.records += counted;
            tally.bytes += size_bytes as u64;
            on_batch(&header, counted);
            tally.next_offset = last_offset.saturating_add(1);
        }
        at += size_bytes;
    }
    tally
}

#[derive(Debug, Clone, Copy, Default)]
struct PartitionState {
    next_offset: Option<i64>,
    owner: Option<usize>,
    high_watermark: Option<i64>,
}

/// What every consumer and membership task of a run shares.
pub(crate) struct Shared {
    pub(crate) meter: Arc<Meter>,
    pub(crate) args: ConsumeArgs,
    pub(crate) topic: TopicInfo,
    started: Instant,
    deadline: Option<Instant>,
    positions: Mutex<BTreeMap<i32, PartitionState>>,
    stopping: AtomicBool,
    stop_tx: watch::Sender<bool>,
    finished_at: Mutex<Option<Instant>>,
}

impl Shared {
    fn positions(&self) -> MutexGuard<'_, BTreeMap<i32, PartitionState>> {
        // Every update leaves the table consistent, so a poisoned lock is still usable.
        self.positions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    pub(crate) fn stop(&self) {
        if !self.stopping.swap(true, Ordering::Relaxed) {
            *self.finished_at.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
            self.stop_tx.send_replace(true);
        }
    }

    /// Resolves when the run stops.
    pub(crate) async fn stopped(&self) {
        let mut stop_rx = self.stop_tx.subscribe();
        let _ = stop_rx.wait_for(|stopped| *stopped).await;
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|deadline| Instant::now() >= deadline)
    }

    /// Takes the free partitions of `owned` for `consumer`: returns those it
    /// owns with a position, and those it owns without one yet.
    fn claim(&self, consumer: usize, owned: &[i32]) -> (Vec<(i32, i64)>, Vec<i32>) {
        let mut positions = self.positions();
        let (mut ready, mut unplaced) = (Vec::new(), Vec::new());
        for partition in owned {
            let Some(state) = positions.get_mut(partition) else { continue };
            if state.owner.is_none() {
                state.owner = Some(consumer);
            }
            if state.owner == Some(consumer) {
                match state.next_offset {
                    Some(offset) => ready.push((*partition, offset)),
                    None => unplaced.push(*partition),
                }
            }
        }
        (ready, unplaced)
    }

    fn place(&self, consumer: usize, partition: i32, offset: i64) {
        if let Some(state) = self.positions().get_mut(&partition).filter(|state| state.owner == Some(consumer)) {
            state.next_offset = Some(offset);
        }
    }

    /// Gives up `partitions` (revoked by the group), keeping their positions for the next owner.
    pub(crate) fn release(&self, consumer: usize, partitions: &[i32]) {
        let mut positions = self.positions();
        for partition in partitions {
            if let Some(state) = positions.get_mut(partition).filter(|state| state.owner == Some(consumer)) {
                state.owner = None;
            }
        }
    }

    /// Whether every partition has been fetched up to the high watermark last seen.
    fn caught_up(positions: &BTreeMap<i32, PartitionState>) -> bool {
        positions.values().all(|state| match (state.next_offset, state.high_watermark) {
            (Some(next), Some(high_watermark)) => next >= high_watermark,
            _ => false,
        })
    }
}

fn validate(args: &ConsumeArgs) -> Result<(), PerfError> {
    if args.consumers == 0 {
        return Err(PerfError::Usage("--consumers must be at least 1".into()));
    }
    if args.duration_s.is_some_and(|seconds| !seconds.is_finite() || seconds <= 0.0) {
        return Err(PerfError::Usage("--duration-s must be positive".into()));
    }
    if args.fetch_max_bytes < 1 || args.fetch_partition_max_bytes < 1 || args.fetch_max_wait_ms < 0 {
        return Err(PerfError::Usage("fetch sizes must be positive and the wait not negative".into()));
    }
    Ok(())
}

/// Partition `index` of the sorted list goes to consumer `index % consumers`.
fn static_assignment(partitions: &[i32], consumers: usize, consumer: usize) -> Vec<i32> {
    partitions.iter().enumerate().filter(|(index, _)| index % consumers == consumer).map(|(_, &p)| p).collect()
}

pub async fn run(args: ConsumeArgs) -> Result<Summary, PerfError> {
    validate(&args)?;
    let mut control = Connection::connect(&args.bootstrap).await?;
    let topic = cluster::describe_topic(&mut control, &args.topic).await?.ok_or_else(|| {
        PerfError::broker(format!("topic {} does not exist", args.topic), ErrorCode::UnknownTopicOrPartition.code())
    })?;
    if args.group.is_some() && topic.id == Uuid::ZERO {
        return Err(PerfError::Usage("--group needs a broker whose Metadata carries topic ids (v10+)".into()));
    }
    let leaders = topic.by_leader();
    let mut fetchers = Vec::new();
    for consumer in 0..args.consumers {
        for &node_id in leaders.keys() {
            let mut connection = Connection::connect(topic.address_of(node_id)?).await?;
            let fetch_max_bytes = usize::try_from(args.fetch_max_bytes).unwrap_or_default();
            connection.set_frame_bytes_max(fetch_max_bytes.saturating_add(FETCH_FRAME_SLACK_BYTES));
            fetchers.push((consumer, node_id, connection));
        }
    }
    let partitions: Vec<i32> = topic.partitions.iter().map(|partition| partition.index).collect();
    let positions = partitions.iter().map(|&partition| (partition, PartitionState::default())).collect();
    let started = Instant::now();
    let shared = Arc::new(Shared {
        meter: Meter::new(),
        deadline: args.duration_s.map(|seconds| started + Duration::from_secs_f64(seconds)),
        args,
        topic,
        started,
        positions: Mutex::new(positions),
        stopping: AtomicBool::new(false),
        stop_tx: watch::channel(false).0,
        finished_at: Mutex::new(None),
    });
    let progress = tokio::spawn(stats::report_progress(Arc::clone(&shared.meter), Mode::Consume));
    let mut tasks = JoinSet::new();
    let mut assignments = Vec::new();
    for consumer in 0..shared.args.consumers {
        let initial = match shared.args.group {
            Some(_) => Vec::new(),
            None => static_assignment(&partitions, shared.args.consumers, consumer),
        };
        let (assignment_tx, assignment_rx) = watch::channel(initial);
        if let Some(group_id) = shared.args.group.clone() {
            tasks.spawn(group::membership(consumer, group_id, Arc::clone(&shared), assignment_tx));
        }
        assignments.push(assignment_rx);
    }
    for (consumer, node_id, connection) in fetchers {
        let assignment = assignments[consumer].clone();
        tasks.spawn(fetch_loop(consumer, node_id, connection, assignment, Arc::clone(&shared)));
    }
    drop(assignments);
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.map_err(|error| PerfError::Internal(format!("a consumer task failed: {error}")))?;
        if let Err(error) = result {
            first_error.get_or_insert(error);
            shared.stop();
        }
    }
    progress.abort();
    if let Some(error) = first_error {
        return Err(error);
    }
    let finished_at = shared.finished_at.lock().unwrap_or_else(PoisonError::into_inner).unwrap_or_else(Instant::now);
    Ok(shared.meter.summary(Mode::Consume, finished_at.saturating_duration_since(shared.started)))
}

async fn fetch_loop(
    consumer: usize,
    node_id: i32,
    mut connection: Connection,
    mut assignment: watch::Receiver<Vec<i32>>,
    shared: Arc<Shared>,
) -> Result<(), PerfError> {
    let args = &shared.args;
    let topic = &shared.topic;
    let client_max = if topic.id == Uuid::ZERO { 12 } else { 18 };
    let version = connection.versions().pick(ApiKey::Fetch, 4, client_max)?;
    let led: HashSet<i32> = topic.partitions.iter().filter(|p| p.leader == node_id).map(|p| p.index).collect();
    let timeout_ms = CALL_TIMEOUT_MS + u64::try_from(args.fetch_max_wait_ms).unwrap_or_default();
    let mut failures = 0u32;
    loop {
        if shared.past_deadline() {
            shared.stop();
        }
        if shared.is_stopping() {
            return Ok(());
        }
        let owned: Vec<i32> = assignment.borrow_and_update().iter().copied().filter(|p| led.contains(p)).collect();
        let (ready, unplaced) = shared.claim(consumer, &owned);
        if !unplaced.is_empty() {
            for (partition, offset) in cluster::list_offsets(&mut connection, &topic.name, &unplaced, args.from).await?
            {
                match offset {
                    Ok(offset) => shared.place(consumer, partition, offset),
                    Err(code) => {
                        shared.meter.error();
                        failures += 1;
                        if failures > CONSECUTIVE_FAILURES_MAX {
                            return Err(PerfError::broker(format!("ListOffsets for {}-{partition}", topic.name), code));
                        }
                        tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
                    }
                }
            }
            continue;
        }
        if ready.is_empty() {
            tokio::select! {
                _ = assignment.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(IDLE_POLL_MS)) => {}
                _ = shared.stopped() => {}
            }
            continue;
        }
        let request = FetchRequest {
            max_wait_ms: args.fetch_max_wait_ms,
            min_bytes: args.fetch_min_bytes,
            max_bytes: args.fetch_max_bytes,
            topics: vec![FetchTopic {
                topic: topic.name.clone(),
                topic_id: topic.id,
                partitions: ready
                    .iter()
                    .map(|&(partition, fetch_offset)| FetchPartition {
                        partition,
                        fetch_offset,
                        partition_max_bytes: args.fetch_partition_max_bytes,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let ResponseBody::Fetch(answer) = connection.call_within(request, version, timeout_ms).await? else {
            return Err(PerfError::protocol(connection.address(), "Fetch answered with another API"));
        };
        if answer.error_code != ErrorCode::None.code() {
            shared.meter.error();
            failures += 1;
            if failures > CONSECUTIVE_FAILURES_MAX {
                return Err(PerfError::broker(format!("Fetch from {}", connection.address()), answer.error_code));
            }
            tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
            continue;
        }
        let mut failed = false;
        for partition in answer.responses.iter().flat_map(|topic| &topic.partitions) {
            let index = partition.partition_index;
            let Some(&(_, fetch_offset)) = ready.iter().find(|(asked, _)| *asked == index) else { continue };
            if partition.error_code != ErrorCode::None.code() {
                shared.meter.error();
                failed = true;
                if partition.error_code == ErrorCode::OffsetOutOfRange.code() {
                    // Start over from --from, as a consumer with auto.offset.reset does.
                    shared.release(consumer, &[index]);
                    if let Some(state) = shared.positions().get_mut(&index) {
                        state.next_offset = None;
                    }
                } else if !ErrorCode::from_code(partition.error_code).is_some_and(ErrorCode::is_retriable) {
                    return Err(PerfError::broker(format!("Fetch of {}-{index}", topic.name), partition.error_code));
                }
                continue;
            }
            let records = partition.records.as_deref().unwrap_or_default();
            account(&shared, consumer, index, fetch_offset, records, partition.high_watermark);
        }
        if failed {
            failures += 1;
            if failures > CONSECUTIVE_FAILURES_MAX {
                return Err(PerfError::Timeout {
                    what: format!("fetching {} without errors", topic.name),
                    timeout_ms: u64::from(CONSECUTIVE_FAILURES_MAX) * RETRY_BACKOFF_MS,
                });
            }
            tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
        } else {
            failures = 0;
        }
    }
}

/// Counts one fetched partition if `consumer` still owns it at `fetch_offset`,
/// and stops the run when it has what it came for.
fn account(shared: &Shared, consumer: usize, partition: i32, fetch_offset: i64, records: &[u8], high_watermark: i64) {
    if shared.is_stopping() {
        // Past the deadline or the count: not part of the measured run.
        return;
    }
    let mut positions = shared.positions();
    let Some(state) = positions.get_mut(&partition) else { return };
    if state.owner != Some(consumer) || state.next_offset != Some(fetch_offset) {
        return;
    }
    let now_ms = now_ms();
    let tally = tally_batches(records, fetch_offset, |header, counted| {
        if counted > 0 && header.max_timestamp > 0 {
            let latency_ms = u64::try_from(now_ms - header.max_timestamp).unwrap_or_default();
            shared.meter.latency_us(latency_ms.saturating_mul(1000), counted);
        }
    });
    if tally.unreadable {
        shared.meter.error();
    }
    state.next_offset = Some(tally.next_offset);
    state.high_watermark = Some(high_watermark);
    shared.meter.add(tally.records, tally.bytes);
    let done = match shared.args.num_records {
        Some(target) => shared.meter.records() >= target,
        None => shared.args.duration_s.is_none() && Shared::caught_up(&positions),
    };
    drop(positions);
    if done {
        shared.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::records::RecordBatchBuilder;
    use gregor_protocol::Compression;

    fn batch(base_offset: i64, count: usize, timestamp_ms: i64, compression: Compression) -> Vec<u8> {
        let mut builder = RecordBatchBuilder::new(base_offset).compression(compression);
        for _ in 0..count {
            builder.append(timestamp_ms, None, Some(vec![7u8; 100].into()), Vec::new()).unwrap();
        }
        builder.build().unwrap()
    }

    #[test]
    fn counts_whole_batches_from_headers() {
        let mut records = batch(0, 3, 1000, Compression::None);
        records.extend(batch(3, 5, 2000, Compression::Zstd));
        let mut seen = Vec::new();
        let tally = tally_batches(&records, 0, |header, counted| seen.push((header.max_timestamp, counted)));
        assert_eq!(tally.records, 8);
        assert_eq!(tally.bytes, records.len() as u64);
        assert_eq!(tally.next_offset, 8);
        assert!(!tally.unreadable);
        assert_eq!(seen, vec![(1000, 3), (2000, 5)]);
    }

    #[test]
    fn a_cut_batch_waits_for_the_next_fetch() {
        let first = batch(10, 2, 1, Compression::None);
        let mut records = first.clone();
        records.extend(&batch(12, 4, 1, Compression::None)[..70]);
        let tally = tally_batches(&records, 10, |_, _| {});
        assert_eq!((tally.records, tally.bytes, tally.next_offset), (2, first.len() as u64, 12));
        assert_eq!(tally_batches(&[], 5, |_, _| {}).next_offset, 5);
    }

    #[test]
    fn batches_before_the_fetch_offset_count_only_from_it() {
        let records = batch(0, 10, 1, Compression::None);
        assert_eq!(tally_batches(&records, 4, |_, _| {}).records, 6);
        assert_eq!(tally_batches(&records, 10, |_, _| {}).records, 0);
    }

    #[test]
    fn control_batches_advance_without_records() {
        let records = RecordBatchBuilder::new(5)
            .control(true)
            .transactional(true)
            .producer(1, 0, -1)
            .push_record(gregor_protocol::records::Record {
                attributes: 0,
                timestamp_delta: 0,
                offset_delta: 0,
                key: Some(vec![0, 0, 0, 1].into()),
                value: Some(vec![0, 0, 0, 0, 0, 0].into()),
                headers: Vec::new(),
            })
            .build()
            .unwrap();
        let tally = tally_batches(&records, 5, |_, _| {});
        assert_eq!((tally.records, tally.next_offset), (0, 6));
    }

    #[test]
    fn legacy_message_sets_are_flagged() {
        let mut legacy = vec![0u8; 80];
        legacy[16] = 1;
        assert!(tally_batches(&legacy, 0, |_, _| {}).unreadable);
    }

    #[test]
    fn partitions_split_round_robin() {
        assert_eq!(static_assignment(&[0, 1, 2, 3, 4], 2, 0), vec![0, 2, 4]);
        assert_eq!(static_assignment(&[0, 1, 2, 3, 4], 2, 1), vec![1, 3]);
        assert_eq!(static_assignment(&[0], 3, 2), Vec::<i32>::new());
    }

    #[test]
    fn caught_up_needs_every_partition_at_its_high_watermark() {
        let mut positions = BTreeMap::new();
        positions.insert(0, PartitionState { next_offset: Some(5), owner: Some(0), high_watermark: Some(5) });
        assert!(Shared::caught_up(&positions));
        positions.insert(1, PartitionState { next_offset: Some(0), owner: None, high_watermark: None });
        assert!(!Shared::caught_up(&positions));
    }
}
