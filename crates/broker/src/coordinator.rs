//! The group coordinator's runtime: it hosts one [`GroupCoordinatorShard`] per
//! partition of `__consumer_offsets`, loads each from its log on start, and runs the
//! shard's decisions: append the records it returns to the partition's log, replay
//! them into the shard, then release the answers. Each shard has its own lock and its
//! own timer task, so groups on different partitions never wait for each other.
//!
//! Answers are addressed by [`ReplyId`]: a JoinGroup answer may be released by another
//! member's request or by a timer, so the caller parks a oneshot under its id and the
//! shard's effects fill it. If an append fails, the answers of that decision are
//! dropped and their requests are answered NOT_COORDINATOR, as Kafka answers when the
//! coordinator's partition goes away; the client then looks the coordinator up again.
//! Shutdown releases parked requests the same way.

use crate::broker::Broker;
use crate::partitions::Partition;
use crate::time::now_ms;
use bytes::BytesMut;
use gregor_group::{
    partition_for_group, CoordinatorRecord, Effects, GroupConfig, GroupCoordinatorShard, ReplyId, RequestContext,
    TopicsView,
};
use gregor_metadata::controller::{create_topics, NewTopic};
use gregor_metadata::MetadataImage;
use gregor_protocol::records::{
    decode_transaction_marker, split_record_set, RecordBatch, RecordBatchBuilder, TransactionResult, NO_SEQUENCE,
};
use gregor_protocol::{ErrorCode, ResponseBody, Uuid};
use gregor_storage::{AppendError, TxnMarker};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use tokio::sync::{oneshot, watch, Notify};

/// The internal topic holding groups and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Bytes read per step while loading a shard.
const LOAD_READ_BYTES: usize = 4 << 20;
/// Records decompressed per batch at most while loading (a bound on bad input).
const LOAD_BATCH_BYTES_MAX: usize = 64 << 20;

/// Why a group request could not be served by a shard: the codes clients retry on.
pub type CoordinatorUnavailable = ErrorCode;

enum LoadState {
    Loading,
    Loaded,
    /// The partition's log could not be read; the shard serves nothing.
    Failed,
}

struct ShardState {
    shard: GroupCoordinatorShard,
    load: LoadState,
    waiting: HashMap<ReplyId, oneshot::Sender<ResponseBody>>,
}

/// One `__consumer_offsets` partition and the coordinator state built from it.
struct Shard {
    partition: Arc<Partition>,
    state: Mutex<ShardState>,
    /// Wakes the timer task when a decision may have moved the next deadline.
    timers_changed: Notify,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, ShardState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Every shard this node hosts.
pub struct GroupCoordinator {
    shards: RwLock<HashMap<i32, Arc<Shard>>>,
    next_reply: AtomicU64,
    /// Serialises the creation of `__consumer_offsets`.
    create_lock: tokio::sync::Mutex<()>,
    shutdown: watch::Receiver<bool>,
    shutdown_tx: watch::Sender<bool>,
}

impl std::fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCoordinator").finish_non_exhaustive()
    }
}

impl Default for GroupCoordinator {
    fn default() -> Self {
        let (shutdown_tx, shutdown) = watch::channel(false);
        GroupCoordinator {
            shards: RwLock::new(HashMap::new()),
            next_reply: AtomicU64::new(1),
            create_lock: tokio::sync::Mutex::new(()),
            shutdown,
            shutdown_tx,
        }
    }
}

/// The coordinator's settings from the broker's config.
pub fn group_config(config: &gregor_config::BrokerConfig) -> GroupConfig {
    let protocols: Vec<String> =
        config.group_coordinator_rebalance_protocols.iter().map(|protocol| protocol.to_ascii_lowercase()).collect();
    GroupConfig {
        initial_rebalance_delay_ms: i64::from(config.group_initial_rebalance_delay_ms),
        min_session_timeout_ms: config.group_min_session_timeout_ms,
        max_session_timeout_ms: config.group_max_session_timeout_ms,
        max_size: config.group_max_size,
        consumer_session_timeout_ms: config.group_consumer_session_timeout_ms,
        consumer_heartbeat_interval_ms: config.group_consumer_heartbeat_interval_ms,
        consumer_max_size: config.group_consumer_max_size,
        consumer_assignors: config.group_consumer_assignors.clone(),
        offsets_retention_ms: i64::from(config.offsets_retention_minutes) * 60_000,
        offset_metadata_max_bytes: usize::try_from(config.offset_metadata_max_bytes).unwrap_or(4096),
        classic_enabled: protocols.iter().any(|protocol| protocol == "classic"),
        consumer_enabled: protocols.iter().any(|protocol| protocol == "consumer"),
    }
}

