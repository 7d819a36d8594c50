//! OffsetCommit (key 8), v0-v10.
//!
//! Each committed partition becomes one record in `__consumer_offsets`; the answer is
//! sent once they are appended. Generation/member checks (classic) and member-epoch
//! checks (KIP-848, v9+) are `gregor_group::offsets`. v10 names topics by id.
//!
//! With an authorizer: READ on the group (else every partition is
//! GROUP_AUTHORIZATION_FAILED) and READ on each topic (else its partitions are
//! TOPIC_AUTHORIZATION_FAILED and the others are committed).

use crate::broker::Broker;
use crate::coordinator::ClientSource;
use crate::request_context::RequestContext;
use gregor_metadata::acl::operation;
use gregor_protocol::messages::offset_commit_request::OffsetCommitRequest;
use gregor_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::{ErrorCode, ResponseBody};
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    mut request: OffsetCommitRequest,
) -> ResponseBody {
    let client = ClientSource::new(header, context.client_address());
    let group_id = request.group_id.clone();
    let access = broker.access(context);
    if !access.allows_group(operation::READ, &group_id) {
        return ResponseBody::OffsetCommit(every_partition(&request)(ErrorCode::GroupAuthorizationFailed));
    }
    let image = broker.image();
    let (allowed, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics).into_iter().partition(|topic| {
        let name = if topic.topic_id == gregor_protocol::Uuid::ZERO {
            Some(topic.name.as_str())
        } else {
            image.topic_by_id(topic.topic_id).map(|known| known.name.as_str())
        };
        // An unknown id is left to the coordinator, which answers UNKNOWN_TOPIC_ID.
        name.is_none_or(|name| access.allows_topic(operation::READ, name))
    });
    let refused = every_partition(&OffsetCommitRequest { topics: denied, ..OffsetCommitRequest::default() })(
        ErrorCode::TopicAuthorizationFailed,
    );
    if allowed.is_empty() && !refused.topics.is_empty() {
        return ResponseBody::OffsetCommit(refused);
    }
    request.topics = allowed;
    let failed = every_partition(&request);
    let decided = broker
        .groups
        .decide(broker, &client.context(), &group_id, move |shard, context, topics| {
            shard.offset_commit(context, request, topics)
        })
        .await;
    match decided.unwrap_or_else(|code| ResponseBody::OffsetCommit(failed(code))) {
        ResponseBody::OffsetCommit(mut response) => {
            response.topics.extend(refused.topics);
            ResponseBody::OffsetCommit(response)
        }
        other => other,
    }
}

/// The answer that gives every requested partition `code`.
fn every_partition(request: &OffsetCommitRequest) -> impl FnOnce(ErrorCode) -> OffsetCommitResponse {
    let shape: Vec<_> = request
        .topics
        .iter()
        .map(|topic| {
            (topic.name.clone(), topic.topic_id, topic.partitions.iter().map(|p| p.partition_index).collect::<Vec<_>>())
        })
        .collect();
    move |code| OffsetCommitResponse {
        topics: shape
            .into_iter()
            .map(|(name, topic_id, partitions)| OffsetCommitResponseTopic {
                name,
                topic_id,
                partitions: partitions
                    .into_iter()
                    .map(|partition_index| OffsetCommitResponsePartition {
                        partition_index,
                        error_code: code.code(),
                        ..OffsetCommitResponsePartition::default()
                    })
                    .collect(),
                ..OffsetCommitResponseTopic::default()
            })
            .collect(),
        ..OffsetCommitResponse::default()
    }
}
