//! The transaction coordinator's runtime, mirroring the group coordinator's
//! (`crate::coordinator`): one [`TxnCoordinatorShard`] per partition of
//! `__transaction_state`, created when the topic exists (the first FindCoordinator
//! of key type transaction creates it), loaded in the background (requests answer
//! COORDINATOR_LOAD_IN_PROGRESS meanwhile), each with its own lock and timer task
//! (timed-out transactions, expired transactional ids). A decision is applied by
//! appending its records to the partition, replaying them into the shard, then
//! releasing the answers.
//!
//! A load replays the log into a fresh shard on a blocking thread without the
//! shard's lock (requests answer COORDINATOR_LOAD_IN_PROGRESS meanwhile, without
//! waiting for the disk) and swaps it in under the lock.
//!
//! Markers: a decision (EndTxn, a timeout abort, or the load of a transaction left
//! in PrepareCommit/PrepareAbort) hands back [`MarkerRequest`]s. Each is written by
//! a task of its own: on a blocking thread the COMMIT/ABORT control batch is appended
//! to every partition of the transaction (`Partition::append_marker`, or for
//! `__consumer_offsets` partitions `GroupCoordinator::write_marker_and_complete`, so
//! the group shard's pending offsets complete in log order), then
//! `markers_written(Ok)` completes the transaction. On a failure
//! `markers_written(Err)` hands the request back if it is still current, and the
//! partitions not yet written are retried with backoff. A partition that no longer
//! exists in the metadata is skipped, as Kafka's marker channel drops it.

use crate::broker::Broker;
use crate::coordinator::{LoadState, OFFSETS_TOPIC};
use crate::internal_topic::ensure_internal_topic;
use crate::partitions::Partition;
use crate::time::now_ms;
use gregor_metadata::controller::NewTopic;
use gregor_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use gregor_protocol::{ErrorCode, ResponseBody};
use gregor_storage::{AppendError, TxnMarker};
use gregor_txn::{
    partition_for_transactional_id, Effects, MarkerRequest, ReplyId, RequestContext, TxnConfig, TxnCoordinatorShard,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;
use tokio::sync::{oneshot, watch, Notify};

mod log;
#[cfg(test)]
mod tests;

use log::{apply, replay_log};

/// The internal topic holding transaction state.
pub const TXN_TOPIC: &str = "__transaction_state";
/// Bytes read per step while loading a shard.
const LOAD_READ_BYTES: usize = 4 << 20;
/// Records decompressed per batch at most while loading (a bound on bad input).
const LOAD_BATCH_BYTES_MAX: usize = 64 << 20;
/// The AddPartitionsToTxn version a broker's implicit add speaks (KIP-890: it may
/// answer TRANSACTION_ABORTABLE).
const IMPLICIT_ADD_VERSION: i16 = 5;
/// First and largest wait before writing a transaction's markers again.
const MARKER_RETRY_MIN: Duration = Duration::from_millis(100);
const MARKER_RETRY_MAX: Duration = Duration::from_secs(5);

struct ShardState {
    shard: TxnCoordinatorShard,
    load: LoadState,
    waiting: HashMap<ReplyId, oneshot::Sender<ResponseBody>>,
}

/// One `__transaction_state` partition and the coordinator state built from it.
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

/// Every transaction coordinator shard this node hosts.
pub struct TxnCoordinator {
    shards: RwLock<HashMap<i32, Arc<Shard>>>,
    next_reply: AtomicU64,
    /// Serialises the creation of `__transaction_state`.
    create_lock: tokio::sync::Mutex<()>,
    shutdown: watch::Receiver<bool>,
    shutdown_tx: watch::Sender<bool>,
}

impl std::fmt::Debug for TxnCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnCoordinator").finish_non_exhaustive()
    }
}