/// The metadata image as the coordinator sees topics.
pub struct ImageTopics(pub Arc<MetadataImage>);

impl TopicsView for ImageTopics {
    fn topic_id(&self, name: &str) -> Option<Uuid> {
        self.0.topic(name).map(|topic| topic.id)
    }

    fn topic_name(&self, id: Uuid) -> Option<String> {
        self.0.topic_by_id(id).map(|topic| topic.name.clone())
    }

    fn partition_count(&self, name: &str) -> Option<i32> {
        self.0.topic(name).and_then(|topic| i32::try_from(topic.partitions.len()).ok())
    }

    fn topic_names(&self) -> Vec<String> {
        self.0.topics().map(|topic| topic.name.clone()).collect()
    }
}

/// Encodes `records` as one batch for `__consumer_offsets`; a transactional batch of
/// `(producer id, epoch)` when given. Like Kafka's coordinator writes, the batch carries
/// no sequence: storage then checks the producer epoch and opens the producer's
/// transaction on this partition (holding its LSO until the marker), without the
/// idempotence checks a client's produce gets.
fn encode_records(
    records: &[CoordinatorRecord],
    now: i64,
    transactional: Option<(i64, i16)>,
) -> Result<BytesMut, String> {
    let mut builder = RecordBatchBuilder::new(0);
    if let Some((producer_id, producer_epoch)) = transactional {
        builder = builder.producer(producer_id, producer_epoch, NO_SEQUENCE).transactional(true);
    }
    for record in records {
        let (key, value) = record.encode().map_err(|error| error.to_string())?;
        builder.append(now, Some(key), value, Vec::new()).map_err(|error| error.to_string())?;
    }
    let bytes = builder.build().map_err(|error| error.to_string())?;
    Ok(BytesMut::from(&bytes[..]))
}

/// What a failed coordinator append answers (Kafka's `handleOperationException`
/// normalisation), for the transactional writes that report it; other decisions
/// answer NOT_COORDINATOR, as before.
fn append_error_code(error: &AppendError) -> ErrorCode {
    match error.error_code() {
        ErrorCode::UnknownTopicOrPartition | ErrorCode::NotEnoughReplicas | ErrorCode::RequestTimedOut => {
            ErrorCode::CoordinatorNotAvailable
        }
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
        ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge | ErrorCode::InvalidFetchSize => {
            ErrorCode::UnknownServerError
        }
        other => other,
    }
}

/// Appends the effects' records, replays them, and releases the answers. Runs with
/// the shard's lock held, so decisions of one shard are applied in order. On a failed
/// append the decision's answers are dropped (their requests answer NOT_COORDINATOR)
/// and the error is returned: for a transactional decision the storage's error (an
/// INVALID_PRODUCER_EPOCH for a fenced producer), else NOT_COORDINATOR.
fn apply(state: &mut ShardState, partition: &Partition, effects: Effects) -> Result<(), ErrorCode> {
    let Effects { records, replies, transactional } = effects;
    if !records.is_empty() {
        let now = now_ms();
        let appended = encode_records(&records, now, transactional)
            .map_err(|error| (error, ErrorCode::NotCoordinator))
            .and_then(|batch| {
                partition.log.append_as_leader(batch, partition.leader_epoch(), now).map_err(|error| {
                    let code =
                        if transactional.is_some() { append_error_code(&error) } else { ErrorCode::NotCoordinator };
                    (error.to_string(), code)
                })
            });
        match appended {
            Ok(_) => {
                partition.waiters.wake_all();
                for record in records {
                    match transactional {
                        Some((producer_id, _)) => state.shard.replay_transactional(producer_id, record),
                        None => state.shard.replay(record),
                    }
                }
            }
            Err((error, code)) => {
                tracing::warn!(
                    partition = partition.index,
                    "group coordinator append failed, answers dropped: {error}"
                );
                for (reply, _) in replies {
                    state.waiting.remove(&reply);
                }
                return Err(code);
            }
        }
    }
    for (reply, response) in replies {
        if let Some(waiter) = state.waiting.remove(&reply) {
            // The client may have gone; its answer has nowhere to go.
            let _ = waiter.send(response);
        }
    }
    Ok(())
}

