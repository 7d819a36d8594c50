//! Metadata (key 3), v0-v13.
//!
//! Lists the live brokers reachable on the request's listener, the active controller,
//! and the requested topics (all of them when the list is null, or empty in v0) with
//! their partitions' leaders, leader epochs (v7+), replicas, ISR, offline replicas
//! (v5+) and topic ids (v10+), all from the metadata image by Kafka's rules
//! ([`crate::cluster_view`]). A requested topic that does not exist
//! is created with the broker's defaults when `auto.create.topics.enable` is on and
//! the request allows it (always in v0-v3, `allow_auto_topic_creation` from v4), and
//! the answer already describes it. v10+ may name topics by id only; an unknown id is
//! UNKNOWN_TOPIC_ID. Authorized operations (v8+) are reported only when asked for.
//!
//! With an authorizer: topics the client may not DESCRIBE are left out of an
//! all-topics answer and TOPIC_AUTHORIZATION_FAILED when named; auto-creation needs
//! CREATE on the cluster or the topic (else TOPIC_AUTHORIZATION_FAILED).

use crate::authorization::Access;
use crate::broker::Broker;
use crate::cluster_view::{brokers_on_listener, partition_view, with_own_rack, PartitionRules};
use crate::request_context::RequestContext;
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
    context: &RequestContext,
    request: MetadataRequest,
) -> MetadataResponse {
    let version = header.request_api_version;
    let all_topics = match &request.topics {
        None => true,
        Some(topics) => version == 0 && topics.is_empty(),
    };
    let requested = request.topics.unwrap_or_default();
    let access = broker.access(context);
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
            .map(|topic| describe_topic(broker, &image, context, topic, operations_for))
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
                    Some(topic) => describe_topic(broker, &image, context, topic, operations_for),
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
        brokers: with_own_rack(
            brokers_on_listener(&image, context.listener_name(), false),
            broker.node_id,
            broker.config().broker_rack.as_deref(),
        )
        .into_iter()
        .map(|node| MetadataResponseBroker {
            node_id: node.id,
            host: node.host,
            port: node.port,
            rack: node.rack,
            ..MetadataResponseBroker::default()
        })
        .collect(),
        cluster_id: Some(broker.cluster_id.clone()),
        controller_id: broker.controller_id_for_clients(),
        topics,
        cluster_authorized_operations: if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
            access.operations(resource_type::CLUSTER, CLUSTER_RESOURCE_NAME)
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        },
        ..MetadataResponse::default()
    }
}

fn describe_topic(
    broker: &Broker,
    image: &MetadataImage,
    context: &RequestContext,
    topic: &TopicImage,
    operations_for: Option<&Access>,
) -> MetadataResponseTopic {
    let rules = PartitionRules::for_metadata_version(context.api_version);
    let partitions = topic
        .partitions
        .iter()
        .map(|(&index, partition)| {
            let view = partition_view(image, partition, context.listener_name(), rules);
            let mut error = view.error;
            let mut offline_replicas = view.offline_replicas;
            // This node knows before the image does that a log directory of its own
            // failed: its replica is offline and, as its leader, it cannot serve.
            let hosted = broker.replicas.get(&topic.name, index);
            if hosted.as_ref().is_some_and(|hosted| hosted.log.is_offline()) {
                if !offline_replicas.contains(&broker.node_id) {
                    offline_replicas.push(broker.node_id);
                }
                if view.leader_id == broker.node_id {
                    error = ErrorCode::KafkaStorageError;
                }
            }
            MetadataResponsePartition {
                error_code: error.code(),
                partition_index: index,
                leader_id: view.leader_id,
                leader_epoch: view.leader_epoch,
                replica_nodes: view.replicas,
                isr_nodes: view.isr,
                offline_replicas,
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
