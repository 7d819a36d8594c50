//! The in-memory image the metadata records build, and `replay`, its only mutation.
//!
//! Every map sits behind an `Arc`: cloning an image copies a handful of pointers, and a
//! replay copies only the maps (and the one topic) it changes, so readers can keep the
//! image they started with while the broker publishes the next one.

use std::collections::BTreeMap;
use std::sync::Arc;

use gregor_protocol::messages::{
    broker_registration_change_record::BrokerRegistrationChangeRecord, partition_change_record::PartitionChangeRecord,
    partition_record::PartitionRecord, register_broker_record::RegisterBrokerRecord,
};
use gregor_protocol::Uuid;

use crate::acl::AclBinding;
use crate::error::ReplayError;
use crate::record::MetadataRecord;
use crate::scram::ScramCredential;

/// Config resource types as Kafka numbers them in `ConfigRecord.resource_type`.
pub mod resource_type {
    pub const TOPIC: i8 = 2;
    pub const BROKER: i8 = 4;
    pub const BROKER_LOGGER: i8 = 8;
    pub const CLIENT_METRICS: i8 = 16;
    pub const GROUP: i8 = 32;
}

/// The leader value of a partition without one.
pub const NO_LEADER: i32 = -1;
/// `PartitionChangeRecord.leader` when the record leaves the leader alone.
pub const NO_LEADER_CHANGE: i32 = -2;
/// `leader_recovery_state` in a change record that leaves it alone.
const NO_RECOVERY_STATE_CHANGE: i8 = -1;
/// The directory id of a replica not yet placed in a log directory.
pub const DIRECTORY_UNASSIGNED: Uuid = Uuid::ZERO;

/// One partition's replicas and leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    /// [`NO_LEADER`] when offline.
    pub leader: i32,
    /// 0 recovered, 1 recovering (after an unclean election).
    pub leader_recovery_state: i8,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// One log directory per replica, empty in records written before directories existed.
    pub directories: Vec<Uuid>,
    /// Eligible leader replicas (KIP-966).
    pub elr: Vec<i32>,
    pub last_known_elr: Vec<i32>,
}

impl PartitionImage {
    fn from_record(record: &PartitionRecord) -> Self {
        Self {
            replicas: record.replicas.clone(),
            isr: record.isr.clone(),
            removing_replicas: record.removing_replicas.clone(),
            adding_replicas: record.adding_replicas.clone(),
            leader: record.leader,
            leader_recovery_state: record.leader_recovery_state,
            leader_epoch: record.leader_epoch,
            partition_epoch: record.partition_epoch,
            directories: record.directories.clone(),
            elr: record.eligible_leader_replicas.clone().unwrap_or_default(),
            last_known_elr: record.last_known_elr.clone().unwrap_or_default(),
        }
    }

    /// The first replica: the leader a balanced cluster wants.
    pub fn preferred_leader(&self) -> Option<i32> {
        self.replicas.first().copied()
    }

    /// Applies a change record the way Kafka merges one: absent fields keep their value,
    /// a new leader bumps the leader epoch, and every change bumps the partition epoch.
    fn merge(&self, record: &PartitionChangeRecord) -> Self {
        let mut next = self.clone();
        if let Some(isr) = &record.isr {
            next.isr = isr.clone();
        }
        if let Some(replicas) = &record.replicas {
            next.directories = match &record.directories {
                Some(directories) if !directories.is_empty() => directories.clone(),
                // Replicas that stay keep their directory; new ones have none yet.
                _ => replicas
                    .iter()
                    .map(|replica| {
                        self.replicas
                            .iter()
                            .position(|old| old == replica)
                            .and_then(|index| self.directories.get(index).copied())
                            .unwrap_or(DIRECTORY_UNASSIGNED)
                    })
                    .collect(),
            };
            next.replicas = replicas.clone();
        } else if let Some(directories) = &record.directories {
            if !directories.is_empty() {
                next.directories = directories.clone();
            }
        }
        if let Some(removing) = &record.removing_replicas {
            next.removing_replicas = removing.clone();
        }
        if let Some(adding) = &record.adding_replicas {
            next.adding_replicas = adding.clone();
        }
        if record.leader != NO_LEADER_CHANGE {
            next.leader = record.leader;
            next.leader_epoch = self.leader_epoch.saturating_add(1);
        }
        if record.leader_recovery_state != NO_RECOVERY_STATE_CHANGE {
            next.leader_recovery_state = record.leader_recovery_state;
        }
        if let Some(elr) = &record.eligible_leader_replicas {
            next.elr = elr.clone();
        }
        if let Some(last_known) = &record.last_known_elr {
            next.last_known_elr = last_known.clone();
        }
        next.partition_epoch = self.partition_epoch.saturating_add(1);
        next
    }
}

