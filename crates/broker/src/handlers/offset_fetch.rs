//! OffsetFetch (key 9), v0-v10.
//!
//! v0-v7 ask about one group, v8+ about several (each may live on a different shard).
//! Every version is turned into the v8 per-group shape, answered by
//! `gregor_group::offsets`, and turned back. Group-level errors: v0-v1 put them on every
//! requested partition (they have no top-level error), v2-v7 in the top-level error,
//! v8+ per group. v9+ carry the KIP-848 member id and epoch; v10 names topics by id.
//!
//! With an authorizer: DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED) and on
//! each topic; requested topics the client may not describe are
//! TOPIC_AUTHORIZATION_FAILED, and an all-topics fetch leaves them out.

use crate::authorization::Access;
use crate::broker::Broker;
use crate::coordinator::ClientSource;
use crate::request_context::RequestContext;
use gregor_metadata::acl::operation;
use gregor_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics,
};
use gregor_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::{ErrorCode, Uuid};
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let client = ClientSource::new(header, context.client_address());
    let access = broker.access(context);
    let version = header.request_api_version;
    let require_stable = request.require_stable;
    if version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for group in request.groups {
            groups.push(fetch_group(broker, &client, &access, group, require_stable).await);
        }
        return OffsetFetchResponse { groups, ..OffsetFetchResponse::default() };
    }
    let requested: Option<Vec<(String, Vec<i32>)>> = request
        .topics
        .as_ref()
        .map(|topics| topics.iter().map(|t| (t.name.clone(), t.partition_indexes.clone())).collect());
    let group = OffsetFetchRequestGroup {
        group_id: request.group_id,
        member_id: None,
        member_epoch: -1,
        topics: request.topics.map(|topics| {
            topics
                .into_iter()
                .map(|topic| OffsetFetchRequestTopics {
                    name: topic.name,
                    topic_id: Uuid::ZERO,
                    partition_indexes: topic.partition_indexes,
                    ..OffsetFetchRequestTopics::default()
                })
                .collect()
        }),
        ..OffsetFetchRequestGroup::default()
    };
    let answered = fetch_group(broker, &client, &access, group, require_stable).await;
    let error = ErrorCode::from_code(answered.error_code).unwrap_or(ErrorCode::UnknownServerError);
    if version <= 1 && error != ErrorCode::None {
        // No top-level error field: every requested partition carries the group's.
        let topics = requested
            .unwrap_or_default()
            .into_iter()
            .map(|(name, partitions)| OffsetFetchResponseTopic {
                name,
                partitions: partitions
                    .into_iter()
                    .map(|partition_index| OffsetFetchResponsePartition {
                        partition_index,
                        committed_offset: -1,
                        committed_leader_epoch: -1,
                        metadata: Some(String::new()),
                        error_code: answered.error_code,
                        ..OffsetFetchResponsePartition::default()
                    })
                    .collect(),
                ..OffsetFetchResponseTopic::default()
            })
            .collect();
        return OffsetFetchResponse { topics, ..OffsetFetchResponse::default() };
    }
    let topics = answered
        .topics
        .into_iter()
        .map(|topic| OffsetFetchResponseTopic {
            name: topic.name,
            partitions: topic
                .partitions
                .into_iter()
                .map(|partition| OffsetFetchResponsePartition {
                    partition_index: partition.partition_index,
                    committed_offset: partition.committed_offset,
                    committed_leader_epoch: partition.committed_leader_epoch,
                    metadata: partition.metadata,
                    error_code: partition.error_code,
                    ..OffsetFetchResponsePartition::default()
                })
                .collect(),
            ..OffsetFetchResponseTopic::default()
        })
        .collect();
    OffsetFetchResponse { topics, error_code: answered.error_code, ..OffsetFetchResponse::default() }
}

/// One group's answer, in the v8+ shape. v10 topic ids are resolved to names first;
/// an id this cluster does not know comes back as UNKNOWN_TOPIC_ID on its partitions.
async fn fetch_group(
    broker: &Arc<Broker>,
    client: &ClientSource,
    access: &Access,
    mut group: OffsetFetchRequestGroup,
    require_stable: bool,
) -> OffsetFetchResponseGroup {
    let group_id = group.group_id.clone();
    if !access.allows_group(operation::DESCRIBE, &group_id) {
        return OffsetFetchResponseGroup {
            group_id,
            error_code: ErrorCode::GroupAuthorizationFailed.code(),
            ..OffsetFetchResponseGroup::default()
        };
    }
    let all_topics = group.topics.is_none();
    let mut denied = Vec::new();
    let image = broker.image();
    let mut unknown_ids = Vec::new();
    if let Some(topics) = group.topics.as_mut() {
        topics.retain(|topic| {
            if topic.topic_id == Uuid::ZERO {
                return true;
            }
            match image.topic_by_id(topic.topic_id) {
                Some(_) => true,
                None => {
                    unknown_ids.push((topic.topic_id, topic.partition_indexes.clone()));
                    false
                }
            }
        });
        for topic in topics.iter_mut() {
            if topic.topic_id != Uuid::ZERO {
                if let Some(known) = image.topic_by_id(topic.topic_id) {
                    topic.name = known.name.clone();
                }
            }
        }
        topics.retain(|topic| {
            if access.allows_topic(operation::DESCRIBE, &topic.name) {
                return true;
            }
            denied.push((topic.name.clone(), topic.topic_id, topic.partition_indexes.clone()));
            false
        });
    }
    let read = broker
        .groups
        .read(broker, &client.context(), &group_id, move |shard, context, topics| {
            shard.offset_fetch_group(context, group, require_stable, topics)
        })
        .await;
    let mut answered = match read {
        Ok(answered) => answered,
        Err(code) => {
            return OffsetFetchResponseGroup {
                group_id,
                error_code: code.code(),
                ..OffsetFetchResponseGroup::default()
            }
        }
    };
    if all_topics && !access.is_open() {
        answered.topics.retain(|topic| access.allows_topic(operation::DESCRIBE, &topic.name));
    }
    let unknown = unknown_ids
        .into_iter()
        .map(|(topic_id, partitions)| (String::new(), topic_id, partitions, ErrorCode::UnknownTopicId));
    let denied = denied
        .into_iter()
        .map(|(name, topic_id, partitions)| (name, topic_id, partitions, ErrorCode::TopicAuthorizationFailed));
    for (name, topic_id, partitions, error) in unknown.chain(denied) {
        answered.topics.push(OffsetFetchResponseTopics {
            topic_id,
            partitions: partitions
                .into_iter()
                .map(|partition_index| OffsetFetchResponsePartitions {
                    partition_index,
                    committed_offset: -1,
                    committed_leader_epoch: -1,
                    metadata: Some(String::new()),
                    error_code: error.code(),
                    ..OffsetFetchResponsePartitions::default()
                })
                .collect(),
            name,
            ..OffsetFetchResponseTopics::default()
        });
    }
    answered
}
