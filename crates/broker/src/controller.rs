//! The controller role: decisions from `gregor-metadata` become records, the
//! records are appended to the metadata log ([`MetadataLog`]: this node's own on a
//! single node, the replicated quorum in a cluster) and only once committed are
//! they applied to the image, by one loader, on every node alike. One decision at
//! a time, so each one reads the image the previous one left.

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::meta_properties::random_uuid;
use crate::partition_dirs::{sort_found_partitions, RemovedTopics};
use crate::quorum::RaftMetadataLog;
use crate::time::now_ms;
use gregor_metadata::controller::{ControllerContext, EXCESSIVE_BATCH_MESSAGE, RECORDS_PER_OPERATION_MAX};
use gregor_metadata::{decode_batch, encode_batch, MetadataImage, MetadataRecord};
use gregor_protocol::records::{split_record_set, RecordBatch};
use gregor_storage::{Log, LogConfig, LogManager, TopicPartition};
use std::sync::Arc;

/// The metadata log's partition, named as KRaft names it.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// How much of the metadata log one read brings in at start-up.
const REPLAY_READ_BYTES: usize = 8 * 1024 * 1024;

/// Where a node's decisions go and where committed metadata comes from: a local
/// log on a single node, the replicated quorum in a cluster. Either way the records
/// reach the image only through [`Broker::apply_committed`] (and a snapshot
/// through [`Broker::load_snapshot`]), in log order.
pub(crate) trait MetadataLog: Send + Sync {
    /// Appends one decision's records as one batch at the current epoch and
    /// returns once they are committed and applied to the image. Blocking.
    fn append(&self, broker: &Broker, records: &[MetadataRecord]) -> Result<(), AppendFailure>;
    /// Who decides now.
    fn leadership(&self) -> Leadership;
}

/// Who the active controller is, as this node knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leadership {
    pub active_controller: Option<i32>,
    /// This node is the active controller and has applied every earlier commit.
    pub may_decide: bool,
}

/// A failed append, and whether its records may still have been written (and so
/// may still take effect): a decision's side effects are undone only when not.
#[derive(Debug)]
pub(crate) struct AppendFailure {
    pub error: BrokerError,
    pub maybe_written: bool,
}

/// The metadata log of a single node: the `__cluster_metadata` partition,
/// appended and fsynced by this node alone, which is its own quorum.
pub struct LocalMetadataLog {
    pub(crate) log: Arc<Log>,
    node_id: i32,
}

impl LocalMetadataLog {
    /// Opens the metadata log. It is never trimmed by retention (there are no
    /// snapshots on a single node) and is fsynced on every append: an acknowledged
    /// topic creation must survive a crash.
    pub fn open(logs: &LogManager, node_id: i32) -> Result<Self, BrokerError> {
        let config =
            LogConfig { retention_ms: -1, retention_bytes: -1, flush_interval_messages: 1, ..LogConfig::default() };
        let tp = TopicPartition { topic: METADATA_TOPIC.to_owned(), partition: 0 };
        let log = logs.get_or_create(&tp, config, now_ms())?;
        Ok(LocalMetadataLog { log, node_id })
    }