/// A topic and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: BTreeMap<i32, PartitionImage>,
}

/// A listener a broker registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: i16,
}

/// A broker's registration as the last record about it left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub id: i32,
    pub epoch: i64,
    pub incarnation_id: Uuid,
    pub endpoints: Vec<BrokerEndpoint>,
    /// Supported feature ranges: name to (min, max).
    pub supported_features: BTreeMap<String, (i16, i16)>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
    pub log_dirs: Vec<Uuid>,
}

impl BrokerRegistration {
    fn from_record(record: &RegisterBrokerRecord) -> Self {
        Self {
            id: record.broker_id,
            epoch: record.broker_epoch,
            incarnation_id: record.incarnation_id,
            endpoints: record
                .end_points
                .iter()
                .map(|endpoint| BrokerEndpoint {
                    name: endpoint.name.clone(),
                    host: endpoint.host.clone(),
                    port: endpoint.port,
                    security_protocol: endpoint.security_protocol,
                })
                .collect(),
            supported_features: record
                .features
                .iter()
                .map(|feature| (feature.name.clone(), (feature.min_supported_version, feature.max_supported_version)))
                .collect(),
            rack: record.rack.clone(),
            fenced: record.fenced,
            in_controlled_shutdown: record.in_controlled_shutdown,
            log_dirs: record.log_dirs.clone(),
        }
    }

    /// Whether the broker may lead partitions and join ISRs.
    pub fn is_active(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }
}

/// The config overrides of one resource, keyed by (resource type, resource name).
type ConfigKey = (i8, String);

/// The cluster metadata at one point of the metadata log.
///
/// Equality compares content (maps by value, the cluster id included), so an image
/// rebuilt from its snapshot records equals the one they were written from once the
/// cluster id is set as at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataImage {
    cluster_id: Option<Arc<str>>,
    topics: Arc<BTreeMap<Uuid, Arc<TopicImage>>>,
    topic_ids: Arc<BTreeMap<String, Uuid>>,
    configs: Arc<BTreeMap<ConfigKey, Arc<BTreeMap<String, String>>>>,
    brokers: Arc<BTreeMap<i32, BrokerRegistration>>,
    features: Arc<BTreeMap<String, i16>>,
    acls: Arc<BTreeMap<Uuid, AclBinding>>,
    /// SCRAM credentials by (user, mechanism).
    scram: Arc<BTreeMap<(String, i8), ScramCredential>>,
    next_producer_id: i64,
}

impl MetadataImage {
    pub fn empty() -> Self {
        Self::default()
    }

    /// The cluster id is not in the log (Kafka keeps it in `meta.properties`), so the
    /// broker sets it from there once at start-up.
    pub fn set_cluster_id(&mut self, cluster_id: &str) {
        self.cluster_id = Some(Arc::from(cluster_id));
    }

    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topic_ids.get(name).and_then(|id| self.topic_by_id(*id))
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<&TopicImage> {
        self.topics.get(&id).map(|topic| topic.as_ref())
    }