/// Reads the whole partition log and replays it into a fresh shard. Blocking.
fn load_shard(partition: &Partition, shard: &mut GroupCoordinatorShard) -> Result<usize, String> {
    let log = &partition.log;
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    let mut replayed = 0;
    while offset < end {
        let read = log.read(offset, LOAD_READ_BYTES, true, end).map_err(|error| error.to_string())?;
        if read.records.is_empty() {
            break;
        }
        let mut next = offset;
        for batch in split_record_set(read.records) {
            let batch = batch.map_err(|error| error.to_string())?;
            let batch = RecordBatch::new(batch).map_err(|error| error.to_string())?;
            let header = batch.header();
            next = header.last_offset() + 1;
            if header.last_offset() < offset {
                continue;
            }
            if header.is_control() {
                // A COMMIT or ABORT marker ends the producer's pending offsets.
                if header.producer_id >= 0 {
                    match decode_transaction_marker(&batch) {
                        Ok(marker) => shard.replay_end_transaction_marker(
                            header.producer_id,
                            marker.result == TransactionResult::Commit,
                        ),
                        Err(error) => {
                            tracing::warn!(partition = partition.index, "skipping an unreadable control batch: {error}")
                        }
                    }
                }
                continue;
            }
            // Offsets in a transactional batch are pending until the producer's marker.
            let producer = (header.is_transactional() && header.producer_id >= 0).then_some(header.producer_id);
            let base = header.base_offset;
            for record in batch.records(LOAD_BATCH_BYTES_MAX).map_err(|error| error.to_string())? {
                if base + i64::from(record.offset_delta) < offset {
                    continue;
                }
                let Some(key) = record.key else { continue };
                match CoordinatorRecord::decode(key, record.value) {
                    Ok(Some(record)) => {
                        match producer {
                            Some(producer_id) => shard.replay_transactional(producer_id, record),
                            None => shard.replay(record),
                        }
                        replayed += 1;
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(partition = partition.index, "skipping an unreadable group record: {error}")
                    }
                }
            }
        }
        if next <= offset {
            break;
        }
        offset = next;
    }
    Ok(replayed)
}

impl GroupCoordinator {
    fn shard(&self, index: i32) -> Option<Arc<Shard>> {
        self.shards.read().ok()?.get(&index).cloned()
    }

    /// Starts hosting every `__consumer_offsets` partition this node leads that is not
    /// hosted yet, loading each in the background; drops shards whose partition is
    /// gone. Called after every metadata change that may touch the topic.
    pub fn sync_with(&self, broker: &Arc<Broker>) {
        let image = broker.image();
        let Some(topic) = image.topic(OFFSETS_TOPIC) else {
            if let Ok(mut shards) = self.shards.write() {
                shards.clear();
            }
            return;
        };
        let config = group_config(&broker.config());
        for &index in topic.partitions.keys() {
            if self.shard(index).is_some() {
                continue;
            }
            let Some(partition) = broker.replicas.get(OFFSETS_TOPIC, index) else { continue };
            let shard = Arc::new(Shard {
                partition,
                state: Mutex::new(ShardState {
                    shard: GroupCoordinatorShard::new(index, config.clone()),
                    load: LoadState::Loading,
                    waiting: HashMap::new(),
                }),
                timers_changed: Notify::new(),
            });
            if let Ok(mut shards) = self.shards.write() {
                shards.insert(index, Arc::clone(&shard));
            }
            let shutdown = self.shutdown.clone();
            tokio::spawn(run_shard(shard, shutdown));
        }
    }