impl Default for TxnCoordinator {
    fn default() -> Self {
        let (shutdown_tx, shutdown) = watch::channel(false);
        TxnCoordinator {
            shards: RwLock::new(HashMap::new()),
            next_reply: AtomicU64::new(1),
            create_lock: tokio::sync::Mutex::new(()),
            shutdown,
            shutdown_tx,
        }
    }
}

/// The finalized `transaction.version` level (0 when not finalized).
pub fn finalized_transaction_version(image: &gregor_metadata::MetadataImage) -> i16 {
    image.features().get(gregor_metadata::controller::TRANSACTION_VERSION_FEATURE).copied().unwrap_or(0)
}

/// The coordinator's settings from the broker's config and the finalized
/// `transaction.version`.
pub fn txn_config(config: &gregor_config::BrokerConfig, transaction_version: i16) -> TxnConfig {
    TxnConfig {
        transaction_max_timeout_ms: config.transaction_max_timeout_ms,
        transactional_id_expiration_ms: i64::from(config.transactional_id_expiration_ms),
        abort_timed_out_transaction_cleanup_interval_ms: i64::from(
            config.transaction_abort_timed_out_transaction_cleanup_interval_ms,
        ),
        remove_expired_transaction_cleanup_interval_ms: i64::from(
            config.transaction_remove_expired_transaction_cleanup_interval_ms,
        ),
        transaction_version,
    }
}

impl TxnCoordinator {
    fn shard(&self, index: i32) -> Option<Arc<Shard>> {
        self.shards.read().ok()?.get(&index).cloned()
    }

    fn all_shards(&self) -> Vec<(i32, Arc<Shard>)> {
        self.shards
            .read()
            .map(|shards| shards.iter().map(|(index, shard)| (*index, Arc::clone(shard))).collect())
            .unwrap_or_default()
    }

    /// The transaction version the coordinator runs at: the finalized
    /// `transaction.version` feature level.
    pub fn transaction_version(&self, broker: &Broker) -> i16 {
        finalized_transaction_version(&broker.image())
    }

    /// Starts hosting every `__transaction_state` partition this node leads that is
    /// not hosted yet, loading each in the background; drops every shard when the
    /// topic is gone.
    pub fn sync_with(&self, broker: &Arc<Broker>) {
        let image = broker.image();
        let Some(topic) = image.topic(TXN_TOPIC) else {
            if let Ok(mut shards) = self.shards.write() {
                shards.clear();
            }
            return;
        };
        let config = txn_config(&broker.config(), finalized_transaction_version(&image));
        for &index in topic.partitions.keys() {
            if self.shard(index).is_some() {
                continue;
            }
            let Some(partition) = broker.replicas.get(TXN_TOPIC, index) else { continue };
            let coordinator_epoch = partition.leader_epoch();
            let shard = Arc::new(Shard {
                partition,
                state: Mutex::new(ShardState {
                    shard: TxnCoordinatorShard::new(index, coordinator_epoch, config.clone()),
                    load: LoadState::Loading,
                    waiting: HashMap::new(),
                }),
                timers_changed: Notify::new(),
            });
            if let Ok(mut shards) = self.shards.write() {
                shards.insert(index, Arc::clone(&shard));
            }
            tokio::spawn(run_shard(shard, Arc::downgrade(broker), self.shutdown.clone()));
        }
    }

    /// Stops the timer and marker tasks and releases every parked request.
    pub fn shutdown(&self) {
        let _ = self.shutdown_tx.send(true);
        for (_, shard) in self.all_shards() {
            shard.lock().waiting.clear();
        }
    }

    /// Applies a changed broker config to every shard.
    pub fn reconfigure(&self, config: &gregor_config::BrokerConfig, transaction_version: i16) {
        let config = txn_config(config, transaction_version);
        for (_, shard) in self.all_shards() {
            shard.lock().shard.set_config(config.clone());
        }
    }

