//! The group coordinator: [`GroupCoordinatorShard`]s of `gregor-group` on the
//! coordinator runtime ([`crate::coordinator_runtime`]), one per `__consumer_offsets`
//! partition this node leads. What is group-specific lives here: the shard's config,
//! how a request's context and the topics reach a decision, and the transaction
//! markers written to `__consumer_offsets` (which complete a producer's pending
//! offsets in log order with the shard's own writes).

use crate::broker::Broker;
use crate::coordinator_runtime::{
    CoordinatorRuntime, CoordinatorShard, FollowUpHandler, LoadState, ShardContext, Writes,
};
use crate::internal_topic::ensure_internal_topic;
use crate::time::now_ms;
use bytes::Bytes;
use gregor_group::{
    partition_for_group, ConsumerTiming, CoordinatorRecord, Effects, GroupConfig, GroupCoordinatorShard,
    RequestContext, TopicsView,
};
use gregor_metadata::controller::NewTopic;
use gregor_metadata::MetadataImage;
use gregor_protocol::{ErrorCode, ResponseBody, Uuid};
use gregor_storage::{AppendError, TxnMarker};
use std::sync::Arc;

#[cfg(test)]
mod tests;

/// The internal topic holding groups and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Why a group request could not be served by a shard: the codes clients retry on.
pub type CoordinatorUnavailable = ErrorCode;

type Context = Arc<ShardContext<GroupCoordinatorShard>>;

/// Every `__consumer_offsets` partition this node leads.
#[derive(Debug, Default)]
pub struct GroupCoordinator {
    runtime: CoordinatorRuntime<GroupCoordinatorShard>,
    /// Serialises the creation of `__consumer_offsets`.
    create_lock: tokio::sync::Mutex<()>,
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

impl GroupCoordinator {
    /// Starts following leadership (at start-up, once the metadata is loaded).
    pub fn sync_with(&self, broker: &Arc<Broker>) {
        // Group decisions hand back no follow-ups.
        let none: FollowUpHandler<GroupCoordinatorShard> = Arc::new(|_, _| {});
        self.runtime.start(none);
        self.on_metadata_update(broker, &broker.image());
    }

    /// See [`CoordinatorRuntime::on_metadata_update`].
    pub fn on_metadata_update(&self, broker: &Broker, image: &MetadataImage) {
        let config = group_config(&broker.config(), image);
        self.runtime
            .on_metadata_update(image, broker.node_id, &config, |index| broker.replicas.get(OFFSETS_TOPIC, index));
    }

    /// Unloads every shard: parked requests answer NOT_COORDINATOR.
    pub fn shutdown(&self) {
        self.runtime.shutdown();
    }

    /// Applies a changed broker config to every shard.
    pub fn reconfigure(&self, config: &gregor_config::BrokerConfig, image: &MetadataImage) {
        self.runtime.reconfigure(&group_config(config, image));
    }

    /// The number of `__consumer_offsets` partitions, creating the topic if it does
    /// not exist yet (as Kafka does on the first FindCoordinator).
    pub async fn ensure_topic(&self, broker: &Arc<Broker>) -> Result<i32, CoordinatorUnavailable> {
        let brokers = crate::internal_topic::registered_brokers(broker);
        ensure_internal_topic(broker, OFFSETS_TOPIC, &self.create_lock, |config| NewTopic {
            name: OFFSETS_TOPIC.to_string(),
            num_partitions: config.offsets_topic_num_partitions,
            replication_factor: config.offsets_topic_replication_factor.min(brokers),
            assignments: Vec::new(),
            configs: vec![
                ("cleanup.policy".to_string(), Some("compact".to_string())),
                ("compression.type".to_string(), Some("producer".to_string())),
                ("segment.bytes".to_string(), Some(config.offsets_topic_segment_bytes.to_string())),
            ],
        })
        .await
    }

    /// The shard serving `group_id` (see [`CoordinatorRuntime::lookup`]).
    fn context_for(&self, broker: &Broker, group_id: &str) -> Result<Context, CoordinatorUnavailable> {
        self.runtime.lookup(&broker.image(), broker.node_id, |count| partition_for_group(group_id, count))
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
        let context = self.context_for(broker, group_id)?;
        let request = source.context(0);
        let topics = ImageTopics(broker.image());
        self.runtime
            .decide(context, move |shard, reply| decide(shard, &RequestContext { reply, ..request }, &topics))
            .await
    }

    /// Reads the shard serving `group_id`, on a blocking thread.
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
        let context = self.context_for(broker, group_id)?;
        let request = source.context(0);
        let topics = ImageTopics(broker.image());
        self.runtime.read(context, move |shard| read(shard, &request, &topics)).await
    }

