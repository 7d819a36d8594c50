//! What the published metadata image answers about the cluster, as Kafka's
//! `KRaftMetadataCache` answers it: pure functions of (image, listener name, node id),
//! so that every rule here is tested without a cluster.
//!
//! A client reaches brokers through the listener it came in on: every answer names
//! the endpoints the brokers registered for that same listener name, and a broker
//! without one is left out (or, as a partition leader, reported unavailable). A
//! fenced broker is not alive: it is left out of the broker lists and its replicas
//! are offline.

use gregor_metadata::{BrokerRegistration, MetadataImage, PartitionImage};
use gregor_protocol::ErrorCode;

/// A broker as a client on one listener reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerNode {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    pub fenced: bool,
}

/// The broker's endpoint on `listener_name`, alive or not.
fn node_on(registration: &BrokerRegistration, listener_name: &str) -> Option<BrokerNode> {
    let endpoint = registration.endpoints.iter().find(|endpoint| endpoint.name == listener_name)?;
    Some(BrokerNode {
        id: registration.id,
        host: endpoint.host.clone(),
        port: i32::from(endpoint.port),
        rack: registration.rack.clone(),
        fenced: registration.fenced,
    })
}

/// The brokers with an endpoint on `listener_name`, in id order: the unfenced ones
/// (Kafka's `getAliveBrokerNodes`), or all of them with `include_fenced`
/// (DescribeCluster v2, KIP-1073).
pub fn brokers_on_listener(image: &MetadataImage, listener_name: &str, include_fenced: bool) -> Vec<BrokerNode> {
    image
        .brokers()
        .filter(|registration| include_fenced || !registration.fenced)
        .filter_map(|registration| node_on(registration, listener_name))
        .collect()
}

/// `nodes` with this node's rack taken from `broker.rack` when its registration has
/// none: the registrations the single-node controller writes do not carry the rack yet,
/// and clients choosing a rack-local replica read it here.
pub fn with_own_rack(mut nodes: Vec<BrokerNode>, node_id: i32, broker_rack: Option<&str>) -> Vec<BrokerNode> {
    for node in nodes.iter_mut().filter(|node| node.id == node_id && node.rack.is_none()) {
        node.rack = broker_rack.map(str::to_owned);
    }
    nodes
}

/// Broker `id` if it is registered, unfenced and has an endpoint on `listener_name`
/// (Kafka's `getAliveBrokerNode`).
pub fn alive_broker(image: &MetadataImage, id: i32, listener_name: &str) -> Option<BrokerNode> {
    image
        .broker(id)
        .filter(|registration| !registration.fenced)
        .and_then(|registration| node_on(registration, listener_name))
}

/// Which Metadata rules apply, by request version (Kafka's `getTopicMetadata` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRules {
    /// v0: replicas and ISR list only live brokers with the listener, and a partition
    /// missing some is REPLICA_NOT_AVAILABLE.
    pub filter_unavailable_replicas: bool,
    /// v6+: a leader registered without the listener is LISTENER_NOT_FOUND (before
    /// v6, LEADER_NOT_AVAILABLE).
    pub listener_not_found: bool,
}

impl PartitionRules {
    pub fn for_metadata_version(version: i16) -> Self {
        Self { filter_unavailable_replicas: version == 0, listener_not_found: version >= 6 }
    }
}

/// One partition as Metadata and DescribeTopicPartitions describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    pub error: ErrorCode,
    /// -1 when the leader cannot be reached on the listener.
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// Replicas whose broker is unknown, fenced or without the listener.
    pub offline_replicas: Vec<i32>,
}