    /// The number of `__transaction_state` partitions, creating the topic if it does
    /// not exist yet (as Kafka does on the first FindCoordinator of a transactional id).
    pub async fn ensure_topic(&self, broker: &Arc<Broker>) -> Result<i32, ErrorCode> {
        let count = ensure_internal_topic(broker, TXN_TOPIC, &self.create_lock, |config| NewTopic {
            name: TXN_TOPIC.to_string(),
            num_partitions: config.transaction_state_log_num_partitions,
            // One node: Kafka also caps the replication factor at the live brokers.
            replication_factor: 1,
            assignments: Vec::new(),
            configs: vec![
                ("cleanup.policy".to_string(), Some("compact".to_string())),
                ("compression.type".to_string(), Some("uncompressed".to_string())),
                ("unclean.leader.election.enable".to_string(), Some("false".to_string())),
                ("segment.bytes".to_string(), Some(config.transaction_state_log_segment_bytes.to_string())),
            ],
        })
        .await?;
        self.sync_with(broker);
        Ok(count)
    }

    /// The shard serving `transactional_id`, if this node hosts it.
    fn shard_for(&self, broker: &Broker, transactional_id: &str) -> Result<Arc<Shard>, ErrorCode> {
        let image = broker.image();
        let Some(topic) = image.topic(TXN_TOPIC) else { return Err(ErrorCode::NotCoordinator) };
        let count = i32::try_from(topic.partitions.len()).map_err(|_| ErrorCode::CoordinatorNotAvailable)?;
        let index = partition_for_transactional_id(transactional_id, count);
        // A partition this node leads whose shard is not there yet is being opened
        // (the image is published before the partition's log is), so the client retries.
        let leads = topic.partitions.get(&index).is_some_and(|partition| partition.leader == broker.node_id);
        self.shard(index).ok_or(if leads { ErrorCode::CoordinatorLoadInProgress } else { ErrorCode::NotCoordinator })
    }

    /// Runs one decision of the shard serving `transactional_id` and waits for this
    /// request's answer (released once the decision's records are durable).
    pub async fn decide<F>(
        &self,
        broker: &Arc<Broker>,
        api_version: i16,
        transactional_id: &str,
        decide: F,
    ) -> Result<ResponseBody, ErrorCode>
    where
        F: FnOnce(&mut TxnCoordinatorShard, &RequestContext) -> Effects + Send + 'static,
    {
        let shard = self.shard_for(broker, transactional_id)?;
        let reply = self.next_reply.fetch_add(1, Ordering::Relaxed);
        let context = RequestContext { api_version, now_ms: now_ms(), reply };
        let (sender, receiver) = oneshot::channel();
        let run = {
            let shard = Arc::clone(&shard);
            move || -> Result<Vec<MarkerRequest>, ErrorCode> {
                let mut state = shard.lock();
                state.load.ready()?;
                state.waiting.insert(reply, sender);
                let effects = decide(&mut state.shard, &context);
                apply(&mut state, &shard.partition, effects)
            }
        };
        let markers = tokio::task::spawn_blocking(run).await.map_err(|_| ErrorCode::CoordinatorNotAvailable)??;
        shard.timers_changed.notify_one();
        spawn_markers(Arc::downgrade(broker), &shard, self.shutdown.clone(), markers);
        receiver.await.map_err(|_| ErrorCode::NotCoordinator)
    }

    /// Reads the shard serving `transactional_id` without changing it, on a blocking
    /// thread: the shard's lock may be held by a decision appending to the log.
    pub async fn read<T, F>(&self, broker: &Broker, transactional_id: &str, read: F) -> Result<T, ErrorCode>
    where
        F: FnOnce(&TxnCoordinatorShard) -> T + Send + 'static,
        T: Send + 'static,
    {
        let shard = self.shard_for(broker, transactional_id)?;
        tokio::task::spawn_blocking(move || read_loaded(&shard, read))
            .await
            .map_err(|_| ErrorCode::CoordinatorNotAvailable)?
    }