    /// Every topic, in topic-id order.
    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> {
        self.topics.values().map(|topic| topic.as_ref())
    }

    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }

    /// The overrides of one config resource, empty when it has none.
    pub fn configs(&self, resource_type: i8, resource_name: &str) -> BTreeMap<String, String> {
        self.configs
            .get(&(resource_type, resource_name.to_string()))
            .map(|configs| configs.as_ref().clone())
            .unwrap_or_default()
    }

    /// Every resource of `resource_type` that has overrides, with them, by name.
    pub fn configs_of_type(&self, resource_type: i8) -> impl Iterator<Item = (&str, &BTreeMap<String, String>)> {
        self.configs
            .range((resource_type, String::new())..)
            .take_while(move |((kind, _), _)| *kind == resource_type)
            .map(|((_, name), configs)| (name.as_str(), configs.as_ref()))
    }

    /// Every resource with overrides, as (resource type, resource name, overrides), by type then name.
    pub fn config_resources(&self) -> impl Iterator<Item = (i8, &str, &BTreeMap<String, String>)> {
        self.configs.iter().map(|((kind, name), configs)| (*kind, name.as_str(), configs.as_ref()))
    }

    /// The topic's config overrides (not the effective config: defaults are not here).
    pub fn topic_configs(&self, topic: &str) -> BTreeMap<String, String> {
        self.configs(resource_type::TOPIC, topic)
    }

    /// A broker's dynamic overrides; `None` is the cluster-wide default (resource "").
    pub fn broker_configs(&self, node_id: Option<i32>) -> BTreeMap<String, String> {
        self.configs(resource_type::BROKER, &broker_resource_name(node_id))
    }

    pub fn brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values()
    }

    pub fn broker(&self, id: i32) -> Option<&BrokerRegistration> {
        self.brokers.get(&id)
    }

    /// Finalized feature levels by name (`metadata.version` among them).
    pub fn features(&self) -> &BTreeMap<String, i16> {
        &self.features
    }

    pub fn metadata_version(&self) -> Option<i16> {
        self.features.get(crate::controller::METADATA_VERSION_FEATURE).copied()
    }

    /// Every ACL, by the id its record gave it.
    pub fn acls(&self) -> &BTreeMap<Uuid, AclBinding> {
        &self.acls
    }

    /// Every SCRAM credential, by (user, mechanism).
    pub fn scram_credentials(&self) -> &BTreeMap<(String, i8), ScramCredential> {
        &self.scram
    }

    /// The first producer id of the next block to hand out.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// Applies one record. On error the image is unchanged.
    pub fn replay(&mut self, record: &MetadataRecord) -> Result<(), ReplayError> {
        match record {
            MetadataRecord::Topic(record) => {
                if let Some(existing) = self.topic_ids.get(&record.name) {
                    return Err(ReplayError::TopicNameExists { name: record.name.clone(), existing: *existing });
                }
                if let Some(existing) = self.topics.get(&record.topic_id) {
                    return Err(ReplayError::TopicIdExists { id: record.topic_id, existing: existing.name.clone() });
                }
                let topic = TopicImage { name: record.name.clone(), id: record.topic_id, partitions: BTreeMap::new() };
                Arc::make_mut(&mut self.topic_ids).insert(record.name.clone(), record.topic_id);
                Arc::make_mut(&mut self.topics).insert(record.topic_id, Arc::new(topic));
            }
            MetadataRecord::Partition(record) => {
                if record.partition_id < 0 {
                    return Err(ReplayError::InvalidPartition {
                        topic_id: record.topic_id,
                        partition: record.partition_id,
                        reason: "negative partition id",
                    });
                }
                let topic = self.topic_mut(record.topic_id)?;
                topic.partitions.insert(record.partition_id, PartitionImage::from_record(record));
            }
            MetadataRecord::PartitionChange(record) => {
                let topic = self.topic_mut_checked(record.topic_id, record.partition_id)?;
                if let Some(partition) = topic.partitions.get_mut(&record.partition_id) {
                    *partition = partition.merge(record);
                }
            }
            MetadataRecord::RemoveTopic(record) => {
                let Some(topic) = self.topics.get(&record.topic_id).cloned() else {
                    return Err(ReplayError::UnknownTopicId { id: record.topic_id });
                };
                Arc::make_mut(&mut self.topics).remove(&record.topic_id);
                Arc::make_mut(&mut self.topic_ids).remove(&topic.name);
                // A topic's configs die with it, as in Kafka: no ConfigRecords are written.
                let key = (resource_type::TOPIC, topic.name.clone());
                if self.configs.contains_key(&key) {
                    Arc::make_mut(&mut self.configs).remove(&key);
                }
            }
            MetadataRecord::Config(record) => {
                if !matches!(
                    record.resource_type,
                    resource_type::TOPIC
                        | resource_type::BROKER
                        | resource_type::BROKER_LOGGER
                        | resource_type::CLIENT_METRICS
                        | resource_type::GROUP
                ) {
                    return Err(ReplayError::UnknownConfigResourceType { resource_type: record.resource_type });
                }
                let key = (record.resource_type, record.resource_name.clone());
                let configs = Arc::make_mut(&mut self.configs);
                let entry = configs.entry(key.clone()).or_default();
                let resource = Arc::make_mut(entry);
                match &record.value {
                    Some(value) => {
                        resource.insert(record.name.clone(), value.clone());
                    }
                    None => {
                        resource.remove(&record.name);
                    }
                }
                if resource.is_empty() {
                    configs.remove(&key);
                }
            }
            MetadataRecord::ProducerIds(record) => {
                if record.next_producer_id <= self.next_producer_id {
                    return Err(ReplayError::ProducerIdNotIncreasing {
                        next: record.next_producer_id,
                        current: self.next_producer_id,
                    });
                }
                self.next_producer_id = record.next_producer_id;
            }
            MetadataRecord::FeatureLevel(record) => {
                let features = Arc::make_mut(&mut self.features);
                // Level 0 is how Kafka records that a feature was turned off.
                if record.feature_level == 0 {
                    features.remove(&record.name);
                } else {
                    features.insert(record.name.clone(), record.feature_level);
                }
            }
            MetadataRecord::RegisterBroker(record) => {
                Arc::make_mut(&mut self.brokers).insert(record.broker_id, BrokerRegistration::from_record(record));
            }
            MetadataRecord::UnregisterBroker(record) => {
                self.broker_checked(record.broker_id, record.broker_epoch)?;
                Arc::make_mut(&mut self.brokers).remove(&record.broker_id);
            }
            MetadataRecord::FenceBroker(record) => {
                self.broker_checked(record.id, record.epoch)?;
                if let Some(broker) = Arc::make_mut(&mut self.brokers).get_mut(&record.id) {
                    broker.fenced = true;
                }
            }
            MetadataRecord::UnfenceBroker(record) => {
                self.broker_checked(record.id, record.epoch)?;
                if let Some(broker) = Arc::make_mut(&mut self.brokers).get_mut(&record.id) {
                    broker.fenced = false;
                }
            }
            MetadataRecord::BrokerRegistrationChange(record) => self.replay_registration_change(record)?,
            MetadataRecord::AccessControlEntry(record) => {
                if self.acls.contains_key(&record.id) {
                    return Err(ReplayError::AclIdExists { id: record.id });
                }
                Arc::make_mut(&mut self.acls).insert(record.id, AclBinding::from_record(record));
            }
            MetadataRecord::RemoveAccessControlEntry(record) => {
                if !self.acls.contains_key(&record.id) {
                    return Err(ReplayError::UnknownAclId { id: record.id });
                }
                Arc::make_mut(&mut self.acls).remove(&record.id);
            }
            MetadataRecord::UserScramCredential(record) => {
                let credential = ScramCredential {
                    salt: record.salt.to_vec(),
                    stored_key: record.stored_key.to_vec(),
                    server_key: record.server_key.to_vec(),
                    iterations: record.iterations,
                };
                Arc::make_mut(&mut self.scram).insert((record.name.clone(), record.mechanism), credential);
            }
            MetadataRecord::RemoveUserScramCredential(record) => {
                let key = (record.name.clone(), record.mechanism);
                if !self.scram.contains_key(&key) {
                    return Err(ReplayError::UnknownScramCredential {
                        user: record.name.clone(),
                        mechanism: record.mechanism,
                    });
                }
                Arc::make_mut(&mut self.scram).remove(&key);
            }
            MetadataRecord::NoOp(_) => {}
        }
        Ok(())
    }

    fn replay_registration_change(&mut self, record: &BrokerRegistrationChangeRecord) -> Result<(), ReplayError> {
        self.broker_checked(record.broker_id, record.broker_epoch)?;
        // Kafka's encodings: fenced 1 fences, -1 unfences, 0 leaves it; shutdown 1 enters it.
        let fenced = match record.fenced {
            0 => None,
            1 => Some(true),
            -1 => Some(false),
            value => return Err(ReplayError::InvalidRegistrationChange { field: "fenced", value }),
        };
        let in_controlled_shutdown = match record.in_controlled_shutdown {
            0 => None,
            1 => Some(true),
            value => return Err(ReplayError::InvalidRegistrationChange { field: "in_controlled_shutdown", value }),
        };
        if let Some(broker) = Arc::make_mut(&mut self.brokers).get_mut(&record.broker_id) {
            if let Some(fenced) = fenced {
                broker.fenced = fenced;
            }
            if let Some(shutdown) = in_controlled_shutdown {
                broker.in_controlled_shutdown = shutdown;
            }
            if !record.log_dirs.is_empty() {
                broker.log_dirs = record.log_dirs.clone();
            }
        }
        Ok(())
    }

    fn broker_checked(&self, broker_id: i32, epoch: i64) -> Result<(), ReplayError> {
        match self.brokers.get(&broker_id) {
            None => Err(ReplayError::UnknownBroker { broker_id }),
            Some(broker) if broker.epoch != epoch => {
                Err(ReplayError::BrokerEpochMismatch { broker_id, current: broker.epoch, record: epoch })
            }
            Some(_) => Ok(()),
        }
    }

    fn topic_mut(&mut self, id: Uuid) -> Result<&mut TopicImage, ReplayError> {
        if !self.topics.contains_key(&id) {
            return Err(ReplayError::UnknownTopicId { id });
        }
        Arc::make_mut(&mut self.topics).get_mut(&id).map(Arc::make_mut).ok_or(ReplayError::UnknownTopicId { id })
    }

    fn topic_mut_checked(&mut self, id: Uuid, partition: i32) -> Result<&mut TopicImage, ReplayError> {
        match self.topics.get(&id) {
            None => return Err(ReplayError::UnknownTopicId { id }),
            Some(topic) if !topic.partitions.contains_key(&partition) => {
                return Err(ReplayError::UnknownPartition { topic_id: id, partition })
            }
            Some(_) => {}
        }
        self.topic_mut(id)
    }
}

/// The `ConfigRecord` resource name of a broker: its id, or "" for the cluster default.
pub fn broker_resource_name(node_id: Option<i32>) -> String {
    node_id.map(|id| id.to_string()).unwrap_or_default()
}