    /// Runs `decide` on the shard of `group_id` when the answer is not a response
    /// (DeleteGroups per group); a failed append answers its error.
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
        let context = self.context_for(broker, group_id)?;
        let request = source.context(0);
        let write = move |shard: &mut GroupCoordinatorShard| {
            let (records, value) = decide(shard, &request);
            (Effects { records, ..Effects::default() }, value)
        };
        self.runtime.write(context, write).await
    }

    /// See [`CoordinatorRuntime::visit_all`]; Kafka's ListGroups answers
    /// COORDINATOR_LOAD_IN_PROGRESS and no groups while some shard loads.
    pub async fn visit_all<T, F>(&self, visit: F) -> Result<Vec<T>, CoordinatorUnavailable>
    where
        F: FnMut(&GroupCoordinatorShard) -> Vec<T> + Send + 'static,
        T: Send + 'static,
    {
        match self.runtime.visit_all(visit).await {
            (_, Some(error)) => Err(error),
            (visited, None) => Ok(visited),
        }
    }

    /// Appends `marker` to `__consumer_offsets` partition `partition` and replays it
    /// into the partition's shard, both under the shard's lock, so the marker is applied
    /// in log order with the shard's own writes (WriteTxnMarkers for a group's offsets).
    /// A loading shard finds the marker in the log (its load swaps in under this
    /// lock, once at the log's end). The append's error (INVALID_PRODUCER_EPOCH, ...)
    /// is returned as storage reports it. Blocking.
    pub fn write_marker_and_complete(&self, partition: i32, marker: TxnMarker) -> Result<(), ErrorCode> {
        let context = self.runtime.context(partition).ok_or(ErrorCode::NotCoordinator)?;
        let mut state = context.lock();
        let log_partition = context.partition();
        log_partition
            .log
            .append_transaction_marker(marker, log_partition.leader_epoch(), now_ms())
            .map_err(|error| error.error_code())?;
        log_partition.waiters.wake_all();
        // A loading shard reads the marker from the log (see above); a failed or
        // unloaded one serves nothing.
        if state.load == LoadState::Active {
            state.shard.replay_end_transaction_marker(marker.producer_id, marker.commit);
        }
        Ok(())
    }

    /// Expires committed offsets past `offsets.retention.minutes` on every shard.
    pub async fn expire_offsets(&self) {
        for (index, context) in self.runtime.contexts() {
            let run = move || {
                context.write(|shard| {
                    let effects = shard.expire_offsets(now_ms());
                    let expired = effects.records.len();
                    (effects, expired)
                })
            };
            // A shard not loaded is skipped; a failed append is logged by the
            // runtime and the next run tries again.
            match tokio::task::spawn_blocking(run).await {
                Ok(Ok((expired, _))) if expired > 0 => {
                    tracing::info!(partition = index, "expired {expired} committed offsets")
                }
                Ok(_) => {}
                Err(error) => tracing::warn!("offset expiry failed: {error}"),
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

impl RequestContextSource<'_> {
    fn context(&self, reply: u64) -> RequestContext {
        RequestContext {
            api_version: self.api_version,
            client_id: self.client_id.to_string(),
            client_host: self.client_host.to_string(),
            now_ms: now_ms(),
            reply,
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

impl CoordinatorShard for GroupCoordinatorShard {
    type Config = GroupConfig;
    type Record = CoordinatorRecord;
    type Effects = Effects;
    /// Group decisions hand back nothing besides records and answers.
    type FollowUp = std::convert::Infallible;
    const KIND: &'static str = "group";
    const TOPIC: &'static str = OFFSETS_TOPIC;
    const TOPIC_MISSING: ErrorCode = ErrorCode::CoordinatorNotAvailable;

    fn new(partition: i32, _leader_epoch: i32, config: GroupConfig) -> Self {
        GroupCoordinatorShard::new(partition, config)
    }

    fn config(&self) -> &GroupConfig {
        GroupCoordinatorShard::config(self)
    }

    fn set_config(&mut self, config: GroupConfig) {
        GroupCoordinatorShard::set_config(self, config);
    }

    fn encode(record: &CoordinatorRecord) -> Result<(Bytes, Option<Bytes>), String> {
        record.encode().map_err(|error| error.to_string())
    }

    fn decode(key: Bytes, value: Option<Bytes>) -> Result<Option<CoordinatorRecord>, String> {
        CoordinatorRecord::decode(key, value).map_err(|error| error.to_string())
    }

    fn replay(&mut self, producer_id: Option<i64>, record: CoordinatorRecord) {
        match producer_id {
            Some(producer_id) => self.replay_transactional(producer_id, record),
            None => GroupCoordinatorShard::replay(self, record),
        }
    }

    fn replay_end_transaction(&mut self, producer_id: i64, commit: bool) {
        self.replay_end_transaction_marker(producer_id, commit);
    }

    fn finish_load(&mut self, now_ms: i64) -> Effects {
        GroupCoordinatorShard::finish_load(self, now_ms);
        Effects::default()
    }

    fn next_deadline_ms(&self) -> Option<i64> {
        GroupCoordinatorShard::next_deadline_ms(self)
    }

    fn poll_timers(&mut self, now_ms: i64) -> Effects {
        GroupCoordinatorShard::poll_timers(self, now_ms)
    }

    fn into_writes(effects: Effects) -> Writes<Self> {
        let Effects { records, replies, transactional } = effects;
        Writes { records, replies, transactional, follow_ups: Vec::new() }
    }

    /// A transactional write (TxnOffsetCommit) answers the storage's error after
    /// Kafka's `handleOperationException` normalisation (an INVALID_PRODUCER_EPOCH
    /// for a fenced producer); every other failed write answers NOT_COORDINATOR.
    fn write_error(append: Option<&AppendError>, transactional: bool) -> ErrorCode {
        let Some(error) = append.filter(|_| transactional) else { return ErrorCode::NotCoordinator };
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
}