    /// [`read`](Self::read) for a caller already on a blocking thread (the produce
    /// path's append).
    fn read_blocking<T>(
        &self,
        broker: &Broker,
        transactional_id: &str,
        read: impl FnOnce(&TxnCoordinatorShard) -> T,
    ) -> Result<T, ErrorCode> {
        let shard = self.shard_for(broker, transactional_id)?;
        read_loaded(&shard, read)
    }

    /// The produce path's KIP-890 check (see `gregor_storage::TxnVerifier`): is
    /// `topic`-`index` part of the ongoing transaction of `transactional_id` with this
    /// producer id and epoch? The coordinator's answers become the produce errors
    /// Kafka gives: a partition not in the transaction INVALID_TXN_STATE, a fenced
    /// epoch INVALID_PRODUCER_EPOCH, and a coordinator that cannot answer yet (loading,
    /// not hosted, markers still being written) NOT_ENOUGH_REPLICAS, which every
    /// client retries without refreshing metadata. Blocking: the produce path calls it
    /// from its append, on a blocking thread.
    pub fn verify_produce(
        &self,
        broker: &Broker,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        topic: &str,
        index: i32,
    ) -> Result<(), AppendError> {
        let partitions = [(topic.to_string(), index)];
        let answer = self
            .read_blocking(broker, transactional_id, |shard| {
                shard.verify_partitions(transactional_id, producer_id, producer_epoch, &partitions)
            })
            .and_then(|verified| verified);
        let error = match answer {
            Ok(errors) => match errors.values().copied().find(|code| *code != ErrorCode::None) {
                None => return Ok(()),
                // Clients before KIP-890 part 2 do not know TRANSACTION_ABORTABLE.
                Some(ErrorCode::TransactionAbortable) => ErrorCode::InvalidTxnState,
                Some(code) => produce_error(code),
            },
            Err(code) => produce_error(code),
        };
        Err(AppendError::TransactionVerification {
            producer_id,
            error,
            message: format!(
                "the coordinator did not confirm {topic}-{index} in the transaction of {transactional_id:?}: {error:?}"
            ),
        })
    }

    /// KIP-890 part 2 (transaction version 2): adds `partitions` to the ongoing
    /// transaction of `transactional_id` on behalf of a Produce v12+ or TxnOffsetCommit
    /// v5+ that carries no AddPartitionsToTxn before it, as Kafka's brokers do with a
    /// v5 AddPartitionsToTxn to the coordinator. Partitions already in the
    /// transaction cost one read, no write. The answer per partition is the
    /// coordinator's error code (PRODUCER_FENCED, CONCURRENT_TRANSACTIONS, ...).
    pub async fn add_partitions_implicitly(
        &self,
        broker: &Arc<Broker>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<BTreeMap<(String, i32), ErrorCode>, ErrorCode> {
        let present = {
            let (id, wanted) = (transactional_id.to_string(), partitions.to_vec());
            self.read(broker, transactional_id, move |shard| {
                shard.verify_partitions(&id, producer_id, producer_epoch, &wanted)
            })
            .await?
        };
        if let Ok(errors) = &present {
            if errors.values().all(|code| *code == ErrorCode::None) {
                return Ok(errors.clone());
            }
        }
        let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, index) in partitions {
            topics.entry(topic.clone()).or_default().push(*index);
        }
        let request = AddPartitionsToTxnRequest {
            transactions: vec![AddPartitionsToTxnTransaction {
                transactional_id: transactional_id.to_string(),
                producer_id,
                producer_epoch,
                verify_only: false,
                topics: topics
                    .into_iter()
                    .map(|(name, partitions)| AddPartitionsToTxnTopic {
                        name,
                        partitions,
                        ..AddPartitionsToTxnTopic::default()
                    })
                    .collect(),
                ..AddPartitionsToTxnTransaction::default()
            }],
            ..AddPartitionsToTxnRequest::default()
        };
        let image = broker.image();
        let decided = self
            .decide(broker, IMPLICIT_ADD_VERSION, transactional_id, move |shard, context| {
                let exists = |topic: &str, partition: i32| {
                    image.topic(topic).is_some_and(|topic| topic.partitions.contains_key(&partition))
                };
                shard.add_partitions_to_txn(context, request, &exists)
            })
            .await?;
        let ResponseBody::AddPartitionsToTxn(response) = decided else { return Err(ErrorCode::UnknownServerError) };
        let mut errors = BTreeMap::new();
        for transaction in response.results_by_transaction {
            for topic in transaction.topic_results {
                for partition in topic.results_by_partition {
                    let code =
                        ErrorCode::from_code(partition.partition_error_code).unwrap_or(ErrorCode::UnknownServerError);
                    errors.insert((topic.name.clone(), partition.partition_index), code);
                }
            }
        }
        Ok(errors)
    }

