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
//!
//! Loading replays the log into a fresh shard on a blocking thread without the
//! shard's lock, so requests meanwhile answer COORDINATOR_LOAD_IN_PROGRESS at once
//! instead of waiting for the disk; the loaded shard is swapped in under the lock.

use crate::broker::Broker;
use crate::internal_topic::ensure_internal_topic;
use crate::partitions::Partition;
use crate::time::now_ms;
use gregor_group::{
    partition_for_group, ConsumerTiming, CoordinatorRecord, Effects, GroupConfig, GroupCoordinatorShard, ReplyId,
    RequestContext, TopicsView,
};
use gregor_metadata::controller::NewTopic;
use gregor_metadata::MetadataImage;
use gregor_protocol::{ErrorCode, ResponseBody, Uuid};
use gregor_storage::TxnMarker;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

mod log;
#[cfg(test)]
mod tests;

use log::{apply, replay_log};
use tokio::sync::{oneshot, watch, Notify};

/// The internal topic holding groups and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Bytes read per step while loading a shard.
const LOAD_READ_BYTES: usize = 4 << 20;
/// Records decompressed per batch at most while loading (a bound on bad input).
const LOAD_BATCH_BYTES_MAX: usize = 64 << 20;

/// Why a group request could not be served by a shard: the codes clients retry on.
pub type CoordinatorUnavailable = ErrorCode;

/// Where a coordinator shard (group or transaction) is in loading its partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoadState {
    /// The log is being replayed into a shard of its own; `ShardState::shard` is an
    /// empty placeholder holding the current config.
    Loading,
    Loaded,
    /// The partition's log could not be read; the shard serves nothing.
    Failed,
}

impl LoadState {
    /// Whether the shard may serve a request, or the code its clients retry on.
    pub(crate) fn ready(self) -> Result<(), ErrorCode> {
        match self {
            LoadState::Loading => Err(ErrorCode::CoordinatorLoadInProgress),
            LoadState::Failed => Err(ErrorCode::NotCoordinator),
            LoadState::Loaded => Ok(()),
        }
    }
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
pub fn group_config(config: &gregor_config::BrokerConfig, image: &MetadataImage) -> GroupConfig {
    let consumer_group_timing = image
        .configs_of_type(gregor_metadata::image::resource_type::GROUP)
        .map(|(group_id, overrides)| {
            let timing = gregor_config::group_timing(config, overrides);
            let timing = ConsumerTiming {
                session_timeout_ms: timing.consumer_session_timeout_ms,
                heartbeat_interval_ms: timing.consumer_heartbeat_interval_ms,
            };
            (group_id.to_string(), timing)
        })
        .collect();
    let protocols: Vec<String> =
        config.group_coordinator_rebalance_protocols.iter().map(|protocol| protocol.to_ascii_lowercase()).collect();
    GroupConfig {
        initial_rebalance_delay_ms: i64::from(config.group_initial_rebalance_delay_ms),
        min_session_timeout_ms: config.group_min_session_timeout_ms,
        max_session_timeout_ms: config.group_max_session_timeout_ms,
        max_size: config.group_max_size,
        consumer_session_timeout_ms: config.group_consumer_session_timeout_ms,
        consumer_heartbeat_interval_ms: config.group_consumer_heartbeat_interval_ms,
        consumer_group_timing: Arc::new(consumer_group_timing),
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
        let config = group_config(&broker.config(), &image);
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
    pub fn reconfigure(&self, config: &gregor_config::BrokerConfig, image: &MetadataImage) {
        let config = group_config(config, image);
        let shards: Vec<Arc<Shard>> = self.shards.read().map(|s| s.values().cloned().collect()).unwrap_or_default();
        for shard in shards {
            shard.lock().shard.set_config(config.clone());
        }
    }

    /// The shard index of `group_id`, creating `__consumer_offsets` if it does not
    /// exist yet (as Kafka does on the first FindCoordinator).
    pub async fn ensure_topic(&self, broker: &Arc<Broker>) -> Result<i32, CoordinatorUnavailable> {
        let count = ensure_internal_topic(broker, OFFSETS_TOPIC, &self.create_lock, |config| NewTopic {
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
        })
        .await?;
        self.sync_with(broker);
        Ok(count)
    }

    /// The shard serving `group_id`, if it exists and is loaded.
    fn shard_for(&self, broker: &Broker, group_id: &str) -> Result<Arc<Shard>, CoordinatorUnavailable> {
        let image = broker.image();
        let Some(topic) = image.topic(OFFSETS_TOPIC) else { return Err(ErrorCode::CoordinatorNotAvailable) };
        let count = i32::try_from(topic.partitions.len()).map_err(|_| ErrorCode::CoordinatorNotAvailable)?;
        let index = partition_for_group(group_id, count);
        // A partition this node leads whose shard is not there yet is being opened
        // (the image is published before the partition's log is), so the client retries.
        let leads = topic.partitions.get(&index).is_some_and(|partition| partition.leader == broker.node_id);
        self.shard(index).ok_or(if leads { ErrorCode::CoordinatorLoadInProgress } else { ErrorCode::NotCoordinator })
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
                state.load.ready()?;
                state.waiting.insert(reply, sender);
                let effects = decide(&mut state.shard, &context, &topics);
                apply(&mut state, &shard.partition, effects)
            }
        };
        tokio::task::spawn_blocking(run).await.map_err(|_| ErrorCode::CoordinatorNotAvailable)??;
        shard.timers_changed.notify_one();
        receiver.await.map_err(|_| ErrorCode::NotCoordinator)
    }

