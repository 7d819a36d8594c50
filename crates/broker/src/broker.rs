//! The broker's shared state: configuration, the published metadata image, the
//! partitions it hosts, the controller that writes the metadata log, fetch sessions
//! and the producer-id range it hands out.

use crate::controller::Controller;
use crate::coordinator::GroupCoordinator;
use crate::error::BrokerError;
use crate::fetch_session::FetchSessionCache;
use crate::partition_dirs::try_record_topic_id;
use crate::partitions::{Partition, ReplicaManager};
use crate::time::now_ms;
use crate::txn_coordinator::TxnCoordinator;
use gregor_config::{BrokerConfig, TopicConfig};
use gregor_metadata::MetadataImage;
use gregor_protocol::records::TimestampType;
use gregor_storage::{LogConfig, LogManager, TopicPartition};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, RwLock};

/// Kafka's default `max.incremental.fetch.session.cache.slots`.
const FETCH_SESSION_CACHE_SLOTS: i32 = 1000;

/// Where clients reach this node, as advertised in Metadata responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub listener_name: String,
    pub host: String,
    pub port: u16,
}

/// The producer ids this node may hand out without asking the controller.
#[derive(Debug, Default)]
pub struct ProducerIdRange {
    pub next: i64,
    pub end: i64,
}

pub struct Broker {
    /// The configuration from files, environment and overrides.
    static_config: BrokerConfig,
    /// `static_config` with the dynamic broker configs of the metadata log applied.
    config: RwLock<Arc<BrokerConfig>>,
    pub node_id: i32,
    pub cluster_id: String,
    pub endpoints: Vec<Endpoint>,
    image: RwLock<Arc<MetadataImage>>,
    pub logs: Arc<LogManager>,
    pub replicas: ReplicaManager,
    pub(crate) controller: Controller,
    pub fetch_sessions: FetchSessionCache,
    /// The group coordinator's shards (partitions of `__consumer_offsets`).
    pub groups: GroupCoordinator,
    /// The transaction coordinator's shards (partitions of `__transaction_state`).
    pub txns: TxnCoordinator,
    pub(crate) producer_ids: tokio::sync::Mutex<ProducerIdRange>,
    /// This run's broker epoch: the start time, which grows across restarts.
    pub broker_epoch: i64,
    /// The offset of the last record applied to the published image.
    pub metadata_offset: AtomicI64,
    /// The directory ids of this node's log dirs (`meta.properties`), as it registers them.
    pub log_dir_ids: Vec<gregor_protocol::Uuid>,
    /// Requests to the active controller (a cluster's registration, heartbeats, forwarding).
    pub controller_client: crate::controller_client::ControllerClient,
    /// On the active controller: the brokers' sessions (started afresh by each new
    /// active controller, as Kafka's) and the offsets of their registrations.
    broker_sessions: std::sync::Mutex<gregor_metadata::controller::brokers::BrokerSessions>,
    registration_offsets: std::sync::Mutex<std::collections::HashMap<i32, i64>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("node_id", &self.node_id).field("cluster_id", &self.cluster_id).finish()
    }
}

