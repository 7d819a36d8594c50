//! OffsetDelete (key 47), v0.
//!
//! Deletes committed offsets of partitions the group is not subscribed to (those it is
//! subscribed to get GROUP_SUBSCRIBED_TO_TOPIC). Logic in `gregor_group::offsets`.
//!
//! With an authorizer: DELETE on the group (else GROUP_AUTHORIZATION_FAILED) and READ
//! on each topic (else its partitions are TOPIC_AUTHORIZATION_FAILED).

use crate::broker::Broker;
use crate::coordinator::ClientSource;
use crate::request_context::RequestContext;
use gregor_metadata::acl::operation;
use gregor_protocol::messages::offset_delete_request::OffsetDeleteRequest;
use gregor_protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::{ErrorCode, ResponseBody};
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    mut request: OffsetDeleteRequest,
) -> ResponseBody {
    let client = ClientSource::new(header, context.client_address());
    let group_id = request.group_id.clone();
    let access = broker.access(context);
    if !access.allows_group(operation::DELETE, &group_id) {
        return ResponseBody::OffsetDelete(OffsetDeleteResponse {
            error_code: ErrorCode::GroupAuthorizationFailed.code(),
            ..OffsetDeleteResponse::default()
        });
    }
    let (allowed, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
        .into_iter()
        .partition(|topic| access.allows_topic(operation::READ, &topic.name));
    request.topics = allowed;
    let refused: Vec<OffsetDeleteResponseTopic> = denied
        .into_iter()
        .map(|topic| OffsetDeleteResponseTopic {
            partitions: topic
                .partitions
                .iter()
                .map(|partition| OffsetDeleteResponsePartition {
                    partition_index: partition.partition_index,
                    error_code: ErrorCode::TopicAuthorizationFailed.code(),
                    ..OffsetDeleteResponsePartition::default()
                })
                .collect(),
            name: topic.name,
            ..OffsetDeleteResponseTopic::default()
        })
        .collect();
    let decided = broker
        .groups
        .decide(broker, &client.context(), &group_id, move |shard, context, _| shard.offset_delete(context, request))
        .await;
    let answered = decided.unwrap_or_else(|code| {
        ResponseBody::OffsetDelete(OffsetDeleteResponse { error_code: code.code(), ..OffsetDeleteResponse::default() })
    });
    match answered {
        ResponseBody::OffsetDelete(mut response) if response.error_code == ErrorCode::None.code() => {
            response.topics.extend(refused);
            ResponseBody::OffsetDelete(response)
        }
        other => other,
    }
}