    /// Reads the shard serving `group_id` without changing it, on a blocking thread:
    /// the shard's lock may be held by a decision appending to the log.
    pub async fn read<T, F>(
        &self,
        broker: &Broker,
        source: &RequestContextSource<'_>,
        group_id: &str,
        read: F,
    ) -> Result<T, CoordinatorUnavailable>
    where
        F: FnOnce(&GroupCoordinatorShard, &RequestContext, &ImageTopics) -> T + Send + 'static,
        T: Send + 'static,
    {
        let shard = self.shard_for(broker, group_id)?;
        let context = self.context(source, 0);
        let topics = ImageTopics(broker.image());
        let run = move || read_loaded(&shard, |loaded| read(loaded, &context, &topics));
        tokio::task::spawn_blocking(run).await.map_err(|_| ErrorCode::CoordinatorNotAvailable)?
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
                state.load.ready()?;
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

    /// Calls `visit` on every loaded shard, on a blocking thread (a shard's lock may
    /// be held by a decision appending to the log). COORDINATOR_LOAD_IN_PROGRESS when
    /// some shard is still loading: Kafka's ListGroups then answers that error and no
    /// groups. A shard whose load failed is skipped, as Kafka skips a partition it no
    /// longer coordinates.
    pub async fn visit_all<T, F>(&self, visit: F) -> Result<Vec<T>, CoordinatorUnavailable>
    where
        F: FnMut(&GroupCoordinatorShard) -> Vec<T> + Send + 'static,
        T: Send + 'static,
    {
        let shards: Vec<Arc<Shard>> = self.shards.read().map(|s| s.values().cloned().collect()).unwrap_or_default();
        let run = move || visit_loaded(&shards, visit);
        tokio::task::spawn_blocking(run).await.map_err(|_| ErrorCode::CoordinatorNotAvailable)?
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
    /// A shard still loading finds the marker in the log: its load installs the loaded
    /// shard only under this lock and only once it has replayed the log to its end.
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
        // A loading shard reads the marker from the log (see above); a failed shard
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
    let loading = {
        let shard = Arc::clone(&shard);
        move || {
            let started = std::time::Instant::now();
            match load(&shard, || {}) {
                Ok(replayed) if replayed > 0 => tracing::info!(
                    partition = shard.partition.index,
                    groups = shard.lock().shard.group_count(),
                    "loaded {replayed} group records in {} ms",
                    started.elapsed().as_millis()
                ),
                Ok(_) => {}
                Err(error) => {
                    shard.lock().load = LoadState::Failed;
                    tracing::error!(partition = shard.partition.index, "loading groups failed: {error}");
                }
            }
        }
    };
    if tokio::task::spawn_blocking(loading).await.is_err() {
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

/// Runs `read` on the shard's state once it is loaded. Blocking: the lock is held
/// by a decision and its append (never by a load).
fn read_loaded<T>(shard: &Shard, read: impl FnOnce(&GroupCoordinatorShard) -> T) -> Result<T, CoordinatorUnavailable> {
    let state = shard.lock();
    state.load.ready().map(|()| read(&state.shard))
}

/// [`GroupCoordinator::visit_all`]'s work. Blocking.
fn visit_loaded<T>(
    shards: &[Arc<Shard>],
    mut visit: impl FnMut(&GroupCoordinatorShard) -> Vec<T>,
) -> Result<Vec<T>, CoordinatorUnavailable> {
    let mut out = Vec::new();
    for shard in shards {
        match read_loaded(shard, &mut visit) {
            Ok(visited) => out.extend(visited),
            Err(ErrorCode::CoordinatorLoadInProgress) => return Err(ErrorCode::CoordinatorLoadInProgress),
            Err(_) => {}
        }
    }
    Ok(out)
}

/// Replays the shard's log into a fresh shard without holding the shard's lock, then
/// installs it and marks the shard loaded. Blocking. The lock is taken only to check
/// that nothing was appended meanwhile (transaction markers are appended while a
/// shard loads, under the lock: those are replayed too before the swap), so a marker
/// is either in the replayed log or replayed by its writer into the loaded shard.
/// `on_step` runs before each read of the log (tests hold a load there).
fn load(shard: &Shard, mut on_step: impl FnMut()) -> Result<usize, String> {
    let config = shard.lock().shard.config().clone();
    let mut fresh = GroupCoordinatorShard::new(shard.partition.index, config);
    let log = &shard.partition.log;
    let mut from = log.log_start_offset();
    let mut replayed = 0;
    loop {
        let end = log.log_end_offset();
        replayed += replay_log(&shard.partition, &mut fresh, from, end, &mut on_step)?;
        from = end;
        let mut state = shard.lock();
        if log.log_end_offset() > end {
            continue;
        }
        // A config change during the load went to the placeholder.
        fresh.set_config(state.shard.config().clone());
        fresh.finish_load(now_ms());
        state.shard = fresh;
        state.load = LoadState::Loaded;
        return Ok(replayed);
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