    /// Stops the timer tasks and releases every parked request (their connections
    /// close, and the clients find the coordinator again after the restart).
    pub fn shutdown(&self) {
        let _ = self.shutdown_tx.send(true);
        let shards: Vec<Arc<Shard>> = self.shards.read().map(|s| s.values().cloned().collect()).unwrap_or_default();
        for shard in shards {
            shard.lock().waiting.clear();
        }
    }

    /// Applies a changed broker config to every shard.
    pub fn reconfigure(&self, config: &gregor_config::BrokerConfig) {
        let config = group_config(config);
        let shards: Vec<Arc<Shard>> = self.shards.read().map(|s| s.values().cloned().collect()).unwrap_or_default();
        for shard in shards {
            shard.lock().shard.set_config(config.clone());
        }
    }

    /// The shard index of `group_id`, creating `__consumer_offsets` if it does not
    /// exist yet (as Kafka does on the first FindCoordinator).
    pub async fn ensure_topic(&self, broker: &Arc<Broker>) -> Result<i32, CoordinatorUnavailable> {
        if let Some(topic) = broker.image().topic(OFFSETS_TOPIC) {
            return i32::try_from(topic.partitions.len()).map_err(|_| ErrorCode::CoordinatorNotAvailable);
        }
        let _creating = self.create_lock.lock().await;
        if let Some(topic) = broker.image().topic(OFFSETS_TOPIC) {
            return i32::try_from(topic.partitions.len()).map_err(|_| ErrorCode::CoordinatorNotAvailable);
        }
        let config = broker.config();
        let topic = NewTopic {
            name: OFFSETS_TOPIC.to_string(),
            num_partitions: config.offsets_topic_num_partitions,
            // One node: every replica factor above one would be unsatisfiable, and
            // Kafka also caps it at the number of live brokers.
            replication_factor: 1,
            assignments: Vec::new(),
            configs: vec![
                ("cleanup.policy".to_string(), Some("compact".to_string())),
                ("compression.type".to_string(), Some("producer".to_string())),
                ("segment.bytes".to_string(), Some(config.offsets_topic_segment_bytes.to_string())),
            ],
        };
        let created = broker.decide(move |image, context| create_topics(image, context, &[topic], false)).await;
        match created {
            Ok(outcomes) => {
                if let Some(outcome) = outcomes
                    .iter()
                    .find(|outcome| outcome.error != ErrorCode::None && outcome.error != ErrorCode::TopicAlreadyExists)
                {
                    tracing::warn!("creating {OFFSETS_TOPIC} failed: {:?}", outcome.error);
                    return Err(ErrorCode::CoordinatorNotAvailable);
                }
            }
            Err(error) => {
                tracing::warn!("creating {OFFSETS_TOPIC} failed: {error}");
                return Err(ErrorCode::CoordinatorNotAvailable);
            }
        }
        self.sync_with(broker);
        let topic = broker.image().topic(OFFSETS_TOPIC).map(|topic| topic.partitions.len());
        topic.and_then(|count| i32::try_from(count).ok()).ok_or(ErrorCode::CoordinatorNotAvailable)
    }

    /// The shard serving `group_id`, if it exists and is loaded.
    fn shard_for(&self, broker: &Broker, group_id: &str) -> Result<Arc<Shard>, CoordinatorUnavailable> {
        let image = broker.image();
        let Some(topic) = image.topic(OFFSETS_TOPIC) else { return Err(ErrorCode::CoordinatorNotAvailable) };
        let count = i32::try_from(topic.partitions.len()).map_err(|_| ErrorCode::CoordinatorNotAvailable)?;
        let index = partition_for_group(group_id, count);
        self.shard(index).ok_or(ErrorCode::NotCoordinator)
    }

    fn next_reply(&self) -> ReplyId {
        self.next_reply.fetch_add(1, Ordering::Relaxed)
    }

    fn context(&self, header: &RequestContextSource<'_>, reply: ReplyId) -> RequestContext {
        RequestContext {
            api_version: header.api_version,
            client_id: header.client_id.to_string(),
            client_host: header.client_host.to_string(),
            now_ms: now_ms(),
            reply,
        }
    }

