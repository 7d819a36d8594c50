//! Metadata (key 3), v0-v13.
//!
//! Lists this node as the only broker and controller, and the requested topics (all
//! of them when the list is null, or empty in v0) with their partitions, leaders,
//! leader epochs (v7+) and topic ids (v10+). A requested topic that does not exist
//! is created with the broker's defaults when `auto.create.topics.enable` is on and
//! the request allows it (always in v0-v3, `allow_auto_topic_creation` from v4), and
//! the answer already describes it. v10+ may name topics by id only; an unknown id is
//! UNKNOWN_TOPIC_ID. Authorized operations (v8+) are reported only when asked for.
//!
//! With an authorizer: topics the client may not DESCRIBE are left out of an
//! all-topics answer and TOPIC_AUTHORIZATION_FAILED when named; auto-creation needs
//! CREATE on the cluster or the topic (else TOPIC_AUTHORIZATION_FAILED).

use crate::authorization::{Access, Session};
use crate::broker::Broker;
use crate::topics::{auto_create, is_internal_topic, AUTHORIZED_OPERATIONS_OMITTED};
use gregor_metadata::acl::{operation, resource_type, CLUSTER_RESOURCE_NAME};
use gregor_metadata::{MetadataImage, TopicImage};
use gregor_protocol::messages::metadata_request::MetadataRequest;
use gregor_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::{ErrorCode, Uuid};
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    session: &Session,
    request: MetadataRequest,
) -> MetadataResponse {
    let version = header.request_api_version;
    let all_topics = match &request.topics {
        None => true,
        Some(topics) => version == 0 && topics.is_empty(),
    };
    let requested = request.topics.unwrap_or_default();
    let access = broker.access(session);
    let operations_for = (version >= 8 && request.include_topic_authorized_operations).then_some(&access);
    // Kafka's rules: a topic the client may not DESCRIBE is TOPIC_AUTHORIZATION_FAILED
    // (or left out of an all-topics answer); auto-creation needs CREATE on the cluster
    // or on the topic.
    let denied = |name: &str| !access.allows_topic(operation::DESCRIBE, name);
    let may_create =
        |name: &str| access.allows_cluster(operation::CREATE) || access.allows_topic(operation::CREATE, name);

    let mut image = broker.image();
    let allow_auto_create = version < 4 || request.allow_auto_topic_creation;
    let mut creation_errors = Vec::new();
    if !all_topics && allow_auto_create && broker.config().auto_create_topics_enable {
        let (missing, refused): (Vec<String>, Vec<String>) = requested
            .iter()
            .filter_map(|topic| topic.name.clone())
            .filter(|name| image.topic(name).is_none() && !is_internal_topic(name) && !denied(name))
            .partition(|name| may_create(name));
        creation_errors.extend(refused.into_iter().map(|name| (name, ErrorCode::TopicAuthorizationFailed)));
        if !missing.is_empty() {
            creation_errors.extend(auto_create(broker, missing).await);
            image = broker.image();
        }
    }

    let topics: Vec<MetadataResponseTopic> = if all_topics {
        image
            .topics()
            .filter(|topic| !denied(&topic.name))
            .map(|topic| describe_topic(broker, &image, topic, operations_for))
            .collect()
    } else {
        requested
            .iter()
            .map(|wanted| {
                let found = match &wanted.name {
                    Some(name) => image.topic(name),
                    None => image.topic_by_id(wanted.topic_id),
                };
                let name_denied = wanted.name.as_deref().is_some_and(&denied);
                match found {
                    _ if name_denied => MetadataResponseTopic {
                        error_code: ErrorCode::TopicAuthorizationFailed.code(),
                        name: wanted.name.clone(),
                        topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
                        ..MetadataResponseTopic::default()
                    },
                    Some(topic) if denied(&topic.name) => MetadataResponseTopic {
                        error_code: ErrorCode::TopicAuthorizationFailed.code(),
                        topic_id: wanted.topic_id,
                        topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
                        ..MetadataResponseTopic::default()
                    },
                    Some(topic) => describe_topic(broker, &image, topic, operations_for),
                    None => {
                        let error = match &wanted.name {
                            Some(name) => creation_errors
                                .iter()
                                .find(|(failed, _)| failed == name)
                                .map(|(_, error)| *error)
                                .unwrap_or(ErrorCode::UnknownTopicOrPartition),
                            None => ErrorCode::UnknownTopicId,
                        };
                        MetadataResponseTopic {
                            error_code: error.code(),
                            name: wanted.name.clone(),
                            topic_id: if wanted.name.is_some() { Uuid::ZERO } else { wanted.topic_id },
                            topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
                            ..MetadataResponseTopic::default()
                        }
                    }
                }
            })
            .collect()
    };

    MetadataResponse {
        throttle_time_ms: 0,
        brokers: brokers(broker),
        cluster_id: Some(broker.cluster_id.clone()),
        controller_id: broker.node_id,
        topics,
        cluster_authorized_operations: if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
            access.operations(resource_type::CLUSTER, CLUSTER_RESOURCE_NAME)
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        },
        ..MetadataResponse::default()
    }
}

/// This node, as reachable through the first advertised listener.
pub fn brokers(broker: &Broker) -> Vec<MetadataResponseBroker> {
    broker
        .endpoints
        .first()
        .map(|endpoint| MetadataResponseBroker {
            node_id: broker.node_id,
            host: endpoint.host.clone(),
            port: i32::from(endpoint.port),
            rack: broker.config().broker_rack.clone(),
            ..MetadataResponseBroker::default()
        })
        .into_iter()
        .collect()
}

fn describe_topic(
    broker: &Broker,
    _image: &MetadataImage,
    topic: &TopicImage,
    operations_for: Option<&Access>,
) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|(&index, partition)| {
            let hosted = broker.replicas.get(&topic.name, index);
            let offline = hosted.as_ref().is_some_and(|hosted| hosted.log.is_offline());
            MetadataResponsePartition {
                error_code: if offline { ErrorCode::KafkaStorageError.code() } else { ErrorCode::None.code() },
                partition_index: index,
                leader_id: partition.leader,
                leader_epoch: partition.leader_epoch,
                replica_nodes: partition.replicas.clone(),
                isr_nodes: partition.isr.clone(),
                offline_replicas: if offline { vec![broker.node_id] } else { Vec::new() },
                ..MetadataResponsePartition::default()
            }
        })
        .collect();
    MetadataResponseTopic {
        error_code: ErrorCode::None.code(),
        name: Some(topic.name.clone()),
        topic_id: topic.id,
        is_internal: is_internal_topic(&topic.name),
        partitions,
        topic_authorized_operations: match operations_for {
            Some(access) => access.operations(resource_type::TOPIC, &topic.name),
            None => AUTHORIZED_OPERATIONS_OMITTED,
        },
        ..MetadataResponseTopic::default()
    }
}