impl Broker {
    pub(crate) fn new(
        static_config: BrokerConfig,
        cluster_id: String,
        endpoints: Vec<Endpoint>,
        logs: Arc<LogManager>,
        controller: Controller,
    ) -> Self {
        let node_id = static_config.node_id;
        let fetch_sessions = FetchSessionCache::new(FETCH_SESSION_CACHE_SLOTS);
        Broker {
            config: RwLock::new(Arc::new(static_config.clone())),
            static_config,
            node_id,
            cluster_id,
            endpoints,
            image: RwLock::new(Arc::new(MetadataImage::empty())),
            logs,
            replicas: ReplicaManager::default(),
            controller,
            fetch_sessions,
            groups: GroupCoordinator::default(),
            txns: TxnCoordinator::default(),
            producer_ids: tokio::sync::Mutex::new(ProducerIdRange::default()),
            broker_epoch: now_ms(),
            metadata_offset: AtomicI64::new(-1),
            log_dir_ids: Vec::new(),
            controller_client: crate::controller_client::ControllerClient::default(),
            broker_sessions: std::sync::Mutex::new(gregor_metadata::controller::brokers::BrokerSessions::new()),
            registration_offsets: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The brokers' sessions, on the active controller.
    pub fn sessions(&self) -> std::sync::MutexGuard<'_, gregor_metadata::controller::brokers::BrokerSessions> {
        match self.broker_sessions.lock() {
            Ok(sessions) => sessions,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The metadata offsets of the brokers' registrations (noted by the loader on
    /// every node, so that any new active controller knows them).
    pub fn registration_offsets(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<i32, i64>> {
        match self.registration_offsets.lock() {
            Ok(offsets) => offsets,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The active controller's id, as this node knows it.
    pub fn active_controller_id(&self) -> Option<i32> {
        self.controller.leadership().active_controller
    }

    /// The controller id clients see in Metadata and DescribeCluster. In a cluster,
    /// as Kafka's KRaft brokers do (KIP-590), a live broker rather than the quorum
    /// leader: this node when it is one, since it forwards what only the controller
    /// decides, so clients never wait on a controller that just died. A single node
    /// is its own controller.
    pub fn controller_id_for_clients(&self) -> i32 {
        if !self.controller.is_clustered() {
            return self.node_id;
        }
        let image = self.image();
        let live = |id: i32| image.broker(id).is_some_and(|registration| !registration.fenced);
        if live(self.node_id) {
            return self.node_id;
        }
        let first_live = image.brokers().find(|registration| !registration.fenced).map(|registration| registration.id);
        first_live.unwrap_or(-1)
    }

    /// Where controller `node_id` listens for the other nodes (`controller.quorum.voters`).
    pub fn controller_address(&self, node_id: i32) -> Option<String> {
        self.static_config
            .controller_quorum_voters
            .iter()
            .find(|voter| voter.id == node_id)
            .map(|voter| format!("{}:{}", voter.host, voter.port))
    }

    /// Every controller with its listener: (node id, listener name, host, port).
    pub fn controller_endpoints(&self) -> Vec<(i32, String, String, u16)> {
        let name = self.static_config.controller_listener_names.first().cloned().unwrap_or_else(|| "CONTROLLER".into());
        if self.static_config.controller_quorum_voters.is_empty() {
            return self
                .endpoints
                .first()
                .map(|endpoint| {
                    vec![(self.node_id, endpoint.listener_name.clone(), endpoint.host.clone(), endpoint.port)]
                })
                .unwrap_or_default();
        }
        self.static_config
            .controller_quorum_voters
            .iter()
            .map(|voter| (voter.id, name.clone(), voter.host.clone(), voter.port))
            .collect()
    }

    /// The configuration in effect now (static plus dynamic broker configs).
    pub fn config(&self) -> Arc<BrokerConfig> {
        match self.config.read() {
            Ok(config) => Arc::clone(&config),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The configuration before dynamic broker configs.
    pub fn static_config(&self) -> &BrokerConfig {
        &self.static_config
    }

    /// The metadata image published last. Readers keep the `Arc` they got, so a
    /// request sees one consistent image even while the controller moves on.
    pub fn image(&self) -> Arc<MetadataImage> {
        match self.image.read() {
            Ok(image) => Arc::clone(&image),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub(crate) fn publish(&self, image: MetadataImage) -> Result<(), BrokerError> {
        let dynamic =
            self.static_config.with_dynamic(&image.broker_configs(Some(self.node_id)), &image.broker_configs(None))?;
        self.groups.reconfigure(&dynamic, &image);
        self.txns.reconfigure(&dynamic, crate::txn_coordinator::finalized_transaction_version(&image));
        match self.config.write() {
            Ok(mut config) => *config = Arc::new(dynamic),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(dynamic),
        }
        match self.image.write() {
            Ok(mut published) => *published = Arc::new(image),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(image),
        }
        Ok(())
    }

    /// Makes the hosted partitions match `image`: opens the logs of new partitions,
    /// deletes those of removed topics, and hands every log its current config.
    /// Blocking: runs on a blocking thread.
    pub(crate) fn reconcile_partitions(&self, image: &MetadataImage) -> Result<(), BrokerError> {
        let config = self.config();
        for hosted in self.replicas.topic_names() {
            let still_there = image.topic(&hosted).map(|topic| topic.id);
            let hosted_id = self.replicas.get(&hosted, 0).map(|partition| partition.topic_id);
            if still_there.is_none() || still_there != hosted_id {
                for partition in self.replicas.remove_topic(&hosted) {
                    let tp = TopicPartition { topic: partition.topic.to_string(), partition: partition.index };
                    self.logs.delete(&tp)?;
                }
            }
        }
        let now = now_ms();
        for topic in image.topics() {
            let overrides = image.topic_configs(&topic.name);
            let log_config = log_config(&config, &overrides);
            let name: Arc<str> = Arc::from(topic.name.as_str());
            for (&index, state) in &topic.partitions {
                if !state.replicas.contains(&self.node_id) {
                    continue;
                }
                let leads = state.leader == self.node_id;
                match self.replicas.get(&topic.name, index) {
                    Some(existing) => {
                        existing.log.update_config(log_config.clone());
                        if leads && existing.leader_epoch() != state.leader_epoch {
                            assign_leader_epoch(&existing.log, state.leader_epoch);
                        }
                        existing.set_leader_epoch(state.leader_epoch);
                    }
                    None => {
                        let tp = TopicPartition { topic: topic.name.clone(), partition: index };
                        let log = self.logs.get_or_create(&tp, log_config.clone(), now)?;
                        if leads {
                            assign_leader_epoch(&log, state.leader_epoch);
                        }
                        self.replicas.insert(Arc::new(Partition::new(
                            Arc::clone(&name),
                            index,
                            topic.id,
                            log,
                            state.leader_epoch,
                        )));
                    }
                }
            }
        }
        // The coordinators follow leadership once the logs they load are open (Kafka's
        // metadata publisher also applies the replica changes before electing them).
        self.groups.on_metadata_update(self, image);
        self.txns.on_metadata_update(self, image);
        Ok(())
    }
}

impl Broker {
    /// Creates (and fsyncs) the logs of the partitions `next` gives this node
    /// that it has no log for yet, before the records that create them are
    /// committed: a partition that cannot be created then fails the decision
    /// with nothing written, rather than leaving a committed topic whose logs
    /// are missing. On failure the logs created here are removed again.
    /// Returns the partitions created, for [`Broker::discard_logs`] should the
    /// commit itself fail. Blocking.
    pub(crate) fn create_new_logs(&self, next: &MetadataImage) -> Result<Vec<TopicPartition>, BrokerError> {
        let config = self.config();
        let now = now_ms();
        let mut created = Vec::new();
        for topic in next.topics() {
            let mut log_config_of_topic = None;
            for (&index, state) in &topic.partitions {
                let tp = TopicPartition { topic: topic.name.clone(), partition: index };
                if !state.replicas.contains(&self.node_id) || self.logs.get(&tp).is_some() {
                    continue;
                }
                let log_config =
                    log_config_of_topic.get_or_insert_with(|| log_config(&config, &next.topic_configs(&topic.name)));
                match self.logs.get_or_create(&tp, log_config.clone(), now) {
                    Ok(log) => {
                        try_record_topic_id(log.dir(), &tp, topic.id);
                        created.push(tp);
                    }
                    Err(error) => {
                        tracing::error!("cannot create the log of {tp}, so its topic is not created: {error}");
                        self.discard_logs(&created);
                        return Err(error.into());
                    }
                }
            }
        }
        Ok(created)
    }

    /// Removes logs [`Broker::create_new_logs`] created for a decision that
    /// was not committed.
    pub(crate) fn discard_logs(&self, created: &[TopicPartition]) {
        for tp in created {
            if let Err(error) = self.logs.delete(tp) {
                // Left on disk, the next start finds no topic for it and sets it aside.
                tracing::warn!("cannot remove the log of {tp} after a failed creation: {error}");
            }
        }
    }
}

/// Records where a new leader epoch starts; a log that cannot is offline already
/// (its appends fail), which is no reason to stop reconciling the others.
fn assign_leader_epoch(log: &gregor_storage::Log, leader_epoch: i32) {
    if let Err(error) = log.assign_leader_epoch(leader_epoch) {
        tracing::warn!(partition = %log.topic_partition(), "cannot record leader epoch {leader_epoch}: {error}");
    }
}

/// The storage settings of a topic: its overrides over the broker's defaults.
/// Overrides were validated when they were written, so a value that no longer
/// resolves (a newer rule) falls back to the broker's defaults with a warning
/// rather than taking the partition offline.
pub fn log_config(config: &BrokerConfig, overrides: &BTreeMap<String, String>) -> LogConfig {
    let topic = match TopicConfig::resolve(config, overrides) {
        Ok(topic) => topic,
        Err(error) => {
            tracing::warn!("topic config ignored: {error}");
            match TopicConfig::resolve(config, &BTreeMap::new()) {
                Ok(topic) => topic,
                Err(_) => return LogConfig::default(),
            }
        }
    };
    log_config_of(config, &topic)
}

/// The storage crate's view of a resolved topic config.
pub fn log_config_of(config: &BrokerConfig, topic: &TopicConfig) -> LogConfig {
    // Validation keeps these sizes positive; a negative value here is a bug upstream,
    // and the storage crate's own default is the safe answer to it.
    let defaults = LogConfig::default();
    LogConfig {
        segment_bytes: u64::try_from(topic.segment_bytes).unwrap_or(defaults.segment_bytes),
        segment_ms: topic.segment_ms,
        segment_index_bytes: u64::try_from(topic.segment_index_bytes).unwrap_or(defaults.segment_index_bytes),
        index_interval_bytes: u64::try_from(topic.index_interval_bytes).unwrap_or(defaults.index_interval_bytes),
        retention_ms: topic.retention_ms,
        retention_bytes: topic.retention_bytes,
        flush_interval_messages: topic.flush_messages,
        flush_interval_ms: topic.flush_ms,
        max_message_bytes: usize::try_from(topic.max_message_bytes).unwrap_or(defaults.max_message_bytes),
        message_timestamp_type: match topic.message_timestamp_type {
            gregor_config::TimestampType::LogAppendTime => TimestampType::LogAppendTime,
            gregor_config::TimestampType::CreateTime => TimestampType::CreateTime,
        },
        message_timestamp_before_max_ms: topic.message_timestamp_before_max_ms,
        message_timestamp_after_max_ms: topic.message_timestamp_after_max_ms,
        cleanup_policy_compact: topic.cleanup_policy.compact,
        cleanup_policy_delete: topic.cleanup_policy.delete,
        file_delete_delay_ms: topic.file_delete_delay_ms,
        producer_id_expiration_ms: i64::from(config.producer_id_expiration_ms),
        delete_retention_ms: topic.delete_retention_ms,
        min_compaction_lag_ms: topic.min_compaction_lag_ms,
        max_compaction_lag_ms: topic.max_compaction_lag_ms,
        min_cleanable_dirty_ratio: topic.min_cleanable_dirty_ratio,
    }
}