    /// Calls `visit` on every loaded shard, on a blocking thread (a shard's lock may
    /// be held by a decision appending to the log); the error is
    /// COORDINATOR_LOAD_IN_PROGRESS when some shard is still loading.
    pub async fn visit_all<T, F>(&self, visit: F) -> (Vec<T>, Option<ErrorCode>)
    where
        F: FnMut(&TxnCoordinatorShard) -> Vec<T> + Send + 'static,
        T: Send + 'static,
    {
        let mut shards = self.all_shards();
        shards.sort_by_key(|(index, _)| *index);
        let shards: Vec<Arc<Shard>> = shards.into_iter().map(|(_, shard)| shard).collect();
        tokio::task::spawn_blocking(move || visit_loaded(&shards, visit))
            .await
            .unwrap_or((Vec::new(), Some(ErrorCode::CoordinatorNotAvailable)))
    }
}

/// Loads one shard, then fires its timers until shutdown.
async fn run_shard(shard: Arc<Shard>, broker: Weak<Broker>, mut shutdown: watch::Receiver<bool>) {
    let loading = {
        let shard = Arc::clone(&shard);
        move || -> Vec<MarkerRequest> {
            let started = std::time::Instant::now();
            match load(&shard, || {}) {
                Ok((replayed, markers)) => {
                    if replayed > 0 {
                        tracing::info!(
                            partition = shard.partition.index,
                            transactional_ids = shard.lock().shard.transaction_count(),
                            "loaded {replayed} transaction records in {} ms",
                            started.elapsed().as_millis()
                        );
                    }
                    markers
                }
                Err(error) => {
                    shard.lock().load = LoadState::Failed;
                    tracing::error!(partition = shard.partition.index, "loading transactions failed: {error}");
                    Vec::new()
                }
            }
        }
    };
    let Ok(markers) = tokio::task::spawn_blocking(loading).await else { return };
    spawn_markers(broker.clone(), &shard, shutdown.clone(), markers);
    loop {
        let deadline = shard.lock().shard.next_deadline_ms();
        let wait = match deadline {
            Some(deadline) => Duration::from_millis(u64::try_from(deadline - now_ms()).unwrap_or(0)),
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
                // A failure is logged by `apply`; the next scan tries again.
                apply(&mut state, &shard.partition, effects).unwrap_or_default()
            }
        };
        let Ok(markers) = tokio::task::spawn_blocking(fire).await else { return };
        spawn_markers(broker.clone(), &shard, shutdown.clone(), markers);
    }
}

/// Runs `read` on the shard's state once it is loaded. Blocking: the lock is held
/// by a decision and its append (never by a load).
fn read_loaded<T>(shard: &Shard, read: impl FnOnce(&TxnCoordinatorShard) -> T) -> Result<T, ErrorCode> {
    let state = shard.lock();
    state.load.ready().map(|()| read(&state.shard))
}

