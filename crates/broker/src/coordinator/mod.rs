//! The group coordinator: [`GroupCoordinatorShard`]s of `gregor-group` on the
//! coordinator runtime ([`crate::coordinator_runtime`]), one per `__consumer_offsets`
//! partition this node leads. What is group-specific lives here: the shard's config,
//! how a request's context and the topics reach a decision, and the transaction
//! markers written to `__consumer_offsets` (which complete a producer's pending
//! offsets in log order with the shard's own writes).

use crate::broker::Broker;
use crate::coordinator_runtime::{CoordinatorRuntime, FollowUpHandler, LoadState, ShardContext};
use crate::internal_topic::ensure_internal_topic;
use crate::time::now_ms;
use gregor_group::{
    partition_for_group, ConsumerTiming, CoordinatorRecord, Effects, GroupConfig, GroupCoordinatorShard,
    RequestContext, TopicsView,
};
use gregor_metadata::controller::NewTopic;
use gregor_metadata::MetadataImage;
use gregor_protocol::{ErrorCode, ResponseBody, Uuid};
use gregor_storage::TxnMarker;
use std::sync::Arc;

mod shard;
#[cfg(test)]
mod tests;

/// The internal topic holding groups and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Why a group request could not be served by a shard: the codes clients retry on.
pub type CoordinatorUnavailable = ErrorCode;

type Context = Arc<ShardContext<GroupCoordinatorShard>>;

/// Every `__consumer_offsets` partition this node leads.
pub struct GroupCoordinator {
    runtime: CoordinatorRuntime<GroupCoordinatorShard>,
    /// Serialises the creation of `__consumer_offsets`.
    create_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCoordinator").finish_non_exhaustive()
    }
}

impl Default for GroupCoordinator {
    fn default() -> Self {
        GroupCoordinator { runtime: CoordinatorRuntime::new(OFFSETS_TOPIC), create_lock: tokio::sync::Mutex::new(()) }
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

impl GroupCoordinator {
    /// Starts following the leadership of `__consumer_offsets` partitions (at
    /// start-up, once the metadata is loaded) and loads those this node leads.
    pub fn sync_with(&self, broker: &Arc<Broker>) {
        // Group decisions hand back no follow-ups.
        let none: FollowUpHandler<GroupCoordinatorShard> = Arc::new(|_, _| {});
        self.runtime.start(none);
        self.on_metadata_update(broker, &broker.image());
    }

    /// Loads the `__consumer_offsets` partitions `image` makes this node the leader
    /// of and unloads the others (see [`CoordinatorRuntime::on_metadata_update`]).
    pub fn on_metadata_update(&self, broker: &Broker, image: &MetadataImage) {
        let config = group_config(&broker.config(), image);
        self.runtime
            .on_metadata_update(image, broker.node_id, &config, |index| broker.replicas.get(OFFSETS_TOPIC, index));
    }

    /// Unloads every shard: parked requests answer NOT_COORDINATOR (their
    /// connections close, and clients find the coordinator again after the restart).
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
        ensure_internal_topic(broker, OFFSETS_TOPIC, &self.create_lock, |config| NewTopic {
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
        .await
    }

    /// The shard serving `group_id`: NOT_COORDINATOR when this node does not lead
    /// its partition, COORDINATOR_LOAD_IN_PROGRESS while it loads.
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
        let context = self.context_for(broker, group_id)?;
        let request = source.context(0);
        let topics = ImageTopics(broker.image());
        self.runtime.read(context, move |shard| read(shard, &request, &topics)).await
    }

    /// Runs `decide` on the shard of `group_id` when the answer is not a response
    /// (DeleteGroups per group): the records are applied, `T` is returned; a failed
    /// append answers its error, not a success that was not written.
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
        match self.runtime.visit_all(visit).await {
            (_, Some(error)) => Err(error),
            (visited, None) => Ok(visited),
        }
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
        let context = self.runtime.context(partition).ok_or(ErrorCode::NotCoordinator)?;
        let mut state = context.lock();
        if state.load == LoadState::Active {
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