    /// Every record in the log, in order. Blocking.
    pub fn read_all(&self) -> Result<Vec<MetadataRecord>, BrokerError> {
        let mut records = Vec::new();
        let mut offset = self.log.log_start_offset();
        let end = self.log.log_end_offset();
        while offset < end {
            let read = self.log.read(offset, REPLAY_READ_BYTES, true, end)?;
            if read.records.is_empty() {
                break;
            }
            let mut next = offset;
            for batch in split_record_set(read.records) {
                let at = next;
                let corrupt = |reason: String| BrokerError::MetadataLogCorrupt {
                    path: self.log.dir().to_path_buf(),
                    offset: at,
                    reason,
                };
                let batch = batch
                    .map_err(|error| corrupt(error.to_string()))
                    .and_then(|batch| RecordBatch::new(batch).map_err(|error| corrupt(error.to_string())))?;
                next = batch.header().last_offset() + 1;
                records.extend(decode_batch(&batch).map_err(|error| corrupt(error.to_string()))?);
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        Ok(records)
    }

    /// Writes one batch and makes it durable, without applying it. Blocking.
    fn write(&self, records: &[MetadataRecord]) -> Result<(), BrokerError> {
        let batch = encode_batch(records, now_ms())?;
        self.log.append_as_leader(batch, 0, now_ms())?;
        self.log.flush()?;
        Ok(())
    }
}

impl MetadataLog for LocalMetadataLog {
    fn append(&self, broker: &Broker, records: &[MetadataRecord]) -> Result<(), AppendFailure> {
        let end_before = self.log.log_end_offset();
        let written = self.write(records);
        let end_after = self.log.log_end_offset();
        if let Err(error) = written {
            if end_after == end_before {
                return Err(AppendFailure { error, maybe_written: false });
            }
            // Written but not made durable (a failed sync): the image must still
            // follow the log, or a restart would replay records it never saw.
            tracing::error!("metadata records written but not synced: {error}");
            if let Err(apply_error) = broker.apply_committed(end_after - 1, records) {
                tracing::error!("cannot apply them: {apply_error}");
            }
            return Err(AppendFailure { error, maybe_written: true });
        }
        broker.apply_committed(end_after - 1, records).map_err(|error| AppendFailure { error, maybe_written: true })
    }

    fn leadership(&self) -> Leadership {
        Leadership { active_controller: Some(self.node_id), may_decide: true }
    }
}

impl MetadataLog for RaftMetadataLog {
    fn append(&self, _broker: &Broker, records: &[MetadataRecord]) -> Result<(), AppendFailure> {
        self.append_blocking(records).map_err(|error| {
            let maybe_written = !matches!(error, BrokerError::NotController { .. });
            AppendFailure { error, maybe_written }
        })
    }

    fn leadership(&self) -> Leadership {
        let view = self.view();
        Leadership { active_controller: view.leader_id, may_decide: view.may_decide }
    }
}

/// The controller role: one decision at a time over the metadata log.
pub struct Controller {
    /// Set on a single node: its own log, also read at start.
    pub(crate) local: Option<Arc<LocalMetadataLog>>,
    /// Set on a cluster's voters: the replicated quorum.
    pub(crate) quorum: Option<Arc<RaftMetadataLog>>,
    /// Set on a cluster's broker-only nodes: they follow the quorum.
    pub(crate) observer: Option<Arc<crate::quorum::ObserverMetadataLog>>,
    log: Arc<dyn MetadataLog>,
    /// Serialises decisions: held from reading the image to publishing the next.
    lock: tokio::sync::Mutex<()>,
}

impl Controller {
    pub fn local(log: LocalMetadataLog) -> Self {
        let log = Arc::new(log);
        Controller {
            local: Some(Arc::clone(&log)),
            quorum: None,
            observer: None,
            log,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn observing(observer: crate::quorum::ObserverMetadataLog) -> Self {
        let observer = Arc::new(observer);
        Controller {
            local: None,
            quorum: None,
            observer: Some(Arc::clone(&observer)),
            log: observer,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether this node is part of a cluster (a voter or an observer), not a
    /// single node that is its own quorum.
    pub fn is_clustered(&self) -> bool {
        self.local.is_none()
    }

    pub fn replicated(quorum: RaftMetadataLog) -> Self {
        let quorum = Arc::new(quorum);
        Controller {
            local: None,
            quorum: Some(Arc::clone(&quorum)),
            observer: None,
            log: quorum,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn leadership(&self) -> Leadership {
        self.log.leadership()
    }

    fn local_log(&self) -> Result<&LocalMetadataLog, BrokerError> {
        self.local.as_deref().ok_or(BrokerError::MetadataLogOffline)
    }
}

impl Broker {
    /// Runs one controller decision: `decide` reads the current image and returns
    /// the records to append and its answer. The records are made durable, replayed
    /// and published before the answer is returned.
    pub async fn decide<T, F>(self: &Arc<Self>, decide: F) -> Result<T, BrokerError>
    where
        F: FnOnce(&MetadataImage, &mut ControllerContext<'_>) -> (Vec<MetadataRecord>, T) + Send + 'static,
        T: Send + 'static,
    {
        let _decision = self.controller.lock.lock().await;
        let broker = Arc::clone(self);
        tokio::task::spawn_blocking(move || broker.decide_blocking(decide)).await?
    }

    fn decide_blocking<T, F>(&self, decide: F) -> Result<T, BrokerError>
    where
        F: FnOnce(&MetadataImage, &mut ControllerContext<'_>) -> (Vec<MetadataRecord>, T),
    {
        let leadership = self.controller.leadership();
        if !leadership.may_decide {
            return Err(BrokerError::NotController { leader: leadership.active_controller });
        }
        let image = self.image();
        let config = self.config();
        let validate_topic_config = |name: &str, value: &str| {
            gregor_config::validate_topic_config(name, value).map_err(|error| error.to_string())
        };
        let validate_broker_config = |name: &str, value: &str| match gregor_config::broker_config_def(name) {
            None => Err(format!("unknown broker config {name}")),
            Some(def) if def.read_only => Err(format!("{name} cannot be changed while the broker runs")),
            Some(def) => def.validate(value).map_err(|error| error.to_string()),
        };
        let validate_group_configs = |overrides: &std::collections::BTreeMap<String, String>| {
            gregor_config::validate_group_configs(&config, overrides)
        };
        let is_list_config = |name: &str| gregor_config::is_list_config(name);
        let default_value = |resource: &gregor_metadata::ConfigResource, name: &str| match resource {
            gregor_metadata::ConfigResource::Topic(_) => {
                gregor_config::TopicConfig::describe(&config, &Default::default())
                    .into_iter()
                    .find(|described| described.name == name)
                    .and_then(|described| described.value)
            }
            gregor_metadata::ConfigResource::Broker(_) => config.value(name),
            gregor_metadata::ConfigResource::Group(_) => None,
        };
        let mut new_uuid = random_uuid;
        let mut random = || random_uuid().as_u128() as u64;
        let mut context = ControllerContext {
            node_id: self.node_id,
            default_num_partitions: config.num_partitions,
            default_replication_factor: i16::try_from(config.default_replication_factor).unwrap_or(i16::MAX),
            validate_topic_config: &validate_topic_config,
            validate_broker_config: &validate_broker_config,
            validate_group_configs: &validate_group_configs,
            is_list_config: &is_list_config,
            default_value: &default_value,
            new_uuid: &mut new_uuid,
            random: &mut random,
        };
        let (records, answer) = decide(&image, &mut context);
        if records.is_empty() {
            return Ok(answer);
        }
        // The decisions that can grow past this refuse it themselves, before they
        // allocate; this is the net under every other one (ACLs, configs, elections).
        if records.len() > RECORDS_PER_OPERATION_MAX {
            return Err(BrokerError::Controller {
                code: gregor_protocol::ErrorCode::PolicyViolation,
                message: Some(EXCESSIVE_BATCH_MESSAGE.to_owned()),
            });
        }
        let mut next = (*image).clone();
        for record in &records {
            next.replay(record)?;
        }
        // All or nothing: the new partitions' logs exist before their records
        // are committed, and are gone again when the records are not written.
        let created = self.create_new_logs(&next)?;
        if let Err(failure) = self.controller.log.append(self, &records) {
            if !failure.maybe_written {
                self.discard_logs(&created);
            }
            return Err(failure.error);
        }
        Ok(answer)
    }

    /// The metadata loader: applies records the log committed (at `offset`, the
    /// last one's) to the image, publishes it and makes the hosted partitions
    /// follow. The only way committed records reach the image. Blocking.
    pub(crate) fn apply_committed(&self, offset: i64, records: &[MetadataRecord]) -> Result<(), BrokerError> {
        let mut next = (*self.image()).clone();
        for record in records {
            next.replay(record)?;
        }
        // Where each registration landed: a fenced broker is unfenced once it has
        // caught up to it, whichever node is the active controller by then.
        for record in records {
            if let MetadataRecord::RegisterBroker(registration) = record {
                self.registration_offsets().insert(registration.broker_id, offset);
            }
        }
        self.metadata_offset.store(offset, std::sync::atomic::Ordering::Release);
        self.publish(next.clone())?;
        self.reconcile_partitions(&next)?;
        Ok(())
    }

    /// The loader's other input: a snapshot replaces the image whole. Blocking.
    pub(crate) fn load_snapshot(&self, offset: i64, records: Vec<MetadataRecord>) -> Result<(), BrokerError> {
        let mut image = MetadataImage::empty();
        image.set_cluster_id(&self.cluster_id);
        for record in &records {
            image.replay(record)?;
        }
        {
            let mut registrations = self.registration_offsets();
            registrations.clear();
            for broker in image.brokers() {
                registrations.insert(broker.id, offset);
            }
        }
        self.metadata_offset.store(offset, std::sync::atomic::Ordering::Release);
        self.publish(image.clone())?;
        self.reconcile_partitions(&image)?;
        Ok(())
    }

    /// Start-up: replays the metadata log, writes the bootstrap records on a first
    /// start, publishes the image and opens every hosted partition. Blocking.
    pub(crate) fn load_metadata(&self) -> Result<(), BrokerError> {
        let mut image = MetadataImage::empty();
        let mut removed = RemovedTopics::default();
        let local = self.controller.local_log()?;
        for record in local.read_all()? {
            removed.note(&image, &record);
            image.replay(&record)?;
        }
        let listeners: Vec<(String, String, u16)> = self
            .endpoints
            .iter()
            .map(|endpoint| (endpoint.listener_name.clone(), endpoint.host.clone(), endpoint.port))
            .collect();
        if image.features().is_empty() {
            let records = gregor_metadata::controller::bootstrap(self.node_id, &listeners, self.broker_epoch);
            self.append_at_start(&records)?;
            for record in &records {
                image.replay(record)?;
            }
        } else {
            // Every start registers again with a new incarnation and the current
            // endpoints, as a KRaft broker does with its controller.
            let mut records = gregor_metadata::finalize_missing_features(&image);
            records.extend(gregor_metadata::controller::register_broker(
                self.node_id,
                random_uuid(),
                &listeners,
                self.broker_epoch,
            ));
            self.append_at_start(&records)?;
            for record in &records {
                image.replay(record)?;
            }
        }
        self.metadata_offset.store(local.log.log_end_offset() - 1, std::sync::atomic::Ordering::Release);
        self.publish(image.clone())?;
        sort_found_partitions(&self.logs, &image, &removed)?;
        self.reconcile_partitions(&image)?;
        Ok(())
    }

    /// Appends start-up records (bootstrap, registration). On a full disk they are
    /// kept in memory only, so that the broker comes up and serves what it has:
    /// every start writes them again, and decisions fail with
    /// KAFKA_STORAGE_ERROR until space is freed.
    fn append_at_start(&self, records: &[MetadataRecord]) -> Result<(), BrokerError> {
        match self.controller.local_log()?.write(records) {
            Err(error) if error.is_no_space() => {
                tracing::warn!("disk full: starting with this start's metadata records in memory only ({error})");
                Ok(())
            }
            other => other,
        }
    }

    /// A producer id for an idempotent producer, from this node's current block;
    /// a new block is taken from the controller when it runs out.
    pub async fn next_producer_id(self: &Arc<Self>) -> Result<i64, BrokerError> {
        let mut range = self.producer_ids.lock().await;
        if range.next >= range.end {
            let block = self.allocate_producer_ids().await?;
            range.next = block.first_producer_id;
            range.end = block.first_producer_id + i64::from(block.size);
        }
        let id = range.next;
        range.next += 1;
        Ok(id)
    }

    /// A block of producer ids from the controller: decided here on the active
    /// controller, asked for with AllocateProducerIds elsewhere, as Kafka's brokers do.
    async fn allocate_producer_ids(
        self: &Arc<Self>,
    ) -> Result<gregor_metadata::controller::ProducerIdBlock, BrokerError> {
        let node_id = self.node_id;
        // In a cluster the epoch is the one the controller gave this broker's registration.
        let broker_epoch = if self.controller.is_clustered() {
            self.image().broker(node_id).map_or(-1, |registration| registration.epoch)
        } else {
            self.broker_epoch
        };
        if !self.controller.is_clustered() || self.controller.leadership().may_decide {
            return self
                .decide(move |image, _context| {
                    gregor_metadata::controller::allocate_producer_ids(image, node_id, broker_epoch)
                })
                .await?
                .map_err(|error| BrokerError::Controller { code: error.code, message: error.message });
        }
        let request = gregor_protocol::messages::AllocateProducerIdsRequest {
            broker_id: node_id,
            broker_epoch,
            ..Default::default()
        };
        let response = self
            .controller_client
            .call(self, gregor_protocol::RequestBody::AllocateProducerIds(request), 0, CONTROLLER_CALL_TIMEOUT)
            .await?;
        match response {
            gregor_protocol::ResponseBody::AllocateProducerIds(response) if response.error_code == 0 => {
                Ok(gregor_metadata::controller::ProducerIdBlock {
                    first_producer_id: response.producer_id_start,
                    size: response.producer_id_len,
                })
            }
            gregor_protocol::ResponseBody::AllocateProducerIds(response) => Err(BrokerError::Controller {
                code: gregor_protocol::ErrorCode::from_code(response.error_code)
                    .unwrap_or(gregor_protocol::ErrorCode::UnknownServerError),
                message: None,
            }),
            other => {
                Err(BrokerError::Cluster(format!("unexpected answer to AllocateProducerIds: {:?}", other.api_key())))
            }
        }
    }

    /// Creates topics on behalf of this broker (automatic creation, the
    /// coordinators' internal topics): decided here on the active controller, sent
    /// to it as CreateTopics elsewhere, as Kafka's brokers do. Returns each topic's
    /// outcome, once this node's image has the topics that were created.
    pub async fn create_topics_via_controller(
        self: &Arc<Self>,
        topics: Vec<gregor_metadata::controller::NewTopic>,
    ) -> Result<Vec<(String, gregor_protocol::ErrorCode)>, BrokerError> {
        use gregor_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
        if !self.controller.is_clustered() || self.controller.leadership().may_decide {
            let outcomes = self
                .decide(move |image, context| {
                    gregor_metadata::controller::create_topics(image, context, &topics, false)
                })
                .await?;
            return Ok(outcomes.into_iter().map(|outcome| (outcome.name, outcome.error)).collect());
        }
        let request = gregor_protocol::messages::CreateTopicsRequest {
            topics: topics
                .iter()
                .map(|topic| CreatableTopic {
                    name: topic.name.clone(),
                    num_partitions: topic.num_partitions,
                    replication_factor: topic.replication_factor,
                    configs: topic
                        .configs
                        .iter()
                        .map(|(name, value)| CreatableTopicConfig {
                            name: name.clone(),
                            value: value.clone(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            timeout_ms: 30_000,
            ..Default::default()
        };
        let response = self
            .controller_client
            .call(self, gregor_protocol::RequestBody::CreateTopics(request), 7, CONTROLLER_CALL_TIMEOUT)
            .await?;
        let gregor_protocol::ResponseBody::CreateTopics(response) = response else {
            return Err(BrokerError::Cluster("unexpected answer to CreateTopics".into()));
        };
        let outcomes: Vec<(String, gregor_protocol::ErrorCode)> = response
            .topics
            .iter()
            .map(|topic| {
                let code = gregor_protocol::ErrorCode::from_code(topic.error_code)
                    .unwrap_or(gregor_protocol::ErrorCode::UnknownServerError);
                (topic.name.clone(), code)
            })
            .collect();
        // The caller reads the new topics from this node's image next: wait until the
        // committed records have reached it.
        let created: Vec<String> = outcomes
            .iter()
            .filter(|(_, code)| {
                matches!(code, gregor_protocol::ErrorCode::None | gregor_protocol::ErrorCode::TopicAlreadyExists)
            })
            .map(|(name, _)| name.clone())
            .collect();
        let deadline = std::time::Instant::now() + CONTROLLER_CALL_TIMEOUT;
        while !created.iter().all(|name| self.image().topic(name).is_some()) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Ok(outcomes)
    }
}

/// How long a broker waits for the active controller to answer its own requests.
const CONTROLLER_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
