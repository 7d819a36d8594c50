//! Heartbeat (key 12), v0-v4.
//!
//! Keeps a classic member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.
//! Logic in `gregor_group::classic`.

use crate::broker::Broker;
use crate::coordinator::ClientSource;
use gregor_protocol::messages::heartbeat_request::HeartbeatRequest;
use gregor_protocol::messages::heartbeat_response::HeartbeatResponse;
use gregor_protocol::messages::RequestHeader;
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
    let decided = broker
        .groups
        .decide(broker, &client.context(), &group_id, move |shard, context, _| shard.heartbeat(context, request))
        .await;
    decided.unwrap_or_else(|code| {
        ResponseBody::Heartbeat(HeartbeatResponse { error_code: code.code(), ..HeartbeatResponse::default() })
    })
}