    /// Runs one decision of the shard serving `group_id` and waits for this request's
    /// answer (which may come from a later decision: a JoinGroup waits for the others).
    pub async fn decide<F>(
        &self,
        broker: &Arc<Broker>,
        source: &RequestContextSource<'_>,
        group_id: &str,
        decide: F,
    ) -> Result<ResponseBody, CoordinatorUnavailable>
    where
        F: FnOnce(&mut GroupCoordinatorShard, &RequestContext, &ImageTopics) -> Effects + Send + 'static,
    {
        let shard = self.shard_for(broker, group_id)?;
        let reply = self.next_reply();
        let context = self.context(source, reply);
        let topics = ImageTopics(broker.image());
        let (sender, receiver) = oneshot::channel();
        let run = {
            let shard = Arc::clone(&shard);
            move || -> Result<(), CoordinatorUnavailable> {
                let mut state = shard.lock();
                match state.load {
                    LoadState::Loading => return Err(ErrorCode::CoordinatorLoadInProgress),
                    LoadState::Failed => return Err(ErrorCode::NotCoordinator),
                    LoadState::Loaded => {}
                }
                state.waiting.insert(reply, sender);
                let effects = decide(&mut state.shard, &context, &topics);
                apply(&mut state, &shard.partition, effects)
            }
        };
        tokio::task::spawn_blocking(run).await.map_err(|_| ErrorCode::CoordinatorNotAvailable)??;
        shard.timers_changed.notify_one();
        receiver.await.map_err(|_| ErrorCode::NotCoordinator)
    }

    /// Reads the shard serving `group_id` without changing it.
    pub fn read<T>(
        &self,
        broker: &Broker,
        source: &RequestContextSource<'_>,
        group_id: &str,
        read: impl FnOnce(&GroupCoordinatorShard, &RequestContext, &ImageTopics) -> T,
    ) -> Result<T, CoordinatorUnavailable> {
        let shard = self.shard_for(broker, group_id)?;
        let context = self.context(source, 0);
        let topics = ImageTopics(broker.image());
        let state = shard.lock();
        match state.load {
            LoadState::Loading => Err(ErrorCode::CoordinatorLoadInProgress),
            LoadState::Failed => Err(ErrorCode::NotCoordinator),
            LoadState::Loaded => Ok(read(&state.shard, &context, &topics)),
        }
    }

    /// Runs `decide` on the shard of `group_id` when the answer is not a response
    /// (DeleteGroups per group): the records are applied, `T` is returned.
    pub async fn decide_value<T, F>(
        &self,
        broker: &Arc<Broker>,
        source: &RequestContextSource<'_>,
        group_id: &str,
        decide: F,
    ) -> Result<T, CoordinatorUnavailable>
    where
        F: FnOnce(&mut GroupCoordinatorShard, &RequestContext) -> (Vec<CoordinatorRecord>, T) + Send + 'static,
        T: Send + 'static,
    {
        let shard = self.shard_for(broker, group_id)?;
        let context = self.context(source, 0);
        let run = {
            let shard = Arc::clone(&shard);
            move || -> Result<T, CoordinatorUnavailable> {
                let mut state = shard.lock();
                match state.load {
                    LoadState::Loading => return Err(ErrorCode::CoordinatorLoadInProgress),
                    LoadState::Failed => return Err(ErrorCode::NotCoordinator),
                    LoadState::Loaded => {}
                }
                let (records, value) = decide(&mut state.shard, &context);
                // A failed append answers the error, not a success that was not written.
                apply(&mut state, &shard.partition, Effects { records, ..Effects::default() })?;
                Ok(value)
            }
        };
        let value = tokio::task::spawn_blocking(run).await.map_err(|_| ErrorCode::CoordinatorNotAvailable)??;
        shard.timers_changed.notify_one();
        Ok(value)
    }

