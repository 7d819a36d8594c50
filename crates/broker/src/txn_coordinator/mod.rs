//! The transaction coordinator: [`TxnCoordinatorShard`]s of `gregor-txn` on the
//! coordinator runtime ([`crate::coordinator_runtime`]), one per `__transaction_state`
//! partition this node leads (the first FindCoordinator of key type transaction
//! creates the topic). The shard's coordinator epoch is the partition's leader epoch.
//!
//! Markers: a decision (EndTxn, a timeout abort, the load of a transaction left in
//! PrepareCommit/PrepareAbort) hands back [`MarkerRequest`]s, the runtime's follow-ups.
//! A task per request appends the COMMIT/ABORT batch to every partition of the
//! transaction (for `__consumer_offsets` through `GroupCoordinator::
//! write_marker_and_complete`, so pending offsets complete in log order), then
//! `markers_written(Ok)` completes it; after a failure the partitions not yet written
//! are retried with backoff while the shard hands the request back. A partition gone
//! from the metadata is skipped, as Kafka's marker channel drops it. The task stops
//! when its shard is unloaded.

use crate::broker::Broker;
use crate::coordinator::OFFSETS_TOPIC;
use crate::coordinator_runtime::{CoordinatorRuntime, CoordinatorShard, FollowUpHandler, ShardContext, Writes};
use crate::internal_topic::ensure_internal_topic;
use crate::time::now_ms;
use bytes::Bytes;
use gregor_metadata::controller::NewTopic;
use gregor_metadata::MetadataImage;
use gregor_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use gregor_protocol::{ErrorCode, ResponseBody};
use gregor_storage::{AppendError, TxnMarker};
use gregor_txn::{
    partition_for_transactional_id, Effects, MarkerRequest, RequestContext, TxnConfig, TxnCoordinatorShard, TxnRecord,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

#[cfg(test)]
mod tests;

/// The internal topic holding transaction state.
pub const TXN_TOPIC: &str = "__transaction_state";
/// The AddPartitionsToTxn version a broker's implicit add speaks (KIP-890: it may
/// answer TRANSACTION_ABORTABLE).
const IMPLICIT_ADD_VERSION: i16 = 5;
/// First and largest wait before writing a transaction's markers again.
const MARKER_RETRY_MIN: Duration = Duration::from_millis(100);
const MARKER_RETRY_MAX: Duration = Duration::from_secs(5);

type Context = Arc<ShardContext<TxnCoordinatorShard>>;

/// Every `__transaction_state` partition this node leads.
#[derive(Debug, Default)]
pub struct TxnCoordinator {
    runtime: CoordinatorRuntime<TxnCoordinatorShard>,
    /// Serialises the creation of `__transaction_state`.
    create_lock: tokio::sync::Mutex<()>,
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
    /// The transaction version the coordinator runs at: the finalized
    /// `transaction.version` feature level.
    pub fn transaction_version(&self, broker: &Broker) -> i16 {
        finalized_transaction_version(&broker.image())
    }

    /// Starts following leadership (at start-up, once the metadata is loaded), with
    /// the marker writers as the runtime's follow-ups.
    pub fn sync_with(&self, broker: &Arc<Broker>) {
        let weak = Arc::downgrade(broker);
        let markers: FollowUpHandler<TxnCoordinatorShard> =
            Arc::new(move |context, markers| spawn_markers(&weak, context, markers));
        self.runtime.start(markers);
        self.on_metadata_update(broker, &broker.image());
    }

    /// See [`CoordinatorRuntime::on_metadata_update`].
    pub fn on_metadata_update(&self, broker: &Broker, image: &MetadataImage) {
        let config = txn_config(&broker.config(), finalized_transaction_version(image));
        self.runtime.on_metadata_update(image, broker.node_id, &config, |index| broker.replicas.get(TXN_TOPIC, index));
    }

    /// Unloads every shard: parked requests are released, marker writers stop.
    pub fn shutdown(&self) {
        self.runtime.shutdown();
    }

    /// Applies a changed broker config to every shard.
    pub fn reconfigure(&self, config: &gregor_config::BrokerConfig, transaction_version: i16) {
        self.runtime.reconfigure(&txn_config(config, transaction_version));
    }

    /// The number of `__transaction_state` partitions, creating the topic if it does
    /// not exist yet (as Kafka does on the first FindCoordinator of a transactional id).
    pub async fn ensure_topic(&self, broker: &Arc<Broker>) -> Result<i32, ErrorCode> {
        let brokers = crate::internal_topic::registered_brokers(broker);
        ensure_internal_topic(broker, TXN_TOPIC, &self.create_lock, |config| NewTopic {
            name: TXN_TOPIC.to_string(),
            num_partitions: config.transaction_state_log_num_partitions,
            replication_factor: config.transaction_state_log_replication_factor.min(brokers),
            assignments: Vec::new(),
            configs: vec![
                ("cleanup.policy".to_string(), Some("compact".to_string())),
                ("compression.type".to_string(), Some("uncompressed".to_string())),
                ("unclean.leader.election.enable".to_string(), Some("false".to_string())),
                ("segment.bytes".to_string(), Some(config.transaction_state_log_segment_bytes.to_string())),
            ],
        })
        .await
    }

    /// The shard serving `transactional_id` (see [`CoordinatorRuntime::lookup`]).
    fn context_for(&self, broker: &Broker, transactional_id: &str) -> Result<Context, ErrorCode> {
        self.runtime
            .lookup(&broker.image(), broker.node_id, |count| partition_for_transactional_id(transactional_id, count))
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
        let context = self.context_for(broker, transactional_id)?;
        let now = now_ms();
        self.runtime
            .decide(context, move |shard, reply| decide(shard, &RequestContext { api_version, now_ms: now, reply }))
            .await
    }

    /// Reads the shard serving `transactional_id`, on a blocking thread.
    pub async fn read<T, F>(&self, broker: &Broker, transactional_id: &str, read: F) -> Result<T, ErrorCode>
    where
        F: FnOnce(&TxnCoordinatorShard) -> T + Send + 'static,
        T: Send + 'static,
    {
        let context = self.context_for(broker, transactional_id)?;
        self.runtime.read(context, read).await
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
            .context_for(broker, transactional_id)
            .and_then(|context| {
                context
                    .read(|shard| shard.verify_partitions(transactional_id, producer_id, producer_epoch, &partitions))
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

    /// See [`CoordinatorRuntime::visit_all`].
    pub async fn visit_all<T, F>(&self, visit: F) -> (Vec<T>, Option<ErrorCode>)
    where
        F: FnMut(&TxnCoordinatorShard) -> Vec<T> + Send + 'static,
        T: Send + 'static,
    {
        self.runtime.visit_all(visit).await
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
fn spawn_markers(broker: &Weak<Broker>, context: &Context, markers: Vec<MarkerRequest>) {
    for request in markers {
        tokio::spawn(write_markers(broker.clone(), Arc::clone(context), request));
    }
}

/// Writes `request`'s marker to every partition of the transaction, retrying the
/// partitions not yet written with backoff while the shard still wants them, then
/// completes the transaction (`markers_written(Ok)`). Stops when the shard is
/// unloaded: its next leader loads the transaction and writes the markers.
async fn write_markers(broker: Weak<Broker>, context: Context, mut request: MarkerRequest) {
    let mut written: BTreeSet<(String, i32)> = BTreeSet::new();
    let mut backoff = MARKER_RETRY_MIN;
    loop {
        if context.is_unloaded() {
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
            let context = Arc::clone(&context);
            let request = request.clone();
            move || {
                let written = |shard: &mut TxnCoordinatorShard| {
                    let now = RequestContext { api_version: 0, now_ms: now_ms(), reply: 0 };
                    let (id, producer_id, epoch) =
                        (&request.transactional_id, request.producer_id, request.producer_epoch);
                    (shard.markers_written(&now, id, producer_id, epoch, result), ())
                };
                // Not active (unloaded), or a failed append (logged by the runtime).
                context.write(written).map(|((), markers)| markers).unwrap_or_default()
            }
        };
        let Ok(mut markers) = tokio::task::spawn_blocking(complete).await else { return };
        if result.is_ok() {
            // A completed transaction hands back no markers; anything else is a new
            // request (none today), written by tasks of its own.
            spawn_markers(&broker, &context, markers);
            return;
        }
        // Still current: the shard handed the same transaction back; retry.
        let Some(retry) = markers.pop() else { return };
        spawn_markers(&broker, &context, markers);
        if retry.producer_id != request.producer_id || retry.producer_epoch != request.producer_epoch {
            written.clear();
        }
        request = retry;
        tokio::select! {
            _ = context.wait_unloaded() => return,
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

impl CoordinatorShard for TxnCoordinatorShard {
    type Config = TxnConfig;
    type Record = TxnRecord;
    type Effects = Effects;
    /// The markers to write for a transaction that is completing.
    type FollowUp = MarkerRequest;
    const KIND: &'static str = "transaction";
    const TOPIC: &'static str = TXN_TOPIC;
    const TOPIC_MISSING: ErrorCode = ErrorCode::NotCoordinator;

    /// The coordinator epoch is the partition's leader epoch, as in Kafka.
    fn new(partition: i32, leader_epoch: i32, config: TxnConfig) -> Self {
        TxnCoordinatorShard::new(partition, leader_epoch, config)
    }

    fn config(&self) -> &TxnConfig {
        TxnCoordinatorShard::config(self)
    }

    fn set_config(&mut self, config: TxnConfig) {
        TxnCoordinatorShard::set_config(self, config);
    }

    fn encode(record: &TxnRecord) -> Result<(Bytes, Option<Bytes>), String> {
        record.encode().map_err(|error| error.to_string())
    }

    fn decode(key: Bytes, value: Option<Bytes>) -> Result<Option<TxnRecord>, String> {
        TxnRecord::decode(key, value).map(Some).map_err(|error| error.to_string())
    }

    /// `__transaction_state` holds no transactional batches.
    fn replay(&mut self, _producer_id: Option<i64>, record: TxnRecord) {
        TxnCoordinatorShard::replay(self, record);
    }

    fn finish_load(&mut self, now_ms: i64) -> Effects {
        TxnCoordinatorShard::finish_load(self, now_ms)
    }

    fn next_deadline_ms(&self) -> Option<i64> {
        TxnCoordinatorShard::next_deadline_ms(self)
    }

    fn poll_timers(&mut self, now_ms: i64) -> Effects {
        TxnCoordinatorShard::poll_timers(self, now_ms)
    }

    fn into_writes(effects: Effects) -> Writes<Self> {
        let Effects { records, replies, markers } = effects;
        Writes { records, replies, transactional: None, follow_ups: markers }
    }

    /// After Kafka's `TransactionStateManager.appendTransactionToLog` normalisation.
    fn write_error(append: Option<&AppendError>, _transactional: bool) -> ErrorCode {
        let Some(error) = append else { return ErrorCode::UnknownServerError };
        match error.error_code() {
            ErrorCode::UnknownTopicOrPartition
            | ErrorCode::NotEnoughReplicas
            | ErrorCode::NotEnoughReplicasAfterAppend
            | ErrorCode::RequestTimedOut => ErrorCode::CoordinatorNotAvailable,
            ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
            _ => ErrorCode::UnknownServerError,
        }
    }
}