/// [`TxnCoordinator::visit_all`]'s work. Blocking.
fn visit_loaded<T>(
    shards: &[Arc<Shard>],
    mut visit: impl FnMut(&TxnCoordinatorShard) -> Vec<T>,
) -> (Vec<T>, Option<ErrorCode>) {
    let mut out = Vec::new();
    let mut error = None;
    for shard in shards {
        match read_loaded(shard, &mut visit) {
            Ok(visited) => out.extend(visited),
            Err(ErrorCode::CoordinatorLoadInProgress) => error = Some(ErrorCode::CoordinatorLoadInProgress),
            Err(_) => {}
        }
    }
    (out, error)
}

/// Replays the shard's log into a fresh shard without holding the shard's lock, then
/// installs it under the lock (once nothing was appended meanwhile) and applies its
/// `finish_load` there: the records replayed, and the markers of transactions a
/// previous run left half-finished, which the caller writes. Blocking. `on_step` runs
/// before each read of the log (tests hold a load there).
fn load(shard: &Shard, mut on_step: impl FnMut()) -> Result<(usize, Vec<MarkerRequest>), String> {
    let (config, coordinator_epoch) = {
        let state = shard.lock();
        (state.shard.config().clone(), state.shard.coordinator_epoch())
    };
    let mut fresh = TxnCoordinatorShard::new(shard.partition.index, coordinator_epoch, config);
    let log = &shard.partition.log;
    let mut from = log.log_start_offset();
    let mut replayed = 0;
    loop {
        let end = log.log_end_offset();
        replayed += replay_log(&shard.partition, &mut fresh, from, end, &mut on_step)?;
        from = end;
        let mut state = shard.lock();
        // Only the loaded shard appends to its partition, but a log that grew anyway
        // is replayed to its end before the swap.
        if log.log_end_offset() > end {
            continue;
        }
        // A config change during the load went to the placeholder.
        fresh.set_config(state.shard.config().clone());
        let effects = fresh.finish_load(now_ms());
        state.shard = fresh;
        state.load = LoadState::Loaded;
        return Ok((replayed, apply(&mut state, &shard.partition, effects).unwrap_or_default()));
    }
}

/// The produce error for a transaction coordinator's answer to a verification or
/// an implicit add, as Kafka maps it: PRODUCER_FENCED is INVALID_PRODUCER_EPOCH to a
/// producer, and an answer that means "not yet" (loading, not hosted, markers in
/// flight) is NOT_ENOUGH_REPLICAS, which every client retries without refreshing
/// its metadata.
pub fn produce_error(code: ErrorCode) -> ErrorCode {
    match code {
        ErrorCode::ProducerFenced => ErrorCode::InvalidProducerEpoch,
        ErrorCode::ConcurrentTransactions
        | ErrorCode::CoordinatorLoadInProgress
        | ErrorCode::CoordinatorNotAvailable
        | ErrorCode::NotCoordinator => ErrorCode::NotEnoughReplicas,
        code => code,
    }
}

/// Starts one marker-writing task per request.
fn spawn_markers(
    broker: Weak<Broker>,
    shard: &Arc<Shard>,
    shutdown: watch::Receiver<bool>,
    markers: Vec<MarkerRequest>,
) {
    for request in markers {
        tokio::spawn(write_markers(broker.clone(), Arc::clone(shard), shutdown.clone(), request));
    }
}