    /// Calls `visit` on every shard; `Err` for the first shard still loading.
    pub fn visit_all<T>(
        &self,
        mut visit: impl FnMut(&GroupCoordinatorShard) -> Vec<T>,
    ) -> (Vec<T>, Option<CoordinatorUnavailable>) {
        let shards: Vec<Arc<Shard>> = self.shards.read().map(|s| s.values().cloned().collect()).unwrap_or_default();
        let mut out = Vec::new();
        let mut error = None;
        for shard in shards {
            let state = shard.lock();
            match state.load {
                LoadState::Loaded => out.extend(visit(&state.shard)),
                LoadState::Loading => error = Some(ErrorCode::CoordinatorLoadInProgress),
                LoadState::Failed => {}
            }
        }
        (out, error)
    }

    /// Tells the shard of `__consumer_offsets` partition `partition` that a COMMIT
    /// (`commit`) or ABORT marker of `producer_id` has been appended to that partition:
    /// the producer's pending offsets become committed or are dropped. For a writer that
    /// appended the marker itself; [`write_marker_and_complete`](Self::write_marker_and_complete)
    /// does both under the shard's lock. Blocking (waits for the shard's lock): call it
    /// from a blocking context. NOT_COORDINATOR when this node does not host the shard;
    /// a shard still loading reads the marker from the log itself. Replaying a marker
    /// twice is harmless, since the producer cannot start its next transaction on this
    /// group until its markers are written (the transaction coordinator answers
    /// CONCURRENT_TRANSACTIONS meanwhile).
    pub fn complete_transaction(&self, partition: i32, producer_id: i64, commit: bool) -> Result<(), ErrorCode> {
        let shard = self.shard(partition).ok_or(ErrorCode::NotCoordinator)?;
        let mut state = shard.lock();
        if matches!(state.load, LoadState::Loaded) {
            state.shard.replay_end_transaction_marker(producer_id, commit);
        }
        Ok(())
    }

    /// Appends `marker` to `__consumer_offsets` partition `partition` and replays it
    /// into the partition's shard, both under the shard's lock, so the marker is applied
    /// in log order with the shard's own writes (WriteTxnMarkers for a group's offsets).
    /// The append's error (INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED, ...)
    /// is returned as storage reports it. Blocking: call it from a blocking context.
    pub fn write_marker_and_complete(&self, partition: i32, marker: TxnMarker) -> Result<(), ErrorCode> {
        let shard = self.shard(partition).ok_or(ErrorCode::NotCoordinator)?;
        let mut state = shard.lock();
        let log_partition = &shard.partition;
        log_partition
            .log
            .append_transaction_marker(marker, log_partition.leader_epoch(), now_ms())
            .map_err(|error| error.error_code())?;
        log_partition.waiters.wake_all();
        // A shard whose load has not started reads the marker from the log; a load
        // holds the lock throughout, so it cannot be under way here. A failed shard
        // serves nothing.
        if matches!(state.load, LoadState::Loaded) {
            state.shard.replay_end_transaction_marker(marker.producer_id, marker.commit);
        }
        Ok(())
    }

    /// Expires committed offsets past `offsets.retention.minutes` on every shard.
    pub async fn expire_offsets(&self) {
        let shards: Vec<Arc<Shard>> = self.shards.read().map(|s| s.values().cloned().collect()).unwrap_or_default();
        for shard in shards {
            let run = {
                let shard = Arc::clone(&shard);
                move || {
                    let mut state = shard.lock();
                    if !matches!(state.load, LoadState::Loaded) {
                        return;
                    }
                    let effects = state.shard.expire_offsets(now_ms());
                    let expired = effects.records.len();
                    // A failure is logged by `apply`; the next run tries again.
                    if apply(&mut state, &shard.partition, effects).is_ok() && expired > 0 {
                        tracing::info!(partition = shard.partition.index, "expired {expired} committed offsets");
                    }
                }
            };
            if let Err(error) = tokio::task::spawn_blocking(run).await {
                tracing::warn!("offset expiry failed: {error}");
            }
        }
    }
}

/// The parts of a request header a shard decision needs.
#[derive(Debug, Clone, Copy)]
pub struct RequestContextSource<'a> {
    pub api_version: i16,
    pub client_id: &'a str,
    pub client_host: &'a str,
}

