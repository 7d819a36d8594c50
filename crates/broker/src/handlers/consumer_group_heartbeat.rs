//! ConsumerGroupHeartbeat (key 68), v0-v1: the KIP-848 consumer group protocol.
//!
//! Joining, heartbeating and leaving are one request; the coordinator assigns
//! partitions server-side and reconciles each member towards its target assignment
//! (`gregor_group::consumer`). When `group.coordinator.rebalance.protocols` does not
//! list `consumer`, the answer is UNSUPPORTED_VERSION, as Kafka gives.
//!
//! With an authorizer: READ on the group (else GROUP_AUTHORIZATION_FAILED) and DESCRIBE
//! on every subscribed topic name (else TOPIC_AUTHORIZATION_FAILED naming them).

use crate::broker::Broker;
use crate::coordinator::ClientSource;
use crate::request_context::RequestContext;
use gregor_metadata::acl::operation;
use gregor_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use gregor_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::{ErrorCode, ResponseBody};
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: ConsumerGroupHeartbeatRequest,
) -> ResponseBody {
    let failed = |code: ErrorCode| {
        ResponseBody::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse {
            error_code: code.code(),
            ..ConsumerGroupHeartbeatResponse::default()
        })
    };
    let enabled = broker
        .config()
        .group_coordinator_rebalance_protocols
        .iter()
        .any(|protocol| protocol.eq_ignore_ascii_case("consumer"));
    if !enabled {
        return failed(ErrorCode::UnsupportedVersion);
    }
    let client = ClientSource::new(header, context.client_address());
    let group_id = request.group_id.clone();
    let access = broker.access(context);
    if !access.allows_group(operation::READ, &group_id) {
        return failed(ErrorCode::GroupAuthorizationFailed);
    }
    if let Some(topics) = &request.subscribed_topic_names {
        let denied: Vec<&str> = topics
            .iter()
            .filter(|topic| !access.allows_topic(operation::DESCRIBE, topic))
            .map(String::as_str)
            .collect();
        if !denied.is_empty() {
            return ResponseBody::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse {
                error_code: ErrorCode::TopicAuthorizationFailed.code(),
                error_message: Some(format!("Topics {} are not authorized.", denied.join(", "))),
                ..ConsumerGroupHeartbeatResponse::default()
            });
        }
    }
    let decided = broker
        .groups
        .decide(broker, &client.context(), &group_id, move |shard, context, topics| {
            shard.consumer_group_heartbeat(context, request, topics)
        })
        .await;
    decided.unwrap_or_else(failed)
}
