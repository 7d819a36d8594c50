//! DescribeTopicPartitions (key 75), v0.
//!
//! The Java admin client's paged topic description: the named topics (all topics,
//! in name order, when the list is empty), their partitions in index order from the
//! cursor on, at most `response_partition_limit` partitions per answer (Kafka caps
//! it at 2000), and the cursor where the next page starts. Unknown names are
//! UNKNOWN_TOPIC_OR_PARTITION. Partitions are described from the metadata image as
//! Metadata describes them ([`crate::cluster_view`]): the leader when it is reachable
//! on the request's listener (else -1; this API has no partition errors), replicas,
//! ISR, offline replicas, and the eligible leader replicas (KIP-966). With an authorizer, topics the client may not
//! DESCRIBE are left out of a listing and TOPIC_AUTHORIZATION_FAILED when named.

use crate::broker::Broker;
use crate::cluster_view::{partition_view, PartitionRules};
use crate::request_context::RequestContext;
use crate::topics::is_internal_topic;
use gregor_metadata::acl::{operation, resource_type};
use gregor_protocol::messages::describe_topic_partitions_request::DescribeTopicPartitionsRequest;
use gregor_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponse, DescribeTopicPartitionsResponsePartition,
    DescribeTopicPartitionsResponseTopic,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::{ErrorCode, Uuid};
use std::sync::Arc;

const PARTITION_LIMIT_MAX: i32 = 2000;
/// Kafka lists every replica here, live or not.
const DESCRIBE_RULES: PartitionRules = PartitionRules { filter_unavailable_replicas: false, listener_not_found: true };

pub async fn handle(
    broker: &Arc<Broker>,
    _header: &RequestHeader,
    context: &RequestContext,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let image = broker.image();
    let access = broker.access(context);
    let mut names: Vec<String> = if request.topics.is_empty() {
        // Topics the client may not DESCRIBE are left out of the listing.
        image
            .topics()
            .filter(|topic| access.allows_topic(operation::DESCRIBE, &topic.name))
            .map(|topic| topic.name.clone())
            .collect()
    } else {
        request.topics.iter().map(|topic| topic.name.clone()).collect()
    };
    names.sort();
    names.dedup();
    let (start_topic, start_partition) = match &request.cursor {
        Some(cursor) => (Some(cursor.topic_name.clone()), cursor.partition_index),
        None => (None, 0),
    };
    let mut budget = request.response_partition_limit.clamp(1, PARTITION_LIMIT_MAX);
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names.into_iter().filter(|name| start_topic.as_ref().is_none_or(|start| name >= start)) {
        if !access.allows_topic(operation::DESCRIBE, &name) {
            topics.push(DescribeTopicPartitionsResponseTopic {
                error_code: ErrorCode::TopicAuthorizationFailed.code(),
                name: Some(name),
                topic_id: Uuid::ZERO,
                ..Default::default()
            });
            continue;
        }
        let Some(topic) = image.topic(&name) else {
            topics.push(DescribeTopicPartitionsResponseTopic {
                error_code: ErrorCode::UnknownTopicOrPartition.code(),
                topic_authorized_operations: access.operations(resource_type::TOPIC, &name),
                name: Some(name),
                topic_id: Uuid::ZERO,
                ..Default::default()
            });
            continue;
        };
        if budget == 0 {
            next_cursor = Some(Cursor { topic_name: name, partition_index: 0, ..Cursor::default() });
            break;
        }
        let first = if start_topic.as_deref() == Some(name.as_str()) { start_partition } else { 0 };
        let mut partitions = Vec::new();
        for (&index, partition) in topic.partitions.range(first..) {
            if budget == 0 {
                next_cursor = Some(Cursor { topic_name: name.clone(), partition_index: index, ..Cursor::default() });
                break;
            }
            budget -= 1;
            let view = partition_view(&image, partition, context.listener_name(), DESCRIBE_RULES);
            partitions.push(DescribeTopicPartitionsResponsePartition {
                error_code: ErrorCode::None.code(),
                partition_index: index,
                leader_id: view.leader_id,
                leader_epoch: view.leader_epoch,
                replica_nodes: view.replicas,
                isr_nodes: view.isr,
                eligible_leader_replicas: Some(partition.elr.clone()),
                last_known_elr: Some(partition.last_known_elr.clone()),
                offline_replicas: view.offline_replicas,
                ..Default::default()
            });
        }
        topics.push(DescribeTopicPartitionsResponseTopic {
            error_code: ErrorCode::None.code(),
            name: Some(name.clone()),
            topic_id: topic.id,
            is_internal: is_internal_topic(&name),
            partitions,
            topic_authorized_operations: access.operations(resource_type::TOPIC, &name),
            ..Default::default()
        });
        if next_cursor.is_some() {
            break;
        }
    }
    DescribeTopicPartitionsResponse { throttle_time_ms: 0, topics, next_cursor, ..Default::default() }
}