/// Loads one shard, then fires its timers until shutdown.
async fn run_shard(shard: Arc<Shard>, mut shutdown: watch::Receiver<bool>) {
    let load = {
        let shard = Arc::clone(&shard);
        move || {
            let started = std::time::Instant::now();
            let mut state = shard.lock();
            let result = load_shard(&shard.partition, &mut state.shard);
            match result {
                Ok(replayed) => {
                    state.shard.finish_load(now_ms());
                    state.load = LoadState::Loaded;
                    if replayed > 0 {
                        tracing::info!(
                            partition = shard.partition.index,
                            groups = state.shard.group_count(),
                            "loaded {replayed} group records in {} ms",
                            started.elapsed().as_millis()
                        );
                    }
                }
                Err(error) => {
                    state.load = LoadState::Failed;
                    tracing::error!(partition = shard.partition.index, "loading groups failed: {error}");
                }
            }
        }
    };
    if tokio::task::spawn_blocking(load).await.is_err() {
        return;
    }
    loop {
        let deadline = shard.lock().shard.next_deadline_ms();
        let wait = match deadline {
            Some(deadline) => Duration::from_millis(u64::try_from(deadline - now_ms()).unwrap_or(0)),
            // Nothing scheduled: sleep until a decision changes that.
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = shard.timers_changed.notified() => continue,
            _ = tokio::time::sleep(wait) => {}
        }
        let fire = {
            let shard = Arc::clone(&shard);
            move || {
                let mut state = shard.lock();
                let effects = state.shard.poll_timers(now_ms());
                // A failure is logged by `apply`; the parked requests were released.
                let _ = apply(&mut state, &shard.partition, effects);
            }
        };
        if tokio::task::spawn_blocking(fire).await.is_err() {
            return;
        }
    }
}

/// The client as the coordinator records it: its id and its address in Kafka's
/// `/host` form (DescribeGroups shows it).
pub struct ClientSource {
    pub api_version: i16,
    pub client_id: String,
    pub client_host: String,
}

impl ClientSource {
    pub fn new(header: &gregor_protocol::messages::RequestHeader, peer: std::net::SocketAddr) -> Self {
        ClientSource {
            api_version: header.request_api_version,
            client_id: header.client_id.clone().unwrap_or_default(),
            client_host: format!("/{}", peer.ip()),
        }
    }