/// Writes `request`'s marker to every partition of the transaction, retrying the
/// partitions not yet written with backoff while the shard still wants them, then
/// completes the transaction (`markers_written(Ok)`).
async fn write_markers(
    broker: Weak<Broker>,
    shard: Arc<Shard>,
    mut shutdown: watch::Receiver<bool>,
    mut request: MarkerRequest,
) {
    let mut written: BTreeSet<(String, i32)> = BTreeSet::new();
    let mut backoff = MARKER_RETRY_MIN;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let Some(strong) = broker.upgrade() else { return };
        let step = {
            let request = request.clone();
            let pending: Vec<(String, i32)> =
                request.partitions.iter().filter(|partition| !written.contains(*partition)).cloned().collect();
            move || write_marker_partitions(&strong, &request, pending)
        };
        let Ok((done, outcome)) = tokio::task::spawn_blocking(step).await else { return };
        written.extend(done);
        if outcome == MarkerOutcome::Fenced {
            // The producer or coordinator epoch moved on: this transaction is
            // obsolete here (Kafka's marker channel stops sending too).
            return;
        }
        let result = if outcome == MarkerOutcome::Done { Ok(()) } else { Err(ErrorCode::RequestTimedOut) };
        let complete = {
            let shard = Arc::clone(&shard);
            let request = request.clone();
            move || -> Vec<MarkerRequest> {
                let mut state = shard.lock();
                if !matches!(state.load, LoadState::Loaded) {
                    return Vec::new();
                }
                let context = RequestContext { api_version: 0, now_ms: now_ms(), reply: 0 };
                let effects = state.shard.markers_written(
                    &context,
                    &request.transactional_id,
                    request.producer_id,
                    request.producer_epoch,
                    result,
                );
                apply(&mut state, &shard.partition, effects).unwrap_or_default()
            }
        };
        let Ok(mut markers) = tokio::task::spawn_blocking(complete).await else { return };
        shard.timers_changed.notify_one();
        if result.is_ok() {
            // A completed transaction hands back no markers; anything else is a new
            // request (none today), written by tasks of its own.
            spawn_markers(broker.clone(), &shard, shutdown.clone(), markers);
            return;
        }
        // Still current: the shard handed the same transaction back; retry.
        let Some(retry) = markers.pop() else { return };
        spawn_markers(broker.clone(), &shard, shutdown.clone(), markers);
        if retry.producer_id != request.producer_id || retry.producer_epoch != request.producer_epoch {
            written.clear();
        }
        request = retry;
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MARKER_RETRY_MAX);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkerOutcome {
    Done,
    Retry,
    Fenced,
}

/// Appends the marker to each of `pending`; returns the partitions done (written, or
/// gone from the metadata) and whether all were. Blocking.
fn write_marker_partitions(
    broker: &Broker,
    request: &MarkerRequest,
    pending: Vec<(String, i32)>,
) -> (Vec<(String, i32)>, MarkerOutcome) {
    let marker = TxnMarker {
        producer_id: request.producer_id,
        producer_epoch: request.producer_epoch,
        coordinator_epoch: request.coordinator_epoch,
        commit: request.commit,
    };
    let image = broker.image();
    let mut done = Vec::new();
    let mut outcome = MarkerOutcome::Done;
    for (topic, index) in pending {
        let exists = image.topic(&topic).is_some_and(|t| t.partitions.contains_key(&index));
        if !exists {
            tracing::info!(topic, partition = index, "skipping the marker of a partition that no longer exists");
            done.push((topic, index));
            continue;
        }
        let result = write_marker(broker, &topic, index, marker);
        match result {
            Ok(()) => done.push((topic, index)),
            Err(ErrorCode::InvalidProducerEpoch | ErrorCode::TransactionCoordinatorFenced) => {
                tracing::warn!(
                    topic,
                    partition = index,
                    producer_id = request.producer_id,
                    "transaction marker rejected as stale; giving up on this transaction's markers"
                );
                return (done, MarkerOutcome::Fenced);
            }
            Err(code) => {
                tracing::debug!(topic, partition = index, "writing a transaction marker failed: {code:?}; retrying");
                outcome = MarkerOutcome::Retry;
            }
        }
    }
    (done, outcome)
}

/// Appends `marker` to one partition this node hosts (WriteTxnMarkers' per-partition
/// step). Blocking.
pub fn write_marker(broker: &Broker, topic: &str, index: i32, marker: TxnMarker) -> Result<(), ErrorCode> {
    if topic == OFFSETS_TOPIC {
        return broker.groups.write_marker_and_complete(index, marker);
    }
    let partition = broker.replicas.get(topic, index).ok_or(ErrorCode::UnknownTopicOrPartition)?;
    partition.append_marker(marker, now_ms()).map(|_| ()).map_err(|error| error.error_code())
}