/// Describes `partition` to a client on `listener_name`: the leader when the image
/// knows its broker and that broker has the listener (else -1, with
/// LEADER_NOT_AVAILABLE or LISTENER_NOT_FOUND), the replicas and ISR, and the
/// replicas that are offline.
pub fn partition_view(
    image: &MetadataImage,
    partition: &PartitionImage,
    listener_name: &str,
    rules: PartitionRules,
) -> PartitionView {
    let reachable = |id: &i32| alive_broker(image, *id, listener_name).is_some();
    let (replicas, isr) = if rules.filter_unavailable_replicas {
        (
            partition.replicas.iter().copied().filter(reachable).collect(),
            partition.isr.iter().copied().filter(reachable).collect(),
        )
    } else {
        (partition.replicas.clone(), partition.isr.clone())
    };
    let offline_replicas = partition.replicas.iter().copied().filter(|id| !reachable(id)).collect();
    // As Kafka: a registered leader, fenced or not, is named; the controller moves
    // leadership off fenced brokers.
    let leader = image.broker(partition.leader);
    let leader_node = leader.and_then(|registration| node_on(registration, listener_name));
    let (error, leader_id) = match (leader, leader_node) {
        (None, _) => (ErrorCode::LeaderNotAvailable, -1),
        (Some(_), None) if rules.listener_not_found => (ErrorCode::ListenerNotFound, -1),
        (Some(_), None) => (ErrorCode::LeaderNotAvailable, -1),
        (Some(_), Some(node)) => {
            let missing = replicas.len() < partition.replicas.len() || isr.len() < partition.isr.len();
            (if missing { ErrorCode::ReplicaNotAvailable } else { ErrorCode::None }, node.id)
        }
    };
    PartitionView { error, leader_id, leader_epoch: partition.leader_epoch, replicas, isr, offline_replicas }
}

/// Who leads a partition, for answering a request that only its leader may serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leadership {
    /// The image has no such partition.
    Unknown,
    /// This node leads it.
    Here,
    /// Another broker (or none, `leader_id` -1) leads it: NOT_LEADER_OR_FOLLOWER,
    /// with the leader a KIP-951 client reroutes to at once.
    Elsewhere(CurrentLeader),
}

/// The current leader of a partition and where a client on the request's listener
/// reaches it (None when the leader is not alive there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentLeader {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub node: Option<BrokerNode>,
}

/// The leader of `topic`'s partition `index` as the image has it, or None when the
/// image has no such partition (Kafka's `getCurrentLeader`).
pub fn current_leader(image: &MetadataImage, topic: &str, index: i32, listener_name: &str) -> Option<CurrentLeader> {
    let partition = image.topic(topic)?.partitions.get(&index)?;
    Some(CurrentLeader {
        leader_id: partition.leader,
        leader_epoch: partition.leader_epoch,
        node: alive_broker(image, partition.leader, listener_name),
    })
}

/// Whether `node_id` leads `topic`'s partition `index`, and if not, who does.
pub fn leadership(image: &MetadataImage, topic: &str, index: i32, node_id: i32, listener_name: &str) -> Leadership {
    match current_leader(image, topic, index, listener_name) {
        None => Leadership::Unknown,
        Some(leader) if leader.leader_id == node_id => Leadership::Here,
        Some(leader) => Leadership::Elsewhere(leader),
    }
}

/// Whether the partition exists and another broker (or none) leads it: a request
/// only its leader may serve is then NOT_LEADER_OR_FOLLOWER, as Kafka's
/// `getPartitionOrError` answers for a partition that is not led here.
pub fn led_elsewhere(image: &MetadataImage, topic: &str, index: i32, node_id: i32) -> bool {
    image
        .topic(topic)
        .and_then(|topic| topic.partitions.get(&index))
        .is_some_and(|partition| partition.leader != node_id)
}

/// The coordinator of the key that hashes to partition `index` of the internal topic
/// `topic`: the partition's leader, alive and reachable on `listener_name`, else
/// COORDINATOR_NOT_AVAILABLE (Kafka's `getCoordinator`).
pub fn coordinator(
    image: &MetadataImage,
    topic: &str,
    index: i32,
    listener_name: &str,
) -> Result<BrokerNode, ErrorCode> {
    image
        .topic(topic)
        .and_then(|topic| topic.partitions.get(&index))
        .filter(|partition| partition.leader >= 0)
        .and_then(|partition| alive_broker(image, partition.leader, listener_name))
        .ok_or(ErrorCode::CoordinatorNotAvailable)
}

#[cfg(test)]
#[path = "cluster_view_tests.rs"]
mod tests;