    pub fn context(&self) -> RequestContextSource<'_> {
        RequestContextSource {
            api_version: self.api_version,
            client_id: &self.client_id,
            client_host: &self.client_host,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::messages::offset_commit_key::OffsetCommitKey;
    use gregor_protocol::messages::offset_commit_value::OffsetCommitValue;
    use gregor_storage::io::OsFileIo;
    use gregor_storage::{Log, LogConfig, OpenOptions, TopicPartition};

    fn open_partition(dir: &std::path::Path) -> Arc<Partition> {
        let config = LogConfig { cleanup_policy_compact: true, ..LogConfig::default() };
        let options = OpenOptions { recovery_point: 0, log_start_offset: None, clean_shutdown: true, now_ms: now_ms() };
        let log = Log::open(
            Arc::new(OsFileIo),
            &dir.join("__consumer_offsets-0"),
            TopicPartition::new(OFFSETS_TOPIC, 0),
            config,
            options,
        )
        .expect("log opens");
        Arc::new(Partition::new(OFFSETS_TOPIC.into(), 0, Uuid::ZERO, Arc::new(log), 0))
    }

    fn commit(topic: &str, partition: i32, offset: i64) -> CoordinatorRecord {
        CoordinatorRecord::OffsetCommit {
            key: OffsetCommitKey { group: "g".into(), topic: topic.into(), partition, ..Default::default() },
            value: Some(OffsetCommitValue {
                offset,
                leader_epoch: -1,
                commit_timestamp: now_ms(),
                expire_timestamp: -1,
                ..Default::default()
            }),
        }
    }

    fn effects(records: Vec<CoordinatorRecord>, transactional: Option<(i64, i16)>) -> Effects {
        Effects { records, transactional, ..Effects::default() }
    }

    fn coordinator_with(partition: &Arc<Partition>) -> (GroupCoordinator, Arc<Shard>) {
        let shard = Arc::new(Shard {
            partition: Arc::clone(partition),
            state: Mutex::new(ShardState {
                shard: GroupCoordinatorShard::new(0, GroupConfig::default()),
                load: LoadState::Loaded,
                waiting: HashMap::new(),
            }),
            timers_changed: Notify::new(),
        });
        let coordinator = GroupCoordinator::default();
        coordinator.shards.write().expect("lock").insert(0, Arc::clone(&shard));
        (coordinator, shard)
    }

    fn committed(shard: &GroupCoordinatorShard, topic: &str, partition: i32) -> Option<i64> {
        shard.offsets().get("g", topic, partition).map(|offset| offset.offset)
    }

    #[test]
    fn transactional_offsets_are_appended_completed_and_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let partition = open_partition(dir.path());
        let (coordinator, shard) = coordinator_with(&partition);
        let txn_marker =
            |producer_id: i64, commit: bool| TxnMarker { producer_id, producer_epoch: 0, coordinator_epoch: 0, commit };
        {
            let mut state = shard.lock();
            apply(&mut state, &partition, effects(vec![commit("t", 0, 10)], Some((5, 0)))).expect("txn append");
            apply(&mut state, &partition, effects(vec![commit("t", 1, 20)], None)).expect("plain append");
            assert!(state.shard.offsets().has_pending("g", "t", 0));
            assert_eq!(committed(&state.shard, "t", 0), None);
            assert_eq!(committed(&state.shard, "t", 1), Some(20));
        }
        // The open transaction holds the partition's LSO at its first offset.
        assert_eq!(partition.log.last_stable_offset(), 0);
        coordinator.write_marker_and_complete(0, txn_marker(5, true)).expect("commit marker");
        assert_eq!(partition.log.last_stable_offset(), partition.log.log_end_offset());
        assert_eq!(committed(&shard.lock().shard, "t", 0), Some(10));

        {
            let mut state = shard.lock();
            apply(&mut state, &partition, effects(vec![commit("t", 0, 30)], Some((6, 0)))).expect("txn append");
        }
        coordinator.write_marker_and_complete(0, txn_marker(6, false)).expect("abort marker");
        {
            let mut state = shard.lock();
            assert_eq!(committed(&state.shard, "t", 0), Some(10));
            apply(&mut state, &partition, effects(vec![commit("t", 2, 40)], Some((7, 2)))).expect("txn append");
            // A fenced producer epoch: the append fails with the storage's error and
            // nothing is replayed.
            let fenced = apply(&mut state, &partition, effects(vec![commit("t", 2, 41)], Some((7, 1))));
            assert_eq!(fenced, Err(ErrorCode::InvalidProducerEpoch));
            assert_eq!(state.shard.offsets().pending(7, "g", "t", 2).map(|offset| offset.offset), Some(40));
        }
        // Another producer's marker for a partition this node does not host.
        assert_eq!(coordinator.complete_transaction(3, 7, true), Err(ErrorCode::NotCoordinator));

        // Loading the log rebuilds the same committed and pending offsets.
        let mut fresh = GroupCoordinatorShard::new(0, GroupConfig::default());
        load_shard(&partition, &mut fresh).expect("loads");
        assert_eq!(committed(&fresh, "t", 0), Some(10));
        assert_eq!(committed(&fresh, "t", 1), Some(20));
        assert_eq!(committed(&fresh, "t", 2), None);
        assert_eq!(fresh.offsets().pending_producers(), vec![7]);
        assert_eq!(fresh.offsets().pending(7, "g", "t", 2).map(|offset| offset.offset), Some(40));

        // The marker written by someone else, then told to the shard.
        let marker = TxnMarker { producer_epoch: 2, ..txn_marker(7, true) };
        partition.log.append_transaction_marker(marker, 0, now_ms()).expect("marker");
        coordinator.complete_transaction(0, 7, true).expect("completes");
        assert_eq!(committed(&shard.lock().shard, "t", 2), Some(40));
        let mut fresh = GroupCoordinatorShard::new(0, GroupConfig::default());
        load_shard(&partition, &mut fresh).expect("loads");
        assert_eq!(committed(&fresh, "t", 2), Some(40));
        assert!(fresh.offsets().pending_producers().is_empty());
    }
}
