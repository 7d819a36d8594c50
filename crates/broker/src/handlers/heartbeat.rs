//! Heartbeat (key 12), v0-v4.
//!
//! Keeps a classic member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.
//! Logic in `gregor_group::classic`.
//!
//! With an authorizer, READ on the group is needed (else GROUP_AUTHORIZATION_FAILED).

use crate::authorization::Session;
use crate::broker::Broker;
use crate::coordinator::ClientSource;
use gregor_metadata::acl::{operation, resource_type};
use gregor_protocol::messages::heartbeat_request::HeartbeatRequest;
use gregor_protocol::messages::heartbeat_response::HeartbeatResponse;
use gregor_protocol::messages::RequestHeader;
use gregor_protocol::ErrorCode;
use gregor_protocol::ResponseBody;
use std::net::SocketAddr;
use std::sync::Arc;

pub async fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    peer: SocketAddr,
    request: HeartbeatRequest,
) -> ResponseBody {
    let client = ClientSource::new(header, peer);
    let group_id = request.group_id.clone();
    // Every classic-group request needs READ on the group.
    let allowed = broker.authorize(&Session::from_peer(peer), operation::READ, resource_type::GROUP, &group_id);
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
