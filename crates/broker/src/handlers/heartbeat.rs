//! Heartbeat (key 12), v0-v4.
//!
//! Keeps a classic member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.
//! Logic in `gregor_group::classic`.
//!
//! With an authorizer, READ on the group is needed (else GROUP_AUTHORIZATION_FAILED).

use crate::broker::Broker;
use crate::coordinator::ClientSource;
use crate::request_context::RequestContext;
use gregor_metadata::acl::{operation, resource_type};
use gregor_protocol::messages::heartbeat_request::HeartbeatRequest;
use gregor_protocol::messages::heartbeat_response::HeartbeatResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use gregor_protocol::ResponseBody;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    context: &RequestContext,
    request: HeartbeatRequest,
) -> ResponseBody {
    let client = ClientSource::new(header, context.client_address());
    let group_id = request.group_id.clone();
    // Every classic-group request needs READ on the group.
    let allowed = broker.authorize(context, operation::READ, resource_type::GROUP, &group_id);
    let decided = if !allowed {
        Err(ErrorCode::GroupAuthorizationFailed)
    } else {
        broker
            .groups
            .decide(broker, &client.context(), &group_id, move |shard, context, _| shard.heartbeat(context, request))
            .await
    };
    decided.unwrap_or_else(|code| {
        ResponseBody::Heartbeat(HeartbeatResponse { error_code: code.code(), ..HeartbeatResponse::default() })
    })
}
